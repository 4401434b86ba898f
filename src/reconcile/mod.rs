//! The reconciler: a batch `submitted` longer than `RECONCILE_AFTER_MS` with
//! no notification is asked about with `refund_fastpay_query`, and the
//! answer is applied as a notification would be (result events with source
//! `query`). Batches still unresolved are asked again on a growing interval
//! (1, 2, 4 … 60 minutes). A claim is one short `SKIP LOCKED` statement that
//! also books the next question, so processes never ask about one batch at once.

use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::alipay::client::AlipayClient;
use crate::alipay::wire::query_answer::QueryAnswer;
use crate::alipay::wire::request::QueryBy;
use crate::alipay::wire::result_details::ResultItem;
use crate::config::Partner;
use crate::domain::item_outcome::ItemRetry;
use crate::report::{self, Report};
use crate::storage::notifications::{Applied, Received, ReportSource};

const IDLE_POLL: Duration = Duration::from_secs(1);

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Idle,
    /// The query's results were applied.
    Applied {
        batch_no: String,
        applied: Applied,
    },
    /// Nothing was settled; the batch is asked again later.
    Unresolved {
        batch_no: String,
        why: String,
    },
}

#[derive(Clone)]
pub struct Reconciler {
    pub pool: PgPool,
    pub client: AlipayClient,
    pub partners: Vec<Partner>,
    pub after: Duration,
    /// `ITEM_RETRY_BASE_MS`, `ITEM_RETRY_LIMIT`.
    pub item_retry: ItemRetry,
}

impl Reconciler {
    pub async fn step(&self) -> anyhow::Result<Step> {
        let claimed: Option<(String, String)> = sqlx::query_as(
            "WITH due AS (
                 SELECT batch_no FROM batches
                 WHERE ((status = 'submitted' AND submitted_at <= now() - make_interval(secs => $1))
                        -- a password form printed: the operator may have posted it
                        OR (status = 'awaiting_operator' AND form_printed_at <= now() - make_interval(secs => $1)))
                   AND next_attempt_at <= now()
                 ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED
             )
             UPDATE batches b SET reconcile_queries = reconcile_queries + 1,
                    next_attempt_at = now() + make_interval(secs => least(3600, 60 * power(2, least(reconcile_queries, 6))))
             FROM due WHERE b.batch_no = due.batch_no
             RETURNING b.batch_no, b.partner",
        )
        .bind(self.after.as_secs_f64())
        .fetch_optional(&self.pool)
        .await
        .context("while claiming a batch to reconcile")?;
        let Some((batch_no, partner)) = claimed else {
            return Ok(Step::Idle);
        };
        metrics::counter!("refund_worker_reconciler_queries_total").increment(1);
        let unresolved = |why: String| {
            tracing::warn!(%batch_no, why, "reconciliation did not settle the batch; asking again later");
            Ok(Step::Unresolved {
                batch_no: batch_no.clone(),
                why,
            })
        };
        let Some(key) = self.partners.iter().find(|p| p.id == partner) else {
            return unresolved("the batch's partner is not configured".into());
        };
        let reply = match self
            .client
            .query(
                &partner,
                key.key.expose_secret(),
                &QueryBy::Batch(batch_no.clone()),
            )
            .await
        {
            Ok(r) => r,
            Err(e) => return unresolved(e.to_string()),
        };
        let found = match &reply.answer {
            QueryAnswer::Found(found) => found,
            QueryAnswer::Failed { code } => {
                metrics::counter!("refund_worker_query_errors_total", "code" => code.clone())
                    .increment(1);
                return unresolved(format!("the query was refused with {code}"));
            }
            QueryAnswer::NotFound => {
                return unresolved("the query answered REFUND_NOT_EXIST".into());
            }
        };
        let items: Vec<ResultItem> = found
            .iter()
            .filter(|i| i.batch_no == batch_no)
            .map(|i| i.item.clone())
            .collect();
        let mut received = Received {
            kind: "query",
            notify_id: None,
            batch_no: Some(batch_no.clone()),
            partner: Some(&partner),
            content_type: None,
            raw_body: reply.raw.as_bytes(),
            verdict: "applied",
            detail: None,
        };
        let report = Report {
            batch_no: &batch_no,
            items: &items,
            unreadable: &reply.unreadable,
            success_num: None,
            source: ReportSource::Query,
        };
        let applied = report::apply(&self.pool, &mut received, &report, self.item_retry).await?;
        tracing::info!(%batch_no, ?applied, "reconciled by refund_fastpay_query");
        Ok(Step::Applied { batch_no, applied })
    }

    /// Steps until shutdown.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        loop {
            let wait = match self.step().await {
                Ok(Step::Idle) => IDLE_POLL,
                Ok(_) => Duration::ZERO,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "reconciler step failed");
                    IDLE_POLL * 5
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
