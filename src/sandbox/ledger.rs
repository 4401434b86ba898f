//! The sandbox's books: trades, the refunds it paid, batches and notifications.
//!
//! Owns every rule about money the sandbox enforces. Invariants: a refund is
//! paid (recorded as `SUCCESS` on its trade) at most once, when its batch is
//! processed, and a batch is processed at most once; the refunds of a trade
//! never sum above what was paid; a trade pays at most 99 refunds, and the
//! 100th is neither paid nor reported, as Alipay does; a `batch_no` is taken
//! once per partner, forever. An item reported with a code Alipay retries
//! itself is unresolved: its amount is held against the trade (so nothing
//! can be paid over it meanwhile) and it is paid, once, when `resolve`
//! settles it. A lagged batch (`backlog`) holds its `batch_no` but pays
//! nothing and shows in no query until its lag is ended. Pure: no clock, no
//! randomness (injected failures come in through a closure), no I/O.

use std::collections::{BTreeMap, HashMap};

use super::checks::{BatchRequest, QueryKey};
use super::realism::is_retried_by_alipay;
use super::refusal::{Code, Refusal};
use crate::alipay::wire::detail::BatchItem;

/// Most refunds Alipay pays on one trade over its life.
pub const MAX_REFUNDS_PER_TRADE: usize = 99;
/// The code of a refund that went through.
pub const SUCCESS: &str = "SUCCESS";
/// The code of a paid-up trade's further refund.
pub const REFUND_TRADE_FEE_ERROR: &str = "REFUND_TRADE_FEE_ERROR";
/// The code of a refund of another partner's trade.
pub const NOT_THIS_PARTNERS_TRADE: &str = "NOT_THIS_PARTNERS_TRADE";

/// Position of a batch in the ledger.
pub type BatchId = usize;

/// Why a password-form batch could not be approved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApproveError {
    /// No batch with that number.
    #[error("no batch {0}")]
    Unknown(String),
    /// Several partners sent that number; name the partner.
    #[error("batch {0} exists for several partners; give partner")]
    Ambiguous(String),
    /// It is not waiting for a password.
    #[error("batch {0} is not waiting for a password")]
    NotWaiting(String),
}

/// The books.
#[derive(Debug, Clone)]
pub struct Ledger {
    trade_paid_fen: i64,
    trades: BTreeMap<String, Trade>,
    batches: Vec<Batch>,
    by_batch_no: HashMap<(String, String), BatchId>,
    notifications: Vec<NotificationRecord>,
    by_notify_id: HashMap<String, usize>,
}

impl Ledger {
    /// Empty books; unknown trades are taken as paid `trade_paid_fen`.
    pub fn new(trade_paid_fen: i64) -> Self {
        Self {
            trade_paid_fen,
            trades: BTreeMap::new(),
            batches: Vec::new(),
            by_batch_no: HashMap::new(),
            notifications: Vec::new(),
            by_notify_id: HashMap::new(),
        }
    }

    /// Records a checked batch, or refuses its `batch_no` as taken.
    pub fn accept(
        &mut self,
        request: BatchRequest,
        awaiting_password: bool,
    ) -> Result<BatchId, Refusal> {
        let state = if awaiting_password {
            BatchState::AwaitingPassword
        } else {
            BatchState::Processed
        };
        self.record(request, state)
    }

    /// Records a checked batch in `state`, or refuses its `batch_no`: as
    /// taken, or with `SYSTEM_ERROR` while the batch that took it is still
    /// in the backlog (Alipay cannot tell it has it yet).
    fn record(&mut self, request: BatchRequest, state: BatchState) -> Result<BatchId, Refusal> {
        let key = (request.partner.clone(), request.batch_no.clone());
        if let Some(taken) = self
            .by_batch_no
            .get(&key)
            .and_then(|id| self.batches.get(*id))
        {
            return Err(if taken.state == BatchState::Lagged {
                Refusal::new(
                    Code::SystemError,
                    format!("batch {} is still in the backlog (injected lag)", key.1),
                )
            } else {
                Refusal::new(
                    Code::DuplicateBatchNo,
                    format!("partner {} sent batch {} before", key.0, key.1),
                )
            });
        }
        let id = self.batches.len();
        self.batches.push(Batch {
            outcomes: vec![ItemOutcome::Pending; request.items.len()],
            earlier_codes: vec![Vec::new(); request.items.len()],
            request,
            state,
        });
        self.by_batch_no.insert(key, id);
        Ok(id)
    }

    /// Turns a password-form batch into one ready to process.
    pub fn approve(
        &mut self,
        partner: Option<&str>,
        batch_no: &str,
    ) -> Result<BatchId, ApproveError> {
        let mut found = self
            .by_batch_no
            .iter()
            .filter(|((p, b), _)| b == batch_no && partner.is_none_or(|want| want == p))
            .map(|(_, id)| *id);
        let id = match (found.next(), found.next()) {
            (Some(id), None) => id,
            (None, _) => return Err(ApproveError::Unknown(batch_no.to_owned())),
            (Some(_), Some(_)) => return Err(ApproveError::Ambiguous(batch_no.to_owned())),
        };
        let batch = &mut self.batches[id];
        if batch.state != BatchState::AwaitingPassword {
            return Err(ApproveError::NotWaiting(batch_no.to_owned()));
        }
        batch.state = BatchState::Processed;
        Ok(id)
    }

