//! Never paid twice when Alipay is slow or a worker stalls:
//! absence proven only by two late `REFUND_NOT_EXIST` answers, a stale
//! submitter fenced out after a takeover, and the rejected-batch alarm.
//! A scripted gateway stands in for Alipay, so each test sees exactly the
//! answers the case needs; it records every batch it was sent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use chrono::{DateTime, NaiveTime, Utc};
use refund_worker::alipay::wire::batch_no::beijing_now;
use refund_worker::batching::Step as BatchStep;
use refund_worker::submit::Step;
use refund_worker::submit::decide::Next;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::gateway::*;
use crate::helpers::*;
use crate::notifications::{post, serve_callback, signed_body};

const F: &str = r#"<?xml version="1.0" encoding="utf-8"?><alipay><is_success>F</is_success><error>CODE</error></alipay>"#;
const T: &str =
    r#"<?xml version="1.0" encoding="utf-8"?><alipay><is_success>T</is_success></alipay>"#;

/// What the scripted gateway answers, and what it saw.
#[derive(Default)]
struct Script {
    /// Answers to nopwd submissions, in order; the last one repeats.
    submits: Vec<String>,
    /// Whether the query shows the batches it was sent (else REFUND_NOT_EXIST).
    visible: bool,
    /// The `batch_no` of every submission, in order.
    sent: Vec<String>,
    /// Hold the first submission until this is notified.
    hold_first: Option<Arc<Notify>>,
}

type Shared = Arc<Mutex<Script>>;

