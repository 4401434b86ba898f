//! The intake role: consumes `refunds.approved` in windows and stores them.
//!
//! Owns the broker session (reconnecting with backoff when it is lost) and the
//! windowing; what a window does lives in [`window`]. Prefetch is twice the
//! window, so the next window arrives while the current one commits.

pub mod dead_letter;
pub mod window;

use std::time::Duration;

use anyhow::Context;
use backon::{BackoffBuilder, ExponentialBuilder};
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::{Connection, Consumer};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::amqp::{self, Topology};
use crate::config::Settings;
pub use window::WindowReport;

/// Everything the intake role needs; cheap to clone.
#[derive(Clone)]
pub struct Intake {
    pub pool: PgPool,
    pub settings: Settings,
    pub topology: Topology,
}

impl Intake {
    /// Runs until `shutdown`, reconnecting to the broker whenever the session
    /// fails. Unacked deliveries go back to the broker when a session ends.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut delays = reconnect_delays();
        while !shutdown.is_cancelled() {
            match self.session(&shutdown).await {
                Ok(()) => break,
                Err(e) => {
                    let delay = delays.next().unwrap_or(Duration::from_secs(10));
                    tracing::warn!(error = %format!("{e:#}"), retry_in_ms = delay.as_millis() as u64, "intake lost its broker session; reconnecting");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
        Ok(())
    }

    /// One broker connection: consume windows until shutdown or an error.
    async fn session(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let conn = amqp::connect(&self.settings.amqp.url, "refund-worker intake")
            .await
            .context("while connecting to RabbitMQ (AMQP_URL)")?;
        let result = self.consume(&conn, shutdown).await;
        conn.close(200, "intake stopping".into()).await.ok();
        result
    }

    async fn consume(&self, conn: &Connection, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let channel = conn.create_channel().await?;
        self.topology
            .declare(&channel)
            .await
            .context("while declaring the topology")?;
        let window = self.settings.intake.window;
        channel
            .basic_qos(window.saturating_mul(2), BasicQosOptions::default())
            .await?;
        let publisher = conn.create_channel().await?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let mut consumer = channel
            .basic_consume(
                self.topology.approved_queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .context("while starting to consume")?;
        tracing::info!(queue = %self.topology.approved_queue, window, "intake consuming");
        let cx = window::WindowContext {
            pool: &self.pool,
            publisher: &publisher,
            topology: &self.topology,
            alipay: &self.settings.alipay,
            shutdown,
        };
        loop {
            let deliveries = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                d = collect(&mut consumer, window.into(), self.settings.intake.window_wait) => d?,
            };
            if deliveries.is_empty() {
                anyhow::bail!("the broker cancelled the consumer");
            }
            let report = window::process(&cx, &deliveries).await?;
            tracing::debug!(?report, "window done");
        }
    }
}

/// Waits for one delivery, then gathers more until the window is full or
/// `wait` has passed. An empty result means the consumer ended.
async fn collect(
    consumer: &mut Consumer,
    max: usize,
    wait: Duration,
) -> lapin::Result<Vec<Delivery>> {
    let Some(first) = consumer.next().await else {
        return Ok(Vec::new());
    };
    let mut out = vec![first?];
    let deadline = tokio::time::Instant::now() + wait;
    while out.len() < max {
        match tokio::time::timeout_at(deadline, consumer.next()).await {
            Ok(Some(d)) => out.push(d?),
            Ok(None) | Err(_) => break,
        }
    }
    Ok(out)
}

fn reconnect_delays() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(10))
        .with_jitter()
        .without_max_times()
        .build()
}
