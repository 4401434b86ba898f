//! `refund-worker run [--roles …]`: migrate, declare the topology (waiting
//! for services not answering yet, see `startup`), run the roles until
//! SIGTERM or Ctrl-C, then give in-flight work `SHUTDOWN_GRACE_MS`.
//!
//! In three steps: [`Launch`] builds each role from the settings and spawns
//! it, [`wait`] waits for the stop signal or the first role to end, and
//! [`drain`] gives the others their grace period.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::startup::{self, Start};
use crate::admin::{self, AdminState};
use crate::alipay::client::AlipayClient;
use crate::amqp::Topology;
use crate::batching::Batcher;
use crate::callback::{self, CallbackState};
use crate::cli::Role;
use crate::config::Settings;
use crate::health::gate::Gate;
use crate::health::{self, HealthState};
use crate::intake::Intake;
use crate::openapi_submit::OpenApiSubmitter;
use crate::openapi_submit::client::OpenApiClient;
use crate::openapi_submit::decide::{QUERY_NOT_BEFORE, Rules};
use crate::outbox::Relay;
use crate::reconcile::Reconciler;
use crate::shutdown::stop_signal;
use crate::submit::Submitter;

/// Every role is a task that ends only on shutdown or failure.
type Roles = JoinSet<anyhow::Result<()>>;

pub async fn run(settings: Settings, roles: &[Role], migrate: bool) -> anyhow::Result<ExitCode> {
    // Batches ask Alipay to notify there; OpenAPI calls need no URL.
    if roles.contains(&Role::Submit)
        && !settings.alipay.partners.is_empty()
        && settings.alipay.notify_url.is_none()
    {
        eprintln!(
            "refund-worker: configuration error: ALIPAY_NOTIFY_URL: required by the submit role"
        );
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    let topology = Topology::of(&settings.amqp);
    let shutdown = CancellationToken::new();
    let mut tasks = Roles::new();
    // Before any role starts: a count recorded before the recorder exists is
    // lost (the intake can store its first window while the HTTP role binds).
    let recorder = if roles.contains(&Role::Http) {
        Some(health::install_recorder().context("while installing the metrics recorder")?)
    } else {
        None
    };
    // The listener first, so `/healthz` answers while start waits.
    let gate = Gate::new("starting");
    if roles.contains(&Role::Http) {
        listen_early(&settings, &gate, &shutdown, &mut tasks).await?;
    }
    let how = Start {
        settings: &settings,
        topology: &topology,
        migrate,
        gate: gate.clone(),
    };
    let Some(pool) = startup::start(how, stop_signal()).await? else {
        tracing::info!("stopped before the services answered");
        return Ok(ExitCode::SUCCESS);
    };
    let launch = Launch {
        pool,
        settings: &settings,
        topology,
        recorder,
        gate,
        shutdown,
    };
    for role in dedup(roles) {
        launch.spawn(role, &mut tasks).await?;
    }
    tracing::info!(roles = ?roles, settings = ?settings, "refund-worker running");

    wait(&mut tasks, &launch.shutdown).await?;
    drain(tasks, settings.shutdown_grace).await;
    Ok(ExitCode::SUCCESS)
}

/// What every role is built from.
struct Launch<'a> {
    pool: PgPool,
    settings: &'a Settings,
    topology: Topology,
    /// Installed whenever the HTTP role runs (it serves `/metrics`).
    recorder: Option<PrometheusHandle>,
    /// The HTTP listener's gate, opened once the HTTP role is built.
    gate: Gate,
    /// Cancelled once, when the process stops; every role watches it.
    shutdown: CancellationToken,
}

