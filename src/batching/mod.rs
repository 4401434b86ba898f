//! The batcher role: forms batches from pending refunds.
//!
//! One step is one short transaction: read the oldest partner's pending
//! refunds, pick a trade at most once, lock the picked ones (`FOR UPDATE SKIP
//! LOCKED`, so two batchers never take the same refund), cut the batch when it
//! is full or its oldest refund has lingered, fail a trade's 100th refund
//! instead of sending it, number the batch and write it. The bytes Alipay
//! will see (`batch_no`, `refund_date`, `detail_data`) are fixed here, so
//! every retry sends the same.

pub(crate) mod form;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::alipay::wire::batch_no::beijing_now;
use crate::alipay::wire::reason::sendable;
use crate::config::BatchSettings;
use crate::domain::RefundStatus;
use crate::domain::actor::{Actor, Source};
use crate::domain::batch::{BatchItem, Candidate, MAX_REFUNDS_PER_TRADE, due, pick};
use crate::role_loop::{self, Pace, Role};
use crate::storage::batches as store;
use crate::storage::transitions::{self, Failure};
use form::Forming;

/// The worker's own code for a trade's 100th refund.
pub const REFUND_COUNT_EXCEEDED: &str = "REFUND_COUNT_EXCEEDED";
/// Pending refunds looked at per step, in batches' worth.
const LOOK_AHEAD: usize = 8;
/// How long an idle batcher waits before looking again.
const IDLE_POLL: Duration = Duration::from_millis(250);
/// How long a batcher waits when another one holds every refund it picked.
const CONTENDED_POLL: Duration = Duration::from_millis(20);

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A batch was written.
    Formed {
        batch_no: String,
        items: usize,
        failed: usize,
    },
    /// Only refunds over the trade limit were found; they failed.
    FailedOnly { failed: usize },
    /// Refunds wait, but no batch is due before this time.
    NotDue(DateTime<Utc>),
    /// Every refund picked was locked by another batcher.
    Contended,
    /// No pending refund can go into a batch now.
    Idle,
}

/// The refunds of the next batch among `candidates` (arrival order): the
/// first refund of each trade that is not busy, up to `max`. Whether a trade
/// is busy is asked a batch's worth of trades at a time, in arrival order,
/// until the batch is full or the window is used up: one round in the usual
/// case instead of one index probe for every trade of the window. Also
/// returns what was learnt: the trades with other refunds, busy or not.
async fn pick_free(
    conn: &mut PgConnection,
    partner: &str,
    candidates: &[Candidate],
    max: usize,
) -> Result<(Vec<Candidate>, HashMap<String, bool>), sqlx::Error> {
    let mut seen = HashSet::new();
    let order: Vec<&str> = candidates
        .iter()
        .map(|c| c.trade_no.as_str())
        .filter(|t| seen.insert(*t))
        .collect();
    let mut repeat = HashMap::new();
    let mut known = HashSet::new();
    for asking in order.chunks(max.max(1)) {
        repeat.extend(store::repeat_trades(conn, partner, asking).await?);
        known.extend(asking.iter().copied());
        let free = candidates
            .iter()
            .filter(|c| known.contains(c.trade_no.as_str()))
            .filter(|c| repeat.get(&c.trade_no) != Some(&true))
            .cloned()
            .collect();
        let picked = pick(free, max);
        if picked.len() >= max || known.len() == order.len() {
            return Ok((picked, repeat));
        }
    }
    Ok((Vec::new(), repeat))
}

/// A partner, its refunds picked for a batch, and its trades with other refunds.
type Picked = (String, Vec<Candidate>, HashMap<String, bool>);

/// Fails the picked refunds whose trade already has 99 accepted by Alipay
/// (invariant 5b); the others, and how many failed.
async fn fail_over_limit<'a>(
    tx: &mut PgConnection,
    partner: &str,
    picked: &'a [Candidate],
    repeat: &HashMap<String, bool>,
) -> anyhow::Result<(Vec<&'a Candidate>, usize)> {
    // Only a trade with other refunds can have 99 accepted already.
    let repeated: Vec<&str> = picked
        .iter()
        .map(|c| c.trade_no.as_str())
        .filter(|t| repeat.contains_key(*t))
        .collect();
    let counts = if repeated.is_empty() {
        Default::default()
    } else {
        store::accepted_refund_counts(tx, partner, &repeated).await?
    };
    let (over, keep): (Vec<_>, Vec<_>) = picked
        .iter()
        .partition(|c| counts.get(&c.trade_no).copied().unwrap_or(0) >= MAX_REFUNDS_PER_TRADE);
    let over_ids: Vec<&str> = over.iter().map(|c| c.refund_id.as_str()).collect();
    if !over_ids.is_empty() {
        let message = "the trade already has 99 refunds accepted by Alipay, which would neither pay nor notify a 100th";
        let failure = Failure {
            refund_ids: &over_ids,
            from: RefundStatus::Pending,
            batch_no: None,
            code: REFUND_COUNT_EXCEEDED,
            message,
            source: Source::Worker,
            actor: &Actor::Batcher,
        };
        transitions::fail(tx, &failure).await?;
        tracing::warn!(partner, refunds = ?over_ids, "failed refunds over Alipay's 99 per trade");
    }
    Ok((keep, over_ids.len()))
}

