//! The process's stop signal: Ctrl-C or SIGTERM. Every long-running
//! subcommand (`run`, `sandbox`) waits on it and then stops in its own way;
//! it lives here, not in one of them, because none of them owns it.

/// Resolves on Ctrl-C or SIGTERM.
pub async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            // Without a SIGTERM handler, Ctrl-C still stops the process.
            Err(_) => {
                ctrl_c.await.ok();
            }
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.ok();
}
