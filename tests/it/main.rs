//! One integration binary against the real PostgreSQL and RabbitMQ.

mod batching;
mod bench;
mod callback;
mod cli;
mod client;
mod dlq;
mod end_to_end;
mod gateway;
mod helpers;
mod intake;
mod notifications;
mod process;
mod proxy;
mod relay;
mod sandbox;
mod submit;
