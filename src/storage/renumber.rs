//! SQL of moving a password-form batch past its Beijing date into a new
//! batch awaiting an operator, with today's date (architecture.md, States):
//! its old form would meet `REFUND_DATE_ERROR`. The caller has proven that
//! Alipay does not hold the old batch (or its form was never printed).
//!
//! Invariants: the old batch is retired (`rejected`, `FORM_EXPIRED`), never
//! changed otherwise; the new one holds the same items in the same order
//! and waits for an operator; both happen in one transaction, only while the
//! old batch is still awaiting an operator.

use chrono::NaiveDateTime;
use sqlx::PgPool;

use crate::alipay::wire::batch_no::format_refund_date;
use crate::alipay::wire::detail::{BatchItem, detail_data, parse_detail_data};
use crate::batching::former;
use crate::storage::batches::{self, NewBatch};
use crate::storage::submissions::items_of;

/// Moves the items; the new `batch_no`, or `None` when the old batch is no
/// longer awaiting an operator (another process moved it, or it completed).
pub async fn renumber_form(
    pool: &PgPool,
    old: &str,
    prefix: &str,
    beijing: NaiveDateTime,
) -> anyhow::Result<Option<String>> {
    let mut tx = pool.begin().await?;
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT partner, detail_data FROM batches WHERE batch_no = $1 AND status = 'awaiting_operator'
         FOR UPDATE",
    )
    .bind(old)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((partner, stored)) = row else {
        tx.rollback().await?;
        return Ok(None);
    };
    let order: Vec<String> = parse_detail_data(&stored)?
        .into_iter()
        .map(|i| i.trade_no)
        .collect();
    let mut items = items_of(&mut tx, old).await?;
    items.sort_by_key(|(_, i)| order.iter().position(|t| *t == i.trade_no));
    sqlx::query(
        "UPDATE batches SET status = 'rejected', last_code = 'FORM_EXPIRED', completed_at = now(),
                updated_at = now()
         WHERE batch_no = $1",
    )
    .bind(old)
    .execute(&mut *tx)
    .await?;
    let serial = batches::next_serial(&mut tx).await?;
    let new = former::batch_no(prefix, beijing.date(), serial);
    let batch_items: Vec<BatchItem> = items.iter().map(|(_, i)| i.clone()).collect();
    let ids: Vec<&str> = items.iter().map(|(id, _)| id.as_str()).collect();
    batches::insert_batch(
        &mut tx,
        &NewBatch {
            batch_no: &new,
            partner: &partner,
            refund_date: &format_refund_date(beijing),
            detail_data: &detail_data(&batch_items),
            refund_ids: &ids,
            items: &batch_items,
            split_from: Some(old),
            from_status: "batched",
        },
    )
    .await?;
    sqlx::query(
        "UPDATE batches SET status = 'awaiting_operator', updated_at = now() WHERE batch_no = $1",
    )
    .bind(&new)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(new))
}
