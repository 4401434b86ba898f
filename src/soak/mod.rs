//! `refund-worker soak`: the whole system under faults, then every invariant
//! checked. N worker processes (every role) run against one fresh database
//! and one set of names, each through cuttable proxies to PostgreSQL and
//! RabbitMQ, serving two partners at once: the mapi one (batches) and an
//! OpenAPI one (`alipay.trade.refund` per refund) that a share of the
//! stream's trades names; the sandbox gateway (in-process) injects its
//! faults on both channels at fixed rates; a seeded schedule SIGKILLs
//! workers (restarting them), stalls them (SIGSTOP past the submitter's
//! lease, then SIGCONT), cuts the broker and
//! the database away for a moment, and posts forged notifications, while a
//! seeded stream of refunds is published; with `--restart-every`, RabbitMQ
//! and PostgreSQL are also really restarted; with `--realistic`, the sandbox
//! also answers the way the real gateway does (its realism preset, batches
//! lagging in its backlog for [`GATEWAY_LAG`] included). Then the
//! faults stop, the run waits (bounded) for quiescence, and `check` judges
//! the invariants from the result events, the dead letters, the ledger and
//! the database. The seed is printed so a failing run can be replayed.
//!
//! - `stream`: the traffic (pure) · `check`: the invariants (pure)
//! - `gateway`: the sandbox's faults · `workers`: the worker processes
//! - `openapi`: the OpenAPI partner, its keys and the workers' config file
//! - `proxy`: the cuttable TCP proxy · `faults`: the fault schedule
//! - `restarts`: real service restarts · `link`: the soak's own broker link
//! - `stall`: stopping and continuing workers
//! - `publishing`: the stream in paced slices · `progress`: mostly done, quiet
//! - `collect`: result events, dead letters and database counts for `check`

pub(crate) mod check;
mod cluster;
mod collect;
mod faults;
mod gateway;
mod link;
mod openapi;
mod progress;
pub mod proxy;
mod publishing;
mod restarts;
mod stall;
pub(crate) mod stream;
mod workers;

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::amqp::Topology;
use crate::commands::harness::scratch::{delete_topology, drop_database, with_database};
use crate::commands::harness::worker::process_usage;
use crate::config::Settings;
use crate::sandbox::realism::RealismCounts;
use crate::sandbox::{self, Sandbox};
use crate::storage;
use check::{DbFacts, Facts, OpenApiFigures};
use faults::Injected;
use link::Link;
use proxy::{Proxy, target, via};
use restarts::Restarted;
use stream::{Kind, Planned};
use workers::Workers;

/// What `soak` was asked.
#[derive(Debug, Clone)]
pub struct SoakArgs {
    pub workers: usize,
    pub refunds: usize,
    pub seed: u64,
    /// The mean gap between injected faults.
    pub fault_every: Duration,
    /// Spread the events over this long (faults throughout); `None`: as fast
    /// as the broker confirms them.
    pub duration: Option<Duration>,
    /// Really restart RabbitMQ or PostgreSQL at about this interval.
    pub restart_every: Option<Duration>,
    /// The sandbox answers with its realism preset on too.
    pub realistic: bool,
    /// The share of trades sent on the OpenAPI partner (0..=1).
    pub openapi_share: f64,
    /// `--cluster`: kill a node of `deploy/cluster.sh`'s cluster at about
    /// this interval (AMQP_URL must name its nodes).
    pub kill_node_every: Option<Duration>,
}

/// The report, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Report {
    pub seed: u64,
    pub workers: usize,
    /// `--duration`, seconds, when given.
    pub duration_seconds: Option<u64>,
    pub events_published: usize,
    pub valid_refunds: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub dead_letters: usize,
    pub faults: Injected,
    pub sandbox_faults: &'static str,
    /// `--openapi-share`: the share of trades on the OpenAPI partner.
    pub openapi_share: f64,
    /// The OpenAPI channel's refunds, calls, unknown outcomes met and payments.
    pub openapi: OpenApiFigures,
    pub openapi_sandbox_faults: &'static str,
    /// Whether the sandbox's realism preset was on (`--realistic`).
    pub realistic: bool,
    /// How often the sandbox injected each realistic case (all 0 without `--realistic`).
    pub realism: RealismCounts,
    pub publish_seconds: u64,
    pub quiescence_seconds: u64,
    /// Peak resident memory of the soak process itself (it holds the plan,
    /// the terminal events and the dead letters to check them), MiB.
    pub soak_peak_rss_mib: Option<u64>,
    pub db: DbFacts,
    /// `--cluster`: the broker nodes killed and what it cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<cluster::NodeFaults>,
    pub violations: Vec<String>,
}

