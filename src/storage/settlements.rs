//! SQL of the operator's hand on what Alipay left open: `refund settle`
//! (an open item settled with a recorded reason and name, its terminal event
//! with source `operator`) and `batch release` (a held batch's refunds back
//! to pending). One transaction each, fenced like every other writer: a
//! refund moves only from `submitted` in the batch it is in, a batch only
//! while it is still held and nobody is sending it.

use sqlx::{PgConnection, PgPool};

use super::notifications::complete_if_settled;
use super::transitions::{self, Failure};
use crate::domain::RefundStatus;
use crate::domain::actor::{Actor, Source};

/// How an operator settles an open item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// The money moved (as the merchant's Alipay account shows).
    Succeeded,
    /// It did not: fails with this code.
    Failed(String),
}

/// What became of a `refund settle`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Settled; the batch it was in, and whether that completed the batch.
    Done {
        batch_no: String,
        completed: bool,
    },
    /// Settled: an OpenAPI refund whose request was held for a person.
    DoneRequest {
        out_request_no: String,
    },
    /// Not a refund an operator may settle, and why.
    Refused(String),
    Unknown,
}

/// Settles one open item of a submitted refund.
pub async fn settle(
    pool: &PgPool,
    refund_id: &str,
    how: &Settlement,
    reason: &str,
    by: &str,
) -> Result<Settled, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let row: Option<(String, Option<String>)> =
        sqlx::query_as("SELECT refund_status(status, batch_no), batch_no FROM refunds WHERE refund_id = $1 FOR UPDATE")
            .bind(refund_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((status, batch_no)) = row else {
        tx.rollback().await?;
        return Ok(Settled::Unknown);
    };
    let refuse = |why: String| Ok(Settled::Refused(why));
    let Some(batch_no) = batch_no.filter(|_| status == "submitted") else {
        tx.rollback().await?;
        return refuse(format!(
            "it is {status}; only a submitted refund whose item Alipay left open can be settled"
        ));
    };
    let open: Option<Option<String>> = sqlx::query_scalar(
        "SELECT result_code FROM batch_items WHERE batch_no = $1 AND refund_id = $2 FOR UPDATE",
    )
    .bind(&batch_no)
    .bind(refund_id)
    .fetch_optional(&mut *tx)
    .await?;
    if !matches!(open, Some(None)) {
        tx.rollback().await?;
        return refuse(format!("its item in batch {batch_no} is already settled"));
    }
    let actor = Actor::Operator(by.to_owned());
    let note = format!("settled by hand: {reason}");
    let (code, moved) = by_hand(&mut tx, refund_id, Some(&batch_no), how, &note, &actor).await?;
    if moved != 1 {
        tx.rollback().await?;
        return refuse("it changed while being settled; nothing was done".into());
    }
    sqlx::query(
        "UPDATE batch_items SET result_code = $3, open_code = NULL, open_class = NULL,
                open_detail = $4
         WHERE batch_no = $1 AND refund_id = $2 AND result_code IS NULL",
    )
    .bind(&batch_no)
    .bind(refund_id)
    .bind(code)
    .bind(format!("{actor}: {reason}"))
    .execute(&mut *tx)
    .await?;
    let completed = complete_if_settled(&mut tx, &batch_no).await?;
    tx.commit().await?;
    Ok(Settled::Done {
        batch_no,
        completed,
    })
}

/// A submitted refund settled by a person: succeeded, or failed with the
/// code given; `batch_no` fences a mapi refund to its batch (`None` on
/// OpenAPI). The code written and how many refunds moved (0 or 1).
pub(super) async fn by_hand<'h>(
    tx: &mut PgConnection,
    refund_id: &str,
    batch_no: Option<&str>,
    how: &'h Settlement,
    note: &str,
    actor: &Actor,
) -> Result<(&'h str, u64), sqlx::Error> {
    Ok(match how {
        Settlement::Succeeded => {
            let ids = [refund_id.to_owned()];
            let source = Source::Operator;
            let n = transitions::succeed(tx, batch_no, &ids, source, actor, Some(note)).await?;
            ("SUCCESS", n)
        }
        Settlement::Failed(code) => {
            let ids = [refund_id];
            let failure = Failure {
                refund_ids: &ids,
                from: RefundStatus::Submitted,
                batch_no,
                code,
                message: note,
                source: Source::Operator,
                actor,
            };
            (code.as_str(), transitions::fail(tx, &failure).await?)
        }
    })
}

/// What became of a `batch release`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Released {
    /// The batch is `rejected`; this many refunds are pending again.
    Done {
        refunds: u64,
    },
    Refused(String),
    Unknown,
}

/// Sends a held batch's refunds back to pending. Only a batch held after an
/// `F` (nothing of it accepted) with no earlier unknown outcome qualifies:
/// after an unknown outcome Alipay may hold it, and only the query can say.
pub async fn release(
    pool: &PgPool,
    batch_no: &str,
    reason: &str,
    by: &str,
) -> Result<Released, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let row: Option<(String, bool, bool, bool)> = sqlx::query_as(
        "SELECT status, held_at IS NOT NULL, outcome_unknown, attempt_started_at IS NOT NULL
         FROM batches WHERE batch_no = $1 FOR UPDATE",
    )
    .bind(batch_no)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((status, held, unknown, sending)) = row else {
        tx.rollback().await?;
        return Ok(Released::Unknown);
    };
    let why = if !matches!(status.as_str(), "created" | "submitting") || !held {
        Some(format!(
            "it is {status} and not held; only a held batch can be released"
        ))
    } else if unknown {
        Some("an earlier attempt's outcome is unknown, so Alipay may hold it; the submitter queries it instead".into())
    } else if sending {
        // Being sent now, or a sender died mid-attempt: Alipay may have it.
        Some("an attempt to send it is under way or was cut off; try again once the submitter has recorded it".into())
    } else {
        None
    };
    if let Some(why) = why {
        tx.rollback().await?;
        return Ok(Released::Refused(why));
    }
    let actor = Actor::Operator(by.to_owned());
    sqlx::query(
        "UPDATE batches SET status = 'rejected', completed_at = now(), updated_at = now(),
                last_code = COALESCE(last_code, 'RELEASED')
         WHERE batch_no = $1",
    )
    .bind(batch_no)
    .execute(&mut *tx)
    .await?;
    let note = format!("held batch released by hand: {reason}");
    let moved = transitions::batch_to_pending(&mut tx, batch_no, None, None, &actor, &note).await?;
    tx.commit().await?;
    Ok(Released::Done { refunds: moved })
}
