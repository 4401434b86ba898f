//! The OpenAPI channel's submitter (alipay-openapi.md): one
//! `alipay.trade.refund` per refund, its query when the outcome stays
//! unknown, for the partners configured with `channel = "openapi"`.
//!
//! A step starts due pending refunds (a short transaction: `submitted`, with
//! the request's `out_request_no`, before any call), leases due requests,
//! makes their calls concurrently (at most `OPENAPI_CONCURRENCY` per worker,
//! `OPENAPI_CALLS_PER_SECOND` per app, by a `governor` rate limiter) outside
//! any transaction, and records each answer with what follows in its own.
//! Decisions are [`decide`]'s; this file only does I/O.

pub mod client;
pub mod decide;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::alipay::openapi::request::{
    QueryBiz, REFUND, REFUND_QUERY, RefundBiz, out_request_no, signed_form,
};
use crate::alipay::wire::batch_no::beijing_now;
use crate::config::OpenApiApp;
use crate::domain::actor::Actor;
use crate::role_loop::{self, Pace, Role};
use crate::storage::openapi::{self as store, Answer, DueCall, Outcome, Start};
use client::OpenApiClient;
use decide::{Asked, Came, Judged, Next, Rules};

const IDLE_POLL: Duration = Duration::from_millis(200);
/// How far past the call's time-out a lease reaches.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct OpenApiSubmitter {
    pub pool: PgPool,
    pub client: OpenApiClient,
    pub apps: Vec<OpenApiApp>,
    pub rules: Rules,
    /// Calls in flight at once.
    pub concurrency: usize,
    /// The gateway's whole-request time-out: the lease outlasts it.
    pub timeout: Duration,
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
}

/// What one step did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stepped {
    pub started: u64,
    /// The disposition of each call made.
    pub calls: Vec<&'static str>,
}

impl OpenApiSubmitter {
    pub fn new(
        pool: PgPool,
        client: OpenApiClient,
        apps: Vec<OpenApiApp>,
        rules: Rules,
        concurrency: usize,
        calls_per_second: u32,
        timeout: Duration,
    ) -> Self {
        let rate = NonZeroU32::new(calls_per_second).unwrap_or(NonZeroU32::MIN);
        Self {
            pool,
            client,
            apps,
            rules,
            concurrency: concurrency.max(1),
            timeout,
            limiter: Arc::new(RateLimiter::keyed(Quota::per_second(rate))),
        }
    }

