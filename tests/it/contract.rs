//! The JSON Schemas of docs/contract/ against the code: every event the
//! worker accepts validates as a refund-approved event, and every result
//! event the worker writes validates as a result event, so the documents
//! cannot drift from what runs.

use serde_json::Value;

fn schema(name: &str) -> jsonschema::Validator {
    let path = format!("{}/docs/contract/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

/// Panics with every violation when `event` is not a valid result event.
pub fn assert_result_event(event: &Value) {
    let v = schema("result-event.schema.json");
    let errors: Vec<String> = v.iter_errors(event).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{event}\nviolates the result-event schema: {errors:?}"
    );
}

struct Demo;

impl refund_worker::domain::refund_request::Partners for Demo {
    fn default_partner(&self) -> Option<&str> {
        Some("2088101122136241")
    }
    fn is_configured(&self, partner: &str) -> bool {
        ["2088101122136241", "2088000000000009"].contains(&partner)
    }
}

#[test]
fn every_sample_event_the_worker_accepts_validates_and_the_malformed_ones_do_not() {
    let v = schema("refund-approved.schema.json");
    let root = env!("CARGO_MANIFEST_DIR");
    let mut accepted = 0;
    for file in ["sample-events.jsonl", "sample-events-openapi.jsonl"] {
        let text = std::fs::read_to_string(format!("{root}/deploy/{file}")).unwrap();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let parsed = refund_worker::domain::refund_request::parse(line.as_bytes(), &Demo);
            let json: Option<Value> = serde_json::from_str(line).ok();
            match (parsed, json) {
                (Ok(_), Some(json)) => {
                    let errors: Vec<String> = v.iter_errors(&json).map(|e| e.to_string()).collect();
                    assert!(errors.is_empty(), "{line}: {errors:?}");
                    accepted += 1;
                }
                (Err(_), Some(json)) => assert!(!v.is_valid(&json), "the schema accepts {line}"),
                (Err(_), None) => {}
                (Ok(_), None) => panic!("accepted but not JSON: {line}"),
            }
        }
    }
    assert_eq!(
        accepted, 27,
        "20 valid + duplicate + conflicting, 5 OpenAPI"
    );
    // What the worker refuses for its shape, the schema refuses too.
    for bad in [
        r#"{"refund_id":"R 1","trade_no":"2026112521001004000000000001","amount":"1.00"}"#,
        r#"{"refund_id":"R-1","trade_no":"12345","amount":"1.00"}"#,
        r#"{"refund_id":"R-1","trade_no":"2026112521001004000000000001","amount":"01.00"}"#,
        r#"{"refund_id":"R-1","trade_no":"2026112521001004000000000001","amount":0}"#,
        r#"{"refund_id":"R-1","trade_no":"2026112521001004000000000001","amount":"1.00","currency":"USD"}"#,
        r#"{"refund_id":"R-1","trade_no":"2026112521001004000000000001","amount":"1.00","metadata":[1]}"#,
        r#"{"refund_id":"R-1","trade_no":"2026112521001004000000000001"}"#,
    ] {
        assert!(
            refund_worker::domain::refund_request::parse(bad.as_bytes(), &Demo).is_err(),
            "{bad}"
        );
        let json: Value = serde_json::from_str(bad).unwrap();
        assert!(!v.is_valid(&json), "the schema accepts {bad}");
    }
}

#[test]
fn a_result_event_missing_a_field_or_on_the_wrong_channel_is_refused() {
    let good: Value = serde_json::json!({
        "event": "refund.succeeded", "event_id": "0b6f0a9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
        "refund_id": "R-1", "status": "succeeded", "code": "SUCCESS", "message": "refunded",
        "trade_no": "2026112521001004000000000001", "amount": "10.50",
        "partner": "2088101122136241", "batch_no": "20261125000000001234", "source": "notify",
        "occurred_at": "2026-11-25T08:00:01.123Z", "metadata": {}, "channel": "mapi"
    });
    assert_result_event(&good);
    let v = schema("result-event.schema.json");
    for field in ["event_id", "amount", "channel", "metadata", "batch_no"] {
        let mut e = good.clone();
        e.as_object_mut().unwrap().remove(field);
        assert!(!v.is_valid(&e), "valid without {field}");
    }
    let mut openapi = good.clone();
    openapi["channel"] = "openapi".into();
    assert!(!v.is_valid(&openapi), "OpenAPI without out_request_no");
    openapi["out_request_no"] = "R-1".into();
    assert!(!v.is_valid(&openapi), "OpenAPI with a batch_no");
    openapi["batch_no"] = Value::Null;
    assert_result_event(&openapi);
}
