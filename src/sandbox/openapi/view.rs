//! The `openapi` section of `GET /ledger`: every refund made through the
//! OpenAPI methods, with how often its money moved, and the calls counted.
//!
//! Invariant: amounts are `"x.xx"` strings from integer fen; `moved_total`
//! is the sum of every movement, so a refund paid twice shows there and in
//! its `times_paid`.

use serde::Serialize;

use super::ledger::{CallCounts, OpenApiLedger};
use crate::domain::format_fen;

/// The OpenAPI books.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OpenApiView {
    /// Every refund made, by trade then `out_request_no`.
    pub refunds: Vec<OpenApiRefundView>,
    /// All the money that moved, yuan.
    pub moved_total: String,
    /// The same in fen.
    pub moved_total_fen: i64,
    pub calls: CallCounts,
}

/// One refund made.
#[derive(Debug, Clone, Serialize)]
pub struct OpenApiRefundView {
    pub trade_no: String,
    pub out_request_no: String,
    pub app_id: String,
    pub amount: String,
    pub times_paid: u32,
    /// Calls answered `fund_change N`.
    pub repeats: u32,
    pub dback_status: Option<String>,
}

impl OpenApiView {
    pub fn of(ledger: &OpenApiLedger) -> Self {
        Self {
            refunds: ledger
                .trades()
                .iter()
                .flat_map(|(trade_no, t)| {
                    t.refunds.iter().map(move |(n, r)| OpenApiRefundView {
                        trade_no: trade_no.clone(),
                        out_request_no: n.clone(),
                        app_id: r.app_id.clone(),
                        amount: format_fen(r.amount_fen),
                        times_paid: r.times_paid,
                        repeats: r.repeats,
                        dback_status: r.dback_status.clone(),
                    })
                })
                .collect(),
            moved_total: format_fen(ledger.moved_fen()),
            moved_total_fen: ledger.moved_fen(),
            calls: ledger.calls(),
        }
    }
}
