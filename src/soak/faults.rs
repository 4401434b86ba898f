//! The soak's fault schedule, drawn from the seed: at a mean gap, one of —
//! SIGKILL a worker (restarted a moment later), cut the broker away, cut the
//! database away (each restored after a moment), post a forged notification
//! to a worker, or stall a worker (SIGSTOP past its lease, SIGCONT after:
//! see `stall`). A worker is killed at least every few seconds; one is
//! stalled about every ten faults, the others carrying on meanwhile.
//!
//! Invariants: [`draw`] is pure and takes the same four draws whatever the
//! fault, so a seed replays the same schedule; everything cut is restored
//! and every stopped worker continued before [`run`] returns, also when it
//! fails.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::proxy::Proxy;
use super::stall::stall_length;
use super::{SoakArgs, Workers};

/// Faults injected, by kind.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Injected {
    pub worker_kills: usize,
    pub broker_cuts: usize,
    pub database_cuts: usize,
    pub forged_notifications: usize,
    /// Workers stopped past their lease and continued.
    pub worker_stalls: usize,
    /// Real restarts (`--restart-every`), counted by `restarts`.
    pub broker_restarts: usize,
    pub database_restarts: usize,
}

/// One fault of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL this worker, start it again after a moment.
    Kill { worker: usize },
    /// Cut the broker away for this long.
    CutBroker { pause: Duration },
    /// Cut the database away for this long.
    CutDatabase { pause: Duration },
    /// Post a forged notification to this worker.
    Forge { worker: usize },
    /// Stop this worker past its lease, then continue it.
    Stall { worker: usize },
}

/// A fault and how long before it comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    pub gap: Duration,
    pub fault: Fault,
}

/// The next fault for `workers` workers at a mean gap of `mean_ms`; four
/// draws (gap, pause, kind, worker) whatever the fault. Of twenty: nine
/// kills, two broker cuts, two database cuts, five forged notifications,
/// two stalls.
pub fn draw(rng: &mut impl Rng, mean_ms: u64, workers: usize) -> Planned {
    let mean = mean_ms.max(10);
    let gap = Duration::from_millis(rng.random_range(mean / 2..=mean * 3 / 2));
    let pause = Duration::from_millis(rng.random_range(200..=1500));
    let kind = rng.random_range(0..20);
    let worker = rng.random_range(0..workers.max(1));
    let fault = match kind {
        0..=8 => Fault::Kill { worker },
        9..=10 => Fault::CutBroker { pause },
        11..=12 => Fault::CutDatabase { pause },
        13..=17 => Fault::Forge { worker },
        _ => Fault::Stall { worker },
    };
    Planned { gap, fault }
}

/// Injects faults until `stop`; restores everything before returning.
pub async fn run(
    workers: &mut Workers,
    pg: &Proxy,
    mq: &Proxy,
    args: &SoakArgs,
    stop: CancellationToken,
) -> anyhow::Result<Injected> {
    let mut n = Injected::default();
    let injected = inject(workers, pg, mq, args, &stop, &mut n).await;
    workers.resume_all();
    mq.restore();
    pg.restore();
    injected?;
    for i in 0..workers.children.len() {
        if workers.children[i].is_none() {
            workers.spawn(i)?;
        }
    }
    Ok(n)
}

async fn inject(
    workers: &mut Workers,
    pg: &Proxy,
    mq: &Proxy,
    args: &SoakArgs,
    stop: &CancellationToken,
    n: &mut Injected,
) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(args.seed ^ 0x5eed_fa17);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let mean = args.fault_every.as_millis() as u64;
    loop {
        let planned = draw(&mut rng, mean, workers.children.len());
        if !wait(workers, Instant::now() + planned.gap, Some(stop)).await {
            return Ok(());
        }
        match planned.fault {
            Fault::Kill { worker } => {
                workers.kill(worker);
                n.worker_kills += 1;
                wait(workers, Instant::now() + Duration::from_millis(200), None).await;
                workers.spawn(worker)?;
            }
            Fault::CutBroker { pause } => {
                mq.cut();
                n.broker_cuts += 1;
                wait(workers, Instant::now() + pause, None).await;
                mq.restore();
            }
            Fault::CutDatabase { pause } => {
                pg.cut();
                n.database_cuts += 1;
                wait(workers, Instant::now() + pause, None).await;
                pg.restore();
            }
            // A stopped worker would hold the post (and this schedule) until
            // its time-out: skipped.
            Fault::Forge { worker } if workers.is_stalled(worker) => {}
            Fault::Forge { worker } => {
                if forge(&http, workers.ports[worker], n.forged_notifications).await {
                    n.forged_notifications += 1;
                }
            }
            Fault::Stall { worker } => {
                let until = Instant::now() + stall_length();
                if workers.stall(worker, until) {
                    n.worker_stalls += 1;
                }
            }
        }
    }
}

