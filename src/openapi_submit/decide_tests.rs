use super::*;
use crate::alipay::openapi::sign::AppKey;

const ALIPAY_PRIVATE: &str = include_str!("../../deploy/sandbox-keys/alipay-private.pem");
const ALIPAY_PUBLIC: &str = include_str!("../../deploy/sandbox-keys/alipay-public.pem");
const APP_PRIVATE: &str = include_str!("../../deploy/sandbox-keys/app-private.pem");

const RULES: Rules = Rules {
    retry_base: Duration::from_secs(1),
    retry_cap: Duration::from_secs(60),
    give_up: Duration::from_secs(600),
    query_after: QUERY_NOT_BEFORE,
    item_retry: ItemRetry {
        base: Duration::from_secs(60),
        limit: 2,
    },
};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn asked(call: &'static str, calls: i32, age_secs: i64, item_retries: i32) -> Asked<'static> {
    Asked {
        call,
        out_request_no: "R-1",
        amount_fen: 1050,
        calls,
        first_call_at: Some(now() - chrono::Duration::seconds(age_secs)),
        item_retries,
        last_code: None,
    }
}

/// A body signed by `signer` (Alipay's key unless a test forges it).
fn signed_by(signer: &str, method: &str, response: &str) -> Came {
    let key = AppKey::parse(signer).unwrap();
    let sign = key.sign(response).unwrap();
    let name = format!("{}_response", method.replace('.', "_"));
    Came::Http {
        status: 200,
        body: format!(r#"{{"{name}":{response},"sign":"{sign}"}}"#),
    }
}

fn refund_answer(response: &str) -> Came {
    signed_by(ALIPAY_PRIVATE, REFUND, response)
}

fn judge_it(came: &Came, asked: &Asked<'_>) -> Judged {
    let alipay = AlipayPublicKey::parse(ALIPAY_PUBLIC).unwrap();
    judge(came, asked, &alipay, &RULES, now())
}

#[test]
fn success_and_a_repeat_both_settle_from_the_calls_own_answer() {
    for fund_change in ["Y", "N"] {
        let came = refund_answer(&format!(
            r#"{{"code":"10000","msg":"Success","fund_change":"{fund_change}","refund_fee":"10.50"}}"#
        ));
        let j = judge_it(&came, &asked("refund", 1, 0, 0));
        assert!(
            matches!(
                j.next,
                Next::Succeeded {
                    source: Source::Submit,
                    ..
                }
            ),
            "{j:?}"
        );
        assert_eq!(j.code, "SUCCESS");
    }
}

#[test]
fn every_unknown_outcome_sends_the_same_request_again_and_a_bad_signature_alerts() {
    let unavailable = refund_answer(
        r#"{"code":"20000","msg":"Service Currently Unavailable","sub_code":"aop.ACQ.SYSTEM_ERROR"}"#,
    );
    let system_error =
        refund_answer(r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.SYSTEM_ERROR"}"#);
    let no_fund_change = refund_answer(r#"{"code":"10000","msg":"Success"}"#);
    let forged = signed_by(
        APP_PRIVATE,
        REFUND,
        r#"{"code":"10000","msg":"Success","fund_change":"Y"}"#,
    );
    let cases = [
        (
            Came::Nothing {
                why: "timed out".into(),
            },
            "NO_ANSWER",
            false,
        ),
        (
            Came::Http {
                status: 502,
                body: String::new(),
            },
            "HTTP_502",
            false,
        ),
        (unavailable, "aop.ACQ.SYSTEM_ERROR", false),
        (system_error, "ACQ.SYSTEM_ERROR", false),
        (no_fund_change, "10000", false),
        (forged, "UNVERIFIED", true),
    ];
    for (came, code, alert) in cases {
        let j = judge_it(&came, &asked("refund", 2, 5, 0));
        assert_eq!(
            j.next,
            Next::Again {
                call: "refund",
                after: Duration::from_secs(2)
            },
            "{code}"
        );
        assert_eq!((j.code.as_str(), j.alert), (code, alert));
    }
}

#[test]
fn past_the_give_up_age_an_unknown_outcome_is_queried_no_sooner_than_ten_seconds() {
    let j = judge_it(
        &Came::Nothing { why: "x".into() },
        &asked("refund", 1, 601, 0),
    );
    assert_eq!(
        j.next,
        Next::Again {
            call: "query",
            after: QUERY_NOT_BEFORE
        }
    );
    let j = judge_it(
        &Came::Nothing { why: "x".into() },
        &asked("refund", 9, 601, 0),
    );
    assert_eq!(
        j.next,
        Next::Again {
            call: "query",
            after: Duration::from_secs(60)
        }
    );
}

#[test]
fn a_passing_code_waits_under_the_item_retry_settings_then_fails() {
    let balance = refund_answer(
        r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.SELLER_BALANCE_NOT_ENOUGH","sub_msg":"余额不足"}"#,
    );
    let j = judge_it(&balance, &asked("refund", 1, 0, 1));
    assert!(
        matches!(j.next, Next::Later { wait, .. } if wait == Duration::from_secs(120)),
        "{j:?}"
    );
    let j = judge_it(&balance, &asked("refund", 1, 0, 2));
    assert_eq!(
        j.next,
        Next::Failed {
            code: "ACQ.SELLER_BALANCE_NOT_ENOUGH".into(),
            message: "余额不足".into()
        }
    );
}

#[test]
fn a_final_code_fails_and_our_bugs_or_unknown_codes_hold_for_a_person() {
    let finished = refund_answer(
        r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_HAS_FINISHED","sub_msg":"交易已完结"}"#,
    );
    let j = judge_it(&finished, &asked("refund", 1, 0, 0));
    assert!(matches!(j.next, Next::Failed { ref code, .. } if code == "ACQ.TRADE_HAS_FINISHED"));
    for response in [
        r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.DISCORDANT_REPEAT_REQUEST"}"#,
        r#"{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-signature"}"#,
        r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.SOMETHING_NEW"}"#,
    ] {
        let j = judge_it(&refund_answer(response), &asked("refund", 1, 0, 0));
        assert!(
            matches!(j.next, Next::Hold { .. }) && j.alert,
            "{response}: {j:?}"
        );
    }
}

#[test]
fn a_query_with_data_settles_none_sends_the_same_number_again_and_a_disagreement_holds() {
    let query = |response: &str| signed_by(ALIPAY_PRIVATE, REFUND_QUERY, response);
    let refunded = query(
        r#"{"code":"10000","msg":"Success","out_request_no":"R-1","refund_amount":"10.50","refund_status":"REFUND_SUCCESS"}"#,
    );
    let j = judge_it(&refunded, &asked("query", 3, 700, 0));
    assert!(
        matches!(
            j.next,
            Next::Succeeded {
                source: Source::Query,
                ..
            }
        ),
        "{j:?}"
    );
    let none = query(r#"{"code":"10000","msg":"Success","out_request_no":"R-1"}"#);
    let j = judge_it(&none, &asked("query", 3, 700, 0));
    assert_eq!(
        j.next,
        Next::Again {
            call: "refund",
            after: Duration::ZERO
        }
    );
    let other =
        query(r#"{"code":"10000","msg":"Success","out_request_no":"R-1","refund_amount":"9.99"}"#);
    let j = judge_it(&other, &asked("query", 3, 700, 0));
    assert!(matches!(j.next, Next::Hold { .. }) && j.alert, "{j:?}");
}

#[test]
fn a_refusal_after_an_earlier_call_is_failed_only_once_the_query_shows_no_refund() {
    let finished = refund_answer(
        r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_HAS_FINISHED"}"#,
    );
    // The earlier call's outcome was unknown: it may have paid.
    let j = judge_it(&finished, &asked("refund", 2, 5, 0));
    assert_eq!(
        j.next,
        Next::Again {
            call: "query",
            after: QUERY_NOT_BEFORE
        }
    );
    let query = |response: &str| signed_by(ALIPAY_PRIVATE, REFUND_QUERY, response);
    let after_refusal = Asked {
        last_code: Some("ACQ.TRADE_HAS_FINISHED"),
        ..asked("query", 3, 30, 0)
    };
    let none = query(r#"{"code":"10000","msg":"Success","out_request_no":"R-1"}"#);
    let j = judge_it(&none, &after_refusal);
    assert!(
        matches!(j.next, Next::Failed { ref code, .. } if code == "ACQ.TRADE_HAS_FINISHED"),
        "{j:?}"
    );
    let paid =
        query(r#"{"code":"10000","msg":"Success","out_request_no":"R-1","refund_amount":"10.50"}"#);
    let j = judge_it(&paid, &after_refusal);
    assert!(
        matches!(
            j.next,
            Next::Succeeded {
                source: Source::Query,
                ..
            }
        ),
        "{j:?}"
    );
}
