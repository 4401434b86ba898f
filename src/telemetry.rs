//! Logging: `tracing` to stderr, JSON or pretty; levels through `RUST_LOG`.
//! stdout is left to the commands' own output.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the subscriber; `default_level` applies when `RUST_LOG` is unset.
pub fn init(format: LogFormat, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.pretty().try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    drop(result);
}

/// Counts refunds that reached a terminal state, after their transaction
/// committed (`refund_worker_refunds_completed_total{status}`).
pub fn refunds_completed(status: &'static str, n: u64) {
    if n > 0 {
        metrics::counter!("refund_worker_refunds_completed_total", "status" => status).increment(n);
    }
}
