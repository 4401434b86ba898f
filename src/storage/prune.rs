//! Retention (`refund-worker prune`): what may go once it is older than the
//! cut-off, in small batches that each commit at once, so no lock is held
//! for long and the live fleet never waits on the prune.
//!
//! - published outbox rows (their events are on the broker, and consumers
//!   deduplicate on `event_id`);
//! - the raw bodies of ordinary notifications (`applied`, `repeat`) of
//!   batches that are over (`completed`, `rejected`) or of no batch: the row
//!   stays, so its `notify_id` still deduplicates, with `raw_pruned_at` set.
//!   Forged, malformed and every other unusual notification keeps its body:
//!   it is the audit's evidence;
//! - the history and the raw OpenAPI answers of refunds that have been
//!   terminal (succeeded or failed) since before the cut-off; a history set
//!   once every refund it names has been.
//!
//! Refunds and batches themselves are never pruned.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// What a prune removes, one kind at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    PublishedEvents,
    NotificationBodies,
    History,
    HistorySets,
    OpenApiAnswers,
}

impl Target {
    pub const ALL: [Target; 5] = [
        Target::PublishedEvents,
        Target::NotificationBodies,
        Target::History,
        Target::HistorySets,
        Target::OpenApiAnswers,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Target::PublishedEvents => "published outbox events",
            Target::NotificationBodies => "raw notification bodies",
            Target::History => "history rows of terminal refunds",
            Target::HistorySets => "history sets whose refunds are all terminal",
            Target::OpenApiAnswers => "raw OpenAPI answers of terminal refunds",
        }
    }

    /// The rows in scope, for a chunk (`LIMIT $2`) or a count.
    fn scope(self) -> &'static str {
        match self {
            Target::PublishedEvents => {
                "SELECT event_id AS key FROM outbox
                 WHERE created_at < $1 AND published_at IS NOT NULL AND published_at < $1"
            }
            Target::NotificationBodies => {
                "SELECT n.id AS key FROM notifications n
                 WHERE n.raw_pruned_at IS NULL AND n.received_at < $1
                   AND n.verdict IN ('applied', 'repeat')
                   AND (n.batch_no IS NULL OR EXISTS (
                        SELECT 1 FROM batches b WHERE b.batch_no = n.batch_no
                          AND b.status IN ('completed', 'rejected')))"
            }
            Target::History => {
                "SELECT h.id AS key FROM refund_history h
                 JOIN refunds r ON r.refund_id = h.refund_id
                 WHERE h.at < $1 AND r.status IN ('succeeded', 'failed') AND r.finished_at < $1"
            }
            Target::HistorySets => {
                "SELECT s.id AS key, s.batch_no FROM refund_history_sets s
                 WHERE s.at < $1 AND NOT EXISTS (
                     SELECT 1 FROM refunds r WHERE r.refund_id = ANY(s.refund_ids)
                       AND (r.status NOT IN ('succeeded', 'failed') OR r.finished_at >= $1))"
            }
            Target::OpenApiAnswers => {
                "SELECT a.id AS key FROM openapi_answers a
                 JOIN refunds r ON r.refund_id = a.refund_id
                 WHERE a.at < $1 AND r.status IN ('succeeded', 'failed') AND r.finished_at < $1"
            }
        }
    }

    /// One chunk: at most `$2` rows, skipping any a role holds.
    fn chunk(self) -> String {
        let scope = self.scope();
        match self {
            Target::PublishedEvents => format!(
                "DELETE FROM outbox WHERE event_id IN ({scope} LIMIT $2 FOR UPDATE SKIP LOCKED)"
            ),
            Target::NotificationBodies => format!(
                "UPDATE notifications SET raw_body = ''::bytea, raw_pruned_at = now()
                 WHERE id IN ({scope} LIMIT $2 FOR UPDATE OF n SKIP LOCKED)"
            ),
            Target::History => format!(
                "DELETE FROM refund_history WHERE id IN ({scope} LIMIT $2 FOR UPDATE OF h SKIP LOCKED)"
            ),
            Target::HistorySets => format!(
                "DELETE FROM refund_history_sets d
                 USING ({scope} LIMIT $2 FOR UPDATE OF s SKIP LOCKED) c
                 WHERE d.batch_no = c.batch_no AND d.id = c.key"
            ),
            Target::OpenApiAnswers => format!(
                "DELETE FROM openapi_answers WHERE id IN ({scope} LIMIT $2 FOR UPDATE OF a SKIP LOCKED)"
            ),
        }
    }
}

/// How many rows of `target` are older than `cutoff` (for `--dry-run`).
pub async fn count(pool: &PgPool, target: Target, cutoff: DateTime<Utc>) -> sqlx::Result<i64> {
    let sql = format!("SELECT count(*) FROM ({}) s", target.scope());
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(cutoff)
        .fetch_one(pool)
        .await
}

/// Removes one chunk of at most `limit` rows in its own short transaction;
/// how many went (0: nothing left).
pub async fn chunk(
    pool: &PgPool,
    target: Target,
    cutoff: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<u64> {
    let done = sqlx::query(sqlx::AssertSqlSafe(target.chunk()))
        .bind(cutoff)
        .bind(limit)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
