//! The auto-submitting HTML form of `refund_fastpay_by_platform_pwd`.
//!
//! Owns the page an operator's browser posts to Alipay, where they type the
//! account's payment password. Invariants: every attribute value is
//! HTML-escaped (`& < > " '`), so a reason or URL cannot break out of its
//! attribute; the form carries the same signed parameters the nopwd request
//! would, plus `seller_user_id` = partner, and posts to
//! `{gateway}?_input_charset=UTF-8`.

use super::detail::BatchItem;
use super::request::{
    self, INPUT_CHARSET, RequestError, batch_params, gateway_url, pair, signed, validate_batch,
};
use chrono::NaiveDateTime;

/// Service name of the password batch refund.
pub const PWD_SERVICE: &str = "refund_fastpay_by_platform_pwd";

/// A `refund_fastpay_by_platform_pwd` batch, open to every merchant that takes payments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PwdRequest {
    /// Our partner id; also sent as `seller_user_id`.
    pub partner: String,
    /// Where `batch_refund_notify` goes.
    pub notify_url: String,
    /// Unique per partner forever.
    pub batch_no: String,
    /// Beijing time of building the batch; same date as `batch_no`.
    pub refund_date: NaiveDateTime,
    /// The refunds, 1..=1000.
    pub items: Vec<BatchItem>,
}

impl PwdRequest {
    /// Checks the same local rules as the nopwd request.
    pub fn validate(&self) -> Result<(), RequestError> {
        request::validate_partner(&self.partner)?;
        request::validate_notify_url(&self.notify_url)?;
        validate_batch(&self.batch_no, self.refund_date, &self.items)
    }

    /// The signed parameters the form carries.
    pub fn signed_params(&self, key: &str) -> Vec<(String, String)> {
        let mut params = vec![
            pair("service", PWD_SERVICE),
            pair("partner", &self.partner),
            pair("_input_charset", INPUT_CHARSET),
            pair("notify_url", &self.notify_url),
            pair("seller_user_id", &self.partner),
        ];
        params.extend(batch_params(&self.batch_no, self.refund_date, &self.items));
        signed(params, key)
    }
}

/// Renders the page that posts a signed pwd refund batch to Alipay on load.
pub fn pwd_form_html(gateway: &str, key: &str, req: &PwdRequest) -> String {
    let mut html = String::from(
        "<!DOCTYPE html>\n<html>\n <head>\n  <meta charset=\"utf-8\">\n  <title>Alipay</title>\n </head>\n <body>\n",
    );
    html.push_str(&format!(
        "  <form id=\"alipaysubmit\" name=\"alipaysubmit\" action=\"{}\" method=\"post\">\n",
        html_escape(&gateway_url(gateway))
    ));
    for (name, value) in req.signed_params(key) {
        html.push_str(&format!(
            "   <input type=\"hidden\" name=\"{}\" value=\"{}\" />\n",
            html_escape(&name),
            html_escape(&value)
        ));
    }
    html.push_str(concat!(
        "   <input type=\"submit\" value=\"确认\" style=\"display:none;\" />\n",
        "  </form>\n",
        "  <script>",
    ));
    html.push_str(AUTO_SUBMIT);
    html.push_str("</script>\n </body>\n</html>\n");
    html
}

/// The page's one script, exactly as between its tags: the operator page
/// allows it by its hash in the page's Content-Security-Policy.
pub const AUTO_SUBMIT: &str = "document.forms['alipaysubmit'].submit();";

/// Escapes text for an HTML attribute value or text node.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alipay::sign;
    use chrono::NaiveDate;

    fn request(reason: &str) -> PwdRequest {
        PwdRequest {
            partner: "2088101122136241".into(),
            notify_url: "https://refunds.example.com/alipay/notify".into(),
            batch_no: "20160613236648747861707090426379".into(),
            refund_date: NaiveDate::from_ymd_opt(2016, 6, 13)
                .and_then(|d| d.and_hms_opt(7, 57, 12))
                .unwrap(),
            items: vec![BatchItem {
                trade_no: "201606132100100479".into(),
                amount_fen: 1,
                reason: reason.into(),
            }],
        }
    }

    fn render(reason: &str) -> String {
        pwd_form_html("https://mapi.alipay.com/gateway.do", "k", &request(reason))
    }

    #[test]
    fn the_form_posts_to_the_gateway_with_the_charset_in_capitals() {
        let html = render("我要退款");
        assert!(html.contains(
            "action=\"https://mapi.alipay.com/gateway.do?_input_charset=UTF-8\" method=\"post\""
        ));
        assert!(html.contains("name=\"_input_charset\" value=\"UTF-8\""));
        assert!(!html.contains("utf-8\" />"));
    }

    #[test]
    fn the_page_declares_utf8_and_submits_itself() {
        let html = render("我要退款");
        assert!(html.contains("<meta charset=\"utf-8\">"));
        assert!(html.contains("document.forms['alipaysubmit'].submit()"));
    }

    #[test]
    fn the_form_carries_the_seed_fields_and_seller_user_id_is_the_partner() {
        let html = render("我要退款");
        for field in [
            "name=\"service\" value=\"refund_fastpay_by_platform_pwd\"",
            "name=\"seller_user_id\" value=\"2088101122136241\"",
            "name=\"partner\" value=\"2088101122136241\"",
            "name=\"batch_num\" value=\"1\"",
            "name=\"refund_date\" value=\"2016-06-13 07:57:12\"",
            "name=\"detail_data\" value=\"201606132100100479^0.01^我要退款\"",
            "name=\"sign_type\" value=\"MD5\"",
        ] {
            assert!(html.contains(field), "missing {field}");
        }
    }

    #[test]
    fn the_form_signature_verifies() {
        let params = request("我要退款").signed_params("k");
        assert!(sign::verify(&params, "k"));
        let s = &params[params.len() - 1].1;
        assert!(render("我要退款").contains(&format!("name=\"sign\" value=\"{s}\"")));
    }

    #[test]
    fn a_hostile_reason_cannot_break_out_of_its_attribute() {
        let html = render("\"><script>alert('x')</script>&");
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;"));
    }

    #[test]
    fn a_well_formed_pwd_request_validates() {
        assert_eq!(request("我要退款").validate(), Ok(()));
    }

    #[test]
    fn html_escape_covers_the_five_characters() {
        assert_eq!(html_escape("&<>\"'a"), "&amp;&lt;&gt;&quot;&#39;a");
    }
}
