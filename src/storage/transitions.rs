//! Every status change of a refund after intake (architecture.md, "States"),
//! each one statement that also writes the history row with its actor and,
//! for a terminal state, the result event ([`super::result_event`]). Each
//! runs in the caller's transaction (the 充退 event, which changes no status,
//! is `result_event::bank_returned`), so a change commits with whatever
//! caused it.
//!
//! History: a statement that moves refunds of a batch writes one
//! `refund_history_sets` row per batch naming them all (the same facts as a
//! row each, at a fraction of the writes); a move of one refund, or of
//! refunds in no batch (the OpenAPI channel), writes `refund_history` rows.
//! [`super::refunds`] reads both, in the order of their shared id sequence.
//!
//! Invariant (fencing, 5a): a refund moves only from the status it is in
//! and, where a batch is named, only while that batch is its current one; a
//! write that finds it elsewhere changes nothing, and the count returned says
//! so.
//!
//! Alipay's acceptance is written once, on the batch (migration 30): a
//! refund stored `batched` whose current batch has `accepted_at` is
//! `submitted` ([`in_status!`] is that reading, `refund_status()` in SQL the
//! readers'). So a move from `batched` first locks the batch (`FOR SHARE`,
//! which waits out an acceptance being written) and moves nothing once it is
//! accepted: a refund Alipay holds never goes back to pending; a move from
//! `submitted` takes both stored forms.
//!
//! Sets, never loops: a batch of a thousand is one statement. A
//! batch's refunds are found through its items (`batch_items`' key), not
//! an index of `refunds` on `batch_no`, which every status change would
//! have to write; as `refund_id = ANY (ARRAY(…))`, an array computed once,
//! so that even on unanalyzed statistics the planner probes the primary key
//! (as `IN (SELECT …)` it scanned every unfinished refund: 94 ms against
//! 2 ms at 400 000 in flight).
//!
//! | from | to | function |
//! |---|---|---|
//! | pending, batched (split) | batched | [`into_batch`] |
//! | batched | submitted (written on the batch) | [`accept_batch`] |
//! | pending, batched elsewhere | submitted | [`take_back`] |
//! | pending (OpenAPI) | submitted | [`start_call`] |
//! | batched | pending | [`batch_to_pending`] |
//! | batched, submitted | pending, not before | [`pending_later`] |
//! | failed | pending | [`reopen_failed`] |
//! | submitted | succeeded | [`succeed`] |
//! | pending, batched, submitted | failed | [`fail`] |

use sqlx::PgConnection;

use super::result_event::{self, insert_result_events};
use crate::domain::RefundStatus;
use crate::domain::actor::{Actor, Source};

