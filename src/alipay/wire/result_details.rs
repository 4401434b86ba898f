//! The `result_details` grammar of `batch_refund_notify`.
//!
//! Owns reading `trade_no^amount^CODE[tail]#…`, where a tail starts at the
//! first `$` (fee, or `$$` sub-trade) or `|` (royalty) and is kept raw,
//! uninterpreted. Invariants: an item yields exactly three non-empty head
//! fields or an error (a truncated item is never guessed at); an unknown
//! code is kept as text, since new codes must not make a genuine
//! notification unreadable; amounts become fen without floats.

use super::amount::{self, AmountError};
use thiserror::Error;

/// The result of one refund in a notified batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultItem {
    /// Alipay's trade number.
    pub trade_no: String,
    /// The refunded amount as Alipay wrote it (`80`, `0.01`).
    pub amount: String,
    /// The same amount in fen.
    pub amount_fen: i64,
    /// `SUCCESS` or a failure code, known or not.
    pub code: String,
    /// Everything from the first `$` or `|` on, raw; empty when absent.
    pub tail: String,
}

impl ResultItem {
    /// Whether this refund went through.
    pub fn is_success(&self) -> bool {
        self.code == "SUCCESS"
    }
}

/// Why `result_details` could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ResultDetailsError {
    /// Nothing at all: a batch has at least one item.
    #[error("result_details is empty")]
    Empty,
    /// An empty item between two `#`, or at the start.
    #[error("result item {0} is empty")]
    EmptyItem(usize),
    /// Fewer than three `^` fields before any tail.
    #[error("result item {index} is truncated: {raw:?}")]
    Truncated {
        /// Zero-based item position.
        index: usize,
        /// The item as received.
        raw: String,
    },
    /// More than three `^` fields before any tail.
    #[error("result item {index} has extra fields: {raw:?}")]
    ExtraFields {
        /// Zero-based item position.
        index: usize,
        /// The item as received.
        raw: String,
    },
    /// An empty trade number, amount or code.
    #[error("result item {index} has an empty {field}")]
    EmptyField {
        /// Zero-based item position.
        index: usize,
        /// Which field.
        field: &'static str,
    },
    /// An amount that is not yuan with up to two decimals.
    #[error("result item {index}: {source}")]
    Amount {
        /// Zero-based item position.
        index: usize,
        /// What was wrong with it.
        source: AmountError,
    },
}

/// Parses `result_details` (already form-decoded) into items.
///
/// One trailing `#` is tolerated: it carries no item, and refusing it would
/// make Alipay resend a genuine notification for a day over a cosmetic
/// separator. Any other empty item is an error.
pub fn parse_result_details(text: &str) -> Result<Vec<ResultItem>, ResultDetailsError> {
    let body = text.strip_suffix('#').unwrap_or(text);
    if body.is_empty() {
        return Err(ResultDetailsError::Empty);
    }
    body.split('#')
        .enumerate()
        .map(|(index, raw)| parse_item(index, raw))
        .collect()
}

