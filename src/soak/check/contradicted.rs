//! Failed mapi refunds the gateway contradicts: paid by the sandbox, or
//! reported with a code Alipay retries itself (not final), in the batch the
//! failed event names. (An OpenAPI refund paid but failed is `openapi`'s.) Few failures, so the ledger is scanned once against them.

use std::collections::HashSet;

use super::Terminal;
use crate::sandbox::LedgerView;
use crate::sandbox::realism::is_retried_by_alipay;

/// The (batch_no, trade_no) of failed events, to look up in the ledger;
/// few, so the ledger is scanned once against them.
fn failed_keys(events: &[Terminal]) -> HashSet<(&str, &str)> {
    events
        .iter()
        .filter(|e| !e.succeeded && !e.is_openapi())
        .map(|e| (e.batch(), e.trade_no.as_str()))
        .collect()
}

/// Failed events whose batch and trade the ledger shows paid: the money
/// went back to the buyer, the worker said it did not.
pub fn paid_but_failed(events: &[Terminal], ledger: &LedgerView) -> Vec<(String, String)> {
    let failed = failed_keys(events);
    let mut out = Vec::new();
    for t in &ledger.trades {
        for r in t.refunds.iter().filter(|r| r.code == "SUCCESS") {
            if failed.contains(&(r.batch_no.as_str(), t.trade_no.as_str())) {
                out.push((r.batch_no.clone(), t.trade_no.clone()));
            }
        }
    }
    out
}

/// Failed events whose item in that batch the sandbox reported with a code
/// Alipay retries itself (`TRADE_PAYMENT_ERROR`, `TRADE_PROCESS_ERROR`,
/// `QUERY_PARTICIPANT_ERROR`): such an item is not final, whatever the
/// sandbox reported after it.
pub fn retried_but_failed(events: &[Terminal], ledger: &LedgerView) -> Vec<(String, String)> {
    let failed = failed_keys(events);
    let mut out = Vec::new();
    for b in &ledger.batches {
        for i in &b.items {
            if i.reported_codes.iter().any(|c| is_retried_by_alipay(c))
                && failed.contains(&(b.batch_no.as_str(), i.trade_no.as_str()))
            {
                out.push((b.batch_no.clone(), i.trade_no.clone()));
            }
        }
    }
    out
}
