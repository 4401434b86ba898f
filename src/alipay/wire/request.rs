//! Requests we send to the mapi gateway: nopwd refund, query, notify_verify.
//!
//! Owns the parameter lists and their one spelling of the charset. Invariant:
//! `_input_charset` is [`INPUT_CHARSET`] (`UTF-8`, capitals) in the URL, in
//! the body and in the signed string alike; a mismatch is `ILLEGAL_SIGN`.
//! The form body is the signed parameters, encoded once, so the values Alipay
//! decodes are byte for byte the values we signed.

use super::batch_no::{self, BatchNoError, format_refund_date};
use super::detail::{self, BatchItem, DetailError, detail_data};
use super::form;
use crate::alipay::sign;
use chrono::NaiveDateTime;
use thiserror::Error;

/// The one spelling of the charset, used in URL, body and signed string.
pub const INPUT_CHARSET: &str = "UTF-8";
/// Service name of the no-password batch refund.
pub const NOPWD_SERVICE: &str = "refund_fastpay_by_platform_nopwd";
/// Service name of the refund query.
pub const QUERY_SERVICE: &str = "refund_fastpay_query";

/// Why a request would be refused before it leaves us.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RequestError {
    /// `partner` is not `2088` followed by 12 digits.
    #[error("partner {0:?} is not 2088 followed by 12 digits")]
    Partner(String),
    /// A notify URL that is empty or carries its own query string.
    #[error("notify url {0:?} must be a full URL without a query string")]
    NotifyUrl(String),
    /// A bad `batch_no`.
    #[error(transparent)]
    BatchNo(#[from] BatchNoError),
    /// `refund_date` on another day than the `batch_no` (`REFUND_DATE_ERROR`).
    #[error("refund_date {refund_date} is not on the batch_no date")]
    RefundDate {
        /// The refused `refund_date`, formatted.
        refund_date: String,
    },
    /// Bad items.
    #[error(transparent)]
    Detail(#[from] DetailError),
}

/// The URL every mapi POST goes to: `{gateway}?_input_charset=UTF-8`.
pub fn gateway_url(gateway: &str) -> String {
    format!("{gateway}?_input_charset={INPUT_CHARSET}")
}

/// A `refund_fastpay_by_platform_nopwd` request: one batch of refunds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NopwdRequest {
    /// Our partner id, `2088` + 12 digits.
    pub partner: String,
    /// Where `batch_refund_notify` goes; without it no result is ever sent.
    pub notify_url: String,
    /// Where 充退 results go, if we want them.
    pub dback_notify_url: Option<String>,
    /// Unique per partner forever; same batch_no always means the same content.
    pub batch_no: String,
    /// Beijing time at which the batch was first built; resends keep it.
    pub refund_date: NaiveDateTime,
    /// The refunds, 1..=1000.
    pub items: Vec<BatchItem>,
}

impl NopwdRequest {
    /// Checks every rule we can check locally, so Alipay's batch-construction
    /// codes mean a bug. Does not compare with today: a resend keeps its date.
    pub fn validate(&self) -> Result<(), RequestError> {
        validate_partner(&self.partner)?;
        validate_notify_url(&self.notify_url)?;
        if let Some(url) = &self.dback_notify_url {
            validate_notify_url(url)?;
        }
        validate_batch(&self.batch_no, self.refund_date, &self.items)
    }

    /// The unsigned business parameters, in a readable order.
    pub fn params(&self) -> Vec<(String, String)> {
        let mut params = vec![
            pair("service", NOPWD_SERVICE),
            pair("partner", &self.partner),
            pair("_input_charset", INPUT_CHARSET),
            pair("notify_url", &self.notify_url),
        ];
        if let Some(url) = &self.dback_notify_url {
            params.push(pair("dback_notify_url", url));
        }
        params.extend(batch_params(&self.batch_no, self.refund_date, &self.items));
        params
    }

    /// The parameters plus `sign_type=MD5` and `sign`, ready to send.
    pub fn signed_params(&self, key: &str) -> Vec<(String, String)> {
        signed(self.params(), key)
    }

    /// The URL-encoded POST body: exactly the signed parameters.
    pub fn form_body(&self, key: &str) -> String {
        form::encode(&self.signed_params(key))
    }

    /// Where to POST the body: `{gateway}?_input_charset=UTF-8`.
    pub fn url(gateway: &str) -> String {
        gateway_url(gateway)
    }
}

