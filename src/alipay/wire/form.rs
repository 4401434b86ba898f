//! `application/x-www-form-urlencoded` in UTF-8, both ways.
//!
//! Owns the byte-exact encoding of what we send and the strict decoding of
//! what Alipay posts to us. Invariant: decoding an encoded form gives back the
//! very values that were signed, so the body and the signing string agree.
//! Decoding is strict (bad `%` escapes or invalid UTF-8 are errors) because a
//! lossy decode would silently change signed values.

use thiserror::Error;

/// Why a form body could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FormError {
    /// A `%` not followed by two hex digits.
    #[error("bad percent escape at byte {0}")]
    BadEscape(usize),
    /// The decoded bytes of a name or value are not UTF-8.
    #[error("decoded text is not UTF-8")]
    NotUtf8,
    /// A pair without a name, such as `=x`.
    #[error("a parameter has no name")]
    EmptyName,
}

/// Encodes name/value pairs as a form body, in the order given.
pub fn encode(pairs: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_component(k, &mut out);
        out.push('=');
        encode_component(v, &mut out);
    }
    out
}

/// Encodes one value for a form body or URL query, exactly once.
pub fn encode_value(value: &str) -> String {
    let mut out = String::new();
    encode_component(value, &mut out);
    out
}

/// Appends the form encoding of `s`: unreserved bytes as-is, space as `+`,
/// every other byte as `%XX` (the same set as the WHATWG form serializer).
fn encode_component(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0f)]));
            }
        }
    }
}

/// Decodes a form body into ordered pairs; empty segments (`a=1&&b=2`) are skipped.
pub fn decode(body: &[u8]) -> Result<Vec<(String, String)>, FormError> {
    let mut pairs = Vec::new();
    let mut offset = 0;
    for segment in body.split(|&b| b == b'&') {
        if !segment.is_empty() {
            let (name, value) = match segment.iter().position(|&b| b == b'=') {
                Some(eq) => (&segment[..eq], &segment[eq + 1..]),
                None => (segment, &segment[segment.len()..]),
            };
            let name = decode_component(name, offset)?;
            if name.is_empty() {
                return Err(FormError::EmptyName);
            }
            let value = decode_component(value, offset + name_len(segment))?;
            pairs.push((name, value));
        }
        offset += segment.len() + 1;
    }
    Ok(pairs)
}

/// Length of the name part of a segment plus its `=`, for error offsets.
fn name_len(segment: &[u8]) -> usize {
    segment
        .iter()
        .position(|&b| b == b'=')
        .map_or(segment.len(), |eq| eq + 1)
}

/// Decodes `+` and `%XX` in one name or value, then checks UTF-8.
fn decode_component(raw: &[u8], offset: usize) -> Result<String, FormError> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hi = raw.get(i + 1).and_then(|&c| hex_value(c));
                let lo = raw.get(i + 2).and_then(|&c| hex_value(c));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => bytes.push(hi << 4 | lo),
                    _ => return Err(FormError::BadEscape(offset + i)),
                }
                i += 2;
            }
            b => bytes.push(b),
        }
        i += 1;
    }
    String::from_utf8(bytes).map_err(|_| FormError::NotUtf8)
}

/// The value of one hex digit, either case.
fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reserved_characters_and_chinese_are_percent_encoded() {
        let body = encode(&pairs(&[("detail_data", "1^0.01^退款 a&b=c")]));
        assert_eq!(body, "detail_data=1%5E0.01%5E%E9%80%80%E6%AC%BE+a%26b%3Dc");
    }

    #[test]
    fn input_charset_keeps_its_capitals() {
        assert_eq!(
            encode(&pairs(&[("_input_charset", "UTF-8")])),
            "_input_charset=UTF-8"
        );
    }

    #[test]
    fn percent_escapes_decode_in_either_case() {
        let got = decode(b"a=%e9%80%80%E6%AC%BE&b=x+y").unwrap();
        assert_eq!(got, pairs(&[("a", "退款"), ("b", "x y")]));
    }

    #[test]
    fn a_name_without_equals_has_an_empty_value() {
        assert_eq!(decode(b"a&b=").unwrap(), pairs(&[("a", ""), ("b", "")]));
    }

    #[test]
    fn empty_segments_are_skipped() {
        assert_eq!(decode(b"&a=1&&").unwrap(), pairs(&[("a", "1")]));
    }

    #[test]
    fn a_broken_escape_is_an_error() {
        assert_eq!(decode(b"a=%zz"), Err(FormError::BadEscape(2)));
        assert_eq!(decode(b"a=%4"), Err(FormError::BadEscape(2)));
    }

    #[test]
    fn invalid_utf8_is_an_error_not_a_replacement_character() {
        assert_eq!(decode(b"a=%FF"), Err(FormError::NotUtf8));
    }

    #[test]
    fn a_pair_without_a_name_is_an_error() {
        assert_eq!(decode(b"=1"), Err(FormError::EmptyName));
    }

    proptest! {
        #[test]
        fn encoding_then_decoding_returns_the_same_pairs(
            p in prop::collection::vec(("[a-z_]{1,8}", "\\PC{0,16}"), 0..6)
        ) {
            let body = encode(&p);
            prop_assert_eq!(decode(body.as_bytes()).unwrap(), p.clone());
            // serde_urlencoded is the reference decoder the rest of the world uses.
            let reference: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap();
            prop_assert_eq!(reference, p);
        }
    }
}
