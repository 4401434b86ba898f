//! How dead letters and what was done to them are written for people and
//! for scripts: the `list` line and JSON object, the `show` page, the
//! outcome lines of `replay`/`purge`, and AMQP values as plain JSON.
//!
//! Bodies: UTF-8 text as it is; anything else as base64, always labelled.
//! Pure.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, SecondsFormat, Utc};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable};
use serde_json::{Map, Value, json};

use super::letter::{Letter, Origin};

/// What `replay` or `purge` did (or would do) to one dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Replayed(Origin),
    WouldReplay(Origin),
    Purged,
    WouldPurge,
    /// It stays in the dead-letter queue, for this reason.
    Left(String),
}

/// One line of a `replay` or `purge` report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub position: usize,
    pub message_id: Option<String>,
    pub refund_id: Option<String>,
    pub code: Option<String>,
    pub action: Action,
}

impl Outcome {
    pub fn of(letter: &Letter, action: Action) -> Self {
        Self {
            position: letter.position,
            message_id: letter.message_id.clone(),
            refund_id: letter.refund_id.clone(),
            code: letter.code.clone(),
            action,
        }
    }

    /// Whether the dead letter could not be handled (exit code 1).
    pub fn is_failure(&self) -> bool {
        matches!(self.action, Action::Left(_))
    }
}

fn or_dash(v: Option<&str>) -> &str {
    v.unwrap_or("-")
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The `list` line: position, message_id, refund_id, code, dead-lettered at, replays.
pub fn list_line(l: &Letter) -> String {
    format!(
        "#{:<5} message_id={}  refund_id={}  code={}  dead_lettered_at={}  replays={}",
        l.position,
        or_dash(l.message_id.as_deref()),
        or_dash(l.refund_id.as_deref()),
        or_dash(l.code.as_deref()),
        l.dead_lettered_at.map(time).as_deref().unwrap_or("-"),
        l.replay_count
    )
}

/// The `list --json` object (unknown values are `null`).
pub fn list_json(l: &Letter) -> Value {
    json!({
        "position": l.position,
        "message_id": l.message_id,
        "refund_id": l.refund_id,
        "code": l.code,
        "reason": l.reason,
        "dead_lettered_at": l.dead_lettered_at.map(time),
        "replay_count": l.replay_count,
    })
}

/// One line of a `replay`/`purge` report.
pub fn outcome_line(o: &Outcome) -> String {
    let who = format!(
        "#{} message_id={} refund_id={} code={}",
        o.position,
        or_dash(o.message_id.as_deref()),
        or_dash(o.refund_id.as_deref()),
        or_dash(o.code.as_deref())
    );
    match &o.action {
        Action::Replayed(to) => format!(
            "replayed      {who} -> exchange {} key {}",
            to.exchange, to.routing_key
        ),
        Action::WouldReplay(to) => format!(
            "would replay  {who} -> exchange {} key {}",
            to.exchange, to.routing_key
        ),
        Action::Purged => format!("purged        {who}"),
        Action::WouldPurge => format!("would purge   {who}"),
        Action::Left(why) => format!("LEFT IN QUEUE {who}: {why}"),
    }
}

/// A body as (encoding, text): `utf8` and the text, or `base64` and its encoding.
pub fn body_text(body: &[u8]) -> (&'static str, String) {
    match std::str::from_utf8(body) {
        Ok(text) => ("utf8", text.to_owned()),
        Err(_) => ("base64", BASE64.encode(body)),
    }
}

/// An AMQP value as plain JSON: numbers, strings, arrays and objects; bytes
/// that are not UTF-8 (and byte arrays) as `{"base64": …}`; floats and
/// decimals as strings (never through a float); timestamps as seconds.
pub fn value_json(v: &AMQPValue) -> Value {
    match v {
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::ShortShortInt(n) => json!(n),
        AMQPValue::ShortShortUInt(n) => json!(n),
        AMQPValue::ShortInt(n) => json!(n),
        AMQPValue::ShortUInt(n) => json!(n),
        AMQPValue::LongInt(n) => json!(n),
        AMQPValue::LongUInt(n) => json!(n),
        AMQPValue::LongLongInt(n) => json!(n),
        AMQPValue::Timestamp(n) => json!(n),
        AMQPValue::Float(x) => Value::String(x.to_string()),
        AMQPValue::Double(x) => Value::String(x.to_string()),
        AMQPValue::DecimalValue(d) => Value::String(format!("{}e-{}", d.value, d.scale)),
        AMQPValue::ShortString(s) => Value::String(s.as_str().to_owned()),
        AMQPValue::LongString(s) => match std::str::from_utf8(s.as_bytes()) {
            Ok(text) => Value::String(text.to_owned()),
            Err(_) => json!({ "base64": BASE64.encode(s.as_bytes()) }),
        },
        AMQPValue::ByteArray(b) => json!({ "base64": BASE64.encode(b.as_slice()) }),
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(value_json).collect()),
        AMQPValue::FieldTable(t) => Value::Object(table_json(t)),
        AMQPValue::Void => Value::Null,
    }
}

