use super::*;

const P: &str = "2088101122136241";
const OTHER: &str = "2088101122136242";

fn item(trade_no: &str, amount_fen: i64) -> BatchItem {
    BatchItem {
        trade_no: trade_no.into(),
        amount_fen,
        reason: "r".into(),
    }
}

use crate::sandbox::test_support::batch_with as batch;

fn no_faults(_: &BatchItem) -> Option<String> {
    None
}

fn run(ledger: &mut Ledger, request: BatchRequest) -> Vec<ResultLine> {
    let id = ledger.accept(request, false).unwrap();
    ledger.process(id, no_faults)
}

#[test]
fn an_unknown_trade_is_created_with_the_default_paid_amount_and_refunded() {
    let mut ledger = Ledger::new(100_000);
    let lines = run(&mut ledger, batch(P, "20240310001", vec![item("T1", 1050)]));
    assert_eq!(lines.len(), 1);
    assert!(lines[0].is_success());
    let trade = &ledger.trades()["T1"];
    assert_eq!(trade.paid_fen, 100_000);
    assert_eq!(trade.refunded_fen(), 1050);
    assert_eq!(ledger.paid_total_fen(), 1050);
}

#[test]
fn a_batch_no_is_taken_once_per_partner_and_a_resend_changes_nothing() {
    let mut ledger = Ledger::new(100_000);
    run(&mut ledger, batch(P, "20240310001", vec![item("T1", 1)]));
    let again = ledger.accept(batch(P, "20240310001", vec![item("T1", 1)]), false);
    assert_eq!(again.map_err(|r| r.code), Err(Code::DuplicateBatchNo));
    assert_eq!(ledger.paid_total_fen(), 1);
    assert_eq!(ledger.batches().len(), 1);
    // Another partner may use the same number.
    assert!(
        ledger
            .accept(batch(OTHER, "20240310001", vec![]), false)
            .is_ok()
    );
}

#[test]
fn refunds_above_the_paid_amount_fail_with_refund_trade_fee_error() {
    let mut ledger = Ledger::new(1000);
    let lines = run(
        &mut ledger,
        batch(P, "20240310001", vec![item("T1", 600), item("T2", 1001)]),
    );
    assert_eq!(lines[0].code, SUCCESS);
    assert_eq!(lines[1].code, REFUND_TRADE_FEE_ERROR);
    let lines = run(&mut ledger, batch(P, "20240310002", vec![item("T1", 401)]));
    assert_eq!(lines[0].code, REFUND_TRADE_FEE_ERROR);
    let lines = run(&mut ledger, batch(P, "20240310003", vec![item("T1", 400)]));
    assert_eq!(lines[0].code, SUCCESS);
    assert_eq!(ledger.trades()["T1"].refunded_fen(), 1000);
    assert_eq!(ledger.paid_total_fen(), 1000);
}

#[test]
fn the_hundredth_refund_of_a_trade_is_neither_paid_nor_reported() {
    let mut ledger = Ledger::new(100_000);
    for n in 1..=99 {
        let lines = run(
            &mut ledger,
            batch(P, &format!("20240310{n:03}"), vec![item("T1", 1)]),
        );
        assert_eq!(lines[0].code, SUCCESS, "refund {n}");
    }
    let id = ledger
        .accept(
            batch(P, "20240310100", vec![item("T1", 1), item("T2", 1)]),
            false,
        )
        .unwrap();
    let lines = ledger.process(id, no_faults);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].trade_no, "T2");
    assert_eq!(ledger.batches()[id].outcomes[0], ItemOutcome::Ignored);
    assert_eq!(ledger.trades()["T1"].refunded_fen(), 99);
}

#[test]
fn failed_refunds_do_not_count_toward_the_limit_or_the_total() {
    let mut ledger = Ledger::new(100_000);
    let id = ledger
        .accept(batch(P, "20240310001", vec![item("T1", 5)]), false)
        .unwrap();
    let lines = ledger.process(id, |_| Some("TRADE_HAS_CLOSED".into()));
    assert_eq!(lines[0].code, "TRADE_HAS_CLOSED");
    assert_eq!(ledger.trades()["T1"].refunds.len(), 1);
    assert_eq!(ledger.paid_total_fen(), 0);
}

#[test]
fn a_batch_is_processed_once_however_often_it_is_asked() {
    let mut ledger = Ledger::new(100_000);
    let id = ledger
        .accept(batch(P, "20240310001", vec![item("T1", 5)]), false)
        .unwrap();
    assert_eq!(ledger.process(id, no_faults).len(), 1);
    assert_eq!(ledger.process(id, no_faults), vec![]);
    assert_eq!(ledger.paid_total_fen(), 5);
}

