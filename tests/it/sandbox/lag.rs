//! Alipay's backlog over real HTTP (`--lag-rate`): a batch taken but
//! answered `SYSTEM_ERROR`, invisible and answered `SYSTEM_ERROR` again
//! while it lags, then paid once, notified, found, and a duplicate.

use std::time::{Duration, Instant};

use refund_worker::alipay::wire::request::QueryBy;
use refund_worker::sandbox::{Rate, Realism};

use super::support::*;

/// Real time a lagged batch stays in the backlog: long enough for three
/// local requests, short enough for the poll after it.
const LAG: Duration = Duration::from_secs(3);

const NOT_EXIST: &str = "is_success=F&error_code=REFUND_NOT_EXIST";

#[tokio::test]
async fn a_lagged_batch_answers_system_error_and_is_absent_until_its_lag_ends_then_is_paid_once() {
    let mut config = config();
    config.realism = Realism {
        // Every batch lags, the resends too: a resend of a lagged batch
        // must not be taken twice, nor delay it.
        lag_rate: Rate::ALWAYS,
        lag: config.time_scale.unscale(LAG),
        ..Realism::default()
    };
    let sandbox = TestSandbox::start(config).await;
    let receiver = Receiver::start(0).await;
    let request = nopwd(&receiver.notify_url, 1, vec![item("T1", 700)]);
    let by_batch = QueryBy::Batch(request.batch_no.clone());
    let by_trade = QueryBy::Trade("T1".into());

    let sent = Instant::now();
    assert_eq!(
        xml_code(&sandbox.submit(&request, KEY).await),
        "SYSTEM_ERROR"
    );
    assert_eq!(sandbox.query(&by_batch).await, NOT_EXIST);
    assert_eq!(sandbox.query(&by_trade).await, NOT_EXIST);
    assert_eq!(
        xml_code(&sandbox.submit(&request, KEY).await),
        "SYSTEM_ERROR"
    );
    let ledger = sandbox.ledger().await;
    assert!(
        sent.elapsed() < LAG,
        "the requests above took longer than the lag; they proved nothing"
    );
    // Taken (its number held) but not paid, nothing notified.
    assert_eq!(ledger["batches"].as_array().unwrap().len(), 1);
    assert_eq!(ledger["batches"][0]["state"], "lagged");
    assert_eq!(ledger["paid_total_fen"], 0);
    assert!(receiver.on("/notify").is_empty());

    wait_until("the lagged batch in the query", LIMIT, || async {
        sandbox.query(&by_batch).await != NOT_EXIST
    })
    .await;
    assert!(sent.elapsed() >= LAG, "found before its lag ended");
    let found = sandbox.query(&by_batch).await;
    assert_eq!(
        found,
        format!(
            "is_success=T&result_details={}^T1^7.00^SUCCESS",
            request.batch_no
        )
    );
    assert_eq!(sandbox.query(&by_trade).await, found);
    assert_eq!(
        xml_code(&sandbox.submit(&request, KEY).await),
        "DUPLICATE_BATCH_NO"
    );
    let notified = receiver.wait_for("/notify", 1).await;
    assert_eq!(notified[0].get("result_details"), Some("T1^7.00^SUCCESS"));

    let ledger = sandbox.ledger().await;
    assert_eq!(ledger["paid_total"], "7.00");
    assert_eq!(ledger["batches"].as_array().unwrap().len(), 1);
    assert_eq!(ledger["batches"][0]["state"], "processed");
    assert_eq!(ledger["trades"][0]["refunds"].as_array().unwrap().len(), 1);
    assert_eq!(ledger["realism"]["lagged"], 1);
    sandbox.stop().await;
}
