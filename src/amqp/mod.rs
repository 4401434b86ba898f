//! RabbitMQ plumbing shared by every role: `AMQP_URL`'s list of brokers and
//! connecting to one of them, the topology of contract §2, publishing
//! events with confirms, and header helpers.

pub mod addresses;
mod connect;
pub mod headers;
pub mod liveness;
pub mod publish;
pub(crate) mod topology;

use lapin::Channel;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;

pub use connect::{ATTEMPT_TIMEOUT, Attempt, ConnectError, Failure, connect};
pub use topology::{RESULTS_MAX_LENGTH, Topology};

/// A queue as the broker reports it (messages ready, consumers), without
/// creating it: a passive declare, which fails if the queue does not exist.
pub async fn inspect(channel: &Channel, queue: &str) -> lapin::Result<lapin::Queue> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
}
