//! The session cookie and the CSRF field bound to it. Pure: the clock, the
//! key and the nonce are given.
//!
//! The cookie is `name|expires|nonce|mac`: the operator's name, the Unix
//! second it ends, 16 random bytes and HMAC-SHA256 under the server key of
//! all three plus the SHA-256 of the operator's current token (base64url).
//! So it cannot be made or altered without the key, it ends by itself, and a
//! new token ends every session of its operator. The server keeps no session
//! state: signing out clears the cookie in the browser, and a copy of a
//! cookie stays good until it expires or the key changes (at every start).
//!
//! The CSRF field is HMAC-SHA256(key, `csrf|` + cookie): only a page served
//! to that session has it, and another session's field is refused.
//! Comparisons of MACs take constant time (`hmac`'s `verify_slice`).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::roster::{Roster, TokenDigest};

type HmacSha256 = Hmac<Sha256>;

/// The HMAC key of sessions and CSRF fields (one block of SHA-256).
pub struct ServerKey([u8; 64]);

impl ServerKey {
    /// A fresh key from the operating system's randomness (through the
    /// thread's CSPRNG): sessions of an earlier start are not valid here.
    pub fn random() -> Self {
        Self(rand::random())
    }

    #[cfg(test)]
    pub fn from_bytes(bytes: [u8; 64]) -> Self {
        Self(bytes)
    }

    fn mac(&self, label: &str, text: &str) -> HmacSha256 {
        let mut m = HmacSha256::new(&self.0.into());
        m.update(label.as_bytes());
        m.update(b"|");
        m.update(text.as_bytes());
        m
    }
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerKey(***)")
    }
}

/// Why a cookie is not a session (for the log; the answer is the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not four fields, or a field that does not parse.
    Malformed,
    /// No operator by that name (any more).
    UnknownOperator,
    /// Made with another key or token, or altered.
    Forged,
    Expired,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "malformed",
            Self::UnknownOperator => "unknown operator",
            Self::Forged => "wrong MAC (another key or token, or altered)",
            Self::Expired => "expired",
        })
    }
}

/// What the MAC covers: everything in the cookie but the MAC, and the token.
fn signed_text(name: &str, expires: u64, nonce: &str, token: &TokenDigest) -> String {
    let token: String = token.iter().map(|b| format!("{b:02x}")).collect();
    format!("{name}|{expires}|{nonce}|{token}")
}

/// A session cookie's value for `name`, ending at Unix second `expires`.
pub fn issue(
    key: &ServerKey,
    name: &str,
    token: &TokenDigest,
    expires: u64,
    nonce: &[u8; 16],
) -> String {
    let nonce = B64.encode(nonce);
    let tag = key
        .mac("session", &signed_text(name, expires, &nonce, token))
        .finalize()
        .into_bytes();
    format!("{name}|{expires}|{nonce}|{}", B64.encode(tag))
}

/// The operator a cookie value signs in, if it is valid at Unix second `now`.
pub fn verify<'r>(
    key: &ServerKey,
    roster: &'r Roster,
    value: &str,
    now: u64,
) -> Result<&'r str, Refusal> {
    let fields: Vec<&str> = value.split('|').collect();
    let [name, expires, nonce, tag] = fields[..] else {
        return Err(Refusal::Malformed);
    };
    let expires: u64 = expires.parse().map_err(|_| Refusal::Malformed)?;
    let tag = B64.decode(tag).map_err(|_| Refusal::Malformed)?;
    let Some((operator, token)) = roster.entry(name) else {
        return Err(Refusal::UnknownOperator);
    };
    key.mac("session", &signed_text(name, expires, nonce, token))
        .verify_slice(&tag)
        .map_err(|_| Refusal::Forged)?;
    if expires <= now {
        return Err(Refusal::Expired);
    }
    Ok(operator)
}

/// The CSRF field of the session whose cookie value this is.
pub fn csrf(key: &ServerKey, cookie: &str) -> String {
    B64.encode(key.mac("csrf", cookie).finalize().into_bytes())
}

