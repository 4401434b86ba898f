//! SQL of the outbox relay: claiming a window of due result events, and
//! marking them published or postponed, all in the relay's transaction (the
//! claim's row locks keep relays in other processes on other rows). What is
//! due is `outbox_due` (migration 0020), filled by a trigger as events are
//! written; the events themselves change only in `published_at`.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A result event waiting to be published: its stored facts (migration 32)
/// and the refund's unchanging fields, from which the relay writes the JSON;
/// or, for an event written before, its JSON as it was stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueEvent {
    pub event_id: Uuid,
    /// Its `outbox_due` key's first half (the event's `created_at`).
    pub due_at: DateTime<Utc>,
    /// When it was written (`created_at`): the event's `occurred_at`.
    pub occurred_at: DateTime<Utc>,
    pub refund_id: String,
    pub routing_key: String,
    /// The refund's round when the event was written (`retry` when above 0).
    pub round: i32,
    pub status: Option<String>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub source: Option<String>,
    pub batch_no: Option<String>,
    pub channel: Option<String>,
    pub out_request_no: Option<String>,
    pub trade_no: String,
    pub amount_fen: i64,
    pub partner: String,
    /// The JSON of an event written before migration 32, without its
    /// `metadata`; `None` for every event since.
    pub legacy_body: Option<serde_json::Value>,
    /// `metadata` as upstream sent it (the JSONB's text for refunds stored
    /// before the text was kept).
    pub metadata: String,
}

/// An `outbox_due` row's key.
pub type DueKey = (DateTime<Utc>, Uuid);

/// The columns of a [`DueEvent`] but `due_at`, for `FROM outbox o JOIN refunds r`.
macro_rules! event_columns {
    () => {
        "o.event_id, o.created_at AS occurred_at, o.refund_id, o.routing_key, o.round,
    o.status, o.code, o.message, o.source, o.batch_no, o.channel, o.out_request_no,
    r.trade_no, r.amount_fen, r.partner, o.legacy_body - 'metadata' AS legacy_body,
    COALESCE(r.metadata_text, r.metadata::text, '{}') AS metadata"
    };
}

/// Up to `limit` due, unpublished events, oldest first, their `outbox_due`
/// rows locked (`SKIP LOCKED`).
pub async fn claim_due(conn: &mut PgConnection, limit: i64) -> Result<Vec<DueEvent>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT d.created_at AS due_at, ",
        event_columns!(),
        " FROM outbox_due d
         JOIN outbox o ON o.event_id = d.event_id
         JOIN refunds r ON r.refund_id = o.refund_id
         WHERE d.next_attempt_at <= now()
         ORDER BY d.created_at LIMIT $1 FOR UPDATE OF d SKIP LOCKED"
    ))
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// A refund's events, published or not, oldest first, read as the relay
/// reads them (for `outbox::events_of`: tests and tools check what the
/// relay sends, not what is stored).
pub async fn events_of(pool: &PgPool, refund_id: &str) -> Result<Vec<DueEvent>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT o.created_at AS due_at, ",
        event_columns!(),
        " FROM outbox o JOIN refunds r ON r.refund_id = o.refund_id
         WHERE o.refund_id = $1 ORDER BY o.created_at, o.event_id"
    ))
    .bind(refund_id)
    .fetch_all(pool)
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
