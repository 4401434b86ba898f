//! SQL of the OpenAPI channel (alipay-openapi.md): pending refunds started
//! as requests, due requests leased for a call, and each answer recorded
//! with what followed from it, in one transaction.
//!
//! Invariants: a request's `out_request_no` is written once, at its start,
//! and never changes (every resend of an unknown outcome carries it); a
//! request is leased by moving `next_at` past the call's time-out, so one
//! worker calls at a time and a crashed worker's request comes due again;
//! an answer settles a refund only while the refund is still `submitted`
//! under that same number (fencing: a late answer to an old round changes
//! nothing).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::settlements::{Settled, Settlement, by_hand};
use super::transitions::{self, Failure, Later};
use crate::domain::RefundStatus;
use crate::domain::actor::{Actor, Source};

/// A pending refund the channel may start: its request number is the
/// caller's to compute (it depends on the id and round only).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Startable {
    pub refund_id: String,
    pub partner: String,
    pub trade_no: String,
    pub round: i32,
}

/// A request leased for one call.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueCall {
    pub refund_id: String,
    pub round: i32,
    pub out_request_no: String,
    pub app_id: String,
    pub partner: String,
    pub trade_no: String,
    pub amount_fen: i64,
    pub reason: String,
    /// `refund` or `query`.
    pub next_call: String,
    /// Calls started, this one included.
    pub calls: i32,
    pub first_call_at: Option<DateTime<Utc>>,
    pub item_retries: i32,
    /// What the last answer to this request said.
    pub last_code: Option<String>,
}

/// Up to `limit` pending refunds of these partners that are due, oldest
/// first, locked; at most one per trade and none of a trade that has a
/// refund in flight (one unfinished refund per trade, as on mapi).
pub async fn lock_startable(
    conn: &mut PgConnection,
    partners: &[String],
    limit: i64,
) -> Result<Vec<Startable>, sqlx::Error> {
    let rows: Vec<Startable> = sqlx::query_as(
        "SELECT r.refund_id, r.partner, r.trade_no, r.operator_retries AS round
         FROM refunds r
         WHERE r.status = 'pending' AND r.partner = ANY($1::text[])
           AND (r.not_before IS NULL OR r.not_before <= now())
           AND NOT EXISTS (SELECT 1 FROM refunds o WHERE o.partner = r.partner
                           AND o.trade_no = r.trade_no AND o.status IN ('batched', 'submitted'))
         ORDER BY r.received_at, r.refund_id LIMIT $2
         FOR UPDATE OF r SKIP LOCKED",
    )
    .bind(partners)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let mut seen = std::collections::HashSet::new();
    Ok(rows
        .into_iter()
        .filter(|s| seen.insert((s.partner.clone(), s.trade_no.clone())))
        .collect())
}

/// One refund to start: its request's number and app.
pub struct Start<'a> {
    pub refund_id: &'a str,
    pub round: i32,
    pub out_request_no: &'a str,
    pub app_id: &'a str,
}

/// Starts refunds: `submitted` on the OpenAPI channel with their request,
/// due now. A refund coming back after a passing code keeps its request
/// (and its number) and is due again.
pub async fn start(
    conn: &mut PgConnection,
    starts: &[Start<'_>],
    actor: &Actor,
) -> Result<u64, sqlx::Error> {
    if starts.is_empty() {
        return Ok(0);
    }
    let pairs: Vec<(&str, &str)> = starts
        .iter()
        .map(|s| (s.refund_id, s.out_request_no))
        .collect();
    let moved = transitions::start_call(conn, &pairs, actor).await?;
    let ids: Vec<&str> = starts.iter().map(|s| s.refund_id).collect();
    let rounds: Vec<i32> = starts.iter().map(|s| s.round).collect();
    let numbers: Vec<&str> = starts.iter().map(|s| s.out_request_no).collect();
    let apps: Vec<&str> = starts.iter().map(|s| s.app_id).collect();
    sqlx::query(
        "INSERT INTO openapi_requests (refund_id, round, out_request_no, app_id)
         SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[])
         ON CONFLICT (refund_id, round) DO UPDATE
             SET next_at = now(), next_call = 'refund', settled_at = NULL",
    )
    .bind(&ids)
    .bind(&rounds)
    .bind(&numbers)
    .bind(&apps)
    .execute(&mut *conn)
    .await?;
    Ok(moved)
}

