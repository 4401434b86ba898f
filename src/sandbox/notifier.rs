//! Posting notifications on Alipay's schedule until the receiver says `success`.
//!
//! Owns the resend loop: a first send, then resends after 2m, 10m, 10m, 1h,
//! 2h, 6h and 15h (8 sends in all), each interval multiplied by the time
//! scale, until a body of exactly `success` comes back. Injected faults
//! drop, duplicate, delay or hold back sends as the job's plan says. A job
//! that settles a batch's unresolved items waits for that first, then pays
//! them in the ledger, then follows the same schedule.
//! Invariants: every send is counted in the ledger before the next is
//! considered; nothing is sent (or settled) after the sandbox is stopped.

use std::time::Duration;

use axum::http::header;

use super::Sandbox;
use super::batches::NotifyJob;
use super::faults::SENDS;
use crate::delays::sleep_or_stop;

/// The waits between Alipay's sends: 2m, 10m, 10m, 1h, 2h, 6h, 15h.
pub const RESEND_INTERVALS: [Duration; SENDS - 1] = [
    Duration::from_secs(2 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(60 * 60),
    Duration::from_secs(2 * 60 * 60),
    Duration::from_secs(6 * 60 * 60),
    Duration::from_secs(15 * 60 * 60),
];

/// The one answer that stops the resends.
const ACKNOWLEDGED: &[u8] = b"success";

impl Sandbox {
    /// Sends each job (and, after its first send, its follow-ups) in the background.
    pub(super) fn send(&self, jobs: impl IntoIterator<Item = NotifyJob>) {
        for job in jobs {
            let sandbox = self.clone();
            tokio::spawn(async move { sandbox.deliver(job).await });
        }
    }

    /// The whole life of one notification.
    async fn deliver(self, job: NotifyJob) {
        let stop = self.shared.stop.clone();
        if let Some(settle) = job.settles {
            if !sleep_or_stop(&stop, settle.after).await {
                return;
            }
            let settled = self.lock().ledger.resolve(settle.batch);
            tracing::info!(notify_id = %job.notify_id, items = settled.len(), "Alipay's own retry settled unresolved items");
        }
        if !self.hold_first_send(&job).await {
            return;
        }
        let mut follow_ups = Some(job.follow_ups.clone());
        for send in 0..SENDS {
            if send > 0 {
                let wait = self
                    .shared
                    .config
                    .time_scale
                    .scale(RESEND_INTERVALS[send - 1]);
                if !sleep_or_stop(&stop, wait).await {
                    return;
                }
            }
            let mut acknowledged = false;
            if job.plan.drop[send] {
                self.lock().ledger.record_send(&job.notify_id, false, false);
            } else {
                acknowledged = self.post(&job).await;
                if job.plan.duplicate[send] {
                    acknowledged |= self.post(&job).await;
                }
            }
            if send == 0 {
                self.shared.first_sends.send_modify(|n| *n += 1);
                self.send(follow_ups.take().into_iter().flatten());
            }
            if acknowledged {
                return;
            }
        }
        tracing::info!(notify_id = %job.notify_id, "notification never acknowledged; Alipay gives up after 8 sends");
    }

    /// Waits out an injected delay and, for a held-back notification, until
    /// a later one has gone out first (or the first resend interval passed,
    /// when no later one comes). False when the sandbox stopped meanwhile.
    async fn hold_first_send(&self, job: &NotifyJob) -> bool {
        let stop = &self.shared.stop;
        if !sleep_or_stop(stop, job.plan.first_delay).await {
            return false;
        }
        if job.plan.reorder {
            let mut sends = self.shared.first_sends.subscribe();
            let seen = *sends.borrow_and_update();
            let limit = self.shared.config.time_scale.scale(RESEND_INTERVALS[0]);
            tokio::select! {
                _ = stop.cancelled() => return false,
                _ = tokio::time::timeout(limit, sends.wait_for(|n| *n > seen)) => {}
            }
        }
        true
    }

    /// One POST; true when the body answered is exactly `success`.
    async fn post(&self, job: &NotifyJob) -> bool {
        let sent = self
            .shared
            .client
            .post(&job.url)
            .header(
                header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(job.body.clone())
            .send()
            .await;
        let answer = match sent {
            Ok(response) => response.bytes().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let acknowledged = answer.as_deref().is_ok_and(|body| body == ACKNOWLEDGED);
        self.lock()
            .ledger
            .record_send(&job.notify_id, answer.is_ok(), acknowledged);
        if let Err(error) = &answer {
            tracing::info!(notify_id = %job.notify_id, url = %job.url, %error, "notification not delivered");
        }
        acknowledged
    }
}
