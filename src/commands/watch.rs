//! `refund-worker watch-results`: prints result events as they arrive, one
//! line each. For demos and for a quick look at what downstream consumers
//! receive; it stops after `--terminal N` terminal events (then drains what
//! follows for `--idle-ms`), or when nothing arrives for `--timeout-ms`.
//!
//! Invariant: it takes nothing from anyone. It reads from its own exclusive,
//! server-named queue bound to the results exchange with `refund.#` (gone
//! when it disconnects), never from the shared default queue, so watching
//! cannot steal events a real consumer waits for. It sees what is published
//! after it started: "watching" on stderr says when that is.

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;

use crate::amqp::{self, Topology};
use crate::config::Settings;

/// What `watch-results` was asked.
#[derive(Debug, Clone)]
pub struct Watch {
    /// Stop after this many distinct terminal events (`None`: run until quiet).
    pub terminal: Option<usize>,
    /// After the last terminal event, keep printing until this long passes quietly.
    pub idle: Duration,
    /// Give up when nothing arrives for this long.
    pub timeout: Duration,
}

/// One line for an event: what a person wants to see first.
pub fn line(body: &serde_json::Value) -> String {
    let field = |k: &str| body[k].as_str().unwrap_or("-").to_owned();
    format!(
        "{:<21} {:<16} {:<14} {:>10} {:<24} source={}",
        field("event"),
        field("refund_id"),
        field("status"),
        field("amount"),
        field("code"),
        field("source")
    )
}

pub async fn watch(settings: &Settings, w: Watch) -> anyhow::Result<ExitCode> {
    let topology = Topology::of(&settings.amqp);
    let conn = amqp::connect(&settings.amqp.url, "refund-worker watch-results").await?;
    let channel = conn.create_channel().await?;
    topology.declare(&channel).await?;
    let own = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    let queue = channel
        .queue_declare("".into(), own, FieldTable::default())
        .await
        .context("while declaring the watcher's own queue")?;
    let queue = queue.name().to_string();
    channel
        .queue_bind(
            queue.as_str().into(),
            topology.results_exchange.as_str().into(),
            "refund.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .context("while binding the watcher's queue to the results exchange")?;
    channel.basic_qos(100, BasicQosOptions::default()).await?;
    eprintln!(
        "watching {} (own queue {queue}, bound to refund.#)",
        topology.results_exchange
    );
    let mut consumer = channel
        .basic_consume(
            queue.as_str().into(),
            "watch-results".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut seen = HashSet::new();
    let mut terminal = 0usize;
    let done = |terminal: usize| w.terminal.is_some_and(|n| terminal >= n);
    loop {
        let wait = if done(terminal) { w.idle } else { w.timeout };
        let Ok(next) = tokio::time::timeout(wait, consumer.next()).await else {
            break;
        };
        let delivery = next
            .context("the broker closed the consumer")?
            .context("while consuming result events")?;
        let body: serde_json::Value = serde_json::from_slice(&delivery.data)
            .unwrap_or_else(|_| serde_json::json!({"event": "unreadable"}));
        delivery.ack(BasicAckOptions::default()).await?;
        let event_id = body["event_id"].as_str().unwrap_or_default().to_owned();
        if !seen.insert(event_id) {
            continue; // a redelivery: consumers deduplicate on event_id
        }
        println!("{}", line(&body));
        let kind = body["event"].as_str().unwrap_or_default();
        if kind == "refund.succeeded" || kind == "refund.failed" {
            terminal += 1;
        }
    }
    // Closing the connection closes its channel (and cancels the consumer).
    drop(channel);
    amqp::liveness::close(&conn, "done").await;
    if w.terminal.is_some() && !done(terminal) {
        eprintln!(
            "{terminal} terminal events arrived, {} expected, before {:?} passed quietly",
            w.terminal.unwrap_or_default(),
            w.timeout
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
