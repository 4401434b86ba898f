//! Dead-lettering by the worker: the original body byte for byte, its
//! properties and headers, plus the `x-refund-error*` and `x-original-*`
//! headers of contract §3, published to the dead-letter exchange under the
//! original routing key. The original is acked only after the broker confirms.

use chrono::{DateTime, SecondsFormat, Utc};
use lapin::BasicProperties;

use crate::amqp::headers::set_text;
use crate::domain::Rejection;

pub const CODE_HEADER: &str = "x-refund-error-code";
pub const REASON_HEADER: &str = "x-refund-error";
pub const ORIGINAL_EXCHANGE_HEADER: &str = "x-original-exchange";
pub const ORIGINAL_ROUTING_KEY_HEADER: &str = "x-original-routing-key";
pub const DEAD_LETTERED_AT_HEADER: &str = "x-dead-lettered-at";

/// The original properties with the dead-letter headers added.
pub fn properties(
    original: &BasicProperties,
    exchange: &str,
    routing_key: &str,
    rejection: &Rejection,
    now: DateTime<Utc>,
) -> BasicProperties {
    let mut headers = original.headers().clone().unwrap_or_default();
    set_text(&mut headers, CODE_HEADER, rejection.code.as_str());
    set_text(&mut headers, REASON_HEADER, &rejection.message);
    set_text(&mut headers, ORIGINAL_EXCHANGE_HEADER, exchange);
    set_text(&mut headers, ORIGINAL_ROUTING_KEY_HEADER, routing_key);
    set_text(
        &mut headers,
        DEAD_LETTERED_AT_HEADER,
        &now.to_rfc3339_opts(SecondsFormat::Millis, true),
    );
    original.clone().with_headers(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amqp::headers::get_text;
    use crate::domain::ErrorCode;
    use lapin::types::FieldTable;

    #[test]
    fn the_original_headers_and_properties_survive_with_the_error_added() {
        let mut h = FieldTable::default();
        set_text(&mut h, "trace-id", "abc");
        let original = BasicProperties::default()
            .with_headers(h)
            .with_message_id("m-1".into())
            .with_delivery_mode(2);
        let r = Rejection::new(
            ErrorCode::InvalidAmount,
            "amount 1.001 has more than 2 decimals",
        );
        let now = DateTime::parse_from_rfc3339("2026-11-25T08:00:01.123Z")
            .unwrap()
            .to_utc();
        let p = properties(&original, "refunds", "refund.approved", &r, now);
        let h = p.headers().as_ref();
        assert_eq!(get_text(h, "trace-id").as_deref(), Some("abc"));
        assert_eq!(get_text(h, CODE_HEADER).as_deref(), Some("invalid_amount"));
        assert_eq!(
            get_text(h, REASON_HEADER).as_deref(),
            Some("amount 1.001 has more than 2 decimals")
        );
        assert_eq!(
            get_text(h, ORIGINAL_EXCHANGE_HEADER).as_deref(),
            Some("refunds")
        );
        assert_eq!(
            get_text(h, ORIGINAL_ROUTING_KEY_HEADER).as_deref(),
            Some("refund.approved")
        );
        assert_eq!(
            get_text(h, DEAD_LETTERED_AT_HEADER).as_deref(),
            Some("2026-11-25T08:00:01.123Z")
        );
        assert_eq!(p.message_id().as_ref().map(|m| m.as_str()), Some("m-1"));
        assert_eq!(*p.delivery_mode(), Some(2));
    }
}
