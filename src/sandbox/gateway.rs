//! The HTTP routes: `/gateway.do`, `/sandbox/approve`,
//! `/sandbox/openapi/depositback` and `/ledger`.
//!
//! Owns reading requests the way Alipay does and choosing the answer. The
//! body is read as raw bytes and decoded as a UTF-8 form whatever its
//! Content-Type; when it is empty (a GET), the URL's query is the request.
//! A form with a `method` and no `service` is an OpenAPI call and goes to
//! `openapi`, before any mapi fault is drawn (it meets only the OpenAPI
//! faults). Invariant: injected faults (and the realistic cases of the request) are
//! drawn before anything else, so the sequence of draws depends only on the
//! sequence of requests; a batch answered 503 or an injected `SYSTEM_ERROR`
//! is never recorded, one answered 429 or 403 after accepting always is, and
//! so is a lagged one (answered `SYSTEM_ERROR` at once, whatever else was
//! drawn for the request: see `lag`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;

use super::Sandbox;
use super::answers::{self, Shape};
use super::checks::{self, Service, param};
use super::faults::{RequestFaults, draw_request};
use super::items;
use super::ledger::ApproveError;
use super::openapi;
use super::realism::{RequestRealism, draw_request as draw_request_realism, draw_shapes};
use super::refusal::{Code, Refusal};
use crate::alipay::wire::batch_no::beijing_now;
use crate::alipay::wire::form;
use crate::alipay::wire::pwd_form::PWD_SERVICE;
use crate::alipay::wire::request::QUERY_SERVICE;

/// The unsigned service that confirms a notification is genuine.
const NOTIFY_VERIFY: &str = "notify_verify";

/// The sandbox's routes, separate from binding so tests can serve them anywhere.
pub fn router(state: Sandbox) -> Router {
    Router::new()
        .route("/gateway.do", get(gateway).post(gateway))
        .route("/sandbox/approve", post(approve))
        .route(
            "/sandbox/openapi/depositback",
            post(openapi::serve::depositback),
        )
        .route("/ledger", get(ledger))
        .with_state(state)
}

