//! The OpenAPI methods' thin I/O shell: a call checked, the ledger and the
//! fault script consulted under the sandbox's one lock, the answer signed
//! and sent; and the route that sends a 充退 push.
//!
//! Invariants: the fault a refund call meets, the rates' draws and the
//! ledger's verdict are taken under one lock, never across an `.await`, so
//! no refund moves money twice and a seed replays; a fault "after refund"
//! changes only the answer, never the books; `Http503` and `Refuse` reach
//! no ledger. Every answer is HTTP 200 JSON except an injected 503.

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;

use super::answer::{CONTENT_TYPE, ERROR_RESPONSE, Failure, Signing, envelope, response_key};
use super::checks::{Call, Method, check_call};
use super::config::OpenApiFault;
use super::push::depositback_form;
use super::{query, refund, script};
use crate::alipay::wire::batch_no::beijing_now;
use crate::alipay::wire::form;
use crate::sandbox::{Inner, Sandbox};

/// Answers an OpenAPI call (a form with `method` and no `service`).
pub async fn handle(sandbox: &Sandbox, params: &[(String, String)]) -> Response {
    let config = sandbox.config();
    let call = match check_call(params, &config.openapi_apps, config.alipay_key.is_some()) {
        Ok(call) => call,
        Err(failure) => {
            sandbox.lock().openapi.ledger.calls_mut().refused += 1;
            tracing::info!(code = failure.code, sub_code = %failure.sub_code, sub_msg = %failure.sub_msg, "OpenAPI call refused");
            return reply(sandbox, ERROR_RESPONSE, &failure.to_json(), Signing::Proper);
        }
    };
    match call.method {
        Method::Refund => refund(sandbox, &call).await,
        Method::Query => query(sandbox, &call),
    }
}

/// `alipay.trade.refund`: the script or the rates, then the ledger, then
/// the answer as the fault shapes it.
async fn refund(sandbox: &Sandbox, call: &Call<'_>) -> Response {
    let key = response_key(call.method.name());
    let ask = match refund::parse_biz(&call.app.app_id, call.biz_content) {
        Ok(ask) => ask,
        Err(failure) => {
            sandbox.lock().openapi.ledger.calls_mut().refund += 1;
            return reply(sandbox, &key, &failure.to_json(), Signing::Proper);
        }
    };
    let (trade_no, out_request_no) = (ask.trade_no.clone(), ask.out_request_no.clone());
    let now = beijing_now(Utc::now());
    let (fault, verdict) = {
        let mut inner = sandbox.lock();
        let Inner { rng, openapi, .. } = &mut *inner;
        openapi.ledger.calls_mut().refund += 1;
        let faults = &sandbox.config().openapi_faults;
        let fault = script::refund_fault(&mut openapi.script, rng, faults, &trade_no);
        let verdict = match &fault {
            Some(OpenApiFault::Http503) => None,
            Some(OpenApiFault::Refuse { sub_code }) => {
                Some(Err(Failure::business(sub_code, "injected refusal")))
            }
            _ => Some(
                openapi
                    .ledger
                    .refund(ask, now)
                    .map_err(|r| refund::refused(&r)),
            ),
        };
        (fault, verdict)
    };
    let Some(verdict) = verdict else {
        tracing::info!(%trade_no, %out_request_no, "injected: OpenAPI refund answered HTTP 503, nothing refunded");
        return (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response();
    };
    let mut value = match &verdict {
        Ok(done) => {
            tracing::info!(%trade_no, %out_request_no, fund_change = done.fund_change, "OpenAPI refund");
            refund::done_json(done)
        }
        Err(failure) => {
            tracing::info!(%trade_no, %out_request_no, sub_code = %failure.sub_code, "OpenAPI refund refused");
            failure.to_json()
        }
    };
    let mut signing = Signing::Proper;
    match fault {
        Some(OpenApiFault::TimeoutAfterRefund { hold }) => {
            tracing::info!(%trade_no, %out_request_no, hold_ms = hold.as_millis() as u64, "injected: holding the OpenAPI refund's answer");
            if !sandbox.sleep(hold).await {
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        }
        Some(OpenApiFault::UnavailableAfterRefund) => {
            tracing::info!(%trade_no, %out_request_no, "injected: OpenAPI refund answered 20000");
            value = Failure::unavailable().to_json();
        }
        Some(OpenApiFault::BadSignatureAfterRefund) => {
            tracing::info!(%trade_no, %out_request_no, "injected: OpenAPI refund answered with a bad signature");
            signing = Signing::Forged;
        }
        Some(OpenApiFault::Refuse { .. } | OpenApiFault::Http503) | None => {}
    }
    reply(sandbox, &key, &value, signing)
}

/// `alipay.trade.fastpay.refund.query`: the ledger, unless lag hides it.
fn query(sandbox: &Sandbox, call: &Call<'_>) -> Response {
    let key = response_key(call.method.name());
    let parsed = query::parse_biz(call.biz_content);
    let value = {
        let mut inner = sandbox.lock();
        let openapi = &mut inner.openapi;
        openapi.ledger.calls_mut().query += 1;
        match &parsed {
            Err(failure) => failure.to_json(),
            Ok(ask) => {
                let found = if openapi.script.lags_query(&ask.trade_no) {
                    tracing::info!(trade_no = %ask.trade_no, "injected: OpenAPI query lags, no data");
                    None
                } else {
                    openapi.ledger.query(&ask.trade_no, &ask.out_request_no)
                };
                query::answer_json(ask, found.as_ref())
            }
        }
    };
    reply(sandbox, &key, &value, Signing::Proper)
}

/// The JSON body, signed when the sandbox has a key; HTTP 500 only if
/// signing with a parsed key fails, which it should not.
fn reply(sandbox: &Sandbox, key: &str, value: &str, signing: Signing) -> Response {
    match envelope(key, value, sandbox.config().alipay_key.as_deref(), signing) {
        Ok(body) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot sign an OpenAPI answer");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot sign the answer").into_response()
        }
    }
}

