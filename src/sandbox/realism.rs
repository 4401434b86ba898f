//! Drawing the realistic cases (config's [`Realism`]) from the one seeded
//! generator; remembering what was decided about each trade, and counting
//! what was injected, is `realism_book.rs`.
//!
//! Invariants, as in `faults`: each draw function takes a fixed number of
//! values from the generator whatever the rates and outcomes, under the
//! sandbox's lock in request order; and when no realism rate is above 0 it
//! takes none at all, so a seed replays exactly as before realism existed.
//! A trade's traits (poison, short of balance) are drawn once, the first
//! time a batch holding it passes the checks, and never change.

use rand::Rng;

use super::answers::XmlCharset;
use super::config::Realism;
use super::faults::happens;
use super::items::{ItemShape, Refill, Tails};

#[path = "realism_book.rs"]
mod book;
pub use book::{RealismBook, RealismCounts};

/// The item codes Alipay retries itself ("系统会启动重试机制…商户无需处理"):
/// not final; a later notification or query settles the item.
pub const RETRIED_BY_ALIPAY: [&str; 3] = [
    "TRADE_PAYMENT_ERROR",
    "TRADE_PROCESS_ERROR",
    "QUERY_PARTICIPANT_ERROR",
];

/// The code of a trade's first refund when its account is short.
pub const BALANCE_NOT_ENOUGH: &str = "TXN_RESULT_ACCOUNT_BALANCE_NOT_ENOUGH";

/// The statuses a proxy answers after forwarding an accepted batch.
pub const STATUSES_AFTER_ACCEPT: [u16; 2] = [429, 403];

/// Whether Alipay goes on with an item reported with this code by itself.
pub fn is_retried_by_alipay(code: &str) -> bool {
    RETRIED_BY_ALIPAY.contains(&code)
}

/// The realistic cases of one gateway request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestRealism {
    /// A query is answered `F SYSTEM_ERROR` in XML declared in this charset.
    pub xml_query_error: Option<XmlCharset>,
    /// A nopwd batch is accepted, then answered with this HTTP status.
    pub accepted_then_4xx: Option<u16>,
    /// A nopwd batch that would be accepted is taken into the backlog
    /// instead; it is processed after the lag with a generator seeded from
    /// this (see `lag`).
    pub lagged: Option<u64>,
}

/// Picks one of `n` choices; takes exactly one value.
fn pick(rng: &mut impl Rng, n: usize) -> usize {
    rng.random_range(0..n.max(1))
}

/// The realistic cases of one gateway request; four draws when on, and two
/// more for the lag when its rate is above 0 (none when it is 0, so a seed
/// replays as it did before the lag existed).
pub fn draw_request(rng: &mut impl Rng, r: &Realism) -> RequestRealism {
    if !r.is_on() {
        return RequestRealism::default();
    }
    let xml = happens(rng, r.xml_query_error_rate);
    let charset = XmlCharset::ALL[pick(rng, XmlCharset::ALL.len())];
    let after = happens(rng, r.accepted_then_4xx_rate);
    let status = STATUSES_AFTER_ACCEPT[pick(rng, STATUSES_AFTER_ACCEPT.len())];
    RequestRealism {
        xml_query_error: xml.then_some(charset),
        accepted_then_4xx: after.then_some(status),
        lagged: draw_lag(rng, r),
    }
}

/// Whether a batch is lagged, and the seed its later processing draws
/// from; two draws when the lag's rate is above 0, else none.
///
/// The processing of a lagged batch happens when its lag ends, between
/// requests at whatever moment; drawing its item codes and notifications
/// from the sandbox's one generator then would make every later request's
/// draws depend on timing. A generator of its own, seeded now (in request
/// order), keeps the one generator's sequence a function of the requests.
fn draw_lag(rng: &mut impl Rng, r: &Realism) -> Option<u64> {
    if r.lag_rate.get() <= 0.0 {
        return None;
    }
    let lagged = happens(rng, r.lag_rate);
    let seed = rng.random::<u64>();
    lagged.then_some(seed)
}

/// How one reported item is written; five draws when on.
pub fn draw_shape(rng: &mut impl Rng, r: &Realism) -> ItemShape {
    if !r.is_on() {
        return ItemShape::default();
    }
    let tails = happens(rng, r.tails_rate);
    let kind = Tails::ALL[pick(rng, Tails::ALL.len())];
    let five = happens(rng, r.five_field_rate);
    let refill = Refill::PAID[pick(rng, Refill::PAID.len())];
    let lower_case = happens(rng, r.lower_case_rate);
    ItemShape {
        tails: tails.then_some(kind),
        refill: five.then_some(refill),
        lower_case,
    }
}

/// The shapes of `n` reported items, in order.
pub fn draw_shapes(rng: &mut impl Rng, r: &Realism, n: usize) -> Vec<ItemShape> {
    (0..n).map(|_| draw_shape(rng, r)).collect()
}

