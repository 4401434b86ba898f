//! Accepted batches: notifications, resends, the ledger, queries, the password form.

use refund_worker::alipay::client::NotifyVerify;
use refund_worker::alipay::wire::form;
use refund_worker::alipay::wire::notify::{BatchRefundNotify, DbackNotify, DbackStatus};
use refund_worker::alipay::wire::pwd_form::PwdRequest;
use refund_worker::alipay::wire::query_answer::{QueryAnswer, parse_query_answer};
use refund_worker::alipay::wire::request::{QueryBy, notify_verify_url};
use serde_json::Value;

use super::support::*;

fn batches(ledger: &Value) -> &Vec<Value> {
    ledger["batches"].as_array().unwrap()
}

#[tokio::test]
async fn a_valid_batch_is_accepted_notified_resent_until_success_and_paid_once() {
    let sandbox = TestSandbox::start(config()).await;
    let receiver = Receiver::start(2).await;
    let request = nopwd(
        &receiver.notify_url,
        1,
        vec![item("T1", 1050), item("T2", 1)],
    );
    assert_eq!(xml_code(&sandbox.submit(&request, KEY).await), "T");

    let sends = receiver.wait_for("/notify", 3).await;
    for form in &sends {
        assert!(form.verify_signature(KEY));
        assert_eq!(
            form.params, sends[0].params,
            "a resend repeats the first send"
        );
    }
    let notify = BatchRefundNotify::from_form(&sends[0]).unwrap();
    assert_eq!(notify.batch_no, request.batch_no);
    assert_eq!(notify.success_num, Some(2));
    assert_eq!(notify.result_details[0].amount_fen, 1050);
    assert_eq!(notify.result_details[1].code, "SUCCESS");

    wait_until("the notification is acknowledged", LIMIT, || async {
        sandbox.ledger().await["notifications"][0]["acknowledged"] == true
    })
    .await;
    let ledger = sandbox.ledger().await;
    assert_eq!(ledger["notifications"][0]["attempts"], 3);
    assert_eq!(ledger["paid_total"], "10.51");
    assert_eq!(ledger["trades"][0]["trade_no"], "T1");
    assert_eq!(ledger["trades"][0]["paid"], "1000.00");
    assert_eq!(ledger["trades"][0]["refunds"][0]["amount"], "10.50");
    assert_eq!(batches(&ledger)[0]["state"], "processed");
    // Acknowledged, so no fourth send comes; the first resend would be due
    // 120 ms after the first send, the second 600 ms after that.
    assert_eq!(receiver.on("/notify").len(), 3);
    sandbox.stop().await;
}

#[tokio::test]
async fn a_resent_batch_is_answered_duplicate_batch_no_and_changes_nothing() {
    let sandbox = TestSandbox::start(config()).await;
    let receiver = Receiver::start(0).await;
    let request = nopwd(&receiver.notify_url, 1, vec![item("T1", 500)]);
    assert_eq!(xml_code(&sandbox.submit(&request, KEY).await), "T");
    receiver.wait_for("/notify", 1).await;
    let before = sandbox.ledger().await;
    assert_eq!(
        xml_code(&sandbox.submit(&request, KEY).await),
        "DUPLICATE_BATCH_NO"
    );
    let after = sandbox.ledger().await;
    assert_eq!(before["trades"], after["trades"]);
    assert_eq!(batches(&after).len(), 1);
    assert_eq!(after["paid_total"], "5.00");
    // The same number from another partner is another batch.
    let mut other = request.clone();
    other.partner = OTHER_PARTNER.into();
    other.items = vec![item("T9", 1)];
    assert_eq!(xml_code(&sandbox.submit(&other, OTHER_KEY).await), "T");
    sandbox.stop().await;
}

#[tokio::test]
async fn a_refund_above_the_paid_amount_fails_with_refund_trade_fee_error() {
    let mut config = config();
    config.trade_paid_fen = 1000;
    let sandbox = TestSandbox::start(config).await;
    let receiver = Receiver::start(0).await;
    let first = nopwd(
        &receiver.notify_url,
        1,
        vec![item("T1", 600), item("T2", 1001)],
    );
    assert_eq!(xml_code(&sandbox.submit(&first, KEY).await), "T");
    let second = nopwd(&receiver.notify_url, 2, vec![item("T1", 401)]);
    assert_eq!(xml_code(&sandbox.submit(&second, KEY).await), "T");
    let sends = receiver.wait_for("/notify", 2).await;
    let codes: Vec<Vec<String>> = sends
        .iter()
        .map(|f| {
            let n = BatchRefundNotify::from_form(f).unwrap();
            n.result_details.into_iter().map(|i| i.code).collect()
        })
        .collect();
    assert!(codes.contains(&vec!["SUCCESS".into(), "REFUND_TRADE_FEE_ERROR".into()]));
    assert!(codes.contains(&vec!["REFUND_TRADE_FEE_ERROR".into()]));
    assert_eq!(sandbox.ledger().await["paid_total"], "6.00");
    sandbox.stop().await;
}

