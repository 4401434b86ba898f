//! The command line (contract §1). Secrets are never flags, so `--help` cannot show one.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::dlq::{Age, parse_age};
use crate::sandbox::{Rate, TimeScale};

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
    /// Measure throughput against the broker's own ceiling (see the README).
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
    },
    /// Inspect, replay or purge dead letters (the `refunds.dead` queue).
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
}

/// `refund-worker sandbox`: the flags of the gateway simulator.
///
/// Delays are in real milliseconds unless said otherwise; rates are decimal
/// probabilities in [0, 1].
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Where to listen; port 0 picks a free port (printed at start).
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// Partner ids (repeatable or comma-separated); default: ALIPAY_PARTNER and the config file's partners.
    #[arg(long, value_delimiter = ',')]
    pub partner: Vec<String>,
    /// The partners' MD5 keys, in the same order (test keys only: a flag shows in `ps`); default: ALIPAY_KEY.
    #[arg(long, value_delimiter = ',')]
    pub key: Vec<String>,
    /// Partners without the nopwd contract: they get ILLEGAL_PARTNER_EXTERFACE.
    #[arg(long, value_delimiter = ',')]
    pub no_nopwd_partner: Vec<String>,
    /// What a trade seen for the first time was paid, in yuan.
    #[arg(long, default_value = "1000.00", value_parser = parse_yuan_fen)]
    pub trade_paid: i64,
    /// Multiplies the notification resend schedule and --notify-delay-ms (0.001: minutes become tenths of seconds).
    #[arg(long, default_value = "1")]
    pub time_scale: TimeScale,
    /// Seed of every injected fault; printed at start so a run can be replayed. Default: random.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Approve password-form batches at once instead of waiting for POST /sandbox/approve.
    #[arg(long)]
    pub auto_approve_pwd: bool,
    /// Extra latency before a gateway answer.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// How often --latency-ms is added.
    #[arg(long, default_value = "0")]
    pub latency_rate: Rate,
    /// Answer HTTP 503 without accepting anything.
    #[arg(long = "http-5xx-rate", default_value = "0")]
    pub http_5xx_rate: Rate,
    /// Accept and record the batch, then hold the answer for --timeout-hold-ms.
    #[arg(long, default_value = "0")]
    pub timeout_after_accept_rate: Rate,
    /// How long a held answer is held.
    #[arg(long, default_value_t = 60_000)]
    pub timeout_hold_ms: u64,
    /// Answer F SYSTEM_ERROR without accepting.
    #[arg(long, default_value = "0")]
    pub system_error_rate: Rate,
    /// Accept the batch but answer P.
    #[arg(long, default_value = "0")]
    pub processing_rate: Rate,
    /// Per item: fail it with one of --item-failure-codes.
    #[arg(long, default_value = "0")]
    pub item_failure_rate: Rate,
    /// Codes for injected item failures (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "TXN_RESULT_ACCOUNT_BALANCE_NOT_ENOUGH,BATCH_REFUND_LOCK_ERROR,TRADE_HAS_CLOSED"
    )]
    pub item_failure_codes: Vec<String>,
    /// Per send: lose the notification on the way.
    #[arg(long, default_value = "0")]
    pub notify_drop_rate: Rate,
    /// Per send: deliver the notification twice.
    #[arg(long, default_value = "0")]
    pub notify_duplicate_rate: Rate,
    /// Delay of a delayed notification's first send (scaled by --time-scale).
    #[arg(long, default_value_t = 0)]
    pub notify_delay_ms: u64,
    /// How often a notification is delayed by --notify-delay-ms.
    #[arg(long, default_value = "0")]
    pub notify_delay_rate: Rate,
    /// How often a notification is held back until a later batch's has gone out.
    #[arg(long, default_value = "0")]
    pub notify_reorder_rate: Rate,
    /// Answer the way the real gateway does: every case below at a modest
    /// rate (the value after "realistic"); a rate flag given overrides it.
    #[arg(long)]
    pub realistic: bool,
    /// Per paid item reported: Alipay's tails after the code ($fee, |royalty, $$sub-trade) [default: 0; realistic: 0.05].
    #[arg(long)]
    pub tails_rate: Option<Rate>,
    /// Per item reported: 5 fields, trade^amount^CODE^false^null [default: 0; realistic: 0.03].
    #[arg(long)]
    pub five_field_rate: Option<Rate>,
    /// Per paid item reported: `success` in lower case [default: 0; realistic: 0.03].
    #[arg(long)]
    pub lower_case_rate: Option<Rate>,
    /// Per batch notification: empty result_details and success_num=0; only a query tells the results [default: 0; realistic: 0.02].
    #[arg(long)]
    pub empty_details_rate: Option<Rate>,
    /// Per item that would be paid: first reported TRADE_PAYMENT_ERROR, TRADE_PROCESS_ERROR or QUERY_PARTICIPANT_ERROR, then paid and notified again with a new notify_id [default: 0; realistic: 0.02].
    #[arg(long)]
    pub non_final_rate: Option<Rate>,
    /// How long after the first report a non-final item is paid and notified again (scaled by --time-scale).
    #[arg(long, default_value_t = 5_000)]
    pub non_final_delay_ms: u64,
    /// Per trade: its first refund fails TXN_RESULT_ACCOUNT_BALANCE_NOT_ENOUGH, later ones are paid [default: 0; realistic: 0.02].
    #[arg(long)]
    pub balance_not_enough_rate: Option<Rate>,
    /// Per trade: every batch holding it is answered F REASON_REFUND_AMOUNT_LESS_THAN_COUPON_FEE [default: 0; realistic: 0.01].
    #[arg(long)]
    pub poison_rate: Option<Rate>,
    /// Per query: answered F SYSTEM_ERROR in the mapi XML form, declared GBK or utf-8 [default: 0; realistic: 0.05].
    #[arg(long)]
    pub xml_query_error_rate: Option<Rate>,
    /// Per nopwd batch: accepted and processed, then answered HTTP 429 or 403 with a non-XML body [default: 0; realistic: 0.02].
    #[arg(long = "accepted-then-4xx-rate")]
    pub accepted_then_4xx_rate: Option<Rate>,
    /// Per nopwd batch that would be accepted: taken but answered F SYSTEM_ERROR; for --lag-ms a resend is answered SYSTEM_ERROR and a query REFUND_NOT_EXIST, then it is paid and notified, and a resend is DUPLICATE_BATCH_NO [default: 0; realistic: 0.02].
    #[arg(long)]
    pub lag_rate: Option<Rate>,
    /// How long a lagged batch stays in Alipay's backlog (scaled by --time-scale).
    #[arg(long, default_value_t = 3_000)]
    pub lag_ms: u64,
}

