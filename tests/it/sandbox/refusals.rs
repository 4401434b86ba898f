//! Every refusal code, each from a request crafted to earn it.

use chrono::{TimeDelta, Utc};
use refund_worker::alipay::wire::batch_no::{beijing_now, format_refund_date};

use super::support::*;

type Params = Vec<(String, String)>;

/// The unsigned parameters of a valid one-item batch.
fn valid() -> Params {
    nopwd("http://127.0.0.1:9/notify", 1, vec![item("T1", 100)]).params()
}

/// `params` with `name` set to `value` (in place) or removed (`None`).
fn with(mut params: Params, name: &str, value: Option<&str>) -> Params {
    match (params.iter().position(|(k, _)| k == name), value) {
        (Some(i), Some(v)) => params[i].1 = v.into(),
        (Some(i), None) => {
            params.remove(i);
        }
        (None, Some(v)) => params.push((name.into(), v.into())),
        (None, None) => {}
    }
    params
}

async fn answer(sandbox: &TestSandbox, params: Vec<(String, String)>, key: &str) -> String {
    let (status, body) = sandbox.post("UTF-8", &resign(params, key)).await;
    assert_eq!(status, 200, "{body}");
    xml_code(&body)
}

async fn assert_nothing_accepted(sandbox: &TestSandbox) {
    let ledger = sandbox.ledger().await;
    assert_eq!(ledger["batches"].as_array().unwrap().len(), 0, "{ledger}");
    assert_eq!(ledger["paid_total"], "0.00");
}

#[tokio::test]
async fn a_lower_case_charset_in_the_body_with_upper_case_in_the_url_is_refused_with_illegal_sign()
{
    let sandbox = TestSandbox::start(config()).await;
    let params = resign(with(valid(), "_input_charset", Some("utf-8")), KEY);
    let (_, body) = sandbox.post("UTF-8", &params).await;
    assert_eq!(
        body,
        r#"<?xml version="1.0" encoding="utf-8"?><alipay><is_success>F</is_success><error>ILLEGAL_SIGN</error></alipay>"#
    );
    // The worker's own request, with one spelling everywhere, is accepted.
    assert_eq!(answer(&sandbox, valid(), KEY).await, "T");
    sandbox.stop().await;
}

#[tokio::test]
async fn the_signature_checks_answer_their_codes_in_order() {
    let sandbox = TestSandbox::start(config()).await;
    let cases = [
        (
            "unknown service",
            with(valid(), "service", Some("refund_fastpay")),
            KEY,
            "ILLEGAL_SERVICE",
        ),
        (
            "unknown partner",
            with(valid(), "partner", Some("2088000000000001")),
            KEY,
            "ILLEGAL_PARTNER",
        ),
        (
            "signed with another key",
            valid(),
            OTHER_KEY,
            "ILLEGAL_SIGN",
        ),
    ];
    for (what, params, key, code) in cases {
        assert_eq!(answer(&sandbox, params, key).await, code, "{what}");
    }
    let rsa = with(resign(valid(), KEY), "sign_type", Some("RSA"));
    let (_, body) = sandbox.post("UTF-8", &rsa).await;
    assert_eq!(xml_code(&body), "ILLEGAL_SIGN_TYPE");
    assert_nothing_accepted(&sandbox).await;
    sandbox.stop().await;
}

#[tokio::test]
async fn a_partner_without_the_nopwd_contract_is_refused_with_illegal_partner_exterface() {
    let mut config = config();
    config.no_nopwd_partners.push(OTHER_PARTNER.into());
    let sandbox = TestSandbox::start(config).await;
    let params = with(valid(), "partner", Some(OTHER_PARTNER));
    assert_eq!(
        answer(&sandbox, params, OTHER_KEY).await,
        "ILLEGAL_PARTNER_EXTERFACE"
    );
    assert_nothing_accepted(&sandbox).await;
    sandbox.stop().await;
}

#[tokio::test]
async fn every_batch_rule_answers_its_own_code() {
    let sandbox = TestSandbox::start(config()).await;
    let yesterday = beijing_now(Utc::now()) - TimeDelta::days(1);
    let yesterday_batch = format!("{}001", yesterday.format("%Y%m%d"));
    let long_reason = format!("T1^1.00^{}", "退".repeat(86));
    let cases: Vec<(&str, Params, &str)> = vec![
        (
            "no notify_url",
            with(valid(), "notify_url", None),
            "ILLEGAL_ARGUMENT",
        ),
        (
            "short batch_no",
            with(valid(), "batch_no", Some("2024031")),
            "BATCH_NO_FORMAT_ERROR",
        ),
        (
            "batch_no of yesterday",
            with(
                with(valid(), "batch_no", Some(&yesterday_batch)),
                "refund_date",
                Some(&format_refund_date(yesterday)),
            ),
            "REFUND_DATE_ERROR",
        ),
        (
            "refund_date of yesterday",
            with(valid(), "refund_date", Some(&format_refund_date(yesterday))),
            "REFUND_DATE_ERROR",
        ),
        (
            "malformed refund_date",
            with(valid(), "refund_date", Some("now")),
            "REFUND_DATE_ERROR",
        ),
        (
            "1001 items",
            with(valid(), "batch_num", Some("1001")),
            "BATCH_NUM_EXCEED_LIMIT",
        ),
        (
            "no items",
            with(valid(), "batch_num", Some("0")),
            "BATCH_NUM_EXCEED_LIMIT",
        ),
        (
            "batch_num not a number",
            with(valid(), "batch_num", Some("one")),
            "BATCH_NUM_ERROR",
        ),
        (
            "one decimal",
            with(valid(), "detail_data", Some("T1^1.0^r")),
            "DETAIL_DATA_FORMAT_ERROR",
        ),
        (
            "two fields",
            with(valid(), "detail_data", Some("T1^1.00")),
            "DETAIL_DATA_FORMAT_ERROR",
        ),
        (
            "count differs",
            with(valid(), "batch_num", Some("2")),
            "BATCH_NUM_NOT_EQUAL_TOTAL",
        ),
        (
            "a trade twice",
            with(
                with(valid(), "batch_num", Some("2")),
                "detail_data",
                Some("T1^1.00^r#T1^2.00^r"),
            ),
            "DUBL_TRADE_NO_IN_SAME_BATCH",
        ),
        (
            "a 258-byte reason",
            with(valid(), "detail_data", Some(&long_reason)),
            "BATCH_MEMO_LENGTH_EXCEED_LIMIT",
        ),
    ];
    for (what, params, code) in cases {
        assert_eq!(answer(&sandbox, params, KEY).await, code, "{what}");
    }
    assert_nothing_accepted(&sandbox).await;
    sandbox.stop().await;
}

#[tokio::test]
async fn a_body_that_is_not_utf8_is_refused_with_illegal_sign() {
    let sandbox = TestSandbox::start(config()).await;
    let response = sandbox
        .client
        .post(format!("{}?_input_charset=UTF-8", sandbox.gateway()))
        .body("service=refund_fastpay_by_platform_nopwd&detail_data=%FF")
        .send()
        .await
        .unwrap();
    assert_eq!(xml_code(&response.text().await.unwrap()), "ILLEGAL_SIGN");
    sandbox.stop().await;
}
