//! The operator page (`ADMIN_LISTEN`, off by default): batches awaiting an
//! operator with a button that opens their password form, dead letters by
//! code with replay buttons, and a search by refund id. Plain server-rendered
//! HTML, no build step; every request needs the credential of `auth`, every
//! changing form its CSRF field.
//!
//! - `auth`: the bearer token, the session cookie, the CSRF field
//! - `pages`: the HTML (pure)
//! - `dead_letters`: the dead-letter queue as the page sees it

mod auth;
mod dead_letters;
pub(crate) mod pages;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sqlx::PgPool;

use crate::config::Settings;
use crate::storage;

/// What the page needs; cheap to clone.
#[derive(Clone)]
pub struct AdminState {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
    pub token: SecretString,
}

/// The routes, separate from binding so tests serve them on port 0.
pub fn router(state: AdminState) -> Router {
    let guarded = Router::new()
        .route("/", get(overview))
        .route("/refunds", get(refund))
        .route("/batches/{batch_no}/form", post(batch_form))
        .route("/dlq/replay", post(replay))
        .route_layer(middleware::from_fn_with_state(state.clone(), require));
    Router::new()
        .route("/login", get(login_page).post(login))
        .merge(guarded)
        .with_state(state)
}

async fn require(State(s): State<AdminState>, req: Request, next: Next) -> Response {
    if auth::authorized(req.headers(), s.token.expose_secret()) {
        next.run(req).await
    } else {
        (StatusCode::UNAUTHORIZED, Html(pages::refused())).into_response()
    }
}

async fn login_page() -> Html<String> {
    Html(pages::login(None))
}

#[derive(Deserialize)]
struct Login {
    token: String,
}

async fn login(State(s): State<AdminState>, Form(f): Form<Login>) -> Response {
    let token = s.token.expose_secret();
    if !auth::same(f.token.trim(), token) {
        tracing::warn!("operator page: a sign-in with a wrong token");
        return (
            StatusCode::UNAUTHORIZED,
            Html(pages::login(Some("That is not the admin token."))),
        )
            .into_response();
    }
    let cookie = format!(
        "{}={}; HttpOnly; SameSite=Strict; Path=/",
        auth::COOKIE,
        auth::session(token)
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

#[derive(Deserialize)]
struct Flash {
    flash: Option<String>,
}

async fn overview(State(s): State<AdminState>, Query(q): Query<Flash>) -> Response {
    let awaiting = match storage::batch_view::list(&s.pool, Some("awaiting_operator"), 200).await {
        Ok(b) => b,
        Err(e) => return unavailable(e),
    };
    let (open, held, suspects) = match tokio::try_join!(
        storage::attention::open_items(&s.pool, 200),
        storage::attention::held(&s.pool, 200),
        storage::attention::all_suspects(&s.pool, 200)
    ) {
        Ok(both) => both,
        Err(e) => return unavailable(e),
    };
    let dead = dead_letters::list(&s.settings).await;
    let csrf = auth::csrf(s.token.expose_secret());
    let viewer = pages::Viewer {
        name: "admin",
        csrf: &csrf,
    };
    Html(pages::overview(
        &viewer,
        q.flash.as_deref(),
        &pages::Attention {
            open: &open,
            held: &held,
            suspects: &suspects,
        },
        &awaiting,
        dead.as_deref().map_err(String::as_str),
    ))
    .into_response()
}

#[derive(Deserialize)]
struct RefundQuery {
    id: String,
}

async fn refund(State(s): State<AdminState>, Query(q): Query<RefundQuery>) -> Response {
    match storage::refunds::find(&s.pool, q.id.trim()).await {
        Ok(view) => {
            let status = if view.is_some() {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            (status, Html(pages::refund(q.id.trim(), view.as_ref()))).into_response()
        }
        Err(e) => unavailable(e),
    }
}

#[derive(Deserialize)]
struct Changing {
    csrf: String,
    id: Option<String>,
}

fn csrf_ok(s: &AdminState, f: &Changing) -> bool {
    auth::same(&f.csrf, &auth::csrf(s.token.expose_secret()))
}

async fn batch_form(
    State(s): State<AdminState>,
    Path(batch_no): Path<String>,
    Form(f): Form<Changing>,
) -> Response {
    if !csrf_ok(&s, &f) {
        return (StatusCode::FORBIDDEN, "missing or wrong csrf field").into_response();
    }
    match crate::operator::password_form(&s.pool, &s.settings, &batch_no).await {
        Ok(Ok(html)) => {
            tracing::info!(%batch_no, "operator page: password form opened");
            Html(html).into_response()
        }
        Ok(Err(why)) => (StatusCode::CONFLICT, why.to_string()).into_response(),
        Err(e) => unavailable(e),
    }
}

async fn replay(State(s): State<AdminState>, Form(f): Form<Changing>) -> Response {
    if !csrf_ok(&s, &f) {
        return (StatusCode::FORBIDDEN, "missing or wrong csrf field").into_response();
    }
    let Some(id) = f.id.filter(|i| !i.is_empty()) else {
        return (StatusCode::BAD_REQUEST, "which dead letter? (id)").into_response();
    };
    let flash = match dead_letters::replay(&s.settings, &id).await {
        Ok(what) => what,
        Err(why) => format!("{id} not replayed: {why}"),
    };
    tracing::info!(message_id = %id, %flash, "operator page: replay");
    let query = serde_urlencoded::to_string([("flash", flash)]).unwrap_or_default();
    Redirect::to(&format!("/?{query}")).into_response()
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %e, "operator page: the database is unavailable");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the database is unavailable; try again",
    )
        .into_response()
}
