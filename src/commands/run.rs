//! `refund-worker run [--roles …]`: migrate, declare the topology (waiting
//! for services not answering yet, see `startup`), run the roles until
//! SIGTERM or Ctrl-C, then give in-flight work `SHUTDOWN_GRACE_MS`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, AdminState};
use crate::alipay::client::AlipayClient;
use crate::amqp::{self, Topology};
use crate::batching::Batcher;
use crate::callback::{self, CallbackState};
use crate::cli::Role;
use crate::config::Settings;
use crate::health::{self, HealthState};
use crate::intake::Intake;
use crate::outbox::Relay;
use crate::reconcile::Reconciler;
use crate::submit::Submitter;

pub async fn run(settings: Settings, roles: &[Role]) -> anyhow::Result<ExitCode> {
    let notify_url = settings.alipay.notify_url.clone();
    if roles.contains(&Role::Submit) && notify_url.is_none() {
        eprintln!(
            "refund-worker: configuration error: ALIPAY_NOTIFY_URL: required by the submit role"
        );
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    let topology = Topology::new(&settings.amqp.name_prefix, settings.amqp.results_queue);
    let Some(pool) = super::startup::start(&settings, &topology, stop_signal()).await? else {
        tracing::info!("stopped before the services answered");
        return Ok(ExitCode::SUCCESS);
    };

    // Before any role starts: a count recorded before the recorder exists is
    // lost (the intake can store its first window while the HTTP role binds).
    let recorder = if roles.contains(&Role::Http) {
        Some(health::install_recorder().context("while installing the metrics recorder")?)
    } else {
        None
    };
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    for role in dedup(roles) {
        match role {
            Role::Intake => {
                let intake = Intake {
                    pool: pool.clone(),
                    settings: settings.clone(),
                    topology: topology.clone(),
                };
                tasks.spawn(intake.run(shutdown.clone()));
            }
            Role::Submit => {
                let submitter = Submitter {
                    pool: pool.clone(),
                    client: AlipayClient::new(&settings.alipay.gateway, settings.alipay.timeout)
                        .context("while building the HTTP client")?,
                    partners: settings.alipay.partners.clone(),
                    notify_url: notify_url.clone().unwrap_or_default(),
                    dback_notify_url: settings.alipay.dback_notify_url.clone(),
                    pwd_fallback: settings.alipay.pwd_fallback,
                    settings: settings.submit.clone(),
                    timeout: settings.alipay.timeout,
                    item_retry: settings.item_retry,
                };
                tasks.spawn(submitter.run(shutdown.clone()));
            }
            Role::Http => {
                let state = CallbackState {
                    pool: pool.clone(),
                    client: AlipayClient::new(&settings.alipay.gateway, settings.alipay.timeout)
                        .context("while building the HTTP client")?,
                    partners: settings.alipay.partners.clone(),
                    verify_notify_id: settings.alipay.verify_notify_id,
                    item_retry: settings.item_retry,
                };
                let recorder = recorder
                    .clone()
                    .context("the metrics recorder is installed whenever the HTTP role runs")?;
                let health = HealthState::new(pool.clone(), settings.amqp.url.clone(), recorder);
                let listener = tokio::net::TcpListener::bind(settings.http_listen)
                    .await
                    .with_context(|| {
                        format!("cannot listen on HTTP_LISTEN {}", settings.http_listen)
                    })?;
                let stop = shutdown.clone();
                let max_bytes = settings.notify_max_bytes;
                tasks.spawn(async move {
                    axum::serve(
                        listener,
                        callback::router_with_limit(state, max_bytes).merge(health::router(health)),
                    )
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
                    .context("the HTTP server failed")
                });
                if let Some(a) = &settings.admin {
                    let state = AdminState {
                        pool: pool.clone(),
                        settings: Arc::new(settings.clone()),
                        token: a.token.clone(),
                    };
                    let listener = tokio::net::TcpListener::bind(a.listen)
                        .await
                        .with_context(|| format!("cannot listen on ADMIN_LISTEN {}", a.listen))?;
                    tracing::info!(listen = %a.listen, "operator page on ADMIN_LISTEN");
                    let stop = shutdown.clone();
                    tasks.spawn(async move {
                        axum::serve(listener, admin::router(state))
                            .with_graceful_shutdown(stop.cancelled_owned())
                            .await
                            .context("the operator page's server failed")
                    });
                }
            }
            Role::Relay => {
                let relay = Relay {
                    pool: pool.clone(),
                    amqp_url: settings.amqp.url.clone(),
                    topology: topology.clone(),
                };
                tasks.spawn(relay.run(shutdown.clone()));
            }
            Role::Reconcile => {
                let reconciler = Reconciler {
                    pool: pool.clone(),
                    client: AlipayClient::new(&settings.alipay.gateway, settings.alipay.timeout)
                        .context("while building the HTTP client")?,
                    partners: settings.alipay.partners.clone(),
                    after: settings.reconcile_after,
                    item_retry: settings.item_retry,
                    absence_settle: settings.submit.absence_settle,
                    batch_no_prefix: settings.batch.batch_no_prefix.clone(),
                };
                tasks.spawn(reconciler.run(shutdown.clone()));
            }
            Role::Batch => {
                let batcher = Batcher {
                    pool: pool.clone(),
                    settings: settings.batch.clone(),
                };
                tasks.spawn(batcher.run(shutdown.clone()));
            }
        }
    }
    tracing::info!(roles = ?roles, settings = ?settings, "refund-worker running");

    let failed = tokio::select! {
        _ = stop_signal() => None,
        Some(result) = tasks.join_next() => Some(result),
    };
    shutdown.cancel();
    if let Some(result) = failed {
        let e = match result {
            Ok(Ok(())) => anyhow::anyhow!("a role stopped by itself"),
            Ok(Err(e)) => e,
            Err(join) => anyhow::anyhow!("a role panicked: {join}"),
        };
        return Err(e.context("refund-worker stopped because a role failed"));
    }
    tracing::info!(
        grace_ms = settings.shutdown_grace.as_millis() as u64,
        "stopping: finishing in-flight work"
    );
    let drained = tokio::time::timeout(settings.shutdown_grace, async {
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
    Ok(ExitCode::SUCCESS)
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

/// Declares the topology once, so every role starts against a complete one.
pub(super) async fn declare(settings: &Settings, topology: &Topology) -> anyhow::Result<()> {
    let conn = amqp::connect(&settings.amqp.url, "refund-worker setup")
        .await
        .context("while connecting to RabbitMQ (AMQP_URL)")?;
    let channel = conn.create_channel().await?;
    topology
        .declare(&channel)
        .await
        .context("while declaring the topology")?;
    conn.close(200, "declared".into()).await.ok();
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                ctrl_c.await.ok();
            }
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.ok();
}
