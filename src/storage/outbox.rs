//! SQL of the outbox relay: claiming a window of due result events, and
//! marking them published or postponed, all in the relay's transaction (the
//! claim's row locks keep relays in other processes on other rows).

use sqlx::PgConnection;
use uuid::Uuid;

/// A result event waiting to be published.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueEvent {
    pub event_id: Uuid,
    pub refund_id: String,
    pub routing_key: String,
    /// The event without its `metadata`.
    pub body: serde_json::Value,
    /// `metadata` as upstream sent it (the JSONB's text for refunds stored
    /// before the text was kept).
    pub metadata: String,
}

/// Up to `limit` due, unpublished events, oldest first, locked (`SKIP LOCKED`).
pub async fn claim_due(conn: &mut PgConnection, limit: i64) -> Result<Vec<DueEvent>, sqlx::Error> {
    // An ordered index scan that stops after a window, whatever the
    // statistics say: a bitmap scan collects every unpublished row and
    // every published one not yet vacuumed away (1 s a step at 700 000
    // published events), and only a plain index scan marks those dead.
    sqlx::query("SET LOCAL enable_bitmapscan = off")
        .execute(&mut *conn)
        .await?;
    sqlx::query_as(
        "SELECT o.event_id, o.refund_id, o.routing_key, o.body - 'metadata' AS body,
                COALESCE(r.metadata_text, (o.body -> 'metadata')::text, '{}') AS metadata
         FROM outbox o JOIN refunds r ON r.refund_id = o.refund_id
         WHERE o.published_at IS NULL AND o.next_attempt_at <= now()
         ORDER BY o.created_at LIMIT $1 FOR UPDATE OF o SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The broker confirmed these: published, in one statement.
pub async fn mark_published(conn: &mut PgConnection, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE outbox SET published_at = now() WHERE event_id = ANY($1)")
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Unroutable or refused: tried again after a delay that doubles with each
/// attempt, at most five minutes.
pub async fn postpone(conn: &mut PgConnection, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE outbox SET attempts = attempts + 1,
                next_attempt_at = now() + make_interval(secs => least(300, power(2, least(attempts, 12))))
         WHERE event_id = ANY($1)",
    )
    .bind(ids)
    .execute(conn)
    .await?;
    Ok(())
}
