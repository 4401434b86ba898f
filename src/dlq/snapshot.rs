//! Reading a bounded window of the dead-letter queue without taking anything
//! out of it.
//!
//! The management plugin may be off, so there is no API to peek: letters are
//! fetched one at a time (`basic.get`, manual ack) and stay unacked while a
//! command looks at them, until the window is full — [`Window`]: so many
//! letters or so many bytes, so a queue of large letters never fills the
//! memory of the pod that also answers Alipay. Acking one removes it for
//! good; everything not acked goes back to the queue, in order, when the
//! channel closes. If the process dies instead, the broker does the same when
//! the connection drops.
//!
//! One reader at a time: each reader first declares an exclusive queue
//! `<dead queue>.reader`, which the broker gives to one connection only and
//! drops with it. A second reader (the operator page, another `dlq`
//! command) is refused at once rather than see fewer letters than there are
//! and act on part of the queue believing it saw it all.
//!
//! The channel is closed with the letters unacked, never with
//! `basic.reject`, which some broker versions count towards a delivery limit.
//!
//! A quorum queue takes the letters back a moment *after* the close has
//! been answered, so [`Snapshot::release`] waits (bounded) until the queue
//! shows them ready again: the next command, run at once, must see them.
//!
//! Every call to the broker after reading is bounded by [`BROKER_TIMEOUT`]:
//! when the connection drops, lapin can leave an ack or a close pending for
//! ever, and an on-call tool must end and say so rather than hang.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use lapin::Acker;
use lapin::message::BasicGetMessage;
use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};

use super::Target;
use super::letter::Letter;
use crate::amqp;

/// AMQP's RESOURCE_LOCKED: another connection holds the exclusive queue.
const RESOURCE_LOCKED: u16 = 405;

/// How much of the queue one reader holds at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub letters: usize,
    /// Bodies and headers, roughly: the reading stops at the first letter
    /// that reaches it.
    pub bytes: usize,
}

impl Window {
    /// What `dlq` commands and the operator page read: 10 000 letters or
    /// 32 MiB, whichever comes first.
    pub const DEFAULT: Window = Window {
        letters: 10_000,
        bytes: 32 << 20,
    };
}
/// The longest any single broker call (ack, publish, confirm, close) may take.
pub const BROKER_TIMEOUT: Duration = Duration::from_secs(15);
/// How long [`Snapshot::release`] waits for the letters to be ready again.
const RETURN_WAIT: Duration = Duration::from_secs(5);

/// Runs a broker call, failing it if it takes longer than [`BROKER_TIMEOUT`].
pub async fn bounded<T, E>(
    what: &str,
    call: impl Future<Output = Result<T, E>>,
) -> anyhow::Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(BROKER_TIMEOUT, call).await {
        Ok(result) => result.with_context(|| format!("while {what}")),
        Err(_) => anyhow::bail!(
            "no answer from the broker within {}s while {what}",
            BROKER_TIMEOUT.as_secs()
        ),
    }
}

/// The first ready dead letters, up to a [`Window`], held unacked, in queue
/// order.
pub struct Snapshot {
    conn: Connection,
    channel: Channel,
    queue: String,
    pub letters: Vec<Letter>,
    ackers: Vec<Acker>,
    /// The letters [`Snapshot::remove`] took out for good, by index.
    removed: Mutex<Vec<usize>>,
    /// What the broker said was ready before reading.
    pub expected: u32,
    /// Why the letters read are not the whole queue, if they are not.
    pub incomplete: Option<String>,
}

