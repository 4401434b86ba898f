//! A result event's JSON (contract §4), written by the relay from what the
//! terminal transition stored (migration 32) and the refund's unchanging
//! fields. Pure. `metadata` is added after, as upstream's exact text
//! ([`super::payload`]); an event written before migration 32 goes out with
//! the JSON stored for it.

use serde::Serialize;
use uuid::Uuid;

use crate::domain::amount::format_fen;
use crate::storage::outbox::DueEvent;

/// The event's fields but `metadata`, in the contract's order.
#[derive(Debug, Serialize)]
pub struct Body<'a> {
    event: &'a str,
    event_id: Uuid,
    refund_id: &'a str,
    trade_no: &'a str,
    partner: &'a str,
    /// Yuan, exactly two decimals (integer arithmetic).
    amount: String,
    status: Option<&'a str>,
    code: Option<&'a str>,
    message: Option<&'a str>,
    source: Option<&'a str>,
    channel: Option<&'a str>,
    batch_no: Option<&'a str>,
    /// On the OpenAPI channel only (and there even when unset: `null`).
    #[serde(skip_serializing_if = "Option::is_none")]
    out_request_no: Option<Option<&'a str>>,
    /// Once an operator has retried the refund: its round.
    #[serde(skip_serializing_if = "Option::is_none")]
    retry: Option<i32>,
    /// UTC, milliseconds (cut, not rounded), `Z`.
    occurred_at: String,
}

/// The JSON of an event written since migration 32.
pub fn body(e: &DueEvent) -> Body<'_> {
    let openapi = e.channel.as_deref() == Some("openapi");
    Body {
        event: &e.routing_key,
        event_id: e.event_id,
        refund_id: &e.refund_id,
        trade_no: &e.trade_no,
        partner: &e.partner,
        amount: format_fen(e.amount_fen),
        status: e.status.as_deref(),
        code: e.code.as_deref(),
        message: e.message.as_deref(),
        source: e.source.as_deref(),
        channel: e.channel.as_deref(),
        batch_no: e.batch_no.as_deref(),
        out_request_no: openapi.then_some(e.out_request_no.as_deref()),
        retry: (e.round > 0).then_some(e.round),
        occurred_at: e.occurred_at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn due(channel: &str, round: i32) -> DueEvent {
        let at = Utc.with_ymd_and_hms(2026, 12, 8, 9, 30, 5).unwrap()
            + chrono::Duration::microseconds(123_987);
        DueEvent {
            event_id: Uuid::nil(),
            due_at: at,
            occurred_at: at,
            refund_id: "R-1".into(),
            routing_key: "refund.succeeded".into(),
            round,
            status: Some("succeeded".into()),
            code: Some("SUCCESS".into()),
            message: Some("refunded".into()),
            source: Some("notify".into()),
            batch_no: (channel == "mapi").then(|| "20261208000001".into()),
            channel: Some(channel.into()),
            out_request_no: (channel == "openapi").then(|| "R-1~1".into()),
            trade_no: "2026120822001400000000000001".into(),
            amount_fen: 100_005,
            partner: "2088101122136241".into(),
            legacy_body: None,
            metadata: "{}".into(),
        }
    }

    #[test]
    fn a_mapi_event_has_every_field_of_the_contract_but_the_openapi_ones() {
        let v = serde_json::to_value(body(&due("mapi", 0))).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "event": "refund.succeeded",
                "event_id": "00000000-0000-0000-0000-000000000000",
                "refund_id": "R-1",
                "trade_no": "2026120822001400000000000001",
                "partner": "2088101122136241",
                "amount": "1000.05",
                "status": "succeeded",
                "code": "SUCCESS",
                "message": "refunded",
                "source": "notify",
                "channel": "mapi",
                "batch_no": "20261208000001",
                "occurred_at": "2026-12-08T09:30:05.123Z",
            })
        );
    }

    #[test]
    fn an_openapi_event_carries_its_request_number_and_a_retried_one_its_round() {
        let v = serde_json::to_value(body(&due("openapi", 1))).unwrap();
        assert_eq!(v["out_request_no"], "R-1~1");
        assert_eq!(v["batch_no"], serde_json::Value::Null);
        assert_eq!(v["retry"], 1);
        let mut unset = due("openapi", 0);
        unset.out_request_no = None;
        let v = serde_json::to_value(body(&unset)).unwrap();
        assert!(v.as_object().unwrap().contains_key("out_request_no"));
        assert!(!v.as_object().unwrap().contains_key("retry"));
    }
}