#[test]
fn another_partners_trade_is_not_refunded() {
    let mut ledger = Ledger::new(100_000);
    run(&mut ledger, batch(P, "20240310001", vec![item("T1", 5)]));
    let lines = run(
        &mut ledger,
        batch(OTHER, "20240310001", vec![item("T1", 5)]),
    );
    assert_eq!(lines[0].code, NOT_THIS_PARTNERS_TRADE);
}

#[test]
fn a_password_batch_is_paid_only_after_approval() {
    let mut ledger = Ledger::new(100_000);
    let id = ledger
        .accept(batch(P, "20240310001", vec![item("T1", 5)]), true)
        .unwrap();
    assert_eq!(ledger.process(id, no_faults), vec![]);
    assert_eq!(ledger.paid_total_fen(), 0);
    assert_eq!(ledger.approve(None, "20240310001"), Ok(id));
    assert_eq!(ledger.process(id, no_faults).len(), 1);
    assert_eq!(
        ledger.approve(None, "20240310001"),
        Err(ApproveError::NotWaiting("20240310001".into()))
    );
    assert_eq!(
        ledger.approve(None, "20240310009"),
        Err(ApproveError::Unknown("20240310009".into()))
    );
}

#[test]
fn approving_a_number_two_partners_used_needs_the_partner() {
    let mut ledger = Ledger::new(100_000);
    ledger
        .accept(batch(P, "20240310001", vec![]), true)
        .unwrap();
    let other = ledger
        .accept(batch(OTHER, "20240310001", vec![]), true)
        .unwrap();
    assert!(matches!(
        ledger.approve(None, "20240310001"),
        Err(ApproveError::Ambiguous(_))
    ));
    assert_eq!(ledger.approve(Some(OTHER), "20240310001"), Ok(other));
}

#[test]
fn a_query_finds_by_batch_by_trade_or_both_and_only_the_partners_own() {
    let mut ledger = Ledger::new(100_000);
    run(
        &mut ledger,
        batch(P, "20240310001", vec![item("T1", 1), item("T2", 2)]),
    );
    run(&mut ledger, batch(P, "20240310002", vec![item("T1", 3)]));
    let key = |b: Option<&str>, t: Option<&str>| QueryKey {
        batch_no: b.map(Into::into),
        trade_no: t.map(Into::into),
    };
    assert_eq!(ledger.query(P, &key(Some("20240310001"), None)).len(), 2);
    assert_eq!(ledger.query(P, &key(None, Some("T1"))).len(), 2);
    let both = ledger.query(P, &key(Some("20240310002"), Some("T1")));
    assert_eq!(both.len(), 1);
    assert_eq!(both[0].line.amount_fen, 3);
    assert!(ledger.query(P, &key(Some("20240310003"), None)).is_empty());
    assert!(
        ledger
            .query(OTHER, &key(Some("20240310001"), None))
            .is_empty()
    );
}

#[test]
fn a_notification_is_genuine_only_for_its_partner() {
    let mut ledger = Ledger::new(100_000);
    let record = NotificationRecord {
        notify_id: "n1".into(),
        partner: P.into(),
        kind: "batch_refund_notify",
        batch_no: "20240310001".into(),
        trade_no: None,
        attempts: 0,
        delivered: 0,
        acknowledged: false,
    };
    assert!(ledger.register_notification(record.clone()));
    assert!(!ledger.register_notification(record));
    assert!(ledger.is_genuine(P, "n1"));
    assert!(!ledger.is_genuine(OTHER, "n1"));
    assert!(!ledger.is_genuine(P, "n2"));
    ledger.record_send("n1", false, false);
    ledger.record_send("n1", true, true);
    let n = &ledger.notifications()[0];
    assert_eq!((n.attempts, n.delivered, n.acknowledged), (2, 1, true));
}

