use std::collections::HashMap;

use secrecy::ExposeSecret;

use super::*;

fn load(env: &[(&str, &str)], file: Option<&str>) -> Result<Settings, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::from_source(&Source::new(env, file)?)
}

#[test]
fn defaults_match_the_contract() {
    let s = load(&[], None).unwrap();
    assert_eq!(s.database_url, DEFAULT_DATABASE_URL);
    assert_eq!(s.amqp.url, DEFAULT_AMQP_URL);
    assert_eq!(s.batch.max_items, 1000);
    assert_eq!(s.batch.linger, Duration::from_millis(2000));
    assert_eq!(s.alipay.timeout, Duration::from_millis(15000));
    assert!(s.alipay.verify_notify_id);
    assert!(!s.alipay.pwd_fallback);
    assert_eq!(s.http_listen.to_string(), "0.0.0.0:8080");
    assert_eq!(s.log_format, LogFormat::Json);
    assert!(s.admin.is_none());
}

#[test]
fn the_environment_overrides_the_file() {
    let file = "batch_linger_ms = 500\nbatch_max_items = 50\n";
    let s = load(&[("BATCH_MAX_ITEMS", "7")], Some(file)).unwrap();
    assert_eq!(s.batch.linger, Duration::from_millis(500));
    assert_eq!(s.batch.max_items, 7);
}

#[test]
fn a_bad_setting_names_its_variable() {
    let e = load(&[("BATCH_MAX_ITEMS", "1001")], None).unwrap_err();
    assert_eq!(e.var, "BATCH_MAX_ITEMS");
    assert_eq!(
        load(&[("HTTP_LISTEN", "nope")], None).unwrap_err().var,
        "HTTP_LISTEN"
    );
    assert_eq!(
        load(&[("LOG_FORMAT", "xml")], None).unwrap_err().var,
        "LOG_FORMAT"
    );
    assert_eq!(
        load(&[("ALIPAY_VERIFY_NOTIFY_ID", "maybe")], None)
            .unwrap_err()
            .var,
        "ALIPAY_VERIFY_NOTIFY_ID"
    );
    assert_eq!(
        load(&[("ALIPAY_NOTIFY_URL", "http://x/n?a=1")], None)
            .unwrap_err()
            .var,
        "ALIPAY_NOTIFY_URL"
    );
    assert_eq!(
        load(&[("ALIPAY_PARTNER", "1234")], None).unwrap_err().var,
        "ALIPAY_PARTNER"
    );
    assert_eq!(
        load(&[("ALIPAY_PARTNER", "2088101122136241")], None)
            .unwrap_err()
            .var,
        "ALIPAY_KEY"
    );
    assert_eq!(
        load(&[], Some("batch_linger = 5")).unwrap_err().var,
        "batch_linger"
    );
    assert_eq!(
        load(&[("ADMIN_LISTEN", "127.0.0.1:9")], None)
            .unwrap_err()
            .var,
        "operators"
    );
}

const LISTEN: (&str, &str) = ("ADMIN_LISTEN", "127.0.0.1:9");

/// A token file in a directory that lives as long as the test.
fn token_file(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn operators_come_from_their_token_files_and_the_deprecated_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let file = format!(
        "[[operators]]\nname = \"alice\"\ntoken_file = \"{}\"\n\n[[operators]]\nname = \"bob\"\ntoken_file = \"{}\"\n",
        token_file(&dir, "a", "  alice-token-0123456789\n"),
        token_file(&dir, "b", "bob-token-0123456789ab"),
    );
    let s = load(
        &[LISTEN, ("ADMIN_TOKEN", "legacy-token-0123456789")],
        Some(&file),
    )
    .unwrap();
    let a = s.admin.unwrap();
    let ops: Vec<(&str, &str)> = a
        .operators
        .iter()
        .map(|o| (o.name.as_str(), o.token.expose_secret()))
        .collect();
    assert_eq!(
        ops,
        [
            ("admin", "legacy-token-0123456789"),
            ("alice", "alice-token-0123456789"),
            ("bob", "bob-token-0123456789ab"),
        ]
    );
    assert!(a.legacy_token);
    assert_eq!(a.session_ttl, Duration::from_secs(8 * 3600));
    assert!(!a.secure_cookie);
    let only_file = load(&[LISTEN], Some(&file)).unwrap().admin.unwrap();
    assert_eq!(only_file.operators.len(), 2);
    assert!(!only_file.legacy_token);
    // Without ADMIN_LISTEN nothing of the page is read.
    assert!(load(&[], Some(&file)).unwrap().admin.is_none());
}

