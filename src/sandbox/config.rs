//! What a sandbox run is told: partners, ledger defaults, time scale, seed,
//! faults, how realistically Alipay's answers are shaped, and the OpenAPI
//! apps, key and faults (their types are in `openapi/config.rs`).
//!
//! Owns the defaults and the `--realistic` preset. Rates and the time scale
//! are read from text in `config_values.rs`, which keeps a [`Rate`] within
//! `[0, 1]` and a [`TimeScale`] finite and positive.

use std::sync::Arc;
use std::time::Duration;

pub use super::openapi::config::{OpenApiApp, OpenApiFaults};
use crate::alipay::openapi::sign::AppKey;

#[path = "config_values.rs"]
mod values;
pub use values::{ConfigValueError, Rate, TimeScale};

/// A paid amount for trades first seen in a refund: 1000.00 yuan.
pub const DEFAULT_TRADE_PAID_FEN: i64 = 100_000;

/// A merchant account the sandbox knows, with its MD5 key.
#[derive(Clone)]
pub struct PartnerKey {
    /// `2088` + 12 digits.
    pub id: String,
    /// The MD5 key requests are signed with and notifications are signed by.
    pub key: String,
}

// The key is a secret even in a sandbox: it may be a copy of a real one.
impl std::fmt::Debug for PartnerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Everything a sandbox needs to start.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Partners whose requests verify; any other partner is `ILLEGAL_PARTNER`.
    pub partners: Vec<PartnerKey>,
    /// Partners without the nopwd contract (`ILLEGAL_PARTNER_EXTERFACE`).
    pub no_nopwd_partners: Vec<String>,
    /// What an unknown trade was paid, in fen, when first seen.
    pub trade_paid_fen: i64,
    /// Multiplies the notification schedule and the notification delay.
    pub time_scale: TimeScale,
    /// Seed of the one random generator every fault is drawn from.
    pub seed: u64,
    /// Whether password-form batches are approved without an operator.
    pub auto_approve_pwd: bool,
    /// Injected faults.
    pub faults: Faults,
    /// Alipay's real answer shapes and cases (all off by default).
    pub realism: Realism,
    /// OpenAPI apps whose requests verify; any other `app_id` is
    /// `isv.invalid-app-id`.
    pub openapi_apps: Vec<OpenApiApp>,
    /// The key the sandbox, playing Alipay, signs OpenAPI answers and 充退
    /// pushes with; without it every OpenAPI call is `isv.invalid-app-id`.
    pub alipay_key: Option<Arc<AppKey>>,
    /// Faults injected into OpenAPI calls (none by default).
    pub openapi_faults: OpenApiFaults,
}

impl SandboxConfig {
    /// A fault-free sandbox for these partners, at real time.
    pub fn new(partners: Vec<PartnerKey>, seed: u64) -> Self {
        Self {
            partners,
            no_nopwd_partners: Vec::new(),
            trade_paid_fen: DEFAULT_TRADE_PAID_FEN,
            time_scale: TimeScale::REAL,
            seed,
            auto_approve_pwd: false,
            faults: Faults::default(),
            realism: Realism::default(),
            openapi_apps: Vec::new(),
            alipay_key: None,
            openapi_faults: OpenApiFaults::default(),
        }
    }

    /// The key of a configured partner.
    pub fn key_of(&self, partner: &str) -> Option<&str> {
        self.partners
            .iter()
            .find(|p| p.id == partner)
            .map(|p| p.key.as_str())
    }

    /// Whether the partner may use `refund_fastpay_by_platform_nopwd`.
    pub fn has_nopwd_contract(&self, partner: &str) -> bool {
        !self.no_nopwd_partners.iter().any(|p| p == partner)
    }
}

