//! `alipay.trade.fastpay.refund.query`: its `biz_content` read, and the
//! answer written in Alipay's two shapes.
//!
//! Invariant: a refund made answers its data (`refund_amount` as the
//! worker sent it, `refund_status REFUND_SUCCESS`, and the 充退 status when
//! asked for and set); a refund not made, or one still hidden by injected
//! lag, answers `10000` with only `trade_no` and `out_request_no`, which
//! the worker's `query::prove` reads as "not refunded yet". A trade the
//! sandbox never saw is not refunded, not unknown: any trade is taken as
//! paid. Pure.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::answer::{Failure, success_json};
use super::ledger::Found;
use crate::domain::format_fen;

/// The option that asks for the 充退 status.
pub const DEPOSIT_BACK_INFO: &str = "deposit_back_info";

/// A query, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryAsk {
    pub trade_no: String,
    pub out_request_no: String,
    pub with_deposit_back: bool,
}

#[derive(Debug, Deserialize)]
struct Biz {
    trade_no: Option<String>,
    out_request_no: Option<String>,
    #[serde(default)]
    query_options: Vec<String>,
}

/// Reads `biz_content`; without `out_request_no` it asks for the trade's
/// whole refund (numbered `trade_no`), as Alipay takes it.
pub fn parse_biz(biz_content: &str) -> Result<QueryAsk, Failure> {
    let invalid = |why: String| Failure::business("ACQ.INVALID_PARAMETER", why);
    let biz: Biz = serde_json::from_str(biz_content)
        .map_err(|e| invalid(format!("biz_content is not the query's JSON object: {e}")))?;
    let trade_no = biz
        .trade_no
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("the sandbox needs trade_no".into()))?;
    Ok(QueryAsk {
        out_request_no: biz
            .out_request_no
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| trade_no.clone()),
        with_deposit_back: biz.query_options.iter().any(|o| o == DEPOSIT_BACK_INFO),
        trade_no,
    })
}

/// The response value: the refund's data when `found`, else only the numbers.
pub fn answer_json(ask: &QueryAsk, found: Option<&Found>) -> String {
    let mut fields = Map::new();
    fields.insert("trade_no".into(), Value::from(ask.trade_no.as_str()));
    fields.insert(
        "out_request_no".into(),
        Value::from(ask.out_request_no.as_str()),
    );
    if let Some(f) = found {
        fields.insert("out_trade_no".into(), Value::from(f.out_trade_no.as_str()));
        fields.insert("refund_amount".into(), format_fen(f.amount_fen).into());
        fields.insert("total_amount".into(), format_fen(f.total_fen).into());
        fields.insert("refund_status".into(), "REFUND_SUCCESS".into());
        if let Some(status) = f.dback_status.as_deref().filter(|_| ask.with_deposit_back) {
            fields.insert(
                DEPOSIT_BACK_INFO.into(),
                json!({"dback_status": status, "dback_amount": format_fen(f.amount_fen)}),
            );
        }
    }
    success_json(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alipay::openapi::answer::{Read, read};
    use crate::alipay::openapi::query::{Proof, QueryFields, prove};
    use crate::alipay::openapi::request::{QueryBiz, REFUND_QUERY};
    use crate::sandbox::openapi::answer::{Signing, envelope, response_key};
    use crate::sandbox::openapi::test_keys::{alipay_key, alipay_public};

    /// What the worker proves from the sandbox's answer, through the wire.
    fn proved(ask: &QueryAsk, found: Option<&Found>, amount: &str) -> (Proof, QueryFields) {
        let body = envelope(
            &response_key(REFUND_QUERY),
            &answer_json(ask, found),
            Some(&alipay_key()),
            Signing::Proper,
        )
        .unwrap();
        let Read::Verified { answer, raw } = read(&body, REFUND_QUERY, &alipay_public()) else {
            panic!("{body}");
        };
        let fields: QueryFields = serde_json::from_str(&raw).unwrap();
        (prove(Some((&answer, &fields)), "R-1", amount), fields)
    }

    fn ask() -> QueryAsk {
        parse_biz(&serde_json::to_string(&QueryBiz::new("T1", "R-1")).unwrap()).unwrap()
    }

    fn found(dback: Option<&str>) -> Found {
        Found {
            out_trade_no: "O-1".into(),
            amount_fen: 1050,
            total_fen: 10_000,
            dback_status: dback.map(Into::into),
        }
    }

    #[test]
    fn the_workers_own_query_is_read_with_the_deposit_back_option() {
        let a = ask();
        assert_eq!(
            (a.trade_no.as_str(), a.out_request_no.as_str()),
            ("T1", "R-1")
        );
        assert!(a.with_deposit_back);
        let bare = parse_biz(r#"{"trade_no":"T1"}"#).unwrap();
        assert_eq!(bare.out_request_no, "T1");
        assert!(!bare.with_deposit_back);
        assert_eq!(
            parse_biz("{}").unwrap_err().sub_code,
            "ACQ.INVALID_PARAMETER"
        );
    }

    #[test]
    fn a_refund_made_proves_refunded_and_carries_its_deposit_back_status() {
        let (proof, fields) = proved(&ask(), Some(&found(Some("S"))), "10.50");
        assert_eq!(proof, Proof::Refunded);
        assert_eq!(fields.refund_status.as_deref(), Some("REFUND_SUCCESS"));
        let dback = fields.deposit_back_info.unwrap();
        assert_eq!(dback.dback_status.as_deref(), Some("S"));
        assert_eq!(dback.dback_amount.as_deref(), Some("10.50"));
        // Another amount than the worker's is for a person, not refunded.
        assert!(matches!(
            proved(&ask(), Some(&found(None)), "10.51").0,
            Proof::Disagrees { .. }
        ));
    }

    #[test]
    fn the_deposit_back_info_is_only_there_when_asked_and_set() {
        let (_, unset) = proved(&ask(), Some(&found(None)), "10.50");
        assert_eq!(unset.deposit_back_info, None);
        let unasked = QueryAsk {
            with_deposit_back: false,
            ..ask()
        };
        let (proof, fields) = proved(&unasked, Some(&found(Some("F"))), "10.50");
        assert_eq!(proof, Proof::Refunded);
        assert_eq!(fields.deposit_back_info, None);
    }

    #[test]
    fn a_refund_not_made_proves_not_yet_with_only_the_numbers() {
        let (proof, fields) = proved(&ask(), None, "10.50");
        assert_eq!(proof, Proof::NotYet);
        assert_eq!(fields.refund_amount, None);
        let v: Value = serde_json::from_str(&answer_json(&ask(), None)).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 4, "{keys:?}");
        assert_eq!(v["out_request_no"], "R-1");
        assert_eq!(v["code"], "10000");
    }
}
