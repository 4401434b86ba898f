//! How far the system under soak has got: when the faults may stop (nine
//! in ten valid refunds terminal) and when it is quiet (every valid refund
//! terminal, every event published, nothing left for intake). Both are
//! asked again when a restart makes a question fail.

use std::time::{Duration, Instant};

use sqlx::PgPool;

use super::SoakArgs;
use super::link::Link;
use crate::amqp::{self, Topology};

/// The longest the run waits for quiescence after the faults stop.
const QUIET_LIMIT: Duration = Duration::from_secs(300);
/// The longest one look at whether it is quiet may take (a broker node
/// killed a moment before can leave a call unanswered).
const LOOK_LIMIT: Duration = Duration::from_secs(20);
/// How often the progress is printed while the faults run.
const PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// The longest faults go on after `--duration` (they stop earlier once nine
/// in ten refunds are done): five minutes, or 20 ms a refund when longer
/// (about four times what the soaks on record took), so a run whose
/// refunds stopped moving ends in its checks, not in CI's time-out.
pub(super) fn fault_limit(refunds: usize, duration: Option<Duration>) -> Duration {
    let per_refund =
        Duration::from_millis(20).saturating_mul(u32::try_from(refunds).unwrap_or(u32::MAX));
    duration.unwrap_or_default() + per_refund.max(Duration::from_secs(300))
}

/// Refunds in a terminal state. Only valid events are ever stored (the
/// others are dead-lettered, duplicates stored once), so this counts valid
/// refunds done without sending their ids: an array of a million ids every
/// half second was itself the heaviest load on the database.
async fn terminal_count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM refunds WHERE status IN ('succeeded', 'failed')")
        .fetch_one(pool)
        .await
}

/// Faults go on while the refunds flow: for the whole duration and until
/// nine in ten valid refunds are terminal (at least 3 s after the last
/// event), or [`fault_limit`]. The count is printed every [`PROGRESS_EVERY`].
pub(super) async fn until_mostly_done(
    pool: &PgPool,
    valid: usize,
    args: &SoakArgs,
    started: Instant,
) {
    tokio::time::sleep(Duration::from_secs(3)).await;
    if let Some(d) = args.duration {
        tokio::time::sleep_until((started + d).into()).await;
    }
    let limit = fault_limit(args.refunds, args.duration);
    let mut printed = Instant::now();
    while started.elapsed() < limit {
        match terminal_count(pool).await {
            Ok(done) if done as usize * 10 >= valid * 9 => return,
            Ok(done) if printed.elapsed() >= PROGRESS_EVERY => {
                printed = Instant::now();
                eprintln!(
                    "soak: {done} of {valid} valid refunds terminal after {} s",
                    started.elapsed().as_secs()
                );
            }
            Ok(_) => {}
            // The database restarting: ask again.
            Err(e) => eprintln!("soak: cannot count terminal refunds ({e}); asking again"),
        }
        // A count over every refund: at a million rows, twice a second was
        // a fifth of a core taken from the system.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    eprintln!(
        "soak: faults stopped at their limit of {limit:?}, before nine in ten refunds were done"
    );
}

/// Waits until [`quiet`], or [`QUIET_LIMIT`] (then says what is left and
/// lets the checks name it).
pub(super) async fn until_quiet(
    pool: &PgPool,
    link: &mut Link,
    topology: &Topology,
    valid: usize,
) -> anyhow::Result<()> {
    let quiet_from = Instant::now();
    loop {
        let look = tokio::time::timeout(LOOK_LIMIT, quiet(pool, link, topology, valid))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {LOOK_LIMIT:?}")));
        match look {
            Ok(None) => return Ok(()),
            Ok(Some(state)) if quiet_from.elapsed() > QUIET_LIMIT => {
                eprintln!("soak: not quiet after {QUIET_LIMIT:?}: {state}");
                return Ok(());
            }
            Ok(Some(_)) => {}
            // A restart shortly before the faults stopped: ask again.
            Err(e) => {
                eprintln!("soak: cannot tell whether it is quiet ({e:#}); asking again");
                link.reopen().await?;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `None` once every valid refund is terminal, every event published and
/// nothing left for intake (an invalid event last in the stream must be
/// dead-lettered before the dead letters are checked); else what is left.
async fn quiet(
    pool: &PgPool,
    link: &Link,
    topology: &Topology,
    valid: usize,
) -> anyhow::Result<Option<String>> {
    let done = terminal_count(pool).await?;
    let unpublished: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_due")
        .fetch_one(pool)
        .await?;
    let unread = amqp::inspect(&link.channel, &topology.approved_queue)
        .await?
        .message_count();
    Ok((done as usize != valid || unpublished > 0 || unread > 0).then(|| {
        format!(
            "{done} of {valid} valid refunds terminal, {unpublished} events unpublished, {unread} events not yet read"
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fault_limit_is_five_minutes_or_20_ms_a_refund_after_the_duration() {
        assert_eq!(fault_limit(4000, None), Duration::from_secs(300));
        assert_eq!(fault_limit(100_000, None), Duration::from_secs(2000));
        assert_eq!(
            fault_limit(1000, Some(Duration::from_secs(600))),
            Duration::from_secs(900)
        );
        assert!(fault_limit(usize::MAX, None) >= Duration::from_secs(300));
    }
}
