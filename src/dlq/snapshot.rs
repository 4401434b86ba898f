//! Reading the whole dead-letter queue without taking anything out of it.
//!
//! The management plugin may be off, so there is no API to peek: a passive
//! declare says how many messages are ready, a consumer with manual acks
//! receives them all (prefetch = that count), and they stay unacked while a
//! command looks at them. Acking one removes it for good; everything not
//! acked goes back to the queue, in order, when the channel closes. If the
//! process dies instead, the broker does the same when the connection drops.
//!
//! The channel is closed before the consumer is dropped (lapin can race the
//! other way round), and never with `basic.reject`, which some broker
//! versions count towards a delivery limit.
//!
//! A quorum queue takes the letters back a moment *after* the close has
//! been answered, so [`Snapshot::release`] waits (bounded) until the queue
//! shows them ready again: the next command, run at once, must see them.
//!
//! Every call to the broker after reading is bounded by [`BROKER_TIMEOUT`]:
//! when the connection drops, lapin can leave an ack or a close pending for
//! ever, and an on-call tool must end and say so rather than hang.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use lapin::Acker;
use lapin::message::Delivery;
use lapin::options::{BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, Consumer};

use super::Target;
use super::letter::Letter;
use crate::amqp;

/// How long reading waits for the next message before settling for what it has.
const IDLE: Duration = Duration::from_secs(3);
/// The longest any single broker call (ack, publish, confirm, close) may take.
pub const BROKER_TIMEOUT: Duration = Duration::from_secs(15);
/// How long [`Snapshot::release`] waits for the letters to be ready again.
const RETURN_WAIT: Duration = Duration::from_secs(5);

/// Runs a broker call, failing it if it takes longer than [`BROKER_TIMEOUT`].
pub async fn bounded<T>(
    what: &str,
    call: impl Future<Output = lapin::Result<T>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(BROKER_TIMEOUT, call).await {
        Ok(result) => result.with_context(|| format!("while {what}")),
        Err(_) => anyhow::bail!(
            "no answer from the broker within {}s while {what}",
            BROKER_TIMEOUT.as_secs()
        ),
    }
}

/// Every ready dead letter, held unacked, in queue order.
pub struct Snapshot {
    conn: Connection,
    channel: Channel,
    consumer: Option<Consumer>,
    queue: String,
    pub letters: Vec<Letter>,
    ackers: Vec<Acker>,
    /// How many letters [`Snapshot::remove`] took out for good.
    removed: AtomicUsize,
    /// What the broker said was ready before reading.
    pub expected: u32,
}

impl Snapshot {
    /// Connects and reads every ready message of the dead-letter queue.
    pub async fn take(target: &Target, purpose: &str) -> anyhow::Result<Self> {
        let name = format!("refund-worker dlq {purpose}");
        let conn = bounded(
            "connecting to RabbitMQ (AMQP_URL)",
            amqp::connect(&target.url, &name),
        )
        .await?;
        let channel = match bounded("opening a channel", conn.create_channel()).await {
            Ok(c) => c,
            Err(e) => {
                bounded("disconnecting", conn.close(200, "dlq done".into()))
                    .await
                    .ok();
                return Err(e);
            }
        };
        let mut snap = Self {
            conn,
            channel,
            consumer: None,
            queue: target.dead_queue.clone(),
            letters: Vec::new(),
            ackers: Vec::new(),
            removed: AtomicUsize::new(0),
            expected: 0,
        };
        match snap.read(target).await {
            Ok(()) => Ok(snap),
            Err(e) => {
                snap.release().await;
                Err(e)
            }
        }
    }

    async fn read(&mut self, target: &Target) -> anyhow::Result<()> {
        let queue = target.dead_queue.as_str();
        let declare = crate::amqp::inspect(&self.channel, queue);
        let declared = bounded("looking up the dead-letter queue", declare)
            .await
            .with_context(|| {
                format!("cannot find the dead-letter queue {queue} (is AMQP_NAME_PREFIX right?)")
            })?;
        self.expected = declared.message_count();
        if self.expected == 0 {
            return Ok(());
        }
        let prefetch = u16::try_from(self.expected).unwrap_or(u16::MAX);
        if u32::from(prefetch) < self.expected {
            tracing::warn!(
                ready = self.expected,
                "only the first {prefetch} dead letters can be held at once"
            );
        }
        bounded(
            "setting the prefetch",
            self.channel.basic_qos(prefetch, BasicQosOptions::default()),
        )
        .await?;
        let consume = self.channel.basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        );
        let consumer = bounded("starting to read the dead-letter queue", consume).await?;
        let consumer = self.consumer.insert(consumer);
        while self.letters.len() < usize::from(prefetch) {
            match tokio::time::timeout(IDLE, consumer.next()).await {
                Err(_) => break,
                Ok(None) => anyhow::bail!("the broker cancelled the reading of {queue}"),
                Ok(Some(delivery)) => {
                    let Delivery {
                        properties,
                        data,
                        acker,
                        ..
                    } = delivery.context("while reading the dead-letter queue")?;
                    let position = self.letters.len() + 1;
                    self.letters.push(Letter::new(position, properties, data));
                    self.ackers.push(acker);
                }
            }
        }
        Ok(())
    }

    /// The connection, for a publishing channel.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Removes the letter at `index` (of `letters`) from the queue for good.
    pub async fn remove(&self, index: usize) -> anyhow::Result<()> {
        let acker = self
            .ackers
            .get(index)
            .context("no such dead letter in this snapshot")?;
        if !self.conn.status().connected() {
            anyhow::bail!("the broker connection is lost; it was not removed");
        }
        bounded(
            "removing it from the dead-letter queue",
            acker.ack(lapin::options::BasicAckOptions::default()),
        )
        .await?;
        self.removed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Hands back every letter not removed (channel close), then disconnects.
    /// The close waits for the broker's answer, so removals sent before it
    /// have been processed when it returns; the letters handed back are
    /// waited for until the queue shows them ready.
    pub async fn release(mut self) -> Vec<Letter> {
        let closed = bounded(
            "closing the channel",
            self.channel.close(200, "dlq done".into()),
        )
        .await
        .is_ok();
        drop(self.consumer.take());
        let held = self.letters.len() - self.removed.load(Ordering::Relaxed);
        if closed && held > 0 {
            self.wait_returned(held).await;
        }
        bounded("disconnecting", self.conn.close(200, "dlq done".into()))
            .await
            .ok();
        self.letters
    }

    /// Polls the queue until at least `held` letters are ready again, or
    /// [`RETURN_WAIT`] passed (another reader may have taken some meanwhile).
    async fn wait_returned(&self, held: usize) {
        let Ok(channel) = bounded("opening a channel", self.conn.create_channel()).await else {
            return;
        };
        let deadline = tokio::time::Instant::now() + RETURN_WAIT;
        loop {
            let ready = bounded(
                "looking up the dead-letter queue",
                amqp::inspect(&channel, &self.queue),
            )
            .await
            .map(|q| q.message_count() as usize);
            match ready {
                Ok(n) if n >= held => break,
                Ok(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Ok(n) => {
                    tracing::warn!(
                        held,
                        ready = n,
                        "dead letters handed back are not all ready yet"
                    );
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot tell whether the dead letters are ready again");
                    break;
                }
            }
        }
        bounded("closing the channel", channel.close(200, "dlq done".into()))
            .await
            .ok();
    }
}
