//! The OpenAPI methods over HTTP, on a port-0 sandbox, read with the
//! worker's own readers (`alipay::openapi::{answer, query, push}`).

use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use serde::Serialize;
use serde_json::Value;
use tokio::net::TcpListener;

use super::config::{OpenApiFault, OpenApiFaults};
use super::test_keys::{APP_ID, alipay_public, app_key, config};
use crate::alipay::openapi::answer::{Disposition, Read, RefundAnswer, judge, read};
use crate::alipay::openapi::push::{self, DepositBackPush};
use crate::alipay::openapi::query::{Proof, QueryFields, prove};
use crate::alipay::openapi::request::{QueryBiz, REFUND, REFUND_QUERY, RefundBiz, signed_form};
use crate::alipay::wire::form;
use crate::alipay::wire::notify::NotifyForm;
use crate::sandbox::{LocalGateway, SandboxConfig, start_local};

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// POSTs a signed call; the status and the body.
async fn post<B: Serialize>(gw: &LocalGateway, method: &str, biz: &B) -> (u16, String) {
    let params = signed_form(APP_ID, method, biz, super::test_keys::beijing(), &app_key()).unwrap();
    post_form(gw, &params).await
}

async fn post_form(gw: &LocalGateway, params: &[(String, String)]) -> (u16, String) {
    let response = client()
        .post(&gw.url)
        .header(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded;charset=utf-8",
        )
        .body(form::encode(params))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.text().await.unwrap();
    if status == 200 {
        assert_eq!(content_type.as_deref(), Some(super::answer::CONTENT_TYPE));
    }
    (status, body)
}

/// A refund of `fen` under `R-1` of `trade`: what the worker reads of it.
async fn refund(gw: &LocalGateway, trade: &str, fen: i64) -> (u16, Read) {
    let biz = RefundBiz::new(trade, fen, "r", "R-1".into());
    let (status, body) = post(gw, REFUND, &biz).await;
    (status, read(&body, REFUND, &alipay_public()))
}

fn verified(read: Read) -> RefundAnswer {
    match read {
        Read::Verified { answer, .. } => answer,
        other => panic!("{other:?}"),
    }
}

/// What the worker proves from a query of `R-1` of `trade` for `amount`.
async fn query(gw: &LocalGateway, trade: &str, amount: &str) -> (Proof, QueryFields) {
    let (_, body) = post(gw, REFUND_QUERY, &QueryBiz::new(trade, "R-1")).await;
    let Read::Verified { answer, raw } = read(&body, REFUND_QUERY, &alipay_public()) else {
        panic!("{body}");
    };
    let fields: QueryFields = serde_json::from_str(&raw).unwrap();
    (prove(Some((&answer, &fields)), "R-1", amount), fields)
}

