//! Capped exponential backoff with jitter and no limit on tries (backon's),
//! for waits that last until a service is back or the process is told to
//! stop: a role's failed steps ([`crate::role_loop`]), a window held through
//! an outage, `run` waiting for its services at start. Every such wait in
//! the worker uses one of these schedules.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio_util::sync::CancellationToken;

pub struct Delays {
    backoff: ExponentialBackoff,
    min: Duration,
    max: Duration,
}

impl Delays {
    /// From `min`, doubling (with jitter) up to `max`, for ever.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            backoff: schedule(min, max),
            min,
            max,
        }
    }

    /// Between reconnections to PostgreSQL or RabbitMQ: 0.2 s up to 10 s.
    pub fn reconnect() -> Self {
        Self::new(Duration::from_millis(200), Duration::from_secs(10))
    }

    /// After a failed step of a role on a pool that reconnects by itself:
    /// 0.1 s up to 5 s.
    pub fn steps() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(5))
    }

    /// Starts the schedule again (after a success).
    pub fn reset(&mut self) {
        self.backoff = schedule(self.min, self.max);
    }

    /// How long to wait before the next try.
    pub fn next_delay(&mut self) -> Duration {
        self.backoff.next().unwrap_or(self.max)
    }
}

fn schedule(min: Duration, max: Duration) -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(min)
        .with_max_delay(max)
        .with_jitter()
        .without_max_times()
        .build()
}

/// Sleeps unless stopped first; true when the whole time passed.
pub async fn sleep_or_stop(stop: &CancellationToken, wait: Duration) -> bool {
    if wait.is_zero() {
        return !stop.is_cancelled();
    }
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(wait) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_waits_grow_to_the_cap_and_never_end() {
        let max = Duration::from_millis(800);
        let mut d = Delays::new(Duration::from_millis(100), max);
        let waits: Vec<Duration> = (0..50).map(|_| d.next_delay()).collect();
        assert!(waits.iter().all(|w| *w >= Duration::from_millis(100)));
        // Jitter adds at most the delay itself on top.
        assert!(waits.iter().all(|w| *w <= max * 2), "{waits:?}");
        assert!(waits[40..].iter().all(|w| *w >= max), "{waits:?}");
    }
}
