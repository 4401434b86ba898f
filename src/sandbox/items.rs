//! How one reported result is written: the head `trade^amount^CODE`, and the
//! variations Alipay really sends (alipay-mapi.md, "Notification").
//!
//! Owns the text of an item in `result_details` and in a query answer.
//! Pure: the shape of each item is drawn elsewhere (`realism`) and handed
//! in. Invariants: the head's trade, amount and meaning never change with
//! the shape (tails come after the code, `$` and `|` never occur inside a
//! head); tails and a lower-case code are only written on a paid item; the
//! plain shape writes exactly what the sandbox always wrote.

use super::ledger::{ResultLine, SUCCESS};
use crate::alipay::wire::amount::format_amount;

/// The tails Alipay writes after a paid item's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tails {
    /// `$account^2088id^fee^SUCCESS`: the fee refunded with it (Alipay adds
    /// this itself, as in its notification sample).
    Fee,
    /// `|out^2088id^in^2088id^amount^SUCCESS`: a royalty part.
    Royalty,
    /// `$$amount^amount^SUCCESS`: a sub-trade part.
    SubTrade,
    /// Royalty and sub-trade, as in Alipay's query sample.
    RoyaltyAndSubTrade,
}

impl Tails {
    /// Every kind, in the order a draw picks from.
    pub const ALL: [Tails; 4] = [
        Tails::Fee,
        Tails::Royalty,
        Tails::SubTrade,
        Tails::RoyaltyAndSubTrade,
    ];
}

/// The two fields older documents add after the code: 是否充退 and its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refill {
    /// `true` or `false`.
    pub refilled: bool,
    /// `S`, `F`, `P` or `null`.
    pub result: &'static str,
}

impl Refill {
    /// `^false^null`: no 充退; what an item that was not paid always carries.
    pub const NONE: Refill = Refill {
        refilled: false,
        result: "null",
    };
    /// What a paid item may carry, in the order a draw picks from.
    pub const PAID: [Refill; 4] = [
        Refill::NONE,
        Refill {
            refilled: true,
            result: "S",
        },
        Refill {
            refilled: true,
            result: "P",
        },
        Refill {
            refilled: true,
            result: "F",
        },
    ];
}

/// How one item is written; the default is the plain `trade^amount^CODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ItemShape {
    pub tails: Option<Tails>,
    pub refill: Option<Refill>,
    pub lower_case: bool,
}

impl ItemShape {
    /// What of this shape is really written on this line: tails and a
    /// lower-case code only on a paid item, and an unpaid one's 充退 fields
    /// are always `false^null`.
    pub fn on(self, line: &ResultLine) -> ItemShape {
        let paid = line.is_success();
        ItemShape {
            tails: self.tails.filter(|_| paid),
            refill: self.refill.map(|r| if paid { r } else { Refill::NONE }),
            lower_case: self.lower_case && paid,
        }
    }
}

/// Who the tails name: the merchant's own account, and a royalty's two.
const SELLER_EMAIL: &str = "sandbox-seller@alipay.com";
const ROYALTY_OUT_EMAIL: &str = "sandbox-royalty-out@alipay.com";
const ROYALTY_OUT_ID: &str = "2088000000000011";
const ROYALTY_IN_EMAIL: &str = "sandbox-royalty-in@alipay.com";
const ROYALTY_IN_ID: &str = "2088000000000012";

/// The fee refunded with an amount: 0.6 %, at least one fen.
fn fee_fen(amount_fen: i64) -> i64 {
    (amount_fen.saturating_mul(6) / 1000).max(1)
}

/// One item of a notification's `result_details`, `partner` being the
/// merchant the fee tail names.
pub fn notify_item(line: &ResultLine, shape: ItemShape, partner: &str) -> String {
    let shape = shape.on(line);
    let amount = format_amount(line.amount_fen);
    let code = if shape.lower_case {
        SUCCESS.to_ascii_lowercase()
    } else {
        line.code.clone()
    };
    let mut out = format!("{}^{amount}^{code}", line.trade_no);
    if let Some(r) = shape.refill {
        out.push_str(&format!("^{}^{}", r.refilled, r.result));
    }
    let fee = || {
        format!(
            "${SELLER_EMAIL}^{partner}^{}^SUCCESS",
            format_amount(fee_fen(line.amount_fen))
        )
    };
    let royalty = || {
        format!(
            "|{ROYALTY_OUT_EMAIL}^{ROYALTY_OUT_ID}^{ROYALTY_IN_EMAIL}^{ROYALTY_IN_ID}^0.01^SUCCESS"
        )
    };
    let sub_trade = || format!("$${amount}^{amount}^SUCCESS");
    match shape.tails {
        None => {}
        Some(Tails::Fee) => out.push_str(&fee()),
        Some(Tails::Royalty) => out.push_str(&royalty()),
        Some(Tails::SubTrade) => out.push_str(&sub_trade()),
        Some(Tails::RoyaltyAndSubTrade) => {
            out.push_str(&royalty());
            out.push_str(&sub_trade());
        }
    }
    out
}

/// One item of a query answer: `batch^` and the notification's item.
pub fn query_item(batch_no: &str, line: &ResultLine, shape: ItemShape, partner: &str) -> String {
    format!("{batch_no}^{}", notify_item(line, shape, partner))
}

/// Items joined by `#`, each with its shape (missing shapes are plain).
pub fn details(lines: &[ResultLine], shapes: &[ItemShape], partner: &str) -> String {
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| notify_item(l, shapes.get(i).copied().unwrap_or_default(), partner))
        .collect::<Vec<_>>()
        .join("#")
}

