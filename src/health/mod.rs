//! What an operator's tooling reads from the `http` role: `GET /healthz`
//! (the process lives), `GET /readyz` (migrations applied and topology
//! declared — both happen before the role starts — and the database and the
//! broker reachable now), and `GET /metrics` (Prometheus text). The gauges
//! that describe the whole system (backlogs and ages) are read from the
//! database at each scrape, so every replica reports the same values; the
//! counters are this process's own and sum across replicas.

pub mod describe;
pub mod gate;

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

use crate::storage;

/// How long a readiness probe waits for the database or the broker.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Gateway latency buckets, seconds.
const GATEWAY_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0,
];
/// Batch size buckets, items.
const BATCH_BUCKETS: &[f64] = &[1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 750.0, 1000.0];

/// Installs the process's Prometheus recorder with explicit buckets, and
/// describes every metric to it (`# HELP` lines; see [`describe`]).
pub fn install_recorder() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("refund_worker_gateway_seconds".into()),
            GATEWAY_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full("refund_worker_batch_size".into()),
            BATCH_BUCKETS,
        )?
        .install_recorder()?;
    describe::register();
    Ok(handle)
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
    let db = tokio::time::timeout(PROBE_TIMEOUT, storage::health::ping(&s.pool)).await;
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

/// The whole system's backlogs and ages (whole seconds), from the database.
async fn refresh_gauges(pool: &PgPool) -> Result<(), sqlx::Error> {
    let g = storage::health::gauges(pool).await?;
    let count = |rows: &[(String, i64)], key: &str| {
        rows.iter().find(|(k, _)| k == key).map_or(0, |(_, n)| *n) as f64
    };
    for state in ["pending", "batched", "submitted"] {
        metrics::gauge!("refund_worker_refunds", "status" => state)
            .set(count(&g.refunds_by_status, state));
    }
    metrics::gauge!("refund_worker_outbox_backlog").set(g.outbox_backlog as f64);
    metrics::gauge!("refund_worker_outbox_oldest_seconds").set(g.outbox_oldest_seconds as f64);
    metrics::gauge!("refund_worker_oldest_pending_seconds").set(g.oldest_pending_seconds as f64);
    metrics::gauge!("refund_worker_oldest_submitted_seconds")
        .set(g.oldest_submitted_seconds as f64);
    metrics::gauge!("refund_worker_partners_paused").set(g.partners_paused as f64);
    metrics::gauge!("refund_worker_batches_awaiting_operator")
        .set(g.batches_awaiting_operator as f64);
    // Items Alipay left open, by why: `needs_person` and `amount_mismatch`
    // wait for an operator; `alipay_retries` for Alipay's own later result.
    for class in ["alipay_retries", "needs_person", "amount_mismatch"] {
        metrics::gauge!("refund_worker_unresolved_items", "class" => class)
            .set(count(&g.open_items_by_class, class));
    }
    metrics::gauge!("refund_worker_batches_held").set(g.batches_held as f64);
    metrics::gauge!("refund_worker_openapi_requests_held").set(g.openapi_held as f64);
    metrics::gauge!("refund_worker_double_payment_suspects").set(g.double_payment_suspects as f64);
    metrics::gauge!("refund_worker_batches_outcome_unknown").set(g.batches_outcome_unknown as f64);
    metrics::gauge!("refund_worker_oldest_outcome_unknown_seconds")
        .set(g.oldest_outcome_unknown_seconds as f64);
    Ok(())
}
