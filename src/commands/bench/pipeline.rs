//! `bench --profile pipeline|steady`: refunds end to end. A child
//! `refund-worker run` (every role) on a fresh database and names, the
//! sandbox in-process notifying at once (`rig.rs`), refund events published
//! to the broker and the result events consumed from the results queue.
//!
//! - pipeline: N events at once (saturation); refunds/s from the first
//!   publish to the last terminal event consumed, and the ratio to the
//!   broker's ceiling measured in the same run.
//! - steady: a fixed rate for a fixed time; latency from publish to the
//!   result event consumed, and from publish to acceptance at the gateway.
//!
//! Both report the time in each stage (medians of the per-refund gaps), the
//! gateway's submission requests per 1000 refunds, and the worker's peak
//! memory and CPU time per 1000 refunds. `drive` is also the openapi
//! profile's run (`openapi.rs`), on a rig whose lane is an OpenAPI partner.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use lapin::Connection;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use serde::Serialize;
use sqlx::PgPool;

use super::cost::{self, Cost};
use super::load::{Percentiles, percentiles, rate};
use super::rig::{Lane, Rig, Usage};
use super::stages::{StageRow, Stages, Timings};
use super::{statements, wal};
use crate::amqp::Topology;
use crate::amqp::topology::APPROVED_KEY;
use crate::commands::harness::publish::publish_all;
use crate::commands::harness::worker::wait_for_consumers;
use crate::config::Settings;

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
    /// Batched refunds only (the OpenAPI channel has no batches).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stages: Option<Stages>,
    /// Submission requests to the gateway per 1000 refunds (1 = one per
    /// full batch); batched refunds only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_1000: Option<u64>,
    pub succeeded: usize,
    pub worker_peak_rss_bytes: u64,
    pub worker_cpu_ms_per_1000: u64,
    /// Where the cost went (`cost.rs`), from just before the first publish
    /// to the worker's stop after the last result.
    pub cost: Cost,
    #[serde(skip)]
    pub postgresql: String,
}

/// Runs `n` refunds of the default (mapi) partner through a fresh worker
/// and sandbox; fails unless the sandbox paid exactly the refunds that
/// succeeded.
pub async fn measure(
    settings: &Settings,
    conn: &Connection,
    id: &str,
    n: usize,
    load: Load,
    workers: usize,
) -> anyhow::Result<PipelineRun> {
    let lane = Lane::mapi().with_workers(workers);
    let mut rig = Rig::start(settings, conn, id, lane).await?;
    let result = drive_costed(&mut rig, conn, n, load).await;
    let paid = rig.sandbox.ledger().paid_total_fen;
    let usage = rig.finish(settings).await;
    let run = result?.with_usage(usage);
    anyhow::ensure!(
        paid == run.succeeded as i64,
        "the sandbox paid {paid} fen for {} succeeded refunds of 1 fen",
        run.succeeded
    );
    Ok(run)
}

impl PipelineRun {
    /// With the worker's peak memory and CPU time per 1000 refunds.
    pub fn with_usage(mut self, usage: Usage) -> Self {
        self.worker_peak_rss_bytes = usage.peak_rss_bytes;
        self.worker_cpu_ms_per_1000 = usage.cpu_ms * 1000 / self.refunds.max(1) as u64;
        self
    }
}

/// [`drive`], with the cost snapshots around it: the worker is stopped
/// before the second, so its backends have flushed their statistics.
pub async fn drive_costed(
    rig: &mut Rig,
    conn: &Connection,
    n: usize,
    load: Load,
) -> anyhow::Result<PipelineRun> {
    let tracked = statements::reset(&rig.pool).await;
    let before = cost::Snapshot::take(&rig.pool).await?;
    let from = wal::position(&rig.pool).await?;
    let mut run = drive(rig, conn, n, load).await?;
    let usage = rig.stop_worker();
    let after = cost::Snapshot::take(&rig.pool).await?;
    let to = wal::position(&rig.pool).await?;
    run.cost = cost::between(&before, &after, usage.cpu_ms, n);
    if tracked {
        run.cost.statements = statements::top(&rig.pool, n, 10).await;
    }
    run.cost.wal_by_relation = wal::by_relation(&rig.pool, &from, &to, n).await;
    Ok(run)
}

/// Publishes `n` refunds for the rig's partner as `load` says and consumes
/// their result events: the run's figures (the worker's usage comes with
/// `Rig::finish`).
pub async fn drive(
    rig: &mut Rig,
    conn: &Connection,
    n: usize,
    load: Load,
) -> anyhow::Result<PipelineRun> {
    let topology = &rig.topology;
    let results = topology
        .results_queue
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no results queue"))?;
    let consuming = tokio::spawn(consume(conn.create_channel().await?, results, n));
    wait_for_consumers(&rig.channel, &topology.approved_queue, &mut rig.children).await?;
    let sent_at = publish_load(&rig.channel, topology, &rig.partner, n, load).await?;
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
    .fetch_all(&rig.pool)
    .await?;
    let timings = Timings::new(&rows, &sent_at, &consumed);
    let batched = rig.batched;
    Ok(PipelineRun {
        refunds: n,
        took_ms: took.as_millis() as u64,
        refunds_per_second: rate(n, took).round() as u64,
        publish_to_result: percentiles(timings.to_result),
        publish_to_accepted: percentiles(timings.to_accepted),
        stages: batched.then_some(timings.stages),
        requests_per_1000: match batched {
            true => Some(batch_requests_per_1000(&rig.pool, n).await?),
            false => None,
        },
        succeeded,
        worker_peak_rss_bytes: 0,
        worker_cpu_ms_per_1000: 0,
        cost: Cost::default(),
        postgresql: rig.postgresql.clone(),
    })
}

/// Submission requests per 1000 refunds (1 = one per full batch).
async fn batch_requests_per_1000(pool: &PgPool, n: usize) -> anyhow::Result<u64> {
    let requests: i64 = sqlx::query_scalar("SELECT COALESCE(sum(attempts), 0)::int8 FROM batches")
        .fetch_one(pool)
        .await?;
    Ok((requests.max(0) as u64 * 1000).div_ceil(n as u64))
}

/// Publishes the `n` refunds as `load` says; returns when each was sent.
async fn publish_load(
    channel: &lapin::Channel,
    topology: &Topology,
    partner: &str,
    n: usize,
    load: Load,
) -> anyhow::Result<Vec<DateTime<Utc>>> {
    let start = Instant::now();
    let mut sent_at: Vec<DateTime<Utc>> = Vec::with_capacity(n);
    let body = |i: usize| {
        format!(
            r#"{{"refund_id":"P-{i}","trade_no":"{}","amount":"0.01","partner":"{partner}"}}"#,
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
