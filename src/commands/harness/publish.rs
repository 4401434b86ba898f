//! The tools' load: a pipelined publisher with confirms, fast enough that
//! the broker, not the publisher, is what a run measures.

use std::collections::VecDeque;

use anyhow::Context;
use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Channel, Confirmation, PublisherConfirm};

/// Confirms in flight before the publisher waits for the oldest.
const IN_FLIGHT: usize = 4000;

/// Publishes `bodies` persistently with confirms, keeping up to `IN_FLIGHT`
/// unconfirmed; returns when every one is confirmed.
pub async fn publish_all(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    bodies: impl Iterator<Item = Vec<u8>>,
) -> anyhow::Result<usize> {
    let mut pending: VecDeque<PublisherConfirm> = VecDeque::with_capacity(IN_FLIGHT);
    let mut confirmed = 0;
    for body in bodies {
        if pending.len() >= IN_FLIGHT {
            confirmed += check(pending.pop_front()).await?;
        }
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into());
        let opts = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        let confirm = channel
            .basic_publish(exchange.into(), routing_key.into(), opts, &body, props)
            .await
            .context("while publishing")?;
        pending.push_back(confirm);
    }
    while let Some(c) = pending.pop_front() {
        confirmed += check(Some(c)).await?;
    }
    Ok(confirmed)
}

async fn check(confirm: Option<PublisherConfirm>) -> anyhow::Result<usize> {
    match confirm {
        None => Ok(0),
        Some(c) => match c.await? {
            Confirmation::Ack(None) => Ok(1),
            other => anyhow::bail!("the broker did not take a benchmark message: {other:?}"),
        },
    }
}
