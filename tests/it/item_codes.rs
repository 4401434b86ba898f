//! What each class of item code does to its refund, through the real
//! receiver, submitter and batcher: paid (with tails, in any case), final,
//! Alipay retries it (open until a later notification), can pass (back to
//! pending after its delay), needs a person (open until `refund settle`),
//! an amount other than the one sent, unreadable items beside readable ones;
//! and a batch held for an unknown `F` code, released by `batch release`.

use std::time::Duration;

use axum::http::StatusCode;
use chrono::Utc;
use refund_worker::batching::Step as BatchStep;
use refund_worker::submit::Step;
use refund_worker::submit::decide::Next;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::gateway::*;
use crate::helpers::*;
use crate::notifications::{post, serve_callback, signed_body};
use crate::operator::run;

fn notification(batch_no: &str, notify_id: &str, details: &str, success_num: &str) -> Vec<u8> {
    signed_body(
        &[
            ("notify_time", "2026-12-04 10:00:00"),
            ("notify_type", "batch_refund_notify"),
            ("notify_id", notify_id),
            ("batch_no", batch_no),
            ("success_num", success_num),
            ("result_details", details),
        ],
        KEY,
    )
}

async fn open_class(app: &TestApp, refund_id: &str) -> Option<String> {
    sqlx::query_scalar(
        "SELECT open_class FROM batch_items WHERE refund_id = $1 AND result_code IS NULL",
    )
    .bind(refund_id)
    .fetch_optional(&app.pool)
    .await
    .unwrap()
    .flatten()
}

async fn event_of(app: &TestApp, refund_id: &str) -> Option<serde_json::Value> {
    let terminal = ["refund.succeeded", "refund.failed"];
    let mut found: Vec<_> = app
        .events_of(refund_id)
        .await
        .into_iter()
        .filter(|(key, _)| terminal.contains(&key.as_str()))
        .collect();
    assert!(found.len() <= 1, "one terminal event at most: {found:?}");
    found.pop().map(|(_, e)| e)
}

