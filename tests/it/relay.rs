//! The outbox relay on the real broker: events published with confirms and
//! `mandatory`, `message_id` = `event_id`, marked published; an unroutable one kept.

use std::time::Duration;

use lapin::options::{
    BasicAckOptions, BasicGetOptions, ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use refund_worker::domain::RefundStatus;
use refund_worker::domain::actor::{Actor, Source};
use refund_worker::outbox::{Relay, Relayed};
use tokio_util::sync::CancellationToken;

use crate::helpers::*;
use crate::proxy::Proxy;

async fn write_events(app: &TestApp, n: usize) {
    write_more_events(app, 0, n).await;
}

/// Refunds `E-from` … `E-(from+n-1)`, each failed by the worker with its event.
async fn write_more_events(app: &TestApp, from: usize, n: usize) {
    let events: Vec<_> = (from..from + n)
        .map(|i| event(&format!("E-{i}"), &trade(i), r#""1.50""#))
        .collect();
    app.store_events(&events).await;
    // Any terminal transition writes an event; the worker's own failure is the simplest.
    let ids: Vec<String> = (from..from + n).map(|i| format!("E-{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut conn = app.pool.acquire().await.unwrap();
    let actor = Actor::Operator("test".into());
    let failure = refund_worker::storage::transitions::Failure {
        refund_ids: &ids,
        from: RefundStatus::Pending,
        batch_no: None,
        code: "REFUND_COUNT_EXCEEDED",
        message: "test",
        source: Source::Worker,
        actor: &actor,
    };
    refund_worker::storage::transitions::fail(&mut conn, &failure)
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
    for d in app.take_all(&queue).await {
        let body: serde_json::Value = serde_json::from_slice(&d.data).unwrap();
        assert_eq!(d.routing_key.as_str(), "refund.failed");
        assert_eq!(
            d.properties.message_id().as_ref().map(|s| s.as_str()),
            body["event_id"].as_str()
        );
        assert_eq!(*d.properties.delivery_mode(), Some(2));
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

/// Migration 32: an event written since is stored as facts and goes out as
/// the contract's JSON; one stored as JSON before goes out as it was stored,
/// with the refund's metadata text spliced in as always.
#[tokio::test]
async fn events_stored_as_facts_and_as_json_before_migration_32_both_go_out_whole() {
    let app = TestApp::without_intake(&[]).await;
    write_events(&app, 1).await;
    let old_id = "00000000-0000-4000-8000-0000000000aa";
    sqlx::query(
        "INSERT INTO outbox (event_id, refund_id, routing_key, legacy_body)
         VALUES ($1::uuid, 'E-0', 'refund.bank_returned',
                 jsonb_build_object('event', 'refund.bank_returned', 'event_id', $1::text,
                                    'code', 'S', 'metadata', jsonb_build_object('stale', 1)))",
    )
    .bind(old_id)
    .execute(&app.pool)
    .await
    .unwrap();
    let (relay, channel) = relay_for(&app).await;
    assert_eq!(relay.step(&channel).await.unwrap().published, 2);
    let queue = app.topology.results_queue.clone().unwrap();
    let mut bodies: Vec<serde_json::Value> = app
        .take_all(&queue)
        .await
        .iter()
        .map(|d| serde_json::from_slice(&d.data).unwrap())
        .collect();
    bodies.sort_by_key(|b| b["event_id"] == old_id);
    let [new, old] = &bodies[..] else {
        panic!("two events: {bodies:?}")
    };
    crate::contract::assert_result_event(new);
    assert_eq!(
        (
            &new["event"],
            &new["refund_id"],
            &new["amount"],
            &new["code"]
        ),
        (
            &serde_json::json!("refund.failed"),
            &serde_json::json!("E-0"),
            &serde_json::json!("1.50"),
            &serde_json::json!("REFUND_COUNT_EXCEEDED")
        )
    );
    assert_eq!(new["trade_no"], trade(0));
    assert_eq!(
        *old,
        serde_json::json!({"event": "refund.bank_returned", "event_id": old_id, "code": "S", "metadata": {}})
    );
    // What the tests read through `events_of` is what went out.
    let read: Vec<serde_json::Value> = app
        .events_of("E-0")
        .await
        .into_iter()
        .map(|e| e.1)
        .collect();
    assert!(read.contains(new) && read.contains(old), "{read:?}");
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
    let (attempts, waiting): (i32, bool) =
        sqlx::query_as("SELECT attempts, next_attempt_at > now() FROM outbox_due")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((attempts, waiting), (1, true));
    assert_eq!(
        relay.step(&channel).await.unwrap(),
        Relayed::default(),
        "not before its retry time"
    );

    // A consumer binds a queue; once the retry is due the event goes out.
    let queue = format!("{}.late-consumer", app.topology.results_exchange);
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            queue.as_str().into(),
            app.topology.results_exchange.as_str().into(),
            "refund.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    sqlx::query("UPDATE outbox_due SET next_attempt_at = now()")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        relay.step(&channel).await.unwrap(),
        Relayed {
            published: 1,
            kept: 0
        }
    );
    let got = channel
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap();
    assert!(got.is_some(), "the kept event reached the new queue");
    channel
        .queue_delete(queue.as_str().into(), Default::default())
        .await
        .unwrap();
    app.cleanup().await;
}

/// The broker unreachable while events are pending: the relay keeps them,
/// retries, and publishes every one once the broker is back.
#[tokio::test]
async fn events_pending_while_the_broker_is_away_are_all_published_when_it_returns() {
    let app = TestApp::without_intake(&[]).await;
    let proxy = Proxy::start("127.0.0.1:5672").await.unwrap();
    let relay = Relay {
        pool: app.pool.clone(),
        amqp_url: format!("amqp://guest:guest@{}/%2f", proxy.addr),
        topology: app.topology.clone(),
    };
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(relay.run(shutdown.clone()));
    write_events(&app, 100).await;
    let published = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    wait_for_count(
        "the first 100 published",
        100,
        Duration::from_secs(30),
        published,
    )
    .await;

    proxy.cut();
    write_more_events(&app, 100, 400).await;
    wait_until(
        "the relay tried to reconnect",
        Duration::from_secs(30),
        || async { proxy.refused() >= 1 },
    )
    .await;
    assert!(
        published().await < 500,
        "published through a cut connection"
    );
    proxy.restore();
    wait_for_count("all 500 published", 500, Duration::from_secs(60), published).await;
    shutdown.cancel();
    running.await.unwrap().unwrap();

    let queue = app.topology.results_queue.clone().unwrap();
    let mut seen = std::collections::HashSet::new();
    while let Some(m) = app
        .channel
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        seen.insert(m.properties.message_id().as_ref().unwrap().to_string());
    }
    assert_eq!(
        seen.len(),
        500,
        "every event reached the queue (duplicates allowed)"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn an_event_carries_the_consumer_properties_and_metadata_exactly_as_sent() {
    let app = TestApp::without_intake(&[]).await;
    let metadata = r#"{"zeta": 1, "alpha": 12345678901234567890123, "pi": 3.14159265358979323846264338327950288}"#;
    let body = format!(
        r#"{{"refund_id":"M-1","trade_no":"{}","amount":"2.00","metadata":{metadata}}}"#,
        trade(1)
    );
    app.store_events(&[body.into_bytes()]).await;
    let mut conn = app.pool.acquire().await.unwrap();
    let actor = Actor::Operator("test".into());
    let ids = ["M-1"];
    let failure = refund_worker::storage::transitions::Failure {
        refund_ids: &ids,
        from: RefundStatus::Pending,
        batch_no: None,
        code: "REFUND_COUNT_EXCEEDED",
        message: "test",
        source: Source::Worker,
        actor: &actor,
    };
    refund_worker::storage::transitions::fail(&mut conn, &failure)
        .await
        .unwrap();
    drop(conn);
    let (relay, channel) = relay_for(&app).await;
    assert_eq!(relay.step(&channel).await.unwrap().published, 1);
    let queue = app.topology.results_queue.clone().unwrap();
    let m = app
        .channel
        .basic_get(queue.as_str().into(), BasicGetOptions::default())
        .await
        .unwrap()
        .unwrap();
    m.delivery
        .acker
        .ack(BasicAckOptions::default())
        .await
        .unwrap();
    let text = String::from_utf8(m.delivery.data.clone()).unwrap();
    assert!(
        text.ends_with(&format!(r#""metadata":{metadata}}}"#)),
        "metadata changed on its way: {text}"
    );
    crate::contract::assert_result_event(&serde_json::from_str(&text).unwrap());
    let p = &m.delivery.properties;
    let s = |v: &Option<lapin::types::ShortString>| v.as_ref().map(|s| s.to_string());
    assert_eq!(s(p.kind()).as_deref(), Some("refund.failed"));
    assert_eq!(s(p.correlation_id()).as_deref(), Some("M-1"));
    assert_eq!(s(p.app_id()).as_deref(), Some("refund-worker"));
    assert_eq!(s(p.content_type()).as_deref(), Some("application/json"));
    let now = chrono::Utc::now().timestamp() as u64;
    assert!(p.timestamp().is_some_and(|t| t <= now && t + 60 >= now));
    app.cleanup().await;
}