/// Whether a batch notification's `result_details` is left empty; one draw when on.
pub fn draw_empty_details(rng: &mut impl Rng, r: &Realism) -> bool {
    r.is_on() && happens(rng, r.empty_details_rate)
}

/// The non-final code an item that would be paid is first reported with;
/// two draws when on.
pub fn draw_non_final(rng: &mut impl Rng, r: &Realism) -> Option<&'static str> {
    if !r.is_on() {
        return None;
    }
    let non_final = happens(rng, r.non_final_rate);
    let code = RETRIED_BY_ALIPAY[pick(rng, RETRIED_BY_ALIPAY.len())];
    non_final.then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alipay::wire::detail::BatchItem;
    use crate::sandbox::config::Rate;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    pub(super) fn half() -> Realism {
        let r: Rate = "0.5".parse().unwrap();
        Realism {
            tails_rate: r,
            five_field_rate: r,
            lower_case_rate: r,
            empty_details_rate: r,
            non_final_rate: r,
            balance_not_enough_rate: r,
            poison_rate: r,
            xml_query_error_rate: r,
            accepted_then_4xx_rate: r,
            lag_rate: r,
            ..Realism::default()
        }
    }

    pub(super) fn item(trade_no: &str) -> BatchItem {
        BatchItem {
            trade_no: trade_no.into(),
            amount_fen: 100,
            reason: "r".into(),
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_cases() {
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            let r = half();
            let requests: Vec<_> = (0..20).map(|_| draw_request(&mut rng, &r)).collect();
            let shapes = draw_shapes(&mut rng, &r, 20);
            let empty: Vec<_> = (0..20).map(|_| draw_empty_details(&mut rng, &r)).collect();
            let codes: Vec<_> = (0..20).map(|_| draw_non_final(&mut rng, &r)).collect();
            let mut book = RealismBook::default();
            let poison: Vec<_> = (0..20)
                .map(|i| book.poison_in(&mut rng, &r, &[item(&format!("T{i}"))]))
                .collect();
            (requests, shapes, empty, codes, poison)
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn each_draw_takes_a_fixed_number_of_values_whatever_the_rates() {
        // After one draw of each kind at rates 0.5 and at rates 1, the
        // generators are in the same place.
        let next_after = |r: &Realism| {
            let mut rng = StdRng::seed_from_u64(5);
            draw_request(&mut rng, r);
            draw_shape(&mut rng, r);
            draw_empty_details(&mut rng, r);
            draw_non_final(&mut rng, r);
            let mut book = RealismBook::default();
            book.poison_in(&mut rng, r, &[item("A"), item("B")]);
            rng.random::<u64>()
        };
        let always = Realism {
            poison_rate: Rate::ALWAYS,
            tails_rate: Rate::ALWAYS,
            ..half()
        };
        assert_eq!(next_after(&half()), next_after(&always));
    }

    #[test]
    fn the_lag_takes_two_draws_when_its_rate_is_above_zero_and_none_at_zero() {
        let no_lag = Realism {
            lag_rate: Rate::NEVER,
            ..half()
        };
        let mut without = StdRng::seed_from_u64(8);
        assert_eq!(draw_request(&mut without, &no_lag).lagged, None);
        let mut with = StdRng::seed_from_u64(8);
        draw_request(&mut with, &half());
        // Where the lag's two values would have been.
        without.random::<f64>();
        without.random::<u64>();
        assert_eq!(with.random::<u64>(), without.random::<u64>());

        let always = Realism {
            lag_rate: Rate::ALWAYS,
            ..Realism::default()
        };
        assert!(always.is_on());
        let mut rng = StdRng::seed_from_u64(8);
        let seeds: Vec<_> = (0..10)
            .map(|_| draw_request(&mut rng, &always).lagged)
            .collect();
        assert!(seeds.iter().all(Option::is_some), "{seeds:?}");
        assert_ne!(seeds[0], seeds[1], "each lagged batch has its own seed");
    }

    #[test]
    fn with_realism_off_nothing_is_drawn() {
        let mut rng = StdRng::seed_from_u64(9);
        let off = Realism::default();
        assert_eq!(draw_request(&mut rng, &off), RequestRealism::default());
        assert_eq!(draw_shape(&mut rng, &off), ItemShape::default());
        assert!(!draw_empty_details(&mut rng, &off));
        assert_eq!(draw_non_final(&mut rng, &off), None);
        assert_eq!(
            RealismBook::default().poison_in(&mut rng, &off, &[item("A")]),
            None
        );
        assert_eq!(
            rng.random::<u64>(),
            StdRng::seed_from_u64(9).random::<u64>()
        );
    }

    #[test]
    fn a_non_final_code_is_one_alipay_retries_itself() {
        let r = Realism {
            non_final_rate: Rate::ALWAYS,
            ..Realism::default()
        };
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..30 {
            let code = draw_non_final(&mut rng, &r).unwrap();
            assert!(is_retried_by_alipay(code));
        }
        assert!(!is_retried_by_alipay("SUCCESS"));
        assert!(!is_retried_by_alipay(BALANCE_NOT_ENOUGH));
    }
}
