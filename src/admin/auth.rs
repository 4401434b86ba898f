//! Who is asking: an operator's token as `Authorization: Bearer …` (scripts),
//! or the session cookie a browser gets by typing that token at `/login`.
//! Pure: the time is given.
//!
//! A bearer request names its operator by the token and needs no CSRF field
//! (a browser never adds that header by itself). A session's changing forms
//! carry the CSRF field bound to its cookie. The cookie is `HttpOnly`,
//! `SameSite=Strict`, `Path=/`, `Secure` with `ADMIN_SECURE_COOKIE`, and ends
//! after `ADMIN_SESSION_TTL`. Signing out clears it in the browser and
//! refuses it here from then on (a list of signed-out cookies, kept until
//! they would have expired: the key, and so every session, lives only as
//! long as the process).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::http::HeaderMap;

use super::roster::Roster;
use super::session::{self, Refusal, ServerKey};
use crate::config::AdminSettings;

/// The cookie's name.
pub const COOKIE: &str = "rw_admin";

/// What the page checks credentials against; built once at start.
pub struct Access {
    roster: Roster,
    key: ServerKey,
    ttl: Duration,
    secure: bool,
    /// Signed-out cookie values, each with when it would have expired.
    signed_out: Mutex<HashMap<String, u64>>,
}

/// A request's operator and how they proved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub name: String,
    pub via: Via,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Bearer,
    /// The session cookie's value.
    Session(String),
}

/// Why a request is not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// Neither a bearer token nor a session cookie.
    Nothing,
    /// A bearer token that is nobody's.
    WrongToken,
    /// A cookie that is no (longer a) session.
    Cookie(Refusal),
    /// A session that was signed out.
    SignedOut,
}

impl Access {
    /// The operators of the settings and a new random key.
    pub fn new(admin: &AdminSettings) -> Self {
        Self::with_key(admin, ServerKey::random())
    }

    pub fn with_key(admin: &AdminSettings, key: ServerKey) -> Self {
        Self {
            roster: Roster::new(&admin.operators),
            key,
            ttl: admin.session_ttl,
            secure: admin.secure_cookie,
            signed_out: Mutex::new(HashMap::new()),
        }
    }

    /// The operator whose token was typed at `/login`.
    pub fn sign_in(&self, token: &str) -> Option<&str> {
        self.roster.by_token(token.trim())
    }

    /// A new session of `name` from Unix second `now`: the `Set-Cookie` value.
    pub fn session_cookie(&self, name: &str, now: u64, nonce: &[u8; 16]) -> Option<String> {
        let (name, token) = self.roster.entry(name)?;
        let expires = now.saturating_add(self.ttl.as_secs());
        let value = session::issue(&self.key, name, token, expires, nonce);
        Some(format!(
            "{COOKIE}={value}; Max-Age={}; {}",
            self.ttl.as_secs(),
            self.attributes()
        ))
    }

    /// The `Set-Cookie` value that ends the session in the browser.
    pub fn cleared_cookie(&self) -> String {
        format!("{COOKIE}=; Max-Age=0; {}", self.attributes())
    }

    fn attributes(&self) -> &'static str {
        if self.secure {
            "HttpOnly; SameSite=Strict; Path=/; Secure"
        } else {
            "HttpOnly; SameSite=Strict; Path=/"
        }
    }

    /// Who sent these headers at Unix second `now`. A bearer header is
    /// tried first; a wrong one is refused even beside a good cookie.
    pub fn identify(&self, headers: &HeaderMap, now: u64) -> Result<Signed, Denied> {
        if let Some(given) = bearer(headers) {
            return match self.roster.by_token(given) {
                Some(name) => Ok(Signed {
                    name: name.to_owned(),
                    via: Via::Bearer,
                }),
                None => Err(Denied::WrongToken),
            };
        }
        let Some(value) = cookie(headers) else {
            return Err(Denied::Nothing);
        };
        let name = session::verify(&self.key, &self.roster, value, now).map_err(Denied::Cookie)?;
        if self.signed_out_list().contains_key(value) {
            return Err(Denied::SignedOut);
        }
        Ok(Signed {
            name: name.to_owned(),
            via: Via::Session(value.to_owned()),
        })
    }

    /// Ends a session here (its cookie is refused from now on); a bearer
    /// request has none to end.
    pub fn sign_out(&self, who: &Signed, now: u64) {
        if let Via::Session(value) = &who.via {
            let mut list = self.signed_out_list();
            list.retain(|_, expires| *expires > now);
            list.insert(value.clone(), now.saturating_add(self.ttl.as_secs()));
        }
    }

    fn signed_out_list(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.signed_out
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The CSRF field a page served to this request puts in its forms
    /// (empty for a bearer request, which needs none).
    pub fn csrf(&self, who: &Signed) -> String {
        match &who.via {
            Via::Bearer => String::new(),
            Via::Session(cookie) => session::csrf(&self.key, cookie),
        }
    }

    /// Whether a changing request may go on: a bearer request always, a
    /// session's only with its own CSRF field.
    pub fn csrf_ok(&self, who: &Signed, given: Option<&str>) -> bool {
        match &who.via {
            Via::Bearer => true,
            Via::Session(cookie) => given.is_some_and(|g| session::csrf_ok(&self.key, cookie, g)),
        }
    }
}

