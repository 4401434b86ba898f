//! The ceiling: N persistent ~300-byte messages published with confirms into
//! a quorum queue and consumed with manual acks, publisher and consumer running
//! at once, with the intake's prefetch and `multiple` acks.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use lapin::Connection;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};

use super::Phase;
use super::load::{micros_since, percentiles};
use crate::commands::harness::publish::publish_all;

/// Same as intake: prefetch twice its default window of 500.
const PREFETCH: u16 = 1000;
/// Acks with `multiple` every this many deliveries.
const ACK_EVERY: usize = 250;
const BODY_BYTES: usize = 300;

pub async fn measure(conn: &Connection, prefix: &str, n: usize) -> anyhow::Result<Phase> {
    let queue = format!("{prefix}ceiling");
    let publisher = conn.create_channel().await?;
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString(LongString::from(b"quorum".to_vec())),
    );
    let opts = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    publisher
        .queue_declare(queue.as_str().into(), opts, args)
        .await
        .context("while declaring the ceiling queue")?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await?;

    let consumer_channel = conn.create_channel().await?;
    consumer_channel
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await?;
    let mut consumer = consumer_channel
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let start = Instant::now();
    let consume = tokio::spawn(async move {
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
        // The consumer goes back with the result: dropping it here would send a
        // basic.cancel racing the channel close below.
        Ok::<_, lapin::Error>((seen, latencies, start.elapsed(), consumer))
    });
    let bodies = (0..n).map(|_| {
        let mut body = micros_since(start).to_le_bytes().to_vec();
        body.resize(BODY_BYTES, b'x');
        body
    });
    publish_all(&publisher, "", &queue, bodies).await?;
    let (seen, latencies, took, consumer) =
        consume.await.context("the ceiling consumer panicked")??;
    consumer_channel.close(200, "done".into()).await.ok();
    drop(consumer);
    anyhow::ensure!(seen == n, "the ceiling consumer saw {seen} of {n}");
    publisher
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .ok();
    Ok(Phase::new("ceiling", n, took, percentiles(latencies)))
}
