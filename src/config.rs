//! Settings from the environment and an optional TOML file (contract §1).
//!
//! The environment overrides the file; a file key is the variable's name in lower
//! case. Every problem is one [`ConfigError`] naming the variable, and no error
//! or `Debug` output ever contains a secret (partner keys, the admin token, the
//! passwords inside URLs).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use operators::operators;
use partners::{check_partner_id, partners};

use crate::domain::item_outcome::ItemRetry;

mod operators;
mod partners;
mod source;
mod types;

pub use source::Source;
pub use types::*;

/// A setting that is missing or malformed: the variable and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(var: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            var: var.into(),
            reason: reason.into(),
        }
    }
}

/// Every variable of contract §1 plus this implementation's own, in table order.
pub const VARIABLES: &[&str] = &[
    "DATABASE_URL",
    "DATABASE_POOL_SIZE",
    "AMQP_URL",
    "AMQP_NAME_PREFIX",
    "AMQP_RESULTS_QUEUE",
    "AMQP_RESULTS_QUEUE_MAX_LENGTH",
    "ALIPAY_GATEWAY",
    "ALIPAY_PARTNER",
    "ALIPAY_KEY",
    "ALIPAY_KEY_FILE",
    "ALIPAY_NOTIFY_URL",
    "ALIPAY_DBACK_NOTIFY_URL",
    "ALIPAY_VERIFY_NOTIFY_ID",
    "ALIPAY_TIMEOUT_MS",
    "ALIPAY_OPENAPI_GATEWAY",
    "OPENAPI_CONCURRENCY",
    "OPENAPI_CALLS_PER_SECOND",
    "BATCH_MAX_ITEMS",
    "BATCH_LINGER_MS",
    "ALIPAY_PWD_FALLBACK",
    "SUBMIT_RETRY_BASE_MS",
    "SUBMIT_RETRY_CAP_MS",
    "SUBMIT_GIVE_UP_MS",
    "SUBMIT_ABSENCE_SETTLE_MS",
    "BATCH_NO_PREFIX",
    "ITEM_RETRY_BASE_MS",
    "ITEM_RETRY_LIMIT",
    "PARTNER_PAUSE_MS",
    "PARTNER_PAUSE_MAX_MS",
    "RECONCILE_AFTER_MS",
    "HTTP_LISTEN",
    "NOTIFY_MAX_BYTES",
    "ADMIN_LISTEN",
    "ADMIN_TOKEN",
    "ADMIN_SESSION_TTL",
    "ADMIN_SECURE_COOKIE",
    "SHUTDOWN_GRACE_MS",
    "LOG_FORMAT",
    "INTAKE_WINDOW",
    "INTAKE_WINDOW_MS",
];

