//! What a synchronous answer means for the batch: the one retry table.
//!
//! Owns the mapping from Alipay's answer codes to what the worker does next,
//! exactly as the answer table of the design describes. Invariant: no code
//! that could hide an accepted batch leads to a new `batch_no` for its items;
//! only `Accepted` lets the batch wait for a notification, and only codes
//! that prove non-acceptance let its items move elsewhere.

use crate::alipay::wire::answer::{AnswerError, SyncAnswer};

/// The next step for a batch after Alipay's synchronous answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// Accepted (now or before): mark submitted and await the notification.
    Accepted,
    /// Maybe accepted: resend the same batch unchanged, or query; never a new `batch_no`.
    OutcomeUnknown,
    /// Our configuration or contract is wrong: pause the partner and alert.
    PartnerMisconfigured,
    /// Refused for its number or date: rebuild with a fresh `batch_no`, unless
    /// an earlier attempt had an unknown outcome (then query first).
    Rebuild,
    /// One trade sank the batch for good: a batch of one fails with the
    /// code, a larger one is split.
    BadItem,
    /// One trade sank the batch for now (`TRADE_STATUS_ERROR`, balance,
    /// lock): split like [`Self::BadItem`]; alone, the refund goes back to
    /// pending for a later attempt, not to `failed`.
    ItemMayPass,
    /// We built a batch Alipay cannot read: hold the batch and alert loudly.
    OurBug,
    /// An `F` code the answer table does not know: hold the batch, alert
    /// with the code; an operator may release its refunds to pending.
    UnknownCode,
}

impl Disposition {
    /// The metric label: `accepted`, `outcome_unknown`, `partner_misconfigured`,
    /// `rebuild`, `bad_item`, `item_may_pass`, `our_bug` or `unknown_code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::OutcomeUnknown => "outcome_unknown",
            Self::PartnerMisconfigured => "partner_misconfigured",
            Self::Rebuild => "rebuild",
            Self::BadItem => "bad_item",
            Self::ItemMayPass => "item_may_pass",
            Self::OurBug => "our_bug",
            Self::UnknownCode => "unknown_code",
        }
    }
}

/// Codes that mean "this batch was accepted before".
const ACCEPTED: &[&str] = &["DUPLICATE_BATCH_NO"];

/// Codes after which Alipay may or may not hold the batch.
const OUTCOME_UNKNOWN: &[&str] = &["SYSTEM_ERROR", "UNKNOWN_EXCEPTION", "GENERIC_FAILURE"];

/// Codes about our partner configuration, contract or account.
pub const PARTNER_MISCONFIGURED: &[&str] = &[
    "ILLEGAL_SIGN",
    "ILLEGAL_PARTNER",
    "ILLEGAL_PARTNER_EXTERFACE",
    "ILLEGAL_EXTERFACE",
    "ILLEGAL_SECURITY_PROFILE",
    "ILLEGAL_SIGN_TYPE",
    "ILLEGAL_CHARSET",
    "ILLEGAL_ENCODING",
    "ILLEGAL_CLIENT_IP",
    "ILLEGAL_EXTER_INVOKE_IP",
    "ILLEGAL_AGENT",
    "ILLEGAL_DYN_MD5_KEY",
    "ILLEGAL_ENCRYPT",
    "ILLEGAL_ACCESS_SWITCH_SYSTEM",
    "ILLEGAL_REQUEST_REFERER",
    "ILLEGAL_ANTI_PHISHING_KEY",
    "ANTI_PHISHING_KEY_TIMEOUT",
    "HAS_NO_PRIVILEGE",
    "EXTERFACE_IS_CLOSED",
    "PARTNER_NOT_SIGN_PROTOCOL",
    "SELLER_NOT_SIGN_PROTOCOL",
    "ILLEGAL_SERVICE",
    "ILLEGAL_USER",
    "SELLER_INFO_NOT_EXIST",
    "SELLER_STATUS_NOT_ALLOW",
    "TXN_RESULT_ACCOUNT_STATUS_NOT_VALID",
    "CA_USER_NOT_USE_CA",
];

/// Codes about the batch number or date of this attempt.
const REBUILD: &[&str] = &[
    "BATCH_NO_FORMAT_ERROR",
    "RESULT_BATCH_NO_FORMAT_ERROR",
    "REFUND_DATE_ERROR",
];

