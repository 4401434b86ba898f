//! Retention (`refund-worker prune`): what is older than the cut-off and
//! allowed to go goes, in chunks; everything else stays — refunds and
//! batches, unpublished events, the history of refunds still in flight or
//! finished recently, and the raw body of every notification that is
//! evidence (forged) or of a batch still open.

use sqlx::PgPool;

use crate::cli::worker;
use crate::helpers::*;

const PARTNER: &str = "2088101122136241";

async fn exec(pool: &PgPool, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(pool)
        .await
        .unwrap();
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Two refunds finished 40 days ago (OLD-*), one finished yesterday (NEW-1),
/// one still submitted for 40 days (OPEN-1), each with history and events.
async fn fixtures(pool: &PgPool) {
    let mut sql = String::new();
    for (id, status, finished) in [
        ("OLD-1", "succeeded", "now() - interval '40 days'"),
        ("OLD-2", "failed", "now() - interval '40 days'"),
        ("NEW-1", "succeeded", "now() - interval '1 day'"),
        ("OPEN-1", "submitted", "NULL"),
    ] {
        let trade = format!("2026010122001{:0>11}", id.len() * 7 + status.len());
        sql += &format!(
            "INSERT INTO refunds (refund_id, partner, trade_no, amount_fen, reason, status, finished_at, received_at)
             VALUES ('{id}', '{PARTNER}', '{trade}{id}', 100, 'r', '{status}', {finished}, now() - interval '41 days');
             INSERT INTO refund_history (refund_id, to_status, actor, at)
             VALUES ('{id}', 'pending', 'intake', now() - interval '41 days'),
                    ('{id}', '{status}', 'callback', COALESCE({finished}, now() - interval '40 days'));
             INSERT INTO outbox (event_id, refund_id, routing_key, legacy_body, created_at, published_at)
             VALUES (gen_random_uuid(), '{id}', 'refund.bank_returned', '{{}}', now() - interval '40 days',
                     CASE WHEN '{id}' = 'OLD-2' THEN NULL ELSE COALESCE({finished}, now() - interval '40 days') END);\n"
        );
    }
    sql += &format!(
        "INSERT INTO batches (batch_no, partner, status, refund_date, batch_num, detail_data)
         VALUES ('20261001DONE1', '{PARTNER}', 'completed', '2026-10-01 10:00:00', 1, 'x'),
                ('20261001OPEN1', '{PARTNER}', 'submitted', '2026-10-01 10:00:00', 1, 'x');
         INSERT INTO notifications (kind, notify_id, batch_no, raw_body, verdict, received_at) VALUES
           ('batch_refund', 'n1', '20261001DONE1', 'applied-body', 'applied', now() - interval '40 days'),
           ('batch_refund', 'n2', '20261001DONE1', 'forged-body', 'forged', now() - interval '40 days'),
           ('batch_refund', 'n3', '20261001OPEN1', 'open-body', 'applied', now() - interval '40 days'),
           ('batch_refund', 'n4', '20261001DONE1', 'recent-body', 'repeat', now() - interval '1 day');
         INSERT INTO refund_history_sets (batch_no, refund_ids, from_status, to_status, actor, at) VALUES
           ('20261001DONE1', '{{OLD-1,OLD-2}}', 'batched', 'submitted', 'submitter', now() - interval '40 days'),
           ('20261001OPEN1', '{{OLD-1,OPEN-1}}', 'pending', 'batched', 'batcher', now() - interval '40 days');"
    );
    exec(pool, &sql).await;
}

fn prune(app: &TestApp, args: &[&str]) -> std::process::Output {
    worker(app).arg("prune").args(args).output().unwrap()
}

#[tokio::test]
async fn prune_takes_only_what_retention_allows_and_a_dry_run_changes_nothing() {
    let app = TestApp::without_intake(&[]).await;
    fixtures(&app.pool).await;
    let snapshot = |pool: PgPool| async move {
        (
            count(&pool, "SELECT count(*) FROM outbox").await,
            count(&pool, "SELECT count(*) FROM refund_history").await,
            count(
                &pool,
                "SELECT count(*) FROM notifications WHERE raw_pruned_at IS NULL",
            )
            .await,
        )
    };
    let before = snapshot(app.pool.clone()).await;

    let dry = prune(&app, &["--older-than", "30d", "--dry-run"]);
    assert!(dry.status.success(), "{dry:?}");
    let text = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert!(
        text.contains("would prune 2 published outbox events"),
        "{text}"
    );
    assert!(
        text.contains("would prune 1 raw notification bodies"),
        "{text}"
    );
    assert!(text.contains("would prune 4 history rows"), "{text}");
    assert!(text.contains("would prune 1 history sets"), "{text}");
    assert_eq!(
        snapshot(app.pool.clone()).await,
        before,
        "a dry run changed something"
    );

    let short = prune(&app, &["--older-than", "30m"]);
    assert_eq!(short.status.code(), Some(2), "{short:?}");
    assert_eq!(snapshot(app.pool.clone()).await, before);

    // Chunks of one row: the loop must go on until nothing is left.
    let done = prune(&app, &["--older-than", "30d", "--chunk", "1"]);
    assert!(done.status.success(), "{done:?}");
    let text = String::from_utf8_lossy(&done.stdout).into_owned();
    assert!(text.contains("pruned 2 published outbox events"), "{text}");

    let pool = &app.pool;
    // Refunds and batches all kept.
    assert_eq!(count(pool, "SELECT count(*) FROM refunds").await, 4);
    assert_eq!(count(pool, "SELECT count(*) FROM batches").await, 2);
    // Events: the unpublished one (OLD-2) and yesterday's stay.
    let events: Vec<String> = sqlx::query_scalar("SELECT refund_id FROM outbox ORDER BY refund_id")
        .fetch_all(pool)
        .await
        .unwrap();
    assert_eq!(events, ["NEW-1", "OLD-2"]);
    // History: gone for OLD-*, kept for the recent and the open refund.
    let history: Vec<(String, i64)> = sqlx::query_as(
        "SELECT refund_id, count(*) FROM refund_history GROUP BY refund_id ORDER BY refund_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(history, [("NEW-1".into(), 2), ("OPEN-1".into(), 2)]);
    // A set goes only once every refund it names is terminal since before the cut-off.
    let sets: Vec<String> = sqlx::query_scalar("SELECT batch_no FROM refund_history_sets")
        .fetch_all(pool)
        .await
        .unwrap();
    assert_eq!(sets, ["20261001OPEN1"]);
    // Bodies: only the ordinary old one of the finished batch; its row stays.
    let bodies: Vec<(String, Vec<u8>, bool)> = sqlx::query_as(
        "SELECT notify_id, raw_body, raw_pruned_at IS NOT NULL FROM notifications ORDER BY notify_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        bodies,
        [
            ("n1".into(), Vec::new(), true),
            ("n2".into(), b"forged-body".to_vec(), false),
            ("n3".into(), b"open-body".to_vec(), false),
            ("n4".into(), b"recent-body".to_vec(), false),
        ]
    );
    // `batch show` says the body went, rather than showing nothing.
    let shown = worker(&app)
        .args(["batch", "show", "20261001DONE1"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(shown.contains("pruned at"), "{shown}");

    // Again: nothing more to take.
    let again = prune(&app, &["--older-than", "30d"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("pruned 0 published outbox events"));
    app.cleanup().await;
}