impl Launch<'_> {
    async fn spawn(&self, role: Role, tasks: &mut Roles) -> anyhow::Result<()> {
        let settings = self.settings;
        let pool = self.pool.clone();
        let stop = self.shutdown.clone();
        match role {
            Role::Intake => {
                let intake = Intake {
                    pool,
                    settings: settings.clone(),
                    topology: self.topology.clone(),
                };
                tasks.spawn(intake.run(stop));
            }
            Role::Submit => {
                let submitter = Submitter {
                    pool,
                    client: self.client()?,
                    partners: settings.alipay.partners.clone(),
                    notify_url: settings.alipay.notify_url.clone().unwrap_or_default(),
                    dback_notify_url: settings.alipay.dback_notify_url.clone(),
                    pwd_fallback: settings.alipay.pwd_fallback,
                    settings: settings.submit.clone(),
                    timeout: settings.alipay.timeout,
                    item_retry: settings.item_retry,
                };
                tasks.spawn(submitter.run(stop.clone()));
                if !settings.alipay.openapi.apps.is_empty() {
                    tasks.spawn(self.openapi_submitter()?.run(stop));
                }
            }
            Role::Http => {
                self.spawn_http().await?;
                self.spawn_admin(tasks).await?;
            }
            Role::Relay => {
                let relay = Relay {
                    pool,
                    amqp_url: settings.amqp.url.clone(),
                    topology: self.topology.clone(),
                };
                tasks.spawn(relay.run(stop));
            }
            Role::Reconcile => {
                let reconciler = Reconciler {
                    pool,
                    client: self.client()?,
                    partners: settings.alipay.partners.clone(),
                    after: settings.reconcile_after,
                    item_retry: settings.item_retry,
                    absence_settle: settings.submit.absence_settle,
                    batch_no_prefix: settings.batch.batch_no_prefix.clone(),
                };
                tasks.spawn(reconciler.run(stop));
            }
            Role::Batch => {
                let batcher = Batcher {
                    pool,
                    settings: settings.batch.clone(),
                };
                tasks.spawn(batcher.run(stop));
            }
        }
        Ok(())
    }

    /// The OpenAPI channel's submitter, beside the batch submitter.
    fn openapi_submitter(&self) -> anyhow::Result<OpenApiSubmitter> {
        let s = self.settings;
        let o = &s.alipay.openapi;
        let client = OpenApiClient::new(&o.gateway, s.alipay.timeout)
            .context("while building the OpenAPI HTTP client")?;
        let rules = Rules {
            retry_base: s.submit.retry_base,
            retry_cap: s.submit.retry_cap,
            give_up: s.submit.give_up,
            query_after: QUERY_NOT_BEFORE,
            item_retry: s.item_retry,
        };
        Ok(OpenApiSubmitter::new(
            self.pool.clone(),
            client,
            o.apps.clone(),
            rules,
            o.concurrency,
            o.calls_per_second,
            s.alipay.timeout,
        ))
    }

    /// Each role that talks to the gateway gets a client of its own.
    fn client(&self) -> anyhow::Result<AlipayClient> {
        let alipay = &self.settings.alipay;
        AlipayClient::new(&alipay.gateway, alipay.timeout).context("while building the HTTP client")
    }

    /// Alipay's notifications, the health checks and `/metrics` on HTTP_LISTEN
    /// (the listener itself is bound before start: [`listen_early`]).
    async fn spawn_http(&self) -> anyhow::Result<()> {
        let settings = self.settings;
        let state = CallbackState {
            pool: self.pool.clone(),
            client: self.client()?,
            partners: settings.alipay.partners.clone(),
            verify_notify_id: settings.alipay.verify_notify_id,
            item_retry: settings.item_retry,
            openapi_apps: settings.alipay.openapi.apps.clone(),
        };
        let recorder = self
            .recorder
            .clone()
            .context("the metrics recorder is installed whenever the HTTP role runs")?;
        let health = HealthState::new(self.pool.clone(), settings.amqp.url.clone(), recorder);
        self.gate.open(
            callback::router_with_limit(state, settings.notify_max_bytes)
                .merge(health::router(health)),
        );
        tracing::info!(listen = %settings.http_listen, "HTTP role ready");
        Ok(())
    }

    /// The operator page on ADMIN_LISTEN, beside the HTTP role when configured.
    async fn spawn_admin(&self, tasks: &mut Roles) -> anyhow::Result<()> {
        let Some(a) = &self.settings.admin else {
            return Ok(());
        };
        let state = AdminState::new(self.pool.clone(), Arc::new(self.settings.clone()), a);
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .with_context(|| format!("cannot listen on ADMIN_LISTEN {}", a.listen))?;
        let operators: Vec<&str> = a.operators.iter().map(|o| o.name.as_str()).collect();
        tracing::info!(listen = %a.listen, ?operators, "operator page on ADMIN_LISTEN");
        if a.legacy_token {
            tracing::warn!(
                "ADMIN_TOKEN is deprecated: give each person an [[operators]] table (name, token_file) so the log names who did what"
            );
        }
        let stop = self.shutdown.clone();
        tasks.spawn(async move {
            let app = admin::router(state).into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .context("the operator page's server failed")
        });
        Ok(())
    }
}

/// Binds HTTP_LISTEN and serves the gate: `/healthz` at once, the rest once
/// the HTTP role opens it.
async fn listen_early(
    settings: &Settings,
    gate: &Gate,
    shutdown: &CancellationToken,
    tasks: &mut Roles,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(settings.http_listen)
        .await
        .with_context(|| format!("cannot listen on HTTP_LISTEN {}", settings.http_listen))?;
    let router = gate.router();
    let stop = shutdown.clone();
    tasks.spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
            .context("the HTTP server failed")
    });
    Ok(())
}

/// Waits for the stop signal or the first role to end, then tells every
/// role to stop. A role ending by itself is an error: the process stops
/// with it rather than run on with a role missing.
async fn wait(tasks: &mut Roles, shutdown: &CancellationToken) -> anyhow::Result<()> {
    let failed = tokio::select! {
        _ = stop_signal() => None,
        Some(result) = tasks.join_next() => Some(result),
    };
    shutdown.cancel();
    let Some(result) = failed else {
        return Ok(());
    };
    let e = match result {
        Ok(Ok(())) => anyhow::anyhow!("a role stopped by itself"),
        Ok(Err(e)) => e,
        Err(join) => anyhow::anyhow!("a role panicked: {join}"),
    };
    Err(e.context("refund-worker stopped because a role failed"))
}

/// Gives the roles `grace` to finish what they hold.
async fn drain(mut tasks: Roles, grace: Duration) {
    tracing::info!(
        grace_ms = grace.as_millis() as u64,
        "stopping: finishing in-flight work"
    );
    let drained = tokio::time::timeout(grace, async {
        while let Some(r) = tasks.join_next().await {
            if let Ok(Err(e)) = r {
                tracing::warn!(error = %format!("{e:#}"), "a role ended with an error while stopping");
            }
        }
    })
    .await;
    if drained.is_err() {
        // Unacked deliveries return to the broker when the process exits.
        tracing::warn!("grace period over; leaving what is still in flight to the broker");
    }
}

fn dedup(roles: &[Role]) -> Vec<Role> {
    let mut out: Vec<Role> = Vec::new();
    for r in roles {
        if !out.contains(r) {
            out.push(*r);
        }
    }
    out
}
