//! The end-to-end profiles' record and table: `pipeline` (N at once against
//! the broker's ceiling), `steady` (a fixed rate) and `openapi` (the
//! pipeline with every refund on the OpenAPI channel, also against the
//! ceiling measured in the same run).

use std::process::ExitCode;

use serde::Serialize;

use super::load::ms;
use super::openapi::{self, OpenApiFigures};
use super::pipeline::{self, PipelineRun};
use super::{Knobs, Machine, Phase, ceiling, machine, print_heading, print_worker};
use crate::cli::BenchProfile;
use crate::config::Settings;

/// The record of `--profile pipeline|steady|openapi`, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct EndToEndReport {
    pub profile: &'static str,
    pub date: String,
    pub machine: Machine,
    /// The broker's own ceiling (pipeline and openapi).
    pub ceiling: Option<Phase>,
    /// Refunds/s divided by the ceiling's events/s, in thousandths.
    pub ratio_permille: Option<u64>,
    /// The two-hop ceiling (publish, relay with confirms, consume): what
    /// every refund costs the broker at least (pipeline and openapi).
    pub ceiling_two_hops: Option<Phase>,
    /// Refunds/s divided by the two-hop ceiling's, in thousandths.
    pub ratio_two_hops_permille: Option<u64>,
    /// The steady profile's rate.
    pub rate_per_second: Option<u32>,
    pub run: PipelineRun,
    /// Worker processes of `run_with_workers` (`--workers`).
    pub workers: usize,
    /// The pipeline again with `workers` processes on the one database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_with_workers: Option<PipelineRun>,
    /// Its refunds/s divided by the one-process run's, in thousandths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers_ratio_permille: Option<u64>,
    /// The OpenAPI channel's limits, calls and payments (openapi only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openapi: Option<OpenApiFigures>,
}

/// What to run.
pub struct Run<'a> {
    pub id: &'a str,
    pub n: usize,
    pub profile: BenchProfile,
    pub knobs: Knobs,
    /// Runs of the whole measurement; more than one adds medians.
    pub repeat: usize,
    /// Worker processes for a second pipeline run (`--workers`, 1: none).
    pub workers: usize,
}