impl Settings {
    /// Loads from the process environment and, if given, a TOML file.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let text = match file {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new("--config", format!("cannot read {}: {e}", path.display()))
            })?),
            None => None,
        };
        let env: HashMap<String, String> = std::env::vars()
            .filter(|(k, _)| VARIABLES.contains(&k.as_str()))
            .collect();
        Self::from_source(&Source::new(env, text.as_deref())?)
    }

    /// Builds and checks every setting; pure apart from reading key files.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let batch_no_prefix = src.string_or("BATCH_NO_PREFIX", "")?;
        check_batch_no_prefix(&batch_no_prefix)?;
        let mut s = Settings {
            database_url: src.string_or("DATABASE_URL", DEFAULT_DATABASE_URL)?,
            database_pool_size: src.number_in("DATABASE_POOL_SIZE", 10, 1..=200)? as u32,
            amqp: AmqpSettings {
                url: src.string_or("AMQP_URL", DEFAULT_AMQP_URL)?,
                name_prefix: src.string_or("AMQP_NAME_PREFIX", "")?,
                results_queue: src.bool_or("AMQP_RESULTS_QUEUE", true)?,
                results_max_length: src.number_in(
                    "AMQP_RESULTS_QUEUE_MAX_LENGTH",
                    u64::from(crate::amqp::RESULTS_MAX_LENGTH),
                    1..=100_000_000,
                )? as u32,
            },
            alipay: alipay(src)?,
            batch: BatchSettings {
                max_items: src.number_in("BATCH_MAX_ITEMS", 1000, 1..=1000)? as usize,
                linger: millis(src.number_in("BATCH_LINGER_MS", 2000, 0..=86_400_000)?),
                batch_no_prefix: batch_no_prefix.clone(),
                openapi_partners: Vec::new(),
            },
            submit: submit(src, batch_no_prefix)?,
            item_retry: ItemRetry {
                base: millis(src.number_in("ITEM_RETRY_BASE_MS", 60_000, 1..=86_400_000)?),
                limit: src.number_in("ITEM_RETRY_LIMIT", 5, 0..=100)? as i32,
            },
            reconcile_after: millis(src.number_in(
                "RECONCILE_AFTER_MS",
                600_000,
                1..=u32::MAX as u64,
            )?),
            http_listen: src.addr_or("HTTP_LISTEN", "0.0.0.0:8080")?,
            notify_max_bytes: src.number_in("NOTIFY_MAX_BYTES", 262_144, 1024..=16_777_216)?
                as usize,
            admin: admin(src)?,
            shutdown_grace: millis(src.number_in("SHUTDOWN_GRACE_MS", 10_000, 0..=3_600_000)?),
            log_format: log_format(src)?,
            intake: IntakeSettings {
                window: src.number_in("INTAKE_WINDOW", 500, 1..=5000)? as u16,
                window_wait: millis(src.number_in("INTAKE_WINDOW_MS", 5, 0..=10_000)?),
            },
        };
        if let Some(p) = &s.alipay.default_partner {
            check_partner_id("ALIPAY_PARTNER", p)?;
        }
        check_database_url(&s.database_url)?;
        check_amqp_url(&s.amqp.url)?;
        s.batch.openapi_partners = s
            .alipay
            .openapi
            .apps
            .iter()
            .map(|a| a.partner.clone())
            .collect();
        Ok(s)
    }
}

/// The gateway and the partners (`ALIPAY_*`).
fn alipay(src: &Source) -> Result<AlipaySettings, ConfigError> {
    let partners = partners(src)?;
    Ok(AlipaySettings {
        gateway: src.url_or("ALIPAY_GATEWAY", DEFAULT_GATEWAY)?,
        partners: partners.mapi,
        openapi: OpenApiSettings {
            gateway: src.url_or("ALIPAY_OPENAPI_GATEWAY", DEFAULT_OPENAPI_GATEWAY)?,
            apps: partners.openapi,
            concurrency: src.number_in("OPENAPI_CONCURRENCY", 8, 1..=256)? as usize,
            calls_per_second: src.number_in("OPENAPI_CALLS_PER_SECOND", 20, 1..=10_000)? as u32,
        },
        default_partner: src.get("ALIPAY_PARTNER")?,
        notify_url: src.optional_url("ALIPAY_NOTIFY_URL")?,
        dback_notify_url: src.optional_url("ALIPAY_DBACK_NOTIFY_URL")?,
        verify_notify_id: src.bool_or("ALIPAY_VERIFY_NOTIFY_ID", true)?,
        timeout: millis(src.number_in("ALIPAY_TIMEOUT_MS", 15_000, 1..=600_000)?),
        pwd_fallback: src.bool_or("ALIPAY_PWD_FALLBACK", false)?,
    })
}

/// Retries, pauses and give-up times of the submitter (`SUBMIT_*`, `PARTNER_PAUSE_*`).
fn submit(src: &Source, batch_no_prefix: String) -> Result<SubmitSettings, ConfigError> {
    Ok(SubmitSettings {
        retry_base: millis(src.number_in("SUBMIT_RETRY_BASE_MS", 1000, 1..=3_600_000)?),
        retry_cap: millis(src.number_in("SUBMIT_RETRY_CAP_MS", 60_000, 1..=86_400_000)?),
        give_up: millis(src.number_in("SUBMIT_GIVE_UP_MS", 600_000, 1..=86_400_000)?),
        pause_base: millis(src.number_in("PARTNER_PAUSE_MS", 60_000, 1..=86_400_000)?),
        pause_cap: millis(src.number_in("PARTNER_PAUSE_MAX_MS", 3_600_000, 1..=604_800_000)?),
        absence_settle: millis(src.number_in(
            "SUBMIT_ABSENCE_SETTLE_MS",
            3_600_000,
            1..=604_800_000,
        )?),
        batch_no_prefix,
    })
}

