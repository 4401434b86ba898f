//! The OpenAPI 充退 push, `alipay.trade.refund.depositback.completed`
//! (alipay-openapi.md, "充退 push"): a form POST, verified with Alipay's
//! public key over the sorted parameters without `sign` and `sign_type`,
//! then read into the refund it names and its final status.
//!
//! Alipay's message service puts a push's business fields in `biz_content`
//! (a JSON object); some documents show them as plain parameters. Both are
//! read; the signature covers every parameter either way.
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
    let biz: serde_json::Map<String, serde_json::Value> = match get("biz_content") {
        Some(text) => serde_json::from_str(text).map_err(|_| PushError::Missing("biz_content"))?,
        None => serde_json::Map::new(),
    };
    let field = |name: &'static str| -> Option<String> {
        let from_biz = match biz.get(name) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        from_biz
            .filter(|v| !v.is_empty())
            .or_else(|| get(name).map(str::to_owned))
    };
    let status = field("dback_status").ok_or(PushError::Missing("dback_status"))?;
    let succeeded = match status.as_str() {
        "S" => true,
        "F" => false,
        _ => return Err(PushError::NotFinal(status)),
    };
    Ok(DepositBackPush {
        app_id: get("app_id").map(str::to_owned),
        trade_no: field("trade_no").ok_or(PushError::Missing("trade_no"))?,
        out_request_no: field("out_request_no").ok_or(PushError::Missing("out_request_no"))?,
        succeeded,
        dback_amount: field("dback_amount"),
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
    fn the_fields_may_come_inside_biz_content() {
        let p = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let mut params = vec![
            p("app_id", "2021000000000001"),
            p("msg_method", DEPOSITBACK_COMPLETED),
            p("notify_id", "n-2"),
            p(
                "biz_content",
                r#"{"trade_no":"2026120622001","out_request_no":"R-2","dback_status":"F","dback_amount":"1.00"}"#,
            ),
        ];
        let key = AppKey::parse(PKCS8).unwrap();
        let sign = key.sign(&content_to_sign(&params, &["sign"])).unwrap();
        params.push(p("sign_type", "RSA2"));
        params.push(p("sign", &sign));
        let alipay = AlipayPublicKey::parse(PUBLIC).unwrap();
        let read_it = read(&NotifyForm { params }, &alipay).unwrap();
        assert_eq!(read_it.out_request_no, "R-2");
        assert!(!read_it.succeeded);
        assert_eq!(read_it.dback_amount.as_deref(), Some("1.00"));
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
