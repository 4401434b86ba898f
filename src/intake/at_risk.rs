//! Deliveries near the queue's delivery limit, and the small windows that
//! store them first.
//!
//! The broker counts a delivery each time it takes one back unacked, and
//! RabbitMQ before 4.3 counts it when a worker dies or its connection is cut,
//! not only when it is refused. A crash loop or a storm of broker cuts then
//! walks valid events towards the limit although nothing is wrong with them;
//! at the limit they are dead-lettered (`delivery_limit`) instead of stored.
//! Events handed back come first to the next consumer, so storing them in
//! small windows stores and acks them within a moment of a session starting,
//! instead of after the windows of hundreds that a busy session keeps in
//! flight. A window that holds one handed back even once is cut at
//! [`AT_RISK_WINDOW`].
//!
//! Pure: reads the delivery's header and redelivery flag only.

use lapin::message::Delivery;
use lapin::types::FieldTable;

use crate::amqp::headers::get_count;
use crate::amqp::topology::{DELIVERY_COUNT_HEADER, DELIVERY_LIMIT};

/// Handed back this many times, a delivery is at risk (the limit is
/// [`crate::amqp::topology::DELIVERY_LIMIT`]): from the first, so it has
/// four more deliveries to be stored in.
pub const AT_RISK_FROM: u64 = 1;
/// The most deliveries in a window that holds one at risk.
pub const AT_RISK_WINDOW: usize = 50;

const _: () = assert!(
    AT_RISK_FROM as i32 + 2 <= DELIVERY_LIMIT,
    "a delivery at risk must still have deliveries to spare"
);

/// How many times the broker has taken this delivery back.
pub fn times_returned(d: &Delivery) -> u64 {
    count(d.properties.headers().as_ref(), d.redelivered)
}

/// The delivery-count header, or one when the delivery only says it was
/// redelivered (a classic queue, or a broker that does not count).
fn count(headers: Option<&FieldTable>, redelivered: bool) -> u64 {
    get_count(headers, DELIVERY_COUNT_HEADER).unwrap_or(u64::from(redelivered))
}

/// The most deliveries a window may hold once it holds one handed back
/// `returned` times, for windows of `window`.
pub fn window_cap(returned: u64, window: usize) -> usize {
    if returned >= AT_RISK_FROM {
        window.min(AT_RISK_WINDOW)
    } else {
        window
    }
}

#[cfg(test)]
mod tests {
    use lapin::types::AMQPValue;

    use super::*;

    fn headers(count: AMQPValue) -> FieldTable {
        let mut h = FieldTable::default();
        h.insert(DELIVERY_COUNT_HEADER.into(), count);
        h
    }

    #[test]
    fn the_count_comes_from_the_header_or_the_redelivered_flag() {
        assert_eq!(count(None, false), 0);
        assert_eq!(count(None, true), 1);
        assert_eq!(count(Some(&FieldTable::default()), true), 1);
        assert_eq!(count(Some(&headers(AMQPValue::LongLongInt(3))), true), 3);
        assert_eq!(count(Some(&headers(AMQPValue::LongInt(4))), true), 4);
        // Unreadable: the flag is all there is.
        assert_eq!(count(Some(&headers(AMQPValue::Boolean(true))), true), 1);
    }

    #[test]
    fn a_window_holding_one_at_risk_is_cut_small() {
        assert_eq!(window_cap(0, 500), 500);
        assert_eq!(window_cap(AT_RISK_FROM, 500), AT_RISK_WINDOW);
        assert_eq!(window_cap(9, 500), AT_RISK_WINDOW);
        assert_eq!(window_cap(9, 10), 10, "never larger than the window");
    }
}
