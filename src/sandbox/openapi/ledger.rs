//! The OpenAPI books: trades by `trade_no`, their refunds by
//! `out_request_no`, the 充退 status of each, and how many calls came.
//!
//! Owns every rule about money for `alipay.trade.refund`. Invariants: a
//! refund is keyed by `(trade_no, out_request_no)` and its money moves at
//! most once (a repeat with the same amount moves nothing, one with another
//! amount is refused); the refunds of a trade never sum above what it was
//! paid; amounts are integer fen. `times_paid` and `moved_fen` count every
//! movement where it happens, so a test can prove "paid once". Pure: the
//! caller passes the time; no randomness, no I/O. Kept apart from the mapi
//! ledger: the channels share no trades, and the mapi `paid_total` stays
//! what it was.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use serde::Serialize;

/// Answers' time format (Beijing time).
const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// The OpenAPI books.
#[derive(Debug, Clone)]
pub struct OpenApiLedger {
    trade_paid_fen: i64,
    trades: BTreeMap<String, Trade>,
    moved_fen: i64,
    calls: CallCounts,
}

/// How many calls of each kind arrived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CallCounts {
    /// `alipay.trade.refund` calls that passed the common checks.
    pub refund: u64,
    /// `alipay.trade.fastpay.refund.query` calls that passed the common checks.
    pub query: u64,
    /// Calls refused by the common checks (app, signature, parameters, method).
    pub refused: u64,
    /// 充退 pushes sent.
    pub depositback_pushes: u64,
}

/// One trade.
#[derive(Debug, Clone)]
pub struct Trade {
    pub paid_fen: i64,
    /// The merchant's order number, as first given (or made up from `trade_no`).
    pub out_trade_no: String,
    pub refunds: BTreeMap<String, Refund>,
}

impl Trade {
    /// What was refunded on the trade, in fen.
    pub fn refunded_fen(&self) -> i64 {
        self.refunds.values().map(|r| r.amount_fen).sum()
    }
}

/// One refund made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// The app that asked for it (the 充退 push goes out under it).
    pub app_id: String,
    pub amount_fen: i64,
    /// How often its money moved: 1, unless the sandbox has a bug.
    pub times_paid: u32,
    /// Calls that repeated it (answered `fund_change N`).
    pub repeats: u32,
    pub gmt_refund_pay: NaiveDateTime,
    /// `S` or `F` once a 充退 status was set.
    pub dback_status: Option<String>,
}

/// A refund call, as the ledger takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundAsk {
    pub app_id: String,
    pub trade_no: String,
    pub out_trade_no: Option<String>,
    pub out_request_no: String,
    pub amount_fen: i64,
}

/// A refund made now, or found made before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundDone {
    /// True when the money moved on this call.
    pub fund_change: bool,
    /// Everything refunded on the trade so far, in fen.
    pub refund_fee_fen: i64,
    pub trade_no: String,
    pub out_trade_no: String,
    pub gmt_refund_pay: String,
}

/// Why a refund call moved no money.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundRefused {
    /// The same `out_request_no` came before with another amount.
    DiscordantRepeat { before_fen: i64 },
    /// More than the rest of what the trade was paid.
    AboveRest { rest_fen: i64 },
}

/// What a query finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub out_trade_no: String,
    pub amount_fen: i64,
    /// The trade's paid amount.
    pub total_fen: i64,
    pub dback_status: Option<String>,
}

/// What a 充退 push needs to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepositBackFacts {
    pub app_id: String,
    pub trade_no: String,
    pub out_trade_no: String,
    pub out_request_no: String,
    /// `S` or `F`.
    pub status: String,
    pub amount_fen: i64,
}

impl OpenApiLedger {
    /// Empty books; a trade first seen is taken as paid `trade_paid_fen`.
    pub fn new(trade_paid_fen: i64) -> Self {
        Self {
            trade_paid_fen,
            trades: BTreeMap::new(),
            moved_fen: 0,
            calls: CallCounts::default(),
        }
    }

