//! The callback receiver (contract §5): `POST /alipay/notify` for
//! `batch_refund_notify` and `POST /alipay/dback-notify` for 充退 (and
//! `POST /alipay/openapi-notify` for the OpenAPI 充退 push). Both are
//! verified in the same steps — parse the raw body whatever its
//! Content-Type, find the partner key that verifies the signature, the batch,
//! the repeat check, then (optionally) `notify_verify` — and applied in one
//! transaction. Every notification is stored raw with its verdict, genuine
//! or not. `success` goes out only after the commit.

mod dback;
mod openapi_push;
mod refund_notify;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use tracing::Instrument;

use crate::alipay::client::{AlipayClient, NotifyVerify};
use crate::alipay::wire::notify::NotifyForm;
use crate::config::{OpenApiApp, Partner};
use crate::domain::item_outcome::ItemRetry;
use crate::storage::notifications::{self as store, Received};

/// What the receiver needs; cheap to clone.
#[derive(Clone)]
pub struct CallbackState {
    pub pool: PgPool,
    pub client: AlipayClient,
    pub partners: Vec<Partner>,
    pub verify_notify_id: bool,
    /// `ITEM_RETRY_BASE_MS`, `ITEM_RETRY_LIMIT`.
    pub item_retry: ItemRetry,
    /// The partners on the OpenAPI channel: their 充退 pushes.
    pub openapi_apps: Vec<OpenApiApp>,
}

/// `NOTIFY_MAX_BYTES`' default: a notification of 1000 items is about 60 KiB.
pub const DEFAULT_NOTIFY_MAX_BYTES: usize = 262_144;

/// The routes, separate from binding so tests serve them on port 0.
pub fn router(state: CallbackState) -> Router {
    router_with_limit(state, DEFAULT_NOTIFY_MAX_BYTES)
}

/// The same, refusing bodies above `max_bytes` with 413.
pub fn router_with_limit(state: CallbackState, max_bytes: usize) -> Router {
    Router::new()
        .route("/alipay/notify", post(notify))
        .route("/alipay/dback-notify", post(dback_notify))
        .route("/alipay/openapi-notify", post(openapi_notify))
        .layer(DefaultBodyLimit::max(max_bytes))
        .with_state(state)
}

/// The status and body Alipay reads.
type Answer = (StatusCode, &'static str);
const SUCCESS: Answer = (StatusCode::OK, "success");

/// Why handling stopped before the end: answered already (the notification
/// stored with its verdict), or the database failed and nothing was stored.
enum Stop {
    Answered(Answer),
    Db(sqlx::Error),
}

impl From<sqlx::Error> for Stop {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e)
    }
}

/// A step of handling: its value, or the reason to stop.
type Step<T> = Result<T, Stop>;

async fn notify(State(s): State<CallbackState>, headers: HeaderMap, body: Bytes) -> Answer {
    let content_type = content_type(&headers);
    let span = tracing::info_span!("notification", kind = "batch_refund", bytes = body.len());
    answer(
        refund_notify::handle(&s, content_type.as_deref(), &body)
            .instrument(span)
            .await,
    )
}

async fn dback_notify(State(s): State<CallbackState>, headers: HeaderMap, body: Bytes) -> Answer {
    let content_type = content_type(&headers);
    let span = tracing::info_span!("notification", kind = "dback", bytes = body.len());
    answer(
        dback::handle(&s, content_type.as_deref(), &body)
            .instrument(span)
            .await,
    )
}