    /// Pays or fails each pending item of a batch and returns what to report.
    ///
    /// `inject` may fail an item that would otherwise be paid; a code Alipay
    /// retries itself leaves it unresolved (held, not paid: see `resolve`).
    /// Items already processed are left alone, so a second call pays
    /// nothing twice.
    pub fn process(
        &mut self,
        id: BatchId,
        mut inject: impl FnMut(&BatchItem) -> Option<String>,
    ) -> Vec<ResultLine> {
        let Some(batch) = self.batches.get_mut(id) else {
            return Vec::new();
        };
        if batch.state != BatchState::Processed {
            return Vec::new();
        }
        let mut lines = Vec::new();
        for (item, outcome) in batch.request.items.iter().zip(batch.outcomes.iter_mut()) {
            if *outcome != ItemOutcome::Pending {
                continue;
            }
            let trade = self
                .trades
                .entry(item.trade_no.clone())
                .or_insert_with(|| Trade {
                    partner: batch.request.partner.clone(),
                    paid_fen: self.trade_paid_fen,
                    refunds: Vec::new(),
                });
            let Some(code) = judge(trade, &batch.request.partner, item, &mut inject) else {
                *outcome = ItemOutcome::Ignored;
                continue;
            };
            trade.refunds.push(TradeRefund {
                batch_no: batch.request.batch_no.clone(),
                amount_fen: item.amount_fen,
                code: code.clone(),
                earlier_codes: Vec::new(),
            });
            *outcome = if is_retried_by_alipay(&code) {
                ItemOutcome::Unresolved(code.clone())
            } else {
                ItemOutcome::Done(code.clone())
            };
            lines.push(ResultLine {
                trade_no: item.trade_no.clone(),
                amount_fen: item.amount_fen,
                code,
            });
        }
        lines
    }

    /// Settles a batch's unresolved items as Alipay's own retry does: each
    /// is paid now (its amount was held for it) and reported `SUCCESS`.
    /// Returns what to report; a second call settles nothing twice.
    pub fn resolve(&mut self, id: BatchId) -> Vec<ResultLine> {
        let Some(batch) = self.batches.get_mut(id) else {
            return Vec::new();
        };
        let mut lines = Vec::new();
        let items = batch.request.items.iter().zip(batch.outcomes.iter_mut());
        for ((item, outcome), earlier) in items.zip(batch.earlier_codes.iter_mut()) {
            let ItemOutcome::Unresolved(code) = outcome else {
                continue;
            };
            // A trade is at most once in a batch, so this is its refund.
            if let Some(refund) = self.trades.get_mut(&item.trade_no).and_then(|t| {
                t.refunds
                    .iter_mut()
                    .rev()
                    .find(|r| r.batch_no == batch.request.batch_no && is_retried_by_alipay(&r.code))
            }) {
                refund
                    .earlier_codes
                    .push(std::mem::replace(&mut refund.code, SUCCESS.to_owned()));
            }
            earlier.push(std::mem::take(code));
            *outcome = ItemOutcome::Done(SUCCESS.to_owned());
            lines.push(ResultLine {
                trade_no: item.trade_no.clone(),
                amount_fen: item.amount_fen,
                code: SUCCESS.to_owned(),
            });
        }
        lines
    }

    /// The processed refunds of this partner that match the query.
    pub fn query(&self, partner: &str, key: &QueryKey) -> Vec<QueryRow> {
        let wanted = |b: &Batch| {
            b.request.partner == partner
                && key
                    .batch_no
                    .as_ref()
                    .is_none_or(|n| *n == b.request.batch_no)
        };
        self.batches
            .iter()
            .filter(|b| wanted(b))
            .flat_map(|b| {
                b.request
                    .items
                    .iter()
                    .zip(&b.outcomes)
                    .filter_map(|(item, outcome)| {
                        let code = match outcome {
                            ItemOutcome::Done(code) | ItemOutcome::Unresolved(code) => code,
                            ItemOutcome::Pending | ItemOutcome::Ignored => return None,
                        };
                        let trade_ok = key.trade_no.as_ref().is_none_or(|t| *t == item.trade_no);
                        trade_ok.then(|| QueryRow {
                            batch_no: b.request.batch_no.clone(),
                            line: ResultLine {
                                trade_no: item.trade_no.clone(),
                                amount_fen: item.amount_fen,
                                code: code.clone(),
                            },
                        })
                    })
            })
            .collect()
    }

    /// Every trade, by trade number.
    pub fn trades(&self) -> &BTreeMap<String, Trade> {
        &self.trades
    }

    /// Every batch, in the order accepted.
    pub fn batches(&self) -> &[Batch] {
        &self.batches
    }

    /// All the money refunded, in fen.
    pub fn paid_total_fen(&self) -> i64 {
        self.trades.values().map(Trade::refunded_fen).sum()
    }
}

/// The code of one item, or `None` for a refund Alipay silently ignores.
fn judge(
    trade: &Trade,
    partner: &str,
    item: &BatchItem,
    inject: &mut impl FnMut(&BatchItem) -> Option<String>,
) -> Option<String> {
    if trade.committed().count() >= MAX_REFUNDS_PER_TRADE {
        return None;
    }
    let committed_fen: i64 = trade.committed().map(|r| r.amount_fen).sum();
    let code = if trade.partner != partner {
        NOT_THIS_PARTNERS_TRADE.to_owned()
    } else if committed_fen.saturating_add(item.amount_fen) > trade.paid_fen {
        REFUND_TRADE_FEE_ERROR.to_owned()
    } else {
        inject(item).unwrap_or_else(|| SUCCESS.to_owned())
    };
    Some(code)
}

#[path = "ledger_backlog.rs"]
mod backlog;
#[path = "ledger_records.rs"]
mod records;
pub use records::{Batch, BatchState, ItemOutcome, QueryRow, ResultLine, Trade, TradeRefund};
#[path = "ledger_notifications.rs"]
mod notifications;
pub use notifications::NotificationRecord;

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
