//! What an `alipay.trade.fastpay.refund.query` answer proves
//! (alipay-openapi.md): refund data for our `out_request_no` means refunded;
//! none means not refunded *yet* (the same number may be sent again, never a
//! new one); anything unverified, or a refusal, proves nothing.
//!
//! Invariant: a refund is judged refunded only when the answer is verified,
//! names our `out_request_no`, and carries no `refund_status` other than
//! `REFUND_SUCCESS`; an amount other than ours is not applied but held for
//! a person, with the raw answer kept by the caller.

use serde::Deserialize;

use super::answer::RefundAnswer;

/// The fields of a query answer the worker reads (beyond code and sub_code).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct QueryFields {
    #[serde(default)]
    pub out_request_no: Option<String>,
    #[serde(default)]
    pub refund_amount: Option<String>,
    #[serde(default)]
    pub refund_status: Option<String>,
    #[serde(default)]
    pub deposit_back_info: Option<DepositBack>,
}

/// The 充退 status, asked for with `query_options`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct DepositBack {
    /// `S` reached the bank card, `F` did not (it stays in the balance), `P` under way.
    #[serde(default)]
    pub dback_status: Option<String>,
    #[serde(default)]
    pub dback_amount: Option<String>,
}

/// What the query proves about one refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    Refunded,
    /// Verified, and no refund under that number: not refunded yet.
    NotYet,
    /// Refund data that disagrees with what we sent: a person decides.
    Disagrees {
        why: String,
    },
    /// No verified answer, or a refusal: ask again later.
    Nothing,
}

/// Judges a verified answer (`None` for anything else) against the refund's
/// `out_request_no` and amount (yuan text, as sent).
pub fn prove(
    answer: Option<(&RefundAnswer, &QueryFields)>,
    out_request_no: &str,
    amount: &str,
) -> Proof {
    let Some((a, f)) = answer else {
        return Proof::Nothing;
    };
    if a.code != "10000" {
        return Proof::Nothing;
    }
    let Some(refunded) = f.refund_amount.as_deref().filter(|s| !s.is_empty()) else {
        return Proof::NotYet;
    };
    if f.out_request_no
        .as_deref()
        .is_some_and(|n| n != out_request_no)
    {
        return Proof::Disagrees {
            why: format!(
                "the answer is about out_request_no {:?}, not {out_request_no}",
                f.out_request_no
            ),
        };
    }
    if let Some(status) = f
        .refund_status
        .as_deref()
        .filter(|s| *s != "REFUND_SUCCESS")
    {
        return Proof::Disagrees {
            why: format!("refund_status {status}"),
        };
    }
    if refunded != amount {
        return Proof::Disagrees {
            why: format!("refunded {refunded}, but we asked for {amount}"),
        };
    }
    Proof::Refunded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> RefundAnswer {
        RefundAnswer {
            code: "10000".into(),
            ..Default::default()
        }
    }

    fn fields(json: &str) -> QueryFields {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn data_means_refunded_and_none_means_not_yet() {
        let paid = fields(
            r#"{"code":"10000","out_request_no":"R-1","refund_amount":"10.50","refund_status":"REFUND_SUCCESS",
                "deposit_back_info":{"dback_status":"S","dback_amount":"10.50"}}"#,
        );
        assert_eq!(prove(Some((&ok(), &paid)), "R-1", "10.50"), Proof::Refunded);
        assert_eq!(
            paid.deposit_back_info.unwrap().dback_status.as_deref(),
            Some("S")
        );
        let without_status = fields(r#"{"out_request_no":"R-1","refund_amount":"10.50"}"#);
        assert_eq!(
            prove(Some((&ok(), &without_status)), "R-1", "10.50"),
            Proof::Refunded
        );
        let empty = fields(r#"{"code":"10000","msg":"Success"}"#);
        assert_eq!(prove(Some((&ok(), &empty)), "R-1", "10.50"), Proof::NotYet);
    }

    #[test]
    fn refusals_and_unverified_answers_prove_nothing() {
        let refused = RefundAnswer {
            code: "40004".into(),
            sub_code: Some("ACQ.SYSTEM_ERROR".into()),
            ..Default::default()
        };
        let empty = QueryFields::default();
        assert_eq!(
            prove(Some((&refused, &empty)), "R-1", "1.00"),
            Proof::Nothing
        );
        assert_eq!(prove(None, "R-1", "1.00"), Proof::Nothing);
    }

    #[test]
    fn data_that_disagrees_with_what_we_sent_goes_to_a_person() {
        let other = fields(r#"{"out_request_no":"R-2","refund_amount":"10.50"}"#);
        let amount = fields(r#"{"out_request_no":"R-1","refund_amount":"9.00"}"#);
        let status = fields(
            r#"{"out_request_no":"R-1","refund_amount":"10.50","refund_status":"REFUND_PROCESSING"}"#,
        );
        for f in [other, amount, status] {
            assert!(
                matches!(
                    prove(Some((&ok(), &f)), "R-1", "10.50"),
                    Proof::Disagrees { .. }
                ),
                "{f:?}"
            );
        }
    }
}
