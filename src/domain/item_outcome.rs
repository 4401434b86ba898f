//! What one reported item does to its refund: the pure decision behind
//! applying a notification or a query answer (alipay-mapi.md, "Item codes";
//! architecture.md, States).
//!
//! Owns the order of the checks. Invariants: an amount other than the one we
//! sent is never applied, whatever the code (a person looks); only
//! [`ItemClass::Paid`] succeeds a refund and only [`ItemClass::Final`] (or a
//! passing code past its retry limit) fails one; a code Alipay retries, a
//! code that needs a person and an unknown code leave the item open.

use std::time::Duration;

use super::item_code::{ItemClass, classify};

/// The item-retry settings (`ITEM_RETRY_BASE_MS`, `ITEM_RETRY_LIMIT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemRetry {
    /// The first wait; each later one doubles.
    pub base: Duration,
    /// How many times a refund may go back to pending for a passing code.
    pub limit: i32,
}

impl Default for ItemRetry {
    /// Contract §1's defaults: 60 s, 5 times.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(60),
            limit: 5,
        }
    }
}

/// Why an item stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Open {
    /// Alipay retries it itself; a later notification or query settles it.
    AlipayRetries,
    /// `REFUND_FAIL` or a code nobody classified: a person settles it.
    NeedsPerson,
    /// The amount Alipay reported is not the one we sent: a person settles it.
    AmountMismatch,
}

impl Open {
    /// The stored `open_class` and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AlipayRetries => "alipay_retries",
            Self::NeedsPerson => "needs_person",
            Self::AmountMismatch => "amount_mismatch",
        }
    }

    /// Whether only a person can settle it (an error-level alarm).
    pub fn needs_person(self) -> bool {
        !matches!(self, Self::AlipayRetries)
    }
}

/// What a reported item does to its refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// `succeeded`.
    Succeed,
    /// `failed` with the code.
    Fail,
    /// Back to pending; a new batch in `after`.
    Retry { after: Duration },
    /// The item stays open; the refund stays `submitted`.
    Open(Open),
}

/// Decides one item: `sent_fen` is what our batch asked for the trade,
/// `reported_fen` what Alipay reported, `retries` how often the refund went
/// back to pending for a passing code before.
pub fn decide(
    code: &str,
    sent_fen: i64,
    reported_fen: i64,
    retries: i32,
    retry: ItemRetry,
) -> ItemOutcome {
    if sent_fen != reported_fen {
        return ItemOutcome::Open(Open::AmountMismatch);
    }
    match classify(code) {
        ItemClass::Paid => ItemOutcome::Succeed,
        ItemClass::Final => ItemOutcome::Fail,
        ItemClass::CanPass if retries < retry.limit => ItemOutcome::Retry {
            after: retry_delay(retry.base, retries),
        },
        ItemClass::CanPass => ItemOutcome::Fail,
        ItemClass::AlipayRetries => ItemOutcome::Open(Open::AlipayRetries),
        ItemClass::NeedsPerson => ItemOutcome::Open(Open::NeedsPerson),
    }
}

/// `base`, doubled per earlier retry, capped at a day.
pub fn retry_delay(base: Duration, retries: i32) -> Duration {
    let doublings = u32::try_from(retries.clamp(0, 30)).unwrap_or(0);
    base.saturating_mul(1u32 << doublings)
        .min(Duration::from_secs(86_400))
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: ItemRetry = ItemRetry {
        base: Duration::from_secs(60),
        limit: 3,
    };

    #[test]
    fn each_class_has_its_outcome() {
        assert_eq!(decide("SUCCESS", 100, 100, 0, R), ItemOutcome::Succeed);
        assert_eq!(decide("success", 100, 100, 0, R), ItemOutcome::Succeed);
        assert_eq!(
            decide("TRADE_HAS_CLOSED", 100, 100, 0, R),
            ItemOutcome::Fail
        );
        assert_eq!(
            decide("TRADE_PAYMENT_ERROR", 100, 100, 0, R),
            ItemOutcome::Open(Open::AlipayRetries)
        );
        assert_eq!(
            decide("REFUND_FAIL", 100, 100, 0, R),
            ItemOutcome::Open(Open::NeedsPerson)
        );
        assert_eq!(
            decide("NEW_CODE", 100, 100, 0, R),
            ItemOutcome::Open(Open::NeedsPerson)
        );
    }

    #[test]
    fn a_passing_code_retries_with_a_doubling_delay_then_fails() {
        let waits: Vec<_> = (0..4)
            .map(|n| decide("TXN_RESULT_ACCOUNT_BALANCE_NOT_ENOUGH", 1, 1, n, R))
            .collect();
        assert_eq!(
            waits,
            [
                ItemOutcome::Retry {
                    after: Duration::from_secs(60)
                },
                ItemOutcome::Retry {
                    after: Duration::from_secs(120)
                },
                ItemOutcome::Retry {
                    after: Duration::from_secs(240)
                },
                ItemOutcome::Fail,
            ]
        );
    }

    #[test]
    fn an_amount_other_than_the_one_sent_is_never_applied() {
        for code in ["SUCCESS", "TRADE_HAS_CLOSED", "BATCH_REFUND_LOCK_ERROR"] {
            assert_eq!(
                decide(code, 100, 101, 0, R),
                ItemOutcome::Open(Open::AmountMismatch),
                "{code}"
            );
        }
    }

    #[test]
    fn the_delay_is_capped_and_never_overflows() {
        assert_eq!(
            retry_delay(Duration::from_secs(60), 1000),
            Duration::from_secs(86_400)
        );
        assert_eq!(
            retry_delay(Duration::from_secs(60), -1),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn only_alipay_retries_is_left_without_a_person() {
        assert!(!Open::AlipayRetries.needs_person());
        assert!(Open::NeedsPerson.needs_person() && Open::AmountMismatch.needs_person());
    }
}