/// What a run works against: set up by [`soak`], stopped after [`run`].
struct Rig {
    pool: PgPool,
    topology: Topology,
    sandbox: Sandbox,
    pg: Proxy,
    mq: Proxy,
    workers: Workers,
}

pub async fn soak(settings: &Settings, args: SoakArgs) -> anyhow::Result<ExitCode> {
    announce(&args);
    let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let db_name = format!("refund_worker_soak_{id}");
    let db_url = with_database(&settings.database_url, &db_name);
    let pool = storage::connect_and_migrate(&db_url, 4).await?;
    let prefix = format!("soak-{id}.");
    let topology = Topology::new(&prefix, true);
    let link = Link::open(&settings.amqp.url).await?;
    topology.declare(&link.channel).await?;

    let gw = sandbox::start_local(gateway::config(&args)?).await?;
    let pg = Proxy::start(&target(&settings.database_url, 5432)?).await?;
    // The workers reach the broker through a cuttable proxy, in front of
    // AMQP_URL's first address (a cluster's other nodes are not cut).
    let addresses = crate::amqp::addresses::parse(&settings.amqp.url)?;
    let broker = addresses.first().context("AMQP_URL names no broker")?;
    anyhow::ensure!(
        args.kill_node_every.is_none() || addresses.len() >= 3,
        "--cluster needs AMQP_URL to name the cluster's three nodes (deploy/cluster.sh start prints it)"
    );
    let mq = Proxy::start(&target(broker.url(), 5672)?).await?;
    // With --cluster the workers also know the other nodes, directly.
    let mut worker_amqp = via(broker.url(), mq.addr)?;
    if args.kill_node_every.is_some() {
        for other in &addresses[1..] {
            worker_amqp.push(',');
            worker_amqp.push_str(other.url());
        }
    }
    let workers = Workers::start(
        args.workers,
        via(&db_url, pg.addr)?,
        worker_amqp,
        prefix.clone(),
        gw.url,
        openapi::WorkerConfig::write(&id)?,
    )?;
    let mut rig = Rig {
        pool,
        topology,
        sandbox: gw.sandbox,
        pg,
        mq,
        workers,
    };

    let result = run(&mut rig, link, settings, &args).await;
    rig.workers.stop_all();
    gw.stop.cancel();
    let report = result?;
    rig.pool.close().await;
    conclude(settings, &db_name, &prefix, &report).await
}

/// The seed first, so a run that never ends can still be replayed.
fn announce(args: &SoakArgs) {
    let over = args
        .duration
        .map(|d| format!(" over {}", crate::dlq::Age(d)))
        .unwrap_or_default();
    let realistic = if args.realistic {
        ", realistic gateway"
    } else {
        ""
    };
    eprintln!(
        "soak: seed {} (replay with --seed {}), {} workers, {} refunds ({:.0} % of trades on OpenAPI){over}{realistic}",
        args.seed,
        args.seed,
        args.workers,
        args.refunds,
        args.openapi_share * 100.0
    );
}

/// Prints the report; removes the database and names after a clean run and
/// keeps them for inspection after a failed one.
async fn conclude(
    settings: &Settings,
    db_name: &str,
    prefix: &str,
    report: &Report,
) -> anyhow::Result<ExitCode> {
    let clean = report.violations.is_empty();
    if clean {
        drop_database(&settings.database_url, db_name).await;
        delete_topology(settings, prefix).await;
    } else {
        eprintln!("soak: kept database {db_name} and names {prefix}* for inspection");
    }
    println!("{}", serde_json::to_string_pretty(report)?);
    if clean {
        eprintln!("soak: every invariant held (seed {})", report.seed);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "soak: {} violations (seed {})",
            report.violations.len(),
            report.seed
        );
        Ok(ExitCode::from(1))
    }
}

