//! What a sandbox run is told: partners, ledger defaults, time scale, seed, faults.
//!
//! Owns the parsing of rates and the time scale from text. Invariants: a
//! [`Rate`] is always within `[0, 1]` and a [`TimeScale`] is finite and
//! positive, so the code that draws faults or scales delays never has to
//! check again. Rates and the time scale are probabilities and factors, not
//! money, so a float is fine there; amounts stay integer fen.

use std::str::FromStr;
use std::time::Duration;

use thiserror::Error;

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

/// Why a rate or time scale could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigValueError {
    /// Not plain decimal text such as `0.25` or `1`.
    #[error("{0:?} is not a decimal number such as 0.25")]
    NotDecimal(String),
    /// A rate above 1.
    #[error("{0:?} is not a rate between 0 and 1")]
    RateAboveOne(String),
    /// A time scale of zero.
    #[error("{0:?} is not a positive time scale")]
    ZeroScale(String),
}

/// A probability in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate(f64);

impl Rate {
    /// Never happens.
    pub const NEVER: Rate = Rate(0.0);
    /// Always happens.
    pub const ALWAYS: Rate = Rate(1.0);

    /// The probability.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl FromStr for Rate {
    type Err = ConfigValueError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let value = parse_decimal(text)?;
        if value > 1.0 {
            return Err(ConfigValueError::RateAboveOne(text.to_owned()));
        }
        Ok(Rate(value))
    }
}

/// A positive, finite factor applied to the notification schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeScale(f64);

impl TimeScale {
    /// Alipay's own pace.
    pub const REAL: TimeScale = TimeScale(1.0);

    /// Scales a duration; what is too large for a `Duration` saturates.
    pub fn scale(self, d: Duration) -> Duration {
        Duration::try_from_secs_f64(d.as_secs_f64() * self.0).unwrap_or(Duration::MAX)
    }
}

impl FromStr for TimeScale {
    type Err = ConfigValueError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let value = parse_decimal(text)?;
        if value <= 0.0 {
            return Err(ConfigValueError::ZeroScale(text.to_owned()));
        }
        Ok(TimeScale(value))
    }
}

/// Reads digits with an optional point and decimals: no sign, exponent, `inf` or `nan`.
fn parse_decimal(text: &str) -> Result<f64, ConfigValueError> {
    let bad = || ConfigValueError::NotDecimal(text.to_owned());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let ok = match text.split_once('.') {
        Some((whole, frac)) => digits(whole) && digits(frac),
        None => digits(text),
    };
    if !ok {
        return Err(bad());
    }
    let value: f64 = text.parse().map_err(|_| bad())?;
    // Enough digits overflow to infinity; no rate or scale means that.
    if value.is_finite() {
        Ok(value)
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_read_from_decimal_text() {
        assert_eq!("0.25".parse::<Rate>(), Ok(Rate(0.25)));
        assert_eq!("1".parse::<Rate>(), Ok(Rate::ALWAYS));
        assert_eq!("0".parse::<Rate>(), Ok(Rate::NEVER));
        assert_eq!("1.0".parse::<Rate>(), Ok(Rate::ALWAYS));
    }

    #[test]
    fn a_rate_outside_zero_to_one_or_not_decimal_is_refused() {
        assert!(matches!(
            "1.01".parse::<Rate>(),
            Err(ConfigValueError::RateAboveOne(_))
        ));
        for bad in ["-0.1", "1e-3", "nan", "inf", ".5", "5.", "", " 0.1", "0,5"] {
            assert!(
                matches!(bad.parse::<Rate>(), Err(ConfigValueError::NotDecimal(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_time_scale_must_be_positive() {
        assert_eq!("0.001".parse::<TimeScale>(), Ok(TimeScale(0.001)));
        assert!(matches!(
            "0".parse::<TimeScale>(),
            Err(ConfigValueError::ZeroScale(_))
        ));
        assert!("-1".parse::<TimeScale>().is_err());
    }

    #[test]
    fn the_time_scale_multiplies_durations() {
        let scale: TimeScale = "0.001".parse().unwrap();
        assert_eq!(
            scale.scale(Duration::from_secs(120)),
            Duration::from_millis(120)
        );
        assert_eq!(
            TimeScale::REAL.scale(Duration::from_secs(7)),
            Duration::from_secs(7)
        );
    }

    #[test]
    fn a_huge_time_scale_saturates_instead_of_panicking() {
        let scale: TimeScale = format!("1{}", "0".repeat(30)).parse().unwrap();
        assert_eq!(scale.scale(Duration::from_secs(54_000)), Duration::MAX);
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
