//! `refund-worker soak`: the whole system under faults, then every invariant
//! checked. N worker processes (every role) run against one fresh database
//! and one set of names, each through cuttable proxies to PostgreSQL and
//! RabbitMQ; the sandbox gateway (in-process) injects its faults at fixed
//! rates; a seeded schedule SIGKILLs workers (restarting them), stalls them
//! (SIGSTOP past the submitter's lease, then SIGCONT), cuts the broker and
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
//! - `proxy`: the cuttable TCP proxy · `faults`: the fault schedule
//! - `restarts`: real service restarts · `link`: the soak's own broker link
//! - `stall`: stopping and continuing workers

pub mod check;
mod faults;
mod link;
pub mod proxy;
mod restarts;
mod stall;
pub mod stream;

use std::collections::HashSet;
use std::process::{Child, ExitCode};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use serde::Serialize;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::amqp::{self, Topology};
use crate::commands::harness::PARTNER;
use crate::commands::harness::publish::publish_all;
use crate::commands::harness::scratch::{delete_topology, drop_database, with_database};
use crate::commands::harness::worker::{process_usage, spawn_worker, stop};
use crate::config::Settings;
use crate::sandbox::realism::RealismCounts;
use crate::sandbox::{self, PartnerKey, Realism, Sandbox, SandboxConfig};
use crate::storage;
use check::{DbFacts, Facts, Terminal};
use faults::Injected;
use link::Link;
use proxy::Proxy;
use restarts::Restarted;
use stall::{ALIPAY_TIMEOUT, Stalls};
use stream::{Kind, PAID_FEN};

const KEY: &str = "soak-key-not-a-secret";
/// The longest the run waits for quiescence after the faults stop.
const QUIET_LIMIT: Duration = Duration::from_secs(300);
/// The longest faults go on (they stop earlier once nine in ten refunds are done).
const FAULT_LIMIT: Duration = Duration::from_secs(2 * 3600);
/// The longest a slice of the stream may wait for its confirms.
const PUBLISH_LIMIT: Duration = Duration::from_secs(60);
/// How often a slice is published before the run gives up.
const PUBLISH_ATTEMPTS: usize = 10;
/// How long a lagged batch stays in the sandbox's backlog (`--realistic`),
/// in real time whatever the sandbox's time scale: longer than a few of
/// the workers' resends, shorter than their give-up age.
const GATEWAY_LAG: Duration = Duration::from_secs(3);
/// The workers' `SUBMIT_ABSENCE_SETTLE_MS`: well past the lag, so a
/// `REFUND_NOT_EXIST` that counts toward absence is never one the lag
/// caused (the default hour would outlast the soak).
const ABSENCE_SETTLE: Duration = GATEWAY_LAG.saturating_mul(4);

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
}

/// How the stream is cut into slices, and when each is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pacing {
    pub slices: usize,
    pub duration: Option<Duration>,
}

impl Pacing {
    /// Twenty slices 300 ms apart, or with a duration one slice a second
    /// (at least twenty), evenly over it; never more slices than events.
    pub fn new(events: usize, duration: Option<Duration>) -> Self {
        let wanted = duration.map_or(20, |d| (d.as_secs() as usize).max(20));
        Pacing {
            slices: wanted.min(events).max(1),
            duration,
        }
    }

    /// How long after the start slice `k` is due (`None`: right after the
    /// previous one and a 300 ms pause).
    pub fn due(&self, k: usize) -> Option<Duration> {
        let d = self.duration?;
        let k = u32::try_from(k).unwrap_or(u32::MAX);
        let n = u32::try_from(self.slices).unwrap_or(u32::MAX);
        Some(d.checked_mul(k).map_or(d, |dk| dk / n))
    }
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
    pub violations: Vec<String>,
}

/// The same URL through a proxy: host and port replaced by `addr`.
fn via(url: &str, addr: std::net::SocketAddr) -> anyhow::Result<String> {
    let mut u = reqwest::Url::parse(url).with_context(|| format!("cannot read the URL {url:?}"))?;
    u.set_host(Some(&addr.ip().to_string()))?;
    u.set_port(Some(addr.port()))
        .map_err(|()| anyhow::anyhow!("cannot set the port of {url:?}"))?;
    Ok(u.to_string())
}

/// host:port of a URL, for the proxy's target.
fn target(url: &str, default_port: u16) -> anyhow::Result<String> {
    let u = reqwest::Url::parse(url).with_context(|| format!("cannot read the URL {url:?}"))?;
    let host = u.host_str().unwrap_or("127.0.0.1");
    Ok(format!("{host}:{}", u.port().unwrap_or(default_port)))
}

