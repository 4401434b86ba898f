use std::io::Write;
use std::process::{Command, Stdio};

use crate::helpers::*;

pub fn worker(app: &TestApp) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_refund-worker"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in &app.env {
        cmd.env(k, v);
    }
    cmd
}

#[test]
fn a_bad_setting_stops_the_program_with_one_line_and_exit_code_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_refund-worker"))
        .args(["run"])
        .env("BATCH_MAX_ITEMS", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("BATCH_MAX_ITEMS"), "{err}");
}

#[test]
fn a_key_never_appears_in_an_error_or_in_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_refund-worker"))
        .args(["migrate"])
        .env("ALIPAY_PARTNER", "2088101122136241")
        .env("ALIPAY_KEY", "super secret key")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("super secret"));
    let help = Command::new(env!("CARGO_BIN_EXE_refund-worker"))
        .args(["run", "--help"])
        .env("ALIPAY_KEY", "super-secret-key")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&help.stdout).contains("super-secret"));
}

#[test]
fn a_config_file_is_read_and_a_typo_in_it_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "batch_lingr_ms = 5\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_refund-worker"))
        .args(["migrate", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("batch_lingr_ms"));
}

#[tokio::test]
async fn publish_then_refund_show_tells_the_story() {
    let mut app = TestApp::spawn().await;
    let input = format!(
        "{}\n\n{}\n",
        String::from_utf8(event("S-1", TRADE, r#""12.30""#)).unwrap(),
        String::from_utf8(event("S-2", &trade(2), "5")).unwrap()
    );
    let mut child = worker(&app)
        .args(["publish", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "published 2 events; the broker confirmed 2"
    );
    wait_for_count("both", 2, std::time::Duration::from_secs(60), || {
        app.refund_count()
    })
    .await;
    app.stop_intake().await;

    let out = worker(&app)
        .args(["refund", "show", "S-1", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["refund_id"], "S-1");
    assert_eq!(v["status"], "pending");
    assert_eq!(v["amount"], "12.30");
    assert_eq!(v["history"][0]["to_status"], "pending");
    assert_eq!(v["history"][0]["actor"], "intake");

    let out = worker(&app)
        .args(["refund", "show", "S-2"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("status   pending") && text.contains("amount   5.00 CNY"),
        "{text}"
    );

    let out = worker(&app)
        .args(["refund", "show", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
    app.cleanup().await;
}

#[test]
fn a_soak_duration_that_is_not_one_is_refused_with_exit_code_2() {
    for (value, said) in [("half-an-hour", "--duration"), ("0s", "--duration")] {
        let out = Command::new(env!("CARGO_BIN_EXE_refund-worker"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", format!("{}/postgres", pg_base()))
            .env("AMQP_URL", amqp_url())
            .args(["soak", "--duration", value])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "--duration {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(said), "--duration {value}: {err}");
        assert!(out.stdout.is_empty(), "no report for --duration {value}");
    }
}

#[test]
fn a_database_url_that_does_not_parse_stops_migrate_with_exit_code_2() {
    for (var, value) in [("DATABASE_URL", "not a url"), ("AMQP_URL", "not a url")] {
        let out = Command::new(env!("CARGO_BIN_EXE_refund-worker"))
            .args(["migrate"])
            .env(var, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(var), "{err}");
    }
}
