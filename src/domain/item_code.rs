//! What an item code in a notification or a query answer means for its
//! refund: the one classification (alipay-mapi.md, "Item codes").
//!
//! Owns the table of item codes and their classes, used alike by the
//! notification path, the reconciler and the submitter. Invariant: only
//! `SUCCESS` (in any case) pays a refund, only a code Alipay documents as
//! final fails one, and a code nobody has classified never decides money:
//! it leaves the item unresolved for a person.

/// The code of a paid item, as Alipay's tables write it.
pub const SUCCESS: &str = "SUCCESS";

/// What an item code means for the refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemClass {
    /// The money moved: the refund `succeeded`.
    Paid,
    /// Alipay will not refund this: the refund `failed` with the code.
    Final,
    /// Alipay retries it itself: the item stays unresolved until a later
    /// notification or query settles it.
    AlipayRetries,
    /// A new batch may pass: back to pending after a delay, a bounded number
    /// of times, then `failed` with the code.
    CanPass,
    /// The money's state is unclear (`REFUND_FAIL`) or the code is unknown:
    /// unresolved, alerted, settled by an operator.
    NeedsPerson,
}

impl ItemClass {
    /// The metric and log label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paid => "paid",
            Self::Final => "final",
            Self::AlipayRetries => "alipay_retries",
            Self::CanPass => "can_pass",
            Self::NeedsPerson => "needs_person",
        }
    }

    /// Whether the item is settled by this code (the refund leaves its batch).
    pub fn resolves(self) -> bool {
        matches!(self, Self::Paid | Self::Final | Self::CanPass)
    }
}

/// Final failures about one trade. Every `REASON_*` code is final too
/// (the table names them as a family: `REASON_TRADE_REFUND_FEE_ERR`,
/// `REASON_HAS_REFUND_FEE_NOT_MATCH`, `REASON_REFUND_AMOUNT_LESS_THAN_COUPON_FEE`…).
pub const FINAL: &[&str] = &[
    "TRADE_HAS_CLOSED",
    "TRADE_HAS_FINISHED",
    "TRADE_NOT_EXISTS",
    "NOT_THIS_PARTNERS_TRADE",
    "NOT_THIS_SELLER_TRADE",
    "REFUND_TRADE_FEE_ERROR",
    "REFUND_AMOUNT_NOT_VALID",
    "RESULT_AMOUNT_NOT_VALID",
    "RESULT_FACE_AMOUNT_NOT_VALID",
    "TRADE_PRODUCT_TYPE_NOT_ALLOW_REFUND",
    "WHOLE_DETAIL_FORBID_REFUND",
];

/// The prefix of Alipay's family of final per-trade reason codes.
const FINAL_PREFIX: &str = "REASON_";

/// Codes Alipay says it retries itself ("系统会启动重试机制…商户无需处理").
pub const ALIPAY_RETRIES: &[&str] = &[
    "TRADE_PAYMENT_ERROR",
    "TRADE_PROCESS_ERROR",
    "QUERY_PARTICIPANT_ERROR",
];

/// Codes after which the same refund may pass in a new batch.
pub const CAN_PASS: &[&str] = &[
    "BATCH_REFUND_LOCK_ERROR",
    "TXN_RESULT_ACCOUNT_BALANCE_NOT_ENOUGH",
    "TRADE_STATUS_ERROR",
];

/// Classifies one item code, as read from the wire (surrounding white space
/// is not trimmed: the parser hands over exactly the field).
pub fn classify(code: &str) -> ItemClass {
    if code.eq_ignore_ascii_case(SUCCESS) {
        ItemClass::Paid
    } else if FINAL.contains(&code) || (code.starts_with(FINAL_PREFIX) && code.len() > 7) {
        ItemClass::Final
    } else if ALIPAY_RETRIES.contains(&code) {
        ItemClass::AlipayRetries
    } else if CAN_PASS.contains(&code) {
        ItemClass::CanPass
    } else {
        ItemClass::NeedsPerson
    }
}

#[cfg(test)]
mod tests {
    use super::ItemClass::*;
    use super::*;

    /// Every code of alipay-mapi.md's item table, with its class.
    const TABLE: &[(&str, ItemClass)] = &[
        ("SUCCESS", Paid),
        ("success", Paid),
        ("Success", Paid),
        ("TRADE_HAS_CLOSED", Final),
        ("TRADE_HAS_FINISHED", Final),
        ("TRADE_NOT_EXISTS", Final),
        ("NOT_THIS_PARTNERS_TRADE", Final),
        ("NOT_THIS_SELLER_TRADE", Final),
        ("REFUND_TRADE_FEE_ERROR", Final),
        ("REFUND_AMOUNT_NOT_VALID", Final),
        ("RESULT_AMOUNT_NOT_VALID", Final),
        ("RESULT_FACE_AMOUNT_NOT_VALID", Final),
        ("TRADE_PRODUCT_TYPE_NOT_ALLOW_REFUND", Final),
        ("REASON_TRADE_REFUND_FEE_ERR", Final),
        ("REASON_HAS_REFUND_FEE_NOT_MATCH", Final),
        ("REASON_REFUND_AMOUNT_LESS_THAN_COUPON_FEE", Final),
        ("WHOLE_DETAIL_FORBID_REFUND", Final),
        ("TRADE_PAYMENT_ERROR", AlipayRetries),
        ("TRADE_PROCESS_ERROR", AlipayRetries),
        ("QUERY_PARTICIPANT_ERROR", AlipayRetries),
        ("BATCH_REFUND_LOCK_ERROR", CanPass),
        ("TXN_RESULT_ACCOUNT_BALANCE_NOT_ENOUGH", CanPass),
        ("TRADE_STATUS_ERROR", CanPass),
        ("REFUND_FAIL", NeedsPerson),
    ];

    #[test]
    fn every_code_of_the_item_table_has_its_class() {
        for &(code, class) in TABLE {
            assert_eq!(classify(code), class, "{code}");
        }
    }

    #[test]
    fn a_code_nobody_classified_needs_a_person_and_never_decides_money() {
        for code in [
            "SOMETHING_NEW",
            "",
            " SUCCESS",
            "SUCCESS ",
            "SUCCES",
            "REASON_",
            "trade_has_closed",
        ] {
            assert_eq!(classify(code), NeedsPerson, "{code:?}");
        }
    }

    #[test]
    fn only_paid_final_and_can_pass_resolve_an_item() {
        assert!(Paid.resolves() && Final.resolves() && CanPass.resolves());
        assert!(!AlipayRetries.resolves() && !NeedsPerson.resolves());
    }

    #[test]
    fn no_code_sits_in_two_lists() {
        let all = [FINAL, ALIPAY_RETRIES, CAN_PASS].concat();
        let mut sorted = all.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len());
    }
}
