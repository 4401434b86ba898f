//! `bench --profile submit`: batching and submission against the in-process
//! sandbox. A child `refund-worker run --roles batch,submit` works a fresh
//! database; refunds are written straight into it (intake has its own
//! profile). Two phases: N refunds at once (saturation), then 100 refunds a
//! second for 20 s (steady). Reported: refunds accepted per second, gateway
//! requests per refund, and p50/p99/max from stored to accepted.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::load::{Percentiles, ms, percentiles, rate};
use crate::commands::harness::PARTNER;
use crate::commands::harness::scratch::{delete_topology, drop_database, with_database};
use crate::commands::harness::worker::{self, process_usage, spawn_worker};
use crate::config::Settings;
use crate::sandbox::{self, PartnerKey, SandboxConfig};
use crate::storage;

const KEY: &str = "bench-key-not-a-secret";
const LIMIT: Duration = Duration::from_secs(900);

#[derive(Debug, serde::Serialize)]
struct SubmitPhase {
    name: &'static str,
    refunds: usize,
    took_ms: u64,
    accepted_per_second: u64,
    /// Gateway requests per 1000 refunds (1 is one request per full batch).
    requests_per_1000: u64,
    stored_to_accepted: Option<Percentiles>,
}

pub async fn bench(settings: &Settings, n: usize, json: bool) -> anyhow::Result<ExitCode> {
    let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let db_name = format!("refund_worker_bench_{id}");
    let db_url = with_database(&settings.database_url, &db_name);
    let pool = storage::connect_and_migrate(&db_url, 2).await?;

    let mut config = SandboxConfig::new(
        vec![PartnerKey {
            id: PARTNER.into(),
            key: KEY.into(),
        }],
        1,
    );
    config.time_scale = "0.001".parse()?;
    let gw = sandbox::start_local(config).await?;
    let (sandbox, gateway, stop) = (gw.sandbox, gw.url, gw.stop);

    let prefix = format!("bench-{id}.");
    let env = [
        ("ALIPAY_GATEWAY", gateway.as_str()),
        ("ALIPAY_NOTIFY_URL", "http://127.0.0.1:9/alipay/notify"),
        ("ALIPAY_PARTNER", PARTNER),
        ("ALIPAY_KEY", KEY),
    ];
    let mut child = spawn_worker(&db_url, &prefix, "batch,submit", &env)?;
    let result = async {
        eprintln!("bench {id}: submit, {n} refunds at once …");
        let saturation = phase(&pool, "saturation", n, None).await?;
        eprintln!("bench {id}: submit, 100 refunds/s for 20 s …");
        let steady = phase(&pool, "steady", 2000, Some(100)).await?;
        Ok::<_, anyhow::Error>(vec![saturation, steady])
    }
    .await;
    let usage = process_usage(child.id()).unwrap_or((0, 0));
    worker::stop(&mut child);
    stop.cancel();
    pool.close().await;
    drop_database(&settings.database_url, &db_name).await;
    delete_topology(settings, &prefix).await;
    let phases = result?;

    if json {
        let record = serde_json::json!({
            "profile": "submit", "phases": phases,
            "worker_peak_rss_bytes": usage.0, "worker_cpu_ms": usage.1,
            "sandbox_paid_total_fen": sandbox.ledger().paid_total_fen,
        });
        println!("{record}");
    } else {
        print_table(&phases, usage);
    }
    Ok(ExitCode::SUCCESS)
}

/// The human form: one line per phase, then the worker's memory and CPU.
fn print_table(phases: &[SubmitPhase], usage: (u64, u64)) {
    println!(
        "refund-worker bench --profile submit ({})",
        chrono::Utc::now().format("%Y-%m-%d")
    );
    println!(
        "{:<11} {:>8} {:>9} {:>11} {:>13} {:>10} {:>10} {:>10}",
        "phase", "refunds", "took ms", "accepted/s", "requests/1000", "p50 ms", "p99 ms", "max ms"
    );
    for p in phases {
        let (p50, p99, max) = p
            .stored_to_accepted
            .map(|l| (ms(l.p50_us), ms(l.p99_us), ms(l.max_us)))
            .unwrap_or_default();
        println!(
            "{:<11} {:>8} {:>9} {:>11} {:>13} {:>10} {:>10} {:>10}",
            p.name, p.refunds, p.took_ms, p.accepted_per_second, p.requests_per_1000, p50, p99, max
        );
    }
    let tenths_mib = (usage.0 * 10) >> 20;
    println!(
        "worker: peak RSS {}.{} MiB, CPU {} ms",
        tenths_mib / 10,
        tenths_mib % 10,
        usage.1
    );
}

/// Writes `n` refunds (all at once, or `per_second`), waits until all are
/// submitted, and measures.
async fn phase(
    pool: &sqlx::PgPool,
    name: &'static str,
    n: usize,
    per_second: Option<usize>,
) -> anyhow::Result<SubmitPhase> {
    let prefix = format!("{name}-");
    let requests_before: i64 =
        sqlx::query_scalar("SELECT COALESCE(sum(attempts), 0)::int8 FROM batches")
            .fetch_one(pool)
            .await?;
    let start = Instant::now();
    match per_second {
        None => insert(pool, &prefix, 0, n).await?,
        Some(rate) => {
            let tick = rate / 10;
            let mut interval = tokio::time::interval(Duration::from_millis(100));
            for from in (0..n).step_by(tick.max(1)) {
                interval.tick().await;
                insert(pool, &prefix, from, (from + tick).min(n)).await?;
            }
        }
    }
    loop {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM refunds WHERE refund_status(status, batch_no) = 'submitted'
             AND refund_id LIKE $1",
        )
        .bind(format!("{prefix}%"))
        .fetch_one(pool)
        .await?;
        if done as usize >= n {
            break;
        }
        anyhow::ensure!(
            start.elapsed() < LIMIT,
            "only {done} of {n} accepted in {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = start.elapsed();
    let requests: i64 = sqlx::query_scalar("SELECT COALESCE(sum(attempts), 0)::int8 FROM batches")
        .fetch_one(pool)
        .await?;
    let latencies: Vec<i64> = sqlx::query_scalar(
        "SELECT (EXTRACT(EPOCH FROM (b.submitted_at - r.received_at)) * 1000000)::int8
         FROM refunds r JOIN batches b ON b.batch_no = r.batch_no WHERE r.refund_id LIKE $1",
    )
    .bind(format!("{prefix}%"))
    .fetch_all(pool)
    .await?;
    let latencies = latencies
        .into_iter()
        .map(|us| Duration::from_micros(us.max(0) as u64))
        .collect();
    Ok(SubmitPhase {
        name,
        refunds: n,
        took_ms: took.as_millis() as u64,
        accepted_per_second: rate(n, took).round() as u64,
        requests_per_1000: ((requests - requests_before) as u64 * 1000).div_ceil(n as u64),
        stored_to_accepted: percentiles(latencies),
    })
}

async fn insert(pool: &sqlx::PgPool, prefix: &str, from: usize, to: usize) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO refunds (refund_id, partner, trade_no, amount_fen, reason)
         SELECT $1 || g, $2, (20261126000000000000::numeric + g + $5)::text, 1, 'refund'
         FROM generate_series($3::int8, $4::int8 - 1) g",
    )
    .bind(prefix)
    .bind(PARTNER)
    .bind(from as i64)
    .bind(to as i64)
    .bind(if prefix.starts_with("steady") {
        10_000_000i64
    } else {
        0
    })
    .execute(pool)
    .await?;
    Ok(())
}