impl Snapshot {
    /// Connects, takes the reader's lock, and reads the first ready messages
    /// of the dead-letter queue, up to the target's window.
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
            queue: target.dead_queue.clone(),
            letters: Vec::new(),
            ackers: Vec::new(),
            removed: Mutex::new(Vec::new()),
            expected: 0,
            incomplete: None,
        };
        let read = async {
            snap.lock().await?;
            snap.read(target).await
        };
        match read.await {
            Ok(()) => Ok(snap),
            Err(e) => {
                snap.release().await;
                Err(e)
            }
        }
    }

    /// The one-reader lock: an exclusive queue this connection holds until
    /// it closes. Refused at once when another reader holds it.
    async fn lock(&self) -> anyhow::Result<()> {
        let channel = bounded("opening a channel", self.conn.create_channel()).await?;
        let lock = format!("{}.reader", self.queue);
        let options = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..Default::default()
        };
        let declared = channel
            .queue_declare(lock.as_str().into(), options, FieldTable::default())
            .await;
        match declared {
            Ok(_) => Ok(()),
            Err(e) if locked(&e) => Err(Locked(self.queue.clone()).into()),
            Err(e) => Err(e).context("while taking the dead-letter reader's lock"),
        }
    }

    async fn read(&mut self, target: &Target) -> anyhow::Result<()> {
        let window = target.window;
        let queue = target.dead_queue.as_str();
        let declare = crate::amqp::inspect(&self.channel, queue);
        let declared = bounded("looking up the dead-letter queue", declare)
            .await
            .with_context(|| {
                format!("cannot find the dead-letter queue {queue} (is AMQP_NAME_PREFIX right?)")
            })?;
        self.expected = declared.message_count();
        let mut bytes = 0usize;
        while self.letters.len() < usize::try_from(self.expected).unwrap_or(usize::MAX) {
            if self.letters.len() >= window.letters {
                self.incomplete = Some(format!("the window holds {} letters", window.letters));
                break;
            }
            if bytes >= window.bytes {
                self.incomplete = Some(format!("the window holds {} MiB", window.bytes >> 20));
                break;
            }
            let get = self
                .channel
                .basic_get(queue.into(), BasicGetOptions::default());
            let Some(message) = bounded("reading the dead-letter queue", get).await? else {
                // Fewer than counted: gone since (a purge by hand?).
                break;
            };
            let BasicGetMessage { delivery, .. } = message;
            bytes += delivery.data.len() + approximate_header_bytes(&delivery.properties);
            let position = self.letters.len() + 1;
            self.letters
                .push(Letter::new(position, delivery.properties, delivery.data));
            self.ackers.push(delivery.acker);
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
        if let Ok(mut removed) = self.removed.lock() {
            removed.push(index);
        }
        Ok(())
    }

    fn removed_count(&self) -> usize {
        self.removed.lock().map_or(0, |r| r.len())
    }

    /// [`Snapshot::release`], the letters parted: those removed, and those
    /// handed back (for [`super::recheck`]).
    pub async fn release_parted(self) -> (Vec<Letter>, Vec<Letter>) {
        let mut gone = vec![false; self.letters.len()];
        if let Ok(removed) = self.removed.lock() {
            for &i in removed.iter() {
                gone[i] = true;
            }
        }
        let (removed, held): (Vec<_>, Vec<_>) = self
            .release()
            .await
            .into_iter()
            .zip(gone)
            .partition(|(_, gone)| *gone);
        let letters = |v: Vec<(Letter, bool)>| v.into_iter().map(|(l, _)| l).collect();
        (letters(removed), letters(held))
    }

    /// Hands back every letter not removed (channel close), then disconnects;
    /// the letters handed back are waited for until the queue shows them
    /// ready. A quorum queue may drop acks sent just before the close and
    /// hand those letters back too (rabbitmq-server#10327, seen here with no
    /// round trip and with one): [`super::recheck`] finds and removes them.
    pub async fn release(self) -> Vec<Letter> {
        let closed = bounded(
            "closing the channel",
            self.channel.close(200, "dlq done".into()),
        )
        .await
        .is_ok();
        let held = self.letters.len() - self.removed_count();
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

/// Another reader holds the dead-letter queue.
#[derive(Debug, thiserror::Error)]
#[error(
    "another reader holds the dead-letter queue {0} right now (the operator page or another dlq command); nothing was done: try again in a moment"
)]
pub struct Locked(pub String);

/// Whether a declare failed because another connection holds the queue.
fn locked(e: &lapin::Error) -> bool {
    matches!(e.kind(), lapin::ErrorKind::ProtocolError(amqp) if amqp.get_id() == RESOURCE_LOCKED)
}

/// A letter's headers count towards the window too (`x-death` can be long).
fn approximate_header_bytes(properties: &lapin::BasicProperties) -> usize {
    properties
        .headers()
        .as_ref()
        .map_or(0, |h| format!("{h:?}").len())
}
