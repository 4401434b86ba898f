//! The soak's invariants, judged from what was collected (pure): the result
//! events, the dead letters, the sandbox's ledger and a few database counts.
//!
//! A failed refund is not a violation in itself: injected item failures,
//! refunds above what was paid and poison trades (`--realistic`) fail for
//! good. What is: a failure the gateway contradicts, i.e. a refund it paid,
//! or one it reported with a code it retries itself (not final), in the
//! batch the failed event names.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::stream::{Kind, Planned};
use crate::domain::Amount;
use crate::sandbox::LedgerView;
use crate::sandbox::realism::is_retried_by_alipay;

/// What the database says about batches and notifications.
#[derive(Debug, Default, Clone, Serialize)]
pub struct DbFacts {
    pub batches_over_1000: i64,
    pub batches_with_a_trade_twice: i64,
    pub refunds_in_two_live_batches: i64,
    pub forged_applied: i64,
    pub forged_stored: i64,
}

/// A terminal result event, as much of it as the checks read (a million
/// whole JSON events held for the checks took 4.4 GB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminal {
    pub refund_id: String,
    pub succeeded: bool,
    pub trade_no: String,
    pub batch_no: String,
    /// `-1` when the event's amount cannot be read (a violation then shows).
    pub amount_fen: i64,
}

impl Terminal {
    /// The terminal part of a result event; `None` for any other event.
    pub fn from_event(e: &serde_json::Value) -> Option<Self> {
        let succeeded = match e["event"].as_str()? {
            "refund.succeeded" => true,
            "refund.failed" => false,
            _ => return None,
        };
        let text = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
        Some(Terminal {
            refund_id: text("refund_id"),
            succeeded,
            trade_no: text("trade_no"),
            batch_no: text("batch_no"),
            amount_fen: fen(e["amount"].as_str().unwrap_or_default()),
        })
    }
}

/// Everything the checks read.
pub struct Facts<'a> {
    pub planned: &'a [Planned],
    /// Terminal result events, deduplicated on `event_id`.
    pub events: &'a [Terminal],
    /// (refund_id, code, body) of every dead letter.
    pub dead: &'a [(Option<String>, Option<String>, Vec<u8>)],
    pub ledger: &'a LedgerView,
    pub db: &'a DbFacts,
    pub forged_sent: usize,
}

fn fen(text: &str) -> i64 {
    Amount::parse_yuan(text).map(Amount::fen).unwrap_or(-1)
}

