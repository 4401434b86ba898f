//! The submitter role: sends due batches to Alipay and acts on the answer.
//!
//! A step claims one batch under a lease (a short transaction, `SKIP LOCKED`),
//! calls the gateway outside any transaction, and records what follows in
//! another. The request is rebuilt from the stored `batch_no`, `refund_date`
//! and `detail_data`, and checked to give the same bytes, so a retry is the
//! same batch. Decisions are [`decide`]'s; this file only does I/O.

pub mod decide;
mod follow;
mod waking;

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::alipay::client::AlipayClient;
use crate::alipay::wire::batch_no::parse_refund_date;
use crate::alipay::wire::detail::parse_stored;
use crate::alipay::wire::query_answer::{QueryAnswer, QueryReply};
use crate::alipay::wire::request::{NopwdRequest, QueryBy};
use crate::config::{Partner, SubmitSettings};
use crate::domain::item_outcome::ItemRetry;
use crate::storage::notifications::{self as notification_store, Received};
use crate::storage::submissions::{self as store, Claim};
use decide::{Action, Backoff, ClaimedBatch, Next, action, after_query, after_send};

/// How long a held batch (our bug) waits before it is looked at again.
const HOLD: Duration = Duration::from_secs(3600);

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Idle,
    Sent {
        batch_no: String,
        code: Option<String>,
        next: Next,
    },
    Queried {
        batch_no: String,
        next: Next,
    },
}

#[derive(Clone)]
pub struct Submitter {
    pub pool: PgPool,
    pub client: AlipayClient,
    pub partners: Vec<Partner>,
    pub notify_url: String,
    pub dback_notify_url: Option<String>,
    pub pwd_fallback: bool,
    pub settings: SubmitSettings,
    /// The gateway's whole-request time-out: the lease must outlast it.
    pub timeout: Duration,
    /// `ITEM_RETRY_BASE_MS`, `ITEM_RETRY_LIMIT`, for a batch of one refused
    /// with a code that can pass.
    pub item_retry: ItemRetry,
}

/// Says why an attempt's answer was not recorded ([`Claim`] not held).
fn not_recorded(claim: &Claim, attempt: i32, next: &Next, code: Option<&str>) {
    match claim {
        Claim::Held => {}
        Claim::TakenOver => {
            metrics::counter!("refund_worker_stale_claims_total").increment(1);
            tracing::warn!(
                attempt,
                ?next,
                code,
                "the claim on this batch was taken over (this process stalled past its lease); not recording what followed"
            );
        }
        // Alipay's report of the batch, which proves it holds it, came
        // first: it stands, whatever this answer says.
        Claim::MovedOn { status } if matches!(next, Next::Submitted) => tracing::info!(
            attempt,
            status,
            "the batch moved on (Alipay's report came before this answer was recorded); the answer agrees, nothing left to record"
        ),
        Claim::MovedOn { status } => tracing::warn!(
            attempt,
            status,
            ?next,
            code,
            "the batch moved on while this attempt was in flight (Alipay's report or an operator); this answer is not applied"
        ),
    }
}

impl Submitter {
    fn backoff(&self) -> Backoff {
        Backoff {
            base: self.settings.retry_base,
            cap: self.settings.retry_cap,
            give_up: self.settings.give_up,
        }
    }

    /// Claims and handles at most one due batch, judged at `now`.
    pub async fn step(&self, now: DateTime<Utc>) -> anyhow::Result<Step> {
        // Past the whole-request time-out, with room to record the answer; a
        // dead process's batch is taken over once the lease runs out.
        let lease = self.timeout * 2 + Duration::from_secs(1);
        let Some(b) = store::claim_due(&self.pool, lease)
            .await
            .context("while claiming a batch")?
        else {
            return Ok(Step::Idle);
        };
        let span = tracing::info_span!("batch", batch_no = %b.batch_no, partner = %b.partner, attempt = b.attempts);
        self.handle(b, now).instrument(span).await
    }

    async fn handle(&self, b: ClaimedBatch, now: DateTime<Utc>) -> anyhow::Result<Step> {
        let Some(key) = self
            .partners
            .iter()
            .find(|p| p.id == b.partner)
            .map(|p| p.key.expose_secret().to_owned())
        else {
            tracing::error!("the batch's partner is not configured; holding the batch");
            return self.hold_unsent(b, "PARTNER_NOT_CONFIGURED", now).await;
        };
        let jitter = rand::random::<u32>() % 1001;
        match action(&b, now, &self.backoff()) {
            Action::Send => self.send(b, &key, now, jitter).await,
            Action::Query => self.query(b, &key, now, jitter).await,
        }
    }

