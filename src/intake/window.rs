//! One window of deliveries: parse each, store the valid ones in one
//! transaction, dead-letter the rest with confirms, and say how to settle the
//! window with the broker ([`AckPlan`]). The caller settles windows strictly in
//! delivery order, because a `multiple` ack covers every earlier delivery.
//!
//! Invariant: nothing is acked before its outcome is durable. The store commits
//! first; dead letters are confirmed next; only then the ack. A crash anywhere
//! in between redelivers the window, and redelivery is harmless: stored refunds
//! come back as duplicates.

use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use lapin::Acker;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicPublishOptions};
use lapin::{Channel, Confirmation};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::dead_letter;
use crate::amqp::Topology;
use crate::config::AlipaySettings;
use crate::delays::{Delays, sleep_or_stop};
use crate::domain::refund_request::parse;
use crate::domain::{ErrorCode, Rejection, format_fen};
use crate::storage::intake::{NewRefund, StoreOutcome, store_window};

/// What became of a window's deliveries.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WindowReport {
    pub stored: usize,
    pub duplicates: usize,
    pub dead_lettered: Vec<ErrorCode>,
    /// Deliveries handed back to the broker (shutdown during a database outage,
    /// or a row the database refuses): they will be delivered again.
    pub returned: usize,
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
    fn into_each(self) -> Vec<(Acker, bool)> {
        match self {
            AckPlan::UpTo(acker) => vec![(acker, true)],
            AckPlan::Each(items) => items,
            AckPlan::LeaveUnacked => Vec::new(),
        }
    }
}

/// What a window needs besides its deliveries.
pub struct WindowContext<'a> {
    pub pool: &'a PgPool,
    pub publisher: &'a Channel,
    pub topology: &'a Topology,
    pub alipay: &'a AlipaySettings,
    pub shutdown: &'a CancellationToken,
}

/// [`process`] for a window it owns (what the pipeline keeps in flight).
pub async fn process_owned(
    cx: &WindowContext<'_>,
    deliveries: Vec<Delivery>,
) -> anyhow::Result<Settled> {
    process(cx, &deliveries).await
}

/// Handles a window whose deliveries are consecutive on one channel.
pub async fn process(cx: &WindowContext<'_>, deliveries: &[Delivery]) -> anyhow::Result<Settled> {
    let Some(last) = deliveries.last() else {
        return Ok(Settled {
            report: WindowReport::default(),
            ack: AckPlan::Each(Vec::new()),
        });
    };
    let parsed: Vec<Result<_, Rejection>> = deliveries
        .iter()
        .map(|d| parse(&d.data, cx.alipay))
        .collect();
    let message_ids: Vec<Option<String>> = deliveries
        .iter()
        .map(|d| {
            d.properties
                .message_id()
                .as_ref()
                .map(|m| m.as_str().to_owned())
        })
        .collect();
    let news: Vec<NewRefund> = parsed
        .iter()
        .zip(&message_ids)
        .filter_map(|(p, id)| {
            p.as_ref().ok().map(|request| NewRefund {
                request,
                message_id: id.as_deref(),
            })
        })
        .collect();

    let outcomes = match store_with_retry(cx, &news).await {
        Stored::Done(outcomes) => outcomes,
        Stored::ShuttingDown => {
            let report = WindowReport {
                returned: deliveries.len(),
                ..Default::default()
            };
            return Ok(Settled {
                report,
                ack: AckPlan::LeaveUnacked,
            });
        }
        Stored::Refused(e) if deliveries.len() > 1 => {
            // One row the database will not take must not block the others:
            // go one by one, so only that delivery is handed back.
            tracing::error!(error = %e, "the database refused a window; storing its deliveries one by one");
            let mut report = WindowReport::default();
            let mut each = Vec::new();
            for d in deliveries {
                let one = Box::pin(process(cx, std::slice::from_ref(d))).await?;
                if matches!(one.ack, AckPlan::LeaveUnacked) {
                    return Ok(Settled {
                        report: WindowReport {
                            returned: deliveries.len(),
                            ..Default::default()
                        },
                        ack: AckPlan::LeaveUnacked,
                    });
                }
                report.stored += one.report.stored;
                report.duplicates += one.report.duplicates;
                report.dead_lettered.extend(one.report.dead_lettered);
                report.returned += one.report.returned;
                each.extend(one.ack.into_each());
            }
            return Ok(Settled {
                report,
                ack: AckPlan::Each(each),
            });
        }
        Stored::Refused(e) => {
            // Requeued, the broker counts the delivery and dead-letters it after
            // the queue's delivery limit: a bug cannot loop forever.
            tracing::error!(error = %e, "the database refused a delivery; handing it back to the broker");
            let report = WindowReport {
                returned: 1,
                ..Default::default()
            };
            return Ok(Settled {
                report,
                ack: AckPlan::Each(vec![(last.acker.clone(), false)]),
            });
        }
    };

    let mut report = WindowReport::default();
    let mut outcome = outcomes.into_iter();
    let mut letters = Vec::new();
    for (delivery, parsed) in deliveries.iter().zip(&parsed) {
        let rejection = match parsed {
            Err(rejection) => rejection.clone(),
            Ok(request) => match outcome.next() {
                Some(StoreOutcome::Stored) => {
                    report.stored += 1;
                    continue;
                }
                Some(StoreOutcome::Duplicate) => {
                    report.duplicates += 1;
                    continue;
                }
                Some(StoreOutcome::Conflict { stored }) => Rejection::new(
                    ErrorCode::ConflictingDuplicate,
                    format!(
                        "refund_id {} is already stored for trade {} amount {} partner {}, not trade {} amount {} partner {}",
                        request.refund_id,
                        stored.trade_no,
                        format_fen(stored.amount_fen),
                        stored.partner,
                        request.trade_no,
                        request.amount,
                        request.partner,
                    ),
                ),
                Some(StoreOutcome::ExceedsTradeAmount {
                    counted_fen,
                    trade_amount_fen,
                }) => Rejection::new(
                    ErrorCode::ExceedsTradeAmount,
                    format!(
                        "trade {} already has {} in refunds; {} more would exceed its total of {}",
                        request.trade_no,
                        format_fen(counted_fen),
                        request.amount,
                        format_fen(trade_amount_fen),
                    ),
                ),
                None => anyhow::bail!("storage returned fewer outcomes than valid deliveries"),
            },
        };
        tracing::warn!(code = %rejection.code, reason = %rejection.message, "dead-lettering a refund-approved event");
        report.dead_lettered.push(rejection.code);
        letters.push((delivery, rejection));
    }
    if let Published::ShuttingDown = publish_dead_letters(cx, &letters).await? {
        return Ok(Settled {
            report: WindowReport {
                returned: deliveries.len(),
                ..Default::default()
            },
            ack: AckPlan::LeaveUnacked,
        });
    }
    record_metrics(&report);
    Ok(Settled {
        report,
        ack: AckPlan::UpTo(last.acker.clone()),
    })
}

