//! How a processed window is settled with the broker: what became of its
//! deliveries ([`WindowReport`]) and the acks that say so ([`AckPlan`]).
//!
//! Invariant: plans are applied strictly in delivery order, because a
//! `multiple` ack covers every earlier delivery on the channel.

use anyhow::Context;
use lapin::Acker;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};

/// What became of a window's deliveries.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WindowReport {
    pub stored: usize,
    pub duplicates: usize,
    pub dead_lettered: Vec<crate::domain::ErrorCode>,
    /// Deliveries handed back to the broker (shutdown during a database outage,
    /// or a row the database refuses): they will be delivered again.
    pub returned: usize,
}

impl WindowReport {
    /// Adds another window's counts to this one (a window stored one by one).
    pub(super) fn add(&mut self, other: WindowReport) {
        self.stored += other.stored;
        self.duplicates += other.duplicates;
        self.dead_lettered.extend(other.dead_lettered);
        self.returned += other.returned;
    }

    /// Counts the stored, duplicate and dead-lettered deliveries.
    pub(super) fn record_metrics(&self) {
        metrics::counter!("refund_worker_intake_total", "outcome" => "stored")
            .increment(self.stored as u64);
        metrics::counter!("refund_worker_intake_total", "outcome" => "duplicate")
            .increment(self.duplicates as u64);
        for code in &self.dead_lettered {
            metrics::counter!("refund_worker_intake_total", "outcome" => "dead_lettered")
                .increment(1);
            metrics::counter!("refund_worker_dead_lettered_total", "code" => code.as_str())
                .increment(1);
        }
    }
}

/// How to settle a processed window with the broker.
#[derive(Debug)]
pub enum AckPlan {
    /// Everything up to and including this delivery: one `multiple` ack.
    UpTo(Acker),
    /// Delivery by delivery: `true` acks, `false` hands back (requeue, which
    /// counts against the queue's delivery limit).
    Each(Vec<(Acker, bool)>),
    /// Leave the window unacked (shutdown during an outage); the session must
    /// end without acking anything later, and the broker redelivers it.
    LeaveUnacked,
}

/// A processed window: what happened and how to settle it.
#[derive(Debug)]
pub struct Settled {
    pub report: WindowReport,
    pub ack: AckPlan,
}

impl Settled {
    /// An empty window: nothing happened, nothing to ack.
    pub(super) fn empty() -> Self {
        Settled {
            report: WindowReport::default(),
            ack: AckPlan::Each(Vec::new()),
        }
    }

    /// The whole window of `len` deliveries stays unacked (shutdown while it
    /// was held): the broker delivers it again.
    pub(super) fn left_unacked(len: usize) -> Self {
        Settled {
            report: WindowReport {
                returned: len,
                ..Default::default()
            },
            ack: AckPlan::LeaveUnacked,
        }
    }

    /// The one delivery is handed back to the broker (requeued).
    pub(super) fn handed_back(delivery: &Delivery) -> Self {
        Settled {
            report: WindowReport {
                returned: 1,
                ..Default::default()
            },
            ack: AckPlan::Each(vec![(delivery.acker.clone(), false)]),
        }
    }
}

impl AckPlan {
    /// Settles with the broker. Must be called in delivery order.
    pub async fn apply(self) -> anyhow::Result<()> {
        match self {
            AckPlan::UpTo(acker) => {
                acker
                    .ack(BasicAckOptions { multiple: true })
                    .await
                    .context("while acking a stored window")?;
            }
            AckPlan::Each(items) => {
                for (acker, ok) in items {
                    if ok {
                        acker.ack(BasicAckOptions { multiple: false }).await?;
                    } else {
                        acker
                            .nack(BasicNackOptions {
                                multiple: false,
                                requeue: true,
                            })
                            .await?;
                    }
                }
            }
            AckPlan::LeaveUnacked => {}
        }
        Ok(())
    }

    /// The plan as individual verdicts (for windows split one by one).
    pub(super) fn into_each(self) -> Vec<(Acker, bool)> {
        match self {
            AckPlan::UpTo(acker) => vec![(acker, true)],
            AckPlan::Each(items) => items,
            AckPlan::LeaveUnacked => Vec::new(),
        }
    }
}
