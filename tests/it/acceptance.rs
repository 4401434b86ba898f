//! A batch's acceptance written once, on the batch (migration 30): its
//! `batched` refunds read `submitted`, never go back to pending, are settled
//! from either stored form, and a worker that does not know the rule cannot
//! write.

use std::time::Duration;

use refund_worker::domain::RefundStatus;
use refund_worker::domain::actor::{Actor, Source};
use refund_worker::storage::{settlements, submissions, transitions};
use sqlx::{Connection, PgConnection};

use crate::gateway::form_batch;
use crate::helpers::*;
use crate::notifications::count;

/// Two refunds in one batch, not yet sent.
async fn two_in_a_batch(app: &TestApp) -> String {
    app.store_events(&[
        event("A-1", &trade(1), r#""1.00""#),
        event("A-2", &trade(2), r#""2.50""#),
    ])
    .await;
    form_batch(app).await
}

async fn stored_status(app: &TestApp, refund_id: &str) -> String {
    sqlx::query_scalar("SELECT status FROM refunds WHERE refund_id = $1")
        .bind(refund_id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// How many history sets record the batch's move `from` → `to`.
async fn sets(app: &TestApp, batch_no: &str, from: &str, to: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM refund_history_sets
         WHERE batch_no = $1 AND from_status = $2 AND to_status = $3",
    )
    .bind(batch_no)
    .bind(from)
    .bind(to)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_accepted_batch_s_refunds_read_submitted_without_a_write_each_and_never_go_back() {
    let app = TestApp::without_intake(&[]).await;
    let batch_no = two_in_a_batch(&app).await;
    let mut conn = app.pool.acquire().await.unwrap();
    submissions::mark_submitted(&mut conn, &batch_no, Some("T"))
        .await
        .unwrap();
    // Accepted twice (the answer, then a report): one history set.
    submissions::mark_submitted(&mut conn, &batch_no, Some("T"))
        .await
        .unwrap();
    assert_eq!(app.status_of("A-1").await, "submitted");
    assert_eq!(stored_status(&app, "A-1").await, "batched");
    assert_eq!(sets(&app, &batch_no, "batched", "submitted").await, 1);
    let view = refund_worker::storage::refunds::find(&app.pool, "A-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.status, "submitted");

    // Every way back to pending, or to failed as if unsent, moves nothing.
    let actor = Actor::Operator("test".into());
    let back = transitions::batch_to_pending(&mut conn, &batch_no, None, None, &actor, "test")
        .await
        .unwrap();
    assert_eq!(back, 0);
    let ids = ["A-1", "A-2"];
    let as_unsent = transitions::Failure {
        refund_ids: &ids,
        from: RefundStatus::Batched,
        batch_no: Some(&batch_no),
        code: "TRADE_NOT_EXIST",
        message: "test",
        source: Source::Submit,
        actor: &actor,
    };
    assert_eq!(transitions::fail(&mut conn, &as_unsent).await.unwrap(), 0);
    let later = [transitions::Later {
        refund_id: "A-1",
        code: "SYSTEM_ERROR",
        wait: Duration::ZERO,
    }];
    let unsent = RefundStatus::Batched;
    let moved =
        transitions::pending_later(&mut conn, Some(&batch_no), unsent, &later, &actor, None)
            .await
            .unwrap();
    assert_eq!(moved, 0);
    submissions::reject(&mut conn, &batch_no, Some("TEST"))
        .await
        .unwrap();
    assert_eq!(app.status_of("A-1").await, "submitted");
    assert_eq!(app.status_of("A-2").await, "submitted");
    let released = settlements::release(&app.pool, &batch_no, "test", "test")
        .await
        .unwrap();
    assert!(
        matches!(released, settlements::Released::Refused(_)),
        "{released:?}"
    );

    // Settled from the stored `batched`: paid, with its event.
    let paid = ["A-1".to_owned()];
    let n = transitions::succeed(
        &mut conn,
        Some(&batch_no),
        &paid,
        Source::Notify,
        &actor,
        None,
    )
    .await
    .unwrap();
    assert_eq!(n, 1);
    let reported = ["A-2"];
    let failed = transitions::Failure {
        refund_ids: &reported,
        from: RefundStatus::Submitted,
        batch_no: Some(&batch_no),
        code: "TRADE_HAS_CLOSED",
        message: "test",
        source: Source::Notify,
        actor: &actor,
    };
    assert_eq!(transitions::fail(&mut conn, &failed).await.unwrap(), 1);
    assert_eq!(app.status_of("A-1").await, "succeeded");
    assert_eq!(app.status_of("A-2").await, "failed");
    assert_eq!(count(&app, "SELECT count(*) FROM outbox").await, 2);
    drop(conn);
    app.cleanup().await;
}

#[tokio::test]
async fn an_unaccepted_batch_s_refunds_still_go_back_to_pending() {
    let app = TestApp::without_intake(&[]).await;
    let batch_no = two_in_a_batch(&app).await;
    let mut conn = app.pool.acquire().await.unwrap();
    submissions::reject(&mut conn, &batch_no, Some("TEST"))
        .await
        .unwrap();
    assert_eq!(app.status_of("A-1").await, "pending");
    assert_eq!(app.status_of("A-2").await, "pending");
    drop(conn);
    app.cleanup().await;
}

/// The race the old per-refund write closed by row locks: a move back to
/// pending that starts while an acceptance is being written waits for it
/// (the batch's row lock) and then moves nothing.
#[tokio::test]
async fn a_move_back_to_pending_waits_out_an_acceptance_being_written_and_moves_nothing() {
    let app = TestApp::without_intake(&[]).await;
    let batch_no = two_in_a_batch(&app).await;
    let mut accepting = app.pool.begin().await.unwrap();
    submissions::mark_submitted(&mut accepting, &batch_no, Some("T"))
        .await
        .unwrap();

    let pool = app.pool.clone();
    let batch = batch_no.clone();
    let mover = tokio::spawn(async move {
        let mut tx = pool.begin().await.unwrap();
        let actor = Actor::Submitter;
        let moved = transitions::batch_to_pending(&mut tx, &batch, None, None, &actor, "test")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        moved
    });
    let db = app.db_name();
    let admin = app.pool.clone();
    wait_until("the mover waits on the batch's lock", Duration::from_secs(10), || {
        let admin = admin.clone();
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
            )
            .bind(db)
            .fetch_one(&admin)
            .await
            .unwrap()
                == 1
        }
    })
    .await;
    accepting.commit().await.unwrap();
    let moved = tokio::time::timeout(Duration::from_secs(10), mover)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved, 0);
    assert_eq!(app.status_of("A-1").await, "submitted");
    assert_eq!(app.status_of("A-2").await, "submitted");
    app.cleanup().await;
}

#[tokio::test]
async fn a_connection_that_does_not_know_the_rule_cannot_write_but_can_read() {
    let app = TestApp::without_intake(&[]).await;
    let _batch_no = two_in_a_batch(&app).await;
    let url = format!("{}/{}", pg_base(), app.db_name());
    let mut old = PgConnection::connect(&url).await.unwrap();
    for sql in [
        "UPDATE refunds SET status = 'pending' WHERE status = 'batched'",
        "UPDATE batches SET status = 'rejected'",
        "DELETE FROM batch_items",
    ] {
        let err = sqlx::query(sql).execute(&mut old).await.unwrap_err();
        let db = err.as_database_error().unwrap();
        assert_eq!(db.code().as_deref(), Some("55000"), "{sql}");
        assert!(db.message().contains("migration 30"), "{}", db.message());
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM refunds")
        .fetch_one(&mut old)
        .await
        .unwrap();
    assert_eq!(count, 2);
    assert_eq!(app.status_of("A-1").await, "batched");
    // By hand, having read the rule.
    sqlx::query("SET refund_worker.accepted_by_batch = on")
        .execute(&mut old)
        .await
        .unwrap();
    sqlx::query("UPDATE refunds SET updated_at = now()")
        .execute(&mut old)
        .await
        .unwrap();
    old.close().await.unwrap();
    app.cleanup().await;
}
