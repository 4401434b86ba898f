//! Accepting, approving and processing batches, under the sandbox's lock.
//!
//! Owns the step from a checked request to paid refunds and the
//! notifications that report them. Invariants: the ledger changes and the
//! faults are drawn inside one critical section per request, so two copies
//! of one batch cannot both pass the duplicate check; the notifications are
//! built (ids drawn, parameters signed) inside it too, and only sent after
//! the lock is released.

use chrono::Utc;

use super::checks::BatchRequest;
use super::faults::{NotifyPlan, draw_item_failure, draw_notify};
use super::ledger::{ApproveError, BatchId, NotificationRecord, ResultLine};
use super::notice::{self, DBACK, Dback};
use super::refusal::Refusal;
use super::{Inner, Sandbox};
use crate::alipay::wire::batch_no::{beijing_now, format_refund_date};
use crate::alipay::wire::form;
use crate::alipay::wire::notify::BATCH_REFUND_NOTIFY;

/// A notification ready to send.
#[derive(Debug, Clone)]
pub(super) struct NotifyJob {
    pub notify_id: String,
    pub url: String,
    /// The form body, identical on every send.
    pub body: String,
    pub plan: NotifyPlan,
    /// Sent once this one has gone out the first time (the 充退 ones).
    pub follow_ups: Vec<NotifyJob>,
}

impl Sandbox {
    /// Records a checked batch and, unless it waits for a password,
    /// processes it; returns the notification to send, if any.
    pub(super) fn accept(
        &self,
        request: BatchRequest,
        awaiting_password: bool,
    ) -> Result<Option<NotifyJob>, Refusal> {
        let mut inner = self.lock();
        let id = inner.ledger.accept(request, awaiting_password)?;
        if awaiting_password {
            return Ok(None);
        }
        Ok(self.process(&mut inner, id))
    }

    /// Approves a password batch as its operator would, and processes it.
    pub(super) fn approve(
        &self,
        partner: Option<&str>,
        batch_no: &str,
    ) -> Result<Option<NotifyJob>, ApproveError> {
        let mut inner = self.lock();
        let id = inner.ledger.approve(partner, batch_no)?;
        Ok(self.process(&mut inner, id))
    }

    /// Pays the batch's items and builds the notification reporting them;
    /// none when nothing is reported (only ignored 100th refunds).
    fn process(&self, inner: &mut Inner, id: BatchId) -> Option<NotifyJob> {
        let config = &self.shared.config;
        let Inner { ledger, rng } = inner;
        let lines = ledger.process(id, |_| draw_item_failure(rng, &config.faults));
        if lines.is_empty() {
            return None;
        }
        let request = ledger.batches().get(id)?.request.clone();
        let key = config.key_of(&request.partner)?;
        // Alipay's notify_time; resends repeat it, since they repeat the body.
        let notify_time = format_refund_date(beijing_now(Utc::now()));
        let mut new_job =
            |kind: &'static str,
             trade_no: Option<&str>,
             url: &str,
             params: &dyn Fn(&str) -> Vec<(String, String)>| {
                let notify_id = loop {
                    let candidate = notice::new_notify_id(rng);
                    let fresh = ledger.register_notification(NotificationRecord {
                        notify_id: candidate.clone(),
                        partner: request.partner.clone(),
                        kind,
                        batch_no: request.batch_no.clone(),
                        trade_no: trade_no.map(str::to_owned),
                        attempts: 0,
                        delivered: 0,
                        acknowledged: false,
                    });
                    if fresh {
                        break candidate;
                    }
                };
                NotifyJob {
                    body: form::encode(&params(&notify_id)),
                    notify_id,
                    url: url.to_owned(),
                    plan: draw_notify(rng, &config.faults, config.time_scale),
                    follow_ups: Vec::new(),
                }
            };
        let mut job = new_job(
            BATCH_REFUND_NOTIFY,
            None,
            &request.notify_url,
            &|notify_id| {
                notice::batch_refund_notify(&notify_time, notify_id, &request.batch_no, &lines, key)
            },
        );
        if let Some(url) = &request.dback_notify_url {
            for (n, line) in lines.iter().filter(|l| l.is_success()).enumerate() {
                let refund_id = format!("{}{:04}", request.batch_no, n + 1);
                job.follow_ups
                    .push(new_job(DBACK, Some(&line.trade_no), url, &|notify_id| {
                        dback_params(
                            &notify_time,
                            notify_id,
                            &request.batch_no,
                            line,
                            &refund_id,
                            key,
                        )
                    }));
            }
        }
        Some(job)
    }
}

fn dback_params(
    notify_time: &str,
    notify_id: &str,
    batch_no: &str,
    line: &ResultLine,
    refund_id: &str,
    key: &str,
) -> Vec<(String, String)> {
    notice::dback_notify(
        &Dback {
            notify_time,
            notify_id,
            trade_no: &line.trade_no,
            batch_no,
            refund_id,
        },
        key,
    )
}
