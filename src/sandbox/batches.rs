//! Accepting, approving and processing batches, under the sandbox's lock.
//!
//! Owns the step from a checked request to paid refunds and the
//! notifications that report them. Invariants: the ledger changes and the
//! faults are drawn inside one critical section per request, so two copies
//! of one batch cannot both pass the duplicate check; the notifications are
//! built (ids drawn, parameters signed) inside it too, and only sent after
//! the lock is released. An item reported with a code Alipay retries
//! itself is settled (paid) later by the task that sends the second
//! notification, just before its first send; that notification is built,
//! with a new `notify_id`, together with the first.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rand::rngs::StdRng;

use super::checks::BatchRequest;
use super::config::SandboxConfig;
use super::faults::{NotifyPlan, draw_item_failure, draw_notify};
use super::items;
use super::ledger::{ApproveError, BatchId, Ledger, NotificationRecord, ResultLine, SUCCESS};
use super::notice::{self, DBACK, Dback};
use super::realism::{
    BALANCE_NOT_ENOUGH, RealismBook, draw_empty_details, draw_non_final, draw_shapes,
    is_retried_by_alipay,
};
use super::refusal::{Code, Refusal};
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
    /// What must happen in the ledger before the first send.
    pub settles: Option<Settle>,
}

/// A batch whose unresolved items Alipay's own retry settles (pays) after
/// a while; the job that carries it reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Settle {
    pub batch: BatchId,
    /// Already scaled.
    pub after: Duration,
}

impl Sandbox {
    /// Records a checked batch and, unless it waits for a password,
    /// processes it; returns the notifications to send. A batch holding a
    /// poison trade is refused whole, before the duplicate check (its
    /// number was never taken: a poison batch is never accepted).
    pub(super) fn accept(
        &self,
        request: BatchRequest,
        awaiting_password: bool,
    ) -> Result<Vec<NotifyJob>, Refusal> {
        let mut inner = self.lock();
        self.refuse_poison(&mut inner, &request)?;
        let Inner {
            ledger,
            rng,
            realism,
            ..
        } = &mut *inner;
        let id = ledger.accept(request, awaiting_password)?;
        if awaiting_password {
            return Ok(Vec::new());
        }
        Ok(self.process(ledger, rng, realism, id))
    }

    /// Refuses a batch holding a poison trade, drawing the traits of
    /// trades seen for the first time.
    pub(super) fn refuse_poison(
        &self,
        inner: &mut Inner,
        request: &BatchRequest,
    ) -> Result<(), Refusal> {
        let Inner { rng, realism, .. } = inner;
        match realism.poison_in(rng, &self.shared.config.realism, &request.items) {
            Some(trade_no) => Err(Refusal::new(
                Code::ReasonRefundAmountLessThanCouponFee,
                format!("trade {trade_no} is poison (injected)"),
            )),
            None => Ok(()),
        }
    }

    /// Approves a password batch as its operator would, and processes it.
    pub(super) fn approve(
        &self,
        partner: Option<&str>,
        batch_no: &str,
    ) -> Result<Vec<NotifyJob>, ApproveError> {
        let mut inner = self.lock();
        let Inner {
            ledger,
            rng,
            realism,
            ..
        } = &mut *inner;
        let id = ledger.approve(partner, batch_no)?;
        Ok(self.process(ledger, rng, realism, id))
    }

