//! The OpenAPI channel end to end against the sandbox: one
//! `alipay.trade.refund` per refund, every unknown outcome settled once with
//! the same `out_request_no`, the query, the 充退 push; paid once throughout.

use std::sync::Arc;
use std::time::Duration;

use refund_worker::alipay::client::AlipayClient;
use refund_worker::alipay::openapi::sign::{AlipayPublicKey, AppKey};
use refund_worker::callback::{self, CallbackState};
use refund_worker::config::OpenApiApp;
use refund_worker::openapi_submit::OpenApiSubmitter;
use refund_worker::openapi_submit::client::OpenApiClient;
use refund_worker::openapi_submit::decide::Rules;
use refund_worker::sandbox::{self, OpenApiFault, OpenApiFaults};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::gateway::{Gateway, start_sandbox};
use crate::helpers::*;

const OA_PARTNER: &str = "2088000000000009";
const APP_ID: &str = "2021000000000001";

fn pem(name: &str) -> String {
    let path = format!("{}/deploy/sandbox-keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}

fn app_config() -> OpenApiApp {
    OpenApiApp {
        partner: OA_PARTNER.into(),
        app_id: APP_ID.into(),
        key: Arc::new(AppKey::parse(&pem("app-private.pem")).unwrap()),
        alipay_public: AlipayPublicKey::parse(&pem("alipay-public.pem")).unwrap(),
    }
}

/// Fast rules: unknown outcomes come round in milliseconds.
fn rules(give_up: Duration) -> Rules {
    let mut item_retry = refund_worker::config::Settings::from_source(
        &refund_worker::config::Source::new(Default::default(), None).unwrap(),
    )
    .unwrap()
    .item_retry;
    item_retry.base = Duration::from_millis(5);
    item_retry.limit = 3;
    Rules {
        retry_base: Duration::from_millis(5),
        retry_cap: Duration::from_millis(20),
        give_up,
        query_after: Duration::ZERO,
        item_retry,
    }
}

struct Channel {
    app: TestApp,
    gateway: Gateway,
    submitter: OpenApiSubmitter,
}

async fn channel(faults: OpenApiFaults, give_up: Duration) -> Channel {
    let mut app = TestApp::without_intake(&[]).await;
    let oa = app_config();
    app.settings.alipay.openapi.apps.push(oa.clone());
    app.settings.batch.openapi_partners.push(OA_PARTNER.into());
    let app_public = oa.key.public_key();
    let gateway = start_sandbox(move |c| {
        c.openapi_apps = vec![sandbox::OpenApiApp {
            app_id: APP_ID.into(),
            partner: OA_PARTNER.into(),
            app_public,
        }];
        c.alipay_key = Some(Arc::new(AppKey::parse(&pem("alipay-private.pem")).unwrap()));
        c.openapi_faults = faults;
    })
    .await;
    let timeout = Duration::from_millis(500);
    let client = OpenApiClient::new(&gateway.url, timeout).unwrap();
    let submitter = OpenApiSubmitter::new(
        app.pool.clone(),
        client,
        vec![oa],
        rules(give_up),
        4,
        1000,
        timeout,
    );
    Channel {
        app,
        gateway,
        submitter,
    }
}

fn oa_event(refund_id: &str, trade_no: &str, amount: &str) -> Vec<u8> {
    format!(
        r#"{{"refund_id":"{refund_id}","trade_no":"{trade_no}","amount":{amount},"partner":"{OA_PARTNER}"}}"#
    )
    .into_bytes()
}

impl Channel {
    /// Steps the submitter until every refund named is terminal.
    async fn settle(&self, ids: &[&str]) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            self.submitter.step().await.unwrap();
            let mut open = 0;
            for id in ids {
                let status = self.app.status_of(id).await;
                if status != "succeeded" && status != "failed" {
                    open += 1;
                }
            }
            if open == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{open} refunds still open"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn times_paid(&self, trade_no: &str, out_request_no: &str) -> u32 {
        self.gateway
            .sandbox
            .as_ref()
            .unwrap()
            .openapi_times_paid(trade_no, out_request_no)
    }

    async fn event(&self, refund_id: &str) -> serde_json::Value {
        let body = self
            .app
            .event_of(refund_id, |key| key != "refund.bank_returned")
            .await;
        crate::contract::assert_result_event(&body);
        body
    }

    async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_refund_is_paid_by_one_call_and_its_event_names_the_channel() {
    let c = channel(OpenApiFaults::default(), Duration::from_secs(600)).await;
    let t = trade(1);
    c.app
        .store_events(&[oa_event("OA-1", &t, "\"10.50\"")])
        .await;
    // The batcher leaves OpenAPI partners alone.
    let batcher = refund_worker::batching::Batcher {
        pool: c.app.pool.clone(),
        settings: refund_worker::config::BatchSettings {
            linger: Duration::ZERO,
            ..c.app.settings.batch.clone()
        },
    };
    let batched = batcher.step(chrono::Utc::now()).await.unwrap();
    assert!(
        matches!(batched, refund_worker::batching::Step::Idle),
        "{batched:?}"
    );
    c.settle(&["OA-1"]).await;
    assert_eq!(c.app.status_of("OA-1").await, "succeeded");
    assert_eq!(c.times_paid(&t, "OA-1"), 1);
    let e = c.event("OA-1").await;
    assert_eq!(e["event"], "refund.succeeded");
    assert_eq!(e["channel"], "openapi");
    assert_eq!(e["out_request_no"], "OA-1");
    assert_eq!(e["batch_no"], serde_json::Value::Null);
    assert_eq!(e["code"], "SUCCESS");
    assert_eq!(e["source"], "submit");
    assert_eq!(e["amount"], "10.50");
    assert_eq!(c.count("SELECT count(*) FROM batches").await, 0);
    assert_eq!(c.count("SELECT count(*) FROM openapi_answers").await, 1);
    c.app.cleanup().await;
}

#[tokio::test]
async fn every_unknown_outcome_is_settled_by_the_same_number_and_paid_once() {
    let (t1, t2, t3, t4) = (trade(1), trade(2), trade(3), trade(4));
    let faults = OpenApiFaults::default()
        .with_script(
            &t1,
            [OpenApiFault::TimeoutAfterRefund {
                hold: Duration::from_secs(3),
            }],
        )
        .with_script(&t2, [OpenApiFault::UnavailableAfterRefund])
        .with_script(&t3, [OpenApiFault::BadSignatureAfterRefund])
        .with_script(&t4, [OpenApiFault::Http503, OpenApiFault::Http503]);
    let c = channel(faults, Duration::from_secs(600)).await;
    let events = [
        oa_event("U-1", &t1, "1"),
        oa_event("U-2", &t2, "2"),
        oa_event("U-3", &t3, "3"),
        oa_event("U-4", &t4, "4"),
    ];
    c.app.store_events(&events).await;
    c.settle(&["U-1", "U-2", "U-3", "U-4"]).await;
    for (id, t) in [("U-1", &t1), ("U-2", &t2), ("U-3", &t3), ("U-4", &t4)] {
        assert_eq!(c.app.status_of(id).await, "succeeded", "{id}");
        assert_eq!(c.times_paid(t, id), 1, "{id} paid once");
        assert_eq!(c.event(id).await["source"], "submit");
    }
    // Each of the first three was answered twice under one number: the
    // second time fund_change N.
    let numbers = c
        .count("SELECT count(DISTINCT out_request_no) FROM openapi_requests")
        .await;
    assert_eq!(numbers, 4);
    let unverified = c
        .count("SELECT count(*) FROM openapi_answers WHERE disposition = 'unverified'")
        .await;
    assert_eq!(unverified, 1);
    c.app.cleanup().await;
}

#[tokio::test]
async fn a_passing_code_waits_then_succeeds_and_a_final_code_fails_the_refund() {
    let (t1, t2) = (trade(1), trade(2));
    let balance = OpenApiFault::Refuse {
        sub_code: "ACQ.SELLER_BALANCE_NOT_ENOUGH".into(),
    };
    let finished = OpenApiFault::Refuse {
        sub_code: "ACQ.TRADE_HAS_FINISHED".into(),
    };
    let faults = OpenApiFaults::default()
        .with_script(&t1, [balance.clone(), balance])
        .with_script(&t2, [finished]);
    let c = channel(faults, Duration::from_secs(600)).await;
    c.app
        .store_events(&[oa_event("B-1", &t1, "5"), oa_event("F-1", &t2, "6")])
        .await;
    c.settle(&["B-1", "F-1"]).await;
    assert_eq!(c.app.status_of("B-1").await, "succeeded");
    assert_eq!(c.times_paid(&t1, "B-1"), 1);
    let retries: i32 =
        sqlx::query_scalar("SELECT item_retries FROM refunds WHERE refund_id = 'B-1'")
            .fetch_one(&c.app.pool)
            .await
            .unwrap();
    assert_eq!(retries, 2);
    assert_eq!(c.app.status_of("F-1").await, "failed");
    assert_eq!(c.times_paid(&t2, "F-1"), 0);
    let e = c.event("F-1").await;
    assert_eq!(
        (e["code"].as_str(), e["source"].as_str()),
        (Some("ACQ.TRADE_HAS_FINISHED"), Some("submit"))
    );
    c.app.cleanup().await;
}

#[tokio::test]
async fn past_the_give_up_age_the_query_settles_and_a_lagging_query_sends_the_same_number_again() {
    let (t1, t2) = (trade(1), trade(2));
    let faults = OpenApiFaults::default()
        .with_script(&t1, [OpenApiFault::UnavailableAfterRefund])
        .with_script(&t2, [OpenApiFault::UnavailableAfterRefund])
        .with_query_lag(&t2, 1);
    let c = channel(faults, Duration::ZERO).await;
    c.app
        .store_events(&[oa_event("Q-1", &t1, "7"), oa_event("Q-2", &t2, "8")])
        .await;
    c.settle(&["Q-1", "Q-2"]).await;
    assert_eq!(c.event("Q-1").await["source"], "query");
    // The query lagged (no data): the same number again, answered fund_change N.
    assert_eq!(c.event("Q-2").await["source"], "submit");
    assert_eq!(c.times_paid(&t1, "Q-1"), 1);
    assert_eq!(c.times_paid(&t2, "Q-2"), 1);
    let not_yet = c
        .count("SELECT count(*) FROM openapi_answers WHERE disposition = 'not_yet'")
        .await;
    assert_eq!(not_yet, 1);
    c.app.cleanup().await;
}

#[tokio::test]
async fn a_worker_killed_between_the_call_and_its_commit_is_followed_by_the_same_number() {
    let t = trade(1);
    // The sandbox makes the refund, then holds its answer: the worker is
    // killed while it waits, before it can record anything.
    let faults = OpenApiFaults::default().with_script(
        &t,
        [OpenApiFault::TimeoutAfterRefund {
            hold: Duration::from_secs(30),
        }],
    );
    let c = channel(faults, Duration::from_secs(600)).await;
    c.app.store_events(&[oa_event("K-1", &t, "9")]).await;
    let patient = OpenApiSubmitter::new(
        c.app.pool.clone(),
        OpenApiClient::new(&c.gateway.url, Duration::from_secs(60)).unwrap(),
        vec![app_config()],
        rules(Duration::from_secs(600)),
        1,
        1000,
        Duration::from_secs(60),
    );
    let killed = tokio::spawn(async move { patient.step().await });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while c.times_paid(&t, "K-1") == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the call never arrived"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    killed.abort();
    assert!(killed.await.unwrap_err().is_cancelled());
    assert_eq!(c.app.status_of("K-1").await, "submitted");
    assert_eq!(c.count("SELECT count(*) FROM openapi_answers").await, 0);
    // Its lease (the call's time-out and a margin) runs out.
    sqlx::query("UPDATE openapi_requests SET next_at = now() WHERE refund_id = 'K-1'")
        .execute(&c.app.pool)
        .await
        .unwrap();
    c.settle(&["K-1"]).await;
    assert_eq!(c.app.status_of("K-1").await, "succeeded");
    assert_eq!(c.times_paid(&t, "K-1"), 1, "the resend moved no money");
    assert_eq!(
        c.count("SELECT count(*) FROM outbox WHERE refund_id = 'K-1'")
            .await,
        1
    );
    c.app.cleanup().await;
}

async fn post_form(
    http: &reqwest::Client,
    url: &str,
    form: &[(String, String)],
) -> reqwest::Response {
    http.post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap())
        .send()
        .await
        .unwrap()
}

async fn serve_callback(c: &Channel, stop: &CancellationToken) -> String {
    let state = CallbackState {
        pool: c.app.pool.clone(),
        client: AlipayClient::new(&c.gateway.url, Duration::from_secs(5)).unwrap(),
        partners: c.app.settings.alipay.partners.clone(),
        verify_notify_id: false,
        item_retry: c.app.settings.item_retry,
        openapi_apps: c.app.settings.alipay.openapi.apps.clone(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, callback::router(state))
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    });
    url
}