/// What a `refund_fastpay_query` asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryBy {
    /// Every item of one of our batches.
    Batch(String),
    /// Every refund of one trade.
    Trade(String),
    /// One trade within one batch.
    Both {
        /// Our `batch_no`.
        batch_no: String,
        /// Alipay's trade number.
        trade_no: String,
    },
}

/// Signed parameters of a `refund_fastpay_query`, POSTed like the refund.
pub fn query_params(partner: &str, by: &QueryBy, key: &str) -> Vec<(String, String)> {
    let mut params = vec![
        pair("service", QUERY_SERVICE),
        pair("partner", partner),
        pair("_input_charset", INPUT_CHARSET),
    ];
    match by {
        QueryBy::Batch(batch_no) => params.push(pair("batch_no", batch_no)),
        QueryBy::Trade(trade_no) => params.push(pair("trade_no", trade_no)),
        QueryBy::Both { batch_no, trade_no } => {
            params.push(pair("batch_no", batch_no));
            params.push(pair("trade_no", trade_no));
        }
    }
    signed(params, key)
}

/// The unsigned GET that asks Alipay whether a notification is genuine.
/// `notify_id` is the decoded value from the notification, encoded here once.
pub fn notify_verify_url(gateway: &str, partner: &str, notify_id: &str) -> String {
    format!(
        "{gateway}?service=notify_verify&partner={}&notify_id={}",
        form::encode_value(partner),
        form::encode_value(notify_id)
    )
}

/// Checks the rules shared by the nopwd request and the pwd form.
pub(crate) fn validate_batch(
    batch_no: &str,
    refund_date: NaiveDateTime,
    items: &[BatchItem],
) -> Result<(), RequestError> {
    let date = batch_no::parse_batch_no(batch_no)?;
    if refund_date.date() != date {
        return Err(RequestError::RefundDate {
            refund_date: format_refund_date(refund_date),
        });
    }
    detail::validate_items(items)?;
    Ok(())
}

/// The batch parameters shared by the nopwd request and the pwd form.
pub(crate) fn batch_params(
    batch_no: &str,
    refund_date: NaiveDateTime,
    items: &[BatchItem],
) -> Vec<(String, String)> {
    vec![
        pair("batch_no", batch_no),
        pair("refund_date", &format_refund_date(refund_date)),
        pair("batch_num", &items.len().to_string()),
        pair("detail_data", &detail_data(items)),
    ]
}

/// Appends `sign_type` and `sign` to unsigned parameters.
pub(crate) fn signed(mut params: Vec<(String, String)>, key: &str) -> Vec<(String, String)> {
    let signature = sign::sign(&params, key);
    params.push(pair("sign_type", "MD5"));
    params.push(pair("sign", &signature));
    params
}

/// Checks `2088` + 12 digits.
pub(crate) fn validate_partner(partner: &str) -> Result<(), RequestError> {
    let ok = partner.len() == 16
        && partner.starts_with("2088")
        && partner.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(RequestError::Partner(partner.to_owned()))
    }
}

/// A notify URL must be absolute and have no query of its own.
pub(crate) fn validate_notify_url(url: &str) -> Result<(), RequestError> {
    let absolute = url.starts_with("https://") || url.starts_with("http://");
    if absolute && !url.contains(['?', '#']) && !url.contains(char::is_whitespace) {
        Ok(())
    } else {
        Err(RequestError::NotifyUrl(url.to_owned()))
    }
}