#[tokio::test]
async fn the_hundredth_refund_of_a_trade_is_neither_paid_nor_reported() {
    let sandbox = TestSandbox::start(config()).await;
    let receiver = Receiver::start(0).await;
    for serial in 1..=99 {
        let request = nopwd(&receiver.notify_url, serial, vec![item("T1", 1)]);
        assert_eq!(xml_code(&sandbox.submit(&request, KEY).await), "T");
    }
    let hundredth = nopwd(
        &receiver.notify_url,
        100,
        vec![item("T1", 1), item("T2", 1)],
    );
    assert_eq!(xml_code(&sandbox.submit(&hundredth, KEY).await), "T");
    let sends = receiver.wait_for("/notify", 100).await;
    let last = sends
        .iter()
        .map(|f| BatchRefundNotify::from_form(f).unwrap())
        .find(|n| n.batch_no == hundredth.batch_no)
        .unwrap();
    assert_eq!(last.result_details.len(), 1);
    assert_eq!(last.result_details[0].trade_no, "T2");
    let ledger = sandbox.ledger().await;
    assert_eq!(ledger["trades"][0]["refunded"], "0.99");
    assert_eq!(ledger["paid_total"], "1.00");
    assert_eq!(batches(&ledger)[99]["items"][0]["outcome"], "ignored");
    // A batch of only the 100th refund is not notified at all.
    let alone = nopwd(&receiver.notify_url, 101, vec![item("T1", 1)]);
    assert_eq!(xml_code(&sandbox.submit(&alone, KEY).await), "T");
    let ledger = sandbox.ledger().await;
    assert_eq!(ledger["notifications"].as_array().unwrap().len(), 100);
    sandbox.stop().await;
}

#[tokio::test]
async fn notify_verify_is_true_only_for_notifications_the_sandbox_sent_to_that_partner() {
    let sandbox = TestSandbox::start(config()).await;
    let receiver = Receiver::start(0).await;
    let request = nopwd(&receiver.notify_url, 1, vec![item("T1", 1)]);
    sandbox.submit(&request, KEY).await;
    let sends = receiver.wait_for("/notify", 1).await;
    let notify_id = sends[0].notify_id().unwrap().to_owned();
    let verify = |partner: &'static str, id: String| {
        let url = notify_verify_url(&sandbox.gateway(), partner, &id);
        let client = sandbox.client.clone();
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    };
    assert_eq!(verify(PARTNER, notify_id.clone()).await, "true");
    assert_eq!(verify(OTHER_PARTNER, notify_id.clone()).await, "false");
    assert_eq!(verify(PARTNER, format!("{notify_id}x")).await, "false");
    // POSTed as a form, it answers the same.
    let body = form::encode(&[
        ("service".into(), "notify_verify".into()),
        ("partner".into(), PARTNER.into()),
        ("notify_id".into(), notify_id),
    ]);
    let posted = sandbox
        .client
        .post(sandbox.gateway())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.text().await.unwrap(), "true");
    sandbox.stop().await;
}

#[tokio::test]
async fn a_query_finds_an_accepted_batch_and_answers_refund_not_exist_otherwise() {
    let sandbox = TestSandbox::start(config()).await;
    let receiver = Receiver::start(0).await;
    let request = nopwd(
        &receiver.notify_url,
        1,
        vec![item("T1", 1050), item("T2", 1)],
    );
    sandbox.submit(&request, KEY).await;
    let raw = sandbox
        .query(&QueryBy::Batch(request.batch_no.clone()))
        .await;
    let QueryAnswer::Found(items) = parse_query_answer(&raw).unwrap().answer else {
        panic!("not found: {raw}");
    };
    assert_eq!(items.len(), 2);
    assert_eq!(
        (
            items[0].batch_no.as_str(),
            items[0].item.amount.as_str(),
            items[0].item.code.as_str()
        ),
        (request.batch_no.as_str(), "10.50", "SUCCESS")
    );
    let raw = sandbox.query(&QueryBy::Trade("T2".into())).await;
    assert!(
        matches!(parse_query_answer(&raw).unwrap().answer, QueryAnswer::Found(i) if i.len() == 1)
    );
    let raw = sandbox.query(&QueryBy::Batch(batch_no(2))).await;
    assert_eq!(raw, "is_success=F&error_code=REFUND_NOT_EXIST");
    assert_eq!(
        parse_query_answer(&raw).unwrap().answer,
        QueryAnswer::NotFound
    );
    sandbox.stop().await;
}

fn pwd(notify_url: &str) -> Vec<(String, String)> {
    let n = nopwd(notify_url, 1, vec![item("T1", 300)]);
    PwdRequest {
        partner: n.partner,
        notify_url: n.notify_url,
        batch_no: n.batch_no,
        refund_date: n.refund_date,
        items: n.items,
    }
    .signed_params(KEY)
}

