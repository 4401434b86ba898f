//! `POST /alipay/openapi-notify`: the OpenAPI 充退 push
//! (`alipay.trade.refund.depositback.completed`) becomes the same
//! `refund.bank_returned` event as the mapi 充退 notification.
//!
//! Checked in this order (contract §5): a signature that no configured
//! app's Alipay public key verifies → `fail`, 400; a verified push that
//! names no request we sent → `fail`, 404; a push whose request and status
//! were applied before → `success`, nothing changed; otherwise applied, then `success` once
//! durable. A verified push we cannot read, or one not final yet, is kept
//! and answered `success` with no event. Every push is stored raw with its
//! verdict.

use super::{Answer, CallbackState, SUCCESS, Step, count, refused, repeat, store_refusal};
use crate::alipay::openapi::push::{self, PushError};
use crate::alipay::wire::notify::NotifyForm;
use crate::config::OpenApiApp;
use crate::storage::bank_returns::{self, BankReturn};
use crate::storage::notifications::{self as store, Received};
use axum::http::StatusCode;

const KIND: &str = "openapi_dback";

pub(super) async fn handle(
    s: &CallbackState,
    content_type: Option<&str>,
    body: &[u8],
) -> Step<Answer> {
    let mut r = Received::new(KIND, content_type, body);
    let form = match NotifyForm::parse(body) {
        Ok(f) => f,
        Err(e) => return refused(s, &mut r, "malformed", e.to_string()).await,
    };
    r.notify_id = form.notify_id().map(str::to_owned);
    // The app the push names, else any app whose Alipay key verifies it.
    let named = form.get("app_id").unwrap_or_default();
    let candidates: Vec<&OpenApiApp> = match s.openapi_apps.iter().find(|a| a.app_id == named) {
        Some(app) => vec![app],
        None => s.openapi_apps.iter().collect(),
    };
    let mut read = Err(PushError::Forged);
    let mut signer = None;
    for app in candidates {
        read = push::read(&form, &app.alipay_public);
        if !matches!(read, Err(PushError::Forged | PushError::Unsigned)) {
            signer = Some(app);
            break;
        }
    }
    let Some(app) = signer else {
        let why = "no configured app's Alipay public key verifies the signature";
        return refused(s, &mut r, "forged", why.into()).await;
    };
    r.partner = Some(&app.partner);
    let pushed = match read {
        Ok(p) => p,
        // Genuine, but not a final status we can read: kept, no event.
        Err(e) => {
            r.verdict = "unreadable";
            r.detail = Some(e.to_string());
            store::record(&s.pool, &r).await?;
            count("unreadable");
            tracing::warn!(why = %e, "a verified OpenAPI push was kept without an event");
            return Ok(SUCCESS);
        }
    };
    let Some(refund_id) =
        bank_returns::refund_of_request(&s.pool, &app.app_id, &pushed.out_request_no).await?
    else {
        r.verdict = "unknown_refund";
        r.detail = Some(format!(
            "no request {:?} of app {}",
            pushed.out_request_no, app.app_id
        ));
        return Err(store_refusal(s, &r, StatusCode::NOT_FOUND).await?);
    };
    // A final 充退 status happens once per request: the request and status,
    // not Alipay's notify_id (new on each resend of some pushes), are what a
    // repeat shares. Alipay's notify_id is kept in the detail.
    let status = if pushed.succeeded { "S" } else { "F" };
    let notify_id = format!("{}:{status}", pushed.out_request_no);
    r.detail = r.notify_id.as_ref().map(|n| format!("notify_id {n}"));
    r.notify_id = Some(notify_id.clone());
    if store::applied_before(&s.pool, KIND, &notify_id).await? {
        return repeat(s, &mut r).await;
    }
    let event = if pushed.succeeded {
        BankReturn::SUCCEEDED
    } else {
        BankReturn::FAILED
    };
    r.verdict = "applied";
    if !bank_returns::apply(&s.pool, &r, &refund_id, Some(&event)).await? {
        return repeat(s, &mut r).await;
    }
    count("applied");
    tracing::info!(%refund_id, out_request_no = %pushed.out_request_no, status, "OpenAPI 充退 push applied");
    Ok(SUCCESS)
}
