//! The submitter's decisions, pure: whether a claimed batch is sent or
//! queried, and what follows an answer. This is where invariant 5 lives: a
//! batch whose earlier attempt had an unknown outcome is never renumbered on an
//! `F` alone; only the query can prove Alipay lacks it.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

use crate::alipay::disposition::Disposition;
use crate::alipay::exchange::Verdict;
use crate::alipay::wire::batch_no::beijing_now;
use crate::alipay::wire::query_answer::QueryAnswer;
use crate::domain::absence::{self, Absence};
pub use crate::domain::batch::ClaimedBatch;

/// Send the batch again, or ask `refund_fastpay_query` about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Send,
    Query,
}

/// What the submitter does after an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Alipay holds the batch: await its notification.
    Submitted,
    /// Same batch again (or the query again) after this delay.
    RetryLater {
        delay: Duration,
        unknown: bool,
        query: bool,
    },
    /// Not accepted, provably: the items go back to pending for a new batch.
    Reject { pause_partner: bool },
    /// The first `REFUND_NOT_EXIST` that counts toward proving absence: record
    /// it and ask again after `delay` (`SUBMIT_ABSENCE_SETTLE_MS`).
    AbsenceSeen { delay: Duration },
    /// The partner lacks the nopwd contract: the batch waits for the password form.
    AwaitOperator,
    /// A batch of one sank by its trade: that refund failed with the code.
    FailItem,
    /// A batch of one sank by its trade for now (a code that can pass): the
    /// batch is rejected and its refund goes back to pending for a later
    /// attempt (item retry rules), or fails past its limit.
    ReturnItem,
    /// A larger batch sank by one trade: split it in halves, as new batches.
    Split,
    /// We built something Alipay cannot read, or Alipay said something we do
    /// not know: keep everything, alert; an operator may release it.
    Hold,
}

/// Retry schedule of a batch whose outcome is unknown.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// After this age an unknown outcome is settled by the query, not by resends.
    pub give_up: Duration,
}

impl Backoff {
    /// Exponential in the attempt number, capped, with ±25 % jitter from `jitter`
    /// (0..=1000, supplied by the caller so this stays pure).
    pub fn delay(&self, attempts: i32, jitter_permille: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempts.clamp(1, 20).saturating_sub(1));
        let capped = exp.min(self.cap);
        let spread = capped / 4;
        (capped - spread) + spread * 2 * jitter_permille.min(1000) / 1000
    }
}

/// Send, or query: the query settles a batch whose outcome stayed unknown past
/// the give-up age or past the Beijing day of its `batch_no` (a resend would
/// meet `REFUND_DATE_ERROR` even though Alipay may hold it).
pub fn action(b: &ClaimedBatch, now: DateTime<Utc>, backoff: &Backoff) -> Action {
    if b.needs_query {
        return Action::Query;
    }
    if b.outcome_unknown {
        let too_old = (now - b.created_at).to_std().unwrap_or_default() >= backoff.give_up;
        if too_old || batch_date(&b.batch_no) != Some(beijing_now(now).date()) {
            return Action::Query;
        }
    }
    Action::Send
}

fn batch_date(batch_no: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(batch_no.get(..8)?, "%Y%m%d").ok()
}

/// What follows a submission's verdict.
pub fn after_send(
    b: &ClaimedBatch,
    v: &Verdict,
    pwd_fallback: bool,
    backoff: &Backoff,
    jitter: u32,
) -> Next {
    let retry = |query| Next::RetryLater {
        delay: backoff.delay(b.attempts, jitter),
        unknown: true,
        query,
    };
    match v.disposition {
        Disposition::Accepted => Next::Submitted,
        Disposition::OutcomeUnknown => retry(false),
        // After an unknown outcome any refusal may hide an accepted batch.
        _ if b.outcome_unknown => retry(true),
        Disposition::PartnerMisconfigured
            if pwd_fallback && v.code.as_deref() == Some("ILLEGAL_PARTNER_EXTERFACE") =>
        {
            Next::AwaitOperator
        }
        Disposition::PartnerMisconfigured => Next::Reject {
            pause_partner: true,
        },
        Disposition::Rebuild => Next::Reject {
            pause_partner: false,
        },
        Disposition::BadItem if b.items() == 1 => Next::FailItem,
        Disposition::ItemMayPass if b.items() == 1 => Next::ReturnItem,
        Disposition::BadItem | Disposition::ItemMayPass => Next::Split,
        Disposition::OurBug | Disposition::UnknownCode => Next::Hold,
    }
}

/// What follows a query's answer at `now` (`None`: the query itself failed).
///
/// Absence is proven only as alipay-mapi.md says: no notification ever, and
/// two `REFUND_NOT_EXIST` answers, the first at least `settle` after the last
/// send, the second at least `settle` after the first. An answer earlier than
/// that proves nothing (Alipay may hold a batch it has not processed yet), so
/// the query is asked again when the next answer could count.
pub fn after_query(
    b: &ClaimedBatch,
    answer: Option<&QueryAnswer>,
    now: DateTime<Utc>,
    settle: Duration,
    backoff: &Backoff,
    jitter: u32,
) -> Next {
    let again = |delay: Duration| Next::RetryLater {
        delay,
        unknown: false,
        query: true,
    };
    let retry = again(backoff.delay(b.attempts, jitter));
    match answer {
        Some(QueryAnswer::Found(items)) if items.iter().any(|i| i.batch_no == b.batch_no) => {
            Next::Submitted
        }
        Some(QueryAnswer::NotFound) => {
            let sent = b.last_sent_at.unwrap_or(b.created_at);
            match absence::judge(b.notified, sent, b.absence_first_at, now, settle) {
                Absence::Proven => Next::Reject {
                    pause_partner: false,
                },
                Absence::FirstSeen => Next::AbsenceSeen { delay: settle },
                Absence::NotYet { ask_in } => again(ask_in.max(backoff.base)),
                Absence::Held => retry,
            }
        }
        _ => retry,
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
