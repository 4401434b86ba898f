//! The outbox relay on the real broker: events published with confirms and
//! `mandatory`, `message_id` = `event_id`, marked published; an unroutable one kept.

use lapin::options::{BasicAckOptions, BasicGetOptions, ConfirmSelectOptions};
use refund_worker::outbox::{Relay, Relayed};

use crate::helpers::*;

async fn write_events(app: &TestApp, n: usize) {
    let events: Vec<_> = (0..n)
        .map(|i| event(&format!("E-{i}"), &trade(i), r#""1.50""#))
        .collect();
    app.store_events(&events).await;
    // Any terminal transition writes an event; the worker's own failure is the simplest.
    let ids: Vec<String> = (0..n).map(|i| format!("E-{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut conn = app.pool.acquire().await.unwrap();
    let failure = refund_worker::storage::batches::Failure {
        refund_ids: &ids,
        from: "pending",
        code: "REFUND_COUNT_EXCEEDED",
        message: "test",
        source: "worker",
        actor: "test",
    };
    refund_worker::storage::batches::fail_refunds(&mut conn, &failure)
        .await
        .unwrap();
}

/// A relay on the test's names and a channel with confirms.
async fn relay_for(app: &TestApp) -> (Relay, lapin::Channel) {
    let relay = Relay {
        pool: app.pool.clone(),
        amqp_url: amqp_url(),
        topology: app.topology.clone(),
    };
    let channel = app.conn.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    (relay, channel)
}

#[tokio::test]
async fn result_events_are_published_once_confirmed_and_marked() {
    let app = TestApp::without_intake(&[]).await;
    write_events(&app, 3).await;
    let (relay, channel) = relay_for(&app).await;
    assert_eq!(
        relay.step(&channel).await.unwrap(),
        Relayed {
            published: 3,
            kept: 0
        }
    );
    assert_eq!(
        relay.step(&channel).await.unwrap(),
        Relayed::default(),
        "nothing twice"
    );

    let queue = app.topology.results_queue.clone().unwrap();
    let mut seen = 0;
    while let Some(m) = app
        .channel
        .basic_get(queue.as_str().into(), BasicGetOptions::default())
        .await
        .unwrap()
    {
        m.delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&m.delivery.data).unwrap();
        assert_eq!(m.delivery.routing_key.as_str(), "refund.failed");
        assert_eq!(
            m.delivery
                .properties
                .message_id()
                .as_ref()
                .map(|s| s.as_str()),
            body["event_id"].as_str()
        );
        assert_eq!(*m.delivery.properties.delivery_mode(), Some(2));
        assert_eq!(body["amount"], "1.50");
        seen += 1;
    }
    assert_eq!(seen, 3);
    let unpublished: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(unpublished, 0);
    app.cleanup().await;
}

#[tokio::test]
async fn an_unroutable_event_is_kept_and_retried_later() {
    let app = TestApp::without_intake(&[("AMQP_RESULTS_QUEUE", "false")]).await;
    write_events(&app, 1).await;
    let (relay, channel) = relay_for(&app).await;
    assert_eq!(
        relay.step(&channel).await.unwrap(),
        Relayed {
            published: 0,
            kept: 1
        }
    );
    let (attempts, waiting): (i32, bool) = sqlx::query_as(
        "SELECT attempts, next_attempt_at > now() FROM outbox WHERE published_at IS NULL",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((attempts, waiting), (1, true));
    assert_eq!(
        relay.step(&channel).await.unwrap(),
        Relayed::default(),
        "not before its retry time"
    );
    app.cleanup().await;
}
