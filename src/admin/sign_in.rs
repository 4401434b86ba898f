//! `/login` and `/logout`: a token typed in becomes a session cookie (within
//! the sign-in limit), and signing out clears it.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Extension;
use axum::extract::{ConnectInfo, Form, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::auth::{Access, Signed};
use super::{AdminState, pages, peer_ip, unix_now};

pub async fn page() -> Html<String> {
    Html(pages::login(None))
}

#[derive(Deserialize)]
pub struct Login {
    token: String,
}

pub async fn login(
    State(s): State<AdminState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Form(f): Form<Login>,
) -> Response {
    let client = peer_ip(peer.as_ref().map(|p| &p.0));
    if let Err(wait) = s.limit.check(client) {
        tracing::warn!(%client, "operator page: sign-in refused, too many wrong tokens");
        return too_many(wait);
    }
    let Some(name) = s.access.sign_in(&f.token) else {
        tracing::warn!(%client, "operator page: a sign-in with a wrong token");
        s.limit.failed(client);
        return (
            StatusCode::UNAUTHORIZED,
            Html(pages::login(Some("That is not an operator token."))),
        )
            .into_response();
    };
    let nonce: [u8; 16] = rand::random();
    let Some(cookie) = s.access.session_cookie(name, unix_now(), &nonce) else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "no such operator").into_response();
    };
    tracing::info!(operator = %name, %client, "operator page: signed in");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

/// Ends the session and clears its cookie (the CSRF field was checked on
/// the way in).
pub async fn logout(State(s): State<AdminState>, Extension(who): Extension<Signed>) -> Response {
    s.access.sign_out(&who, unix_now());
    tracing::info!(operator = %who.name, "operator page: signed out");
    (
        [(header::SET_COOKIE, s.access.cleared_cookie())],
        Redirect::to("/login"),
    )
        .into_response()
}

/// A cookie that is no session (expired, forged, of an earlier start):
/// the sign-in page, and the cookie cleared.
pub fn session_ended(access: &Access) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::SET_COOKIE, access.cleared_cookie())],
        Html(pages::login(Some("Your session has ended; sign in again."))),
    )
        .into_response()
}

/// Over the sign-in limit: 429 and when to try again.
pub fn too_many(wait: Duration) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, wait.as_secs().to_string())],
        Html(pages::login(Some(&format!(
            "Too many wrong tokens; try again in {} s.",
            wait.as_secs()
        )))),
    )
        .into_response()
}