fn field(form: &[(String, String)], name: &str) -> String {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

async fn gateway_do(State(s): State<Shared>, body: Bytes) -> String {
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let batch_no = field(&form, "batch_no");
    if field(&form, "service") == "refund_fastpay_query" {
        let s = s.lock().unwrap();
        return if s.visible && s.sent.contains(&batch_no) {
            format!(
                "is_success=T&result_details={batch_no}^2016000000000000000000000001^1.00^SUCCESS"
            )
        } else {
            "is_success=F&error_code=REFUND_NOT_EXIST".into()
        };
    }
    let (hold, answer) = {
        let mut s = s.lock().unwrap();
        let n = s.sent.len();
        s.sent.push(batch_no);
        let answer = s
            .submits
            .get(n)
            .or(s.submits.last())
            .cloned()
            .unwrap_or_else(|| T.into());
        (if n == 0 { s.hold_first.clone() } else { None }, answer)
    };
    if let Some(h) = hold {
        h.notified().await;
    }
    answer
}

async fn scripted(script: Script) -> (String, Shared, tokio::task::JoinHandle<()>) {
    let shared: Shared = Arc::new(Mutex::new(script));
    let app = axum::Router::new()
        .route("/gateway.do", axum::routing::post(gateway_do))
        .with_state(shared.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/gateway.do"), shared, server)
}

fn refused(code: &str) -> String {
    F.replace("CODE", code)
}

/// Makes the batch due now (its retry delay is the database's clock; the
/// decisions are the injected one's).
async fn due_now(app: &TestApp) {
    sqlx::query("UPDATE batches SET next_attempt_at = now()")
        .execute(&app.pool)
        .await
        .unwrap();
}

async fn batches(app: &TestApp) -> Vec<(String, String)> {
    sqlx::query_as("SELECT batch_no, status FROM batches ORDER BY batch_no")
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

/// Ten seconds before the next Beijing midnight, in UTC.
fn before_beijing_midnight() -> DateTime<Utc> {
    let bj = beijing_now(Utc::now());
    let midnight = bj.date().and_time(NaiveTime::MIN) + chrono::Duration::days(1);
    (midnight - chrono::Duration::hours(8)).and_utc() - chrono::Duration::seconds(10)
}

async fn one_refund_batch(app: &TestApp, id: &str) -> String {
    app.store_events(&[event(id, "2016000000000000000000000001", r#""1.00""#)])
        .await;
    form_batch(app).await
}

#[tokio::test]
async fn a_batch_accepted_late_across_midnight_is_never_renumbered_on_early_absence() {
    let app = TestApp::without_intake(&[]).await;
    let batch_no = one_refund_batch(&app, "M-1").await;
    let (gw, script, server) = scripted(Script {
        submits: vec![refused("SYSTEM_ERROR")],
        ..Script::default()
    })
    .await;
    let s = submitter(&app, &gw, Duration::from_secs(5));
    let sent = before_beijing_midnight();
    let step = s.step(sent).await.unwrap();
    assert!(
        matches!(
            step,
            Step::Sent {
                next: Next::RetryLater { unknown: true, .. },
                ..
            }
        ),
        "{step:?}"
    );
    // 00:00:06 Beijing: the date has changed, so the submitter asks; Alipay
    // has not processed the batch yet and answers REFUND_NOT_EXIST.
    due_now(&app).await;
    let step = s.step(sent + chrono::Duration::seconds(16)).await.unwrap();
    assert!(
        matches!(
            step,
            Step::Queried {
                next: Next::RetryLater { query: true, .. },
                ..
            }
        ),
        "an answer 16 s after the send proves nothing: {step:?}"
    );
    // An hour on, the first answer that counts; still not a proof.
    due_now(&app).await;
    let step = s.step(sent + chrono::Duration::minutes(61)).await.unwrap();
    assert!(
        matches!(
            step,
            Step::Queried {
                next: Next::AbsenceSeen { .. },
                ..
            }
        ),
        "{step:?}"
    );
    let (_, out, _) = crate::operator::run(&app, &["batch", "show", &batch_no]);
    assert!(
        out.contains("first REFUND_NOT_EXIST that counts seen at"),
        "{out}"
    );
    // Then Alipay processes it: the query finds it, and it stays one batch.
    script.lock().unwrap().visible = true;
    due_now(&app).await;
    let step = s.step(sent + chrono::Duration::minutes(90)).await.unwrap();
    assert_eq!(
        step,
        Step::Queried {
            batch_no: batch_no.clone(),
            next: Next::Submitted
        }
    );
    assert_eq!(app.status_of("M-1").await, "submitted");
    assert_eq!(
        batches(&app).await,
        [(batch_no.clone(), "submitted".to_owned())]
    );
    assert_eq!(
        script.lock().unwrap().sent,
        [batch_no],
        "sent once, under one batch_no"
    );
    let answers: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notifications WHERE kind = 'query'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(answers, 3, "every query answer is kept");
    server.abort();
    app.cleanup().await;
}

#[tokio::test]
async fn absence_is_proven_only_by_two_answers_a_settle_time_apart_then_the_refund_is_renumbered() {
    let app = TestApp::without_intake(&[]).await;
    let batch_no = one_refund_batch(&app, "P-1").await;
    let (gw, script, server) = scripted(Script {
        submits: vec![refused("SYSTEM_ERROR")],
        ..Script::default()
    })
    .await;
    let s = submitter(&app, &gw, Duration::from_secs(5));
    let t0 = Utc::now();
    s.step(t0).await.unwrap();
    // Past the give-up age on the same day: queried, not resent.
    for (mins, expect_reject) in [(11, false), (61, false), (100, false), (122, true)] {
        due_now(&app).await;
        let step = s.step(t0 + chrono::Duration::minutes(mins)).await.unwrap();
        let rejected = matches!(
            step,
            Step::Queried {
                next: Next::Reject { .. },
                ..
            }
        );
        assert_eq!(rejected, expect_reject, "at +{mins} min: {step:?}");
        if !rejected {
            assert_eq!(app.status_of("P-1").await, "batched");
        }
    }
    assert_eq!(app.status_of("P-1").await, "pending");
    assert_eq!(
        batches(&app).await,
        [(batch_no.clone(), "rejected".to_owned())]
    );
    assert_eq!(script.lock().unwrap().sent.len(), 1);
    server.abort();
    app.cleanup().await;
}

#[tokio::test]
async fn a_submitter_that_stalls_past_its_lease_writes_nothing_after_the_takeover() {
    let app = TestApp::without_intake(&[]).await;
    let events: Vec<_> = (1..=4)
        .map(|i| event(&format!("S-{i}"), &trade(i), r#""1.00""#))
        .collect();
    app.store_events(&events).await;
    let batch_no = form_batch(&app).await;
    let release = Arc::new(Notify::new());
    // The first attempt hangs, then answers a per-trade refusal that would
    // split the batch; the takeover's attempt is accepted.
    let (gw, script, server) = scripted(Script {
        submits: vec![refused("TRADE_NOT_EXISTS"), T.into()],
        hold_first: Some(release.clone()),
        ..Script::default()
    })
    .await;
    let stalled = submitter(&app, &gw, Duration::from_secs(30));
    let first = tokio::spawn(async move { stalled.step(Utc::now()).await });
    wait_until(
        "the first attempt reached the gateway",
        Duration::from_secs(10),
        || async { script.lock().unwrap().sent.len() == 1 },
    )
    .await;
    // Its lease runs out (as for a paused VM); another submitter takes over.
    due_now(&app).await;
    let second = submitter(&app, &gw, Duration::from_secs(5));
    let step = second.step(Utc::now()).await.unwrap();
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
    // The stalled one wakes with its stale refusal.
    release.notify_one();
    let stale = first.await.unwrap().unwrap();
    assert!(
        matches!(
            stale,
            Step::Sent {
                next: Next::Split,
                ..
            }
        ),
        "{stale:?}"
    );
    assert_eq!(
        batches(&app).await,
        [(batch_no.clone(), "submitted".to_owned())],
        "no split after the takeover"
    );
    for i in 1..=4 {
        assert_eq!(app.status_of(&format!("S-{i}")).await, "submitted");
    }
    server.abort();
    app.cleanup().await;
}

#[tokio::test]
async fn a_result_for_a_rejected_batch_raises_the_alarm_and_never_settles_a_refund_from_the_wrong_batch()
 {
    let app = TestApp::without_intake(&[]).await;
    let stop = CancellationToken::new();
    let ids = ["A-1", "A-2", "A-3"];
    let events: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| event(id, &trade(i + 1), r#""1.00""#))
        .collect();
    app.store_events(&events).await;
    let b1 = form_batch(&app).await;
    // Rejected for its date, so its refunds go back to pending…
    let (gw, _script, server) = scripted(Script {
        submits: vec![refused("REFUND_DATE_ERROR"), T.into()],
        ..Script::default()
    })
    .await;
    let s = submitter(&app, &gw, Duration::from_secs(5));
    let step = s.step(Utc::now()).await.unwrap();
    assert!(
        matches!(
            step,
            Step::Sent {
                next: Next::Reject { .. },
                ..
            }
        ),
        "{step:?}"
    );
    // …and two of them into new batches of one: A-1 in B2 (sent, accepted),
    // A-2 in B3 (never sent); A-3 still pending.
    let one_at_a_time = eager_batcher(&app, 1);
    let BatchStep::Formed { batch_no: b2, .. } = one_at_a_time.step(Utc::now()).await.unwrap()
    else {
        panic!("no batch")
    };
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
    let BatchStep::Formed { batch_no: b3, .. } = one_at_a_time.step(Utc::now()).await.unwrap()
    else {
        panic!("no batch")
    };
    assert_eq!(app.status_of("A-1").await, "submitted");
    assert_eq!(app.status_of("A-2").await, "batched");
    assert_eq!(app.status_of("A-3").await, "pending");

    // Then a genuine notification for the rejected batch: Alipay held it.
    let base = serve_callback(&app, "http://127.0.0.1:9", false, &stop).await;
    let details = format!(
        "{}^1.00^SUCCESS#{}^1.00^SUCCESS#{}^1.00^SUCCESS",
        trade(1),
        trade(2),
        trade(3)
    );
    let body = signed_body(
        &[
            ("notify_time", "2026-12-04 10:00:00"),
            ("notify_type", "batch_refund_notify"),
            ("notify_id", "late-1"),
            ("batch_no", &b1),
            ("success_num", "3"),
            ("result_details", &details),
        ],
        KEY,
    );
    assert_eq!(
        post(&format!("{base}/alipay/notify"), body).await,
        (200, "success".into())
    );
    let verdict: String =
        sqlx::query_scalar("SELECT verdict FROM notifications WHERE notify_id = 'late-1'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(verdict, "applied_to_rejected");
    // A-3 (pending) and A-2 (in a batch never sent) were taken back and settled from B1.
    assert_eq!(app.status_of("A-3").await, "succeeded");
    assert_eq!(app.status_of("A-2").await, "succeeded");
    let b3_status: String = sqlx::query_scalar("SELECT status FROM batches WHERE batch_no = $1")
        .bind(&b3)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(b3_status, "rejected", "the unsent batch is retired");
    // A-1 was sent again in B2: untouched, and a suspect.
    assert_eq!(app.status_of("A-1").await, "submitted");
    let refund_batch: String =
        sqlx::query_scalar("SELECT batch_no FROM refunds WHERE refund_id = 'A-1'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(refund_batch, b2);
    let suspects: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT refund_id, other_batch FROM double_payment_suspects")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(suspects, [("A-1".to_owned(), Some(b2.clone()))]);
    let (accepted, status): (Option<DateTime<Utc>>, String) =
        sqlx::query_as("SELECT accepted_at, status FROM batches WHERE batch_no = $1")
            .bind(&b1)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(accepted.is_some(), "the 99-refunds count sees it");
    assert_eq!(status, "completed");
    let (_, out, _) = crate::operator::run(&app, &["batch", "show", &b1]);
    assert!(out.contains("ALARM") && out.contains("A-1"), "{out}");
    let events_a2: Vec<serde_json::Value> = app
        .events_of("A-2")
        .await
        .into_iter()
        .map(|(_, e)| e["batch_no"].clone())
        .collect();
    assert_eq!(events_a2, [serde_json::json!(b1)]);
    stop.cancel();
    server.abort();
    app.cleanup().await;
}

#[tokio::test]
async fn a_password_form_batch_past_its_date_is_renumbered_only_after_proven_absence() {
    use refund_worker::reconcile::Step as ReconcileStep;
    let app = TestApp::without_intake(&[]).await;
    let gw = start_sandbox(|c| c.no_nopwd_partners.push(PARTNER.into())).await;
    app.store_events(&[
        event("W-1", &trade(1), r#""1.00""#),
        event("W-2", &trade(2), r#""2.00""#),
    ])
    .await;
    let old = form_batch(&app).await;
    let mut s = submitter(&app, &gw.url, Duration::from_secs(10));
    s.pwd_fallback = true;
    let step = s.step(Utc::now()).await.unwrap();
    assert!(
        matches!(
            step,
            Step::Sent {
                next: Next::AwaitOperator,
                ..
            }
        ),
        "{step:?}"
    );
    let out = crate::cli::worker(&app)
        .env("ALIPAY_GATEWAY", &gw.url)
        .env("ALIPAY_NOTIFY_URL", "http://127.0.0.1:9/alipay/notify")
        .args(["batch", "form", &old])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = reconciler(&app, &gw.url, Duration::from_secs(600));
    // The next Beijing day: the form is past its date, and the operator may
    // have posted it yesterday, so only proven absence moves its refunds.
    let tomorrow = Utc::now() + chrono::Duration::days(1);
    let renumbered_at = tomorrow + chrono::Duration::minutes(61);
    for (mins, moved) in [(0, false), (30, false), (61, true)] {
        due_now(&app).await;
        let step = r
            .step_at(tomorrow + chrono::Duration::minutes(mins))
            .await
            .unwrap();
        assert_eq!(
            matches!(step, ReconcileStep::Renumbered { .. }),
            moved,
            "+{mins}: {step:?}"
        );
    }
    let all = batches(&app).await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0], (old.clone(), "rejected".to_owned()));
    assert_eq!(all[1].1, "awaiting_operator");
    let new = all[1].0.clone();
    // Numbered on the Beijing day of the step that renumbered it (which is
    // the day after tomorrow's when the test runs in Beijing's last hour).
    let renumbered_date = beijing_now(renumbered_at).format("%Y%m%d").to_string();
    assert!(new.starts_with(&renumbered_date), "{new}");
    for id in ["W-1", "W-2"] {
        let (status, batch): (String, String) =
            sqlx::query_as("SELECT status, batch_no FROM refunds WHERE refund_id = $1")
                .bind(id)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        assert_eq!((status.as_str(), batch.as_str()), ("batched", new.as_str()));
    }
    app.cleanup().await;
}
