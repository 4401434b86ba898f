//! The RabbitMQ definitions compose loads at boot (`deploy/rabbitmq/`),
//! loaded into the local broker as they are — in a fresh vhost under a fresh
//! user, so other tests keep theirs — and the worker run on them: it connects
//! as the user the file creates, declares its topology over the file's (the
//! broker refuses a declaration whose arguments differ), and takes an event
//! through intake with that user's permissions.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::cli::worker;
use crate::helpers::*;
use crate::process::KillOnDrop;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The development password of the file's user (deploy/docker-compose.yml).
const PASSWORD: &str = "refund-worker-dev-only";

fn rabbitmqctl(args: &[&str]) -> std::process::Output {
    Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl runs (deploy/services.sh installs rabbitmq-server)")
}

/// The file with its vhost and user renamed.
fn renamed(vhost: &str, user: &str) -> Value {
    let text = std::fs::read_to_string(format!("{ROOT}/deploy/rabbitmq/definitions.json")).unwrap();
    let mut defs: Value = serde_json::from_str(&text).unwrap();
    defs["vhosts"] = serde_json::json!([{ "name": vhost }]);
    assert_eq!(defs["users"].as_array().unwrap().len(), 1);
    defs["users"][0]["name"] = user.into();
    for section in ["permissions", "exchanges", "queues", "bindings"] {
        for item in defs[section].as_array_mut().unwrap() {
            assert_eq!(item["vhost"], "/", "{section} outside the default vhost");
            item["vhost"] = vhost.into();
            if section == "permissions" {
                item["user"] = user.into();
            }
        }
    }
    defs
}

#[tokio::test]
async fn the_rabbitmq_definitions_load_and_the_worker_runs_on_them() {
    let app = TestApp::without_intake(&[]).await;
    let (vhost, user) = (format!("rw-defs-{}", app.id), format!("rw-defs-{}", app.id));
    let file = std::env::temp_dir().join(format!("rw-defs-{}.json", app.id));
    std::fs::write(&file, renamed(&vhost, &user).to_string()).unwrap();
    let imported = rabbitmqctl(&["import_definitions", file.to_str().unwrap()]);
    assert!(imported.status.success(), "{imported:?}");

    let url = format!("amqp://{user}:{PASSWORD}@127.0.0.1:5672/{vhost}");
    let run = |cmd: &mut Command| {
        cmd.env("AMQP_URL", &url)
            .env("AMQP_NAME_PREFIX", "")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
    };
    let mut intake = worker(&app);
    intake.args(["run", "--roles", "intake"]);
    run(&mut intake);
    let children = KillOnDrop(vec![intake.spawn().unwrap()]);
    let mut publish = worker(&app);
    publish
        .args(["publish", "-"])
        .stdin(std::process::Stdio::piped());
    run(&mut publish);
    let mut child = publish.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(&event("DEFS-1", &trade(1), r#""2.50""#))
            .unwrap();
        stdin.write_all(b"\n").unwrap();
    }
    let published = child.wait_with_output().unwrap();
    assert!(published.status.success(), "{published:?}");
    wait_for_count("the refund stored", 1, Duration::from_secs(30), || {
        app.refund_count()
    })
    .await;
    assert_eq!(app.amount_of("DEFS-1").await, Some(250));

    drop(children);
    rabbitmqctl(&["delete_vhost", &vhost]);
    rabbitmqctl(&["delete_user", &user]);
    std::fs::remove_file(&file).ok();
    app.cleanup().await;
}
