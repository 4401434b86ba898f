//! SQL of submission: claiming a due batch under a lease, and recording what
//! followed its answer. Each function is one short transaction or runs in the
//! caller's; none holds a lock across a gateway call.

use std::time::Duration;

use sqlx::{PgConnection, PgPool, Row};

use super::transitions::{self, Failure, Later};
use crate::domain::actor::{Actor, Source};
use crate::domain::batch::{BatchItem, ClaimedBatch};
use crate::domain::item_outcome::{ItemOutcome, ItemRetry, decide};
use crate::domain::{BatchStatus, RefundStatus};

/// Claims the most overdue batch of an unpaused partner: marks it
/// `submitting`, counts the attempt, and leases it until `lease` from now, so
/// another process takes it over only if this one dies. An attempt that was
/// started and never recorded turns into `outcome_unknown` here.
pub async fn claim_due(
    pool: &PgPool,
    lease: Duration,
) -> Result<Option<ClaimedBatch>, sqlx::Error> {
    let row = sqlx::query(
        concat!(
        "WITH due AS (
             SELECT batch_no FROM batches b
             WHERE status IN ('created', 'submitting') AND next_attempt_at <= now()
               AND NOT EXISTS (SELECT 1 FROM partner_pauses p
                               WHERE p.partner = b.partner AND p.paused_until > now())
             ORDER BY next_attempt_at LIMIT 1
             FOR UPDATE SKIP LOCKED
         )
         UPDATE batches b SET status = 'submitting', attempts = attempts + 1,
                outcome_unknown = outcome_unknown OR attempt_started_at IS NOT NULL,
                -- An attempt cut off mid-call may have reached Alipay: it
                -- counts as a send, and any absence seen before it no longer does.
                last_sent_at = CASE WHEN attempt_started_at IS NOT NULL
                                    THEN greatest(last_sent_at, attempt_started_at) ELSE last_sent_at END,
                absence_first_at = CASE WHEN attempt_started_at IS NOT NULL
                                        THEN NULL ELSE absence_first_at END,
                attempt_started_at = now(),
                next_attempt_at = now() + make_interval(secs => $1),
                updated_at = now()
         FROM due WHERE b.batch_no = due.batch_no
         RETURNING b.batch_no, b.partner, b.refund_date, b.detail_data, b.attempts,
                   b.outcome_unknown, b.needs_query, b.created_at, b.last_sent_at,
                   b.absence_first_at,
                   ",
        notified!(),
        " AS notified"
    ),
    )
    .bind(lease.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(ClaimedBatch {
            batch_no: r.try_get("batch_no")?,
            partner: r.try_get("partner")?,
            refund_date: r.try_get("refund_date")?,
            detail_data: r.try_get("detail_data")?,
            attempts: r.try_get("attempts")?,
            outcome_unknown: r.try_get("outcome_unknown")?,
            needs_query: r.try_get("needs_query")?,
            created_at: r.try_get("created_at")?,
            last_sent_at: r.try_get("last_sent_at")?,
            absence_first_at: r.try_get("absence_first_at")?,
            notified: r.try_get("notified")?,
        })
    })
    .transpose()
}

/// Whether an attempt may still record what followed it (invariant 5a).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Still `submitting`, at the attempt it claimed: record.
    Held,
    /// Another attempt claimed the batch after this one's lease ran out.
    TakenOver,
    /// At this attempt still, but moved on meanwhile (to `status`), by what
    /// Alipay reported of the batch (its notification can arrive before the
    /// answer to the request that sent it is recorded) or by an operator.
    MovedOn { status: String },
}

impl Claim {
    /// The batch row as it is now (`status`, `attempts`, whether an attempt
    /// is open), judged for `attempt`. A batch that is gone counts as taken
    /// over: nothing may be written.
    pub fn judge(row: Option<(&str, i32, bool)>, attempt: i32) -> Self {
        match row {
            Some(("submitting", a, true)) if a == attempt => Claim::Held,
            Some((status, a, _)) if a == attempt && !matches!(status, "created" | "submitting") => {
                Claim::MovedOn {
                    status: status.to_owned(),
                }
            }
            _ => Claim::TakenOver,
        }
    }
}

/// Invariant 5a: whether this process still holds its claim on the batch.
/// Locks the row for the caller's transaction, so nobody can take the claim
/// over until it commits; anything but [`Claim::Held`] means nothing may be
/// written.
pub async fn claim(
    conn: &mut PgConnection,
    batch_no: &str,
    attempt: i32,
) -> Result<Claim, sqlx::Error> {
    let row: Option<(String, i32, bool)> = sqlx::query_as(
        "SELECT status, attempts, attempt_started_at IS NOT NULL FROM batches
         WHERE batch_no = $1 FOR UPDATE",
    )
    .bind(batch_no)
    .fetch_optional(conn)
    .await?;
    Ok(Claim::judge(
        row.as_ref().map(|(s, a, open)| (s.as_str(), *a, *open)),
        attempt,
    ))
}

