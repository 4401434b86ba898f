//! Notifications that must change nothing (forged, denied, unknown, mangled)
//! and 充退 notifications becoming `refund.bank_returned` events.

use std::time::Duration;

use chrono::Utc;
use refund_worker::alipay::client::AlipayClient;
use refund_worker::alipay::sign;
use refund_worker::alipay::wire::form;
use refund_worker::callback::{self, CallbackState};
use refund_worker::submit::Step;
use refund_worker::submit::decide::Next;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::gateway::*;
use crate::helpers::*;
use crate::proxy::Proxy;

/// The callback receiver on port 0, stopped with `stop`; its base URL.
pub async fn serve_callback(
    app: &TestApp,
    gateway: &str,
    verify_notify_id: bool,
    stop: &CancellationToken,
) -> String {
    serve_callback_on(app.pool.clone(), app, gateway, verify_notify_id, stop).await
}

/// The same with the receiver's own pool (e.g. through a [`Proxy`]).
async fn serve_callback_on(
    pool: sqlx::PgPool,
    app: &TestApp,
    gateway: &str,
    verify_notify_id: bool,
    stop: &CancellationToken,
) -> String {
    let state = CallbackState {
        pool,
        client: AlipayClient::new(gateway, Duration::from_secs(10)).unwrap(),
        partners: app.settings.alipay.partners.clone(),
        verify_notify_id,
        item_retry: app.settings.item_retry,
        openapi_apps: Vec::new(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, callback::router(state))
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    });
    format!("http://{addr}")
}

/// A form signed with `key`, as Alipay would post it.
pub fn signed_body(pairs: &[(&str, &str)], key: &str) -> Vec<u8> {
    let mut params: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let signature = sign::sign(&params, key);
    params.push(("sign_type".into(), "MD5".into()));
    params.push(("sign".into(), signature));
    form::encode(&params).into_bytes()
}

pub async fn post(url: &str, body: Vec<u8>) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

