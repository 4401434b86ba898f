//! One dead letter as the tooling sees it: its place in the queue, the
//! message itself (properties and body, untouched) and what can be read from
//! them — `refund_id`, error code or `x-death` reason, when it was
//! dead-lettered, how often it was replayed, and where it came from.
//!
//! Pure: built from what the broker delivered, no I/O.

use chrono::{DateTime, TimeZone, Utc};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable};

use crate::amqp::headers::{get_count, get_text, value_text};
use crate::intake::dead_letter::{
    CODE_HEADER, DEAD_LETTERED_AT_HEADER, ORIGINAL_EXCHANGE_HEADER, ORIGINAL_ROUTING_KEY_HEADER,
    REASON_HEADER,
};

/// How many times `dlq replay` has sent this message back (header).
pub const REPLAY_COUNT_HEADER: &str = "x-replay-count";
/// When `dlq replay` last sent this message back, RFC 3339 (header).
pub const REPLAYED_AT_HEADER: &str = "x-replayed-at";
/// The broker's own dead-lettering history (header).
pub const X_DEATH_HEADER: &str = "x-death";

/// Where a dead letter was first published: replay sends it back there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub exchange: String,
    pub routing_key: String,
}

/// A dead letter and what its headers and body say.
#[derive(Debug, Clone)]
pub struct Letter {
    /// 1-based place in the queue when it was read.
    pub position: usize,
    pub properties: BasicProperties,
    pub body: Vec<u8>,
    pub message_id: Option<String>,
    /// The body's `refund_id` when the body is a JSON object with a string one.
    pub refund_id: Option<String>,
    /// `x-refund-error-code`, else the reason of the latest `x-death` entry.
    pub code: Option<String>,
    /// `x-refund-error`, else a sentence built from the latest `x-death` entry.
    pub reason: Option<String>,
    /// `x-dead-lettered-at`, else the time of the latest `x-death` entry.
    pub dead_lettered_at: Option<DateTime<Utc>>,
    /// `x-replay-count`, read leniently (any integer or text); 0 when absent.
    pub replay_count: u64,
    /// `x-original-exchange` + `x-original-routing-key`, else the latest
    /// `x-death` entry's `exchange` and first `routing-keys`.
    pub origin: Option<Origin>,
}

impl Letter {
    pub fn new(position: usize, properties: BasicProperties, body: Vec<u8>) -> Self {
        let headers = properties.headers().as_ref();
        let death = latest_death(headers);
        let message_id = properties
            .message_id()
            .as_ref()
            .map(|m| m.as_str().to_owned());
        let code =
            get_text(headers, CODE_HEADER).or_else(|| death.and_then(|d| table_text(d, "reason")));
        let reason = get_text(headers, REASON_HEADER).or_else(|| death.map(death_sentence));
        let dead_lettered_at = get_text(headers, DEAD_LETTERED_AT_HEADER)
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.to_utc())
            .or_else(|| death.and_then(death_time));
        let replay_count = get_count(headers, REPLAY_COUNT_HEADER).unwrap_or(0);
        let origin = header_origin(headers).or_else(|| death.and_then(death_origin));
        Self {
            position,
            refund_id: refund_id_of(&body),
            properties,
            body,
            message_id,
            code,
            reason,
            dead_lettered_at,
            replay_count,
            origin,
        }
    }

    /// The message's headers (empty when it has none).
    pub fn headers(&self) -> FieldTable {
        self.properties.headers().clone().unwrap_or_default()
    }
}

/// The `refund_id` of a JSON object body, if there is a string one.
fn refund_id_of(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("refund_id")?.as_str().map(str::to_owned)
}

/// The first `x-death` entry: RabbitMQ keeps the most recent one first.
fn latest_death(headers: Option<&FieldTable>) -> Option<&FieldTable> {
    match headers?.inner().get(X_DEATH_HEADER)? {
        AMQPValue::FieldArray(entries) => entries.as_slice().iter().find_map(|e| match e {
            AMQPValue::FieldTable(t) => Some(t),
            _ => None,
        }),
        _ => None,
    }
}

fn table_text(table: &FieldTable, name: &str) -> Option<String> {
    get_text(Some(table), name)
}

fn death_sentence(death: &FieldTable) -> String {
    let reason = table_text(death, "reason").unwrap_or_else(|| "unknown".into());
    match table_text(death, "queue") {
        Some(queue) => format!("dead-lettered by the broker ({reason}) from queue {queue}"),
        None => format!("dead-lettered by the broker ({reason})"),
    }
}

fn death_time(death: &FieldTable) -> Option<DateTime<Utc>> {
    match death.inner().get("time")? {
        AMQPValue::Timestamp(secs) => {
            let secs = i64::try_from(*secs).ok()?;
            Utc.timestamp_opt(secs, 0).single()
        }
        _ => None,
    }
}

fn header_origin(headers: Option<&FieldTable>) -> Option<Origin> {
    Some(Origin {
        exchange: get_text(headers, ORIGINAL_EXCHANGE_HEADER)?,
        routing_key: get_text(headers, ORIGINAL_ROUTING_KEY_HEADER)?,
    })
}

