//! The common checks of an OpenAPI call (alipay-openapi.md, "Transport and
//! signing"), in the order this sandbox plays them: the app, the signature,
//! the common parameters, the method.
//!
//! Invariant: nothing of a call is believed before its signature verifies
//! with its app's public key over every parameter but `sign`, empty values
//! dropped (`content_to_sign`); a sandbox without a key to answer with
//! knows no app, so every call is `isv.invalid-app-id`. Pure.

use chrono::NaiveDateTime;

use super::answer::Failure;
use super::config::OpenApiApp;
use crate::alipay::openapi::request::{REFUND, REFUND_QUERY};
use crate::alipay::openapi::sign::content_to_sign;
use crate::sandbox::checks::param;

/// The methods the sandbox serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Refund,
    Query,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Refund => REFUND,
            Method::Query => REFUND_QUERY,
        }
    }
}

/// A call that passed the common checks.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub app: &'a OpenApiApp,
    pub method: Method,
    pub biz_content: &'a str,
}

/// Whether a form is an OpenAPI call: it names a `method` and no mapi `service`.
pub fn is_openapi(params: &[(String, String)]) -> bool {
    param(params, "method").is_some() && param(params, "service").is_none()
}

/// Checks a call in order: app, signature, common parameters, method.
pub fn check_call<'a>(
    params: &'a [(String, String)],
    apps: &'a [OpenApiApp],
    can_answer: bool,
) -> Result<Call<'a>, Failure> {
    let app_id = param(params, "app_id").unwrap_or_default();
    let app = apps
        .iter()
        .find(|a| a.app_id == app_id)
        .filter(|_| can_answer)
        .ok_or_else(|| {
            Failure::invalid(
                "isv.invalid-app-id",
                format!("app_id {app_id:?} is not an app of this sandbox"),
            )
        })?;
    let sign = param(params, "sign").unwrap_or_default();
    if !app
        .app_public
        .verifies(content_to_sign(params, &["sign"]).as_bytes(), sign)
    {
        return Err(Failure::invalid(
            "isv.invalid-signature",
            "验签出错: the signature does not verify with the app's public key",
        ));
    }
    let biz_content = check_common(params)?;
    let method = match param(params, "method").unwrap_or_default() {
        REFUND => Method::Refund,
        REFUND_QUERY => Method::Query,
        other => {
            return Err(Failure::invalid(
                "isv.invalid-method",
                format!("method {other:?} is not served by this sandbox"),
            ));
        }
    };
    Ok(Call {
        app,
        method,
        biz_content,
    })
}

