//! The OpenAPI answer envelope, as Alipay writes it: `{"<method>_response":
//! {...}, "sign": "..."}`, signed with the key the sandbox plays Alipay with.
//!
//! Owns the JSON text of answers and refusals. Invariant: the signature is
//! made over exactly the bytes of the response value as they appear in the
//! body (the value is serialised once, then signed, then embedded), so the
//! worker's `answer::read` verifies it; a forged signature is a valid RSA2
//! signature over other bytes, so it is well-formed and never verifies.
//! Pure.

use serde_json::{Map, Value, json};

use crate::alipay::openapi::sign::{AppKey, KeyError};

/// The content type of every OpenAPI answer.
pub const CONTENT_TYPE: &str = "application/json;charset=utf-8";
/// Where a refusal by the gateway's common checks is answered.
pub const ERROR_RESPONSE: &str = "error_response";

/// The key of `method`'s answer: dots as underscores, `_response` after.
pub fn response_key(method: &str) -> String {
    format!("{}_response", method.replace('.', "_"))
}

/// A refusal: code, message and the reason in `sub_code`/`sub_msg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: &'static str,
    pub msg: &'static str,
    pub sub_code: String,
    pub sub_msg: String,
}

impl Failure {
    /// `40001 Missing Required Arguments`.
    pub fn missing(sub_code: &str, sub_msg: impl Into<String>) -> Self {
        Self::new("40001", "Missing Required Arguments", sub_code, sub_msg)
    }

    /// `40002 Invalid Arguments`.
    pub fn invalid(sub_code: &str, sub_msg: impl Into<String>) -> Self {
        Self::new("40002", "Invalid Arguments", sub_code, sub_msg)
    }

    /// `40004 Business Failed`.
    pub fn business(sub_code: &str, sub_msg: impl Into<String>) -> Self {
        Self::new("40004", "Business Failed", sub_code, sub_msg)
    }

    /// `20000 Service Currently Unavailable`: the outcome is unknown to the caller.
    pub fn unavailable() -> Self {
        Self::new(
            "20000",
            "Service Currently Unavailable",
            "aop.ACQ.SYSTEM_ERROR",
            "系统繁忙",
        )
    }

    fn new(
        code: &'static str,
        msg: &'static str,
        sub_code: &str,
        sub_msg: impl Into<String>,
    ) -> Self {
        Self {
            code,
            msg,
            sub_code: sub_code.to_owned(),
            sub_msg: sub_msg.into(),
        }
    }

    /// The response value's JSON text.
    pub fn to_json(&self) -> String {
        json!({
            "code": self.code,
            "msg": self.msg,
            "sub_code": self.sub_code,
            "sub_msg": self.sub_msg,
        })
        .to_string()
    }
}

/// A success's response value: `code 10000, msg Success` and `fields`.
pub fn success_json(fields: Map<String, Value>) -> String {
    let mut value = Map::new();
    value.insert("code".into(), "10000".into());
    value.insert("msg".into(), "Success".into());
    value.extend(fields);
    Value::Object(value).to_string()
}

/// How an answer is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// Over the exact bytes of the response value.
    Proper,
    /// A real signature over other bytes: it never verifies.
    Forged,
}

/// The body: `value` under `key`, and its signature when the sandbox has
/// a key to sign with (none: no `sign`, which proves nothing to a worker).
pub fn envelope(
    key: &str,
    value: &str,
    signer: Option<&AppKey>,
    signing: Signing,
) -> Result<String, KeyError> {
    let key = Value::from(key).to_string();
    let Some(signer) = signer else {
        return Ok(format!("{{{key}:{value}}}"));
    };
    let signature = match signing {
        Signing::Proper => signer.sign(value)?,
        Signing::Forged => signer.sign(&format!("{value} "))?,
    };
    let signature = Value::from(signature).to_string();
    Ok(format!("{{{key}:{value},\"sign\":{signature}}}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alipay::openapi::answer::{Disposition, Read, judge, read};
    use crate::alipay::openapi::request::REFUND;
    use crate::sandbox::openapi::test_keys::{alipay_key, alipay_public};

    #[test]
    fn a_signed_answer_reads_as_verified_with_the_sandbox_public_key() {
        let value = success_json(
            [("fund_change".to_owned(), Value::from("Y"))]
                .into_iter()
                .collect(),
        );
        let body = envelope(
            &response_key(REFUND),
            &value,
            Some(&alipay_key()),
            Signing::Proper,
        )
        .unwrap();
        let Read::Verified { answer, raw } = read(&body, REFUND, &alipay_public()) else {
            panic!("{body}");
        };
        assert_eq!(raw, value);
        assert_eq!(
            judge(Some(&answer)),
            Disposition::Refunded { fund_moved: true }
        );
    }

    #[test]
    fn a_forged_or_missing_signature_reads_as_unverified() {
        let value = Failure::unavailable().to_json();
        let key = response_key(REFUND);
        for body in [
            envelope(&key, &value, Some(&alipay_key()), Signing::Forged).unwrap(),
            envelope(&key, &value, None, Signing::Proper).unwrap(),
        ] {
            assert!(
                matches!(
                    read(&body, REFUND, &alipay_public()),
                    Read::Unverified { .. }
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn a_refusal_under_error_response_is_read_with_its_sub_code() {
        let refusal = Failure::invalid("isv.invalid-app-id", "no such app");
        let body = envelope(
            ERROR_RESPONSE,
            &refusal.to_json(),
            Some(&alipay_key()),
            Signing::Proper,
        )
        .unwrap();
        let Read::Verified { answer, .. } = read(&body, REFUND, &alipay_public()) else {
            panic!("{body}");
        };
        assert_eq!(answer.code, "40002");
        assert_eq!(answer.sub_code.as_deref(), Some("isv.invalid-app-id"));
        assert_eq!(
            response_key("alipay.trade.fastpay.refund.query"),
            "alipay_trade_fastpay_refund_query_response"
        );
    }
}