/// This attempt sent the batch at `at`: the send that absence is measured from.
pub async fn sent_at(
    conn: &mut PgConnection,
    batch_no: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE batches SET last_sent_at = greatest(last_sent_at, $2), absence_first_at = NULL
         WHERE batch_no = $1",
    )
    .bind(batch_no)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The first `REFUND_NOT_EXIST` that counts toward absence, seen at `at`;
/// the query is asked again after `delay`.
pub async fn absence_seen(
    conn: &mut PgConnection,
    batch_no: &str,
    at: chrono::DateTime<chrono::Utc>,
    delay: Duration,
) -> Result<(), sqlx::Error> {
    retry_later(conn, batch_no, delay, Some("REFUND_NOT_EXIST"), false, true).await?;
    sqlx::query("UPDATE batches SET absence_first_at = $2 WHERE batch_no = $1")
        .bind(batch_no)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Alipay holds the batch: `submitted`, and its refunds with it.
pub async fn mark_submitted(
    conn: &mut PgConnection,
    batch_no: &str,
    code: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE batches SET status = 'submitted', accepted_at = COALESCE(accepted_at, now()),
                submitted_at = COALESCE(submitted_at, now()), attempt_started_at = NULL,
                needs_query = false, held_at = NULL, last_code = $2, updated_at = now()
         WHERE batch_no = $1 AND status IN ('created', 'submitting', 'awaiting_operator')",
    )
    .bind(batch_no)
    .bind(code)
    .execute(&mut *conn)
    .await?;
    transitions::accept_batch(conn, batch_no, code, &Actor::Submitter, None).await?;
    Ok(())
}

/// Try again later: the same batch, or its query.
pub async fn retry_later(
    conn: &mut PgConnection,
    batch_no: &str,
    delay: Duration,
    code: Option<&str>,
    unknown: bool,
    query: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE batches SET attempt_started_at = NULL, next_attempt_at = now() + make_interval(secs => $2),
                outcome_unknown = outcome_unknown OR $3, needs_query = needs_query OR $4,
                last_code = COALESCE($5, last_code), updated_at = now()
         WHERE batch_no = $1",
    )
    .bind(batch_no)
    .bind(delay.as_secs_f64())
    .bind(unknown)
    .bind(query)
    .bind(code)
    .execute(conn)
    .await?;
    Ok(())
}

/// Provably not accepted: the batch is `rejected` and its refunds go back to
/// pending, for a new batch with a new `batch_no`.
pub async fn reject(
    conn: &mut PgConnection,
    batch_no: &str,
    code: Option<&str>,
) -> Result<(), sqlx::Error> {
    set_batch_status(conn, batch_no, BatchStatus::Rejected, code).await?;
    let note = "batch not accepted by Alipay; back to pending for a new batch";
    transitions::batch_to_pending(conn, batch_no, None, code, &Actor::Submitter, note).await?;
    Ok(())
}

/// The batch waits, as it is, for an operator and the password form.
pub async fn await_operator(
    conn: &mut PgConnection,
    batch_no: &str,
    code: Option<&str>,
) -> Result<(), sqlx::Error> {
    set_batch_status(conn, batch_no, BatchStatus::AwaitingOperator, code).await
}

/// Keeps the batch and its refunds as they are, marks it held (for `batch
/// release` and the operator page) and looks again in `delay`.
pub async fn hold(
    conn: &mut PgConnection,
    batch_no: &str,
    code: Option<&str>,
    delay: Duration,
) -> Result<(), sqlx::Error> {
    retry_later(conn, batch_no, delay, code, false, false).await?;
    sqlx::query("UPDATE batches SET held_at = COALESCE(held_at, now()) WHERE batch_no = $1")
        .bind(batch_no)
        .execute(conn)
        .await?;
    Ok(())
}

/// A batch of one refused for its trade with a code that can pass: the
/// batch is `rejected` (nothing of it was accepted) and its refund goes back
/// to pending, not before its delay, or fails with the code past its retry
/// limit (the item-code rules, [`decide`]). The value: refunds failed.
pub async fn return_single(
    conn: &mut PgConnection,
    batch_no: &str,
    code: &str,
    retry: ItemRetry,
) -> Result<u64, sqlx::Error> {
    set_batch_status(conn, batch_no, BatchStatus::Rejected, Some(code)).await?;
    let rows: Vec<(String, i64, i32)> = sqlx::query_as(
        "SELECT refund_id, amount_fen, item_retries FROM refunds
         WHERE refund_id = ANY (ARRAY(SELECT refund_id FROM batch_items WHERE batch_no = $1))
           AND batch_no = $1 AND status = 'batched' FOR UPDATE",
    )
    .bind(batch_no)
    .fetch_all(&mut *conn)
    .await?;
    let mut later = Vec::new();
    let mut fail = Vec::new();
    for (refund_id, fen, retries) in &rows {
        match decide(code, *fen, *fen, *retries, retry) {
            ItemOutcome::Retry { after } => later.push(Later {
                refund_id,
                code,
                wait: after,
            }),
            _ => fail.push(refund_id.as_str()),
        }
    }
    let note = "refused for now with a code that can pass; a later batch may";
    transitions::pending_later(
        conn,
        Some(batch_no),
        RefundStatus::Batched,
        &later,
        &Actor::Submitter,
        Some(note),
    )
    .await?;
    let failure = Failure {
        refund_ids: &fail,
        from: RefundStatus::Batched,
        batch_no: Some(batch_no),
        code,
        message: "Alipay refused the refund's batch for its trade, past the retry limit",
        source: Source::Submit,
        actor: &Actor::Submitter,
    };
    transitions::fail(conn, &failure).await
}

