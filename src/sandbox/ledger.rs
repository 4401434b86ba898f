//! The sandbox's books: trades, the refunds it paid, batches and notifications.
//!
//! Owns every rule about money the sandbox enforces. Invariants: a refund is
//! paid (recorded as `SUCCESS` on its trade) at most once, when its batch is
//! processed, and a batch is processed at most once; the refunds of a trade
//! never sum above what was paid; a trade pays at most 99 refunds, and the
//! 100th is neither paid nor reported, as Alipay does; a `batch_no` is taken
//! once per partner, forever. Pure: no clock, no randomness (injected
//! failures come in through a closure), no I/O.

use std::collections::{BTreeMap, HashMap};

use super::checks::{BatchRequest, QueryKey};
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

/// A payment the sandbox believes happened, and its refunds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trade {
    /// The partner whose trade it is: the first to refund it.
    pub partner: String,
    /// What the buyer paid, in fen.
    pub paid_fen: i64,
    /// Every processed refund of it, failed ones included.
    pub refunds: Vec<TradeRefund>,
}

impl Trade {
    /// The sum of the refunds paid, in fen.
    pub fn refunded_fen(&self) -> i64 {
        self.paid().map(|r| r.amount_fen).sum()
    }

    fn paid(&self) -> impl Iterator<Item = &TradeRefund> {
        self.refunds.iter().filter(|r| r.code == SUCCESS)
    }
}

/// One processed refund of a trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeRefund {
    /// The batch that asked for it.
    pub batch_no: String,
    /// In fen.
    pub amount_fen: i64,
    /// `SUCCESS` or why not.
    pub code: String,
}

/// Where a batch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchState {
    /// A password-form batch no operator has approved yet.
    AwaitingPassword,
    /// Paid or failed item by item; notifications follow.
    Processed,
}

/// What happened to one item of a processed batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Not processed yet.
    Pending,
    /// Processed with this code (`SUCCESS` means paid).
    Done(String),
    /// The trade's 100th refund: not paid, not reported.
    Ignored,
}

/// A batch the sandbox accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The request as accepted.
    pub request: BatchRequest,
    /// Where it stands.
    pub state: BatchState,
    /// One outcome per item, in the request's order.
    pub outcomes: Vec<ItemOutcome>,
}

/// One reported result of a processed batch: `trade^amount^CODE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultLine {
    /// The trade refunded.
    pub trade_no: String,
    /// In fen.
    pub amount_fen: i64,
    /// `SUCCESS` or why not.
    pub code: String,
}

impl ResultLine {
    /// Whether the money moved.
    pub fn is_success(&self) -> bool {
        self.code == SUCCESS
    }
}

/// One row of a `refund_fastpay_query` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRow {
    /// The batch.
    pub batch_no: String,
    /// The result.
    pub line: ResultLine,
}

/// A notification the sandbox sent or will send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRecord {
    /// Unique across the sandbox's life.
    pub notify_id: String,
    /// The partner it is signed for; `notify_verify` checks it.
    pub partner: String,
    /// `batch_refund_notify` or `dback`.
    pub kind: &'static str,
    /// The batch it reports.
    pub batch_no: String,
    /// The trade, for a 充退 notification.
    pub trade_no: Option<String>,
    /// Sends tried, dropped ones included.
    pub attempts: u32,
    /// Sends that reached the receiver.
    pub delivered: u32,
    /// Whether the receiver answered `success`.
    pub acknowledged: bool,
}

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
        let key = (request.partner.clone(), request.batch_no.clone());
        if self.by_batch_no.contains_key(&key) {
            return Err(Refusal::new(
                Code::DuplicateBatchNo,
                format!("partner {} sent batch {} before", key.0, key.1),
            ));
        }
        let id = self.batches.len();
        self.batches.push(Batch {
            outcomes: vec![ItemOutcome::Pending; request.items.len()],
            request,
            state: if awaiting_password {
                BatchState::AwaitingPassword
            } else {
                BatchState::Processed
            },
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
    /// `inject` may fail an item that would otherwise be paid. Items already
    /// processed are left alone, so a second call pays nothing twice.
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
            });
            *outcome = ItemOutcome::Done(code.clone());
            lines.push(ResultLine {
                trade_no: item.trade_no.clone(),
                amount_fen: item.amount_fen,
                code,
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
                            ItemOutcome::Done(code) => code,
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

    /// Records a notification; false if its `notify_id` is taken.
    pub fn register_notification(&mut self, record: NotificationRecord) -> bool {
        if self.by_notify_id.contains_key(&record.notify_id) {
            return false;
        }
        self.by_notify_id
            .insert(record.notify_id.clone(), self.notifications.len());
        self.notifications.push(record);
        true
    }

    /// Counts one send of a notification.
    pub fn record_send(&mut self, notify_id: &str, delivered: bool, acknowledged: bool) {
        if let Some(n) = self
            .by_notify_id
            .get(notify_id)
            .and_then(|i| self.notifications.get_mut(*i))
        {
            n.attempts += 1;
            n.delivered += u32::from(delivered);
            n.acknowledged |= acknowledged;
        }
    }

    /// `notify_verify`: whether the sandbox sent this notification to this partner.
    pub fn is_genuine(&self, partner: &str, notify_id: &str) -> bool {
        self.by_notify_id
            .get(notify_id)
            .and_then(|i| self.notifications.get(*i))
            .is_some_and(|n| n.partner == partner)
    }

    /// Every trade, by trade number.
    pub fn trades(&self) -> &BTreeMap<String, Trade> {
        &self.trades
    }

    /// Every batch, in the order accepted.
    pub fn batches(&self) -> &[Batch] {
        &self.batches
    }

    /// Every notification, in the order created.
    pub fn notifications(&self) -> &[NotificationRecord] {
        &self.notifications
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
    if trade.paid().count() >= MAX_REFUNDS_PER_TRADE {
        return None;
    }
    let code = if trade.partner != partner {
        NOT_THIS_PARTNERS_TRADE.to_owned()
    } else if trade.refunded_fen().saturating_add(item.amount_fen) > trade.paid_fen {
        REFUND_TRADE_FEE_ERROR.to_owned()
    } else {
        inject(item).unwrap_or_else(|| SUCCESS.to_owned())
    };
    Some(code)
}

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
