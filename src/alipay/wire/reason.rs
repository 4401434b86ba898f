//! The reason text we send Alipay (alipay-mapi.md, "Reasons").
//!
//! Owns turning an upstream reason into one Alipay can take:
//! `SINGLE_DETAIL_DATA_ENCODING_NOT_SUPPORT` refuses a whole batch over one
//! character its GBK side cannot encode. Invariants: what we send is
//! printable text every character of which GBK encodes (`encoding_rs`
//! decides); every other character becomes `?`; the result is never longer
//! than the original and never empty. The original stays in our records
//! (`refunds.reason`); the batch keeps what it sent.

use encoding_rs::GBK;

/// What stands in for a character that cannot be sent.
pub const REPLACEMENT: char = '?';

/// The reason as it is sent: printable, GBK-encodable.
pub fn sendable(reason: &str) -> String {
    let mut buf = [0u8; 4];
    let out: String = reason
        .chars()
        .map(|c| {
            let (_, _, unmappable) = GBK.encode(c.encode_utf8(&mut buf));
            if c.is_control() || unmappable {
                REPLACEMENT
            } else {
                c
            }
        })
        .collect();
    if out.is_empty() {
        REPLACEMENT.to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn chinese_latin_and_full_width_text_pass_unchanged() {
        for text in ["协商退款", "refund", "退款：订单 10086（部分）", "€5 off"] {
            assert_eq!(sendable(text), text);
        }
    }

    #[test]
    fn what_gbk_cannot_encode_becomes_a_question_mark() {
        assert_eq!(sendable("退款😀"), "退款?");
        assert_eq!(sendable("a\u{7}b"), "a?b");
        assert_eq!(sendable("한국어"), "???");
        assert_eq!(sendable(""), "?");
    }

    proptest! {
        #[test]
        fn the_result_always_encodes_in_gbk_and_is_never_longer(text in "\\PC{0,64}") {
            let sent = sendable(&text);
            let (_, _, unmappable) = GBK.encode(&sent);
            prop_assert!(!unmappable);
            prop_assert!(sent.len() <= text.len().max(1));
            prop_assert!(!sent.chars().any(char::is_control));
        }
    }
}
