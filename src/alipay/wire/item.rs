//! The item grammar shared by `batch_refund_notify` and `refund_fastpay_query`
//! (alipay-mapi.md): `[batch_no^]trade_no^amount^CODE[^充退flag^充退result]`
//! followed by optional tails, `$…` (the fee refunded with it, added by Alipay
//! itself), `|…` (royalty parts) and `$$…` (sub-trade parts).
//!
//! Owns cutting an item into its head and raw tail and reading the head.
//! Invariants: the head ends at the first `$` or `|`, so nothing in a tail
//! can ever be read as the code; `SUCCESS` is recognised in any case and
//! handed on as `SUCCESS`; any other code is kept exactly as written; an
//! amount becomes fen without floats; an item that cannot be read is an
//! error naming why, never a guess.

use thiserror::Error;

use super::amount::{self, AmountError};
use crate::domain::item_code::SUCCESS;

/// The separators that start a tail.
pub const TAIL_STARTS: [char; 2] = ['$', '|'];

/// The head of one item, read; the tail kept raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemHead {
    /// The fields before the trade number (the query's `batch_no`).
    pub prefix: Vec<String>,
    /// Alipay's trade number.
    pub trade_no: String,
    /// The refunded amount as Alipay wrote it (`80`, `0.01`).
    pub amount: String,
    /// The same amount in fen.
    pub amount_fen: i64,
    /// `SUCCESS` (whatever case Alipay wrote it in) or another code, verbatim.
    pub code: String,
    /// The 充退 fields after the code (`false^null`), raw; empty when absent.
    pub dback: String,
    /// Everything from the first `$` or `|` on, raw; empty when absent.
    pub tail: String,
}

/// Why one item could not be read.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum ItemError {
    /// Nothing between two `#`.
    #[error("the item is empty")]
    Empty,
    /// Fewer fields than a trade, an amount and a code.
    #[error("the item has {0} fields before its tail, too few")]
    Truncated(usize),
    /// More than the code and two 充退 fields.
    #[error("the item has {0} fields before its tail, too many")]
    ExtraFields(usize),
    /// An empty field the item cannot be read without.
    #[error("the item has an empty {0}")]
    EmptyField(&'static str),
    /// An amount that is not yuan with up to two decimals.
    #[error("the item's amount: {0}")]
    Amount(AmountError),
}

/// Splits an item at its first `$` or `|`: (head, tail).
pub fn split_tail(raw: &str) -> (&str, &str) {
    raw.split_at(raw.find(TAIL_STARTS).unwrap_or(raw.len()))
}

/// The code as it is handed on: `SUCCESS` in capitals when Alipay wrote it
/// in any case, any other code verbatim.
pub fn normalise_code(code: &str) -> String {
    if code.eq_ignore_ascii_case(SUCCESS) {
        SUCCESS.to_owned()
    } else {
        code.to_owned()
    }
}

