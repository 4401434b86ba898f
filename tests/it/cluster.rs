//! `AMQP_URL` as a list of brokers, as for a RabbitMQ cluster: the worker
//! and the tools pass over an address that refuses connections, and a
//! worker whose broker goes away mid-run (a proxy cut, which is what a
//! node's death is from the worker's side) carries on through the next
//! address, losing and doubling nothing. Both addresses lead to the one
//! local broker, so the queues are the same, as a cluster's quorum queues
//! are from any node.

use std::io::Write;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::cli::worker;
use crate::gateway::*;
use crate::helpers::*;
use crate::process::KillOnDrop;
use crate::proxy::Proxy;

const LONG: Duration = Duration::from_secs(120);

/// A port nothing listens on: bound, noted and let go.
fn closed_port() -> u16 {
    free_port()
}

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

fn log_file(app: &TestApp, what: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("rw-cluster-{what}-{}.log", app.id))
}

/// `refund-worker publish -` with `lines` on stdin and `amqp_url`.
fn publish_cli(app: &TestApp, amqp_url: &str, lines: &[Vec<u8>]) -> std::process::Output {
    let mut child = worker(app)
        .args(["publish", "-"])
        .env("AMQP_URL", amqp_url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    for line in lines {
        input.write_all(line).unwrap();
        input.write_all(b"\n").unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// The first address refuses connections (nothing listens there): the
/// worker starts, declares, consumes and stores through the second;
/// `publish` and `dlq list` do their work through it too.
#[tokio::test]
async fn a_first_address_that_refuses_is_passed_over_by_the_worker_and_the_tools() {
    const N: usize = 300;
    let app = TestApp::without_intake(&[]).await;
    let dead = format!("amqp://guest:guest@127.0.0.1:{}/%2f", closed_port());
    let list = format!("{dead},{}", amqp_url());
    let log = log_file(&app, "refused");
    let _worker = KillOnDrop(vec![
        worker(&app)
            .args(["run", "--roles", "intake"])
            .env("AMQP_URL", &list)
            .env("RUST_LOG", "refund_worker=info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    ]);

    let mut lines: Vec<Vec<u8>> = (0..N)
        .map(|i| event(&format!("C-{i}"), &trade(i), "0.10"))
        .collect();
    lines.push(b"{not json".to_vec());
    let out = publish_cli(&app, &list, &lines);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("published {} events; the broker confirmed {}", N + 1, N + 1)
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("did not answer"), "publish: {said}");
    assert!(!said.contains("guest:guest"), "publish: {said}");

    wait_for_count("every event stored", N as i64, LONG, || app.refund_count()).await;
    let dead_queue = app.topology.dead_queue.clone();
    wait_until("the bad line dead-lettered", LONG, || async {
        app.ready(&dead_queue).await == 1
    })
    .await;

    let listed = tokio::process::Command::from({
        let mut cmd = worker(&app);
        cmd.args(["dlq", "list", "--json"]).env("AMQP_URL", &list);
        cmd
    })
    .output()
    .await
    .unwrap();
    assert!(listed.status.success(), "{listed:?}");
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["code"], "invalid_json");

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("connected to RabbitMQ"), "{text}");
    assert!(
        !text.contains("guest:guest"),
        "credentials in the log: {text}"
    );
    assert_eq!(app.refund_count().await, N as i64, "nothing doubled");
    std::fs::remove_file(&log).ok();
    app.cleanup().await;
}

/// The worker (every role, the sandbox as Alipay) reaches the broker
/// through the first of two addresses; that one is cut for good while
/// events are still being published. Intake and the relay reconnect through
/// the second, and in the end every event is stored once, every refund is
/// terminal and has exactly one result event, and nothing is left unpublished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connected_broker_going_away_mid_run_moves_the_worker_to_the_next_losing_nothing() {
    const N: usize = 1000;
    let app = TestApp::without_intake(&[]).await;
    let gw = start_sandbox(|_| {}).await;
    let first = Proxy::start("127.0.0.1:5672").await.unwrap();
    let second = Proxy::start("127.0.0.1:5672").await.unwrap();
    let list = format!("amqp://guest:guest@{}/%2f,{}", first.addr, second.addr);
    let port = closed_port();
    let log = log_file(&app, "cut");
    let spawn = || -> Child {
        worker(&app)
            .arg("run")
            .env("AMQP_URL", &list)
            .env("ALIPAY_GATEWAY", &gw.url)
            .env("HTTP_LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "ALIPAY_NOTIFY_URL",
                format!("http://127.0.0.1:{port}/alipay/notify"),
            )
            .env("ALIPAY_TIMEOUT_MS", "3000")
            .env("BATCH_LINGER_MS", "200")
            .env("BATCH_MAX_ITEMS", "100")
            .env("SUBMIT_RETRY_BASE_MS", "10")
            .env("SUBMIT_RETRY_CAP_MS", "500")
            .env("RECONCILE_AFTER_MS", "2000")
            .env("INTAKE_WINDOW", "20")
            .env("RUST_LOG", "refund_worker=info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap()
    };
    let _worker = KillOnDrop(vec![spawn()]);

    let events: Vec<Vec<u8>> = (0..N)
        .map(|i| event(&format!("X-{i}"), &trade(i), r#""0.50""#))
        .collect();
    // Published from the test's own connection, straight to the broker, in
    // chunks, so the cut lands while events still arrive.
    let publisher = {
        let (channel, topology) = (app.channel.clone(), app.topology.clone());
        let events = events.clone();
        tokio::spawn(async move {
            use refund_worker::amqp::publish::{await_confirms, publish_one};
            for chunk in events.chunks(50) {
                let mut pending = Vec::new();
                for body in chunk {
                    pending.push(publish_one(&channel, &topology, body).await.unwrap());
                }
                assert_eq!(await_confirms(&mut pending).await.unwrap(), chunk.len());
                tokio::task::yield_now().await;
            }
        })
    };
    wait_until("some events stored", LONG, || async {
        app.refund_count().await >= 100
    })
    .await;
    assert!(
        first.carried() >= 2,
        "the start and intake went through the first address"
    );
    assert_eq!(
        second.carried(),
        0,
        "the worker connected through the first address while it answered"
    );
    first.cut();
    let at_cut = app.refund_count().await;
    publisher.await.unwrap();
    assert!(
        at_cut < N as i64,
        "every event was stored before the cut; the test proved nothing"
    );

    let terminal = || async {
        count(
            &app,
            "SELECT count(*) FROM refunds WHERE status IN ('succeeded', 'failed')",
        )
        .await
    };
    wait_until(
        "every refund terminal and every event published after the cut",
        Duration::from_secs(240),
        || async {
            terminal().await == N as i64
                && count(
                    &app,
                    "SELECT count(*) FROM outbox WHERE published_at IS NULL",
                )
                .await
                    == 0
        },
    )
    .await;
    assert!(
        second.carried() > 0,
        "the worker reconnected through the second address"
    );

    assert_eq!(
        app.refund_count().await,
        N as i64,
        "every event stored once"
    );
    let queue = app.topology.results_queue.clone().unwrap();
    let terminal_of = events_per_refund(&app.take_all(&queue).await);
    assert_eq!(terminal_of.len(), N, "a result event for every refund");
    assert!(terminal_of.values().all(|n| *n == 1), "one each");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&second.addr.to_string()),
        "the log names the second address: {text}"
    );
    assert!(!text.contains("guest:guest"), "credentials in the log");
    std::fs::remove_file(&log).ok();
    app.cleanup().await;
}

/// A broker that stops answering without closing the connection (a node
/// lost with its host) ends `publish` with an error saying how far it got,
/// after its wait for confirms, rather than holding it for ever.
#[tokio::test]
async fn publish_gives_up_on_a_broker_that_holds_the_connection_without_answering() {
    use lapin::options::ConfirmSelectOptions;
    use refund_worker::commands::publish::publish_lines;

    let app = TestApp::without_intake(&[]).await;
    let proxy = Proxy::start("127.0.0.1:5672").await.unwrap();
    let url = format!("amqp://guest:guest@{}/%2f", proxy.addr);
    let conn = refund_worker::amqp::connect(&url, "test publish")
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    // First through: confirmed.
    let one = [event("H-0", &trade(0), r#""0.50""#), b"\n".to_vec()].concat();
    let (sent, confirmed) = publish_lines(
        &channel,
        &app.topology,
        std::io::Cursor::new(one),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    assert_eq!((sent, confirmed), (1, 1));

    proxy.hold();
    let lines: Vec<u8> = (1..4)
        .flat_map(|i| {
            [
                event(&format!("H-{i}"), &trade(i), r#""0.50""#),
                b"\n".to_vec(),
            ]
            .concat()
        })
        .collect();
    let wait = Duration::from_millis(500);
    let started = std::time::Instant::now();
    let err = publish_lines(&channel, &app.topology, std::io::Cursor::new(lines), wait)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("the broker confirmed nothing more within 0.5 s (0 of 3 events confirmed)"),
        "{err}"
    );
    assert!(err.contains("publishing them again is safe"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // Closing a held connection is bounded too.
    refund_worker::amqp::liveness::close(&conn, "done").await;
}
