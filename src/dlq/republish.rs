//! What a replayed message carries: the dead letter's properties (message_id,
//! content type, other headers…) and body unchanged, minus the headers that
//! describe its death, plus `x-replayed-at` and `x-replay-count`.
//!
//! Stripped: the worker's `x-refund-error-code`, `x-refund-error`,
//! `x-dead-lettered-at`, `x-original-exchange`, `x-original-routing-key`; the
//! broker's `x-death`, `x-first-death-*`, `x-last-death-*`; and the dead
//! queue's `x-delivery-count`. The `x-original-*` pair goes too: it is where
//! the copy is being sent, and if it dies again it is dead-lettered afresh
//! with a new pair (or a new `x-death`), so nothing about its origin is lost.
//!
//! Pure.

use chrono::{DateTime, SecondsFormat, Utc};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable};

use super::letter::{Letter, REPLAY_COUNT_HEADER, REPLAYED_AT_HEADER, X_DEATH_HEADER};
use crate::amqp::headers::set_text;
use crate::amqp::topology::DELIVERY_COUNT_HEADER;
use crate::intake::dead_letter::{
    CODE_HEADER, DEAD_LETTERED_AT_HEADER, ORIGINAL_EXCHANGE_HEADER, ORIGINAL_ROUTING_KEY_HEADER,
    REASON_HEADER,
};

/// Headers a replayed copy does not carry.
pub const STRIPPED: [&str; 14] = [
    CODE_HEADER,
    REASON_HEADER,
    DEAD_LETTERED_AT_HEADER,
    ORIGINAL_EXCHANGE_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    X_DEATH_HEADER,
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
    DELIVERY_COUNT_HEADER,
    REPLAY_COUNT_HEADER,
];

/// The properties of the replayed copy of `letter`, sent at `now`.
/// Persistent (delivery mode 2) whatever the dead letter said.
pub fn replay_properties(letter: &Letter, now: DateTime<Utc>) -> BasicProperties {
    let kept: FieldTable = letter
        .headers()
        .inner()
        .iter()
        .filter(|(name, _)| !STRIPPED.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect::<std::collections::BTreeMap<_, _>>()
        .into();
    let mut headers = kept;
    set_text(
        &mut headers,
        REPLAYED_AT_HEADER,
        &now.to_rfc3339_opts(SecondsFormat::Millis, true),
    );
    let count = i64::try_from(letter.replay_count.saturating_add(1)).unwrap_or(i64::MAX);
    headers.insert(REPLAY_COUNT_HEADER.into(), AMQPValue::LongLongInt(count));
    letter
        .properties
        .clone()
        .with_headers(headers)
        .with_delivery_mode(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amqp::headers::get_text;
    use crate::dlq::letter::tests::{worker_letter, x_death};

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-26T09:30:00.5Z")
            .unwrap()
            .to_utc()
    }

    #[test]
    fn the_error_headers_go_the_rest_stays_and_the_replay_is_counted() {
        let mut l = worker_letter("invalid_amount", "2026-11-25T08:00:01.123Z", "{}");
        let mut h = l.headers();
        set_text(&mut h, "trace-id", "abc");
        h.insert(X_DEATH_HEADER.into(), x_death("delivery_limit", 1));
        h.insert("x-delivery-count".into(), AMQPValue::LongInt(4));
        l.properties = l
            .properties
            .clone()
            .with_headers(h)
            .with_content_type("application/json".into());
        let p = replay_properties(&l, now());
        let h = p.headers().clone().unwrap_or_default();
        for gone in STRIPPED.iter().filter(|n| **n != REPLAY_COUNT_HEADER) {
            assert!(!h.contains_key(gone), "{gone} should be stripped");
        }
        assert_eq!(get_text(Some(&h), "trace-id").as_deref(), Some("abc"));
        assert_eq!(
            get_text(Some(&h), REPLAYED_AT_HEADER).as_deref(),
            Some("2026-11-26T09:30:00.500Z")
        );
        assert_eq!(
            h.inner().get(REPLAY_COUNT_HEADER),
            Some(&AMQPValue::LongLongInt(1))
        );
        assert_eq!(
            p.message_id().as_ref().map(|m| m.as_str()),
            Some("m-invalid_amount")
        );
        assert_eq!(
            p.content_type().as_ref().map(|m| m.as_str()),
            Some("application/json")
        );
        assert_eq!(*p.delivery_mode(), Some(2));
    }

    #[test]
    fn the_count_goes_on_from_the_previous_one() {
        let mut l = worker_letter("invalid_amount", "2026-11-25T08:00:01.123Z", "{}");
        let mut h = l.headers();
        set_text(&mut h, REPLAY_COUNT_HEADER, "2");
        l = Letter::new(1, l.properties.clone().with_headers(h), l.body.clone());
        let p = replay_properties(&l, now());
        let h = p.headers().clone().unwrap_or_default();
        assert_eq!(
            h.inner().get(REPLAY_COUNT_HEADER),
            Some(&AMQPValue::LongLongInt(3))
        );
    }
}
