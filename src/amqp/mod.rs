//! RabbitMQ plumbing shared by every role: connecting, the topology of
//! contract §2, and header helpers.

pub mod headers;
pub mod topology;

use lapin::{Connection, ConnectionProperties};

pub use topology::Topology;

/// Opens a connection named after the process, so the broker's tools show who it is.
pub async fn connect(url: &str, name: &str) -> lapin::Result<Connection> {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    Connection::connect(url, props).await
}
