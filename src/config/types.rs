//! The settings, one struct per part of the service.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/refund_worker";
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const DEFAULT_GATEWAY: &str = "https://mapi.alipay.com/gateway.do";
pub const DEFAULT_OPENAPI_GATEWAY: &str = "https://openapi.alipay.com/gateway.do";
/// `ADMIN_SESSION_TTL`'s default: a working day.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// Everything the service reads at start.
#[derive(Clone)]
pub struct Settings {
    pub database_url: String,
    pub database_pool_size: u32,
    pub amqp: AmqpSettings,
    pub alipay: AlipaySettings,
    pub batch: BatchSettings,
    pub submit: SubmitSettings,
    /// `ITEM_RETRY_BASE_MS`, `ITEM_RETRY_LIMIT`.
    pub item_retry: crate::domain::item_outcome::ItemRetry,
    pub reconcile_after: Duration,
    pub http_listen: SocketAddr,
    /// Notification bodies above this many bytes are refused with 413.
    pub notify_max_bytes: usize,
    pub admin: Option<AdminSettings>,
    pub shutdown_grace: Duration,
    pub log_format: LogFormat,
    pub intake: IntakeSettings,
}

#[derive(Clone)]
pub struct AmqpSettings {
    pub url: String,
    /// Put before every exchange and queue name (tests and shared brokers).
    pub name_prefix: String,
    /// Whether the default `refunds.results` queue is declared.
    pub results_queue: bool,
    /// Its length limit (`x-max-length`, overflow `reject-publish`).
    pub results_max_length: u32,
}

#[derive(Clone)]
pub struct AlipaySettings {
    pub gateway: String,
    /// The partners on the mapi channel.
    pub partners: Vec<Partner>,
    /// The partners on the OpenAPI channel, and how they are called.
    pub openapi: OpenApiSettings,
    pub default_partner: Option<String>,
    pub notify_url: Option<String>,
    pub dback_notify_url: Option<String>,
    pub verify_notify_id: bool,
    pub timeout: Duration,
    pub pwd_fallback: bool,
}

/// A merchant account (partner id) and its MD5 key.
#[derive(Clone)]
pub struct Partner {
    pub id: String,
    pub key: SecretString,
}

/// The OpenAPI channel: its gateway, its apps, and how hard they are called.
#[derive(Clone, Debug)]
pub struct OpenApiSettings {
    /// `ALIPAY_OPENAPI_GATEWAY`.
    pub gateway: String,
    pub apps: Vec<OpenApiApp>,
    /// `OPENAPI_CONCURRENCY`: calls in flight at once, per worker.
    pub concurrency: usize,
    /// `OPENAPI_CALLS_PER_SECOND`: calls per second per app, per worker.
    pub calls_per_second: u32,
}

/// A partner on the OpenAPI channel: its app and the keys of both sides.
#[derive(Clone, Debug)]
pub struct OpenApiApp {
    /// What upstream events name in `partner`.
    pub partner: String,
    pub app_id: String,
    /// The app's RSA2 private key (redacted in debug output).
    pub key: std::sync::Arc<crate::alipay::openapi::sign::AppKey>,
    /// Alipay's public key: verifies answers and pushes.
    pub alipay_public: crate::alipay::openapi::sign::AlipayPublicKey,
}

impl OpenApiSettings {
    /// The app serving `partner`, when the partner is on this channel.
    pub fn app_of(&self, partner: &str) -> Option<&OpenApiApp> {
        self.apps.iter().find(|a| a.partner == partner)
    }
}

#[derive(Clone, Debug)]
pub struct BatchSettings {
    pub max_items: usize,
    pub linger: Duration,
    /// `BATCH_NO_PREFIX`: letters and digits after the date of every `batch_no`.
    pub batch_no_prefix: String,
    /// Partners on the OpenAPI channel: their refunds are never batched.
    pub openapi_partners: Vec<String>,
}

/// How the submitter retries and pauses.
#[derive(Clone, Debug)]
pub struct SubmitSettings {
    /// First delay after an unknown outcome; doubles per attempt.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// After this age an unknown outcome is settled by `refund_fastpay_query`.
    pub give_up: Duration,
    /// First pause of a partner Alipay refused for its configuration; doubles.
    pub pause_base: Duration,
    pub pause_cap: Duration,
    /// `SUBMIT_ABSENCE_SETTLE_MS`: how long after the last send, and between
    /// the two answers, a `REFUND_NOT_EXIST` counts toward proving absence.
    pub absence_settle: Duration,
    /// `BATCH_NO_PREFIX`, for the halves of a split batch.
    pub batch_no_prefix: String,
}

/// The operator page (`ADMIN_LISTEN`).
#[derive(Clone)]
pub struct AdminSettings {
    pub listen: SocketAddr,
    /// Who may sign in, each with their own token; at least one.
    pub operators: Vec<Operator>,
    /// `ADMIN_SESSION_TTL`: how long a session cookie is good for.
    pub session_ttl: Duration,
    /// `ADMIN_SECURE_COOKIE`: the cookie is `Secure` (the page is behind TLS).
    pub secure_cookie: bool,
    /// Whether the deprecated `ADMIN_TOKEN` gave an operator (`admin`).
    pub legacy_token: bool,
}

/// A person who may use the operator page, named in its logs.
#[derive(Clone)]
pub struct Operator {
    pub name: String,
    /// Their token (redacted in debug output).
    pub token: SecretString,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// How intake gathers deliveries into one database transaction.
#[derive(Clone, Debug)]
pub struct IntakeSettings {
    /// Deliveries per window at most; the prefetch is four times this (the
    /// windows in flight and the one filling).
    pub window: u16,
    /// How long a window waits for more deliveries after its first.
    pub window_wait: Duration,
}

impl crate::domain::Partners for AlipaySettings {
    fn default_partner(&self) -> Option<&str> {
        self.default_partner.as_deref()
    }
    fn is_configured(&self, partner: &str) -> bool {
        self.partners.iter().any(|p| p.id == partner) || self.openapi.app_of(partner).is_some()
    }
}

/// A URL with its password replaced by `***`, for logs and `--help`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &redact_url(&self.database_url))
            .field("amqp_url", &crate::amqp::addresses::shown(&self.amqp.url))
            .field("amqp_name_prefix", &self.amqp.name_prefix)
            .field("gateway", &self.alipay.gateway)
            .field(
                "partners",
                &self
                    .alipay
                    .partners
                    .iter()
                    .map(|p| &p.id)
                    .collect::<Vec<_>>(),
            )
            .field(
                "openapi_partners",
                &self
                    .alipay
                    .openapi
                    .apps
                    .iter()
                    .map(|a| (&a.partner, &a.app_id))
                    .collect::<Vec<_>>(),
            )
            .field("batch", &self.batch)
            .field("http_listen", &self.http_listen)
            .field("notify_max_bytes", &self.notify_max_bytes)
            .field("intake", &self.intake)
            .finish_non_exhaustive()
    }
}
