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
    /// One trade sank the batch: a batch of one fails with the code, a larger one is split.
    BadItem,
    /// We built a batch Alipay cannot read, or said something we do not know:
    /// hold the batch and alert loudly.
    OurBug,
}

impl Disposition {
    /// The metric label: `accepted`, `outcome_unknown`, `partner_misconfigured`,
    /// `rebuild`, `bad_item` or `our_bug`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::OutcomeUnknown => "outcome_unknown",
            Self::PartnerMisconfigured => "partner_misconfigured",
            Self::Rebuild => "rebuild",
            Self::BadItem => "bad_item",
            Self::OurBug => "our_bug",
        }
    }
}

/// Codes that mean "this batch was accepted before".
const ACCEPTED: &[&str] = &["DUPLICATE_BATCH_NO"];

/// Codes after which Alipay may or may not hold the batch.
const OUTCOME_UNKNOWN: &[&str] = &["SYSTEM_ERROR", "UNKNOWN_EXCEPTION", "GENERIC_FAILURE"];

/// Codes about our partner configuration or contract.
pub const PARTNER_MISCONFIGURED: &[&str] = &[
    "ILLEGAL_SIGN",
    "ILLEGAL_PARTNER",
    "ILLEGAL_PARTNER_EXTERFACE",
    "ILLEGAL_SECURITY_PROFILE",
    "ILLEGAL_SIGN_TYPE",
    "ILLEGAL_CHARSET",
    "ILLEGAL_CLIENT_IP",
    "HAS_NO_PRIVILEGE",
    "EXTERFACE_IS_CLOSED",
    "PARTNER_NOT_SIGN_PROTOCOL",
    "SELLER_NOT_SIGN_PROTOCOL",
    "ILLEGAL_SERVICE",
    "ILLEGAL_ARGUMENT",
    "ILLEGAL_USER",
];

/// Codes about the batch number or date of this attempt.
const REBUILD: &[&str] = &[
    "BATCH_NO_FORMAT_ERROR",
    "RESULT_BATCH_NO_FORMAT_ERROR",
    "REFUND_DATE_ERROR",
];

/// Codes about how we built the batch.
const OUR_BUG: &[&str] = &[
    "BATCH_NUM_ERROR",
    "BATCH_NUM_EXCEED_LIMIT",
    "BATCH_NUM_NOT_EQUAL_TOTAL",
    "DETAIL_DATA_FORMAT_ERROR",
    "DUBL_TRADE_NO_IN_SAME_BATCH",
    "BATCH_MEMO_LENGTH_EXCEED_LIMIT",
    "SINGLE_DETAIL_DATA_EXCEED_LIMIT",
    "SINGLE_DETAIL_DATA_ENCODING_NOT_SUPPORT",
];

/// Codes about one trade. The design lists these "…" and open-ended; the two
/// notification codes `RESULT_AMOUNT_NOT_VALID` and `BATCH_REFUND_LOCK_ERROR`
/// are about one trade as well, so they split the batch the same way.
const BAD_ITEM: &[&str] = &[
    "NOT_THIS_SELLER_TRADE",
    "NOT_THIS_PARTNERS_TRADE",
    "TRADE_NOT_EXISTS",
    "TRADE_STATUS_ERROR",
    "TRADE_HAS_CLOSED",
    "TRADE_HAS_FINISHED",
    "REFUND_AMOUNT_NOT_VALID",
    "REFUND_TRADE_FEE_ERROR",
    "TRADE_PRODUCT_TYPE_NOT_ALLOW_REFUND",
    "RESULT_AMOUNT_NOT_VALID",
    "BATCH_REFUND_LOCK_ERROR",
];

/// Item codes in a notification after which a new batch may still succeed.
const ITEM_RETRYABLE: &[&str] = &[
    "TXN_RESULT_ACCOUNT_BALANCE_NOT_ENOUGH",
    "BATCH_REFUND_LOCK_ERROR",
];