/// What the shapes written on these lines count as, for the ledger view:
/// (items with tails, items with 5 fields, items in lower case).
pub fn tally(lines: &[ResultLine], shapes: &[ItemShape]) -> (u64, u64, u64) {
    let mut n = (0, 0, 0);
    for (line, shape) in lines.iter().zip(shapes) {
        let s = shape.on(line);
        n.0 += u64::from(s.tails.is_some());
        n.1 += u64::from(s.refill.is_some());
        n.2 += u64::from(s.lower_case);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "2088101003147483";

    fn line(trade_no: &str, amount_fen: i64, code: &str) -> ResultLine {
        ResultLine {
            trade_no: trade_no.into(),
            amount_fen,
            code: code.into(),
        }
    }

    fn tails(t: Tails) -> ItemShape {
        ItemShape {
            tails: Some(t),
            ..ItemShape::default()
        }
    }

    #[test]
    fn the_plain_shape_is_what_the_sandbox_always_wrote() {
        let l = line("2010031906272929", 8000, "SUCCESS");
        assert_eq!(
            notify_item(&l, ItemShape::default(), P),
            "2010031906272929^80.00^SUCCESS"
        );
        assert_eq!(
            query_item("20240310001", &l, ItemShape::default(), P),
            "20240310001^2010031906272929^80.00^SUCCESS"
        );
    }

    #[test]
    fn a_fee_tail_follows_the_code_as_in_alipays_notification_sample() {
        // Alipay's sample: 2010031906272929^80^SUCCESS$jax_chuanhang@alipay.com^2088101003147483^0.01^SUCCESS
        let l = line("2010031906272929", 100, "SUCCESS");
        assert_eq!(
            notify_item(&l, tails(Tails::Fee), P),
            "2010031906272929^1.00^SUCCESS$sandbox-seller@alipay.com^2088101003147483^0.01^SUCCESS"
        );
        let big = line("T", 100_000, "SUCCESS");
        assert!(notify_item(&big, tails(Tails::Fee), P).ends_with(&format!("^{P}^6.00^SUCCESS")));
    }

    #[test]
    fn royalty_and_sub_trade_tails_follow_alipays_query_sample() {
        // Alipay's sample: 201012300001^2010123016346858^0.02^SUCCESS|zen_gwen@hotmail.com^
        // 2088102210397302^alipay-test03@alipay.com^2088101568345155^0.01^SUCCESS$$10.00^10.00^SUCCESS
        let l = line("2010123016346858", 1000, "SUCCESS");
        assert_eq!(
            query_item("201012300001", &l, tails(Tails::RoyaltyAndSubTrade), P),
            "201012300001^2010123016346858^10.00^SUCCESS\
             |sandbox-royalty-out@alipay.com^2088000000000011^sandbox-royalty-in@alipay.com^2088000000000012^0.01^SUCCESS\
             $$10.00^10.00^SUCCESS"
        );
        assert_eq!(
            notify_item(&l, tails(Tails::SubTrade), P),
            "2010123016346858^10.00^SUCCESS$$10.00^10.00^SUCCESS"
        );
        assert!(
            notify_item(&l, tails(Tails::Royalty), P)
                .starts_with("2010123016346858^10.00^SUCCESS|")
        );
    }

    #[test]
    fn five_fields_come_between_the_code_and_the_tails() {
        let shape = ItemShape {
            tails: Some(Tails::Fee),
            refill: Some(Refill::PAID[1]),
            lower_case: false,
        };
        let paid = notify_item(&line("T1", 100, "SUCCESS"), shape, P);
        assert!(
            paid.starts_with("T1^1.00^SUCCESS^true^S$sandbox-seller"),
            "{paid}"
        );
        let plain = ItemShape {
            refill: Some(Refill::NONE),
            ..ItemShape::default()
        };
        assert_eq!(
            query_item("B", &line("T1", 100, "SUCCESS"), plain, P),
            "B^T1^1.00^SUCCESS^false^null"
        );
    }

    #[test]
    fn an_unpaid_item_gets_no_tails_no_lower_case_and_false_null() {
        let shape = ItemShape {
            tails: Some(Tails::Fee),
            refill: Some(Refill::PAID[2]),
            lower_case: true,
        };
        let l = line("T2", 1, "TRADE_HAS_CLOSED");
        assert_eq!(
            notify_item(&l, shape, P),
            "T2^0.01^TRADE_HAS_CLOSED^false^null"
        );
        assert_eq!(tally(&[l], &[shape]), (0, 1, 0));
    }

    #[test]
    fn a_paid_item_may_say_success_in_lower_case() {
        let shape = ItemShape {
            lower_case: true,
            ..ItemShape::default()
        };
        let l = line("T1", 1050, "SUCCESS");
        assert_eq!(notify_item(&l, shape, P), "T1^10.50^success");
        assert_eq!(tally(&[l], &[shape]), (0, 0, 1));
    }

    #[test]
    fn details_join_items_with_their_own_shapes() {
        let lines = [line("T1", 100, "SUCCESS"), line("T2", 200, "SUCCESS")];
        let shapes = [
            ItemShape::default(),
            ItemShape {
                lower_case: true,
                ..ItemShape::default()
            },
        ];
        assert_eq!(
            details(&lines, &shapes, P),
            "T1^1.00^SUCCESS#T2^2.00^success"
        );
        assert_eq!(details(&lines, &[], P), "T1^1.00^SUCCESS#T2^2.00^SUCCESS");
    }
}
