//! The `result_details` grammar of `batch_refund_notify`: items joined by
//! `#`, each read by [`super::item`] (`trade_no^amount^CODE`, optional 充退
//! fields, raw `$`/`|`/`$$` tails).
//!
//! Owns reading the whole list. Invariants: an empty `result_details` is an
//! empty list (Alipay marks the field 可空), not an error; one unreadable
//! item never hides the others: it is kept with its reason beside the items
//! that read, so that a genuine notification is applied as far as it can be
//! and the rest is left for the reconciler and a person.

use super::item::{ItemError, ItemHead, read_item};

/// The result of one refund in a notified batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultItem {
    /// Alipay's trade number.
    pub trade_no: String,
    /// The refunded amount as Alipay wrote it (`80`, `0.01`).
    pub amount: String,
    /// The same amount in fen.
    pub amount_fen: i64,
    /// `SUCCESS` (in capitals, whatever case Alipay used) or a failure
    /// code, known or not, verbatim.
    pub code: String,
    /// The 充退 fields after the code (`false^null`), raw; empty when absent.
    pub dback: String,
    /// Everything from the first `$` or `|` on, raw; empty when absent.
    pub tail: String,
    /// The whole item as received.
    pub raw: String,
}

impl ResultItem {
    /// The item read from `raw` (its head already read).
    pub fn from_head(head: ItemHead, raw: &str) -> Self {
        Self {
            trade_no: head.trade_no,
            amount: head.amount,
            amount_fen: head.amount_fen,
            code: head.code,
            dback: head.dback,
            tail: head.tail,
            raw: raw.to_owned(),
        }
    }

    /// Whether this refund went through.
    pub fn is_success(&self) -> bool {
        self.code == crate::domain::item_code::SUCCESS
    }
}

impl From<&ResultItem> for crate::domain::settle::Reported {
    fn from(i: &ResultItem) -> Self {
        Self {
            trade_no: i.trade_no.clone(),
            amount_fen: i.amount_fen,
            code: i.code.clone(),
            raw: i.raw.clone(),
        }
    }
}

/// An item that could not be read, kept for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableItem {
    /// Zero-based position in the list.
    pub index: usize,
    /// The item as received.
    pub raw: String,
    /// Why it could not be read.
    pub error: ItemError,
}

/// Every item of a `result_details`, read or not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultDetails {
    pub items: Vec<ResultItem>,
    pub unreadable: Vec<UnreadableItem>,
}

/// Reads `result_details` (already form-decoded). One trailing `#` carries
/// no item and is passed over; any other empty item is unreadable.
pub fn parse_result_details(text: &str) -> ResultDetails {
    let body = text.strip_suffix('#').unwrap_or(text);
    let mut out = ResultDetails::default();
    if body.is_empty() {
        return out;
    }
    for (index, raw) in body.split('#').enumerate() {
        match read_item(raw, 0) {
            Ok(head) => out.items.push(ResultItem::from_head(head, raw)),
            Err(error) => out.unreadable.push(UnreadableItem {
                index,
                raw: raw.to_owned(),
                error,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alipay::wire::amount;

    fn one(text: &str) -> ResultItem {
        let mut d = parse_result_details(text);
        assert!(d.unreadable.is_empty(), "{:?}", d.unreadable);
        assert_eq!(d.items.len(), 1);
        d.items.remove(0)
    }

    #[test]
    fn one_successful_item_reads_with_its_amount_in_fen() {
        let item = one("2010031906272929^80^SUCCESS");
        assert_eq!(item.trade_no, "2010031906272929");
        assert_eq!(item.amount, "80");
        assert_eq!(item.amount_fen, 8000);
        assert!(item.is_success());
        assert_eq!(item.tail, "");
        assert_eq!(item.raw, "2010031906272929^80^SUCCESS");
    }

    #[test]
    fn the_documented_fee_tail_is_kept_raw() {
        let item = one(
            "2010031906272929^80^SUCCESS$jax_chuanhang@alipay.com^2088101003147483^0.01^SUCCESS",
        );
        assert!(item.is_success());
        assert_eq!(
            item.tail,
            "$jax_chuanhang@alipay.com^2088101003147483^0.01^SUCCESS"
        );
    }

    #[test]
    fn lower_case_success_and_five_fields_are_a_paid_item() {
        let item = one("2010^1.00^success^false^null");
        assert!(item.is_success());
        assert_eq!(item.dback, "false^null");
    }

    #[test]
    fn an_empty_result_details_is_no_items_not_an_error() {
        assert_eq!(parse_result_details(""), ResultDetails::default());
        assert_eq!(parse_result_details("#"), ResultDetails::default());
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
        let d = parse_result_details(&text.join("#"));
        assert_eq!(d.items.len(), 1000);
        assert_eq!(d.items[999].trade_no, "2016000000000999");
        assert_eq!(d.items[999].amount_fen, 1000);
    }

    #[test]
    fn an_unreadable_item_is_kept_beside_the_items_that_read() {
        let d = parse_result_details("1^1.00^SUCCESS#2010^80#3^0.3^BATCH_REFUND_LOCK_ERROR##");
        let codes: Vec<_> = d.items.iter().map(|i| i.code.as_str()).collect();
        assert_eq!(codes, ["SUCCESS", "BATCH_REFUND_LOCK_ERROR"]);
        assert_eq!(d.unreadable.len(), 2);
        assert_eq!(d.unreadable[0].index, 1);
        assert_eq!(d.unreadable[0].raw, "2010^80");
        assert_eq!(d.unreadable[0].error, ItemError::Truncated(2));
        assert_eq!(d.unreadable[1].error, ItemError::Empty);
    }
}
