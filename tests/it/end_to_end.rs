//! The whole loop through real components: events published to RabbitMQ, a
//! worker process running every role, the sandbox gateway paying and
//! notifying, result events consumed from the results queue. The invariants
//! are checked from the events, the database and the sandbox's ledger.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use refund_worker::domain::format_fen;
use refund_worker::sandbox::{LedgerView, SandboxConfig};

use crate::cli::worker;
use crate::gateway::*;
use crate::helpers::*;
use crate::process::KillOnDrop;

/// What came out of one run.
pub struct Outcome {
    /// The terminal event of each refund, after deduplicating on `event_id`.
    pub terminal: HashMap<String, serde_json::Value>,
    /// Deliveries read, duplicates included.
    pub deliveries: usize,
    pub ledger: LedgerView,
    /// The worker's `GET /metrics` at the end.
    pub metrics: String,
    /// The worker's `GET /readyz` status at the end.
    pub ready: u16,
    /// The worker's log (removed by `TestApp::cleanup` when the test passes).
    pub log: std::path::PathBuf,
}

/// The value of one sample line (`name{labels} value`) of a metrics text.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// A free port on 127.0.0.1 for the worker's HTTP role.
/// Publishes `events` and runs one worker process with every role until
/// each of `refund_ids` has a terminal event on the results queue.
pub async fn run_loop(
    app: &TestApp,
    events: &[Vec<u8>],
    refund_ids: &BTreeSet<String>,
    tune: impl FnOnce(&mut SandboxConfig),
    env: &[(&str, &str)],
    limit: Duration,
) -> Outcome {
    let gw = start_sandbox(tune).await;
    let port = free_port();
    let log = std::env::temp_dir().join(format!("rw-e2e-{}.log", app.id));
    let mut cmd = worker(app);
    cmd.args(["run"])
        .env("ALIPAY_GATEWAY", &gw.url)
        .env("HTTP_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "ALIPAY_NOTIFY_URL",
            format!("http://127.0.0.1:{port}/alipay/notify"),
        )
        .env("ALIPAY_TIMEOUT_MS", "5000")
        .env("BATCH_LINGER_MS", "200")
        .env("SUBMIT_RETRY_BASE_MS", "10")
        .env("ITEM_RETRY_BASE_MS", "50")
        .env("SUBMIT_RETRY_CAP_MS", "200")
        .env(
            "RUST_LOG",
            "debug,sqlx=warn,hyper=warn,lapin=info,h2=warn,reqwest=info",
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let _child = KillOnDrop(vec![cmd.spawn().unwrap()]);
    app.publish(events).await;

    let consume = app.conn.create_channel().await.unwrap();
    consume
        .basic_qos(1000, BasicQosOptions::default())
        .await
        .unwrap();
    let queue = app.topology.results_queue.clone().unwrap();
    let mut consumer = consume
        .basic_consume(
            queue.as_str().into(),
            "e2e".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut by_event: HashMap<String, serde_json::Value> = HashMap::new();
    let mut terminal: HashMap<String, serde_json::Value> = HashMap::new();
    let mut deliveries = 0;
    let deadline = tokio::time::Instant::now() + limit;
    while terminal.len() < refund_ids.len() {
        let next = tokio::time::timeout_at(deadline, consumer.next()).await;
        let Ok(Some(delivery)) = next else {
            let missing: Vec<_> = refund_ids
                .iter()
                .filter(|id| !terminal.contains_key(*id))
                .take(5)
                .collect();
            panic!(
                "{} of {} terminal events after {limit:?}; missing e.g. {missing:?}; worker log {}",
                terminal.len(),
                refund_ids.len(),
                log.display()
            );
        };
        let delivery = delivery.unwrap();
        deliveries += 1;
        let body: serde_json::Value = serde_json::from_slice(&delivery.data).unwrap();
        let event_id = body["event_id"].as_str().unwrap().to_owned();
        let message_id = delivery
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.to_string());
        assert_eq!(message_id.as_deref(), Some(event_id.as_str()));
        delivery.ack(BasicAckOptions::default()).await.unwrap();
        if let Some(seen) = by_event.get(&event_id) {
            assert_eq!(seen, &body, "one event_id, two bodies");
            continue;
        }
        by_event.insert(event_id, body.clone());
        let kind = body["event"].as_str().unwrap();
        if kind == "refund.succeeded" || kind == "refund.failed" {
            let id = body["refund_id"].as_str().unwrap().to_owned();
            assert!(refund_ids.contains(&id), "an event for {id}, never sent");
            if let Some(first) = terminal.insert(id.clone(), body) {
                panic!("{id} has two terminal events: {first} and another");
            }
        }
    }
    consume.close(200, "".into()).await.ok();
    let http = reqwest::Client::new();
    let scrape = || async {
        http.get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    // A counter is bumped after its commit, and the relay may publish the
    // result event first: wait for the counters to account for every one.
    let completed = |m: &str| {
        ["succeeded", "failed"]
            .iter()
            .filter_map(|s| {
                sample(
                    m,
                    &format!(r#"refund_worker_refunds_completed_total{{status="{s}"}}"#),
                )
            })
            .sum::<f64>()
    };
    wait_until("the counters caught up", limit, || async {
        completed(&scrape().await) >= terminal.len() as f64
    })
    .await;
    let metrics = scrape().await;
    let ready = http
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    let ledger = gw.sandbox.as_ref().unwrap().ledger();
    // The partner key never shows: not in a whole run's log, not in /metrics.
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!logged.contains(KEY), "the key is in the worker's log");
    assert!(!metrics.contains(KEY), "the key is in /metrics");
    // The log stays for a failing test to point at; `TestApp::cleanup` removes it.
    Outcome {
        terminal,
        deliveries,
        ledger,
        metrics,
        ready,
        log,
    }
}

/// The ledger's successful refunds as (trade, amount), and the succeeded
/// events' — they must be the same money.
pub fn assert_ledger_matches(o: &Outcome) {
    let mut paid: Vec<(String, String)> = o
        .ledger
        .trades
        .iter()
        .flat_map(|t| {
            t.refunds
                .iter()
                .filter(|r| r.code == "SUCCESS")
                .map(|r| (t.trade_no.clone(), r.amount.clone()))
        })
        .collect();
    let mut succeeded: Vec<(String, String)> = o
        .terminal
        .values()
        .filter(|e| e["status"] == "succeeded")
        .map(|e| {
            (
                e["trade_no"].as_str().unwrap().to_owned(),
                e["amount"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    paid.sort();
    succeeded.sort();
    assert_eq!(
        paid.len(),
        succeeded.len(),
        "refunds paid vs succeeded events"
    );
    assert!(
        paid == succeeded,
        "the ledger and the succeeded events differ"
    );
    let total: i64 = o
        .terminal
        .values()
        .filter(|e| e["status"] == "succeeded")
        .map(|e| {
            refund_worker::domain::amount::Amount::parse_yuan(e["amount"].as_str().unwrap())
                .unwrap()
                .fen()
        })
        .sum();
    assert_eq!(format_fen(total), o.ledger.paid_total);
}

fn amount(i: usize) -> String {
    format!("\"{}.{:02}\"", 1 + i % 300, i % 100)
}

fn stream(prefix: &str, n: usize) -> (Vec<Vec<u8>>, BTreeSet<String>) {
    let ids: BTreeSet<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    let events = (0..n)
        .map(|i| event(&format!("{prefix}-{i}"), &trade(i), &amount(i)))
        .collect();
    (events, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_refunds_in_ten_thousand_terminal_events_out() {
    const N: usize = 10_000;
    let app = TestApp::without_intake(&[]).await;
    let (events, ids) = stream("E", N);
    let o = run_loop(
        &app,
        &events,
        &ids,
        |c| c.faults.item_failure_rate = "0.05".parse().unwrap(),
        &[],
        Duration::from_secs(300),
    )
    .await;
    assert_eq!(o.terminal.len(), N);
    let failed = o
        .terminal
        .values()
        .filter(|e| e["status"] == "failed")
        .count();
    assert!(failed > 0 && failed < N / 5, "{failed} failed");
    assert_ledger_matches(&o);
    let terminal_rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE routing_key IN ('refund.succeeded', 'refund.failed')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(terminal_rows as usize, N);

    // The worker's own account of the run.
    assert_eq!(o.ready, 200);
    let m = |series: &str| {
        sample(&o.metrics, series).unwrap_or_else(|| panic!("no {series} in {}", o.metrics))
    };
    assert_eq!(
        m(r#"refund_worker_intake_total{outcome="stored"}"#),
        N as f64,
        "worker log {}",
        o.log.display()
    );
    assert_eq!(
        m(r#"refund_worker_refunds_completed_total{status="succeeded"}"#),
        (N - failed) as f64
    );
    assert_eq!(
        m(r#"refund_worker_refunds_completed_total{status="failed"}"#),
        failed as f64
    );
    assert!(m(r#"refund_worker_notifications_total{verdict="applied"}"#) >= 10.0);
    let accepted: f64 = o
        .metrics
        .lines()
        .filter(|l| {
            l.starts_with(r#"refund_worker_gateway_requests_total{service="refund_fastpay_by_platform_nopwd",disposition="accepted""#)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(accepted >= 10.0, "{}", o.metrics);
    assert_eq!(m(r#"refund_worker_refunds{status="pending"}"#), 0.0);
    assert!(o.metrics.contains("refund_worker_gateway_seconds_bucket"));
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_reordered_delayed_and_dropped_notifications_still_give_one_event_each() {
    const N: usize = 2_000;
    let app = TestApp::without_intake(&[]).await;
    let (events, ids) = stream("N", N);
    let o = run_loop(
        &app,
        &events,
        &ids,
        |c| {
            // Alipay's resends come minutes apart (scaled to seconds here):
            // the reconciler, asking after half a second, wins the race.
            c.time_scale = "0.01".parse().unwrap();
            c.faults.notify_drop_rate = "0.5".parse().unwrap();
            c.faults.notify_duplicate_rate = "0.3".parse().unwrap();
            c.faults.notify_reorder_rate = "0.3".parse().unwrap();
            c.faults.notify_delay_rate = "0.3".parse().unwrap();
            c.faults.notify_delay = Duration::from_secs(60);
        },
        &[("BATCH_MAX_ITEMS", "50"), ("RECONCILE_AFTER_MS", "500")],
        Duration::from_secs(240),
    )
    .await;
    assert_eq!(o.terminal.len(), N);
    assert_ledger_matches(&o);
    let by_source = |s: &str| o.terminal.values().filter(|e| e["source"] == s).count();
    assert!(
        by_source("query") > 0,
        "no dropped notification was left to the reconciler"
    );
    assert!(by_source("notify") > 0);
    let verdicts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT verdict, count(*) FROM notifications GROUP BY verdict ORDER BY verdict",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(
        verdicts.iter().any(|(v, _)| v == "repeat"),
        "duplicates and resends are stored as repeats: {verdicts:?}"
    );
    assert!(o.deliveries >= N);
    app.cleanup().await;
}
