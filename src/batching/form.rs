//! The one batch former: numbers, dates and writes a batch of items, for
//! the batcher (pending refunds), the submitter (the halves of a batch sunk
//! by one trade) and the reconciler (a password form past its date, again
//! with today's date). The bytes Alipay will see (`batch_no`,
//! `refund_date`, `detail_data`) are fixed here, so every retry sends the
//! same.
//!
//! Invariant: a batch's items keep the order they are given in; the refunds
//! move in only from the status (and batch) they are in (storage fences it).

use chrono::NaiveDateTime;
use sqlx::PgConnection;

use crate::alipay::wire::batch_no::format_refund_date;
use crate::alipay::wire::detail::{detail_data, parse_detail_data};
use crate::domain::RefundStatus;
use crate::domain::actor::Actor;
use crate::domain::batch::{self, BatchItem};
use crate::storage::batches::{self as store, NewBatch};
use crate::storage::submissions::items_of;

/// A batch about to be formed.
pub struct Forming<'a> {
    /// `BATCH_NO_PREFIX`.
    pub prefix: &'a str,
    pub partner: &'a str,
    /// Beijing time now: the date of `batch_no` and `refund_date`.
    pub beijing: NaiveDateTime,
    /// Refund ids and their items, in the order Alipay will see them.
    pub items: &'a [(String, BatchItem)],
    /// The batch these refunds leave (a split or a renumbered form).
    pub from_batch: Option<&'a str>,
    /// `pending` for a new batch, `batched` when they leave another.
    pub from: RefundStatus,
    pub actor: &'a Actor,
}

/// Writes the batch, in the caller's transaction; its `batch_no`.
pub async fn write(conn: &mut PgConnection, f: &Forming<'_>) -> anyhow::Result<String> {
    let serial = store::next_serial(conn).await?;
    let batch_no = batch::batch_no(f.prefix, f.beijing.date(), serial);
    let items: Vec<BatchItem> = f.items.iter().map(|(_, i)| i.clone()).collect();
    let ids: Vec<&str> = f.items.iter().map(|(id, _)| id.as_str()).collect();
    store::insert_batch(
        conn,
        &NewBatch {
            batch_no: &batch_no,
            partner: f.partner,
            refund_date: &format_refund_date(f.beijing),
            detail_data: &detail_data(&items),
            refund_ids: &ids,
            items: &items,
            split_from: f.from_batch,
            from_status: f.from,
            actor: f.actor,
        },
    )
    .await?;
    Ok(batch_no)
}

/// A stored batch's refunds and items, in the order it sent them.
pub async fn items_in_order(
    conn: &mut PgConnection,
    batch_no: &str,
    stored_detail_data: &str,
) -> anyhow::Result<Vec<(String, BatchItem)>> {
    let order: Vec<String> = parse_detail_data(stored_detail_data)?
        .into_iter()
        .map(|i| i.trade_no)
        .collect();
    let mut items = items_of(conn, batch_no).await?;
    items.sort_by_key(|(_, i)| order.iter().position(|t| *t == i.trade_no));
    Ok(items)
}
