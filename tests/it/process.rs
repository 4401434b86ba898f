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
                        refund_worker::commands::publish::publish_one(&channel, &topology, body)
                            .await
                            .unwrap(),
                    );
                }
                assert_eq!(
                    refund_worker::commands::publish::await_confirms(&mut pending)
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
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(app.ready(&app.topology.approved_queue).await, 0);
    assert_eq!(app.ready(&app.topology.dead_queue).await, 0);
    app.cleanup().await;
}
