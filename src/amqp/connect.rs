//! Connecting to one of `AMQP_URL`'s brokers ([`super::addresses`]): each
//! address in turn until one answers, starting with the one that answered
//! last for the same setting (so a process whose node died moves to another
//! once and stays there, rather than trying the dead one first every time).
//! A lost connection is the caller's to replace: every role does it after
//! its backoff ([`crate::role_loop`]), and that new connection goes over
//! the whole list again. Each attempt is bounded, so a node that is away
//! without refusing (a host gone, packets dropped) costs [`ATTEMPT_TIMEOUT`]
//! rather than the operating system's TCP time-out.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use lapin::{Connection, ConnectionProperties};

use super::addresses::{self, Address, AddressError};

/// The longest one address may take to answer (TCP, TLS and the AMQP
/// handshake) before the next one is tried.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why no address gave a connection: each one tried and what it said,
/// shown without credentials.
#[derive(Debug)]
pub enum ConnectError {
    /// `AMQP_URL` does not read (settings are checked at start, so only a
    /// caller that skipped them meets this).
    Invalid(AddressError),
    /// Every address was tried and none answered.
    Unanswered(Vec<Attempt>),
}

/// One address that did not give a connection.
#[derive(Debug)]
pub struct Attempt {
    pub address: String,
    pub failure: Failure,
}

#[derive(Debug)]
pub enum Failure {
    /// The broker or the network said no.
    Broker(lapin::Error),
    /// Nothing answered within [`ATTEMPT_TIMEOUT`].
    TimedOut,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Broker(e) => write!(f, "{e}"),
            Failure::TimedOut => write!(f, "no answer within {} s", ATTEMPT_TIMEOUT.as_secs_f64()),
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Invalid(e) => write!(f, "AMQP_URL: {e}"),
            ConnectError::Unanswered(attempts) => {
                let each: Vec<String> = attempts
                    .iter()
                    .map(|a| format!("{}: {}", a.address, a.failure))
                    .collect();
                if attempts.len() > 1 {
                    write!(f, "no RabbitMQ address answered: ")?;
                }
                f.write_str(&each.join("; "))
            }
        }
    }
}

impl std::error::Error for ConnectError {}

impl ConnectError {
    /// What each address said (none for an invalid setting).
    pub fn failures(&self) -> impl Iterator<Item = &Failure> {
        let attempts: &[Attempt] = match self {
            ConnectError::Invalid(_) => &[],
            ConnectError::Unanswered(a) => a,
        };
        attempts.iter().map(|a| &a.failure)
    }
}

/// Opens a connection named after the process (so the broker's tools show
/// who it is) to the first of `url`'s addresses that answers.
pub async fn connect(url: &str, name: &str) -> Result<Connection, ConnectError> {
    let list = addresses::parse(url).map_err(ConnectError::Invalid)?;
    let start = preferred(url);
    let mut attempts = Vec::new();
    for i in order(list.len(), start) {
        let address = &list[i];
        match attempt(address, name).await {
            Ok(conn) => {
                remember(url, i);
                log_connected(name, address, &attempts);
                return Ok(conn);
            }
            Err(failure) => attempts.push(Attempt {
                address: address.shown().to_owned(),
                failure,
            }),
        }
    }
    Err(ConnectError::Unanswered(attempts))
}

async fn attempt(address: &Address, name: &str) -> Result<Connection, Failure> {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    match tokio::time::timeout(ATTEMPT_TIMEOUT, Connection::connect(address.url(), props)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(Failure::Broker(e)),
        Err(_) => Err(Failure::TimedOut),
    }
}

fn log_connected(name: &str, address: &Address, skipped: &[Attempt]) {
    for a in skipped {
        tracing::warn!(
            connection = name,
            address = %a.address,
            error = %a.failure,
            "a RabbitMQ address did not answer; tried the next"
        );
    }
    tracing::info!(connection = name, address = %address, "connected to RabbitMQ");
}

/// The indexes of `len` addresses, from `start` round to the one before it.
pub(crate) fn order(len: usize, start: usize) -> impl Iterator<Item = usize> {
    let start = if len == 0 { 0 } else { start % len };
    (0..len).map(move |k| (start + k) % len)
}

/// Which address answered last, per `AMQP_URL` text (a process may use
/// more than one, as the tests do).
fn answered_last() -> &'static Mutex<HashMap<String, usize>> {
    static LAST: OnceLock<Mutex<HashMap<String, usize>>> = OnceLock::new();
    LAST.get_or_init(|| Mutex::new(HashMap::new()))
}

fn preferred(url: &str) -> usize {
    let last = answered_last()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    last.get(url).copied().unwrap_or(0)
}

fn remember(url: &str, index: usize) {
    let mut last = answered_last()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if last.get(url) != Some(&index) {
        last.insert(url.to_owned(), index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_starts_at_the_preferred_address_and_wraps() {
        assert_eq!(order(3, 0).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(order(3, 1).collect::<Vec<_>>(), [1, 2, 0]);
        assert_eq!(order(3, 5).collect::<Vec<_>>(), [2, 0, 1]);
        assert_eq!(order(1, 0).collect::<Vec<_>>(), [0]);
        assert_eq!(order(0, 0).count(), 0);
    }

    #[tokio::test]
    async fn every_address_is_tried_and_each_failure_named_without_the_password() {
        // Two ports nothing listens on: bind, note, drop.
        let closed = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let (a, b) = (closed(), closed());
        let url = format!("amqp://guest:hunter2@127.0.0.1:{a}/%2f,127.0.0.1:{b}");
        let e = connect(&url, "test").await.unwrap_err();
        let text = e.to_string();
        assert_eq!(e.failures().count(), 2, "{text}");
        assert!(text.starts_with("no RabbitMQ address answered: "), "{text}");
        assert!(
            text.contains(&format!("amqp://127.0.0.1:{a}/%2f: ")),
            "{text}"
        );
        assert!(
            text.contains(&format!("amqp://127.0.0.1:{b}/%2f: ")),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");

        let invalid = connect("amqp://guest:hunter2@h:0/%2f", "test")
            .await
            .unwrap_err();
        assert!(invalid.to_string().starts_with("AMQP_URL: "), "{invalid}");
        assert_eq!(invalid.failures().count(), 0);
    }
}
