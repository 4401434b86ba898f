//! The operator page: refused without an operator's credential; a session
//! per operator (signed cookie, CSRF field bound to it, sign-out); the log
//! names who replayed; wrong tokens are rate limited; every answer carries
//! the security headers; placeholder and short tokens stop the start. In
//! headless Chromium: sign in, click replay (gone from the queue, the
//! refund stored), find a refund, sign out; and open a password form, which
//! posts itself to the gateway under its own Content-Security-Policy.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable, LongString};
use refund_worker::admin::{self, AdminState};
use refund_worker::config::{AdminSettings, Operator, Settings};
use refund_worker::submit::Step;
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::browser::Browser;
use crate::gateway::*;
use crate::helpers::*;
use crate::notifications::serve_callback;
use crate::process::{KillOnDrop, sigterm};

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-0123456789abc";
const COOKIE: &str = "rw_admin";
const CSP: &str = "default-src 'none'; style-src 'self' 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn operators() -> AdminSettings {
    AdminSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        operators: [("alice", ALICE), ("bob", BOB)]
            .iter()
            .map(|(name, token)| Operator {
                name: (*name).into(),
                token: (*token).to_owned().into(),
            })
            .collect(),
        session_ttl: Duration::from_secs(8 * 3600),
        secure_cookie: false,
        legacy_token: false,
    }
}

async fn serve_admin(app: &TestApp, stop: &CancellationToken) -> String {
    serve_admin_with(app, app.settings.clone(), stop).await
}

async fn serve_admin_with(app: &TestApp, settings: Settings, stop: &CancellationToken) -> String {
    let state = AdminState::new(app.pool.clone(), Arc::new(settings), &operators());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = stop.clone();
    tokio::spawn(async move {
        let service =
            admin::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, service)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    });
    format!("http://{addr}")
}

/// A client that shows redirects instead of following them.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