/// Faults to inject, each with the rate at which it happens.
#[derive(Debug, Clone)]
pub struct Faults {
    /// Extra latency before any gateway answer; real time, not scaled,
    /// because it is measured against the client's own real time-out.
    pub latency: Duration,
    /// How often [`Faults::latency`] is added.
    pub latency_rate: Rate,
    /// HTTP 503 without looking at the request; nothing is accepted.
    pub http_5xx_rate: Rate,
    /// Accept and record the batch, then hold the answer for [`Faults::timeout_hold`].
    pub timeout_after_accept_rate: Rate,
    /// How long an accepted answer is held; real time, not scaled.
    pub timeout_hold: Duration,
    /// `F SYSTEM_ERROR` without accepting.
    pub system_error_rate: Rate,
    /// Accept, but answer `P`.
    pub processing_rate: Rate,
    /// Per item: fail it with one of [`Faults::item_failure_codes`].
    pub item_failure_rate: Rate,
    /// The codes an injected item failure picks from.
    pub item_failure_codes: Vec<String>,
    /// Per send: the notification is lost on the way.
    pub notify_drop_rate: Rate,
    /// Per send: the notification arrives twice.
    pub notify_duplicate_rate: Rate,
    /// Delay of the first send of a delayed notification (scaled).
    pub notify_delay: Duration,
    /// How often a notification's first send is delayed.
    pub notify_delay_rate: Rate,
    /// How often a notification waits until a later one has been sent.
    pub notify_reorder_rate: Rate,
}

/// Item failure codes when none are given: two that a later batch may cure
/// and one that is final, so a worker meets both kinds.
pub const DEFAULT_ITEM_FAILURE_CODES: [&str; 3] = [
    "TXN_RESULT_ACCOUNT_BALANCE_NOT_ENOUGH",
    "BATCH_REFUND_LOCK_ERROR",
    "TRADE_HAS_CLOSED",
];

impl Default for Faults {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            latency_rate: Rate::NEVER,
            http_5xx_rate: Rate::NEVER,
            timeout_after_accept_rate: Rate::NEVER,
            timeout_hold: Duration::from_secs(60),
            system_error_rate: Rate::NEVER,
            processing_rate: Rate::NEVER,
            item_failure_rate: Rate::NEVER,
            item_failure_codes: DEFAULT_ITEM_FAILURE_CODES.map(str::to_owned).to_vec(),
            notify_drop_rate: Rate::NEVER,
            notify_duplicate_rate: Rate::NEVER,
            notify_delay: Duration::ZERO,
            notify_delay_rate: Rate::NEVER,
            notify_reorder_rate: Rate::NEVER,
        }
    }
}

/// How the sandbox answers the way the real gateway does, each case with
/// its rate (see alipay-mapi.md for the grammar). Every rate is 0 by
/// default, so a plain sandbox answers in the simplest shapes;
/// [`Realism::realistic`] is the `--realistic` preset.
#[derive(Debug, Clone, PartialEq)]
pub struct Realism {
    /// Per paid item reported: Alipay's tails after the code (fee `$…`,
    /// royalty `|…`, sub-trade `$$…`).
    pub tails_rate: Rate,
    /// Per item reported: the 5-field form `trade^amount^CODE^false^null`.
    pub five_field_rate: Rate,
    /// Per paid item reported: `success` in lower case.
    pub lower_case_rate: Rate,
    /// Per batch notification: `result_details` empty and `success_num=0`;
    /// the results are then only told by `refund_fastpay_query`.
    pub empty_details_rate: Rate,
    /// Per item that would be paid: first reported with a code Alipay
    /// retries itself (not paid yet), paid and notified again later.
    pub non_final_rate: Rate,
    /// How long after its first report a non-final item is settled (scaled).
    pub non_final_delay: Duration,
    /// Per trade: its first refund fails `TXN_RESULT_ACCOUNT_BALANCE_NOT_ENOUGH`.
    pub balance_not_enough_rate: Rate,
    /// Per trade: every batch holding it is refused
    /// `REASON_REFUND_AMOUNT_LESS_THAN_COUPON_FEE`.
    pub poison_rate: Rate,
    /// Per query: answered in the mapi XML form, `F SYSTEM_ERROR`.
    pub xml_query_error_rate: Rate,
    /// Per nopwd request: accepted and processed, then answered HTTP 429 or
    /// 403 with a body that is not the XML answer (a proxy in the way).
    pub accepted_then_4xx_rate: Rate,
    /// Per nopwd batch that would be accepted: taken into Alipay's backlog,
    /// answered `F SYSTEM_ERROR`, absent from queries and answered
    /// `SYSTEM_ERROR` again when resent until [`Realism::lag`] has passed;
    /// then processed and notified as usual.
    pub lag_rate: Rate,
    /// How long a lagged batch stays in the backlog (scaled).
    pub lag: Duration,
}