/// A batch of one refused for its trade: the batch is `rejected` and the
/// refund `failed` with Alipay's code (source `submit`), with its result event.
pub async fn fail_single(
    conn: &mut PgConnection,
    batch_no: &str,
    code: &str,
) -> Result<(), sqlx::Error> {
    set_batch_status(conn, batch_no, BatchStatus::Rejected, Some(code)).await?;
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT refund_id FROM refunds
         WHERE refund_id = ANY (ARRAY(SELECT refund_id FROM batch_items WHERE batch_no = $1))
           AND batch_no = $1 AND status = 'batched'",
    )
    .bind(batch_no)
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let failure = Failure {
        refund_ids: &ids,
        from: RefundStatus::Batched,
        batch_no: Some(batch_no),
        code,
        message: "Alipay refused the refund's batch for its trade",
        source: Source::Submit,
        actor: &Actor::Submitter,
    };
    transitions::fail(conn, &failure).await?;
    Ok(())
}

/// The refunds and items of a batch (for a split), in no particular order.
pub async fn items_of(
    conn: &mut PgConnection,
    batch_no: &str,
) -> Result<Vec<(String, BatchItem)>, sqlx::Error> {
    let rows: Vec<(String, String, i64, String)> = sqlx::query_as(
        "SELECT refund_id, trade_no, amount_fen, reason FROM batch_items WHERE batch_no = $1",
    )
    .bind(batch_no)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, trade_no, amount_fen, reason)| {
            (
                id,
                BatchItem {
                    trade_no,
                    amount_fen,
                    reason,
                },
            )
        })
        .collect())
}

/// Pauses a partner's submissions with an interval that doubles with each
/// refusal, from `base` up to `cap`.
pub async fn pause_partner(
    conn: &mut PgConnection,
    partner: &str,
    code: &str,
    base: Duration,
    cap: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO partner_pauses (partner, paused_until, code)
         VALUES ($1, now() + make_interval(secs => $3), $2)
         ON CONFLICT (partner) DO UPDATE SET
             refusals = partner_pauses.refusals + 1, code = $2, updated_at = now(),
             paused_until = now() + make_interval(secs =>
                 least($4, $3 * power(2, least(partner_pauses.refusals, 20))))",
    )
    .bind(partner)
    .bind(code)
    .bind(base.as_secs_f64())
    .bind(cap.as_secs_f64())
    .execute(conn)
    .await?;
    Ok(())
}

async fn set_batch_status(
    conn: &mut PgConnection,
    batch_no: &str,
    status: BatchStatus,
    code: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE batches SET status = $2, attempt_started_at = NULL, last_code = COALESCE($3, last_code),
                completed_at = CASE WHEN $2 = 'rejected' THEN now() ELSE completed_at END, updated_at = now()
         WHERE batch_no = $1",
    )
    .bind(batch_no)
    .bind(status.as_str())
    .bind(code)
    .execute(conn)
    .await?;
    Ok(())
}

/// Retires a batch whose refunds move on to other batches (a split): it is
/// `rejected`, its refunds stay `batched` for their new batches.
pub async fn retire(
    conn: &mut PgConnection,
    batch_no: &str,
    code: Option<&str>,
) -> Result<(), sqlx::Error> {
    set_batch_status(conn, batch_no, BatchStatus::Rejected, code).await
}

#[cfg(test)]
mod tests {
    use super::Claim;

    #[test]
    fn an_open_attempt_at_its_own_number_holds_the_claim() {
        assert_eq!(Claim::judge(Some(("submitting", 3, true)), 3), Claim::Held);
    }

    #[test]
    fn a_later_attempt_or_a_closed_one_has_taken_it_over() {
        for row in [
            ("submitting", 4, true),
            ("submitting", 3, false),
            ("created", 3, false),
            ("submitted", 4, true),
        ] {
            assert_eq!(Claim::judge(Some(row), 3), Claim::TakenOver, "{row:?}");
        }
        assert_eq!(Claim::judge(None, 3), Claim::TakenOver);
    }

    #[test]
    fn a_batch_a_report_moved_on_at_this_attempt_is_not_taken_over() {
        for status in ["submitted", "completed", "awaiting_operator", "rejected"] {
            assert_eq!(
                Claim::judge(Some((status, 3, true)), 3),
                Claim::MovedOn {
                    status: status.into()
                }
            );
        }
    }
}
