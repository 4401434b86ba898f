//! The reconciler: a batch `submitted` longer than `RECONCILE_AFTER_MS` with
//! no notification is asked about with `refund_fastpay_query`, and the
//! answer is applied as a notification would be (result events with source
//! `query`). Batches still unresolved are asked again on a growing interval
//! (1, 2, 4 … 60 minutes; from `RECONCILE_AFTER_MS` when that is under a minute). A claim is one short `SKIP LOCKED` statement that
//! also books the next question, so processes never ask about one batch at once.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::batching::form::{self, Forming};
use crate::domain::BatchStatus;
use crate::domain::actor::{Actor, ReportSource};
use crate::domain::batch::ReconcileClaim;
use crate::storage::reconcile as store;
use crate::storage::renumber;

use crate::alipay::client::AlipayClient;
use crate::alipay::wire::batch_no::beijing_now;
use crate::alipay::wire::query_answer::{QueryAnswer, QueryReply};
use crate::alipay::wire::request::QueryBy;
use crate::alipay::wire::result_details::ResultItem;
use crate::config::Partner;
use crate::domain::absence::{self, Absence};
use crate::domain::item_outcome::ItemRetry;
use crate::report::{self, Report};
use crate::role_loop::{self, Pace, Role};
use crate::storage::notifications::{Applied, Received};

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
    /// A password-form batch past its date moved into a new batch (`None`
    /// when another process had already moved it).
    Renumbered {
        batch_no: String,
        new_batch_no: Option<String>,
    },
}

/// Nothing was settled: said in the log, asked again later.
fn unresolved(c: &ReconcileClaim, why: String) -> Step {
    tracing::warn!(batch_no = %c.batch_no, why, "reconciliation did not settle the batch; asking again later");
    Step::Unresolved {
        batch_no: c.batch_no.clone(),
        why,
    }
}

#[derive(Clone)]
pub struct Reconciler {
    pub pool: PgPool,
    pub client: AlipayClient,
    pub partners: Vec<Partner>,
    pub after: Duration,
    /// `ITEM_RETRY_BASE_MS`, `ITEM_RETRY_LIMIT`.
    pub item_retry: ItemRetry,
    /// `SUBMIT_ABSENCE_SETTLE_MS`, for password-form batches past their date.
    pub absence_settle: Duration,
    /// `BATCH_NO_PREFIX`, for the new batch of such a batch.
    pub batch_no_prefix: String,
}

impl Reconciler {
    pub async fn step(&self) -> anyhow::Result<Step> {
        self.step_at(Utc::now()).await
    }

    /// One step judged at `now` (Beijing dates and the absence rule).
    pub async fn step_at(&self, now: DateTime<Utc>) -> anyhow::Result<Step> {
        let today = beijing_now(now).format("%Y%m%d").to_string();
        let claimed = store::claim(&self.pool, self.after, &today, self.reask_base())
            .await
            .context("while claiming a batch to reconcile")?;
        let Some(c) = claimed else {
            return Ok(Step::Idle);
        };
        let expired_form = c.status == BatchStatus::AwaitingOperator && c.past_date;
        if expired_form && c.form_printed_at.is_none() {
            // Never shown to an operator, so never sent: a new form at once.
            return self
                .renumber_form(&c, now, "its form was never printed")
                .await;
        }
        metrics::counter!("refund_worker_reconciler_queries_total").increment(1);
        let reply = match self.ask(&c).await {
            Ok(reply) => reply,
            Err(why) => return Ok(unresolved(&c, why)),
        };
        let found = match &reply.answer {
            QueryAnswer::Found(found) if found.iter().any(|i| i.batch_no == c.batch_no) => found,
            QueryAnswer::Failed { code } => {
                metrics::counter!("refund_worker_query_errors_total", "code" => code.clone())
                    .increment(1);
                return Ok(unresolved(&c, format!("the query was refused with {code}")));
            }
            QueryAnswer::NotFound if expired_form => return self.expired_not_found(&c, now).await,
            QueryAnswer::NotFound | QueryAnswer::Found(_) => {
                return Ok(unresolved(&c, "the query does not show the batch".into()));
            }
        };
        let items: Vec<ResultItem> = found
            .iter()
            .filter(|i| i.batch_no == c.batch_no)
            .map(|i| i.item.clone())
            .collect();
        self.apply(&c, &reply, &items).await
    }

    /// `refund_fastpay_query` about the batch, or why it could not be asked.
    async fn ask(&self, c: &ReconcileClaim) -> Result<QueryReply, String> {
        let Some(key) = self.partners.iter().find(|p| p.id == c.partner) else {
            return Err("the batch's partner is not configured".into());
        };
        let by = QueryBy::Batch(c.batch_no.clone());
        self.client
            .query(&c.partner, key.key.expose_secret(), &by)
            .await
            .map_err(|e| e.to_string())
    }

