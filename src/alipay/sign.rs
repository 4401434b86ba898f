//! MD5 signing and verification of mapi parameters.
//!
//! Owns the one canonical signing string: every parameter except `sign` and
//! `sign_type`, empty values dropped, sorted by name in byte order, joined as
//! `k=v&k=v` with raw (not URL-encoded) values. The key is appended with no
//! separator. Invariant: a request we send and a notification we receive are
//! signed and checked by the same function, so they cannot drift apart.

use md5::{Digest, Md5};

/// Names that never take part in the signing string.
const UNSIGNED: [&str; 2] = ["sign", "sign_type"];

/// Builds the string Alipay signs: the canonical form described in the module docs.
pub fn signing_string(params: &[(String, String)]) -> String {
    let mut kept: Vec<&(String, String)> = params
        .iter()
        .filter(|(k, v)| !v.is_empty() && !UNSIGNED.contains(&k.as_str()))
        .collect();
    // Sorting by value as well as name only matters for duplicated names,
    // which Alipay never sends; it makes the string deterministic anyway.
    kept.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()).then(a.1.cmp(&b.1)));
    let mut out = String::new();
    for (i, (k, v)) in kept.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Signs parameters with the partner's MD5 key: 32 lower-case hex digits.
pub fn sign(params: &[(String, String)], key: &str) -> String {
    let mut data = signing_string(params);
    data.push_str(key);
    lower_hex(&Md5::digest(data.as_bytes()))
}

/// Checks the `sign` parameter against our own signature of the other parameters.
///
/// False when `sign` is missing or repeated, when `sign_type` is present and
/// is not MD5, or when the signature differs.
pub fn verify(params: &[(String, String)], key: &str) -> bool {
    let mut signs = params.iter().filter(|(k, _)| k == "sign");
    let received = match (signs.next(), signs.next()) {
        (Some((_, v)), None) => v,
        // Two `sign` values would leave us choosing which one to believe.
        _ => return false,
    };
    let sign_type_ok = params
        .iter()
        .filter(|(k, _)| k == "sign_type")
        .all(|(_, v)| v.eq_ignore_ascii_case("MD5"));
    if !sign_type_ok {
        return false;
    }
    // Hex case carries no information: both spellings name the same 16 bytes,
    // so accepting upper case weakens nothing. Alipay sends lower case, but a
    // proxy or SDK that upper-cases it should not make a genuine message fail.
    let received = received.to_ascii_lowercase();
    let expected = sign(params, key);
    constant_time_eq(received.as_bytes(), expected.as_bytes())
}

/// Compares two byte strings without an early exit on the first difference,
/// so timing does not reveal how much of a forged signature was right.
/// The length is public (always 32 for MD5 hex), so it may return early.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimiser from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

