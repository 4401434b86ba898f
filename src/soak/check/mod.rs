//! The soak's invariants, judged from what was collected (pure): the result
//! events, the dead letters, the sandbox's ledger and a few database counts.
//!
//! A failed refund is not a violation in itself: injected item failures,
//! refunds above what was paid and poison trades (`--realistic`) fail for
//! good. What is: a failure the gateway contradicts, i.e. a refund it paid,
//! or one it reported with a code it retries itself (not final), in the
//! batch the failed event names.
//!
//! The mapi checks read the mapi events and the ledger's batches; the
//! OpenAPI refunds (their events on `"channel":"openapi"`, the ledger's
//! `openapi` section) are judged in `openapi`.

mod contradicted;
mod openapi;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::stream::{Kind, Planned};
use crate::domain::Amount;
use crate::sandbox::LedgerView;
pub use contradicted::{paid_but_failed, retried_but_failed};
pub use openapi::{OpenApiFigures, figures};

/// What the database says about batches and notifications.
#[derive(Debug, Default, Clone, Serialize)]
pub struct DbFacts {
    pub batches_over_1000: i64,
    pub batches_with_a_trade_twice: i64,
    pub refunds_in_two_live_batches: i64,
    pub forged_applied: i64,
    pub forged_stored: i64,
    /// OpenAPI calls answered without a verified outcome (no answer, not
    /// 200, unreadable, unverified, `20000`): each followed by the same number.
    pub openapi_unknown_outcomes: i64,
    /// OpenAPI requests held for a person (none expected in a soak).
    pub openapi_held: i64,
}

/// A terminal result event, as much of it as the checks read (a million
/// whole JSON events held for the checks took 4.4 GB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminal {
    pub refund_id: String,
    pub succeeded: bool,
    pub trade_no: String,
    /// `None` when null or absent (always, on the OpenAPI channel).
    pub batch_no: Option<String>,
    /// `-1` when the event's amount cannot be read (a violation then shows).
    pub amount_fen: i64,
    /// `mapi` or `openapi` (empty when absent).
    pub channel: String,
    /// The OpenAPI request's number (empty when absent, as on mapi).
    pub out_request_no: String,
}

impl Terminal {
    /// The terminal part of a result event; `None` for any other event.
    pub fn from_event(e: &serde_json::Value) -> Option<Self> {
        let succeeded = match e["event"].as_str()? {
            "refund.succeeded" => true,
            "refund.failed" => false,
            _ => return None,
        };
        let text = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
        Some(Terminal {
            refund_id: text("refund_id"),
            succeeded,
            trade_no: text("trade_no"),
            batch_no: e["batch_no"].as_str().map(str::to_owned),
            amount_fen: fen(e["amount"].as_str().unwrap_or_default()),
            channel: text("channel"),
            out_request_no: text("out_request_no"),
        })
    }

    /// Whether the event is on the OpenAPI channel.
    pub fn is_openapi(&self) -> bool {
        self.channel == "openapi"
    }

    /// The batch, `""` for none.
    pub fn batch(&self) -> &str {
        self.batch_no.as_deref().unwrap_or_default()
    }
}

/// A dead letter as the checks read it: (refund_id, code, body).
pub type DeadLetter = (Option<String>, Option<String>, Vec<u8>);

/// Everything the checks read.
pub struct Facts<'a> {
    pub planned: &'a [Planned],
    /// Terminal result events, deduplicated on `event_id`.
    pub events: &'a [Terminal],
    pub dead: &'a [DeadLetter],
    pub ledger: &'a LedgerView,
    pub db: &'a DbFacts,
    pub forged_sent: usize,
}

fn fen(text: &str) -> i64 {
    Amount::parse_yuan(text).map(Amount::fen).unwrap_or(-1)
}

/// Every violated invariant, in words; empty when all hold.
pub fn violations(f: &Facts<'_>) -> Vec<String> {
    let mut out = Vec::new();
    one_terminal_event_each(f, &mut out);
    ledger_matches_events(f, &mut out);
    no_contradicted_failure(f, &mut out);
    openapi::paid_once_as_succeeded(f, &mut out);
    gateway_batches_well_formed(f, &mut out);
    database_consistent(f, &mut out);
    dead_letters_as_planned(f, &mut out);
    out
}

/// Every valid refund has exactly one terminal event, and no other refund has one.
fn one_terminal_event_each(f: &Facts<'_>, out: &mut Vec<String>) {
    let valid: HashSet<&str> = f
        .planned
        .iter()
        .filter(|p| p.kind == Kind::Valid)
        .map(|p| p.refund_id.as_str())
        .collect();
    let mut terminal: HashMap<&str, usize> = HashMap::new();
    for e in f.events {
        *terminal.entry(e.refund_id.as_str()).or_default() += 1;
    }
    let missing = valid
        .iter()
        .filter(|id| !terminal.contains_key(*id))
        .count();
    if missing > 0 {
        out.push(format!("{missing} valid refunds have no terminal event"));
    }
    let doubled = terminal.values().filter(|n| **n > 1).count();
    if doubled > 0 {
        out.push(format!(
            "{doubled} refunds have more than one terminal event"
        ));
    }
    let strangers = terminal.keys().filter(|id| !valid.contains(*id)).count();
    if strangers > 0 {
        out.push(format!(
            "{strangers} terminal events for refunds never sent as valid"
        ));
    }
}

