//! The broker's own ceilings, with the same client library as the worker:
//!
//! - one hop: N persistent ~300-byte messages published with confirms into
//!   a quorum queue and consumed with manual acks, publisher and consumer
//!   running at once, with the intake's prefetch and `multiple` acks;
//! - two hops, what every refund costs the broker at least (the event in,
//!   the result out): the same N into a first quorum queue, a relay that
//!   consumes each, republishes it to a second quorum queue with confirms and
//!   acks the first only once the copies are confirmed, and a consumer of the
//!   second. A pipeline can never pass the two-hop ceiling.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, Consumer};

use super::Phase;
use super::load::{micros_since, percentiles};
use crate::commands::harness::publish::publish_all;

/// Same as intake: prefetch twice its default window of 500.
const PREFETCH: u16 = 1000;
/// Acks with `multiple` every this many deliveries.
const ACK_EVERY: usize = 250;
const BODY_BYTES: usize = 300;

/// One hop: publish → queue → consume.
pub async fn measure(conn: &Connection, prefix: &str, n: usize) -> anyhow::Result<Phase> {
    let queue = format!("{prefix}ceiling");
    let publisher = publisher(conn, &[&queue]).await?;
    let (consumer_channel, consumer) = consumer(conn, &queue).await?;
    let start = Instant::now();
    let consume = tokio::spawn(consume_n(consumer, n, start));
    publish_all(&publisher, "", &queue, bodies(n, start)).await?;
    let (seen, latencies, took, consumer) =
        consume.await.context("the ceiling consumer panicked")??;
    consumer_channel.close(200, "done".into()).await.ok();
    drop(consumer);
    anyhow::ensure!(seen == n, "the ceiling consumer saw {seen} of {n}");
    delete(&publisher, &[&queue]).await;
    Ok(Phase::new("ceiling", n, took, percentiles(latencies)))
}

/// Two hops: publish → first queue → relay (republish with confirms, then
/// ack) → second queue → consume.
pub async fn measure_two_hops(conn: &Connection, prefix: &str, n: usize) -> anyhow::Result<Phase> {
    let (first, second) = (
        format!("{prefix}ceiling.in"),
        format!("{prefix}ceiling.out"),
    );
    let publisher = publisher(conn, &[&first, &second]).await?;
    let (relay_channel, relay_consumer) = consumer(conn, &first).await?;
    let relay_publisher = publisher_channel(conn).await?;
    let (consumer_channel, consumer) = consumer(conn, &second).await?;
    let start = Instant::now();
    let consume = tokio::spawn(consume_n(consumer, n, start));
    let relaying = tokio::spawn(relay(relay_consumer, relay_publisher, second.clone(), n));
    publish_all(&publisher, "", &first, bodies(n, start)).await?;
    let (relayed, relay_consumer) = relaying.await.context("the ceiling relay panicked")??;
    let (seen, latencies, took, consumer) =
        consume.await.context("the ceiling consumer panicked")??;
    relay_channel.close(200, "done".into()).await.ok();
    consumer_channel.close(200, "done".into()).await.ok();
    drop((consumer, relay_consumer));
    anyhow::ensure!(
        relayed == n && seen == n,
        "the two-hop ceiling relayed {relayed} and consumed {seen} of {n}"
    );
    delete(&publisher, &[&first, &second]).await;
    Ok(Phase::new("ceiling2", n, took, percentiles(latencies)))
}

/// Consumes `n` from the first queue and republishes each to `to`; acks
/// (`multiple`) every [`ACK_EVERY`] once their copies are confirmed, as the
/// worker's relay marks rows only after the broker's confirm.
async fn relay(
    mut from: Consumer,
    to_channel: Channel,
    to: String,
    n: usize,
) -> anyhow::Result<(usize, Consumer)> {
    let mut pending = VecDeque::with_capacity(ACK_EVERY);
    let mut relayed = 0;
    while relayed < n {
        let Some(delivery) = from.next().await else {
            anyhow::bail!("the relay's consumer ended");
        };
        let d = delivery?;
        let confirm = to_channel
            .basic_publish(
                "".into(),
                to.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &d.data,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await?;
        pending.push_back(confirm);
        relayed += 1;
        if relayed % ACK_EVERY == 0 || relayed == n {
            while let Some(c) = pending.pop_front() {
                match c.await? {
                    Confirmation::Ack(None) => {}
                    other => anyhow::bail!("the broker did not take a relayed message: {other:?}"),
                }
            }
            d.acker.ack(BasicAckOptions { multiple: true }).await?;
        }
    }
    Ok((relayed, from))
}

/// Timestamped bodies: the first 8 bytes are microseconds since `start`.
fn bodies(n: usize, start: Instant) -> impl Iterator<Item = Vec<u8>> {
    (0..n).map(move |_| {
        let mut body = micros_since(start).to_le_bytes().to_vec();
        body.resize(BODY_BYTES, b'x');
        body
    })
}

/// A confirming channel that has declared `queues` (quorum, durable).
async fn publisher(conn: &Connection, queues: &[&str]) -> anyhow::Result<Channel> {
    let channel = publisher_channel(conn).await?;
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from(b"quorum".to_vec())),
    );
    for queue in queues {
        let opts = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .queue_declare((*queue).into(), opts, args.clone())
            .await
            .context("while declaring a ceiling queue")?;
    }
    Ok(channel)
}

async fn publisher_channel(conn: &Connection) -> anyhow::Result<Channel> {
    let channel = conn.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}

async fn consumer(conn: &Connection, queue: &str) -> anyhow::Result<(Channel, Consumer)> {
    let channel = conn.create_channel().await?;
    channel
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await?;
    let consumer = channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((channel, consumer))
}

/// Consumes `n`: how many came, their latencies from the timestamp in the
/// body, how long since `start`, and the consumer (dropping it here would
/// send a basic.cancel racing the channel close).
async fn consume_n(
    mut consumer: Consumer,
    n: usize,
    start: Instant,
) -> Result<(usize, Vec<Duration>, Duration, Consumer), lapin::Error> {
    let mut latencies = Vec::with_capacity(n);
    let mut seen = 0;
    while let Some(d) = consumer.next().await {
        let d = d?;
        let sent = d
            .data
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .unwrap_or(0);
        latencies.push(Duration::from_micros(
            micros_since(start).saturating_sub(sent),
        ));
        seen += 1;
        if seen % ACK_EVERY == 0 || seen == n {
            d.acker.ack(BasicAckOptions { multiple: true }).await?;
        }
        if seen == n {
            break;
        }
    }
    Ok((seen, latencies, start.elapsed(), consumer))
}

async fn delete(channel: &Channel, queues: &[&str]) {
    for queue in queues {
        channel
            .queue_delete((*queue).into(), QueueDeleteOptions::default())
            .await
            .ok();
    }
}