/// The worker processes, each on its own HTTP port, restarted by the schedule.
pub(crate) struct Workers {
    db_url: String,
    amqp_url: String,
    prefix: String,
    gateway: String,
    pub ports: Vec<u16>,
    pub children: Vec<Option<Child>>,
    /// Who is stopped (`stall`) until when.
    stalls: Stalls,
}

impl Workers {
    pub fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let port = self.ports[i].to_string();
        let listen = format!("127.0.0.1:{port}");
        let notify = format!("http://127.0.0.1:{port}/alipay/notify");
        let timeout_ms = ALIPAY_TIMEOUT.as_millis().to_string();
        let settle_ms = ABSENCE_SETTLE.as_millis().to_string();
        // The workers log errors only, unless SOAK_WORKER_LOG asks for more
        // (a `RUST_LOG` filter), to see why a run did not settle.
        let worker_log = std::env::var("SOAK_WORKER_LOG").unwrap_or_else(|_| "error".into());
        let env = [
            ("AMQP_URL", self.amqp_url.as_str()),
            ("AMQP_RESULTS_QUEUE", "true"),
            ("ALIPAY_PARTNER", PARTNER),
            ("ALIPAY_KEY", KEY),
            ("ALIPAY_GATEWAY", self.gateway.as_str()),
            ("ALIPAY_NOTIFY_URL", notify.as_str()),
            ("ALIPAY_TIMEOUT_MS", timeout_ms.as_str()),
            ("HTTP_LISTEN", listen.as_str()),
            ("BATCH_LINGER_MS", "200"),
            ("SUBMIT_RETRY_BASE_MS", "50"),
            ("ITEM_RETRY_BASE_MS", "500"),
            ("SUBMIT_RETRY_CAP_MS", "1000"),
            ("SUBMIT_GIVE_UP_MS", "20000"),
            ("SUBMIT_ABSENCE_SETTLE_MS", settle_ms.as_str()),
            ("RECONCILE_AFTER_MS", "3000"),
            ("SHUTDOWN_GRACE_MS", "2000"),
            ("RUST_LOG", worker_log.as_str()),
        ];
        self.children[i] = Some(spawn_worker(
            &self.db_url,
            &self.prefix,
            "intake,batch,submit,http,relay,reconcile",
            &env,
        )?);
        Ok(())
    }

    /// SIGKILL, which ends a stopped process too: nothing to continue after.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            c.kill().ok();
            c.wait().ok();
        }
        self.stalls.forget(i);
    }

    /// SIGTERM and wait; a stopped worker is continued first, or it would
    /// never act on the signal and the wait would last for ever.
    fn stop_all(&mut self) {
        self.resume_all();
        for c in self.children.iter_mut().filter_map(Option::take) {
            let mut c = c;
            stop(&mut c);
        }
    }
}

impl Drop for Workers {
    /// An interrupted soak leaves no worker behind, stopped or running.
    fn drop(&mut self) {
        self.resume_all();
        for i in 0..self.children.len() {
            self.kill(i);
        }
    }
}