/// Yuan text to fen, through the domain's own parser (never a float).
fn parse_yuan_fen(text: &str) -> Result<i64, String> {
    crate::domain::Amount::parse_yuan(text)
        .map(|a| a.fen())
        .map_err(|e| format!("{text:?} {e}"))
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
    /// Put failed refunds whose failure may pass back to pending (one
    /// transaction each); refuses the others and says why.
    Retry {
        /// The refund_ids.
        #[arg(required_unless_present = "code", conflicts_with = "code")]
        ids: Vec<String>,
        /// Every failed refund with this code instead.
        #[arg(long)]
        code: Option<String>,
        /// With --code: only those that failed at or after this time (RFC 3339, or a date YYYY-MM-DD in UTC).
        #[arg(long, requires = "code")]
        since: Option<String>,
        /// Who asks, for the history (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Settle a submitted refund whose item Alipay left open (a code that
    /// needs a person, an unknown code, an amount other than the one sent):
    /// writes its terminal event with source `operator`.
    Settle {
        /// The refund_id.
        id: String,
        /// The money moved (the merchant's Alipay account shows the refund).
        #[arg(long, conflicts_with = "failed", required_unless_present = "failed")]
        succeeded: bool,
        /// The money did not move: fail it with this code.
        #[arg(long, value_name = "CODE")]
        failed: Option<String>,
        /// Why, for the history (what the Alipay account or support showed).
        #[arg(long)]
        reason: String,
        /// Who settles it, for the history.
        #[arg(long)]
        by: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Send a held batch's refunds back to pending (Alipay refused it with a
    /// code the answer table does not know, so nothing of it was accepted).
    Release {
        /// The batch_no.
        batch_no: String,
        /// Why, for the history.
        #[arg(long)]
        reason: String,
        /// Who releases it, for the history.
        #[arg(long)]
        by: String,
    },
    /// Batches, newest first.
    List {
        /// Only batches waiting for an operator and the password form.
        #[arg(long)]
        awaiting_operator: bool,
        /// Only batches in this state.
        #[arg(long, conflicts_with = "awaiting_operator")]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Print the signed auto-submit HTML form of the password interface for a
    /// batch awaiting an operator (`> form.html`, then open it in a browser).
    Form {
        /// The batch_no.
        batch_no: String,
    },
    /// What the worker knows of one batch: items, history, every
    /// notification and query answer.
    Show {
        /// The batch_no.
        batch_no: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

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
}
