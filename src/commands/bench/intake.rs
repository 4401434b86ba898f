//! The intake phase: a child `refund-worker run --roles intake` on a fresh
//! database and fresh names; N refund events published with confirms while it
//! runs; done when the database holds all N.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use lapin::Connection;
use lapin::options::ConfirmSelectOptions;
use sqlx::{AssertSqlSafe, PgPool};

use super::Phase;
use super::load::{percentiles, process_usage, publish_all};
use crate::amqp::Topology;
use crate::amqp::topology::APPROVED_KEY;
use crate::config::Settings;
use crate::storage;

const BENCH_PARTNER: &str = "2088000000000001";
/// The longest the worker may take to store everything before the run fails.
const LIMIT: Duration = Duration::from_secs(900);

/// Returns the phase, the worker's (peak RSS bytes, CPU ms) and PostgreSQL's version.
pub async fn measure(
    settings: &Settings,
    conn: &Connection,
    id: &str,
    n: usize,
) -> anyhow::Result<(Phase, (u64, u64), String)> {
    let prefix = format!("bench-{id}.");
    let db_url = with_database(&settings.database_url, &format!("refund_worker_bench_{id}"));
    let pool = storage::connect_and_migrate(&db_url, 2).await?;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&pool)
        .await?;
    let topology = Topology::new(&prefix, false);
    let channel = conn.create_channel().await?;
    topology.declare(&channel).await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;

    let mut child = spawn_worker(&db_url, &prefix, "intake", &[])?;
    let result = run(&pool, &channel, &topology, &mut child, n).await;
    let usage = process_usage(child.id()).unwrap_or((0, 0));
    stop(&mut child);

    delete_topology(settings, &prefix).await;
    pool.close().await;
    drop_database(&settings.database_url, &format!("refund_worker_bench_{id}")).await;
    Ok((result?, usage, version))
}

async fn run(
    pool: &PgPool,
    channel: &lapin::Channel,
    topology: &Topology,
    child: &mut Child,
    n: usize,
) -> anyhow::Result<Phase> {
    wait_for_consumer(channel, &topology.approved_queue, child).await?;
    let start = Instant::now();
    let mut sent_at: Vec<DateTime<Utc>> = Vec::with_capacity(n);
    let bodies = (0..n).map(|i| {
        sent_at.push(Utc::now());
        format!(r#"{{"refund_id":"B-{i}","trade_no":"{}","amount":"0.01","partner":"{BENCH_PARTNER}"}}"#, 2026_1125_0000_0000_0000u128 + i as u128)
            .into_bytes()
    });
    let publishing = publish_all(channel, &topology.refunds_exchange, APPROVED_KEY, bodies);
    let counting = async {
        loop {
            let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM refunds")
                .fetch_one(pool)
                .await?;
            if stored as usize >= n {
                return Ok::<_, anyhow::Error>(start.elapsed());
            }
            anyhow::ensure!(
                start.elapsed() < LIMIT,
                "the worker stored only {stored} of {n} in {LIMIT:?}"
            );
            // count(*) scans the table, so polling it often would slow the
            // database under test: rarely until the end is near, then often
            // enough that the end time is exact to a few milliseconds.
            let near = stored as usize * 20 >= n * 19;
            tokio::time::sleep(Duration::from_millis(if near { 10 } else { 250 })).await;
        }
    };
    let (published, took) = tokio::try_join!(publishing, counting)?;
    anyhow::ensure!(published == n, "the broker confirmed {published} of {n}");

    let rows: Vec<(String, DateTime<Utc>)> =
        sqlx::query_as("SELECT refund_id, received_at FROM refunds")
            .fetch_all(pool)
            .await?;
    let latencies = rows
        .iter()
        .filter_map(|(id, at)| {
            let i: usize = id.strip_prefix("B-")?.parse().ok()?;
            (*at - *sent_at.get(i)?).to_std().ok()
        })
        .collect();
    Ok(Phase::new("intake", n, took, percentiles(latencies)))
}

/// A child `refund-worker run --roles ROLES` on the bench database and names.
pub fn spawn_worker(
    db_url: &str,
    prefix: &str,
    roles: &str,
    env: &[(&str, &str)],
) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let mut cmd = Command::new(exe);
    cmd.args(["run", "--roles", roles])
        .env("DATABASE_URL", db_url)
        .env("AMQP_NAME_PREFIX", prefix)
        .env("AMQP_RESULTS_QUEUE", "false")
        .env("ALIPAY_PARTNER", BENCH_PARTNER)
        .env("ALIPAY_KEY", "bench-key-not-a-secret")
        .env_remove("ALIPAY_KEY_FILE")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().context("while starting the worker")
}

/// Deletes the queues and exchanges of a bench run.
pub async fn delete_topology(settings: &Settings, prefix: &str) {
    let Ok(conn) = crate::amqp::connect(&settings.amqp.url, "refund-worker bench cleanup").await
    else {
        return;
    };
    if let Ok(channel) = conn.create_channel().await {
        Topology::new(prefix, true).delete(&channel).await;
    }
    conn.close(200, "cleaned".into()).await.ok();
}

/// Waits until the worker consumes from its queue (or has died).
pub async fn wait_for_consumer(
    channel: &lapin::Channel,
    queue: &str,
    child: &mut Child,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("the worker exited before consuming: {status}");
        }
        let q = crate::amqp::inspect(channel, queue).await?;
        if q.consumer_count() > 0 {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the worker did not start consuming within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn stop(child: &mut Child) {
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let _ = child.wait();
}

/// The same URL with another database name (the query string is kept).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let root = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{root}/{name}{query}")
}

pub async fn drop_database(url: &str, name: &str) {
    let Ok(admin) = storage::connect(&with_database(url, "postgres"), 1).await else {
        return;
    };
    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    sqlx::query(AssertSqlSafe(sql)).execute(&admin).await.ok();
    admin.close().await;
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn another_database_keeps_host_and_options() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/rw?sslmode=require", "x"),
            "postgres://u:p@h:5432/x?sslmode=require"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
