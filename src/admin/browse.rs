//! The pages that only read: the overview and one refund.

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::auth::Signed;
use super::{AdminState, dead_letters, pages, unavailable};
use crate::storage;

#[derive(Deserialize)]
pub struct Flash {
    flash: Option<String>,
}

pub async fn overview(
    State(s): State<AdminState>,
    Extension(who): Extension<Signed>,
    Query(q): Query<Flash>,
) -> Response {
    let awaiting = match storage::batch_view::list(&s.pool, Some("awaiting_operator"), 200).await {
        Ok(b) => b,
        Err(e) => return unavailable(e),
    };
    let (open, held, suspects) = match tokio::try_join!(
        storage::attention::open_items(&s.pool, 200),
        storage::attention::held(&s.pool, 200),
        storage::attention::all_suspects(&s.pool, 200)
    ) {
        Ok(all) => all,
        Err(e) => return unavailable(e),
    };
    let dead = dead_letters::list(&s.settings).await;
    let csrf = s.access.csrf(&who);
    Html(pages::overview(
        &pages::Viewer {
            name: &who.name,
            csrf: &csrf,
        },
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
pub struct RefundQuery {
    id: String,
}

pub async fn refund(State(s): State<AdminState>, Query(q): Query<RefundQuery>) -> Response {
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
