//! The rejected-batch alarm's rule, pure (architecture.md): what becomes of
//! each refund of a batch we had marked `rejected` once a genuine report
//! shows Alipay holds it.
//!
//! Invariant: a refund not sent again is taken back into the batch Alipay
//! holds; one already sent again, or settled elsewhere, is never touched,
//! and is a suspect of a double payment unless the report proves Alipay did
//! not pay it here (a final or can-pass code).

use super::RefundStatus;
use super::item_code::{ItemClass, classify};

/// What the alarm does with one refund of the reopened batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Still pending: taken back into the batch.
    TakeBack,
    /// Batched in a batch never sent: that batch is retired, the refund taken back.
    PullFromUnsent,
    /// Back in this batch already (a concurrent report), or proven unpaid here.
    Leave,
    /// Sent again or settled elsewhere, and this report may mean money moved:
    /// recorded as a suspect, with the code Alipay reported (`NOT_REPORTED`
    /// when it named no such item).
    Suspect { code: String },
}

/// Where a refund of the batch stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing<'a> {
    pub status: RefundStatus,
    /// Its current batch is the reopened one.
    pub here: bool,
    /// Its current batch is another one, `created` and never attempted.
    pub in_unsent_batch: bool,
    /// What Alipay's report said of its trade, if anything.
    pub reported: Option<&'a str>,
}

pub fn fate(s: &Standing<'_>) -> Fate {
    match s.status {
        RefundStatus::Pending => Fate::TakeBack,
        RefundStatus::Batched if !s.here && s.in_unsent_batch => Fate::PullFromUnsent,
        RefundStatus::Submitted if s.here => Fate::Leave,
        _ => match s.reported {
            Some(c) if matches!(classify(c), ItemClass::Final | ItemClass::CanPass) => Fate::Leave,
            c => Fate::Suspect {
                code: c.unwrap_or("NOT_REPORTED").to_owned(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(status: RefundStatus, here: bool, unsent: bool, reported: Option<&str>) -> Fate {
        fate(&Standing {
            status,
            here,
            in_unsent_batch: unsent,
            reported,
        })
    }

    #[test]
    fn refunds_not_sent_again_are_taken_back() {
        assert_eq!(
            at(RefundStatus::Pending, false, false, None),
            Fate::TakeBack
        );
        assert_eq!(
            at(RefundStatus::Batched, false, true, Some("SUCCESS")),
            Fate::PullFromUnsent
        );
        assert_eq!(at(RefundStatus::Submitted, true, false, None), Fate::Leave);
    }

    #[test]
    fn refunds_sent_again_are_suspects_unless_the_report_proves_no_payment() {
        let suspect = at(RefundStatus::Submitted, false, false, Some("SUCCESS"));
        assert_eq!(
            suspect,
            Fate::Suspect {
                code: "SUCCESS".into()
            }
        );
        let unreported = at(RefundStatus::Succeeded, false, false, None);
        assert_eq!(
            unreported,
            Fate::Suspect {
                code: "NOT_REPORTED".into()
            }
        );
        let batched_sent = at(
            RefundStatus::Batched,
            false,
            false,
            Some("TRADE_HAS_CLOSED"),
        );
        assert_eq!(batched_sent, Fate::Leave);
    }
}
