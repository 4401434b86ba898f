//! What the tools (`bench`, `soak`) share to run the worker under load from
//! outside: a child worker process, a scratch database and broker names,
//! and a pipelined publisher with confirms. Tools stand on the library;
//! nothing in the library uses this.
//!
//! - `worker`: start, wait for, stop and measure a child worker
//! - `scratch`: a fresh database and names, and their removal
//! - `publish`: publishing a stream of events with confirms

pub(crate) mod publish;
pub(crate) mod scratch;
pub(crate) mod worker;

/// The partner a tool's worker and its sandbox gateway are configured with.
pub const PARTNER: &str = "2088000000000001";
