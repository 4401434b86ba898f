//! Tests of accepting and processing batches with realism on and off.

use super::*;
use crate::sandbox::config::{PartnerKey, Rate, Realism};

const P: &str = "2088101122136241";

fn sandbox(realism: Realism) -> Sandbox {
    let mut config = SandboxConfig::new(
        vec![PartnerKey {
            id: P.into(),
            key: "k".into(),
        }],
        7,
    );
    config.realism = realism;
    Sandbox::new(config).unwrap()
}

fn request(batch_no: &str, trades: &[&str]) -> BatchRequest {
    crate::sandbox::test_support::request(P, batch_no, trades)
}

use crate::sandbox::test_support::details;

#[test]
fn a_trade_short_of_balance_fails_its_first_refund_only() {
    let s = sandbox(Realism {
        balance_not_enough_rate: Rate::ALWAYS,
        ..Realism::default()
    });
    let first = s.accept(request("20240310001", &["T1"]), false).unwrap();
    assert_eq!(
        details(&first[0]),
        "T1^1.00^TXN_RESULT_ACCOUNT_BALANCE_NOT_ENOUGH"
    );
    let again = s.accept(request("20240310002", &["T1"]), false).unwrap();
    assert_eq!(details(&again[0]), "T1^1.00^SUCCESS");
    let view = s.ledger();
    assert_eq!(view.paid_total_fen, 100);
    assert_eq!(view.realism.balance_not_enough, 1);
}

#[test]
fn a_batch_holding_a_poison_trade_is_refused_whole_and_never_recorded() {
    let s = sandbox(Realism {
        poison_rate: Rate::ALWAYS,
        ..Realism::default()
    });
    let refused = s.accept(request("20240310001", &["T1", "T2"]), false);
    assert_eq!(
        refused.map(|_| ()).map_err(|r| r.code),
        Err(Code::ReasonRefundAmountLessThanCouponFee)
    );
    let view = s.ledger();
    assert!(view.batches.is_empty() && view.notifications.is_empty());
    assert_eq!(view.realism.poison_refusals, 1);
}

#[test]
fn a_non_final_item_gets_a_second_notification_that_settles_it() {
    let s = sandbox(Realism {
        non_final_rate: Rate::ALWAYS,
        ..Realism::default()
    });
    let jobs = s.accept(request("20240310001", &["T1"]), false).unwrap();
    assert_eq!(jobs.len(), 2);
    let code = details(&jobs[0]);
    let code = code.strip_prefix("T1^1.00^").unwrap();
    assert!(is_retried_by_alipay(code), "{code}");
    assert_eq!(jobs[0].settles, None);
    assert_ne!(jobs[0].notify_id, jobs[1].notify_id);
    assert_eq!(details(&jobs[1]), "T1^1.00^SUCCESS");
    let settle = jobs[1].settles.unwrap();
    assert_eq!(settle.after, Realism::default().non_final_delay);
    // Not paid until the settling notification's task settles it.
    assert_eq!(s.ledger().paid_total_fen, 0);
    assert_eq!(s.lock().ledger.resolve(settle.batch).len(), 1);
    let view = s.ledger();
    assert_eq!(view.paid_total_fen, 100);
    assert_eq!(
        view.batches[0].items[0].reported_codes,
        [code.to_owned(), SUCCESS.to_owned()]
    );
    assert_eq!(view.realism.non_final, 1);
}

#[test]
fn an_empty_notification_still_pays_and_counts() {
    let s = sandbox(Realism {
        empty_details_rate: Rate::ALWAYS,
        ..Realism::default()
    });
    let jobs = s.accept(request("20240310001", &["T1"]), false).unwrap();
    let params = form::decode(jobs[0].body.as_bytes()).unwrap();
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("result_details"), Some(""));
    assert_eq!(get("success_num"), Some("0"));
    let view = s.ledger();
    assert_eq!(view.paid_total_fen, 100);
    assert_eq!(view.realism.empty_details, 1);
}

#[test]
fn without_realism_the_notification_is_the_plain_one() {
    let s = sandbox(Realism::default());
    let jobs = s
        .accept(request("20240310001", &["T1", "T2"]), false)
        .unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(details(&jobs[0]), "T1^1.00^SUCCESS#T2^1.00^SUCCESS");
    assert_eq!(s.ledger().realism, Default::default());
}
