//! `POST /alipay/dback-notify`: a 充退 notification — whether money refunded
//! to the buyer's Alipay balance went on to the bank card — becomes one
//! `refund.bank_returned` event (`S` → `bank_succeeded`, `F` →
//! `bank_failed`). `I` (in progress) is stored and answered `success` with no
//! event: Alipay sends the final state later under a new `notify_id`.

use super::{
    Answer, CallbackState, SUCCESS, Step, check_batch, confirm_notify_id, count, parse_and_verify,
    refused, repeat,
};
use crate::alipay::wire::notify::{DbackNotify, DbackStatus};
use crate::storage::bank_returns::{self, BankReturn};
use crate::storage::notifications::{self as store, Received};

pub(super) async fn handle(
    s: &CallbackState,
    content_type: Option<&str>,
    body: &[u8],
) -> Step<Answer> {
    let mut r = Received::new("dback", content_type, body);
    let (form, partner) = parse_and_verify(s, &mut r, &["refund_batch_no", "batch_no"]).await?;
    let notice = match DbackNotify::from_form(&form) {
        Ok(n) => n,
        Err(e) => return refused(s, &mut r, "malformed", e.to_string()).await,
    };
    check_batch(s, &mut r, partner, &notice.refund_batch_no).await?;
    let trade_no = notice.trade_no.as_deref().unwrap_or_default();
    let Some(refund_id) =
        bank_returns::refund_of(&s.pool, &notice.refund_batch_no, trade_no).await?
    else {
        let why = format!("the batch holds no trade {trade_no:?}");
        return refused(s, &mut r, "unknown_trade", why).await;
    };
    if store::applied_before(&s.pool, "dback", &notice.notify_id).await? {
        return repeat(s, &mut r).await;
    }
    confirm_notify_id(s, &mut r, partner, &notice.notify_id).await?;
    let event = match &notice.status {
        DbackStatus::Succeeded => Some(BankReturn::SUCCEEDED),
        DbackStatus::Failed => Some(BankReturn::FAILED),
        DbackStatus::InProgress => {
            r.detail = Some("in progress: no event until the final state".into());
            None
        }
        DbackStatus::Other(status) => {
            r.detail = Some(format!("status {status:?} not understood: kept, no event"));
            None
        }
    };
    r.verdict = "applied";
    let applied = bank_returns::apply(&s.pool, &r, &refund_id, event.as_ref()).await?;
    if !applied {
        return repeat(s, &mut r).await;
    }
    count("applied");
    tracing::info!(%refund_id, batch_no = %notice.refund_batch_no, status = ?notice.status, "充退 notification applied");
    Ok(SUCCESS)
}