#[tokio::test]
async fn a_depositback_push_becomes_bank_returned_and_forged_or_unknown_pushes_change_nothing() {
    let c = channel(OpenApiFaults::default(), Duration::from_secs(600)).await;
    let t = trade(1);
    c.app.store_events(&[oa_event("D-1", &t, "10")]).await;
    c.settle(&["D-1"]).await;
    let stop = CancellationToken::new();
    let base = serve_callback(&c, &stop).await;
    let notify_url = format!("{base}/alipay/openapi-notify");
    let http = reqwest::Client::new();
    let sandbox_base = c.gateway.url.trim_end_matches("/gateway.do");

    // Forged: signed with the app's key, not Alipay's.
    let facts = sandbox::openapi::DepositBackFacts {
        app_id: APP_ID.into(),
        trade_no: t.clone(),
        out_trade_no: "O-1".into(),
        out_request_no: "D-1".into(),
        status: "S".into(),
        amount_fen: 1000,
    };
    let forged = sandbox::depositback_form(
        &facts,
        "n-forged",
        chrono::Utc::now(),
        &AppKey::parse(&pem("app-private.pem")).unwrap(),
    )
    .unwrap();
    let r = post_form(&http, &notify_url, &forged).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.text().await.unwrap(), "fail");
    // Genuine, but about a request we never sent.
    let alipay = AppKey::parse(&pem("alipay-private.pem")).unwrap();
    let stranger = sandbox::openapi::DepositBackFacts {
        out_request_no: "NOBODY".into(),
        ..facts.clone()
    };
    let unknown = sandbox::depositback_form(&stranger, "n-x", chrono::Utc::now(), &alipay).unwrap();
    let r = post_form(&http, &notify_url, &unknown).await;
    assert_eq!(r.status(), 404);
    let bank_events = "SELECT count(*) FROM outbox WHERE routing_key = 'refund.bank_returned'";
    assert_eq!(c.count(bank_events).await, 0);

    // The sandbox's own push, twice: one event.
    for _ in 0..2 {
        let r = http
            .post(format!(
                "{sandbox_base}/sandbox/openapi/depositback?{}",
                serde_urlencoded::to_string([
                    ("trade_no", t.as_str()),
                    ("out_request_no", "D-1"),
                    ("status", "S"),
                    ("notify_url", notify_url.as_str()),
                ])
                .unwrap()
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "success");
    }
    assert_eq!(c.count(bank_events).await, 1);
    let holder: String = sqlx::query_scalar(
        "SELECT refund_id FROM outbox WHERE routing_key = 'refund.bank_returned'",
    )
    .fetch_one(&c.app.pool)
    .await
    .unwrap();
    let body = c
        .app
        .event_of(&holder, |key| key == "refund.bank_returned")
        .await;
    assert_eq!(body["status"], "bank_succeeded");
    assert_eq!(body["channel"], "openapi");
    assert_eq!(body["source"], "notify");
    let verdicts: Vec<String> = sqlx::query_scalar(
        "SELECT verdict FROM notifications WHERE kind = 'openapi_dback' ORDER BY id",
    )
    .fetch_all(&c.app.pool)
    .await
    .unwrap();
    assert_eq!(verdicts, ["forged", "unknown_refund", "applied", "repeat"]);
    stop.cancel();
    c.app.cleanup().await;
}

