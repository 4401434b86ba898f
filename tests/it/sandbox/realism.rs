//! The realistic cases over real HTTP: what the client sees, raw, and what
//! the ledger says happened. The worker's own `result_details` and query
//! parsers are not used here: they are being taught these shapes
//! separately, so the tests read the raw strings.

use std::collections::HashSet;
use std::time::Duration;

use refund_worker::alipay::wire::form;
use refund_worker::alipay::wire::notify::NotifyForm;
use refund_worker::alipay::wire::request::QueryBy;
use refund_worker::sandbox::{Rate, Realism, SandboxConfig};

use super::support::*;

const RETRIED: [&str; 3] = [
    "TRADE_PAYMENT_ERROR",
    "TRADE_PROCESS_ERROR",
    "QUERY_PARTICIPANT_ERROR",
];

fn with(realism: Realism) -> SandboxConfig {
    let mut c = config();
    c.realism = realism;
    c
}

fn param<'a>(form: &'a NotifyForm, name: &str) -> &'a str {
    form.get(name)
        .unwrap_or_else(|| panic!("no {name} in {form:?}"))
}

/// The form a query answer is, decoded (the answer is `key=value&…`).
fn query_details(raw: &str) -> String {
    let pairs = form::decode(raw.as_bytes()).unwrap();
    assert!(pairs.contains(&("is_success".into(), "T".into())), "{raw}");
    pairs
        .into_iter()
        .find(|(k, _)| k == "result_details")
        .map(|(_, v)| v)
        .unwrap_or_default()
}

#[tokio::test]
async fn a_batch_accepted_then_answered_4xx_is_paid_once_and_its_resend_is_a_duplicate() {
    let sandbox = TestSandbox::start(with(Realism {
        accepted_then_4xx_rate: Rate::ALWAYS,
        ..Realism::default()
    }))
    .await;
    let receiver = Receiver::start(0).await;
    let request = nopwd(&receiver.notify_url, 1, vec![item("T1", 700)]);
    let response = sandbox
        .client
        .post(url_of(&sandbox))
        .body(request.form_body(KEY))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert!(status == 429 || status == 403, "{status}");
    assert!(
        !body.contains("<alipay>") && !body.starts_with("<?xml"),
        "{body}"
    );
    // Accepted and processed all the same, as if a proxy had forwarded it.
    receiver.wait_for("/notify", 1).await;
    assert_eq!(
        xml_code(&sandbox.submit(&request, KEY).await),
        "DUPLICATE_BATCH_NO"
    );
    let ledger = sandbox.ledger().await;
    assert_eq!(ledger["paid_total"], "7.00");
    assert_eq!(ledger["batches"].as_array().unwrap().len(), 1);
    assert_eq!(ledger["trades"][0]["refunds"].as_array().unwrap().len(), 1);
    assert_eq!(ledger["realism"]["accepted_then_4xx"], 1);
    sandbox.stop().await;
}

