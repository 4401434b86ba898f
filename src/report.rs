//! Applying a report on a batch (a genuine notification or a query answer)
//! and raising what it shows: the one shell around
//! [`storage::notifications::apply`] that the http role and the reconciler
//! share, so both read Alipay alike.
//!
//! Owns the alarms of a report: items a person must settle (error log naming
//! batch and refund), items Alipay still retries, unreadable items, amounts
//! that differ from what was sent, a `success_num` that disagrees, and a
//! later report contradicting a settled item, and the rejected-batch alarm
//! (a result for a batch we had rejected). Each has its counter.

use sqlx::PgPool;

use crate::alipay::wire::result_details::{ResultItem, UnreadableItem};
use crate::domain::actor::ReportSource;
use crate::domain::item_code::classify;
use crate::domain::item_outcome::{ItemRetry, Open};
use crate::domain::settle::Reported;
use crate::storage::notifications::{self as store, Applied, Received};

/// One report: what Alipay said about the batch.
pub struct Report<'a> {
    pub batch_no: &'a str,
    pub items: &'a [ResultItem],
    pub unreadable: &'a [UnreadableItem],
    /// Alipay's own count of successful items, when it gave one.
    pub success_num: Option<u32>,
    pub source: ReportSource,
}

/// Applies the report in one transaction and raises its alarms.
/// `r.detail` is filled with a summary of what could not be applied.
pub async fn apply(
    pool: &PgPool,
    r: &mut Received<'_>,
    report: &Report<'_>,
    retry: ItemRetry,
) -> Result<Applied, sqlx::Error> {
    r.detail = summary(report);
    let reported: Vec<Reported> = report.items.iter().map(Reported::from).collect();
    let applied = store::apply(pool, r, report.batch_no, &reported, report.source, retry).await?;
    crate::telemetry::refunds_completed("succeeded", applied.succeeded);
    crate::telemetry::refunds_completed("failed", applied.failed);
    if !applied.was_repeat {
        alarms(report, &applied);
    }
    Ok(applied)
}

/// What the stored report should say beside its raw body.
fn summary(report: &Report<'_>) -> Option<String> {
    let mut parts = Vec::new();
    if !report.unreadable.is_empty() {
        let items: Vec<String> = report
            .unreadable
            .iter()
            .map(|u| format!("item {} {:?}: {}", u.index, u.raw, u.error))
            .collect();
        parts.push(format!("unreadable: {}", items.join("; ")));
    }
    if let Some(n) = mismatched_success_num(report) {
        parts.push(n);
    }
    (!parts.is_empty()).then(|| parts.join(" | "))
}

fn mismatched_success_num(report: &Report<'_>) -> Option<String> {
    let counted = report.items.iter().filter(|i| i.is_success()).count();
    match report.success_num {
        Some(n) if usize::try_from(n).is_ok_and(|n| n == counted) => None,
        Some(n) => Some(format!("success_num {n}, but {counted} items read SUCCESS")),
        None if report.source == ReportSource::Notify => Some(format!(
            "no readable success_num; {counted} items read SUCCESS"
        )),
        None => None,
    }
}

fn alarms(report: &Report<'_>, applied: &Applied) {
    let batch_no = report.batch_no;
    let source = match report.source {
        ReportSource::Notify => "notify",
        ReportSource::Query => "query",
    };
    for item in report.items {
        metrics::counter!("refund_worker_item_results_total",
            "class" => classify(&item.code).as_str(), "source" => source)
        .increment(1);
    }
    for u in report.unreadable {
        metrics::counter!("refund_worker_unreadable_items_total", "source" => source).increment(1);
        tracing::error!(batch_no, source, index = u.index, raw = %u.raw, error = %u.error,
            "an item of a genuine report could not be read; left open for the reconciler and a person");
    }
    if let Some(why) = mismatched_success_num(report) {
        metrics::counter!("refund_worker_success_num_mismatch_total").increment(1);
        tracing::warn!(
            batch_no,
            why,
            "Alipay's success_num disagrees with its items"
        );
    }
    for (refund_id, why) in &applied.opened {
        metrics::counter!("refund_worker_items_opened_total", "class" => why.as_str()).increment(1);
        if why.needs_person() {
            tracing::error!(
                batch_no,
                refund_id,
                class = why.as_str(),
                "an item needs a person: `refund show` says why; settle it with `refund settle`"
            );
        } else {
            tracing::warn!(
                batch_no,
                refund_id,
                "Alipay retries this item itself; it stays open"
            );
        }
    }
    if applied
        .opened
        .iter()
        .any(|(_, w)| *w == Open::AmountMismatch)
    {
        metrics::counter!("refund_worker_amount_mismatches_total").increment(1);
    }
    for d in &applied.disagreements {
        metrics::counter!("refund_worker_item_disagreements_total").increment(1);
        tracing::error!(batch_no, refund_id = %d.refund_id, trade_no = %d.trade_no,
            recorded = %d.recorded, reported = %d.reported,
            "a report contradicts an item settled before; nothing changed, a person must look");
    }
    if let Some(alarm) = &applied.rejected_alarm {
        metrics::counter!("refund_worker_rejected_batch_results_total", "source" => source)
            .increment(1);
        metrics::counter!("refund_worker_double_payment_suspected_total")
            .increment(alarm.suspects.len() as u64);
        tracing::error!(batch_no, source, pulled_back = ?alarm.pulled_back, retired = ?alarm.retired,
            suspects = ?alarm.suspects,
            "ALARM: Alipay reported results for a batch we had rejected; refunds not sent again were taken back into it, refunds sent again are suspects of a double payment (batch show, operator page)");
    }
    if !applied.strangers.is_empty() {
        tracing::warn!(batch_no, trades = ?applied.strangers,
            "the report names trades the batch does not hold (or names one twice); kept, not applied");
    }
}
