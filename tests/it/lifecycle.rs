//! The worker process through outages and a SIGTERM: the broker and the
//! database each cut away (through proxies, so other tests keep their
//! services) and restored, and the process stopped mid-run and started
//! again. It recovers by itself, `/readyz` tells the outage, the stop is
//! clean (exit 0 within the grace), and the end-to-end invariants hold.

use std::time::Duration;

use crate::cli::worker;
use crate::gateway::*;
use crate::helpers::*;
use crate::process::{KillOnDrop, sigterm};
use crate::proxy::Proxy;

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

async fn readyz(port: u16) -> (u16, String) {
    match reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_and_a_sigterm_lose_nothing_and_double_nothing() {
    const N: usize = 3000;
    let app = TestApp::without_intake(&[]).await;
    let gw = start_sandbox(|_| {}).await;
    let pg = Proxy::start("127.0.0.1:5432").await.unwrap();
    let mq = Proxy::start("127.0.0.1:5672").await.unwrap();
    let port = free_port();
    let log = std::env::temp_dir().join(format!("rw-lifecycle-{}.log", app.id));
    let spawn = || {
        worker(&app)
            .arg("run")
            .env(
                "DATABASE_URL",
                format!("postgres://postgres@{}/{}", pg.addr, app.db_name()),
            )
            .env("AMQP_URL", format!("amqp://guest:guest@{}/%2f", mq.addr))
            .env("ALIPAY_GATEWAY", &gw.url)
            .env("HTTP_LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "ALIPAY_NOTIFY_URL",
                format!("http://127.0.0.1:{port}/alipay/notify"),
            )
            .env("ALIPAY_TIMEOUT_MS", "3000")
            .env("BATCH_LINGER_MS", "200")
            .env("BATCH_MAX_ITEMS", "200")
            .env("SUBMIT_RETRY_BASE_MS", "10")
            .env("ITEM_RETRY_BASE_MS", "50")
            .env("SUBMIT_RETRY_CAP_MS", "500")
            .env("RECONCILE_AFTER_MS", "2000")
            .env("SHUTDOWN_GRACE_MS", "5000")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap(),
            )
            .spawn()
            .unwrap()
    };
    let mut children = KillOnDrop(vec![spawn()]);
    let events: Vec<_> = (0..N)
        .map(|i| event(&format!("L-{i}"), &trade(i), r#""0.50""#))
        .collect();
    let terminal = || async {
        count(
            &app,
            "SELECT count(*) FROM refunds WHERE status IN ('succeeded', 'failed')",
        )
        .await
    };
    app.publish(&events[..N / 2]).await;
    wait_until("some refunds paid", Duration::from_secs(60), || async {
        terminal().await >= 300
    })
    .await;

    // The broker goes away and comes back.
    mq.cut();
    wait_until(
        "readyz tells the broker is away",
        Duration::from_secs(30),
        || async {
            let (status, body) = readyz(port).await;
            status == 503 && body.contains("broker")
        },
    )
    .await;
    mq.restore();
    // The database goes away and comes back.
    pg.cut();
    wait_until(
        "readyz tells the database is away",
        Duration::from_secs(30),
        || async {
            let (status, body) = readyz(port).await;
            status == 503 && body.contains("database")
        },
    )
    .await;
    pg.restore();
    wait_until("ready again", Duration::from_secs(60), || async {
        readyz(port).await.0 == 200
    })
    .await;

    app.publish(&events[N / 2..]).await;
    wait_until(
        "more paid after the outages",
        Duration::from_secs(120),
        || async { terminal().await >= (N / 2 + 300) as i64 },
    )
    .await;

    // SIGTERM in the middle of the run: a clean exit within the grace.
    let child = &mut children.0[0];
    sigterm(child);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still running 15 s after SIGTERM (grace 5 s); log {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        status.success(),
        "exit after SIGTERM: {status}; log {}",
        log.display()
    );
    children.0[0] = spawn();

    wait_until(
        "every refund terminal and every event published",
        Duration::from_secs(240),
        || async {
            terminal().await == N as i64
                && count(
                    &app,
                    "SELECT count(*) FROM outbox WHERE published_at IS NULL",
                )
                .await
                    == 0
        },
    )
    .await;
    drop(children);

    // Nothing doubled, nothing lost.
    assert_eq!(count(&app, "SELECT count(*) FROM refunds").await, N as i64);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM outbox WHERE routing_key IN ('refund.succeeded', 'refund.failed')"
        )
        .await,
        N as i64
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM (SELECT bi.refund_id FROM batch_items bi JOIN batches b USING (batch_no)
             WHERE b.status <> 'rejected' GROUP BY bi.refund_id HAVING count(*) > 1) s"
        )
        .await,
        0,
        "a refund in two live batches"
    );
    let succeeded = count(
        &app,
        "SELECT count(*) FROM refunds WHERE status = 'succeeded'",
    )
    .await;
    let ledger = gw.sandbox.as_ref().unwrap().ledger();
    assert_eq!(
        ledger.paid_total_fen,
        succeeded * 50,
        "the ledger pays each success once"
    );
    assert!(
        ledger
            .trades
            .iter()
            .all(|t| t.refunds.iter().filter(|r| r.code == "SUCCESS").count() <= 1)
    );

    let queue = app.topology.results_queue.clone().unwrap();
    let terminal_of = events_per_refund(&app.take_all(&queue).await);
    assert_eq!(terminal_of.len(), N, "a terminal event for every refund");
    assert!(
        terminal_of.values().all(|n| *n == 1),
        "one terminal event each"
    );
    std::fs::remove_file(&log).ok();
    app.cleanup().await;
}

