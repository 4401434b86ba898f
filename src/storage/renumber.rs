//! SQL of moving a password-form batch past its Beijing date into a new
//! batch awaiting an operator, with today's date (architecture.md, States):
//! its old form would meet `REFUND_DATE_ERROR`. The reconciler has proven
//! that Alipay does not hold the old batch (or its form was never printed)
//! and forms the new batch (`batching::form`) in the same transaction.
//!
//! Invariants: the old batch is retired (`rejected`, `FORM_EXPIRED`), never
//! changed otherwise; the new one holds the same items in the same order
//! and waits for an operator; all of it only while the old batch is still
//! awaiting an operator.

use sqlx::PgConnection;

/// Locks the batch if it still awaits an operator: its partner and stored
/// `detail_data`, or `None` (another process moved it, or it completed).
pub async fn lock_awaiting(
    conn: &mut PgConnection,
    batch_no: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT partner, detail_data FROM batches WHERE batch_no = $1 AND status = 'awaiting_operator'
         FOR UPDATE",
    )
    .bind(batch_no)
    .fetch_optional(conn)
    .await
}

/// The old batch is retired: its form expired.
pub async fn retire_expired(conn: &mut PgConnection, batch_no: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE batches SET status = 'rejected', last_code = 'FORM_EXPIRED', completed_at = now(),
                updated_at = now()
         WHERE batch_no = $1",
    )
    .bind(batch_no)
    .execute(conn)
    .await?;
    Ok(())
}

/// The new batch waits for an operator, as the old one did.
pub async fn await_operator(conn: &mut PgConnection, batch_no: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE batches SET status = 'awaiting_operator', updated_at = now() WHERE batch_no = $1",
    )
    .bind(batch_no)
    .execute(conn)
    .await?;
    Ok(())
}
