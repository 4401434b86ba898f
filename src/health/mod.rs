//! What an operator's tooling reads from the `http` role: `GET /healthz`
//! (the process lives), `GET /readyz` (migrations applied and topology
//! declared — both happen before the role starts — and the database and the
//! broker reachable now), and `GET /metrics` (Prometheus text). The gauges
//! that describe the whole system (backlogs and ages) are read from the
//! database at each scrape, so every replica reports the same values; the
//! counters are this process's own and sum across replicas.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use lapin::Connection;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;
use tokio::sync::Mutex;

/// How long a readiness probe waits for the database or the broker.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Gateway latency buckets, seconds.
const GATEWAY_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0,
];
/// Batch size buckets, items.
const BATCH_BUCKETS: &[f64] = &[1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 750.0, 1000.0];

/// Installs the process's Prometheus recorder with explicit buckets.
pub fn install_recorder() -> anyhow::Result<PrometheusHandle> {
    Ok(PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("refund_worker_gateway_seconds".into()),
            GATEWAY_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full("refund_worker_batch_size".into()),
            BATCH_BUCKETS,
        )?
        .install_recorder()?)
}

#[derive(Clone)]
pub struct HealthState {
    pub pool: PgPool,
    pub amqp_url: String,
    pub metrics: PrometheusHandle,
    /// The probe's own broker connection, reopened when it dropped.
    pub broker: Arc<Mutex<Option<Connection>>>,
}

impl HealthState {
    pub fn new(pool: PgPool, amqp_url: String, metrics: PrometheusHandle) -> Self {
        Self {
            pool,
            amqp_url,
            metrics,
            broker: Arc::new(Mutex::new(None)),
        }
    }
}

pub fn router(state: HealthState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(state)
}

async fn readyz(State(s): State<HealthState>) -> (StatusCode, String) {
    let mut problems = Vec::new();
    let db = tokio::time::timeout(PROBE_TIMEOUT, sqlx::query("SELECT 1").execute(&s.pool)).await;
    match db {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => problems.push(format!("database: {e}")),
        Err(_) => problems.push("database: no answer within 2 s".into()),
    }
    if let Err(e) = broker_up(&s).await {
        problems.push(format!("broker: {e}"));
    }
    if problems.is_empty() {
        (StatusCode::OK, "ready".into())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, problems.join("; "))
    }
}

async fn broker_up(s: &HealthState) -> Result<(), String> {
    let mut held = s.broker.lock().await;
    if held.as_ref().is_some_and(|c| c.status().connected()) {
        return Ok(());
    }
    let connect = crate::amqp::connect(&s.amqp_url, "refund-worker readyz");
    match tokio::time::timeout(PROBE_TIMEOUT, connect).await {
        Ok(Ok(conn)) => {
            *held = Some(conn);
            Ok(())
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 2 s".into()),
    }
}

async fn metrics_text(State(s): State<HealthState>) -> (StatusCode, String) {
    if let Err(e) = refresh_gauges(&s.pool).await {
        tracing::warn!(error = %e, "metrics: cannot read the gauges from the database");
        metrics::gauge!("refund_worker_database_up").set(0.0);
    } else {
        metrics::gauge!("refund_worker_database_up").set(1.0);
    }
    (StatusCode::OK, s.metrics.render())
}

/// The whole system's backlogs and ages (whole seconds), from cheap indexed queries.
async fn refresh_gauges(pool: &PgPool) -> Result<(), sqlx::Error> {
    let by_state: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, count(*) FROM refunds WHERE status IN ('pending', 'batched', 'submitted') GROUP BY status",
    )
    .fetch_all(pool)
    .await?;
    for state in ["pending", "batched", "submitted"] {
        let n = by_state
            .iter()
            .find(|(s, _)| s == state)
            .map_or(0, |(_, n)| *n);
        metrics::gauge!("refund_worker_refunds", "status" => state).set(n as f64);
    }
    let (backlog, outbox_age): (i64, i64) = sqlx::query_as(
        "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::int8
         FROM outbox WHERE published_at IS NULL",
    )
    .fetch_one(pool)
    .await?;
    metrics::gauge!("refund_worker_outbox_backlog").set(backlog as f64);
    metrics::gauge!("refund_worker_outbox_oldest_seconds").set(outbox_age as f64);
    let pending_age: i64 = sqlx::query_scalar(
        "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(oldest)), 0)::int8 FROM pending_partners",
    )
    .fetch_one(pool)
    .await?;
    metrics::gauge!("refund_worker_oldest_pending_seconds").set(pending_age as f64);
    let submitted_age: i64 = sqlx::query_scalar(
        "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(submitted_at)), 0)::int8 FROM batches WHERE status = 'submitted'",
    )
    .fetch_one(pool)
    .await?;
    metrics::gauge!("refund_worker_oldest_submitted_seconds").set(submitted_age as f64);
    let paused: i64 =
        sqlx::query_scalar("SELECT count(*) FROM partner_pauses WHERE paused_until > now()")
            .fetch_one(pool)
            .await?;
    metrics::gauge!("refund_worker_partners_paused").set(paused as f64);
    let awaiting: i64 =
        sqlx::query_scalar("SELECT count(*) FROM batches WHERE status = 'awaiting_operator'")
            .fetch_one(pool)
            .await?;
    metrics::gauge!("refund_worker_batches_awaiting_operator").set(awaiting as f64);
    // Items Alipay left open, by why: `needs_person` and `amount_mismatch`
    // wait for an operator; `alipay_retries` for Alipay's own later result.
    let open: Vec<(String, i64)> = sqlx::query_as(
        "SELECT open_class, count(*) FROM batch_items
         WHERE open_code IS NOT NULL AND result_code IS NULL GROUP BY open_class",
    )
    .fetch_all(pool)
    .await?;
    for class in ["alipay_retries", "needs_person", "amount_mismatch"] {
        let n = open.iter().find(|(c, _)| c == class).map_or(0, |(_, n)| *n);
        metrics::gauge!("refund_worker_unresolved_items", "class" => class).set(n as f64);
    }
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM batches WHERE held_at IS NOT NULL AND status IN ('created', 'submitting')",
    )
    .fetch_one(pool)
    .await?;
    metrics::gauge!("refund_worker_batches_held").set(held as f64);
    Ok(())
}
