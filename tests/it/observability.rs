//! deploy/observability/ checked against the code and the runbook: every
//! alert has its expression, duration, severity, summary, description and a
//! runbook section that exists in docs/operations.md; the alerts the runbook
//! promises are there; every `refund_worker_*` name in a rule or a dashboard
//! panel is one the worker emits (the list of src/health/describe.rs); the
//! PrometheusRule carries the same groups as the plain rule file; the
//! ServiceMonitor selects the Service. And the worker's own `GET /metrics`:
//! a `# HELP` for every `# TYPE`, and the gauges added for the alerts read
//! from the database.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const RUNBOOK: &str = "https://github.com/OWNER/refund-worker/blob/main/docs/operations.md#";

/// The alert for each topic the runbook promises one for.
const REQUIRED: &[&str] = &[
    "RefundWorkerOldestPendingTooOld",
    "RefundWorkerBatchOutcomeUnknown",
    "RefundWorkerBatchHeld",
    "RefundWorkerUnresolvedItems",
    "RefundWorkerDoublePaymentSuspected",
    "RefundWorkerNotificationsRefused",
    "RefundWorkerDeadLetters",
    "RefundWorkerOutboxBacklog",
    "RefundWorkerGatewayErrorRatio",
];

/// Every YAML document of a file under the repository, as JSON (PyYAML
/// through deploy/yaml2json.py, as tests/it/deploy.rs does).
fn yaml(file: &str) -> Vec<Value> {
    let out = Command::new("python3")
        .arg(format!("{ROOT}/deploy/yaml2json.py"))
        .arg(format!("{ROOT}/{file}"))
        .output()
        .expect("python3 runs deploy/yaml2json.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["doc"].clone())
        .collect()
}

fn one(file: &str) -> Value {
    let mut docs = yaml(file);
    assert_eq!(docs.len(), 1, "{file}: one document");
    docs.remove(0)
}

/// Every alerting rule of rules.yaml.
fn alerts() -> Vec<Value> {
    one("deploy/observability/rules.yaml")["groups"]
        .as_array()
        .expect("groups:")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules:").clone())
        .collect()
}

/// The metric names src/health/describe.rs lists, and which are histograms.
fn described() -> (BTreeSet<String>, BTreeSet<String>) {
    let text = std::fs::read_to_string(format!("{ROOT}/src/health/describe.rs")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (mut names, mut histograms) = (BTreeSet::new(), BTreeSet::new());
    for (i, line) in lines.iter().enumerate() {
        let Some(at) = line.find("\"refund_worker_") else {
            continue;
        };
        let name = &line[at + 1..];
        let name = &name[..name.find('"').unwrap()];
        names.insert(name.to_owned());
        if lines
            .get(i + 1)
            .is_some_and(|l| l.contains("Kind::Histogram"))
        {
            histograms.insert(name.to_owned());
        }
    }
    assert!(names.len() > 30, "{names:?}");
    assert!(histograms.contains("refund_worker_gateway_seconds"));
    (names, histograms)
}

/// The `refund_worker_*` names an expression reads, a histogram's series
/// (`_bucket`, `_sum`, `_count`) under the histogram's name.
fn names_in(expr: &str, histograms: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (at, _) in expr.match_indices("refund_worker_") {
        if expr[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            continue;
        }
        let name: String = expr[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|b| histograms.contains(*b)));
        out.insert(base.unwrap_or(&name).to_owned());
    }
    out
}

fn operations_anchors() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(format!("{ROOT}/docs/operations.md")).unwrap();
    crate::docs_links::anchors(&doc).into_iter().collect()
}