    /// Makes a refund, finds it made before, or refuses it.
    pub fn refund(
        &mut self,
        ask: RefundAsk,
        beijing: NaiveDateTime,
    ) -> Result<RefundDone, RefundRefused> {
        let paid_fen = self.trade_paid_fen;
        let trade = self
            .trades
            .entry(ask.trade_no.clone())
            .or_insert_with(|| Trade {
                paid_fen,
                out_trade_no: ask
                    .out_trade_no
                    .clone()
                    .unwrap_or_else(|| format!("OUT-{}", ask.trade_no)),
                refunds: BTreeMap::new(),
            });
        let refunded_fen = trade.refunded_fen();
        let fund_change = match trade.refunds.get_mut(&ask.out_request_no) {
            Some(before) if before.amount_fen == ask.amount_fen => {
                before.repeats += 1;
                false
            }
            Some(before) => {
                return Err(RefundRefused::DiscordantRepeat {
                    before_fen: before.amount_fen,
                });
            }
            None if ask.amount_fen > trade.paid_fen - refunded_fen => {
                return Err(RefundRefused::AboveRest {
                    rest_fen: trade.paid_fen - refunded_fen,
                });
            }
            None => {
                trade.refunds.insert(
                    ask.out_request_no.clone(),
                    Refund {
                        app_id: ask.app_id,
                        amount_fen: ask.amount_fen,
                        times_paid: 1,
                        repeats: 0,
                        gmt_refund_pay: beijing,
                        dback_status: None,
                    },
                );
                self.moved_fen += ask.amount_fen;
                true
            }
        };
        let gmt = trade
            .refunds
            .get(&ask.out_request_no)
            .map(|r| r.gmt_refund_pay)
            .unwrap_or(beijing);
        Ok(RefundDone {
            fund_change,
            refund_fee_fen: trade.refunded_fen(),
            trade_no: ask.trade_no,
            out_trade_no: trade.out_trade_no.clone(),
            gmt_refund_pay: gmt.format(TIME_FORMAT).to_string(),
        })
    }

    /// The refund under `out_request_no`, if it was made.
    pub fn query(&self, trade_no: &str, out_request_no: &str) -> Option<Found> {
        let trade = self.trades.get(trade_no)?;
        let refund = trade.refunds.get(out_request_no)?;
        Some(Found {
            out_trade_no: trade.out_trade_no.clone(),
            amount_fen: refund.amount_fen,
            total_fen: trade.paid_fen,
            dback_status: refund.dback_status.clone(),
        })
    }

    /// Records the 充退 status of a refund made; `None` when there is none.
    pub fn set_dback(
        &mut self,
        trade_no: &str,
        out_request_no: &str,
        status: &str,
    ) -> Option<DepositBackFacts> {
        let trade = self.trades.get_mut(trade_no)?;
        let refund = trade.refunds.get_mut(out_request_no)?;
        refund.dback_status = Some(status.to_owned());
        Some(DepositBackFacts {
            app_id: refund.app_id.clone(),
            trade_no: trade_no.to_owned(),
            out_trade_no: trade.out_trade_no.clone(),
            out_request_no: out_request_no.to_owned(),
            status: status.to_owned(),
            amount_fen: refund.amount_fen,
        })
    }

    /// How often the money of this refund moved (0 if it never did).
    pub fn times_paid(&self, trade_no: &str, out_request_no: &str) -> u32 {
        self.trades
            .get(trade_no)
            .and_then(|t| t.refunds.get(out_request_no))
            .map_or(0, |r| r.times_paid)
    }

    /// Every fen that moved, over all trades.
    pub fn moved_fen(&self) -> i64 {
        self.moved_fen
    }

    /// Every trade seen in a refund call.
    pub fn trades(&self) -> &BTreeMap<String, Trade> {
        &self.trades
    }

    pub fn calls(&self) -> CallCounts {
        self.calls
    }

