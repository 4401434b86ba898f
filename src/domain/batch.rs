//! Batch rules, pure: the records a batch is made of (a pending refund the
//! batcher may take, an item as sent, a batch as the submitter claimed it),
//! which pending refunds go into the next batch, when a batch is due, and
//! how it is numbered.
//!
//! Invariants: one partner per batch (the caller reads one partner's
//! candidates), a trade at most once, at most `max_items`, arrival order kept.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

/// Alipay refunds a trade at most 99 times; the 100th is neither paid nor notified.
pub const MAX_REFUNDS_PER_TRADE: i64 = 99;

/// A pending refund the batcher may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub refund_id: String,
    pub trade_no: String,
    pub amount_fen: i64,
    pub reason: String,
    pub received_at: DateTime<Utc>,
}

/// One refund of one trade inside a batch, as sent (`trade_no^amount^reason`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchItem {
    /// Alipay's trade number of the original payment.
    pub trade_no: String,
    /// Amount to refund, in fen.
    pub amount_fen: i64,
    /// Refund reason shown to the buyer (as sent: see `alipay::wire::reason`).
    pub reason: String,
}

/// A batch as the submitter claimed it.
#[derive(Debug, Clone)]
pub struct ClaimedBatch {
    pub batch_no: String,
    pub partner: String,
    pub refund_date: String,
    pub detail_data: String,
    /// Attempts including this one.
    pub attempts: i32,
    /// Some earlier attempt's outcome is unknown.
    pub outcome_unknown: bool,
    pub needs_query: bool,
    pub created_at: DateTime<Utc>,
    /// When it was last sent, or may have been (an attempt cut off mid-call).
    pub last_sent_at: Option<DateTime<Utc>>,
    /// When the first `REFUND_NOT_EXIST` that counts toward absence was seen.
    pub absence_first_at: Option<DateTime<Utc>>,
    /// Whether a notification that verified was ever received for it.
    pub notified: bool,
}

impl ClaimedBatch {
    pub fn items(&self) -> usize {
        self.detail_data.split('#').count()
    }
}

/// A batch as the reconciler claimed it: submitted without a notification,
/// or awaiting an operator with its form printed or past its date.
#[derive(Debug, Clone)]
pub struct ReconcileClaim {
    pub batch_no: String,
    pub partner: String,
    pub status: super::BatchStatus,
    pub form_printed_at: Option<DateTime<Utc>>,
    pub last_sent_at: Option<DateTime<Utc>>,
    pub absence_first_at: Option<DateTime<Utc>>,
    /// Its `batch_no` carries a Beijing date before today.
    pub past_date: bool,
    /// Whether a notification that verified was ever received for it.
    pub notified: bool,
}

/// The first refund of each trade, in arrival order, up to `max_items`; later
/// refunds of a trade wait for the earlier one's result.
pub fn pick(candidates: Vec<Candidate>, max_items: usize) -> Vec<Candidate> {
    let mut trades = HashSet::new();
    candidates
        .into_iter()
        .filter(|c| trades.insert(c.trade_no.clone()))
        .take(max_items)
        .collect()
}

/// When the picked refunds make a batch: now if it is full or its oldest has
/// waited `linger`; otherwise the moment it will be due.
pub fn due(
    picked: &[Candidate],
    max_items: usize,
    linger: Duration,
    now: DateTime<Utc>,
) -> Result<(), DateTime<Utc>> {
    let Some(oldest) = picked.iter().map(|c| c.received_at).min() else {
        return Err(now + linger);
    };
    let due_at = oldest + linger;
    if picked.len() >= max_items || due_at <= now {
        Ok(())
    } else {
        Err(due_at)
    }
}

/// `batch_no`: the Beijing date, `BATCH_NO_PREFIX` (letters and digits, at
/// most 12, so two databases sending with one partner never collide) and a
/// 12-digit serial from the one sequence; 20 to 32 characters, unique
/// across partners forever.
pub fn batch_no(prefix: &str, beijing_date: NaiveDate, serial: i64) -> String {
    format!("{}{prefix}{serial:012}", beijing_date.format("%Y%m%d"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, trade: &str, secs: i64) -> Candidate {
        Candidate {
            refund_id: id.into(),
            trade_no: trade.into(),
            amount_fen: 100,
            reason: "r".into(),
            received_at: DateTime::from_timestamp(1_764_000_000 + secs, 0).unwrap(),
        }
    }

    #[test]
    fn a_trade_goes_in_once_and_the_batch_stops_at_its_limit() {
        let picked = pick(
            vec![
                c("a", "T1", 0),
                c("b", "T1", 1),
                c("c", "T2", 2),
                c("d", "T3", 3),
            ],
            2,
        );
        let ids: Vec<_> = picked.iter().map(|c| c.refund_id.as_str()).collect();
        assert_eq!(ids, ["a", "c"]);
    }

    #[test]
    fn a_batch_is_due_when_full_or_when_its_oldest_has_lingered() {
        let linger = Duration::from_secs(2);
        let t0 = DateTime::from_timestamp(1_764_000_000, 0).unwrap();
        let one = [c("a", "T1", 0)];
        assert_eq!(due(&one, 10, linger, t0), Err(t0 + linger));
        assert_eq!(due(&one, 10, linger, t0 + linger), Ok(()));
        assert_eq!(due(&one, 1, linger, t0), Ok(()));
    }

    #[test]
    fn batch_numbers_carry_the_beijing_date_and_pass_alipays_format() {
        let date = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let no = batch_no("", date, 1234);
        assert_eq!(no, "20261125000000001234");
        assert!(crate::alipay::wire::batch_no::validate_batch_no(&no, date).is_ok());
        let no = batch_no("stg2", date, 1234);
        assert_eq!(no, "20261125stg2000000001234");
        assert!(crate::alipay::wire::batch_no::validate_batch_no(&no, date).is_ok());
        let longest = batch_no("ABCDEFGHIJKL", date, 999_999_999_999);
        assert_eq!(longest.len(), 32);
        assert!(crate::alipay::wire::batch_no::validate_batch_no(&longest, date).is_ok());
    }
}