impl Default for Realism {
    fn default() -> Self {
        Self {
            tails_rate: Rate::NEVER,
            five_field_rate: Rate::NEVER,
            lower_case_rate: Rate::NEVER,
            empty_details_rate: Rate::NEVER,
            non_final_rate: Rate::NEVER,
            non_final_delay: Duration::from_secs(5),
            balance_not_enough_rate: Rate::NEVER,
            poison_rate: Rate::NEVER,
            xml_query_error_rate: Rate::NEVER,
            accepted_then_4xx_rate: Rate::NEVER,
            lag_rate: Rate::NEVER,
            lag: Duration::from_secs(3),
        }
    }
}

impl Realism {
    /// `--realistic`: every case at a modest rate. Poison is per trade and
    /// sinks every batch holding the trade, so a batch of n items meets it
    /// about n times as often: its rate is the lowest.
    pub fn realistic() -> Self {
        Self {
            tails_rate: Rate(0.05),
            five_field_rate: Rate(0.03),
            lower_case_rate: Rate(0.03),
            empty_details_rate: Rate(0.02),
            non_final_rate: Rate(0.02),
            balance_not_enough_rate: Rate(0.02),
            poison_rate: Rate(0.01),
            xml_query_error_rate: Rate(0.05),
            accepted_then_4xx_rate: Rate(0.02),
            lag_rate: Rate(0.02),
            ..Self::default()
        }
    }

    /// Whether any case can happen. When none can, nothing is drawn for
    /// realism at all, so a seed replays exactly as it did before realism
    /// existed.
    pub fn is_on(&self) -> bool {
        [
            self.tails_rate,
            self.five_field_rate,
            self.lower_case_rate,
            self.empty_details_rate,
            self.non_final_rate,
            self.balance_not_enough_rate,
            self.poison_rate,
            self.xml_query_error_rate,
            self.accepted_then_4xx_rate,
            self.lag_rate,
        ]
        .iter()
        .any(|r| r.get() > 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realism_is_off_by_default_and_the_preset_turns_every_case_on() {
        assert!(!Realism::default().is_on());
        assert!(!SandboxConfig::new(Vec::new(), 1).realism.is_on());
        let r = Realism::realistic();
        assert!(r.is_on());
        for rate in [
            r.tails_rate,
            r.five_field_rate,
            r.lower_case_rate,
            r.empty_details_rate,
            r.non_final_rate,
            r.balance_not_enough_rate,
            r.poison_rate,
            r.xml_query_error_rate,
            r.accepted_then_4xx_rate,
        ] {
            assert!((0.01..=0.05).contains(&rate.get()), "{rate:?}");
        }
        let one = Realism {
            poison_rate: Rate::ALWAYS,
            ..Realism::default()
        };
        assert!(one.is_on());
    }

    #[test]
    fn the_key_is_not_in_debug_output() {
        let p = PartnerKey {
            id: "2088101122136241".into(),
            key: "very-secret".into(),
        };
        assert!(!format!("{p:?}").contains("very-secret"));
        let config = SandboxConfig::new(vec![p], 7);
        assert!(!format!("{config:?}").contains("very-secret"));
        assert_eq!(config.key_of("2088101122136241"), Some("very-secret"));
        assert!(config.has_nopwd_contract("2088101122136241"));
    }
}
