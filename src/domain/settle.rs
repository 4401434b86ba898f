//! Which refunds of a batch a report (a notification or a query answer)
//! settles, and how: the pure plan that storage then carries out in one
//! transaction of set-based statements.
//!
//! Owns matching reported items to the batch's items by trade and deciding
//! each with [`decide`]. Invariants: an item is settled at most once (an item
//! settled earlier is never touched again, whatever a later report says: a
//! disagreement is an alarm, not an update); a trade the batch does not hold
//! changes nothing; a trade reported twice in one report is applied once.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::item_code::{ItemClass, classify};
use super::item_outcome::{ItemOutcome, ItemRetry, Open, decide};

/// An item of our batch as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentItem {
    pub refund_id: String,
    pub trade_no: String,
    /// What we asked Alipay to refund.
    pub amount_fen: i64,
    /// The result already recorded for it; `None` while open.
    pub result_code: Option<String>,
    /// How often the refund went back to pending for a passing code.
    pub retries: i32,
}

/// An item as Alipay reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reported {
    pub trade_no: String,
    pub amount_fen: i64,
    /// `SUCCESS` or another code, as read.
    pub code: String,
    /// The item's raw text, tails included.
    pub raw: String,
}

/// One settled or opened item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub refund_id: String,
    pub trade_no: String,
    pub code: String,
    pub raw: String,
}

/// An item left open, with why and a sentence for the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub item: Planned,
    pub why: Open,
    pub detail: String,
}

/// A later report disagreeing with an item settled before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    pub refund_id: String,
    pub trade_no: String,
    pub recorded: String,
    pub reported: String,
}

/// What a report does to the batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub succeed: Vec<Planned>,
    pub fail: Vec<Planned>,
    /// Back to pending, each after its delay.
    pub retry: Vec<(Planned, Duration)>,
    pub open: Vec<Opened>,
    /// Trades the batch does not hold, or reported twice.
    pub strangers: Vec<String>,
    /// Items settled before and reported again with another outcome.
    pub disagreements: Vec<Disagreement>,
}

#[cfg(test)]
impl Plan {
    /// Items this report settles (they leave the batch's open set).
    pub fn settled(&self) -> usize {
        self.succeed.len() + self.fail.len() + self.retry.len()
    }
}

/// Plans a report against the batch's items.
pub fn plan(sent: &[SentItem], reported: &[Reported], retry: ItemRetry) -> Plan {
    let by_trade: HashMap<&str, &SentItem> =
        sent.iter().map(|s| (s.trade_no.as_str(), s)).collect();
    let mut seen = HashSet::new();
    let mut out = Plan::default();
    for r in reported {
        let Some(s) = by_trade.get(r.trade_no.as_str()) else {
            out.strangers.push(r.trade_no.clone());
            continue;
        };
        if !seen.insert(r.trade_no.as_str()) {
            out.strangers.push(r.trade_no.clone());
            continue;
        }
        let item = Planned {
            refund_id: s.refund_id.clone(),
            trade_no: r.trade_no.clone(),
            code: r.code.clone(),
            raw: r.raw.clone(),
        };
        if let Some(recorded) = &s.result_code {
            if disagrees(recorded, &r.code) {
                out.disagreements.push(Disagreement {
                    refund_id: s.refund_id.clone(),
                    trade_no: r.trade_no.clone(),
                    recorded: recorded.clone(),
                    reported: r.code.clone(),
                });
            }
            continue;
        }
        match decide(&r.code, s.amount_fen, r.amount_fen, s.retries, retry) {
            ItemOutcome::Succeed => out.succeed.push(item),
            ItemOutcome::Fail => out.fail.push(item),
            ItemOutcome::Retry { after } => out.retry.push((item, after)),
            ItemOutcome::Open(why) => {
                let detail = match why {
                    Open::AmountMismatch => format!(
                        "Alipay reported {} fen with {}, we sent {} fen",
                        r.amount_fen, r.code, s.amount_fen
                    ),
                    Open::AlipayRetries => {
                        format!("{}: Alipay retries it itself; awaiting its result", r.code)
                    }
                    Open::NeedsPerson => {
                        format!(
                            "{}: the money's state is unclear; a person settles it",
                            r.code
                        )
                    }
                };
                out.open.push(Opened { item, why, detail });
            }
        }
    }
    out
}

