//! The OpenAPI 充退 push, `alipay.trade.refund.depositback.completed`
//! (alipay-openapi.md, "充退 push"): a form POST, verified with Alipay's
//! public key over the sorted parameters without `sign` and `sign_type`,
//! then read into the refund it names and its final status.
//!
//! Invariant: nothing of a push is believed before its signature verifies;
//! a push that does not verify, or that verifies but is not a final 充退
//! status we can read, changes nothing (the caller stores it raw with its
//! verdict and answers `fail`).

use thiserror::Error;

use super::sign::{AlipayPublicKey, content_to_sign};
use crate::alipay::wire::notify::NotifyForm;

/// The method name the push carries in `msg_method`.
pub const DEPOSITBACK_COMPLETED: &str = "alipay.trade.refund.depositback.completed";

/// A verified 充退 push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepositBackPush {
    pub app_id: Option<String>,
    pub trade_no: String,
    /// Our `out_request_no`: which refund.
    pub out_request_no: String,
    /// `S` reached the buyer's bank card; `F` did not (it stays in the balance).
    pub succeeded: bool,
    pub dback_amount: Option<String>,
    pub notify_id: Option<String>,
}

/// Why a push is refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PushError {
    #[error("the push carries no sign")]
    Unsigned,
    #[error("the push's signature does not verify with Alipay's public key")]
    Forged,
    #[error("the push lacks {0}")]
    Missing(&'static str),
    #[error("dback_status {0:?} is not a final 充退 status (S or F)")]
    NotFinal(String),
    #[error("msg_method {0:?} is not {DEPOSITBACK_COMPLETED}")]
    WrongMethod(String),
}

/// Verifies and reads a push already decoded as a form.
pub fn read(form: &NotifyForm, alipay: &AlipayPublicKey) -> Result<DepositBackPush, PushError> {
    let get = |name: &str| {
        form.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let sign = get("sign").ok_or(PushError::Unsigned)?;
    let content = content_to_sign(&form.params, &["sign", "sign_type"]);
    if !alipay.verifies(content.as_bytes(), sign) {
        return Err(PushError::Forged);
    }
    if let Some(method) = get("msg_method").filter(|m| *m != DEPOSITBACK_COMPLETED) {
        return Err(PushError::WrongMethod(method.to_owned()));
    }
    let status = get("dback_status").ok_or(PushError::Missing("dback_status"))?;
    let succeeded = match status {
        "S" => true,
        "F" => false,
        other => return Err(PushError::NotFinal(other.to_owned())),
    };
    Ok(DepositBackPush {
        app_id: get("app_id").map(str::to_owned),
        trade_no: get("trade_no")
            .ok_or(PushError::Missing("trade_no"))?
            .to_owned(),
        out_request_no: get("out_request_no")
            .ok_or(PushError::Missing("out_request_no"))?
            .to_owned(),
        succeeded,
        dback_amount: get("dback_amount").map(str::to_owned),
        notify_id: get("notify_id").map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alipay::openapi::sign::AppKey;

    const PKCS8: &str = include_str!("testdata/pk8.b64");
    const PUBLIC: &str = include_str!("testdata/spki.b64");

    /// A push signed with the test key (standing in for Alipay's).
    fn push(status: &str, tamper: bool) -> NotifyForm {
        let p = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let mut params = vec![
            p("app_id", "2021000000000001"),
            p("msg_method", DEPOSITBACK_COMPLETED),
            p("notify_id", "n-1"),
            p("trade_no", "2026120622001"),
            p("out_trade_no", "O-1"),
            p("out_request_no", "R-1"),
            p("dback_status", status),
            p("dback_amount", "10.50"),
            p("bank_ack_time", "2026-12-07 10:00:00"),
        ];
        let key = AppKey::parse(PKCS8).unwrap();
        let sign = key.sign(&content_to_sign(&params, &["sign"])).unwrap();
        params.push(p("sign_type", "RSA2"));
        params.push(p("sign", &sign));
        if tamper {
            params[7] = p("dback_amount", "99.00");
        }
        NotifyForm { params }
    }

    #[test]
    fn a_signed_push_names_its_refund_and_final_status() {
        let alipay = AlipayPublicKey::parse(PUBLIC).unwrap();
        let read_it = read(&push("S", false), &alipay).unwrap();
        assert_eq!(read_it.out_request_no, "R-1");
        assert!(read_it.succeeded);
        assert!(!read(&push("F", false), &alipay).unwrap().succeeded);
    }

    #[test]
    fn forged_unsigned_and_unfinished_pushes_are_refused() {
        let alipay = AlipayPublicKey::parse(PUBLIC).unwrap();
        assert_eq!(read(&push("S", true), &alipay), Err(PushError::Forged));
        let mut unsigned = push("S", false);
        unsigned.params.retain(|(k, _)| k != "sign");
        assert_eq!(read(&unsigned, &alipay), Err(PushError::Unsigned));
        assert_eq!(
            read(&push("P", false), &alipay),
            Err(PushError::NotFinal("P".into()))
        );
    }
}
