//! `AMQP_URL` as a list of brokers, for a RabbitMQ cluster: one or more
//! addresses separated by commas. The first is a full `amqp://` or `amqps://`
//! URL; each later one is either a full URL too, or a bare `host:port` (or
//! `host`, `[v6]:port`) that takes the first URL's scheme, credentials, vhost
//! and query. A bare host without a port gets its scheme's default port
//! (5672, or 5671 for `amqps`).
//!
//! Pure: no I/O. Every error names the address by its position and never
//! repeats any of the text, which may hold a password (a comma inside a
//! password splits it into two "addresses").

use std::fmt;
use std::net::Ipv6Addr;

const NOT_A_URL: &str = "is not an AMQP URL like amqp://user:password@host:5672/%2f (a comma inside a password or vhost is written %2C)";
const NOT_HOST_PORT: &str = "is neither host:port nor an amqp:// or amqps:// URL (a comma inside a password or vhost is written %2C)";
const EMPTY: &str =
    "is empty (a comma too many, or a comma inside a password or vhost, which is written %2C)";
const BAD_PORT: &str = "has a port that is not from 1 to 65535";

/// One broker to try: its full URL (with the credentials, only for
/// connecting) and how logs and errors show it (without them).
#[derive(Clone, PartialEq, Eq)]
pub struct Address {
    url: String,
    shown: String,
}

impl Address {
    /// The URL to connect with. It holds the password: never log it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `scheme://host:port/vhost`, without credentials or query.
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", self.shown)
    }
}

/// Why `AMQP_URL` does not read as a list of addresses. Its text names the
/// address by position, never by content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct AddressError {
    /// 1-based position of the address at fault; 0 for the whole setting.
    pub position: usize,
    pub reason: &'static str,
}

impl AddressError {
    fn at(position: usize, reason: &'static str) -> Self {
        Self { position, reason }
    }

    fn describe(&self) -> String {
        match self.position {
            0 => self.reason.to_owned(),
            1 => format!("the first address {}", self.reason),
            n => format!("address {n} {}", self.reason),
        }
    }
}

/// Reads `AMQP_URL`: the addresses in the order given.
pub fn parse(text: &str) -> Result<Vec<Address>, AddressError> {
    if text.trim().is_empty() {
        return Err(AddressError::at(0, "is empty"));
    }
    let entries: Vec<&str> = text.split(',').map(str::trim).collect();
    let first = entries.first().copied().unwrap_or_default();
    let base = full_url(1, first)?;
    let mut out = vec![base.address()];
    for (i, entry) in entries.iter().enumerate().skip(1) {
        let position = i + 1;
        if entry.is_empty() {
            return Err(AddressError::at(position, EMPTY));
        }
        let parts = if entry.contains("://") {
            full_url(position, entry)?
        } else {
            base.with_host(position, entry)?
        };
        out.push(parts.address());
    }
    Ok(out)
}

/// The addresses as logs show them, comma-separated; or a note that the
/// setting does not read (never its text).
pub fn shown(text: &str) -> String {
    match parse(text) {
        Ok(list) => list
            .iter()
            .map(Address::shown)
            .collect::<Vec<_>>()
            .join(","),
        Err(_) => "(not a valid AMQP_URL)".to_owned(),
    }
}

/// A URL cut into what a bare address borrows and what it replaces.
struct Parts<'a> {
    scheme: String,
    /// `user:password`, without the `@`.
    userinfo: Option<&'a str>,
    host_port: &'a str,
    /// Path and query: `/vhost?heartbeat=10`, or empty.
    rest: &'a str,
}

impl Parts<'_> {
    fn url(&self) -> String {
        match self.userinfo {
            Some(user) => format!("{}://{user}@{}{}", self.scheme, self.host_port, self.rest),
            None => format!("{}://{}{}", self.scheme, self.host_port, self.rest),
        }
    }

    fn address(&self) -> Address {
        let path = self.rest.split(['?', '#']).next().unwrap_or_default();
        Address {
            url: self.url(),
            shown: format!("{}://{}{path}", self.scheme, self.host_port),
        }
    }

    /// The same URL at another host (a bare `host[:port]`).
    fn with_host<'b>(&'b self, position: usize, entry: &'b str) -> Result<Parts<'b>, AddressError> {
        check_host_port(entry).map_err(|reason| AddressError::at(position, reason))?;
        let parts = Parts {
            scheme: self.scheme.clone(),
            userinfo: self.userinfo,
            host_port: entry,
            rest: self.rest,
        };
        check_with_lapin(position, &parts.url())?;
        Ok(parts)
    }
}

/// A full `amqp://` or `amqps://` URL, as lapin will read it.
fn full_url(position: usize, url: &str) -> Result<Parts<'_>, AddressError> {
    let (scheme, after) = url
        .split_once("://")
        .ok_or(AddressError::at(position, NOT_A_URL))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "amqp" && scheme != "amqps" {
        return Err(AddressError::at(
            position,
            "does not start with amqp:// or amqps://",
        ));
    }
    // The authority ends where the path, query or fragment begins; the
    // credentials end at its last `@` (as URL parsers read it).
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let (userinfo, host_port) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    check_host_port(host_port).map_err(|reason| {
        let reason = if reason == BAD_PORT {
            BAD_PORT
        } else {
            NOT_A_URL
        };
        AddressError::at(position, reason)
    })?;
    let parts = Parts {
        scheme,
        userinfo,
        host_port,
        rest,
    };
    check_with_lapin(position, &parts.url())?;
    Ok(parts)
}

/// What lapin itself accepts; its error text is dropped, since it can
/// repeat the URL.
fn check_with_lapin(position: usize, url: &str) -> Result<(), AddressError> {
    url.parse::<lapin::uri::AMQPUri>()
        .map(|_| ())
        .map_err(|_| AddressError::at(position, NOT_A_URL))
}

/// `host`, `host:port` or `[v6]:port`: a DNS name or an IP address, and a
/// port from 1 to 65535.
fn check_host_port(text: &str) -> Result<(), &'static str> {
    let port = if let Some(inner) = text.strip_prefix('[') {
        let (v6, tail) = inner.split_once(']').ok_or(NOT_HOST_PORT)?;
        v6.parse::<Ipv6Addr>().map_err(|_| NOT_HOST_PORT)?;
        match tail {
            "" => None,
            _ => Some(tail.strip_prefix(':').ok_or(NOT_HOST_PORT)?),
        }
    } else {
        let (host, port) = match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        };
        let name = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
        if host.is_empty() || !host.bytes().all(name) {
            return Err(NOT_HOST_PORT);
        }
        port
    };
    match port {
        None => Ok(()),
        Some(p) if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) => Err(NOT_HOST_PORT),
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(()),
            _ => Err(BAD_PORT),
        },
    }
}

#[cfg(test)]
mod tests;
