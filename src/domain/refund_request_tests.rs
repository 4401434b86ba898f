use super::*;

struct TwoPartners;

impl Partners for TwoPartners {
    fn default_partner(&self) -> Option<&str> {
        Some("2088101122136241")
    }
    fn is_configured(&self, partner: &str) -> bool {
        partner == "2088101122136241" || partner == "2088000000000002"
    }
}

struct NoDefault;

impl Partners for NoDefault {
    fn default_partner(&self) -> Option<&str> {
        None
    }
    fn is_configured(&self, _: &str) -> bool {
        false
    }
}

const TRADE: &str = "2016061321001004790000000001";

fn code_of(body: &str) -> ErrorCode {
    match parse(body.as_bytes(), &TwoPartners) {
        Err(r) => r.code,
        Ok(r) => panic!("{body} was accepted as {r:?}"),
    }
}

fn event(extra: &str) -> String {
    format!(r#"{{"refund_id":"R-1","trade_no":"{TRADE}","amount":"10.50"{extra}}}"#)
}

#[test]
fn a_minimal_event_gets_the_default_partner_and_reason() {
    let r = parse(event("").as_bytes(), &TwoPartners).unwrap();
    assert_eq!(r.refund_id, "R-1");
    assert_eq!(r.amount.fen(), 1050);
    assert_eq!(r.partner, "2088101122136241");
    assert_eq!(r.reason, DEFAULT_REASON);
    assert_eq!(r.metadata, None);
}

#[test]
fn a_json_number_amount_is_read_from_its_text() {
    let body = format!(r#"{{"refund_id":"R-1","trade_no":"{TRADE}","amount":1.10}}"#);
    assert_eq!(
        parse(body.as_bytes(), &TwoPartners).unwrap().amount.fen(),
        110
    );
    let body = format!(r#"{{"refund_id":"R-1","trade_no":"{TRADE}","amount":99999999.99}}"#);
    assert_eq!(
        parse(body.as_bytes(), &TwoPartners).unwrap().amount.fen(),
        9_999_999_999
    );
}

#[test]
fn bad_amounts_are_invalid_amount() {
    for amount in [
        r#""0""#,
        r#""-1""#,
        r#""1.001""#,
        r#""1e2""#,
        "1e2",
        "-1",
        "0",
        r#""100000000.00""#,
        "true",
        "[1]",
        r#""""#,
        "1.001",
    ] {
        let body = format!(r#"{{"refund_id":"R-1","trade_no":"{TRADE}","amount":{amount}}}"#);
        assert_eq!(code_of(&body), ErrorCode::InvalidAmount, "{amount}");
    }
}

#[test]
fn size_and_shape_are_checked_before_fields() {
    let big = format!(r#"{{"refund_id":"R-1","pad":"{}"}}"#, "x".repeat(65 * 1024));
    assert_eq!(code_of(&big), ErrorCode::MessageTooLarge);
    assert_eq!(code_of(""), ErrorCode::InvalidJson);
    assert_eq!(code_of("[1,2]"), ErrorCode::InvalidJson);
    assert_eq!(code_of("{\"refund_id\":"), ErrorCode::InvalidJson);
    assert_eq!(
        parse(&[0xff, 0xfe, b'{', b'}'], &TwoPartners)
            .unwrap_err()
            .code,
        ErrorCode::InvalidJson
    );
}

#[test]
fn a_body_of_exactly_64_kib_is_not_too_large() {
    let body_with = |pad: usize| event(&format!(r#","pad":"{}""#, "x".repeat(pad)));
    let pad = MAX_BODY_BYTES - body_with(0).len();
    let body = body_with(pad);
    assert_eq!(body.len(), MAX_BODY_BYTES);
    assert!(parse(body.as_bytes(), &TwoPartners).is_ok());
    assert_eq!(code_of(&body_with(pad + 1)), ErrorCode::MessageTooLarge);
}

#[test]
fn fields_are_checked_in_the_contracts_order() {
    // Both refund_id and trade_no are broken: refund_id is named.
    assert_eq!(
        code_of(r#"{"refund_id":"a b","trade_no":"x","amount":"1"}"#),
        ErrorCode::InvalidRefundId
    );
    assert_eq!(code_of(r#"{"trade_no":"x"}"#), ErrorCode::MissingField);
    assert_eq!(
        code_of(r#"{"refund_id":"R","trade_no":"123"}"#),
        ErrorCode::InvalidTradeNo
    );
    assert_eq!(
        code_of(&format!(r#"{{"refund_id":"R","trade_no":"{TRADE}"}}"#)),
        ErrorCode::MissingField
    );
    assert_eq!(
        code_of(r#"{"refund_id":null,"trade_no":"1"}"#),
        ErrorCode::MissingField
    );
}

#[test]
fn each_field_rule_has_its_code() {
    assert_eq!(
        code_of(&event(r#","refund_id":"x""#)),
        ErrorCode::InvalidJson,
        "duplicate key"
    );
    assert_eq!(
        code_of(r#"{"refund_id":7,"trade_no":"1","amount":"1"}"#),
        ErrorCode::InvalidRefundId
    );
    assert_eq!(
        code_of(&"x".repeat(65).replace('x', "a").pipe_id()),
        ErrorCode::InvalidRefundId
    );
    assert_eq!(
        code_of(&event(r#","reason":"a|b""#)),
        ErrorCode::InvalidReason
    );
    assert_eq!(
        code_of(&event(r#","reason":"a\nb""#)),
        ErrorCode::InvalidReason
    );
    assert_eq!(code_of(&event(r#","reason":5"#)), ErrorCode::InvalidReason);
    assert_eq!(
        code_of(&event(r#","partner":"2088999999999999""#)),
        ErrorCode::UnknownPartner
    );
    assert_eq!(
        code_of(&event(r#","currency":"USD""#)),
        ErrorCode::UnsupportedCurrency
    );
    assert_eq!(
        code_of(&event(r#","trade_amount":"1.001""#)),
        ErrorCode::InvalidAmount
    );
    assert_eq!(
        code_of(&event(r#","metadata":[1]"#)),
        ErrorCode::InvalidMetadata
    );
    let big = format!(r#","metadata":{{"k":"{}"}}"#, "v".repeat(4096));
    assert_eq!(code_of(&event(&big)), ErrorCode::InvalidMetadata);
    assert_eq!(
        code_of(&event(r#","trade_amount":"10.49""#)),
        ErrorCode::ExceedsTradeAmount
    );
}

trait PipeId {
    fn pipe_id(&self) -> String;
}

impl PipeId for String {
    fn pipe_id(&self) -> String {
        format!(r#"{{"refund_id":"{self}","trade_no":"{TRADE}","amount":"1"}}"#)
    }
}

#[test]
fn a_reason_of_256_bytes_in_chinese_passes_and_257_does_not() {
    // 85 three-byte characters plus one byte = 256 bytes.
    let ok = format!("{}a", "退".repeat(85));
    assert_eq!(ok.len(), 256);
    let r = parse(
        event(&format!(r#","reason":"{ok}""#)).as_bytes(),
        &TwoPartners,
    )
    .unwrap();
    assert_eq!(r.reason, ok);
    let too_long = format!("{}ab", "退".repeat(85));
    assert_eq!(
        code_of(&event(&format!(r#","reason":"{too_long}""#))),
        ErrorCode::InvalidReason
    );
}

#[test]
fn optional_fields_are_kept_exactly() {
    let body = event(
        r#","reason":"退款","partner":"2088000000000002","currency":"CNY","trade_amount":20,"metadata":{"order":"O-1","n":1.5},"extra":1"#,
    );
    let r = parse(body.as_bytes(), &TwoPartners).unwrap();
    assert_eq!(r.partner, "2088000000000002");
    assert_eq!(r.trade_amount.map(Amount::fen), Some(2000));
    assert_eq!(r.metadata.as_deref(), Some(r#"{"order":"O-1","n":1.5}"#));
    assert_eq!(r.reason, "退款");
}

#[test]
fn without_a_default_partner_an_event_must_name_one() {
    assert_eq!(
        parse(event("").as_bytes(), &NoDefault).unwrap_err().code,
        ErrorCode::UnknownPartner
    );
}

#[test]
fn same_refund_compares_values_not_spelling() {
    let a = parse(event("").as_bytes(), &TwoPartners).unwrap();
    let b = parse(
        format!(r#"{{"refund_id":"R-1","trade_no":"{TRADE}","amount":10.5}}"#).as_bytes(),
        &TwoPartners,
    )
    .unwrap();
    assert!(a.same_refund_as(&b.partner, &b.trade_no, b.amount.fen()));
    assert!(!a.same_refund_as(&b.partner, &b.trade_no, 1051));
}