/// Every violated invariant, in words; empty when all hold.
pub fn violations(f: &Facts<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let valid: HashSet<&str> = f
        .planned
        .iter()
        .filter(|p| p.kind == Kind::Valid)
        .map(|p| p.refund_id.as_str())
        .collect();
    let mut terminal: HashMap<&str, usize> = HashMap::new();
    for e in f.events {
        *terminal.entry(e.refund_id.as_str()).or_default() += 1;
    }
    let missing = valid
        .iter()
        .filter(|id| !terminal.contains_key(*id))
        .count();
    if missing > 0 {
        out.push(format!("{missing} valid refunds have no terminal event"));
    }
    let doubled = terminal.values().filter(|n| **n > 1).count();
    if doubled > 0 {
        out.push(format!(
            "{doubled} refunds have more than one terminal event"
        ));
    }
    let strangers = terminal.keys().filter(|id| !valid.contains(*id)).count();
    if strangers > 0 {
        out.push(format!(
            "{strangers} terminal events for refunds never sent as valid"
        ));
    }

    // The ledger's successful refunds are exactly the succeeded events.
    let mut paid: BTreeMap<(String, String, i64), usize> = BTreeMap::new();
    for t in &f.ledger.trades {
        for r in t.refunds.iter().filter(|r| r.code == "SUCCESS") {
            *paid
                .entry((t.trade_no.clone(), r.batch_no.clone(), fen(&r.amount)))
                .or_default() += 1;
        }
        if fen(&t.refunded) > fen(&t.paid) {
            out.push(format!(
                "trade {} refunded {} of {} paid",
                t.trade_no, t.refunded, t.paid
            ));
        }
    }
    let mut succeeded: BTreeMap<(String, String, i64), usize> = BTreeMap::new();
    let mut succeeded_fen = 0;
    for e in f.events.iter().filter(|e| e.succeeded) {
        succeeded_fen += e.amount_fen;
        let key = (e.trade_no.clone(), e.batch_no.clone(), e.amount_fen);
        *succeeded.entry(key).or_default() += 1;
    }
    if paid != succeeded {
        let only_paid = paid.keys().filter(|k| !succeeded.contains_key(*k)).count();
        let only_events = succeeded.keys().filter(|k| !paid.contains_key(*k)).count();
        out.push(format!(
            "the ledger and the succeeded events differ: {only_paid} paid without a succeeded event, {only_events} succeeded events without a payment"
        ));
    }
    if f.ledger.paid_total_fen != succeeded_fen {
        out.push(format!(
            "the ledger paid {} fen, the succeeded events say {succeeded_fen}",
            f.ledger.paid_total_fen
        ));
    }
    for (what, found) in [
        (
            "refunds the sandbox paid were reported failed",
            paid_but_failed(f.events, f.ledger),
        ),
        (
            "refunds the sandbox reported with a code Alipay retries itself (not final) ended failed",
            retried_but_failed(f.events, f.ledger),
        ),
    ] {
        if let Some((batch_no, trade_no)) = found.first() {
            out.push(format!(
                "{} {what} (e.g. batch {batch_no}, trade {trade_no})",
                found.len()
            ));
        }
    }
    let batch_nos: HashSet<&str> = f
        .ledger
        .batches
        .iter()
        .map(|b| b.batch_no.as_str())
        .collect();
    if batch_nos.len() != f.ledger.batches.len() {
        out.push("a batch_no was used twice at the gateway".into());
    }
    if f.ledger.batches.iter().any(|b| b.items.len() > 1000) {
        out.push("the gateway received a batch above 1000 items".into());
    }

    let db = f.db;
    for (n, what) in [
        (db.batches_over_1000, "batches above 1000 items"),
        (
            db.batches_with_a_trade_twice,
            "batches holding a trade twice",
        ),
        (
            db.refunds_in_two_live_batches,
            "refunds in two live batches",
        ),
        (db.forged_applied, "forged notifications applied"),
    ] {
        if n > 0 {
            out.push(format!("{n} {what}"));
        }
    }
    if db.forged_stored < f.forged_sent as i64 {
        out.push(format!(
            "{} forged notifications sent, {} stored for audit",
            f.forged_sent, db.forged_stored
        ));
    }

    // Dead letters: exactly the invalid ones and the conflicts, with their
    // codes. Dead-lettering is at least once (a worker killed between the
    // dead letter's confirm and the original's ack sends it again), so the
    // same message twice counts once.
    let mut expected: BTreeMap<&str, usize> = BTreeMap::new();
    for p in f.planned {
        match &p.kind {
            Kind::Invalid(code) => *expected.entry(code).or_default() += 1,
            Kind::Conflict => *expected.entry("conflicting_duplicate").or_default() += 1,
            _ => {}
        }
    }
    let mut found: BTreeMap<&str, usize> = BTreeMap::new();
    let distinct: HashSet<&(Option<String>, Option<String>, Vec<u8>)> = f.dead.iter().collect();
    for (_, code, _) in distinct {
        *found.entry(code.as_deref().unwrap_or("none")).or_default() += 1;
    }
    if expected != found {
        out.push(format!(
            "dead letters by code {found:?}, expected {expected:?}"
        ));
    }
    out
}

/// The (batch_no, trade_no) of failed events, to look up in the ledger;
/// few, so the ledger is scanned once against them.
fn failed_keys(events: &[Terminal]) -> HashSet<(&str, &str)> {
    events
        .iter()
        .filter(|e| !e.succeeded)
        .map(|e| (e.batch_no.as_str(), e.trade_no.as_str()))
        .collect()
}

