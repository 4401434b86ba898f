//! The loop closes: stored → batched → accepted by the sandbox → its signed
//! notification received, verified and applied → result events in the outbox.

use std::time::Duration;

use chrono::Utc;
use refund_worker::alipay::client::AlipayClient;
use refund_worker::callback::{self, CallbackState};
use refund_worker::submit::Step;
use refund_worker::submit::decide::Next;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::gateway::*;
use crate::helpers::*;

async fn serve(app: axum::Router, stop: &CancellationToken) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    });
    format!("http://{addr}")
}

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

#[tokio::test]
async fn a_notification_is_verified_applied_once_and_forgeries_change_nothing() {
    let app = TestApp::without_intake(&[]).await;
    let stop = CancellationToken::new();
    // Over the trade's paid amount: Alipay fails it, the others succeed.
    let gw = start_sandbox(|c| c.trade_paid_fen = 500).await;
    let client = AlipayClient::new(&gw.url, Duration::from_secs(10)).unwrap();
    let state = CallbackState {
        pool: app.pool.clone(),
        client,
        partners: app.settings.alipay.partners.clone(),
        verify_notify_id: true,
        item_retry: app.settings.item_retry,
        openapi_apps: Vec::new(),
    };
    let base = serve(callback::router(state), &stop).await;

    app.store_events(&[
        event("L-1", &trade(1), r#""1.00""#),
        event("L-2", &trade(2), r#""2.00""#),
        event("L-3", &trade(3), r#""6.00""#),
    ])
    .await;
    let batch_no = form_batch(&app).await;
    let notify_url = format!("{base}/alipay/notify");
    let s = submitter_notifying(&app, &gw.url, &notify_url, Duration::from_secs(10));
    assert!(matches!(
        s.step(Utc::now()).await.unwrap(),
        Step::Sent {
            next: Next::Submitted,
            ..
        }
    ));

    wait_until("the batch completed", Duration::from_secs(30), || async {
        sqlx::query_scalar::<_, String>("SELECT status FROM batches WHERE batch_no = $1")
            .bind(&batch_no)
            .fetch_one(&app.pool)
            .await
            .unwrap()
            == "completed"
    })
    .await;
    assert_eq!(app.status_of("L-1").await, "succeeded");
    assert_eq!(app.status_of("L-2").await, "succeeded");
    assert_eq!(app.status_of("L-3").await, "failed");
    let body = app.event_of("L-3", |_| true).await;
    assert_eq!(
        (body["code"].as_str(), body["source"].as_str()),
        (Some("REFUND_TRADE_FEE_ERROR"), Some("notify"))
    );
    let ok = app.event_of("L-1", |_| true).await;
    assert_eq!(ok["event"], "refund.succeeded");
    assert_eq!(ok["amount"], "1.00");
    assert_eq!(ok["batch_no"].as_str(), Some(batch_no.as_str()));

    // The same notification again: success, nothing changes.
    let raw: Vec<u8> =
        sqlx::query_scalar("SELECT raw_body FROM notifications WHERE verdict = 'applied'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let http = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        let http = http.clone();
        let url = format!("{base}/alipay/notify");
        async move {
            let r = http
                .post(url)
                .header("content-type", "text/plain")
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(post(raw.clone()).await, (200, "success".to_owned()));
    // Forged: the result of L-3 turned into SUCCESS without the key.
    let forged = String::from_utf8(raw)
        .unwrap()
        .replace("REFUND_TRADE_FEE_ERROR", "SUCCESS");
    assert_eq!(post(forged.into_bytes()).await, (400, "fail".to_owned()));
    assert_eq!(
        post(b"not a form %zz".to_vec()).await,
        (400, "fail".to_owned())
    );
    assert_eq!(app.status_of("L-3").await, "failed");
    assert_eq!(
        count(&app, "SELECT count(*) FROM outbox").await,
        3,
        "one event per refund"
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM notifications WHERE verdict = 'applied'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM notifications WHERE verdict = 'forged'"
        )
        .await,
        1
    );
    assert!(
        count(
            &app,
            "SELECT count(*) FROM notifications WHERE verdict = 'repeat'"
        )
        .await
            >= 1
    );
    stop.cancel();
    app.cleanup().await;
}

#[tokio::test]
async fn a_batch_whose_notifications_are_all_lost_is_settled_by_the_reconciler() {
    use refund_worker::reconcile::Step as ReconcileStep;
    let app = TestApp::without_intake(&[]).await;
    let gw = start_sandbox(|c| c.faults.notify_drop_rate = "1".parse().unwrap()).await;
    app.store_events(&[
        event("Z-1", &trade(1), r#""1.00""#),
        event("Z-2", &trade(2), r#""2.00""#),
    ])
    .await;
    let batch_no = form_batch(&app).await;
    let s = submitter(&app, &gw.url, Duration::from_secs(10));
    assert!(matches!(
        s.step(Utc::now()).await.unwrap(),
        Step::Sent {
            next: Next::Submitted,
            ..
        }
    ));
    // The submitter's lease still covers the batch; let it lapse for the test.
    sqlx::query("UPDATE batches SET next_attempt_at = now()")
        .execute(&app.pool)
        .await
        .unwrap();

    let r = reconciler(&app, &gw.url, Duration::ZERO);
    let step = r.step().await.unwrap();
    assert!(
        matches!(&step, ReconcileStep::Applied { batch_no: b, applied } if *b == batch_no && applied.succeeded == 2 && applied.batch_completed),
        "{step:?}"
    );
    assert_eq!(app.status_of("Z-1").await, "succeeded");
    let source = app.event_of("Z-2", |_| true).await["source"].clone();
    assert_eq!(source, "query");
    assert_eq!(
        r.step().await.unwrap(),
        ReconcileStep::Idle,
        "a completed batch is not asked about again"
    );
    app.cleanup().await;
}