#[test]
fn a_placeholder_token_is_refused_wherever_it_is() {
    let dir = tempfile::tempdir().unwrap();
    for token in [
        "CHANGE-ME",
        "change-me-0123456789abcdef",
        "xxxxChange-Mexxxxxxxxxxx",
    ] {
        let e = load(&[LISTEN, ("ADMIN_TOKEN", token)], None).unwrap_err();
        assert_eq!(e.var, "ADMIN_TOKEN", "{token}");
        assert!(e.reason.contains("CHANGE-ME"), "{e}");
        let file = format!(
            "[[operators]]\nname = \"alice\"\ntoken_file = \"{}\"\n",
            token_file(&dir, "t", &format!("{token}\n"))
        );
        let e = load(&[LISTEN], Some(&file)).unwrap_err();
        assert_eq!(e.var, "operators[0].token_file", "{token}");
        if token != "CHANGE-ME" {
            assert!(!e.to_string().contains(token), "{e}");
        }
    }
}

#[test]
fn a_bad_operator_names_the_field_at_fault_and_never_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let good = token_file(&dir, "good", "good-token-0123456789");
    let table = |name: &str, path: &str| {
        format!("[[operators]]\nname = \"{name}\"\ntoken_file = \"{path}\"\n")
    };
    let err = |file: String| load(&[LISTEN], Some(&file)).unwrap_err();

    let short = token_file(&dir, "short", "  short-token-15c  \n");
    let e = err(table("alice", &short));
    assert_eq!(e.var, "operators[0].token_file");
    assert!(e.reason.contains("at least 16"), "{e}");
    assert!(!e.to_string().contains("short-token"), "{e}");

    let missing = dir.path().join("nope").display().to_string();
    let e = err(table("alice", &missing));
    assert_eq!(e.var, "operators[0].token_file");
    assert!(e.reason.contains("cannot read"), "{e}");

    let spaced = token_file(&dir, "spaced", "good token 0123456789");
    assert_eq!(err(table("alice", &spaced)).var, "operators[0].token_file");
    assert_eq!(err(table("a|b", &good)).var, "operators[0].name");
    assert_eq!(err(table("", &good)).var, "operators[0].name");
    assert_eq!(
        err("[[operators]]\nname = \"alice\"\n".to_string()).var,
        "operators[0].token_file"
    );
    assert_eq!(
        err(format!("{}token = \"x\"\n", table("alice", &good))).var,
        "operators[0].token"
    );
    let other = token_file(&dir, "other", "other-token-0123456789");
    let twice = format!("{}{}", table("alice", &good), table("alice", &other));
    assert_eq!(err(twice).var, "operators");
    let copy = token_file(&dir, "copy", "good-token-0123456789\n");
    let e = err(format!("{}{}", table("alice", &good), table("bob", &copy)));
    assert_eq!(e.var, "operators");
    assert!(
        e.reason.contains("same token") && !e.reason.contains("good-token"),
        "{e}"
    );
    let e = load(&[LISTEN, ("ADMIN_TOKEN", "short")], None).unwrap_err();
    assert_eq!(e.var, "ADMIN_TOKEN");
    let e = load(
        &[LISTEN, ("ADMIN_TOKEN", "legacy-token-0123456789")],
        Some(&table("admin", &good)),
    )
    .unwrap_err();
    assert_eq!(e.var, "operators", "a table named admin beside ADMIN_TOKEN");
}

#[test]
fn the_session_lasts_admin_session_ttl_and_the_cookie_is_secure_on_request() {
    let token = ("ADMIN_TOKEN", "legacy-token-0123456789");
    let a = load(
        &[
            LISTEN,
            token,
            ("ADMIN_SESSION_TTL", "30m"),
            ("ADMIN_SECURE_COOKIE", "true"),
        ],
        None,
    )
    .unwrap()
    .admin
    .unwrap();
    assert_eq!(a.session_ttl, Duration::from_secs(1800));
    assert!(a.secure_cookie);
    let from_file = load(&[LISTEN, token], Some("admin_session_ttl = \"1d\"\n"))
        .unwrap()
        .admin
        .unwrap();
    assert_eq!(from_file.session_ttl, Duration::from_secs(86_400));
    for bad in ["0h", "30s", "8", "8 hours", "8w", "-1h"] {
        assert_eq!(
            load(&[LISTEN, token, ("ADMIN_SESSION_TTL", bad)], None)
                .unwrap_err()
                .var,
            "ADMIN_SESSION_TTL",
            "{bad}"
        );
    }
    assert_eq!(
        load(&[LISTEN, token, ("ADMIN_SECURE_COOKIE", "sure")], None)
            .unwrap_err()
            .var,
        "ADMIN_SECURE_COOKIE"
    );
}