    /// A batch that cannot be sent as stored is held, untouched, for a person.
    async fn hold_unsent(
        &self,
        b: ClaimedBatch,
        code: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Step> {
        self.apply(&b, &Next::Hold, Some(code), now, None).await?;
        Ok(Step::Sent {
            batch_no: b.batch_no,
            code: None,
            next: Next::Hold,
        })
    }

    /// Sends the batch (the same bytes as ever) and records what follows.
    async fn send(
        &self,
        b: ClaimedBatch,
        key: &str,
        now: DateTime<Utc>,
        jitter: u32,
    ) -> anyhow::Result<Step> {
        let request = match self.request(&b) {
            Ok(r) => r,
            Err(why) => {
                tracing::error!(
                    why,
                    "the stored batch does not rebuild to a valid request; holding it"
                );
                return self.hold_unsent(b, "INVALID_STORED_BATCH", now).await;
            }
        };
        let submission = self.client.submit(&request, key).await;
        let v = &submission.verdict;
        let disposition = v.disposition.as_str();
        metrics::counter!("refund_worker_gateway_requests_total",
            "service" => "refund_fastpay_by_platform_nopwd", "disposition" => disposition,
            "code" => v.code.clone().unwrap_or_else(|| "T".into()))
        .increment(1);
        let next = after_send(&b, v, self.pwd_fallback, &self.backoff(), jitter);
        tracing::info!(code = ?v.code, disposition = ?v.disposition, ?next, "batch sent");
        self.apply(&b, &next, v.code.as_deref(), now, Some(now))
            .await?;
        Ok(Step::Sent {
            batch_no: b.batch_no,
            code: v.code.clone(),
            next,
        })
    }

    /// Asks `refund_fastpay_query` whether Alipay holds the batch, keeps
    /// the answer, and records what follows.
    async fn query(
        &self,
        b: ClaimedBatch,
        key: &str,
        now: DateTime<Utc>,
        jitter: u32,
    ) -> anyhow::Result<Step> {
        let reply = self
            .client
            .query(&b.partner, key, &QueryBy::Batch(b.batch_no.clone()))
            .await;
        metrics::counter!("refund_worker_gateway_requests_total",
            "service" => "refund_fastpay_query", "disposition" => if reply.is_ok() { "answered" } else { "failed" })
        .increment(1);
        if let Err(e) = &reply {
            tracing::warn!(error = %e, "refund_fastpay_query failed; asking again later");
        }
        let next = after_query(
            &b,
            reply.as_ref().ok().map(|r| &r.answer),
            now,
            self.settings.absence_settle,
            &self.backoff(),
            jitter,
        );
        tracing::info!(?next, "batch queried");
        let code = match &next {
            Next::Reject { .. } | Next::AbsenceSeen { .. } => Some("REFUND_NOT_EXIST"),
            _ => None,
        };
        self.record_query(&b, reply.as_ref().ok(), &next).await?;
        self.apply(&b, &next, code, now, None).await?;
        Ok(Step::Queried {
            batch_no: b.batch_no,
            next,
        })
    }

    /// The request of a stored batch, byte for byte what was fixed at creation.
    fn request(&self, b: &ClaimedBatch) -> Result<NopwdRequest, String> {
        let refund_date = parse_refund_date(&b.refund_date).ok_or("unreadable refund_date")?;
        let items = parse_stored(&b.detail_data)?;
        let request = NopwdRequest {
            partner: b.partner.clone(),
            notify_url: self.notify_url.clone(),
            dback_notify_url: self.dback_notify_url.clone(),
            batch_no: b.batch_no.clone(),
            refund_date,
            items,
        };
        request.validate().map_err(|e| e.to_string())?;
        Ok(request)
    }

    /// Stores a query's answer with what it proved, for `batch show` and audit.
    async fn record_query(
        &self,
        b: &ClaimedBatch,
        reply: Option<&QueryReply>,
        next: &Next,
    ) -> anyhow::Result<()> {
        let verdict = match (reply, next) {
            (None, _) => "query_failed",
            (Some(_), Next::Submitted) => "found",
            (Some(_), Next::AbsenceSeen { .. }) => "absence_seen",
            (Some(_), Next::Reject { .. }) => "absence_proven",
            (Some(r), _) if matches!(r.answer, QueryAnswer::NotFound) => "absence_not_yet",
            (Some(_), _) => "query_failed",
        };
        let raw = reply.map(|r| r.raw.as_bytes()).unwrap_or_default();
        let received = Received {
            kind: "query",
            notify_id: None,
            batch_no: Some(b.batch_no.clone()),
            partner: Some(&b.partner),
            content_type: None,
            raw_body: raw,
            verdict,
            detail: Some(format!("{next:?}")),
        };
        notification_store::record(&self.pool, &received).await?;
        Ok(())
    }

    /// Records what follows, in one transaction, only while this process
    /// still holds its claim (invariant 5a): a submitter that stalled past
    /// its lease finds another attempt in its place, writes nothing, and says
    /// what it did not do. `sent` is when this attempt sent the batch.
    async fn apply(
        &self,
        b: &ClaimedBatch,
        next: &Next,
        code: Option<&str>,
        now: DateTime<Utc>,
        sent: Option<DateTime<Utc>>,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        let claim = store::claim(&mut tx, &b.batch_no, b.attempts).await?;
        if claim != Claim::Held {
            tx.rollback().await?;
            not_recorded(&claim, b.attempts, next, code);
            return Ok(());
        }
        if let Some(at) = sent {
            store::sent_at(&mut tx, &b.batch_no, at).await?;
        }
        let failed = self.follow(&mut tx, b, next, code, now).await?;
        tx.commit().await?;
        crate::telemetry::refunds_completed("failed", failed);
        Ok(())
    }

    /// Steps until shutdown ([`crate::role_loop`]), woken by new batches.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        waking::run(self, shutdown).await
    }
}
