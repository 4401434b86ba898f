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
//! (downstream dedups on it); the statement's events are queued for the
//! relay as one `outbox_sets` row (migration 33).
//!
//! The statement before it provides a CTE named `ev` with these columns:
//! the refund's `refund_id`, `batch_no`, `operator_retries`, `channel` and
//! `out_request_no`, and the event's `event` (the routing key), `status`,
//! `code`, `message` and `source`. (Migrations 0002 and 0006 defined the
//! JSON as the SQL function `refund_event_body`; it is no longer called.)

/// The tail of a statement: `, events AS (…) … INSERT INTO outbox … FROM
/// events`, with the one `outbox_sets` row that queues them for the relay
/// (migration 33; the set and its events share `created_at`).
macro_rules! insert_result_events {
    () => {
        ", events AS MATERIALIZED (
             SELECT gen_random_uuid() AS event_id, ev.* FROM ev
         ), queued AS (
             INSERT INTO outbox_sets (event_ids)
             SELECT array_agg(event_id) FROM events HAVING count(*) > 0
         )
         INSERT INTO outbox (event_id, refund_id, round, routing_key, status, code, message, source,
                             batch_no, channel, out_request_no)
         SELECT e.event_id, e.refund_id, e.operator_retries, e.event, e.status, e.code,
                e.message, e.source, e.batch_no, e.channel,
                CASE WHEN e.channel = 'openapi' THEN e.out_request_no END
         FROM events e"
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
