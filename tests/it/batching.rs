use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use refund_worker::batching::{Batcher, Step};
use refund_worker::config::BatchSettings;

use crate::helpers::*;

fn batcher(app: &TestApp, max_items: usize) -> Batcher {
    Batcher {
        pool: app.pool.clone(),
        settings: BatchSettings {
            max_items,
            linger: Duration::from_secs(2),
            batch_no_prefix: String::new(),
            openapi_partners: Vec::new(),
        },
    }
}

/// A moment at which every stored refund has lingered long enough.
fn later() -> chrono::DateTime<Utc> {
    Utc::now() + chrono::Duration::seconds(3)
}

#[tokio::test]
async fn pending_refunds_become_one_batch_with_each_trade_once() {
    let app = TestApp::without_intake(&[]).await;
    // Before anything is stored, so nothing can have lingered yet.
    let stored = Utc::now();
    app.store_events(&[
        event("B-1", &trade(1), r#""1.00""#),
        event("B-2", &trade(2), r#""2.50""#),
        event("B-3", &trade(1), r#""3.00""#), // same trade: waits for B-1's result
    ])
    .await;
    let b = batcher(&app, 1000);
    assert!(
        matches!(b.step(stored).await.unwrap(), Step::NotDue(_)),
        "not due before the linger"
    );
    let Step::Formed {
        batch_no,
        items,
        failed,
    } = b.step(later()).await.unwrap()
    else {
        panic!("no batch")
    };
    assert_eq!((items, failed), (2, 0));
    assert_eq!(
        b.step(later()).await.unwrap(),
        Step::Idle,
        "B-3's trade is busy"
    );
    assert_eq!(app.status_of("B-1").await, "batched");
    assert_eq!(app.status_of("B-3").await, "pending");

    let (num, detail, date): (i32, String, String) = sqlx::query_as(
        "SELECT batch_num, detail_data, refund_date FROM batches WHERE batch_no = $1",
    )
    .bind(&batch_no)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(num, 2);
    assert_eq!(
        detail,
        format!("{}^1.00^refund#{}^2.50^refund", trade(1), trade(2))
    );
    assert_eq!(
        &batch_no[..8],
        &date.replace('-', "")[..8],
        "batch_no carries refund_date's Beijing date"
    );
    let view = refund_worker::storage::refunds::find(&app.pool, "B-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        view.history.last().map(|h| h.to_status.as_str()),
        Some("batched")
    );
    assert_eq!(view.batch_no.as_deref(), Some(batch_no.as_str()));
    app.cleanup().await;
}

#[tokio::test]
async fn a_full_batch_is_cut_at_once_and_the_rest_waits_for_its_linger() {
    let app = TestApp::without_intake(&[]).await;
    let events: Vec<_> = (0..25)
        .map(|i| event(&format!("F-{i}"), &trade(i), "1"))
        .collect();
    let stored = Utc::now();
    app.store_events(&events).await;
    let b = batcher(&app, 10);
    for _ in 0..2 {
        assert!(matches!(
            b.step(stored).await.unwrap(),
            Step::Formed { items: 10, .. }
        ));
    }
    assert!(matches!(b.step(stored).await.unwrap(), Step::NotDue(_)));
    let last = b.step(later()).await.unwrap();
    assert!(matches!(last, Step::Formed { items: 5, .. }), "{last:?}");
    app.cleanup().await;
}

#[tokio::test]
async fn two_batchers_at_once_never_take_the_same_refund() {
    let app = TestApp::without_intake(&[]).await;
    let events: Vec<_> = (0..3000)
        .map(|i| event(&format!("C-{i}"), &trade(i), "1"))
        .collect();
    app.store_events(&events).await;
    let run = |b: Batcher| async move {
        let mut formed = Vec::new();
        loop {
            match b.step(later()).await.unwrap() {
                Step::Formed { batch_no, .. } => formed.push(batch_no),
                // The other batcher holds every refund this one picked.
                Step::Contended => {}
                Step::Idle => return formed,
                other => panic!("{other:?}"),
            }
        }
    };
    let (a, b) = tokio::join!(run(batcher(&app, 700)), run(batcher(&app, 700)));
    let all: HashSet<_> = a.iter().chain(&b).collect();
    assert_eq!(all.len(), a.len() + b.len(), "a batch_no was used twice");
    let (items, distinct, biggest): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT refund_id), max(n) FROM batch_items
         JOIN (SELECT batch_no, count(*) AS n FROM batch_items GROUP BY batch_no) s USING (batch_no)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((items, distinct), (3000, 3000));
    assert!(biggest <= 700);
    app.cleanup().await;
}

#[tokio::test]
async fn a_trades_100th_refund_fails_without_asking_alipay() {
    let app = TestApp::without_intake(&[]).await;
    let t = trade(42);
    // 99 accepted batches already hold a refund of this trade.
    for i in 0..99 {
        let id = format!("OLD-{i}");
        app.store_events(&[event(&id, &t, "0.01")]).await;
        let no = format!("20261125{i:012}");
        sqlx::query(
            "WITH b AS (INSERT INTO batches (batch_no, partner, status, refund_date, batch_num, detail_data, accepted_at)
                        VALUES ($1, $2, 'completed', '2026-11-25 08:00:00', 1, 'x', now()))
             INSERT INTO batch_items (batch_no, refund_id, trade_no, amount_fen, reason) VALUES ($1, $3, $4, 1, 'r')",
        )
        .bind(&no)
        .bind(PARTNER)
        .bind(&id)
        .bind(&t)
        .execute(&app.pool)
        .await
        .unwrap();
        sqlx::query(
            "UPDATE refunds SET status = 'succeeded', finished_at = now() WHERE refund_id = $1",
        )
        .bind(&id)
        .execute(&app.pool)
        .await
        .unwrap();
    }
    app.store_events(&[event("R-100", &t, r#""5.00""#)]).await;
    assert_eq!(
        batcher(&app, 1000).step(later()).await.unwrap(),
        Step::FailedOnly { failed: 1 }
    );
    assert_eq!(app.status_of("R-100").await, "failed");
    let body = app.event_of("R-100", |key| key == "refund.failed").await;
    assert_eq!(body["event"], "refund.failed");
    assert_eq!(body["status"], "failed");
    assert_eq!(body["code"], "REFUND_COUNT_EXCEEDED");
    assert_eq!(body["source"], "worker");
    assert_eq!(body["amount"], "5.00");
    assert_eq!(body["batch_no"], serde_json::Value::Null);
    assert_eq!(body["metadata"], serde_json::json!({}));
    assert!(body["event_id"].as_str().is_some_and(|id| id.len() == 36));
    app.cleanup().await;
}

#[tokio::test]
async fn twenty_five_hundred_refunds_make_batches_of_1000_1000_and_500() {
    let app = TestApp::without_intake(&[]).await;
    let events: Vec<_> = (0..2500)
        .map(|i| event(&format!("G-{i}"), &trade(i), "1"))
        .collect();
    app.store_events(&events).await;
    let b = batcher(&app, 1000);
    let mut sizes = Vec::new();
    while let Step::Formed { items, .. } = b.step(later()).await.unwrap() {
        sizes.push(items);
    }
    assert_eq!(sizes, [1000, 1000, 500]);
    app.cleanup().await;
}

#[tokio::test]
async fn three_refunds_of_one_trade_go_in_three_batches_each_after_the_previous_result() {
    let app = TestApp::without_intake(&[]).await;
    let t = trade(5);
    app.store_events(&[
        event("W-1", &t, "1"),
        event("W-2", &t, "2"),
        event("W-3", &t, "3"),
    ])
    .await;
    let b = batcher(&app, 1000);
    for id in ["W-1", "W-2", "W-3"] {
        assert!(matches!(
            b.step(later()).await.unwrap(),
            Step::Formed { items: 1, .. }
        ));
        assert_eq!(app.status_of(id).await, "batched");
        assert_eq!(
            b.step(later()).await.unwrap(),
            Step::Idle,
            "the trade is busy until {id} has its result"
        );
        // Its result arrives (the notification path, written here directly).
        sqlx::query(
            "UPDATE refunds SET status = 'succeeded', finished_at = now() WHERE refund_id = $1",
        )
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    }
    app.cleanup().await;
}
