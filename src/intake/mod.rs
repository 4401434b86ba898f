//! The intake role: consumes `refunds.approved` in windows and stores them.
//!
//! Owns the broker session (reconnecting with backoff when it is lost) and the
//! windowing; what a window does lives in [`window`] (parse, then [`store`],
//! then [`verdict`] and [`publish`] for the dead letters, then [`settle`]). Up to [`IN_FLIGHT`]
//! windows are stored at once (each its own transaction) while the next one
//! fills; they are settled with the broker strictly in delivery order, since a
//! `multiple` ack covers every earlier delivery. The prefetch fits exactly the
//! windows in flight plus the one filling. A window holding a delivery the
//! broker has handed back is cut small ([`at_risk`]), so a crash loop cannot
//! walk valid events to the delivery limit.
//!
//! Cancel safety: deliveries are buffered outside the `select!`, so cutting a
//! window never drops one (a dropped delivery would later be acked, by a
//! `multiple` ack, without having been stored).

mod at_risk;
pub mod dead_letter;
mod publish;
mod settle;
mod store;
mod verdict;
pub(crate) mod window;

use anyhow::Context;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use lapin::Connection;
use lapin::message::Delivery;
use lapin::options::{BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use sqlx::PgPool;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::amqp::{self, Topology};
use crate::config::Settings;
use crate::delays::Delays;
use crate::role_loop::{self, Pace, Role};
use window::AckPlan;
pub use window::WindowReport;

/// Windows being stored at once.
pub const IN_FLIGHT: usize = 3;

/// Everything the intake role needs; cheap to clone.
#[derive(Clone)]
pub struct Intake {
    pub pool: PgPool,
    pub settings: Settings,
    pub topology: Topology,
}

impl Intake {
    /// Runs until `shutdown` ([`role_loop`]), reconnecting to the broker
    /// whenever the session fails. Unacked deliveries go back to the broker
    /// when a session ends.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        role_loop::run(self, shutdown).await
    }

    /// One broker connection: consume windows until shutdown or an error.
    async fn session(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let conn = amqp::connect(&self.settings.amqp.url, "refund-worker intake")
            .await
            .context("while connecting to RabbitMQ (AMQP_URL)")?;
        let result = amqp::liveness::unless_lost(&conn, self.consume(&conn, shutdown)).await;
        amqp::liveness::close(&conn, "intake stopping").await;
        result
    }

    async fn consume(&self, conn: &Connection, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let channel = conn.create_channel().await?;
        self.topology
            .declare(&channel)
            .await
            .context("while declaring the topology")?;
        let window = usize::from(self.settings.intake.window);
        let prefetch = u16::try_from(window * (IN_FLIGHT + 1)).unwrap_or(u16::MAX);
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
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
        tracing::info!(queue = %self.topology.approved_queue, window, prefetch, "intake consuming");
        let cx = window::WindowContext {
            pool: &self.pool,
            publisher: &publisher,
            topology: &self.topology,
            alipay: &self.settings.alipay,
            shutdown,
        };
        let mut filling: Vec<Delivery> = Vec::with_capacity(window);
        // The most the window filling may hold: smaller once it holds a
        // delivery near the delivery limit ([`at_risk`]).
        let mut cap = window;
        let mut cut_at = Instant::now();
        let mut in_flight = FuturesOrdered::new();
        loop {
            let room = in_flight.len() < IN_FLIGHT;
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    if !settle(done?).await? {
                        return Ok(());
                    }
                }
                next = consumer.next(), if room && filling.len() < cap => match next {
                    Some(d) => {
                        let d = d?;
                        if filling.is_empty() {
                            cut_at = Instant::now() + self.settings.intake.window_wait;
                        }
                        cap = cap.min(at_risk::window_cap(at_risk::times_returned(&d), window));
                        filling.push(d);
                    }
                    None => anyhow::bail!("the broker cancelled the consumer"),
                },
                _ = tokio::time::sleep_until(cut_at), if room && !filling.is_empty() => {
                    in_flight.push_back(window::process_owned(&cx, std::mem::take(&mut filling)));
                    cap = window;
                }
            }
            if in_flight.len() < IN_FLIGHT && filling.len() >= cap {
                in_flight.push_back(window::process_owned(&cx, std::mem::take(&mut filling)));
                cap = window;
            }
        }
        // Stopping: windows already being stored finish and are settled, in
        // order; the one still filling stays unacked and goes back to the
        // broker when the channel closes.
        while let Some(done) = in_flight.next().await {
            if !settle(done?).await? {
                break;
            }
        }
        Ok(())
    }
}

/// Intake's step is a whole broker session: it returns only at shutdown
/// (done) or when the session is lost (an error: reconnect after the backoff).
impl Role for Intake {
    const NAME: &'static str = "intake";

    fn backoff(&self) -> Delays {
        Delays::reconnect()
    }

    async fn work(&mut self, shutdown: &CancellationToken) -> anyhow::Result<Pace> {
        self.session(shutdown)
            .await
            .context("intake lost its broker session")?;
        Ok(Pace::Done)
    }
}

/// Settles one window; `false` when it must stay unacked, which ends the
/// session (acking anything later would cover it too).
async fn settle(done: window::Settled) -> anyhow::Result<bool> {
    tracing::debug!(report = ?done.report, "window done");
    if matches!(done.ack, AckPlan::LeaveUnacked) {
        return Ok(false);
    }
    done.ack.apply().await?;
    Ok(true)
}
