//! The sandbox plays Alipay's OpenAPI gateway too (alipay-openapi.md):
//! `alipay.trade.refund` and `alipay.trade.fastpay.refund.query` on
//! `/gateway.do`, told apart from mapi by a `method` without a `service`,
//! and the 充退 push `alipay.trade.refund.depositback.completed`.
//!
//! Invariants: the OpenAPI books, the consumable fault script and the
//! seeded generator change together under the sandbox's one lock; a call
//! is believed only after its app's signature verifies; every answer is
//! signed over its exact bytes with the key the sandbox plays Alipay with
//! (unless a fault forges it), so the worker's own readers
//! (`alipay::openapi::{answer, query, push}`) judge it as they would
//! Alipay's. OpenAPI calls meet only the OpenAPI faults, never the mapi
//! ones.
//!
//! - `config`: the apps and the faults a run is told
//! - `checks`: the common checks: app, signature, parameters, method (pure)
//! - `ledger`: trades, refunds by `out_request_no`, 充退 status, calls (pure)
//! - `script`: which fault a call meets, script first, then the rates
//! - `answer`: the signed JSON envelope and refusals (pure)
//! - `refund`, `query`: each method's `biz_content` and answer (pure)
//! - `push`: the signed 充退 push form (pure)
//! - `serve`: the shell: handling a call, the push route
//! - `view`: the `openapi` section of `GET /ledger`

pub(crate) mod answer;
pub(crate) mod checks;
pub(crate) mod config;
pub(crate) mod ledger;
pub(crate) mod push;
pub(crate) mod query;
pub(crate) mod refund;
pub(crate) mod script;
pub(crate) mod serve;
#[cfg(test)]
mod serve_tests;
#[cfg(test)]
pub(crate) mod test_keys;
pub(crate) mod view;

pub use config::{OpenApiApp, OpenApiFault, OpenApiFaults};
pub use ledger::{CallCounts, DepositBackFacts, OpenApiLedger};
pub use push::depositback_form;
pub use view::{OpenApiRefundView, OpenApiView};

use super::SandboxConfig;
use script::FaultScript;

/// What OpenAPI calls change, kept in the sandbox's `Inner`.
#[derive(Debug, Clone)]
pub(crate) struct OpenApiState {
    pub ledger: OpenApiLedger,
    pub script: FaultScript,
}

impl OpenApiState {
    /// Empty books and the whole script of `config`.
    pub fn new(config: &SandboxConfig) -> Self {
        Self {
            ledger: OpenApiLedger::new(config.trade_paid_fen),
            script: FaultScript::new(&config.openapi_faults),
        }
    }
}
