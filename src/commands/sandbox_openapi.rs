//! The sandbox's OpenAPI apps and Alipay key from its flags:
//! `--openapi-app APP_ID=PARTNER=PATH_TO_APP_PRIVATE_KEY` (repeatable) and
//! `--alipay-private-key-file PATH`.
//!
//! Invariants: every key file is read and parsed here, so a bad key fails
//! at start with the flag and the path named, never its content; an app
//! id is given once. The sandbox keeps only an app key's public half (it
//! verifies requests; it never signs as the app).

use std::path::Path;
use std::sync::Arc;

use crate::alipay::openapi::sign::AppKey;
use crate::alipay::wire::request::validate_partner;
use crate::sandbox::OpenApiApp;

/// The apps of every `--openapi-app`, in order.
pub fn apps(flags: &[String]) -> Result<Vec<OpenApiApp>, String> {
    let mut apps: Vec<OpenApiApp> = Vec::new();
    for flag in flags {
        let app = app(flag)?;
        if apps.iter().any(|a| a.app_id == app.app_id) {
            return Err(format!("--openapi-app {} is given twice", app.app_id));
        }
        apps.push(app);
    }
    Ok(apps)
}

/// One `APP_ID=PARTNER=PATH`; the path may itself contain `=`.
fn app(flag: &str) -> Result<OpenApiApp, String> {
    let usage = || format!("--openapi-app {flag:?}: give APP_ID=PARTNER=PATH_TO_APP_PRIVATE_KEY");
    let mut parts = flag.splitn(3, '=');
    let (Some(app_id), Some(partner), Some(path)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(usage());
    };
    if app_id.is_empty() || !app_id.bytes().all(|b| b.is_ascii_digit()) || path.is_empty() {
        return Err(usage());
    }
    validate_partner(partner).map_err(|e| format!("--openapi-app {app_id}: {e}"))?;
    let key = read_key("--openapi-app", Path::new(path))?;
    Ok(OpenApiApp {
        app_id: app_id.to_owned(),
        partner: partner.to_owned(),
        app_public: key.public_key(),
    })
}

/// The worker's own OpenAPI partners, as the sandbox knows them: the
/// public half of each app's key.
pub fn from_settings(apps: &[crate::config::OpenApiApp]) -> Vec<OpenApiApp> {
    apps.iter()
        .map(|a| OpenApiApp {
            app_id: a.app_id.clone(),
            partner: a.partner.clone(),
            app_public: a.key.public_key(),
        })
        .collect()
}

/// The key of `--alipay-private-key-file`, if given.
pub fn alipay_key(path: Option<&Path>) -> Result<Option<Arc<AppKey>>, String> {
    path.map(|p| read_key("--alipay-private-key-file", p).map(Arc::new))
        .transpose()
}

fn read_key(flag: &str, path: &Path) -> Result<AppKey, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{flag}: cannot read {}: {e}", path.display()))?;
    AppKey::parse(&text).map_err(|e| format!("{flag}: {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_file(name: &str) -> String {
        format!("{}/deploy/sandbox-keys/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    const P1: &str = "2088101122136241";

    #[test]
    fn an_app_flag_gives_the_public_half_of_its_key() {
        let flag = format!("2021000000000001={P1}={}", key_file("app-private.pem"));
        let apps = apps(&[flag]).unwrap();
        assert_eq!(apps[0].app_id, "2021000000000001");
        assert_eq!(apps[0].partner, P1);
        let app =
            AppKey::parse(&std::fs::read_to_string(key_file("app-private.pem")).unwrap()).unwrap();
        assert!(apps[0].app_public.verifies(b"x", &app.sign("x").unwrap()));
        let alipay =
            AppKey::parse(&std::fs::read_to_string(key_file("alipay-private.pem")).unwrap())
                .unwrap();
        assert!(
            !apps[0]
                .app_public
                .verifies(b"x", &alipay.sign("x").unwrap())
        );
    }

    #[test]
    fn malformed_or_repeated_apps_and_unreadable_keys_are_refused() {
        let good = format!("2021000000000001={P1}={}", key_file("app-private.pem"));
        for bad in [
            "2021000000000001".to_owned(),
            format!("2021000000000001={P1}"),
            format!("abc={P1}={}", key_file("app-private.pem")),
            format!("2021000000000001=123={}", key_file("app-private.pem")),
            format!("2021000000000001={P1}=/nonexistent/key.pem"),
            // A public key is not a private key.
            format!("2021000000000001={P1}={}", key_file("app-public.pem")),
        ] {
            assert!(apps(std::slice::from_ref(&bad)).is_err(), "{bad}");
        }
        let twice = apps(&[good.clone(), good]).unwrap_err();
        assert!(twice.contains("twice"), "{twice}");
    }

    #[test]
    fn the_alipay_key_is_optional_and_read_when_given() {
        assert!(alipay_key(None).unwrap().is_none());
        let path = key_file("alipay-private.pem");
        assert!(alipay_key(Some(Path::new(&path))).unwrap().is_some());
        let e = alipay_key(Some(Path::new("/nonexistent"))).unwrap_err();
        assert!(e.contains("--alipay-private-key-file"), "{e}");
    }
}
