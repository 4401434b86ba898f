//! SQL of the rejected-batch alarm (architecture.md): a genuine result for a
//! batch we had marked `rejected` proves the rejection wrong. Runs inside the
//! transaction that applies the result, before the results are planned.
//!
//! Invariants: the batch becomes `submitted` with `accepted_at` (so the
//! 99-refunds count sees it); a refund of it that was not sent again (still
//! pending, or waiting in a batch never sent) is taken back into it, and its
//! never-sent batch is retired with its other refunds back to pending (a
//! batch's items never change); a refund already sent again, or settled
//! elsewhere, is never touched: it is recorded as a suspect when the result
//! could mean money moved.

use sqlx::PgConnection;

use super::transitions;
use crate::domain::actor::Actor;
use crate::domain::rejected::{Fate, Standing, fate};
use crate::domain::settle::Reported;
use crate::domain::{BatchStatus, RefundStatus};

/// What the alarm found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RejectedAlarm {
    /// Refunds taken back into the batch (they will be settled from it).
    pub pulled_back: Vec<String>,
    /// Batches retired because a refund was taken back out of them unsent.
    pub retired: Vec<String>,
    /// Refunds sent again or settled elsewhere, recorded as suspects of a
    /// double payment: (refund, the batch it is in now).
    pub suspects: Vec<(String, Option<String>)>,
}

/// An item's refund where it stands now, and the batch it is in.
#[derive(sqlx::FromRow)]
struct ItemState {
    refund_id: String,
    trade_no: String,
    status: String,
    current: Option<String>,
    other_status: Option<String>,
    other_attempts: Option<i32>,
}

/// The batch's status, locked for this transaction.
pub async fn status_for_update(
    conn: &mut PgConnection,
    batch_no: &str,
) -> Result<Option<BatchStatus>, sqlx::Error> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM batches WHERE batch_no = $1 FOR UPDATE")
            .bind(batch_no)
            .fetch_optional(conn)
            .await?;
    Ok(status.as_deref().and_then(BatchStatus::parse))
}

/// Reopens a rejected batch that Alipay shows it holds; `reported` is what
/// Alipay said of its items, `actor` who applies it.
pub async fn reopen(
    conn: &mut PgConnection,
    batch_no: &str,
    reported: &[Reported],
    actor: &Actor,
) -> Result<RejectedAlarm, sqlx::Error> {
    sqlx::query(
        "UPDATE batches SET status = 'submitted', accepted_at = COALESCE(accepted_at, now()),
                submitted_at = COALESCE(submitted_at, now()), completed_at = NULL, held_at = NULL,
                attempt_started_at = NULL, updated_at = now()
         WHERE batch_no = $1 AND status = 'rejected'",
    )
    .bind(batch_no)
    .execute(&mut *conn)
    .await?;
    // Each item's refund where it stands now, and the batch it is in.
    let rows: Vec<ItemState> = sqlx::query_as(
        "SELECT r.refund_id, bi.trade_no, refund_status(r.status, r.batch_no) AS status,
                r.batch_no AS current, o.status AS other_status,
                o.attempts AS other_attempts
         FROM batch_items bi JOIN refunds r ON r.refund_id = bi.refund_id
         LEFT JOIN batches o ON o.batch_no = r.batch_no AND r.batch_no <> $1
         WHERE bi.batch_no = $1 ORDER BY r.refund_id FOR UPDATE OF r",
    )
    .bind(batch_no)
    .fetch_all(&mut *conn)
    .await?;
    let mut alarm = RejectedAlarm::default();
    for ItemState {
        refund_id,
        trade_no,
        status,
        current,
        other_status,
        other_attempts,
    } in rows
    {
        let standing = Standing {
            status: RefundStatus::parse(&status).ok_or_else(|| {
                sqlx::Error::Protocol(format!("refund {refund_id} has unknown status {status}"))
            })?,
            here: current.as_deref() == Some(batch_no),
            in_unsent_batch: other_status.as_deref() == Some("created")
                && other_attempts == Some(0),
            reported: reported
                .iter()
                .find(|r| r.trade_no == trade_no)
                .map(|r| r.code.as_str()),
        };
        let mut what = fate(&standing);
        if what == Fate::PullFromUnsent {
            let other = current.as_deref().unwrap_or_default();
            if !retire_unsent(conn, other, &refund_id, actor).await? {
                // Its batch was claimed for sending since it was read:
                // Alipay may hold the refund there too.
                what = fate(&Standing {
                    in_unsent_batch: false,
                    ..standing
                });
            }
        }
        match what {
            Fate::TakeBack => {
                let from = RefundStatus::Pending;
                transitions::take_back(conn, batch_no, &refund_id, from, None, actor).await?;
                alarm.pulled_back.push(refund_id);
            }
            Fate::PullFromUnsent => {
                let from = RefundStatus::Batched;
                let other = current.clone().unwrap_or_default();
                transitions::take_back(conn, batch_no, &refund_id, from, Some(&other), actor)
                    .await?;
                alarm.retired.push(other);
                alarm.pulled_back.push(refund_id);
            }
            Fate::Leave => {}
            Fate::Suspect { code } => {
                let suspect = Suspect {
                    batch_no,
                    refund_id: &refund_id,
                    current: current.as_deref(),
                    status: &status,
                    code: &code,
                };
                suspect.record(conn).await?;
                alarm.suspects.push((refund_id, current));
            }
        }
    }
    Ok(alarm)
}

/// A refund Alipay reported on in a batch we rejected, while the refund
/// already stands elsewhere: it may have been paid twice.
struct Suspect<'s> {
    batch_no: &'s str,
    refund_id: &'s str,
    current: Option<&'s str>,
    status: &'s str,
    code: &'s str,
}

impl Suspect<'_> {
    /// Kept for a person, once per batch and refund.
    async fn record(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let detail = format!(
            "Alipay reported {} for this batch after we rejected it; the refund is {} in {}",
            self.code,
            self.status,
            self.current.unwrap_or("no batch")
        );
        sqlx::query(
            "INSERT INTO double_payment_suspects (batch_no, refund_id, other_batch, code, detail)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (batch_no, refund_id) DO NOTHING",
        )
        .bind(self.batch_no)
        .bind(self.refund_id)
        .bind(self.current)
        .bind(self.code)
        .bind(&detail)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// A batch never sent loses one refund to the batch Alipay holds: it is
/// retired and its other refunds go back to pending (its items never change).
/// `false`, changing nothing, when the batch is no longer unsent (a
/// submitter claimed it since it was read).
async fn retire_unsent(
    conn: &mut PgConnection,
    other: &str,
    refund_id: &str,
    actor: &Actor,
) -> Result<bool, sqlx::Error> {
    let retired = sqlx::query(
        "UPDATE batches SET status = 'rejected', last_code = 'PULLED_BACK', completed_at = now(),
                updated_at = now()
         WHERE batch_no = $1 AND status = 'created' AND attempts = 0",
    )
    .bind(other)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if retired == 0 {
        return Ok(false);
    }
    let note =
        "batch retired unsent: one of its refunds was found held by Alipay in an earlier batch";
    transitions::batch_to_pending(conn, other, Some(refund_id), None, actor, note).await?;
    Ok(true)
}