/// The bearer token of an `Authorization` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// The session cookie's value, if the request carries one.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, v)| *k == COOKIE && !v.is_empty())
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Operator;

    const ALICE: &str = "alice-token-0123456789";
    const BOB: &str = "bob-token-0123456789ab";
    const NOW: u64 = 1_796_000_000;

    fn settings(secure: bool) -> AdminSettings {
        AdminSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            operators: [("alice", ALICE), ("bob", BOB)]
                .iter()
                .map(|(n, t)| Operator {
                    name: (*n).into(),
                    token: (*t).to_owned().into(),
                })
                .collect(),
            session_ttl: Duration::from_secs(3600),
            secure_cookie: secure,
            legacy_token: false,
        }
    }

    fn access() -> Access {
        Access::with_key(&settings(false), ServerKey::from_bytes([3; 64]))
    }

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    /// The cookie's value out of a `Set-Cookie` line.
    fn value(set_cookie: &str) -> String {
        set_cookie
            .split(';')
            .next()
            .and_then(|kv| kv.split_once('='))
            .map(|(_, v)| v.to_owned())
            .unwrap()
    }

    #[test]
    fn a_bearer_token_names_its_operator_and_needs_no_csrf() {
        let a = access();
        let who = a
            .identify(&headers(&[("authorization", format!("Bearer {BOB}"))]), NOW)
            .unwrap();
        assert_eq!(who.name, "bob");
        assert_eq!(who.via, Via::Bearer);
        assert!(a.csrf_ok(&who, None));
        assert_eq!(a.csrf(&who), "");
        assert_eq!(
            a.identify(&headers(&[("authorization", "Bearer nope".into())]), NOW),
            Err(Denied::WrongToken)
        );
        assert_eq!(a.identify(&headers(&[]), NOW), Err(Denied::Nothing));
        assert_eq!(a.sign_in(&format!(" {ALICE}\n")), Some("alice"));
        assert_eq!(a.sign_in("alice"), None);
    }

    #[test]
    fn a_session_cookie_signs_in_until_its_time_and_needs_its_own_csrf() {
        let a = access();
        let set = a.session_cookie("alice", NOW, &[9; 16]).unwrap();
        assert!(
            set.ends_with("; Max-Age=3600; HttpOnly; SameSite=Strict; Path=/"),
            "{set}"
        );
        let h = headers(&[("cookie", format!("other=1; {COOKIE}={}", value(&set)))]);
        let who = a.identify(&h, NOW + 10).unwrap();
        assert_eq!(who.name, "alice");
        assert!(!a.csrf_ok(&who, None));
        assert!(!a.csrf_ok(&who, Some("guess")));
        assert!(a.csrf_ok(&who, Some(&a.csrf(&who))));
        let bobs = a.session_cookie("bob", NOW, &[9; 16]).unwrap();
        let bob = a
            .identify(
                &headers(&[("cookie", format!("{COOKIE}={}", value(&bobs)))]),
                NOW,
            )
            .unwrap();
        assert!(
            !a.csrf_ok(&who, Some(&a.csrf(&bob))),
            "bob's field for alice"
        );
        assert_eq!(
            a.identify(&h, NOW + 3600),
            Err(Denied::Cookie(Refusal::Expired))
        );
        let other_start = Access::with_key(&settings(false), ServerKey::from_bytes([4; 64]));
        assert_eq!(
            other_start.identify(&h, NOW + 10),
            Err(Denied::Cookie(Refusal::Forged))
        );
        assert_eq!(a.session_cookie("carol", NOW, &[9; 16]), None);
    }

    #[test]
    fn a_signed_out_session_is_refused_and_the_others_go_on() {
        let a = access();
        let cookie = |nonce: u8| {
            let set = a.session_cookie("alice", NOW, &[nonce; 16]).unwrap();
            headers(&[("cookie", format!("{COOKIE}={}", value(&set)))])
        };
        let (first, second) = (cookie(1), cookie(2));
        let who = a.identify(&first, NOW).unwrap();
        a.sign_out(&who, NOW);
        assert_eq!(a.identify(&first, NOW + 1), Err(Denied::SignedOut));
        assert_eq!(a.identify(&second, NOW + 1).unwrap().name, "alice");
    }

    #[test]
    fn the_cookie_is_secure_when_asked_and_clearing_it_ends_it_at_once() {
        let a = Access::with_key(&settings(true), ServerKey::from_bytes([3; 64]));
        assert!(
            a.session_cookie("alice", NOW, &[1; 16])
                .unwrap()
                .ends_with("; Secure")
        );
        assert_eq!(
            a.cleared_cookie(),
            format!("{COOKIE}=; Max-Age=0; HttpOnly; SameSite=Strict; Path=/; Secure")
        );
        assert_eq!(
            access().identify(&headers(&[("cookie", format!("{COOKIE}="))]), NOW),
            Err(Denied::Nothing)
        );
    }
}
