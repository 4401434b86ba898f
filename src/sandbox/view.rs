//! `GET /ledger`: the books as JSON, for tests, demos and benchmarks.
//!
//! Owns the JSON shape. Invariant: amounts are `"x.xx"` strings made from
//! integer fen, never floats, so a test comparing totals compares exactly;
//! `paid_total` is the sum of every `SUCCESS` refund, so a refund paid
//! twice shows up there. Each refund and item carries every code the
//! sandbox reported for it over time (`reported_codes`, oldest first, in
//! canonical spelling whatever shape the text had), and `realism` counts
//! each realistic case injected. The OpenAPI refunds are in their own
//! `openapi` section and not in `paid_total`, which stays the mapi total.

use serde::Serialize;

use super::checks::Service;
use super::ledger::{Batch, BatchState, ItemOutcome, Ledger, NotificationRecord, Trade};
pub use super::realism::RealismCounts;
use crate::alipay::wire::amount::format_amount;
use crate::alipay::wire::detail::BatchItem;
use crate::sandbox::openapi::OpenApiLedger;
pub use crate::sandbox::openapi::view::OpenApiView;

/// The whole ledger.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerView {
    /// Every trade seen, by trade number.
    pub trades: Vec<TradeView>,
    /// Every accepted batch, oldest first.
    pub batches: Vec<BatchView>,
    /// Every notification, oldest first.
    pub notifications: Vec<NotificationView>,
    /// All the money refunded, yuan.
    pub paid_total: String,
    /// The same in fen.
    pub paid_total_fen: i64,
    /// How often each realistic case was injected.
    pub realism: RealismCounts,
    /// The refunds made through the OpenAPI methods, and the calls counted.
    pub openapi: OpenApiView,
}

/// One trade.
#[derive(Debug, Clone, Serialize)]
pub struct TradeView {
    pub trade_no: String,
    pub partner: String,
    pub paid: String,
    pub refunded: String,
    pub refunds: Vec<RefundView>,
}

/// One processed refund of a trade.
#[derive(Debug, Clone, Serialize)]
pub struct RefundView {
    pub batch_no: String,
    pub amount: String,
    pub code: String,
    /// Every code reported for it, oldest first: `["TRADE_PAYMENT_ERROR",
    /// "SUCCESS"]` for one Alipay settled by its own retry.
    pub reported_codes: Vec<String>,
}

/// One batch.
#[derive(Debug, Clone, Serialize)]
pub struct BatchView {
    pub batch_no: String,
    pub partner: String,
    pub service: &'static str,
    /// `awaiting_password`, `lagged` (taken, still in Alipay's backlog) or `processed`.
    pub state: &'static str,
    pub items: Vec<ItemView>,
}

/// One item of a batch.
#[derive(Debug, Clone, Serialize)]
pub struct ItemView {
    pub trade_no: String,
    pub amount: String,
    pub reason: String,
    /// `pending`, `done`, `unresolved` (reported with a code Alipay
    /// retries itself, not paid yet) or `ignored` (a trade's 100th refund).
    pub outcome: &'static str,
    /// The code of a done or unresolved item.
    pub code: Option<String>,
    /// Every code reported for it, oldest first.
    pub reported_codes: Vec<String>,
}

/// One notification.
#[derive(Debug, Clone, Serialize)]
pub struct NotificationView {
    pub notify_id: String,
    /// `batch_refund_notify` or `dback`.
    pub kind: &'static str,
    pub batch_no: String,
    pub trade_no: Option<String>,
    /// Sends tried, dropped ones included.
    pub attempts: u32,
    /// Sends that reached the receiver (duplicates included).
    pub delivered: u32,
    pub acknowledged: bool,
}

impl LedgerView {
    /// A snapshot of the books, of the realism counts and of the OpenAPI books.
    pub fn of(ledger: &Ledger, realism: RealismCounts, openapi: &OpenApiLedger) -> Self {
        let paid_total_fen = ledger.paid_total_fen();
        Self {
            trades: ledger
                .trades()
                .iter()
                .map(|(trade_no, t)| TradeView::of(trade_no, t))
                .collect(),
            batches: ledger.batches().iter().map(BatchView::of).collect(),
            notifications: ledger
                .notifications()
                .iter()
                .map(NotificationView::of)
                .collect(),
            paid_total: format_amount(paid_total_fen),
            paid_total_fen,
            realism,
            openapi: OpenApiView::of(openapi),
        }
    }
}

impl TradeView {
    fn of(trade_no: &str, t: &Trade) -> Self {
        TradeView {
            trade_no: trade_no.to_owned(),
            partner: t.partner.clone(),
            paid: format_amount(t.paid_fen),
            refunded: format_amount(t.refunded_fen()),
            refunds: t
                .refunds
                .iter()
                .map(|r| RefundView {
                    batch_no: r.batch_no.clone(),
                    amount: format_amount(r.amount_fen),
                    code: r.code.clone(),
                    reported_codes: r.reported_codes(),
                })
                .collect(),
        }
    }
}

impl BatchView {
    fn of(b: &Batch) -> Self {
        BatchView {
            batch_no: b.request.batch_no.clone(),
            partner: b.request.partner.clone(),
            service: Service::name(b.request.service),
            state: match b.state {
                BatchState::AwaitingPassword => "awaiting_password",
                BatchState::Lagged => "lagged",
                BatchState::Processed => "processed",
            },
            items: b
                .request
                .items
                .iter()
                .zip(&b.outcomes)
                .enumerate()
                .map(|(n, (i, o))| ItemView::of(i, o, b.reported_codes(n)))
                .collect(),
        }
    }
}

impl ItemView {
    fn of(i: &BatchItem, o: &ItemOutcome, reported_codes: Vec<String>) -> Self {
        ItemView {
            trade_no: i.trade_no.clone(),
            amount: format_amount(i.amount_fen),
            reason: i.reason.clone(),
            outcome: match o {
                ItemOutcome::Pending => "pending",
                ItemOutcome::Done(_) => "done",
                ItemOutcome::Unresolved(_) => "unresolved",
                ItemOutcome::Ignored => "ignored",
            },
            code: match o {
                ItemOutcome::Done(code) | ItemOutcome::Unresolved(code) => Some(code.clone()),
                ItemOutcome::Pending | ItemOutcome::Ignored => None,
            },
            reported_codes,
        }
    }
}

impl NotificationView {
    fn of(n: &NotificationRecord) -> Self {
        NotificationView {
            notify_id: n.notify_id.clone(),
            kind: n.kind,
            batch_no: n.batch_no.clone(),
            trade_no: n.trade_no.clone(),
            attempts: n.attempts,
            delivered: n.delivered,
            acknowledged: n.acknowledged,
        }
    }
}
