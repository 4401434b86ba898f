//! SQL of 充退 notifications: the refund a `(batch_no, trade_no)` names, and
//! the notification stored with its `refund.bank_returned` event in one
//! transaction.

use sqlx::PgPool;

use crate::storage::notifications::{Received, insert};

/// What a final 充退 status becomes in the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BankReturn {
    /// The event's `status`.
    pub status: &'static str,
    /// The event's `code`: Alipay's raw status letter.
    pub code: &'static str,
    pub message: &'static str,
}

impl BankReturn {
    pub const SUCCEEDED: Self = Self {
        status: "bank_succeeded",
        code: "S",
        message: "the refund reached the buyer's bank card",
    };
    pub const FAILED: Self = Self {
        status: "bank_failed",
        code: "F",
        message: "the refund did not reach the bank card; it stays in the buyer's Alipay balance",
    };
}

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
        sqlx::query(
            "INSERT INTO outbox (event_id, refund_id, round, routing_key, body)
             SELECT e.id, f.refund_id, f.operator_retries, 'refund.bank_returned',
                    refund_event_body(f, e.id, 'refund.bank_returned', $2, $3, $4, 'notify')
             FROM refunds f CROSS JOIN LATERAL (SELECT gen_random_uuid() AS id, f.refund_id) e
             WHERE f.refund_id = $1",
        )
        .bind(refund_id)
        .bind(event.status)
        .bind(event.code)
        .bind(event.message)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(true)
}
