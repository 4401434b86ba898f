//! Storing a window of refund-approved events in one transaction.
//!
//! The common window (no `trade_amount`) is one `INSERT … ON CONFLICT DO NOTHING`; only refund_ids already stored
//! cost a second look-up. A window that carries `trade_amount` first locks its
//! trades (advisory locks, in key order so two workers cannot deadlock) and sums
//! what is already stored for them, so the check counts every committed refund.

use std::collections::{HashMap, HashSet};

use sqlx::{PgPool, Postgres, Transaction};

use crate::domain::RefundRequest;

/// What storing did with one event of the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOutcome {
    /// A new pending refund.
    Stored,
    /// The same refund was stored before: nothing new.
    Duplicate,
    /// The refund_id is taken by a different refund.
    Conflict { stored: StoredKey },
    /// With this refund the trade's refunds would exceed `trade_amount`.
    ExceedsTradeAmount {
        counted_fen: i64,
        trade_amount_fen: i64,
    },
}

/// The fields that make two events the same refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub partner: String,
    pub trade_no: String,
    pub amount_fen: i64,
}

/// One event to store and the AMQP message id it came with.
pub struct NewRefund<'a> {
    pub request: &'a RefundRequest,
    pub message_id: Option<&'a str>,
}

/// How often a window is retried when another worker stored one of its
/// refund_ids between our look-up and our insert.
const RACE_RETRIES: usize = 5;

/// Stores a window; one outcome per item, in order. Nothing is committed on error.
pub async fn store_window(
    pool: &PgPool,
    items: &[NewRefund<'_>],
) -> Result<Vec<StoreOutcome>, sqlx::Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut tx = pool.begin().await?;
        match try_store(&mut tx, items).await? {
            Some(outcomes) => {
                tx.commit().await?;
                return Ok(outcomes);
            }
            None if attempt < RACE_RETRIES => tx.rollback().await?,
            None => {
                return Err(sqlx::Error::Protocol(
                    "intake window kept racing another worker".into(),
                ));
            }
        }
    }
}

type TradeKey = (String, String);

/// `None` when a concurrent insert got in between and the window must be redone.
async fn try_store(
    tx: &mut Transaction<'_, Postgres>,
    items: &[NewRefund<'_>],
) -> Result<Option<Vec<StoreOutcome>>, sqlx::Error> {
    // The first occurrence of each refund_id speaks for the window.
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        first.entry(item.request.refund_id.as_str()).or_insert(i);
    }
    let mut candidates: Vec<usize> = first.values().copied().collect();
    candidates.sort_unstable();

    let checked = candidates
        .iter()
        .any(|&i| items[i].request.trade_amount.is_some());
    let (mut existing, exceeds) = if checked {
        check_trade_amounts(tx, items, &candidates).await?
    } else {
        (HashMap::new(), HashMap::new())
    };
    let to_insert: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|i| {
            !exceeds.contains_key(i) && !existing.contains_key(&items[*i].request.refund_id)
        })
        .collect();
    let inserted = insert(tx, items, &to_insert).await?;
    let missed: Vec<&str> = to_insert
        .iter()
        .map(|&i| items[i].request.refund_id.as_str())
        .filter(|id| !inserted.contains(*id))
        .collect();
    if !missed.is_empty() {
        if checked {
            // Stored by someone else after our look-up: its trade sum is stale.
            return Ok(None);
        }
        existing = stored_keys(tx, &missed).await?;
    }
    let window = Window {
        items,
        first: &first,
        exceeds: &exceeds,
        inserted: &inserted,
        existing: &existing,
    };
    // `None` from any item: neither inserted nor found, so a concurrent writer
    // rolled back under us. Redo the window rather than guess.
    Ok((0..items.len()).map(|i| window.outcome(i)).collect())
}

/// For a window that carries `trade_amount`: the refund_ids already stored,
/// and the new refunds that would push their trade past its amount. Locks the
/// trades so that the sums stay true until commit.
async fn check_trade_amounts(
    tx: &mut Transaction<'_, Postgres>,
    items: &[NewRefund<'_>],
    candidates: &[usize],
) -> Result<(HashMap<String, StoredKey>, HashMap<usize, StoreOutcome>), sqlx::Error> {
    let ids: Vec<&str> = candidates
        .iter()
        .map(|&i| items[i].request.refund_id.as_str())
        .collect();
    let existing = stored_keys(tx, &ids).await?;
    let new: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|&i| !existing.contains_key(&items[i].request.refund_id))
        .collect();
    let mut sums = lock_and_sum_trades(tx, new.iter().map(|&i| items[i].request)).await?;
    let mut exceeds = HashMap::new();
    for &i in &new {
        let r = items[i].request;
        let sum = sums
            .entry((r.partner.clone(), r.trade_no.clone()))
            .or_insert(0);
        match r.trade_amount {
            Some(total) if *sum + r.amount.fen() > total.fen() => {
                let outcome = StoreOutcome::ExceedsTradeAmount {
                    counted_fen: *sum,
                    trade_amount_fen: total.fen(),
                };
                exceeds.insert(i, outcome);
            }
            _ => *sum += r.amount.fen(),
        }
    }
    Ok((existing, exceeds))
}

/// What the window's statements found, to judge each item by.
struct Window<'w, 'a> {
    items: &'w [NewRefund<'a>],
    first: &'w HashMap<&'w str, usize>,
    exceeds: &'w HashMap<usize, StoreOutcome>,
    inserted: &'w HashSet<String>,
    existing: &'w HashMap<String, StoredKey>,
}

