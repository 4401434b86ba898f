//! The result event (contract §4): its outbox row, written here only. Every
//! statement that ends a refund (or records its 充退) ends with
//! [`insert_result_events!`], so a batch of a thousand refunds still writes
//! its thousand events in the one statement that settles them.
//!
//! The row holds the event's facts, not its JSON (migration 32): the
//! routing key, `status`, `code`, `message`, `source`, and the refund's
//! `batch_no`, `channel`, `out_request_no` and round (`operator_retries`)
//! as they are after the change. The relay writes the JSON as it publishes
//! ([`crate::outbox`]), adding the refund's unchanging fields (`trade_no`,
//! `amount`, `partner`, `metadata`) and `occurred_at`, the row's
//! `created_at`, the moment of writing. Each row gets a fresh `event_id`
//! (downstream dedups on it). Which fields an event carries (`retry`,
//! `out_request_no` on OpenAPI only) is the relay's one rule
//! (`outbox/body.rs`); the row keeps the facts as they are.
//!
//! The statement before it provides a CTE named `ev` with these columns:
//! the refund's `refund_id`, `batch_no`, `operator_retries`, `channel` and
//! `out_request_no`, and the event's `event` (the routing key), `status`,
//! `code`, `message` and `source`. (Migrations 0002 and 0006 defined the
//! JSON as the SQL function `refund_event_body`; it is no longer called.)

/// The tail of a statement: `INSERT INTO outbox … SELECT … FROM ev`.
macro_rules! insert_result_events {
    () => {
        "INSERT INTO outbox (event_id, refund_id, round, routing_key, status, code, message, source,
                             batch_no, channel, out_request_no)
         SELECT gen_random_uuid(), ev.refund_id, ev.operator_retries, ev.event, ev.status, ev.code,
                ev.message, ev.source, ev.batch_no, ev.channel, ev.out_request_no
         FROM ev"
    };
}

pub(crate) use insert_result_events;

use sqlx::PgConnection;

use crate::domain::bank_return::BankReturn;

/// The routing keys (and `event` field) of result events.
pub const SUCCEEDED: &str = "refund.succeeded";
pub const FAILED: &str = "refund.failed";
pub const BANK_RETURNED: &str = "refund.bank_returned";

/// The `refund.bank_returned` event of a refund (its status does not change).
pub async fn bank_returned(
    conn: &mut PgConnection,
    refund_id: &str,
    event: &BankReturn,
) -> Result<u64, sqlx::Error> {
    let rows = sqlx::query(concat!(
        "WITH ev AS (
             SELECT f.refund_id, f.batch_no, f.operator_retries, f.channel, f.out_request_no,
                    $5::text AS event, $2::text AS status,
                    $3::text AS code, $4::text AS message, 'notify'::text AS source
             FROM refunds f WHERE f.refund_id = $1
         ) ",
        insert_result_events!()
    ))
    .bind(refund_id)
    .bind(event.status)
    .bind(event.code)
    .bind(event.message)
    .bind(BANK_RETURNED)
    .execute(conn)
    .await?;
    Ok(rows.rows_affected())
}
