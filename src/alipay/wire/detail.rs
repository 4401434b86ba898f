//! The `detail_data` we send: items `trade_no^amount^reason` joined by `#`.
//!
//! Owns the batch-construction rules that Alipay would otherwise answer with
//! a whole-batch failure (`BATCH_NUM_EXCEED_LIMIT`, `DETAIL_DATA_FORMAT_ERROR`,
//! `DUBL_TRADE_NO_IN_SAME_BATCH`, `BATCH_MEMO_LENGTH_EXCEED_LIMIT`).
//! Invariant: items that pass [`validate_items`] survive
//! `parse_detail_data(&detail_data(items))` unchanged. We never send the
//! extended `$`, `|`, `$$` forms.

use super::amount::{self, format_amount};
use std::collections::HashSet;
use thiserror::Error;

/// Most items Alipay takes in one batch.
pub const MAX_BATCH_ITEMS: usize = 1000;
/// Longest `reason`, in UTF-8 bytes.
pub const MAX_REASON_BYTES: usize = 256;
/// Characters that delimit `detail_data` and so may not appear in its fields.
const SEPARATORS: [char; 4] = ['^', '|', '$', '#'];

pub use crate::domain::batch::BatchItem;

/// Why `detail_data` or its items would be refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DetailError {
    /// No items: Alipay wants 1..=1000.
    #[error("a batch needs at least one item")]
    Empty,
    /// More than [`MAX_BATCH_ITEMS`] items.
    #[error("a batch takes at most 1000 items, got {0}")]
    TooMany(usize),
    /// An item without exactly three `^`-separated fields.
    #[error("item {index} has {fields} fields, not 3")]
    FieldCount {
        /// Zero-based item position.
        index: usize,
        /// Fields found.
        fields: usize,
    },
    /// An empty `trade_no` or `reason`.
    #[error("item {index} has an empty {field}")]
    EmptyField {
        /// Zero-based item position.
        index: usize,
        /// Which field.
        field: &'static str,
    },
    /// A field holding one of `^ | $ #`.
    #[error("item {index} has a separator character in {field}")]
    Separator {
        /// Zero-based item position.
        index: usize,
        /// Which field.
        field: &'static str,
    },
    /// An amount that is not positive or not written as `%.2f`.
    #[error("item {index} has a bad amount {amount:?}")]
    Amount {
        /// Zero-based item position.
        index: usize,
        /// The amount as written (or as fen).
        amount: String,
    },
    /// A reason longer than [`MAX_REASON_BYTES`].
    #[error("item {index} has a reason of {bytes} bytes, more than 256")]
    ReasonTooLong {
        /// Zero-based item position.
        index: usize,
        /// Its length in bytes.
        bytes: usize,
    },
    /// The same trade twice in one batch.
    #[error("trade {0} appears twice in one batch")]
    DuplicateTrade(String),
}

/// Joins items into `detail_data`; call [`validate_items`] first.
pub fn detail_data(items: &[BatchItem]) -> String {
    items
        .iter()
        .map(|i| {
            format!(
                "{}^{}^{}",
                i.trade_no,
                format_amount(i.amount_fen),
                i.reason
            )
        })
        .collect::<Vec<_>>()
        .join("#")
}