/// Started while PostgreSQL and RabbitMQ are both away (a restart, or
/// compose starting everything at once), the worker waits for them instead
/// of exiting, and works once they answer; a SIGTERM while it waits is a
/// clean stop.
#[tokio::test]
async fn a_worker_started_before_its_services_waits_for_them() {
    let app = TestApp::without_intake(&[]).await;
    let pg = Proxy::start("127.0.0.1:5432").await.unwrap();
    let mq = Proxy::start("127.0.0.1:5672").await.unwrap();
    pg.cut();
    mq.cut();
    let log = std::env::temp_dir().join(format!("rw-startup-{}.log", app.id));
    let spawn = || {
        worker(&app)
            .args(["run", "--roles", "intake"])
            .env(
                "DATABASE_URL",
                format!("postgres://postgres@{}/{}", pg.addr, app.db_name()),
            )
            .env("AMQP_URL", format!("amqp://guest:guest@{}/%2f", mq.addr))
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap()
    };
    let waiting = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("not answering yet")
    };

    // Told to stop while waiting: exit 0.
    let mut child = spawn();
    wait_until("the worker waiting", Duration::from_secs(30), || async {
        waiting()
    })
    .await;
    sigterm(&child);
    assert_eq!(child.wait().unwrap().code(), Some(0));

    // Left waiting: it starts once both answer.
    let mut children = KillOnDrop(vec![spawn()]);
    wait_until("the worker waiting", Duration::from_secs(30), || async {
        waiting()
    })
    .await;
    app.publish(&[event("W-1", &trade(1), r#""1.00""#)]).await;
    assert_eq!(app.refund_count().await, 0);
    assert!(
        children.0[0].try_wait().unwrap().is_none(),
        "the worker exited instead of waiting: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    pg.restore();
    mq.restore();
    wait_for_count("the refund", 1, Duration::from_secs(60), || {
        app.refund_count()
    })
    .await;
    drop(children);
    std::fs::remove_file(&log).ok();
    app.cleanup().await;
}

/// As the Kubernetes Deployment runs it (`run --no-migrate`, a migration Job
/// beside it): `/healthz` answers from the first moment, so liveness never
/// kills a worker that is only starting; `/readyz` says what it waits for
/// (the database, then the migrations); once `migrate` has run, it starts.
#[tokio::test]
async fn without_migrating_it_is_alive_at_once_and_ready_once_the_migration_job_ran() {
    let app = TestApp::without_intake(&[]).await;
    let port = free_port();
    let database = format!("{}_by_job", app.db_name());
    let database_url = format!("{}/{database}", pg_base());
    let mut children = KillOnDrop(vec![
        worker(&app)
            .args(["run", "--no-migrate", "--roles", "http"])
            .env("DATABASE_URL", &database_url)
            .env("HTTP_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    ]);
    let healthz = || async move {
        reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .is_ok_and(|r| r.status() == 200)
    };
    wait_until("/healthz answering", Duration::from_secs(30), healthz).await;
    // No database yet, then a database without the migrations: not ready.
    wait_until(
        "/readyz naming the missing database",
        Duration::from_secs(30),
        || async {
            let (status, body) = readyz(port).await;
            status == 503 && body.starts_with("starting: waiting")
        },
    )
    .await;
    let admin = admin_pool().await;
    let sql = format!("CREATE DATABASE \"{database}\"");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&admin)
        .await
        .unwrap();
    wait_until(
        "/readyz naming the migration Job",
        Duration::from_secs(30),
        || async {
            let (status, body) = readyz(port).await;
            status == 503 && body.contains("refund-worker migrate")
        },
    )
    .await;
    assert!(healthz().await, "alive while waiting for the migrations");

    let migrate = worker(&app)
        .arg("migrate")
        .env("DATABASE_URL", &database_url)
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{migrate:?}");
    wait_until("ready once migrated", Duration::from_secs(60), || async {
        readyz(port).await.0 == 200
    })
    .await;
    assert!(children.0[0].try_wait().unwrap().is_none());
    drop(children);
    let sql = format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&admin)
        .await
        .ok();
    admin.close().await;
    app.cleanup().await;
}