    /// `REFUND_NOT_EXIST` for a password-form batch past its date: renumbered
    /// once absence is proven (the rule of `domain::absence`).
    async fn expired_not_found(
        &self,
        c: &ReconcileClaim,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Step> {
        let sent = c.last_sent_at.or(c.form_printed_at).unwrap_or(now);
        let judged = absence::judge(
            c.notified,
            sent,
            c.absence_first_at,
            now,
            self.absence_settle,
        );
        Ok(match judged {
            Absence::Proven => {
                return self
                    .renumber_form(c, now, "Alipay provably does not hold it")
                    .await;
            }
            Absence::FirstSeen => {
                store::absence_seen(&self.pool, &c.batch_no, now).await?;
                unresolved(
                    c,
                    "the first REFUND_NOT_EXIST that counts toward absence".into(),
                )
            }
            Absence::NotYet { .. } | Absence::Held => {
                unresolved(c, "REFUND_NOT_EXIST, which proves nothing yet".into())
            }
        })
    }

    /// The query's items for this batch, applied as a notification would be.
    async fn apply(
        &self,
        c: &ReconcileClaim,
        reply: &QueryReply,
        items: &[ResultItem],
    ) -> anyhow::Result<Step> {
        let mut received = Received {
            kind: "query",
            notify_id: None,
            batch_no: Some(c.batch_no.clone()),
            partner: Some(&c.partner),
            content_type: None,
            raw_body: reply.raw.as_bytes(),
            verdict: "applied",
            detail: None,
        };
        let report = Report {
            batch_no: &c.batch_no,
            items,
            unreadable: &reply.unreadable,
            success_num: None,
            source: ReportSource::Query,
        };
        let applied = report::apply(&self.pool, &mut received, &report, self.item_retry).await?;
        tracing::info!(batch_no = %c.batch_no, ?applied, "reconciled by refund_fastpay_query");
        Ok(Step::Applied {
            batch_no: c.batch_no.clone(),
            applied,
        })
    }

    /// The first wait before a batch is asked about again (doubling, at most
    /// an hour): a minute, or `RECONCILE_AFTER_MS` when that is shorter, so a
    /// short threshold also re-asks soon.
    fn reask_base(&self) -> Duration {
        self.after.min(Duration::from_secs(60))
    }

    /// A password-form batch past its date goes into a new batch awaiting an
    /// operator with today's date (its old form Alipay would refuse).
    async fn renumber_form(
        &self,
        c: &ReconcileClaim,
        now: DateTime<Utc>,
        why: &str,
    ) -> anyhow::Result<Step> {
        let new = self.move_form(&c.batch_no, now).await?;
        tracing::warn!(batch_no = %c.batch_no, new_batch = ?new, why,
            "a password-form batch past its date moved into a new batch awaiting an operator; print its form again");
        Ok(Step::Renumbered {
            batch_no: c.batch_no.clone(),
            new_batch_no: new,
        })
    }

    /// In one transaction, only while the old batch still awaits an
    /// operator: retires it and forms the new one with the same items, in
    /// the same order, dated today. `None` when it no longer waits.
    async fn move_form(&self, old: &str, now: DateTime<Utc>) -> anyhow::Result<Option<String>> {
        let mut tx = self.pool.begin().await?;
        let Some((partner, stored)) = renumber::lock_awaiting(&mut tx, old).await? else {
            tx.rollback().await?;
            return Ok(None);
        };
        let items = form::items_in_order(&mut tx, old, &stored).await?;
        renumber::retire_expired(&mut tx, old).await?;
        let forming = Forming {
            prefix: &self.batch_no_prefix,
            partner: &partner,
            beijing: beijing_now(now),
            items: &items,
            from_batch: Some(old),
            from: crate::domain::RefundStatus::Batched,
            actor: &Actor::Reconciler,
        };
        let new = form::write(&mut tx, &forming).await?;
        renumber::await_operator(&mut tx, &new).await?;
        tx.commit().await?;
        Ok(Some(new))
    }

    /// Steps until shutdown ([`role_loop`]).
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        role_loop::run(self, shutdown).await
    }
}

impl Role for Reconciler {
    const NAME: &'static str = "reconciler";

    async fn work(&mut self, _: &CancellationToken) -> anyhow::Result<Pace> {
        Ok(match self.step().await? {
            Step::Idle => Pace::Idle(IDLE_POLL),
            _ => Pace::Busy,
        })
    }
}
