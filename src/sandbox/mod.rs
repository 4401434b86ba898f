//! The Alipay gateway simulator: `refund-worker sandbox`.
//!
//! A stand-in for `mapi.alipay.com/gateway.do` for development, demos, tests
//! and benchmarks. It checks requests as strictly as alipay-mapi.md says
//! Alipay does, keeps a ledger of trades and of every refund it paid, and
//! posts signed notifications on Alipay's resend schedule. Invariants: the
//! ledger and the seeded generator live behind one lock, taken in request
//! order and never across an `.await`, so no refund is paid twice and a seed
//! replays the same faults; every background task stops when the sandbox
//! is stopped.
//!
//! - `config`: what a run is told (partners, faults, realism, time scale, seed)
//! - `refusal`: the error codes and why they were answered
//! - `checks`: the request checks, in Alipay's order (pure)
//! - `ledger`: trades, refunds, batches, notifications (pure)
//! - `faults`: drawing injected faults from the seed
//! - `realism`: drawing Alipay's real shapes and cases from the seed, per-trade traits
//! - `items`: the text of one reported item, in its shape (pure)
//! - `batches`: accepting, approving and processing batches into notifications
//! - `lag`: Alipay's backlog: batches taken, answered `SYSTEM_ERROR`, processed later
//! - `notice`: the notifications' signed parameters
//! - `notifier`: sending them on the resend schedule
//! - `answers`: XML, query text and HTML answers
//! - `gateway`: the HTTP routes
//! - `view`: `GET /ledger` as JSON
//! - `openapi`: the OpenAPI refund methods and the 充退 push (see its map)

mod answers;
mod batches;
pub(crate) mod checks;
pub(crate) mod config;
pub(crate) mod faults;
mod gateway;
pub(crate) mod items;
mod lag;
pub(crate) mod ledger;
pub(crate) mod notice;
mod notifier;
pub mod openapi;
pub(crate) mod realism;
pub(crate) mod refusal;
#[cfg(test)]
mod test_support;
pub(crate) mod view;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use config::{ConfigValueError, Faults, PartnerKey, Rate, Realism, SandboxConfig, TimeScale};
pub use gateway::router;
pub use notifier::RESEND_INTERVALS;
pub use openapi::{OpenApiApp, OpenApiFault, OpenApiFaults, depositback_form};
pub use view::LedgerView;

use ledger::Ledger;
use realism::RealismBook;

/// How long one notification send may take before it counts as failed.
const NOTIFY_SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a sandbox could not start.
#[derive(Debug, Error)]
pub enum SandboxError {
    /// The HTTP client for notifications could not be built.
    #[error("cannot build the notification client: {0}")]
    Client(#[from] reqwest::Error),
}

/// A running sandbox's state; cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Sandbox {
    shared: Arc<Shared>,
}

struct Shared {
    config: SandboxConfig,
    inner: Mutex<Inner>,
    client: reqwest::Client,
    /// Counts first sends of notifications; a held-back one waits for it to move.
    first_sends: watch::Sender<u64>,
    /// Ends held answers and notification tasks.
    stop: CancellationToken,
}

/// What must change together: the books, the generator the faults come
/// from, what realism decided and injected, and the OpenAPI books with
/// what is left of their fault script.
struct Inner {
    ledger: Ledger,
    rng: StdRng,
    realism: RealismBook,
    openapi: openapi::OpenApiState,
}

impl Sandbox {
    /// A sandbox with empty books and the generator seeded from `config.seed`.
    pub fn new(config: SandboxConfig) -> Result<Self, SandboxError> {
        let client = reqwest::Client::builder()
            // Notifications go where the batch said, never through a proxy
            // from the environment.
            .no_proxy()
            .timeout(NOTIFY_SEND_TIMEOUT)
            .build()?;
        let inner = Inner {
            ledger: Ledger::new(config.trade_paid_fen),
            rng: StdRng::seed_from_u64(config.seed),
            realism: RealismBook::default(),
            openapi: openapi::OpenApiState::new(&config),
        };
        Ok(Self {
            shared: Arc::new(Shared {
                config,
                inner: Mutex::new(inner),
                client,
                first_sends: watch::Sender::new(0),
                stop: CancellationToken::new(),
            }),
        })
    }

    /// What this sandbox was started with.
    pub fn config(&self) -> &SandboxConfig {
        &self.shared.config
    }

    /// A snapshot of the books.
    pub fn ledger(&self) -> LedgerView {
        let inner = self.lock();
        LedgerView::of(&inner.ledger, inner.realism.counts, &inner.openapi.ledger)
    }

    /// Ends held answers and stops sending notifications.
    pub fn stop(&self) {
        self.shared.stop.cancel();
    }

    /// The lock over books and generator. A panic while holding it leaves
    /// the books as they were at that step, which is still the best record
    /// there is, so a poisoned lock is used rather than propagated.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Serves the sandbox on `listener` until `shutdown`; then stops its
/// background work and lets the requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    state: Sandbox,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let stopper = state.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            shutdown.cancelled().await;
            // Held answers end now, so graceful shutdown does not wait for them.
            stopper.stop();
        })
        .await
}

/// A sandbox served in-process on a free local port, for benchmarks and the
/// soak; stopped with `stop`.
pub struct LocalGateway {
    pub sandbox: Sandbox,
    /// `http://127.0.0.1:PORT/gateway.do`.
    pub url: String,
    pub stop: CancellationToken,
}

/// Starts a sandbox with `config` on 127.0.0.1 and a free port.
pub async fn start_local(config: SandboxConfig) -> anyhow::Result<LocalGateway> {
    let sandbox = Sandbox::new(config)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/gateway.do", listener.local_addr()?);
    let stop = CancellationToken::new();
    tokio::spawn(serve(listener, sandbox.clone(), stop.clone()));
    Ok(LocalGateway { sandbox, url, stop })
}