async fn gateway(
    State(sandbox): State<Sandbox>,
    RawQuery(url_query): RawQuery,
    body: Bytes,
) -> Response {
    // A URL query that does not decode has no charset Alipay could read.
    let url_params = form::decode(url_query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let params = if body.is_empty() {
        Ok(url_params.clone())
    } else {
        form::decode(&body)
    };
    if let Ok(params) = &params
        && openapi::checks::is_openapi(params)
    {
        return openapi::serve::handle(&sandbox, params).await;
    }
    let (faults, realism) = sandbox.draw_request_faults();
    if let Some(latency) = faults.latency
        && !sandbox.sleep(latency).await
    {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if faults.http_5xx {
        tracing::info!("injected HTTP 503");
        return (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response();
    }
    let shape = match params.as_ref().ok().and_then(|p| param(p, "service")) {
        Some(NOTIFY_VERIFY) => {
            return notify_verify(&sandbox, params.as_deref().unwrap_or_default());
        }
        Some(QUERY_SERVICE) => Shape::Form,
        Some(PWD_SERVICE) => Shape::Html,
        _ => Shape::Xml,
    };
    let params = match params {
        Ok(params) => params,
        // Alipay would decode lossily and then fail the signature, so the
        // sandbox answers what Alipay would.
        Err(e) => return refuse(shape, Refusal::new(Code::IllegalSign, e.to_string())),
    };
    if faults.system_error {
        return refuse(shape, Refusal::new(Code::SystemError, "injected"));
    }
    let url_charset = param(&url_params, "_input_charset");
    let signed = match checks::check_signed(&params, url_charset, sandbox.config()) {
        Ok(signed) => signed,
        Err(refusal) => return refuse(shape, refusal),
    };
    match signed.service {
        Service::Query => query(&sandbox, &params, &signed.partner, realism),
        Service::Nopwd | Service::Pwd => batch(&sandbox, &params, &signed, faults, realism).await,
    }
}

/// `refund_fastpay_by_platform_nopwd` and `_pwd`: check, record, process, answer.
async fn batch(
    sandbox: &Sandbox,
    params: &[(String, String)],
    signed: &checks::Signed,
    faults: RequestFaults,
    realism: RequestRealism,
) -> Response {
    let pwd = signed.service == Service::Pwd;
    let shape = if pwd { Shape::Html } else { Shape::Xml };
    let today = beijing_now(Utc::now()).date();
    let request = match checks::check_batch(params, signed, sandbox.config(), today) {
        Ok(request) => request,
        Err(refusal) => return refuse(shape, refusal),
    };
    let batch_no = request.batch_no.clone();
    if let Some(seed) = realism.lagged.filter(|_| !pwd) {
        return match sandbox.accept_lagged(request, seed) {
            Ok(lagged) => {
                let lag_ms = lagged.after.as_millis() as u64;
                tracing::info!(%batch_no, partner = %signed.partner, lag_ms, "injected: batch taken into the backlog, answered SYSTEM_ERROR");
                sandbox.end_lag_later(lagged);
                refuse(shape, Refusal::new(Code::SystemError, "lagged (injected)"))
            }
            Err(refusal) => refuse(shape, refusal),
        };
    }
    let awaiting_password = pwd && !sandbox.config().auto_approve_pwd;
    match sandbox.accept(request, awaiting_password) {
        Ok(job) => sandbox.send(job),
        Err(refusal) => return refuse(shape, refusal),
    }
    tracing::info!(%batch_no, partner = %signed.partner, service = signed.service.name(), "batch accepted");
    if let Some(status) = realism.accepted_then_4xx.filter(|_| !pwd) {
        sandbox.lock().realism.counts.accepted_then_4xx += 1;
        tracing::info!(%batch_no, status, "injected: a proxy answers 4xx after the batch was accepted");
        return answers::proxy_refusal(status);
    }
    if pwd {
        return answers::html(if awaiting_password {
            answers::pwd_waiting(&batch_no)
        } else {
            answers::pwd_approved(&batch_no)
        });
    }
    if let Some(hold) = faults.hold_after_accept {
        tracing::info!(%batch_no, hold_ms = hold.as_millis() as u64, "injected: holding the answer to an accepted batch");
        if !sandbox.sleep(hold).await {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    }
    answers::xml(if faults.processing {
        answers::xml_processing()
    } else {
        answers::xml_accepted()
    })
}

/// `refund_fastpay_query`: the ledger's refunds of this partner that match,
/// each row in its drawn shape; or, when drawn, `F SYSTEM_ERROR` in XML.
fn query(
    sandbox: &Sandbox,
    params: &[(String, String)],
    partner: &str,
    realism: RequestRealism,
) -> Response {
    if let Some(charset) = realism.xml_query_error {
        sandbox.lock().realism.counts.xml_query_errors += 1;
        tracing::info!(
            charset = charset.label(),
            "injected: a query answered in XML"
        );
        return answers::xml_in(charset);
    }
    let key = match checks::check_query(params) {
        Ok(key) => key,
        Err(refusal) => return refuse(Shape::Form, refusal),
    };
    let mut inner = sandbox.lock();
    let rows = inner.ledger.query(partner, &key);
    if rows.is_empty() {
        drop(inner);
        return refuse(
            Shape::Form,
            Refusal::new(Code::RefundNotExist, format!("nothing for {key:?}")),
        );
    }
    let super::Inner {
        rng, realism: book, ..
    } = &mut *inner;
    let shapes = draw_shapes(rng, &sandbox.config().realism, rows.len());
    let lines: Vec<_> = rows.iter().map(|r| r.line.clone()).collect();
    book.counts.add_shapes(items::tally(&lines, &shapes));
    drop(inner);
    answers::text(answers::query_found(&rows, &shapes, partner))
}

/// `notify_verify`: unsigned; `true` only for a notification sent to this partner.
fn notify_verify(sandbox: &Sandbox, params: &[(String, String)]) -> Response {
    let partner = param(params, "partner").unwrap_or_default();
    let notify_id = param(params, "notify_id").unwrap_or_default();
    let genuine = sandbox.lock().ledger.is_genuine(partner, notify_id);
    answers::text(genuine.to_string())
}

/// Logs a refusal and answers it in the service's shape.
fn refuse(shape: Shape, refusal: Refusal) -> Response {
    tracing::info!(code = %refusal.code, detail = %refusal.detail, "request refused");
    answers::refused(shape, refusal.code)
}

#[derive(Debug, Deserialize)]
struct ApproveParams {
    batch_no: String,
    partner: Option<String>,
}

/// `POST /sandbox/approve?batch_no=…[&partner=…]`: the operator typed the password.
async fn approve(State(sandbox): State<Sandbox>, Query(p): Query<ApproveParams>) -> Response {
    match sandbox.approve(p.partner.as_deref(), &p.batch_no) {
        Ok(job) => {
            sandbox.send(job);
            tracing::info!(batch_no = %p.batch_no, "password batch approved");
            (StatusCode::OK, format!("approved {}\n", p.batch_no)).into_response()
        }
        Err(e) => {
            let status = match e {
                ApproveError::Unknown(_) => StatusCode::NOT_FOUND,
                ApproveError::Ambiguous(_) | ApproveError::NotWaiting(_) => StatusCode::CONFLICT,
            };
            (status, format!("{e}\n")).into_response()
        }
    }
}

/// `GET /ledger`.
async fn ledger(State(sandbox): State<Sandbox>) -> Response {
    axum::Json(sandbox.ledger()).into_response()
}

impl Sandbox {
    fn draw_request_faults(&self) -> (RequestFaults, RequestRealism) {
        let mut inner = self.lock();
        let faults = draw_request(&mut inner.rng, &self.shared.config.faults);
        let realism = draw_request_realism(&mut inner.rng, &self.shared.config.realism);
        (faults, realism)
    }

    /// Sleeps in real time unless the sandbox stops; true when it slept it all.
    pub(super) async fn sleep(&self, wait: std::time::Duration) -> bool {
        tokio::select! {
            _ = self.shared.stop.cancelled() => false,
            _ = tokio::time::sleep(wait) => true,
        }
    }
}