/// The ledger's successful batch refunds are exactly the succeeded mapi
/// events, and no trade was refunded more than was paid.
fn ledger_matches_events(f: &Facts<'_>, out: &mut Vec<String>) {
    let mut paid: BTreeMap<(String, String, i64), usize> = BTreeMap::new();
    for t in &f.ledger.trades {
        for r in t.refunds.iter().filter(|r| r.code == "SUCCESS") {
            *paid
                .entry((t.trade_no.clone(), r.batch_no.clone(), fen(&r.amount)))
                .or_default() += 1;
        }
        if fen(&t.refunded) > fen(&t.paid) {
            out.push(format!(
                "trade {} refunded {} of {} paid",
                t.trade_no, t.refunded, t.paid
            ));
        }
    }
    let mut succeeded: BTreeMap<(String, String, i64), usize> = BTreeMap::new();
    let mut succeeded_fen = 0;
    for e in f.events.iter().filter(|e| e.succeeded && !e.is_openapi()) {
        succeeded_fen += e.amount_fen;
        let key = (e.trade_no.clone(), e.batch().to_owned(), e.amount_fen);
        *succeeded.entry(key).or_default() += 1;
    }
    if paid != succeeded {
        let only_paid = paid.keys().filter(|k| !succeeded.contains_key(*k)).count();
        let only_events = succeeded.keys().filter(|k| !paid.contains_key(*k)).count();
        out.push(format!(
            "the ledger and the succeeded mapi events differ: {only_paid} paid without a succeeded event, {only_events} succeeded events without a payment"
        ));
    }
    if f.ledger.paid_total_fen != succeeded_fen {
        out.push(format!(
            "the ledger paid {} fen in batches, the succeeded mapi events say {succeeded_fen}",
            f.ledger.paid_total_fen
        ));
    }
}

/// No refund ended failed where the gateway says otherwise (see `contradicted`).
fn no_contradicted_failure(f: &Facts<'_>, out: &mut Vec<String>) {
    for (what, found) in [
        (
            "refunds the sandbox paid were reported failed",
            paid_but_failed(f.events, f.ledger),
        ),
        (
            "refunds the sandbox reported with a code Alipay retries itself (not final) ended failed",
            retried_but_failed(f.events, f.ledger),
        ),
    ] {
        if let Some((batch_no, trade_no)) = found.first() {
            out.push(format!(
                "{} {what} (e.g. batch {batch_no}, trade {trade_no})",
                found.len()
            ));
        }
    }
}

/// Each batch_no used once at the gateway, no batch above 1000 items.
fn gateway_batches_well_formed(f: &Facts<'_>, out: &mut Vec<String>) {
    let batch_nos: HashSet<&str> = f
        .ledger
        .batches
        .iter()
        .map(|b| b.batch_no.as_str())
        .collect();
    if batch_nos.len() != f.ledger.batches.len() {
        out.push("a batch_no was used twice at the gateway".into());
    }
    if f.ledger.batches.iter().any(|b| b.items.len() > 1000) {
        out.push("the gateway received a batch above 1000 items".into());
    }
}

/// The database's counts are all zero, and every forged notification was stored for audit.
fn database_consistent(f: &Facts<'_>, out: &mut Vec<String>) {
    let db = f.db;
    for (n, what) in [
        (db.openapi_held, "OpenAPI requests held for a person"),
        (db.batches_over_1000, "batches above 1000 items"),
        (
            db.batches_with_a_trade_twice,
            "batches holding a trade twice",
        ),
        (
            db.refunds_in_two_live_batches,
            "refunds in two live batches",
        ),
        (db.forged_applied, "forged notifications applied"),
    ] {
        if n > 0 {
            out.push(format!("{n} {what}"));
        }
    }
    if db.forged_stored < f.forged_sent as i64 {
        out.push(format!(
            "{} forged notifications sent, {} stored for audit",
            f.forged_sent, db.forged_stored
        ));
    }
}

/// Dead letters: exactly the invalid ones and the conflicts, with their
/// codes. Dead-lettering is at least once (a worker killed between the
/// dead letter's confirm and the original's ack sends it again), so the
/// same message twice counts once.
fn dead_letters_as_planned(f: &Facts<'_>, out: &mut Vec<String>) {
    let mut expected: BTreeMap<&str, usize> = BTreeMap::new();
    for p in f.planned {
        match &p.kind {
            Kind::Invalid(code) => *expected.entry(code).or_default() += 1,
            Kind::Conflict => *expected.entry("conflicting_duplicate").or_default() += 1,
            _ => {}
        }
    }
    let mut found: BTreeMap<&str, usize> = BTreeMap::new();
    let distinct: HashSet<&DeadLetter> = f.dead.iter().collect();
    for (_, code, _) in distinct {
        *found.entry(code.as_deref().unwrap_or("none")).or_default() += 1;
    }
    if expected != found {
        out.push(format!(
            "dead letters by code {found:?}, expected {expected:?}"
        ));
    }
}