/// The run in three phases: the stream under faults, quiescence, and the
/// checks on what was collected with the workers stopped.
async fn run(
    rig: &mut Rig,
    mut link: Link,
    settings: &Settings,
    args: &SoakArgs,
) -> anyhow::Result<Report> {
    let planned = stream::plan(
        args.refunds,
        args.seed,
        "soak",
        args.openapi_share,
        openapi::PARTNER,
    );
    let valid = planned
        .iter()
        .filter(|p| p.kind == Kind::Valid)
        .map(|p| p.refund_id.as_str())
        .collect::<HashSet<&str>>()
        .len();

    let started = Instant::now();
    let (injected, published, nodes) = under_faults(rig, &mut link, &planned, valid, args).await?;
    let publish_seconds = started.elapsed().as_secs();
    anyhow::ensure!(
        published == planned.len(),
        "the broker confirmed {published} of {}",
        planned.len()
    );

    let quiet_from = Instant::now();
    progress::until_quiet(&rig.pool, &mut link, &rig.topology, valid).await?;
    let quiescence_seconds = quiet_from.elapsed().as_secs();
    rig.workers.stop_all();

    let queue = rig.topology.results_queue.clone().unwrap_or_default();
    link.reopen().await?;
    let events = collect::terminal_events(&link.channel, &queue).await?;
    link.close().await;
    let dead = collect::dead_letters(&settings.amqp.url, &rig.topology).await?;
    let ledger = rig.sandbox.ledger();
    let db = collect::db_facts(&rig.pool).await?;
    let facts = Facts {
        planned: &planned,
        events: &events,
        dead: &dead,
        ledger: &ledger,
        db: &db,
        forged_sent: injected.forged_notifications,
    };
    let violations = check::violations(&facts);
    let openapi = check::figures(&facts);
    Ok(Report {
        seed: args.seed,
        workers: args.workers,
        duration_seconds: args.duration.map(|d| d.as_secs()),
        events_published: published,
        valid_refunds: valid,
        succeeded: events.iter().filter(|e| e.succeeded).count(),
        failed: events.iter().filter(|e| !e.succeeded).count(),
        dead_letters: dead.len(),
        faults: injected,
        sandbox_faults: gateway::FAULTS,
        openapi_share: args.openapi_share,
        openapi,
        openapi_sandbox_faults: gateway::OPENAPI_FAULTS,
        realistic: args.realistic,
        realism: ledger.realism,
        publish_seconds,
        quiescence_seconds,
        soak_peak_rss_mib: process_usage(std::process::id()).map(|(bytes, _)| bytes >> 20),
        db,
        cluster: nodes,
        violations,
    })
}

/// Publishes the stream while the faults (and, with `--restart-every`, the
/// real restarts) run; they stop once publishing has ended and most refunds
/// are done. Returns the faults injected and the events confirmed.
async fn under_faults(
    rig: &mut Rig,
    link: &mut Link,
    planned: &[Planned],
    valid: usize,
    args: &SoakArgs,
) -> anyhow::Result<(Injected, usize, Option<cluster::NodeFaults>)> {
    let started = Instant::now();
    let faults_stop = CancellationToken::new();
    let Rig {
        pool,
        topology,
        pg,
        mq,
        workers,
        ..
    } = rig;
    let fault_run = faults::run(workers, pg, mq, args, faults_stop.clone());
    let restart_run = async {
        match args.restart_every {
            Some(every) => restarts::run(every, args.seed, faults_stop.clone())
                .await
                .inspect_err(|e| eprintln!("soak: no more real restarts: {e:#}")),
            None => Ok(Restarted::default()),
        }
    };
    let cluster_run = async {
        match args.kill_node_every {
            Some(every) => {
                let target = cluster::Target {
                    script: std::env::var_os("CLUSTER_SH")
                        .map(Into::into)
                        .unwrap_or_else(|| "deploy/cluster.sh".into()),
                    queue: topology.approved_queue.clone(),
                };
                cluster::run(&target, every, args.seed, pool, faults_stop.clone())
                    .await
                    .map(Some)
            }
            None => Ok(None),
        }
    };
    let publishing = async {
        let published = publishing::publish_stream(link, planned, topology, args, started).await;
        if published.is_ok() {
            progress::until_mostly_done(pool, valid, args, started).await;
        }
        // Faults stop however publishing ended, or the run would wait
        // for them for ever.
        faults_stop.cancel();
        published
    };
    let (injected, published, restarted, nodes) =
        tokio::join!(fault_run, publishing, restart_run, cluster_run);
    let (mut injected, published, restarted) = (injected?, published?, restarted?);
    injected.broker_restarts = restarted.broker;
    injected.database_restarts = restarted.database;
    Ok((injected, published, nodes?))
}
