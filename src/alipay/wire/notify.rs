//! Notifications Alipay posts to us: `batch_refund_notify` and 充退 (dback,
//! its typed view in `notify_dback.rs`).
//!
//! Owns turning the raw body into ordered parameters ([`NotifyForm`]) and
//! those into typed views. Invariants: the body is read as
//! `application/x-www-form-urlencoded` UTF-8 whatever its Content-Type says;
//! a parameter named twice is refused, so the value we verify is the value
//! we act on; the typed view is built from the same pairs the signature
//! covers. Verifying (signature, then `notify_verify`) is the caller's step
//! between parsing the form and trusting the typed view.

use super::form::{self, FormError};
use super::result_details::{ResultItem, UnreadableItem, parse_result_details};
use crate::alipay::sign;
use thiserror::Error;

#[path = "notify_dback.rs"]
mod dback;
pub use dback::{DbackNotify, DbackStatus};

/// The `notify_type` of a batch refund result.
pub const BATCH_REFUND_NOTIFY: &str = "batch_refund_notify";

/// Why a notification could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum NotifyError {
    /// The body is not a UTF-8 form.
    #[error(transparent)]
    Form(#[from] FormError),
    /// A parameter appears twice.
    #[error("parameter {0} appears twice")]
    Repeated(String),
    /// A required parameter is missing or empty.
    #[error("parameter {0} is missing")]
    Missing(&'static str),
    /// `notify_type` is not `batch_refund_notify`.
    #[error("notify_type {0:?} is not batch_refund_notify")]
    NotifyType(String),
}

/// A notification's parameters in the order received, names unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyForm {
    /// Decoded name/value pairs, exactly as signed by Alipay.
    pub params: Vec<(String, String)>,
}

impl NotifyForm {
    /// Reads the raw body; the Content-Type header is deliberately not consulted.
    pub fn parse(body: &[u8]) -> Result<Self, NotifyError> {
        let params = form::decode(body)?;
        for (i, (name, _)) in params.iter().enumerate() {
            if params[..i].iter().any(|(earlier, _)| earlier == name) {
                return Err(NotifyError::Repeated(name.clone()));
            }
        }
        Ok(Self { params })
    }

    /// The value of a parameter, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Checks the MD5 signature over every received parameter.
    pub fn verify_signature(&self, key: &str) -> bool {
        sign::verify(&self.params, key)
    }

    /// The `notify_id` to ask `notify_verify` about, if present.
    pub fn notify_id(&self) -> Option<&str> {
        self.get("notify_id").filter(|v| !v.is_empty())
    }

    /// A required, non-empty parameter.
    fn required(&self, name: &'static str) -> Result<&str, NotifyError> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .ok_or(NotifyError::Missing(name))
    }

    /// An optional parameter; empty counts as absent.
    fn optional(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty()).map(str::to_owned)
    }
}

/// The typed view of a `batch_refund_notify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRefundNotify {
    /// When Alipay sent it, Beijing time, as written (`yyyy-MM-dd HH:mm:ss`).
    pub notify_time: String,
    /// Always `batch_refund_notify`.
    pub notify_type: String,
    /// Alipay's id for this notification; resends repeat it.
    pub notify_id: String,
    /// Our `batch_no`.
    pub batch_no: String,
    /// How many items Alipay counts as `SUCCESS`; `None` when absent or not a count.
    pub success_num: Option<u32>,
    /// One result per refund that could be read, in Alipay's order.
    pub result_details: Vec<ResultItem>,
    /// The items that could not be read, kept for a person.
    pub unreadable: Vec<UnreadableItem>,
    /// Unfrozen-amount details, raw, when present.
    pub unfreezed_details: Option<String>,
}

