//! One integration binary against the real PostgreSQL and RabbitMQ.

// Test helpers may unwrap: a failed test stops at the line that failed
// (clippy's allow-unwrap-in-tests covers only #[test] functions).
#![allow(clippy::unwrap_used)]

mod absence;
mod acceptance;
mod admin;
mod batching;
mod bench;
mod browser;
mod callback;
mod cli;
mod client;
mod cluster;
mod contract;
mod definitions;
mod deploy;
mod dlq;
mod docs_links;
mod end_to_end;
mod gateway;
mod helpers;
mod intake;
mod item_codes;
mod lifecycle;
mod notifications;
mod observability;
mod openapi;
mod operator;
mod process;
mod proxy;
mod prune;
mod relay;
mod sandbox;
mod security;
mod soak;
mod submit;
