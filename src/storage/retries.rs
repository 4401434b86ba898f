//! SQL of `refund retry`: a failed refund back to pending, one transaction
//! each, with who asked in its history.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::transitions;
use crate::domain::actor::Actor;
use crate::domain::retry::{Refusal, may_retry};

/// What became of one refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retried {
    /// Back to pending; the code it had failed with.
    Reopened {
        code: String,
    },
    Refused(Refusal),
    Unknown,
}

/// Reopens one refund if its failure may pass; `actor` is who asked.
/// `never_retry` are the codes a retry cannot pass (a partner misconfigured:
/// the answer table's).
pub async fn retry(
    pool: &PgPool,
    refund_id: &str,
    actor: &Actor,
    never_retry: &[&str],
) -> Result<Retried, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let row: Option<(String, Option<String>)> =
        sqlx::query_as("SELECT status, result_code FROM refunds WHERE refund_id = $1 FOR UPDATE")
            .bind(refund_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((status, code)) = row else {
        tx.rollback().await?;
        return Ok(Retried::Unknown);
    };
    if let Err(refusal) = may_retry(&status, code.as_deref(), never_retry) {
        tx.rollback().await?;
        return Ok(Retried::Refused(refusal));
    }
    transitions::reopen_failed(&mut tx, refund_id, code.as_deref(), actor).await?;
    tx.commit().await?;
    Ok(Retried::Reopened {
        code: code.unwrap_or_default(),
    })
}

/// Failed refunds with `code`, finished at or after `since`, oldest first.
pub async fn failed_with(
    pool: &PgPool,
    code: &str,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT refund_id FROM refunds
         WHERE status = 'failed' AND result_code = $1 AND ($2::timestamptz IS NULL OR finished_at >= $2)
         ORDER BY finished_at, refund_id",
    )
    .bind(code)
    .bind(since)
    .fetch_all(pool)
    .await
}
