use super::*;
use crate::alipay::wire::request::{pair, signed};
use crate::sandbox::config::PartnerKey;

const P: &str = "2088101122136241";
const KEY: &str = "k";

fn config() -> SandboxConfig {
    SandboxConfig::new(
        vec![PartnerKey {
            id: P.into(),
            key: KEY.into(),
        }],
        1,
    )
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, 10).unwrap()
}

/// A valid nopwd request with some parameters replaced (or dropped when the
/// value is `None`), signed after the change.
fn request(changes: &[(&str, Option<&str>)]) -> Vec<(String, String)> {
    let mut params = vec![
        pair("service", NOPWD_SERVICE),
        pair("partner", P),
        pair("_input_charset", "UTF-8"),
        pair("notify_url", "http://127.0.0.1:1/notify"),
        pair("batch_no", "20240310001"),
        pair("refund_date", "2024-03-10 12:00:00"),
        pair("batch_num", "2"),
        pair("detail_data", "T1^1.00^r#T2^2.00^r"),
    ];
    for (name, value) in changes {
        params.retain(|(k, _)| k != name);
        if let Some(v) = value {
            params.push(pair(name, v));
        }
    }
    signed(params, KEY)
}

fn code_of(params: &[(String, String)]) -> Result<BatchRequest, Code> {
    let config = config();
    let s = check_signed(params, Some("UTF-8"), &config).map_err(|r| r.code)?;
    check_batch(params, &s, &config, today()).map_err(|r| r.code)
}

fn code(changes: &[(&str, Option<&str>)]) -> Code {
    match code_of(&request(changes)) {
        Ok(_) => panic!("accepted {changes:?}"),
        Err(code) => code,
    }
}

#[test]
fn a_valid_request_passes_every_check() {
    let b = code_of(&request(&[])).unwrap();
    assert_eq!(b.batch_no, "20240310001");
    assert_eq!(b.items.len(), 2);
    assert_eq!(b.items[1].amount_fen, 200);
}

#[test]
fn a_lower_case_charset_in_the_body_with_upper_case_in_the_url_is_illegal_sign() {
    let params = request(&[("_input_charset", Some("utf-8"))]);
    let refusal = check_signed(&params, Some("UTF-8"), &config()).unwrap_err();
    assert_eq!(refusal.code, Code::IllegalSign);
    // The same lower case in both places is one spelling, which is fine.
    assert!(check_signed(&params, Some("utf-8"), &config()).is_ok());
}

#[test]
fn a_charset_missing_from_the_url_is_illegal_sign() {
    let refusal = check_signed(&request(&[]), None, &config()).unwrap_err();
    assert_eq!(refusal.code, Code::IllegalSign);
}

#[test]
fn a_charset_other_than_utf8_is_illegal_charset() {
    let params = request(&[("_input_charset", Some("GBK"))]);
    let refusal = check_signed(&params, Some("GBK"), &config()).unwrap_err();
    assert_eq!(refusal.code, Code::IllegalCharset);
}

#[test]
fn the_signed_checks_answer_in_alipays_order() {
    assert_eq!(code(&[("service", Some("refund_x"))]), Code::IllegalService);
    assert_eq!(code(&[("service", None)]), Code::IllegalService);
    assert_eq!(
        code(&[("partner", Some("2088000000000000"))]),
        Code::IllegalPartner
    );
    let mut params = request(&[]);
    for (k, v) in params.iter_mut() {
        if k == "sign_type" {
            *v = "RSA".into();
        }
    }
    assert_eq!(code_of(&params).unwrap_err(), Code::IllegalSignType);
    let mut params = request(&[]);
    params.retain(|(k, _)| k != "sign_type");
    assert_eq!(code_of(&params).unwrap_err(), Code::IllegalSignType);
    let mut params = request(&[]);
    params[4].1 = "20240310002".into();
    assert_eq!(code_of(&params).unwrap_err(), Code::IllegalSign);
}

#[test]
fn a_bad_signature_logs_the_string_the_sandbox_expected_but_not_the_key() {
    let mut params = request(&[]);
    params[4].1 = "20240310002".into();
    let refusal = check_signed(&params, Some("UTF-8"), &config()).unwrap_err();
    assert!(
        refusal
            .detail
            .contains("_input_charset=UTF-8&batch_no=20240310002")
    );
}

#[test]
fn a_parameter_signed_twice_is_illegal_argument() {
    let mut params = request(&[]);
    params.truncate(params.len() - 2);
    params.push(pair("batch_no", "20240310002"));
    let params = signed(params, KEY);
    assert_eq!(code_of(&params).unwrap_err(), Code::IllegalArgument);
}

#[test]
fn a_partner_without_the_nopwd_contract_is_illegal_partner_exterface() {
    let mut config = config();
    config.no_nopwd_partners.push(P.into());
    let params = request(&[]);
    let s = check_signed(&params, Some("UTF-8"), &config).unwrap();
    let refusal = check_batch(&params, &s, &config, today()).unwrap_err();
    assert_eq!(refusal.code, Code::IllegalPartnerExterface);
}

#[test]
fn a_missing_or_bad_notify_url_is_illegal_argument() {
    assert_eq!(code(&[("notify_url", None)]), Code::IllegalArgument);
    assert_eq!(code(&[("notify_url", Some(""))]), Code::IllegalArgument);
    assert_eq!(
        code(&[("notify_url", Some("http://x/n?a=1"))]),
        Code::IllegalArgument
    );
    assert_eq!(
        code(&[("dback_notify_url", Some("nowhere"))]),
        Code::IllegalArgument
    );
    assert_eq!(
        code(&[("use_freeze_amount", Some("X"))]),
        Code::IllegalArgument
    );
}

