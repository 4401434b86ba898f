//! Publishing a window's dead letters to the dead-letter exchange and
//! waiting for the broker's confirms.
//!
//! Invariant: [`publish_dead_letters`] returns `Done` only when the broker
//! has confirmed and routed every letter, so the originals may then be acked.

use anyhow::Context;
use chrono::Utc;
use lapin::Confirmation;
use lapin::message::Delivery;
use lapin::options::BasicPublishOptions;

use super::dead_letter;
use super::window::{WindowContext, holding_delays};
use crate::delays::sleep_or_stop;
use crate::domain::Rejection;

pub(super) enum Published {
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
pub(super) async fn publish_dead_letters(
    cx: &WindowContext<'_>,
    letters: &[Letter<'_>],
) -> anyhow::Result<Published> {
    let mut delays = holding_delays();
    let mut pending: Vec<&Letter> = letters.iter().collect();
    while !pending.is_empty() {
        let refused = publish_round(cx, pending).await?;
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

/// One delivery to dead-letter and why.
type Letter<'d> = (&'d Delivery, Rejection);

/// Publishes every pending letter, then awaits all their confirms (so the
/// broker confirms them together); returns the letters it did not take.
async fn publish_round<'l, 'd>(
    cx: &WindowContext<'_>,
    pending: Vec<&'l Letter<'d>>,
) -> anyhow::Result<Vec<&'l Letter<'d>>> {
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
    Ok(refused)
}