pub async fn count(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

async fn verdicts(app: &TestApp) -> Vec<(String, String)> {
    sqlx::query_as("SELECT kind, verdict FROM notifications ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn notifications_that_prove_nothing_are_refused_stored_and_change_nothing() {
    let app = TestApp::without_intake(&[]).await;
    let stop = CancellationToken::new();
    let gw = start_sandbox(|_| {}).await;
    let base = serve_callback(&app, &gw.url, true, &stop).await;
    app.store_events(&[
        event("F-1", &trade(1), r#""1.00""#),
        event("F-2", &trade(2), r#""2.00""#),
    ])
    .await;
    let batch_no = form_batch(&app).await;
    let notify = format!("{base}/alipay/notify");
    let dback = format!("{base}/alipay/dback-notify");
    let details = format!("{}^1.00^SUCCESS#{}^2.00^SUCCESS", trade(1), trade(2));
    let fields = |batch: &str, details: &str, notify_id: &str| -> Vec<(String, String)> {
        [
            ("notify_time", "2026-11-25 10:00:00"),
            ("notify_type", "batch_refund_notify"),
            ("notify_id", notify_id),
            ("batch_no", batch),
            ("success_num", "2"),
            ("result_details", details),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    let body = |f: Vec<(String, String)>, key: &str| {
        let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        signed_body(&pairs, key)
    };

    // Signed with another key.
    let forged = body(
        fields(&batch_no, &details, "id-forged"),
        "not-the-key-0000000000000000000",
    );
    assert_eq!(post(&notify, forged).await, (400, "fail".into()));
    // Genuinely signed, but the gateway never sent this notify_id.
    let denied = body(fields(&batch_no, &details, "id-never-issued"), KEY);
    assert_eq!(post(&notify, denied).await, (400, "fail".into()));
    // A batch we never made.
    let unknown = body(fields("20261125999999", &details, "id-unknown"), KEY);
    assert_eq!(post(&notify, unknown).await, (404, "fail".into()));
    // result_details that do not parse, under a notify_id the gateway never
    // sent: refused for the notify_id (a confirmed one is never refused for
    // its shape: see item_codes.rs).
    let mangled = body(fields(&batch_no, "^^#garbage", "id-mangled"), KEY);
    assert_eq!(post(&notify, mangled).await, (400, "fail".into()));
    // SQL and HTML where values go: stored as given, nothing run.
    let hostile = body(
        fields(&batch_no, &details, "x'); DROP TABLE refunds; --<script>"),
        "wrong-key-000000000000000000000",
    );
    assert_eq!(post(&notify, hostile).await, (400, "fail".into()));
    // A 充退 naming a trade the batch does not hold.
    let stranger = signed_body(
        &[
            ("notify_id", "id-dback-stranger"),
            ("trade_no", "2099000000000000000000000001"),
            ("refund_batch_no", &batch_no),
            ("status", "S"),
        ],
        KEY,
    );
    assert_eq!(post(&dback, stranger).await, (400, "fail".into()));

    assert_eq!(
        verdicts(&app).await,
        [
            ("batch_refund", "forged"),
            ("batch_refund", "unconfirmed"),
            ("batch_refund", "unknown_batch"),
            ("batch_refund", "unconfirmed"),
            ("batch_refund", "forged"),
            ("dback", "unknown_trade"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    assert_eq!(app.status_of("F-1").await, "batched");
    assert_eq!(app.status_of("F-2").await, "batched");
    assert_eq!(count(&app, "SELECT count(*) FROM outbox").await, 0);
    assert_eq!(count(&app, "SELECT count(*) FROM refunds").await, 2);
    stop.cancel();
    app.cleanup().await;
}

#[tokio::test]
async fn a_bank_return_becomes_one_event_and_its_resend_changes_nothing() {
    let app = TestApp::without_intake(&[]).await;
    let stop = CancellationToken::new();
    let gw = start_sandbox(|_| {}).await;
    let base = serve_callback(&app, &gw.url, true, &stop).await;
    app.store_events(&[
        event("B-1", &trade(1), r#""1.00""#),
        event("B-2", &trade(2), r#""2.50""#),
    ])
    .await;
    let batch_no = form_batch(&app).await;
    let mut s = submitter_notifying(
        &app,
        &gw.url,
        &format!("{base}/alipay/notify"),
        Duration::from_secs(10),
    );
    s.dback_notify_url = Some(format!("{base}/alipay/dback-notify"));
    assert!(matches!(
        s.step(Utc::now()).await.unwrap(),
        Step::Sent {
            next: Next::Submitted,
            ..
        }
    ));
    wait_for_count(
        "two bank_returned events",
        2,
        Duration::from_secs(30),
        || async {
            count(
                &app,
                "SELECT count(*) FROM outbox WHERE routing_key = 'refund.bank_returned'",
            )
            .await
        },
    )
    .await;
    let body = app
        .event_of("B-2", |key| key == "refund.bank_returned")
        .await;
    assert_eq!(body["event"], "refund.bank_returned");
    assert_eq!(body["status"], "bank_succeeded");
    assert_eq!(body["code"], "S");
    assert_eq!(body["amount"], "2.50");
    assert_eq!(body["batch_no"].as_str(), Some(batch_no.as_str()));
    assert_eq!(app.status_of("B-2").await, "succeeded");

    // Alipay's resend of one: success, no second event.
    let raw: Vec<u8> = sqlx::query_scalar(
        "SELECT raw_body FROM notifications WHERE kind = 'dback' AND verdict = 'applied' LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        post(&format!("{base}/alipay/dback-notify"), raw).await,
        (200, "success".into())
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM outbox").await,
        4,
        "one terminal and one bank_returned event per refund"
    );

    // `batch show` tells the batch's story with every notification.
    let out = crate::cli::worker(&app)
        .args(["batch", "show", &batch_no, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["batch_no"].as_str(), Some(batch_no.as_str()));
    assert_eq!(v["status"], "completed");
    assert_eq!(v["total"], "3.50");
    assert_eq!(v["results"]["SUCCESS"], 2);
    let kinds: Vec<(&str, &str)> = v["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["kind"].as_str().unwrap(), n["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("batch_refund", "applied"),
            ("dback", "applied"),
            ("dback", "applied"),
            ("dback", "repeat")
        ]
    );
    let history: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["what"].as_str().unwrap())
        .collect();
    assert_eq!(history[0], "created with 2 items");
    assert!(
        history.contains(&"refunds submitted -> succeeded (SUCCESS)"),
        "{history:?}"
    );
    // Each move of the batch's refunds is one set row, read back per refund
    // after its arrival.
    assert_eq!(
        count(&app, "SELECT count(*) FROM refund_history").await,
        0,
        "no row per refund for a batch's moves"
    );
    assert!(count(&app, "SELECT count(*) FROM refund_history_sets").await >= 3);
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT refund_id FROM batch_items WHERE batch_no = $1")
            .bind(&batch_no)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(ids.len(), 2);
    for id in &ids {
        let view = refund_worker::storage::refunds::find(&app.pool, id)
            .await
            .unwrap()
            .unwrap();
        let moves: Vec<(Option<&str>, &str, Option<&str>)> = view
            .history
            .iter()
            .map(|h| {
                (
                    h.from_status.as_deref(),
                    h.to_status.as_str(),
                    h.batch_no.as_deref(),
                )
            })
            .collect();
        let b = Some(batch_no.as_str());
        assert_eq!(
            moves,
            [
                (None, "pending", None),
                (Some("pending"), "batched", b),
                (Some("batched"), "submitted", b),
                (Some("submitted"), "succeeded", b)
            ],
            "{id}"
        );
    }
    let text = crate::cli::worker(&app)
        .args(["batch", "show", &batch_no])
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("status    completed") && text.contains("results   SUCCESS 2"),
        "{text}"
    );
    let out = crate::cli::worker(&app)
        .args(["batch", "show", "20261125404"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "batch 20261125404 is unknown"
    );
    stop.cancel();
    app.cleanup().await;
}

/// PostgreSQL unreachable when Alipay notifies: 503 `fail`, nothing half
/// done, and the resend is applied once the database is back.
#[tokio::test]
async fn a_notification_during_a_database_outage_is_answered_503_and_applied_on_resend() {
    let app = TestApp::without_intake(&[]).await;
    let stop = CancellationToken::new();
    let gw = start_sandbox(|_| {}).await;
    let proxy = Proxy::start("127.0.0.1:5432").await.unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(2))
        .connect_with(
            format!("postgres://postgres@{}/{}", proxy.addr, app.db_name())
                .parse::<sqlx::postgres::PgConnectOptions>()
                .unwrap()
                .options([refund_worker::storage::ACCEPTED_BY_BATCH]),
        )
        .await
        .unwrap();
    let base = serve_callback_on(pool, &app, &gw.url, true, &stop).await;
    app.store_events(&[event("P-1", &trade(1), r#""1.00""#)])
        .await;
    let batch_no = form_batch(&app).await;

    proxy.cut();
    let s = submitter_notifying(
        &app,
        &gw.url,
        &format!("{base}/alipay/notify"),
        Duration::from_secs(10),
    );
    assert!(matches!(
        s.step(Utc::now()).await.unwrap(),
        Step::Sent {
            next: Next::Submitted,
            ..
        }
    ));
    let sandbox = gw.sandbox.as_ref().unwrap();
    wait_until(
        "a send refused by the outage",
        Duration::from_secs(30),
        || async {
            sandbox
                .ledger()
                .notifications
                .iter()
                .any(|n| n.delivered >= 1)
        },
    )
    .await;
    assert!(
        !sandbox.ledger().notifications[0].acknowledged,
        "answered success without a database"
    );
    assert_eq!(app.status_of("P-1").await, "submitted");
    assert_eq!(
        post(&format!("{base}/alipay/notify"), b"anything".to_vec()).await,
        (503, "fail".into()),
        "nothing can be stored, so nothing is answered but 503"
    );
    assert_eq!(count(&app, "SELECT count(*) FROM notifications").await, 0);

    proxy.restore();
    wait_until("the resend applied", Duration::from_secs(30), || async {
        app.status_of("P-1").await == "succeeded"
    })
    .await;
    // The receiver commits before it answers `success`, and the sandbox
    // records the answer only once it has read it: wait for that too.
    wait_until(
        "the resend acknowledged",
        Duration::from_secs(30),
        || async { sandbox.ledger().notifications[0].acknowledged },
    )
    .await;
    let n = &sandbox.ledger().notifications[0];
    assert!(n.delivered >= 2, "{n:?}");
    let batch_status: String = sqlx::query_scalar("SELECT status FROM batches WHERE batch_no = $1")
        .bind(&batch_no)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(batch_status, "completed");
    stop.cancel();
    app.cleanup().await;
}