    /// Runs until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        role_loop::run(self, shutdown).await
    }

    /// Starts what is due, then makes the due calls and records their answers.
    pub async fn step(&self) -> anyhow::Result<Stepped> {
        let started = self.start_pending().await?;
        let app_ids: Vec<String> = self.apps.iter().map(|a| a.app_id.clone()).collect();
        let lease = (self.timeout + LEASE_MARGIN).as_secs_f64();
        let due = store::lease_due(&self.pool, &app_ids, self.concurrency as i64, lease).await?;
        let calls = futures_util::future::join_all(due.iter().map(|c| self.call(c))).await;
        Ok(Stepped {
            started,
            calls: calls.into_iter().collect::<anyhow::Result<_>>()?,
        })
    }

    /// Pending refunds of our partners become requests, numbered before any call.
    async fn start_pending(&self) -> anyhow::Result<u64> {
        let partners: Vec<String> = self.apps.iter().map(|a| a.partner.clone()).collect();
        let mut tx = self.pool.begin().await?;
        let limit = (self.concurrency * 4) as i64;
        let startable = store::lock_startable(&mut tx, &partners, limit).await?;
        let numbered: Vec<(String, String, i32, String)> = startable
            .iter()
            .filter_map(|s| {
                let app = self.apps.iter().find(|a| a.partner == s.partner)?;
                let number = out_request_no(&s.refund_id, s.round);
                Some((s.refund_id.clone(), number, s.round, app.app_id.clone()))
            })
            .collect();
        let starts: Vec<Start<'_>> = numbered
            .iter()
            .map(|(id, number, round, app_id)| Start {
                refund_id: id,
                round: *round,
                out_request_no: number,
                app_id,
            })
            .collect();
        match store::start(&mut tx, &starts, &Actor::OpenApi).await {
            Ok(n) => {
                tx.commit().await?;
                Ok(n)
            }
            // Another worker started a refund of one of these trades first:
            // its step will be the one; ours starts the rest next time.
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                tx.rollback().await?;
                Ok(0)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// One call for a leased request, and what follows from its answer.
    async fn call(&self, c: &DueCall) -> anyhow::Result<&'static str> {
        let app = self
            .apps
            .iter()
            .find(|a| a.app_id == c.app_id)
            .ok_or_else(|| anyhow::anyhow!("app {} is not configured", c.app_id))?;
        self.limiter.until_key_ready(&c.app_id).await;
        let now = Utc::now();
        let (method, form) = if c.next_call == "query" {
            let biz = QueryBiz::new(&c.trade_no, &c.out_request_no);
            (
                REFUND_QUERY,
                signed_form(&app.app_id, REFUND_QUERY, &biz, beijing_now(now), &app.key)?,
            )
        } else {
            let biz = RefundBiz::new(
                &c.trade_no,
                c.amount_fen,
                &c.reason,
                c.out_request_no.clone(),
            );
            (
                REFUND,
                signed_form(&app.app_id, REFUND, &biz, beijing_now(now), &app.key)?,
            )
        };
        let came = self.client.call(&form).await;
        let asked = Asked {
            call: &c.next_call,
            out_request_no: &c.out_request_no,
            amount_fen: c.amount_fen,
            calls: c.calls,
            first_call_at: c.first_call_at,
            item_retries: c.item_retries,
            last_code: c.last_code.as_deref(),
        };
        let judged = decide::judge(&came, &asked, &app.alipay_public, &self.rules, Utc::now());
        metrics::counter!("refund_worker_gateway_requests_total",
            "service" => method, "disposition" => judged.disposition)
        .increment(1);
        self.record(c, method, &came, &judged).await?;
        Ok(judged.disposition)
    }

    async fn record(
        &self,
        c: &DueCall,
        method: &str,
        came: &Came,
        judged: &Judged,
    ) -> anyhow::Result<()> {
        let (http_status, body) = match came {
            Came::Nothing { .. } => (None, None),
            Came::Http { status, body } => (Some(i32::from(*status)), Some(body.as_str())),
        };
        let answer = Answer {
            method,
            http_status,
            body,
            disposition: judged.disposition,
            code: &judged.code,
        };
        let outcome = match &judged.next {
            Next::Succeeded { source, note } => Outcome::Succeeded {
                source: *source,
                note,
            },
            Next::Failed { code, message } => Outcome::Failed { code, message },
            Next::Later { wait, note } => Outcome::Later { wait: *wait, note },
            Next::Again { call, after } => Outcome::Again {
                next_call: call,
                after: *after,
            },
            Next::Hold { reason } => Outcome::Hold { reason },
        };
        if judged.alert {
            tracing::error!(refund_id = %c.refund_id, out_request_no = %c.out_request_no,
                method, code = %judged.code, detail = %judged.detail,
                "OpenAPI answer needs a person (kept raw in openapi_answers)");
        } else {
            tracing::info!(refund_id = %c.refund_id, partner = %c.partner, out_request_no = %c.out_request_no,
                method, code = %judged.code, disposition = judged.disposition, "OpenAPI call");
        }
        let applied = store::apply(&self.pool, c, &answer, &outcome).await?;
        if applied {
            match &judged.next {
                Next::Succeeded { .. } => crate::telemetry::refunds_completed("succeeded", 1),
                Next::Failed { .. } => crate::telemetry::refunds_completed("failed", 1),
                _ => {}
            }
        }
        Ok(())
    }
}

impl Role for OpenApiSubmitter {
    const NAME: &'static str = "openapi-submitter";

    async fn work(&mut self, _: &CancellationToken) -> anyhow::Result<Pace> {
        let stepped = self.step().await?;
        Ok(if stepped.started == 0 && stepped.calls.is_empty() {
            Pace::Idle(IDLE_POLL)
        } else {
            Pace::Busy
        })
    }
}