/// Parses one `trade_no^amount^CODE[tail]`.
fn parse_item(index: usize, raw: &str) -> Result<ResultItem, ResultDetailsError> {
    if raw.is_empty() {
        return Err(ResultDetailsError::EmptyItem(index));
    }
    let (head, tail) = raw.split_at(raw.find(['$', '|']).unwrap_or(raw.len()));
    let fields: Vec<&str> = head.split('^').collect();
    let [trade_no, amount, code] = fields[..] else {
        let raw = raw.to_owned();
        return Err(if fields.len() < 3 {
            ResultDetailsError::Truncated { index, raw }
        } else {
            ResultDetailsError::ExtraFields { index, raw }
        });
    };
    for (field, value) in [("trade_no", trade_no), ("amount", amount), ("code", code)] {
        if value.is_empty() {
            return Err(ResultDetailsError::EmptyField { index, field });
        }
    }
    let amount_fen = amount::parse_reported(amount)
        .map_err(|source| ResultDetailsError::Amount { index, source })?;
    Ok(ResultItem {
        trade_no: trade_no.to_owned(),
        amount: amount.to_owned(),
        amount_fen,
        code: code.to_owned(),
        tail: tail.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> ResultItem {
        let mut items = parse_result_details(text).unwrap();
        assert_eq!(items.len(), 1);
        items.remove(0)
    }

    #[test]
    fn one_successful_item_reads_with_its_amount_in_fen() {
        let item = one("2010031906272929^80^SUCCESS");
        assert_eq!(item.trade_no, "2010031906272929");
        assert_eq!(item.amount, "80");
        assert_eq!(item.amount_fen, 8000);
        assert!(item.is_success());
        assert_eq!(item.tail, "");
    }

    #[test]
    fn the_documented_fee_tail_is_kept_raw() {
        let item = one(
            "2010031906272929^80^SUCCESS$jax_chuanhang@alipay.com^2088101003147483^0.01^SUCCESS",
        );
        assert_eq!(item.code, "SUCCESS");
        assert_eq!(
            item.tail,
            "$jax_chuanhang@alipay.com^2088101003147483^0.01^SUCCESS"
        );
    }

    #[test]
    fn royalty_and_sub_trade_tails_are_kept_raw() {
        let item = one("2010^0.01^SUCCESS|a@b.com^2088^c@d.com^2089^0.01^SUCCESS");
        assert_eq!(item.tail, "|a@b.com^2088^c@d.com^2089^0.01^SUCCESS");
        let item = one("2010^1.00^SUCCESS$$x^y^0.50^SUCCESS");
        assert_eq!(item.tail, "$$x^y^0.50^SUCCESS");
    }

    #[test]
    fn an_unknown_code_is_kept_as_a_code() {
        let item = one("2010^1.00^SOMETHING_NEW_FROM_ALIPAY");
        assert_eq!(item.code, "SOMETHING_NEW_FROM_ALIPAY");
        assert!(!item.is_success());
    }

    #[test]
    fn a_thousand_items_all_read() {
        let text: Vec<String> = (0..1000)
            .map(|n| format!("2016{n:012}^{}^SUCCESS", amount::format_amount(n + 1)))
            .collect();
        let items = parse_result_details(&text.join("#")).unwrap();
        assert_eq!(items.len(), 1000);
        assert_eq!(items[999].trade_no, "2016000000000999");
        assert_eq!(items[999].amount_fen, 1000);
    }

    #[test]
    fn mixed_results_keep_their_order() {
        let items = parse_result_details(
            "1^1.00^SUCCESS#2^2^TRADE_HAS_CLOSED#3^0.3^BATCH_REFUND_LOCK_ERROR",
        )
        .unwrap();
        let codes: Vec<_> = items.iter().map(|i| i.code.as_str()).collect();
        assert_eq!(
            codes,
            ["SUCCESS", "TRADE_HAS_CLOSED", "BATCH_REFUND_LOCK_ERROR"]
        );
        assert_eq!(items[2].amount_fen, 30);
    }

    #[test]
    fn one_trailing_hash_is_tolerated() {
        assert_eq!(
            parse_result_details("1^1.00^SUCCESS#").map(|v| v.len()),
            Ok(1)
        );
    }

    #[test]
    fn empty_items_elsewhere_are_errors() {
        assert_eq!(
            parse_result_details("1^1^SUCCESS##"),
            Err(ResultDetailsError::EmptyItem(1))
        );
        assert_eq!(
            parse_result_details("#1^1^SUCCESS"),
            Err(ResultDetailsError::EmptyItem(0))
        );
        assert_eq!(
            parse_result_details("1^1^SUCCESS##2^1^SUCCESS"),
            Err(ResultDetailsError::EmptyItem(1))
        );
        assert_eq!(parse_result_details(""), Err(ResultDetailsError::Empty));
        assert_eq!(parse_result_details("#"), Err(ResultDetailsError::Empty));
    }

    #[test]
    fn an_empty_field_is_an_error() {
        for (text, field) in [
            ("^1^SUCCESS", "trade_no"),
            ("1^^SUCCESS", "amount"),
            ("1^1^", "code"),
            ("1^1^$x", "code"),
        ] {
            assert_eq!(
                parse_result_details(text),
                Err(ResultDetailsError::EmptyField { index: 0, field }),
                "{text}"
            );
        }
    }

    #[test]
    fn a_truncated_item_is_an_error() {
        for text in ["2010^80", "2010", "1^1^SUCCESS#2010^80"] {
            assert!(
                matches!(
                    parse_result_details(text),
                    Err(ResultDetailsError::Truncated { .. })
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn extra_fields_before_a_tail_are_an_error() {
        assert!(matches!(
            parse_result_details("1^1^SUCCESS^x"),
            Err(ResultDetailsError::ExtraFields { index: 0, .. })
        ));
    }

    #[test]
    fn a_bad_amount_is_an_error() {
        for text in [
            "1^0.001^SUCCESS",
            "1^abc^SUCCESS",
            "1^-1^SUCCESS",
            "1^1.^SUCCESS",
        ] {
            assert!(
                matches!(
                    parse_result_details(text),
                    Err(ResultDetailsError::Amount { .. })
                ),
                "{text}"
            );
        }
    }
}