/// A refund's item as the batch sends it: the original reason stays on the
/// refund; the batch keeps what it sent.
fn item_of(c: &Candidate) -> (String, BatchItem) {
    let item = BatchItem {
        trade_no: c.trade_no.clone(),
        amount_fen: c.amount_fen,
        reason: sendable(&c.reason),
    };
    (c.refund_id.clone(), item)
}

#[derive(Clone)]
pub struct Batcher {
    pub pool: PgPool,
    pub settings: BatchSettings,
}

impl Batcher {
    /// Forms at most one batch, judged at `now`.
    pub async fn step(&self, now: DateTime<Utc>) -> anyhow::Result<Step> {
        let mut tx = self.pool.begin().await?;
        // Every early return rolls back explicitly: a dropped transaction is
        // only rolled back when its connection is next used, and until then its
        // row locks would hide these refunds from every batcher (SKIP LOCKED).
        let (partner, picked, repeat) = match self.choose(&mut tx, now).await? {
            Ok(chosen) => chosen,
            Err(step) => {
                tx.rollback().await?;
                return Ok(step);
            }
        };
        let (keep, failed) = fail_over_limit(&mut tx, &partner, &picked, &repeat).await?;
        if keep.is_empty() {
            tx.commit().await?;
            crate::telemetry::refunds_completed("failed", failed as u64);
            return Ok(Step::FailedOnly { failed });
        }
        let items: Vec<(String, BatchItem)> = keep.iter().map(|c| item_of(c)).collect();
        let forming = Forming {
            prefix: &self.settings.batch_no_prefix,
            partner: &partner,
            beijing: beijing_now(now),
            items: &items,
            from_batch: None,
            from: RefundStatus::Pending,
            actor: &Actor::Batcher,
        };
        let batch_no = form::write(&mut tx, &forming).await?;
        tx.commit().await?;
        crate::telemetry::refunds_completed("failed", failed as u64);
        metrics::histogram!("refund_worker_batch_size").record(items.len() as f64);
        tracing::info!(batch_no, partner, items = items.len(), "batch formed");
        Ok(Step::Formed {
            batch_no,
            items: items.len(),
            failed,
        })
    }

    /// The partner whose batch is due (the one waiting longest first), its
    /// picked and locked refunds, and its trades with other refunds; or, when
    /// no batch is due, what the step says instead.
    async fn choose(
        &self,
        tx: &mut PgConnection,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Result<Picked, Step>> {
        let max = self.settings.max_items;
        let mut next_due: Option<DateTime<Utc>> = None;
        let mut contended = false;
        for partner in store::partners_by_oldest_pending(tx).await? {
            if self.settings.openapi_partners.contains(&partner) {
                // Its refunds go one per call through the OpenAPI submitter.
                continue;
            }
            // Several batches' worth, so refunds of busy trades (a trade's
            // later partial refunds wait for its first) do not crowd the
            // others out and keep only one batch in flight.
            let window = (LOOK_AHEAD * max) as i64;
            let candidates = store::pending_window(tx, &partner, window, now).await?;
            let (mut picked, repeat) = pick_free(tx, &partner, &candidates, max).await?;
            if picked.is_empty() {
                continue;
            }
            let ids: Vec<&str> = picked.iter().map(|c| c.refund_id.as_str()).collect();
            let locked = store::lock_pending(tx, &ids).await?;
            if locked.len() < picked.len() {
                // Another batcher holds some of them: batch the rest, and
                // look again soon if none is left.
                picked.retain(|c| locked.contains(&c.refund_id));
                if picked.is_empty() {
                    contended = true;
                    continue;
                }
            }
            match due(&picked, max, self.settings.linger, now) {
                Ok(()) => return Ok(Ok((partner, picked, repeat))),
                Err(at) => next_due = Some(next_due.map_or(at, |n| n.min(at))),
            }
        }
        if contended {
            return Ok(Err(Step::Contended));
        }
        Ok(Err(next_due.map_or(Step::Idle, Step::NotDue)))
    }

    /// Steps until shutdown ([`role_loop`]).
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        role_loop::run(self, shutdown).await
    }
}

/// At once after a batch; until the next one is due otherwise.
impl Role for Batcher {
    const NAME: &'static str = "batcher";

    async fn work(&mut self, _: &CancellationToken) -> anyhow::Result<Pace> {
        Ok(match self.step(Utc::now()).await? {
            Step::Formed { .. } | Step::FailedOnly { .. } => Pace::Busy,
            Step::NotDue(at) => Pace::Idle(
                (at - Utc::now())
                    .to_std()
                    .unwrap_or_default()
                    .min(IDLE_POLL),
            ),
            Step::Contended => Pace::Idle(CONTENDED_POLL),
            Step::Idle => Pace::Idle(IDLE_POLL),
        })
    }
}
