//! The outbox relay: result events from the `outbox` table to the
//! `refunds.results` exchange (contract §4).
//!
//! A step claims a window of unpublished rows (`FOR UPDATE SKIP LOCKED`, so
//! relays in other processes take other rows), writes each event's JSON
//! from its stored facts ([`body`]), publishes them persistent, with
//! `mandatory`, `message_id` = `event_id`, `type` = the routing key,
//! `correlation_id` = `refund_id`, `app_id`, `timestamp`, and `metadata`
//! exactly as upstream sent it (`payload`), awaits the confirms together and
//! marks the confirmed ones published in one statement, all inside the claim's
//! transaction. An unroutable or refused event stays unpublished and is retried
//! with a growing delay. A crash after publishing and before the commit
//! publishes the window again: delivery is at least once, and consumers
//! deduplicate on `event_id`. `LISTEN outbox` wakes the relay; a poll backs it up.

mod body;
mod payload;

use std::time::Duration;

use crate::amqp::{self, Topology};
use crate::delays::Delays;
use crate::role_loop::{self, Pace, Role};
use crate::storage::outbox::{self as store, DueEvent};
use anyhow::Context;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

/// Rows per step.
const WINDOW: i64 = 500;
/// The AMQP `app_id` of every result event.
const APP_ID: &str = "refund-worker";
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
        let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or_default();
        for row in &rows {
            let DueEvent {
                event_id,
                refund_id,
                routing_key,
                ..
            } = row;
            let props = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/json".into())
                .with_message_id(event_id.to_string().into())
                .with_type(routing_key.as_str().into())
                .with_correlation_id(refund_id.as_str().into())
                .with_app_id(APP_ID.into())
                .with_timestamp(now);
            let payload = wire_bytes(row)?;
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
                due_at,
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
                Confirmation::Ack(None) => published.push((*due_at, *event_id)),
                other => {
                    tracing::warn!(%event_id, routing_key, ?other, "result event not taken (unroutable or refused); kept for a retry");
                    kept.push((*due_at, *event_id));
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

    /// Relays until shutdown ([`role_loop`]), reconnecting to the broker
    /// and the listener as needed.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let relaying = Relaying {
            relay: self,
            session: None,
        };
        role_loop::run(relaying, shutdown).await
    }
}

/// A refund's result events, oldest first, published or not: each routing
/// key and the JSON the relay sends (or sent) for it. For tests and tools,
/// which must check what goes out, not what is stored.
pub async fn events_of(
    pool: &PgPool,
    refund_id: &str,
) -> anyhow::Result<Vec<(String, serde_json::Value)>> {
    let mut events = Vec::new();
    for row in store::events_of(pool, refund_id).await? {
        let json = serde_json::from_slice(&wire_bytes(&row)?)?;
        events.push((row.routing_key, json));
    }
    Ok(events)
}

/// The bytes an event goes out as: the JSON written from its facts, or the
/// JSON stored for an event written before migration 32.
fn wire_bytes(row: &DueEvent) -> serde_json::Result<Vec<u8>> {
    match &row.legacy_body {
        Some(stored) => payload::payload(stored, &row.metadata),
        None => payload::payload(&body::body(row), &row.metadata),
    }
}

/// A broker channel with confirms and a `LISTEN outbox`, held between steps.
struct Session {
    conn: lapin::Connection,
    channel: Channel,
    listener: PgListener,
}

/// The relay as a role: at once while a window was published; otherwise
/// until a NOTIFY or the poll. A failed step drops the session, and the
/// next one opens a new one after the reconnect backoff.
struct Relaying {
    relay: Relay,
    session: Option<Session>,
}

impl Relaying {
    async fn open(&self) -> anyhow::Result<Session> {
        let conn = amqp::connect(&self.relay.amqp_url, "refund-worker relay").await?;
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let mut listener = PgListener::connect_with(&self.relay.pool).await?;
        listener.listen("outbox").await?;
        Ok(Session {
            conn,
            channel,
            listener,
        })
    }
}

impl Role for Relaying {
    const NAME: &'static str = "relay";

    fn backoff(&self) -> Delays {
        Delays::reconnect()
    }

    async fn work(&mut self, _: &CancellationToken) -> anyhow::Result<Pace> {
        if self.session.is_none() {
            self.session = Some(self.open().await?);
        }
        let Some(session) = &self.session else {
            return Ok(Pace::Busy);
        };
        let step = self.relay.step(&session.channel);
        match amqp::liveness::unless_lost(&session.conn, step).await {
            Ok(step) if step.published > 0 => Ok(Pace::Busy),
            Ok(_) => Ok(Pace::Idle(POLL)),
            Err(e) => {
                self.session = None;
                Err(e)
            }
        }
    }

    async fn idle(&mut self, wait: Duration) {
        let Some(session) = &mut self.session else {
            return;
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            n = session.listener.recv() => {
                if n.is_err() {
                    self.session = None;
                }
            }
        }
    }

    async fn finish(&mut self) {
        if let Some(session) = self.session.take() {
            amqp::liveness::close(&session.conn, "relay stopping").await;
        }
    }
}
