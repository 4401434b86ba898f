//! One integration binary against the real PostgreSQL and RabbitMQ.

mod cli;
mod helpers;
mod intake;
mod process;
mod sandbox;
