//! The callback receiver: `POST /alipay/notify` (contract §5), verified in
//! steps — parse the raw body whatever its Content-Type, find the partner key
//! that verifies the signature, the batch, the repeat check, then (optionally)
//! `notify_verify` — and applied in one transaction. Every notification is
//! stored raw with its verdict. `success` goes out only after the commit.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use secrecy::ExposeSecret;
use sqlx::PgPool;

use crate::alipay::client::AlipayClient;
use crate::alipay::wire::notify::{BatchRefundNotify, NotifyForm};
use crate::config::Partner;
use crate::storage::notifications::{self as store, Received};

/// What the receiver needs; cheap to clone.
#[derive(Clone)]
pub struct CallbackState {
    pub pool: PgPool,
    pub client: AlipayClient,
    pub partners: Vec<Partner>,
    pub verify_notify_id: bool,
}

/// The routes, separate from binding so tests serve them on port 0.
pub fn router(state: CallbackState) -> Router {
    Router::new()
        .route("/alipay/notify", post(notify))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
}

type Answer = (StatusCode, &'static str);
const SUCCESS: Answer = (StatusCode::OK, "success");

async fn notify(State(s): State<CallbackState>, headers: HeaderMap, body: Bytes) -> Answer {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match handle(&s, content_type.as_deref(), &body).await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!(error = %e, "cannot store a notification now; Alipay will resend");
            metrics::counter!("refund_worker_notifications_total", "verdict" => "unavailable")
                .increment(1);
            (StatusCode::SERVICE_UNAVAILABLE, "fail")
        }
    }
}

async fn handle(
    s: &CallbackState,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Answer, sqlx::Error> {
    let mut r = Received {
        kind: "batch_refund",
        notify_id: None,
        batch_no: None,
        partner: None,
        content_type,
        raw_body: body,
        verdict: "malformed",
        detail: None,
    };
    let form = match NotifyForm::parse(body) {
        Ok(f) => f,
        Err(e) => {
            return refuse(
                s,
                &mut r,
                "malformed",
                &e.to_string(),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    let notify_id = form.notify_id().map(str::to_owned);
    let batch_no = form.get("batch_no").map(str::to_owned);
    r.notify_id = notify_id.as_deref();
    r.batch_no = batch_no.as_deref();
    let Some(partner) = s
        .partners
        .iter()
        .find(|p| form.verify_signature(p.key.expose_secret()))
    else {
        return refuse(
            s,
            &mut r,
            "forged",
            "no configured partner's key verifies the signature",
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    r.partner = Some(&partner.id);
    let notice = match BatchRefundNotify::from_form(&form) {
        Ok(n) => n,
        Err(e) => {
            return refuse(
                s,
                &mut r,
                "malformed",
                &e.to_string(),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    let Some((batch_partner, status)) = store::batch(&s.pool, &notice.batch_no).await? else {
        return refuse(
            s,
            &mut r,
            "unknown_batch",
            "no such batch_no",
            StatusCode::NOT_FOUND,
        )
        .await;
    };
    if batch_partner != partner.id {
        return refuse(
            s,
            &mut r,
            "wrong_partner",
            "signed by another partner than the batch's",
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    if status == "completed"
        || store::applied_before(&s.pool, "batch_refund", &notice.notify_id).await?
    {
        r.verdict = "repeat";
        store::record(&s.pool, &r).await?;
        metrics::counter!("refund_worker_notifications_total", "verdict" => "repeat").increment(1);
        return Ok(SUCCESS);
    }
    if s.verify_notify_id {
        match s.client.notify_verify(&partner.id, &notice.notify_id).await {
            Ok(true) => {}
            Ok(false) => {
                let why = "the gateway does not confirm this notify_id";
                return refuse(s, &mut r, "unconfirmed", why, StatusCode::BAD_REQUEST).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "notify_verify failed; answering fail so Alipay resends");
                r.verdict = "verify_failed";
                store::record(&s.pool, &r).await?;
                return Ok((StatusCode::SERVICE_UNAVAILABLE, "fail"));
            }
        }
    }
    r.verdict = "applied";
    let applied = store::apply(
        &s.pool,
        &r,
        &notice.batch_no,
        &notice.result_details,
        "notify",
    )
    .await?;
    if !applied.strangers.is_empty() {
        tracing::warn!(batch_no = %notice.batch_no, trades = ?applied.strangers, "notification names trades the batch does not hold; kept, not applied");
    }
    let verdict = if applied.was_repeat {
        "repeat"
    } else {
        "applied"
    };
    metrics::counter!("refund_worker_notifications_total", "verdict" => verdict).increment(1);
    tracing::info!(batch_no = %notice.batch_no, ?applied, "notification applied");
    Ok(SUCCESS)
}

/// Stores a notification that changes nothing and answers `fail`.
async fn refuse<'a>(
    s: &CallbackState,
    r: &mut Received<'a>,
    verdict: &'static str,
    why: &'a str,
    status: StatusCode,
) -> Result<Answer, sqlx::Error> {
    r.verdict = verdict;
    r.detail = Some(why);
    store::record(&s.pool, r).await?;
    tracing::warn!(verdict, why, batch_no = ?r.batch_no, "notification refused");
    metrics::counter!("refund_worker_notifications_total", "verdict" => verdict).increment(1);
    Ok((status, "fail"))
}
