//! An upstream service publishing "refund approved" events the way the
//! contract asks: persistent, `mandatory`, publisher confirms, `message_id`
//! = `refund_id`, JSON. An event is approved once the broker confirms it
//! and routed it; anything else is retried by the caller (the worker
//! deduplicates on `refund_id`, so a retry never pays twice).
//!
//! `cargo run --example upstream_publisher -- [AMQP_URL] [PREFIX] [REFUND_ID]`,
//! e.g. against the demo: `cargo run --example upstream_publisher -- amqp://guest:guest@127.0.0.1:5672/%2f demo. EX-1`.

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let prefix = args.next().unwrap_or_default();
    let refund_id = args.next().unwrap_or_else(|| "EX-1".into());
    let event = serde_json::json!({
        "refund_id": refund_id,
        "trade_no": "2026120621001004000000009001",
        "amount": "9.90",
        "reason": "客户申请退款",
        "metadata": {"order_id": "O-9001"}
    });

    let conn = Connection::connect(&url, ConnectionProperties::default()).await?;
    let channel = conn.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(refund_id.as_str().into());
    let confirm = channel
        .basic_publish(
            format!("{prefix}refunds").as_str().into(),
            "refund.approved".into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            &serde_json::to_vec(&event)?,
            properties,
        )
        .await?
        .await?;
    let outcome = match confirm {
        Confirmation::Ack(None) => "confirmed and routed",
        Confirmation::Ack(Some(_)) => "unroutable: is the worker's topology declared? retry later",
        Confirmation::Nack(_) => "refused by the broker: retry later",
        Confirmation::NotRequested => "not confirmed",
    };
    println!("{refund_id}: {outcome}");
    conn.close(200, "done".into()).await?;
    if !matches!(confirm, Confirmation::Ack(None)) {
        return Err("the event was not confirmed and routed".into());
    }
    Ok(())
}
