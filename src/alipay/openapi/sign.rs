//! RSA2 (SHA256withRSA, PKCS#1 v1.5) for the OpenAPI channel
//! (alipay-openapi.md, "Transport and signing"): the content to sign, our
//! app's signature, and the check of Alipay's signatures with Alipay's
//! public key. Pure: keys are parsed once, at configuration time.
//!
//! Crypto is aws-lc-rs (already in the tree through rustls): constant-time
//! RSA from a maintained, FIPS-validated library. The `rsa` crate was not
//! chosen: its advisory RUSTSEC-2023-0071 (the Marvin timing attack) has no
//! fixed release.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    KeyPair, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use thiserror::Error;

/// Why a key could not be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("the key is not base64 (with or without PEM armour)")]
    NotBase64,
    #[error("the key is not an RSA private key in PKCS#8 or PKCS#1 DER")]
    NotPrivateKey,
    #[error("the key is not an RSA public key (X.509 SubjectPublicKeyInfo or PKCS#1)")]
    NotPublicKey,
    #[error("RSA2 needs a key of at least 2048 bits")]
    TooShort,
}

/// The app's private key: signs our requests.
pub struct AppKey(RsaKeyPair);

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppKey(redacted)")
    }
}

impl AppKey {
    /// From the text Alipay's key tool writes: base64 of PKCS#8 or PKCS#1
    /// DER, bare or inside `-----BEGIN … KEY-----` lines.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let der = der_of(text)?;
        let pair = RsaKeyPair::from_pkcs8(&der)
            .or_else(|_| RsaKeyPair::from_der(&der))
            .map_err(|_| KeyError::NotPrivateKey)?;
        if pair.public_modulus_len() < 256 {
            return Err(KeyError::TooShort);
        }
        Ok(Self(pair))
    }

    /// The base64 signature of `content`.
    pub fn sign(&self, content: &str) -> Result<String, KeyError> {
        let mut signature = vec![0; self.0.public_modulus_len()];
        self.0
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                content.as_bytes(),
                &mut signature,
            )
            .map_err(|_| KeyError::NotPrivateKey)?;
        Ok(STANDARD.encode(signature))
    }

    /// The public half, as a verifier of this key's signatures (the sandbox
    /// checks requests with it; Alipay does the same with the uploaded key).
    pub fn public_key(&self) -> AlipayPublicKey {
        AlipayPublicKey(self.0.public_key().as_ref().to_vec())
    }
}

/// Alipay's public key: verifies its answers and pushes.
#[derive(Clone)]
pub struct AlipayPublicKey(Vec<u8>);

impl std::fmt::Debug for AlipayPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlipayPublicKey({} bytes)", self.0.len())
    }
}

impl AlipayPublicKey {
    /// From the text the Alipay console shows: base64 of the DER public key,
    /// bare or with PEM armour. Checked here, so a bad key fails at start.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let der = der_of(text)?;
        let key = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der.clone());
        key.parse().map_err(|_| KeyError::NotPublicKey)?;
        Ok(Self(der))
    }

    /// Whether `signature` (base64) is Alipay's over exactly `content`.
    pub fn verifies(&self, content: &[u8], signature: &str) -> bool {
        let Ok(signature) = STANDARD.decode(signature.trim()) else {
            return false;
        };
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &self.0)
            .verify(content, &signature)
            .is_ok()
    }
}