/// The query of `POST /sandbox/openapi/depositback`.
#[derive(Debug, Deserialize)]
pub struct DepositBackParams {
    trade_no: String,
    out_request_no: String,
    /// `S` or `F`.
    status: String,
    notify_url: String,
}

/// `POST /sandbox/openapi/depositback?trade_no=…&out_request_no=…&status=S|F&notify_url=…`:
/// records the 充退 status of a refund made and POSTs the signed push;
/// answers with the receiver's status and body.
pub async fn depositback(
    State(sandbox): State<Sandbox>,
    Query(p): Query<DepositBackParams>,
) -> Response {
    if p.status != "S" && p.status != "F" {
        return (StatusCode::BAD_REQUEST, "status is S or F\n").into_response();
    }
    let Some(key) = sandbox.config().alipay_key.clone() else {
        return (
            StatusCode::CONFLICT,
            "the sandbox has no Alipay key to sign a push with (--alipay-private-key-file)\n",
        )
            .into_response();
    };
    let facts = {
        let mut inner = sandbox.lock();
        let facts = inner
            .openapi
            .ledger
            .set_dback(&p.trade_no, &p.out_request_no, &p.status);
        if facts.is_some() {
            inner.openapi.ledger.calls_mut().depositback_pushes += 1;
        }
        facts
    };
    let Some(facts) = facts else {
        let text = format!(
            "no OpenAPI refund {} of trade {} was made\n",
            p.out_request_no, p.trade_no
        );
        return (StatusCode::NOT_FOUND, text).into_response();
    };
    let notify_id = uuid::Uuid::new_v4().simple().to_string();
    let params = match depositback_form(&facts, &notify_id, Utc::now(), &key) {
        Ok(params) => params,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    };
    let sent = sandbox
        .shared
        .client
        .post(&p.notify_url)
        .header(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(form::encode(&params))
        .send()
        .await;
    let answered = match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            response.text().await.map(|text| (status, text))
        }
        Err(e) => Err(e),
    };
    match answered {
        Ok((status, text)) => {
            tracing::info!(trade_no = %p.trade_no, out_request_no = %p.out_request_no, %notify_id, status, "充退 push sent");
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            (status, text).into_response()
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("the push did not reach {}: {e}\n", p.notify_url),
        )
            .into_response(),
    }
}

impl Sandbox {
    /// How often the money of an OpenAPI refund moved (0 if it never did).
    pub fn openapi_times_paid(&self, trade_no: &str, out_request_no: &str) -> u32 {
        self.lock()
            .openapi
            .ledger
            .times_paid(trade_no, out_request_no)
    }
}
