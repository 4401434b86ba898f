//! Which fault an OpenAPI call meets: the per-trade script first, else
//! the rates drawn from the one seeded generator.
//!
//! Owns the consumable fault state, kept in the sandbox's `Inner` (seeded
//! from the config at start) so it changes under the one lock with the
//! ledger. Invariants: each refund call for a trade takes at most one
//! scripted fault, in order; each query of a trade takes one unit of its
//! lag while any is left; while any rate is non-zero every refund call
//! takes exactly four values from the generator, whatever the script says,
//! so the draws depend only on the sequence of calls.

use std::collections::{HashMap, VecDeque};

use rand::Rng;

use super::config::{OpenApiFault, OpenApiFaults};
use crate::sandbox::faults::happens;

/// The sub-code of a drawn balance refusal.
pub const SELLER_BALANCE_NOT_ENOUGH: &str = "ACQ.SELLER_BALANCE_NOT_ENOUGH";

/// What is left of the script.
#[derive(Debug, Clone, Default)]
pub struct FaultScript {
    refunds: HashMap<String, VecDeque<OpenApiFault>>,
    query_lag: HashMap<String, u32>,
}

impl FaultScript {
    /// The script as configured.
    pub fn new(faults: &OpenApiFaults) -> Self {
        Self {
            refunds: faults.script.clone(),
            query_lag: faults.query_lag.clone(),
        }
    }

    /// The fault the next refund call for `trade_no` meets, taken off the script.
    pub fn next_refund_fault(&mut self, trade_no: &str) -> Option<OpenApiFault> {
        self.refunds.get_mut(trade_no)?.pop_front()
    }

    /// Whether this query of `trade_no` answers no data whatever the books
    /// say; takes one unit of the trade's lag.
    pub fn lags_query(&mut self, trade_no: &str) -> bool {
        match self.query_lag.get_mut(trade_no) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    }
}

/// The fault one refund call draws from the rates: nothing at all drawn
/// when every rate is 0, else exactly four values. A refusal wins over the
/// faults after a refund; among those, unavailable, then time-out, then
/// bad signature.
pub fn draw_refund_fault(rng: &mut impl Rng, f: &OpenApiFaults) -> Option<OpenApiFault> {
    if !f.rates_on() {
        return None;
    }
    let balance = happens(rng, f.balance_not_enough_rate);
    let unavailable = happens(rng, f.unavailable_after_refund_rate);
    let timeout = happens(rng, f.timeout_after_refund_rate);
    let bad_signature = happens(rng, f.bad_signature_rate);
    if balance {
        Some(OpenApiFault::Refuse {
            sub_code: SELLER_BALANCE_NOT_ENOUGH.to_owned(),
        })
    } else if unavailable {
        Some(OpenApiFault::UnavailableAfterRefund)
    } else if timeout {
        Some(OpenApiFault::TimeoutAfterRefund {
            hold: f.timeout_hold,
        })
    } else if bad_signature {
        Some(OpenApiFault::BadSignatureAfterRefund)
    } else {
        None
    }
}

/// The fault a refund call for `trade_no` meets: the draw is always made
/// (see the module's invariant), the script wins over it.
pub fn refund_fault(
    script: &mut FaultScript,
    rng: &mut impl Rng,
    f: &OpenApiFaults,
    trade_no: &str,
) -> Option<OpenApiFault> {
    let drawn = draw_refund_fault(rng, f);
    script.next_refund_fault(trade_no).or(drawn)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::sandbox::config::Rate;

    #[test]
    fn a_trades_script_is_met_one_fault_per_refund_call_in_order() {
        let faults = OpenApiFaults::default().with_script(
            "T1",
            [
                OpenApiFault::Http503,
                OpenApiFault::Refuse {
                    sub_code: "ACQ.TRADE_HAS_FINISHED".into(),
                },
            ],
        );
        let mut script = FaultScript::new(&faults);
        let mut rng = StdRng::seed_from_u64(1);
        let mut next = |trade: &str| refund_fault(&mut script, &mut rng, &faults, trade);
        assert_eq!(next("T2"), None);
        assert_eq!(next("T1"), Some(OpenApiFault::Http503));
        assert_eq!(
            next("T1"),
            Some(OpenApiFault::Refuse {
                sub_code: "ACQ.TRADE_HAS_FINISHED".into()
            })
        );
        assert_eq!(next("T1"), None);
        // The config still holds the whole script, for a restart.
        assert_eq!(faults.script["T1"].len(), 2);
    }

    #[test]
    fn query_lag_answers_no_data_that_many_times_per_trade() {
        let faults = OpenApiFaults::default().with_query_lag("T1", 2);
        let mut script = FaultScript::new(&faults);
        assert!(script.lags_query("T1"));
        assert!(!script.lags_query("T2"));
        assert!(script.lags_query("T1"));
        assert!(!script.lags_query("T1"));
        assert!(!script.lags_query("T1"));
    }

    #[test]
    fn with_every_rate_zero_nothing_is_drawn() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut untouched = StdRng::seed_from_u64(5);
        assert_eq!(draw_refund_fault(&mut rng, &OpenApiFaults::default()), None);
        assert_eq!(rng.random::<u64>(), untouched.random::<u64>());
    }

    #[test]
    fn rates_draw_four_values_and_the_script_does_not_change_the_sequence() {
        let faults = OpenApiFaults {
            timeout_after_refund_rate: Rate::ALWAYS,
            timeout_hold: Duration::from_millis(7),
            ..OpenApiFaults::default()
        }
        .with_script("T1", [OpenApiFault::BadSignatureAfterRefund]);
        let mut script = FaultScript::new(&faults);
        let mut rng = StdRng::seed_from_u64(5);
        assert_eq!(
            refund_fault(&mut script, &mut rng, &faults, "T1"),
            Some(OpenApiFault::BadSignatureAfterRefund)
        );
        assert_eq!(
            refund_fault(&mut script, &mut rng, &faults, "T1"),
            Some(OpenApiFault::TimeoutAfterRefund {
                hold: Duration::from_millis(7)
            })
        );
        let mut expected = StdRng::seed_from_u64(5);
        for _ in 0..8 {
            expected.random::<f64>();
        }
        assert_eq!(rng.random::<u64>(), expected.random::<u64>());
        let balance = OpenApiFaults {
            balance_not_enough_rate: Rate::ALWAYS,
            unavailable_after_refund_rate: Rate::ALWAYS,
            ..OpenApiFaults::default()
        };
        assert_eq!(
            draw_refund_fault(&mut rng, &balance),
            Some(OpenApiFault::Refuse {
                sub_code: SELLER_BALANCE_NOT_ENOUGH.into()
            })
        );
    }
}
