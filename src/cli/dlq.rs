//! The flags of `refund-worker dlq …` (contract §6). Invariant: `replay`
//! and `purge` take exactly one way of choosing letters (a required,
//! exclusive group), so neither can act on everything by accident.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::dlq::{Age, parse_age};

/// `refund-worker dlq …`: every command leaves a dead letter in the queue
/// unless it was asked to move or remove it, and removes nothing before its
/// copy is safe.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// One line per dead letter, in queue order; the queue is left as it was.
    List {
        /// Only the first N (after the other filters).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Only those with this error code (or x-death reason, e.g. delivery_limit).
        #[arg(long)]
        code: Option<String>,
        /// Only those dead-lettered at least this long ago: 45s, 30m, 2h, 1d, 2w.
        #[arg(long, value_name = "DURATION", value_parser = parse_age)]
        older_than: Option<Age>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Every property, header and the body of one dead letter.
    Show {
        /// A message_id, or a position as `list` prints it.
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Publish dead letters again to where they came from; each is removed
    /// from the queue only after the broker confirms its copy.
    Replay {
        #[command(flatten)]
        which: ReplaySelection,
        /// Print what would be replayed; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove dead letters for good (needs --yes; without it, prints what would go).
    Purge {
        #[command(flatten)]
        which: PurgeSelection,
        /// Really remove them.
        #[arg(long)]
        yes: bool,
        /// First append them to FILE as JSON lines (fsynced before anything is removed).
        #[arg(long, value_name = "FILE")]
        save: Option<PathBuf>,
    },
}

/// Which dead letters `dlq replay` sends back: exactly one way of choosing.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ReplaySelection {
    /// message_ids or positions (several may follow one --id).
    #[arg(long, value_name = "ID", num_args = 1..)]
    pub id: Vec<String>,
    /// Every one with this error code (or x-death reason).
    #[arg(long)]
    pub code: Option<String>,
    /// All of them.
    #[arg(long)]
    pub all: bool,
}

/// Which dead letters `dlq purge` removes: exactly one way of choosing.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct PurgeSelection {
    /// message_ids or positions (several may follow one --id).
    #[arg(long, value_name = "ID", num_args = 1..)]
    pub id: Vec<String>,
    /// Every one with this error code (or x-death reason).
    #[arg(long)]
    pub code: Option<String>,
    /// Every one dead-lettered at least this long ago: 45s, 30m, 2h, 1d, 2w.
    #[arg(long, value_name = "DURATION", value_parser = parse_age)]
    pub older_than: Option<Age>,
}