async fn post(
    base: &str,
    path: &str,
    cookie: Option<&str>,
    pairs: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = http()
        .post(format!("{base}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.send().await.unwrap()
}

async fn get(base: &str, path: &str, cookie: &str) -> reqwest::Response {
    http()
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// The `Set-Cookie` line of an answer.
fn set_cookie(r: &reqwest::Response) -> String {
    r.headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Signs in with `token`: the `Cookie` header of the session.
async fn sign_in(base: &str, token: &str) -> String {
    let r = post(base, "/login", None, &[("token", token)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let line = set_cookie(&r);
    assert!(
        line.contains("HttpOnly") && line.contains("SameSite=Strict") && line.contains("Path=/"),
        "{line}"
    );
    assert!(!line.contains("Secure"), "not without ADMIN_SECURE_COOKIE");
    line.split(';').next().unwrap().to_owned()
}

/// The CSRF field the overview gives this session.
async fn csrf_of(base: &str, cookie: &str) -> String {
    let page = get(base, "/", cookie).await.text().await.unwrap();
    let start = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[start..start + page[start..].find('"').unwrap()].to_owned()
}

/// A valid refund event sitting in the dead-letter queue, as if it had been
/// refused by an earlier version of the worker.
async fn dead_letter(app: &TestApp, refund_id: &str, message_id: &str) {
    let text = |s: &str| AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()));
    let mut h = FieldTable::default();
    h.insert("x-refund-error-code".into(), text("invalid_amount"));
    h.insert(
        "x-refund-error".into(),
        text("an old rule <b>refused</b> it"),
    );
    h.insert(
        "x-original-exchange".into(),
        text(&app.topology.refunds_exchange),
    );
    h.insert("x-original-routing-key".into(), text("refund.approved"));
    let props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_message_id(message_id.into())
        .with_headers(h);
    app.channel
        .basic_publish(
            app.topology.dead_letter_exchange.as_str().into(),
            "refund.approved".into(),
            BasicPublishOptions::default(),
            &event(refund_id, TRADE, r#""2.00""#),
            props,
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_admin_page_refuses_strangers() {
    let app = TestApp::without_intake(&[]).await;
    let stop = CancellationToken::new();
    let base = serve_admin(&app, &stop).await;
    let http = http();
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(
        status(http.get(format!("{base}/")).send().await.unwrap()),
        401
    );
    assert_eq!(
        status(
            http.get(format!("{base}/refunds?id=x"))
                .bearer_auth("wrong-token-000000")
                .send()
                .await
                .unwrap()
        ),
        401
    );
    assert_eq!(
        status(post(&base, "/dlq/replay", None, &[("id", "m")]).await),
        401
    );
    assert_eq!(
        status(post(&base, "/logout", None, &[("csrf", "x")]).await),
        401
    );
    // A bearer token names its operator and works; scripts need no CSRF
    // field (a browser never sends the header by itself).
    assert_eq!(
        status(
            http.get(format!("{base}/"))
                .bearer_auth(BOB)
                .send()
                .await
                .unwrap()
        ),
        200
    );
    let replayed = http
        .post(format!("{base}/dlq/replay"))
        .bearer_auth(BOB)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("id", "no-such-letter")]))
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), StatusCode::SEE_OTHER);
    let to = replayed.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.contains("not+replayed"), "{to}");
    assert_eq!(
        status(post(&base, "/login", None, &[("token", "nope")]).await),
        401
    );
    stop.cancel();
    app.cleanup().await;
}

/// A settings file naming alice and bob, their tokens in files beside it.
fn operators_file(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let mut toml = String::new();
    for (name, token) in [("alice", ALICE), ("bob", BOB)] {
        let path = dir.path().join(format!("{name}.token"));
        std::fs::write(&path, format!("{token}\n")).unwrap();
        toml.push_str(&format!(
            "[[operators]]\nname = \"{name}\"\ntoken_file = \"{}\"\n",
            path.display()
        ));
    }
    let file = dir.path().join("operators.toml");
    std::fs::write(&file, toml).unwrap();
    file
}

#[tokio::test]
async fn an_operator_signs_in_replays_and_the_log_names_them() {
    let app = TestApp::without_intake(&[]).await;
    dead_letter(&app, "ADM-A", "msg-adm-a").await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut worker = KillOnDrop(vec![
        crate::cli::worker(&app)
            .args(["run", "--roles", "intake,http", "--config"])
            .arg(operators_file(&dir))
            .env("ADMIN_LISTEN", format!("127.0.0.1:{port}"))
            .env("HTTP_LISTEN", format!("127.0.0.1:{}", free_port()))
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ]);
    let logs: Arc<Mutex<Vec<String>>> = Arc::default();
    let stderr = worker.0[0].stderr.take().unwrap();
    let sink = logs.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let logged = |message: &str| -> Option<serde_json::Value> {
        logs.lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["message"] == message)
    };
    let base = format!("http://127.0.0.1:{port}");
    wait_until("the operator page up", Duration::from_secs(30), || async {
        http().get(format!("{base}/login")).send().await.is_ok()
    })
    .await;

    let alice = sign_in(&base, ALICE).await;
    let page = get(&base, "/", &alice).await.text().await.unwrap();
    assert!(
        page.contains("<strong id=\"operator\">alice</strong>"),
        "{page}"
    );
    assert!(page.contains("id=\"dead-msg-adm-a\""), "{page}");
    let csrf = csrf_of(&base, &alice).await;
    let r = post(
        &base,
        "/dlq/replay",
        Some(&alice),
        &[("csrf", &csrf), ("id", "msg-adm-a")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    wait_until(
        "the replayed refund stored",
        Duration::from_secs(30),
        || async { app.refund_count().await == 1 },
    )
    .await;
    wait_until("the replay logged", Duration::from_secs(10), || async {
        logged("operator page: replay").is_some()
    })
    .await;

    let replay = logged("operator page: replay").unwrap();
    assert_eq!(replay["operator"], "alice", "{replay}");
    assert_eq!(replay["message_id"], "msg-adm-a", "{replay}");
    assert_eq!(replay["replayed"], true, "{replay}");
    let signed_in = logged("operator page: signed in").unwrap();
    assert_eq!(signed_in["operator"], "alice", "{signed_in}");
    assert_eq!(signed_in["client"], "127.0.0.1", "{signed_in}");
    let all = logs.lock().unwrap().join("\n");
    assert!(
        !all.contains(ALICE) && !all.contains(BOB),
        "no token is logged: {all}"
    );
    sigterm(&worker.0[0]);
    app.cleanup().await;
}

#[tokio::test]
async fn signing_out_clears_the_cookie_and_ends_the_session() {
    let app = TestApp::without_intake(&[]).await;
    let stop = CancellationToken::new();
    let base = serve_admin(&app, &stop).await;
    let alice = sign_in(&base, ALICE).await;
    let other_alice = sign_in(&base, ALICE).await;
    let csrf = csrf_of(&base, &alice).await;

    let r = post(&base, "/logout", Some(&alice), &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login");
    let line = set_cookie(&r);
    assert!(line.starts_with(&format!("{COOKIE}=;")), "{line}");
    assert!(line.contains("Max-Age=0"), "{line}");

    let after = get(&base, "/", &alice).await;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    assert!(after.text().await.unwrap().contains("id=\"token\""));
    assert_eq!(
        get(&base, "/", &other_alice).await.status(),
        StatusCode::OK,
        "her other session goes on"
    );
    stop.cancel();
    app.cleanup().await;
}

#[tokio::test]
async fn a_session_form_without_its_own_csrf_field_is_forbidden() {
    let app = TestApp::without_intake(&[]).await;
    let stop = CancellationToken::new();
    let base = serve_admin(&app, &stop).await;
    let alice = sign_in(&base, ALICE).await;
    let bob = sign_in(&base, BOB).await;
    let bobs = csrf_of(&base, &bob).await;
    for (path, csrf) in [
        ("/dlq/replay", None),
        ("/dlq/replay", Some("guess")),
        ("/dlq/replay", Some(bobs.as_str())),
        ("/batches/20261206000001/form", None),
        ("/logout", None),
        ("/logout", Some(bobs.as_str())),
    ] {
        let mut pairs = vec![("id", "msg-1")];
        if let Some(c) = csrf {
            pairs.push(("csrf", c));
        }
        let r = post(&base, path, Some(&alice), &pairs).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path} {csrf:?}");
    }
    assert_eq!(get(&base, "/", &alice).await.status(), StatusCode::OK);
    stop.cancel();
    app.cleanup().await;
}

#[tokio::test]
async fn after_five_wrong_tokens_a_client_waits_even_with_the_right_one() {
    let app = TestApp::without_intake(&[]).await;
    let stop = CancellationToken::new();
    let base = serve_admin(&app, &stop).await;
    for n in 1..=5 {
        let r = post(
            &base,
            "/login",
            None,
            &[("token", &format!("guess-{n}-0123456789"))],
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "guess {n}");
    }
    let r = post(&base, "/login", None, &[("token", ALICE)]).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=13).contains(&wait), "{wait}");
    assert!(set_cookie(&r).is_empty(), "no session while held");
    let bearer = http()
        .get(format!("{base}/"))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(
        bearer.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "nor a bearer token"
    );
    stop.cancel();
    app.cleanup().await;
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_a_forged_cookie_gets_the_sign_in_page() {
    let app = TestApp::without_intake(&[]).await;
    let stop = CancellationToken::new();
    let base = serve_admin(&app, &stop).await;
    let alice = sign_in(&base, ALICE).await;
    let forged = alice.replacen("alice", "bob", 1);
    let answers = [
        http().get(format!("{base}/login")).send().await.unwrap(),
        http().get(format!("{base}/")).send().await.unwrap(),
        get(&base, "/", &alice).await,
        get(&base, "/refunds?id=nope", &alice).await,
        get(&base, "/nowhere", &alice).await,
        post(&base, "/dlq/replay", Some(&alice), &[("id", "x")]).await,
        get(&base, "/", &forged).await,
    ];
    for r in &answers {
        let h = r.headers();
        assert_eq!(h["content-security-policy"], CSP, "{}", r.url());
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["cache-control"], "no-store");
    }
    let [.., forged_answer] = answers;
    assert_eq!(forged_answer.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&forged_answer).contains("Max-Age=0"));
    let page = forged_answer.text().await.unwrap();
    assert!(
        page.contains("Your session has ended") && page.contains("id=\"token\""),
        "{page}"
    );
    assert_eq!(
        get(&base, "/", &alice).await.status(),
        StatusCode::OK,
        "the real one goes on"
    );
    stop.cancel();
    app.cleanup().await;
}

