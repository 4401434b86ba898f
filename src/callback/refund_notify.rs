//! `POST /alipay/notify`: a `batch_refund_notify` applied to its batch.
//!
//! A genuine notification (signature verified, `notify_id` confirmed) is
//! never refused for its shape (contract §5): whatever can be read is
//! applied, the rest is stored and alerted, and the answer is `success`.

use super::{
    Answer, CallbackState, SUCCESS, Step, check_batch, confirm_notify_id, count, parse_and_verify,
    refused, repeat,
};
use crate::alipay::wire::notify::BatchRefundNotify;
use crate::domain::actor::ReportSource;
use crate::report::{self, Report};
use crate::storage::notifications::{self as store, Received};

pub(super) async fn handle(
    s: &CallbackState,
    content_type: Option<&str>,
    body: &[u8],
) -> Step<Answer> {
    let mut r = Received::new("batch_refund", content_type, body);
    let (form, partner) = parse_and_verify(s, &mut r, &["batch_no"]).await?;
    let notice = match BatchRefundNotify::from_form(&form) {
        Ok(n) => n,
        Err(e) => return refused(s, &mut r, "malformed", e.to_string()).await,
    };
    let status = check_batch(s, &mut r, partner, &notice.batch_no).await?;
    if status == "completed"
        || store::applied_before(&s.pool, "batch_refund", &notice.notify_id).await?
    {
        return repeat(s, &mut r).await;
    }
    confirm_notify_id(s, &mut r, partner, &notice.notify_id).await?;
    r.verdict = "applied";
    let report = Report {
        batch_no: &notice.batch_no,
        items: &notice.result_details,
        unreadable: &notice.unreadable,
        success_num: notice.success_num,
        source: ReportSource::Notify,
    };
    let applied = report::apply(&s.pool, &mut r, &report, s.item_retry).await?;
    count(if applied.was_repeat {
        "repeat"
    } else {
        "applied"
    });
    tracing::info!(batch_no = %notice.batch_no, ?applied, "notification applied");
    Ok(SUCCESS)
}
