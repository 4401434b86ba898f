//! An `alipay.trade.refund` answer, read and judged once (alipay-openapi.md):
//! the envelope's `…_response` value verified over its exact bytes with
//! Alipay's public key, then the one table of what each answer means.
//!
//! Invariant: only a verified answer can settle a refund. Anything else (a
//! time-out, a status other than 200, a body we cannot read, a signature
//! that does not verify, `20000`, `ACQ.SYSTEM_ERROR`) leaves the outcome
//! unknown: the same `out_request_no` is sent again or queried, never a new
//! one. A code the table does not know holds the refund for a person; it is
//! never failed by guess.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::sign::AlipayPublicKey;

/// The fields of an answer the worker reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RefundAnswer {
    pub code: String,
    #[serde(default)]
    pub msg: Option<String>,
    #[serde(default)]
    pub sub_code: Option<String>,
    #[serde(default)]
    pub sub_msg: Option<String>,
    /// `Y`: the money moved now; `N`: this `out_request_no` was refunded before.
    #[serde(default)]
    pub fund_change: Option<String>,
}

/// What the body of an HTTP 200 said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// Signed by Alipay over the exact bytes of the response value, which
    /// `raw` holds (for the fields a particular method adds).
    Verified { answer: RefundAnswer, raw: String },
    /// Readable, but the signature is missing or does not verify: proves nothing.
    Unverified { why: &'static str },
    /// Not the JSON envelope at all.
    Unreadable { why: String },
}

/// Reads `body`, the answer to `method` (`alipay.trade.refund` answers under
/// `alipay_trade_refund_response`, the query under
/// `alipay_trade_fastpay_refund_query_response`; a refusal by the gateway may
/// come as `error_response`).
pub fn read(body: &str, method: &str, alipay: &AlipayPublicKey) -> Read {
    let envelope: HashMap<&str, &RawValue> = match serde_json::from_str(body) {
        Ok(e) => e,
        Err(e) => {
            return Read::Unreadable {
                why: format!("not a JSON object: {e}"),
            };
        }
    };
    let key = format!("{}_response", method.replace('.', "_"));
    let Some(raw) = envelope
        .get(key.as_str())
        .or_else(|| envelope.get("error_response"))
    else {
        return Read::Unreadable {
            why: format!("no {key} in the answer"),
        };
    };
    let answer: RefundAnswer = match serde_json::from_str(raw.get()) {
        Ok(a) => a,
        Err(e) => {
            return Read::Unreadable {
                why: format!("{key} is not an answer: {e}"),
            };
        }
    };
    let signature = envelope
        .get("sign")
        .and_then(|s| serde_json::from_str::<String>(s.get()).ok());
    match signature {
        None => Read::Unverified {
            why: "the answer carries no signature",
        },
        Some(s) if alipay.verifies(raw.get().as_bytes(), &s) => Read::Verified {
            answer,
            raw: raw.get().to_owned(),
        },
        Some(_) => Read::Unverified {
            why: "the answer's signature does not verify with Alipay's public key",
        },
    }
}

/// What the worker does after a refund call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Refunded: `fund_moved` is false when Alipay had refunded this
    /// `out_request_no` before (a repeat).
    Refunded { fund_moved: bool },
    /// The outcome is unknown: the same `out_request_no` again, or the query
    /// (no sooner than 10 s after the call).
    Unknown,
    /// Refused for now with a code that can pass: again later, under the
    /// item-retry settings; past the limit it fails with the code.
    RetryLater,
    /// Refused for good: the refund fails with `sub_code`.
    Failed,
    /// Our configuration or our bug, or a code the table lacks: keep the
    /// refund as it is and alert a person.
    Hold,
}

/// Sub-codes that can pass later (the merchant's balance, a frozen trade).
pub const CAN_PASS: &[&str] = crate::domain::retry::OPENAPI_PASSING;

/// Sub-codes that refuse this refund for good.
pub const FINAL: &[&str] = &[
    "ACQ.TRADE_NOT_EXIST",
    "ACQ.TRADE_HAS_FINISHED",
    "ACQ.TRADE_NOT_ALLOW_REFUND",
    "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL",
    "ACQ.REASON_TRADE_REFUND_FEE_ERR",
    "ACQ.REFUND_FEE_ERROR",
];

/// Sub-codes that say we sent something wrong: never renumber, alert.
pub const OUR_BUG: &[&str] = &["ACQ.INVALID_PARAMETER", "ACQ.DISCORDANT_REPEAT_REQUEST"];

