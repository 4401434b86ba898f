//! The bodies the gateway answers with, in the three shapes Alipay uses.
//!
//! Owns the XML of the refund service, the `key=value` text of the query
//! and the HTML pages of the password form, and the realistic variants:
//! shaped query items, a query refused in XML (sometimes declared GBK), and
//! a proxy's non-XML 4xx page. Invariant: each plain answer is one the
//! worker's own parsers (`wire::answer`, `wire::query_answer`) read back to
//! the meaning intended; the unit tests prove it with those parsers. The
//! realistic variants are checked on their raw text only: the worker's
//! parsers are being taught them separately.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::items::{self, ItemShape};
use super::ledger::QueryRow;
use super::refusal::Code;
use crate::alipay::wire::pwd_form::html_escape;

const XML_HEAD: &str = r#"<?xml version="1.0" encoding="utf-8"?>"#;

/// How a service's answers look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `<alipay><is_success>…`: the nopwd refund.
    Xml,
    /// `is_success=…&…`: the query.
    Form,
    /// A page for the operator's browser: the password form.
    Html,
}

/// `T`: accepted.
pub fn xml_accepted() -> String {
    format!("{XML_HEAD}<alipay><is_success>T</is_success></alipay>")
}

/// `P`: processing, outcome unknown to the client.
pub fn xml_processing() -> String {
    format!("{XML_HEAD}<alipay><is_success>P</is_success></alipay>")
}

/// `F` with a code.
pub fn xml_refused(code: Code) -> String {
    format!("{XML_HEAD}<alipay><is_success>F</is_success><error>{code}</error></alipay>")
}

/// The query's `T` answer: `BATCH^TRADE^AMOUNT^CODE#…`, each row written
/// in its shape (missing shapes are plain); `partner` is the merchant a fee
/// tail names.
///
/// Written raw, as Alipay does; only the bytes that would change how a
/// form is read (`% & = +`, spaces, controls) are escaped, and the ledger
/// never holds a `^` or `#` inside a field.
pub fn query_found(rows: &[QueryRow], shapes: &[ItemShape], partner: &str) -> String {
    let details = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let shape = shapes.get(i).copied().unwrap_or_default();
            items::query_item(&r.batch_no, &r.line, shape, partner)
        })
        .collect::<Vec<_>>()
        .join("#");
    format!(
        "is_success=T&result_details={}",
        escape_form_specials(&details)
    )
}

/// The query's `F` answer.
pub fn query_refused(code: Code) -> String {
    format!("is_success=F&error_code={code}")
}

/// The charset an XML answer declares. Its bodies are ASCII, so the bytes
/// are the same in either, as declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XmlCharset {
    /// `GBK`, as Alipay's gateway-level refusals sometimes say.
    Gbk,
    /// `utf-8`.
    Utf8,
}

impl XmlCharset {
    /// Every charset, in the order a draw picks from.
    pub const ALL: [XmlCharset; 2] = [XmlCharset::Gbk, XmlCharset::Utf8];

    /// As written in the declaration and the Content-Type.
    pub fn label(self) -> &'static str {
        match self {
            XmlCharset::Gbk => "GBK",
            XmlCharset::Utf8 => "utf-8",
        }
    }
}

/// A query refused in the mapi XML form instead of `key=value`.
pub fn xml_query_error(charset: XmlCharset) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"{}\"?><alipay><is_success>F</is_success>\
         <error>SYSTEM_ERROR</error></alipay>",
        charset.label()
    )
}

/// [`xml_query_error`] with a Content-Type naming the same charset.
pub fn xml_in(charset: XmlCharset) -> Response {
    let content_type = match charset {
        XmlCharset::Gbk => "text/xml; charset=GBK",
        XmlCharset::Utf8 => "text/xml; charset=utf-8",
    };
    with_type(content_type, xml_query_error(charset))
}

/// What a proxy in front of the gateway answers after forwarding a batch:
/// a status other than 200 and a body that is not the XML answer.
pub fn proxy_refusal(status: u16) -> Response {
    let (status, body) = match status {
        403 => (StatusCode::FORBIDDEN, "403 Forbidden\n"),
        _ => (StatusCode::TOO_MANY_REQUESTS, "429 Too Many Requests\n"),
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Percent-escapes what a form reader would otherwise take as structure.
fn escape_form_specials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '&' | '=' | '+') || c.is_whitespace() || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A refusal in the shape of the service that was asked.
pub fn refused(shape: Shape, code: Code) -> Response {
    match shape {
        Shape::Xml => xml(xml_refused(code)),
        Shape::Form => text(query_refused(code)),
        Shape::Html => html(page(
            "Refused",
            &format!("<p>The batch was refused: <code id=\"error\">{code}</code></p>"),
        )),
    }
}

/// The page shown when a password batch waits for its operator.
pub fn pwd_waiting(batch_no: &str) -> String {
    let b = html_escape(batch_no);
    page(
        "Payment password",
        &format!(
            "<p>Batch <code id=\"batch_no\">{b}</code> waits for the payment password.</p>\n\
             <form method=\"post\" action=\"/sandbox/approve?batch_no={b}\">\
             <input type=\"password\" name=\"password\" placeholder=\"any password\" />\
             <button type=\"submit\">Approve</button></form>"
        ),
    )
}

/// The page shown when a password batch was approved at once.
pub fn pwd_approved(batch_no: &str) -> String {
    page(
        "Approved",
        &format!(
            "<p>Batch <code id=\"batch_no\">{}</code> was approved (auto-approve); \
             the result follows by batch_refund_notify.</p>",
            html_escape(batch_no)
        ),
    )
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>Alipay sandbox: {title}</title></head>\n\
         <body>\n<h1>{title}</h1>\n{body}\n</body>\n</html>\n"
    )
}

