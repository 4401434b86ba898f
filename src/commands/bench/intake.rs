//! The intake phase: a child `refund-worker run --roles intake` on a fresh
//! database and fresh names; N refund events published with confirms while it
//! runs; done when the database holds all N. What the events cost each
//! process is measured around it, as for the pipeline (`cost.rs`).

use std::process::Child;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lapin::Connection;
use lapin::options::ConfirmSelectOptions;
use sqlx::PgPool;

use super::Phase;
use super::cost::{self, Cost};
use super::load::percentiles;
use crate::amqp::Topology;
use crate::amqp::topology::APPROVED_KEY;
use crate::commands::harness::PARTNER as BENCH_PARTNER;
use crate::commands::harness::publish::publish_all;
use crate::commands::harness::scratch::{delete_topology, drop_database, with_database};
use crate::commands::harness::worker::{process_usage, spawn_worker, stop, wait_for_consumer};
use crate::config::Settings;
use crate::storage;

/// The longest the worker may take to store everything before the run fails.
const LIMIT: Duration = Duration::from_secs(900);

/// What one intake run measured.
pub struct Measured {
    pub phase: Phase,
    /// The worker's peak RSS (bytes) and CPU time (ms).
    pub usage: (u64, u64),
    pub cost: Cost,
    pub postgresql: String,
}

pub async fn measure(
    settings: &Settings,
    conn: &Connection,
    id: &str,
    n: usize,
) -> anyhow::Result<Measured> {
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
    // Stopped before the second snapshot, so its backends have flushed
    // their statistics; the latencies are read after it.
    stop(&mut child);
    let measured = match result {
        Ok(stored) => finish(&pool, stored, usage, n).await,
        Err(e) => Err(e),
    };

    delete_topology(settings, &prefix).await;
    pool.close().await;
    drop_database(&settings.database_url, &format!("refund_worker_bench_{id}")).await;
    measured.map(|(phase, cost)| Measured {
        phase,
        usage,
        cost,
        postgresql: version,
    })
}

/// What [`run`] leaves for [`finish`].
struct Stored {
    took: Duration,
    sent_at: Vec<DateTime<Utc>>,
    before: cost::Snapshot,
}

async fn finish(
    pool: &PgPool,
    stored: Stored,
    usage: (u64, u64),
    n: usize,
) -> anyhow::Result<(Phase, Cost)> {
    let after = cost::Snapshot::take(pool).await?;
    let cost = cost::between(&stored.before, &after, usage.1, n);
    let rows: Vec<(String, DateTime<Utc>)> =
        sqlx::query_as("SELECT refund_id, received_at FROM refunds")
            .fetch_all(pool)
            .await?;
    let latencies = rows
        .iter()
        .filter_map(|(id, at)| {
            let i: usize = id.strip_prefix("B-")?.parse().ok()?;
            (*at - *stored.sent_at.get(i)?).to_std().ok()
        })
        .collect();
    let phase = Phase::new("intake", n, stored.took, percentiles(latencies));
    Ok((phase, cost))
}

async fn run(
    pool: &PgPool,
    channel: &lapin::Channel,
    topology: &Topology,
    child: &mut Child,
    n: usize,
) -> anyhow::Result<Stored> {
    wait_for_consumer(channel, &topology.approved_queue, child).await?;
    let before = cost::Snapshot::take(pool).await?;
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
    Ok(Stored {
        took,
        sent_at,
        before,
    })
}
