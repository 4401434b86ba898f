//! The exchanges and queues of contract §2, declared idempotently at start.
//!
//! Every name carries the configured prefix, so tests (and tenants of a shared
//! broker) get their own topology on one vhost.

use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

use crate::config::AmqpSettings;

/// The routing key of a refund-approved event.
pub const APPROVED_KEY: &str = "refund.approved";
/// Deliveries of one message before the broker dead-letters it (a poison message
/// that keeps killing its consumer).
pub const DELIVERY_LIMIT: i32 = 5;
/// The header a quorum queue raises each time it takes a delivery back.
pub const DELIVERY_COUNT_HEADER: &str = "x-delivery-count";
/// The default results queue's length limit when the settings give none:
/// about 100 MiB of result events, far from a broker's disk.
pub const RESULTS_MAX_LENGTH: u32 = 100_000;

/// The names of every exchange and queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub refunds_exchange: String,
    pub approved_queue: String,
    pub dead_letter_exchange: String,
    pub dead_queue: String,
    pub results_exchange: String,
    /// `None` when the default results queue is disabled.
    pub results_queue: Option<String>,
    /// Its length limit. Past it the broker refuses new events
    /// (`reject-publish`): the relay keeps them in the outbox and tries
    /// again, so nothing is lost and the broker's disk cannot fill.
    pub results_max_length: u32,
}

impl Topology {
    pub fn new(prefix: &str, results_queue: bool) -> Self {
        Self {
            refunds_exchange: format!("{prefix}refunds"),
            approved_queue: format!("{prefix}refunds.approved"),
            dead_letter_exchange: format!("{prefix}refunds.dlx"),
            dead_queue: format!("{prefix}refunds.dead"),
            results_exchange: format!("{prefix}refunds.results"),
            results_queue: results_queue.then(|| format!("{prefix}refunds.results")),
            results_max_length: RESULTS_MAX_LENGTH,
        }
    }

    /// The topology the settings describe: what `run` and every tool declare.
    pub fn of(amqp: &AmqpSettings) -> Self {
        Self {
            results_max_length: amqp.results_max_length,
            ..Self::new(&amqp.name_prefix, amqp.results_queue)
        }
    }

    /// Declares everything; declaring again with the same arguments is a no-op.
    pub async fn declare(&self, ch: &Channel) -> lapin::Result<()> {
        for exchange in [
            &self.refunds_exchange,
            &self.dead_letter_exchange,
            &self.results_exchange,
        ] {
            let opts = ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            };
            ch.exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Topic,
                opts,
                FieldTable::default(),
            )
            .await?;
        }
        let mut approved = quorum_args();
        approved.insert(
            "x-dead-letter-exchange".into(),
            text(&self.dead_letter_exchange),
        );
        approved.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongInt(DELIVERY_LIMIT),
        );
        approved.insert("x-dead-letter-strategy".into(), text("at-least-once"));
        approved.insert("x-overflow".into(), text("reject-publish"));
        self.queue(
            ch,
            &self.approved_queue,
            approved,
            &self.refunds_exchange,
            APPROVED_KEY,
        )
        .await?;
        self.queue(
            ch,
            &self.dead_queue,
            quorum_args(),
            &self.dead_letter_exchange,
            "#",
        )
        .await?;
        if let Some(results) = &self.results_queue {
            let mut bounded = quorum_args();
            bounded.insert(
                "x-max-length".into(),
                AMQPValue::LongLongInt(i64::from(self.results_max_length)),
            );
            bounded.insert("x-overflow".into(), text("reject-publish"));
            self.queue(ch, results, bounded, &self.results_exchange, "refund.#")
                .await?;
        }
        Ok(())
    }

    /// Deletes every queue and exchange of this topology (tests, benchmarks).
    pub async fn delete(&self, ch: &Channel) {
        let queues = [
            Some(&self.approved_queue),
            Some(&self.dead_queue),
            self.results_queue.as_ref(),
        ];
        for q in queues.into_iter().flatten() {
            ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await
                .ok();
        }
        for x in [
            &self.refunds_exchange,
            &self.dead_letter_exchange,
            &self.results_exchange,
        ] {
            ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
                .await
                .ok();
        }
    }

    async fn queue(
        &self,
        ch: &Channel,
        name: &str,
        args: FieldTable,
        exchange: &str,
        key: &str,
    ) -> lapin::Result<()> {
        let opts = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.queue_declare(name.into(), opts, args).await?;
        ch.queue_bind(
            name.into(),
            exchange.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
    }
}

fn quorum_args() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), text("quorum"));
    args
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}
