//! The soak's fault schedule, drawn from the seed: at a mean gap, one of —
//! SIGKILL a worker (restarted a moment later), cut the broker away, cut the
//! database away (each restored after a moment), or post a forged
//! notification to a worker. A worker is killed at least every few seconds.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::proxy::Proxy;
use super::{SoakArgs, Workers};

/// Faults injected, by kind.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Injected {
    pub worker_kills: usize,
    pub broker_cuts: usize,
    pub database_cuts: usize,
    pub forged_notifications: usize,
    /// Real restarts (`--restart-every`), counted by `restarts`.
    pub broker_restarts: usize,
    pub database_restarts: usize,
}

/// Injects faults until `stop`; restores everything before returning.
pub async fn run(
    workers: &mut Workers,
    pg: &Proxy,
    mq: &Proxy,
    args: &SoakArgs,
    stop: CancellationToken,
) -> anyhow::Result<Injected> {
    let mut rng = StdRng::seed_from_u64(args.seed ^ 0x5eed_fa17);
    let mut n = Injected::default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let mean = args.fault_every.as_millis().max(10) as u64;
    loop {
        let gap = Duration::from_millis(rng.random_range(mean / 2..=mean * 3 / 2));
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(gap) => {}
        }
        let pause = Duration::from_millis(rng.random_range(200..=1500));
        match rng.random_range(0..10) {
            0..=4 => {
                let i = rng.random_range(0..workers.children.len());
                workers.kill(i);
                n.worker_kills += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
                workers.spawn(i)?;
            }
            5 => {
                mq.cut();
                n.broker_cuts += 1;
                tokio::time::sleep(pause).await;
                mq.restore();
            }
            6 => {
                pg.cut();
                n.database_cuts += 1;
                tokio::time::sleep(pause).await;
                pg.restore();
            }
            _ => {
                let port = workers.ports[rng.random_range(0..workers.ports.len())];
                let id = format!("soak-forged-{}", n.forged_notifications);
                let body = format!(
                    "notify_time=2026-11-25+10%3A00%3A00&notify_type=batch_refund_notify&notify_id={id}\
                     &batch_no=20261125000000000001&success_num=1\
                     &result_details=2026000000000000000000000001%5E1.00%5ESUCCESS&sign_type=MD5\
                     &sign=0123456789abcdef0123456789abcdef"
                );
                // The worker may be down or the database cut: only a send
                // that reached a handler can be stored, so count those.
                let sent = http
                    .post(format!("http://127.0.0.1:{port}/alipay/notify"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await;
                if sent.is_ok_and(|r| r.status().as_u16() == 400) {
                    n.forged_notifications += 1;
                }
            }
        }
    }
    mq.restore();
    pg.restore();
    for i in 0..workers.children.len() {
        if workers.children[i].is_none() {
            workers.spawn(i)?;
        }
    }
    Ok(n)
}
