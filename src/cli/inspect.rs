//! The flags of `refund-worker refund …` and `batch …`: an operator's look
//! at refunds and batches, and the few changes a person may make to them.
//! Invariant: each change (retry, settle, release) says who made it, for
//! the history.

use clap::Subcommand;

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
