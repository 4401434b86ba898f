//! Beijing time, `batch_no` and `refund_date`.
//!
//! Owns the date rules Alipay checks: a `batch_no` is the Beijing date
//! `yyyyMMdd` plus a serial of 3–24 ASCII letters or digits (11–32 characters
//! in all), and the request's `refund_date` must fall on that same date.
//! Invariant: every date here is Beijing time (UTC+8, which has no DST), taken
//! from a `now` passed in, never read from the clock.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Utc};
use thiserror::Error;

/// China Standard Time; `east_opt` is const, so a bad offset fails the build, not a run.
const BEIJING: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+8 is a valid offset"),
};

/// The wire format of `refund_date`.
const REFUND_DATE_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Why a `batch_no` would be refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BatchNoError {
    /// Not 11–32 ASCII letters or digits.
    #[error("batch_no must be 11 to 32 ASCII letters or digits, got {0:?}")]
    Shape(String),
    /// The first eight characters are not a calendar date.
    #[error("batch_no {0:?} does not start with a yyyyMMdd date")]
    NotADate(String),
    /// The serial is all zeros, which Alipay refuses (`000`).
    #[error("batch_no {0:?} has an all-zero serial")]
    ZeroSerial(String),
    /// The date is not today's Beijing date (`BATCH_NO_FORMAT_ERROR` at Alipay).
    #[error("batch_no {batch_no:?} is dated {date}, but today in Beijing is {today}")]
    NotToday {
        /// The refused `batch_no`.
        batch_no: String,
        /// Its date.
        date: NaiveDate,
        /// Today's Beijing date.
        today: NaiveDate,
    },
}

/// Converts a UTC instant to Beijing wall-clock time, the time Alipay reads.
pub fn beijing_now(utc: DateTime<Utc>) -> NaiveDateTime {
    utc.with_timezone(&BEIJING).naive_local()
}

/// Formats a Beijing wall-clock time as `refund_date`: `yyyy-MM-dd HH:mm:ss`.
pub fn format_refund_date(beijing: NaiveDateTime) -> String {
    beijing.format(REFUND_DATE_FORMAT).to_string()
}

/// Reads a `refund_date` back, for tests and for checking stored batches.
pub fn parse_refund_date(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, REFUND_DATE_FORMAT).ok()
}

/// Checks a `batch_no`'s shape and returns its date, whatever day it is now.
///
/// This is the check for resending a stored batch; minting a new one uses
/// [`validate_batch_no`], which also wants today's date.
pub fn parse_batch_no(batch_no: &str) -> Result<NaiveDate, BatchNoError> {
    let shape_ok =
        (11..=32).contains(&batch_no.len()) && batch_no.bytes().all(|b| b.is_ascii_alphanumeric());
    if !shape_ok {
        return Err(BatchNoError::Shape(batch_no.to_owned()));
    }
    // All bytes are ASCII, so slicing at 8 is on a character boundary.
    let (date, serial) = batch_no.split_at(8);
    let date =
        parse_compact_date(date).ok_or_else(|| BatchNoError::NotADate(batch_no.to_owned()))?;
    // Alipay names only `000`; any all-zero serial is refused too because it
    // costs us nothing (we mint serials) and avoids guessing Alipay's check.
    if serial.bytes().all(|b| b == b'0') {
        return Err(BatchNoError::ZeroSerial(batch_no.to_owned()));
    }
    Ok(date)
}

/// Checks a new `batch_no` against Alipay's rules and today's Beijing date.
pub fn validate_batch_no(batch_no: &str, beijing_today: NaiveDate) -> Result<(), BatchNoError> {
    let date = parse_batch_no(batch_no)?;
    if date != beijing_today {
        return Err(BatchNoError::NotToday {
            batch_no: batch_no.to_owned(),
            date,
            today: beijing_today,
        });
    }
    Ok(())
}

