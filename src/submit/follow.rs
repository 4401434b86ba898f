//! What follows an answer, written in the claim's transaction once
//! `apply` has confirmed the claim still holds (invariant 5a): one arm per
//! [`Next`], each a storage call, with the alarms a person must see.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::decide::{ClaimedBatch, Next};
use super::{HOLD, Submitter};
use crate::alipay::wire::batch_no::beijing_now;
use crate::batching::form::{self, Forming};
use crate::domain::RefundStatus;
use crate::domain::actor::Actor;
use crate::storage::submissions as store;

impl Submitter {
    /// Records `next` for the claimed batch; how many refunds it failed.
    pub(super) async fn follow(
        &self,
        tx: &mut PgConnection,
        b: &ClaimedBatch,
        next: &Next,
        code: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<u64> {
        let batch_no = b.batch_no.as_str();
        match next {
            Next::Submitted => store::mark_submitted(tx, batch_no, code).await?,
            Next::RetryLater {
                delay,
                unknown,
                query,
            } => store::retry_later(tx, batch_no, *delay, code, *unknown, *query).await?,
            Next::Reject { pause_partner } => {
                store::reject(tx, batch_no, code).await?;
                if *pause_partner {
                    self.pause(tx, b, code.unwrap_or("UNKNOWN")).await?;
                }
            }
            Next::AwaitOperator => store::await_operator(tx, batch_no, code).await?,
            Next::AbsenceSeen { delay } => {
                store::absence_seen(tx, batch_no, now, *delay).await?;
                tracing::info!(
                    ?delay,
                    "REFUND_NOT_EXIST, the first answer that counts toward absence; asking again"
                );
            }
            Next::FailItem => {
                store::fail_single(tx, batch_no, code.unwrap_or("UNKNOWN")).await?;
                return Ok(1);
            }
            Next::ReturnItem => {
                let code = code.unwrap_or("UNKNOWN");
                let failed = store::return_single(tx, batch_no, code, self.item_retry).await?;
                tracing::info!(
                    code,
                    failed,
                    "a batch of one refused for now; its refund waits for a later batch"
                );
                return Ok(failed);
            }
            Next::Split => self.split(tx, b, code, now).await?,
            Next::Hold => {
                store::hold(tx, batch_no, code, HOLD).await?;
                metrics::counter!("refund_worker_batches_held_total",
                    "code" => code.unwrap_or("UNKNOWN").to_owned())
                .increment(1);
                tracing::error!(
                    code,
                    "holding the batch: Alipay refused it with a code we cannot act on (our bug, or a code the table lacks); refunds kept as they are; `batch release` sends them back to pending"
                );
            }
        }
        Ok(0)
    }

    /// Alipay refused the partner's configuration or contract: its
    /// submissions pause, for longer with each refusal.
    async fn pause(
        &self,
        tx: &mut PgConnection,
        b: &ClaimedBatch,
        code: &str,
    ) -> anyhow::Result<()> {
        let (base, cap) = (self.settings.pause_base, self.settings.pause_cap);
        store::pause_partner(tx, &b.partner, code, base, cap).await?;
        metrics::counter!("refund_worker_partner_paused_total", "code" => code.to_owned())
            .increment(1);
        tracing::error!(
            code,
            "Alipay refused the partner's configuration or contract; pausing its submissions"
        );
        Ok(())
    }

    /// Retires a batch sunk by one trade and puts its items, in order, into two
    /// new batches, so the bad items end up alone (and then fail alone).
    async fn split(
        &self,
        tx: &mut PgConnection,
        b: &ClaimedBatch,
        code: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let items = form::items_in_order(tx, &b.batch_no, &b.detail_data).await?;
        store::retire(tx, &b.batch_no, code).await?;
        let half = items.len().div_ceil(2);
        for part in items.chunks(half) {
            let forming = Forming {
                prefix: &self.settings.batch_no_prefix,
                partner: &b.partner,
                beijing: beijing_now(now),
                items: part,
                from_batch: Some(&b.batch_no),
                from: RefundStatus::Batched,
                actor: &Actor::Submitter,
            };
            let batch_no = form::write(tx, &forming).await?;
            tracing::info!(new_batch = %batch_no, items = part.len(), "split part");
        }
        Ok(())
    }
}
