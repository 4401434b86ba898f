//! Fixtures the OpenAPI sandbox's tests share: the public test key pairs
//! of deploy/sandbox-keys, one app, and a config that knows it.

use std::sync::Arc;

use chrono::NaiveDateTime;

use super::config::OpenApiApp;
use crate::alipay::openapi::sign::{AlipayPublicKey, AppKey};
use crate::sandbox::SandboxConfig;

pub const APP_ID: &str = "2021000000000001";
pub const PARTNER: &str = "2088101122136241";

const APP_PRIVATE: &str = include_str!("../../../deploy/sandbox-keys/app-private.pem");
const ALIPAY_PRIVATE: &str = include_str!("../../../deploy/sandbox-keys/alipay-private.pem");
const ALIPAY_PUBLIC: &str = include_str!("../../../deploy/sandbox-keys/alipay-public.pem");

/// What the worker signs requests with.
pub fn app_key() -> AppKey {
    AppKey::parse(APP_PRIVATE).unwrap()
}

/// What the sandbox, playing Alipay, signs with.
pub fn alipay_key() -> AppKey {
    AppKey::parse(ALIPAY_PRIVATE).unwrap()
}

/// What the worker verifies the sandbox with.
pub fn alipay_public() -> AlipayPublicKey {
    AlipayPublicKey::parse(ALIPAY_PUBLIC).unwrap()
}

/// The one app.
pub fn apps() -> Vec<OpenApiApp> {
    vec![OpenApiApp {
        app_id: APP_ID.into(),
        partner: PARTNER.into(),
        app_public: app_key().public_key(),
    }]
}

/// A sandbox config that knows the app and signs with the Alipay test key;
/// trades are paid 100.00.
pub fn config() -> SandboxConfig {
    let mut config = SandboxConfig::new(Vec::new(), 7);
    config.trade_paid_fen = 10_000;
    config.openapi_apps = apps();
    config.alipay_key = Some(Arc::new(alipay_key()));
    config
}

/// 2026-12-06 14:00:00, a request's Beijing time.
pub fn beijing() -> NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2026, 12, 6)
        .and_then(|d| d.and_hms_opt(14, 0, 0))
        .unwrap()
}