enum Published {
    Done,
    ShuttingDown,
}

/// Publishes a window's dead letters and waits for their confirms. A letter
/// the broker refuses (a nack, or returned unroutable: the dead-letter queue
/// not available yet, as after a broker restart) is published again after a
/// backoff while the window is held, until shutdown. Ending the session
/// instead would hand back every delivery it holds, and each hand-back
/// counts towards the queue's delivery limit: a few quick failures would
/// have the broker dead-letter the whole window, valid refunds included.
/// A channel that is gone is still an error: nothing can be settled on it.
async fn publish_dead_letters(
    cx: &WindowContext<'_>,
    letters: &[(&Delivery, Rejection)],
) -> anyhow::Result<Published> {
    let mut delays = holding_delays();
    let mut pending: Vec<&(&Delivery, Rejection)> = letters.iter().collect();
    while !pending.is_empty() {
        let mut confirms = Vec::with_capacity(pending.len());
        for letter in pending {
            let (delivery, rejection) = letter;
            let props = dead_letter::properties(
                &delivery.properties,
                delivery.exchange.as_str(),
                delivery.routing_key.as_str(),
                rejection,
                Utc::now(),
            );
            let confirm = cx
                .publisher
                .basic_publish(
                    cx.topology.dead_letter_exchange.as_str().into(),
                    delivery.routing_key.clone(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    &delivery.data,
                    props,
                )
                .await
                .context("while publishing a dead letter")?;
            confirms.push((letter, confirm));
        }
        let mut refused = Vec::new();
        for (letter, confirm) in confirms {
            match confirm
                .await
                .context("while awaiting a dead letter's confirm")?
            {
                Confirmation::Ack(None) | Confirmation::NotRequested => {}
                other => {
                    tracing::debug!(answer = ?other, "the broker did not take a dead letter");
                    refused.push(letter);
                }
            }
        }
        if refused.is_empty() {
            break;
        }
        let delay = delays.next_delay();
        tracing::warn!(
            refused = refused.len(),
            retry_in_ms = delay.as_millis() as u64,
            "the broker did not take dead letters; holding the window unacked"
        );
        metrics::counter!("refund_worker_intake_dead_letter_refusals_total")
            .increment(refused.len() as u64);
        if !sleep_or_stop(cx.shutdown, delay).await {
            return Ok(Published::ShuttingDown);
        }
        pending = refused;
    }
    Ok(Published::Done)
}

/// Between two tries while a window is held: 0.1 s up to 5 s.
fn holding_delays() -> Delays {
    Delays::new(Duration::from_millis(100), Duration::from_secs(5))
}

enum Stored {
    Done(Vec<StoreOutcome>),
    ShuttingDown,
    Refused(sqlx::Error),
}

/// Retries transient database errors with capped exponential backoff for as
/// long as it takes (the deliveries wait, unacked, in the broker), until shutdown.
async fn store_with_retry(cx: &WindowContext<'_>, news: &[NewRefund<'_>]) -> Stored {
    if news.is_empty() {
        return Stored::Done(Vec::new());
    }
    let mut delays = holding_delays();
    loop {
        match store_window(cx.pool, news).await {
            Ok(outcomes) => return Stored::Done(outcomes),
            Err(e) if !is_transient(&e) => return Stored::Refused(e),
            Err(e) => {
                let delay = delays.next_delay();
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "cannot store a window; holding it unacked");
                metrics::counter!("refund_worker_intake_store_errors_total").increment(1);
                if !sleep_or_stop(cx.shutdown, delay).await {
                    return Stored::ShuttingDown;
                }
            }
        }
    }
}

/// Errors about the data itself (class 22, data exception; class 23, integrity)
/// will fail again however long we wait; anything else may pass.
fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => !matches!(
            db.code().as_deref().map(|c| &c[..2.min(c.len())]),
            Some("22" | "23")
        ),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::TypeNotFound { .. } => false,
        _ => true,
    }
}

fn record_metrics(report: &WindowReport) {
    metrics::counter!("refund_worker_intake_total", "outcome" => "stored")
        .increment(report.stored as u64);
    metrics::counter!("refund_worker_intake_total", "outcome" => "duplicate")
        .increment(report.duplicates as u64);
    for code in &report.dead_lettered {
        metrics::counter!("refund_worker_intake_total", "outcome" => "dead_lettered").increment(1);
        metrics::counter!("refund_worker_dead_lettered_total", "code" => code.as_str())
            .increment(1);
    }
}
