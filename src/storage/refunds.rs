//! Reading one refund with its history and events, for `refund show`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, Row};

use crate::domain::format_fen;

/// Everything the worker knows of one refund.
#[derive(Debug, Serialize)]
pub struct RefundView {
    pub refund_id: String,
    pub status: String,
    pub partner: String,
    pub trade_no: String,
    pub amount: String,
    pub reason: String,
    pub currency: String,
    pub trade_amount: Option<String>,
    pub metadata: serde_json::Value,
    pub batch_no: Option<String>,
    /// `mapi` or `openapi`.
    pub channel: String,
    /// OpenAPI: the request number of the current round.
    pub out_request_no: Option<String>,
    /// OpenAPI: why its request is held for a person, while it is.
    pub held: Option<String>,
    pub result_code: Option<String>,
    pub result_message: Option<String>,
    pub result_source: Option<String>,
    pub received_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// How often it went back to pending for an item code that can pass.
    pub item_retries: i32,
    /// A pending refund that went back for such a code waits until then.
    pub not_before: Option<DateTime<Utc>>,
    /// Its item in the current batch, while Alipay left it open.
    pub open_item: Option<OpenItem>,
    pub history: Vec<HistoryEntry>,
    pub events: Vec<EventEntry>,
}

/// An item Alipay left open: its latest code, why it is open, since when.
#[derive(Debug, Serialize)]
pub struct OpenItem {
    pub batch_no: String,
    pub code: String,
    /// `alipay_retries`, `needs_person` or `amount_mismatch`.
    pub class: String,
    pub detail: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

/// One state change.
#[derive(Debug, Serialize)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    pub from_status: Option<String>,
    pub to_status: String,
    pub batch_no: Option<String>,
    pub code: Option<String>,
    pub actor: String,
    pub note: Option<String>,
}

/// A result event in the outbox and whether the broker confirmed it.
#[derive(Debug, Serialize)]
pub struct EventEntry {
    pub event_id: uuid::Uuid,
    pub routing_key: String,
    pub created_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
}

/// The refund, or `None` when the id is unknown.
pub async fn find(pool: &PgPool, refund_id: &str) -> Result<Option<RefundView>, sqlx::Error> {
    let Some(row) = sqlx::query(
        "SELECT refund_id, refund_status(status, batch_no) AS status, partner, trade_no, amount_fen, reason, currency, trade_amount_fen,
                metadata, batch_no, result_code, result_message, result_source, received_at,
                updated_at, finished_at, item_retries, not_before, channel, out_request_no,
                (SELECT q.held_reason FROM openapi_requests q WHERE q.refund_id = r.refund_id
                   AND q.held_at IS NOT NULL AND q.settled_at IS NULL LIMIT 1) AS held
         FROM refunds r WHERE refund_id = $1",
    )
    .bind(refund_id)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    // Arrival is the refund row itself; history holds the changes after it.
    let arrival = HistoryEntry {
        at: row.try_get("received_at")?,
        from_status: None,
        to_status: "pending".into(),
        batch_no: None,
        code: None,
        actor: "intake".into(),
        note: Some("stored".into()),
    };
    let history = std::iter::once(arrival)
        .chain(history(pool, refund_id).await?)
        .collect();
    Ok(Some(RefundView {
        refund_id: row.try_get("refund_id")?,
        status: row.try_get("status")?,
        partner: row.try_get("partner")?,
        trade_no: row.try_get("trade_no")?,
        amount: format_fen(row.try_get("amount_fen")?),
        reason: row.try_get("reason")?,
        currency: row.try_get("currency")?,
        trade_amount: row
            .try_get::<Option<i64>, _>("trade_amount_fen")?
            .map(format_fen),
        metadata: row.try_get("metadata")?,
        batch_no: row.try_get("batch_no")?,
        channel: row.try_get("channel")?,
        out_request_no: row.try_get("out_request_no")?,
        held: row.try_get("held")?,
        result_code: row.try_get("result_code")?,
        result_message: row.try_get("result_message")?,
        result_source: row.try_get("result_source")?,
        received_at: row.try_get("received_at")?,
        updated_at: row.try_get("updated_at")?,
        finished_at: row.try_get("finished_at")?,
        item_retries: row.try_get("item_retries")?,
        not_before: row.try_get("not_before")?,
        open_item: open_item(pool, refund_id).await?,
        history,
        events: events(pool, refund_id).await?,
    }))
}

/// The refund's recorded state changes, oldest first: its own rows and the
/// sets that name it, found through the batches it was in (a set is always
/// written under the batch its refunds were in, which holds their items).
async fn history(pool: &PgPool, refund_id: &str) -> Result<Vec<HistoryEntry>, sqlx::Error> {
    sqlx::query(
        "SELECT id, at, from_status, to_status, batch_no, code, actor, note
         FROM refund_history WHERE refund_id = $1
         UNION ALL
         SELECT s.id, s.at, s.from_status, s.to_status, s.batch_no, s.code, s.actor, s.note
         FROM refund_history_sets s
         WHERE s.batch_no IN (SELECT batch_no FROM batch_items WHERE refund_id = $1)
           AND $1 = ANY(s.refund_ids)
         ORDER BY id",
    )
    .bind(refund_id)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|h| {
        Ok(HistoryEntry {
            at: h.try_get("at")?,
            from_status: h.try_get("from_status")?,
            to_status: h.try_get("to_status")?,
            batch_no: h.try_get("batch_no")?,
            code: h.try_get("code")?,
            actor: h.try_get("actor")?,
            note: h.try_get("note")?,
        })
    })
    .collect()
}

/// Its item in the current batch, when Alipay left that item open.
async fn open_item(pool: &PgPool, refund_id: &str) -> Result<Option<OpenItem>, sqlx::Error> {
    sqlx::query(
        "SELECT bi.batch_no, bi.open_code, bi.open_class, bi.open_detail, bi.open_since
         FROM refunds r JOIN batch_items bi ON bi.batch_no = r.batch_no AND bi.refund_id = r.refund_id
         WHERE r.refund_id = $1 AND bi.result_code IS NULL AND bi.open_code IS NOT NULL",
    )
    .bind(refund_id)
    .fetch_optional(pool)
    .await?
    .map(|o| {
        Ok(OpenItem {
            batch_no: o.try_get("batch_no")?,
            code: o.try_get("open_code")?,
            class: o.try_get::<Option<String>, _>("open_class")?.unwrap_or_default(),
            detail: o.try_get("open_detail")?,
            since: o.try_get("open_since")?,
        })
    })
    .transpose()
}

/// Its result events in the outbox, oldest first.
async fn events(pool: &PgPool, refund_id: &str) -> Result<Vec<EventEntry>, sqlx::Error> {
    sqlx::query(
        "SELECT event_id, routing_key, created_at, published_at FROM outbox WHERE refund_id = $1 ORDER BY created_at",
    )
    .bind(refund_id)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|e| {
        Ok(EventEntry {
            event_id: e.try_get("event_id")?,
            routing_key: e.try_get("routing_key")?,
            created_at: e.try_get("created_at")?,
            published_at: e.try_get("published_at")?,
        })
    })
    .collect()
}