/// An XML answer, as the gateway sends it.
pub fn xml(body: String) -> Response {
    with_type("text/xml; charset=utf-8", body)
}

/// A plain-text answer (`true`, `false`, the query's form).
pub fn text(body: String) -> Response {
    with_type("text/plain; charset=utf-8", body)
}

/// An HTML page.
pub fn html(body: String) -> Response {
    with_type("text/html; charset=utf-8", body)
}

fn with_type(content_type: &'static str, body: String) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alipay::wire::answer::{SyncAnswer, parse_sync_answer};
    use crate::alipay::wire::query_answer::{QueryAnswer, parse_query_answer};
    use crate::sandbox::ledger::ResultLine;

    fn row(batch_no: &str, trade_no: &str, amount_fen: i64) -> QueryRow {
        QueryRow {
            batch_no: batch_no.into(),
            line: ResultLine {
                trade_no: trade_no.into(),
                amount_fen,
                code: "SUCCESS".into(),
            },
        }
    }

    #[test]
    fn the_xml_answers_read_back_as_accepted_processing_and_refused() {
        assert_eq!(parse_sync_answer(&xml_accepted()), Ok(SyncAnswer::Accepted));
        assert_eq!(
            parse_sync_answer(&xml_processing()),
            Ok(SyncAnswer::Processing)
        );
        assert_eq!(
            parse_sync_answer(&xml_refused(Code::IllegalSign)),
            Ok(SyncAnswer::Failed {
                code: "ILLEGAL_SIGN".into()
            })
        );
        assert_eq!(
            xml_refused(Code::IllegalSign),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><alipay><is_success>F</is_success>\
             <error>ILLEGAL_SIGN</error></alipay>"
        );
    }

    #[test]
    fn the_query_answer_reads_back_item_by_item() {
        let raw = query_found(
            &[row("20240310001", "T1", 1050), row("20240310002", "T1", 1)],
            &[],
            "",
        );
        assert_eq!(
            raw,
            "is_success=T&result_details=20240310001^T1^10.50^SUCCESS#20240310002^T1^0.01^SUCCESS"
        );
        let QueryAnswer::Found(items) = parse_query_answer(&raw).unwrap().answer else {
            panic!("not found");
        };
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].item.amount, "10.50");
        assert_eq!(items[1].batch_no, "20240310002");
    }

    #[test]
    fn a_trade_number_with_form_characters_survives_the_query_answer() {
        let raw = query_found(&[row("20240310001", "a+b&c=d 100%", 1)], &[], "");
        let QueryAnswer::Found(items) = parse_query_answer(&raw).unwrap().answer else {
            panic!("not found");
        };
        assert_eq!(items[0].item.trade_no, "a+b&c=d 100%");
    }

    #[test]
    fn refund_not_exist_reads_back_as_not_found() {
        let raw = query_refused(Code::RefundNotExist);
        assert_eq!(raw, "is_success=F&error_code=REFUND_NOT_EXIST");
        assert_eq!(
            parse_query_answer(&raw).unwrap().answer,
            QueryAnswer::NotFound
        );
    }

    #[test]
    fn a_query_refused_in_xml_declares_its_charset() {
        assert_eq!(
            xml_query_error(XmlCharset::Gbk),
            "<?xml version=\"1.0\" encoding=\"GBK\"?><alipay><is_success>F</is_success>\
             <error>SYSTEM_ERROR</error></alipay>"
        );
        assert!(
            xml_query_error(XmlCharset::Utf8)
                .starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>")
        );
        let response = xml_in(XmlCharset::Gbk);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/xml; charset=GBK"
        );
    }

    #[test]
    fn a_proxy_refusal_is_4xx_and_not_xml() {
        for (asked, status) in [(429, 429), (403, 403)] {
            let response = proxy_refusal(asked);
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "text/plain; charset=utf-8"
            );
        }
    }

    #[test]
    fn a_shaped_query_answer_keeps_tails_raw_and_plain_rows_plain() {
        use crate::sandbox::items::{Refill, Tails};
        let rows = [
            row("201012300001", "2010123016346858", 1000),
            row("B2", "T2", 2),
        ];
        let shapes = [
            ItemShape {
                tails: Some(Tails::RoyaltyAndSubTrade),
                ..ItemShape::default()
            },
            ItemShape {
                refill: Some(Refill::NONE),
                lower_case: true,
                ..ItemShape::default()
            },
        ];
        assert_eq!(
            query_found(&rows, &shapes, "2088101122136241"),
            "is_success=T&result_details=201012300001^2010123016346858^10.00^SUCCESS\
             |sandbox-royalty-out@alipay.com^2088000000000011^sandbox-royalty-in@alipay.com^2088000000000012^0.01^SUCCESS\
             $$10.00^10.00^SUCCESS#B2^T2^0.02^success^false^null"
        );
    }

    #[test]
    fn a_batch_number_on_a_page_is_escaped() {
        assert!(pwd_waiting("<b>").contains("&lt;b&gt;"));
        assert!(!pwd_approved("<b>").contains("<b>"));
    }
}
