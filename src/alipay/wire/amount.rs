//! Yuan text to integer fen and back, never through a float.
//!
//! Owns the two amount grammars on the wire: what we send (`%.2f`, exactly two
//! decimals) and what Alipay reports in `result_details` (`80`, `0.5`,
//! `0.01`: up to two decimals). Invariant: `parse_exact(&format(f)) == Ok(f)`
//! for every non-negative `f`.

use thiserror::Error;

/// Why a yuan amount could not be read.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum AmountError {
    /// Not digits with an optional `.` and decimals, in the accepted form.
    #[error("malformed amount {0:?}")]
    Malformed(String),
    /// Too large for i64 fen.
    #[error("amount {0:?} overflows")]
    Overflow(String),
}

/// Formats fen as yuan with exactly two decimals, like C's `%.2f`: 1050 -> "10.50".
pub fn format_amount(fen: i64) -> String {
    crate::domain::format_fen(fen)
}

/// Reads an amount we wrote: digits, a dot, exactly two decimals, no
/// superfluous leading zero, no sign.
pub fn parse_exact(text: &str) -> Result<i64, AmountError> {
    let malformed = || AmountError::Malformed(text.to_owned());
    let (whole, frac) = text.split_once('.').ok_or_else(malformed)?;
    if frac.len() != 2 || (whole.len() > 1 && whole.starts_with('0')) {
        return Err(malformed());
    }
    to_fen(text, whole, frac)
}

/// Reads an amount Alipay reported: digits with up to two decimals (`80`,
/// `0.5`, `0.01`); a trailing or leading lone dot is refused.
pub fn parse_reported(text: &str) -> Result<i64, AmountError> {
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) if !f.is_empty() && f.len() <= 2 => (w, f),
        Some(_) => return Err(AmountError::Malformed(text.to_owned())),
        None => (text, ""),
    };
    to_fen(text, whole, frac)
}

/// Combines validated parts into fen; `frac` has at most two digits.
fn to_fen(text: &str, whole: &str, frac: &str) -> Result<i64, AmountError> {
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(frac) {
        return Err(AmountError::Malformed(text.to_owned()));
    }
    let overflow = || AmountError::Overflow(text.to_owned());
    let mut fen: i64 = 0;
    for b in whole.bytes().chain(frac.bytes()) {
        fen = fen
            .checked_mul(10)
            .and_then(|f| f.checked_add(i64::from(b - b'0')))
            .ok_or_else(overflow)?;
    }
    // "0.5" means 50 fen: scale up for each missing decimal.
    for _ in frac.len()..2 {
        fen = fen.checked_mul(10).ok_or_else(overflow)?;
    }
    Ok(fen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fen_format_as_yuan_with_two_decimals() {
        assert_eq!(format_amount(1050), "10.50");
        assert_eq!(format_amount(1), "0.01");
        assert_eq!(format_amount(0), "0.00");
        assert_eq!(format_amount(100_000), "1000.00");
        assert_eq!(format_amount(-5), "-0.05");
        assert_eq!(format_amount(i64::MIN), "-92233720368547758.08");
    }

    #[test]
    fn exact_amounts_need_two_decimals() {
        assert_eq!(parse_exact("10.50"), Ok(1050));
        assert_eq!(parse_exact("0.01"), Ok(1));
        for bad in [
            "10.5", "10", "10.500", ".50", "-1.00", "+1.00", "01.00", " 1.00", "1,00",
        ] {
            assert!(parse_exact(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn reported_amounts_take_up_to_two_decimals() {
        assert_eq!(parse_reported("80"), Ok(8000));
        assert_eq!(parse_reported("0.01"), Ok(1));
        assert_eq!(parse_reported("0.5"), Ok(50));
        assert_eq!(parse_reported("12.34"), Ok(1234));
        for bad in ["", ".", "80.", ".5", "0.001", "1e2", "-1", "1.2.3", "８０"] {
            assert!(parse_reported(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn an_amount_beyond_i64_fen_overflows() {
        assert!(matches!(
            parse_reported("92233720368547758.08"),
            Err(AmountError::Overflow(_))
        ));
        assert_eq!(parse_reported("92233720368547758.07"), Ok(i64::MAX));
    }

    proptest! {
        #[test]
        fn formatting_then_parsing_returns_the_same_fen(fen in 0i64..=i64::MAX) {
            prop_assert_eq!(parse_exact(&format_amount(fen)), Ok(fen));
            prop_assert_eq!(parse_reported(&format_amount(fen)), Ok(fen));
        }
    }
}
