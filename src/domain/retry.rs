//! Which failed refunds an operator may send again (`refund retry`).
//!
//! Owns the rule of contract §1: a failure "may pass" when a later attempt
//! in a new batch can succeed — the merchant's balance was short, another
//! refund of the trade held its lock, or the failure was our partner
//! configuration or contract, which an operator fixes. Every other code is
//! final at Alipay (a second attempt would fail the same way or pay twice
//! what the first may have paid), and a refund that is not `failed` has
//! nothing to retry.

use std::fmt;

/// Alipay's item codes after which a new batch can succeed (the item-code
/// table's "can pass" class).
pub const PASSING_ITEM_CODES: &[&str] = super::item_code::CAN_PASS;

/// The OpenAPI `sub_code`s after which a later call can succeed (the
/// merchant's balance, a frozen trade, a locked account): retried under the
/// item-retry settings, and by an operator after that.
pub const OPENAPI_PASSING: &[&str] = &[
    "ACQ.SELLER_BALANCE_NOT_ENOUGH",
    "ACQ.REASON_TRADE_BEEN_FREEZEN",
    "ACQ.TRADE_STATUS_ERROR",
];

/// Why a refund may not be retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Only a failed refund can be retried.
    NotFailed(String),
    /// The failure is final.
    FinalCode(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFailed(status) => write!(f, "it is {status}, not failed"),
            Self::FinalCode(code) => write!(
                f,
                "it failed with {code}, which is final: a new attempt cannot pass"
            ),
        }
    }
}

/// Whether a refund in `status` that failed with `code` may go back to pending.
/// `partner_codes` are the codes that mean our partner setup was refused.
pub fn may_retry(status: &str, code: Option<&str>, partner_codes: &[&str]) -> Result<(), Refusal> {
    if status != "failed" {
        return Err(Refusal::NotFailed(status.to_owned()));
    }
    let code = code.unwrap_or("");
    if PASSING_ITEM_CODES.contains(&code)
        || OPENAPI_PASSING.contains(&code)
        || partner_codes.contains(&code)
    {
        Ok(())
    } else {
        Err(Refusal::FinalCode(code.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARTNER: &[&str] = &["ILLEGAL_PARTNER"];

    #[test]
    fn passing_codes_and_partner_codes_may_be_retried() {
        for code in [
            "TXN_RESULT_ACCOUNT_BALANCE_NOT_ENOUGH",
            "BATCH_REFUND_LOCK_ERROR",
            "ILLEGAL_PARTNER",
        ] {
            assert_eq!(may_retry("failed", Some(code), PARTNER), Ok(()), "{code}");
        }
    }

    #[test]
    fn final_codes_and_other_states_are_refused_with_the_reason() {
        let refused = may_retry("failed", Some("REFUND_TRADE_FEE_ERROR"), PARTNER).unwrap_err();
        assert_eq!(refused, Refusal::FinalCode("REFUND_TRADE_FEE_ERROR".into()));
        assert!(refused.to_string().contains("final"));
        assert_eq!(
            may_retry("failed", Some("REFUND_COUNT_EXCEEDED"), PARTNER),
            Err(Refusal::FinalCode("REFUND_COUNT_EXCEEDED".into()))
        );
        assert_eq!(
            may_retry("pending", None, PARTNER).unwrap_err().to_string(),
            "it is pending, not failed"
        );
        assert_eq!(
            may_retry("succeeded", Some("SUCCESS"), PARTNER),
            Err(Refusal::NotFailed("succeeded".into()))
        );
    }
}