/// Formats bytes as lower-case hex.
fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn signed(pairs: &[(&str, &str)], key: &str) -> Vec<(String, String)> {
        let mut params = p(pairs);
        let s = sign(&params, key);
        params.push(("sign_type".into(), "MD5".into()));
        params.push(("sign".into(), s));
        params
    }

    #[test]
    fn partner_and_service_sign_to_the_published_answer() {
        let params = p(&[("service", "test"), ("partner", "123")]);
        assert_eq!(signing_string(&params), "partner=123&service=test");
        assert_eq!(
            sign(&params, "10000000000000000000000000000000"),
            "bbd13b52823b576291595f472ebcfbc2"
        );
    }

    #[test]
    fn empty_values_are_dropped_before_the_published_answer() {
        let params = p(&[
            ("ggg", "1"),
            ("dd", ""),
            ("ccc", "3333"),
            ("aaa", "111"),
            ("bbb", "2222"),
        ]);
        assert_eq!(signing_string(&params), "aaa=111&bbb=2222&ccc=3333&ggg=1");
        assert_eq!(sign(&params, "hello"), "7e63e20bcc6ad2ba695305e340592ffd");
    }

    #[test]
    fn sign_and_sign_type_are_left_out_of_the_signing_string() {
        let params = p(&[("b", "2"), ("sign", "x"), ("sign_type", "MD5"), ("a", "1")]);
        assert_eq!(signing_string(&params), "a=1&b=2");
    }

    #[test]
    fn input_charset_sorts_first_and_values_stay_raw() {
        let params = p(&[
            ("detail_data", "1^0.01^退款 &x"),
            ("_input_charset", "UTF-8"),
        ]);
        assert_eq!(
            signing_string(&params),
            "_input_charset=UTF-8&detail_data=1^0.01^退款 &x"
        );
    }

    #[test]
    fn a_correctly_signed_message_verifies() {
        assert!(verify(&signed(&[("a", "1"), ("b", "2")], "k"), "k"));
    }

    #[test]
    fn a_changed_value_fails_verification() {
        let mut params = signed(&[("a", "1"), ("b", "2")], "k");
        params[0].1 = "9".into();
        assert!(!verify(&params, "k"));
    }

    #[test]
    fn an_added_parameter_fails_verification() {
        let mut params = signed(&[("a", "1")], "k");
        params.push(("c".into(), "3".into()));
        assert!(!verify(&params, "k"));
    }

    #[test]
    fn an_added_empty_parameter_still_verifies_because_empty_values_are_unsigned() {
        let mut params = signed(&[("a", "1")], "k");
        params.push(("c".into(), String::new()));
        assert!(verify(&params, "k"));
    }

    #[test]
    fn the_wrong_key_fails_verification() {
        assert!(!verify(&signed(&[("a", "1")], "k"), "other"));
    }

    #[test]
    fn an_upper_case_signature_is_accepted() {
        let mut params = signed(&[("a", "1")], "k");
        let last = params.len() - 1;
        params[last].1 = params[last].1.to_ascii_uppercase();
        assert!(verify(&params, "k"));
    }

    #[test]
    fn a_missing_signature_fails_verification() {
        assert!(!verify(&p(&[("a", "1")]), "k"));
    }

    #[test]
    fn a_repeated_signature_fails_verification() {
        let mut params = signed(&[("a", "1")], "k");
        let s = params[params.len() - 1].1.clone();
        params.push(("sign".into(), s));
        assert!(!verify(&params, "k"));
    }

    #[test]
    fn a_sign_type_other_than_md5_fails_verification() {
        let mut params = signed(&[("a", "1")], "k");
        params[1].1 = "RSA".into();
        assert!(!verify(&params, "k"));
    }

    #[test]
    fn a_truncated_signature_fails_verification() {
        let mut params = signed(&[("a", "1")], "k");
        let last = params.len() - 1;
        params[last].1.pop();
        assert!(!verify(&params, "k"));
    }

    fn param_map() -> impl Strategy<Value = BTreeMap<String, String>> {
        prop::collection::btree_map("[a-z_]{1,10}", "\\PC{0,12}", 1..8).prop_map(|mut m| {
            m.remove("sign");
            m.remove("sign_type");
            m
        })
    }

    proptest! {
        #[test]
        fn any_parameter_map_signs_and_verifies(map in param_map(), key in "[a-z0-9]{1,32}") {
            let mut params: Vec<(String, String)> = map.into_iter().collect();
            let s = sign(&params, &key);
            prop_assert_eq!(s.len(), 32);
            params.push(("sign".into(), s));
            prop_assert!(verify(&params, &key));
        }

        #[test]
        fn any_single_changed_value_fails_verification(
            map in param_map(),
            key in "[a-z0-9]{1,32}",
            pick in any::<prop::sample::Index>(),
            new_value in "\\PC{0,12}",
        ) {
            let mut params: Vec<(String, String)> = map.into_iter().collect();
            prop_assume!(!params.is_empty());
            let s = sign(&params, &key);
            let i = pick.index(params.len());
            prop_assume!(params[i].1 != new_value);
            params[i].1 = new_value;
            params.push(("sign".into(), s));
            prop_assert!(!verify(&params, &key));
        }
    }
}