pub async fn soak(settings: &Settings, args: SoakArgs) -> anyhow::Result<ExitCode> {
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
        "soak: seed {} (replay with --seed {}), {} workers, {} refunds{over}{realistic}",
        args.seed, args.seed, args.workers, args.refunds
    );
    let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let db_name = format!("refund_worker_soak_{id}");
    let db_url = with_database(&settings.database_url, &db_name);
    let pool = storage::connect_and_migrate(&db_url, 4).await?;
    let prefix = format!("soak-{id}.");
    let topology = Topology::new(&prefix, true);
    let link = Link::open(&settings.amqp.url).await?;
    topology.declare(&link.channel).await?;

    let mut config = SandboxConfig::new(
        vec![PartnerKey {
            id: PARTNER.into(),
            key: KEY.into(),
        }],
        args.seed,
    );
    config.time_scale = "0.001".parse()?;
    config.trade_paid_fen = PAID_FEN;
    let f = &mut config.faults;
    f.http_5xx_rate = "0.03".parse()?;
    f.timeout_after_accept_rate = "0.03".parse()?;
    f.timeout_hold = Duration::from_secs(3);
    f.system_error_rate = "0.03".parse()?;
    f.processing_rate = "0.03".parse()?;
    f.item_failure_rate = "0.02".parse()?;
    f.notify_drop_rate = "0.1".parse()?;
    f.notify_duplicate_rate = "0.1".parse()?;
    f.notify_delay_rate = "0.1".parse()?;
    f.notify_delay = Duration::from_secs(60);
    f.notify_reorder_rate = "0.1".parse()?;
    if args.realistic {
        config.realism = Realism {
            lag: config.time_scale.unscale(GATEWAY_LAG),
            ..Realism::realistic()
        };
    }
    let gw = sandbox::start_local(config).await?;
    let (sandbox, gateway, stop_sandbox) = (gw.sandbox, gw.url, gw.stop);

    let pg = Proxy::start(&target(&settings.database_url, 5432)?).await?;
    let mq = Proxy::start(&target(&settings.amqp.url, 5672)?).await?;
    let mut ports = Vec::new();
    for _ in 0..args.workers {
        ports.push(
            std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port(),
        );
    }
    let mut workers = Workers {
        db_url: via(&db_url, pg.addr)?,
        amqp_url: via(&settings.amqp.url, mq.addr)?,
        prefix: prefix.clone(),
        gateway,
        ports,
        children: (0..args.workers).map(|_| None).collect(),
        stalls: Stalls::new(args.workers),
    };
    for i in 0..args.workers {
        workers.spawn(i)?;
    }

    let result = run(
        &pool,
        link,
        &topology,
        settings,
        &sandbox,
        &pg,
        &mq,
        &mut workers,
        &args,
    )
    .await;
    workers.stop_all();
    stop_sandbox.cancel();
    let report = result?;
    let clean = report.violations.is_empty();
    pool.close().await;
    if clean {
        drop_database(&settings.database_url, &db_name).await;
        delete_topology(settings, &prefix).await;
    } else {
        eprintln!("soak: kept database {db_name} and names {prefix}* for inspection");
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
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

/// Refunds in a terminal state. Only valid events are ever stored (the
/// others are dead-lettered, duplicates stored once), so this counts valid
/// refunds done without sending their ids: an array of a million ids every
/// half second was itself the heaviest load on the database.
async fn terminal_count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM refunds WHERE status IN ('succeeded', 'failed')")
        .fetch_one(pool)
        .await
}

