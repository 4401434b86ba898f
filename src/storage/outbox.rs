//! SQL of the outbox relay: claiming due sets of result events
//! (`outbox_sets`, migration 33: one per statement that wrote events),
//! reading their events, and marking sets published or postponed, all in
//! the relay's transaction (the claim's row locks keep relays in other
//! processes on other sets). An event row is never written after its
//! insert; whether it went out is its set's `published_at`.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A result event waiting to be published: its stored facts (migration 32)
/// and the refund's unchanging fields, from which the relay writes the JSON;
/// or, for an event written before, its JSON as it was stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueEvent {
    pub event_id: Uuid,
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

/// The columns of a [`DueEvent`], for `FROM outbox o JOIN refunds r`.
macro_rules! event_columns {
    () => {
        "o.event_id, o.created_at AS occurred_at, o.refund_id, o.routing_key, o.round,
    o.status, o.code, o.message, o.source, o.batch_no, o.channel, o.out_request_no,
    r.trade_no, r.amount_fen, r.partner, o.legacy_body - 'metadata' AS legacy_body,
    COALESCE(r.metadata_text, r.metadata::text, '{}') AS metadata"
    };
}

/// A claimed set: its id, the moment its events were written, and them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueSet {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub event_ids: Vec<Uuid>,
}

/// Due, unpublished sets, oldest first, locked (`SKIP LOCKED`): as many as
/// fit in `window` events, and always the first (a set is published whole).
pub async fn claim_due(conn: &mut PgConnection, window: i64) -> Result<Vec<DueSet>, sqlx::Error> {
    sqlx::query_as(
        "WITH next AS (
             SELECT id, sum(cardinality(event_ids)) OVER (ORDER BY id) - cardinality(event_ids) AS before
             FROM outbox_sets WHERE published_at IS NULL AND next_attempt_at <= now()
             ORDER BY id LIMIT $1
         )
         SELECT s.id, s.created_at, s.event_ids
         FROM outbox_sets s JOIN next n ON n.id = s.id
         WHERE n.before < $1
         ORDER BY s.id FOR UPDATE OF s SKIP LOCKED",
    )
    .bind(window)
    .fetch_all(conn)
    .await
}

/// The events of these sets, each set's in one run, in the sets' order.
pub async fn events_in(
    conn: &mut PgConnection,
    sets: &[DueSet],
) -> Result<Vec<DueEvent>, sqlx::Error> {
    let ids: Vec<Uuid> = sets
        .iter()
        .flat_map(|s| s.event_ids.iter().copied())
        .collect();
    sqlx::query_as(concat!(
        "SELECT ",
        event_columns!(),
        " FROM unnest($1::uuid[]) WITH ORDINALITY AS k(event_id, n)
         JOIN outbox o ON o.event_id = k.event_id
         JOIN refunds r ON r.refund_id = o.refund_id
         ORDER BY k.n"
    ))
    .bind(&ids)
    .fetch_all(conn)
    .await
}

/// A refund's events as they are (or were) published, oldest first: for
/// `refund show`-like reading and for tests, which check what the relay
/// sends, not what is stored.
pub async fn events_of(pool: &PgPool, refund_id: &str) -> Result<Vec<DueEvent>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        event_columns!(),
        " FROM outbox o JOIN refunds r ON r.refund_id = o.refund_id
         WHERE o.refund_id = $1 ORDER BY o.created_at, o.event_id"
    ))
    .bind(refund_id)
    .fetch_all(pool)
    .await
}

/// SQL: the next attempt of a set tried `attempts` times (before this
/// one): 2^attempts seconds from now, at most five minutes.
macro_rules! backoff {
    () => {
        "now() + make_interval(secs => least(300, power(2, least(attempts, 12))))"
    };
}

/// The broker confirmed every event of these sets: published.
pub async fn mark_published(conn: &mut PgConnection, sets: &[i64]) -> Result<(), sqlx::Error> {
    if sets.is_empty() {
        return Ok(());
    }
    sqlx::query("UPDATE outbox_sets SET published_at = now() WHERE id = ANY($1)")
        .bind(sets)
        .execute(conn)
        .await?;
    Ok(())
}

/// The broker took none of a set's events (unroutable or refused): tried
/// again after a delay that doubles with each attempt, at most five minutes.
pub async fn postpone(conn: &mut PgConnection, sets: &[i64]) -> Result<(), sqlx::Error> {
    if sets.is_empty() {
        return Ok(());
    }
    sqlx::query(concat!(
        "UPDATE outbox_sets SET attempts = attempts + 1, next_attempt_at = ",
        backoff!(),
        " WHERE id = ANY($1)"
    ))
    .bind(sets)
    .execute(conn)
    .await?;
    Ok(())
}

/// The broker took some of a set's events: the set is published without
/// the others (`kept`), which move to a new set of the same moment, tried
/// again later like a postponed one.
pub async fn split_off(
    conn: &mut PgConnection,
    set: &DueSet,
    kept: &[Uuid],
) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "WITH later AS (
             INSERT INTO outbox_sets (created_at, event_ids, attempts, next_attempt_at)
             SELECT $2, $3, attempts + 1, ",
        backoff!(),
        " FROM outbox_sets WHERE id = $1
         )
         UPDATE outbox_sets SET published_at = now(),
                event_ids = ARRAY(SELECT e FROM unnest(event_ids) AS e WHERE e <> ALL($3))
         WHERE id = $1"
    ))
    .bind(set.id)
    .bind(set.created_at)
    .bind(kept)
    .execute(conn)
    .await?;
    Ok(())
}