/// Leases up to `limit` due requests of these apps for `lease_secs`.
pub async fn lease_due(
    pool: &PgPool,
    app_ids: &[String],
    limit: i64,
    lease_secs: f64,
) -> Result<Vec<DueCall>, sqlx::Error> {
    sqlx::query_as(
        "WITH due AS (
             SELECT q.refund_id, q.round FROM openapi_requests q
             JOIN refunds r ON r.refund_id = q.refund_id
             WHERE q.settled_at IS NULL AND q.held_at IS NULL AND q.next_at <= now()
               AND q.app_id = ANY($1::text[]) AND r.status = 'submitted'
               AND r.out_request_no = q.out_request_no
             ORDER BY q.next_at LIMIT $2
             FOR UPDATE OF q SKIP LOCKED
         ), leased AS (
             UPDATE openapi_requests q
             SET next_at = now() + make_interval(secs => $3), calls = q.calls + 1,
                 first_call_at = COALESCE(q.first_call_at, now()), last_call_at = now()
             FROM due WHERE q.refund_id = due.refund_id AND q.round = due.round
             RETURNING q.*
         )
         SELECT l.refund_id, l.round, l.out_request_no, l.app_id, r.partner, r.trade_no,
                r.amount_fen, r.reason, l.next_call, l.calls, l.first_call_at, r.item_retries,
                l.last_code
         FROM leased l JOIN refunds r ON r.refund_id = l.refund_id
         ORDER BY l.first_call_at",
    )
    .bind(app_ids)
    .bind(limit)
    .bind(lease_secs)
    .fetch_all(pool)
    .await
}

/// What a call got back, kept raw.
#[derive(Debug, Clone)]
pub struct Answer<'a> {
    pub method: &'a str,
    pub http_status: Option<i32>,
    pub body: Option<&'a str>,
    /// What the worker made of it (`refunded`, `unknown`, `failed`, …).
    pub disposition: &'a str,
    /// Alipay's `sub_code` or `code`, or the worker's word for no answer.
    pub code: &'a str,
}

