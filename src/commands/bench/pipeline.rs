//! `bench --profile pipeline|steady`: refunds end to end. A child
//! `refund-worker run` (every role) on a fresh database and names, the
//! sandbox in-process notifying at once, refund events published to the
//! broker and the result events consumed from the results queue.
//!
//! - pipeline: N events at once (saturation); refunds/s from the first
//!   publish to the last terminal event consumed, and the ratio to the
//!   broker's ceiling measured in the same run.
//! - steady: a fixed rate for a fixed time; latency from publish to the
//!   result event consumed, and from publish to acceptance at the gateway.
//!
//! Both report the time in each stage (medians of the per-refund gaps), the
//! gateway's submission requests per 1000 refunds, and the worker's peak
//! memory and CPU time per 1000 refunds.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use lapin::Connection;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use serde::Serialize;
use sqlx::PgPool;

use super::load::{Percentiles, percentiles, rate};
use super::stages::{StageRow, Stages, Timings};
use crate::amqp::Topology;
use crate::amqp::topology::APPROVED_KEY;
use crate::commands::harness::PARTNER;
use crate::commands::harness::publish::publish_all;
use crate::commands::harness::scratch::{delete_topology, drop_database, with_database};
use crate::commands::harness::worker::{self, process_usage, spawn_worker, wait_for_consumer};
use crate::config::Settings;
use crate::sandbox::{self, PartnerKey, SandboxConfig};
use crate::storage;

const KEY: &str = "bench-key-not-a-secret";
/// The longest a run may take before it fails.
const LIMIT: Duration = Duration::from_secs(1200);
/// A run fails when no result event arrives for this long.
const STALLED: Duration = Duration::from_secs(60);

/// How events are published.
#[derive(Debug, Clone, Copy)]
pub enum Load {
    /// All at once.
    Saturation,
    /// This many per second.
    Rate(u32),
}

/// One end-to-end run.
#[derive(Debug, Serialize)]
pub struct PipelineRun {
    pub refunds: usize,
    pub took_ms: u64,
    pub refunds_per_second: u64,
    pub publish_to_result: Option<Percentiles>,
    pub publish_to_accepted: Option<Percentiles>,
    pub stages: Stages,
    /// Submission requests to the gateway per 1000 refunds (1 = one per full batch).
    pub requests_per_1000: u64,
    pub succeeded: usize,
    pub worker_peak_rss_bytes: u64,
    pub worker_cpu_ms_per_1000: u64,
    #[serde(skip)]
    pub postgresql: String,
}

/// Runs `n` refunds through a fresh worker and sandbox.
pub async fn measure(
    settings: &Settings,
    conn: &Connection,
    id: &str,
    n: usize,
    load: Load,
) -> anyhow::Result<PipelineRun> {
    let prefix = format!("bench-{id}.");
    let db_name = format!("refund_worker_bench_{id}");
    let db_url = with_database(&settings.database_url, &db_name);
    let pool = storage::connect_and_migrate(&db_url, 2).await?;
    let postgresql: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&pool)
        .await?;
    let topology = Topology::new(&prefix, true);
    let channel = conn.create_channel().await?;
    topology.declare(&channel).await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;

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
    let http = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let notify_url = format!("http://{http}/alipay/notify");
    let http_listen = http.to_string();
    let env = [
        ("ALIPAY_GATEWAY", gateway.as_str()),
        ("ALIPAY_NOTIFY_URL", notify_url.as_str()),
        ("ALIPAY_PARTNER", PARTNER),
        ("ALIPAY_KEY", KEY),
        ("HTTP_LISTEN", http_listen.as_str()),
        ("AMQP_RESULTS_QUEUE", "true"),
    ];
    let mut child = spawn_worker(
        &db_url,
        &prefix,
        "intake,batch,submit,http,relay,reconcile",
        &env,
    )?;
    let result = run(&pool, conn, &channel, &topology, &mut child, n, load).await;
    let usage = process_usage(child.id()).unwrap_or((0, 0));
    worker::stop(&mut child);
    stop.cancel();
    let paid = sandbox.ledger().paid_total_fen;
    pool.close().await;
    drop_database(&settings.database_url, &db_name).await;
    delete_topology(settings, &prefix).await;
    let mut run = result?;
    anyhow::ensure!(
        paid == run.succeeded as i64,
        "the sandbox paid {paid} fen for {} succeeded refunds of 1 fen",
        run.succeeded
    );
    run.worker_peak_rss_bytes = usage.0;
    run.worker_cpu_ms_per_1000 = usage.1 * 1000 / n as u64;
    run.postgresql = postgresql;
    Ok(run)
}

