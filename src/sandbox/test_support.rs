//! Fixtures the sandbox's unit tests share: a nopwd request of 1.00 refunds
//! and the `result_details` of a notification job.

use chrono::NaiveDate;

use super::batches::NotifyJob;
use super::checks::{BatchRequest, Service};
use crate::alipay::wire::detail::BatchItem;
use crate::alipay::wire::form;

/// A nopwd request from `partner` with these items, dated 2024-03-10 12:00.
pub fn batch_with(partner: &str, batch_no: &str, items: Vec<BatchItem>) -> BatchRequest {
    BatchRequest {
        partner: partner.into(),
        service: Service::Nopwd,
        batch_no: batch_no.into(),
        refund_date: NaiveDate::from_ymd_opt(2024, 3, 10)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .unwrap(),
        notify_url: "http://127.0.0.1:1/n".into(),
        dback_notify_url: None,
        items,
    }
}

/// A nopwd request from `partner` refunding 1.00 of each trade.
pub fn request(partner: &str, batch_no: &str, trades: &[&str]) -> BatchRequest {
    let items = trades
        .iter()
        .map(|t| BatchItem {
            trade_no: (*t).into(),
            amount_fen: 100,
            reason: "r".into(),
        })
        .collect();
    batch_with(partner, batch_no, items)
}

/// The `result_details` a job would post.
pub fn details(job: &NotifyJob) -> String {
    form::decode(job.body.as_bytes())
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == "result_details")
        .map(|(_, v)| v)
        .unwrap()
}
