//! SQL of 充退 notifications: the refund a `(batch_no, trade_no)` names, and
//! the notification stored with its `refund.bank_returned` event in one
//! transaction.

use sqlx::PgPool;

use super::notifications::{Received, insert};
use super::result_event;
pub use crate::domain::bank_return::BankReturn;

/// The refund the batch sent for this trade, if it holds the trade.
pub async fn refund_of(
    pool: &PgPool,
    batch_no: &str,
    trade_no: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT refund_id FROM batch_items WHERE batch_no = $1 AND trade_no = $2")
        .bind(batch_no)
        .bind(trade_no)
        .fetch_optional(pool)
        .await
}

/// The refund an OpenAPI request number of this app names (any round).
pub async fn refund_of_request(
    pool: &PgPool,
    app_id: &str,
    out_request_no: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT refund_id FROM openapi_requests WHERE app_id = $1 AND out_request_no = $2",
    )
    .bind(app_id)
    .bind(out_request_no)
    .fetch_optional(pool)
    .await
}

/// Stores the notification as applied and, for a final status, its event.
/// `false` when the same `notify_id` was applied first by a concurrent
/// delivery (nothing changed).
pub async fn apply(
    pool: &PgPool,
    r: &Received<'_>,
    refund_id: &str,
    event: Option<&BankReturn>,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    if let Err(e) = insert(&mut tx, r).await {
        tx.rollback().await?;
        return match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => Ok(false),
            _ => Err(e),
        };
    }
    if let Some(event) = event {
        result_event::bank_returned(&mut tx, refund_id, event).await?;
    }
    tx.commit().await?;
    Ok(true)
}