async fn run(
    pool: &PgPool,
    conn: &Connection,
    channel: &lapin::Channel,
    topology: &Topology,
    child: &mut std::process::Child,
    n: usize,
    load: Load,
) -> anyhow::Result<PipelineRun> {
    let results = topology
        .results_queue
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no results queue"))?;
    let consuming = tokio::spawn(consume(conn.create_channel().await?, results, n));
    wait_for_consumer(channel, &topology.approved_queue, child).await?;
    let sent_at = publish_load(channel, topology, n, load).await?;
    let consumed = tokio::time::timeout(LIMIT, consuming)
        .await
        .map_err(|_| anyhow::anyhow!("not every result event arrived within {LIMIT:?}"))???;
    let took = consumed
        .values()
        .map(|(at, _)| *at)
        .max()
        .map(|last| (last - sent_at[0]).to_std().unwrap_or_default())
        .unwrap_or_default();
    let succeeded = consumed.values().filter(|(_, ok)| *ok).count();

    let rows: Vec<StageRow> = sqlx::query_as(
        "SELECT r.refund_id, r.received_at, b.created_at, b.accepted_at, r.finished_at, o.published_at
         FROM refunds r
         LEFT JOIN batches b ON b.batch_no = r.batch_no
         LEFT JOIN outbox o ON o.refund_id = r.refund_id
                           AND o.routing_key IN ('refund.succeeded', 'refund.failed')",
    )
    .fetch_all(pool)
    .await?;
    let requests: i64 = sqlx::query_scalar("SELECT COALESCE(sum(attempts), 0)::int8 FROM batches")
        .fetch_one(pool)
        .await?;
    let timings = Timings::new(&rows, &sent_at, &consumed);
    Ok(PipelineRun {
        refunds: n,
        took_ms: took.as_millis() as u64,
        refunds_per_second: rate(n, took).round() as u64,
        publish_to_result: percentiles(timings.to_result),
        publish_to_accepted: percentiles(timings.to_accepted),
        stages: timings.stages,
        requests_per_1000: (requests.max(0) as u64 * 1000).div_ceil(n as u64),
        succeeded,
        worker_peak_rss_bytes: 0,
        worker_cpu_ms_per_1000: 0,
        postgresql: String::new(),
    })
}

/// Publishes the `n` refunds as `load` says; returns when each was sent.
async fn publish_load(
    channel: &lapin::Channel,
    topology: &Topology,
    n: usize,
    load: Load,
) -> anyhow::Result<Vec<DateTime<Utc>>> {
    let start = Instant::now();
    let mut sent_at: Vec<DateTime<Utc>> = Vec::with_capacity(n);
    let body = |i: usize| {
        format!(
            r#"{{"refund_id":"P-{i}","trade_no":"{}","amount":"0.01","partner":"{PARTNER}"}}"#,
            2026_1125_0000_0000_0000u128 + i as u128
        )
        .into_bytes()
    };
    match load {
        Load::Saturation => {
            let bodies = (0..n).map(|i| {
                sent_at.push(Utc::now());
                body(i)
            });
            publish_all(channel, &topology.refunds_exchange, APPROVED_KEY, bodies).await?;
        }
        Load::Rate(per_second) => {
            // Every 10 ms, publish what the rate says is due by now.
            let mut interval = tokio::time::interval(Duration::from_millis(10));
            let mut next = 0;
            while next < n {
                interval.tick().await;
                let due =
                    (start.elapsed().as_millis() as usize * per_second as usize / 1000 + 1).min(n);
                if due <= next {
                    continue;
                }
                let bodies = (next..due).map(|i| {
                    sent_at.push(Utc::now());
                    body(i)
                });
                publish_all(channel, &topology.refunds_exchange, APPROVED_KEY, bodies).await?;
                next = due;
            }
        }
    }
    Ok(sent_at)
}

/// Consumes result events until `n` refunds have a terminal one: when each
/// arrived and whether it succeeded, by refund_id.
async fn consume(
    channel: lapin::Channel,
    queue: String,
    n: usize,
) -> anyhow::Result<HashMap<String, (DateTime<Utc>, bool)>> {
    channel.basic_qos(1000, BasicQosOptions::default()).await?;
    let mut consumer = channel
        .basic_consume(
            queue.as_str().into(),
            "bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut seen = HashMap::with_capacity(n);
    while seen.len() < n {
        let Ok(next) = tokio::time::timeout(STALLED, consumer.next()).await else {
            anyhow::bail!(
                "no result event for {STALLED:?} with {} of {n} in: the pipeline stalled (see the worker's log above)",
                seen.len()
            );
        };
        let Some(delivery) = next else {
            anyhow::bail!("the results consumer ended");
        };
        let delivery = delivery?;
        let at = Utc::now();
        let body: serde_json::Value = serde_json::from_slice(&delivery.data)?;
        delivery
            .ack(BasicAckOptions {
                multiple: seen.len() % 100 == 99,
            })
            .await?;
        let event = body["event"].as_str().unwrap_or_default();
        if event == "refund.succeeded" || event == "refund.failed" {
            let id = body["refund_id"].as_str().unwrap_or_default().to_owned();
            seen.entry(id).or_insert((at, event == "refund.succeeded"));
        }
    }
    channel.close(200, "done".into()).await.ok();
    Ok(seen)
}
