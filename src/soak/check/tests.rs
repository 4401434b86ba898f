//! The checks' table tests: each invariant broken on purpose, and a clean run.

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
    let bad = serde_json::json!({"event": "refund.succeeded", "refund_id": "A", "amount": "1.001"});
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
        openapi: Default::default(),
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