impl BatchRefundNotify {
    /// Builds the typed view from a parsed form.
    ///
    /// Only what finds and verifies the notification is required (`batch_no`,
    /// `notify_id`, and `notify_type` when present must be ours). A genuine
    /// notification is never refused for the rest of its shape (contract
    /// §5): an unreadable `success_num` is `None`, an absent or empty
    /// `result_details` is no items, and unreadable items are kept aside.
    pub fn from_form(form: &NotifyForm) -> Result<Self, NotifyError> {
        let notify_type = form.get("notify_type").unwrap_or(BATCH_REFUND_NOTIFY);
        if notify_type != BATCH_REFUND_NOTIFY {
            return Err(NotifyError::NotifyType(notify_type.to_owned()));
        }
        // u32's parser accepts a leading `+`; a count is digits only.
        let success_num = form
            .get("success_num")
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse().ok());
        let details = parse_result_details(form.get("result_details").unwrap_or(""));
        Ok(Self {
            notify_time: form.get("notify_time").unwrap_or_default().to_owned(),
            notify_type: notify_type.to_owned(),
            notify_id: form.required("notify_id")?.to_owned(),
            batch_no: form.required("batch_no")?.to_owned(),
            success_num,
            result_details: details.items,
            unreadable: details.unreadable,
            unfreezed_details: form.optional("unfreezed_details"),
        })
    }

    /// Whether `success_num` agrees with the `SUCCESS` items; a mismatch is
    /// counted and logged, not a reason to refuse the notification.
    pub fn success_count_matches(&self) -> bool {
        let counted = self
            .result_details
            .iter()
            .filter(|i| i.is_success())
            .count();
        self.success_num
            .and_then(|n| usize::try_from(n).ok())
            .is_some_and(|n| n == counted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const KEY: &str = "secret";

    /// A signed, encoded notification body, as Alipay would post it.
    pub(super) fn body(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut params: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let signature = sign::sign(&params, KEY);
        params.push(("sign_type".into(), "MD5".into()));
        params.push(("sign".into(), signature));
        form::encode(&params).into_bytes()
    }

    fn refund_pairs(details: &'static str) -> Vec<(&'static str, &'static str)> {
        vec![
            ("notify_time", "2010-03-19 14:35:11"),
            ("notify_type", "batch_refund_notify"),
            ("notify_id", "70fec0c2730b27528665af4517c27b95"),
            ("batch_no", "20100319001"),
            ("success_num", "1"),
            ("result_details", details),
        ]
    }

    #[test]
    fn the_documented_example_parses_and_verifies() {
        let raw = body(&refund_pairs(
            "2010031906272929^80^SUCCESS$jax_chuanhang@alipay.com^2088101003147483^0.01^SUCCESS",
        ));
        let form = NotifyForm::parse(&raw).unwrap();
        assert!(form.verify_signature(KEY));
        let n = BatchRefundNotify::from_form(&form).unwrap();
        assert_eq!(n.batch_no, "20100319001");
        assert_eq!(n.success_num, Some(1));
        assert_eq!(n.result_details[0].amount_fen, 8000);
        assert!(n.success_count_matches());
        assert_eq!(n.unfreezed_details, None);
        assert_eq!(form.notify_id(), Some("70fec0c2730b27528665af4517c27b95"));
    }

    #[test]
    fn percent_encoded_utf8_decodes_before_the_signature_is_checked() {
        let raw = body(&refund_pairs(
            "2010^0.01^SUCCESS|退款分润@example.com^2088^0.01^SUCCESS",
        ));
        assert!(String::from_utf8_lossy(&raw).contains("%E9%80%80"));
        let form = NotifyForm::parse(&raw).unwrap();
        assert!(form.verify_signature(KEY));
        let n = BatchRefundNotify::from_form(&form).unwrap();
        assert!(n.result_details[0].tail.starts_with("|退款分润@"));
    }

    #[test]
    fn a_tampered_body_fails_verification_but_still_parses() {
        let mut raw = String::from_utf8(body(&refund_pairs("2010^80^SUCCESS"))).unwrap();
        raw = raw.replace("%5E80%5E", "%5E800%5E");
        let form = NotifyForm::parse(raw.as_bytes()).unwrap();
        assert!(!form.verify_signature(KEY));
    }

    #[test]
    fn a_repeated_parameter_is_refused() {
        assert_eq!(
            NotifyForm::parse(b"batch_no=1&batch_no=2"),
            Err(NotifyError::Repeated("batch_no".into()))
        );
    }

    #[test]
    fn invalid_utf8_is_refused() {
        assert!(matches!(
            NotifyForm::parse(b"batch_no=%C3%28"),
            Err(NotifyError::Form(FormError::NotUtf8))
        ));
    }

    #[test]
    fn a_missing_field_is_named() {
        let mut pairs = refund_pairs("1^1^SUCCESS");
        pairs.retain(|(k, _)| *k != "batch_no");
        let form = NotifyForm::parse(&body(&pairs)).unwrap();
        assert_eq!(
            BatchRefundNotify::from_form(&form),
            Err(NotifyError::Missing("batch_no"))
        );
    }

    #[test]
    fn another_notify_type_is_refused() {
        let mut pairs = refund_pairs("1^1^SUCCESS");
        pairs[1].1 = "trade_status_sync";
        let form = NotifyForm::parse(&body(&pairs)).unwrap();
        assert!(matches!(
            BatchRefundNotify::from_form(&form),
            Err(NotifyError::NotifyType(_))
        ));
    }

    #[test]
    fn a_success_num_that_is_not_a_count_is_none_not_a_refusal() {
        for bad in ["+1", "-1", "one", "4294967296", ""] {
            let form = NotifyForm {
                params: refund_pairs("1^1^SUCCESS")
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            k.to_string(),
                            if k == "success_num" { bad } else { v }.to_string(),
                        )
                    })
                    .collect(),
            };
            let n = BatchRefundNotify::from_form(&form).unwrap();
            assert_eq!(n.success_num, None, "{bad}");
            assert!(!n.success_count_matches());
        }
    }

    #[test]
    fn a_truncated_result_item_is_kept_aside_and_the_rest_reads() {
        let form = NotifyForm::parse(&body(&refund_pairs("1^1^SUCCESS#2^1"))).unwrap();
        let n = BatchRefundNotify::from_form(&form).unwrap();
        assert_eq!(n.result_details.len(), 1);
        assert_eq!(n.unreadable.len(), 1);
        assert_eq!(n.unreadable[0].index, 1);
        assert_eq!(n.unreadable[0].raw, "2^1");
    }

    #[test]
    fn an_empty_or_absent_result_details_is_a_notification_without_items() {
        let mut pairs = refund_pairs("");
        pairs[4].1 = "0";
        let n = BatchRefundNotify::from_form(&NotifyForm::parse(&body(&pairs)).unwrap()).unwrap();
        assert!(n.result_details.is_empty() && n.unreadable.is_empty());
        assert!(n.success_count_matches());
        pairs.retain(|(k, _)| *k != "result_details");
        let n = BatchRefundNotify::from_form(&NotifyForm::parse(&body(&pairs)).unwrap()).unwrap();
        assert!(n.result_details.is_empty());
    }

    #[test]
    fn five_field_items_and_lower_case_success_read_as_paid() {
        let form = NotifyForm::parse(&body(&refund_pairs("1^1.00^success^false^null"))).unwrap();
        let n = BatchRefundNotify::from_form(&form).unwrap();
        assert!(n.result_details[0].is_success());
        assert!(n.success_count_matches());
    }

    #[test]
    fn a_success_num_disagreeing_with_the_items_is_reported_not_refused() {
        let mut pairs = refund_pairs("1^1^SUCCESS#2^1^TRADE_HAS_CLOSED");
        pairs[4].1 = "2";
        let n = BatchRefundNotify::from_form(&NotifyForm::parse(&body(&pairs)).unwrap()).unwrap();
        assert!(!n.success_count_matches());
    }

    #[test]
    fn unfreezed_details_are_kept_when_present() {
        let mut pairs = refund_pairs("1^1^SUCCESS");
        pairs.push(("unfreezed_details", "x^y^1.00^SUCCESS"));
        let n = BatchRefundNotify::from_form(&NotifyForm::parse(&body(&pairs)).unwrap()).unwrap();
        assert_eq!(n.unfreezed_details.as_deref(), Some("x^y^1.00^SUCCESS"));
    }
}