fn death_origin(death: &FieldTable) -> Option<Origin> {
    let exchange = table_text(death, "exchange")?;
    let routing_key = match death.inner().get("routing-keys")? {
        AMQPValue::FieldArray(keys) => keys.as_slice().iter().find_map(value_text)?,
        other => value_text(other)?,
    };
    Some(Origin {
        exchange,
        routing_key,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::amqp::headers::set_text;
    use lapin::types::{FieldArray, LongString};

    pub fn worker_letter(code: &str, at: &str, body: &str) -> Letter {
        let mut h = FieldTable::default();
        set_text(&mut h, CODE_HEADER, code);
        set_text(&mut h, REASON_HEADER, "why");
        set_text(&mut h, ORIGINAL_EXCHANGE_HEADER, "p.refunds");
        set_text(&mut h, ORIGINAL_ROUTING_KEY_HEADER, "refund.approved");
        set_text(&mut h, DEAD_LETTERED_AT_HEADER, at);
        let props = BasicProperties::default()
            .with_headers(h)
            .with_message_id(format!("m-{code}").into());
        Letter::new(1, props, body.as_bytes().to_vec())
    }

    pub fn x_death(reason: &str, time: u64) -> AMQPValue {
        let mut death = FieldTable::default();
        death.insert("count".into(), AMQPValue::LongLongInt(1));
        death.insert(
            "reason".into(),
            AMQPValue::LongString(LongString::from(reason)),
        );
        death.insert(
            "queue".into(),
            AMQPValue::LongString(LongString::from("p.refunds.approved")),
        );
        death.insert(
            "exchange".into(),
            AMQPValue::LongString(LongString::from("p.refunds")),
        );
        death.insert(
            "routing-keys".into(),
            AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::LongString(
                LongString::from("refund.approved"),
            )])),
        );
        death.insert("time".into(), AMQPValue::Timestamp(time));
        AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::FieldTable(death)]))
    }

    #[test]
    fn a_worker_dead_letter_is_read_from_its_headers() {
        let l = worker_letter(
            "invalid_amount",
            "2026-11-25T08:00:01.123Z",
            r#"{"refund_id":"R-1","amount":"1.001"}"#,
        );
        assert_eq!(l.message_id.as_deref(), Some("m-invalid_amount"));
        assert_eq!(l.refund_id.as_deref(), Some("R-1"));
        assert_eq!(l.code.as_deref(), Some("invalid_amount"));
        assert_eq!(l.reason.as_deref(), Some("why"));
        assert_eq!(
            l.dead_lettered_at.map(|t| t.timestamp_millis()),
            Some(1_795_593_601_123)
        );
        assert_eq!(l.replay_count, 0);
        assert_eq!(
            l.origin,
            Some(Origin {
                exchange: "p.refunds".into(),
                routing_key: "refund.approved".into()
            })
        );
    }

    #[test]
    fn a_broker_dead_letter_is_read_from_x_death() {
        let mut h = FieldTable::default();
        h.insert(
            X_DEATH_HEADER.into(),
            x_death("delivery_limit", 1_795_593_601),
        );
        let props = BasicProperties::default().with_headers(h);
        let l = Letter::new(3, props, b"not json".to_vec());
        assert_eq!(l.position, 3);
        assert_eq!(l.message_id, None);
        assert_eq!(l.refund_id, None);
        assert_eq!(l.code.as_deref(), Some("delivery_limit"));
        assert_eq!(
            l.reason.as_deref(),
            Some("dead-lettered by the broker (delivery_limit) from queue p.refunds.approved")
        );
        assert_eq!(
            l.dead_lettered_at.map(|t| t.timestamp()),
            Some(1_795_593_601)
        );
        assert_eq!(
            l.origin.map(|o| (o.exchange, o.routing_key)),
            Some(("p.refunds".into(), "refund.approved".into()))
        );
    }

    #[test]
    fn no_headers_means_no_origin_and_nothing_known() {
        let l = Letter::new(1, BasicProperties::default(), b"{}".to_vec());
        assert_eq!(l.origin, None);
        assert_eq!(l.code, None);
        assert_eq!(l.dead_lettered_at, None);
        assert_eq!(l.replay_count, 0);
    }

    #[test]
    fn half_an_origin_is_no_origin() {
        let mut h = FieldTable::default();
        set_text(&mut h, ORIGINAL_EXCHANGE_HEADER, "p.refunds");
        let l = Letter::new(1, BasicProperties::default().with_headers(h), vec![]);
        assert_eq!(l.origin, None);
    }

    #[test]
    fn the_replay_count_is_read_leniently() {
        let mut h = FieldTable::default();
        h.insert(
            REPLAY_COUNT_HEADER.into(),
            AMQPValue::LongString("5".into()),
        );
        let l = Letter::new(1, BasicProperties::default().with_headers(h), vec![]);
        assert_eq!(l.replay_count, 5);
    }
}