#[tokio::test]
async fn a_poison_trade_sinks_every_batch_holding_it_and_the_others_are_paid_alone() {
    let sandbox = TestSandbox::start(with(Realism {
        poison_rate: "0.5".parse().unwrap(),
        ..Realism::default()
    }))
    .await;
    let receiver = Receiver::start(0).await;
    let trades: Vec<String> = (1..=8).map(|n| format!("T{n}")).collect();
    let all = nopwd(
        &receiver.notify_url,
        1,
        trades.iter().map(|t| item(t, 100)).collect(),
    );
    let answer = sandbox.submit(&all, KEY).await;
    assert!(answer.contains("<is_success>F</is_success>"), "{answer}");
    assert_eq!(
        xml_code(&answer),
        "REASON_REFUND_AMOUNT_LESS_THAN_COUPON_FEE"
    );
    // Split until each stands alone, as the worker does.
    let mut poison = Vec::new();
    for (n, t) in trades.iter().enumerate() {
        let alone = nopwd(&receiver.notify_url, 10 + n as u32, vec![item(t, 100)]);
        match xml_code(&sandbox.submit(&alone, KEY).await).as_str() {
            "T" => {}
            "REASON_REFUND_AMOUNT_LESS_THAN_COUPON_FEE" => poison.push(t.clone()),
            other => panic!("{t}: {other}"),
        }
    }
    assert!(
        !poison.is_empty() && poison.len() < trades.len(),
        "seed 20240310 gives a mix: {poison:?}"
    );
    // Poison for good: alone again in a new batch, still refused.
    let again = nopwd(&receiver.notify_url, 30, vec![item(&poison[0], 100)]);
    assert_eq!(
        xml_code(&sandbox.submit(&again, KEY).await),
        "REASON_REFUND_AMOUNT_LESS_THAN_COUPON_FEE"
    );
    let paid = trades.len() - poison.len();
    receiver.wait_for("/notify", paid).await;
    let ledger = sandbox.ledger().await;
    assert_eq!(ledger["paid_total_fen"], paid * 100);
    // Refused batches were never recorded, and nothing notified for them.
    assert_eq!(ledger["batches"].as_array().unwrap().len(), paid);
    assert_eq!(ledger["notifications"].as_array().unwrap().len(), paid);
    assert_eq!(ledger["realism"]["poison_refusals"], poison.len() + 2);
    sandbox.stop().await;
}

#[tokio::test]
async fn an_item_alipay_retries_itself_is_settled_by_a_second_notification_with_a_new_notify_id() {
    let sandbox = TestSandbox::start(with(Realism {
        non_final_rate: Rate::ALWAYS,
        // 3.6 s at the tests' time scale: room to look before it settles.
        non_final_delay: Duration::from_secs(3600),
        ..Realism::default()
    }))
    .await;
    // The first send is answered `fail`: the usual resends follow.
    let receiver = Receiver::start(1).await;
    let request = nopwd(&receiver.notify_url, 1, vec![item("T1", 100)]);
    assert_eq!(xml_code(&sandbox.submit(&request, KEY).await), "T");
    let first = receiver.wait_for("/notify", 1).await.remove(0);
    assert!(first.verify_signature(KEY));
    let details = param(&first, "result_details");
    let code = details.strip_prefix("T1^1.00^").unwrap_or(details);
    assert!(RETRIED.contains(&code), "{details}");
    assert_eq!(param(&first, "success_num"), "0");

    // Until settled: not paid, and the query tells the non-final code.
    let ledger = sandbox.ledger().await;
    assert_eq!(ledger["paid_total"], "0.00");
    assert_eq!(ledger["batches"][0]["items"][0]["outcome"], "unresolved");
    let raw = sandbox
        .query(&QueryBy::Batch(request.batch_no.clone()))
        .await;
    assert_eq!(
        query_details(&raw),
        format!("{}^T1^1.00^{code}", request.batch_no)
    );

    wait_until("the settling notification", LIMIT, || async {
        receiver
            .on("/notify")
            .iter()
            .any(|f| f.get("notify_id") != first.get("notify_id"))
    })
    .await;
    let all = receiver.on("/notify");
    let second = all
        .iter()
        .find(|f| f.get("notify_id") != first.get("notify_id"))
        .unwrap();
    assert!(second.verify_signature(KEY));
    assert_eq!(param(second, "batch_no"), request.batch_no);
    assert_eq!(param(second, "result_details"), "T1^1.00^SUCCESS");
    assert_eq!(param(second, "success_num"), "1");
    let ids: HashSet<&str> = all.iter().filter_map(|f| f.get("notify_id")).collect();
    assert_eq!(ids.len(), 2);

    let ledger = sandbox.ledger().await;
    assert_eq!(ledger["paid_total"], "1.00");
    let item = &ledger["batches"][0]["items"][0];
    assert_eq!(item["outcome"], "done");
    assert_eq!(item["reported_codes"], serde_json::json!([code, "SUCCESS"]));
    assert_eq!(
        ledger["trades"][0]["refunds"][0]["reported_codes"],
        serde_json::json!([code, "SUCCESS"])
    );
    assert_eq!(ledger["realism"]["non_final"], 1);
    let raw = sandbox
        .query(&QueryBy::Batch(request.batch_no.clone()))
        .await;
    assert_eq!(
        query_details(&raw),
        format!("{}^T1^1.00^SUCCESS", request.batch_no)
    );
    // Both were sent until acknowledged: the first twice (a `fail`, then `success`).
    wait_until("both acknowledged", LIMIT, || async {
        let n = sandbox.ledger().await["notifications"].clone();
        n.as_array()
            .is_some_and(|n| n.len() == 2 && n.iter().all(|n| n["acknowledged"] == true))
    })
    .await;
    let n = sandbox.ledger().await["notifications"].clone();
    assert_eq!(
        (n[0]["attempts"].as_u64(), n[1]["attempts"].as_u64()),
        (Some(2), Some(1))
    );
    sandbox.stop().await;
}

