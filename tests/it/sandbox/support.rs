//! A sandbox and a notification receiver, each on port 0, and requests built
//! with the worker's own wire layer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use chrono::Utc;
use refund_worker::alipay::sign;
use refund_worker::alipay::wire::batch_no::beijing_now;
use refund_worker::alipay::wire::detail::BatchItem;
use refund_worker::alipay::wire::form;
use refund_worker::alipay::wire::notify::NotifyForm;
use refund_worker::alipay::wire::request::{NopwdRequest, QueryBy, gateway_url, query_params};
use refund_worker::sandbox::{self, PartnerKey, Sandbox, SandboxConfig};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use crate::helpers::{KEY, PARTNER, wait_until};

/// A second configured partner.
pub const OTHER_PARTNER: &str = "2088101122136242";
pub const OTHER_KEY: &str = "fedcba9876543210fedcba9876543210";
/// Long enough for any poll here; the schedule runs a thousand times faster.
pub const LIMIT: Duration = Duration::from_secs(10);

/// The sandbox's config as the tests start it: two partners, fast time.
pub fn config() -> SandboxConfig {
    let mut c = SandboxConfig::new(
        vec![
            PartnerKey {
                id: PARTNER.into(),
                key: KEY.into(),
            },
            PartnerKey {
                id: OTHER_PARTNER.into(),
                key: OTHER_KEY.into(),
            },
        ],
        20240310,
    );
    c.time_scale = "0.001".parse().unwrap();
    c
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A sandbox served in-process.
pub struct TestSandbox {
    pub base: String,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
}

impl TestSandbox {
    pub async fn start(config: SandboxConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Sandbox::new(config).unwrap();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(sandbox::serve(listener, state, shutdown.clone()));
        Self {
            base,
            client: client(),
            shutdown,
            server,
        }
    }

    pub fn gateway(&self) -> String {
        format!("{}/gateway.do", self.base)
    }

    /// POSTs a form body to `gateway.do?_input_charset={url_charset}`.
    pub async fn post(&self, url_charset: &str, params: &[(String, String)]) -> (u16, String) {
        let url = format!("{}?_input_charset={url_charset}", self.gateway());
        let response = self
            .client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form::encode(params))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// Submits a nopwd batch exactly as the worker would.
    pub async fn submit(&self, request: &NopwdRequest, key: &str) -> String {
        let response = self
            .client
            .post(NopwdRequest::url(&self.gateway()))
            .body(request.form_body(key))
            .send()
            .await
            .unwrap();
        response.text().await.unwrap()
    }

    pub async fn query(&self, by: &QueryBy) -> String {
        let params = query_params(PARTNER, by, KEY);
        self.post("UTF-8", &params).await.1
    }

    pub async fn ledger(&self) -> Value {
        let body = self
            .client
            .get(format!("{}/ledger", self.base))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(LIMIT, self.server)
            .await
            .expect("the sandbox stops")
            .unwrap()
            .unwrap();
    }
}

/// `batch_no` for today in Beijing with this serial.
pub fn batch_no(serial: u32) -> String {
    format!("{}{serial:03}", beijing_now(Utc::now()).format("%Y%m%d"))
}

pub fn item(trade_no: &str, amount_fen: i64) -> BatchItem {
    BatchItem {
        trade_no: trade_no.into(),
        amount_fen,
        reason: "协商退款".into(),
    }
}

/// A nopwd batch of today.
pub fn nopwd(notify_url: &str, serial: u32, items: Vec<BatchItem>) -> NopwdRequest {
    NopwdRequest {
        partner: PARTNER.into(),
        notify_url: notify_url.into(),
        dback_notify_url: None,
        batch_no: batch_no(serial),
        refund_date: beijing_now(Utc::now()),
        items,
    }
}

/// Parameters signed with `key` after the caller changed them.
pub fn resign(mut params: Vec<(String, String)>, key: &str) -> Vec<(String, String)> {
    params.retain(|(k, _)| k != "sign" && k != "sign_type");
    let signature = sign::sign(&params, key);
    params.push(("sign_type".into(), "MD5".into()));
    params.push(("sign".into(), signature));
    params
}

/// The `is_success` and `error` of an XML answer, crudely but enough here.
pub fn xml_code(answer: &str) -> String {
    let between = |open: &str, close: &str| {
        answer
            .split_once(open)
            .and_then(|(_, rest)| rest.split_once(close))
            .map(|(v, _)| v.to_owned())
    };
    match between("<error>", "</error>") {
        Some(code) => code,
        None => between("<is_success>", "</is_success>").unwrap_or_else(|| answer.to_owned()),
    }
}

/// One notification as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: &'static str,
    pub form: NotifyForm,
}

#[derive(Clone, Default)]
struct ReceiverState {
    received: Arc<Mutex<Vec<Received>>>,
    fails_left: Arc<AtomicUsize>,
}

/// A notify_url that records what arrives and answers `fail` to the first
/// `fails` batch notifications, then `success`.
pub struct Receiver {
    pub notify_url: String,
    pub dback_url: String,
    state: ReceiverState,
}

impl Receiver {
    pub async fn start(fails: usize) -> Self {
        let state = ReceiverState::default();
        state.fails_left.store(fails, Ordering::SeqCst);
        let app = Router::new()
            .route("/notify", post(on_notify))
            .route("/dback", post(on_dback))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            notify_url: format!("http://{addr}/notify"),
            dback_url: format!("http://{addr}/dback"),
            state,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    pub fn on(&self, path: &str) -> Vec<NotifyForm> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .map(|r| r.form)
            .collect()
    }

    /// Waits until `n` notifications arrived at `path`.
    pub async fn wait_for(&self, path: &str, n: usize) -> Vec<NotifyForm> {
        wait_until(&format!("{n} notifications at {path}"), LIMIT, || async {
            self.on(path).len() >= n
        })
        .await;
        self.on(path)
    }
}

async fn on_notify(State(s): State<ReceiverState>, body: Bytes) -> &'static str {
    record(&s, "/notify", &body);
    let failing = s
        .fails_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing { "fail" } else { "success" }
}

async fn on_dback(State(s): State<ReceiverState>, body: Bytes) -> &'static str {
    record(&s, "/dback", &body);
    "success"
}

fn record(s: &ReceiverState, path: &'static str, body: &[u8]) {
    let form = NotifyForm::parse(body).expect("a notification is a UTF-8 form");
    s.received.lock().unwrap().push(Received { path, form });
}

/// The gateway URL, as the worker would build it.
pub fn url_of(sandbox: &TestSandbox) -> String {
    gateway_url(&sandbox.gateway())
}
