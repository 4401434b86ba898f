//! `refund-worker sandbox` as a process: flags, the start line, SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::support::*;

/// Kills the sandbox if a failed assertion leaves it running.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.0.kill().ok();
            self.0.wait().ok();
        }
    }
}

#[tokio::test]
async fn the_sandbox_command_prints_its_address_and_seed_serves_and_stops_on_sigterm() {
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_refund-worker"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .args(["sandbox", "--listen", "127.0.0.1:0", "--seed", "77"])
            .args(["--partner", PARTNER, "--key", KEY, "--time-scale", "0.001"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stderr = BufReader::new(child.0.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(
        line.contains("(seed 77, partners 2088101122136241)"),
        "{line}"
    );
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .and_then(|url| url.strip_suffix("/gateway.do"))
        .unwrap()
        .to_owned();

    let ledger = client().get(format!("{base}/ledger")).send().await.unwrap();
    assert_eq!(ledger.status().as_u16(), 200);
    assert!(
        ledger
            .text()
            .await
            .unwrap()
            .contains("\"paid_total\":\"0.00\"")
    );

    let term = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let mut status = None;
    wait_until("the sandbox exits", Duration::from_secs(10), || {
        status = child.0.try_wait().unwrap();
        std::future::ready(status.is_some())
    })
    .await;
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}

#[test]
fn the_sandbox_command_refuses_a_partner_without_a_key_with_exit_code_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_refund-worker"))
        .env_clear()
        .args(["sandbox", "--listen", "127.0.0.1:0", "--partner", PARTNER])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--key"));
}
