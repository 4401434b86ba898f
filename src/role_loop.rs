//! The one loop every role runs: intake, batcher, submitter, relay and
//! reconciler each provide a `work` step and, if they can be woken early, an
//! `idle` wait; this loop repeats the step until shutdown, paced by what the
//! step says and, after an error, by the role's backoff schedule
//! ([`Delays`]), which starts again after the next success.
//!
//! Tests call the roles' own steps; this loop only adds waiting and stopping.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::delays::Delays;

/// What a step asks of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Work was done and more may wait: step again at once.
    Busy,
    /// Nothing to do now: wait this long (or until woken), then step again.
    Idle(Duration),
    /// The role is finished (it saw the shutdown itself).
    Done,
}

/// A role as the loop drives it.
pub trait Role: Send {
    /// The role's name in logs.
    const NAME: &'static str;

    /// The backoff after a failed step (an outage of the database or the broker).
    fn backoff(&self) -> Delays {
        Delays::steps()
    }

    /// One unit of work.
    fn work(
        &mut self,
        shutdown: &CancellationToken,
    ) -> impl Future<Output = anyhow::Result<Pace>> + Send;

    /// Waits up to `wait` for a reason to step again; a role that listens
    /// for NOTIFY returns as soon as one arrives.
    fn idle(&mut self, wait: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(wait)
    }

    /// Closes what the role holds open (a broker connection), on shutdown.
    fn finish(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Runs `role` until `shutdown`.
pub async fn run<R: Role>(mut role: R, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut errors = role.backoff();
    while !shutdown.is_cancelled() {
        let wait = match role.work(&shutdown).await {
            Ok(Pace::Busy) => {
                errors.reset();
                continue;
            }
            Ok(Pace::Idle(wait)) => {
                errors.reset();
                wait
            }
            Ok(Pace::Done) => break,
            Err(e) => {
                let wait = errors.next_delay();
                tracing::warn!(
                    role = R::NAME,
                    error = %format!("{e:#}"),
                    retry_in_ms = wait.as_millis() as u64,
                    "step failed; backing off"
                );
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = role.idle(wait) => {}
        }
    }
    role.finish().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers its script, then finishes.
    struct Scripted {
        script: Vec<anyhow::Result<Pace>>,
    }

    impl Role for Scripted {
        const NAME: &'static str = "scripted";

        async fn work(&mut self, _: &CancellationToken) -> anyhow::Result<Pace> {
            if self.script.is_empty() {
                return Ok(Pace::Done);
            }
            self.script.remove(0)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_loop_backs_off_after_errors_waits_when_idle_and_stops_when_done() {
        let started = tokio::time::Instant::now();
        let role = Scripted {
            script: vec![
                Err(anyhow::anyhow!("down")),
                Err(anyhow::anyhow!("down")),
                Ok(Pace::Busy),
                Ok(Pace::Idle(Duration::from_secs(1))),
                Ok(Pace::Busy),
            ],
        };
        run(role, CancellationToken::new()).await.unwrap();
        // Two backoffs (at least 100 ms, then at least 200 ms) and one idle second.
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(1300), "{took:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_ends_an_idle_wait_at_once() {
        let stop = CancellationToken::new();
        let role = Scripted {
            script: vec![Ok(Pace::Idle(Duration::from_secs(3600)))],
        };
        let running = tokio::spawn(run(role, stop.clone()));
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.cancel();
        let started = tokio::time::Instant::now();
        running.await.unwrap().unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
