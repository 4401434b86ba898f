use std::time::Duration;

use crate::cli::worker;
use crate::helpers::*;

const N: usize = 10_000;

/// The worker process killed with SIGKILL while 10 000 events flow in: after a
/// restart every event is stored exactly once, none dead-lettered.
#[tokio::test]
async fn a_worker_killed_mid_stream_loses_and_doubles_nothing() {
    let app = TestApp::without_intake(&[]).await;
    // Small windows, so the kill lands between many commits.
    let spawn = || {
        worker(&app)
            .args(["run", "--roles", "intake"])
            .env("INTAKE_WINDOW", "20")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut child = spawn();
    let bodies: Vec<Vec<u8>> = (0..N)
        .map(|i| event(&format!("K-{i}"), &trade(i), "0.01"))
        .collect();
    let publisher = {
        let (channel, topology) = (app.channel.clone(), app.topology.clone());
        tokio::spawn(async move {
            let mut pending = Vec::new();
            for chunk in bodies.chunks(500) {
                for body in chunk {
                    pending.push(
                        refund_worker::amqp::publish::publish_one(&channel, &topology, body)
                            .await
                            .unwrap(),
                    );
                }
                assert_eq!(
                    refund_worker::amqp::publish::await_confirms(&mut pending)
                        .await
                        .unwrap(),
                    chunk.len()
                );
            }
        })
    };
    wait_until("some refunds stored", Duration::from_secs(60), || async {
        app.refund_count().await >= 1000
    })
    .await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let at_kill = app.refund_count().await;
    assert!(
        at_kill < N as i64,
        "the kill came after everything was stored; the test proved nothing"
    );

    publisher.await.unwrap();
    let mut child = spawn();
    wait_for_count(
        "every event stored",
        N as i64,
        Duration::from_secs(120),
        || app.refund_count(),
    )
    .await;
    let distinct: i64 = sqlx::query_scalar("SELECT count(DISTINCT refund_id) FROM refunds")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(distinct, N as i64);
    // SIGTERM: a clean stop, and then nothing is left unacked.
    sigterm(&child);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(app.ready(&app.topology.approved_queue).await, 0);
    assert_eq!(app.ready(&app.topology.dead_queue).await, 0);
    app.cleanup().await;
}

/// Three worker processes batch and submit 20 000 refunds against the sandbox
/// while one of them is SIGKILLed and restarted whenever progress is seen: no
/// refund is in two live batches, none is stranded, the ledger pays each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_killed_and_restarted_pay_every_refund_exactly_once() {
    use refund_worker::sandbox::{self, PartnerKey, Sandbox, SandboxConfig};
    const REFUNDS: usize = 20_000;
    let app = TestApp::without_intake(&[]).await;
    let mut config = SandboxConfig::new(
        vec![PartnerKey {
            id: PARTNER.into(),
            key: KEY.into(),
        }],
        11,
    );
    config.time_scale = "0.001".parse().unwrap();
    let sandbox = Sandbox::new(config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = format!("http://{}/gateway.do", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(sandbox::serve(listener, sandbox.clone(), stop.clone()));

    let events: Vec<_> = (0..REFUNDS)
        .map(|i| event(&format!("M-{i}"), &trade(i), r#""0.01""#))
        .collect();
    app.store_events(&events).await;
    let spawn = || {
        worker(&app)
            .args(["run", "--roles", "batch,submit"])
            .env("ALIPAY_GATEWAY", &gateway)
            .env("ALIPAY_TIMEOUT_MS", "1000")
            .env("BATCH_LINGER_MS", "50")
            .env("SUBMIT_RETRY_BASE_MS", "10")
            .env("ITEM_RETRY_BASE_MS", "50")
            .env("SUBMIT_RETRY_CAP_MS", "200")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut children = KillOnDrop((0..3).map(|_| spawn()).collect());
    let children = &mut children.0;
    let submitted = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM refunds WHERE refund_status(status, batch_no) = 'submitted'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    let mut kills = 0;
    let mut seen = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    loop {
        let now = submitted().await;
        if now as usize == REFUNDS {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {now} of {REFUNDS} submitted"
        );
        if now > seen && kills < 8 {
            // Progress: kill one process in the middle of whatever it does.
            let victim = kills % children.len();
            children[victim].kill().unwrap();
            children[victim].wait().unwrap();
            children[victim] = spawn();
            kills += 1;
            seen = now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for c in children.iter_mut() {
        c.kill().ok();
        c.wait().ok();
    }
    stop.cancel();
    assert!(kills >= 3, "only {kills} kills landed");

    let twice: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT bi.refund_id FROM batch_items bi JOIN batches b USING (batch_no)
         WHERE b.status <> 'rejected' GROUP BY bi.refund_id HAVING count(*) > 1) s",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(twice, 0, "a refund in two live batches");
    let ledger = sandbox.ledger();
    let paid: usize = ledger.trades.iter().map(|t| t.refunds.len()).sum();
    assert_eq!(
        paid, REFUNDS,
        "the ledger paid {paid} refunds for {REFUNDS}"
    );
    assert!(
        ledger.trades.iter().all(|t| t.refunds.len() == 1),
        "a trade refunded twice"
    );
    assert_eq!(ledger.paid_total_fen, REFUNDS as i64);
    let ours: i64 =
        sqlx::query_scalar("SELECT count(*) FROM batches WHERE accepted_at IS NOT NULL")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        ours as usize,
        ledger.batches.len(),
        "batches Alipay holds that we do not know as accepted"
    );
    app.cleanup().await;
}

/// Child processes killed when the test ends, even by a panic.
pub struct KillOnDrop(pub Vec<std::process::Child>);

/// Sends SIGTERM to a child process.
pub fn sigterm(child: &std::process::Child) {
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for c in &mut self.0 {
            c.kill().ok();
            c.wait().ok();
        }
    }
}
