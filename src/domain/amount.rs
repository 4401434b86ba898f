//! Money as integer fen (分). A yuan amount is read from its decimal text and
//! never passes through a float, so `10.5`, `"10.50"` and `10.50` are the same
//! 1050 fen and `0.1 + 0.2` troubles nobody.

use std::fmt;

/// The largest amount Alipay takes in one refund item: 99 999 999.99 yuan.
pub const MAX_FEN: i64 = 9_999_999_999;

/// A positive amount of CNY in fen, at most [`MAX_FEN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(i64);

/// Why a text is not an amount; the message is shown to whoever sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error(
        "is not a plain decimal number of yuan (digits, optionally a point and 1 or 2 decimals)"
    )]
    Syntax,
    #[error("has more than 2 decimals")]
    TooPrecise,
    #[error("must be greater than 0")]
    NotPositive,
    #[error("is above the maximum of 99999999.99")]
    TooLarge,
}

impl Amount {
    /// Parses yuan text such as `10`, `10.5` or `10.50`. No sign, no exponent,
    /// no leading zeros (`007`), no lone point; at most two decimals.
    pub fn parse_yuan(text: &str) -> Result<Self, AmountError> {
        let (int, frac) = match text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (text, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || (int.len() > 1 && int.starts_with('0')) {
            return Err(AmountError::Syntax);
        }
        let frac = match frac {
            None => "",
            Some(f) if !digits(f) => return Err(AmountError::Syntax),
            Some(f) if f.len() > 2 => return Err(AmountError::TooPrecise),
            Some(f) => f,
        };
        // More than 10 integer digits is too large whatever the value; the
        // check also keeps the arithmetic below from overflowing.
        if int.len() > 10 {
            return Err(AmountError::TooLarge);
        }
        let whole: i64 = int.parse().map_err(|_| AmountError::Syntax)?;
        let cents: i64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<i64>().map_err(|_| AmountError::Syntax)? * 10,
            _ => frac.parse().map_err(|_| AmountError::Syntax)?,
        };
        Self::from_fen(whole * 100 + cents)
    }

    /// An amount from fen, checked against the same bounds as parsed text.
    pub fn from_fen(fen: i64) -> Result<Self, AmountError> {
        if fen <= 0 {
            Err(AmountError::NotPositive)
        } else if fen > MAX_FEN {
            Err(AmountError::TooLarge)
        } else {
            Ok(Self(fen))
        }
    }

    /// The amount in fen.
    pub fn fen(self) -> i64 {
        self.0
    }
}

/// Yuan with exactly two decimals (`10.50`): the form of `detail_data` and of
/// every amount in the result events.
pub fn format_fen(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_fen(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_same_value_written_three_ways_is_one_amount() {
        let a = Amount::parse_yuan("10.5").unwrap();
        assert_eq!(a, Amount::parse_yuan("10.50").unwrap());
        assert_eq!(a.fen(), 1050);
        assert_eq!(a.to_string(), "10.50");
    }

    #[test]
    fn the_bounds_are_one_fen_and_99999999_99_yuan() {
        assert_eq!(Amount::parse_yuan("0.01").unwrap().fen(), 1);
        assert_eq!(Amount::parse_yuan("99999999.99").unwrap().fen(), MAX_FEN);
        assert_eq!(
            Amount::parse_yuan("100000000.00"),
            Err(AmountError::TooLarge)
        );
        assert_eq!(
            Amount::parse_yuan("99999999999999999999"),
            Err(AmountError::TooLarge)
        );
        assert_eq!(Amount::parse_yuan("0"), Err(AmountError::NotPositive));
        assert_eq!(Amount::parse_yuan("0.00"), Err(AmountError::NotPositive));
    }

    #[test]
    fn anything_but_plain_decimal_text_is_refused() {
        for bad in [
            "", "-1", "+1", "1e2", "1.", ".5", "01", "1,00", " 1", "1 ", "0x10", "１",
        ] {
            assert_eq!(Amount::parse_yuan(bad), Err(AmountError::Syntax), "{bad:?}");
        }
        assert_eq!(Amount::parse_yuan("1.001"), Err(AmountError::TooPrecise));
    }

    proptest! {
        #[test]
        fn formatting_then_parsing_gives_back_the_same_fen(fen in 1i64..=MAX_FEN) {
            prop_assert_eq!(Amount::parse_yuan(&format_fen(fen)).unwrap().fen(), fen);
        }
    }
}
