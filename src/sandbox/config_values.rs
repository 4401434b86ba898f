//! The two kinds of number a sandbox run is told as text: a [`Rate`] and a
//! [`TimeScale`], and why such text is refused.
//!
//! Invariants: a [`Rate`] is always within `[0, 1]` and a [`TimeScale`] is
//! finite and positive, so the code that draws faults or scales delays never
//! has to check again. They are probabilities and factors, not money, so a
//! float is fine here; amounts stay integer fen.

use std::str::FromStr;
use std::time::Duration;

use thiserror::Error;

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
// The field is visible to `config.rs` only, for the literal rates of the
// `--realistic` preset, each within `[0, 1]`.
pub struct Rate(pub(super) f64);

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

    /// The duration this scale turns into `d`: how to ask for a delay of
    /// `d` in real time from a sandbox running at this scale.
    pub fn unscale(self, d: Duration) -> Duration {
        Duration::try_from_secs_f64(d.as_secs_f64() / self.0).unwrap_or(Duration::MAX)
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
    fn unscaling_asks_for_what_the_scale_turns_into_the_duration_wanted() {
        let scale: TimeScale = "0.001".parse().unwrap();
        let wanted = Duration::from_secs(3);
        let asked = scale.unscale(wanted);
        assert_eq!(asked.as_secs(), 3000, "{asked:?}");
        assert!(scale.scale(asked).abs_diff(wanted) < Duration::from_micros(1));
        assert_eq!(TimeScale::REAL.unscale(wanted), wanted);
    }

    #[test]
    fn a_huge_time_scale_saturates_instead_of_panicking() {
        let scale: TimeScale = format!("1{}", "0".repeat(30)).parse().unwrap();
        assert_eq!(scale.scale(Duration::from_secs(54_000)), Duration::MAX);
    }
}