/// Waits until `until`, continuing stalled workers as their stalls end;
/// false when `stop` came first.
async fn wait(workers: &mut Workers, until: Instant, stop: Option<&CancellationToken>) -> bool {
    loop {
        let now = Instant::now();
        workers.resume_due(now);
        if now >= until {
            return true;
        }
        let wake = workers.next_resume().map_or(until, |r| r.min(until));
        let stopped = async {
            match stop {
                Some(stop) => stop.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stopped => return false,
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}

/// Posts forged notification number `k` to the worker on `port`; true when
/// it reached a handler that refused it (only those can be stored: the
/// worker may be down, stalled or its database cut).
async fn forge(http: &reqwest::Client, port: u16, k: usize) -> bool {
    let id = format!("soak-forged-{k}");
    let body = format!(
        "notify_time=2026-11-25+10%3A00%3A00&notify_type=batch_refund_notify&notify_id={id}\
         &batch_no=20261125000000000001&success_num=1\
         &result_details=2026000000000000000000000001%5E1.00%5ESUCCESS&sign_type=MD5\
         &sign=0123456789abcdef0123456789abcdef"
    );
    let sent = http
        .post(format!("http://127.0.0.1:{port}/alipay/notify"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await;
    sent.is_ok_and(|r| r.status().as_u16() == 400)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(seed: u64, n: usize) -> Vec<Planned> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n).map(|_| draw(&mut rng, 1000, 3)).collect()
    }

    #[test]
    fn the_same_seed_draws_the_same_schedule() {
        assert_eq!(schedule(15, 200), schedule(15, 200));
        assert_ne!(schedule(15, 200), schedule(16, 200));
    }

    #[test]
    fn every_draw_takes_the_same_values_whatever_the_fault() {
        // Drawn one by one with a fresh generator per fault, each starting
        // where the previous left off, the schedule is the same: a fault's
        // kind never changes how much the next one reads.
        let mut rng = StdRng::seed_from_u64(3);
        let mut values = Vec::new();
        for _ in 0..200 {
            values.push((
                rng.random_range(500..=1500u64),
                rng.random_range(200..=1500u64),
                rng.random_range(0..20),
                rng.random_range(0..3usize),
            ));
        }
        let plans = schedule(3, 200);
        for ((gap, pause, _, worker), plan) in values.iter().zip(&plans) {
            assert_eq!(plan.gap, Duration::from_millis(*gap));
            match plan.fault {
                Fault::Kill { worker: w }
                | Fault::Forge { worker: w }
                | Fault::Stall { worker: w } => {
                    assert_eq!(w, *worker)
                }
                Fault::CutBroker { pause: p } | Fault::CutDatabase { pause: p } => {
                    assert_eq!(p, Duration::from_millis(*pause))
                }
            }
        }
    }

    #[test]
    fn the_mix_has_every_fault_and_about_one_stall_in_ten() {
        let plans = schedule(42, 10_000);
        let count = |f: fn(&Fault) -> bool| plans.iter().filter(|p| f(&p.fault)).count();
        let kills = count(|f| matches!(f, Fault::Kill { .. }));
        let stalls = count(|f| matches!(f, Fault::Stall { .. }));
        let cuts = count(|f| matches!(f, Fault::CutBroker { .. } | Fault::CutDatabase { .. }));
        let forged = count(|f| matches!(f, Fault::Forge { .. }));
        assert!((4000..5000).contains(&kills), "{kills}");
        assert!((800..1200).contains(&stalls), "{stalls}");
        assert!((1700..2300).contains(&cuts), "{cuts}");
        assert!((2200..2800).contains(&forged), "{forged}");
        for p in &plans {
            assert!((500..=1500).contains(&p.gap.as_millis()), "{p:?}");
            match p.fault {
                Fault::Kill { worker } | Fault::Forge { worker } | Fault::Stall { worker } => {
                    assert!(worker < 3)
                }
                Fault::CutBroker { pause } | Fault::CutDatabase { pause } => {
                    assert!((200..=1500).contains(&pause.as_millis()))
                }
            }
        }
    }
}
