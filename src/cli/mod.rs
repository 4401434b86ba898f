//! The command line (contract §1). Secrets are never flags, so `--help` cannot show one.
//!
//! Owns the clap definitions and nothing else: what a command does lives in
//! `commands/`. The top-level commands are here; the flags of the larger
//! groups each in a file of their own:
//!
//! - `sandbox`: the gateway simulator's flags
//! - `inspect`: `refund …` and `batch …`, an operator's look at the tables
//! - `dlq`: `dlq …` and its selections

use std::fmt;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::dlq::{Age, parse_age};

mod dlq;
mod inspect;
mod sandbox;

pub use dlq::{DlqCommand, PurgeSelection, ReplaySelection};
pub use inspect::{BatchCommand, RefundCommand};
pub use sandbox::SandboxArgs;

#[derive(Debug, Parser)]
#[command(
    name = "refund-worker",
    version,
    about = "Pays approved Alipay refunds in batches, exactly once"
)]
pub struct Cli {
    /// A TOML file of settings (keys are the variable names in lower case); the environment overrides it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (all roles, or the ones given).
    Run {
        /// Roles to run in this process, comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "intake,batch,submit,http,relay,reconcile"
        )]
        roles: Vec<Role>,
        /// Do not migrate: wait until the schema is the one this binary needs
        /// (a migration Job runs `refund-worker migrate`), then start.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Create the database if missing and apply the migrations.
    Migrate,
    /// Publish refund-approved events from JSON lines (a file, or - for stdin) with publisher confirms.
    Publish {
        /// The file of JSON lines; `-` or nothing reads stdin.
        #[arg(value_name = "FILE|-")]
        file: Option<String>,
    },
    /// Inspect refunds.
    Refund {
        #[command(subcommand)]
        command: RefundCommand,
    },
    /// Print result events as they arrive on the results queue (acking them).
    WatchResults {
        /// Stop after this many terminal events (refund.succeeded/failed).
        #[arg(long)]
        terminal: Option<usize>,
        /// After the last of them, keep printing until this long passes quietly.
        #[arg(long, default_value_t = 1500)]
        idle_ms: u64,
        /// Stop when nothing arrives for this long.
        #[arg(long, default_value_t = 30_000)]
        timeout_ms: u64,
    },
    /// Inspect batches.
    Batch {
        #[command(subcommand)]
        command: BatchCommand,
    },
    /// Measure throughput against the broker's own ceiling (see docs/performance.md).
    Bench {
        /// Events to push through.
        #[arg(long, default_value_t = 100_000)]
        refunds: usize,
        /// What to measure.
        #[arg(long, value_enum, default_value_t = BenchProfile::Intake)]
        profile: BenchProfile,
        /// Refunds per second of the steady profile.
        #[arg(long, default_value_t = 200)]
        rate: u32,
        /// Seconds the steady profile lasts.
        #[arg(long, default_value_t = 60)]
        seconds: u32,
        /// The openapi profile's `OPENAPI_CONCURRENCY` (calls in flight).
        #[arg(long, default_value_t = 16)]
        openapi_concurrency: usize,
        /// The openapi profile's `OPENAPI_CALLS_PER_SECOND`, high by default so
        /// that it is not what limits the run.
        #[arg(long, default_value_t = 10_000)]
        openapi_calls_per_second: u32,
        /// Whole runs of an end-to-end profile; more than one ends with each
        /// figure's median and spread.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
        repeat: u32,
        /// The pipeline profile also runs with this many worker processes on
        /// the one database and reports its throughput against one.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=8))]
        workers: u32,
        /// Print one JSON record instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run the Alipay gateway simulator for development, demos and tests.
    Sandbox(Box<SandboxArgs>),
    /// The whole system under injected faults, then every invariant checked
    /// (exit 1 on a violation; the seed replays a run).
    Soak {
        /// Worker processes, each running every role.
        #[arg(long, default_value_t = 3)]
        workers: usize,
        /// About this many events (valid, duplicates, conflicts, invalid).
        #[arg(long, default_value_t = 5000)]
        refunds: usize,
        /// The seed of the traffic and the fault schedule (default: random).
        #[arg(long)]
        seed: Option<u64>,
        /// Mean milliseconds between injected faults.
        #[arg(long, default_value_t = 1000)]
        fault_every_ms: u64,
        /// Spread the events evenly over this long (`90s`, `30m`, `2h`), with
        /// faults throughout; without it they are published as fast as the
        /// broker confirms them.
        #[arg(long, value_name = "DURATION", value_parser = parse_age)]
        duration: Option<Age>,
        /// Also really restart RabbitMQ (`rabbitmqctl stop_app`/`start_app`)
        /// or PostgreSQL (`pg_ctlcluster … restart`), one of the two at about
        /// this interval (`45s`, `2m`). Every client of those services loses
        /// its connections: for a machine of your own, run as root.
        #[arg(long, value_name = "INTERVAL", value_parser = parse_age)]
        restart_every: Option<Age>,
        /// Also let the sandbox answer the way the real gateway does (its
        /// `--realistic` preset: tails, 5-field items, `success`, empty
        /// result_details, non-final codes, balance once per trade, poison
        /// trades, XML query errors, 4xx after accepting, batches lagging in
        /// Alipay's backlog for 3 s).
        #[arg(long)]
        realistic: bool,
        /// The share of trades sent on the OpenAPI partner (0 to 1): their
        /// refunds name it, and each is paid by one `alipay.trade.refund`.
        #[arg(long, default_value_t = 0.33, value_parser = parse_share)]
        openapi_share: f64,
        /// Against the three-node cluster of `deploy/cluster.sh` (AMQP_URL
        /// naming its nodes): also SIGKILL a broker node, the approved
        /// queue's leader when it can be read, at about every
        /// `--kill-node-every`, and start it again; the report counts the
        /// kills, leader changes and the longest pauses. The script's path:
        /// CLUSTER_SH, default `deploy/cluster.sh`.
        #[arg(long)]
        cluster: bool,
        /// With `--cluster`: the mean interval between node kills.
        #[arg(long, value_name = "INTERVAL", value_parser = parse_age, default_value = "30s", requires = "cluster")]
        kill_node_every: Option<Age>,
    },
    /// Delete what retention allows: published outbox events, raw bodies of
    /// ordinary notifications of finished batches, and the history and raw
    /// OpenAPI answers of refunds terminal for longer than the age given.
    /// Refunds and batches are kept.
    Prune {
        /// How old what goes must be, at least 1d (e.g. 30d, 2w).
        #[arg(long, value_parser = parse_age)]
        older_than: Age,
        /// Count what would go, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Rows per transaction (each commits at once; no lock held for long).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..=100_000))]
        chunk: i64,
    },
    /// Inspect, replay or purge dead letters (the `refunds.dead` queue).
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
}

/// The loops of `run` (architecture.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Role {
    Intake,
    Batch,
    Submit,
    Http,
    Relay,
    Reconcile,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self
            .to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default();
        f.write_str(&name)
    }
}

/// Benchmark profiles; `pipeline` and `steady` (end to end) arrive with the
/// notification path they measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchProfile {
    /// Intake against the broker's own ceiling.
    Intake,
    /// Batching and submission against the in-process sandbox.
    Submit,
    /// Every role end to end, N refunds at once, against the broker's ceiling.
    Pipeline,
    /// Every role end to end at a fixed rate: latency percentiles.
    Steady,
    /// The pipeline with every refund for one partner on the OpenAPI
    /// channel, against the broker's ceiling.
    Openapi,
}

/// A share between 0 and 1 (`--openapi-share`).
fn parse_share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
        _ => Err(format!("{text:?} is not a share between 0 and 1")),
    }
}