/// Builds an owned pair.
pub(crate) fn pair(k: &str, v: &str) -> (String, String) {
    (k.to_owned(), v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    const GATEWAY: &str = "https://mapi.alipay.com/gateway.do";

    fn request() -> NopwdRequest {
        NopwdRequest {
            partner: "2088101122136241".into(),
            notify_url: "https://refunds.example.com/alipay/notify".into(),
            dback_notify_url: None,
            batch_no: "20160613001".into(),
            refund_date: NaiveDate::from_ymd_opt(2016, 6, 13)
                .and_then(|d| d.and_hms_opt(7, 57, 12))
                .unwrap(),
            items: vec![BatchItem {
                trade_no: "201606132100100479".into(),
                amount_fen: 1,
                reason: "我要退款".into(),
            }],
        }
    }

    fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_well_formed_request_validates() {
        assert_eq!(request().validate(), Ok(()));
    }

    #[test]
    fn the_params_carry_service_charset_count_and_detail() {
        let params = request().params();
        assert_eq!(get(&params, "service"), Some(NOPWD_SERVICE));
        assert_eq!(get(&params, "_input_charset"), Some("UTF-8"));
        assert_eq!(get(&params, "batch_num"), Some("1"));
        assert_eq!(get(&params, "refund_date"), Some("2016-06-13 07:57:12"));
        assert_eq!(
            get(&params, "detail_data"),
            Some("201606132100100479^0.01^我要退款")
        );
        assert_eq!(get(&params, "dback_notify_url"), None);
        assert_eq!(get(&params, "sign"), None);
    }

    #[test]
    fn the_signed_params_verify_with_the_same_key() {
        let params = request().signed_params("secret");
        assert_eq!(get(&params, "sign_type"), Some("MD5"));
        assert!(sign::verify(&params, "secret"));
    }

    #[test]
    fn the_body_decodes_to_exactly_the_signed_values() {
        let body = request().form_body("secret");
        assert!(body.contains("_input_charset=UTF-8"));
        let decoded = form::decode(body.as_bytes()).unwrap();
        assert_eq!(decoded, request().signed_params("secret"));
        assert!(sign::verify(&decoded, "secret"));
    }

    #[test]
    fn the_url_and_body_spell_the_charset_the_same_way() {
        let url = NopwdRequest::url(GATEWAY);
        assert_eq!(
            url,
            "https://mapi.alipay.com/gateway.do?_input_charset=UTF-8"
        );
        let body = request().form_body("k");
        let in_url = url.split_once('?').map(|(_, q)| q).unwrap();
        assert!(body.split('&').any(|p| p == in_url));
    }

    #[test]
    fn a_dback_url_is_sent_when_given() {
        let mut r = request();
        r.dback_notify_url = Some("https://refunds.example.com/alipay/dback".into());
        assert_eq!(r.validate(), Ok(()));
        assert!(get(&r.params(), "dback_notify_url").is_some());
    }

    #[test]
    fn a_refund_date_on_another_day_than_the_batch_no_is_refused() {
        let mut r = request();
        r.batch_no = "20160612001".into();
        assert!(matches!(r.validate(), Err(RequestError::RefundDate { .. })));
    }

    #[test]
    fn a_notify_url_with_a_query_string_is_refused() {
        let mut r = request();
        r.notify_url = "https://x.example.com/n?a=1".into();
        assert!(matches!(r.validate(), Err(RequestError::NotifyUrl(_))));
        r.notify_url = "/relative".into();
        assert!(matches!(r.validate(), Err(RequestError::NotifyUrl(_))));
    }

    #[test]
    fn a_partner_must_be_2088_and_twelve_digits() {
        for bad in [
            "208810112213624",
            "1088101122136241",
            "2088a01122136241",
            "",
        ] {
            let mut r = request();
            r.partner = bad.into();
            assert!(
                matches!(r.validate(), Err(RequestError::Partner(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_items_are_refused_before_sending() {
        let mut r = request();
        r.items.clear();
        assert_eq!(r.validate(), Err(RequestError::Detail(DetailError::Empty)));
    }

    #[test]
    fn a_query_by_batch_is_signed_and_carries_only_the_batch() {
        let params = query_params(
            "2088101122136241",
            &QueryBy::Batch("20160613001".into()),
            "k",
        );
        assert_eq!(get(&params, "service"), Some(QUERY_SERVICE));
        assert_eq!(get(&params, "batch_no"), Some("20160613001"));
        assert_eq!(get(&params, "trade_no"), None);
        assert!(sign::verify(&params, "k"));
    }

    #[test]
    fn a_query_by_both_carries_batch_and_trade() {
        let by = QueryBy::Both {
            batch_no: "20160613001".into(),
            trade_no: "2016".into(),
        };
        let params = query_params("2088101122136241", &by, "k");
        assert_eq!(get(&params, "batch_no"), Some("20160613001"));
        assert_eq!(get(&params, "trade_no"), Some("2016"));
    }

    #[test]
    fn notify_id_is_url_encoded_exactly_once() {
        let url = notify_verify_url(GATEWAY, "2088101122136241", "RqPnCoPT3K9/Vwbh3I+2a%b");
        assert_eq!(
            url,
            "https://mapi.alipay.com/gateway.do?service=notify_verify&partner=2088101122136241\
             &notify_id=RqPnCoPT3K9%2FVwbh3I%2B2a%25b"
        );
    }
}
