//! The deploy files and the settings table checked against the code, so they
//! cannot drift: every setting docs/configuration.md documents exists and the
//! other way round; the Kubernetes manifests and the compose file use only
//! real settings, the probes and routes the service serves, and a grace
//! period longer than the worker's; the RabbitMQ definitions are the topology
//! the worker declares.

use std::collections::BTreeSet;
use std::process::Command;

use refund_worker::amqp::Topology;
use refund_worker::config::VARIABLES;
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn known(name: &str) -> bool {
    VARIABLES.contains(&name) || name == "RUST_LOG"
}

/// Every YAML document of these files (under the repository), as JSON.
fn yaml(files: &[&str]) -> Vec<(String, Value)> {
    let out = Command::new("python3")
        .arg(format!("{ROOT}/deploy/yaml2json.py"))
        .args(files.iter().map(|f| format!("{ROOT}/{f}")))
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
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["file"].as_str().unwrap().to_owned(), v["doc"].clone())
        })
        .collect()
}

#[test]
fn every_setting_in_docs_configuration_md_exists_in_the_code_and_the_other_way_round() {
    let doc = std::fs::read_to_string(format!("{ROOT}/docs/configuration.md")).unwrap();
    // The settings table: the "## Settings" section, up to the next heading
    // of its level. Its rows name settings in backticks in the first column.
    let section = doc
        .split("\n## Settings\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("docs/configuration.md has a \"## Settings\" section");
    let documented: BTreeSet<String> = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .flat_map(|l| {
            let first = l.split('|').nth(1).unwrap_or("");
            first
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let code: BTreeSet<String> = VARIABLES.iter().map(|v| v.to_string()).collect();
    assert_eq!(
        documented.difference(&code).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "in docs/configuration.md, not in the code"
    );
    assert_eq!(
        code.difference(&documented).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "in the code, not in docs/configuration.md"
    );
}

#[test]
fn the_kubernetes_manifests_use_real_settings_probes_and_routes() {
    let docs = yaml(&[
        "deploy/k8s/configmap.yaml",
        "deploy/k8s/examples/secret.yaml",
        "deploy/k8s/deployment.yaml",
        "deploy/k8s/migrate-job.yaml",
        "deploy/k8s/service.yaml",
        "deploy/k8s/ingress.yaml",
        "deploy/k8s/pdb.yaml",
    ]);
    let kind = |k: &str| {
        docs.iter()
            .find(|(_, d)| d["kind"] == k)
            .map(|(_, d)| d.clone())
            .unwrap_or_else(|| panic!("no {k}"))
    };
    let config = kind("ConfigMap");
    for key in config["data"].as_object().unwrap().keys() {
        assert!(
            known(key),
            "ConfigMap sets {key}, which the worker does not read"
        );
    }
    let deploy = kind("Deployment");
    let pod = &deploy["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    for e in c["env"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        assert!(
            known(name),
            "the Deployment sets {name}, which the worker does not read"
        );
    }
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["startupProbe"]["httpGet"]["path"], "/healthz");
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.starts_with(&["run", "--no-migrate"]),
        "the replicas leave the schema to the migration Job: {args:?}"
    );
    let job = kind("Job");
    let job_pod = &job["spec"]["template"]["spec"];
    assert_eq!(job_pod["containers"][0]["args"][0], "migrate");
    for p in [pod, job_pod] {
        assert_eq!(p["automountServiceAccountToken"], false);
        assert_eq!(
            p["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
    }
    assert_eq!(config["data"]["AMQP_RESULTS_QUEUE"], "false");
    assert!(pod["topologySpreadConstraints"].is_array());
    assert_eq!(c["ports"][0]["containerPort"], 8080);
    assert!(
        config["data"]["HTTP_LISTEN"]
            .as_str()
            .unwrap()
            .ends_with(":8080")
    );
    let grace_ms: u64 = config["data"]["SHUTDOWN_GRACE_MS"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let pod_grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(
        pod_grace * 1000 > grace_ms,
        "the pod is killed before the worker's grace ends"
    );
    assert!(deploy["spec"]["replicas"].as_u64().unwrap() >= 2);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let ingress = kind("Ingress");
    let paths: BTreeSet<&str> = ingress["spec"]["rules"][0]["http"]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        BTreeSet::from(["/alipay/notify", "/alipay/dback-notify"])
    );
    let secret = kind("Secret");
    assert!(secret["stringData"]["alipay.key"].is_string());
    let pdb = kind("PodDisruptionBudget");
    assert_eq!(
        pdb["spec"]["maxUnavailable"], 1,
        "a drain may always take one"
    );
    assert!(pdb["spec"]["minAvailable"].is_null());
}

#[test]
fn the_compose_file_runs_every_service_with_health_checks_and_real_settings() {
    let docs = yaml(&["deploy/docker-compose.yml"]);
    let services = docs[0].1["services"].as_object().unwrap();
    for name in ["postgres", "rabbitmq", "sandbox", "worker"] {
        assert!(
            services[name]["healthcheck"]["test"].is_array(),
            "{name} has no health check"
        );
    }
    for (k, _) in services["worker"]["environment"].as_object().unwrap() {
        assert!(known(k), "compose sets {k}, which the worker does not read");
    }
    let deps = services["worker"]["depends_on"].as_object().unwrap();
    assert!(deps.values().all(|d| d["condition"] == "service_healthy"
        || d["condition"] == "service_completed_successfully"));
    assert_eq!(
        deps["migrate"]["condition"],
        "service_completed_successfully"
    );
    assert_eq!(services["migrate"]["command"][0], "migrate");
    assert!(
        services["worker"]["environment"]["AMQP_URL"]
            .as_str()
            .unwrap()
            .starts_with("amqp://refund-worker:"),
        "RabbitMQ loading definitions creates no guest user"
    );
}

#[test]
fn the_rabbitmq_definitions_are_the_topology_the_worker_declares() {
    let text = std::fs::read_to_string(format!("{ROOT}/deploy/rabbitmq/definitions.json")).unwrap();
    let defs: Value = serde_json::from_str(&text).unwrap();
    let t = Topology::new("", true);
    let names = |k: &str| -> BTreeSet<String> {
        defs[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names("exchanges"),
        BTreeSet::from([
            t.refunds_exchange.clone(),
            t.dead_letter_exchange.clone(),
            t.results_exchange.clone()
        ])
    );
    assert_eq!(
        names("queues"),
        BTreeSet::from([
            t.approved_queue.clone(),
            t.dead_queue.clone(),
            t.results_queue.clone().unwrap()
        ])
    );
    let approved = defs["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == t.approved_queue.as_str())
        .unwrap();
    let args = &approved["arguments"];
    assert_eq!(args["x-queue-type"], "quorum");
    assert_eq!(
        args["x-dead-letter-exchange"],
        t.dead_letter_exchange.as_str()
    );
    assert_eq!(args["x-delivery-limit"], 5);
    assert_eq!(args["x-dead-letter-strategy"], "at-least-once");
    assert_eq!(args["x-overflow"], "reject-publish");
    let results = defs["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == t.results_queue.as_deref().unwrap())
        .unwrap();
    assert_eq!(results["arguments"]["x-max-length"], t.results_max_length);
    assert_eq!(results["arguments"]["x-overflow"], "reject-publish");
    assert!(
        defs["exchanges"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["type"] == "topic" && e["durable"] == true)
    );
    let bindings: BTreeSet<(String, String, String)> = defs["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["source"].as_str().unwrap().to_owned(),
                b["destination"].as_str().unwrap().to_owned(),
                b["routing_key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        bindings,
        BTreeSet::from([
            (
                t.refunds_exchange.clone(),
                t.approved_queue.clone(),
                "refund.approved".to_owned()
            ),
            (
                t.dead_letter_exchange.clone(),
                t.dead_queue.clone(),
                "#".to_owned()
            ),
            (
                t.results_exchange.clone(),
                t.results_queue.clone().unwrap(),
                "refund.#".to_owned()
            ),
        ])
    );
}

/// `kubectl apply -f deploy/k8s/` applies nothing a person must fill in first:
/// placeholders live under deploy/k8s/examples/ (not applied: apply is not
/// recursive), and the worker refuses a key that is still one.
#[test]
fn the_applied_kubernetes_directory_holds_no_placeholder() {
    for entry in std::fs::read_dir(format!("{ROOT}/deploy/k8s")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                !text.to_ascii_uppercase().contains("CHANGE-ME"),
                "{} holds a placeholder",
                path.display()
            );
        }
    }
}
