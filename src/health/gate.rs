//! The HTTP listener from the first moment of `run`: `GET /healthz` answers
//! while the process waits for PostgreSQL and RabbitMQ and while migrations
//! run, so a liveness probe never kills a process that is only starting;
//! every other route answers 503 with what start is waiting for, until the
//! full router is opened behind the same listener.
//!
//! Alipay retries a notification that got no `success`, so a 503 during the
//! start loses nothing.

use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower::ServiceExt;

/// Shared by the listener's task and `run`'s start; cheap to clone.
#[derive(Clone, Default)]
pub struct Gate {
    opened: Arc<OnceLock<Router>>,
    phase: Arc<Mutex<String>>,
}

impl Gate {
    pub fn new(phase: &str) -> Self {
        let gate = Self::default();
        gate.set_phase(phase);
        gate
    }

    /// What start is doing now, for the 503's body and `/readyz`.
    pub fn set_phase(&self, phase: &str) {
        if let Ok(mut p) = self.phase.lock() {
            phase.clone_into(&mut p);
        }
    }

    fn phase(&self) -> String {
        self.phase
            .lock()
            .map(|p| p.clone())
            .unwrap_or_else(|_| "starting".into())
    }

    /// From now on every request goes to `router`. Only the first call counts.
    pub fn open(&self, router: Router) {
        if self.opened.set(router).is_err() {
            tracing::warn!("the HTTP gate was opened twice; the first router stays");
        }
    }

    /// The router to serve: `/healthz` of its own, the rest through the gate.
    pub fn router(&self) -> Router {
        let gate = self.clone();
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .fallback(move |req: Request| {
                let gate = gate.clone();
                async move { gate.route(req).await }
            })
    }

    async fn route(&self, req: Request) -> Response {
        match self.opened.get() {
            Some(router) => match router.clone().oneshot(req).await {
                Ok(response) => response,
                Err(never) => match never {},
            },
            None => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("starting: {}", self.phase()),
            )
                .into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};

    async fn get_text(router: &Router, path: &str) -> (StatusCode, String) {
        let req = Request::builder().uri(path).body(Body::empty()).unwrap();
        let res = router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let body = to_bytes(res.into_body(), 1 << 16).await.unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn before_it_opens_only_healthz_answers() {
        let gate = Gate::new("waiting for PostgreSQL");
        let router = gate.router();
        assert_eq!(
            get_text(&router, "/healthz").await,
            (StatusCode::OK, "ok".into())
        );
        let (status, body) = get_text(&router, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, "starting: waiting for PostgreSQL");
        gate.set_phase("applying migrations");
        let (_, body) = get_text(&router, "/alipay/notify").await;
        assert_eq!(body, "starting: applying migrations");
    }

    #[tokio::test]
    async fn once_open_every_route_is_the_full_router() {
        let gate = Gate::new("starting");
        let router = gate.router();
        gate.open(Router::new().route("/readyz", get(|| async { "ready" })));
        assert_eq!(
            get_text(&router, "/readyz").await,
            (StatusCode::OK, "ready".into())
        );
        assert_eq!(get_text(&router, "/healthz").await.0, StatusCode::OK);
        assert_eq!(get_text(&router, "/nothing").await.0, StatusCode::NOT_FOUND);
    }
}
