//! One window of deliveries: parse each, store the valid ones in one
//! transaction, dead-letter the rest with confirms, and say how to settle the
//! window with the broker ([`AckPlan`]). The caller settles windows strictly in
//! delivery order, because a `multiple` ack covers every earlier delivery.
//!
//! Invariant: nothing is acked before its outcome is durable. The store commits
//! first ([`super::store`]); dead letters are confirmed next
//! ([`super::publish`]); only then the ack. A crash anywhere in between
//! redelivers the window, and redelivery is harmless: stored refunds come back
//! as duplicates.

use std::time::Duration;

use lapin::Channel;
use lapin::message::Delivery;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::publish::{Published, publish_dead_letters};
use super::store::{Stored, store_with_retry};
use super::verdict::{self, Sorted};
use crate::amqp::Topology;
use crate::config::AlipaySettings;
use crate::delays::Delays;
use crate::domain::refund_request::parse;
use crate::domain::{RefundRequest, Rejection};
use crate::storage::intake::NewRefund;

pub use super::settle::{AckPlan, Settled, WindowReport};

/// What a window needs besides its deliveries.
pub struct WindowContext<'a> {
    pub pool: &'a PgPool,
    pub publisher: &'a Channel,
    pub topology: &'a Topology,
    pub alipay: &'a AlipaySettings,
    pub shutdown: &'a CancellationToken,
}

/// [`process`] for a window it owns (what the pipeline keeps in flight).
pub async fn process_owned(
    cx: &WindowContext<'_>,
    deliveries: Vec<Delivery>,
) -> anyhow::Result<Settled> {
    process(cx, &deliveries).await
}

/// Handles a window whose deliveries are consecutive on one channel.
pub async fn process(cx: &WindowContext<'_>, deliveries: &[Delivery]) -> anyhow::Result<Settled> {
    let Some(last) = deliveries.last() else {
        return Ok(Settled::empty());
    };
    let parsed: Vec<Result<RefundRequest, Rejection>> = deliveries
        .iter()
        .map(|d| parse(&d.data, cx.alipay))
        .collect();
    let message_ids = message_ids(deliveries);
    let outcomes = match store_with_retry(cx, &new_refunds(&parsed, &message_ids)).await {
        Stored::Done(outcomes) => outcomes,
        Stored::ShuttingDown => return Ok(Settled::left_unacked(deliveries.len())),
        Stored::Refused(e) if deliveries.len() > 1 => {
            // One row the database will not take must not block the others:
            // go one by one, so only that delivery is handed back.
            tracing::error!(error = %e, "the database refused a window; storing its deliveries one by one");
            return one_by_one(cx, deliveries).await;
        }
        Stored::Refused(e) => {
            // Requeued, the broker counts the delivery and dead-letters it after
            // the queue's delivery limit: a bug cannot loop forever.
            tracing::error!(error = %e, "the database refused a delivery; handing it back to the broker");
            return Ok(Settled::handed_back(last));
        }
    };
    let Sorted { report, letters } = verdict::sort(deliveries, &parsed, outcomes)?;
    if let Published::ShuttingDown = publish_dead_letters(cx, &letters).await? {
        return Ok(Settled::left_unacked(deliveries.len()));
    }
    report.record_metrics();
    Ok(Settled {
        report,
        ack: AckPlan::UpTo(last.acker.clone()),
    })
}

/// Each delivery's AMQP message id, kept with its stored refund.
fn message_ids(deliveries: &[Delivery]) -> Vec<Option<String>> {
    deliveries
        .iter()
        .map(|d| {
            d.properties
                .message_id()
                .as_ref()
                .map(|m| m.as_str().to_owned())
        })
        .collect()
}

/// The valid requests of a window, in order, with their message ids.
fn new_refunds<'a>(
    parsed: &'a [Result<RefundRequest, Rejection>],
    message_ids: &'a [Option<String>],
) -> Vec<NewRefund<'a>> {
    parsed
        .iter()
        .zip(message_ids)
        .filter_map(|(p, id)| {
            p.as_ref().ok().map(|request| NewRefund {
                request,
                message_id: id.as_deref(),
            })
        })
        .collect()
}

/// Processes each delivery as a window of its own, so one the database
/// refuses is handed back alone. If any of them must stay unacked, the whole
/// window does (nothing after it may be acked).
async fn one_by_one(cx: &WindowContext<'_>, deliveries: &[Delivery]) -> anyhow::Result<Settled> {
    let mut report = WindowReport::default();
    let mut each = Vec::new();
    for d in deliveries {
        let one = Box::pin(process(cx, std::slice::from_ref(d))).await?;
        if matches!(one.ack, AckPlan::LeaveUnacked) {
            return Ok(Settled::left_unacked(deliveries.len()));
        }
        report.add(one.report);
        each.extend(one.ack.into_each());
    }
    Ok(Settled {
        report,
        ack: AckPlan::Each(each),
    })
}

/// Between two tries while a window is held (storing it, or publishing its
/// dead letters): 0.1 s up to 5 s.
pub(super) fn holding_delays() -> Delays {
    Delays::new(Duration::from_millis(100), Duration::from_secs(5))
}
