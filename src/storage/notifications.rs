//! SQL of notifications: every one kept raw with its verdict, and applying a
//! genuine `batch_refund_notify` (or a query answer) in one transaction of
//! set-based statements (one per outcome, never one per item). Every refund
//! write is fenced by the batch: a refund moves only from `submitted` in this
//! batch.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};

use super::rejected::{self, RejectedAlarm};
use super::transitions::{self, Failure, Later};
use crate::domain::actor::ReportSource;
use crate::domain::item_outcome::{ItemRetry, Open};
use crate::domain::settle::{self, Disagreement, Opened, Planned, Reported, SentItem};
use crate::domain::{BatchStatus, RefundStatus};

/// A received notification as stored for audit.
#[derive(Clone)]
pub struct Received<'a> {
    /// `batch_refund`, `dback` or `query`.
    pub kind: &'static str,
    pub notify_id: Option<String>,
    pub batch_no: Option<String>,
    pub partner: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub raw_body: &'a [u8],
    pub verdict: &'static str,
    pub detail: Option<String>,
}

impl<'a> Received<'a> {
    /// A notification just received: nothing known of it yet.
    pub fn new(kind: &'static str, content_type: Option<&'a str>, raw_body: &'a [u8]) -> Self {
        Self {
            kind,
            notify_id: None,
            batch_no: None,
            partner: None,
            content_type,
            raw_body,
            verdict: "malformed",
            detail: None,
        }
    }
}

/// Stores a notification that changes nothing (forged, unknown, repeated…).
pub async fn record(pool: &PgPool, r: &Received<'_>) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    insert(&mut conn, r).await
}

pub(crate) async fn insert(conn: &mut PgConnection, r: &Received<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO notifications (kind, notify_id, batch_no, partner, content_type, raw_body, verdict, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(r.kind)
    .bind(&r.notify_id)
    .bind(&r.batch_no)
    .bind(r.partner)
    .bind(r.content_type)
    .bind(r.raw_body)
    .bind(r.verdict)
    .bind(&r.detail)
    .execute(conn)
    .await?;
    Ok(())
}

/// The batch a notification names: its partner and status.
pub async fn batch(pool: &PgPool, batch_no: &str) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT partner, status FROM batches WHERE batch_no = $1")
        .bind(batch_no)
        .fetch_optional(pool)
        .await
}

/// Whether this `notify_id` was applied before.
pub async fn applied_before(
    pool: &PgPool,
    kind: &str,
    notify_id: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM notifications WHERE kind = $1 AND notify_id = $2 AND verdict IN ('applied', 'applied_to_rejected'))")
        .bind(kind)
        .bind(notify_id)
        .fetch_one(pool)
        .await
}

/// What applying did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    pub succeeded: u64,
    pub failed: u64,
    pub returned_to_pending: u64,
    /// Items left open, by refund, with why.
    pub opened: Vec<(String, Open)>,
    /// Items settled before that this report contradicts (an alarm).
    pub disagreements: Vec<Disagreement>,
    /// Items whose trade the batch does not hold (or named twice).
    pub strangers: Vec<String>,
    pub batch_completed: bool,
    /// Someone applied the same notify_id first (concurrent delivery).
    pub was_repeat: bool,
    /// The batch had been rejected: what the alarm found.
    pub rejected_alarm: Option<RejectedAlarm>,
}

