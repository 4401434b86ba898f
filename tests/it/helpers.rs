//! `TestApp`: a fresh database and fresh exchange/queue names per test, on the
//! real PostgreSQL and RabbitMQ, so tests run in parallel. Nothing sleeps a
//! fixed time: waits are bounded polls for an outcome.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use lapin::options::{BasicAckOptions, BasicGetOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use refund_worker::amqp::publish::{await_confirms, publish_one};
use refund_worker::amqp::{self, Topology};
use refund_worker::config::{Settings, Source};
use refund_worker::intake::Intake;
use refund_worker::storage;
use sqlx::{AssertSqlSafe, PgPool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const PARTNER: &str = "2088101122136241";
pub const KEY: &str = "0123456789abcdefghijklmnopqrstuv";
pub const TRADE: &str = "2016061321001004790000000001";

pub fn pg_base() -> String {
    std::env::var("TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

pub struct TestApp {
    pub id: String,
    pub env: HashMap<String, String>,
    pub settings: Settings,
    pub pool: PgPool,
    pub topology: Topology,
    pub conn: Connection,
    pub channel: Channel,
    intake: Option<(CancellationToken, JoinHandle<anyhow::Result<()>>)>,
}

/// A dead letter as the broker holds it.
#[derive(Debug)]
pub struct DeadLetter {
    pub body: Vec<u8>,
    pub headers: FieldTable,
}

impl DeadLetter {
    pub fn header(&self, name: &str) -> Option<String> {
        amqp::headers::get_text(Some(&self.headers), name)
    }
}

impl TestApp {
    /// A migrated database, a declared topology and a running intake role.
    pub async fn spawn() -> Self {
        let mut app = Self::without_intake(&[]).await;
        app.start_intake();
        app
    }

    /// The same without intake; `extra` settings override the defaults.
    pub async fn without_intake(extra: &[(&str, &str)]) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let mut env: HashMap<String, String> = [
            ("DATABASE_URL", format!("{}/rw_test_{id}", pg_base())),
            ("AMQP_URL", amqp_url()),
            ("AMQP_NAME_PREFIX", format!("test-{id}.")),
            ("ALIPAY_PARTNER", PARTNER.to_owned()),
            ("ALIPAY_KEY", KEY.to_owned()),
            (
                "ALIPAY_NOTIFY_URL",
                "http://127.0.0.1:9/alipay/notify".to_owned(),
            ),
            ("LOG_FORMAT", "pretty".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        let settings = Settings::from_source(&Source::new(env.clone(), None).unwrap()).unwrap();
        let pool = storage::connect_and_migrate(&settings.database_url, 5)
            .await
            .unwrap();
        let topology = Topology::of(&settings.amqp);
        let conn = amqp::connect(&settings.amqp.url, "test").await.unwrap();
        let channel = conn.create_channel().await.unwrap();
        topology.declare(&channel).await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        Self {
            id,
            env,
            settings,
            pool,
            topology,
            conn,
            channel,
            intake: None,
        }
    }

    pub fn db_name(&self) -> String {
        format!("rw_test_{}", self.id)
    }

    pub fn start_intake(&mut self) {
        assert!(self.intake.is_none(), "intake already running");
        let shutdown = CancellationToken::new();
        let intake = Intake {
            pool: self.pool.clone(),
            settings: self.settings.clone(),
            topology: self.topology.clone(),
        };
        let handle = tokio::spawn(intake.run(shutdown.clone()));
        self.intake = Some((shutdown, handle));
    }

    /// Stops intake; what it held unacked goes back to the queue.
    pub async fn stop_intake(&mut self) {
        if let Some((shutdown, handle)) = self.intake.take() {
            shutdown.cancel();
            tokio::time::timeout(Duration::from_secs(30), handle)
                .await
                .expect("intake stops")
                .unwrap()
                .unwrap();
        }
    }

    /// Publishes bodies the way `refund-worker publish` does; all must be confirmed.
    pub async fn publish(&self, bodies: &[Vec<u8>]) {
        let mut pending = Vec::new();
        for body in bodies {
            pending.push(
                publish_one(&self.channel, &self.topology, body)
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(await_confirms(&mut pending).await.unwrap(), bodies.len());
    }

    /// Stores valid events straight through intake's storage (no broker).
    pub async fn store_events(&self, events: &[Vec<u8>]) {
        for chunk in events.chunks(500) {
            let parsed: Vec<_> = chunk
                .iter()
                .map(|b| {
                    refund_worker::domain::refund_request::parse(b, &self.settings.alipay).unwrap()
                })
                .collect();
            let news: Vec<_> = parsed
                .iter()
                .map(|request| refund_worker::storage::intake::NewRefund {
                    request,
                    message_id: None,
                })
                .collect();
            refund_worker::storage::intake::store_window(&self.pool, &news)
                .await
                .unwrap();
        }
    }

    pub async fn status_of(&self, refund_id: &str) -> String {
        sqlx::query_scalar(
            "SELECT refund_status(status, batch_no) FROM refunds WHERE refund_id = $1",
        )
        .bind(refund_id)
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }

    /// A refund's result events as the relay sends them (routing key and
    /// JSON), oldest first, published or not.
    pub async fn events_of(&self, refund_id: &str) -> Vec<(String, serde_json::Value)> {
        refund_worker::outbox::events_of(&self.pool, refund_id)
            .await
            .unwrap()
    }

    /// The one result event of `refund_id` whose routing key `which` takes.
    pub async fn event_of(&self, refund_id: &str, which: fn(&str) -> bool) -> serde_json::Value {
        let mut found: Vec<_> = self
            .events_of(refund_id)
            .await
            .into_iter()
            .filter(|(key, _)| which(key))
            .collect();
        assert_eq!(found.len(), 1, "one such event of {refund_id}: {found:?}");
        found.remove(0).1
    }

    pub async fn refund_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM refunds")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    pub async fn amount_of(&self, refund_id: &str) -> Option<i64> {
        sqlx::query_scalar("SELECT amount_fen FROM refunds WHERE refund_id = $1")
            .bind(refund_id)
            .fetch_optional(&self.pool)
            .await
            .unwrap()
    }

    /// Messages ready in a queue (not counting unacked ones).
    pub async fn ready(&self, queue: &str) -> u32 {
        let ch = self.conn.create_channel().await.unwrap();
        let q = refund_worker::amqp::inspect(&ch, queue).await.unwrap();
        ch.close(200, "".into()).await.ok();
        q.message_count()
    }

    /// Takes every message now in `queue` off it, acking each.
    pub async fn take_all(&self, queue: &str) -> Vec<lapin::message::Delivery> {
        let mut out = Vec::new();
        while let Some(m) = self
            .channel
            .basic_get(queue.into(), BasicGetOptions::default())
            .await
            .unwrap()
        {
            m.delivery
                .acker
                .ack(BasicAckOptions::default())
                .await
                .unwrap();
            out.push(m.delivery);
        }
        out
    }

    /// Takes exactly `n` dead letters off the dead queue (acking them), waiting
    /// for them to arrive; fails if they do not, or if more are there.
    pub async fn take_dead_letters(&self, n: usize) -> Vec<DeadLetter> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            for d in self.take_all(&self.topology.dead_queue).await {
                let headers = d.properties.headers().clone().unwrap_or_default();
                out.push(DeadLetter {
                    body: d.data,
                    headers,
                });
            }
            if out.len() >= n {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {n} dead letters arrived",
                out.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(out.len(), n, "more dead letters than expected");
        out
    }

    /// Drops the database and the topology. Called at the end of each test.
    pub async fn cleanup(mut self) {
        self.stop_intake().await;
        self.topology.delete(&self.channel).await;
        self.conn.close(200, "".into()).await.ok();
        self.pool.close().await;
        let admin = admin_pool().await;
        let sql = format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.db_name()
        );
        sqlx::query(AssertSqlSafe(sql)).execute(&admin).await.ok();
        std::fs::remove_file(std::env::temp_dir().join(format!("rw-e2e-{}.log", self.id))).ok();
    }
}

/// A connection to the `postgres` database, for what a test does to its own database.
pub async fn admin_pool() -> PgPool {
    storage::connect(&format!("{}/postgres", pg_base()), 1)
        .await
        .unwrap()
}

/// Polls `check` every 20 ms until it holds; panics after `limit`.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `count()` reaches `n`.
pub async fn wait_for_count<Fut: Future<Output = i64>>(
    what: &str,
    n: i64,
    limit: Duration,
    mut count: impl FnMut() -> Fut,
) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let c = count().await;
        if c >= n {
            assert_eq!(c, n, "{what}: more than expected");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}: {c} of {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A valid event body.
pub fn event(refund_id: &str, trade_no: &str, amount: &str) -> Vec<u8> {
    format!(r#"{{"refund_id":"{refund_id}","trade_no":"{trade_no}","amount":{amount}}}"#)
        .into_bytes()
}

/// The i-th distinct trade number.
pub fn trade(i: usize) -> String {
    format!("2026112500000000{i:012}")
}

/// A TCP port on 127.0.0.1 that was free a moment ago, for a child's listener.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Result events per refund_id, each distinct `event_id` counted once (a
/// republished copy is not a second event).
pub fn events_per_refund(deliveries: &[lapin::message::Delivery]) -> HashMap<String, usize> {
    let mut ids = std::collections::HashSet::new();
    let mut per: HashMap<String, usize> = HashMap::new();
    for d in deliveries {
        let body: serde_json::Value = serde_json::from_slice(&d.data).unwrap();
        if ids.insert(body["event_id"].as_str().unwrap().to_owned()) {
            *per.entry(body["refund_id"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    per
}
