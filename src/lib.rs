//! refund-worker: pays approved Alipay refunds in batches, exactly once.
//!
//! The layers, each standing only on those above it: `domain` (values and
//! rules, no I/O), `alipay` (the wire and the client), `storage` (SQL only,
//! on `domain`), the roles (`intake`, `batching`, `submit`, `callback`,
//! `reconcile`, `outbox`, each a step driven by `role_loop`), and the tools on
//! top (`commands`, with `sandbox` and `soak`), which the library never uses.
//!
//! - `domain`: pure values and rules: amounts, the inbound event, statuses, actors, batch rules, item codes.
//! - `alipay`: the wire and client: mapi (MD5, batches) and `alipay::openapi` (RSA2, one refund per call).
//! - `storage`: PostgreSQL, the single source of truth; every refund transition in `storage::transitions`.
//! - `config`: settings from the environment and a TOML file.
//! - `amqp`: RabbitMQ connection, topology, publishing with confirms, header helpers.
//! - `role_loop`: the one loop every role runs: a step, a pace, a backoff after errors.
//! - `delays`: the backoff schedules (backon) for every wait until a service is back.
//! - `intake`: the consumer of refund-approved events, in windows.
//! - `batching`: the batcher, and the one batch former (`batching::form`).
//! - `submit`: the submitter: batches to Alipay, and what follows each answer.
//! - `openapi_submit`: the OpenAPI channel's submitter: one `alipay.trade.refund` per refund, then the query.
//! - `callback`: the receiver of Alipay's notifications (the http role).
//! - `report`: a notification or query answer applied to its batch, and its alarms.
//! - `reconcile`: batches without a notification, settled by the query.
//! - `outbox`: the relay of result events to `refunds.results`.
//! - `health`: `/healthz`, `/readyz`, `/metrics` and the gauges.
//! - `admin`: the operator page (dead letters, held batches, suspects).
//! - `operator`: the password form of a batch awaiting an operator.
//! - `dlq`: the dead-letter tooling (`refund-worker dlq`).
//! - `telemetry`: logging, and the counters of completed refunds.
//! - `shutdown`: the stop signal (SIGTERM, Ctrl-C) every long-running command waits on.
//! - `cli`: the command line (clap).
//! - `commands`: one module per subcommand, and the harness soak and bench share.
//! - `sandbox`: the Alipay gateway simulator (`refund-worker sandbox`).
//! - `soak`: the soak: real processes, faults, and the invariants checked after.
//! - `fuzzing`: the checks every parser of outside input is fuzzed with.
//! - `parser_robustness` (tests only): the same checks as proptest properties.

pub mod admin;
pub mod alipay;
pub mod amqp;
pub mod batching;
pub mod callback;
pub mod cli;
pub mod commands;
pub mod config;
pub(crate) mod delays;
pub mod dlq;
pub mod domain;
pub mod fuzzing;
pub(crate) mod health;
pub mod intake;
pub mod openapi_submit;
pub(crate) mod operator;
pub mod outbox;
#[cfg(test)]
mod parser_robustness;
pub mod reconcile;
pub(crate) mod report;
pub(crate) mod role_loop;
pub mod sandbox;
pub(crate) mod shutdown;
pub mod soak;
pub mod storage;
pub mod submit;
pub mod telemetry;
