//! The ledger's entries: trades and their refunds, batches and their items,
//! and the result lines reported from them. The rules that change them live
//! in `ledger.rs`; here only what each entry says about itself.
//!
//! Invariant: a refund counts as paid only with the code `SUCCESS`; one
//! with a code Alipay retries itself is committed (held against its trade)
//! but not paid.

use super::{BatchRequest, SUCCESS, is_retried_by_alipay};

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

    /// The refunds paid and those held until Alipay's own retry settles them.
    pub(super) fn committed(&self) -> impl Iterator<Item = &TradeRefund> {
        self.refunds
            .iter()
            .filter(|r| r.code == SUCCESS || is_retried_by_alipay(&r.code))
    }
}

/// One processed refund of a trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeRefund {
    /// The batch that asked for it.
    pub batch_no: String,
    /// In fen.
    pub amount_fen: i64,
    /// `SUCCESS` or why not; a code Alipay retries itself while unresolved.
    pub code: String,
    /// The codes reported before `code`, oldest first (a settled item's
    /// non-final code); empty for most.
    pub earlier_codes: Vec<String>,
}

impl TradeRefund {
    /// Every code the sandbox reported for it, oldest first.
    pub fn reported_codes(&self) -> Vec<String> {
        let mut codes = self.earlier_codes.clone();
        codes.push(self.code.clone());
        codes
    }
}

/// Where a batch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchState {
    /// A password-form batch no operator has approved yet.
    AwaitingPassword,
    /// Taken, but still in Alipay's backlog: not processed, not visible to
    /// queries, and a resend is answered `SYSTEM_ERROR` (see `backlog`).
    Lagged,
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
    /// Reported with this code Alipay retries itself; not paid yet.
    Unresolved(String),
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
    /// Per item, the codes reported before its outcome's, oldest first.
    pub earlier_codes: Vec<Vec<String>>,
}

impl Batch {
    /// Every code the sandbox reported for item `i`, oldest first.
    pub fn reported_codes(&self, i: usize) -> Vec<String> {
        let mut codes = self.earlier_codes.get(i).cloned().unwrap_or_default();
        match self.outcomes.get(i) {
            Some(ItemOutcome::Done(code) | ItemOutcome::Unresolved(code)) => {
                codes.push(code.clone())
            }
            Some(ItemOutcome::Pending | ItemOutcome::Ignored) | None => {}
        }
        codes
    }
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