async fn ledger(gw: &LocalGateway) -> Value {
    let url = gw.url.replace("/gateway.do", "/ledger");
    let text = client()
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn a_refund_moves_money_once_a_repeat_moves_none_and_the_query_proves_it() {
    let gw = start_local(config()).await.unwrap();
    assert_eq!(query(&gw, "T1", "10.50").await.0, Proof::NotYet);
    let (status, first) = refund(&gw, "T1", 1050).await;
    assert_eq!(status, 200);
    let first = verified(first);
    assert_eq!(
        judge(Some(&first)),
        Disposition::Refunded { fund_moved: true }
    );
    let again = verified(refund(&gw, "T1", 1050).await.1);
    assert_eq!(
        judge(Some(&again)),
        Disposition::Refunded { fund_moved: false }
    );
    let other = verified(refund(&gw, "T1", 1051).await.1);
    assert_eq!(
        other.sub_code.as_deref(),
        Some("ACQ.DISCORDANT_REPEAT_REQUEST")
    );
    assert_eq!(gw.sandbox.openapi_times_paid("T1", "R-1"), 1);
    let (proof, fields) = query(&gw, "T1", "10.50").await;
    assert_eq!(proof, Proof::Refunded);
    assert_eq!(fields.deposit_back_info, None);

    let books = ledger(&gw).await;
    let oa = &books["openapi"];
    assert_eq!(oa["moved_total"], "10.50");
    assert_eq!(oa["refunds"][0]["times_paid"], 1);
    assert_eq!(oa["refunds"][0]["repeats"], 1);
    assert_eq!(oa["refunds"][0]["amount"], "10.50");
    assert_eq!(oa["calls"]["refund"], 3);
    assert_eq!(oa["calls"]["query"], 2);
    // The mapi books are untouched.
    assert_eq!(books["paid_total_fen"], 0);
    gw.stop.cancel();
}

#[tokio::test]
async fn calls_of_an_unknown_app_or_with_a_bad_signature_are_refused_before_the_books() {
    let gw = start_local(config()).await.unwrap();
    let biz = RefundBiz::new("T1", 100, "r", "R-1".into());
    let mut params = signed_form(
        "2021999999999999",
        REFUND,
        &biz,
        super::test_keys::beijing(),
        &app_key(),
    )
    .unwrap();
    let (_, body) = post_form(&gw, &params).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error_response"]["sub_code"], "isv.invalid-app-id");
    params = signed_form(
        APP_ID,
        REFUND,
        &biz,
        super::test_keys::beijing(),
        &app_key(),
    )
    .unwrap();
    for (k, v) in &mut params {
        if k == "biz_content" {
            *v = v.replace("1.00", "9.00");
        }
    }
    let (_, body) = post_form(&gw, &params).await;
    let answer = verified(read(&body, REFUND, &alipay_public()));
    assert_eq!(answer.sub_code.as_deref(), Some("isv.invalid-signature"));
    assert_eq!(gw.sandbox.openapi_times_paid("T1", "R-1"), 0);
    assert_eq!(ledger(&gw).await["openapi"]["calls"]["refused"], 2);
    gw.stop.cancel();

    // Without a key to answer with, the sandbox knows no app.
    let keyless = SandboxConfig {
        alipay_key: None,
        ..config()
    };
    let gw = start_local(keyless).await.unwrap();
    let (_, body) = post(&gw, REFUND, &biz).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error_response"]["code"], "40002");
    assert_eq!(v["error_response"]["sub_code"], "isv.invalid-app-id");
    gw.stop.cancel();
}

#[tokio::test]
async fn scripted_faults_meet_one_refund_call_each_and_the_money_moves_once() {
    let mut c = config();
    c.openapi_faults = OpenApiFaults::default().with_script(
        "T1",
        [
            OpenApiFault::Http503,
            OpenApiFault::Refuse {
                sub_code: "ACQ.SELLER_BALANCE_NOT_ENOUGH".into(),
            },
            OpenApiFault::UnavailableAfterRefund,
            OpenApiFault::BadSignatureAfterRefund,
        ],
    );
    let gw = start_local(c).await.unwrap();
    let (status, _) = refund(&gw, "T1", 500).await;
    assert_eq!(status, 503);
    let refused = verified(refund(&gw, "T1", 500).await.1);
    assert_eq!(judge(Some(&refused)), Disposition::RetryLater);
    assert_eq!(gw.sandbox.openapi_times_paid("T1", "R-1"), 0);
    // 20000: the worker does not know, but the money moved.
    let unavailable = verified(refund(&gw, "T1", 500).await.1);
    assert_eq!(unavailable.code, "20000");
    assert_eq!(
        unavailable.sub_code.as_deref(),
        Some("aop.ACQ.SYSTEM_ERROR")
    );
    assert_eq!(judge(Some(&unavailable)), Disposition::Unknown);
    assert_eq!(gw.sandbox.openapi_times_paid("T1", "R-1"), 1);
    // A bad signature proves nothing; the resend is a repeat.
    assert!(matches!(
        refund(&gw, "T1", 500).await.1,
        Read::Unverified { .. }
    ));
    let resent = verified(refund(&gw, "T1", 500).await.1);
    assert_eq!(
        judge(Some(&resent)),
        Disposition::Refunded { fund_moved: false }
    );
    assert_eq!(gw.sandbox.openapi_times_paid("T1", "R-1"), 1);
    assert_eq!(ledger(&gw).await["openapi"]["moved_total_fen"], 500);
    gw.stop.cancel();
}

#[tokio::test]
async fn a_time_out_after_refund_holds_the_answer_with_the_money_moved() {
    let mut c = config();
    c.openapi_faults = OpenApiFaults::default().with_script(
        "T1",
        [OpenApiFault::TimeoutAfterRefund {
            hold: Duration::from_secs(3600),
        }],
    );
    let gw = start_local(c).await.unwrap();
    let biz = RefundBiz::new("T1", 500, "r", "R-1".into());
    let params = signed_form(
        APP_ID,
        REFUND,
        &biz,
        super::test_keys::beijing(),
        &app_key(),
    )
    .unwrap();
    let url = gw.url.clone();
    let held = tokio::spawn(async move {
        client()
            .post(url)
            .body(form::encode(&params))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    let mut polls = 0;
    while gw.sandbox.openapi_times_paid("T1", "R-1") == 0 {
        polls += 1;
        assert!(polls < 500, "the refund was never made");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!held.is_finished(), "the answer was not held");
    // Stopping the sandbox ends the hold; the client never saw a success.
    gw.sandbox.stop();
    assert_eq!(held.await.unwrap().unwrap(), 503);
    assert_eq!(gw.sandbox.openapi_times_paid("T1", "R-1"), 1);
    gw.stop.cancel();
}

#[tokio::test]
async fn a_lagging_query_answers_no_data_until_its_lag_is_used_up() {
    let mut c = config();
    c.openapi_faults = OpenApiFaults::default().with_query_lag("T1", 2);
    let gw = start_local(c).await.unwrap();
    verified(refund(&gw, "T1", 250).await.1);
    assert_eq!(query(&gw, "T1", "2.50").await.0, Proof::NotYet);
    assert_eq!(query(&gw, "T1", "2.50").await.0, Proof::NotYet);
    assert_eq!(query(&gw, "T1", "2.50").await.0, Proof::Refunded);
    gw.stop.cancel();
}

/// A receiver that reads each push with the worker's reader and answers `success`.
async fn receiver() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<DepositBackPush>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new()
        .route(
            "/notify",
            axum::routing::post(
                |State(tx): State<tokio::sync::mpsc::UnboundedSender<DepositBackPush>>,
                 body: axum::body::Bytes| async move {
                    let params = form::decode(&body).unwrap();
                    match push::read(&NotifyForm { params }, &alipay_public()) {
                        Ok(p) => {
                            tx.send(p).unwrap();
                            "success".to_owned()
                        }
                        Err(e) => format!("fail: {e}"),
                    }
                },
            ),
        )
        .with_state(tx);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

#[tokio::test]
async fn the_depositback_route_pushes_a_signed_push_the_worker_reads_and_the_query_tells_it() {
    let gw = start_local(config()).await.unwrap();
    let (notify_url, mut pushes) = receiver().await;
    let route = gw
        .url
        .replace("/gateway.do", "/sandbox/openapi/depositback");
    let send = |trade: &'static str, status: &'static str| {
        let (route, notify_url) = (route.clone(), notify_url.clone());
        async move {
            let query = form::encode(&[
                ("trade_no".to_owned(), trade.to_owned()),
                ("out_request_no".to_owned(), "R-1".to_owned()),
                ("status".to_owned(), status.to_owned()),
                ("notify_url".to_owned(), notify_url),
            ]);
            let response = client()
                .post(format!("{route}?{query}"))
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    assert_eq!(send("T1", "S").await.0, 404);
    verified(refund(&gw, "T1", 1050).await.1);
    assert_eq!(send("T1", "P").await.0, 400);
    assert_eq!(send("T1", "S").await, (200, "success".to_owned()));
    let pushed = pushes.recv().await.unwrap();
    assert_eq!(
        (pushed.trade_no.as_str(), pushed.out_request_no.as_str()),
        ("T1", "R-1")
    );
    assert!(pushed.succeeded);
    assert_eq!(pushed.dback_amount.as_deref(), Some("10.50"));
    assert_eq!(pushed.app_id.as_deref(), Some(APP_ID));
    let (proof, fields) = query(&gw, "T1", "10.50").await;
    assert_eq!(proof, Proof::Refunded);
    assert_eq!(
        fields.deposit_back_info.unwrap().dback_status.as_deref(),
        Some("S")
    );
    let books = ledger(&gw).await;
    assert_eq!(books["openapi"]["refunds"][0]["dback_status"], "S");
    assert_eq!(books["openapi"]["calls"]["depositback_pushes"], 1);
    gw.stop.cancel();
}
