//! The form of an OpenAPI call (alipay-openapi.md): the common parameters,
//! `biz_content` as a JSON string, and the RSA2 signature, for
//! `alipay.trade.refund` and `alipay.trade.fastpay.refund.query`. Pure: the
//! caller passes the Beijing time.
//!
//! Invariant: a refund's `out_request_no` depends only on its id and its
//! round, so every resend of a refund whose outcome is unknown carries the
//! same number (Alipay refunds one number at most once).

use chrono::NaiveDateTime;
use serde::Serialize;

use super::sign::{AppKey, content_to_sign};
use crate::domain::format_fen;

pub const REFUND: &str = "alipay.trade.refund";
pub const REFUND_QUERY: &str = "alipay.trade.fastpay.refund.query";
/// Alipay's limit on `out_request_no`.
const MAX_OUT_REQUEST_NO: usize = 64;

/// The refund's request number: its `refund_id` in the first round, and
/// `refund_id~N` after the N-th operator retry (a new request, since the
/// earlier one failed for good). `~` cannot occur in a `refund_id`
/// (A-Z a-z 0-9 . _ : -), so no refund's number is another's. An id too long
/// for the suffix is shortened to its first 48 characters plus 8 hex digits
/// of its SHA-256, keeping two long ids of one trade apart.
pub fn out_request_no(refund_id: &str, round: i32) -> String {
    if round <= 0 {
        return refund_id.to_owned();
    }
    let suffix = format!("~{round}");
    if refund_id.len() + suffix.len() <= MAX_OUT_REQUEST_NO {
        return format!("{refund_id}{suffix}");
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, refund_id.as_bytes());
    let tag: String = digest.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // refund_id is ASCII (its grammar), so byte slicing is on a char boundary.
    format!("{}{tag}{suffix}", &refund_id[..48.min(refund_id.len())])
}

/// One refund, as `alipay.trade.refund` takes it.
#[derive(Debug, Clone, Serialize)]
pub struct RefundBiz<'a> {
    pub trade_no: &'a str,
    /// Yuan with two decimals, from integer fen.
    pub refund_amount: String,
    pub refund_reason: &'a str,
    pub out_request_no: String,
}

impl<'a> RefundBiz<'a> {
    pub fn new(
        trade_no: &'a str,
        amount_fen: i64,
        reason: &'a str,
        out_request_no: String,
    ) -> Self {
        Self {
            trade_no,
            refund_amount: format_fen(amount_fen),
            refund_reason: reason,
            out_request_no,
        }
    }
}

/// The question `alipay.trade.fastpay.refund.query` asks, with the 充退 status.
#[derive(Debug, Clone, Serialize)]
pub struct QueryBiz<'a> {
    pub trade_no: &'a str,
    pub out_request_no: &'a str,
    pub query_options: [&'static str; 1],
}

impl<'a> QueryBiz<'a> {
    pub fn new(trade_no: &'a str, out_request_no: &'a str) -> Self {
        Self {
            trade_no,
            out_request_no,
            query_options: ["deposit_back_info"],
        }
    }
}

/// The signed form of a call: `(name, value)` pairs, `sign` last.
pub fn signed_form<B: Serialize>(
    app_id: &str,
    method: &str,
    biz: &B,
    beijing: NaiveDateTime,
    key: &AppKey,
) -> anyhow::Result<Vec<(String, String)>> {
    let biz_content = serde_json::to_string(biz)?;
    let mut params: Vec<(String, String)> = [
        ("app_id", app_id.to_owned()),
        ("method", method.to_owned()),
        ("format", "JSON".to_owned()),
        ("charset", "utf-8".to_owned()),
        ("sign_type", "RSA2".to_owned()),
        ("timestamp", beijing.format("%Y-%m-%d %H:%M:%S").to_string()),
        ("version", "1.0".to_owned()),
        ("biz_content", biz_content),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let signature = key.sign(&content_to_sign(&params, &["sign"]))?;
    params.push(("sign".to_owned(), signature));
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alipay::openapi::sign::AlipayPublicKey;

    const PKCS8: &str = include_str!("testdata/pk8.b64");
    const PUBLIC: &str = include_str!("testdata/spki.b64");
    const CONTENT: &str = include_str!("testdata/content.txt");
    const SIGNATURE: &str = include_str!("testdata/sig.b64");

    #[test]
    fn the_form_signs_what_an_independent_library_signed() {
        let key = AppKey::parse(PKCS8).unwrap();
        let beijing = chrono::NaiveDate::from_ymd_opt(2026, 12, 6)
            .unwrap()
            .and_hms_opt(14, 0, 0)
            .unwrap();
        // The fixture's biz_content: keys in this order, no reason.
        #[derive(Serialize)]
        struct Fixture {
            out_request_no: &'static str,
            refund_amount: String,
            trade_no: &'static str,
        }
        let biz = Fixture {
            out_request_no: "R-1",
            refund_amount: format_fen(1050),
            trade_no: "2026120622001",
        };
        let form = signed_form("2021000000000001", REFUND, &biz, beijing, &key).unwrap();
        assert_eq!(content_to_sign(&form, &["sign"]), CONTENT);
        let sign = &form.last().unwrap().1;
        assert_eq!(sign, SIGNATURE.trim());
        let ours = AlipayPublicKey::parse(PUBLIC).unwrap();
        assert!(ours.verifies(CONTENT.as_bytes(), sign));
    }

    #[test]
    fn refund_biz_content_carries_yuan_from_fen() {
        let biz = RefundBiz::new("T1", 5, "退款", out_request_no("R-1", 0));
        let json = serde_json::to_string(&biz).unwrap();
        assert_eq!(
            json,
            r#"{"trade_no":"T1","refund_amount":"0.05","refund_reason":"退款","out_request_no":"R-1"}"#
        );
        let query = serde_json::to_string(&QueryBiz::new("T1", "R-1")).unwrap();
        assert_eq!(
            query,
            r#"{"trade_no":"T1","out_request_no":"R-1","query_options":["deposit_back_info"]}"#
        );
    }

    #[test]
    fn request_numbers_are_stable_per_round_and_fit_alipays_limit() {
        assert_eq!(out_request_no("R-1", 0), "R-1");
        assert_eq!(out_request_no("R-1", 2), "R-1~2");
        assert_eq!(out_request_no("R-1", 2), out_request_no("R-1", 2));
        let long_a = "a".repeat(64);
        let long_b = format!("{}b", "a".repeat(63));
        let (a, b) = (out_request_no(&long_a, 1), out_request_no(&long_b, 1));
        assert!(a.len() <= 64 && b.len() <= 64, "{a} {b}");
        assert_ne!(a, b);
        assert!(a.ends_with("~1"));
    }
}
