//! Reading and writing AMQP header values as text.

use lapin::types::{AMQPValue, FieldTable, LongString};

/// A header as text, when it is a string (or a number written as one).
pub fn get_text(headers: Option<&FieldTable>, name: &str) -> Option<String> {
    match headers?.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        AMQPValue::LongInt(n) => Some(n.to_string()),
        AMQPValue::LongLongInt(n) => Some(n.to_string()),
        AMQPValue::ShortInt(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Sets a header to a text value.
pub fn set_text(table: &mut FieldTable, name: &str, value: &str) {
    table.insert(
        name.into(),
        AMQPValue::LongString(LongString::from(value.as_bytes().to_vec())),
    );
}
