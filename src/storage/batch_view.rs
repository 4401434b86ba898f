//! Reading one batch with its items, history, notifications and query
//! answers, for `batch show`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, Row};

use crate::domain::format_fen;

/// Everything the worker knows of one batch.
#[derive(Debug, Serialize)]
pub struct BatchView {
    pub batch_no: String,
    pub partner: String,
    pub status: String,
    pub refund_date: String,
    pub batch_num: i32,
    /// Sum of the items, yuan with two decimals.
    pub total: String,
    pub attempts: i32,
    pub last_code: Option<String>,
    pub outcome_unknown: bool,
    pub needs_query: bool,
    pub reconcile_queries: i32,
    /// When the submitter held the batch (an `F` code it cannot act on).
    pub held_at: Option<DateTime<Utc>>,
    /// When it was last sent (or may have been).
    pub last_sent_at: Option<DateTime<Utc>>,
    /// The first `REFUND_NOT_EXIST` that counts toward proving absence.
    pub absence_first_at: Option<DateTime<Utc>>,
    /// When the submitter or reconciler looks at it next.
    pub next_attempt_at: DateTime<Utc>,
    /// Refunds a late result for this batch (after we rejected it) shows
    /// may be paid twice.
    pub suspects: Vec<SuspectEntry>,
    pub split_from: Option<String>,
    pub created_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Items by result code (`none` while no result came).
    pub results: BTreeMap<String, i64>,
    pub items: Vec<ItemEntry>,
    /// Oldest first.
    pub history: Vec<BatchHistoryEntry>,
    /// Every notification and query answer received for the batch.
    pub notifications: Vec<NotificationEntry>,
}

/// A refund suspected of a double payment.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct SuspectEntry {
    pub refund_id: String,
    pub other_batch: Option<String>,
    pub code: String,
    pub detail: String,
    pub noticed_at: DateTime<Utc>,
}

/// One item as sent, with its result.
#[derive(Debug, Serialize)]
pub struct ItemEntry {
    pub refund_id: String,
    pub trade_no: String,
    pub amount: String,
    pub result_code: Option<String>,
    pub result_raw: Option<String>,
    /// While the item is open: Alipay's latest code for it, why it is open
    /// (`alipay_retries`, `needs_person`, `amount_mismatch`), a sentence, since when.
    pub open_code: Option<String>,
    pub open_class: Option<String>,
    pub open_detail: Option<String>,
    pub open_since: Option<DateTime<Utc>>,
}

/// Something that happened to the batch or to its refunds together.
#[derive(Debug, Serialize)]
pub struct BatchHistoryEntry {
    pub at: DateTime<Utc>,
    pub what: String,
    pub actor: String,
    /// How many refunds, for a transition of the batch's refunds.
    pub refunds: Option<i64>,
}

/// A notification or query answer as stored, with its verdict.
#[derive(Debug, Serialize)]
pub struct NotificationEntry {
    pub id: i64,
    /// `batch_refund`, `dback` or `query`.
    pub kind: String,
    pub notify_id: Option<String>,
    pub verdict: String,
    pub detail: Option<String>,
    pub received_at: DateTime<Utc>,
    /// The raw body, as text (lossy where it is not UTF-8).
    pub body: String,
}

