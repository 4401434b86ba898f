//! `alipay.trade.refund`: its `biz_content` read into a ledger call, and
//! the ledger's verdict written as Alipay's answer.
//!
//! Invariant: `refund_amount` is read from its text into integer fen by the
//! domain's exact parser (never a float); a bad amount, a missing
//! `trade_no` or an `out_request_no` over 64 characters is
//! `40004 ACQ.INVALID_PARAMETER` and reaches no ledger. Pure.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::answer::{Failure, success_json};
use super::ledger::{RefundAsk, RefundDone, RefundRefused};
use crate::domain::{Amount, format_fen};

/// The masked buyer account every answer names.
pub const BUYER_LOGON_ID: &str = "159****5620";
/// Alipay's limit on `out_request_no`.
const MAX_OUT_REQUEST_NO: usize = 64;

#[derive(Debug, Deserialize)]
struct Biz {
    trade_no: Option<String>,
    out_trade_no: Option<String>,
    refund_amount: Option<Value>,
    out_request_no: Option<String>,
}

fn invalid(why: impl Into<String>) -> Failure {
    Failure::business("ACQ.INVALID_PARAMETER", why)
}

/// Reads `biz_content` into the ledger's question, for `app_id`. Without
/// `out_request_no` the refund is the trade's whole-refund number, the
/// `trade_no` itself, as Alipay takes it.
pub fn parse_biz(app_id: &str, biz_content: &str) -> Result<RefundAsk, Failure> {
    let biz: Biz = serde_json::from_str(biz_content)
        .map_err(|e| invalid(format!("biz_content is not the refund's JSON object: {e}")))?;
    let trade_no = biz
        .trade_no
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("the sandbox needs trade_no"))?;
    let amount_fen = match &biz.refund_amount {
        Some(Value::String(text)) => Amount::parse_yuan(text)
            .map_err(|e| invalid(format!("refund_amount {text:?} {e}")))?
            .fen(),
        Some(other) => return Err(invalid(format!("refund_amount {other} is not yuan text"))),
        None => return Err(invalid("refund_amount is missing")),
    };
    let out_request_no = biz
        .out_request_no
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| trade_no.clone());
    if out_request_no.len() > MAX_OUT_REQUEST_NO {
        return Err(invalid("out_request_no is longer than 64"));
    }
    Ok(RefundAsk {
        app_id: app_id.to_owned(),
        trade_no,
        out_trade_no: biz.out_trade_no.filter(|o| !o.is_empty()),
        out_request_no,
        amount_fen,
    })
}

/// The response value of a refund made or found.
pub fn done_json(done: &RefundDone) -> String {
    let s = |v: &str| Value::from(v);
    let fields: Map<String, Value> = [
        ("fund_change", s(if done.fund_change { "Y" } else { "N" })),
        ("refund_fee", s(&format_fen(done.refund_fee_fen))),
        ("trade_no", s(&done.trade_no)),
        ("out_trade_no", s(&done.out_trade_no)),
        ("buyer_logon_id", s(BUYER_LOGON_ID)),
        ("gmt_refund_pay", s(&done.gmt_refund_pay)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    success_json(fields)
}

/// The refusal of a refund the ledger would not make.
pub fn refused(r: &RefundRefused) -> Failure {
    match r {
        RefundRefused::DiscordantRepeat { before_fen } => Failure::business(
            "ACQ.DISCORDANT_REPEAT_REQUEST",
            format!(
                "this out_request_no refunded {} before",
                format_fen(*before_fen)
            ),
        ),
        RefundRefused::AboveRest { rest_fen } => Failure::business(
            "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL",
            format!("退款金额超限: {} left to refund", format_fen(*rest_fen)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_amount_is_read_exactly_and_bad_ones_are_invalid_parameters() {
        let biz = |amount: &str| {
            format!(r#"{{"trade_no":"T1","refund_amount":{amount},"out_request_no":"R-1"}}"#)
        };
        let ask = parse_biz("A", &biz(r#""12.34""#)).unwrap();
        assert_eq!(ask.amount_fen, 1234);
        assert_eq!(ask.out_request_no, "R-1");
        assert_eq!(parse_biz("A", &biz(r#""0.29""#)).unwrap().amount_fen, 29);
        for bad in [
            r#""12.345""#,
            r#""-1.00""#,
            r#""0.00""#,
            r#""1e2""#,
            "12.34",
            r#""""#,
        ] {
            let e = parse_biz("A", &biz(bad)).unwrap_err();
            assert_eq!(
                (e.code, e.sub_code.as_str()),
                ("40004", "ACQ.INVALID_PARAMETER"),
                "{bad}"
            );
        }
        for bad in [
            r#"{"refund_amount":"1.00"}"#,
            r#"{"trade_no":"T1"}"#,
            "not json",
            &format!(
                r#"{{"trade_no":"T1","refund_amount":"1.00","out_request_no":"{}"}}"#,
                "R".repeat(65)
            ),
        ] {
            assert_eq!(
                parse_biz("A", bad).unwrap_err().sub_code,
                "ACQ.INVALID_PARAMETER",
                "{bad}"
            );
        }
        let whole = parse_biz("A", r#"{"trade_no":"T1","refund_amount":"1"}"#).unwrap();
        assert_eq!(whole.out_request_no, "T1");
    }

    #[test]
    fn a_made_refund_answers_every_field_the_worker_reads() {
        let done = RefundDone {
            fund_change: false,
            refund_fee_fen: 1050,
            trade_no: "T1".into(),
            out_trade_no: "O-1".into(),
            gmt_refund_pay: "2026-12-06 14:00:01".into(),
        };
        let v: Value = serde_json::from_str(&done_json(&done)).unwrap();
        assert_eq!(v["code"], "10000");
        assert_eq!(v["msg"], "Success");
        assert_eq!(v["fund_change"], "N");
        assert_eq!(v["refund_fee"], "10.50");
        assert_eq!(v["buyer_logon_id"], BUYER_LOGON_ID);
        assert_eq!(v["gmt_refund_pay"], "2026-12-06 14:00:01");
        assert_eq!(
            refused(&RefundRefused::AboveRest { rest_fen: 5 }).sub_code,
            "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
        );
        assert_eq!(
            refused(&RefundRefused::DiscordantRepeat { before_fen: 5 }).sub_code,
            "ACQ.DISCORDANT_REPEAT_REQUEST"
        );
    }
}
