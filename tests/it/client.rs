//! The gateway client against stubs that misbehave the ways networks do.

use std::time::Duration;

use chrono::Utc;
use refund_worker::alipay::client::AlipayClient;
use refund_worker::alipay::disposition::Disposition;
use refund_worker::alipay::wire::batch_no::beijing_now;
use refund_worker::alipay::wire::detail::BatchItem;
use refund_worker::alipay::wire::request::NopwdRequest;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use crate::helpers::{KEY, PARTNER, TRADE};

pub fn one_item_request(serial: &str) -> NopwdRequest {
    let now = beijing_now(Utc::now());
    NopwdRequest {
        partner: PARTNER.into(),
        notify_url: "http://127.0.0.1:9/alipay/notify".into(),
        dback_notify_url: None,
        batch_no: format!("{}{serial}", now.format("%Y%m%d")),
        refund_date: now,
        items: vec![BatchItem {
            trade_no: TRADE.into(),
            amount_fen: 1050,
            reason: "退款".into(),
        }],
    }
}

async fn submit_to(addr: std::net::SocketAddr, timeout: Duration) -> (Disposition, Option<String>) {
    let client = AlipayClient::new(&format!("http://{addr}/gateway.do"), timeout).unwrap();
    let s = client.submit(&one_item_request("0001"), KEY).await;
    (s.verdict.disposition, s.verdict.code)
}

#[tokio::test]
async fn a_gateway_that_never_answers_is_an_unknown_outcome_after_the_time_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        // Keep the connection open and silent until the test ends.
        std::future::pending::<()>().await;
        drop(socket);
    });
    let verdict = submit_to(addr, Duration::from_millis(300)).await;
    assert_eq!(
        verdict,
        (Disposition::OutcomeUnknown, Some("TIMEOUT".into()))
    );
    hold.abort();
}

#[tokio::test]
async fn a_connection_closed_after_the_request_is_an_unknown_outcome() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = socket.read(&mut buf).await;
        drop(socket); // the request arrived; no answer ever comes
    });
    let verdict = submit_to(addr, Duration::from_secs(10)).await;
    assert_eq!(
        verdict,
        (Disposition::OutcomeUnknown, Some("BROKEN".into()))
    );
}

#[tokio::test]
async fn a_refused_connection_is_still_only_an_unknown_outcome() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let verdict = submit_to(addr, Duration::from_secs(10)).await;
    assert_eq!(
        verdict,
        (Disposition::OutcomeUnknown, Some("CONNECT".into()))
    );
}

#[tokio::test]
async fn any_status_but_200_is_an_unknown_outcome_never_a_refusal() {
    use axum::http::StatusCode;
    for (status, expected) in [
        (
            StatusCode::SERVICE_UNAVAILABLE,
            (Disposition::OutcomeUnknown, Some("HTTP_503".to_owned())),
        ),
        (
            StatusCode::NOT_FOUND,
            (Disposition::OutcomeUnknown, Some("HTTP_404".to_owned())),
        ),
        (
            StatusCode::TOO_MANY_REQUESTS,
            (Disposition::OutcomeUnknown, Some("HTTP_429".to_owned())),
        ),
        (
            StatusCode::FORBIDDEN,
            (Disposition::OutcomeUnknown, Some("HTTP_403".to_owned())),
        ),
    ] {
        let app = axum::Router::new().fallback(move || async move { (status, "no") });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        assert_eq!(submit_to(addr, Duration::from_secs(10)).await, expected);
        server.abort();
    }
}