/// Applies a report on one batch in one transaction, with the raw
/// notification stored as `applied`. A report proves acceptance, so a batch
/// the submitter has not recorded yet is first marked submitted. Items are
/// decided by [`settle::plan`]; the batch is `completed` once no item is open.
pub async fn apply(
    pool: &PgPool,
    r: &Received<'_>,
    batch_no: &str,
    reported: &[Reported],
    source: ReportSource,
    retry: ItemRetry,
) -> Result<Applied, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let was_rejected =
        rejected::status_for_update(&mut tx, batch_no).await? == Some(BatchStatus::Rejected);
    let mut r = r.clone();
    if was_rejected {
        r.verdict = "applied_to_rejected";
    }
    if let Err(e) = insert(&mut tx, &r).await {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            tx.rollback().await?;
            return Ok(Applied {
                was_repeat: true,
                ..Default::default()
            });
        }
        return Err(e);
    }
    let rejected_alarm = if was_rejected {
        Some(rejected::reopen(&mut tx, batch_no, reported, &source.actor()).await?)
    } else {
        None
    };
    mark_accepted(&mut tx, batch_no, source).await?;
    let sent = items_for_update(&mut tx, batch_no).await?;
    let plan = settle::plan(&sent, reported, retry);
    let mut out = Applied {
        strangers: plan.strangers.clone(),
        disagreements: plan.disagreements.clone(),
        opened: plan
            .open
            .iter()
            .map(|o| (o.item.refund_id.clone(), o.why))
            .collect(),
        rejected_alarm,
        ..Applied::default()
    };
    let settled: Vec<&Planned> = plan
        .succeed
        .iter()
        .chain(&plan.fail)
        .chain(plan.retry.iter().map(|(p, _)| p))
        .collect();
    record_results(&mut tx, batch_no, &settled).await?;
    record_open(&mut tx, batch_no, &plan.open).await?;
    let ids: Vec<String> = plan.succeed.iter().map(|p| p.refund_id.clone()).collect();
    let actor = source.actor();
    out.succeeded =
        transitions::succeed(&mut tx, Some(batch_no), &ids, source.source(), &actor, None).await?;
    out.returned_to_pending = back_to_pending(&mut tx, batch_no, &plan.retry, source).await?;
    out.failed = fail_by_code(&mut tx, batch_no, &plan.fail, source).await?;
    out.batch_completed = complete_if_settled(&mut tx, batch_no).await?;
    tx.commit().await?;
    Ok(out)
}

/// Fails the refunds Alipay reported failed, one statement per code.
async fn fail_by_code(
    tx: &mut PgConnection,
    batch_no: &str,
    failed: &[Planned],
    source: ReportSource,
) -> Result<u64, sqlx::Error> {
    let actor = source.actor();
    let mut codes: Vec<&str> = failed.iter().map(|p| p.code.as_str()).collect();
    codes.sort_unstable();
    codes.dedup();
    let mut count = 0;
    for code in codes {
        let ids: Vec<&str> = failed
            .iter()
            .filter(|p| p.code == code)
            .map(|p| p.refund_id.as_str())
            .collect();
        let failure = Failure {
            refund_ids: &ids,
            from: RefundStatus::Submitted,
            batch_no: Some(batch_no),
            code,
            message: "Alipay reported the refund failed",
            source: source.source(),
            actor: &actor,
        };
        count += transitions::fail(tx, &failure).await?;
    }
    Ok(count)
}

/// A report proves Alipay holds the batch: `submitted` (with `accepted_at`)
/// if not yet, and its refunds with it.
async fn mark_accepted(
    conn: &mut PgConnection,
    batch_no: &str,
    source: ReportSource,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE batches SET status = 'submitted', accepted_at = COALESCE(accepted_at, now()),
                submitted_at = COALESCE(submitted_at, now()), held_at = NULL, updated_at = now()
         WHERE batch_no = $1 AND status IN ('created', 'submitting', 'awaiting_operator')",
    )
    .bind(batch_no)
    .execute(&mut *conn)
    .await?;
    let note = "accepted, as Alipay's report shows";
    transitions::accept_batch(conn, batch_no, None, &source.actor(), Some(note)).await?;
    Ok(())
}

