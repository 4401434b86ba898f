//! What each delivery of a stored window comes to: stored, a duplicate, or a
//! dead letter with its reason. Pure: no I/O, so the pairing of deliveries
//! with storage outcomes is decided in one place.
//!
//! Invariant: storage returns one outcome per valid delivery, in order; the
//! invalid ones have none, so outcomes are consumed only for valid ones, and
//! fewer outcomes than valid deliveries is an error, never a silent ack.

use super::settle::WindowReport;
use crate::domain::{ErrorCode, RefundRequest, Rejection, format_fen};
use crate::storage::intake::{StoreOutcome, StoredKey};

/// A window sorted: its counts, and the deliveries to dead-letter with why.
pub(super) struct Sorted<'d, D> {
    pub report: WindowReport,
    pub letters: Vec<(&'d D, Rejection)>,
}

/// Pairs each delivery's parse result with its storage outcome.
pub(super) fn sort<'d, D>(
    deliveries: &'d [D],
    parsed: &[Result<RefundRequest, Rejection>],
    outcomes: Vec<StoreOutcome>,
) -> anyhow::Result<Sorted<'d, D>> {
    let mut report = WindowReport::default();
    let mut outcome = outcomes.into_iter();
    let mut letters = Vec::new();
    for (delivery, parsed) in deliveries.iter().zip(parsed) {
        let rejection = match parsed {
            Err(rejection) => rejection.clone(),
            Ok(request) => match outcome.next() {
                Some(StoreOutcome::Stored) => {
                    report.stored += 1;
                    continue;
                }
                Some(StoreOutcome::Duplicate) => {
                    report.duplicates += 1;
                    continue;
                }
                Some(StoreOutcome::Conflict { stored }) => conflict(request, &stored),
                Some(StoreOutcome::ExceedsTradeAmount {
                    counted_fen,
                    trade_amount_fen,
                }) => exceeds_trade(request, counted_fen, trade_amount_fen),
                None => anyhow::bail!("storage returned fewer outcomes than valid deliveries"),
            },
        };
        tracing::warn!(code = %rejection.code, reason = %rejection.message, "dead-lettering a refund-approved event");
        report.dead_lettered.push(rejection.code);
        letters.push((delivery, rejection));
    }
    Ok(Sorted { report, letters })
}

/// The refund_id is stored already, for a different refund.
fn conflict(request: &RefundRequest, stored: &StoredKey) -> Rejection {
    Rejection::new(
        ErrorCode::ConflictingDuplicate,
        format!(
            "refund_id {} is already stored for trade {} amount {} partner {}, not trade {} amount {} partner {}",
            request.refund_id,
            stored.trade_no,
            format_fen(stored.amount_fen),
            stored.partner,
            request.trade_no,
            request.amount,
            request.partner,
        ),
    )
}

/// The trade's refunds would sum above its `trade_amount`.
fn exceeds_trade(request: &RefundRequest, counted_fen: i64, trade_amount_fen: i64) -> Rejection {
    Rejection::new(
        ErrorCode::ExceedsTradeAmount,
        format!(
            "trade {} already has {} in refunds; {} more would exceed its total of {}",
            request.trade_no,
            format_fen(counted_fen),
            request.amount,
            format_fen(trade_amount_fen),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Amount;
    use crate::storage::intake::StoredKey;

    fn request(refund_id: &str, fen: i64) -> RefundRequest {
        RefundRequest {
            refund_id: refund_id.into(),
            trade_no: "T1".into(),
            amount: Amount::from_fen(fen).expect("a valid amount"),
            reason: "refund".into(),
            partner: "P".into(),
            trade_amount: None,
            metadata: None,
        }
    }

    #[test]
    fn outcomes_pair_with_valid_deliveries_only_and_refusals_become_letters() {
        let deliveries = ["bad", "stored", "dup", "conflict", "exceeds"];
        let parsed = vec![
            Err(Rejection::new(ErrorCode::InvalidJson, "not JSON")),
            Ok(request("r1", 100)),
            Ok(request("r2", 100)),
            Ok(request("r3", 100)),
            Ok(request("r4", 100)),
        ];
        let outcomes = vec![
            StoreOutcome::Stored,
            StoreOutcome::Duplicate,
            StoreOutcome::Conflict {
                stored: StoredKey {
                    partner: "P".into(),
                    trade_no: "T9".into(),
                    amount_fen: 200,
                },
            },
            StoreOutcome::ExceedsTradeAmount {
                counted_fen: 900,
                trade_amount_fen: 950,
            },
        ];
        let sorted = sort(&deliveries, &parsed, outcomes).expect("enough outcomes");
        assert_eq!(sorted.report.stored, 1);
        assert_eq!(sorted.report.duplicates, 1);
        assert_eq!(
            sorted.report.dead_lettered,
            [
                ErrorCode::InvalidJson,
                ErrorCode::ConflictingDuplicate,
                ErrorCode::ExceedsTradeAmount
            ]
        );
        let to: Vec<&str> = sorted.letters.iter().map(|(d, _)| **d).collect();
        assert_eq!(to, ["bad", "conflict", "exceeds"]);
        assert_eq!(
            sorted.letters[2].1.message,
            "trade T1 already has 9.00 in refunds; 1.00 more would exceed its total of 9.50"
        );
    }

    #[test]
    fn fewer_outcomes_than_valid_deliveries_is_an_error_not_an_ack() {
        let parsed = vec![Ok(request("r1", 100)), Ok(request("r2", 100))];
        assert!(sort(&["a", "b"], &parsed, vec![StoreOutcome::Stored]).is_err());
    }
}