#[test]
fn errors_never_contain_the_key() {
    let e = load(
        &[
            ("ALIPAY_PARTNER", "2088101122136241"),
            ("ALIPAY_KEY", "sec ret"),
        ],
        None,
    )
    .unwrap_err();
    assert!(!e.to_string().contains("sec ret"), "{e}");
    let s = load(
        &[
            ("ALIPAY_PARTNER", "2088101122136241"),
            ("ALIPAY_KEY", "secretkey1"),
        ],
        None,
    )
    .unwrap();
    assert!(!format!("{s:?}").contains("secretkey1"));
}

#[test]
fn partners_come_from_the_environment_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("k");
    std::fs::write(&key_file, "filekey\n").unwrap();
    let file = format!(
        "[[partners]]\nid = \"2088000000000002\"\nkey = \"k2\"\n\n[[partners]]\nid = \"2088000000000003\"\nkey_file = \"{}\"\n",
        key_file.display()
    );
    let s = load(
        &[("ALIPAY_PARTNER", "2088101122136241"), ("ALIPAY_KEY", "k1")],
        Some(&file),
    )
    .unwrap();
    let ids: Vec<_> = s.alipay.partners.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        ["2088101122136241", "2088000000000002", "2088000000000003"]
    );
    assert_eq!(s.alipay.partners[2].key.expose_secret(), "filekey");
    let twice = format!("{file}\n[[partners]]\nid = \"2088000000000002\"\nkey = \"k\"\n");
    assert_eq!(load(&[], Some(&twice)).unwrap_err().var, "partners");
}

fn openapi_table(id: &str, extra: &str) -> String {
    let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/sandbox-keys");
    format!(
        "[[partners]]\nid = \"{id}\"\nchannel = \"openapi\"\napp_id = \"2021000000000001\"\nprivate_key_file = \"{keys}/app-private.pem\"\nalipay_public_key_file = \"{keys}/alipay-public.pem\"\n{extra}"
    )
}

#[test]
fn an_openapi_partner_is_configured_beside_a_mapi_one_with_its_keys_parsed() {
    let file = format!(
        "[[partners]]\nid = \"2088000000000002\"\nkey = \"k2\"\n\n{}",
        openapi_table("2088000000000009", "")
    );
    let s = load(&[("OPENAPI_CONCURRENCY", "4")], Some(&file)).unwrap();
    assert_eq!(s.alipay.partners.len(), 1);
    let app = s.alipay.openapi.app_of("2088000000000009").unwrap();
    assert_eq!(app.app_id, "2021000000000001");
    assert!(s.alipay.openapi.app_of("2088000000000002").is_none());
    assert_eq!(s.alipay.openapi.concurrency, 4);
    assert_eq!(s.alipay.openapi.gateway, DEFAULT_OPENAPI_GATEWAY);
    use crate::domain::Partners as _;
    assert!(s.alipay.is_configured("2088000000000009"));
    assert!(!format!("{s:?}").contains("BEGIN"));
}

#[test]
fn a_bad_openapi_partner_names_the_field_at_fault() {
    let err = |file: String| load(&[], Some(&file)).unwrap_err().var;
    assert_eq!(
        err(openapi_table("2088000000000009", "key = \"k\"\n")),
        "partners[0].key"
    );
    assert_eq!(
        err(openapi_table("2088000000000009", "").replace("2021000000000001", "app-1")),
        "partners[0].app_id"
    );
    // The app's key where Alipay's public key belongs, and the other way round.
    assert_eq!(
        err(openapi_table("2088000000000009", "").replace("alipay-public.pem", "nope.pem")),
        "partners[0].alipay_public_key_file"
    );
    assert_eq!(
        err(openapi_table("2088000000000009", "").replace("app-private.pem", "app-public.pem")),
        "partners[0].private_key_file"
    );
    assert_eq!(
        err(openapi_table("2088000000000009", "").replace("alipay-public.pem", "app-private.pem")),
        "partners[0].alipay_public_key_file"
    );
    assert_eq!(
        err(openapi_table("2088000000000009", "").replace("\"openapi\"", "\"grpc\"")),
        "partners[0].channel"
    );
    let twice = format!(
        "{}\n[[partners]]\nid = \"2088000000000009\"\nkey = \"k\"\n",
        openapi_table("2088000000000009", "")
    );
    assert_eq!(err(twice), "partners");
}

#[test]
fn urls_lose_their_password_in_debug_output() {
    assert_eq!(
        redact_url("amqp://guest:pw@h:5672/%2f"),
        "amqp://guest:***@h:5672/%2f"
    );
    assert_eq!(
        redact_url("postgres://postgres@h/db"),
        "postgres://postgres@h/db"
    );
}