/// `refund-worker run` with these settings (and a config file): its exit
/// code and standard error.
fn start_with(env: &[(&str, &str)], config: Option<&str>) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_refund-worker"));
    cmd.env_clear().arg("run").envs(env.iter().copied());
    if let Some(text) = config {
        let file = dir.path().join("c.toml");
        std::fs::write(&file, text).unwrap();
        cmd.arg("--config").arg(file);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_placeholder_or_short_operator_token_stops_the_start() {
    let listen = ("ADMIN_LISTEN", "127.0.0.1:0");
    let (code, err) = start_with(
        &[listen, ("ADMIN_TOKEN", "change-me-change-me-change-me")],
        None,
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("ADMIN_TOKEN") && err.contains("CHANGE-ME"),
        "{err}"
    );
    assert!(!err.contains("change-me-change-me"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("alice.token");
    std::fs::write(&short, "too-short-token\n").unwrap();
    let table = format!(
        "[[operators]]\nname = \"alice\"\ntoken_file = \"{}\"\n",
        short.display()
    );
    let (code, err) = start_with(&[listen], Some(&table));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("operators[0].token_file"), "{err}");
    assert!(err.contains("at least 16"), "{err}");
    assert!(!err.contains("too-short-token"), "{err}");

    let (code, err) = start_with(&[listen], None);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("operators"), "{err}");
}

#[tokio::test]
async fn an_operator_signs_in_clicks_replay_and_the_refund_is_stored() {
    let app = TestApp::spawn().await;
    dead_letter(&app, "ADM-1", "msg-adm-1").await;
    let stop = CancellationToken::new();
    let base = serve_admin(&app, &stop).await;
    let browser = Browser::start().await;

    browser.go(&format!("{base}/")).await;
    assert!(browser.source().await.contains("Not signed in"));
    browser.go(&format!("{base}/login")).await;
    browser.type_into("#token", ALICE).await;
    browser.click("#sign-in").await;
    let page = browser.page_with("refund-worker operations").await;
    assert!(page.contains("refund-worker operations"), "{page}");
    assert!(
        page.contains("<strong id=\"operator\">alice</strong>"),
        "{page}"
    );
    assert!(page.contains("invalid_amount (1)"), "{page}");
    assert!(
        page.contains("an old rule &lt;b&gt;refused&lt;/b&gt; it"),
        "{page}"
    );
    assert!(page.contains("id=\"dead-msg-adm-1\""));

    browser.click("#dead-msg-adm-1 .replay").await;
    let page = browser.page_with("id=\"flash\"").await;
    assert!(page.contains("id=\"flash\""), "{page}");
    assert!(
        !page.contains("id=\"dead-msg-adm-1\""),
        "the dead letter is gone: {page}"
    );
    wait_until(
        "the replayed refund stored",
        Duration::from_secs(30),
        || async { app.refund_count().await == 1 },
    )
    .await;
    assert_eq!(app.ready(&app.topology.dead_queue).await, 0);

    browser.type_into("#refund-id", "ADM-1").await;
    browser.click("#find").await;
    let page = browser.page_with("id=\"status\"").await;
    assert!(page.contains("<td id=\"status\">pending</td>"), "{page}");

    browser.go(&format!("{base}/")).await;
    browser.click("#sign-out").await;
    let page = browser.page_with("id=\"sign-in\"").await;
    assert!(page.contains("id=\"sign-in\""), "{page}");
    browser.go(&format!("{base}/")).await;
    assert!(
        browser.source().await.contains("Not signed in"),
        "the cookie is gone"
    );
    browser.close().await;
    stop.cancel();
    app.cleanup().await;
}

#[tokio::test]
async fn the_password_form_posts_itself_to_the_gateway_under_its_own_policy() {
    let app = TestApp::without_intake(&[]).await;
    let gw = start_sandbox(|c| {
        c.no_nopwd_partners.push(PARTNER.into());
        c.auto_approve_pwd = true;
    })
    .await;
    let stop = CancellationToken::new();
    let callback = serve_callback(&app, &gw.url, true, &stop).await;
    let notify_url = format!("{callback}/alipay/notify");
    app.store_events(&[event("PWD-1", &trade(1), r#""3.00""#)])
        .await;
    let batch_no = form_batch(&app).await;
    let mut s = submitter_notifying(&app, &gw.url, &notify_url, Duration::from_secs(10));
    s.pwd_fallback = true;
    let step = s.step(Utc::now()).await.unwrap();
    assert!(matches!(step, Step::Sent { .. }), "{step:?}");
    assert_eq!(batch_status(&app, &batch_no).await, "awaiting_operator");

    let mut settings = app.settings.clone();
    settings.alipay.gateway = gw.url.clone();
    settings.alipay.notify_url = Some(notify_url);
    let base = serve_admin_with(&app, settings, &stop).await;

    // The answer itself: its own policy, allowing the gateway and its script.
    let bob = sign_in(&base, BOB).await;
    let csrf = csrf_of(&base, &bob).await;
    let r = post(
        &base,
        &format!("/batches/{batch_no}/form"),
        Some(&bob),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let origin = gw.url.trim_end_matches("/gateway.do");
    assert!(csp.contains(&format!("form-action {origin};")), "{csp}");
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert_eq!(r.headers()["cache-control"], "no-store");

    // In the browser: the button opens the form in a new tab, its script
    // runs under that policy and the gateway takes the batch.
    let browser = Browser::start().await;
    browser.go(&format!("{base}/login")).await;
    browser.type_into("#token", ALICE).await;
    browser.click("#sign-in").await;
    browser.page_with("id=\"awaiting\"").await;
    let before = browser.windows().await;
    browser.click("#awaiting .open-form").await;
    let tab = wait_for_new_window(&browser, &before).await;
    browser.switch_to(&tab).await;
    let page = browser.page_with("Alipay sandbox: Approved").await;
    assert!(
        page.contains("Alipay sandbox: Approved") && page.contains(&batch_no),
        "the gateway's page: {page}"
    );
    wait_until(
        "the refund paid through the normal notification",
        Duration::from_secs(30),
        || async { app.status_of("PWD-1").await == "succeeded" },
    )
    .await;
    browser.close().await;
    stop.cancel();
    app.cleanup().await;
}

async fn wait_for_new_window(browser: &Browser, before: &[String]) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(new) = browser
            .windows()
            .await
            .into_iter()
            .find(|w| !before.contains(w))
        {
            return new;
        }
        assert!(tokio::time::Instant::now() < deadline, "no new tab opened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
