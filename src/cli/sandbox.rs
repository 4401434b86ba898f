//! The flags of `refund-worker sandbox`, the gateway simulator. Invariant:
//! keys are test keys only (a flag shows in `ps`); rates are parsed into
//! [`Rate`] here, so the sandbox never sees one outside `[0, 1]`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::sandbox::{Rate, TimeScale};

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
    /// The RSA2 private key the sandbox, playing Alipay, signs OpenAPI answers and 充退 pushes with (test key: deploy/sandbox-keys/alipay-private.pem). Without it every OpenAPI call is answered 40002 isv.invalid-app-id.
    #[arg(long)]
    pub alipay_private_key_file: Option<PathBuf>,
    /// An OpenAPI app, APP_ID=PARTNER=PATH_TO_APP_PRIVATE_KEY (repeatable); its requests are verified with the public half of that key (test key: deploy/sandbox-keys/app-private.pem).
    #[arg(long)]
    pub openapi_app: Vec<String>,
}

/// Yuan text to fen, through the domain's own parser (never a float).
fn parse_yuan_fen(text: &str) -> Result<i64, String> {
    crate::domain::Amount::parse_yuan(text)
        .map(|a| a.fen())
        .map_err(|e| format!("{text:?} {e}"))
}