#[tokio::test]
async fn a_query_may_be_answered_in_mapi_xml_declared_gbk_or_utf8() {
    let sandbox = TestSandbox::start(with(Realism {
        xml_query_error_rate: Rate::ALWAYS,
        ..Realism::default()
    }))
    .await;
    let receiver = Receiver::start(0).await;
    let request = nopwd(&receiver.notify_url, 1, vec![item("T1", 1)]);
    assert_eq!(xml_code(&sandbox.submit(&request, KEY).await), "T");
    let params = refund_worker::alipay::wire::request::query_params(
        PARTNER,
        &QueryBy::Batch(request.batch_no.clone()),
        KEY,
    );
    let mut declared = HashSet::new();
    for _ in 0..12 {
        let response = sandbox
            .client
            .post(format!("{}?_input_charset=UTF-8", sandbox.gateway()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form::encode(&params))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let body = response.bytes().await.unwrap();
        assert!(body.is_ascii(), "the same bytes in GBK and UTF-8");
        let body = String::from_utf8(body.to_vec()).unwrap();
        let charset = if body.starts_with(r#"<?xml version="1.0" encoding="GBK"?>"#) {
            "GBK"
        } else {
            "utf-8"
        };
        assert_eq!(
            body,
            format!(
                r#"<?xml version="1.0" encoding="{charset}"?><alipay><is_success>F</is_success><error>SYSTEM_ERROR</error></alipay>"#
            )
        );
        assert_eq!(content_type, format!("text/xml; charset={charset}"));
        declared.insert(charset);
    }
    assert_eq!(declared.len(), 2, "seed 20240310 declares both");
    let ledger = sandbox.ledger().await;
    assert_eq!(ledger["realism"]["xml_query_errors"], 12);
    assert_eq!(
        ledger["paid_total"], "0.01",
        "the batch itself is untouched"
    );
    sandbox.stop().await;
}

#[tokio::test]
async fn tails_five_fields_and_lower_case_reach_notifications_and_queries_raw_and_signed() {
    let mut config = with(Realism {
        tails_rate: Rate::ALWAYS,
        five_field_rate: Rate::ALWAYS,
        lower_case_rate: Rate::ALWAYS,
        ..Realism::default()
    });
    config.trade_paid_fen = 1000;
    let sandbox = TestSandbox::start(config).await;
    let receiver = Receiver::start(0).await;
    let request = nopwd(
        &receiver.notify_url,
        1,
        vec![item("T1", 100), item("T2", 1001)],
    );
    assert_eq!(xml_code(&sandbox.submit(&request, KEY).await), "T");
    let n = receiver.wait_for("/notify", 1).await.remove(0);
    assert!(n.verify_signature(KEY));
    assert_eq!(param(&n, "success_num"), "1");
    let details = param(&n, "result_details");
    let (paid, refused) = details.split_once('#').unwrap();
    // The paid item: lower case, 5 fields, then one of Alipay's tails.
    let five = ["^false^null", "^true^S", "^true^P", "^true^F"];
    let rest = paid
        .strip_prefix("T1^1.00^success")
        .unwrap_or_else(|| panic!("{paid}"));
    let tail = five
        .iter()
        .find_map(|f| rest.strip_prefix(f))
        .unwrap_or_else(|| panic!("{paid}"));
    assert!(
        (tail.starts_with('$') || tail.starts_with('|')) && tail.ends_with("^SUCCESS"),
        "{paid}"
    );
    // The refused one: its code as it is, 5 fields, no tails.
    assert_eq!(refused, "T2^10.01^REFUND_TRADE_FEE_ERROR^false^null");

    let raw = sandbox
        .query(&QueryBy::Batch(request.batch_no.clone()))
        .await;
    let items = query_details(&raw);
    let (paid, refused) = items.split_once('#').unwrap();
    assert!(
        paid.starts_with(&format!("{}^T1^1.00^success^", request.batch_no)),
        "{paid}"
    );
    assert_eq!(
        refused,
        format!(
            "{}^T2^10.01^REFUND_TRADE_FEE_ERROR^false^null",
            request.batch_no
        )
    );
    let ledger = sandbox.ledger().await;
    // The ledger keeps the canonical code whatever the text said.
    assert_eq!(ledger["batches"][0]["items"][0]["code"], "SUCCESS");
    let r = &ledger["realism"];
    assert_eq!(
        (r["tails"].as_u64(), r["lower_case"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(r["five_field"], 4);
    sandbox.stop().await;
}

#[tokio::test]
async fn an_empty_notification_leaves_the_results_to_the_query() {
    let sandbox = TestSandbox::start(with(Realism {
        empty_details_rate: Rate::ALWAYS,
        ..Realism::default()
    }))
    .await;
    let receiver = Receiver::start(0).await;
    let request = nopwd(&receiver.notify_url, 1, vec![item("T1", 250)]);
    assert_eq!(xml_code(&sandbox.submit(&request, KEY).await), "T");
    let n = receiver.wait_for("/notify", 1).await.remove(0);
    assert!(n.verify_signature(KEY));
    assert_eq!(param(&n, "result_details"), "");
    assert_eq!(param(&n, "success_num"), "0");
    let raw = sandbox
        .query(&QueryBy::Batch(request.batch_no.clone()))
        .await;
    assert_eq!(
        raw,
        format!(
            "is_success=T&result_details={}^T1^2.50^SUCCESS",
            request.batch_no
        )
    );
    let ledger = sandbox.ledger().await;
    assert_eq!(ledger["paid_total"], "2.50");
    assert_eq!(ledger["realism"]["empty_details"], 1);
    sandbox.stop().await;
}

#[tokio::test]
async fn a_trade_short_of_balance_fails_once_and_is_paid_in_a_new_batch() {
    let sandbox = TestSandbox::start(with(Realism {
        balance_not_enough_rate: Rate::ALWAYS,
        ..Realism::default()
    }))
    .await;
    let receiver = Receiver::start(0).await;
    let first = nopwd(&receiver.notify_url, 1, vec![item("T1", 100)]);
    assert_eq!(xml_code(&sandbox.submit(&first, KEY).await), "T");
    let n = receiver.wait_for("/notify", 1).await.remove(0);
    assert_eq!(
        param(&n, "result_details"),
        "T1^1.00^TXN_RESULT_ACCOUNT_BALANCE_NOT_ENOUGH"
    );
    assert_eq!(sandbox.ledger().await["paid_total"], "0.00");
    let later = nopwd(&receiver.notify_url, 2, vec![item("T1", 100)]);
    assert_eq!(xml_code(&sandbox.submit(&later, KEY).await), "T");
    let all = receiver.wait_for("/notify", 2).await;
    let settled = all
        .iter()
        .find(|f| f.get("batch_no") == Some(later.batch_no.as_str()))
        .unwrap();
    assert_eq!(param(settled, "result_details"), "T1^1.00^SUCCESS");
    let ledger = sandbox.ledger().await;
    assert_eq!(ledger["paid_total"], "1.00");
    assert_eq!(ledger["realism"]["balance_not_enough"], 1);
    sandbox.stop().await;
}
