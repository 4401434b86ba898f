//! SQL of batch formation: claiming pending refunds, the per-trade refund
//! count, the `batch_no` serial, and writing a batch with its items (its
//! refunds move in through [`transitions::into_batch`]). Every function runs
//! inside the caller's transaction.
//!
//! The per-trade queries read `CROSS JOIN LATERAL (… OFFSET 0)`: the
//! `OFFSET 0` keeps the planner from flattening the subquery into a join, so
//! it runs once per trade on the trade index whatever the statistics say.
//! Without it, on tables grown fast since their last `ANALYZE` (or never
//! analyzed: the CI machine runs PostgreSQL with autovacuum off), the planner
//! looped over every batch for every trade or hashed whole tables: 60 ms to
//! 1.2 s a step, growing with history.

use std::collections::HashMap;

use sqlx::PgConnection;

use super::transitions;
use crate::domain::RefundStatus;
use crate::domain::actor::Actor;
use crate::domain::batch::{BatchItem, Candidate};

/// Partners with pending refunds, the one waiting longest first.
pub async fn partners_by_oldest_pending(
    conn: &mut PgConnection,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT partner FROM pending_partners ORDER BY oldest")
        .fetch_all(conn)
        .await
}

/// Up to `limit` pending refunds of one partner, oldest first, read without
/// locking: only the ones picked for a batch are locked ([`lock_pending`]), so
/// a step writes one row lock per batched refund rather than per refund
/// looked at. Whether a trade is busy is asked separately ([`repeat_trades`]):
/// as one anti-join, a planner with stale statistics probed every pending row
/// against every unfinished one, and a batch of 20 000 took minutes.
pub async fn pending_window(
    conn: &mut PgConnection,
    partner: &str,
    limit: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Candidate>, sqlx::Error> {
    // A refund sent back for a code that can pass waits until `not_before`.
    let rows: Vec<(String, String, i64, String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT refund_id, trade_no, amount_fen, reason, received_at FROM refunds
         WHERE status = 'pending' AND partner = $1 AND (not_before IS NULL OR not_before <= $3)
         ORDER BY received_at LIMIT $2",
    )
    .bind(partner)
    .bind(limit)
    .bind(now)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(refund_id, trade_no, amount_fen, reason, received_at)| Candidate {
                refund_id,
                trade_no,
                amount_fen,
                reason,
                received_at,
            },
        )
        .collect())
}

/// Locks those of these refunds that are still pending and not locked by
/// another batcher (`SKIP LOCKED`: two batchers never take the same refund;
/// under the lock the status is read again), and returns their ids.
pub async fn lock_pending(
    conn: &mut PgConnection,
    refund_ids: &[&str],
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT refund_id FROM refunds WHERE refund_id = ANY($1::text[]) AND status = 'pending'
         FOR UPDATE SKIP LOCKED",
    )
    .bind(refund_ids)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}

/// The trades among these that have more than one refund, each with whether
/// one of them is batched or submitted (the trade is busy). A trade with one
/// refund, the one pending, is neither busy nor near Alipay's 99-refund limit,
/// so the batcher asks [`accepted_refund_counts`] only about the others.
/// One index probe per trade (see the module notes): as `trade_no = ANY(…)`
/// the planner filtered every unfinished refund against the whole array
/// (480 ms with 10 000 in flight), and as a plain join it hashed the whole
/// table on never-analyzed statistics (0.5–2 s a step at a million refunds).
pub async fn repeat_trades(
    conn: &mut PgConnection,
    partner: &str,
    trades: &[&str],
) -> Result<HashMap<String, bool>, sqlx::Error> {
    let rows: Vec<(String, bool)> = sqlx::query_as(
        "SELECT t.trade_no, bool_or(r.status IN ('batched', 'submitted'))
         FROM unnest($2::text[]) AS t(trade_no)
         CROSS JOIN LATERAL (
             SELECT status FROM refunds WHERE partner = $1 AND trade_no = t.trade_no OFFSET 0
         ) r
         GROUP BY t.trade_no HAVING count(*) > 1",
    )
    .bind(partner)
    .bind(trades)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Per trade, how many of its refunds were in batches Alipay accepted,
/// whatever their item result (invariant 5b); trades with none are left out.
/// The items are found by trade first (see the module notes), then their
/// batches by primary key.
pub async fn accepted_refund_counts(
    conn: &mut PgConnection,
    partner: &str,
    trades: &[&str],
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "WITH items AS MATERIALIZED (
             SELECT t.trade_no, bi.batch_no FROM unnest($2::text[]) AS t(trade_no)
             CROSS JOIN LATERAL (
                 SELECT batch_no FROM batch_items WHERE trade_no = t.trade_no OFFSET 0
             ) bi
         )
         SELECT i.trade_no, count(*) FROM items i JOIN batches b ON b.batch_no = i.batch_no
         WHERE b.partner = $1 AND b.accepted_at IS NOT NULL
         GROUP BY i.trade_no",
    )
    .bind(partner)
    .bind(trades)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}

/// The next serial of the one `batch_no` sequence.
pub async fn next_serial(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT nextval('batch_serial')")
        .fetch_one(conn)
        .await
}

/// A batch about to be written: its bytes are fixed here for every retry.
pub struct NewBatch<'a> {
    pub batch_no: &'a str,
    pub partner: &'a str,
    pub refund_date: &'a str,
    pub detail_data: &'a str,
    pub refund_ids: &'a [&'a str],
    pub items: &'a [BatchItem],
    pub split_from: Option<&'a str>,
    /// `pending` for a new batch, `batched` for the halves of a split one.
    pub from_status: RefundStatus,
    /// Who forms it: the batcher, or the role that splits or renumbers.
    pub actor: &'a Actor,
}

/// Writes the batch and its items and moves its refunds to `batched` (from
/// `pending`, or from an earlier batch when it is split), with history rows.
/// The partial unique index on unfinished refunds per trade backs the rule
/// that a trade is in one live batch only.
pub async fn insert_batch(conn: &mut PgConnection, b: &NewBatch<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO batches (batch_no, partner, refund_date, batch_num, detail_data, split_from)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(b.batch_no)
    .bind(b.partner)
    .bind(b.refund_date)
    .bind(b.items.len() as i32)
    .bind(b.detail_data)
    .bind(b.split_from)
    .execute(&mut *conn)
    .await?;
    let trades: Vec<&str> = b.items.iter().map(|i| i.trade_no.as_str()).collect();
    let amounts: Vec<i64> = b.items.iter().map(|i| i.amount_fen).collect();
    let reasons: Vec<&str> = b.items.iter().map(|i| i.reason.as_str()).collect();
    sqlx::query(
        "INSERT INTO batch_items (batch_no, refund_id, trade_no, amount_fen, reason)
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int8[], $5::text[])",
    )
    .bind(b.batch_no)
    .bind(b.refund_ids)
    .bind(&trades)
    .bind(&amounts)
    .bind(&reasons)
    .execute(&mut *conn)
    .await?;
    // Fenced: only from the state (and, for a split, the batch) they are in.
    let moved = transitions::into_batch(
        conn,
        b.batch_no,
        b.refund_ids,
        b.from_status,
        b.split_from,
        b.actor,
    )
    .await?;
    if moved != b.items.len() as u64 {
        return Err(sqlx::Error::Protocol(format!(
            "batch {}: {} of {} refunds moved",
            b.batch_no,
            moved,
            b.items.len()
        )));
    }
    Ok(())
}