/// `LOG_FORMAT`: `json` or `pretty`.
fn log_format(src: &Source) -> Result<LogFormat, ConfigError> {
    match src.string_or("LOG_FORMAT", "json")?.as_str() {
        "json" => Ok(LogFormat::Json),
        "pretty" => Ok(LogFormat::Pretty),
        other => Err(ConfigError::new(
            "LOG_FORMAT",
            format!("must be json or pretty, not {other:?}"),
        )),
    }
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// `BATCH_NO_PREFIX`: letters and digits, at most 12, so that with the
/// 12-digit serial the part after the date stays within Alipay's 3–24.
fn check_batch_no_prefix(prefix: &str) -> Result<(), ConfigError> {
    if prefix.len() <= 12 && prefix.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(ConfigError::new(
            "BATCH_NO_PREFIX",
            "must be at most 12 letters and digits (Alipay allows 24 after the date; the serial takes 12)",
        ))
    }
}

/// `DATABASE_URL` must read as a PostgreSQL URL now, not at the first
/// connection attempt (contract §1: exit 2 at start). The reason never
/// repeats the URL, which may hold a password.
fn check_database_url(url: &str) -> Result<(), ConfigError> {
    let scheme_ok = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if scheme_ok && url.parse::<sqlx::postgres::PgConnectOptions>().is_ok() {
        Ok(())
    } else {
        Err(ConfigError::new(
            "DATABASE_URL",
            "is not a PostgreSQL URL like postgres://user@host:5432/db",
        ))
    }
}

/// `AMQP_URL` must read as one or more brokers
/// ([`crate::amqp::addresses`]): the first a full `amqp://` or `amqps://`
/// URL, the rest URLs or bare `host:port`. The reason names the address by
/// position and never repeats the text, which may hold a password.
fn check_amqp_url(url: &str) -> Result<(), ConfigError> {
    crate::amqp::addresses::parse(url)
        .map(|_| ())
        .map_err(|e| ConfigError::new("AMQP_URL", e.to_string()))
}

/// The operator page: its listener, who may use it, and its sessions. Off
/// (and nothing else read) unless `ADMIN_LISTEN` is set.
fn admin(src: &Source) -> Result<Option<AdminSettings>, ConfigError> {
    let Some(listen) = src.get("ADMIN_LISTEN")? else {
        return Ok(None);
    };
    let listen: SocketAddr = listen.parse().map_err(|_| {
        ConfigError::new(
            "ADMIN_LISTEN",
            format!("{listen:?} is not an address like 127.0.0.1:8081"),
        )
    })?;
    Ok(Some(AdminSettings {
        listen,
        legacy_token: src.get("ADMIN_TOKEN")?.is_some(),
        operators: operators(src)?,
        session_ttl: session_ttl(src)?,
        secure_cookie: src.bool_or("ADMIN_SECURE_COOKIE", false)?,
    }))
}

/// `ADMIN_SESSION_TTL`: an age like `8h` or `30m`, from a minute to a week.
fn session_ttl(src: &Source) -> Result<Duration, ConfigError> {
    let Some(text) = src.get("ADMIN_SESSION_TTL")? else {
        return Ok(DEFAULT_SESSION_TTL);
    };
    let bounds = Duration::from_secs(60)..=Duration::from_secs(604_800);
    match crate::dlq::parse_age(&text) {
        Ok(age) if bounds.contains(&age.0) => Ok(age.0),
        _ => Err(ConfigError::new(
            "ADMIN_SESSION_TTL",
            format!("{text:?} is not an age from 1m to 7d, like 8h or 30m"),
        )),
    }
}

#[cfg(test)]
mod tests;