    /// Pays the batch's items and builds the notification reporting them,
    /// and, when some are left unresolved, the later one that settles and
    /// reports them (built now, so every draw happens in request order);
    /// none when nothing is reported (only ignored 100th refunds). Every
    /// value is drawn from `rng`: the sandbox's one generator, or a lagged
    /// batch's own.
    pub(super) fn process(
        &self,
        ledger: &mut Ledger,
        rng: &mut StdRng,
        realism: &mut RealismBook,
        id: BatchId,
    ) -> Vec<NotifyJob> {
        let config = &self.shared.config;
        let lines = ledger.process(id, |item| {
            let failure = draw_item_failure(rng, &config.faults);
            let non_final = draw_non_final(rng, &config.realism);
            if realism.take_balance_short(&item.trade_no) {
                return Some(BALANCE_NOT_ENOUGH.to_owned());
            }
            if failure.is_some() {
                return failure;
            }
            let non_final = non_final?;
            realism.counts.non_final += 1;
            Some(non_final.to_owned())
        });
        if lines.is_empty() {
            return Vec::new();
        }
        let Some(request) = ledger.batches().get(id).map(|b| b.request.clone()) else {
            return Vec::new();
        };
        let Some(key) = config.key_of(&request.partner) else {
            return Vec::new();
        };
        let mut reporter = Reporter {
            ledger,
            rng,
            realism,
            config,
            request: &request,
            key,
        };
        let now = Utc::now();
        let mut jobs = vec![reporter.report(&lines, now, 0)];
        let settled: Vec<ResultLine> = lines
            .iter()
            .filter(|l| is_retried_by_alipay(&l.code))
            .map(|l| ResultLine {
                code: SUCCESS.to_owned(),
                ..l.clone()
            })
            .collect();
        if !settled.is_empty() {
            let after = config.time_scale.scale(config.realism.non_final_delay);
            let at = TimeDelta::from_std(after)
                .ok()
                .and_then(|d| now.checked_add_signed(d))
                .unwrap_or(now);
            let paid_before = lines.iter().filter(|l| l.is_success()).count();
            let mut job = reporter.report(&settled, at, paid_before);
            job.settles = Some(Settle { batch: id, after });
            jobs.push(job);
        }
        jobs
    }
}

/// What building the notifications of one batch needs, under the lock.
struct Reporter<'a> {
    ledger: &'a mut Ledger,
    rng: &'a mut StdRng,
    realism: &'a mut RealismBook,
    config: &'a SandboxConfig,
    request: &'a BatchRequest,
    key: &'a str,
}

impl Reporter<'_> {
    /// The `batch_refund_notify` reporting `lines` (in realistic shapes when
    /// drawn), sent as of `at`, and a 充退 follow-up per paid line;
    /// `paid_before` paid lines of the batch were reported earlier.
    fn report(&mut self, lines: &[ResultLine], at: DateTime<Utc>, paid_before: usize) -> NotifyJob {
        let r = &self.config.realism;
        let empty = draw_empty_details(self.rng, r);
        let shapes = draw_shapes(self.rng, r, lines.len());
        let written = if empty {
            self.realism.counts.empty_details += 1;
            (String::new(), 0)
        } else {
            self.realism.counts.add_shapes(items::tally(lines, &shapes));
            (
                items::details(lines, &shapes, &self.request.partner),
                lines.iter().filter(|l| l.is_success()).count(),
            )
        };
        // Alipay's notify_time; resends repeat it, since they repeat the body.
        let notify_time = format_refund_date(beijing_now(at));
        let (batch_no, key) = (&self.request.batch_no, self.key);
        let mut job = self.new_job(BATCH_REFUND_NOTIFY, None, &self.request.notify_url, &|id| {
            notice::batch_refund_notify_written(
                &notify_time,
                id,
                batch_no,
                (&written.0, written.1),
                key,
            )
        });
        if let Some(url) = &self.request.dback_notify_url {
            for (n, line) in lines.iter().filter(|l| l.is_success()).enumerate() {
                let refund_id = format!("{batch_no}{:04}", paid_before + n + 1);
                let follow_up = self.new_job(DBACK, Some(&line.trade_no), url, &|id| {
                    dback_params(&notify_time, id, batch_no, line, &refund_id, key)
                });
                job.follow_ups.push(follow_up);
            }
        }
        job
    }

    /// A notification with a fresh `notify_id` (registered in the ledger)
    /// and its drawn plan.
    fn new_job(
        &mut self,
        kind: &'static str,
        trade_no: Option<&str>,
        url: &str,
        params: &dyn Fn(&str) -> Vec<(String, String)>,
    ) -> NotifyJob {
        let notify_id = loop {
            let candidate = notice::new_notify_id(self.rng);
            let fresh = self.ledger.register_notification(NotificationRecord {
                notify_id: candidate.clone(),
                partner: self.request.partner.clone(),
                kind,
                batch_no: self.request.batch_no.clone(),
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
            plan: draw_notify(self.rng, &self.config.faults, self.config.time_scale),
            follow_ups: Vec::new(),
            settles: None,
        }
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

#[cfg(test)]
#[path = "batches_tests.rs"]
mod tests;