/// Classifies the error code of an `F` answer.
///
/// An unknown code is [`Disposition::OurBug`]. `F` means not accepted, so no
/// money moved and the batch must not wait as if accepted; but we do not
/// know what it refuses, so each automatic path is wrong somewhere:
/// `BadItem` would fail refunds for good (or split a batch into a thousand
/// failures) over what may be an account-wide or passing condition;
/// `Rebuild` and `OutcomeUnknown` would repeat the refusal. Holding the batch
/// and alerting keeps every item intact until a person adds the code here.
pub fn classify_code(code: &str) -> Disposition {
    let tables: [(&[&str], Disposition); 6] = [
        (ACCEPTED, Disposition::Accepted),
        (OUTCOME_UNKNOWN, Disposition::OutcomeUnknown),
        (PARTNER_MISCONFIGURED, Disposition::PartnerMisconfigured),
        (REBUILD, Disposition::Rebuild),
        (OUR_BUG, Disposition::OurBug),
        (BAD_ITEM, Disposition::BadItem),
    ];
    tables
        .into_iter()
        .find(|(codes, _)| codes.contains(&code))
        .map_or(Disposition::OurBug, |(_, d)| d)
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

/// Whether a failed item in a notification may succeed in a later batch;
/// every other item code is final.
pub fn item_code_is_retryable(code: &str) -> bool {
    ITEM_RETRYABLE.contains(&code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Disposition::*;

    /// Every code the design's answer table names, with its disposition.
    const TABLE: &[(&str, Disposition)] = &[
        ("DUPLICATE_BATCH_NO", Accepted),
        ("SYSTEM_ERROR", OutcomeUnknown),
        ("UNKNOWN_EXCEPTION", OutcomeUnknown),
        ("GENERIC_FAILURE", OutcomeUnknown),
        ("ILLEGAL_SIGN", PartnerMisconfigured),
        ("ILLEGAL_PARTNER", PartnerMisconfigured),
        ("ILLEGAL_PARTNER_EXTERFACE", PartnerMisconfigured),
        ("ILLEGAL_SECURITY_PROFILE", PartnerMisconfigured),
        ("ILLEGAL_SIGN_TYPE", PartnerMisconfigured),
        ("ILLEGAL_CHARSET", PartnerMisconfigured),
        ("ILLEGAL_CLIENT_IP", PartnerMisconfigured),
        ("HAS_NO_PRIVILEGE", PartnerMisconfigured),
        ("EXTERFACE_IS_CLOSED", PartnerMisconfigured),
        ("PARTNER_NOT_SIGN_PROTOCOL", PartnerMisconfigured),
        ("SELLER_NOT_SIGN_PROTOCOL", PartnerMisconfigured),
        ("ILLEGAL_SERVICE", PartnerMisconfigured),
        ("ILLEGAL_ARGUMENT", PartnerMisconfigured),
        ("ILLEGAL_USER", PartnerMisconfigured),
        ("BATCH_NO_FORMAT_ERROR", Rebuild),
        ("RESULT_BATCH_NO_FORMAT_ERROR", Rebuild),
        ("REFUND_DATE_ERROR", Rebuild),
        ("BATCH_NUM_ERROR", OurBug),
        ("BATCH_NUM_EXCEED_LIMIT", OurBug),
        ("BATCH_NUM_NOT_EQUAL_TOTAL", OurBug),
        ("DETAIL_DATA_FORMAT_ERROR", OurBug),
        ("DUBL_TRADE_NO_IN_SAME_BATCH", OurBug),
        ("BATCH_MEMO_LENGTH_EXCEED_LIMIT", OurBug),
        ("SINGLE_DETAIL_DATA_EXCEED_LIMIT", OurBug),
        ("SINGLE_DETAIL_DATA_ENCODING_NOT_SUPPORT", OurBug),
        ("NOT_THIS_SELLER_TRADE", BadItem),
        ("NOT_THIS_PARTNERS_TRADE", BadItem),
        ("TRADE_NOT_EXISTS", BadItem),
        ("TRADE_STATUS_ERROR", BadItem),
        ("TRADE_HAS_CLOSED", BadItem),
        ("TRADE_HAS_FINISHED", BadItem),
        ("REFUND_AMOUNT_NOT_VALID", BadItem),
        ("REFUND_TRADE_FEE_ERROR", BadItem),
        ("TRADE_PRODUCT_TYPE_NOT_ALLOW_REFUND", BadItem),
        ("RESULT_AMOUNT_NOT_VALID", BadItem),
        ("BATCH_REFUND_LOCK_ERROR", BadItem),
    ];

    #[test]
    fn every_code_in_the_answer_table_has_its_disposition() {
        for &(code, expected) in TABLE {
            assert_eq!(classify_code(code), expected, "{code}");
            let answer = SyncAnswer::Failed { code: code.into() };
            assert_eq!(classify_answer(&answer), expected, "{code}");
        }
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
        ]
        .concat();
        let mut sorted = all.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len());
        assert_eq!(all.len(), TABLE.len());
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
        ] {
            assert_eq!(classify_code(code), OurBug, "{code:?}");
        }
    }

    #[test]
    fn an_unreadable_answer_has_an_unknown_outcome() {
        let unreadable = Err(AnswerError::WrongRoot("html".into()));
        assert_eq!(classify_result(&unreadable), OutcomeUnknown);
        assert_eq!(classify_result(&Ok(SyncAnswer::Accepted)), Accepted);
    }

    #[test]
    fn only_balance_and_lock_item_failures_may_be_retried() {
        assert!(item_code_is_retryable(
            "TXN_RESULT_ACCOUNT_BALANCE_NOT_ENOUGH"
        ));
        assert!(item_code_is_retryable("BATCH_REFUND_LOCK_ERROR"));
        for code in [
            "TRADE_HAS_CLOSED",
            "REFUND_FAIL",
            "SUCCESS",
            "SOMETHING_NEW",
        ] {
            assert!(!item_code_is_retryable(code), "{code}");
        }
    }
}