#[tokio::test]
async fn a_password_form_with_auto_approve_is_paid_and_notified() {
    let mut config = config();
    config.auto_approve_pwd = true;
    // The password interface needs no nopwd contract.
    config.no_nopwd_partners.push(PARTNER.into());
    let sandbox = TestSandbox::start(config).await;
    let receiver = Receiver::start(0).await;
    let (status, page) = sandbox.post("UTF-8", &pwd(&receiver.notify_url)).await;
    assert_eq!(status, 200);
    assert!(page.contains("approved"), "{page}");
    let sends = receiver.wait_for("/notify", 1).await;
    assert!(sends[0].verify_signature(KEY));
    let ledger = sandbox.ledger().await;
    assert_eq!(
        batches(&ledger)[0]["service"],
        "refund_fastpay_by_platform_pwd"
    );
    assert_eq!(ledger["paid_total"], "3.00");
    sandbox.stop().await;
}

#[tokio::test]
async fn a_password_form_without_auto_approve_waits_for_its_operator() {
    let sandbox = TestSandbox::start(config()).await;
    let receiver = Receiver::start(0).await;
    let params = pwd(&receiver.notify_url);
    let (_, page) = sandbox.post("UTF-8", &params).await;
    assert!(page.contains("waits for the payment password"), "{page}");
    let ledger = sandbox.ledger().await;
    assert_eq!(batches(&ledger)[0]["state"], "awaiting_password");
    assert_eq!(ledger["paid_total"], "0.00");
    let batch_no = batches(&ledger)[0]["batch_no"].as_str().unwrap().to_owned();
    let approve = |b: String| {
        let url = format!("{}/sandbox/approve?batch_no={b}", sandbox.base);
        let client = sandbox.client.clone();
        async move { client.post(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(approve(batch_no.clone()).await, 200);
    assert_eq!(approve(batch_no).await, 409);
    assert_eq!(approve("20991231001".into()).await, 404);
    receiver.wait_for("/notify", 1).await;
    assert_eq!(sandbox.ledger().await["paid_total"], "3.00");
    sandbox.stop().await;
}

#[tokio::test]
async fn a_dback_notification_follows_each_successful_refund() {
    let mut config = config();
    config.trade_paid_fen = 100;
    let sandbox = TestSandbox::start(config).await;
    let receiver = Receiver::start(0).await;
    let mut request = nopwd(
        &receiver.notify_url,
        1,
        vec![item("T1", 100), item("T2", 101)],
    );
    request.dback_notify_url = Some(receiver.dback_url.clone());
    sandbox.submit(&request, KEY).await;
    let dbacks = receiver.wait_for("/dback", 1).await;
    assert!(dbacks[0].verify_signature(KEY));
    let dback = DbackNotify::from_form(&dbacks[0]).unwrap();
    assert_eq!(
        (dback.trade_no.as_deref().unwrap_or_default(), dback.status),
        ("T1", DbackStatus::Succeeded)
    );
    assert_eq!(dback.refund_batch_no, request.batch_no);
    wait_until("both notifications acknowledged", LIMIT, || async {
        let ledger = sandbox.ledger().await;
        let n = ledger["notifications"].as_array().unwrap().clone();
        n.len() == 2 && n.iter().all(|n| n["acknowledged"] == true)
    })
    .await;
    // T2 failed (above its paid amount), so it has no 充退.
    assert_eq!(receiver.on("/dback").len(), 1);
    sandbox.stop().await;
}

#[tokio::test]
async fn the_worker_client_verifies_notify_ids_and_queries_batches_at_the_sandbox() {
    use refund_worker::alipay::client::AlipayClient;
    let sandbox = TestSandbox::start(config()).await;
    let receiver = Receiver::start(0).await;
    let request = nopwd(&receiver.notify_url, 7, vec![item("T7", 150)]);
    let client = AlipayClient::new(&sandbox.gateway(), LIMIT).unwrap();
    let submission = client.submit(&request, KEY).await;
    assert_eq!(submission.verdict.code, None, "{:?}", submission.exchange);
    let sends = receiver.wait_for("/notify", 1).await;
    let notify_id = sends[0].notify_id().unwrap().to_owned();
    assert_eq!(
        client.notify_verify(PARTNER, &notify_id).await.unwrap(),
        NotifyVerify::Genuine
    );
    assert_eq!(
        client.notify_verify(PARTNER, "forged-id").await.unwrap(),
        NotifyVerify::NotGenuine
    );
    let found = client
        .query(PARTNER, KEY, &QueryBy::Batch(request.batch_no.clone()))
        .await
        .unwrap();
    assert!(
        matches!(found.answer, QueryAnswer::Found(ref items) if items.len() == 1 && items[0].item.code == "SUCCESS")
    );
    let absent = client
        .query(PARTNER, KEY, &QueryBy::Batch(batch_no(8)))
        .await
        .unwrap();
    assert_eq!(absent.answer, QueryAnswer::NotFound);
    sandbox.stop().await;
}