pub async fn bench(
    settings: &Settings,
    conn: &lapin::Connection,
    r: Run<'_>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut reports = Vec::with_capacity(r.repeat);
    for round in 0..r.repeat.max(1) {
        let id = format!("{}{round}", r.id);
        let report = once(settings, conn, &r, &id).await?;
        if json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            print_end_to_end(&report);
            println!();
        }
        reports.push(report);
    }
    if reports.len() > 1 {
        let summary = super::repeat::Summary::of(&reports);
        if json {
            println!("{}", serde_json::to_string(&summary)?);
        } else {
            summary.print();
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One run: the ceilings, then the profile's refunds.
async fn once(
    settings: &Settings,
    conn: &lapin::Connection,
    r: &Run<'_>,
    id: &str,
) -> anyhow::Result<EndToEndReport> {
    let steady = r.knobs.steady;
    let (mut ceiling, mut ceiling_two_hops) = (None, None);
    if r.profile != BenchProfile::Steady {
        eprintln!("bench {id}: ceiling, {} messages …", r.n);
        ceiling = Some(ceiling::measure(conn, &format!("bench-{id}."), r.n).await?);
        eprintln!("bench {id}: two-hop ceiling, {} messages …", r.n);
        ceiling_two_hops =
            Some(ceiling::measure_two_hops(conn, &format!("bench-{id}."), r.n).await?);
    }
    let (name, run, figures) = match r.profile {
        BenchProfile::Steady => {
            let n = steady.rate as usize * steady.seconds as usize;
            eprintln!(
                "bench {id}: steady, {} refunds/s for {} s …",
                steady.rate, steady.seconds
            );
            let load = pipeline::Load::Rate(steady.rate);
            let run = pipeline::measure(settings, conn, id, n, load, 1).await?;
            ("steady", run, None)
        }
        BenchProfile::Openapi => {
            let oa = r.knobs.openapi;
            eprintln!(
                "bench {id}: openapi, {} refunds at once, concurrency {} …",
                r.n, oa.concurrency
            );
            let (run, figures) = openapi::measure(settings, conn, id, r.n, oa).await?;
            ("openapi", run, Some(figures))
        }
        _ => {
            eprintln!("bench {id}: pipeline, {} refunds at once …", r.n);
            let load = pipeline::Load::Saturation;
            let run = pipeline::measure(settings, conn, id, r.n, load, 1).await?;
            ("pipeline", run, None)
        }
    };
    // `--workers N`: the same pipeline again with N processes on the one
    // database, against the one-process run just measured.
    let mut with_workers = None;
    if r.profile == BenchProfile::Pipeline && r.workers > 1 {
        eprintln!(
            "bench {id}: pipeline, {} refunds at once, {} workers …",
            r.n, r.workers
        );
        let load = pipeline::Load::Saturation;
        let many =
            pipeline::measure(settings, conn, &format!("{id}w"), r.n, load, r.workers).await?;
        with_workers = Some(many);
    }
    let workers_ratio_permille = with_workers
        .as_ref()
        .map(|m| m.refunds_per_second * 1000 / run.refunds_per_second.max(1));
    let ratio = |c: &Option<Phase>| {
        c.as_ref()
            .map(|c| run.refunds_per_second * 1000 / c.events_per_second.max(1))
    };
    Ok(EndToEndReport {
        profile: name,
        date: chrono::Utc::now().format("%Y-%m-%d").to_string(),
        machine: machine(run.postgresql.clone()),
        ratio_permille: ratio(&ceiling),
        ratio_two_hops_permille: ratio(&ceiling_two_hops),
        ceiling,
        ceiling_two_hops,
        rate_per_second: (r.profile == BenchProfile::Steady).then_some(steady.rate),
        run,
        workers: r.workers.max(1),
        run_with_workers: with_workers,
        workers_ratio_permille,
        openapi: figures,
    })
}

fn print_end_to_end(r: &EndToEndReport) {
    let run = &r.run;
    print_heading(r.profile, &r.date, &r.machine);
    if let Some(c) = &r.ceiling {
        println!(
            "ceiling    {} messages in {} ms: {} events/s (one hop)",
            c.events, c.took_ms, c.events_per_second
        );
    }
    if let Some(c) = &r.ceiling_two_hops {
        println!(
            "ceiling2   {} messages in {} ms: {} events/s (two hops, relayed with confirms)",
            c.events, c.took_ms, c.events_per_second
        );
    }
    if let Some(rate) = r.rate_per_second {
        println!("load       {rate} refunds/s");
    }
    println!(
        "refunds    {} in {} ms: {} refunds/s ({} succeeded)",
        run.refunds, run.took_ms, run.refunds_per_second, run.succeeded
    );
    if let Some(ratio) = r.ratio_permille {
        println!(
            "{} / ceiling: {}.{:03}",
            r.profile,
            ratio / 1000,
            ratio % 1000
        );
    }
    if let Some(ratio) = r.ratio_two_hops_permille {
        println!(
            "{} / two-hop ceiling: {}.{:03}",
            r.profile,
            ratio / 1000,
            ratio % 1000
        );
    }
    if let (Some(many), Some(ratio)) = (&r.run_with_workers, r.workers_ratio_permille) {
        println!(
            "workers    {} processes: {} refunds/s, {}.{:03} × one process",
            r.workers,
            many.refunds_per_second,
            ratio / 1000,
            ratio % 1000
        );
    }
    if let Some(per_1000) = run.requests_per_1000 {
        println!("gateway    {per_1000} submission requests per 1000 refunds");
    }
    if let Some(oa) = &r.openapi {
        print_openapi(oa);
    }
    print_latency(r);
    if let Some(stages) = &run.stages {
        println!("median time in each stage");
        for (stage, us) in stages.named() {
            println!("  {stage:<22} {:>10} ms", ms(us));
        }
    }
    print_worker(
        run.worker_peak_rss_bytes,
        run.worker_cpu_ms_per_1000,
        "refunds",
    );
    print_cost(&run.cost, "refunds");
}

/// Where each refund's (or intake event's: `what`) cost went.
pub(super) fn print_cost(c: &super::cost::Cost, what: &str) {
    println!(
        "CPU per 1000 {what}: PostgreSQL {} ms, RabbitMQ {} ms, worker {} ms, bench {} ms",
        c.postgres_cpu_ms_per_1000,
        c.rabbitmq_cpu_ms_per_1000,
        c.worker_cpu_ms_per_1000,
        c.bench_cpu_ms_per_1000
    );
    let per = |v: u64| format!("{}.{:03}", v / 1000, v % 1000);
    println!(
        "PostgreSQL per {}: {} rows inserted, {} updated ({} HOT), {} deleted; {} WAL bytes",
        what.trim_end_matches('s'),
        per(c.rows_inserted_per_1000),
        per(c.rows_updated_per_1000),
        per(c.rows_hot_updated_per_1000),
        per(c.rows_deleted_per_1000),
        c.wal_bytes_per_refund
    );
    if !c.wal_by_relation.is_empty() {
        println!("WAL per refund by relation (bytes, of which full pages; records per 1000):");
        for r in c.wal_by_relation.iter().take(16) {
            println!(
                "  {:<44} {:>6} {:>6} {:>6}",
                r.relation, r.bytes_per_refund, r.fpi_bytes_per_refund, r.records_per_1000
            );
        }
    }
    if !c.statements.is_empty() {
        println!(
            "PostgreSQL time per refund by statement (µs, waits included; calls and rows per 1000):"
        );
        for s in &c.statements {
            println!(
                "  {:>5} {:>6} {:>6}  {}",
                s.exec_us_per_refund, s.calls_per_1000, s.rows_per_1000, s.statement
            );
        }
    }
}

fn print_openapi(oa: &OpenApiFigures) {
    println!(
        "gateway    {} refund + {} query calls ({} refused): {}.{:03} calls per refund",
        oa.refund_calls,
        oa.query_calls,
        oa.refused_calls,
        oa.calls_per_1000 / 1000,
        oa.calls_per_1000 % 1000
    );
    println!(
        "limits     OPENAPI_CONCURRENCY {}, OPENAPI_CALLS_PER_SECOND {}; {} paid exactly once",
        oa.concurrency, oa.calls_per_second, oa.paid_once
    );
}

/// Publish → result event for every profile; publish → accepted for batches.
fn print_latency(r: &EndToEndReport) {
    let run = &r.run;
    println!(
        "{:<24} {:>10} {:>10} {:>10} {:>10}",
        "latency", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    let mut rows = vec![("publish -> result event", run.publish_to_result)];
    if run.stages.is_some() {
        rows.push(("publish -> accepted", run.publish_to_accepted));
    }
    for (what, p) in rows {
        let (p50, p90, p99, max) = p
            .map(|l| (ms(l.p50_us), ms(l.p90_us), ms(l.p99_us), ms(l.max_us)))
            .unwrap_or_default();
        println!("{what:<24} {p50:>10} {p90:>10} {p99:>10} {max:>10}");
    }
}