/// The batch, or `None` when the batch_no is unknown.
pub async fn find(pool: &PgPool, batch_no: &str) -> Result<Option<BatchView>, sqlx::Error> {
    let Some(row) = sqlx::query(
        "SELECT batch_no, partner, status, refund_date, batch_num, attempts, last_code, outcome_unknown,
                needs_query, reconcile_queries, held_at, last_sent_at, absence_first_at,
                next_attempt_at, split_from, created_at, submitted_at, accepted_at, completed_at
         FROM batches WHERE batch_no = $1",
    )
    .bind(batch_no)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let items = items(pool, batch_no).await?;
    let notifications = notifications(pool, batch_no).await?;
    let mut results = BTreeMap::new();
    for item in &items {
        let code = match (&item.result_code, &item.open_code) {
            (Some(code), _) => code.clone(),
            (None, Some(open)) => format!("open:{open}"),
            (None, None) => "none".into(),
        };
        *results.entry(code).or_insert(0) += 1;
    }
    let total = format_fen(
        sqlx::query_scalar(
            "SELECT COALESCE(sum(amount_fen), 0)::bigint FROM batch_items WHERE batch_no = $1",
        )
        .bind(batch_no)
        .fetch_one(pool)
        .await?,
    );
    let mut view = BatchView {
        batch_no: row.try_get("batch_no")?,
        partner: row.try_get("partner")?,
        status: row.try_get("status")?,
        refund_date: row.try_get("refund_date")?,
        batch_num: row.try_get("batch_num")?,
        total,
        attempts: row.try_get("attempts")?,
        last_code: row.try_get("last_code")?,
        outcome_unknown: row.try_get("outcome_unknown")?,
        needs_query: row.try_get("needs_query")?,
        reconcile_queries: row.try_get("reconcile_queries")?,
        held_at: row.try_get("held_at")?,
        last_sent_at: row.try_get("last_sent_at")?,
        absence_first_at: row.try_get("absence_first_at")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        suspects: suspects(pool, batch_no).await?,
        split_from: row.try_get("split_from")?,
        created_at: row.try_get("created_at")?,
        submitted_at: row.try_get("submitted_at")?,
        accepted_at: row.try_get("accepted_at")?,
        completed_at: row.try_get("completed_at")?,
        results,
        items,
        history: Vec::new(),
        notifications,
    };
    view.history = history(pool, &view).await?;
    Ok(Some(view))
}

/// One line of `batch list`.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct BatchSummary {
    pub batch_no: String,
    pub partner: String,
    pub status: String,
    pub batch_num: i32,
    pub attempts: i32,
    pub last_code: Option<String>,
    pub created_at: DateTime<Utc>,
    pub form_printed_at: Option<DateTime<Utc>>,
}

/// Batches, newest first, optionally in one state.
pub async fn list(
    pool: &PgPool,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<BatchSummary>, sqlx::Error> {
    sqlx::query_as(
        "SELECT batch_no, partner, status, batch_num, attempts, last_code, created_at, form_printed_at
         FROM batches WHERE $1::text IS NULL OR status = $1
         ORDER BY created_at DESC, batch_no DESC LIMIT $2",
    )
    .bind(status)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// What the password form is built from.
#[derive(Debug, sqlx::FromRow)]
pub struct FormSource {
    pub status: String,
    pub partner: String,
    pub refund_date: String,
    pub detail_data: String,
}

pub async fn form_source(pool: &PgPool, batch_no: &str) -> Result<Option<FormSource>, sqlx::Error> {
    sqlx::query_as(
        "SELECT status, partner, refund_date, detail_data FROM batches WHERE batch_no = $1",
    )
    .bind(batch_no)
    .fetch_optional(pool)
    .await
}

/// Records that the form was printed (the first time counts): from then on
/// Alipay may hold the batch. Each printing is a possible send, from which
/// absence is measured.
pub async fn mark_form_printed(pool: &PgPool, batch_no: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE batches SET form_printed_at = COALESCE(form_printed_at, now()),
                last_sent_at = now(), absence_first_at = NULL, updated_at = now()
         WHERE batch_no = $1",
    )
    .bind(batch_no)
    .execute(pool)
    .await?;
    Ok(())
}

async fn items(pool: &PgPool, batch_no: &str) -> Result<Vec<ItemEntry>, sqlx::Error> {
    sqlx::query(
        "SELECT refund_id, trade_no, amount_fen, result_code, result_raw, open_code, open_class,
                open_detail, open_since
         FROM batch_items WHERE batch_no = $1 ORDER BY refund_id",
    )
    .bind(batch_no)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| {
        Ok(ItemEntry {
            refund_id: r.try_get("refund_id")?,
            trade_no: r.try_get("trade_no")?,
            amount: format_fen(r.try_get("amount_fen")?),
            result_code: r.try_get("result_code")?,
            result_raw: r.try_get("result_raw")?,
            open_code: r.try_get("open_code")?,
            open_class: r.try_get("open_class")?,
            open_detail: r.try_get("open_detail")?,
            open_since: r.try_get("open_since")?,
        })
    })
    .collect()
}