/// Failed events whose batch and trade the ledger shows paid: the money
/// went back to the buyer, the worker said it did not.
pub fn paid_but_failed(events: &[Terminal], ledger: &LedgerView) -> Vec<(String, String)> {
    let failed = failed_keys(events);
    let mut out = Vec::new();
    for t in &ledger.trades {
        for r in t.refunds.iter().filter(|r| r.code == "SUCCESS") {
            if failed.contains(&(r.batch_no.as_str(), t.trade_no.as_str())) {
                out.push((r.batch_no.clone(), t.trade_no.clone()));
            }
        }
    }
    out
}

/// Failed events whose item in that batch the sandbox reported with a code
/// Alipay retries itself (`TRADE_PAYMENT_ERROR`, `TRADE_PROCESS_ERROR`,
/// `QUERY_PARTICIPANT_ERROR`): such an item is not final, whatever the
/// sandbox reported after it.
pub fn retried_but_failed(events: &[Terminal], ledger: &LedgerView) -> Vec<(String, String)> {
    let failed = failed_keys(events);
    let mut out = Vec::new();
    for b in &ledger.batches {
        for i in &b.items {
            if i.reported_codes.iter().any(|c| is_retried_by_alipay(c))
                && failed.contains(&(b.batch_no.as_str(), i.trade_no.as_str()))
            {
                out.push((b.batch_no.clone(), i.trade_no.clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::realism::RealismCounts;
    use crate::sandbox::view::{BatchView, ItemView, RefundView, TradeView};

    fn planned(id: &str, kind: Kind) -> Planned {
        Planned {
            kind,
            refund_id: id.into(),
            body: Vec::new(),
        }
    }

    fn event(id: &str, status: &str) -> Terminal {
        let json = serde_json::json!({"event": format!("refund.{status}"), "refund_id": id, "status": status,
                           "trade_no": "T1", "batch_no": "B1", "amount": "1.00"});
        Terminal::from_event(&json).unwrap()
    }

    #[test]
    fn only_terminal_events_are_kept_with_their_amount_in_fen() {
        let e = event("A", "failed");
        assert!(!e.succeeded);
        assert_eq!((e.amount_fen, e.batch_no.as_str()), (100, "B1"));
        let other = serde_json::json!({"event": "refund.submitted", "refund_id": "A"});
        assert_eq!(Terminal::from_event(&other), None);
        let bad =
            serde_json::json!({"event": "refund.succeeded", "refund_id": "A", "amount": "1.001"});
        assert_eq!(Terminal::from_event(&bad).map(|t| t.amount_fen), Some(-1));
    }

    fn ledger(paid_fen: i64, refunds: Vec<RefundView>) -> LedgerView {
        LedgerView {
            trades: vec![TradeView {
                trade_no: "T1".into(),
                partner: "P".into(),
                paid: "10.00".into(),
                refunded: format!("{}.00", paid_fen / 100),
                refunds,
            }],
            batches: vec![BatchView {
                batch_no: "B1".into(),
                partner: "P".into(),
                service: "refund_fastpay_by_platform_nopwd",
                state: "processed",
                items: Vec::new(),
            }],
            notifications: Vec::new(),
            paid_total: format!("{}.00", paid_fen / 100),
            paid_total_fen: paid_fen,
            realism: RealismCounts::default(),
        }
    }

    fn refund(code: &str) -> RefundView {
        RefundView {
            batch_no: "B1".into(),
            amount: "1.00".into(),
            code: code.into(),
            reported_codes: vec![code.into()],
        }
    }

    fn item(trade_no: &str, reported: &[&str]) -> ItemView {
        ItemView {
            trade_no: trade_no.into(),
            amount: "1.00".into(),
            reason: "soak".into(),
            outcome: "done",
            code: reported.last().map(|c| (*c).to_owned()),
            reported_codes: reported.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    #[test]
    fn a_refund_the_sandbox_paid_but_the_worker_failed_is_a_violation() {
        let paid = ledger(100, vec![refund("SUCCESS")]);
        let failed = [event("A", "failed")];
        assert_eq!(
            paid_but_failed(&failed, &paid),
            vec![("B1".to_owned(), "T1".to_owned())]
        );
        // Succeeded, or failed where the sandbox did not pay: no violation here.
        assert!(paid_but_failed(&[event("A", "succeeded")], &paid).is_empty());
        let closed = ledger(0, vec![refund("TRADE_HAS_CLOSED")]);
        assert!(paid_but_failed(&failed, &closed).is_empty());
        // A poison trade's refund fails without the sandbox ever paying it.
        let mut poison = ledger(0, Vec::new());
        poison.trades.clear();
        poison.batches.clear();
        assert!(paid_but_failed(&failed, &poison).is_empty());
        // Another batch of the same trade paid is not this one.
        let mut elsewhere = refund("SUCCESS");
        elsewhere.batch_no = "B2".into();
        assert!(paid_but_failed(&failed, &ledger(100, vec![elsewhere])).is_empty());
    }

    #[test]
    fn an_item_reported_with_a_code_alipay_retries_must_not_end_failed() {
        let mut view = ledger(0, Vec::new());
        view.batches[0].items = vec![
            item("T1", &["TRADE_PAYMENT_ERROR", "SUCCESS"]),
            item("T2", &["QUERY_PARTICIPANT_ERROR"]),
            item("T3", &["TXN_RESULT_ACCOUNT_BALANCE_NOT_ENOUGH"]),
        ];
        let failed_on = |trade: &str| {
            let mut e = event("A", "failed");
            e.trade_no = trade.into();
            e
        };
        assert_eq!(
            retried_but_failed(&[failed_on("T1"), failed_on("T2"), failed_on("T3")], &view),
            vec![
                ("B1".to_owned(), "T1".to_owned()),
                ("B1".to_owned(), "T2".to_owned())
            ]
        );
        let mut ok = failed_on("T1");
        ok.succeeded = true;
        assert!(retried_but_failed(&[ok], &view).is_empty());

        // Both reach the report.
        let plan = [planned("A", Kind::Valid)];
        let db = DbFacts::default();
        let facts = Facts {
            planned: &plan,
            events: &[failed_on("T1")],
            dead: &[],
            ledger: &view,
            db: &db,
            forged_sent: 0,
        };
        let v = violations(&facts);
        assert!(
            v.iter().any(|s| s
                .starts_with("1 refunds the sandbox reported with a code Alipay retries itself")
                && s.contains("batch B1, trade T1")),
            "{v:?}"
        );
    }

    #[test]
    fn a_clean_run_has_no_violation_and_each_fault_is_named() {
        let plan = [
            planned("A", Kind::Valid),
            planned("A", Kind::Conflict),
            planned("X", Kind::Invalid("invalid_amount")),
        ];
        let events = [event("A", "succeeded")];
        let dead = [
            (
                Some("A".into()),
                Some("conflicting_duplicate".into()),
                b"a".to_vec(),
            ),
            (
                Some("X".into()),
                Some("invalid_amount".into()),
                b"x".to_vec(),
            ),
            // The same dead letter twice (at-least-once dead-lettering) counts once.
            (
                Some("X".into()),
                Some("invalid_amount".into()),
                b"x".to_vec(),
            ),
        ];
        let paid = ledger(100, vec![refund("SUCCESS")]);
        let db = DbFacts::default();
        let facts = Facts {
            planned: &plan,
            events: &events,
            dead: &dead,
            ledger: &paid,
            db: &db,
            forged_sent: 0,
        };
        assert_eq!(violations(&facts), Vec::<String>::new());

        // Paid twice, an event doubled, a dead letter missing.
        let twice = ledger(200, vec![refund("SUCCESS"), refund("SUCCESS")]);
        let events = [event("A", "succeeded"), event("A", "succeeded")];
        let facts = Facts {
            events: &events,
            dead: &dead[..1],
            ledger: &twice,
            ..facts
        };
        let v = violations(&facts);
        assert!(
            v.iter().any(|s| s.contains("more than one terminal event")),
            "{v:?}"
        );
        assert!(
            v.iter().any(|s| s.contains("dead letters by code")),
            "{v:?}"
        );
        assert!(
            v.iter().any(|s| s.contains("refunded 2.00 of 10.00")) || v.len() >= 2,
            "{v:?}"
        );
    }
}
