//! The operators as the page holds them: each name with the SHA-256 of its
//! token, never the token itself. Pure.
//!
//! A bearer token is found by hashing it and comparing the digest with every
//! operator's in constant time, so the time taken says nothing about how
//! much of a token was right, nor how long it is.

use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Operator;

/// The SHA-256 of a token.
pub type TokenDigest = [u8; 32];

pub fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

struct Entry {
    name: String,
    digest: TokenDigest,
}

/// Who may sign in.
pub struct Roster {
    entries: Vec<Entry>,
}

impl Roster {
    pub fn new(operators: &[Operator]) -> Self {
        Self {
            entries: operators
                .iter()
                .map(|o| Entry {
                    name: o.name.clone(),
                    digest: digest(o.token.expose_secret()),
                })
                .collect(),
        }
    }

    /// The name of the operator whose token this is. Every operator is
    /// compared, whichever matches.
    pub fn by_token(&self, given: &str) -> Option<&str> {
        let given = digest(given);
        let mut found = None;
        for e in &self.entries {
            if bool::from(e.digest.ct_eq(&given)) {
                found = Some(e.name.as_str());
            }
        }
        found
    }

    /// An operator's name and the digest of their current token, by name.
    pub fn entry(&self, name: &str) -> Option<(&str, &TokenDigest)> {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .map(|e| (e.name.as_str(), &e.digest))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn roster(pairs: &[(&str, &str)]) -> Roster {
        let ops: Vec<Operator> = pairs
            .iter()
            .map(|(name, token)| Operator {
                name: (*name).to_owned(),
                token: (*token).to_owned().into(),
            })
            .collect();
        Roster::new(&ops)
    }

    #[test]
    fn a_token_names_its_operator_and_nothing_else_does() {
        let r = roster(&[
            ("alice", "alice-token-0123456789"),
            ("bob", "bob-token-0123456789ab"),
        ]);
        assert_eq!(r.by_token("alice-token-0123456789"), Some("alice"));
        assert_eq!(r.by_token("bob-token-0123456789ab"), Some("bob"));
        assert_eq!(r.by_token("alice-token-012345678"), None);
        assert_eq!(r.by_token(""), None);
        assert_eq!(
            r.entry("bob"),
            Some(("bob", &digest("bob-token-0123456789ab")))
        );
        assert_eq!(r.entry("carol"), None);
    }
}