#[allow(clippy::too_many_arguments)]
async fn run(
    pool: &PgPool,
    mut link: Link,
    topology: &Topology,
    settings: &Settings,
    sandbox: &Sandbox,
    pg: &Proxy,
    mq: &Proxy,
    workers: &mut Workers,
    args: &SoakArgs,
) -> anyhow::Result<Report> {
    let planned = stream::plan(args.refunds, args.seed, "soak");
    let valid: HashSet<&str> = planned
        .iter()
        .filter(|p| p.kind == Kind::Valid)
        .map(|p| p.refund_id.as_str())
        .collect();

    // Publish in slices while the faults run.
    let started = Instant::now();
    let faults_stop = CancellationToken::new();
    let (mut injected, published, restarted) = {
        let fault_run = faults::run(workers, pg, mq, args, faults_stop.clone());
        let restart_run = async {
            match args.restart_every {
                Some(every) => restarts::run(every, args.seed, faults_stop.clone())
                    .await
                    .inspect_err(|e| eprintln!("soak: no more real restarts: {e:#}")),
                None => Ok(Restarted::default()),
            }
        };
        let publishing = async {
            let published = publish_stream(&mut link, &planned, topology, args, started).await;
            if published.is_ok() {
                until_mostly_done(pool, valid.len(), args, started).await;
            }
            // Faults stop however publishing ended, or the run would wait
            // for them for ever.
            faults_stop.cancel();
            published
        };
        let (injected, published, restarted) = tokio::join!(fault_run, publishing, restart_run);
        (injected?, published?, restarted?)
    };
    injected.broker_restarts = restarted.broker;
    injected.database_restarts = restarted.database;
    let publish_seconds = started.elapsed().as_secs();
    anyhow::ensure!(
        published == planned.len(),
        "the broker confirmed {published} of {}",
        planned.len()
    );

    // Quiescence (see `quiet`).
    let quiet_from = Instant::now();
    loop {
        match quiet(pool, &link, topology, valid.len()).await {
            Ok(None) => break,
            Ok(Some(state)) if quiet_from.elapsed() > QUIET_LIMIT => {
                eprintln!("soak: not quiet after {QUIET_LIMIT:?}: {state}");
                break;
            }
            Ok(Some(_)) => {}
            // A restart shortly before the faults stopped: ask again.
            Err(e) => {
                eprintln!("soak: cannot tell whether it is quiet ({e:#}); asking again");
                if !link.channel.status().connected() {
                    link.reopen().await?;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let quiescence_seconds = quiet_from.elapsed().as_secs();
    workers.stop_all();

    // Collect: the workers are stopped, so the queue holds every event there
    // will be; consumed with a wide prefetch and `multiple` acks (one
    // `basic.get` round trip per event took minutes at a million).
    let queue = topology.results_queue.clone().unwrap_or_default();
    link.reopen().await?;
    let events = collect(&link.channel, &queue).await?;
    link.close().await;
    let listing = crate::dlq::list(
        &crate::dlq::Target::new(&settings.amqp.url, topology),
        &Default::default(),
    )
    .await?;
    let dead: Vec<(Option<String>, Option<String>, Vec<u8>)> = listing
        .letters
        .iter()
        .map(|l| (l.refund_id.clone(), l.code.clone(), l.body.clone()))
        .collect();
    let ledger = sandbox.ledger();
    let count =
        |sql: &'static str| async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await };
    let db = DbFacts {
        batches_over_1000: count("SELECT count(*) FROM (SELECT batch_no FROM batch_items GROUP BY batch_no HAVING count(*) > 1000) s").await?,
        batches_with_a_trade_twice: count("SELECT count(*) FROM (SELECT 1 FROM batch_items GROUP BY batch_no, trade_no HAVING count(*) > 1) s").await?,
        refunds_in_two_live_batches: count(
            "SELECT count(*) FROM (SELECT bi.refund_id FROM batch_items bi JOIN batches b USING (batch_no)
             WHERE b.status IN ('created', 'submitting', 'submitted', 'awaiting_operator') AND bi.result_code IS NULL
             GROUP BY bi.refund_id HAVING count(*) > 1) s",
        )
        .await?,
        forged_applied: count("SELECT count(*) FROM notifications WHERE notify_id LIKE 'soak-forged-%' AND verdict = 'applied'").await?,
        forged_stored: count("SELECT count(*) FROM notifications WHERE notify_id LIKE 'soak-forged-%'").await?,
    };
    let violations = check::violations(&Facts {
        planned: &planned,
        events: &events,
        dead: &dead,
        ledger: &ledger,
        db: &db,
        forged_sent: injected.forged_notifications,
    });
    Ok(Report {
        seed: args.seed,
        workers: args.workers,
        duration_seconds: args.duration.map(|d| d.as_secs()),
        events_published: published,
        valid_refunds: valid.len(),
        succeeded: events.iter().filter(|e| e.succeeded).count(),
        failed: events.iter().filter(|e| !e.succeeded).count(),
        dead_letters: dead.len(),
        faults: injected,
        sandbox_faults: "5xx 3 %, time-out after accepting 3 %, SYSTEM_ERROR 3 %, P 3 %, item failures 2 %, notifications dropped/duplicated/delayed/reordered 10 % each",
        realistic: args.realistic,
        realism: ledger.realism,
        publish_seconds,
        quiescence_seconds,
        soak_peak_rss_mib: process_usage(std::process::id()).map(|(bytes, _)| bytes >> 20),
        db,
        violations,
    })
}

/// Publishes the stream in paced slices. A slice the broker did not confirm
/// (a restart closed the link) is published again on a new link: intake
/// stores a repeated event once, and the check counts a repeated dead letter
/// once.
async fn publish_stream(
    link: &mut Link,
    planned: &[stream::Planned],
    topology: &Topology,
    args: &SoakArgs,
    started: Instant,
) -> anyhow::Result<usize> {
    let pacing = Pacing::new(planned.len(), args.duration);
    let size = planned.len().div_ceil(pacing.slices).max(1);
    let mut n = 0;
    for (k, slice) in planned.chunks(size).enumerate() {
        if let Some(due) = pacing.due(k) {
            tokio::time::sleep_until((started + due).into()).await;
        }
        for attempt in 1.. {
            let bodies = slice.iter().map(|p| p.body.clone());
            let sent = tokio::time::timeout(
                PUBLISH_LIMIT,
                publish_all(
                    &link.channel,
                    &topology.refunds_exchange,
                    crate::amqp::topology::APPROVED_KEY,
                    bodies,
                ),
            )
            .await;
            let error = match sent {
                Ok(Ok(_)) => break,
                Ok(Err(e)) => format!("{e:#}"),
                Err(_) => format!("no confirms within {PUBLISH_LIMIT:?}"),
            };
            anyhow::ensure!(
                attempt < PUBLISH_ATTEMPTS,
                "slice {k} of the stream was not confirmed in {attempt} attempts: {error}"
            );
            eprintln!("soak: slice {k} not confirmed ({error}); publishing it again");
            link.reopen().await?;
        }
        n += slice.len();
        if pacing.duration.is_none() {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    Ok(n)
}

/// Faults go on while the refunds flow: for the whole duration and until
/// nine in ten valid refunds are terminal (at least 3 s after the last
/// event), or [`FAULT_LIMIT`].
async fn until_mostly_done(pool: &PgPool, valid: usize, args: &SoakArgs, started: Instant) {
    tokio::time::sleep(Duration::from_secs(3)).await;
    if let Some(d) = args.duration {
        tokio::time::sleep_until((started + d).into()).await;
    }
    while started.elapsed() < FAULT_LIMIT {
        match terminal_count(pool).await {
            Ok(done) if done as usize * 10 >= valid * 9 => return,
            Ok(_) => {}
            // The database restarting: ask again.
            Err(e) => eprintln!("soak: cannot count terminal refunds ({e}); asking again"),
        }
        // A count over every refund: at a million rows, twice a second was
        // a fifth of a core taken from the system.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// `None` once every valid refund is terminal, every event published and
/// nothing left for intake (an invalid event last in the stream must be
/// dead-lettered before the dead letters are checked); else what is left.
async fn quiet(
    pool: &PgPool,
    link: &Link,
    topology: &Topology,
    valid: usize,
) -> anyhow::Result<Option<String>> {
    let done = terminal_count(pool).await?;
    let unpublished: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(pool)
            .await?;
    let unread = amqp::inspect(&link.channel, &topology.approved_queue)
        .await?
        .message_count();
    Ok((done as usize != valid || unpublished > 0 || unread > 0).then(|| {
        format!(
            "{done} of {valid} valid refunds terminal, {unpublished} events unpublished, {unread} events not yet read"
        )
    }))
}

/// The terminal events in `queue`, once each by `event_id` (the others are
/// read and dropped).
async fn collect(channel: &lapin::Channel, queue: &str) -> anyhow::Result<Vec<Terminal>> {
    let total = amqp::inspect(channel, queue).await?.message_count() as usize;
    channel.basic_qos(2000, BasicQosOptions::default()).await?;
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "soak-collect".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut events = Vec::new();
    let mut ids = HashSet::new();
    for n in 1..=total {
        let next = tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .map_err(|_| {
                anyhow::anyhow!("result events stopped arriving after {} of {total}", n - 1)
            })?;
        let Some(delivery) = next else {
            anyhow::bail!("the results consumer ended after {} of {total}", n - 1);
        };
        let delivery = delivery?;
        if n % 1000 == 0 || n == total {
            delivery.ack(BasicAckOptions { multiple: true }).await?;
        }
        let body: serde_json::Value = serde_json::from_slice(&delivery.data)?;
        if let Some(terminal) = Terminal::from_event(&body)
            && ids.insert(body["event_id"].as_str().unwrap_or_default().to_owned())
        {
            events.push(terminal);
        }
    }
    channel
        .basic_cancel("soak-collect".into(), BasicCancelOptions::default())
        .await?;
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_duration_the_stream_goes_in_twenty_unpaced_slices() {
        let p = Pacing::new(5000, None);
        assert_eq!(p.slices, 20);
        assert_eq!(p.due(7), None);
        assert_eq!(Pacing::new(3, None).slices, 3);
    }

    #[test]
    fn a_duration_spreads_one_slice_a_second_evenly_over_it() {
        let p = Pacing::new(1_000_000, Some(Duration::from_secs(1800)));
        assert_eq!(p.slices, 1800);
        assert_eq!(p.due(0), Some(Duration::ZERO));
        assert_eq!(p.due(900), Some(Duration::from_secs(900)));
        assert_eq!(p.due(1799), Some(Duration::from_secs(1799)));
        // Short runs still get twenty slices, never more than events.
        let short = Pacing::new(5000, Some(Duration::from_secs(5)));
        assert_eq!(short.slices, 20);
        assert_eq!(short.due(10), Some(Duration::from_millis(2500)));
        assert_eq!(Pacing::new(7, Some(Duration::from_secs(60))).slices, 7);
    }
}
