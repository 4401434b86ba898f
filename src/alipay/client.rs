//! The HTTP client of the mapi gateway: a plain struct around reqwest with
//! the configured whole-request time-out. It only moves bytes; what an answer
//! means is [`super::exchange`]'s, and every request is built by [`super::wire`].

use std::time::Duration;

use crate::alipay::exchange::{Exchange, TransportError, Verdict, judge_submission};
use crate::alipay::wire::form;
use crate::alipay::wire::query_answer::{QueryAnswerError, QueryReply, parse_query_answer};
use crate::alipay::wire::request::{
    NopwdRequest, QueryBy, gateway_url, notify_verify_url, query_params,
};

/// Talks to one gateway (`https://mapi.alipay.com/gateway.do` or the sandbox).
#[derive(Debug, Clone)]
pub struct AlipayClient {
    http: reqwest::Client,
    gateway: String,
}

/// A failed query or verification: the caller retries later.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("the gateway answered HTTP {status}")]
    Status { status: u16 },
    #[error("the gateway's answer could not be read: {0}")]
    Unreadable(#[from] QueryAnswerError),
}

/// What `notify_verify` answered (alipay-mapi.md, Verification).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyVerify {
    /// `true`: the gateway sent this notification.
    Genuine,
    /// `false`: not sent by the gateway, or expired.
    NotGenuine,
    /// `invalid`: our partner or parameters are wrong — a configuration
    /// alarm, not a forgery.
    Invalid,
    /// Anything else, kept (trimmed, at most 64 characters).
    Other(String),
}

impl NotifyVerify {
    /// Reads the answer's body.
    pub fn read(body: &str) -> Self {
        match body.trim() {
            "true" => Self::Genuine,
            "false" => Self::NotGenuine,
            "invalid" => Self::Invalid,
            other => Self::Other(other.chars().take(64).collect()),
        }
    }
}

/// The outcome of one submission: the raw exchange (for the record) and its verdict.
#[derive(Debug, Clone)]
pub struct Submission {
    pub exchange: Exchange,
    pub verdict: Verdict,
}

const FORM: &str = "application/x-www-form-urlencoded";

/// The HTTP client of every gateway call (mapi and OpenAPI): `timeout` on
/// the whole request, redirects not followed (a redirected POST would arrive
/// without its body).
pub fn http_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

impl AlipayClient {
    /// A client with `timeout` on every whole request. Redirects are not
    /// followed: a redirected POST would arrive without its body.
    pub fn new(gateway: &str, timeout: Duration) -> reqwest::Result<Self> {
        Ok(Self {
            http: http_client(timeout)?,
            gateway: gateway.to_owned(),
        })
    }

    /// Sends a batch. Never fails: a failure is a verdict too (outcome unknown).
    pub async fn submit(&self, request: &NopwdRequest, key: &str) -> Submission {
        let exchange = self.post(request.form_body(key)).await;
        let verdict = judge_submission(&exchange);
        Submission { exchange, verdict }
    }

    /// `refund_fastpay_query` by batch and/or trade.
    pub async fn query(
        &self,
        partner: &str,
        key: &str,
        by: &QueryBy,
    ) -> Result<QueryReply, ClientError> {
        let body = form::encode(&query_params(partner, by, key));
        match self.post(body).await {
            Exchange::Answered { status: 200, body } => Ok(parse_query_answer(&body)?),
            Exchange::Answered { status, .. } => Err(ClientError::Status { status }),
            Exchange::Failed(e) => Err(e.into()),
        }
    }

    /// `notify_verify`: whether the gateway sent this `notify_id`.
    pub async fn notify_verify(
        &self,
        partner: &str,
        notify_id: &str,
    ) -> Result<NotifyVerify, ClientError> {
        let url = notify_verify_url(&self.gateway, partner, notify_id);
        match exchange(self.http.get(url)).await {
            Exchange::Answered { status: 200, body } => Ok(NotifyVerify::read(&body)),
            Exchange::Answered { status, .. } => Err(ClientError::Status { status }),
            Exchange::Failed(e) => Err(e.into()),
        }
    }

    async fn post(&self, body: String) -> Exchange {
        let request = self
            .http
            .post(gateway_url(&self.gateway))
            .header(reqwest::header::CONTENT_TYPE, FORM)
            .body(body);
        exchange(request).await
    }
}

async fn exchange(request: reqwest::RequestBuilder) -> Exchange {
    let started = std::time::Instant::now();
    let result = async {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        Ok::<_, reqwest::Error>((status, bytes))
    }
    .await;
    metrics::histogram!("refund_worker_gateway_seconds").record(started.elapsed().as_secs_f64());
    match result {
        // Alipay answers in UTF-8; an error page in another charset is
        // unreadable either way, and lossy decoding keeps it for the record.
        Ok((status, bytes)) => Exchange::Answered {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        },
        Err(e) => Exchange::Failed(transport_error(&e)),
    }
}

fn transport_error(e: &reqwest::Error) -> TransportError {
    if e.is_timeout() {
        TransportError::Timeout
    } else if e.is_connect() {
        TransportError::Connect(error_chain(e))
    } else {
        TransportError::Broken(error_chain(e))
    }
}

/// The error and its sources in one line (reqwest's Display alone is terse).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
