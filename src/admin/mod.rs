//! The operator page (`ADMIN_LISTEN`, off by default): batches awaiting an
//! operator with a button that opens their password form, dead letters by
//! code with replay buttons, and a search by refund id. Plain server-rendered
//! HTML, no build step, no script. Every request but `/login` needs an
//! operator (a bearer token or a session), every changing form of a session
//! its CSRF field; every change is logged with the operator's name.
//!
//! - `auth`: who is asking (bearer token, session cookie) and the CSRF check
//! - `roster`: the operators and their tokens' digests
//! - `session`: the signed session cookie and the CSRF field bound to it
//! - `limit`: how fast tokens may be guessed
//! - `headers`: the Content-Security-Policy and the other security headers
//! - `sign_in`: `/login` and `/logout`
//! - `browse`: the pages that only read
//! - `actions`: the changes (replay a dead letter, open a password form)
//! - `pages`: the HTML (pure)
//! - `dead_letters`: the dead-letter queue as the page sees it

mod actions;
mod auth;
mod browse;
mod dead_letters;
mod headers;
mod limit;
pub(crate) mod pages;
mod roster;
mod session;
mod sign_in;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use sqlx::PgPool;

use crate::config::{AdminSettings, Settings};
use auth::{Access, Denied};
use limit::SignInLimit;

/// What the page needs; cheap to clone.
#[derive(Clone)]
pub struct AdminState {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
    access: Arc<Access>,
    limit: Arc<SignInLimit>,
}

impl AdminState {
    /// The page's state for these operators, with a new random session key:
    /// sessions of an earlier start end.
    pub fn new(pool: PgPool, settings: Arc<Settings>, admin: &AdminSettings) -> Self {
        Self {
            pool,
            settings,
            access: Arc::new(Access::new(admin)),
            limit: Arc::new(SignInLimit::default()),
        }
    }
}

/// The routes, separate from binding so tests serve them on port 0. Serve
/// them with `into_make_service_with_connect_info::<SocketAddr>()`: the
/// sign-in limit counts by client address.
pub fn router(state: AdminState) -> Router {
    let guarded = Router::new()
        .route("/", get(browse::overview))
        .route("/refunds", get(browse::refund))
        .route("/batches/{batch_no}/form", post(actions::batch_form))
        .route("/dlq/replay", post(actions::replay))
        .route("/logout", post(sign_in::logout))
        .route_layer(middleware::from_fn_with_state(state.clone(), require));
    Router::new()
        .route("/login", get(sign_in::page).post(sign_in::login))
        .merge(guarded)
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found") })
        .layer(middleware::map_response(headers::harden))
        .with_state(state)
}

/// The operator of a request, or its refusal; for a session's POST also its
/// CSRF field, before the handler sees the request.
async fn require(State(s): State<AdminState>, req: Request, next: Next) -> Response {
    let bearer = req.headers().contains_key(header::AUTHORIZATION);
    let client = client(&req);
    if bearer && let Err(wait) = s.limit.check(client) {
        return sign_in::too_many(wait);
    }
    let who = match s.access.identify(req.headers(), unix_now()) {
        Ok(who) => who,
        Err(Denied::Nothing) => return refused(),
        Err(Denied::WrongToken) => {
            tracing::warn!(%client, "operator page: a request with a wrong bearer token");
            s.limit.failed(client);
            return refused();
        }
        Err(Denied::Cookie(why)) => {
            tracing::info!(%client, %why, "operator page: a session cookie refused");
            return sign_in::session_ended(&s.access);
        }
        Err(Denied::SignedOut) => return sign_in::session_ended(&s.access),
    };
    let mut req = if req.method() == Method::POST {
        match with_csrf_checked(&s.access, &who, req).await {
            Ok(req) => req,
            Err(refusal) => return refusal,
        }
    } else {
        req
    };
    req.extensions_mut().insert(who);
    next.run(req).await
}

/// Bodies of the page's forms are small.
const FORM_LIMIT: usize = 64 * 1024;

/// The request again if its `csrf` form field is the session's (a bearer
/// request needs none); else 403.
async fn with_csrf_checked(
    access: &Access,
    who: &auth::Signed,
    req: Request,
) -> Result<Request, Response> {
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response())?;
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    let given = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str());
    if !access.csrf_ok(who, given) {
        tracing::warn!(operator = %who.name, path = %parts.uri.path(), "operator page: a form without its session's csrf field");
        return Err((StatusCode::FORBIDDEN, "missing or wrong csrf field").into_response());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// What a request without a credential gets.
fn refused() -> Response {
    (StatusCode::UNAUTHORIZED, Html(pages::refused())).into_response()
}

/// The TCP peer's address of a request.
fn client(req: &Request) -> IpAddr {
    peer_ip(req.extensions().get::<ConnectInfo<SocketAddr>>())
}

/// The TCP peer's address; when the router is served without connect info,
/// one address stands for every client (so the limit still holds).
fn peer_ip(peer: Option<&ConnectInfo<SocketAddr>>) -> IpAddr {
    peer.map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |c| c.0.ip())
}

/// Seconds since the Unix epoch (0 if the clock is before it).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %e, "operator page: the database is unavailable");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the database is unavailable; try again",
    )
        .into_response()
}
