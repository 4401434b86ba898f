//! `soak --cluster`: broker nodes killed under load. Against the three-node
//! cluster of `deploy/cluster.sh`, at a seeded interval around the one
//! given, the node that leads the approved queue (or, when no leader can be
//! read, a node drawn from the seed) gets SIGKILL (its whole process
//! group), stays down a moment, and is started again; the next kill waits
//! until all three run. Meanwhile the refunds stored and the result events
//! published are sampled, and the longest time either stood still before
//! reaching its last value is reported.
//!
//! Invariants: every node killed is started again before [`run`] returns
//! (also when it stops early); [`longest_pause`] is pure.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use sqlx::PgPool;
use tokio::process::Command;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often the progress is sampled.
const SAMPLE: Duration = Duration::from_millis(250);

/// What the node kills did, as the report shows it.
#[derive(Debug, Default, Clone, Serialize)]
pub struct NodeFaults {
    pub node_kills: usize,
    /// Kills of the node leading the approved queue at that moment.
    pub leader_kills: usize,
    /// Kills after which the approved queue had another leader.
    pub leader_changes: usize,
    /// The longest time no new refund was stored, between the first and the last.
    pub longest_intake_pause_ms: u64,
    /// When it began, ms after the sampling (and the faults) began; the
    /// soak's log says when by the clock.
    pub longest_intake_pause_from_ms: u64,
    /// The longest time no result event was published, between the first and the last.
    pub longest_publish_pause_ms: u64,
    pub longest_publish_pause_from_ms: u64,
}

/// The cluster script and the queue whose leader is preferred.
#[derive(Debug, Clone)]
pub struct Target {
    pub script: PathBuf,
    pub queue: String,
}

/// Kills nodes at about every `every` and samples the progress in `pool`,
/// until `stop`.
pub async fn run(
    target: &Target,
    every: Duration,
    seed: u64,
    pool: &PgPool,
    stop: CancellationToken,
) -> anyhow::Result<NodeFaults> {
    let started_at = chrono::Utc::now();
    let (killed, samples) = tokio::join!(
        kill_nodes(target, every, seed, stop.clone()),
        sample(pool, stop)
    );
    let mut faults = killed?;
    let intake: Vec<(u64, i64)> = samples.iter().map(|s| (s.0, s.1)).collect();
    let published: Vec<(u64, i64)> = samples.iter().map(|s| (s.0, s.2)).collect();
    let (i, p) = (longest_pause(&intake), longest_pause(&published));
    for (what, pause) in [("intake", i), ("publishing", p)] {
        let at = started_at + chrono::Duration::milliseconds(pause.from_ms as i64);
        eprintln!(
            "soak: the longest {what} pause, {} ms, began at {} (to match the workers' logs)",
            pause.ms,
            at.format("%H:%M:%S%.3f UTC")
        );
    }
    faults.longest_intake_pause_ms = i.ms;
    faults.longest_intake_pause_from_ms = i.from_ms;
    faults.longest_publish_pause_ms = p.ms;
    faults.longest_publish_pause_from_ms = p.from_ms;
    Ok(faults)
}

async fn kill_nodes(
    target: &Target,
    every: Duration,
    seed: u64,
    stop: CancellationToken,
) -> anyhow::Result<NodeFaults> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xc1a5_7e12);
    let mean = every.as_millis().max(2000) as u64;
    let mut done = NodeFaults::default();
    loop {
        let gap = Duration::from_millis(rng.random_range(mean / 2..=mean * 3 / 2));
        let down = Duration::from_millis(rng.random_range(1000..=4000));
        let drawn = rng.random_range(1..=3usize);
        tokio::select! {
            _ = stop.cancelled() => return Ok(done),
            _ = tokio::time::sleep(gap) => {}
        }
        let before = leader(target).await;
        let node = before.as_deref().and_then(node_index).unwrap_or(drawn);
        eprintln!(
            "soak: killing broker node rw{node} (leader of {}: {})",
            target.queue,
            before.as_deref().unwrap_or("unknown")
        );
        script(target, &["kill", &node.to_string()]).await?;
        done.node_kills += 1;
        if before.as_deref().and_then(node_index) == Some(node) {
            done.leader_kills += 1;
        }
        tokio::time::sleep(down).await;
        script(target, &["start"])
            .await
            .context("while starting the killed node again")?;
        let after = leader(target).await;
        if before.is_some() && after.is_some() && before != after {
            done.leader_changes += 1;
        }
    }
}

