//! The batcher and submitter against the in-process sandbox (and, for answers
//! the sandbox never gives synchronously, a stub gateway): every disposition
//! ends where architecture.md says, and the sandbox's ledger shows nothing paid twice.

use std::time::Duration;

use chrono::Utc;
use refund_worker::alipay::client::AlipayClient;
use refund_worker::alipay::wire::batch_no::{beijing_now, format_refund_date};
use refund_worker::alipay::wire::detail::{BatchItem, detail_data};
use refund_worker::submit::decide::Next;
use refund_worker::submit::{Step, Submitter};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::gateway::*;
use crate::helpers::*;

/// Steps until the submitter does something (a retry waits for its delay).
async fn next_step(s: &Submitter) -> Step {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let step = s.step(Utc::now()).await.unwrap();
        if step != Step::Idle {
            return step;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the submitter found nothing to do"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn an_accepted_batch_is_submitted_with_its_refunds() {
    let app = TestApp::without_intake(&[]).await;
    let gw = start_sandbox(|_| {}).await;
    app.store_events(&[
        event("A-1", &trade(1), r#""1.00""#),
        event("A-2", &trade(2), r#""2.00""#),
    ])
    .await;
    let batch_no = form_batch(&app).await;
    let s = submitter(&app, &gw.url, Duration::from_secs(10));
    assert_eq!(
        s.step(Utc::now()).await.unwrap(),
        Step::Sent {
            batch_no: batch_no.clone(),
            code: None,
            next: Next::Submitted
        }
    );
    assert_eq!(batch_status(&app, &batch_no).await, "submitted");
    assert_eq!(app.status_of("A-1").await, "submitted");
    assert_eq!(
        s.step(Utc::now()).await.unwrap(),
        Step::Idle,
        "a submitted batch is not sent again"
    );
    let ledger = gw.sandbox.as_ref().unwrap().ledger();
    assert!(ledger.batches.iter().any(|b| b.batch_no == batch_no));
    app.cleanup().await;
}

/// A sandbox that accepts and then holds every answer past the client's
/// time-out, one refund in one batch, and its first attempt: outcome unknown.
async fn first_attempt_times_out(app: &TestApp, refund_id: &str) -> (Gateway, String, Submitter) {
    let gw = start_sandbox(|c| {
        c.faults.timeout_after_accept_rate = "1".parse().unwrap();
        c.faults.timeout_hold = Duration::from_secs(5);
    })
    .await;
    app.store_events(&[event(refund_id, &trade(1), r#""3.00""#)])
        .await;
    let batch_no = form_batch(app).await;
    // Long enough for the sandbox to have accepted before the client gives
    // up, far below the 5 s hold.
    let s = submitter(app, &gw.url, Duration::from_millis(1500));
    let first = next_step(&s).await;
    assert!(
        matches!(
            first,
            Step::Sent {
                next: Next::RetryLater {
                    unknown: true,
                    query: false,
                    ..
                },
                ..
            }
        ),
        "{first:?}"
    );
    let sandbox = gw.sandbox.as_ref().unwrap();
    wait_until(
        "the sandbox holds the batch",
        Duration::from_secs(10),
        || async { sandbox.ledger().batches.len() == 1 },
    )
    .await;
    (gw, batch_no, s)
}

#[tokio::test]
async fn a_time_out_after_acceptance_is_resent_as_the_same_batch_and_paid_once() {
    let app = TestApp::without_intake(&[]).await;
    let (gw, batch_no, s) = first_attempt_times_out(&app, "T-1").await;
    assert_eq!(app.status_of("T-1").await, "batched");
    // The resend is the same batch: whether the sandbox answers it with
    // DUPLICATE_BATCH_NO or times out again, it never holds the batch twice.
    let second = next_step(&s).await;
    match &second {
        Step::Sent {
            batch_no: b,
            next: Next::Submitted,
            code,
        } if *b == batch_no => {
            assert_eq!(code.as_deref(), Some("DUPLICATE_BATCH_NO"))
        }
        Step::Sent {
            batch_no: b,
            next: Next::RetryLater { unknown: true, .. },
            ..
        } if *b == batch_no => {}
        other => panic!("{other:?}"),
    }
    let ledger = gw.sandbox.as_ref().unwrap().ledger();
    assert_eq!(
        ledger
            .batches
            .iter()
            .filter(|b| b.batch_no == batch_no)
            .count(),
        1
    );
    // Accepted once, so paid exactly once once the sandbox has processed it.
    let sandbox = gw.sandbox.as_ref().unwrap();
    wait_until(
        "the sandbox has paid the refund",
        Duration::from_secs(15),
        || async {
            sandbox
                .ledger()
                .trades
                .iter()
                .map(|t| t.refunds.len())
                .sum::<usize>()
                >= 1
        },
    )
    .await;
    let ledger = sandbox.ledger();
    assert_eq!(
        ledger.trades.iter().map(|t| t.refunds.len()).sum::<usize>(),
        1,
        "paid once"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_resend_after_an_unknown_outcome_gets_duplicate_batch_no_and_counts_as_accepted() {
    let app = TestApp::without_intake(&[]).await;
    let gw = start_sandbox(|_| {}).await;
    app.store_events(&[event("D-1", &trade(1), r#""3.00""#)])
        .await;
    let batch_no = form_batch(&app).await;
    // The first attempt reached Alipay but its answer was lost: simulate by
    // sending it once by hand, then letting the submitter believe it unknown.
    let client = AlipayClient::new(&gw.url, Duration::from_secs(10)).unwrap();
    let s = submitter(&app, &gw.url, Duration::from_secs(10));
    let claimed = refund_worker::storage::submissions::claim_due(&app.pool, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    let request = sandbox_request(&app, &claimed).await;
    assert!(client.submit(&request, KEY).await.verdict.code.is_none());
    // The claim above was never recorded: the next claim sees an unknown outcome.
    let step = next_step(&s).await;
    assert_eq!(
        step,
        Step::Sent {
            batch_no: batch_no.clone(),
            code: Some("DUPLICATE_BATCH_NO".into()),
            next: Next::Submitted
        }
    );
    let outcome_unknown: bool =
        sqlx::query_scalar("SELECT outcome_unknown FROM batches WHERE batch_no = $1")
            .bind(&batch_no)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(outcome_unknown);
    let ledger = gw.sandbox.as_ref().unwrap().ledger();
    let refunds: usize = ledger.trades.iter().map(|t| t.refunds.len()).sum();
    assert_eq!(refunds, 1, "paid once");
    app.cleanup().await;
}

async fn sandbox_request(
    app: &TestApp,
    b: &refund_worker::submit::decide::ClaimedBatch,
) -> refund_worker::alipay::wire::request::NopwdRequest {
    let _ = app;
    refund_worker::alipay::wire::request::NopwdRequest {
        partner: b.partner.clone(),
        notify_url: "http://127.0.0.1:9/alipay/notify".into(),
        dback_notify_url: None,
        batch_no: b.batch_no.clone(),
        refund_date: refund_worker::alipay::wire::batch_no::parse_refund_date(&b.refund_date)
            .unwrap(),
        items: refund_worker::alipay::wire::detail::parse_detail_data(&b.detail_data).unwrap(),
    }
}

#[tokio::test]
async fn after_the_give_up_age_two_absent_answers_prove_absence_and_the_refunds_go_back_to_pending()
{
    let app = TestApp::without_intake(&[]).await;
    let gw = start_sandbox(|_| {}).await;
    app.store_events(&[event("Q-1", &trade(1), r#""3.00""#)])
        .await;
    let batch_no = form_batch(&app).await;
    // The first attempt cannot reach the gateway: its outcome is unknown.
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}/gateway.do", dead.local_addr().unwrap());
    drop(dead);
    let mut s = submitter(&app, &dead_url, Duration::from_secs(10));
    let first = next_step(&s).await;
    assert!(
        matches!(
            first,
            Step::Sent {
                next: Next::RetryLater { unknown: true, .. },
                ..
            }
        ),
        "{first:?}"
    );
    // Past the give-up age the query decides, and Alipay has never seen it.
    s.client = AlipayClient::new(&gw.url, Duration::from_secs(10)).unwrap();
    s.settings.give_up = Duration::ZERO;
    // With no settle time, the first answer counts and the second proves.
    s.settings.absence_settle = Duration::ZERO;
    let first = next_step(&s).await;
    assert_eq!(
        first,
        Step::Queried {
            batch_no: batch_no.clone(),
            next: Next::AbsenceSeen {
                delay: Duration::ZERO
            }
        }
    );
    assert_eq!(batch_status(&app, &batch_no).await, "submitting");
    let queried = next_step(&s).await;
    assert_eq!(
        queried,
        Step::Queried {
            batch_no: batch_no.clone(),
            next: Next::Reject {
                pause_partner: false
            }
        }
    );
    assert_eq!(batch_status(&app, &batch_no).await, "rejected");
    assert_eq!(app.status_of("Q-1").await, "pending");
    // A new batch, with a new batch_no, takes it.
    let again = form_batch(&app).await;
    assert_ne!(again, batch_no);
    app.cleanup().await;
}

#[tokio::test]
async fn a_p_answer_is_settled_by_the_query_finding_the_batch() {
    let app = TestApp::without_intake(&[]).await;
    let gw = start_sandbox(|c| c.faults.processing_rate = "1".parse().unwrap()).await;
    app.store_events(&[event("P-1", &trade(1), r#""3.00""#)])
        .await;
    let batch_no = form_batch(&app).await;
    let mut s = submitter(&app, &gw.url, Duration::from_secs(10));
    let first = next_step(&s).await;
    assert!(
        matches!(&first, Step::Sent { code: Some(c), next: Next::RetryLater { unknown: true, .. }, .. } if c == "P"),
        "{first:?}"
    );
    s.settings.give_up = Duration::ZERO;
    assert_eq!(
        next_step(&s).await,
        Step::Queried {
            batch_no: batch_no.clone(),
            next: Next::Submitted
        }
    );
    assert_eq!(app.status_of("P-1").await, "submitted");
    app.cleanup().await;
}

#[tokio::test]
async fn a_partner_without_the_nopwd_contract_is_paused_or_waits_for_an_operator() {
    for fallback in [false, true] {
        let app = TestApp::without_intake(&[]).await;
        let gw = start_sandbox(|c| c.no_nopwd_partners = vec![PARTNER.into()]).await;
        app.store_events(&[event("N-1", &trade(1), r#""1.00""#)])
            .await;
        let batch_no = form_batch(&app).await;
        let mut s = submitter(&app, &gw.url, Duration::from_secs(10));
        s.pwd_fallback = fallback;
        let step = next_step(&s).await;
        if fallback {
            assert_eq!(
                step,
                Step::Sent {
                    batch_no: batch_no.clone(),
                    code: Some("ILLEGAL_PARTNER_EXTERFACE".into()),
                    next: Next::AwaitOperator
                }
            );
            assert_eq!(batch_status(&app, &batch_no).await, "awaiting_operator");
            assert_eq!(app.status_of("N-1").await, "batched");
        } else {
            assert_eq!(
                step,
                Step::Sent {
                    batch_no: batch_no.clone(),
                    code: Some("ILLEGAL_PARTNER_EXTERFACE".into()),
                    next: Next::Reject {
                        pause_partner: true
                    }
                }
            );
            assert_eq!(app.status_of("N-1").await, "pending");
            // Paused: the refund's next batch is not sent while the pause lasts.
            form_batch(&app).await;
            assert_eq!(s.step(Utc::now()).await.unwrap(), Step::Idle);
        }
        app.cleanup().await;
    }
}

#[tokio::test]
async fn a_batch_numbered_yesterday_is_rebuilt_under_a_new_batch_no() {
    let app = TestApp::without_intake(&[]).await;
    let gw = start_sandbox(|_| {}).await;
    app.store_events(&[event("Y-1", &trade(1), r#""1.00""#)])
        .await;
    // A batch written yesterday (Beijing) that was never sent.
    let yesterday = beijing_now(Utc::now()) - chrono::Duration::days(1);
    let old = refund_worker::domain::batch::batch_no("", yesterday.date(), 999_000_001);
    let items = [BatchItem {
        trade_no: trade(1),
        amount_fen: 100,
        reason: "refund".into(),
    }];
    let mut conn = app.pool.acquire().await.unwrap();
    refund_worker::storage::batches::insert_batch(
        &mut conn,
        &refund_worker::storage::batches::NewBatch {
            batch_no: &old,
            partner: PARTNER,
            refund_date: &format_refund_date(yesterday),
            detail_data: &detail_data(&items),
            refund_ids: &["Y-1"],
            items: &items,
            split_from: None,
            from_status: refund_worker::domain::RefundStatus::Pending,
            actor: &refund_worker::domain::actor::Actor::Batcher,
        },
    )
    .await
    .unwrap();
    drop(conn);
    let s = submitter(&app, &gw.url, Duration::from_secs(10));
    let step = next_step(&s).await;
    assert_eq!(
        step,
        Step::Sent {
            batch_no: old.clone(),
            code: Some("REFUND_DATE_ERROR".into()),
            next: Next::Reject {
                pause_partner: false
            }
        }
    );
    let new = form_batch(&app).await;
    assert_ne!(new, old);
    assert!(matches!(
        next_step(&s).await,
        Step::Sent {
            next: Next::Submitted,
            ..
        }
    ));
    app.cleanup().await;
}

/// A gateway that sinks any batch holding one of `bad` with TRADE_HAS_CLOSED
/// and accepts every other.
async fn start_picky_gateway(bad: Vec<String>) -> (String, CancellationToken) {
    use axum::body::Bytes;
    let app = axum::Router::new().fallback(move |body: Bytes| {
        let bad = bad.clone();
        async move {
            let form = refund_worker::alipay::wire::form::decode(&body).unwrap_or_default();
            let detail = form
                .iter()
                .find(|(k, _)| k == "detail_data")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let poisoned = detail
                .split('#')
                .any(|item| bad.iter().any(|t| item.starts_with(&format!("{t}^"))));
            let inner = if poisoned {
                "<is_success>F</is_success><error>TRADE_HAS_CLOSED</error>"
            } else {
                "<is_success>T</is_success>"
            };
            format!(r#"<?xml version="1.0" encoding="utf-8"?><alipay>{inner}</alipay>"#)
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/gateway.do", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(s.cancelled_owned())
            .await
    });
    (url, stop)
}

#[tokio::test]
async fn one_bad_trade_is_split_out_until_it_fails_alone() {
    let app = TestApp::without_intake(&[]).await;
    let (url, stop) = start_picky_gateway(vec![trade(13)]).await;
    let events: Vec<_> = (10..14)
        .map(|i| event(&format!("S-{i}"), &trade(i), r#""1.00""#))
        .collect();
    app.store_events(&events).await;
    form_batch(&app).await;
    let s = submitter(&app, &url, Duration::from_secs(10));
    let mut steps = Vec::new();
    while let Step::Sent { next, .. } = s.step(Utc::now()).await.unwrap() {
        steps.push(next);
        assert!(steps.len() < 10, "{steps:?}");
    }
    // 4 -> split 2+2; the good half accepted, the bad half split 1+1; the good one
    // accepted, the bad one failed alone.
    assert_eq!(
        steps.iter().filter(|n| **n == Next::Split).count(),
        2,
        "{steps:?}"
    );
    assert_eq!(
        steps.iter().filter(|n| **n == Next::FailItem).count(),
        1,
        "{steps:?}"
    );
    for i in [10, 11, 12] {
        assert_eq!(app.status_of(&format!("S-{i}")).await, "submitted");
    }
    assert_eq!(app.status_of("S-13").await, "failed");
    let body = app.event_of("S-13", |_| true).await;
    assert_eq!(
        (body["code"].as_str(), body["source"].as_str()),
        (Some("TRADE_HAS_CLOSED"), Some("submit"))
    );
    assert!(body["batch_no"].as_str().is_some());
    stop.cancel();
    app.cleanup().await;
}

#[tokio::test]
async fn an_unknown_outcome_past_the_beijing_day_is_settled_by_the_query() {
    let app = TestApp::without_intake(&[]).await;
    let (gw, batch_no, s) = first_attempt_times_out(&app, "M-1").await;
    // The next attempt happens after midnight in Beijing: no resend, a query.
    let tomorrow = Utc::now() + chrono::Duration::days(1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let step = loop {
        let step = s.step(tomorrow).await.unwrap();
        if step != Step::Idle {
            break step;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(
        step,
        Step::Queried {
            batch_no: batch_no.clone(),
            next: Next::Submitted
        }
    );
    assert_eq!(app.status_of("M-1").await, "submitted");
    let ledger = gw.sandbox.as_ref().unwrap().ledger();
    assert_eq!(
        ledger.trades.iter().map(|t| t.refunds.len()).sum::<usize>(),
        1,
        "paid once"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_5xx_is_retried_as_the_same_batch() {
    let app = TestApp::without_intake(&[]).await;
    let gw = start_sandbox(|c| c.faults.http_5xx_rate = "1".parse().unwrap()).await;
    app.store_events(&[event("H-1", &trade(1), r#""3.00""#)])
        .await;
    let batch_no = form_batch(&app).await;
    let s = submitter(&app, &gw.url, Duration::from_secs(10));
    for _ in 0..3 {
        let step = next_step(&s).await;
        assert!(
            matches!(&step, Step::Sent { batch_no: b, code: Some(c), next: Next::RetryLater { unknown: true, query: false, .. } } if *b == batch_no && c == "HTTP_503"),
            "{step:?}"
        );
    }
    assert_eq!(app.status_of("H-1").await, "batched");
    assert!(gw.sandbox.as_ref().unwrap().ledger().batches.is_empty());
    app.cleanup().await;
}

#[tokio::test]
async fn three_poisoned_items_in_a_batch_of_1000_fail_alone_in_few_requests() {
    let app = TestApp::without_intake(&[]).await;
    let poisoned = [trade(100), trade(500), trade(999)];
    let (url, stop) = start_picky_gateway(poisoned.to_vec()).await;
    let events: Vec<_> = (0..1000)
        .map(|i| event(&format!("K-{i}"), &trade(i), r#""0.10""#))
        .collect();
    app.store_events(&events).await;
    form_batch(&app).await;
    let s = submitter(&app, &url, Duration::from_secs(10));
    let mut requests = 0;
    while let Step::Sent { .. } = s.step(Utc::now()).await.unwrap() {
        requests += 1;
        assert!(requests < 100, "too many requests");
    }
    let failed: i64 = sqlx::query_scalar("SELECT count(*) FROM refunds WHERE status = 'failed'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let submitted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM refunds WHERE refund_status(status, batch_no) = 'submitted'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((failed, submitted), (3, 997));
    for i in [100, 500, 999] {
        assert_eq!(app.status_of(&format!("K-{i}")).await, "failed");
    }
    // Each poisoned item costs about two requests per halving (ten halvings
    // from 1000 to 1), not a failed batch of 1000.
    println!("three poisoned items in 1000: {requests} requests");
    assert!(requests <= 1 + 3 * 2 * 10, "{requests} requests");
    stop.cancel();
    app.cleanup().await;
}