/// The one table. `None` is a call without a verified answer (time-out,
/// status other than 200, unreadable or unverified body).
pub fn judge(answer: Option<&RefundAnswer>) -> Disposition {
    let Some(a) = answer else {
        return Disposition::Unknown;
    };
    let sub = a.sub_code.as_deref().unwrap_or("");
    match a.code.as_str() {
        "10000" => match a.fund_change.as_deref() {
            Some("Y") => Disposition::Refunded { fund_moved: true },
            Some("N") => Disposition::Refunded { fund_moved: false },
            // A success that does not say whether money moved: the query will.
            _ => Disposition::Unknown,
        },
        "20000" => Disposition::Unknown,
        "40004" if sub == "ACQ.SYSTEM_ERROR" => Disposition::Unknown,
        "40004" if CAN_PASS.contains(&sub) => Disposition::RetryLater,
        "40004" if FINAL.contains(&sub) => Disposition::Failed,
        // 20001 authorisation, 40001/40002 parameters, 40006 permission,
        // ACQ.INVALID_PARAMETER, ACQ.DISCORDANT_REPEAT_REQUEST, and any code
        // or sub-code not in the table.
        _ => Disposition::Hold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC: &str = include_str!("testdata/spki.b64");
    const RESPONSE: &str = include_str!("testdata/resp.txt");
    const RESPONSE_SIGNATURE: &str = include_str!("testdata/rsig.b64");
    const METHOD: &str = "alipay.trade.refund";

    fn body(response: &str, sign: &str) -> String {
        format!(r#"{{"alipay_trade_refund_response":{response},"sign":"{sign}"}}"#)
    }

    fn answer(code: &str, sub: Option<&str>, fund_change: Option<&str>) -> RefundAnswer {
        RefundAnswer {
            code: code.into(),
            sub_code: sub.map(Into::into),
            fund_change: fund_change.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn a_signed_answer_is_read_over_its_exact_bytes() {
        let alipay = AlipayPublicKey::parse(PUBLIC).unwrap();
        let read_it = read(&body(RESPONSE, RESPONSE_SIGNATURE.trim()), METHOD, &alipay);
        let Read::Verified { answer: a, raw } = read_it else {
            panic!("{read_it:?}");
        };
        assert_eq!(raw, RESPONSE);
        assert_eq!(a.code, "10000");
        assert_eq!(judge(Some(&a)), Disposition::Refunded { fund_moved: true });
    }

    #[test]
    fn an_answer_whose_signature_fails_or_is_missing_proves_nothing() {
        let alipay = AlipayPublicKey::parse(PUBLIC).unwrap();
        let forged = RESPONSE.replace("\"Y\"", "\"N\"");
        assert!(matches!(
            read(&body(&forged, RESPONSE_SIGNATURE.trim()), METHOD, &alipay),
            Read::Unverified { .. }
        ));
        let unsigned = format!(r#"{{"alipay_trade_refund_response":{RESPONSE}}}"#);
        assert!(matches!(
            read(&unsigned, METHOD, &alipay),
            Read::Unverified { .. }
        ));
        for junk in [
            "<html>502</html>",
            "{}",
            r#"{"alipay_trade_refund_response":1}"#,
        ] {
            assert!(
                matches!(read(junk, METHOD, &alipay), Read::Unreadable { .. }),
                "{junk}"
            );
        }
        assert_eq!(judge(None), Disposition::Unknown);
    }

    #[test]
    fn every_kind_of_answer_has_one_disposition() {
        use Disposition::*;
        let cases = [
            (
                answer("10000", None, Some("Y")),
                Refunded { fund_moved: true },
            ),
            (
                answer("10000", None, Some("N")),
                Refunded { fund_moved: false },
            ),
            (answer("10000", None, None), Unknown),
            (answer("20000", Some("isp.unknow-error"), None), Unknown),
            (answer("40004", Some("ACQ.SYSTEM_ERROR"), None), Unknown),
            (
                answer("40004", Some("ACQ.SELLER_BALANCE_NOT_ENOUGH"), None),
                RetryLater,
            ),
            (
                answer("40004", Some("ACQ.TRADE_HAS_FINISHED"), None),
                Failed,
            ),
            (answer("40004", Some("ACQ.TRADE_NOT_EXIST"), None), Failed),
            (
                answer("40004", Some("ACQ.DISCORDANT_REPEAT_REQUEST"), None),
                Hold,
            ),
            (answer("40004", Some("ACQ.INVALID_PARAMETER"), None), Hold),
            (answer("40004", Some("ACQ.SOMETHING_NEW"), None), Hold),
            (answer("40002", Some("isv.invalid-signature"), None), Hold),
            (answer("20001", Some("aop.invalid-auth-token"), None), Hold),
            (
                answer("40006", Some("isv.insufficient-isv-permissions"), None),
                Hold,
            ),
        ];
        for (a, expected) in cases {
            assert_eq!(judge(Some(&a)), expected, "{a:?}");
        }
        // The lists do not overlap.
        for code in CAN_PASS.iter().chain(FINAL) {
            assert!(!OUR_BUG.contains(code));
        }
        assert!(CAN_PASS.iter().all(|c| !FINAL.contains(c)));
    }
}
