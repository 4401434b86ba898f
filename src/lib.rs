//! refund-worker: pays approved Alipay refunds in batches, exactly once.
//!
//! - `alipay`: the mapi wire: signing, requests, answers, notifications, dispositions.
//! - `cli`: the command line.
//! - `config`: settings from the environment and a TOML file.
//! - `telemetry`: logging.
//! - `domain`: pure values and rules (amounts in fen, the inbound event).
//! - `storage`: PostgreSQL, the single source of truth.
//! - `amqp`: RabbitMQ connection and topology.
//! - `intake`: the consumer of refund-approved events.
//! - `batching`: the batcher: pending refunds into batches.
//! - `submit`: the submitter: batches to Alipay, and what follows each answer.
//! - `sandbox`: the Alipay gateway simulator (`refund-worker sandbox`).
//! - `callback`: the receiver of Alipay's notifications (the http role).
//! - `outbox`: the relay of result events to `refunds.results`.
//! - `reconcile`: batches without a notification, settled by the query.
//! - `report`: applying a notification or query answer to its batch, and its alarms.
//! - `dlq`: the dead-letter tooling (`refund-worker dlq`).
//! - `fuzzing`: the checks every parser of outside input is fuzzed with.
//! - `commands`: one module per subcommand.

pub mod admin;
pub mod alipay;
pub mod amqp;
pub mod batching;
pub mod callback;
pub mod cli;
pub mod commands;
pub mod config;
pub mod delays;
pub mod dlq;
pub mod domain;
pub mod fuzzing;
pub mod health;
pub mod intake;
pub mod operator;
pub mod outbox;
#[cfg(test)]
mod parser_robustness;
pub mod reconcile;
pub mod report;
pub mod role_loop;
pub mod sandbox;
pub mod shutdown;
pub mod soak;
pub mod storage;
pub mod submit;
pub mod telemetry;
