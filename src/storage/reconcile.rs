//! SQL of the reconciler: claiming the next batch to ask Alipay about (one
//! `SKIP LOCKED` statement that also books the next question, so processes
//! never ask about one batch at once), and the first absence it saw.

use std::time::Duration;

use sqlx::{PgPool, Row};

use crate::domain::BatchStatus;
use crate::domain::batch::ReconcileClaim;

/// Claims the most overdue batch to reconcile and books its next question
/// (`reask_base` doubling, at most an hour). `after` is
/// `RECONCILE_AFTER_MS`; `today` the Beijing date as `YYYYMMDD`.
pub async fn claim(
    pool: &PgPool,
    after: Duration,
    today: &str,
    reask_base: Duration,
) -> Result<Option<ReconcileClaim>, sqlx::Error> {
    let row = sqlx::query(
        concat!(
        "WITH due AS (
             SELECT batch_no FROM batches
             WHERE ((status = 'submitted' AND submitted_at <= now() - make_interval(secs => $1))
                    -- a password form printed: the operator may have posted it
                    OR (status = 'awaiting_operator' AND form_printed_at <= now() - make_interval(secs => $1))
                    -- a password-form batch past its date: its form can no longer be posted
                    OR (status = 'awaiting_operator' AND left(batch_no, 8) < $2))
               AND next_attempt_at <= now()
             ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED
         )
         UPDATE batches b SET reconcile_queries = reconcile_queries + 1,
                next_attempt_at = now() + make_interval(secs => least(3600, $3 * power(2, least(reconcile_queries, 12))))
         FROM due WHERE b.batch_no = due.batch_no
         RETURNING b.batch_no, b.partner, b.status, b.form_printed_at, b.last_sent_at,
                   b.absence_first_at, left(b.batch_no, 8) < $2 AS past_date,
                   ",
        notified!(),
        " AS notified"
    ),
    )
    .bind(after.as_secs_f64())
    .bind(today)
    .bind(reask_base.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    let status: String = r.try_get("status")?;
    Ok(Some(ReconcileClaim {
        batch_no: r.try_get("batch_no")?,
        partner: r.try_get("partner")?,
        status: BatchStatus::parse(&status)
            .ok_or_else(|| sqlx::Error::Protocol(format!("unknown batch status {status}")))?,
        form_printed_at: r.try_get("form_printed_at")?,
        last_sent_at: r.try_get("last_sent_at")?,
        absence_first_at: r.try_get("absence_first_at")?,
        past_date: r.try_get("past_date")?,
        notified: r.try_get("notified")?,
    }))
}

/// The first `REFUND_NOT_EXIST` that counts toward absence, seen at `at`.
pub async fn absence_seen(
    pool: &PgPool,
    batch_no: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE batches SET absence_first_at = $2 WHERE batch_no = $1 AND absence_first_at IS NULL",
    )
    .bind(batch_no)
    .bind(at)
    .execute(pool)
    .await?;
    Ok(())
}
