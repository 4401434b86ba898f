//! RabbitMQ plumbing shared by every role: connecting, the topology of
//! contract §2, publishing events with confirms, and header helpers.

pub mod addresses;
pub mod headers;
pub mod publish;
pub(crate) mod topology;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};

pub use topology::{RESULTS_MAX_LENGTH, Topology};

/// Opens a connection named after the process, so the broker's tools show who it is.
pub async fn connect(url: &str, name: &str) -> lapin::Result<Connection> {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    Connection::connect(url, props).await
}

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
