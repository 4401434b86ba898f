//! The soak's stream published in paced slices while the faults run, each
//! slice published again on a new link when the broker did not confirm it
//! (intake stores a repeated event once, and the check counts a repeated
//! dead letter once).

use std::time::{Duration, Instant};

use super::SoakArgs;
use super::link::Link;
use super::stream::Planned;
use crate::amqp::Topology;
use crate::amqp::topology::APPROVED_KEY;
use crate::commands::harness::publish::publish_all;

/// The longest a slice of the stream may wait for its confirms.
const PUBLISH_LIMIT: Duration = Duration::from_secs(60);
/// How often a slice is published before the run gives up.
const PUBLISH_ATTEMPTS: usize = 10;

/// How the stream is cut into slices, and when each is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pacing {
    pub slices: usize,
    pub duration: Option<Duration>,
}

impl Pacing {
    /// Twenty slices 300 ms apart, or with a duration one slice a second
    /// (at least twenty), evenly over it; never more slices than events.
    pub fn new(events: usize, duration: Option<Duration>) -> Self {
        let wanted = duration.map_or(20, |d| (d.as_secs() as usize).max(20));
        Pacing {
            slices: wanted.min(events).max(1),
            duration,
        }
    }

    /// How long after the start slice `k` is due (`None`: right after the
    /// previous one and a 300 ms pause).
    pub fn due(&self, k: usize) -> Option<Duration> {
        let d = self.duration?;
        let k = u32::try_from(k).unwrap_or(u32::MAX);
        let n = u32::try_from(self.slices).unwrap_or(u32::MAX);
        Some(d.checked_mul(k).map_or(d, |dk| dk / n))
    }
}

/// Publishes the stream in paced slices; returns how many events the
/// broker confirmed.
pub(super) async fn publish_stream(
    link: &mut Link,
    planned: &[Planned],
    topology: &Topology,
    args: &SoakArgs,
    started: Instant,
) -> anyhow::Result<usize> {
    let pacing = Pacing::new(planned.len(), args.duration);
    let size = planned.len().div_ceil(pacing.slices).max(1);
    let mut n = 0;
    for (k, slice) in planned.chunks(size).enumerate() {
        if let Some(due) = pacing.due(k) {
            tokio::time::sleep_until((started + due).into()).await;
        }
        publish_slice(link, k, slice, topology).await?;
        n += slice.len();
        if pacing.duration.is_none() {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    Ok(n)
}

/// Publishes slice `k` until the broker confirms it, reopening the link
/// between attempts, at most [`PUBLISH_ATTEMPTS`] times.
async fn publish_slice(
    link: &mut Link,
    k: usize,
    slice: &[Planned],
    topology: &Topology,
) -> anyhow::Result<()> {
    for attempt in 1.. {
        let bodies = slice.iter().map(|p| p.body.clone());
        let sent = tokio::time::timeout(
            PUBLISH_LIMIT,
            publish_all(
                &link.channel,
                &topology.refunds_exchange,
                APPROVED_KEY,
                bodies,
            ),
        )
        .await;
        let error = match sent {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => format!("{e:#}"),
            Err(_) => format!("no confirms within {PUBLISH_LIMIT:?}"),
        };
        anyhow::ensure!(
            attempt < PUBLISH_ATTEMPTS,
            "slice {k} of the stream was not confirmed in {attempt} attempts: {error}"
        );
        eprintln!("soak: slice {k} not confirmed ({error}); publishing it again");
        link.reopen().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_duration_the_stream_goes_in_twenty_unpaced_slices() {
        let p = Pacing::new(5000, None);
        assert_eq!(p.slices, 20);
        assert_eq!(p.due(7), None);
        assert_eq!(Pacing::new(3, None).slices, 3);
    }

    #[test]
    fn a_duration_spreads_one_slice_a_second_evenly_over_it() {
        let p = Pacing::new(1_000_000, Some(Duration::from_secs(1800)));
        assert_eq!(p.slices, 1800);
        assert_eq!(p.due(0), Some(Duration::ZERO));
        assert_eq!(p.due(900), Some(Duration::from_secs(900)));
        assert_eq!(p.due(1799), Some(Duration::from_secs(1799)));
        // Short runs still get twenty slices, never more than events.
        let short = Pacing::new(5000, Some(Duration::from_secs(5)));
        assert_eq!(short.slices, 20);
        assert_eq!(short.due(10), Some(Duration::from_millis(2500)));
        assert_eq!(Pacing::new(7, Some(Duration::from_secs(60))).slices, 7);
    }
}
