//! Injected faults: what the client sees and what the ledger says happened.

use std::time::Duration;

use refund_worker::alipay::wire::notify::BatchRefundNotify;
use refund_worker::sandbox::{Rate, SandboxConfig};

use super::support::*;

#[tokio::test]
async fn an_injected_503_accepts_nothing() {
    let mut config = config();
    config.faults.http_5xx_rate = Rate::ALWAYS;
    let sandbox = TestSandbox::start(config).await;
    let request = nopwd("http://127.0.0.1:9/notify", 1, vec![item("T1", 1)]);
    let response = sandbox
        .client
        .post(url_of(&sandbox))
        .body(request.form_body(KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let ledger = sandbox.ledger().await;
    assert_eq!(ledger["batches"].as_array().unwrap().len(), 0);
    sandbox.stop().await;
}

#[tokio::test]
async fn an_injected_system_error_accepts_nothing() {
    let mut config = config();
    config.faults.system_error_rate = Rate::ALWAYS;
    let sandbox = TestSandbox::start(config).await;
    let request = nopwd("http://127.0.0.1:9/notify", 1, vec![item("T1", 1)]);
    assert_eq!(
        xml_code(&sandbox.submit(&request, KEY).await),
        "SYSTEM_ERROR"
    );
    assert_eq!(
        sandbox.ledger().await["batches"].as_array().unwrap().len(),
        0
    );
    sandbox.stop().await;
}

#[tokio::test]
async fn a_held_answer_times_out_the_client_but_the_batch_is_accepted_and_paid() {
    let mut config = config();
    config.faults.timeout_after_accept_rate = Rate::ALWAYS;
    config.faults.timeout_hold = Duration::from_secs(30);
    let sandbox = TestSandbox::start(config).await;
    let receiver = Receiver::start(0).await;
    let request = nopwd(&receiver.notify_url, 1, vec![item("T1", 700)]);
    let sent = sandbox
        .client
        .post(url_of(&sandbox))
        .body(request.form_body(KEY))
        .timeout(Duration::from_millis(1500))
        .send()
        .await;
    assert!(sent.is_err_and(|e| e.is_timeout()));
    // Outcome unknown to the client; the sandbox paid and notifies anyway.
    receiver.wait_for("/notify", 1).await;
    assert_eq!(sandbox.ledger().await["paid_total"], "7.00");
    // Stopping ends the held answer at once rather than after 30 s.
    tokio::time::timeout(Duration::from_secs(5), sandbox.stop())
        .await
        .expect("stopping does not wait for the hold");
}

#[tokio::test]
async fn processing_is_answered_p_but_the_batch_is_accepted() {
    let mut config = config();
    config.faults.processing_rate = Rate::ALWAYS;
    let sandbox = TestSandbox::start(config).await;
    let receiver = Receiver::start(0).await;
    let request = nopwd(&receiver.notify_url, 1, vec![item("T1", 1)]);
    assert_eq!(xml_code(&sandbox.submit(&request, KEY).await), "P");
    receiver.wait_for("/notify", 1).await;
    // The resend a worker makes after P proves the batch was taken.
    assert_eq!(
        xml_code(&sandbox.submit(&request, KEY).await),
        "DUPLICATE_BATCH_NO"
    );
    sandbox.stop().await;
}

/// A day of Alipay's schedule in under a second.
fn hurried() -> SandboxConfig {
    let mut config = config();
    config.time_scale = "0.00001".parse().unwrap();
    config
}

#[tokio::test]
async fn a_notification_never_acknowledged_is_sent_eight_times_then_given_up() {
    let sandbox = TestSandbox::start(hurried()).await;
    let receiver = Receiver::start(usize::MAX).await;
    let request = nopwd(&receiver.notify_url, 1, vec![item("T1", 1)]);
    sandbox.submit(&request, KEY).await;
    wait_until("eight sends", LIMIT, || async {
        sandbox.ledger().await["notifications"][0]["attempts"] == 8
    })
    .await;
    let sends = receiver.wait_for("/notify", 8).await;
    assert!(sends.iter().all(|s| s.params == sends[0].params));
    let n = &sandbox.ledger().await["notifications"][0];
    assert_eq!(
        (n["delivered"].as_u64(), n["acknowledged"].as_bool()),
        (Some(8), Some(false))
    );
    sandbox.stop().await;
}

#[tokio::test]
async fn a_notification_lost_on_every_send_is_tried_eight_times_and_never_arrives() {
    let mut config = hurried();
    config.faults.notify_drop_rate = Rate::ALWAYS;
    let sandbox = TestSandbox::start(config).await;
    let receiver = Receiver::start(0).await;
    let request = nopwd(&receiver.notify_url, 1, vec![item("T1", 1)]);
    sandbox.submit(&request, KEY).await;
    wait_until("eight tries", LIMIT, || async {
        sandbox.ledger().await["notifications"][0]["attempts"] == 8
    })
    .await;
    let n = &sandbox.ledger().await["notifications"][0];
    assert_eq!(
        (n["delivered"].as_u64(), n["acknowledged"].as_bool()),
        (Some(0), Some(false))
    );
    assert!(receiver.received().is_empty());
    // The refund was paid all the same: only the news of it was lost.
    assert_eq!(sandbox.ledger().await["paid_total"], "0.01");
    sandbox.stop().await;
}

#[tokio::test]
async fn injected_item_failures_are_reported_and_not_paid() {
    let mut config = config();
    config.faults.item_failure_rate = Rate::ALWAYS;
    config.faults.item_failure_codes = vec!["BATCH_REFUND_LOCK_ERROR".into()];
    let sandbox = TestSandbox::start(config).await;
    let receiver = Receiver::start(0).await;
    let request = nopwd(&receiver.notify_url, 1, vec![item("T1", 1), item("T2", 2)]);
    assert_eq!(xml_code(&sandbox.submit(&request, KEY).await), "T");
    let sends = receiver.wait_for("/notify", 1).await;
    let n = BatchRefundNotify::from_form(&sends[0]).unwrap();
    assert_eq!(n.success_num, Some(0));
    assert!(
        n.result_details
            .iter()
            .all(|i| i.code == "BATCH_REFUND_LOCK_ERROR")
    );
    assert_eq!(sandbox.ledger().await["paid_total"], "0.00");
    sandbox.stop().await;
}

#[tokio::test]
async fn a_duplicated_notification_arrives_twice_with_the_same_notify_id() {
    let mut config = config();
    config.faults.notify_duplicate_rate = Rate::ALWAYS;
    let sandbox = TestSandbox::start(config).await;
    let receiver = Receiver::start(0).await;
    let request = nopwd(&receiver.notify_url, 1, vec![item("T1", 1)]);
    sandbox.submit(&request, KEY).await;
    let sends = receiver.wait_for("/notify", 2).await;
    assert_eq!(sends[0].notify_id(), sends[1].notify_id());
    assert_eq!(sandbox.ledger().await["paid_total"], "0.01");
    sandbox.stop().await;
}
