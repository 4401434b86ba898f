//! A worker as a tool runs it: a child `refund-worker run` process on the
//! tool's own database and names, waited for until it consumes, stopped
//! with SIGTERM (as an orchestrator would), and measured from /proc.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::PARTNER;

/// A child `refund-worker run --roles ROLES` on the tool's database and names; `env`
/// adds to or overrides the defaults.
pub fn spawn_worker(
    db_url: &str,
    prefix: &str,
    roles: &str,
    env: &[(&str, &str)],
) -> anyhow::Result<Child> {
    worker_command(None, db_url, prefix, roles, env)?
        .spawn()
        .context("while starting the worker")
}

/// The same with a settings file, given as `--config FILE` before `run`.
pub fn spawn_configured_worker(
    config: &Path,
    db_url: &str,
    prefix: &str,
    roles: &str,
    env: &[(&str, &str)],
) -> anyhow::Result<Child> {
    worker_command(Some(config), db_url, prefix, roles, env)?
        .spawn()
        .context("while starting the worker")
}

/// The command [`spawn_worker`] runs, for a tool that adds to it.
pub fn worker_command(
    config: Option<&Path>,
    db_url: &str,
    prefix: &str,
    roles: &str,
    env: &[(&str, &str)],
) -> anyhow::Result<Command> {
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let mut cmd = Command::new(exe);
    if let Some(file) = config {
        cmd.arg("--config").arg(file);
    }
    cmd.args(["run", "--roles", roles])
        .env("DATABASE_URL", db_url)
        .env("AMQP_NAME_PREFIX", prefix)
        .env("AMQP_RESULTS_QUEUE", "false")
        .env("ALIPAY_PARTNER", PARTNER)
        .env("ALIPAY_KEY", "bench-key-not-a-secret")
        .env_remove("ALIPAY_KEY_FILE")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Ok(cmd)
}

/// Waits until the worker consumes from its queue (or has died).
pub async fn wait_for_consumer(
    channel: &lapin::Channel,
    queue: &str,
    child: &mut Child,
) -> anyhow::Result<()> {
    wait_for_consumers(channel, queue, std::slice::from_mut(child)).await
}

/// Waits until every one of `children` consumes `queue` (one consumer each).
pub async fn wait_for_consumers(
    channel: &lapin::Channel,
    queue: &str,
    children: &mut [Child],
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for child in children.iter_mut() {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("the worker exited before consuming: {status}");
            }
        }
        let q = crate::amqp::inspect(channel, queue).await?;
        if q.consumer_count() as usize >= children.len() {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the worker did not start consuming within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SIGTERM, then wait for the worker to exit.
pub fn stop(child: &mut Child) {
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let _ = child.wait();
}

/// Peak resident memory (VmHWM, bytes) and CPU time (user + system, ms) of a process.
pub fn process_usage(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on: a tick is 10 ms.
    Some((hwm_kib * 1024, ticks * 10))
}
