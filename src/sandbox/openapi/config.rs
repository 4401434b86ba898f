//! What a sandbox run is told about Alipay's OpenAPI: the apps whose
//! requests it verifies, and the faults it injects into
//! `alipay.trade.refund` and `alipay.trade.fastpay.refund.query`.
//!
//! Invariants: a scripted fault is consumed by exactly one refund call for
//! its trade, in the order given, so an integration test knows what each
//! call meets; the rates are 0 by default, and while every rate is 0
//! nothing is drawn from the seeded generator for OpenAPI calls, so a mapi
//! run replays as it did before this channel existed.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::alipay::openapi::sign::AlipayPublicKey;
use crate::sandbox::config::Rate;

/// An OpenAPI app the sandbox knows (an app id bound to a merchant).
#[derive(Debug, Clone)]
pub struct OpenApiApp {
    /// Alipay's app id, e.g. `2021000000000001`.
    pub app_id: String,
    /// The merchant's `2088…` partner id the app belongs to.
    pub partner: String,
    /// Verifies the app's requests (the public half of the key the worker signs with).
    pub app_public: AlipayPublicKey,
}

/// One scripted fault, met by one refund call for its trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenApiFault {
    /// Make the refund, then hold the answer this long (real time): the
    /// client times out with the money moved.
    TimeoutAfterRefund { hold: Duration },
    /// Make the refund, then answer a signed `20000 Service Currently
    /// Unavailable` (`aop.ACQ.SYSTEM_ERROR`).
    UnavailableAfterRefund,
    /// Make the refund, then answer with a signature that does not verify.
    BadSignatureAfterRefund,
    /// No refund: `40004 Business Failed` with this sub-code.
    Refuse { sub_code: String },
    /// No refund: HTTP 503 without looking further.
    Http503,
}

/// Faults injected into OpenAPI calls.
#[derive(Debug, Clone)]
pub struct OpenApiFaults {
    /// Per trade: the faults its next refund calls meet, one per call.
    pub script: HashMap<String, VecDeque<OpenApiFault>>,
    /// Per trade: how many of its next queries answer "no data" even when
    /// it was refunded (Alipay's replication lag).
    pub query_lag: HashMap<String, u32>,
    /// Per refund call: [`OpenApiFault::UnavailableAfterRefund`].
    pub unavailable_after_refund_rate: Rate,
    /// Per refund call: [`OpenApiFault::TimeoutAfterRefund`] for [`OpenApiFaults::timeout_hold`].
    pub timeout_after_refund_rate: Rate,
    /// How long a drawn time-out holds the answer; real time, not scaled.
    pub timeout_hold: Duration,
    /// Per refund call: [`OpenApiFault::BadSignatureAfterRefund`].
    pub bad_signature_rate: Rate,
    /// Per refund call: refused `ACQ.SELLER_BALANCE_NOT_ENOUGH`, no refund.
    pub balance_not_enough_rate: Rate,
}

impl Default for OpenApiFaults {
    fn default() -> Self {
        Self {
            script: HashMap::new(),
            query_lag: HashMap::new(),
            unavailable_after_refund_rate: Rate::NEVER,
            timeout_after_refund_rate: Rate::NEVER,
            timeout_hold: Duration::from_secs(60),
            bad_signature_rate: Rate::NEVER,
            balance_not_enough_rate: Rate::NEVER,
        }
    }
}

impl OpenApiFaults {
    /// These faults with `faults` appended to `trade_no`'s script.
    pub fn with_script(
        mut self,
        trade_no: &str,
        faults: impl IntoIterator<Item = OpenApiFault>,
    ) -> Self {
        self.script
            .entry(trade_no.to_owned())
            .or_default()
            .extend(faults);
        self
    }

    /// These faults with `trade_no`'s next `queries` queries answering no data.
    pub fn with_query_lag(mut self, trade_no: &str, queries: u32) -> Self {
        self.query_lag.insert(trade_no.to_owned(), queries);
        self
    }

    /// Whether any rate can fire; when none can, nothing is drawn.
    pub fn rates_on(&self) -> bool {
        [
            self.unavailable_after_refund_rate,
            self.timeout_after_refund_rate,
            self.bad_signature_rate,
            self.balance_not_enough_rate,
        ]
        .iter()
        .any(|r| r.get() > 0.0)
    }
}