/// The string to sign: every parameter but `skip`, empty values dropped,
/// sorted by name, joined `k=v&k=v` with raw (not URL-encoded) values.
/// Requests skip `sign`; pushes are verified skipping `sign` and `sign_type`.
pub fn content_to_sign(params: &[(String, String)], skip: &[&str]) -> String {
    let mut kept: Vec<&(String, String)> = params
        .iter()
        .filter(|(k, v)| !v.is_empty() && !skip.contains(&k.as_str()))
        .collect();
    kept.sort_by(|a, b| a.0.cmp(&b.0));
    kept.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn der_of(text: &str) -> Result<Vec<u8>, KeyError> {
    let body: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("-----"))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    STANDARD.decode(body).map_err(|_| KeyError::NotBase64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PKCS8: &str = include_str!("testdata/pk8.b64");
    const PKCS1: &str = include_str!("testdata/pk1.b64");
    const PUBLIC: &str = include_str!("testdata/spki.b64");
    const CONTENT: &str = include_str!("testdata/content.txt");
    const SIGNATURE: &str = include_str!("testdata/sig.b64");
    const RESPONSE: &str = include_str!("testdata/resp.txt");
    const RESPONSE_SIGNATURE: &str = include_str!("testdata/rsig.b64");

    #[test]
    fn the_public_half_verifies_the_keys_signatures_and_the_sandbox_pems_parse() {
        let key = AppKey::parse(PKCS8).unwrap();
        let signature = key.sign("a=1&b=2").unwrap();
        assert!(key.public_key().verifies(b"a=1&b=2", &signature));
        assert!(!key.public_key().verifies(b"a=1&b=3", &signature));
        let pem = |name: &str| {
            let path = format!("{}/deploy/sandbox-keys/{name}", env!("CARGO_MANIFEST_DIR"));
            std::fs::read_to_string(path).unwrap()
        };
        let app = AppKey::parse(&pem("app-private.pem")).unwrap();
        let app_public = AlipayPublicKey::parse(&pem("app-public.pem")).unwrap();
        assert!(app_public.verifies(b"x", &app.sign("x").unwrap()));
        let alipay = AppKey::parse(&pem("alipay-private.pem")).unwrap();
        let alipay_public = AlipayPublicKey::parse(&pem("alipay-public.pem")).unwrap();
        assert!(alipay_public.verifies(b"x", &alipay.sign("x").unwrap()));
        assert!(!alipay_public.verifies(b"x", &app.sign("x").unwrap()));
    }

    #[test]
    fn our_signature_equals_the_one_an_independent_library_made() {
        for text in [PKCS8, PKCS1] {
            let key = AppKey::parse(text).unwrap();
            assert_eq!(key.sign(CONTENT).unwrap(), SIGNATURE.trim());
        }
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{PKCS8}\n-----END PRIVATE KEY-----\n");
        assert_eq!(
            AppKey::parse(&pem).unwrap().sign(CONTENT).unwrap(),
            SIGNATURE.trim()
        );
    }

    #[test]
    fn alipays_signature_verifies_over_the_exact_bytes_only() {
        let alipay = AlipayPublicKey::parse(PUBLIC).unwrap();
        assert!(alipay.verifies(RESPONSE.as_bytes(), RESPONSE_SIGNATURE));
        // One byte changed, or the same JSON re-serialised with a space: no.
        let tampered = RESPONSE.replace("10.50", "10.51");
        assert!(!alipay.verifies(tampered.as_bytes(), RESPONSE_SIGNATURE));
        let spaced = RESPONSE.replace("\"code\":", "\"code\": ");
        assert!(!alipay.verifies(spaced.as_bytes(), RESPONSE_SIGNATURE));
        assert!(!alipay.verifies(RESPONSE.as_bytes(), "not base64!"));
        assert!(!alipay.verifies(RESPONSE.as_bytes(), SIGNATURE));
    }

    #[test]
    fn bad_keys_are_refused_with_a_reason() {
        assert_eq!(AppKey::parse("%%%").unwrap_err(), KeyError::NotBase64);
        assert_eq!(AppKey::parse(PUBLIC).unwrap_err(), KeyError::NotPrivateKey);
        assert_eq!(
            AlipayPublicKey::parse("aGVsbG8=").unwrap_err(),
            KeyError::NotPublicKey
        );
    }

    #[test]
    fn the_content_drops_sign_and_empty_values_and_sorts_by_name() {
        let p = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let params = [
            p("sign", "x"),
            p("timestamp", "2026-12-06 14:00:00"),
            p("app_id", "1"),
            p("notify_url", ""),
            p("sign_type", "RSA2"),
            p("biz_content", "{\"a\":\"b&c\"}"),
        ];
        assert_eq!(
            content_to_sign(&params, &["sign"]),
            "app_id=1&biz_content={\"a\":\"b&c\"}&sign_type=RSA2&timestamp=2026-12-06 14:00:00"
        );
        assert_eq!(
            content_to_sign(&params, &["sign", "sign_type"]),
            "app_id=1&biz_content={\"a\":\"b&c\"}&timestamp=2026-12-06 14:00:00"
        );
    }
}
