//! The gateway side of the integration tests: the sandbox in-process on
//! port 0, a submitter pointed at it, and a batch formed at once.

use refund_worker::reconcile::Reconciler;
use std::time::Duration;

use chrono::Utc;
use refund_worker::alipay::client::AlipayClient;
use refund_worker::batching::{Batcher, Step as BatchStep};
use refund_worker::config::{BatchSettings, SubmitSettings};
use refund_worker::sandbox::{self, PartnerKey, Sandbox, SandboxConfig};
use refund_worker::submit::Submitter;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

/// Where nobody listens: notifications sent there are lost.
pub const NOWHERE: &str = "http://127.0.0.1:9/alipay/notify";

pub struct Gateway {
    pub url: String,
    pub sandbox: Option<Sandbox>,
    pub stop: CancellationToken,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub async fn start_sandbox(tune: impl FnOnce(&mut SandboxConfig)) -> Gateway {
    let mut config = SandboxConfig::new(
        vec![PartnerKey {
            id: PARTNER.into(),
            key: KEY.into(),
        }],
        7,
    );
    config.time_scale = "0.001".parse().unwrap();
    tune(&mut config);
    let sandbox = Sandbox::new(config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/gateway.do", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(sandbox::serve(listener, sandbox.clone(), stop.clone()));
    Gateway {
        url,
        sandbox: Some(sandbox),
        stop,
    }
}

pub fn submitter(app: &TestApp, gateway: &str, timeout: Duration) -> Submitter {
    submitter_notifying(app, gateway, NOWHERE, timeout)
}

/// A submitter whose batches ask for notifications at `notify_url`.
pub fn submitter_notifying(
    app: &TestApp,
    gateway: &str,
    notify_url: &str,
    timeout: Duration,
) -> Submitter {
    Submitter {
        pool: app.pool.clone(),
        client: AlipayClient::new(gateway, timeout).unwrap(),
        partners: app.settings.alipay.partners.clone(),
        notify_url: notify_url.into(),
        dback_notify_url: None,
        pwd_fallback: false,
        settings: SubmitSettings {
            retry_base: Duration::from_millis(1),
            retry_cap: Duration::from_millis(5),
            give_up: Duration::from_secs(600),
            pause_base: Duration::from_secs(60),
            pause_cap: Duration::from_secs(3600),
            absence_settle: Duration::from_secs(3600),
            batch_no_prefix: String::new(),
        },
        timeout,
        item_retry: app.settings.item_retry,
    }
}

/// A batcher that cuts a batch at once, of at most `max_items`.
pub fn eager_batcher(app: &TestApp, max_items: usize) -> Batcher {
    Batcher {
        pool: app.pool.clone(),
        settings: BatchSettings {
            max_items,
            linger: Duration::ZERO,
            batch_no_prefix: String::new(),
            openapi_partners: Vec::new(),
        },
    }
}

/// A reconciler asking the gateway about batches submitted `after` ago,
/// with the app's settings otherwise.
pub fn reconciler(app: &TestApp, gateway: &str, after: Duration) -> Reconciler {
    Reconciler {
        pool: app.pool.clone(),
        client: AlipayClient::new(gateway, Duration::from_secs(10)).unwrap(),
        partners: app.settings.alipay.partners.clone(),
        after,
        item_retry: app.settings.item_retry,
        absence_settle: app.settings.submit.absence_settle,
        batch_no_prefix: app.settings.batch.batch_no_prefix.clone(),
    }
}

/// A batch's status.
pub async fn batch_status(app: &TestApp, batch_no: &str) -> String {
    sqlx::query_scalar("SELECT status FROM batches WHERE batch_no = $1")
        .bind(batch_no)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

pub async fn form_batch(app: &TestApp) -> String {
    match eager_batcher(app, 1000).step(Utc::now()).await.unwrap() {
        BatchStep::Formed { batch_no, .. } => batch_no,
        other => panic!("no batch: {other:?}"),
    }
}