/// Reads `detail_data` back strictly, for tests and for checking stored batches.
pub fn parse_detail_data(text: &str) -> Result<Vec<BatchItem>, DetailError> {
    if text.is_empty() {
        return Err(DetailError::Empty);
    }
    let items = text
        .split('#')
        .enumerate()
        .map(|(index, raw)| {
            let fields: Vec<&str> = raw.split('^').collect();
            let [trade_no, amount, reason] = fields[..] else {
                return Err(DetailError::FieldCount {
                    index,
                    fields: fields.len(),
                });
            };
            let amount_fen = amount::parse_exact(amount).map_err(|_| DetailError::Amount {
                index,
                amount: amount.to_owned(),
            })?;
            Ok(BatchItem {
                trade_no: trade_no.to_owned(),
                amount_fen,
                reason: reason.to_owned(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    validate_items(&items)?;
    Ok(items)
}

/// Checks items against every batch-construction rule we know of.
pub fn validate_items(items: &[BatchItem]) -> Result<(), DetailError> {
    if items.is_empty() {
        return Err(DetailError::Empty);
    }
    if items.len() > MAX_BATCH_ITEMS {
        return Err(DetailError::TooMany(items.len()));
    }
    let mut seen = HashSet::new();
    for (index, item) in items.iter().enumerate() {
        check_text(index, "trade_no", &item.trade_no)?;
        check_text(index, "reason", &item.reason)?;
        if item.reason.len() > MAX_REASON_BYTES {
            return Err(DetailError::ReasonTooLong {
                index,
                bytes: item.reason.len(),
            });
        }
        if item.amount_fen <= 0 {
            return Err(DetailError::Amount {
                index,
                amount: format_amount(item.amount_fen),
            });
        }
        if !seen.insert(item.trade_no.as_str()) {
            return Err(DetailError::DuplicateTrade(item.trade_no.clone()));
        }
    }
    Ok(())
}

/// A field must be non-empty (an empty one reads as a truncated item) and
/// free of separators (one would shift every later field).
fn check_text(index: usize, field: &'static str, value: &str) -> Result<(), DetailError> {
    if value.is_empty() {
        return Err(DetailError::EmptyField { index, field });
    }
    if value.contains(SEPARATORS) {
        return Err(DetailError::Separator { index, field });
    }
    Ok(())
}

/// The items of a stored batch, checked to rebuild to the very bytes stored,
/// so that what is sent again (or put in a form) is what was fixed at creation.
pub fn parse_stored(text: &str) -> Result<Vec<BatchItem>, String> {
    let items = parse_detail_data(text).map_err(|e| e.to_string())?;
    if detail_data(&items) != text {
        return Err("detail_data does not rebuild to the same bytes".into());
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item(trade_no: &str, amount_fen: i64, reason: &str) -> BatchItem {
        BatchItem {
            trade_no: trade_no.into(),
            amount_fen,
            reason: reason.into(),
        }
    }

    #[test]
    fn one_item_reads_like_the_seed() {
        let items = [item("201606132100100479", 1, "我要退款")];
        assert_eq!(detail_data(&items), "201606132100100479^0.01^我要退款");
    }

    #[test]
    fn items_are_joined_by_hash() {
        let items = [item("1", 1050, "a"), item("2", 200, "b")];
        let text = detail_data(&items);
        assert_eq!(text, "1^10.50^a#2^2.00^b");
        assert_eq!(parse_detail_data(&text), Ok(items.to_vec()));
    }

    #[test]
    fn an_item_without_three_fields_is_refused() {
        assert_eq!(
            parse_detail_data("1^1.00"),
            Err(DetailError::FieldCount {
                index: 0,
                fields: 2
            })
        );
        assert_eq!(
            parse_detail_data("1^1.00^a#2^1.00^b^c"),
            Err(DetailError::FieldCount {
                index: 1,
                fields: 4
            })
        );
        assert_eq!(
            parse_detail_data("1^1.00^a#"),
            Err(DetailError::FieldCount {
                index: 1,
                fields: 1
            })
        );
    }

    #[test]
    fn an_amount_without_two_decimals_is_refused() {
        for bad in ["1^1.0^a", "1^1^a", "1^0.00^a", "1^-1.00^a"] {
            assert!(
                matches!(parse_detail_data(bad), Err(DetailError::Amount { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn empty_fields_are_refused() {
        assert!(matches!(
            parse_detail_data("^1.00^a"),
            Err(DetailError::EmptyField { .. })
        ));
        assert!(matches!(
            parse_detail_data("1^1.00^"),
            Err(DetailError::EmptyField { .. })
        ));
        assert_eq!(parse_detail_data(""), Err(DetailError::Empty));
    }

    #[test]
    fn a_separator_inside_a_reason_is_refused() {
        for reason in ["a|b", "a$b", "a#b", "a^b"] {
            assert!(matches!(
                validate_items(&[item("1", 1, reason)]),
                Err(DetailError::Separator {
                    field: "reason",
                    ..
                })
            ));
        }
    }

    #[test]
    fn a_reason_of_256_bytes_passes_and_257_does_not() {
        assert_eq!(validate_items(&[item("1", 1, &"a".repeat(256))]), Ok(()));
        // 86 three-byte characters are 258 bytes though only 86 characters.
        assert!(matches!(
            validate_items(&[item("1", 1, &"退".repeat(86))]),
            Err(DetailError::ReasonTooLong { bytes: 258, .. })
        ));
    }

    #[test]
    fn a_trade_twice_in_one_batch_is_refused() {
        assert_eq!(
            validate_items(&[item("1", 1, "a"), item("1", 2, "b")]),
            Err(DetailError::DuplicateTrade("1".into()))
        );
    }

    #[test]
    fn a_batch_holds_one_to_a_thousand_items() {
        let items: Vec<_> = (0..1001).map(|n| item(&n.to_string(), 1, "r")).collect();
        assert_eq!(validate_items(&items[..1000]), Ok(()));
        assert_eq!(validate_items(&items), Err(DetailError::TooMany(1001)));
        assert_eq!(validate_items(&[]), Err(DetailError::Empty));
    }

    proptest! {
        #[test]
        fn valid_items_survive_a_round_trip(
            raw in prop::collection::btree_map("[0-9]{16,28}", (1i64..10_000_000_000, "[^\\^|$#]{1,40}"), 1..20)
        ) {
            let items: Vec<BatchItem> = raw
                .into_iter()
                .map(|(t, (a, r))| item(&t, a, &r))
                .collect();
            prop_assert_eq!(parse_detail_data(&detail_data(&items)), Ok(items));
        }
    }
}