#[test]
fn every_alert_is_complete_and_names_a_runbook_section_that_exists() {
    let anchors = operations_anchors();
    let alerts = alerts();
    let mut names = BTreeSet::new();
    for rule in &alerts {
        let name = rule["alert"]
            .as_str()
            .unwrap_or_else(|| panic!("a rule that is not an alert: {rule}"));
        assert!(names.insert(name), "{name} twice");
        assert!(
            name.starts_with("RefundWorker") && name.chars().all(|c| c.is_ascii_alphanumeric()),
            "{name}"
        );
        assert!(
            rule["expr"].as_str().is_some_and(|e| !e.trim().is_empty()),
            "{name}: expr"
        );
        let duration = rule["for"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: for"));
        assert!(
            duration.len() > 1
                && duration[..duration.len() - 1]
                    .chars()
                    .all(|c| c.is_ascii_digit())
                && duration.ends_with(['s', 'm', 'h', 'd']),
            "{name}: for: {duration}"
        );
        let severity = rule["labels"]["severity"].as_str().unwrap_or_default();
        assert!(
            ["critical", "warning", "info"].contains(&severity),
            "{name}: severity {severity:?}"
        );
        for key in ["summary", "description", "runbook_url"] {
            assert!(
                rule["annotations"][key]
                    .as_str()
                    .is_some_and(|v| !v.trim().is_empty()),
                "{name}: annotation {key}"
            );
        }
        let url = rule["annotations"]["runbook_url"].as_str().unwrap();
        let anchor = url
            .strip_prefix(RUNBOOK)
            .unwrap_or_else(|| panic!("{name}: {url} is not a section of docs/operations.md"));
        assert!(
            anchors.contains(anchor),
            "{name}: no heading #{anchor} in docs/operations.md"
        );
    }
    for required in REQUIRED {
        assert!(names.contains(required), "no alert {required}");
    }
}

#[test]
fn the_rules_and_the_dashboard_read_only_metrics_the_worker_emits() {
    let (emitted, histograms) = described();
    let mut exprs: Vec<(String, String)> = alerts()
        .iter()
        .map(|r| {
            (
                r["alert"].as_str().unwrap().to_owned(),
                r["expr"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{ROOT}/deploy/observability/dashboard.json")).unwrap(),
    )
    .unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push((
                format!("panel {}", panel["title"]),
                target["expr"].as_str().unwrap().to_owned(),
            ));
        }
    }
    let mut used = BTreeSet::new();
    for (whose, expr) in &exprs {
        for name in names_in(expr, &histograms) {
            assert!(
                emitted.contains(&name),
                "{whose} reads {name}, which the worker does not emit"
            );
            used.insert(name);
        }
    }
    // The panels the runbook points at.
    for name in [
        "refund_worker_events_published_total",
        "refund_worker_refunds",
        "refund_worker_oldest_pending_seconds",
        "refund_worker_oldest_submitted_seconds",
        "refund_worker_outbox_backlog",
        "refund_worker_gateway_seconds",
        "refund_worker_gateway_requests_total",
        "refund_worker_unresolved_items",
        "refund_worker_batches_held",
        "refund_worker_batches_awaiting_operator",
        "refund_worker_double_payment_suspects",
    ] {
        assert!(used.contains(name), "nothing reads {name}");
    }
    assert!(
        exprs.iter().any(|(w, e)| w.starts_with("panel")
            && e.contains("histogram_quantile(0.99")
            && e.contains("refund_worker_gateway_seconds_bucket")),
        "a p99 panel"
    );
    assert!(
        exprs
            .iter()
            .filter(|(w, _)| w.starts_with("panel"))
            .any(|(_, e)| e.contains("rabbitmq_queue_messages")),
        "a dead-letter panel"
    );
    assert_eq!(
        names_in(
            "rate(refund_worker_gateway_seconds_bucket[5m]) + x_refund_worker_no",
            &histograms
        ),
        BTreeSet::from(["refund_worker_gateway_seconds".to_owned()])
    );
}

#[test]
fn the_dashboard_is_a_grafana_dashboard_with_distinct_panels() {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{ROOT}/deploy/observability/dashboard.json")).unwrap(),
    )
    .unwrap();
    assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 36);
    assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
    let panels = dashboard["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    let mut cells: BTreeMap<(u64, u64), String> = BTreeMap::new();
    for p in panels {
        let title = p["title"].as_str().unwrap();
        assert!(ids.insert(p["id"].as_u64().unwrap()), "{title}: id twice");
        if p["type"] != "row" {
            assert!(
                !p["targets"].as_array().unwrap().is_empty(),
                "{title}: no query"
            );
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        }
        let g = &p["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_u64().unwrap(),
            g["y"].as_u64().unwrap(),
            g["w"].as_u64().unwrap(),
            g["h"].as_u64().unwrap(),
        );
        assert!(x + w <= 24, "{title}: wider than the grid");
        for cx in x..x + w {
            for cy in y..y + h {
                if let Some(other) = cells.insert((cx, cy), title.to_owned()) {
                    panic!("{title} overlaps {other}");
                }
            }
        }
    }
}

#[test]
fn the_prometheus_rule_carries_the_same_groups_as_the_rule_file() {
    let plain = one("deploy/observability/rules.yaml");
    let wrapped = one("deploy/observability/prometheus-rule.yaml");
    assert_eq!(wrapped["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(wrapped["kind"], "PrometheusRule");
    assert_eq!(
        wrapped["spec"]["groups"], plain["groups"],
        "regenerate prometheus-rule.yaml from rules.yaml (its header says how)"
    );
}

#[test]
fn the_service_monitor_selects_the_service_and_its_port() {
    let monitor = one("deploy/observability/servicemonitor.yaml");
    let service = one("deploy/k8s/service.yaml");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["kind"], "ServiceMonitor");
    let wanted = monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels");
    assert!(!wanted.is_empty());
    for (k, v) in wanted {
        assert_eq!(
            &service["metadata"]["labels"][k], v,
            "the Service lacks label {k}: {v}"
        );
    }
    let ports: BTreeSet<&str> = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    let endpoints = monitor["spec"]["endpoints"].as_array().unwrap();
    assert!(!endpoints.is_empty());
    for e in endpoints {
        let port = e["port"].as_str().expect("a named port");
        assert!(ports.contains(port), "the Service has no port {port}");
        assert_eq!(e["path"], "/metrics");
    }
}

/// A pending refund, a batch not yet accepted whose outcome is unknown
/// created `age_s` ago, and the refund recorded as possibly paid twice in it.
async fn seed_alarms(app: &TestApp, age_s: i64) {
    app.store_events(&[event("OBS-1", TRADE, r#""1.00""#)])
        .await;
    sqlx::query(
        "INSERT INTO batches (batch_no, partner, status, refund_date, batch_num, detail_data,
                              outcome_unknown, attempts, created_at)
         VALUES ('20261207OBS0001', $1, 'submitting', '2026-12-07 10:00:00', 1, 'x', true, 1,
                 now() - make_interval(secs => $2))",
    )
    .bind(PARTNER)
    .bind(age_s as f64)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO double_payment_suspects (batch_no, refund_id, other_batch, code, detail)
         VALUES ('20261207OBS0001', 'OBS-1', NULL, 'SUCCESS', 'a test')",
    )
    .execute(&app.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn metrics_has_help_for_every_metric_and_the_alarm_gauges_read_the_database() {
    let app = TestApp::without_intake(&[]).await;
    seed_alarms(&app, 600).await;
    let port = free_port();
    let _worker = crate::process::KillOnDrop(vec![
        crate::cli::worker(&app)
            .args(["run", "--roles", "http"])
            .env("HTTP_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    ]);
    let url = format!("http://127.0.0.1:{port}/metrics");
    let text = scrape(&url).await;
    let (emitted, _) = described();
    let mut helps = BTreeSet::new();
    let mut types = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helps.insert(rest.split(' ').next().unwrap().to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            types.insert(rest.split(' ').next().unwrap().to_owned());
        }
    }
    assert!(types.len() >= 20, "{text}");
    for name in &types {
        assert!(helps.contains(name), "{name} has no HELP:\n{text}");
        assert!(emitted.contains(name), "{name} is not in the list");
    }
    let sample = |series: &str| crate::end_to_end::sample(&text, series);
    assert_eq!(sample("refund_worker_database_up"), Some(1.0), "{text}");
    assert_eq!(sample("refund_worker_double_payment_suspects"), Some(1.0));
    assert_eq!(sample("refund_worker_batches_outcome_unknown"), Some(1.0));
    assert!(
        sample("refund_worker_oldest_outcome_unknown_seconds").is_some_and(|s| s >= 600.0),
        "{text}"
    );
    // Counters with a fixed set of labels start at 0, for increase().
    assert_eq!(
        sample(r#"refund_worker_notifications_total{verdict="forged"}"#),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample("refund_worker_double_payment_suspected_total"),
        Some(0.0)
    );

    // Accepted since: no longer in doubt; the suspect stays listed.
    sqlx::query("UPDATE batches SET status = 'submitted', submitted_at = now()")
        .execute(&app.pool)
        .await
        .unwrap();
    let text = scrape(&url).await;
    let sample = |series: &str| crate::end_to_end::sample(&text, series);
    assert_eq!(sample("refund_worker_double_payment_suspects"), Some(1.0));
    assert_eq!(sample("refund_worker_batches_outcome_unknown"), Some(0.0));
    assert_eq!(
        sample("refund_worker_oldest_outcome_unknown_seconds"),
        Some(0.0)
    );
    assert_eq!(
        sample(r#"refund_worker_refunds{status="pending"}"#),
        Some(1.0)
    );
    app.cleanup().await;
}

/// `GET /metrics` once it answers 200 (the worker may still be starting).
async fn scrape(url: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(url).await
            && r.status() == 200
        {
            return r.text().await.unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url} did not answer 200 within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
