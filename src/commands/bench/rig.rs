//! The stage of an end-to-end run: a fresh database and broker names, the
//! sandbox in-process (notifying at once), and a child `refund-worker run`
//! with every role pointed at both; torn down again after the run, with the
//! worker's peak memory and CPU time read from /proc before it stops.
//!
//! A `Lane` says whose refunds the run publishes and what the worker and
//! the sandbox need for that partner's channel; the rest is the same for
//! every end-to-end profile.

use std::path::PathBuf;
use std::process::Child;
use std::sync::Arc;

use lapin::Connection;
use lapin::options::ConfirmSelectOptions;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::alipay::openapi::sign::AppKey;
use crate::amqp::Topology;
use crate::commands::harness::PARTNER;
use crate::commands::harness::scratch::{delete_topology, drop_database, with_database};
use crate::commands::harness::worker::{
    self, process_usage, spawn_configured_worker, spawn_worker,
};
use crate::config::Settings;
use crate::sandbox::{self, OpenApiApp, PartnerKey, Sandbox, SandboxConfig};
use crate::storage;

/// The mapi partner's MD5 key, known to the worker and the sandbox.
pub const KEY: &str = "bench-key-not-a-secret";
const ROLES: &str = "intake,batch,submit,http,relay,reconcile";

/// Whose refunds a run publishes, and what that partner's channel needs.
pub struct Lane {
    /// The partner the events name.
    pub partner: String,
    /// Settings file for the worker (`--config`), e.g. its `[[partners]]`.
    pub config: Option<PathBuf>,
    /// Added to (or overriding) the worker's environment.
    pub env: Vec<(&'static str, String)>,
    /// OpenAPI apps the sandbox serves, and the key it signs answers with.
    pub openapi_apps: Vec<OpenApiApp>,
    pub alipay_key: Option<Arc<AppKey>>,
    /// Worker processes on the one database (`bench --workers`).
    pub workers: usize,
}

impl Lane {
    /// The default mapi partner, batched.
    pub fn mapi() -> Self {
        Self {
            partner: PARTNER.into(),
            config: None,
            env: Vec::new(),
            openapi_apps: Vec::new(),
            alipay_key: None,
            workers: 1,
        }
    }

    /// The same lane with `n` worker processes.
    pub fn with_workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }

    /// Whether the partner's refunds go through batches.
    pub fn batched(&self) -> bool {
        self.openapi_apps.is_empty()
    }
}

/// Peak resident memory (bytes, the largest worker's) and CPU time (ms, all
/// workers together).
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub peak_rss_bytes: u64,
    pub cpu_ms: u64,
}

/// One run's worker, sandbox, database and names.
pub struct Rig {
    pub pool: PgPool,
    pub sandbox: Sandbox,
    pub topology: Topology,
    /// A publishing channel in confirm mode.
    pub channel: lapin::Channel,
    /// The worker processes, each with every role.
    pub children: Vec<Child>,
    pub partner: String,
    pub batched: bool,
    pub postgresql: String,
    stop: CancellationToken,
    prefix: String,
    db_name: String,
    /// Read when the worker was stopped, if it was before `finish`.
    usage: Option<Usage>,
}

impl Rig {
    pub async fn start(
        settings: &Settings,
        conn: &Connection,
        id: &str,
        lane: Lane,
    ) -> anyhow::Result<Self> {
        let prefix = format!("bench-{id}.");
        let db_name = format!("refund_worker_bench_{id}");
        let db_url = with_database(&settings.database_url, &db_name);
        let pool = storage::connect_and_migrate(&db_url, 2).await?;
        let postgresql: String = sqlx::query_scalar("SHOW server_version")
            .fetch_one(&pool)
            .await?;
        let topology = Topology::new(&prefix, true);
        let channel = conn.create_channel().await?;
        topology.declare(&channel).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;

        let batched = lane.batched();
        let mut config = SandboxConfig::new(
            vec![PartnerKey {
                id: PARTNER.into(),
                key: KEY.into(),
            }],
            1,
        );
        config.time_scale = "0.001".parse()?;
        config.openapi_apps = lane.openapi_apps;
        config.alipay_key = lane.alipay_key;
        let gw = sandbox::start_local(config).await?;
        let mut children = Vec::with_capacity(lane.workers);
        for _ in 0..lane.workers.max(1) {
            children.push(spawn(
                &gw.url,
                &db_url,
                &prefix,
                lane.config.clone(),
                &lane.env,
            )?);
        }
        Ok(Self {
            pool,
            sandbox: gw.sandbox,
            topology,
            channel,
            children,
            partner: lane.partner,
            batched,
            postgresql,
            stop: gw.stop,
            prefix,
            db_name,
            usage: None,
        })
    }

    /// Stops the worker (its backends then flush their statistics); its
    /// usage, read just before it stops. Once only: later calls return the
    /// same usage.
    pub fn stop_worker(&mut self) -> Usage {
        if let Some(usage) = self.usage {
            return usage;
        }
        let mut usage = Usage::default();
        for child in &mut self.children {
            let (peak_rss_bytes, cpu_ms) = process_usage(child.id()).unwrap_or((0, 0));
            worker::stop(child);
            usage.peak_rss_bytes = usage.peak_rss_bytes.max(peak_rss_bytes);
            usage.cpu_ms += cpu_ms;
        }
        self.usage = Some(usage);
        usage
    }

    /// Stops the worker and the sandbox and removes the database and names;
    /// the worker's usage, read just before it stopped.
    pub async fn finish(mut self, settings: &Settings) -> Usage {
        let usage = self.stop_worker();
        self.stop.cancel();
        self.pool.close().await;
        drop_database(&settings.database_url, &self.db_name).await;
        delete_topology(settings, &self.prefix).await;
        usage
    }
}

/// The child worker with every role, on the sandbox at `gateway` (both channels).
fn spawn(
    gateway: &str,
    db_url: &str,
    prefix: &str,
    config: Option<PathBuf>,
    extra: &[(&'static str, String)],
) -> anyhow::Result<Child> {
    let http = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let notify_url = format!("http://{http}/alipay/notify");
    let http_listen = http.to_string();
    let mut env = vec![
        ("ALIPAY_GATEWAY", gateway),
        ("ALIPAY_OPENAPI_GATEWAY", gateway),
        ("ALIPAY_NOTIFY_URL", notify_url.as_str()),
        ("ALIPAY_PARTNER", PARTNER),
        ("ALIPAY_KEY", KEY),
        ("HTTP_LISTEN", http_listen.as_str()),
        ("AMQP_RESULTS_QUEUE", "true"),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
    match config {
        Some(file) => spawn_configured_worker(&file, db_url, prefix, ROLES, &env),
        None => spawn_worker(db_url, prefix, ROLES, &env),
    }
}