/// A header table as a JSON object.
pub fn table_json(t: &FieldTable) -> Map<String, Value> {
    t.inner()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), value_json(v)))
        .collect()
}

/// The properties that are set, except headers, as a JSON object.
pub fn properties_json(p: &BasicProperties) -> Map<String, Value> {
    let mut m = Map::new();
    let mut text = |name: &str, v: &Option<lapin::types::ShortString>| {
        if let Some(v) = v {
            m.insert(name.to_owned(), Value::String(v.as_str().to_owned()));
        }
    };
    text("content_type", p.content_type());
    text("content_encoding", p.content_encoding());
    text("correlation_id", p.correlation_id());
    text("reply_to", p.reply_to());
    text("expiration", p.expiration());
    text("message_id", p.message_id());
    text("type", p.kind());
    text("user_id", p.user_id());
    text("app_id", p.app_id());
    text("cluster_id", p.cluster_id());
    if let Some(v) = p.delivery_mode() {
        m.insert("delivery_mode".into(), json!(v));
    }
    if let Some(v) = p.priority() {
        m.insert("priority".into(), json!(v));
    }
    if let Some(v) = p.timestamp() {
        m.insert("timestamp".into(), json!(v));
    }
    m
}

/// The `show` page: what was read from it, every property and header, the body.
pub fn show_text(l: &Letter, of: usize) -> String {
    let mut out = String::new();
    let mut row = |k: &str, v: &str| {
        let _ = writeln!(out, "{k:<18}{v}");
    };
    row("position", &format!("{} of {of}", l.position));
    row("message_id", or_dash(l.message_id.as_deref()));
    row("refund_id", or_dash(l.refund_id.as_deref()));
    row("code", or_dash(l.code.as_deref()));
    row("reason", or_dash(l.reason.as_deref()));
    row(
        "dead_lettered_at",
        l.dead_lettered_at.map(time).as_deref().unwrap_or("-"),
    );
    row("replay_count", &l.replay_count.to_string());
    let origin = match &l.origin {
        Some(o) => format!("exchange {} key {}", o.exchange, o.routing_key),
        None => "unknown: replay would leave it in the queue".to_owned(),
    };
    row("replays to", &origin);
    let _ = writeln!(out, "properties");
    for (k, v) in properties_json(&l.properties) {
        let _ = writeln!(out, "  {k}: {}", scalar(&v));
    }
    let _ = writeln!(out, "headers");
    for (k, v) in table_json(&l.headers()) {
        let _ = writeln!(out, "  {k}: {}", scalar(&v));
    }
    let (encoding, body) = body_text(&l.body);
    let label = if encoding == "utf8" {
        "UTF-8"
    } else {
        "not UTF-8, shown as base64"
    };
    let _ = writeln!(out, "body ({} bytes, {label})", l.body.len());
    let _ = writeln!(out, "{body}");
    out
}

