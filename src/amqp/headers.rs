//! Reading and writing AMQP header values as text or counts.

use lapin::types::{AMQPValue, FieldTable, LongString};

/// A header as text, when it is a string (or a number written as one).
pub fn get_text(headers: Option<&FieldTable>, name: &str) -> Option<String> {
    match headers?.inner().get(name)? {
        AMQPValue::LongInt(n) => Some(n.to_string()),
        AMQPValue::LongLongInt(n) => Some(n.to_string()),
        AMQPValue::ShortInt(n) => Some(n.to_string()),
        other => value_text(other),
    }
}

/// A header as a count: any integer type or decimal text, read leniently
/// (brokers and clients differ in the integer type they write); negative
/// or unreadable is `None`.
pub fn get_count(headers: Option<&FieldTable>, name: &str) -> Option<u64> {
    count(headers?.inner().get(name)?)
}

/// A string value as text; any other type is `None`.
pub fn value_text(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn count(value: &AMQPValue) -> Option<u64> {
    match value {
        AMQPValue::ShortShortInt(n) => u64::try_from(*n).ok(),
        AMQPValue::ShortShortUInt(n) => Some(u64::from(*n)),
        AMQPValue::ShortInt(n) => u64::try_from(*n).ok(),
        AMQPValue::ShortUInt(n) => Some(u64::from(*n)),
        AMQPValue::LongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::LongUInt(n) => Some(u64::from(*n)),
        AMQPValue::LongLongInt(n) => u64::try_from(*n).ok(),
        AMQPValue::Timestamp(n) => Some(*n),
        AMQPValue::LongString(_) | AMQPValue::ShortString(_) => {
            value_text(value)?.trim().parse().ok()
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_read_leniently() {
        let cases = [
            (AMQPValue::LongLongInt(3), Some(3)),
            (AMQPValue::LongInt(2), Some(2)),
            (AMQPValue::ShortShortUInt(7), Some(7)),
            (AMQPValue::LongString(LongString::from(" 4 ")), Some(4)),
            (AMQPValue::LongInt(-1), None),
            (AMQPValue::LongString(LongString::from("x")), None),
            (AMQPValue::Boolean(true), None),
        ];
        for (value, want) in cases {
            assert_eq!(count(&value), want, "{value:?}");
            let mut h = FieldTable::default();
            h.insert("n".into(), value.clone());
            assert_eq!(get_count(Some(&h), "n"), want, "{value:?}");
        }
        assert_eq!(get_count(Some(&FieldTable::default()), "n"), None);
        assert_eq!(get_count(None, "n"), None);
    }
}
