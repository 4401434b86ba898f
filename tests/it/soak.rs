//! The short soak profile: 3 workers, about 3 000 events spread over 8 s,
//! faults injected on a seeded schedule; every invariant must hold. (The long profile is a
//! release check: see the README.)

use std::process::Command;

use crate::helpers::*;

#[test]
fn the_short_soak_holds_every_invariant() {
    let out = Command::new(env!("CARGO_BIN_EXE_refund-worker"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", format!("{}/postgres", pg_base()))
        .env("AMQP_URL", amqp_url())
        .args([
            "soak",
            "--workers",
            "3",
            "--refunds",
            "3000",
            "--fault-every-ms",
            "700",
            "--duration",
            "8s",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let seed_line = stderr
        .lines()
        .find(|l| l.starts_with("soak: seed"))
        .unwrap_or("no seed printed");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
        panic!("{seed_line}: no report; stderr ends {tail:#?}")
    });
    assert!(
        out.status.success(),
        "{seed_line}: violations {}",
        r["violations"]
    );
    assert_eq!(r["violations"].as_array().unwrap().len(), 0);
    assert!(r["valid_refunds"].as_u64().unwrap() > 2500);
    assert_eq!(r["duration_seconds"], 8, "--duration 8s");
    assert!(
        r["publish_seconds"].as_u64().unwrap() >= 8,
        "faults for the whole duration"
    );
    assert!(
        r["dead_letters"].as_u64().unwrap() > 0,
        "invalid events and conflicts were sent"
    );
    let f = &r["faults"];
    let total: u64 = [
        "worker_kills",
        "broker_cuts",
        "database_cuts",
        "forged_notifications",
        "worker_stalls",
    ]
    .iter()
    .map(|k| f[k].as_u64().unwrap())
    .sum();
    assert!(
        f["worker_kills"].as_u64().unwrap() >= 1 && total >= 5,
        "{f}"
    );
}

/// The same short profile against a gateway that answers the way Alipay
/// really does (`--realistic`). It can only pass once the worker reads the
/// real grammar; until then run it by hand to see what it finds.
#[test]
#[ignore = "until the worker reads Alipay's real grammar (issue 14)"]
fn the_short_soak_against_a_realistic_gateway_holds_every_invariant() {
    let out = Command::new(env!("CARGO_BIN_EXE_refund-worker"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", format!("{}/postgres", pg_base()))
        .env("AMQP_URL", amqp_url())
        .args([
            "soak",
            "--workers",
            "3",
            "--refunds",
            "3000",
            "--fault-every-ms",
            "700",
            "--duration",
            "8s",
            "--realistic",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
        panic!("no report; stderr ends {tail:#?}")
    });
    assert_eq!(r["realistic"], true);
    let realism = r["realism"].as_object().unwrap();
    for case in [
        "tails",
        "five_field",
        "lower_case",
        "non_final",
        "poison_refusals",
    ] {
        assert!(realism[case].as_u64().unwrap() > 0, "{case}: {realism:?}");
    }
    assert!(out.status.success(), "violations {}", r["violations"]);
}
