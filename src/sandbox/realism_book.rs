//! The realism book: what was decided about each trade the first time a
//! batch holding it passed the checks, and how often each realistic case was
//! injected.
//!
//! Invariant: a trade's traits are drawn once (two values from the
//! generator) and never change; a trade short of balance is short once.

use std::collections::HashMap;

use rand::Rng;
use serde::Serialize;

use super::super::config::Realism;
use super::super::faults::happens;
use crate::alipay::wire::detail::BatchItem;

/// What was decided about one trade when it was first seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TradeTraits {
    /// Every batch holding it is refused.
    pub poison: bool,
    /// Its next refund that would be paid fails for balance (once).
    pub balance_short: bool,
}

/// A trade's traits; two draws.
fn draw_trade(rng: &mut impl Rng, r: &Realism) -> TradeTraits {
    let poison = happens(rng, r.poison_rate);
    let balance_short = happens(rng, r.balance_not_enough_rate);
    TradeTraits {
        poison,
        balance_short,
    }
}

/// How often each realistic case was injected, as `GET /ledger` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct RealismCounts {
    /// Items written with tails.
    pub tails: u64,
    /// Items written with 5 fields.
    pub five_field: u64,
    /// Paid items written `success`.
    pub lower_case: u64,
    /// Batch notifications sent with empty `result_details`.
    pub empty_details: u64,
    /// Items first reported with a code Alipay retries itself.
    pub non_final: u64,
    /// Refunds failed `TXN_RESULT_ACCOUNT_BALANCE_NOT_ENOUGH` (their trade's first).
    pub balance_not_enough: u64,
    /// Batches refused for a poison trade.
    pub poison_refusals: u64,
    /// Queries answered in XML, `F SYSTEM_ERROR`.
    pub xml_query_errors: u64,
    /// Nopwd batches accepted and answered 429 or 403.
    pub accepted_then_4xx: u64,
    /// Nopwd batches taken into the backlog, answered `SYSTEM_ERROR`.
    pub lagged: u64,
}

impl RealismCounts {
    /// Adds what [`super::items::tally`] counted on some written items.
    pub fn add_shapes(&mut self, (tails, five_field, lower_case): (u64, u64, u64)) {
        self.tails += tails;
        self.five_field += five_field;
        self.lower_case += lower_case;
    }
}

/// The traits of every trade seen while realism is on, and the counts.
#[derive(Debug, Clone, Default)]
pub struct RealismBook {
    traits: HashMap<String, TradeTraits>,
    pub counts: RealismCounts,
}

impl RealismBook {
    /// The first poison trade of a checked batch, drawing the traits of
    /// trades seen for the first time in item order; counts a refusal.
    pub fn poison_in(
        &mut self,
        rng: &mut impl Rng,
        r: &Realism,
        items: &[BatchItem],
    ) -> Option<String> {
        if !r.is_on() {
            return None;
        }
        let mut poison = None;
        for item in items {
            let traits = match self.traits.get(&item.trade_no) {
                Some(t) => *t,
                None => {
                    let t = draw_trade(rng, r);
                    self.traits.insert(item.trade_no.clone(), t);
                    t
                }
            };
            if traits.poison && poison.is_none() {
                poison = Some(item.trade_no.clone());
            }
        }
        self.counts.poison_refusals += u64::from(poison.is_some());
        poison
    }

    /// Whether this refund of the trade, one that would be paid, fails for
    /// balance: true at most once per trade; counts it.
    pub fn take_balance_short(&mut self, trade_no: &str) -> bool {
        let short = self
            .traits
            .get_mut(trade_no)
            .is_some_and(|t| std::mem::take(&mut t.balance_short));
        self.counts.balance_not_enough += u64::from(short);
        short
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{half, item};
    use super::*;
    use crate::sandbox::config::Rate;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn a_poison_trade_stays_poison_and_sinks_every_batch_holding_it() {
        let r = half();
        let mut rng = StdRng::seed_from_u64(11);
        let mut book = RealismBook::default();
        let trades: Vec<String> = (0..40).map(|i| format!("T{i}")).collect();
        let alone: Vec<Option<String>> = trades
            .iter()
            .map(|t| book.poison_in(&mut rng, &r, &[item(t)]))
            .collect();
        let poison: Vec<&String> = trades
            .iter()
            .zip(&alone)
            .filter(|(_, p)| p.is_some())
            .map(|(t, _)| t)
            .collect();
        assert!(!poison.is_empty() && poison.len() < trades.len());
        // Asked again, in any company, each trade answers the same; no
        // more values are drawn for trades already seen.
        let before = rng.clone().random::<u64>();
        for (t, was) in trades.iter().zip(&alone) {
            assert_eq!(
                book.poison_in(&mut rng, &r, &[item(t)]).as_ref(),
                was.as_ref()
            );
        }
        assert_eq!(rng.random::<u64>(), before);
        let all: Vec<BatchItem> = trades.iter().map(|t| item(t)).collect();
        assert_eq!(book.poison_in(&mut rng, &r, &all).as_ref(), Some(poison[0]));
        assert_eq!(book.counts.poison_refusals, poison.len() as u64 * 2 + 1);
    }

    #[test]
    fn a_trade_is_short_of_balance_once() {
        let r = Realism {
            balance_not_enough_rate: Rate::ALWAYS,
            ..Realism::default()
        };
        let mut rng = StdRng::seed_from_u64(2);
        let mut book = RealismBook::default();
        assert_eq!(book.poison_in(&mut rng, &r, &[item("T1")]), None);
        assert!(book.take_balance_short("T1"));
        assert!(!book.take_balance_short("T1"));
        // A trade never seen while realism was on is never short.
        assert!(!book.take_balance_short("T2"));
        assert_eq!(book.counts.balance_not_enough, 1);
    }
}
