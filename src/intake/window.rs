//! One window of deliveries: parse each, store the valid ones in one
//! transaction, dead-letter the rest with confirms, then one `multiple` ack.
//!
//! Invariant: nothing is acked before its outcome is durable. The store commits
//! first; dead letters are confirmed next; only then the ack. A crash anywhere
//! in between redelivers the window, and redelivery is harmless: stored refunds
//! come back as duplicates.

use std::time::Duration;

use anyhow::Context;
use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::Utc;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicPublishOptions};
use lapin::{Channel, Confirmation};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::dead_letter;
use crate::amqp::Topology;
use crate::config::AlipaySettings;
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

/// What a window needs besides its deliveries.
pub struct WindowContext<'a> {
    pub pool: &'a PgPool,
    pub publisher: &'a Channel,
    pub topology: &'a Topology,
    pub alipay: &'a AlipaySettings,
    pub shutdown: &'a CancellationToken,
}

/// Handles a window whose deliveries are consecutive on one channel.
pub async fn process(
    cx: &WindowContext<'_>,
    deliveries: &[Delivery],
) -> anyhow::Result<WindowReport> {
    let Some(last) = deliveries.last() else {
        return Ok(WindowReport::default());
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
        Stored::ShuttingDown => return Ok(hand_back(deliveries, last, false).await),
        Stored::Refused(e) if deliveries.len() > 1 => {
            // One row the database will not take must not block the others:
            // go one by one, so only that delivery is handed back.
            tracing::error!(error = %e, "the database refused a window; storing its deliveries one by one");
            let mut report = WindowReport::default();
            for d in deliveries {
                let one = Box::pin(process(cx, std::slice::from_ref(d))).await?;
                report.stored += one.stored;
                report.duplicates += one.duplicates;
                report.dead_lettered.extend(one.dead_lettered);
                report.returned += one.returned;
            }
            return Ok(report);
        }
        Stored::Refused(e) => {
            // Requeued, the broker counts the delivery and dead-letters it after
            // the queue's delivery limit: a bug cannot loop forever.
            tracing::error!(error = %e, "the database refused a delivery; handing it back to the broker");
            return Ok(hand_back(deliveries, last, true).await);
        }
    };

    let mut report = WindowReport::default();
    let mut outcome = outcomes.into_iter();
    let mut confirms = Vec::new();
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
        let props = dead_letter::properties(
            &delivery.properties,
            delivery.exchange.as_str(),
            delivery.routing_key.as_str(),
            &rejection,
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
        confirms.push(confirm);
        report.dead_lettered.push(rejection.code);
    }
    for confirm in confirms {
        match confirm
            .await
            .context("while awaiting a dead letter's confirm")?
        {
            Confirmation::Ack(None) | Confirmation::NotRequested => {}
            other => anyhow::bail!(
                "the broker did not take a dead letter ({other:?}); the window stays unacked"
            ),
        }
    }
    last.acker
        .ack(BasicAckOptions { multiple: true })
        .await
        .context("while acking a stored window")?;
    record_metrics(&report);
    Ok(report)
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
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .build();
    loop {
        match store_window(cx.pool, news).await {
            Ok(outcomes) => return Stored::Done(outcomes),
            Err(e) if !is_transient(&e) => return Stored::Refused(e),
            Err(e) => {
                let delay = delays.next().unwrap_or(Duration::from_secs(5));
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "cannot store a window; holding it unacked");
                metrics::counter!("refund_worker_intake_store_errors_total").increment(1);
                tokio::select! {
                    _ = cx.shutdown.cancelled() => return Stored::ShuttingDown,
                    _ = tokio::time::sleep(delay) => {}
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

/// Returns the window's deliveries to the broker; `requeue` counts against the
/// delivery limit, so it is used only for a delivery that failed on its own.
async fn hand_back(deliveries: &[Delivery], last: &Delivery, count_it: bool) -> WindowReport {
    let nack = BasicNackOptions {
        multiple: true,
        requeue: true,
    };
    if count_it && let Err(e) = last.acker.nack(nack).await {
        tracing::warn!(error = %e, "could not hand a delivery back; the broker will on disconnect");
    }
    // Without an explicit nack the deliveries stay unacked and return to the
    // queue when the channel closes, without counting as a failed delivery.
    WindowReport {
        returned: deliveries.len(),
        ..Default::default()
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