    /// Counts calls as they arrive.
    pub fn calls_mut(&mut self) -> &mut CallCounts {
        &mut self.calls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 12, 6)
            .and_then(|d| d.and_hms_opt(14, 0, 1))
            .unwrap()
    }

    fn ask(trade_no: &str, out_request_no: &str, amount_fen: i64) -> RefundAsk {
        RefundAsk {
            app_id: "2021000000000001".into(),
            trade_no: trade_no.into(),
            out_trade_no: Some("O-1".into()),
            out_request_no: out_request_no.into(),
            amount_fen,
        }
    }

    #[test]
    fn a_new_request_within_the_rest_moves_money_once_and_a_repeat_moves_none() {
        let mut l = OpenApiLedger::new(10_000);
        let first = l.refund(ask("T1", "R-1", 1050), at()).unwrap();
        assert!(first.fund_change);
        assert_eq!(first.refund_fee_fen, 1050);
        assert_eq!(first.out_trade_no, "O-1");
        assert_eq!(first.gmt_refund_pay, "2026-12-06 14:00:01");
        let later = at() + chrono::Duration::seconds(30);
        let again = l.refund(ask("T1", "R-1", 1050), later).unwrap();
        assert!(!again.fund_change);
        // The repeat tells the refund's own time, not the time of the repeat.
        assert_eq!(again.gmt_refund_pay, first.gmt_refund_pay);
        assert_eq!(again.refund_fee_fen, 1050);
        assert_eq!(l.times_paid("T1", "R-1"), 1);
        assert_eq!(l.moved_fen(), 1050);
        let second = l.refund(ask("T1", "R-2", 50), at()).unwrap();
        assert!(second.fund_change);
        assert_eq!(second.refund_fee_fen, 1100);
        assert_eq!(l.moved_fen(), 1100);
        assert_eq!(l.trades()["T1"].refunds["R-1"].repeats, 1);
        assert_eq!(l.times_paid("T1", "R-3"), 0);
    }

    #[test]
    fn another_amount_under_a_used_number_and_more_than_the_rest_are_refused() {
        let mut l = OpenApiLedger::new(1000);
        l.refund(ask("T1", "R-1", 600), at()).unwrap();
        assert_eq!(
            l.refund(ask("T1", "R-1", 601), at()),
            Err(RefundRefused::DiscordantRepeat { before_fen: 600 })
        );
        assert_eq!(
            l.refund(ask("T1", "R-2", 401), at()),
            Err(RefundRefused::AboveRest { rest_fen: 400 })
        );
        assert!(l.refund(ask("T1", "R-2", 400), at()).unwrap().fund_change);
        assert_eq!(
            l.refund(ask("T1", "R-3", 1), at()),
            Err(RefundRefused::AboveRest { rest_fen: 0 })
        );
        assert_eq!(l.moved_fen(), 1000);
        assert_eq!(l.times_paid("T1", "R-2"), 1);
        // Trades are apart: another trade has its own paid amount.
        assert!(l.refund(ask("T2", "R-1", 1000), at()).unwrap().fund_change);
    }

    #[test]
    fn a_query_finds_only_refunds_made_and_a_dback_status_only_on_them() {
        let mut l = OpenApiLedger::new(1000);
        assert_eq!(l.query("T1", "R-1"), None);
        assert_eq!(l.set_dback("T1", "R-1", "S"), None);
        l.refund(ask("T1", "R-1", 250), at()).unwrap();
        assert_eq!(l.query("T1", "R-2"), None);
        let found = l.query("T1", "R-1").unwrap();
        assert_eq!((found.amount_fen, found.total_fen), (250, 1000));
        assert_eq!(found.dback_status, None);
        let facts = l.set_dback("T1", "R-1", "F").unwrap();
        assert_eq!(facts.amount_fen, 250);
        assert_eq!(facts.app_id, "2021000000000001");
        assert_eq!(
            l.query("T1", "R-1").unwrap().dback_status.as_deref(),
            Some("F")
        );
    }

    #[test]
    fn a_trade_without_its_order_number_gets_one_made_up() {
        let mut l = OpenApiLedger::new(1000);
        let mut a = ask("T9", "R-1", 1);
        a.out_trade_no = None;
        assert_eq!(l.refund(a, at()).unwrap().out_trade_no, "OUT-T9");
    }
}
