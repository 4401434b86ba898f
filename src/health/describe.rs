//! Every metric the worker emits, with its kind, unit, labels and HELP
//! text: described once when the recorder is installed, so `/metrics`
//! carries a `# HELP` line for each. The list is checked against the code's
//! `metrics::counter!`/`gauge!`/`histogram!` calls (tests below), and the
//! alert rules and dashboard under deploy/observability/ may use only these
//! names (tests/it/observability.rs).
//!
//! A counter whose labels all have a known, small set of values starts at 0
//! for each of them, so that `increase()` sees its first event: a series that
//! first appears with the value 1 counts as no increase.

use metrics::Unit;

/// What kind of metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// A label and the values it takes, when they are a fixed set (empty: an
/// open set, such as an Alipay code).
pub type Label = (&'static str, &'static [&'static str]);

/// One metric as emitted.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub unit: Unit,
    pub labels: &'static [Label],
    pub help: &'static str,
}

const OPEN: &[&str] = &[];
const SOURCE: Label = ("source", &["notify", "query"]);

const fn counter(name: &'static str, labels: &'static [Label], help: &'static str) -> Metric {
    Metric {
        name,
        kind: Kind::Counter,
        unit: Unit::Count,
        labels,
        help,
    }
}

const fn gauge(
    name: &'static str,
    unit: Unit,
    labels: &'static [Label],
    help: &'static str,
) -> Metric {
    Metric {
        name,
        kind: Kind::Gauge,
        unit,
        labels,
        help,
    }
}

/// Every metric, in no particular order.
pub const METRICS: &[Metric] = &[
    // Intake.
    counter(
        "refund_worker_intake_total",
        &[("outcome", &["stored", "duplicate", "dead_lettered"])],
        "Refund-approved events intake settled, by outcome: stored, duplicate (already stored) or dead_lettered (refused to refunds.dead).",
    ),
    counter(
        "refund_worker_dead_lettered_total",
        &[("code", OPEN)],
        "Events intake refused to refunds.dead, by the contract's error code.",
    ),
    counter(
        "refund_worker_intake_store_errors_total",
        &[],
        "Windows of events intake could not store for a transient database error; each is held unacked and tried again.",
    ),
    counter(
        "refund_worker_intake_dead_letter_refusals_total",
        &[],
        "Dead letters the broker did not take (refunds.dead missing, full or unroutable); the window is held unacked and tried again.",
    ),
    // Refunds and results.
    counter(
        "refund_worker_refunds_completed_total",
        &[("status", &["succeeded", "failed"])],
        "Refunds that reached a terminal status, counted after their transaction committed.",
    ),
    counter(
        "refund_worker_events_published_total",
        &[],
        "Result events the outbox relay published and the broker confirmed.",
    ),
    // The gateway.
    counter(
        "refund_worker_gateway_requests_total",
        &[("service", OPEN), ("disposition", OPEN), ("code", OPEN)],
        "Calls to Alipay, by service (mapi service or OpenAPI method), what the answer means for the batch or request (disposition) and, for mapi submissions, Alipay's code.",
    ),
    Metric {
        name: "refund_worker_gateway_seconds",
        kind: Kind::Histogram,
        unit: Unit::Seconds,
        labels: &[],
        help: "Time from sending a request to Alipay's gateway to its whole answer (or the transport error), in seconds.",
    },
    Metric {
        name: "refund_worker_batch_size",
        kind: Kind::Histogram,
        unit: Unit::Count,
        labels: &[],
        help: "Items in each batch the batcher formed.",
    },
    counter(
        "refund_worker_partner_paused_total",
        &[("code", OPEN)],
        "Pauses of a partner's submissions after Alipay refused its configuration or contract, by Alipay's code.",
    ),
    counter(
        "refund_worker_batches_held_total",
        &[("code", OPEN)],
        "Batches held for a person after an answer the submitter cannot act on (an unknown F code, or our bug), by code.",
    ),
    counter(
        "refund_worker_stale_claims_total",
        &[],
        "Submissions whose claim had been taken over (the process stalled past its lease); nothing was recorded.",
    ),
    // Notifications.
    counter(
        "refund_worker_notifications_total",
        &[(
            "verdict",
            &[
                "applied",
                "repeat",
                "malformed",
                "forged",
                "unknown_batch",
                "wrong_partner",
                "unconfirmed",
                "verify_invalid",
                "verify_failed",
                "unavailable",
                "unreadable",
                "unknown_refund",
            ],
        )],
        "Notifications received from Alipay, by verdict: applied or repeat; refused (malformed, forged, unknown_batch, wrong_partner, unconfirmed, unreadable, unknown_refund); answered fail for Alipay to resend (verify_invalid, verify_failed, unavailable).",
    ),
    counter(
        "refund_worker_notify_verify_invalid_total",
        &[],
        "notify_verify answers of invalid: our partner id or gateway setting is wrong.",
    ),
    // Reports (notifications and query answers).
    counter(
        "refund_worker_item_results_total",
        &[
            (
                "class",
                &[
                    "paid",
                    "final",
                    "alipay_retries",
                    "can_pass",
                    "needs_person",
                ],
            ),
            SOURCE,
        ],
        "Item results read from genuine reports, by what the code means for the refund and where the report came from.",
    ),
    counter(
        "refund_worker_unreadable_items_total",
        &[SOURCE],
        "Items of a genuine report that could not be read; left open for the reconciler and a person.",
    ),
    counter(
        "refund_worker_success_num_mismatch_total",
        &[],
        "Reports whose success_num disagrees with the items that read SUCCESS.",
    ),
    counter(
        "refund_worker_items_opened_total",
        &[(
            "class",
            &["alipay_retries", "needs_person", "amount_mismatch"],
        )],
        "Items Alipay left open, by why: Alipay retries them, or a person must settle them.",
    ),
    counter(
        "refund_worker_amount_mismatches_total",
        &[],
        "Reports with an item whose amount is not the one sent.",
    ),
    counter(
        "refund_worker_item_disagreements_total",
        &[],
        "Items a report contradicts after they were settled; nothing changed, a person must look.",
    ),
    counter(
        "refund_worker_rejected_batch_results_total",
        &[SOURCE],
        "Genuine results for a batch the worker had rejected (the rejection was wrong).",
    ),
    counter(
        "refund_worker_double_payment_suspected_total",
        &[],
        "Refunds of such a batch that had already been sent again: possibly paid twice.",
    ),
    // The reconciler.
    counter(
        "refund_worker_reconciler_queries_total",
        &[],
        "refund_fastpay_query calls the reconciler made for batches without a notification.",
    ),
    counter(
        "refund_worker_query_errors_total",
        &[("code", OPEN)],
        "Reconciler queries Alipay refused, by code.",
    ),
    // The whole system, read from the database at each scrape.
    gauge(
        "refund_worker_database_up",
        Unit::Count,
        &[],
        "1 when this scrape read the gauges from the database, 0 when it could not.",
    ),
    gauge(
        "refund_worker_refunds",
        Unit::Count,
        &[("status", &["pending", "batched", "submitted"])],
        "Refunds not yet terminal, by status.",
    ),
    gauge(
        "refund_worker_outbox_backlog",
        Unit::Count,
        &[],
        "Result events stored and not yet published.",
    ),
    gauge(
        "refund_worker_outbox_oldest_seconds",
        Unit::Seconds,
        &[],
        "Age of the oldest unpublished result event, in seconds (0 when none).",
    ),
    gauge(
        "refund_worker_oldest_pending_seconds",
        Unit::Seconds,
        &[],
        "Age of the oldest pending refund, in seconds (0 when none).",
    ),
    gauge(
        "refund_worker_oldest_submitted_seconds",
        Unit::Seconds,
        &[],
        "Age of the oldest batch accepted by Alipay and not completed, since it was submitted, in seconds (0 when none).",
    ),
    gauge(
        "refund_worker_partners_paused",
        Unit::Count,
        &[],
        "Partners whose submissions are paused after Alipay refused their configuration or contract.",
    ),
    gauge(
        "refund_worker_batches_awaiting_operator",
        Unit::Count,
        &[],
        "Batches waiting for an operator to post the password form.",
    ),
    gauge(
        "refund_worker_unresolved_items",
        Unit::Count,
        &[(
            "class",
            &["alipay_retries", "needs_person", "amount_mismatch"],
        )],
        "Items Alipay left open, by why: alipay_retries waits for Alipay; needs_person and amount_mismatch for a person (refund settle).",
    ),
    gauge(
        "refund_worker_batches_held",
        Unit::Count,
        &[],
        "Batches held for a person (batch release once understood).",
    ),
    gauge(
        "refund_worker_openapi_requests_held",
        Unit::Count,
        &[],
        "OpenAPI refund requests held for a person (refund settle).",
    ),
    gauge(
        "refund_worker_double_payment_suspects",
        Unit::Count,
        &[],
        "Refunds recorded as possibly paid twice (the operator page's list); it only grows.",
    ),
    gauge(
        "refund_worker_batches_outcome_unknown",
        Unit::Count,
        &[],
        "Batches not yet accepted whose last send had an unknown outcome; resent or queried until settled.",
    ),
    gauge(
        "refund_worker_oldest_outcome_unknown_seconds",
        Unit::Seconds,
        &[],
        "Age of the oldest batch not yet accepted with an unknown outcome, since it was created, in seconds (0 when none).",
    ),
];

/// Describes every metric to the installed recorder, and starts the counters
/// whose label values are all known at 0.
pub fn register() {
    for m in METRICS {
        match m.kind {
            Kind::Counter => metrics::describe_counter!(m.name, m.unit, m.help),
            Kind::Gauge => metrics::describe_gauge!(m.name, m.unit, m.help),
            Kind::Histogram => metrics::describe_histogram!(m.name, m.unit, m.help),
        }
        if m.kind == Kind::Counter && m.labels.iter().all(|(_, values)| !values.is_empty()) {
            for labels in combinations(m.labels) {
                metrics::counter!(m.name, &labels).increment(0);
            }
        }
    }
}

/// Every combination of the labels' values (one empty set for no labels).
fn combinations(labels: &[Label]) -> Vec<Vec<(&'static str, &'static str)>> {
    let mut out = vec![Vec::new()];
    for (key, values) in labels {
        out = out
            .into_iter()
            .flat_map(|set: Vec<(&'static str, &'static str)>| {
                values.iter().map(move |v| {
                    let mut set = set.clone();
                    set.push((*key, *v));
                    set
                })
            })
            .collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::*;

    /// The text `/metrics` serves once every metric was described and touched.
    fn rendered() -> String {
        let recorder = PrometheusBuilder::new().build_recorder();
        metrics::with_local_recorder(&recorder, || {
            register();
            for m in METRICS {
                let labels: Vec<(&str, &str)> = m
                    .labels
                    .iter()
                    .map(|(k, values)| (*k, *values.first().unwrap_or(&"x")))
                    .collect();
                match m.kind {
                    Kind::Counter => metrics::counter!(m.name, &labels).increment(1),
                    Kind::Gauge => metrics::gauge!(m.name, &labels).set(1.0),
                    Kind::Histogram => metrics::histogram!(m.name, &labels).record(1.0),
                }
            }
        });
        recorder.handle().render()
    }

    fn is_snake_case(s: &str) -> bool {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !s.starts_with('_')
            && !s.ends_with('_')
            && !s.contains("__")
    }

    #[test]
    fn every_metric_has_help_and_follows_the_naming_conventions() {
        let text = rendered();
        let mut types = BTreeMap::new();
        let mut helps = BTreeSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                types.insert(name.to_owned(), kind.to_owned());
            } else if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap();
                assert!(!help.trim().is_empty(), "{name} has an empty HELP");
                helps.insert(name.to_owned());
            }
        }
        assert_eq!(types.len(), METRICS.len(), "{text}");
        for (name, kind) in &types {
            assert!(helps.contains(name), "{name} has a TYPE and no HELP");
            assert!(
                name.starts_with("refund_worker_") && is_snake_case(name),
                "{name}: snake case with the refund_worker_ prefix"
            );
            assert_eq!(
                kind == "counter",
                name.ends_with("_total"),
                "{name} ({kind}): counters, and only counters, end in _total"
            );
        }
        for m in METRICS {
            let unit_named = m.name.ends_with("_seconds");
            assert_eq!(
                m.unit == Unit::Seconds,
                unit_named,
                "{}: a duration is in seconds and named _seconds",
                m.name
            );
            assert!(
                !["_ms", "_millis", "_milliseconds", "_minutes", "_hours"]
                    .iter()
                    .any(|s| m.name.contains(s)),
                "{}: durations in seconds",
                m.name
            );
        }
    }

    #[test]
    fn no_label_carries_an_identifier() {
        for m in METRICS {
            for (key, _) in m.labels {
                assert!(is_snake_case(key), "{}: label {key}", m.name);
                assert!(
                    ![
                        "refund_id",
                        "batch_no",
                        "trade_no",
                        "notify_id",
                        "out_request_no",
                        "message_id",
                        "event_id",
                        "partner",
                        "id",
                    ]
                    .contains(key)
                        && !key.ends_with("_id")
                        && !key.ends_with("_no"),
                    "{}: label {key} would be one series per refund or batch",
                    m.name
                );
            }
        }
    }

    #[test]
    fn counters_with_known_labels_start_at_zero() {
        let text = rendered();
        // Described and started only: every started counter is 0.
        let recorder = PrometheusBuilder::new().build_recorder();
        metrics::with_local_recorder(&recorder, register);
        let started = recorder.handle().render();
        assert!(
            started.contains("refund_worker_notifications_total{verdict=\"forged\"} 0"),
            "{started}"
        );
        assert!(started.contains("refund_worker_double_payment_suspected_total 0"));
        assert!(
            started.contains(
                "refund_worker_item_results_total{class=\"needs_person\",source=\"query\"} 0"
            ),
            "{started}"
        );
        // An open label (an Alipay code) is never guessed.
        assert!(!started.contains("refund_worker_gateway_requests_total{"));
        assert!(text.contains("refund_worker_gateway_requests_total{"));
    }

    /// A macro call's arguments: up to its closing parenthesis, past nested
    /// ones and string literals.
    fn arguments(after_open: &str) -> &str {
        let (mut depth, mut in_string, mut escaped) = (1, false, false);
        for (i, c) in after_open.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if in_string => escaped = true,
                '"' => in_string = !in_string,
                '(' if !in_string => depth += 1,
                ')' if !in_string => {
                    depth -= 1;
                    if depth == 0 {
                        return &after_open[..i];
                    }
                }
                _ => {}
            }
        }
        panic!("an unclosed macro call: {after_open:.80}")
    }

    /// Each `metrics::counter!`/`gauge!`/`histogram!` call in src/: its
    /// kind, literal name and label keys.
    fn emitted() -> BTreeMap<String, (Kind, BTreeSet<String>)> {
        let mut out: BTreeMap<String, (Kind, BTreeSet<String>)> = BTreeMap::new();
        let mut stack = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src"
        ))];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") || path.ends_with("describe.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for (macro_name, kind) in [
                    ("metrics::counter!(", Kind::Counter),
                    ("metrics::gauge!(", Kind::Gauge),
                    ("metrics::histogram!(", Kind::Histogram),
                ] {
                    for (at, _) in text.match_indices(macro_name) {
                        let args = arguments(&text[at + macro_name.len()..]);
                        let Some(name) = args.trim_start().strip_prefix('"') else {
                            panic!("{}: a metric name that is not a literal", path.display());
                        };
                        let name = &name[..name.find('"').unwrap()];
                        let parts: Vec<&str> = args.split("=>").collect();
                        let labels = parts[..parts.len() - 1]
                            .iter()
                            .filter_map(|before| {
                                let before = before.trim_end().strip_suffix('"')?;
                                Some(before[before.rfind('"')? + 1..].to_owned())
                            })
                            .collect::<BTreeSet<_>>();
                        let e = out
                            .entry(name.to_owned())
                            .or_insert_with(|| (kind, BTreeSet::new()));
                        assert_eq!(e.0, kind, "{name} emitted as two kinds");
                        e.1.extend(labels);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn the_list_is_every_metric_the_code_emits_with_its_labels() {
        let emitted = emitted();
        assert!(emitted.len() > 20, "{emitted:?}");
        let described: BTreeMap<String, (Kind, BTreeSet<String>)> = METRICS
            .iter()
            .map(|m| {
                let labels = m.labels.iter().map(|(k, _)| k.to_string()).collect();
                (m.name.to_owned(), (m.kind, labels))
            })
            .collect();
        assert_eq!(described.len(), METRICS.len(), "a name listed twice");
        assert_eq!(described, emitted);
    }
}