/// What follows from an answer.
#[derive(Debug, Clone)]
pub enum Outcome<'a> {
    /// Refunded; `source` is `submit` or `query`.
    Succeeded { source: Source, note: &'a str },
    /// Refused for good with `code`.
    Failed { code: &'a str, message: &'a str },
    /// Refused for now: back to pending, not before `wait`.
    Later {
        wait: std::time::Duration,
        note: &'a str,
    },
    /// Unknown: the same request again (`refund` or `query`) after `after`.
    Again {
        next_call: &'a str,
        after: std::time::Duration,
    },
    /// A person must look: the refund stays as it is.
    Hold { reason: &'a str },
}

/// Records `answer` to `call` and applies `outcome`, in one transaction.
/// Returns false when the refund had moved on (another round, or settled):
/// the answer is kept, nothing else changes.
pub async fn apply(
    pool: &PgPool,
    call: &DueCall,
    answer: &Answer<'_>,
    outcome: &Outcome<'_>,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO openapi_answers (refund_id, round, method, http_status, body, disposition)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&call.refund_id)
    .bind(call.round)
    .bind(answer.method)
    .bind(answer.http_status)
    .bind(answer.body)
    .bind(answer.disposition)
    .execute(&mut *tx)
    .await?;
    let current: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT status, out_request_no FROM refunds WHERE refund_id = $1 FOR UPDATE",
    )
    .bind(&call.refund_id)
    .fetch_optional(&mut *tx)
    .await?;
    let ours = matches!(&current, Some((status, no))
        if status == "submitted" && no.as_deref() == Some(call.out_request_no.as_str()));
    if !ours {
        tx.commit().await?;
        return Ok(false);
    }
    let actor = Actor::OpenApi;
    let ids = [call.refund_id.clone()];
    let key = (&call.refund_id, call.round, answer.code);
    match outcome {
        Outcome::Succeeded { source, note } => {
            transitions::succeed(&mut tx, None, &ids, *source, &actor, Some(note)).await?;
            settle_request(&mut tx, key).await?;
        }
        Outcome::Failed { code, message } => {
            let id = [call.refund_id.as_str()];
            let failure = Failure {
                refund_ids: &id,
                from: RefundStatus::Submitted,
                batch_no: None,
                code,
                message,
                source: Source::Submit,
                actor: &actor,
            };
            transitions::fail(&mut tx, &failure).await?;
            settle_request(&mut tx, key).await?;
        }
        Outcome::Later { wait, note } => {
            let later = [Later {
                refund_id: &call.refund_id,
                code: answer.code,
                wait: *wait,
            }];
            let from = RefundStatus::Submitted;
            transitions::pending_later(&mut tx, None, from, &later, &actor, Some(note)).await?;
            again(&mut tx, key, "refund", std::time::Duration::ZERO).await?;
        }
        Outcome::Again { next_call, after } => again(&mut tx, key, next_call, *after).await?,
        Outcome::Hold { reason } => {
            sqlx::query(
                "UPDATE openapi_requests SET last_code = $3, held_at = now(), held_reason = $4
                 WHERE refund_id = $1 AND round = $2",
            )
            .bind(key.0)
            .bind(key.1)
            .bind(key.2)
            .bind(reason)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}

type RequestKey<'k> = (&'k String, i32, &'k str);

async fn settle_request(conn: &mut PgConnection, key: RequestKey<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE openapi_requests SET last_code = $3, settled_at = now()
         WHERE refund_id = $1 AND round = $2",
    )
    .bind(key.0)
    .bind(key.1)
    .bind(key.2)
    .execute(conn)
    .await?;
    Ok(())
}

async fn again(
    conn: &mut PgConnection,
    key: RequestKey<'_>,
    next_call: &str,
    after: std::time::Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE openapi_requests SET last_code = $3, next_call = $4,
                next_at = now() + make_interval(secs => $5)
         WHERE refund_id = $1 AND round = $2",
    )
    .bind(key.0)
    .bind(key.1)
    .bind(key.2)
    .bind(next_call)
    .bind(after.as_secs_f64())
    .execute(conn)
    .await?;
    Ok(())
}

/// `refund settle` for an OpenAPI refund: only one whose request is held
/// for a person (what Alipay's account shows decides). `None` when the
/// refund is not a submitted OpenAPI refund (the batch path applies).
pub async fn settle_held(
    pool: &PgPool,
    refund_id: &str,
    how: &Settlement,
    reason: &str,
    by: &str,
) -> Result<Option<Settled>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let row: Option<(String, i32, bool)> = sqlx::query_as(
        "SELECT q.out_request_no, q.round, q.held_at IS NOT NULL
         FROM refunds r JOIN openapi_requests q
           ON q.refund_id = r.refund_id AND q.out_request_no = r.out_request_no
         WHERE r.refund_id = $1 AND r.channel = 'openapi' AND r.status = 'submitted'
           AND q.settled_at IS NULL
         FOR UPDATE OF r, q",
    )
    .bind(refund_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((out_request_no, round, held)) = row else {
        tx.rollback().await?;
        return Ok(None);
    };
    if !held {
        tx.rollback().await?;
        return Ok(Some(Settled::Refused(format!(
            "its request {out_request_no} is not held: the worker is still settling it with Alipay"
        ))));
    }
    let actor = Actor::Operator(by.to_owned());
    let note = format!("settled by hand: {reason}");
    let (code, moved) = by_hand(&mut tx, refund_id, None, how, &note, &actor).await?;
    if moved != 1 {
        tx.rollback().await?;
        return Ok(Some(Settled::Refused(
            "it changed while being settled; nothing was done".into(),
        )));
    }
    let key = (&refund_id.to_owned(), round, code);
    settle_request(&mut tx, (key.0, key.1, key.2)).await?;
    tx.commit().await?;
    Ok(Some(Settled::DoneRequest { out_request_no }))
}
