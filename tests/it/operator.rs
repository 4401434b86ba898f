//! Operator tooling: `refund retry` on each kind of failure, `batch list` and
//! the password form of a batch awaiting an operator, posted to the sandbox.

use std::time::Duration;

use chrono::Utc;
use refund_worker::alipay::wire::form;
use refund_worker::domain::RefundStatus;
use refund_worker::domain::actor::{Actor, Source};
use refund_worker::storage::transitions::{self, Failure};
use refund_worker::submit::Step;
use refund_worker::submit::decide::Next;
use tokio_util::sync::CancellationToken;

use crate::cli::worker;
use crate::gateway::*;
use crate::helpers::*;
use crate::notifications::serve_callback;

async fn fail(app: &TestApp, id: &str, code: &str) {
    let mut conn = app.pool.acquire().await.unwrap();
    let ids = [id];
    let failure = Failure {
        refund_ids: &ids,
        from: RefundStatus::Pending,
        batch_no: None,
        code,
        message: "test",
        source: Source::Worker,
        actor: &Actor::Operator("test".into()),
    };
    assert_eq!(transitions::fail(&mut conn, &failure).await.unwrap(), 1);
}

pub fn run(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    let out = worker(app).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn refund_retry_reopens_failures_that_may_pass_and_refuses_the_rest_with_the_reason() {
    let app = TestApp::without_intake(&[]).await;
    let events: Vec<_> = (1..=5)
        .map(|i| event(&format!("R-{i}"), &trade(i), r#""1.00""#))
        .collect();
    app.store_events(&events).await;
    fail(&app, "R-1", "TXN_RESULT_ACCOUNT_BALANCE_NOT_ENOUGH").await;
    fail(&app, "R-2", "BATCH_REFUND_LOCK_ERROR").await;
    fail(&app, "R-3", "ILLEGAL_PARTNER").await;
    fail(&app, "R-4", "REFUND_TRADE_FEE_ERROR").await;

    let (code, out, _) = run(
        &app,
        &[
            "refund", "retry", "R-1", "R-3", "R-4", "R-5", "nope", "--by", "alice",
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "R-1: failed (TXN_RESULT_ACCOUNT_BALANCE_NOT_ENOUGH) -> pending, by operator:alice"
        ),
        "{out}"
    );
    assert!(
        out.contains("R-4: refused: it failed with REFUND_TRADE_FEE_ERROR, which is final"),
        "{out}"
    );
    assert!(
        out.contains("R-5: refused: it is pending, not failed"),
        "{out}"
    );
    assert!(out.contains("nope: refused: no such refund"), "{out}");
    assert!(out.contains("2 back to pending, 3 refused"), "{out}");
    assert_eq!(app.status_of("R-1").await, "pending");
    assert_eq!(app.status_of("R-3").await, "pending");
    assert_eq!(app.status_of("R-4").await, "failed");

    // Twice on the same refund: the second is refused, nothing changes.
    let (code, out, _) = run(&app, &["refund", "retry", "R-1"]);
    assert_eq!(code, 1);
    assert!(
        out.contains("R-1: refused: it is pending, not failed"),
        "{out}"
    );

    let (code, out, _) = run(
        &app,
        &[
            "refund",
            "retry",
            "--code",
            "BATCH_REFUND_LOCK_ERROR",
            "--since",
            "2020-01-01",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(app.status_of("R-2").await, "pending");
    let (code, _, err) = run(&app, &["refund", "retry", "--code", "X", "--since", "soon"]);
    assert_eq!(code, 2, "{err}");

    let actor: String = sqlx::query_scalar(
        "SELECT actor FROM refund_history WHERE refund_id = 'R-1' AND to_status = 'pending'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(actor, "operator:alice");

    // The reopened refund is paid in a new batch and ends a second time:
    // a new terminal event with its round.
    let gw = start_sandbox(|_| {}).await;
    let stop = CancellationToken::new();
    let base = serve_callback(&app, &gw.url, true, &stop).await;
    form_batch(&app).await;
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
    wait_until("R-1 paid", Duration::from_secs(30), || async {
        app.status_of("R-1").await == "succeeded"
    })
    .await;
    let rounds: Vec<(String, i32)> = sqlx::query_as(
        "SELECT routing_key, round FROM outbox WHERE refund_id = 'R-1' ORDER BY round",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        rounds,
        [("refund.failed".into(), 0), ("refund.succeeded".into(), 1)]
    );
    let events = app.events_of("R-1").await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].0, "refund.failed");
    assert_eq!(events[1].1["retry"], 1);
    assert!(events[0].1.get("retry").is_none());
    let paid = gw.sandbox.as_ref().unwrap().ledger();
    assert_eq!(
        paid.paid_total, "4.00",
        "R-1, R-2, R-3 and R-5 paid once each"
    );
    stop.cancel();
    app.cleanup().await;
}

/// The `name="…" value="…"` pairs of a form's hidden inputs, unescaped.
fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let unescape = |s: &str| {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    };
    html.lines()
        .filter(|l| l.contains("type=\"hidden\""))
        .map(|l| {
            let field = |attr: &str| {
                let start = l.find(&format!("{attr}=\"")).unwrap() + attr.len() + 2;
                let end = start + l[start..].find('"').unwrap();
                unescape(&l[start..end])
            };
            (field("name"), field("value"))
        })
        .collect()
}

#[tokio::test]
async fn a_batch_awaiting_an_operator_gets_a_signed_escaped_form_the_gateway_accepts() {
    let app = TestApp::without_intake(&[]).await;
    let gw = start_sandbox(|c| {
        c.no_nopwd_partners.push(PARTNER.into());
        c.auto_approve_pwd = true;
    })
    .await;
    let stop = CancellationToken::new();
    let base = serve_callback(&app, &gw.url, true, &stop).await;
    let notify_url = format!("{base}/alipay/notify");
    let reason = r#"<script>alert('x')</script> & "退款""#;
    let body = format!(
        r#"{{"refund_id":"W-1","trade_no":"{}","amount":"3.00","reason":{}}}"#,
        trade(1),
        serde_json::to_string(reason).unwrap()
    );
    app.store_events(&[body.into_bytes()]).await;
    let batch_no = form_batch(&app).await;
    let mut s = submitter_notifying(&app, &gw.url, &notify_url, Duration::from_secs(10));
    s.pwd_fallback = true;
    let step = s.step(Utc::now()).await.unwrap();
    assert!(matches!(step, Step::Sent { .. }), "{step:?}");

    let (code, out, _) = run(&app, &["batch", "list", "--awaiting-operator"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with(&batch_no) && out.contains("awaiting_operator"),
        "{out}"
    );

    let cmd = |args: &[&str]| {
        let out = worker(&app)
            .env("ALIPAY_GATEWAY", &gw.url)
            .env("ALIPAY_NOTIFY_URL", &notify_url)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, html, err) = cmd(&["batch", "form", &batch_no]);
    assert_eq!(code, 0, "{err}");
    assert!(html.contains(r#"<meta charset="utf-8">"#));
    assert!(html.contains(&format!(r#"action="{}?_input_charset=UTF-8""#, gw.url)));
    assert!(
        html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>alert"), "the reason must not run");
    let fields = hidden_inputs(&html);
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("batch_no").as_deref(), Some(batch_no.as_str()));
    assert_eq!(
        get("service").as_deref(),
        Some("refund_fastpay_by_platform_pwd")
    );
    assert!(get("detail_data").unwrap().ends_with(reason));

    // What the operator's browser does: post the form to the gateway.
    let posted = reqwest::Client::new()
        .post(format!("{}?_input_charset=UTF-8", gw.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form::encode(&fields))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status().as_u16(), 200);
    wait_until(
        "the refund paid through the normal notification",
        Duration::from_secs(30),
        || async { app.status_of("W-1").await == "succeeded" },
    )
    .await;
    assert_eq!(gw.sandbox.as_ref().unwrap().ledger().paid_total, "3.00");

    // A batch not awaiting an operator has no form.
    let (code, html, err) = cmd(&["batch", "form", &batch_no]);
    assert_eq!((code, html.as_str()), (1, ""));
    assert!(err.contains("is completed, not awaiting_operator"), "{err}");
    stop.cancel();
    app.cleanup().await;
}