/// SQL: refund `r` is in status `$from` (a text parameter or literal) as
/// every reader sees it, and, for `batched` and `submitted`, in the batch
/// `$batch` (a mapi refund's status is only ever judged against the batch
/// that is its current one). `batched` needs a batch: without one it
/// matches nothing.
macro_rules! in_status {
    ($from:literal, $batch:literal) => {
        concat!(
            "CASE ",
            $from,
            "::text
                 WHEN 'submitted' THEN r.status = 'submitted' OR (r.status = 'batched'
                     AND r.batch_no = ",
            $batch,
            "::text
                     AND EXISTS (SELECT 1 FROM batches b WHERE b.batch_no = ",
            $batch,
            "::text
                                 AND b.accepted_at IS NOT NULL))
                 WHEN 'batched' THEN r.status = 'batched' AND r.batch_no = ",
            $batch,
            "::text
                     AND COALESCE((SELECT b.accepted_at IS NULL FROM batches b
                                   WHERE b.batch_no = ",
            $batch,
            "::text FOR SHARE), false)
                 ELSE r.status = ",
            $from,
            "::text
             END"
        )
    };
}

/// A move from `batched` must name the batch (see [`in_status!`]).
fn batch_named(from: RefundStatus, batch_no: Option<&str>) -> Result<(), sqlx::Error> {
    if from == RefundStatus::Batched && batch_no.is_none() {
        return Err(sqlx::Error::Protocol(
            "a move from batched must name the refund's batch".into(),
        ));
    }
    Ok(())
}

/// Moves refunds into `batch_no` (written just before, with its items) from
/// `from` (and, for a split or a renumbered form, from the batch `from_batch`).
pub async fn into_batch(
    conn: &mut PgConnection,
    batch_no: &str,
    refund_ids: &[&str],
    from: RefundStatus,
    from_batch: Option<&str>,
    actor: &Actor,
) -> Result<u64, sqlx::Error> {
    batch_named(from, from_batch)?;
    let moved: i64 = sqlx::query_scalar(concat!(
        "WITH moved AS (
             UPDATE refunds r SET status = 'batched', batch_no = $1, updated_at = now()
             WHERE r.refund_id = ANY($2::text[])
               AND ($4::text IS NULL OR r.batch_no = $4) AND ",
        in_status!("$3", "$4"),
        " RETURNING r.refund_id
         ), sets AS (
             INSERT INTO refund_history_sets (batch_no, refund_ids, from_status, to_status, actor)
             SELECT $1, array_agg(refund_id), $3, 'batched', $5 FROM moved HAVING count(*) > 0
         )
         SELECT count(*) FROM moved"
    ))
    .bind(batch_no)
    .bind(refund_ids)
    .bind(from.as_str())
    .bind(from_batch)
    .bind(actor.to_string())
    .fetch_one(conn)
    .await?;
    Ok(moved.max(0) as u64)
}

/// OpenAPI: pending refunds become `submitted` on the `openapi` channel, each
/// with the `out_request_no` of its round (the call follows the commit, so a
/// crash after the call finds the refund submitted and sends the same number).
pub async fn start_call(
    conn: &mut PgConnection,
    calls: &[(&str, &str)],
    actor: &Actor,
) -> Result<u64, sqlx::Error> {
    let ids: Vec<&str> = calls.iter().map(|c| c.0).collect();
    let numbers: Vec<&str> = calls.iter().map(|c| c.1).collect();
    let moved = sqlx::query(
        "WITH moved AS (
             UPDATE refunds r SET status = 'submitted', channel = 'openapi', batch_no = NULL,
                    out_request_no = c.out_request_no, not_before = NULL, updated_at = now()
             FROM unnest($1::text[], $2::text[]) AS c(refund_id, out_request_no)
             WHERE r.refund_id = c.refund_id AND r.status = 'pending'
             RETURNING r.refund_id, r.out_request_no
         )
         INSERT INTO refund_history (refund_id, from_status, to_status, actor, note)
         SELECT refund_id, 'pending', 'submitted', $3, 'alipay.trade.refund ' || out_request_no
         FROM moved",
    )
    .bind(&ids)
    .bind(&numbers)
    .bind(actor.to_string())
    .execute(conn)
    .await?;
    Ok(moved.rows_affected())
}

/// Alipay holds the batch, whose `accepted_at` the caller has just written
/// in this transaction: its `batched` refunds are `submitted` from now on
/// without a write of their own (see the module's notes). Writes the move's
/// history, once per batch, and returns how many refunds it names.
pub async fn accept_batch(
    conn: &mut PgConnection,
    batch_no: &str,
    code: Option<&str>,
    actor: &Actor,
    note: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let moved: i64 = sqlx::query_scalar(
        "WITH held AS (
             SELECT array_agg(refund_id) AS ids FROM refunds
             WHERE refund_id = ANY (ARRAY(SELECT refund_id FROM batch_items WHERE batch_no = $1))
               AND batch_no = $1 AND status = 'batched'
               AND EXISTS (SELECT 1 FROM batches WHERE batch_no = $1 AND accepted_at IS NOT NULL)
               AND NOT EXISTS (SELECT 1 FROM refund_history_sets
                               WHERE batch_no = $1 AND from_status = 'batched' AND to_status = 'submitted')
         ), sets AS (
             INSERT INTO refund_history_sets (batch_no, refund_ids, from_status, to_status, code, actor, note)
             SELECT $1, ids, 'batched', 'submitted', $2, $3, $4 FROM held WHERE ids IS NOT NULL
         )
         SELECT COALESCE(cardinality(ids), 0)::int8 FROM held",
    )
    .bind(batch_no)
    .bind(code)
    .bind(actor.to_string())
    .bind(note)
    .fetch_one(conn)
    .await?;
    Ok(moved.max(0) as u64)
}

/// A rejected batch turned out held by Alipay: a refund of it that was not
/// sent again (`pending`, or `batched` in `from_batch`, a batch never sent,
/// which the caller retires) goes back into it, `submitted`.
pub async fn take_back(
    conn: &mut PgConnection,
    batch_no: &str,
    refund_id: &str,
    from: RefundStatus,
    from_batch: Option<&str>,
    actor: &Actor,
) -> Result<u64, sqlx::Error> {
    batch_named(from, from_batch)?;
    let moved = sqlx::query(concat!(
        "WITH moved AS (
             UPDATE refunds r SET status = 'submitted', batch_no = $1, not_before = NULL, updated_at = now()
             WHERE r.refund_id = $2 AND ",
        in_status!("$3", "$5"),
        " RETURNING r.refund_id
         )
         INSERT INTO refund_history (refund_id, from_status, to_status, batch_no, actor, note)
         SELECT refund_id, $3, 'submitted', $1, $4,
                'Alipay holds this batch after all (it had been rejected); taken back into it'
         FROM moved"
    ))
    .bind(batch_no)
    .bind(refund_id)
    .bind(from.as_str())
    .bind(actor.to_string())
    .bind(from_batch)
    .execute(conn)
    .await?;
    Ok(moved.rows_affected())
}

