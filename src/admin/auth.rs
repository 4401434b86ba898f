//! The operator page's credential: `Authorization: Bearer ADMIN_TOKEN`, or a
//! session cookie a browser gets by typing the token into `/login`.
//!
//! The cookie and the CSRF field are digests of the token with different
//! labels, so neither reveals it, both change when it is rotated, and the
//! server keeps no session state. The cookie is `HttpOnly` and
//! `SameSite=Strict`; every form that changes something also carries the CSRF
//! field. Comparisons take the same time whatever the input.

use axum::http::HeaderMap;
use md5::{Digest, Md5};

/// The cookie's name.
pub const COOKIE: &str = "rw_admin";

/// A label's digest of the token, lower-case hex.
fn digest(label: &str, token: &str) -> String {
    let mut h = Md5::new();
    h.update(label.as_bytes());
    h.update([0]);
    h.update(token.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The session cookie's value for this token.
pub fn session(token: &str) -> String {
    digest("refund-worker admin session", token)
}

/// The CSRF field every changing form carries.
pub fn csrf(token: &str) -> String {
    digest("refund-worker admin csrf", token)
}

/// Equal, in time that depends only on the lengths.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Whether a request carries the credential.
pub fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| same(given, token));
    let wanted = session(token);
    let cookie = headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .any(|(k, v)| k == COOKIE && same(v, &wanted));
    bearer || cookie
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef-token";

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_bearer_token_or_the_session_cookie_is_the_credential() {
        assert!(authorized(
            &headers(&[("authorization", format!("Bearer {TOKEN}"))]),
            TOKEN
        ));
        assert!(authorized(
            &headers(&[("cookie", format!("a=b; {COOKIE}={}", session(TOKEN)))]),
            TOKEN
        ));
        assert!(!authorized(&headers(&[]), TOKEN));
        assert!(!authorized(
            &headers(&[("authorization", "Bearer nope".into())]),
            TOKEN
        ));
        assert!(!authorized(
            &headers(&[("cookie", format!("{COOKIE}={TOKEN}"))]),
            TOKEN
        ));
        assert!(!authorized(
            &headers(&[(
                "cookie",
                format!("{COOKIE}={}", session("another-token-000"))
            )]),
            TOKEN
        ));
    }

    #[test]
    fn cookie_and_csrf_differ_and_hide_the_token() {
        assert_ne!(session(TOKEN), csrf(TOKEN));
        assert!(!session(TOKEN).contains(TOKEN));
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