async fn suspects(pool: &PgPool, batch_no: &str) -> Result<Vec<SuspectEntry>, sqlx::Error> {
    sqlx::query_as(
        "SELECT refund_id, other_batch, code, detail, noticed_at FROM double_payment_suspects
         WHERE batch_no = $1 ORDER BY id",
    )
    .bind(batch_no)
    .fetch_all(pool)
    .await
}

async fn notifications(
    pool: &PgPool,
    batch_no: &str,
) -> Result<Vec<NotificationEntry>, sqlx::Error> {
    sqlx::query(
        "SELECT id, kind, notify_id, verdict, detail, received_at, raw_body, raw_pruned_at
         FROM notifications WHERE batch_no = $1 ORDER BY id",
    )
    .bind(batch_no)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| {
        let body: Vec<u8> = r.try_get("raw_body")?;
        let pruned: Option<DateTime<Utc>> = r.try_get("raw_pruned_at")?;
        let body = match pruned {
            Some(at) => format!("(raw body pruned at {at} by retention)"),
            None => String::from_utf8_lossy(&body).into_owned(),
        };
        Ok(NotificationEntry {
            id: r.try_get("id")?,
            kind: r.try_get("kind")?,
            notify_id: r.try_get("notify_id")?,
            verdict: r.try_get("verdict")?,
            detail: r.try_get("detail")?,
            received_at: r.try_get("received_at")?,
            body,
        })
    })
    .collect()
}

/// The batch's own times, its refunds' transitions counted together, and
/// each notification, oldest first.
async fn history(pool: &PgPool, v: &BatchView) -> Result<Vec<BatchHistoryEntry>, sqlx::Error> {
    let mut out = vec![BatchHistoryEntry {
        at: v.created_at,
        what: format!("created with {} items", v.batch_num),
        actor: "batcher".into(),
        refunds: None,
    }];
    let own = [
        (v.accepted_at, "accepted by Alipay"),
        (v.completed_at, "completed: every item has a result"),
    ];
    out.extend(own.into_iter().filter_map(|(at, what)| {
        at.map(|at| BatchHistoryEntry {
            at,
            what: what.into(),
            actor: "worker".into(),
            refunds: None,
        })
    }));
    let moves = sqlx::query(
        "SELECT min(at) AS at, from_status, to_status, code, actor, sum(n)::int8 AS n
         FROM (SELECT at, from_status, to_status, code, actor, 1 AS n
               FROM refund_history WHERE batch_no = $1
               UNION ALL
               SELECT at, from_status, to_status, code, actor, cardinality(refund_ids)
               FROM refund_history_sets WHERE batch_no = $1) m
         GROUP BY from_status, to_status, code, actor",
    )
    .bind(&v.batch_no)
    .fetch_all(pool)
    .await?;
    for m in moves {
        let from: Option<String> = m.try_get("from_status")?;
        let to: String = m.try_get("to_status")?;
        let code: Option<String> = m.try_get("code")?;
        let code = code.map(|c| format!(" ({c})")).unwrap_or_default();
        out.push(BatchHistoryEntry {
            at: m.try_get("at")?,
            what: format!("refunds {} -> {to}{code}", from.as_deref().unwrap_or("-")),
            actor: m.try_get("actor")?,
            refunds: Some(m.try_get("n")?),
        });
    }
    out.extend(v.notifications.iter().map(|n| {
        BatchHistoryEntry {
            at: n.received_at,
            what: format!("{} received: {}", n.kind, n.verdict),
            actor: if n.kind == "query" {
                "reconciler"
            } else {
                "alipay"
            }
            .into(),
            refunds: None,
        }
    }));
    out.sort_by_key(|h| h.at);
    Ok(out)
}