/// The batch was not accepted (or is released, or retired unsent): its
/// `batched` refunds, but `except`, go back to pending for a new batch;
/// none does once the batch is accepted (their status is then `submitted`).
pub async fn batch_to_pending(
    conn: &mut PgConnection,
    batch_no: &str,
    except: Option<&str>,
    code: Option<&str>,
    actor: &Actor,
    note: &str,
) -> Result<u64, sqlx::Error> {
    let moved: i64 = sqlx::query_scalar(concat!(
        "WITH moved AS (
             UPDATE refunds r SET status = 'pending', updated_at = now()
             WHERE r.refund_id = ANY (ARRAY(SELECT refund_id FROM batch_items WHERE batch_no = $1))
               AND ($2::text IS NULL OR r.refund_id <> $2) AND ",
        in_status!("'batched'", "$1"),
        " RETURNING r.refund_id
         ), sets AS (
             INSERT INTO refund_history_sets (batch_no, refund_ids, from_status, to_status, code, actor, note)
             SELECT $1, array_agg(refund_id), 'batched', 'pending', $3, $4, $5 FROM moved HAVING count(*) > 0
         )
         SELECT count(*) FROM moved"
    ))
    .bind(batch_no)
    .bind(except)
    .bind(code)
    .bind(actor.to_string())
    .bind(note)
    .fetch_one(conn)
    .await?;
    Ok(moved.max(0) as u64)
}

/// A refund refused for now with a code that can pass.
#[derive(Debug, Clone)]
pub struct Later<'a> {
    pub refund_id: &'a str,
    pub code: &'a str,
    /// Not before this long from now.
    pub wait: std::time::Duration,
}

/// Refunds of `batch_no` in `from` back to pending, counted in
/// `item_retries`, each not before its wait. `note` is the history's, or
/// (when `None`) "a new batch may pass; not before …".
pub async fn pending_later(
    conn: &mut PgConnection,
    batch_no: Option<&str>,
    from: RefundStatus,
    items: &[Later<'_>],
    actor: &Actor,
    note: Option<&str>,
) -> Result<u64, sqlx::Error> {
    if items.is_empty() {
        return Ok(0);
    }
    batch_named(from, batch_no)?;
    let ids: Vec<&str> = items.iter().map(|l| l.refund_id).collect();
    let codes: Vec<&str> = items.iter().map(|l| l.code).collect();
    let waits: Vec<f64> = items.iter().map(|l| l.wait.as_secs_f64()).collect();
    let moved = sqlx::query(concat!(
        "WITH moved AS (
             UPDATE refunds r SET status = 'pending', item_retries = r.item_retries + 1,
                    not_before = now() + make_interval(secs => i.wait), updated_at = now()
             FROM unnest($1::text[], $2::text[], $3::float8[]) AS i(refund_id, code, wait)
             WHERE r.refund_id = i.refund_id
               AND ($4::text IS NULL OR r.batch_no = $4) AND ",
        in_status!("$5", "$4"),
        " RETURNING r.refund_id, i.code, r.not_before
         )
         INSERT INTO refund_history (refund_id, from_status, to_status, batch_no, code, actor, note)
         SELECT refund_id, $5, 'pending', $4, code, $6,
                COALESCE($7, 'a new batch may pass; not before '
                    || to_char(not_before AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))
         FROM moved"
    ))
    .bind(&ids)
    .bind(&codes)
    .bind(&waits)
    .bind(batch_no)
    .bind(from.as_str())
    .bind(actor.to_string())
    .bind(note)
    .execute(conn)
    .await?;
    Ok(moved.rows_affected())
}

/// `refund retry`: a failed refund back to pending, its result cleared, its
/// round counted (the next result event carries `retry`).
pub async fn reopen_failed(
    conn: &mut PgConnection,
    refund_id: &str,
    code: Option<&str>,
    actor: &Actor,
) -> Result<u64, sqlx::Error> {
    let moved = sqlx::query(
        "WITH reopened AS (
             UPDATE refunds SET status = 'pending', result_code = NULL, result_message = NULL,
                    result_source = NULL, finished_at = NULL, item_retries = 0, not_before = NULL,
                    operator_retries = operator_retries + 1, updated_at = now()
             WHERE refund_id = $1 AND status = 'failed'
             RETURNING refund_id, batch_no
         )
         INSERT INTO refund_history (refund_id, from_status, to_status, batch_no, code, actor, note)
         SELECT refund_id, 'failed', 'pending', batch_no, $2, $3, 'refund retry: sent again in a new batch'
         FROM reopened",
    )
    .bind(refund_id)
    .bind(code)
    .bind(actor.to_string())
    .execute(conn)
    .await?;
    Ok(moved.rows_affected())
}

