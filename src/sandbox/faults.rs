//! Drawing the injected faults from the one seeded generator.
//!
//! Owns when a fault happens. Invariant: each draw function takes a fixed
//! number of values from the generator whatever the rates, and draws happen
//! under the sandbox's lock in request order, so the same seed and the same
//! sequence of requests give the same faults: a run can be replayed. The
//! realistic cases (`realism`) are drawn from the same generator by the
//! same rule.

use std::time::Duration;

use rand::Rng;

use super::config::{Faults, Rate, TimeScale};

/// Sends of one notification at most: the first and seven resends.
pub const SENDS: usize = 8;

/// What goes wrong with one gateway request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestFaults {
    /// Wait this long before answering.
    pub latency: Option<Duration>,
    /// Answer 503 and do nothing.
    pub http_5xx: bool,
    /// Answer `F SYSTEM_ERROR` and do nothing.
    pub system_error: bool,
    /// Accept the batch, then hold the answer this long.
    pub hold_after_accept: Option<Duration>,
    /// Accept the batch, then answer `P`.
    pub processing: bool,
}

/// What goes wrong with one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NotifyPlan {
    /// Wait this long (already scaled) before the first send.
    pub first_delay: Duration,
    /// Wait until a later notification has gone out first.
    pub reorder: bool,
    /// Per send: lost on the way.
    pub drop: [bool; SENDS],
    /// Per send: delivered twice.
    pub duplicate: [bool; SENDS],
}

/// Whether an event of this rate happens; takes exactly one value.
pub(super) fn happens(rng: &mut impl Rng, rate: Rate) -> bool {
    // random::<f64>() is in [0, 1), so rate 0 never happens and rate 1 always does.
    rng.random::<f64>() < rate.get()
}

/// The faults of one gateway request.
pub fn draw_request(rng: &mut impl Rng, f: &Faults) -> RequestFaults {
    let latency = happens(rng, f.latency_rate);
    let http_5xx = happens(rng, f.http_5xx_rate);
    let system_error = happens(rng, f.system_error_rate);
    let hold = happens(rng, f.timeout_after_accept_rate);
    let processing = happens(rng, f.processing_rate);
    RequestFaults {
        latency: (latency && !f.latency.is_zero()).then_some(f.latency),
        http_5xx,
        system_error,
        hold_after_accept: hold.then_some(f.timeout_hold),
        processing,
    }
}

/// The faults of one notification.
pub fn draw_notify(rng: &mut impl Rng, f: &Faults, scale: TimeScale) -> NotifyPlan {
    let delayed = happens(rng, f.notify_delay_rate);
    let reorder = happens(rng, f.notify_reorder_rate);
    let mut plan = NotifyPlan {
        first_delay: if delayed {
            scale.scale(f.notify_delay)
        } else {
            Duration::ZERO
        },
        reorder,
        ..NotifyPlan::default()
    };
    for send in 0..SENDS {
        plan.drop[send] = happens(rng, f.notify_drop_rate);
        plan.duplicate[send] = happens(rng, f.notify_duplicate_rate);
    }
    plan
}

/// An injected failure code for one item that would otherwise be paid; two draws.
pub fn draw_item_failure(rng: &mut impl Rng, f: &Faults) -> Option<String> {
    let fails = happens(rng, f.item_failure_rate);
    let pick = rng.random_range(0..f.item_failure_codes.len().max(1));
    if !fails {
        return None;
    }
    // An empty list is refused when the flags are read; REFUND_FAIL keeps
    // a library caller's empty list from failing every item without a code.
    Some(
        f.item_failure_codes
            .get(pick)
            .cloned()
            .unwrap_or_else(|| "REFUND_FAIL".to_owned()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn faults() -> Faults {
        Faults {
            http_5xx_rate: Rate::ALWAYS,
            latency: Duration::from_millis(5),
            latency_rate: Rate::ALWAYS,
            ..Faults::default()
        }
    }

    #[test]
    fn a_rate_of_one_always_happens_and_zero_never() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let drawn = draw_request(&mut rng, &faults());
            assert!(drawn.http_5xx);
            assert!(!drawn.system_error);
            assert_eq!(drawn.latency, Some(Duration::from_millis(5)));
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_faults() {
        let f = Faults {
            notify_drop_rate: "0.5".parse().unwrap(),
            item_failure_rate: "0.5".parse().unwrap(),
            ..Faults::default()
        };
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            let plans: Vec<_> = (0..20)
                .map(|_| draw_notify(&mut rng, &f, TimeScale::REAL))
                .collect();
            let items: Vec<_> = (0..20).map(|_| draw_item_failure(&mut rng, &f)).collect();
            (plans, items)
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn an_injected_item_failure_uses_one_of_the_given_codes() {
        let f = Faults {
            item_failure_rate: Rate::ALWAYS,
            item_failure_codes: vec!["A".into(), "B".into()],
            ..Faults::default()
        };
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..50 {
            let code = draw_item_failure(&mut rng, &f).unwrap();
            assert!(code == "A" || code == "B");
        }
    }

    #[test]
    fn a_notification_delay_is_scaled() {
        let f = Faults {
            notify_delay: Duration::from_secs(10),
            notify_delay_rate: Rate::ALWAYS,
            ..Faults::default()
        };
        let plan = draw_notify(&mut StdRng::seed_from_u64(1), &f, "0.001".parse().unwrap());
        assert_eq!(plan.first_delay, Duration::from_millis(10));
    }
}
