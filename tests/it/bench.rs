//! `refund-worker bench` at a tiny size, so the command cannot rot. No test
//! here asserts a speed: only that every profile runs to the end, cleans up
//! and reports what it measured.

use std::process::Command;

use crate::helpers::*;

fn bench(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_refund-worker"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", format!("{}/postgres", pg_base()))
        .env("AMQP_URL", amqp_url())
        .args(["bench", "--json"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bench {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_pipeline_profile_runs_every_refund_end_to_end_and_reports_each_stage() {
    let r = bench(&["--profile", "pipeline", "--refunds", "500"]);
    assert_eq!(r["profile"], "pipeline");
    assert_eq!(r["run"]["refunds"], 500);
    assert_eq!(r["run"]["succeeded"], 500, "the sandbox pays every 0.01");
    assert!(r["ceiling"]["events_per_second"].as_u64().unwrap() > 0);
    assert!(r["ratio_permille"].as_u64().is_some());
    assert!(r["run"]["publish_to_result"]["p99_us"].as_u64().unwrap() > 0);
    assert!(
        r["run"]["stages"]["batched_to_accepted_us"]
            .as_u64()
            .is_some()
    );
    assert!(r["run"]["requests_per_1000"].as_u64().unwrap() >= 1);
    assert!(r["run"]["worker_peak_rss_bytes"].as_u64().unwrap() > 0);
    // The two-hop ceiling, and where the cost went.
    assert!(r["ceiling_two_hops"]["events_per_second"].as_u64().unwrap() > 0);
    assert!(r["ratio_two_hops_permille"].as_u64().is_some());
    let cost = &r["run"]["cost"];
    // Every refund is stored once at least: a row per refund, an outbox row…
    assert!(
        cost["rows_inserted_per_1000"].as_u64().unwrap() >= 2000,
        "{cost}"
    );
    assert!(
        cost["rows_updated_per_1000"].as_u64().unwrap() >= 1000,
        "{cost}"
    );
    assert!(cost["wal_bytes_per_refund"].as_u64().unwrap() > 0, "{cost}");
    assert!(cost["postgres_cpu_ms_per_1000"].as_u64().is_some());
}

/// `--repeat`: every run's record, then each figure's median and spread.
#[test]
fn repeated_runs_end_with_medians() {
    let out = Command::new(env!("CARGO_BIN_EXE_refund-worker"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", format!("{}/postgres", pg_base()))
        .env("AMQP_URL", amqp_url())
        .args(["bench", "--profile", "pipeline", "--refunds", "200"])
        .args(["--repeat", "2", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "two runs and the summary");
    assert_eq!(lines[2]["runs"], 2);
    let names: Vec<&str> = lines[2]["figures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"ratio to two hops"), "{names:?}");
    assert!(names.contains(&"WAL bytes / refund"), "{names:?}");
}

#[test]
fn the_openapi_profile_pays_every_refund_once_with_one_call_each() {
    let r = bench(&["--profile", "openapi", "--refunds", "300"]);
    assert_eq!(r["profile"], "openapi");
    assert_eq!(r["run"]["refunds"], 300);
    assert_eq!(r["run"]["succeeded"], 300);
    assert!(r["ratio_permille"].as_u64().is_some());
    assert!(r["run"]["publish_to_result"]["p90_us"].as_u64().unwrap() > 0);
    assert!(
        r["run"].get("stages").is_none(),
        "no batches on this channel"
    );
    let oa = &r["openapi"];
    assert_eq!(oa["concurrency"], 16);
    assert_eq!(oa["paid_once"], 300);
    assert_eq!(oa["refused_calls"], 0);
    assert!(oa["refund_calls"].as_u64().unwrap() >= 300);
    assert!(oa["calls_per_1000"].as_u64().unwrap() >= 1000);
    assert!(r["run"]["worker_peak_rss_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn the_steady_profile_runs_at_its_rate_and_reports_latency() {
    let r = bench(&["--profile", "steady", "--rate", "100", "--seconds", "2"]);
    assert_eq!(r["profile"], "steady");
    assert_eq!(r["rate_per_second"], 100);
    assert_eq!(r["run"]["refunds"], 200);
    assert!(r["run"]["publish_to_accepted"]["p50_us"].as_u64().unwrap() > 0);
}

#[test]
fn the_intake_profile_reports_its_ratio_to_the_ceiling() {
    let r = bench(&["--profile", "intake", "--refunds", "500"]);
    assert_eq!(r["profile"], "intake");
    assert_eq!(r["phases"][1]["events"], 500);
    assert!(r["intake_ratio_permille"].as_u64().is_some());
    // What the events cost: a row each (and no more than a few others in
    // all), and the database's CPU and WAL.
    let cost = &r["cost"];
    let rows = cost["rows_inserted_per_1000"].as_u64().unwrap();
    assert!((1000..=1020).contains(&rows), "{rows} rows per 1000 events");
    assert!(cost["wal_bytes_per_refund"].as_u64().unwrap() > 0);
    assert!(cost["postgres_cpu_ms_per_1000"].as_u64().is_some());
}

/// `--workers 2`: the pipeline again with two worker processes on the one
/// database, every refund paid once, and its throughput against one.
#[test]
fn two_workers_on_one_database_are_measured_against_one() {
    let r = bench(&[
        "--profile",
        "pipeline",
        "--refunds",
        "300",
        "--workers",
        "2",
    ]);
    assert_eq!(r["workers"], 2);
    assert_eq!(r["run_with_workers"]["succeeded"], 300);
    assert!(r["workers_ratio_permille"].as_u64().unwrap() > 0);
}