/// Reads `yyyyMMdd` made of ASCII digits into a date.
fn parse_compact_date(text: &str) -> Option<NaiveDate> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year = text.get(0..4)?.parse().ok()?;
    let month = text.get(4..6)?.parse().ok()?;
    let day = text.get(6..8)?.parse().ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn beijing_is_eight_hours_ahead_of_utc() {
        let utc = Utc.with_ymd_and_hms(2024, 3, 10, 12, 0, 0).unwrap();
        assert_eq!(format_refund_date(beijing_now(utc)), "2024-03-10 20:00:00");
    }

    #[test]
    fn utc_evening_is_already_tomorrow_in_beijing() {
        let utc = Utc.with_ymd_and_hms(2024, 12, 31, 16, 0, 0).unwrap();
        assert_eq!(beijing_now(utc).date(), day(2025, 1, 1));
        let utc = Utc.with_ymd_and_hms(2024, 12, 31, 15, 59, 59).unwrap();
        assert_eq!(beijing_now(utc).date(), day(2024, 12, 31));
    }

    #[test]
    fn refund_date_drops_fractions_and_reads_back() {
        let utc = Utc.with_ymd_and_hms(2016, 6, 12, 23, 57, 12).unwrap()
            + chrono::TimeDelta::milliseconds(999);
        let text = format_refund_date(beijing_now(utc));
        assert_eq!(text, "2016-06-13 07:57:12");
        assert_eq!(
            parse_refund_date(&text).map(|d| d.date()),
            Some(day(2016, 6, 13))
        );
    }

    #[test]
    fn the_seed_batch_no_is_valid_on_its_day() {
        let today = day(2016, 6, 13);
        assert_eq!(
            validate_batch_no("20160613236648747861707090426379", today),
            Ok(())
        );
        assert_eq!(validate_batch_no("20160613001", today), Ok(()));
        assert_eq!(validate_batch_no("20160613abcXYZ", today), Ok(()));
    }

    #[test]
    fn a_batch_no_from_yesterday_is_refused() {
        assert!(matches!(
            validate_batch_no("20160612001", day(2016, 6, 13)),
            Err(BatchNoError::NotToday { .. })
        ));
        assert_eq!(parse_batch_no("20160612001"), Ok(day(2016, 6, 12)));
    }

    #[test]
    fn batch_no_length_is_eleven_to_thirty_two() {
        let today = day(2016, 6, 13);
        assert!(matches!(
            validate_batch_no("2016061301", today),
            Err(BatchNoError::Shape(_))
        ));
        let long = format!("20160613{}", "1".repeat(25));
        assert!(matches!(
            validate_batch_no(&long, today),
            Err(BatchNoError::Shape(_))
        ));
        let longest = format!("20160613{}", "1".repeat(24));
        assert_eq!(validate_batch_no(&longest, today), Ok(()));
    }

    #[test]
    fn batch_no_takes_only_ascii_letters_and_digits() {
        let today = day(2016, 6, 13);
        for bad in [
            "20160613-001",
            "20160613 001",
            "20160613退款1",
            "20160613_001",
        ] {
            assert!(
                matches!(validate_batch_no(bad, today), Err(BatchNoError::Shape(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_all_zero_serial_is_refused() {
        let today = day(2016, 6, 13);
        assert!(matches!(
            validate_batch_no("20160613000", today),
            Err(BatchNoError::ZeroSerial(_))
        ));
        assert!(matches!(
            validate_batch_no("201606130000", today),
            Err(BatchNoError::ZeroSerial(_))
        ));
        assert_eq!(validate_batch_no("20160613100", today), Ok(()));
    }

    #[test]
    fn a_batch_no_must_start_with_a_real_date() {
        for bad in ["20160230001", "20161301001", "abcdefgh001", "2016061a001"] {
            assert!(
                matches!(parse_batch_no(bad), Err(BatchNoError::NotADate(_))),
                "{bad}"
            );
        }
    }
}
