//! The outbox relay: result events from the `outbox` table to the
//! `refunds.results` exchange (contract §4).
//!
//! A step claims a window of unpublished rows (`FOR UPDATE SKIP LOCKED`, so
//! relays in other processes take other rows), publishes them persistent, with
//! `mandatory` and `message_id` = `event_id`, awaits the confirms together and
//! marks the confirmed ones published in one statement, all inside the claim's
//! transaction. An unroutable or refused event stays unpublished and is retried
//! with a growing delay. A crash after publishing and before the commit
//! publishes the window again: delivery is at least once, and consumers
//! deduplicate on `event_id`. `LISTEN outbox` wakes the relay; a poll backs it up.

use std::time::Duration;

use crate::amqp::{self, Topology};
use crate::storage::outbox::{self as store, DueEvent};
use anyhow::Context;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

/// Rows per step.
const WINDOW: i64 = 500;
/// The longest the relay sleeps without a NOTIFY.
const POLL: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct Relay {
    pub pool: PgPool,
    pub amqp_url: String,
    pub topology: Topology,
}

/// What one step did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Relayed {
    pub published: usize,
    pub kept: usize,
}

impl Relay {
    /// Publishes one window of due rows on `channel` (confirms enabled).
    pub async fn step(&self, channel: &Channel) -> anyhow::Result<Relayed> {
        let mut tx = self.pool.begin().await?;
        let rows = store::claim_due(&mut tx, WINDOW).await?;
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(Relayed::default());
        }
        let mut confirms = Vec::with_capacity(rows.len());
        for DueEvent {
            event_id,
            routing_key,
            body,
        } in &rows
        {
            let props = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/json".into())
                .with_message_id(event_id.to_string().into());
            let payload = serde_json::to_vec(body)?;
            let confirm = channel
                .basic_publish(
                    self.topology.results_exchange.as_str().into(),
                    routing_key.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    &payload,
                    props,
                )
                .await
                .context("while publishing a result event")?;
            confirms.push(confirm);
        }
        let (mut published, mut kept) = (Vec::new(), Vec::new());
        for (
            DueEvent {
                event_id,
                routing_key,
                ..
            },
            confirm,
        ) in rows.iter().zip(confirms)
        {
            match confirm
                .await
                .context("while awaiting a result event's confirm")?
            {
                Confirmation::Ack(None) => published.push(*event_id),
                other => {
                    tracing::warn!(%event_id, routing_key, ?other, "result event not taken (unroutable or refused); kept for a retry");
                    kept.push(*event_id);
                }
            }
        }
        store::mark_published(&mut tx, &published).await?;
        store::postpone(&mut tx, &kept).await?;
        tx.commit().await?;
        metrics::counter!("refund_worker_events_published_total").increment(published.len() as u64);
        Ok(Relayed {
            published: published.len(),
            kept: kept.len(),
        })
    }

    /// Relays until shutdown, reconnecting to the broker and the listener as needed.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut delay = Duration::from_millis(200);
        while !shutdown.is_cancelled() {
            if let Err(e) = self.session(&shutdown).await {
                tracing::warn!(error = %format!("{e:#}"), "relay session failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
        Ok(())
    }

    async fn session(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let conn = amqp::connect(&self.amqp_url, "refund-worker relay").await?;
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen("outbox").await?;
        loop {
            let step = self.step(&channel).await?;
            if step.published > 0 {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                n = listener.recv() => { n?; }
                _ = tokio::time::sleep(POLL) => {}
            }
        }
        conn.close(200, "relay stopping".into()).await.ok();
        Ok(())
    }
}
