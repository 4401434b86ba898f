//! The command line (contract §1). Secrets are never flags, so `--help` cannot show one.

use std::fmt;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

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
    /// Measure throughput against the broker's own ceiling (see the README).
    Bench {
        /// Events to push through.
        #[arg(long, default_value_t = 100_000)]
        refunds: usize,
        /// What to measure.
        #[arg(long, value_enum, default_value_t = BenchProfile::Intake)]
        profile: BenchProfile,
        /// Print one JSON record instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RefundCommand {
    /// What the worker knows of one refund, with its history.
    Show {
        /// The refund_id.
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
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

/// Benchmark profiles; `pipeline` and `steady` arrive with the roles they measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchProfile {
    Intake,
}
