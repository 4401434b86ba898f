//! SQL of notifications: every one kept raw with its verdict, and applying a
//! genuine `batch_refund_notify` in one transaction of set-based statements
//! (one per outcome, never one per item).

use sqlx::{PgConnection, PgPool};

use crate::alipay::wire::result_details::ResultItem;
use crate::storage::batches::{Failure, fail_refunds};

/// After this many `BATCH_REFUND_LOCK_ERROR` returns a refund fails for good.
pub const MAX_LOCK_ERROR_RETURNS: i32 = 5;

/// A received notification as stored for audit.
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
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM notifications WHERE kind = $1 AND notify_id = $2 AND verdict = 'applied')")
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
    /// Items whose trade the batch does not hold.
    pub strangers: Vec<String>,
    pub batch_completed: bool,
    /// Someone applied the same notify_id first (concurrent delivery).
    pub was_repeat: bool,
}

/// Applies the results of one batch in one transaction, with the raw
/// notification stored as `applied`. A notification proves acceptance, so a
/// batch the submitter has not recorded yet is first marked submitted.
/// `source` is the result events' `source`: `notify`, or `query` when the
/// reconciler found the results.
pub async fn apply(
    pool: &PgPool,
    r: &Received<'_>,
    batch_no: &str,
    items: &[ResultItem],
    source: &str,
) -> Result<Applied, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut out = Applied::default();
    if let Err(e) = insert(&mut tx, r).await {
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
    sqlx::query(
        "UPDATE batches SET status = 'submitted', accepted_at = COALESCE(accepted_at, now()),
                submitted_at = COALESCE(submitted_at, now()), updated_at = now()
         WHERE batch_no = $1 AND status IN ('created', 'submitting', 'awaiting_operator')",
    )
    .bind(batch_no)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "WITH moved AS (UPDATE refunds SET status = 'submitted', updated_at = now()
                        WHERE batch_no = $1 AND status = 'batched' RETURNING refund_id)
         INSERT INTO refund_history (refund_id, from_status, to_status, batch_no, actor, note)
         SELECT refund_id, 'batched', 'submitted', $1, 'callback', 'accepted, as the notification shows' FROM moved",
    )
    .bind(batch_no)
    .execute(&mut *tx)
    .await?;

    let trades: Vec<&str> = items.iter().map(|i| i.trade_no.as_str()).collect();
    let codes: Vec<&str> = items.iter().map(|i| i.code.as_str()).collect();
    let raws: Vec<String> = items
        .iter()
        .map(|i| format!("{}^{}^{}{}", i.trade_no, i.amount, i.code, i.tail))
        .collect();
    let matched: Vec<(String, String, String)> = sqlx::query_as(
        "UPDATE batch_items bi SET result_code = i.code, result_raw = i.raw
         FROM unnest($2::text[], $3::text[], $4::text[]) AS i(trade_no, code, raw)
         WHERE bi.batch_no = $1 AND bi.trade_no = i.trade_no AND bi.result_code IS NULL
         RETURNING bi.refund_id, bi.trade_no, i.code",
    )
    .bind(batch_no)
    .bind(&trades)
    .bind(&codes)
    .bind(&raws)
    .fetch_all(&mut *tx)
    .await?;
    out.strangers = items
        .iter()
        .filter(|i| !matched.iter().any(|(_, t, _)| *t == i.trade_no))
        .map(|i| i.trade_no.clone())
        .collect();

    let succeeded: Vec<&str> = matched
        .iter()
        .filter(|(_, _, c)| c == "SUCCESS")
        .map(|(id, _, _)| id.as_str())
        .collect();
    out.succeeded = succeed(&mut tx, &succeeded, source).await?;
    let locked: Vec<&str> = matched
        .iter()
        .filter(|(_, _, c)| c == "BATCH_REFUND_LOCK_ERROR")
        .map(|(id, _, _)| id.as_str())
        .collect();
    out.returned_to_pending = back_to_pending(&mut tx, batch_no, &locked).await?;
    let mut codes: Vec<&str> = matched
        .iter()
        .map(|(_, _, c)| c.as_str())
        .filter(|c| *c != "SUCCESS")
        .collect();
    codes.sort_unstable();
    codes.dedup();
    for code in codes {
        // Lock errors past the limit are still `submitted` here: they fail too.
        let ids: Vec<&str> = matched
            .iter()
            .filter(|(_, _, c)| c == code)
            .map(|(id, _, _)| id.as_str())
            .collect();
        let failure = Failure {
            refund_ids: &ids,
            from: "submitted",
            code,
            message: "Alipay reported the refund failed",
            source,
            actor: "callback",
        };
        out.failed += fail_refunds(&mut tx, &failure).await?;
    }
    out.batch_completed = sqlx::query(
        "UPDATE batches SET status = 'completed', completed_at = now(), updated_at = now()
         WHERE batch_no = $1 AND status <> 'completed'
           AND NOT EXISTS (SELECT 1 FROM batch_items WHERE batch_no = $1 AND result_code IS NULL)",
    )
    .bind(batch_no)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    tx.commit().await?;
    crate::telemetry::refunds_completed("succeeded", out.succeeded);
    crate::telemetry::refunds_completed("failed", out.failed);
    Ok(out)
}

async fn succeed(conn: &mut PgConnection, ids: &[&str], source: &str) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "WITH done AS (
             UPDATE refunds SET status = 'succeeded', result_code = 'SUCCESS', result_message = 'refunded',
                    result_source = $2, finished_at = now(), updated_at = now()
             WHERE refund_id = ANY($1::text[]) AND status = 'submitted'
             RETURNING *
         ), history AS (
             INSERT INTO refund_history (refund_id, from_status, to_status, batch_no, code, actor)
             SELECT refund_id, 'submitted', 'succeeded', batch_no, 'SUCCESS', 'callback' FROM done
         )
         INSERT INTO outbox (event_id, refund_id, round, routing_key, body)
         SELECT e.id, d.refund_id, d.operator_retries, 'refund.succeeded',
                refund_event_body(d, e.id, 'refund.succeeded', 'succeeded', 'SUCCESS', 'refunded', $2)
         FROM done d CROSS JOIN LATERAL (SELECT gen_random_uuid() AS id, d.refund_id) e",
    )
    .bind(ids)
    .bind(source)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// `BATCH_REFUND_LOCK_ERROR`: back to pending for a later batch, counted;
/// past [`MAX_LOCK_ERROR_RETURNS`] the refund stays and fails with the code.
async fn back_to_pending(
    conn: &mut PgConnection,
    batch_no: &str,
    ids: &[&str],
) -> Result<u64, sqlx::Error> {
    let moved = sqlx::query(
        "WITH moved AS (
             UPDATE refunds SET status = 'pending', lock_error_returns = lock_error_returns + 1, updated_at = now()
             WHERE refund_id = ANY($1::text[]) AND status = 'submitted' AND lock_error_returns < $3
             RETURNING refund_id
         )
         INSERT INTO refund_history (refund_id, from_status, to_status, batch_no, code, actor, note)
         SELECT refund_id, 'submitted', 'pending', $2, 'BATCH_REFUND_LOCK_ERROR', 'callback',
                'another refund of the trade was in progress; back to pending for a later batch'
         FROM moved",
    )
    .bind(ids)
    .bind(batch_no)
    .bind(MAX_LOCK_ERROR_RETURNS)
    .execute(conn)
    .await?;
    Ok(moved.rows_affected())
}