/// The common parameters after the signature: `sign_type`, `charset`,
/// `biz_content`, `timestamp`, `version`. The value is `biz_content`.
fn check_common(params: &[(String, String)]) -> Result<&str, Failure> {
    let given = |name: &str| param(params, name).filter(|v| !v.is_empty());
    match given("sign_type") {
        Some("RSA2") => {}
        other => {
            return Err(Failure::invalid(
                "isv.invalid-signature-type",
                format!("sign_type {other:?}: only RSA2 is served"),
            ));
        }
    }
    if let Some(charset) = given("charset").filter(|c| !c.eq_ignore_ascii_case("utf-8")) {
        return Err(Failure::invalid(
            "isv.invalid-charset",
            format!("charset {charset:?}: only utf-8 is served"),
        ));
    }
    let biz_content = given("biz_content")
        .ok_or_else(|| Failure::missing("isv.missing-biz-content", "biz_content is missing"))?;
    let timestamp = given("timestamp")
        .ok_or_else(|| Failure::missing("isv.missing-timestamp", "timestamp is missing"))?;
    if NaiveDateTime::parse_from_str(timestamp, "%Y-%m-%d %H:%M:%S").is_err() {
        return Err(Failure::invalid(
            "isv.invalid-timestamp",
            format!("timestamp {timestamp:?} is not yyyy-MM-dd HH:mm:ss"),
        ));
    }
    match given("version") {
        Some("1.0") => {}
        None => {
            return Err(Failure::missing(
                "isv.missing-version",
                "version is missing",
            ));
        }
        Some(v) => {
            return Err(Failure::invalid(
                "isv.invalid-version",
                format!("version {v:?}: only 1.0 is served"),
            ));
        }
    }
    Ok(biz_content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alipay::openapi::request::{RefundBiz, signed_form};
    use crate::sandbox::openapi::test_keys::{APP_ID, app_key, apps, beijing};

    fn form() -> Vec<(String, String)> {
        let biz = RefundBiz::new("T1", 100, "r", "R-1".into());
        signed_form(APP_ID, REFUND, &biz, beijing(), &app_key()).unwrap()
    }

    /// The form with `name` set to `value` (or removed), signed again.
    fn resigned(name: &str, value: Option<&str>) -> Vec<(String, String)> {
        let mut params: Vec<_> = form()
            .into_iter()
            .filter(|(k, _)| k != "sign" && k != name)
            .collect();
        if let Some(v) = value {
            params.push((name.to_owned(), v.to_owned()));
        }
        let sign = app_key()
            .sign(&content_to_sign(&params, &["sign"]))
            .unwrap();
        params.push(("sign".into(), sign));
        params
    }

    fn sub_code(params: &[(String, String)]) -> String {
        check_call(params, &apps(), true).unwrap_err().sub_code
    }

    #[test]
    fn a_signed_call_of_a_known_app_passes() {
        let params = form();
        let apps = apps();
        let call = check_call(&params, &apps, true).unwrap();
        assert_eq!(call.method, Method::Refund);
        assert_eq!(call.app.app_id, APP_ID);
        assert!(call.biz_content.contains("\"R-1\""));
        assert!(is_openapi(&params));
    }

    #[test]
    fn an_unknown_app_or_a_sandbox_without_a_key_is_invalid_app_id() {
        let params = resigned("app_id", Some("2021999999999999"));
        assert_eq!(sub_code(&params), "isv.invalid-app-id");
        let e = check_call(&form(), &apps(), false).unwrap_err();
        assert_eq!(
            (e.code, e.sub_code.as_str()),
            ("40002", "isv.invalid-app-id")
        );
    }

    #[test]
    fn a_changed_parameter_fails_the_signature_before_anything_else() {
        let mut params = form();
        for (k, v) in &mut params {
            if k == "version" {
                *v = "2.0".into();
            }
        }
        assert_eq!(sub_code(&params), "isv.invalid-signature");
        let mut unsigned = form();
        unsigned.retain(|(k, _)| k != "sign");
        assert_eq!(sub_code(&unsigned), "isv.invalid-signature");
    }

    #[test]
    fn common_parameters_are_checked_after_the_signature_then_the_method() {
        let cases = [
            (
                "sign_type",
                Some("RSA"),
                "40002",
                "isv.invalid-signature-type",
            ),
            ("charset", Some("GBK"), "40002", "isv.invalid-charset"),
            ("biz_content", None, "40001", "isv.missing-biz-content"),
            ("timestamp", None, "40001", "isv.missing-timestamp"),
            (
                "timestamp",
                Some("2026/12/06"),
                "40002",
                "isv.invalid-timestamp",
            ),
            ("version", None, "40001", "isv.missing-version"),
            (
                "method",
                Some("alipay.trade.pay"),
                "40002",
                "isv.invalid-method",
            ),
        ];
        for (name, value, code, sub) in cases {
            let e = check_call(&resigned(name, value), &apps(), true).unwrap_err();
            assert_eq!(
                (e.code, e.sub_code.as_str()),
                (code, sub),
                "{name}={value:?}"
            );
            assert!(!e.sub_msg.is_empty());
        }
        let query = resigned("method", Some(REFUND_QUERY));
        assert_eq!(
            check_call(&query, &apps(), true).unwrap().method,
            Method::Query
        );
    }

    #[test]
    fn a_mapi_form_is_not_an_openapi_call() {
        let p = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert!(!is_openapi(&[
            p("service", "refund_fastpay_query"),
            p("method", "x")
        ]));
        assert!(!is_openapi(&[p("partner", "2088")]));
    }
}
