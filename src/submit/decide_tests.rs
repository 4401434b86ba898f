use super::*;
use crate::alipay::wire::query_answer::QueryItem;
use crate::alipay::wire::result_details::ResultItem;

fn batch(items: usize, unknown: bool) -> ClaimedBatch {
    let now = Utc::now();
    let detail = vec!["2016061321001004790000000001^1.00^r"; items].join("#");
    ClaimedBatch {
        batch_no: format!("{}000000000001", beijing_now(now).format("%Y%m%d")),
        partner: "2088101122136241".into(),
        refund_date: "x".into(),
        detail_data: detail,
        attempts: 1,
        outcome_unknown: unknown,
        needs_query: false,
        created_at: now,
        last_sent_at: Some(now),
        absence_first_at: None,
        notified: false,
    }
}

const SETTLE: Duration = Duration::from_secs(3600);

const BACKOFF: Backoff = Backoff {
    base: Duration::from_secs(1),
    cap: Duration::from_secs(60),
    give_up: Duration::from_secs(600),
};

fn verdict(d: Disposition, code: &str) -> Verdict {
    Verdict {
        disposition: d,
        code: Some(code.into()),
    }
}

#[test]
fn the_delay_doubles_up_to_its_cap_with_a_quarter_of_jitter() {
    assert_eq!(BACKOFF.delay(1, 500), Duration::from_secs(1));
    assert_eq!(BACKOFF.delay(3, 500), Duration::from_secs(4));
    assert_eq!(BACKOFF.delay(30, 500), Duration::from_secs(60));
    assert_eq!(BACKOFF.delay(3, 0), Duration::from_secs(3));
    assert_eq!(BACKOFF.delay(3, 1000), Duration::from_secs(5));
}

#[test]
fn a_refusal_is_acted_on_only_when_no_earlier_attempt_was_in_doubt() {
    let sure = batch(3, false);
    let doubtful = batch(3, true);
    let date = verdict(Disposition::Rebuild, "REFUND_DATE_ERROR");
    assert_eq!(
        after_send(&sure, &date, false, &BACKOFF, 500),
        Next::Reject {
            pause_partner: false
        }
    );
    assert!(matches!(
        after_send(&doubtful, &date, false, &BACKOFF, 500),
        Next::RetryLater { query: true, .. }
    ));
    let sign = verdict(Disposition::PartnerMisconfigured, "ILLEGAL_SIGN");
    assert_eq!(
        after_send(&sure, &sign, false, &BACKOFF, 500),
        Next::Reject {
            pause_partner: true
        }
    );
    assert!(matches!(
        after_send(&doubtful, &sign, false, &BACKOFF, 500),
        Next::RetryLater { query: true, .. }
    ));
    // DUPLICATE_BATCH_NO is acceptance, doubt or not.
    let dup = verdict(Disposition::Accepted, "DUPLICATE_BATCH_NO");
    assert_eq!(
        after_send(&doubtful, &dup, false, &BACKOFF, 500),
        Next::Submitted
    );
}

#[test]
fn each_disposition_has_its_next_step() {
    let b = batch(3, false);
    let one = batch(1, false);
    assert_eq!(
        after_send(
            &b,
            &Verdict {
                disposition: Disposition::Accepted,
                code: None
            },
            false,
            &BACKOFF,
            0
        ),
        Next::Submitted
    );
    assert!(matches!(
        after_send(
            &b,
            &verdict(Disposition::OutcomeUnknown, "TIMEOUT"),
            false,
            &BACKOFF,
            0
        ),
        Next::RetryLater {
            unknown: true,
            query: false,
            ..
        }
    ));
    let no_contract = verdict(
        Disposition::PartnerMisconfigured,
        "ILLEGAL_PARTNER_EXTERFACE",
    );
    assert_eq!(
        after_send(&b, &no_contract, true, &BACKOFF, 0),
        Next::AwaitOperator
    );
    assert_eq!(
        after_send(&b, &no_contract, false, &BACKOFF, 0),
        Next::Reject {
            pause_partner: true
        }
    );
    let closed = verdict(Disposition::BadItem, "TRADE_HAS_CLOSED");
    assert_eq!(after_send(&b, &closed, false, &BACKOFF, 0), Next::Split);
    assert_eq!(
        after_send(&one, &closed, false, &BACKOFF, 0),
        Next::FailItem
    );
    assert_eq!(
        after_send(
            &b,
            &verdict(Disposition::OurBug, "DUBL_TRADE_NO_IN_SAME_BATCH"),
            false,
            &BACKOFF,
            0
        ),
        Next::Hold
    );
}

