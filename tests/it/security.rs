//! Hostile notifications (the security checks of the hostile-input work, docs/testing.md): a valid-looking but
//! wrong signature, a `sign_type` other than MD5, a `notify_id` replayed
//! from another batch, a huge body, SQL and HTML in every field. Each is
//! answered as the contract says, stored for audit where it could be read,
//! and changes nothing.

use std::time::Duration;

use chrono::Utc;
use refund_worker::alipay::sign;
use refund_worker::alipay::wire::form;
use refund_worker::submit::Step;
use refund_worker::submit::decide::Next;
use tokio_util::sync::CancellationToken;

use crate::gateway::*;
use crate::helpers::*;
use crate::notifications::{count, post, serve_callback};

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn hostile_notifications_change_nothing() {
    let app = TestApp::without_intake(&[]).await;
    let stop = CancellationToken::new();
    let gw = start_sandbox(|_| {}).await;
    let base = serve_callback(&app, &gw.url, true, &stop).await;
    let notify = format!("{base}/alipay/notify");
    app.store_events(&[event("S-1", &trade(1), r#""1.00""#)])
        .await;
    let first = form_batch(&app).await;
    // Batch one is paid and notified for real.
    let s = submitter_notifying(&app, &gw.url, &notify, Duration::from_secs(10));
    assert!(matches!(
        s.step(Utc::now()).await.unwrap(),
        Step::Sent {
            next: Next::Submitted,
            ..
        }
    ));
    wait_until("batch one settled", Duration::from_secs(30), || async {
        app.status_of("S-1").await == "succeeded"
    })
    .await;
    let genuine_id: String =
        sqlx::query_scalar("SELECT notify_id FROM notifications WHERE verdict = 'applied'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    app.store_events(&[event("S-2", &trade(2), r#""2.00""#)])
        .await;
    let second = form_batch(&app).await;
    let details = format!("{}^2.00^SUCCESS", trade(2));
    let fields = |notify_id: &str, batch: &str| {
        pairs(&[
            ("notify_time", "2026-11-25 10:00:00"),
            ("notify_type", "batch_refund_notify"),
            ("notify_id", notify_id),
            ("batch_no", batch),
            ("success_num", "1"),
            ("result_details", &details),
        ])
    };
    let signed = |mut p: Vec<(String, String)>, sign_type: &str, signature: String| {
        p.push(("sign_type".into(), sign_type.into()));
        p.push(("sign".into(), signature));
        form::encode(&p).into_bytes()
    };

    // A valid-looking signature (32 lower-case hex) that is not ours.
    let f = fields("id-a", &second);
    let looks_right = format!("{:x}", u128::MAX - 7);
    assert_eq!(
        post(&notify, signed(f, "MD5", looks_right)).await,
        (400, "fail".into())
    );
    // A correct MD5 signature, but claiming another sign_type.
    let f = fields("id-b", &second);
    let sig = sign::sign(&f, KEY);
    assert_eq!(
        post(&notify, signed(f, "RSA", sig)).await,
        (400, "fail".into())
    );
    // Batch one's genuine notify_id, replayed for batch two and signed
    // correctly: a repeat, answered success, nothing applied.
    let f = fields(&genuine_id, &second);
    let sig = sign::sign(&f, KEY);
    assert_eq!(
        post(&notify, signed(f, "MD5", sig)).await,
        (200, "success".into())
    );
    // A huge body: refused before it is read.
    let huge = vec![b'a'; 300 * 1024];
    assert_eq!(post(&notify, huge).await.0, 413);
    // SQL and HTML in every field, with a forged signature.
    let nasty = "'); DROP TABLE refunds; -- <script>alert(1)</script>";
    let mut f = pairs(&[
        ("notify_time", nasty),
        ("notify_type", nasty),
        ("notify_id", nasty),
        ("batch_no", nasty),
        ("success_num", nasty),
        ("result_details", nasty),
    ]);
    f.push(("sign_type".into(), "MD5".into()));
    f.push(("sign".into(), nasty.into()));
    assert_eq!(
        post(&notify, form::encode(&f).into_bytes()).await,
        (400, "fail".into())
    );

    assert_eq!(app.status_of("S-2").await, "batched", "batch two untouched");
    assert_eq!(count(&app, "SELECT count(*) FROM refunds").await, 2);
    assert_eq!(count(&app, "SELECT count(*) FROM outbox").await, 1);
    let verdicts: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT verdict, batch_no FROM notifications WHERE verdict <> 'applied' ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        verdicts,
        [
            ("forged".to_owned(), Some(second.clone())),
            ("forged".to_owned(), Some(second.clone())),
            ("repeat".to_owned(), Some(second.clone())),
            ("forged".to_owned(), Some(nasty.to_owned())),
        ]
    );
    let _ = first;
    stop.cancel();
    app.cleanup().await;
}