/// Codes about how we built this batch (or a reason Alipay cannot encode):
/// hold it, alert loudly, and leave the partner's other batches alone.
const OUR_BUG: &[&str] = &[
    "ILLEGAL_ARGUMENT",
    "BATCH_NUM_ERROR",
    "BATCH_NUM_EXCEED_LIMIT",
    "BATCH_NUM_NOT_EQUAL_TOTAL",
    "DETAIL_DATA_FORMAT_ERROR",
    "DUBL_TRADE_NO_IN_SAME_BATCH",
    "BATCH_MEMO_LENGTH_EXCEED_LIMIT",
    "SINGLE_DETAIL_DATA_EXCEED_LIMIT",
    "SINGLE_DETAIL_DATA_ENCODING_NOT_SUPPORT",
];

/// Final codes about one trade. Every `REASON_*` code is one too: the
/// table names that family (`REASON_TRADE_REFUND_FEE_ERR`,
/// `REASON_HAS_REFUND_FEE_NOT_MATCH`, `REASON_REFUND_AMOUNT_LESS_THAN_COUPON_FEE`).
const BAD_ITEM: &[&str] = &[
    "NOT_THIS_SELLER_TRADE",
    "NOT_THIS_PARTNERS_TRADE",
    "TRADE_NOT_EXISTS",
    "TRADE_HAS_CLOSED",
    "TRADE_HAS_FINISHED",
    "REFUND_AMOUNT_NOT_VALID",
    "REFUND_TRADE_FEE_ERROR",
    "RESULT_AMOUNT_NOT_VALID",
    "RESULT_FACE_AMOUNT_NOT_VALID",
    "TRADE_PRODUCT_TYPE_NOT_ALLOW_REFUND",
    "WHOLE_DETAIL_FORBID_REFUND",
];

/// Codes about one trade that can pass later: the item-code table's own.
const ITEM_MAY_PASS: &[&str] = crate::domain::item_code::CAN_PASS;

/// Classifies the error code of an `F` answer.
///
/// An unknown code is [`Disposition::UnknownCode`]. `F` means not accepted,
/// so no money moved and the batch must not wait as if accepted; but we do
/// not know what it refuses, so each automatic path is wrong somewhere:
/// `BadItem` would fail refunds for good (or split a batch into a thousand
/// failures) over what may be an account-wide or passing condition;
/// `Rebuild` and `OutcomeUnknown` would repeat the refusal. Holding the batch
/// and alerting keeps every item intact until a person releases it (or adds
/// the code here).
pub fn classify_code(code: &str) -> Disposition {
    let tables: [(&[&str], Disposition); 7] = [
        (ACCEPTED, Disposition::Accepted),
        (OUTCOME_UNKNOWN, Disposition::OutcomeUnknown),
        (PARTNER_MISCONFIGURED, Disposition::PartnerMisconfigured),
        (REBUILD, Disposition::Rebuild),
        (OUR_BUG, Disposition::OurBug),
        (BAD_ITEM, Disposition::BadItem),
        (ITEM_MAY_PASS, Disposition::ItemMayPass),
    ];
    if let Some((_, d)) = tables.into_iter().find(|(codes, _)| codes.contains(&code)) {
        return d;
    }
    if code.starts_with("REASON_") && code.len() > "REASON_".len() {
        return Disposition::BadItem;
    }
    Disposition::UnknownCode
}

/// Classifies a readable synchronous answer.
pub fn classify_answer(answer: &SyncAnswer) -> Disposition {
    match answer {
        SyncAnswer::Accepted => Disposition::Accepted,
        SyncAnswer::Processing => Disposition::OutcomeUnknown,
        SyncAnswer::Failed { code } => classify_code(code),
    }
}

