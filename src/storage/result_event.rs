//! The result event (contract §4): its JSON body and its outbox row, written
//! here only. Every statement that ends a refund (or records its 充退) ends
//! with [`insert_result_events!`], so a batch of a thousand refunds still
//! writes its thousand events in the one statement that settles them.
//!
//! The statement before it provides a CTE named `ev` with these columns:
//! the refund's `refund_id`, `trade_no`, `amount_fen`, `partner`,
//! `batch_no`, `metadata`, `operator_retries`, `channel`, `out_request_no` as
//! they are after the change,
//! and the event's `event` (the routing key), `status`, `code`, `message`
//! and `source`. Each row gets a fresh `event_id` (downstream dedups on it)
//! and the moment of writing as `occurred_at`.
//!
//! Amounts go out as yuan text with two decimals (`fen_to_yuan`, exact:
//! integer arithmetic). `retry` appears only once an operator has retried
//! the refund; `out_request_no` only on the OpenAPI channel. (Migrations 0002 and 0006 defined this body as the SQL
//! function `refund_event_body`; it is no longer called, and is left in the
//! database so that a worker of the previous release keeps working during a
//! rolling deploy.)

/// The tail of a statement: `INSERT INTO outbox … SELECT … FROM ev`.
macro_rules! insert_result_events {
    () => {
        "INSERT INTO outbox (event_id, refund_id, round, routing_key, body)
         SELECT e.event_id, ev.refund_id, ev.operator_retries, ev.event,
                jsonb_build_object(
                    'event', ev.event,
                    'event_id', e.event_id,
                    'refund_id', ev.refund_id,
                    'status', ev.status,
                    'code', ev.code,
                    'message', ev.message,
                    'trade_no', ev.trade_no,
                    'amount', fen_to_yuan(ev.amount_fen),
                    'partner', ev.partner,
                    'batch_no', ev.batch_no,
                    'source', ev.source,
                    'channel', ev.channel,
                    'occurred_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
                    'metadata', ev.metadata)
                || CASE WHEN ev.operator_retries > 0
                        THEN jsonb_build_object('retry', ev.operator_retries) ELSE '{}'::jsonb END
                || CASE WHEN ev.channel = 'openapi'
                        THEN jsonb_build_object('out_request_no', ev.out_request_no) ELSE '{}'::jsonb END
         FROM ev CROSS JOIN LATERAL (SELECT gen_random_uuid() AS event_id, ev.refund_id) e"
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
             SELECT f.refund_id, f.trade_no, f.amount_fen, f.partner, f.batch_no, f.metadata,
                    f.operator_retries, f.channel, f.out_request_no, $5::text AS event, $2::text AS status,
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