/// Whether a code reported for an item settled before tells a different
/// story: paid against a refusal (final, or one that sent the refund back to
/// pending). A code Alipay retries or one that needs a person is an older or
/// vaguer state (a resend of an earlier notification, reordered), and
/// another refusal for a refused item, or a repeat, is no news.
fn disagrees(recorded: &str, reported: &str) -> bool {
    use ItemClass::*;
    matches!(
        (classify(recorded), classify(reported)),
        (Paid, Final | CanPass) | (Final | CanPass, Paid)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(id: &str, trade: &str, fen: i64, result: Option<&str>) -> SentItem {
        SentItem {
            refund_id: id.into(),
            trade_no: trade.into(),
            amount_fen: fen,
            result_code: result.map(str::to_owned),
            retries: 0,
        }
    }

    fn rep(trade: &str, fen: i64, code: &str) -> Reported {
        Reported {
            trade_no: trade.into(),
            amount_fen: fen,
            code: code.into(),
            raw: format!("{trade}^{fen}^{code}"),
        }
    }

    fn ids(items: &[Planned]) -> Vec<&str> {
        items.iter().map(|p| p.refund_id.as_str()).collect()
    }

    #[test]
    fn each_item_goes_where_its_class_says() {
        let batch = [
            sent("a", "T1", 100, None),
            sent("b", "T2", 100, None),
            sent("c", "T3", 100, None),
            sent("d", "T4", 100, None),
            sent("e", "T5", 100, None),
        ];
        let p = plan(
            &batch,
            &[
                rep("T1", 100, "SUCCESS"),
                rep("T2", 100, "TRADE_HAS_CLOSED"),
                rep("T3", 100, "BATCH_REFUND_LOCK_ERROR"),
                rep("T4", 100, "TRADE_PROCESS_ERROR"),
                rep("T5", 99, "SUCCESS"),
            ],
            ItemRetry::default(),
        );
        assert_eq!(ids(&p.succeed), ["a"]);
        assert_eq!(ids(&p.fail), ["b"]);
        assert_eq!(p.retry.len(), 1);
        assert_eq!(p.retry[0].0.refund_id, "c");
        assert_eq!(p.retry[0].1, Duration::from_secs(60));
        let open: Vec<_> = p
            .open
            .iter()
            .map(|o| (o.item.refund_id.as_str(), o.why))
            .collect();
        assert_eq!(
            open,
            [("d", Open::AlipayRetries), ("e", Open::AmountMismatch)]
        );
        assert!(p.open[1].detail.contains("99 fen"));
        assert_eq!(p.settled(), 3);
    }

    #[test]
    fn an_item_settled_before_is_never_touched_again_and_a_disagreement_is_flagged() {
        let batch = [
            sent("a", "T1", 100, Some("SUCCESS")),
            sent("b", "T2", 100, Some("TRADE_HAS_CLOSED")),
            sent("c", "T3", 100, Some("SUCCESS")),
        ];
        let p = plan(
            &batch,
            &[
                rep("T1", 100, "TRADE_HAS_CLOSED"),
                rep("T2", 100, "TRADE_NOT_EXISTS"),
                // An older notification resent late: no news.
                rep("T3", 100, "TRADE_PROCESS_ERROR"),
            ],
            ItemRetry::default(),
        );
        assert_eq!(
            p,
            Plan {
                disagreements: vec![Disagreement {
                    refund_id: "a".into(),
                    trade_no: "T1".into(),
                    recorded: "SUCCESS".into(),
                    reported: "TRADE_HAS_CLOSED".into(),
                }],
                ..Plan::default()
            }
        );
    }

    #[test]
    fn strangers_and_repeats_change_nothing() {
        let batch = [sent("a", "T1", 100, None)];
        let p = plan(
            &batch,
            &[
                rep("T9", 100, "SUCCESS"),
                rep("T1", 100, "SUCCESS"),
                rep("T1", 100, "TRADE_HAS_CLOSED"),
            ],
            ItemRetry::default(),
        );
        assert_eq!(ids(&p.succeed), ["a"]);
        assert!(p.fail.is_empty());
        assert_eq!(p.strangers, ["T9", "T1"]);
    }

    #[test]
    fn a_passing_code_past_its_limit_fails() {
        let mut item = sent("a", "T1", 100, None);
        item.retries = 5;
        let p = plan(
            &[item],
            &[rep("T1", 100, "TRADE_STATUS_ERROR")],
            ItemRetry::default(),
        );
        assert_eq!(ids(&p.fail), ["a"]);
    }
}
