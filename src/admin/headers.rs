//! The security headers of every answer of the operator page, and the one
//! answer with a policy of its own: the password form, which posts itself to
//! Alipay's gateway. Pure apart from the middleware that sets them.
//!
//! The pages load nothing, run no script and post only to themselves; their
//! one style sheet is inline. The password form runs its one inline script
//! (allowed by its hash, nothing else) and may post to the gateway's origin
//! and, for a gateway on HTTPS under a domain (mapi.alipay.com), to that
//! domain's other hosts (`https://*.alipay.com`): Chromium and Safari also
//! hold a form's redirects to `form-action`, and the gateway may send the
//! browser on to another Alipay host.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::alipay::wire::pwd_form::AUTO_SUBMIT;

/// Every page's Content-Security-Policy.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self' 'unsafe-inline'; \
form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The headers every answer carries; an answer that set one keeps its own.
const ALWAYS: [(HeaderName, &str); 4] = [
    (CONTENT_SECURITY_POLICY, PAGE_CSP),
    (X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (REFERRER_POLICY, "no-referrer"),
    (CACHE_CONTROL, "no-store"),
];

/// Middleware (`map_response`): adds the headers an answer lacks.
pub async fn harden(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in ALWAYS {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

/// The password form's Content-Security-Policy for this gateway URL.
pub fn password_form_csp(gateway: &str) -> String {
    format!(
        "default-src 'none'; script-src '{}'; style-src 'unsafe-inline'; form-action {}; \
         frame-ancestors 'none'; base-uri 'none'",
        script_hash(AUTO_SUBMIT),
        form_targets(gateway)
    )
}

/// A CSP hash source of an inline script.
fn script_hash(script: &str) -> String {
    format!(
        "sha256-{}",
        STANDARD.encode(Sha256::digest(script.as_bytes()))
    )
}

/// Where the form may post: the gateway's origin, and on HTTPS its domain's
/// hosts; `'none'` for a URL that is not plainly scheme://host[:port]/….
fn form_targets(gateway: &str) -> String {
    let Some((scheme, rest)) = gateway.split_once("://") else {
        return "'none'".into();
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
    if !matches!(scheme, "http" | "https") || authority.is_empty() || !authority.chars().all(plain)
    {
        return "'none'".into();
    }
    let origin = format!("{scheme}://{authority}");
    let host = authority.split(':').next().unwrap_or_default();
    let labels: Vec<&str> = host.split('.').collect();
    let is_ip = host.starts_with('[') || host.chars().all(|c| c.is_ascii_digit() || c == '.');
    if scheme == "https" && labels.len() >= 3 && !is_ip {
        format!("{origin} https://*.{}", labels[1..].join("."))
    } else {
        origin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_and_its_domain_are_the_only_form_targets() {
        assert_eq!(
            form_targets("https://mapi.alipay.com/gateway.do"),
            "https://mapi.alipay.com https://*.alipay.com"
        );
        assert_eq!(
            form_targets("http://127.0.0.1:18080/gateway.do"),
            "http://127.0.0.1:18080"
        );
        assert_eq!(
            form_targets("https://localhost:8443/gateway.do"),
            "https://localhost:8443"
        );
        assert_eq!(
            form_targets("https://alipay.com/gateway.do"),
            "https://alipay.com"
        );
        for bad in [
            "https://a.com;script-src *",
            "javascript://x",
            "https:///x",
            "nope",
        ] {
            assert_eq!(form_targets(bad), "'none'", "{bad}");
        }
    }

    #[test]
    fn the_password_form_may_run_its_own_script_and_nothing_else() {
        let csp = password_form_csp("https://mapi.alipay.com/gateway.do");
        // sha256 of document.forms['alipaysubmit'].submit(); in base64.
        let hash = STANDARD.encode(Sha256::digest(b"document.forms['alipaysubmit'].submit();"));
        assert!(
            csp.contains(&format!("script-src 'sha256-{hash}';")),
            "{csp}"
        );
        assert!(csp.starts_with("default-src 'none';"));
        assert!(csp.contains("form-action https://mapi.alipay.com https://*.alipay.com;"));
        assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-eval"));
    }
}