/// The batch's items with their refunds' retry counts, locked for this
/// transaction so two reports on one batch are applied one after the other.
async fn items_for_update(
    conn: &mut PgConnection,
    batch_no: &str,
) -> Result<Vec<SentItem>, sqlx::Error> {
    let rows: Vec<(String, String, i64, Option<String>, i32)> = sqlx::query_as(
        "SELECT bi.refund_id, bi.trade_no, bi.amount_fen, bi.result_code, r.item_retries
         FROM batch_items bi JOIN refunds r ON r.refund_id = bi.refund_id
         WHERE bi.batch_no = $1 ORDER BY bi.refund_id FOR UPDATE OF bi",
    )
    .bind(batch_no)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(refund_id, trade_no, amount_fen, result_code, retries)| SentItem {
                refund_id,
                trade_no,
                amount_fen,
                result_code,
                retries,
            },
        )
        .collect())
}

/// The items a report settles: their code and raw text, open no more.
async fn record_results(
    conn: &mut PgConnection,
    batch_no: &str,
    items: &[&Planned],
) -> Result<(), sqlx::Error> {
    if items.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = items.iter().map(|p| p.refund_id.as_str()).collect();
    let codes: Vec<&str> = items.iter().map(|p| p.code.as_str()).collect();
    let raws: Vec<&str> = items.iter().map(|p| p.raw.as_str()).collect();
    sqlx::query(
        "UPDATE batch_items bi SET result_code = i.code, result_raw = i.raw,
                open_code = NULL, open_class = NULL, open_detail = NULL
         FROM unnest($2::text[], $3::text[], $4::text[]) AS i(refund_id, code, raw)
         WHERE bi.batch_no = $1 AND bi.refund_id = i.refund_id AND bi.result_code IS NULL",
    )
    .bind(batch_no)
    .bind(&ids)
    .bind(&codes)
    .bind(&raws)
    .execute(conn)
    .await?;
    Ok(())
}

/// Items left open: the latest code, why, and since when.
async fn record_open(
    conn: &mut PgConnection,
    batch_no: &str,
    items: &[Opened],
) -> Result<(), sqlx::Error> {
    if items.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = items.iter().map(|o| o.item.refund_id.as_str()).collect();
    let codes: Vec<&str> = items.iter().map(|o| o.item.code.as_str()).collect();
    let raws: Vec<&str> = items.iter().map(|o| o.item.raw.as_str()).collect();
    let classes: Vec<&str> = items.iter().map(|o| o.why.as_str()).collect();
    let details: Vec<&str> = items.iter().map(|o| o.detail.as_str()).collect();
    sqlx::query(
        "UPDATE batch_items bi SET open_code = i.code, result_raw = i.raw, open_class = i.class,
                open_detail = i.detail, open_since = COALESCE(bi.open_since, now())
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
              AS i(refund_id, code, raw, class, detail)
         WHERE bi.batch_no = $1 AND bi.refund_id = i.refund_id AND bi.result_code IS NULL",
    )
    .bind(batch_no)
    .bind(&ids)
    .bind(&codes)
    .bind(&raws)
    .bind(&classes)
    .bind(&details)
    .execute(conn)
    .await?;
    Ok(())
}

/// `completed` once every item has its result.
pub(crate) async fn complete_if_settled(
    conn: &mut PgConnection,
    batch_no: &str,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE batches SET status = 'completed', completed_at = now(), updated_at = now()
         WHERE batch_no = $1 AND status = 'submitted'
           AND NOT EXISTS (SELECT 1 FROM batch_items WHERE batch_no = $1 AND result_code IS NULL)",
    )
    .bind(batch_no)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// A code that can pass: back to pending, counted, not before its delay.
async fn back_to_pending(
    conn: &mut PgConnection,
    batch_no: &str,
    items: &[(Planned, Duration)],
    source: ReportSource,
) -> Result<u64, sqlx::Error> {
    let later: Vec<Later> = items
        .iter()
        .map(|(p, wait)| Later {
            refund_id: &p.refund_id,
            code: &p.code,
            wait: *wait,
        })
        .collect();
    let actor = source.actor();
    transitions::pending_later(
        conn,
        Some(batch_no),
        RefundStatus::Submitted,
        &later,
        &actor,
        None,
    )
    .await
}
