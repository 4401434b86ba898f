//! SQL of the outbox relay: claiming a window of due result events, and
//! marking them published or postponed, all in the relay's transaction (the
//! claim's row locks keep relays in other processes on other rows). What is
//! due is `outbox_due` (migration 0020), filled by a trigger as events are
//! written; the events themselves change only in `published_at`.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// A result event waiting to be published.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueEvent {
    pub event_id: Uuid,
    /// Its `outbox_due` key's first half (the event's `created_at`).
    pub due_at: DateTime<Utc>,
    pub refund_id: String,
    pub routing_key: String,
    /// The event without its `metadata`.
    pub body: serde_json::Value,
    /// `metadata` as upstream sent it (the JSONB's text for refunds stored
    /// before the text was kept).
    pub metadata: String,
}

/// An `outbox_due` row's key.
pub type DueKey = (DateTime<Utc>, Uuid);

/// Up to `limit` due, unpublished events, oldest first, their `outbox_due`
/// rows locked (`SKIP LOCKED`).
pub async fn claim_due(conn: &mut PgConnection, limit: i64) -> Result<Vec<DueEvent>, sqlx::Error> {
    sqlx::query_as(
        "SELECT d.event_id, d.created_at AS due_at, o.refund_id, o.routing_key,
                o.body - 'metadata' AS body,
                COALESCE(r.metadata_text, (o.body -> 'metadata')::text, '{}') AS metadata
         FROM outbox_due d
         JOIN outbox o ON o.event_id = d.event_id
         JOIN refunds r ON r.refund_id = o.refund_id
         WHERE d.next_attempt_at <= now()
         ORDER BY d.created_at LIMIT $1 FOR UPDATE OF d SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The broker confirmed these: no longer due, and published (a HOT update
/// of the event: only `published_at` changes), in one statement.
pub async fn mark_published(conn: &mut PgConnection, keys: &[DueKey]) -> Result<(), sqlx::Error> {
    if keys.is_empty() {
        return Ok(());
    }
    let (at, ids): (Vec<DateTime<Utc>>, Vec<Uuid>) = keys.iter().copied().unzip();
    sqlx::query(
        "WITH gone AS (
             DELETE FROM outbox_due d
             USING unnest($1::timestamptz[], $2::uuid[]) AS k(created_at, event_id)
             WHERE d.created_at = k.created_at AND d.event_id = k.event_id
             RETURNING d.event_id
         )
         UPDATE outbox SET published_at = now()
         WHERE event_id IN (SELECT event_id FROM gone) AND published_at IS NULL",
    )
    .bind(&at)
    .bind(&ids)
    .execute(conn)
    .await?;
    Ok(())
}

/// Unroutable or refused: tried again after a delay that doubles with each
/// attempt, at most five minutes.
pub async fn postpone(conn: &mut PgConnection, keys: &[DueKey]) -> Result<(), sqlx::Error> {
    if keys.is_empty() {
        return Ok(());
    }
    let (at, ids): (Vec<DateTime<Utc>>, Vec<Uuid>) = keys.iter().copied().unzip();
    sqlx::query(
        "UPDATE outbox_due d SET attempts = d.attempts + 1,
                next_attempt_at = now() + make_interval(secs => least(300, power(2, least(d.attempts, 12))))
         FROM unnest($1::timestamptz[], $2::uuid[]) AS k(created_at, event_id)
         WHERE d.created_at = k.created_at AND d.event_id = k.event_id",
    )
    .bind(&at)
    .bind(&ids)
    .execute(conn)
    .await?;
    Ok(())
}