/// Reads one item whose head starts with `prefix` extra fields (0 for a
/// notification, 1 for a query's `batch_no`).
pub fn read_item(raw: &str, prefix: usize) -> Result<ItemHead, ItemError> {
    if raw.is_empty() {
        return Err(ItemError::Empty);
    }
    let (head, tail) = split_tail(raw);
    let fields: Vec<&str> = head.split('^').collect();
    let n = fields.len();
    // trade, amount, code, then at most the two 充退 fields.
    if n < prefix + 3 {
        return Err(ItemError::Truncated(n));
    }
    if n > prefix + 5 {
        return Err(ItemError::ExtraFields(n));
    }
    let (before, rest) = fields.split_at(prefix);
    let (trade_no, amount, code) = (rest[0], rest[1], rest[2]);
    for (name, value) in [("trade_no", trade_no), ("amount", amount), ("code", code)] {
        if value.is_empty() {
            return Err(ItemError::EmptyField(name));
        }
    }
    let amount_fen = amount::parse_reported(amount).map_err(ItemError::Amount)?;
    Ok(ItemHead {
        prefix: before.iter().map(|s| (*s).to_owned()).collect(),
        trade_no: trade_no.to_owned(),
        amount: amount.to_owned(),
        amount_fen,
        code: normalise_code(code),
        dback: rest[3..].join("^"),
        tail: tail.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_notification_sample_reads_with_its_fee_tail_raw() {
        let raw =
            "2010031906272929^80^SUCCESS$jax_chuanhang@alipay.com^2088101003147483^0.01^SUCCESS";
        let item = read_item(raw, 0).unwrap();
        assert_eq!(item.trade_no, "2010031906272929");
        assert_eq!(item.amount_fen, 8000);
        assert_eq!(item.code, "SUCCESS");
        assert_eq!(
            item.tail,
            "$jax_chuanhang@alipay.com^2088101003147483^0.01^SUCCESS"
        );
    }

    #[test]
    fn the_query_sample_reads_with_royalty_and_sub_trade_tails_raw() {
        let raw = "201012300001^2010123016346858^0.02^SUCCESS|zen_gwen@hotmail.com^2088102210397302^alipay-test03@alipay.com^2088101568345155^0.01^SUCCESS$$10.00^10.00^SUCCESS";
        let item = read_item(raw, 1).unwrap();
        assert_eq!(item.prefix, ["201012300001"]);
        assert_eq!(item.trade_no, "2010123016346858");
        assert_eq!(item.amount_fen, 2);
        assert_eq!(item.code, "SUCCESS");
        assert!(item.tail.starts_with("|zen_gwen@hotmail.com^"));
        assert!(item.tail.ends_with("$$10.00^10.00^SUCCESS"));
    }

    #[test]
    fn five_fields_carry_the_dback_flag_and_result() {
        let item = read_item("2010^1.00^SUCCESS^false^null", 0).unwrap();
        assert_eq!(item.code, "SUCCESS");
        assert_eq!(item.dback, "false^null");
        let item = read_item("B1^2010^1.00^TRADE_HAS_CLOSED^true^S$x", 1).unwrap();
        assert_eq!(item.code, "TRADE_HAS_CLOSED");
        assert_eq!(item.dback, "true^S");
        assert_eq!(item.tail, "$x");
    }

    #[test]
    fn success_in_any_case_is_success_and_other_codes_stay_verbatim() {
        for code in ["success", "Success", "SUCCESS", "sUcCeSs"] {
            assert_eq!(
                read_item(&format!("1^1^{code}"), 0).unwrap().code,
                "SUCCESS"
            );
        }
        assert_eq!(
            read_item("1^1^trade_has_closed", 0).unwrap().code,
            "trade_has_closed"
        );
    }

    #[test]
    fn unreadable_items_say_why() {
        assert_eq!(read_item("", 0), Err(ItemError::Empty));
        assert_eq!(read_item("2010^80", 0), Err(ItemError::Truncated(2)));
        assert_eq!(
            read_item("2010^80^SUCCESS", 1),
            Err(ItemError::Truncated(3))
        );
        assert_eq!(
            read_item("1^1^SUCCESS^a^b^c", 0),
            Err(ItemError::ExtraFields(6))
        );
        assert_eq!(
            read_item("^1^SUCCESS", 0),
            Err(ItemError::EmptyField("trade_no"))
        );
        assert_eq!(
            read_item("1^^SUCCESS", 0),
            Err(ItemError::EmptyField("amount"))
        );
        assert_eq!(read_item("1^1^$x", 0), Err(ItemError::EmptyField("code")));
        assert!(matches!(
            read_item("1^0.001^SUCCESS", 0),
            Err(ItemError::Amount(_))
        ));
        // A code that only appears inside a tail is no code.
        assert_eq!(read_item("1^1$^SUCCESS", 0), Err(ItemError::Truncated(2)));
    }

    fn field() -> impl Strategy<Value = String> {
        "[0-9A-Za-z_@.\\-]{1,20}"
    }

    fn tail() -> impl Strategy<Value = String> {
        let part = (
            prop_oneof![Just("$"), Just("|"), Just("$$")],
            "[0-9A-Za-z_@.^\\-]{0,40}",
        )
            .prop_map(|(sep, body)| format!("{sep}{body}"));
        proptest::collection::vec(part, 0..4).prop_map(|parts| parts.concat())
    }

    proptest! {
        /// Any head plus any tails reads back to the same head.
        #[test]
        fn any_head_with_any_tails_reads_back_to_the_same_head(
            prefix in proptest::collection::vec(field(), 0..=1),
            trade in "[0-9]{16,28}",
            fen in 1i64..=9_999_999_999,
            code in prop_oneof![Just("SUCCESS".to_owned()), Just("success".to_owned()), "[A-Z_]{3,40}"],
            dback in prop_oneof![Just(String::new()), Just("^false^null".to_owned()), Just("^true^S".to_owned())],
            tail in tail(),
        ) {
            let amount = amount::format_amount(fen);
            let mut head = prefix.clone();
            head.extend([trade.clone(), amount.clone(), code.clone()]);
            let raw = format!("{}{dback}{tail}", head.join("^"));
            let item = read_item(&raw, prefix.len()).unwrap();
            prop_assert_eq!(&item.prefix, &prefix);
            prop_assert_eq!(&item.trade_no, &trade);
            prop_assert_eq!(item.amount_fen, fen);
            prop_assert_eq!(item.code, normalise_code(&code));
            prop_assert_eq!(item.dback, dback.trim_start_matches('^'));
            prop_assert_eq!(item.tail, tail);
        }
    }
}
