use std::time::Duration;

use refund_worker::intake::dead_letter::*;

use crate::helpers::*;

const LONG: Duration = Duration::from_secs(60);

fn body(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

#[tokio::test]
async fn every_error_code_is_dead_lettered_with_its_headers_and_the_body_intact() {
    let app = TestApp::spawn().await;
    // Stored first, so the later ones can conflict with them or exceed them.
    app.publish(&[
        body(&format!(
            r#"{{"refund_id":"R-c","trade_no":"{}","amount":"1.00"}}"#,
            trade(1)
        )),
        body(&format!(
            r#"{{"refund_id":"R-t1","trade_no":"{}","amount":"60","trade_amount":"100"}}"#,
            trade(2)
        )),
    ])
    .await;
    wait_for_count("the first two", 2, LONG, || app.refund_count()).await;

    let t = TRADE;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("invalid_json", body("{not json")),
        (
            "message_too_large",
            body(&format!(
                r#"{{"refund_id":"R","pad":"{}"}}"#,
                "x".repeat(65 * 1024)
            )),
        ),
        ("missing_field", body(r#"{"refund_id":"R-m"}"#)),
        (
            "invalid_refund_id",
            body(&format!(
                r#"{{"refund_id":"R 1","trade_no":"{t}","amount":"1"}}"#
            )),
        ),
        (
            "invalid_trade_no",
            body(r#"{"refund_id":"R-2","trade_no":"12ab","amount":"1"}"#),
        ),
        (
            "invalid_amount",
            body(&format!(
                r#"{{"refund_id":"R-3","trade_no":"{t}","amount":"1.001"}}"#
            )),
        ),
        (
            "invalid_reason",
            body(&format!(
                r#"{{"refund_id":"R-4","trade_no":"{t}","amount":"1","reason":"a#b"}}"#
            )),
        ),
        (
            "unknown_partner",
            body(&format!(
                r#"{{"refund_id":"R-5","trade_no":"{t}","amount":"1","partner":"2088000000000009"}}"#
            )),
        ),
        (
            "unsupported_currency",
            body(&format!(
                r#"{{"refund_id":"R-6","trade_no":"{t}","amount":"1","currency":"USD"}}"#
            )),
        ),
        (
            "invalid_metadata",
            body(&format!(
                r#"{{"refund_id":"R-7","trade_no":"{t}","amount":"1","metadata":"x"}}"#
            )),
        ),
        (
            "exceeds_trade_amount",
            body(&format!(
                r#"{{"refund_id":"R-t2","trade_no":"{}","amount":"40.01","trade_amount":"100"}}"#,
                trade(2)
            )),
        ),
        (
            "conflicting_duplicate",
            body(&format!(
                r#"{{"refund_id":"R-c","trade_no":"{}","amount":"2.00"}}"#,
                trade(1)
            )),
        ),
    ];
    app.publish(&cases.iter().map(|(_, b)| b.clone()).collect::<Vec<_>>())
        .await;

    let letters = app.take_dead_letters(cases.len()).await;
    for (code, sent) in &cases {
        let letter = letters
            .iter()
            .find(|l| l.header(CODE_HEADER).as_deref() == Some(*code))
            .unwrap_or_else(|| panic!("no dead letter with code {code}"));
        assert_eq!(
            &letter.body, sent,
            "{code}: the body is not byte for byte the original"
        );
        assert!(
            letter.header(REASON_HEADER).is_some_and(|r| r.len() > 10),
            "{code}: no reason"
        );
        assert_eq!(
            letter.header(ORIGINAL_EXCHANGE_HEADER),
            Some(app.topology.refunds_exchange.clone())
        );
        assert_eq!(
            letter.header(ORIGINAL_ROUTING_KEY_HEADER).as_deref(),
            Some("refund.approved")
        );
        let at = letter
            .header(DEAD_LETTERED_AT_HEADER)
            .expect("x-dead-lettered-at");
        assert!(chrono::DateTime::parse_from_rfc3339(&at).is_ok(), "{at}");
    }
    // Nothing else was stored, and the conflicting one did not change the original.
    assert_eq!(app.refund_count().await, 2);
    assert_eq!(app.amount_of("R-c").await, Some(100));
    app.cleanup().await;
}

#[tokio::test]
async fn a_duplicate_is_acked_and_stored_once_however_its_amount_is_spelled() {
    // One window holds all three, so the stored refund proves all were handled.
    let mut app =
        TestApp::without_intake(&[("INTAKE_WINDOW", "3"), ("INTAKE_WINDOW_MS", "10000")]).await;
    app.start_intake();
    app.publish(&[
        event("R-d", TRADE, r#""10.50""#),
        event("R-d", TRADE, "10.5"),
        event("R-d", TRADE, r#""10.5""#),
    ])
    .await;
    wait_for_count("the refund", 1, LONG, || app.refund_count()).await;
    app.stop_intake().await;
    // Every delivery was acked: none went back to the queue when intake stopped.
    assert_eq!(app.ready(&app.topology.approved_queue).await, 0);
    assert_eq!(app.ready(&app.topology.dead_queue).await, 0);
    let view = refund_worker::storage::refunds::find(&app.pool, "R-d")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.history.len(), 1);
    assert_eq!(view.amount, "10.50");
    app.cleanup().await;
}

#[tokio::test]
async fn odd_bodies_and_edge_amounts_get_the_right_outcome() {
    let app = TestApp::spawn().await;
    let chinese_256 = format!("{}a", "退".repeat(85));
    let chinese_257 = format!("{}ab", "退".repeat(85));
    let reason = |id: &str, r: &str| {
        body(&format!(
            r#"{{"refund_id":"{id}","trade_no":"{TRADE}","amount":"1","reason":"{r}"}}"#
        ))
    };
    let rejected: Vec<(&str, Vec<u8>)> = vec![
        ("invalid_json", vec![0xff, 0xfe, 0x00, b'{']),
        ("invalid_json", Vec::new()),
        ("message_too_large", vec![b' '; 65 * 1024]),
        ("invalid_json", body(r#"[{"refund_id":"R"}]"#)),
        ("invalid_amount", event("A-0", TRADE, r#""0""#)),
        ("invalid_amount", event("A-1", TRADE, r#""-1""#)),
        ("invalid_amount", event("A-2", TRADE, r#""1.001""#)),
        ("invalid_amount", event("A-3", TRADE, r#""1e2""#)),
        ("invalid_amount", event("A-4", TRADE, r#""100000000.00""#)),
        ("invalid_reason", reason("C-257", &chinese_257)),
    ];
    let accepted = [
        event("N-110", &trade(1), "1.10"),
        event("N-max", &trade(2), r#""99999999.99""#),
        reason("C-256", &chinese_256),
    ];
    let mut all: Vec<Vec<u8>> = rejected.iter().map(|(_, b)| b.clone()).collect();
    all.extend(accepted.iter().cloned());
    app.publish(&all).await;

    let letters = app.take_dead_letters(rejected.len()).await;
    for (code, sent) in &rejected {
        assert!(
            letters
                .iter()
                .any(|l| &l.body == sent && l.header(CODE_HEADER).as_deref() == Some(*code)),
            "expected {code} for {:?}",
            String::from_utf8_lossy(&sent[..sent.len().min(60)])
        );
    }
    wait_for_count("the accepted ones", 3, LONG, || app.refund_count()).await;
    assert_eq!(app.amount_of("N-110").await, Some(110));
    assert_eq!(app.amount_of("N-max").await, Some(9_999_999_999));
    let stored_reason: String =
        sqlx::query_scalar("SELECT reason FROM refunds WHERE refund_id = 'C-256'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored_reason, chinese_256);
    app.cleanup().await;
}

#[tokio::test]
async fn refunds_of_one_trade_may_not_exceed_its_total_even_within_one_window() {
    let app = TestApp::spawn().await;
    let t = trade(7);
    let ev = |id: &str, amount: &str| {
        body(&format!(
            r#"{{"refund_id":"{id}","trade_no":"{t}","amount":"{amount}","trade_amount":"10.00"}}"#
        ))
    };
    app.publish(&[
        ev("P-1", "4.00"),
        ev("P-2", "4.00"),
        ev("P-3", "2.01"),
        ev("P-4", "2.00"),
    ])
    .await;
    let letters = app.take_dead_letters(1).await;
    assert_eq!(letters[0].body, ev("P-3", "2.01"));
    assert_eq!(
        letters[0].header(CODE_HEADER).as_deref(),
        Some("exceeds_trade_amount")
    );
    wait_for_count("the three that fit", 3, LONG, || app.refund_count()).await;
    app.cleanup().await;
}

#[tokio::test]
async fn while_the_database_refuses_connections_nothing_is_acked_or_lost() {
    let mut app = TestApp::spawn().await;
    let admin = admin_pool().await;
    let db = app.db_name();
    set_connections(&admin, &db, false).await;

    let bodies: Vec<Vec<u8>> = (0..200)
        .map(|i| event(&format!("O-{i}"), &trade(i), "1.00"))
        .collect();
    app.publish(&bodies).await;
    let queue = app.topology.approved_queue.clone();
    hold_then_hand_back(&mut app, 200).await;

    set_connections(&admin, &db, true).await;
    app.start_intake();
    wait_for_count("every refund", 200, LONG, || app.refund_count()).await;
    app.stop_intake().await;
    assert_eq!(app.ready(&queue).await, 0);
    assert_eq!(app.ready(&app.topology.dead_queue).await, 0);
    app.cleanup().await;
}

#[tokio::test]
async fn deliveries_the_broker_took_back_are_stored_in_small_windows() {
    // A window is cut only when full (500) or after 3 s: 200 fresh events
    // would go in one. Handed back once by a closed channel, they carry the
    // broker's count (RabbitMQ before 4.3) or at least its redelivered flag.
    let mut app =
        TestApp::without_intake(&[("INTAKE_WINDOW", "500"), ("INTAKE_WINDOW_MS", "3000")]).await;
    let admin = admin_pool().await;
    let db = app.db_name();
    set_connections(&admin, &db, false).await;
    let bodies: Vec<Vec<u8>> = (0..200)
        .map(|i| event(&format!("K-{i}"), &trade(i), "1.00"))
        .collect();
    app.publish(&bodies).await;
    let queue = app.topology.approved_queue.clone();
    app.start_intake();
    hold_then_hand_back(&mut app, 200).await;

    set_connections(&admin, &db, true).await;
    app.start_intake();
    wait_for_count("every refund", 200, LONG, || app.refund_count()).await;
    app.stop_intake().await;
    // One window is one transaction: its refunds share `received_at`.
    let windows: Vec<i64> =
        sqlx::query_scalar("SELECT count(*) FROM refunds GROUP BY received_at ORDER BY 1")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(windows.iter().sum::<i64>(), 200);
    assert!(windows.iter().all(|&n| n <= 50), "windows {windows:?}");
    assert_eq!(app.ready(&queue).await, 0);
    assert_eq!(app.ready(&app.topology.dead_queue).await, 0);
    app.cleanup().await;
}

/// With the database refusing connections, intake takes all `n` events (none
/// left ready) but can store none; stopped, it acked nothing, so every
/// delivery goes back to the queue (the broker requeues them as it handles
/// the closed channel).
async fn hold_then_hand_back(app: &mut TestApp, n: u32) {
    let queue = app.topology.approved_queue.clone();
    wait_until("intake to hold every delivery", LONG, || async {
        app.ready(&queue).await == 0
    })
    .await;
    app.stop_intake().await;
    wait_until(&format!("all {n} back in the queue"), LONG, || async {
        app.ready(&queue).await == n
    })
    .await;
}

/// Makes a database refuse (or accept again) new connections and ends the
/// ones it has, the way an outage looks to the worker.
async fn set_connections(admin: &sqlx::PgPool, db: &str, allow: bool) {
    let sql = format!("ALTER DATABASE \"{db}\" ALLOW_CONNECTIONS {allow}");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(admin)
        .await
        .unwrap();
    if !allow {
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(db)
            .execute(admin)
            .await
            .unwrap();
    }
}

/// The dead-letter queue gone for a while (as right after a broker restart,
/// before it is back): the broker returns the dead letter unroutable, and
/// intake holds the window and publishes the letter again. It used to end
/// its session instead, handing every delivery back: five quick failures
/// and the broker dead-lettered the whole window under `delivery_limit`.
#[tokio::test]
async fn a_dead_letter_the_broker_refuses_is_published_again_while_the_window_is_held() {
    let app = TestApp::without_intake(&[]).await;
    let port = free_port();
    let _worker = crate::process::KillOnDrop(vec![
        crate::cli::worker(&app)
            .args(["run", "--roles", "intake,http"])
            .env("HTTP_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    ]);
    // Consuming (the worker declares the topology as it starts), then the
    // dead-letter queue goes away.
    app.publish(&[event("H-0", TRADE, r#""1.00""#)]).await;
    wait_for_count("the first refund", 1, LONG, || app.refund_count()).await;
    app.channel
        .queue_delete(
            app.topology.dead_queue.as_str().into(),
            lapin::options::QueueDeleteOptions::default(),
        )
        .await
        .unwrap();
    app.publish(&[
        event("H-1", TRADE, r#""2.00""#),
        event("H-2", TRADE, r#""1.001""#),
    ])
    .await;
    wait_for_count("the valid refund", 2, LONG, || app.refund_count()).await;
    let refusals = || async {
        let text = match reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        crate::end_to_end::sample(&text, "refund_worker_intake_dead_letter_refusals_total")
            .unwrap_or(0.0)
    };
    // More refusals than the delivery limit (5) would have allowed sessions.
    wait_until("six refusals", LONG, || async { refusals().await >= 6.0 }).await;
    assert_eq!(
        app.ready(&app.topology.approved_queue).await,
        0,
        "the window was handed back"
    );

    // The queue back: the letter goes in under its own code, once.
    app.topology.declare(&app.channel).await.unwrap();
    let letters = app.take_dead_letters(1).await;
    assert_eq!(
        letters[0].header(CODE_HEADER).as_deref(),
        Some("invalid_amount")
    );
    assert!(
        !letters[0]
            .headers
            .inner()
            .keys()
            .any(|k| k.as_str() == "x-death"),
        "dead-lettered by the broker: {:?}",
        letters[0].headers
    );
    wait_until("the window acked", LONG, || async {
        app.ready(&app.topology.approved_queue).await == 0
    })
    .await;
    assert_eq!(app.refund_count().await, 2);
    app.cleanup().await;
}