async fn openapi_notify(State(s): State<CallbackState>, headers: HeaderMap, body: Bytes) -> Answer {
    let content_type = content_type(&headers);
    let span = tracing::info_span!("notification", kind = "openapi_dback", bytes = body.len());
    answer(
        openapi_push::handle(&s, content_type.as_deref(), &body)
            .instrument(span)
            .await,
    )
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A database error means nothing was stored: 503 `fail`, and Alipay resends.
fn answer(result: Step<Answer>) -> Answer {
    match result {
        Ok(answer) | Err(Stop::Answered(answer)) => answer,
        Err(Stop::Db(e)) => {
            tracing::warn!(error = %e, "cannot store a notification now; Alipay will resend");
            count("unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "fail")
        }
    }
}

fn count(verdict: &'static str) {
    metrics::counter!("refund_worker_notifications_total", "verdict" => verdict).increment(1);
}

/// The first steps shared by both kinds: the form parsed and its signature
/// verified by one configured partner's key. `batch_fields` name the
/// parameters that may hold the batch (the first present wins), kept with
/// the notification even when forged.
async fn parse_and_verify<'a>(
    s: &'a CallbackState,
    r: &mut Received<'a>,
    batch_fields: &[&str],
) -> Step<(NotifyForm, &'a Partner)> {
    let form = match NotifyForm::parse(r.raw_body) {
        Ok(f) => f,
        Err(e) => return refused(s, r, "malformed", e.to_string()).await,
    };
    r.batch_no = batch_fields
        .iter()
        .find_map(|f| form.get(f).filter(|v| !v.is_empty()))
        .map(str::to_owned);
    let Some(partner) = s
        .partners
        .iter()
        .find(|p| form.verify_signature(p.key.expose_secret()))
    else {
        r.notify_id = form.notify_id().map(str::to_owned);
        let why = "no configured partner's key verifies the signature";
        return refused(s, r, "forged", why.into()).await;
    };
    r.partner = Some(&partner.id);
    r.notify_id = form.notify_id().map(str::to_owned);
    Ok((form, partner))
}

/// The batch a notification names must exist and belong to the partner
/// whose key signed it. The value is the batch's status.
async fn check_batch(
    s: &CallbackState,
    r: &mut Received<'_>,
    partner: &Partner,
    batch_no: &str,
) -> Step<String> {
    r.batch_no = Some(batch_no.to_owned());
    let Some((batch_partner, status)) = store::batch(&s.pool, batch_no).await? else {
        r.verdict = "unknown_batch";
        r.detail = Some("no such batch_no".into());
        return Err(store_refusal(s, r, StatusCode::NOT_FOUND).await?);
    };
    if batch_partner != partner.id {
        let why = "signed by another partner than the batch's";
        return refused(s, r, "wrong_partner", why.into()).await;
    }
    Ok(status)
}

/// A notification already applied (or one for a completed batch): stored as
/// a repeat, answered `success`, nothing changed.
async fn repeat(s: &CallbackState, r: &mut Received<'_>) -> Step<Answer> {
    r.verdict = "repeat";
    store::record(&s.pool, r).await?;
    count("repeat");
    Ok(SUCCESS)
}

/// `notify_verify`, when configured.
async fn confirm_notify_id(
    s: &CallbackState,
    r: &mut Received<'_>,
    partner: &Partner,
    notify_id: &str,
) -> Step<()> {
    if !s.verify_notify_id {
        return Ok(());
    }
    match s.client.notify_verify(&partner.id, notify_id).await {
        Ok(NotifyVerify::Genuine) => Ok(()),
        Ok(NotifyVerify::NotGenuine) => {
            let why = "the gateway does not confirm this notify_id";
            refused(s, r, "unconfirmed", why.into()).await
        }
        // Our partner or parameters are wrong, not the notification: an
        // alarm for a person, and `fail` so that Alipay resends it once fixed.
        Ok(NotifyVerify::Invalid) => {
            tracing::error!(partner = %partner.id, "notify_verify answered invalid: our partner id or verification request is wrong; answering fail so Alipay resends once fixed");
            metrics::counter!("refund_worker_notify_verify_invalid_total").increment(1);
            r.verdict = "verify_invalid";
            r.detail = Some("notify_verify answered invalid: a configuration alarm".into());
            store::record(&s.pool, r).await?;
            count("verify_invalid");
            Err(Stop::Answered((StatusCode::SERVICE_UNAVAILABLE, "fail")))
        }
        Ok(NotifyVerify::Other(body)) => {
            tracing::warn!(
                body,
                "notify_verify answered something unknown; answering fail so Alipay resends"
            );
            r.verdict = "verify_failed";
            r.detail = Some(format!("notify_verify answered {body:?}"));
            store::record(&s.pool, r).await?;
            count("verify_failed");
            Err(Stop::Answered((StatusCode::SERVICE_UNAVAILABLE, "fail")))
        }
        Err(e) => {
            tracing::warn!(error = %e, "notify_verify failed; answering fail so Alipay resends");
            r.verdict = "verify_failed";
            r.detail = Some(e.to_string());
            store::record(&s.pool, r).await?;
            count("verify_failed");
            Err(Stop::Answered((StatusCode::SERVICE_UNAVAILABLE, "fail")))
        }
    }
}

/// Stores a notification that changes nothing and answers 400 `fail`.
async fn refused<T>(
    s: &CallbackState,
    r: &mut Received<'_>,
    verdict: &'static str,
    why: String,
) -> Step<T> {
    r.verdict = verdict;
    r.detail = Some(why);
    Err(store_refusal(s, r, StatusCode::BAD_REQUEST).await?)
}

/// Stores a refused notification; the value is the answer to give.
async fn store_refusal(s: &CallbackState, r: &Received<'_>, status: StatusCode) -> Step<Stop> {
    store::record(&s.pool, r).await?;
    tracing::warn!(kind = r.kind, verdict = r.verdict, why = ?r.detail, batch_no = ?r.batch_no, "notification refused");
    count(r.verdict);
    Ok(Stop::Answered((status, "fail")))
}
