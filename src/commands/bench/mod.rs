//! `refund-worker bench`: throughput as a ratio to what the broker itself does
//! on this machine, measured in the same run with the same client library,
//! because absolute figures on a shared 2-core machine drift from run to run.
//!
//! Each run uses fresh names and a fresh database and removes them afterwards.
//! The worker under test is a child process (`run --roles intake`), so its
//! peak memory and CPU time are its own.

mod ceiling;
mod cost;
mod end_to_end;
mod intake;
mod load;
mod openapi;
mod pipeline;
mod repeat;
mod rig;
mod stages;
mod statements;
mod submit;
mod wal;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::amqp;
use crate::cli::BenchProfile;
use crate::config::Settings;
use load::{Percentiles, ms};

/// One measured phase.
#[derive(Debug, Serialize)]
pub struct Phase {
    pub name: &'static str,
    pub events: usize,
    pub took_ms: u64,
    pub events_per_second: u64,
    /// From publish to consumed (ceiling) or to stored (intake).
    pub latency: Option<Percentiles>,
}

impl Phase {
    fn new(
        name: &'static str,
        events: usize,
        took: Duration,
        latency: Option<Percentiles>,
    ) -> Self {
        Self {
            name,
            events,
            took_ms: took.as_millis() as u64,
            events_per_second: load::rate(events, took).round() as u64,
            latency,
        }
    }
}

/// The whole record, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Report {
    pub profile: &'static str,
    pub date: String,
    pub machine: Machine,
    pub phases: Vec<Phase>,
    /// Intake events/s divided by the ceiling's, in thousandths.
    pub intake_ratio_permille: u64,
    pub worker_peak_rss_bytes: u64,
    pub worker_cpu_ms_per_1000: u64,
    /// What the intake phase cost each process, per 1 000 events.
    pub cost: cost::Cost,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub memory_bytes: u64,
    pub postgresql: String,
    pub rabbitmq: String,
}

pub use openapi::Knobs as OpenApiKnobs;

/// The steady profile's load.
#[derive(Debug, Clone, Copy)]
pub struct Steady {
    pub rate: u32,
    pub seconds: u32,
}

/// The profiles' own flags.
#[derive(Debug, Clone, Copy)]
pub struct Knobs {
    pub steady: Steady,
    pub openapi: OpenApiKnobs,
    /// Whole runs of an end-to-end profile (`--repeat`).
    pub repeat: usize,
    /// Worker processes of the pipeline's second run (`--workers`).
    pub workers: usize,
}

pub async fn bench(
    settings: &Settings,
    n: usize,
    profile: BenchProfile,
    knobs: Knobs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (steady, oa) = (knobs.steady, knobs.openapi);
    if n == 0 || steady.rate == 0 || steady.seconds == 0 {
        eprintln!("--refunds, --rate and --seconds must be at least 1");
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    if oa.concurrency == 0 || oa.calls_per_second == 0 {
        eprintln!("--openapi-concurrency and --openapi-calls-per-second must be at least 1");
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    if profile == BenchProfile::Submit {
        return submit::bench(settings, n, json).await;
    }
    let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();
    let conn = amqp::connect(&settings.amqp.url, "refund-worker bench")
        .await
        .context("while connecting to RabbitMQ (AMQP_URL)")?;
    if profile != BenchProfile::Intake {
        let run = end_to_end::Run {
            id: &id,
            n,
            profile,
            knobs,
            repeat: knobs.repeat,
            workers: knobs.workers,
        };
        let result = end_to_end::bench(settings, &conn, run, json).await;
        conn.close(200, "bench done".into()).await.ok();
        return result;
    }
    eprintln!("bench {id}: ceiling, {n} messages …");
    let ceiling = ceiling::measure(&conn, &format!("bench-{id}."), n).await?;
    eprintln!("bench {id}: intake, {n} events …");
    let measured = intake::measure(settings, &conn, &id, n).await?;
    conn.close(200, "bench done".into()).await.ok();

    let intake = measured.phase;
    let report = Report {
        profile: "intake",
        date: chrono::Utc::now().format("%Y-%m-%d").to_string(),
        machine: machine(measured.postgresql),
        intake_ratio_permille: intake.events_per_second * 1000 / ceiling.events_per_second.max(1),
        worker_peak_rss_bytes: measured.usage.0,
        worker_cpu_ms_per_1000: measured.usage.1 * 1000 / n as u64,
        cost: measured.cost,
        phases: vec![ceiling, intake],
    };
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(r: &Report) {
    print_heading(r.profile, &r.date, &r.machine);
    println!(
        "{:<10} {:>8} {:>9} {:>10} {:>10} {:>10} {:>10}",
        "phase", "events", "took ms", "events/s", "p50 ms", "p99 ms", "max ms"
    );
    for p in &r.phases {
        let (p50, p99, max) = p
            .latency
            .map(|l| (ms(l.p50_us), ms(l.p99_us), ms(l.max_us)))
            .unwrap_or_default();
        println!(
            "{:<10} {:>8} {:>9} {:>10} {:>10} {:>10} {:>10}",
            p.name, p.events, p.took_ms, p.events_per_second, p50, p99, max
        );
    }
    println!(
        "intake / ceiling: {}.{:03}",
        r.intake_ratio_permille / 1000,
        r.intake_ratio_permille % 1000
    );
    print_worker(r.worker_peak_rss_bytes, r.worker_cpu_ms_per_1000, "events");
    end_to_end::print_cost(&r.cost, "events");
}

/// The first line of every profile's table.
fn print_heading(profile: &str, date: &str, m: &Machine) {
    println!(
        "refund-worker bench --profile {profile} ({date}; {} cores, {} MiB; PostgreSQL {}; RabbitMQ {})",
        m.nproc,
        m.memory_bytes >> 20,
        m.postgresql,
        m.rabbitmq
    );
}

/// The last line: the worker's peak memory and CPU per 1000 of `what`.
fn print_worker(peak_rss_bytes: u64, cpu_ms_per_1000: u64, what: &str) {
    let tenths_mib = (peak_rss_bytes * 10) >> 20;
    println!(
        "worker: peak RSS {}.{} MiB, CPU {cpu_ms_per_1000} ms per 1000 {what}",
        tenths_mib / 10,
        tenths_mib % 10,
    );
}

fn machine(postgresql: String) -> Machine {
    let memory_bytes = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024;
    let rabbitmq = std::process::Command::new("rabbitmqctl")
        .arg("version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    Machine {
        nproc: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        memory_bytes,
        postgresql,
        rabbitmq,
    }
}