/// (ms since the start, refunds stored, events published) every [`SAMPLE`].
async fn sample(pool: &PgPool, stop: CancellationToken) -> Vec<(u64, i64, i64)> {
    let started = Instant::now();
    let mut out = Vec::new();
    while !stop.is_cancelled() {
        let counts: Result<(i64, i64), sqlx::Error> = sqlx::query_as(
            "SELECT (SELECT count(*) FROM refunds),
                    (SELECT count(*) FROM outbox WHERE published_at IS NOT NULL)",
        )
        .fetch_one(pool)
        .await;
        // A sample lost to a database cut leaves a gap, which the pause
        // measure counts as standing still: an upper bound.
        if let Ok((stored, published)) = counts {
            out.push((started.elapsed().as_millis() as u64, stored, published));
        }
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(SAMPLE) => {}
        }
    }
    out
}

/// A stretch in which a sampled count did not grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pause {
    /// When it began, ms since the sampling started.
    pub from_ms: u64,
    pub ms: u64,
}

/// The longest stretch between two samples at which the value grew, from
/// its first growth (before it the workers may still be starting) up to the
/// sample where it reached its last value (after that it is done, not
/// paused). Samples are (ms, value), in time order.
pub fn longest_pause(samples: &[(u64, i64)]) -> Pause {
    let Some(last) = samples.last().map(|s| s.1) else {
        return Pause::default();
    };
    let mut longest = Pause::default();
    let mut since: Option<u64> = None;
    let mut value = samples[0].1;
    for &(at, v) in &samples[1..] {
        if value >= last {
            break;
        }
        if v > value {
            if let Some(from) = since
                && at - from > longest.ms
            {
                longest = Pause {
                    from_ms: from,
                    ms: at - from,
                };
            }
            since = Some(at);
            value = v;
        }
    }
    longest
}

/// `rw2@localhost` → 2.
fn node_index(name: &str) -> Option<usize> {
    let n: usize = name.strip_prefix("rw")?.split('@').next()?.parse().ok()?;
    (1..=3).contains(&n).then_some(n)
}

/// The approved queue's leader as the cluster sees it, when it can be read.
async fn leader(target: &Target) -> Option<String> {
    let out = Command::new("bash")
        .arg(&target.script)
        .args(["leader", &target.queue])
        .output()
        .await
        .ok()?;
    let name = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !name.is_empty()).then_some(name)
}

async fn script(target: &Target, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("bash")
        .arg(&target.script)
        .args(args)
        .output()
        .await
        .with_context(|| format!("cannot run {}", target.script.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "{} {} failed: {}",
        target.script.display(),
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_pause_is_the_longest_wait_for_growth_before_the_end() {
        let samples = [
            (0, 0),
            (250, 10),
            (500, 10),
            (750, 10),
            (1000, 20),
            (1250, 30),
            (1500, 30),
            (9000, 30),
        ];
        // 250 → 1000 stood still; after 1250 it was done, not paused.
        assert_eq!(
            longest_pause(&samples),
            Pause {
                from_ms: 250,
                ms: 750
            }
        );
        assert_eq!(longest_pause(&[]), Pause::default());
        assert_eq!(longest_pause(&[(0, 5)]), Pause::default());
        // Before the first growth the workers may be starting: not a pause.
        let late_start = [(0, 0), (8000, 0), (8250, 5), (8500, 9), (9500, 12)];
        assert_eq!(
            longest_pause(&late_start),
            Pause {
                from_ms: 8500,
                ms: 1000
            }
        );
    }

    #[test]
    fn a_node_name_gives_its_index() {
        assert_eq!(node_index("rw2@localhost"), Some(2));
        assert_eq!(node_index("rw4@localhost"), None);
        assert_eq!(node_index("rabbit@host"), None);
    }
}
