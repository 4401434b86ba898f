//! The bytes of a result event on the wire: its body ([`super::body`], or
//! the JSON stored for an event written before migration 32) with
//! `metadata` spliced in as the exact text upstream sent, so key order
//! and number text come back unchanged (JSONB and `serde_json::Value` would
//! reorder keys and pass numbers through f64). Pure.

use serde_json::value::RawValue;

/// `body` (an object without `metadata`) with `"metadata": <metadata>` last.
/// Text that is not a JSON object (intake never stores such) becomes `{}`.
pub fn payload<B: serde::Serialize + ?Sized>(
    body: &B,
    metadata: &str,
) -> serde_json::Result<Vec<u8>> {
    let metadata = match serde_json::from_str::<&RawValue>(metadata) {
        Ok(raw) if raw.get().trim_start().starts_with('{') => raw.get(),
        _ => "{}",
    };
    let mut out = serde_json::to_vec(body)?;
    // A serialized object ends with `}`; an empty one is `{}`.
    if out.pop() != Some(b'}') {
        return Err(serde::ser::Error::custom(
            "the event body is not a JSON object",
        ));
    }
    if out.len() > 1 {
        out.push(b',');
    }
    out.extend_from_slice(br#""metadata":"#);
    out.extend_from_slice(metadata.as_bytes());
    out.push(b'}');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_comes_back_byte_for_byte_with_its_key_order_and_numbers() {
        let sent = r#"{"zeta": 1, "alpha": 12345678901234567890123, "pi": 3.14159265358979323846264338327950288}"#;
        let body = serde_json::json!({"event": "refund.succeeded", "amount": "1.00"});
        let bytes = payload(&body, sent).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.ends_with(&format!(r#""metadata":{sent}}}"#)), "{text}");
        // Still one JSON object with every field.
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["event"], "refund.succeeded");
        assert!(v["metadata"].is_object());
    }

    #[test]
    fn text_that_is_not_an_object_becomes_empty_and_a_non_object_body_is_an_error() {
        let body = serde_json::json!({"event": "x"});
        for bad in ["", "[1]", "nope", "1"] {
            let v: serde_json::Value =
                serde_json::from_slice(&payload(&body, bad).unwrap()).unwrap();
            assert_eq!(v["metadata"], serde_json::json!({}), "{bad:?}");
        }
        assert!(payload(&serde_json::json!([1]), "{}").is_err());
        let empty: serde_json::Value =
            serde_json::from_slice(&payload(&serde_json::json!({}), "{}").unwrap()).unwrap();
        assert_eq!(empty, serde_json::json!({"metadata": {}}));
    }
}