/// A JSON value on one line, strings without quotes.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlq::letter::tests::{worker_letter, x_death};
    use lapin::types::{ByteArray, LongString};

    fn letter() -> Letter {
        worker_letter(
            "invalid_amount",
            "2026-11-25T08:00:01.123Z",
            r#"{"refund_id":"R-1","amount":"1.001"}"#,
        )
    }

    #[test]
    fn a_list_line_has_every_column() {
        assert_eq!(
            list_line(&letter()),
            "#1     message_id=m-invalid_amount  refund_id=R-1  code=invalid_amount  \
             dead_lettered_at=2026-11-25T08:00:01.123Z  replays=0"
        );
        let bare = Letter::new(7, BasicProperties::default(), vec![0xff]);
        assert_eq!(
            list_line(&bare),
            "#7     message_id=-  refund_id=-  code=-  dead_lettered_at=-  replays=0"
        );
    }

    #[test]
    fn the_list_json_has_the_contract_fields() {
        let v = list_json(&letter());
        assert_eq!(
            v,
            json!({
                "position": 1,
                "message_id": "m-invalid_amount",
                "refund_id": "R-1",
                "code": "invalid_amount",
                "reason": "why",
                "dead_lettered_at": "2026-11-25T08:00:01.123Z",
                "replay_count": 0
            })
        );
        let bare = list_json(&Letter::new(2, BasicProperties::default(), vec![]));
        assert_eq!(bare["refund_id"], Value::Null);
        assert_eq!(bare["dead_lettered_at"], Value::Null);
    }

    #[test]
    fn outcome_lines_say_what_happened() {
        let l = letter();
        let to = l.origin.clone().unwrap();
        assert_eq!(
            outcome_line(&Outcome::of(&l, Action::Replayed(to))),
            "replayed      #1 message_id=m-invalid_amount refund_id=R-1 code=invalid_amount \
             -> exchange p.refunds key refund.approved"
        );
        let left = Outcome::of(&l, Action::Left("no origin".into()));
        assert!(left.is_failure());
        assert!(outcome_line(&left).starts_with("LEFT IN QUEUE #1 "));
        assert!(outcome_line(&left).ends_with(": no origin"));
        assert!(!Outcome::of(&l, Action::WouldPurge).is_failure());
    }

    #[test]
    fn bodies_are_text_when_they_can_be_and_base64_otherwise() {
        assert_eq!(body_text(b"{\"a\":1}"), ("utf8", "{\"a\":1}".to_owned()));
        assert_eq!(
            body_text(&[0xff, 0x00, 0x41]),
            ("base64", "/wBB".to_owned())
        );
    }

    #[test]
    fn amqp_values_become_plain_json() {
        let mut t = FieldTable::default();
        t.insert("n".into(), AMQPValue::LongInt(-3));
        t.insert("s".into(), AMQPValue::LongString(LongString::from("x")));
        t.insert(
            "raw".into(),
            AMQPValue::LongString(LongString::from(vec![0xffu8])),
        );
        t.insert(
            "bytes".into(),
            AMQPValue::ByteArray(ByteArray::from(vec![1u8, 2])),
        );
        t.insert("x-death".into(), x_death("delivery_limit", 5));
        t.insert("nothing".into(), AMQPValue::Void);
        let j = Value::Object(table_json(&t));
        assert_eq!(j["n"], json!(-3));
        assert_eq!(j["s"], json!("x"));
        assert_eq!(j["raw"], json!({"base64": "/w=="}));
        assert_eq!(j["bytes"], json!({"base64": "AQI="}));
        assert_eq!(j["x-death"][0]["reason"], json!("delivery_limit"));
        assert_eq!(j["x-death"][0]["routing-keys"], json!(["refund.approved"]));
        assert_eq!(j["x-death"][0]["time"], json!(5));
        assert_eq!(j["nothing"], Value::Null);
    }

    #[test]
    fn the_show_page_has_properties_headers_and_body() {
        let mut l = letter();
        l.properties = l
            .properties
            .clone()
            .with_content_type("application/json".into())
            .with_delivery_mode(2);
        let page = show_text(&l, 200);
        for want in [
            "position          1 of 200",
            "message_id        m-invalid_amount",
            "replays to        exchange p.refunds key refund.approved",
            "  content_type: application/json",
            "  delivery_mode: 2",
            "  x-refund-error-code: invalid_amount",
            "body (36 bytes, UTF-8)\n{\"refund_id\":\"R-1\",\"amount\":\"1.001\"}",
        ] {
            assert!(page.contains(want), "missing {want:?} in\n{page}");
        }
    }
}