/// Whether `given` is the CSRF field of this session, in constant time.
pub fn csrf_ok(key: &ServerKey, cookie: &str, given: &str) -> bool {
    match B64.decode(given) {
        Ok(tag) => key.mac("csrf", cookie).verify_slice(&tag).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::roster::digest;
    use super::super::roster::tests::roster;
    use super::*;

    const ALICE: &str = "alice-token-0123456789";
    const NOW: u64 = 1_796_000_000;

    fn key() -> ServerKey {
        ServerKey::from_bytes([7; 64])
    }

    fn alice_cookie(expires: u64) -> String {
        issue(&key(), "alice", &digest(ALICE), expires, &[1; 16])
    }

    fn people() -> Roster {
        roster(&[("alice", ALICE), ("bob", "bob-token-0123456789ab")])
    }

    #[test]
    fn a_cookie_signs_its_operator_in_until_it_expires() {
        let c = alice_cookie(NOW + 60);
        assert_eq!(c.split('|').count(), 4);
        assert!(c.starts_with(&format!("alice|{}|", NOW + 60)));
        assert!(!c.contains(ALICE));
        assert_eq!(verify(&key(), &people(), &c, NOW), Ok("alice"));
        assert_eq!(verify(&key(), &people(), &c, NOW + 59), Ok("alice"));
        assert_eq!(
            verify(&key(), &people(), &c, NOW + 60),
            Err(Refusal::Expired)
        );
        assert_eq!(
            verify(&key(), &people(), &alice_cookie(NOW - 1), NOW),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn a_tampered_name_expiry_or_mac_is_refused() {
        let c = alice_cookie(NOW + 60);
        let bob = c.replacen("alice", "bob", 1);
        assert_eq!(verify(&key(), &people(), &bob, NOW), Err(Refusal::Forged));
        let later = c.replacen(&(NOW + 60).to_string(), &(NOW + 9999).to_string(), 1);
        assert_eq!(verify(&key(), &people(), &later, NOW), Err(Refusal::Forged));
        let (rest, tag) = c.rsplit_once('|').unwrap();
        let mut bytes = B64.decode(tag).unwrap();
        bytes[0] ^= 1;
        let flipped = format!("{rest}|{}", B64.encode(&bytes));
        assert_eq!(
            verify(&key(), &people(), &flipped, NOW),
            Err(Refusal::Forged)
        );
        let other_key = ServerKey::from_bytes([8; 64]);
        assert_eq!(verify(&other_key, &people(), &c, NOW), Err(Refusal::Forged));
        for junk in [
            "",
            "alice",
            "alice|1|n",
            "alice|x|n|t",
            "alice|1|n|@@",
            &format!("{c}|x"),
        ] {
            assert_eq!(
                verify(&key(), &people(), junk, NOW),
                Err(Refusal::Malformed),
                "{junk}"
            );
        }
        let carol = issue(
            &key(),
            "carol",
            &digest("carol-token-0123456"),
            NOW + 60,
            &[1; 16],
        );
        assert_eq!(
            verify(&key(), &people(), &carol, NOW),
            Err(Refusal::UnknownOperator)
        );
    }

    #[test]
    fn a_new_token_ends_the_operators_sessions() {
        let c = alice_cookie(NOW + 60);
        let rotated = roster(&[("alice", "alice-new-token-987654321")]);
        assert_eq!(verify(&key(), &rotated, &c, NOW), Err(Refusal::Forged));
    }

    #[test]
    fn the_csrf_field_belongs_to_one_session() {
        let mine = alice_cookie(NOW + 60);
        let other = issue(&key(), "alice", &digest(ALICE), NOW + 60, &[2; 16]);
        let field = csrf(&key(), &mine);
        assert!(csrf_ok(&key(), &mine, &field));
        assert!(!csrf_ok(&key(), &other, &field), "another session's field");
        assert!(!csrf_ok(&key(), &mine, &csrf(&key(), &other)));
        assert!(!csrf_ok(&key(), &mine, ""));
        assert!(!csrf_ok(&key(), &mine, "not base64!"));
        assert!(!csrf_ok(&ServerKey::from_bytes([8; 64]), &mine, &field));
        assert_ne!(
            field,
            mine.rsplit_once('|').unwrap().1,
            "not the cookie's MAC"
        );
    }
}
