//! Publishing refund-approved events the way upstream services are asked
//! to (contract §2): persistent, mandatory, with a message id, confirmed by
//! the broker. Used by `refund-worker publish` and by the tests, which
//! publish exactly as a producer would.

use anyhow::Context;
use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Channel, Confirmation, PublisherConfirm};

use super::Topology;
use super::topology::APPROVED_KEY;

/// Publishes one event body with the properties upstream services are asked to use.
pub async fn publish_one(
    channel: &Channel,
    topology: &Topology,
    body: &[u8],
) -> anyhow::Result<PublisherConfirm> {
    let props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(uuid::Uuid::new_v4().to_string().into());
    channel
        .basic_publish(
            topology.refunds_exchange.as_str().into(),
            APPROVED_KEY.into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            body,
            props,
        )
        .await
        .context("while publishing")
}

/// Awaits every pending confirm; returns how many the broker took and routed.
pub async fn await_confirms(pending: &mut Vec<PublisherConfirm>) -> anyhow::Result<usize> {
    let mut ok = 0;
    for confirm in pending.drain(..) {
        match confirm.await.context("while awaiting a confirm")? {
            Confirmation::Ack(None) => ok += 1,
            Confirmation::Ack(Some(returned)) => {
                tracing::warn!(reply = %returned.reply_text, "an event was unroutable");
            }
            Confirmation::Nack(_) => tracing::warn!("the broker refused an event (queue full?)"),
            Confirmation::NotRequested => {}
        }
    }
    Ok(ok)
}
