//! The changes an operator makes on the page, each logged with their name:
//! replaying a dead letter, and opening a batch's password form (which marks
//! the form printed: from then on the reconciler asks Alipay about it). The
//! session's CSRF field was checked before these run.

use axum::Extension;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::auth::Signed;
use super::headers::password_form_csp;
use super::{AdminState, dead_letters, unavailable};

#[derive(Deserialize)]
pub struct Replay {
    id: Option<String>,
}

pub async fn replay(
    State(s): State<AdminState>,
    Extension(who): Extension<Signed>,
    Form(f): Form<Replay>,
) -> Response {
    let Some(id) = f.id.filter(|i| !i.is_empty()) else {
        return (StatusCode::BAD_REQUEST, "which dead letter? (id)").into_response();
    };
    let (replayed, flash) = match dead_letters::replay(&s.settings, &id).await {
        Ok(what) => (true, what),
        Err(why) => (false, format!("{id} not replayed: {why}")),
    };
    tracing::info!(operator = %who.name, message_id = %id, replayed, %flash, "operator page: replay");
    let query = serde_urlencoded::to_string([("flash", flash)]).unwrap_or_default();
    Redirect::to(&format!("/?{query}")).into_response()
}

pub async fn batch_form(
    State(s): State<AdminState>,
    Extension(who): Extension<Signed>,
    Path(batch_no): Path<String>,
) -> Response {
    match crate::operator::password_form(&s.pool, &s.settings, &batch_no).await {
        Ok(Ok(html)) => {
            tracing::info!(operator = %who.name, %batch_no, "operator page: password form opened");
            let csp = password_form_csp(&s.settings.alipay.gateway);
            match HeaderValue::from_str(&csp) {
                Ok(csp) => ([(header::CONTENT_SECURITY_POLICY, csp)], Html(html)).into_response(),
                Err(_) => {
                    (StatusCode::INTERNAL_SERVER_ERROR, "unusable gateway URL").into_response()
                }
            }
        }
        Ok(Err(why)) => {
            tracing::info!(operator = %who.name, %batch_no, %why, "operator page: no password form");
            (StatusCode::CONFLICT, why.to_string()).into_response()
        }
        Err(e) => unavailable(e),
    }
}