/// Paid: refunds `submitted` in `batch_no` become `succeeded`, with their
/// result events (a refund that has moved on to another batch is not this
/// report's to settle).
pub async fn succeed(
    conn: &mut PgConnection,
    batch_no: Option<&str>,
    ids: &[String],
    source: Source,
    actor: &Actor,
    note: Option<&str>,
) -> Result<u64, sqlx::Error> {
    if ids.is_empty() {
        return Ok(0);
    }
    let done = sqlx::query(concat!(
        "WITH done AS (
             UPDATE refunds r SET status = 'succeeded', result_code = 'SUCCESS', result_message = 'refunded',
                    result_source = $2, finished_at = now(), updated_at = now(), not_before = NULL
             WHERE r.refund_id = ANY($1::text[])
               AND ($3::text IS NULL OR r.batch_no = $3) AND ",
        in_status!("'submitted'", "$3"),
        " RETURNING r.refund_id, r.batch_no, r.operator_retries, r.channel, r.out_request_no
         ), history AS (
             INSERT INTO refund_history (refund_id, from_status, to_status, batch_no, code, actor, note)
             SELECT refund_id, 'submitted', 'succeeded', batch_no, 'SUCCESS', $4, $5
             FROM done WHERE batch_no IS NULL
         ), history_sets AS (
             INSERT INTO refund_history_sets (batch_no, refund_ids, from_status, to_status, code, actor, note)
             SELECT batch_no, array_agg(refund_id), 'submitted', 'succeeded', 'SUCCESS', $4, $5
             FROM done WHERE batch_no IS NOT NULL GROUP BY batch_no
         ), ev AS (
             SELECT d.refund_id, d.batch_no, d.operator_retries, d.channel, d.out_request_no,
                    $6::text AS event, 'succeeded'::text AS status,
                    'SUCCESS'::text AS code, 'refunded'::text AS message, $2::text AS source
             FROM done d
         ) ",
        insert_result_events!()
    ))
    .bind(ids)
    .bind(source.as_str())
    .bind(batch_no)
    .bind(actor.to_string())
    .bind(note)
    .bind(result_event::SUCCEEDED)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Refunds to fail (those still in `from`), with one code and message.
pub struct Failure<'a> {
    pub refund_ids: &'a [&'a str],
    pub from: RefundStatus,
    /// When given, only refunds whose current batch is this one fail.
    pub batch_no: Option<&'a str>,
    pub code: &'a str,
    pub message: &'a str,
    pub source: Source,
    pub actor: &'a Actor,
}

/// Makes refunds `failed` with their history rows and result events, in one
/// statement: the one way any refund fails.
pub async fn fail(conn: &mut PgConnection, f: &Failure<'_>) -> Result<u64, sqlx::Error> {
    if f.refund_ids.is_empty() {
        return Ok(0);
    }
    batch_named(f.from, f.batch_no)?;
    let rows = sqlx::query(concat!(
        "WITH failed AS (
             UPDATE refunds r SET status = 'failed', result_code = $3, result_message = $4,
                    result_source = $5, finished_at = now(), updated_at = now()
             WHERE r.refund_id = ANY($1::text[])
               AND ($7::text IS NULL OR r.batch_no = $7) AND ",
        in_status!("$2", "$7"),
        " RETURNING r.refund_id, r.batch_no, r.operator_retries, r.channel, r.out_request_no
         ), history AS (
             INSERT INTO refund_history (refund_id, from_status, to_status, batch_no, code, actor, note)
             SELECT refund_id, $2, 'failed', batch_no, $3, $6, $4 FROM failed WHERE batch_no IS NULL
         ), history_sets AS (
             INSERT INTO refund_history_sets (batch_no, refund_ids, from_status, to_status, code, actor, note)
             SELECT batch_no, array_agg(refund_id), $2, 'failed', $3, $6, $4
             FROM failed WHERE batch_no IS NOT NULL GROUP BY batch_no
         ), ev AS (
             SELECT f.refund_id, f.batch_no, f.operator_retries, f.channel, f.out_request_no,
                    $8::text AS event, 'failed'::text AS status,
                    $3::text AS code, $4::text AS message, $5::text AS source
             FROM failed f
         ) ",
        insert_result_events!()
    ))
    .bind(f.refund_ids)
    .bind(f.from.as_str())
    .bind(f.code)
    .bind(f.message)
    .bind(f.source.as_str())
    .bind(f.actor.to_string())
    .bind(f.batch_no)
    .bind(result_event::FAILED)
    .execute(conn)
    .await?;
    Ok(rows.rows_affected())
}
