//! A downstream consumer of result events, as a ledger or a notification
//! service would write one: its own durable quorum queue bound to
//! `refund.#` on `refunds.results`, manual acks, and deduplication on
//! `event_id` (delivery is at least once).
//!
//! Run against the demo (`bash deploy/demo.sh` in another shell, or any
//! worker): `cargo run --example result_consumer -- [AMQP_URL] [PREFIX]`,
//! e.g. `cargo run --example result_consumer -- amqp://guest:guest@127.0.0.1:5672/%2f demo.`
//! It prints each new event and stops after 30 s without one.
//!
//! A real consumer keeps the ids it has handled in its own database, in the
//! transaction that applies the event; this example keeps them in memory.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties, ExchangeKind};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let prefix = args.next().unwrap_or_default();
    let exchange = format!("{prefix}refunds.results");
    let queue = format!("{prefix}ledger.refund-results");

    let conn = Connection::connect(&url, ConnectionProperties::default()).await?;
    let channel = conn.create_channel().await?;
    // The worker declares the exchange too; declaring it here (same
    // arguments) lets the consumer start first.
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await?;
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    let queue_options = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .queue_declare(queue.as_str().into(), queue_options, args)
        .await?;
    channel
        .queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            "refund.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    channel.basic_qos(50, BasicQosOptions::default()).await?;
    let mut consumer = channel
        .basic_consume(
            queue.as_str().into(),
            "ledger".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    eprintln!("consuming {queue} (bound to {exchange} refund.#)");

    let mut handled: HashSet<String> = HashSet::new();
    while let Ok(Some(delivery)) =
        tokio::time::timeout(Duration::from_secs(30), consumer.next()).await
    {
        let delivery = delivery?;
        let event: serde_json::Value = match serde_json::from_slice(&delivery.data) {
            Ok(v) => v,
            Err(e) => {
                // Not ours to fix: park it (here, log and ack).
                eprintln!("unreadable event: {e}");
                delivery.ack(BasicAckOptions::default()).await?;
                continue;
            }
        };
        let event_id = event["event_id"].as_str().unwrap_or_default().to_owned();
        if handled.insert(event_id) {
            println!(
                "{} {} {} {} channel={} source={}",
                event["event"].as_str().unwrap_or("-"),
                event["refund_id"].as_str().unwrap_or("-"),
                event["amount"].as_str().unwrap_or("-"),
                event["code"].as_str().unwrap_or("-"),
                event["channel"].as_str().unwrap_or("-"),
                event["source"].as_str().unwrap_or("-"),
            );
        }
        // Ack only after the event is applied (here: printed).
        delivery.ack(BasicAckOptions::default()).await?;
    }
    conn.close(200, "done".into()).await?;
    Ok(())
}
