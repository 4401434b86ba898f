//! The HTTP side of an OpenAPI call: the signed form POSTed to
//! `ALIPAY_OPENAPI_GATEWAY`, and whatever came back, unread. Never fails:
//! no answer is an answer too (the outcome is unknown).

use std::time::Duration;

use super::decide::Came;

/// One client for every app; the whole-request time-out bounds each call.
#[derive(Clone)]
pub struct OpenApiClient {
    http: reqwest::Client,
    gateway: String,
}

impl OpenApiClient {
    /// The same HTTP client as mapi's ([`crate::alipay::client::http_client`]).
    pub fn new(gateway: &str, timeout: Duration) -> reqwest::Result<Self> {
        Ok(Self {
            http: crate::alipay::client::http_client(timeout)?,
            gateway: gateway.to_owned(),
        })
    }

    /// POSTs `form` (UTF-8, as `charset=utf-8` says) and reads the body.
    pub async fn call(&self, form: &[(String, String)]) -> Came {
        let body = match serde_urlencoded::to_string(form) {
            Ok(b) => b,
            Err(e) => {
                return Came::Nothing {
                    why: format!("cannot encode the form: {e}"),
                };
            }
        };
        let sent = self
            .http
            .post(&self.gateway)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded;charset=utf-8",
            )
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                return Came::Nothing {
                    why: format!("{e:#}"),
                };
            }
        };
        let status = response.status().as_u16();
        match response.text().await {
            Ok(body) => Came::Http { status, body },
            Err(e) => Came::Nothing {
                why: format!("the answer was cut off: {e:#}"),
            },
        }
    }
}