#[test]
fn doubt_is_settled_by_the_query_after_the_give_up_age_or_a_new_beijing_day() {
    let now = Utc::now();
    let mut b = batch(2, true);
    assert_eq!(action(&b, now, &BACKOFF), Action::Send);
    assert_eq!(
        action(&b, now + chrono::Duration::seconds(601), &BACKOFF),
        Action::Query
    );
    b.batch_no = "20000101000000000001".into();
    assert_eq!(action(&b, now, &BACKOFF), Action::Query);
    b.outcome_unknown = false;
    assert_eq!(
        action(&b, now, &BACKOFF),
        Action::Send,
        "never in doubt: Alipay's date check decides"
    );
}

#[test]
fn only_refund_not_exist_can_prove_absence() {
    let b = batch(2, true);
    let now = b.last_sent_at.unwrap() + chrono::Duration::hours(3);
    let item = QueryItem {
        batch_no: b.batch_no.clone(),
        item: ResultItem {
            trade_no: "1".into(),
            amount: "1.00".into(),
            amount_fen: 100,
            code: "SUCCESS".into(),
            dback: String::new(),
            tail: String::new(),
            raw: "1^1.00^SUCCESS".into(),
        },
    };
    let q = |b: &ClaimedBatch, a: Option<&QueryAnswer>| after_query(b, a, now, SETTLE, &BACKOFF, 0);
    assert_eq!(
        q(&b, Some(&QueryAnswer::Found(vec![item]))),
        Next::Submitted
    );
    assert!(matches!(
        q(
            &b,
            Some(&QueryAnswer::Failed {
                code: "SYSTEM_ERROR".into()
            })
        ),
        Next::RetryLater { query: true, .. }
    ));
    assert!(matches!(q(&b, None), Next::RetryLater { query: true, .. }));
}

#[test]
fn absence_needs_two_answers_each_a_settle_time_apart_and_no_notification() {
    let mut b = batch(2, true);
    let sent = b.last_sent_at.unwrap();
    let at = |mins: i64| sent + chrono::Duration::minutes(mins);
    let q = |b: &ClaimedBatch, now| {
        after_query(b, Some(&QueryAnswer::NotFound), now, SETTLE, &BACKOFF, 0)
    };
    // The midnight case: 16 s after the send, an answer proves nothing and
    // the next question waits until one could count.
    assert_eq!(
        q(&b, sent + chrono::Duration::seconds(16)),
        Next::RetryLater {
            delay: SETTLE - Duration::from_secs(16),
            unknown: false,
            query: true
        }
    );
    assert_eq!(q(&b, at(61)), Next::AbsenceSeen { delay: SETTLE });
    b.absence_first_at = Some(at(61));
    assert!(matches!(
        q(&b, at(90)),
        Next::RetryLater { query: true, .. }
    ));
    assert_eq!(
        q(&b, at(121)),
        Next::Reject {
            pause_partner: false
        }
    );
    // A notification ever received: never absent.
    b.notified = true;
    assert!(matches!(
        q(&b, at(500)),
        Next::RetryLater { query: true, .. }
    ));
    // A first answer from before a later send no longer counts.
    b.notified = false;
    b.last_sent_at = Some(at(100));
    assert!(matches!(
        q(&b, at(130)),
        Next::RetryLater { query: true, .. }
    ));
}

#[test]
fn a_passing_per_trade_code_splits_and_then_returns_the_refund_not_fails_it() {
    let lock = verdict(Disposition::ItemMayPass, "BATCH_REFUND_LOCK_ERROR");
    assert_eq!(
        after_send(&batch(4, false), &lock, false, &BACKOFF, 500),
        Next::Split
    );
    assert_eq!(
        after_send(&batch(1, false), &lock, false, &BACKOFF, 500),
        Next::ReturnItem
    );
    let coupon = verdict(
        Disposition::BadItem,
        "REASON_REFUND_AMOUNT_LESS_THAN_COUPON_FEE",
    );
    assert_eq!(
        after_send(&batch(1, false), &coupon, false, &BACKOFF, 500),
        Next::FailItem
    );
}

#[test]
fn an_unknown_code_or_our_bug_holds_the_batch_and_pauses_no_partner() {
    for (d, code) in [
        (Disposition::UnknownCode, "SOMETHING_NEW"),
        (Disposition::OurBug, "ILLEGAL_ARGUMENT"),
    ] {
        assert_eq!(
            after_send(&batch(3, false), &verdict(d, code), false, &BACKOFF, 500),
            Next::Hold,
            "{code}"
        );
    }
}