#[tokio::test]
async fn each_item_class_does_what_the_table_says_and_open_items_wait_for_a_later_report_or_a_person()
 {
    let app = TestApp::without_intake(&[]).await;
    let stop = CancellationToken::new();
    // notify_verify off: these notifications are written by the test, not a gateway.
    let base = serve_callback(&app, "http://127.0.0.1:9", false, &stop).await;
    let ids: Vec<String> = (1..=8).map(|i| format!("C-{i}")).collect();
    let events: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| event(id, &trade(i + 1), r#""1.00""#))
        .collect();
    app.store_events(&events).await;
    let batch_no = form_batch(&app).await;
    let t = |i: usize| trade(i);
    let details = [
        // Paid, with the fee tail Alipay adds itself.
        format!(
            "{}^1.00^SUCCESS$jax@alipay.com^2088101003147483^0.01^SUCCESS",
            t(1)
        ),
        // Paid: lower case, five fields, a royalty tail.
        format!(
            "{}^1.00^success^false^null|a@b.com^2088^c@d.com^2089^0.01^SUCCESS",
            t(2)
        ),
        // Final.
        format!("{}^1.00^TRADE_HAS_CLOSED", t(3)),
        // Alipay retries it itself.
        format!("{}^1.00^TRADE_PAYMENT_ERROR", t(4)),
        // Can pass in a new batch.
        format!("{}^1.00^TXN_RESULT_ACCOUNT_BALANCE_NOT_ENOUGH", t(5)),
        // Needs a person.
        format!("{}^1.00^REFUND_FAIL", t(6)),
        // Not the amount we sent.
        format!("{}^10.00^SUCCESS", t(7)),
        // Unreadable: no code.
        format!("{}^1.00", t(8)),
    ]
    .join("#");
    let notify = format!("{base}/alipay/notify");
    assert_eq!(
        post(&notify, notification(&batch_no, "n-1", &details, "4")).await,
        (200, "success".into()),
        "a genuine notification is never refused for its shape"
    );
    assert_eq!(app.status_of("C-1").await, "succeeded");
    assert_eq!(app.status_of("C-2").await, "succeeded");
    assert_eq!(app.status_of("C-3").await, "failed");
    assert_eq!(app.status_of("C-4").await, "submitted");
    assert_eq!(app.status_of("C-5").await, "pending");
    assert_eq!(app.status_of("C-6").await, "submitted");
    assert_eq!(app.status_of("C-7").await, "submitted");
    assert_eq!(app.status_of("C-8").await, "submitted");
    assert_eq!(
        open_class(&app, "C-4").await.as_deref(),
        Some("alipay_retries")
    );
    assert_eq!(
        open_class(&app, "C-6").await.as_deref(),
        Some("needs_person")
    );
    assert_eq!(
        open_class(&app, "C-7").await.as_deref(),
        Some("amount_mismatch")
    );
    assert_eq!(batch_status(&app, &batch_no).await, "submitted");
    let detail: Option<String> =
        sqlx::query_scalar("SELECT detail FROM notifications WHERE notify_id = 'n-1'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let detail = detail.unwrap_or_default();
    assert!(detail.contains("unreadable: item 7"), "{detail}");
    assert!(
        detail.contains("success_num 4, but 3 items read SUCCESS"),
        "{detail}"
    );
    // The balance refund waits for its delay before a new batch.
    let not_before: Option<chrono::DateTime<Utc>> =
        sqlx::query_scalar("SELECT not_before FROM refunds WHERE refund_id = 'C-5'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(not_before.is_some_and(|t| t > Utc::now()));
    let (code, out, _) = run(&app, &["refund", "show", "C-5"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("next try not before")
            && out.contains("TXN_RESULT_ACCOUNT_BALANCE_NOT_ENOUGH"),
        "{out}"
    );
    let (_, out, _) = run(&app, &["refund", "show", "C-6"]);
    assert!(
        out.contains("open     REFUND_FAIL [needs_person]") && out.contains("refund settle C-6"),
        "{out}"
    );

    // The same notify_id again changes nothing; a later one resolves what was open.
    assert_eq!(
        post(&notify, notification(&batch_no, "n-1", &details, "4")).await,
        (200, "success".into())
    );
    let later = format!(
        "{}^1.00^SUCCESS#{}^1.00^SUCCESS#{}^1.00^TRADE_HAS_CLOSED",
        t(4),
        t(1),
        t(8)
    );
    assert_eq!(
        post(&notify, notification(&batch_no, "n-2", &later, "2")).await,
        (200, "success".into())
    );
    assert_eq!(app.status_of("C-4").await, "succeeded");
    assert_eq!(app.status_of("C-8").await, "failed");
    assert_eq!(batch_status(&app, &batch_no).await, "submitted");

    // A person settles the rest, by name and with a reason.
    let (code, out, err) = run(
        &app,
        &[
            "refund",
            "settle",
            "C-6",
            "--succeeded",
            "--reason",
            "the account shows it paid",
            "--by",
            "alice",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run(
        &app,
        &[
            "refund",
            "settle",
            "C-7",
            "--failed",
            "AMOUNT_MISMATCH",
            "--reason",
            "support: not refunded",
            "--by",
            "bob",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("batch completed"), "{out}");
    assert_eq!(batch_status(&app, &batch_no).await, "completed");
    let e6 = event_of(&app, "C-6").await.unwrap();
    assert_eq!(
        (e6["event"].as_str(), e6["source"].as_str()),
        (Some("refund.succeeded"), Some("operator"))
    );
    let e7 = event_of(&app, "C-7").await.unwrap();
    assert_eq!(
        (e7["code"].as_str(), e7["source"].as_str()),
        (Some("AMOUNT_MISMATCH"), Some("operator"))
    );
    let c6 = refund_worker::storage::refunds::find(&app.pool, "C-6")
        .await
        .unwrap()
        .unwrap();
    let last = c6.history.last().unwrap();
    assert_eq!(
        (last.to_status.as_str(), last.actor.as_str()),
        ("succeeded", "operator:alice")
    );
    // Settling twice, or settling what is not open, is refused and changes nothing.
    let (code, _, err) = run(
        &app,
        &[
            "refund", "settle", "C-6", "--failed", "X", "--reason", "r", "--by", "a",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("it is succeeded"), "{err}");
    let (code, _, err) = run(
        &app,
        &[
            "refund",
            "settle",
            "C-5",
            "--succeeded",
            "--reason",
            "r",
            "--by",
            "a",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("it is pending"), "{err}");
    let (code, _, _) = run(
        &app,
        &[
            "refund",
            "settle",
            "C-1",
            "--succeeded",
            "--reason",
            " ",
            "--by",
            "a",
        ],
    );
    assert_eq!(code, 2);
    // Exactly one terminal event each, and the batch ignores later notifications.
    let terminal: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE routing_key IN ('refund.succeeded', 'refund.failed')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(terminal, 7, "every refund but the pending C-5");

    // Past its delay the balance refund goes into a new batch.
    let b = eager_batcher(&app, 1000);
    assert_eq!(b.step(Utc::now()).await.unwrap(), BatchStep::Idle);
    let later = not_before.unwrap() + chrono::Duration::seconds(1);
    assert!(matches!(
        b.step(later).await.unwrap(),
        BatchStep::Formed { items: 1, .. }
    ));
    assert_eq!(app.status_of("C-5").await, "batched");
    stop.cancel();
    app.cleanup().await;
}

/// A gateway that answers every request with one synchronous answer.
async fn answering(
    status: StatusCode,
    body: &'static str,
) -> (String, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new().fallback(move || async move { (status, body) });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/gateway.do"), server)
}

fn refused(code: &str) -> &'static str {
    Box::leak(
        format!(r#"<?xml version="1.0" encoding="utf-8"?><alipay><is_success>F</is_success><error>{code}</error></alipay>"#)
            .into_boxed_str(),
    )
}

#[tokio::test]
async fn an_unknown_f_code_holds_the_batch_until_an_operator_releases_its_refunds() {
    let app = TestApp::without_intake(&[]).await;
    app.store_events(&[
        event("H-1", &trade(1), r#""1.00""#),
        event("H-2", &trade(2), r#""2.00""#),
    ])
    .await;
    let batch_no = form_batch(&app).await;
    // Not a release candidate before it is held.
    let (code, _, err) = run(
        &app,
        &["batch", "release", &batch_no, "--reason", "r", "--by", "a"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("not held"), "{err}");
    let (gw, server) = answering(StatusCode::OK, refused("SOMETHING_ALIPAY_ADDED_LATER")).await;
    let s = submitter(&app, &gw, Duration::from_secs(5));
    let step = s.step(Utc::now()).await.unwrap();
    assert!(
        matches!(
            step,
            Step::Sent {
                next: Next::Hold,
                ..
            }
        ),
        "{step:?}"
    );
    assert_eq!(app.status_of("H-1").await, "batched");
    let (_, out, _) = run(&app, &["batch", "show", &batch_no]);
    assert!(
        out.contains("held      since") && out.contains("SOMETHING_ALIPAY_ADDED_LATER"),
        "{out}"
    );
    let (code, out, err) = run(
        &app,
        &[
            "batch",
            "release",
            &batch_no,
            "--reason",
            "Alipay support: not accepted",
            "--by",
            "carol",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 refunds back to pending"), "{out}");
    assert_eq!(app.status_of("H-1").await, "pending");
    assert_eq!(batch_status(&app, &batch_no).await, "rejected");
    let (code, _, err) = run(
        &app,
        &["batch", "release", &batch_no, "--reason", "r", "--by", "a"],
    );
    assert_eq!(code, 1, "{err}");
    server.abort();
    app.cleanup().await;
}

#[tokio::test]
async fn a_batch_held_after_an_unknown_outcome_is_never_released() {
    let app = TestApp::without_intake(&[]).await;
    app.store_events(&[event("U-1", &trade(1), r#""1.00""#)])
        .await;
    let batch_no = form_batch(&app).await;
    let (gw, server) = answering(StatusCode::OK, refused("SOMETHING_NEW")).await;
    let s = submitter(&app, &gw, Duration::from_secs(5));
    // An earlier attempt whose outcome is unknown, then a hold.
    sqlx::query("UPDATE batches SET outcome_unknown = true, held_at = now() WHERE batch_no = $1")
        .bind(&batch_no)
        .execute(&app.pool)
        .await
        .unwrap();
    let (code, _, err) = run(
        &app,
        &["batch", "release", &batch_no, "--reason", "r", "--by", "a"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("outcome is unknown"), "{err}");
    assert_eq!(app.status_of("U-1").await, "batched");
    drop(s);
    server.abort();
    app.cleanup().await;
}

#[tokio::test]
async fn a_passing_per_trade_code_on_a_batch_of_one_returns_the_refund_for_later() {
    let app = TestApp::without_intake(&[]).await;
    app.store_events(&[event("L-1", &trade(1), r#""1.00""#)])
        .await;
    let batch_no = form_batch(&app).await;
    let (gw, server) = answering(StatusCode::OK, refused("BATCH_REFUND_LOCK_ERROR")).await;
    let s = submitter(&app, &gw, Duration::from_secs(5));
    let step = s.step(Utc::now()).await.unwrap();
    assert!(
        matches!(
            step,
            Step::Sent {
                next: Next::ReturnItem,
                ..
            }
        ),
        "{step:?}"
    );
    assert_eq!(app.status_of("L-1").await, "pending");
    assert_eq!(batch_status(&app, &batch_no).await, "rejected");
    let retries: i32 =
        sqlx::query_scalar("SELECT item_retries FROM refunds WHERE refund_id = 'L-1'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(retries, 1);
    server.abort();
    app.cleanup().await;
}

#[tokio::test]
async fn a_4xx_after_the_gateway_took_the_batch_is_resent_under_the_same_batch_no() {
    let app = TestApp::without_intake(&[]).await;
    app.store_events(&[event("Q-1", &trade(1), r#""1.00""#)])
        .await;
    let batch_no = form_batch(&app).await;
    let (gw, server) = answering(StatusCode::TOO_MANY_REQUESTS, "slow down").await;
    let s = submitter(&app, &gw, Duration::from_secs(5));
    let step = s.step(Utc::now()).await.unwrap();
    assert!(
        matches!(&step, Step::Sent { next: Next::RetryLater { unknown: true, .. }, code: Some(c), .. } if c == "HTTP_429"),
        "{step:?}"
    );
    let (status, unknown): (String, bool) =
        sqlx::query_as("SELECT status, outcome_unknown FROM batches WHERE batch_no = $1")
            .bind(&batch_no)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), unknown), ("submitting", true));
    assert_eq!(app.status_of("Q-1").await, "batched");
    server.abort();
    app.cleanup().await;
}

#[tokio::test]
async fn an_item_alipay_retried_whose_later_notification_is_empty_is_settled_by_the_query() {
    use refund_worker::reconcile::Step as ReconcileStep;
    let app = TestApp::without_intake(&[]).await;
    let stop = CancellationToken::new();
    let gw = start_sandbox(|c| {
        c.realism.non_final_rate = "1".parse().unwrap();
        c.realism.empty_details_rate = "1".parse().unwrap();
        c.realism.non_final_delay = Duration::from_millis(10);
    })
    .await;
    let base = serve_callback(&app, &gw.url, true, &stop).await;
    app.store_events(&[event("N-1", &trade(1), r#""1.00""#)])
        .await;
    let batch_no = form_batch(&app).await;
    let s = submitter_notifying(
        &app,
        &gw.url,
        &format!("{base}/alipay/notify"),
        Duration::from_secs(10),
    );
    let step = s.step(Utc::now()).await.unwrap();
    assert!(
        matches!(
            step,
            Step::Sent {
                next: Next::Submitted,
                ..
            }
        ),
        "{step:?}"
    );
    wait_until(
        "both notifications applied",
        Duration::from_secs(10),
        || async {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM notifications WHERE verdict = 'applied'",
            )
            .fetch_one(&app.pool)
            .await
            .unwrap()
                >= 2
        },
    )
    .await;
    assert_eq!(app.status_of("N-1").await, "submitted");
    sqlx::query("UPDATE batches SET next_attempt_at = now()")
        .execute(&app.pool)
        .await
        .unwrap();
    let r = reconciler(&app, &gw.url, Duration::ZERO);
    let step = r.step().await.unwrap();
    assert!(
        matches!(&step, ReconcileStep::Applied { batch_no: b, applied } if *b == batch_no && applied.succeeded == 1),
        "{step:?}"
    );
    assert_eq!(app.status_of("N-1").await, "succeeded");
    stop.cancel();
    app.cleanup().await;
}

#[tokio::test]
async fn every_shape_the_realistic_sandbox_writes_reads_back_through_the_workers_parsers() {
    use refund_worker::alipay::client::AlipayClient;
    use refund_worker::alipay::wire::query_answer::QueryAnswer;
    use refund_worker::alipay::wire::request::QueryBy;
    let app = TestApp::without_intake(&[]).await;
    let stop = CancellationToken::new();
    let gw = start_sandbox(|c| {
        c.realism.tails_rate = "1".parse().unwrap();
        c.realism.five_field_rate = "1".parse().unwrap();
        c.realism.lower_case_rate = "1".parse().unwrap();
    })
    .await;
    let base = serve_callback(&app, &gw.url, true, &stop).await;
    let events: Vec<_> = (1..=20)
        .map(|i| event(&format!("X-{i}"), &trade(i), r#""1.00""#))
        .collect();
    app.store_events(&events).await;
    let batch_no = form_batch(&app).await;
    let s = submitter_notifying(
        &app,
        &gw.url,
        &format!("{base}/alipay/notify"),
        Duration::from_secs(10),
    );
    s.step(Utc::now()).await.unwrap();
    wait_until(
        "the notification applied",
        Duration::from_secs(10),
        || async { batch_status(&app, &batch_no).await == "completed" },
    )
    .await;
    for i in 1..=20 {
        assert_eq!(app.status_of(&format!("X-{i}")).await, "succeeded");
    }
    let client = AlipayClient::new(&gw.url, Duration::from_secs(10)).unwrap();
    let reply = client
        .query(PARTNER, KEY, &QueryBy::Batch(batch_no.clone()))
        .await
        .unwrap();
    let QueryAnswer::Found(items) = &reply.answer else {
        panic!("{reply:?}")
    };
    assert_eq!(items.len(), 20, "{}", reply.raw);
    assert!(reply.unreadable.is_empty(), "{:?}", reply.unreadable);
    assert!(items.iter().all(|i| i.item.is_success()), "{}", reply.raw);
    stop.cancel();
    app.cleanup().await;
}
