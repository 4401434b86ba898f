//! The OpenAPI channel's invariants, judged from the terminal events and the
//! sandbox's `openapi` books (pure), and the channel's figures for the report.
//!
//! What must hold: every refund planned on the OpenAPI partner ended on that
//! channel, a succeeded one with `"channel":"openapi"`, its `out_request_no`
//! and no `batch_no`; the sandbox moved money at most once per
//! `out_request_no`, and only under a refund's first number (the soak never
//! retries a refund, so no refund is paid under two numbers); what it paid
//! is exactly the succeeded OpenAPI events (trade, number, amount in fen,
//! and the total); no trade refunded above what it was paid.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::{Facts, Kind};
use crate::alipay::openapi::request::out_request_no;
use crate::soak::stream::PAID_FEN;

/// The key a payment and a succeeded event are matched on.
type Paid = (String, String, i64);

/// The refunds planned as valid, by id: on the OpenAPI partner or not.
fn planned_channels<'a>(f: &Facts<'a>) -> HashMap<&'a str, bool> {
    f.planned
        .iter()
        .filter(|p| p.kind == Kind::Valid)
        .map(|p| (p.refund_id.as_str(), p.openapi))
        .collect()
}

/// Every OpenAPI invariant (see the module), each violation in words.
pub(super) fn paid_once_as_succeeded(f: &Facts<'_>, out: &mut Vec<String>) {
    events_on_their_channel(f, out);
    paid_once_under_the_first_number(f, out);
    paid_as_succeeded(f, out);
}

/// Each terminal event is on its refund's planned channel; a succeeded
/// OpenAPI event names its first number and no batch.
fn events_on_their_channel(f: &Facts<'_>, out: &mut Vec<String>) {
    let planned = planned_channels(f);
    let (mut astray, mut malformed) = (0, 0);
    for e in f.events {
        let Some(&openapi) = planned.get(e.refund_id.as_str()) else {
            continue; // a stranger: `one_terminal_event_each` names it
        };
        if e.is_openapi() != openapi || (!openapi && e.channel != "mapi") {
            astray += 1;
        } else if openapi
            && e.succeeded
            && (e.out_request_no != out_request_no(&e.refund_id, 0) || e.batch_no.is_some())
        {
            malformed += 1;
        }
    }
    if astray > 0 {
        out.push(format!(
            "{astray} terminal events on another channel than their partner's"
        ));
    }
    if malformed > 0 {
        out.push(format!(
            "{malformed} succeeded OpenAPI events without their out_request_no or with a batch_no"
        ));
    }
}

/// No number paid twice, no number but a planned refund's first one paid.
fn paid_once_under_the_first_number(f: &Facts<'_>, out: &mut Vec<String>) {
    let planned = planned_channels(f);
    let refunds = &f.ledger.openapi.refunds;
    let twice: Vec<&str> = refunds
        .iter()
        .filter(|r| r.times_paid > 1)
        .map(|r| r.out_request_no.as_str())
        .collect();
    if let Some(first) = twice.first() {
        out.push(format!(
            "{} out_request_nos the sandbox paid more than once (e.g. {first})",
            twice.len()
        ));
    }
    let foreign: Vec<&str> = refunds
        .iter()
        .filter(|r| r.times_paid > 0)
        .map(|r| r.out_request_no.as_str())
        .filter(|n| planned.get(n) != Some(&true))
        .collect();
    if let Some(first) = foreign.first() {
        out.push(format!(
            "{} OpenAPI refunds paid under a number that is no planned refund's first (a second number, unretried; e.g. {first})",
            foreign.len()
        ));
    }
    let mut by_trade: BTreeMap<&str, i64> = BTreeMap::new();
    for r in refunds {
        *by_trade.entry(r.trade_no.as_str()).or_default() +=
            super::fen(&r.amount) * i64::from(r.times_paid);
    }
    for (trade, refunded) in by_trade.into_iter().filter(|(_, fen)| *fen > PAID_FEN) {
        out.push(format!(
            "OpenAPI trade {trade} refunded {refunded} fen of {PAID_FEN} paid"
        ));
    }
}

/// What the sandbox paid is exactly the succeeded OpenAPI events.
fn paid_as_succeeded(f: &Facts<'_>, out: &mut Vec<String>) {
    let view = &f.ledger.openapi;
    let paid: HashSet<Paid> = view
        .refunds
        .iter()
        .filter(|r| r.times_paid > 0)
        .map(|r| {
            let amount = super::fen(&r.amount);
            (r.trade_no.clone(), r.out_request_no.clone(), amount)
        })
        .collect();
    let mut succeeded: HashSet<Paid> = HashSet::new();
    let mut succeeded_fen = 0;
    let mut failed: HashSet<(&str, &str)> = HashSet::new();
    for e in f.events.iter().filter(|e| e.is_openapi()) {
        if e.succeeded {
            succeeded_fen += e.amount_fen;
            succeeded.insert((e.trade_no.clone(), e.out_request_no.clone(), e.amount_fen));
        } else {
            failed.insert((e.trade_no.as_str(), e.refund_id.as_str()));
        }
    }
    let paid_but_failed = paid
        .iter()
        .filter(|(trade, number, _)| failed.contains(&(trade.as_str(), number.as_str())))
        .count();
    if paid_but_failed > 0 {
        out.push(format!(
            "{paid_but_failed} OpenAPI refunds the sandbox paid were reported failed"
        ));
    }
    if paid != succeeded {
        let only_paid = paid.difference(&succeeded).count();
        let only_events = succeeded.difference(&paid).count();
        out.push(format!(
            "the sandbox's OpenAPI refunds and the succeeded OpenAPI events differ: {only_paid} paid without a succeeded event, {only_events} succeeded events without a payment"
        ));
    }
    if view.moved_total_fen != succeeded_fen {
        out.push(format!(
            "the sandbox moved {} fen through OpenAPI, the succeeded OpenAPI events say {succeeded_fen}",
            view.moved_total_fen
        ));
    }
}

/// The OpenAPI channel's share of a run, for the report.
#[derive(Debug, Default, Clone, Serialize)]
pub struct OpenApiFigures {
    /// Valid refunds planned on the OpenAPI partner.
    pub refunds: usize,
    pub succeeded: usize,
    pub failed: usize,
    /// `alipay.trade.refund` calls that reached the sandbox's books.
    pub refund_calls: u64,
    /// `alipay.trade.fastpay.refund.query` calls.
    pub query_calls: u64,
    /// Calls the sandbox refused before its books (app, signature, parameters).
    pub refused_calls: u64,
    /// Calls the workers met without a verified outcome.
    pub unknown_outcomes: i64,
    /// Refunds the sandbox paid (distinct `out_request_no`s that moved money).
    pub paid: usize,
    /// What they moved, in fen.
    pub paid_fen: i64,
}

/// The figures of the OpenAPI channel in these facts.
pub fn figures(f: &Facts<'_>) -> OpenApiFigures {
    let view = &f.ledger.openapi;
    let openapi = || f.events.iter().filter(|e| e.is_openapi());
    OpenApiFigures {
        refunds: planned_channels(f).values().filter(|o| **o).count(),
        succeeded: openapi().filter(|e| e.succeeded).count(),
        failed: openapi().filter(|e| !e.succeeded).count(),
        refund_calls: view.calls.refund,
        query_calls: view.calls.query,
        refused_calls: view.calls.refused,
        unknown_outcomes: f.db.openapi_unknown_outcomes,
        paid: view.refunds.iter().filter(|r| r.times_paid > 0).count(),
        paid_fen: view.moved_total_fen,
    }
}
