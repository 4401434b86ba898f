//! What needs a person, for the operator page: items Alipay left open,
//! held batches, and refunds suspected of a double payment.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use super::batch_view::{BatchSummary, SuspectEntry};

/// A suspect of a double payment with the rejected batch it was found in.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct SuspectRow {
    pub batch_no: String,
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub entry: SuspectEntry,
}

/// Every suspect of a double payment, newest first, for the operator page.
pub async fn all_suspects(pool: &PgPool, limit: i64) -> Result<Vec<SuspectRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT batch_no, refund_id, other_batch, code, detail, noticed_at FROM double_payment_suspects
         ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// An item Alipay left open, for the operator page.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct OpenItemRow {
    pub batch_no: String,
    pub refund_id: String,
    pub trade_no: String,
    pub amount_fen: i64,
    pub open_code: String,
    pub open_class: Option<String>,
    pub open_detail: Option<String>,
    pub open_since: Option<DateTime<Utc>>,
}

/// Open items, oldest first.
pub async fn open_items(pool: &PgPool, limit: i64) -> Result<Vec<OpenItemRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT batch_no, refund_id, trade_no, amount_fen, open_code, open_class, open_detail, open_since
         FROM batch_items WHERE open_code IS NOT NULL AND result_code IS NULL
         ORDER BY open_since LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Held batches (an `F` code the submitter cannot act on), oldest first.
pub async fn held(pool: &PgPool, limit: i64) -> Result<Vec<BatchSummary>, sqlx::Error> {
    sqlx::query_as(
        "SELECT batch_no, partner, status, batch_num, attempts, last_code, created_at, form_printed_at
         FROM batches WHERE held_at IS NOT NULL AND status IN ('created', 'submitting')
         ORDER BY held_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}