#[test]
fn an_item_alipay_retries_itself_is_held_then_paid_once_when_resolved() {
    let mut ledger = Ledger::new(1000);
    let id = ledger
        .accept(
            batch(P, "20240310001", vec![item("T1", 600), item("T2", 1)]),
            false,
        )
        .unwrap();
    let lines = ledger.process(id, |i| {
        (i.trade_no == "T1").then(|| "TRADE_PAYMENT_ERROR".to_owned())
    });
    assert_eq!(lines[0].code, "TRADE_PAYMENT_ERROR");
    assert_eq!(
        ledger.batches()[id].outcomes[0],
        ItemOutcome::Unresolved("TRADE_PAYMENT_ERROR".into())
    );
    assert_eq!(ledger.paid_total_fen(), 1);
    // Held: nothing can be paid over it meanwhile.
    let over = run(&mut ledger, batch(P, "20240310002", vec![item("T1", 401)]));
    assert_eq!(over[0].code, REFUND_TRADE_FEE_ERROR);
    // Until settled, a query tells the non-final code.
    let key = QueryKey {
        batch_no: Some("20240310001".into()),
        trade_no: Some("T1".into()),
    };
    assert_eq!(ledger.query(P, &key)[0].line.code, "TRADE_PAYMENT_ERROR");

    let settled = ledger.resolve(id);
    assert_eq!(
        settled,
        vec![ResultLine {
            trade_no: "T1".into(),
            amount_fen: 600,
            code: SUCCESS.into(),
        }]
    );
    assert_eq!(ledger.resolve(id), vec![], "settled once");
    assert_eq!(ledger.paid_total_fen(), 601);
    assert_eq!(ledger.query(P, &key)[0].line.code, SUCCESS);
    assert_eq!(
        ledger.batches()[id].reported_codes(0),
        ["TRADE_PAYMENT_ERROR", SUCCESS]
    );
    assert_eq!(ledger.batches()[id].reported_codes(1), [SUCCESS]);
    let refund = &ledger.trades()["T1"].refunds[0];
    assert_eq!(refund.reported_codes(), ["TRADE_PAYMENT_ERROR", SUCCESS]);
    // What is left of the trade can still be refunded.
    let rest = run(&mut ledger, batch(P, "20240310003", vec![item("T1", 400)]));
    assert_eq!(rest[0].code, SUCCESS);
    assert_eq!(ledger.trades()["T1"].refunded_fen(), 1000);
}

#[test]
fn a_pending_or_ignored_item_has_reported_nothing() {
    let mut ledger = Ledger::new(100_000);
    let id = ledger
        .accept(batch(P, "20240310001", vec![item("T1", 5)]), true)
        .unwrap();
    assert!(ledger.batches()[id].reported_codes(0).is_empty());
    assert_eq!(ledger.resolve(id), vec![]);
}

#[test]
fn a_lagged_batch_holds_its_number_but_pays_and_shows_nothing_until_its_lag_ends() {
    let mut ledger = Ledger::new(100_000);
    let key = |b: Option<&str>, t: Option<&str>| QueryKey {
        batch_no: b.map(Into::into),
        trade_no: t.map(Into::into),
    };
    let id = ledger
        .accept_lagged(batch(P, "20240310001", vec![item("T1", 5)]))
        .unwrap();
    assert_eq!(ledger.batches()[id].state, BatchState::Lagged);
    // Not processed while lagged, however often asked.
    assert!(ledger.process(id, no_faults).is_empty());
    assert!(ledger.query(P, &key(Some("20240310001"), None)).is_empty());
    assert!(ledger.query(P, &key(None, Some("T1"))).is_empty());
    // A resend, plain or lagged again, is SYSTEM_ERROR and records nothing.
    let resend = ledger.accept(batch(P, "20240310001", vec![item("T1", 5)]), false);
    assert_eq!(resend.map_err(|r| r.code), Err(Code::SystemError));
    let resend = ledger.accept_lagged(batch(P, "20240310001", vec![item("T1", 5)]));
    assert_eq!(resend.map_err(|r| r.code), Err(Code::SystemError));
    assert_eq!(ledger.batches().len(), 1);
    assert_eq!(ledger.paid_total_fen(), 0);

    // The lag ends once; then it is an ordinary batch, processed once.
    assert!(ledger.end_lag(id));
    assert!(!ledger.end_lag(id));
    assert!(!ledger.end_lag(id + 1));
    assert_eq!(ledger.process(id, no_faults).len(), 1);
    assert!(ledger.process(id, no_faults).is_empty());
    assert_eq!(ledger.paid_total_fen(), 5);
    assert_eq!(ledger.query(P, &key(None, Some("T1"))).len(), 1);
    let resend = ledger.accept(batch(P, "20240310001", vec![item("T1", 5)]), false);
    assert_eq!(resend.map_err(|r| r.code), Err(Code::DuplicateBatchNo));
}

#[test]
fn a_lagged_batch_is_paid_by_the_usual_rules_at_the_end_of_its_lag() {
    // Another batch of the trade paid meanwhile counts against it.
    let mut ledger = Ledger::new(10);
    let lagged = ledger
        .accept_lagged(batch(P, "20240310001", vec![item("T1", 6)]))
        .unwrap();
    run(&mut ledger, batch(P, "20240310002", vec![item("T1", 6)]));
    assert!(ledger.end_lag(lagged));
    let lines = ledger.process(lagged, no_faults);
    assert_eq!(lines[0].code, REFUND_TRADE_FEE_ERROR);
    assert_eq!(ledger.paid_total_fen(), 6);
}