impl Window<'_, '_> {
    /// Item `i`'s outcome; `None` when it was neither inserted nor found.
    fn outcome(&self, i: usize) -> Option<StoreOutcome> {
        let r = self.items[i].request;
        let lead_at = self.first[r.refund_id.as_str()];
        let lead = self.items[lead_at].request;
        let same_as_lead = r.same_refund_as(&lead.partner, &lead.trade_no, lead.amount.fen());
        if let Some(outcome) = self.exceeds.get(&lead_at) {
            return Some(if same_as_lead {
                outcome.clone()
            } else {
                conflict_with(lead)
            });
        }
        if self.inserted.contains(r.refund_id.as_str()) {
            return Some(match (i == lead_at, same_as_lead) {
                (true, _) => StoreOutcome::Stored,
                (false, true) => StoreOutcome::Duplicate,
                (false, false) => conflict_with(lead),
            });
        }
        match self.existing.get(&r.refund_id)? {
            k if r.same_refund_as(&k.partner, &k.trade_no, k.amount_fen) => {
                Some(StoreOutcome::Duplicate)
            }
            k => Some(StoreOutcome::Conflict { stored: k.clone() }),
        }
    }
}

fn conflict_with(r: &RefundRequest) -> StoreOutcome {
    StoreOutcome::Conflict {
        stored: StoredKey {
            partner: r.partner.clone(),
            trade_no: r.trade_no.clone(),
            amount_fen: r.amount.fen(),
        },
    }
}

async fn stored_keys(
    tx: &mut Transaction<'_, Postgres>,
    ids: &[&str],
) -> Result<HashMap<String, StoredKey>, sqlx::Error> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT refund_id, partner, trade_no, amount_fen FROM refunds WHERE refund_id = ANY($1::text[])",
    )
    .bind(ids)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, partner, trade_no, amount_fen)| {
            (
                id,
                StoredKey {
                    partner,
                    trade_no,
                    amount_fen,
                },
            )
        })
        .collect())
}

/// Takes a transaction-scoped advisory lock per trade (in key order) and
/// returns what the trade's stored, not-failed refunds add up to.
async fn lock_and_sum_trades<'r>(
    tx: &mut Transaction<'_, Postgres>,
    requests: impl Iterator<Item = &'r RefundRequest>,
) -> Result<HashMap<TradeKey, i64>, sqlx::Error> {
    let (partners, trades): (Vec<&str>, Vec<&str>) = requests
        .map(|r| (r.partner.as_str(), r.trade_no.as_str()))
        .unzip();
    sqlx::query(
        "SELECT pg_advisory_xact_lock(k) FROM (
             SELECT DISTINCT hashtextextended(p || '/' || t, 0) AS k
             FROM unnest($1::text[], $2::text[]) AS x(p, t) ORDER BY k) AS keys",
    )
    .bind(&partners)
    .bind(&trades)
    .execute(&mut **tx)
    .await?;
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT r.partner, r.trade_no, sum(r.amount_fen)::int8 FROM refunds r
         JOIN (SELECT DISTINCT p, t FROM unnest($1::text[], $2::text[]) AS x(p, t)) AS want
           ON r.partner = want.p AND r.trade_no = want.t
         WHERE r.status <> 'failed' GROUP BY r.partner, r.trade_no",
    )
    .bind(&partners)
    .bind(&trades)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|(p, t, sum)| ((p, t), sum)).collect())
}

/// One statement: the refunds, `ON CONFLICT DO NOTHING`. Arrival is not written
/// to `refund_history` (the row's `received_at` is that record; history holds
/// the changes after it), which halves the rows intake writes. Returns the
/// refund_ids it inserted.
async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    items: &[NewRefund<'_>],
    which: &[usize],
) -> Result<HashSet<String>, sqlx::Error> {
    if which.is_empty() {
        return Ok(HashSet::new());
    }
    let pick = |f: &dyn Fn(&NewRefund) -> Option<String>| -> Vec<Option<String>> {
        which.iter().map(|&i| f(&items[i])).collect()
    };
    let ids = pick(&|n| Some(n.request.refund_id.clone()));
    let partners = pick(&|n| Some(n.request.partner.clone()));
    let trades = pick(&|n| Some(n.request.trade_no.clone()));
    let reasons = pick(&|n| Some(n.request.reason.clone()));
    let metadata = pick(&|n| n.request.metadata.clone());
    let message_ids = pick(&|n| n.message_id.map(str::to_owned));
    let amounts: Vec<i64> = which
        .iter()
        .map(|&i| items[i].request.amount.fen())
        .collect();
    let totals: Vec<Option<i64>> = which
        .iter()
        .map(|&i| items[i].request.trade_amount.map(|a| a.fen()))
        .collect();
    let rows: Vec<(String,)> = sqlx::query_as(
        "WITH input AS (
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[],
                                  $6::int8[], $7::text[], $8::text[])
                 AS t(refund_id, partner, trade_no, amount_fen, reason, trade_amount_fen, metadata, message_id)
         ), ins AS (
             INSERT INTO refunds (refund_id, partner, trade_no, amount_fen, reason, trade_amount_fen,
                                  metadata, metadata_text, message_id)
             SELECT refund_id, partner, trade_no, amount_fen, reason, trade_amount_fen,
                    COALESCE(metadata::jsonb, '{}'::jsonb), metadata, message_id
             -- One order for every writer, so two windows holding the same
             -- ids wait for each other instead of deadlocking.
             FROM input ORDER BY refund_id
             ON CONFLICT (refund_id) DO NOTHING
             RETURNING refund_id
         )
         SELECT refund_id FROM ins",
    )
    .bind(&ids)
    .bind(&partners)
    .bind(&trades)
    .bind(&amounts)
    .bind(&reasons)
    .bind(&totals)
    .bind(&metadata)
    .bind(&message_ids)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}
