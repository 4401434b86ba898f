//! The operator page in headless Chromium: refused without the credential,
//! signed in with the token, a dead letter replayed by clicking its button
//! (gone from the queue, the refund stored), and a refund found by id.

use std::sync::Arc;
use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable, LongString};
use refund_worker::admin::{self, AdminState};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::browser::Browser;
use crate::helpers::*;

const TOKEN: &str = "operator-token-0123456789";

async fn serve_admin(app: &TestApp, stop: &CancellationToken) -> String {
    let state = AdminState {
        pool: app.pool.clone(),
        settings: Arc::new(app.settings.clone()),
        token: TOKEN.to_owned().into(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, admin::router(state))
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    });
    format!("http://{addr}")
}

/// A valid refund event sitting in the dead-letter queue, as if it had been
/// refused by an earlier version of the worker.
async fn dead_letter(app: &TestApp, refund_id: &str, message_id: &str) {
    let text = |s: &str| AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()));
    let mut h = FieldTable::default();
    h.insert("x-refund-error-code".into(), text("invalid_amount"));
    h.insert(
        "x-refund-error".into(),
        text("an old rule <b>refused</b> it"),
    );
    h.insert(
        "x-original-exchange".into(),
        text(&app.topology.refunds_exchange),
    );
    h.insert("x-original-routing-key".into(), text("refund.approved"));
    let props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_message_id(message_id.into())
        .with_headers(h);
    app.channel
        .basic_publish(
            app.topology.dead_letter_exchange.as_str().into(),
            "refund.approved".into(),
            BasicPublishOptions::default(),
            &event(refund_id, TRADE, r#""2.00""#),
            props,
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_admin_page_refuses_strangers() {
    let app = TestApp::without_intake(&[]).await;
    let stop = CancellationToken::new();
    let base = serve_admin(&app, &stop).await;
    let http = reqwest::Client::new();
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(
        status(http.get(format!("{base}/")).send().await.unwrap()),
        401
    );
    assert_eq!(
        status(
            http.get(format!("{base}/refunds?id=x"))
                .bearer_auth("wrong-token-000000")
                .send()
                .await
                .unwrap()
        ),
        401
    );
    assert_eq!(
        status(
            http.post(format!("{base}/dlq/replay"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(serde_urlencoded::to_string([("id", "m")]).unwrap())
                .send()
                .await
                .unwrap()
        ),
        401
    );
    // The bearer token works; a changing form without its CSRF field does not.
    assert_eq!(
        status(
            http.get(format!("{base}/"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
        ),
        200
    );
    assert_eq!(
        status(
            http.post(format!("{base}/dlq/replay"))
                .bearer_auth(TOKEN)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(serde_urlencoded::to_string([("id", "m"), ("csrf", "guess")]).unwrap())
                .send()
                .await
                .unwrap()
        ),
        403
    );
    assert_eq!(
        status(
            http.post(format!("{base}/login"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(serde_urlencoded::to_string([("token", "nope")]).unwrap())
                .send()
                .await
                .unwrap()
        ),
        401
    );
    stop.cancel();
    app.cleanup().await;
}

#[tokio::test]
async fn an_operator_signs_in_clicks_replay_and_the_refund_is_stored() {
    let app = TestApp::spawn().await;
    dead_letter(&app, "ADM-1", "msg-adm-1").await;
    let stop = CancellationToken::new();
    let base = serve_admin(&app, &stop).await;
    let browser = Browser::start().await;

    browser.go(&format!("{base}/")).await;
    assert!(browser.source().await.contains("Not signed in"));
    browser.go(&format!("{base}/login")).await;
    browser.type_into("#token", TOKEN).await;
    browser.click("#sign-in").await;
    let page = browser.page_with("refund-worker operations").await;
    assert!(page.contains("refund-worker operations"), "{page}");
    assert!(page.contains("invalid_amount (1)"), "{page}");
    assert!(
        page.contains("an old rule &lt;b&gt;refused&lt;/b&gt; it"),
        "{page}"
    );
    assert!(page.contains("id=\"dead-msg-adm-1\""));

    browser.click("#dead-msg-adm-1 .replay").await;
    let page = browser.page_with("id=\"flash\"").await;
    assert!(page.contains("id=\"flash\""), "{page}");
    assert!(
        !page.contains("id=\"dead-msg-adm-1\""),
        "the dead letter is gone: {page}"
    );
    wait_until(
        "the replayed refund stored",
        Duration::from_secs(30),
        || async { app.refund_count().await == 1 },
    )
    .await;
    assert_eq!(app.ready(&app.topology.dead_queue).await, 0);

    browser.type_into("#refund-id", "ADM-1").await;
    browser.click("#find").await;
    let page = browser.page_with("id=\"status\"").await;
    assert!(page.contains("<td id=\"status\">pending</td>"), "{page}");
    browser.close().await;
    stop.cancel();
    app.cleanup().await;
}