/// Classifies a parse result: an unreadable answer (HTML, garbage, empty)
/// may have followed an accepted batch, so its outcome is unknown.
pub fn classify_result(result: &Result<SyncAnswer, AnswerError>) -> Disposition {
    match result {
        Ok(answer) => classify_answer(answer),
        Err(_) => Disposition::OutcomeUnknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Disposition::*;

    /// Every code the design's answer table names, with its disposition.
    fn table() -> Vec<(&'static str, Disposition)> {
        let mut t = vec![
            ("DUPLICATE_BATCH_NO", Accepted),
            ("SYSTEM_ERROR", OutcomeUnknown),
            ("UNKNOWN_EXCEPTION", OutcomeUnknown),
            ("GENERIC_FAILURE", OutcomeUnknown),
            ("BATCH_NO_FORMAT_ERROR", Rebuild),
            ("RESULT_BATCH_NO_FORMAT_ERROR", Rebuild),
            ("REFUND_DATE_ERROR", Rebuild),
            ("REASON_TRADE_REFUND_FEE_ERR", BadItem),
            ("REASON_HAS_REFUND_FEE_NOT_MATCH", BadItem),
            ("REASON_REFUND_AMOUNT_LESS_THAN_COUPON_FEE", BadItem),
        ];
        t.extend(
            PARTNER_MISCONFIGURED
                .iter()
                .map(|c| (*c, PartnerMisconfigured)),
        );
        t.extend(OUR_BUG.iter().map(|c| (*c, OurBug)));
        t.extend(BAD_ITEM.iter().map(|c| (*c, BadItem)));
        t.extend(ITEM_MAY_PASS.iter().map(|c| (*c, ItemMayPass)));
        t
    }

    #[test]
    fn every_code_in_the_answer_table_has_its_disposition() {
        for (code, expected) in table() {
            assert_eq!(classify_code(code), expected, "{code}");
            let answer = SyncAnswer::Failed { code: code.into() };
            assert_eq!(classify_answer(&answer), expected, "{code}");
        }
        // The table of alipay-mapi.md, counted: 27 configuration codes, 9 of
        // ours, 14 final per-trade (11 listed, 3 REASON_*), 3 passing.
        assert_eq!(PARTNER_MISCONFIGURED.len(), 27);
        assert_eq!(OUR_BUG.len(), 9);
        assert_eq!(BAD_ITEM.len(), 11);
        assert_eq!(ITEM_MAY_PASS.len(), 3);
    }

    #[test]
    fn the_corrected_rows_of_the_table_hold() {
        // One bad argument holds one batch; it does not pause the partner.
        assert_eq!(classify_code("ILLEGAL_ARGUMENT"), OurBug);
        // A lock or a suspended trade passes later: not a final failure.
        assert_eq!(classify_code("BATCH_REFUND_LOCK_ERROR"), ItemMayPass);
        assert_eq!(classify_code("TRADE_STATUS_ERROR"), ItemMayPass);
        assert_eq!(
            classify_code("TXN_RESULT_ACCOUNT_BALANCE_NOT_ENOUGH"),
            ItemMayPass
        );
        // A coupon order refunded in part sinks its batch for good.
        assert_eq!(
            classify_code("REASON_REFUND_AMOUNT_LESS_THAN_COUPON_FEE"),
            BadItem
        );
    }

    #[test]
    fn no_code_sits_in_two_tables() {
        let all = [
            ACCEPTED,
            OUTCOME_UNKNOWN,
            PARTNER_MISCONFIGURED,
            REBUILD,
            OUR_BUG,
            BAD_ITEM,
            ITEM_MAY_PASS,
        ]
        .concat();
        let mut sorted = all.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len());
    }

    #[test]
    fn t_is_accepted_and_p_is_unknown() {
        assert_eq!(classify_answer(&SyncAnswer::Accepted), Accepted);
        assert_eq!(classify_answer(&SyncAnswer::Processing), OutcomeUnknown);
    }

    #[test]
    fn an_unknown_code_holds_the_batch_rather_than_failing_refunds() {
        for code in [
            "SELLER_BALANCE_NOT_ENOUGH",
            "",
            "illegal_sign",
            "ILLEGAL_SIGN ",
            "T",
            "REASON_",
        ] {
            assert_eq!(classify_code(code), UnknownCode, "{code:?}");
        }
    }

    #[test]
    fn an_unreadable_answer_has_an_unknown_outcome() {
        let unreadable = Err(AnswerError::WrongRoot("html".into()));
        assert_eq!(classify_result(&unreadable), OutcomeUnknown);
        assert_eq!(classify_result(&Ok(SyncAnswer::Accepted)), Accepted);
    }
}
