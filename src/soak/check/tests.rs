//! The checks' table tests: each invariant broken on purpose, and a clean run.

use super::*;
use crate::sandbox::openapi::view::OpenApiRefundView;
use crate::sandbox::realism::RealismCounts;
use crate::sandbox::view::{BatchView, ItemView, RefundView, TradeView};

fn planned(id: &str, kind: Kind) -> Planned {
    Planned {
        kind,
        refund_id: id.into(),
        openapi: false,
        body: Vec::new(),
    }
}

fn event(id: &str, status: &str) -> Terminal {
    let json = serde_json::json!({"event": format!("refund.{status}"), "refund_id": id, "status": status,
                       "trade_no": "T1", "batch_no": "B1", "amount": "1.00", "channel": "mapi"});
    Terminal::from_event(&json).unwrap()
}

#[test]
fn only_terminal_events_are_kept_with_their_amount_in_fen() {
    let e = event("A", "failed");
    assert!(!e.succeeded);
    assert_eq!((e.amount_fen, e.batch()), (100, "B1"));
    assert!(!e.is_openapi());
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

fn openapi_event(id: &str, status: &str, number: &str) -> Terminal {
    let json = serde_json::json!({"event": format!("refund.{status}"), "refund_id": id, "status": status,
                       "trade_no": "T9", "batch_no": null, "amount": "2.00", "channel": "openapi",
                       "out_request_no": number});
    Terminal::from_event(&json).unwrap()
}

fn openapi_paid(number: &str, times_paid: u32) -> OpenApiRefundView {
    OpenApiRefundView {
        trade_no: "T9".into(),
        out_request_no: number.into(),
        app_id: "2021000000000001".into(),
        amount: "2.00".into(),
        times_paid,
        repeats: 0,
        dback_status: None,
    }
}

/// A mapi refund `A` paid in batch B1 and an OpenAPI refund `O` paid under
/// `refunds`, with `events`: the violations.
fn openapi_run(events: &[Terminal], refunds: Vec<OpenApiRefundView>) -> Vec<String> {
    let mut plan = [planned("A", Kind::Valid), planned("O", Kind::Valid)];
    plan[1].openapi = true;
    let mut view = ledger(100, vec![refund("SUCCESS")]);
    view.openapi.moved_total_fen = refunds.iter().map(|r| 200 * i64::from(r.times_paid)).sum();
    view.openapi.refunds = refunds;
    let db = DbFacts::default();
    violations(&Facts {
        planned: &plan,
        events,
        dead: &[],
        ledger: &view,
        db: &db,
        forged_sent: 0,
    })
}

#[test]
fn an_openapi_refund_paid_once_under_its_number_as_it_succeeded_is_clean() {
    let events = [
        event("A", "succeeded"),
        openapi_event("O", "succeeded", "O"),
    ];
    assert_eq!(
        openapi_run(&events, vec![openapi_paid("O", 1)]),
        Vec::<String>::new()
    );
    // Failed, and the sandbox did not pay it: no violation either.
    let failed = [event("A", "succeeded"), openapi_event("O", "failed", "O")];
    assert_eq!(openapi_run(&failed, Vec::new()), Vec::<String>::new());
}

#[test]
fn each_way_an_openapi_refund_can_go_wrong_is_named() {
    let ok = [
        event("A", "succeeded"),
        openapi_event("O", "succeeded", "O"),
    ];
    let has = |v: &[String], what: &str| {
        assert!(v.iter().any(|s| s.contains(what)), "{what}: {v:?}");
    };
    let v = openapi_run(&ok, vec![openapi_paid("O", 2)]);
    has(
        &v,
        "1 out_request_nos the sandbox paid more than once (e.g. O)",
    );
    has(&v, "the sandbox moved 400 fen through OpenAPI");
    let v = openapi_run(&ok, vec![openapi_paid("O", 1), openapi_paid("O~1", 1)]);
    has(&v, "paid under a number that is no planned refund's first");
    has(&v, "1 paid without a succeeded event");
    let failed = [event("A", "succeeded"), openapi_event("O", "failed", "O")];
    has(
        &openapi_run(&failed, vec![openapi_paid("O", 1)]),
        "1 OpenAPI refunds the sandbox paid were reported failed",
    );
    let mut batched = openapi_event("O", "succeeded", "O");
    batched.batch_no = Some("B7".into());
    has(
        &openapi_run(
            &[event("A", "succeeded"), batched],
            vec![openapi_paid("O", 1)],
        ),
        "without their out_request_no or with a batch_no",
    );
    let mut on_mapi = openapi_event("O", "succeeded", "O");
    on_mapi.channel = "mapi".into();
    has(
        &openapi_run(
            &[event("A", "succeeded"), on_mapi],
            vec![openapi_paid("O", 1)],
        ),
        "1 terminal events on another channel",
    );
    let mut over = openapi_paid("O", 1);
    over.amount = "10.01".into();
    has(
        &openapi_run(&ok, vec![over]),
        "OpenAPI trade T9 refunded 1001 fen of 1000 paid",
    );
}

#[test]
fn the_openapi_figures_count_refunds_outcomes_and_payments() {
    let mut plan = [planned("A", Kind::Valid), planned("O", Kind::Valid)];
    plan[1].openapi = true;
    let mut view = ledger(100, vec![refund("SUCCESS")]);
    view.openapi.refunds = vec![openapi_paid("O", 1)];
    view.openapi.moved_total_fen = 200;
    view.openapi.calls.refund = 3;
    let db = DbFacts {
        openapi_unknown_outcomes: 2,
        ..DbFacts::default()
    };
    let events = [
        event("A", "succeeded"),
        openapi_event("O", "succeeded", "O"),
    ];
    let f = figures(&Facts {
        planned: &plan,
        events: &events,
        dead: &[],
        ledger: &view,
        db: &db,
        forged_sent: 0,
    });
    assert_eq!(
        (
            f.refunds,
            f.succeeded,
            f.failed,
            f.refund_calls,
            f.unknown_outcomes,
            f.paid,
            f.paid_fen
        ),
        (1, 1, 0, 3, 2, 1, 200)
    );
}