#[test]
fn a_database_or_amqp_url_that_does_not_parse_is_named_without_its_text() {
    for (var, bad) in [
        ("DATABASE_URL", "not a url"),
        ("DATABASE_URL", "mysql://root:hunter2@h/db"),
        ("DATABASE_URL", "postgres://u:hunter2@h:notaport/db"),
        ("AMQP_URL", "not a url"),
        ("AMQP_URL", "http://guest:hunter2@h:5672/"),
        ("AMQP_URL", "amqp://guest:hunter2@h:99999999/%2f"),
    ] {
        let e = load(&[(var, bad)], None).unwrap_err();
        assert_eq!(e.var, var, "{bad}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
    assert!(load(&[("DATABASE_URL", "postgresql://u@h/db")], None).is_ok());
    assert!(load(&[("AMQP_URL", "amqps://u:p@h:5671/v")], None).is_ok());
}

#[test]
fn amqp_url_takes_a_list_of_brokers_and_names_a_bad_one_by_position() {
    let list = "amqp://guest:hunter2@127.0.0.1:5681/%2f,127.0.0.1:5682, 127.0.0.1:5683";
    let s = load(&[("AMQP_URL", list)], None).unwrap();
    assert_eq!(s.amqp.url, list, "kept as written; amqp::connect reads it");
    let debug = format!("{s:?}");
    assert!(
        debug.contains(
            "amqp://127.0.0.1:5681/%2f,amqp://127.0.0.1:5682/%2f,amqp://127.0.0.1:5683/%2f"
        ),
        "{debug}"
    );
    assert!(!debug.contains("hunter2"), "{debug}");

    for bad in [
        "amqp://guest:hunter2@h:5672/%2f,h2:99999",
        "amqp://guest:hunter2@h:5672/%2f,",
        "h1:5672,amqp://guest:hunter2@h:5672/%2f",
    ] {
        let e = load(&[("AMQP_URL", bad)], None).unwrap_err();
        assert_eq!(e.var, "AMQP_URL");
        let text = e.to_string();
        assert!(text.starts_with("AMQP_URL: "), "{text}");
        assert!(text.contains("address"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}

#[test]
fn item_retry_settings_default_to_the_contract_and_are_bounded() {
    let s = load(&[], None).unwrap();
    assert_eq!(s.item_retry.base, std::time::Duration::from_secs(60));
    assert_eq!(s.item_retry.limit, 5);
    let s = load(
        &[("ITEM_RETRY_BASE_MS", "10"), ("ITEM_RETRY_LIMIT", "0")],
        None,
    )
    .unwrap();
    assert_eq!(s.item_retry.limit, 0);
    assert_eq!(
        load(&[("ITEM_RETRY_LIMIT", "-1")], None).unwrap_err().var,
        "ITEM_RETRY_LIMIT"
    );
}

#[test]
fn batch_no_prefix_is_letters_and_digits_within_alipays_length() {
    assert_eq!(load(&[], None).unwrap().batch.batch_no_prefix, "");
    let s = load(&[("BATCH_NO_PREFIX", "stg2")], None).unwrap();
    assert_eq!(s.batch.batch_no_prefix, "stg2");
    assert_eq!(s.submit.batch_no_prefix, "stg2");
    for bad in ["st-g", "a b", "abcdefghijklm", "退款"] {
        assert_eq!(
            load(&[("BATCH_NO_PREFIX", bad)], None).unwrap_err().var,
            "BATCH_NO_PREFIX",
            "{bad}"
        );
    }
    assert_eq!(
        load(&[], None).unwrap().submit.absence_settle,
        std::time::Duration::from_secs(3600)
    );
}

#[test]
fn an_example_placeholder_is_not_a_key() {
    let e = load(
        &[
            ("ALIPAY_PARTNER", "2088101122136241"),
            ("ALIPAY_KEY", "CHANGE-ME"),
        ],
        None,
    )
    .unwrap_err();
    assert_eq!(e.var, "ALIPAY_KEY");
    assert!(e.reason.contains("placeholder"), "{}", e.reason);
}

#[test]
fn the_default_results_queue_is_bounded() {
    let s = load(&[], None).unwrap();
    assert_eq!(s.amqp.results_max_length, 100_000);
    let s = load(&[("AMQP_RESULTS_QUEUE_MAX_LENGTH", "5000")], None).unwrap();
    assert_eq!(s.amqp.results_max_length, 5000);
    let e = load(&[("AMQP_RESULTS_QUEUE_MAX_LENGTH", "0")], None).unwrap_err();
    assert_eq!(e.var, "AMQP_RESULTS_QUEUE_MAX_LENGTH");
}