#[test]
fn a_malformed_batch_no_is_batch_no_format_error() {
    for bad in [
        "2024031001",
        "20240310000",
        "2024031x001",
        "20240310-01",
        "",
    ] {
        assert_eq!(
            code(&[("batch_no", Some(bad))]),
            Code::BatchNoFormatError,
            "{bad}"
        );
    }
}

#[test]
fn dates_that_disagree_are_refund_date_error() {
    assert_eq!(
        code(&[
            ("batch_no", Some("20240309001")),
            ("refund_date", Some("2024-03-09 12:00:00"))
        ]),
        Code::RefundDateError
    );
    assert_eq!(
        code(&[("refund_date", Some("2024-03-11 00:00:00"))]),
        Code::RefundDateError
    );
    assert_eq!(
        code(&[("refund_date", Some("2024-03-10"))]),
        Code::RefundDateError
    );
    assert_eq!(code(&[("refund_date", None)]), Code::RefundDateError);
}

#[test]
fn batch_num_outside_one_to_a_thousand_or_not_a_number_is_refused() {
    assert_eq!(code(&[("batch_num", Some("0"))]), Code::BatchNumExceedLimit);
    assert_eq!(
        code(&[("batch_num", Some("1001"))]),
        Code::BatchNumExceedLimit
    );
    assert_eq!(
        code(&[("batch_num", Some("99999999999999999999999"))]),
        Code::BatchNumExceedLimit
    );
    assert_eq!(code(&[("batch_num", Some("two"))]), Code::BatchNumError);
    assert_eq!(code(&[("batch_num", Some("-1"))]), Code::BatchNumError);
    assert_eq!(code(&[("batch_num", None)]), Code::BatchNumError);
}

#[test]
fn unreadable_detail_data_is_detail_data_format_error() {
    for bad in [
        "T1^1.00^r#T2^2.0^r",
        "T1^1.00#T2^2.00^r",
        "T1^1.00^r#",
        "",
        "T1^0.00^r#T2^1.00^r",
        "T1^1.00^a|b#T2^1.00^r",
    ] {
        assert_eq!(
            code(&[("detail_data", Some(bad))]),
            Code::DetailDataFormatError,
            "{bad:?}"
        );
    }
}

#[test]
fn a_count_that_differs_from_the_items_is_batch_num_not_equal_total() {
    assert_eq!(
        code(&[("batch_num", Some("3"))]),
        Code::BatchNumNotEqualTotal
    );
}

#[test]
fn a_trade_twice_is_dubl_trade_no_even_beside_a_long_reason() {
    let long = "r".repeat(257);
    let detail = format!("T1^1.00^{long}#T1^2.00^r");
    assert_eq!(
        code(&[("detail_data", Some(&detail))]),
        Code::DublTradeNoInSameBatch
    );
    assert_eq!(
        code(&[("detail_data", Some("T1^1.00^r#T1^2.00^r"))]),
        Code::DublTradeNoInSameBatch
    );
}

#[test]
fn a_reason_above_256_bytes_is_batch_memo_length_exceed_limit() {
    let detail = format!("T1^1.00^{}#T2^2.00^r", "退".repeat(86));
    assert_eq!(
        code(&[("detail_data", Some(&detail))]),
        Code::BatchMemoLengthExceedLimit
    );
    let detail = format!("T1^1.00^{}#T2^2.00^r", "r".repeat(256));
    assert!(code_of(&request(&[("detail_data", Some(&detail))])).is_ok());
}

#[test]
fn format_comes_before_count_and_count_before_duplicates() {
    assert_eq!(
        code(&[
            ("batch_num", Some("3")),
            ("detail_data", Some("T1^1^r#T1^1.00^r"))
        ]),
        Code::DetailDataFormatError
    );
    assert_eq!(
        code(&[
            ("batch_num", Some("3")),
            ("detail_data", Some("T1^1.00^r#T1^1.00^r"))
        ]),
        Code::BatchNumNotEqualTotal
    );
    let detail = format!("T1^0.00^{}#T2^1.00^r", "r".repeat(300));
    assert_eq!(
        code(&[("detail_data", Some(&detail))]),
        Code::DetailDataFormatError
    );
}

#[test]
fn the_pwd_form_needs_seller_user_id_equal_to_the_partner_and_no_nopwd_contract() {
    let mut config = config();
    config.no_nopwd_partners.push(P.into());
    let check = |seller: Option<&str>| {
        let params = request(&[("service", Some(PWD_SERVICE)), ("seller_user_id", seller)]);
        let s = check_signed(&params, Some("UTF-8"), &config).unwrap();
        check_batch(&params, &s, &config, today()).map_err(|r| r.code)
    };
    assert!(check(Some(P)).is_ok());
    assert_eq!(check(None).unwrap_err(), Code::IllegalArgument);
    assert_eq!(
        check(Some("2088000000000000")).unwrap_err(),
        Code::IllegalArgument
    );
}

#[test]
fn a_query_needs_a_batch_or_a_trade() {
    assert!(check_query(&[pair("batch_no", "b")]).is_ok());
    assert!(check_query(&[pair("trade_no", "t")]).is_ok());
    assert_eq!(
        check_query(&[pair("batch_no", "")]).map_err(|r| r.code),
        Err(Code::IllegalArgument)
    );
}