#[tokio::test]
async fn a_held_request_waits_for_a_person_and_a_retried_refund_gets_a_new_number() {
    use refund_worker::domain::actor::Actor;
    use refund_worker::storage::settlements::{Settled, Settlement};
    let (t1, t2) = (trade(1), trade(2));
    let refuse = |sub_code: &str| OpenApiFault::Refuse {
        sub_code: sub_code.into(),
    };
    let faults = OpenApiFaults::default()
        .with_script(&t1, [refuse("ACQ.DISCORDANT_REPEAT_REQUEST")])
        .with_script(&t2, vec![refuse("ACQ.SELLER_BALANCE_NOT_ENOUGH"); 4]);
    let c = channel(faults, Duration::from_secs(600)).await;
    c.app
        .store_events(&[oa_event("H-1", &t1, "3"), oa_event("R-1", &t2, "4")])
        .await;
    c.settle(&["R-1"]).await;
    let held =
        "SELECT count(*) FROM openapi_requests WHERE held_at IS NOT NULL AND settled_at IS NULL";
    wait_for_count("the request held", 1, Duration::from_secs(10), || async {
        c.submitter.step().await.unwrap();
        c.count(held).await
    })
    .await;
    // Held: no further call goes out for it, however often the worker steps.
    for _ in 0..3 {
        c.submitter.step().await.unwrap();
    }
    assert_eq!(c.app.status_of("H-1").await, "submitted");
    let calls = "SELECT count(*) FROM openapi_answers WHERE refund_id = 'H-1'";
    assert_eq!(c.count(calls).await, 1);
    let settled = refund_worker::storage::openapi::settle_held(
        &c.app.pool,
        "H-1",
        &Settlement::Succeeded,
        "the account shows the refund",
        "alice",
    )
    .await
    .unwrap();
    assert_eq!(
        settled,
        Some(Settled::DoneRequest {
            out_request_no: "H-1".into()
        })
    );
    let e = c.event("H-1").await;
    assert_eq!(
        (e["status"].as_str(), e["source"].as_str()),
        (Some("succeeded"), Some("operator"))
    );

    // A refund that failed past the item-retry limit (3 waits), retried by
    // an operator: a new number, since the first failed for good.
    assert_eq!(c.app.status_of("R-1").await, "failed");
    let retried = refund_worker::storage::retries::retry(
        &c.app.pool,
        "R-1",
        &Actor::Operator("bob".into()),
        &[],
    )
    .await
    .unwrap();
    assert!(
        format!("{retried:?}").starts_with("Reopened"),
        "{retried:?}"
    );
    c.settle(&["R-1"]).await;
    assert_eq!(c.app.status_of("R-1").await, "succeeded");
    assert_eq!(c.times_paid(&t2, "R-1"), 0);
    assert_eq!(c.times_paid(&t2, "R-1~1"), 1);
    let body = c.app.event_of("R-1", |key| key == "refund.succeeded").await;
    assert_eq!(
        (body["out_request_no"].as_str(), body["retry"].as_i64()),
        (Some("R-1~1"), Some(1))
    );
    c.app.cleanup().await;
}
