//! What the soak gathers for the checks once the workers are stopped: the
//! terminal result events, the dead letters, and the database's counts.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use sqlx::PgPool;

use super::check::{DbFacts, DeadLetter, Terminal};
use crate::amqp::{self, Topology};

/// The terminal events in `queue`, once each by `event_id` (the others are
/// read and dropped). The workers are stopped, so the queue holds every
/// event there will be; consumed with a wide prefetch and `multiple` acks
/// (one `basic.get` round trip per event took minutes at a million).
pub(super) async fn terminal_events(
    channel: &lapin::Channel,
    queue: &str,
) -> anyhow::Result<Vec<Terminal>> {
    let total = amqp::inspect(channel, queue).await?.message_count() as usize;
    channel.basic_qos(2000, BasicQosOptions::default()).await?;
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "soak-collect".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut events = Vec::new();
    let mut ids = HashSet::new();
    for n in 1..=total {
        let next = tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .map_err(|_| {
                anyhow::anyhow!("result events stopped arriving after {} of {total}", n - 1)
            })?;
        let Some(delivery) = next else {
            anyhow::bail!("the results consumer ended after {} of {total}", n - 1);
        };
        let delivery = delivery?;
        if n % 1000 == 0 || n == total {
            delivery.ack(BasicAckOptions { multiple: true }).await?;
        }
        let body: serde_json::Value = serde_json::from_slice(&delivery.data)?;
        if let Some(terminal) = Terminal::from_event(&body)
            && ids.insert(body["event_id"].as_str().unwrap_or_default().to_owned())
        {
            events.push(terminal);
        }
    }
    channel
        .basic_cancel("soak-collect".into(), BasicCancelOptions::default())
        .await?;
    Ok(events)
}

/// Every dead letter of the run's names, read as `refund-worker dlq list` reads them.
pub(super) async fn dead_letters(
    amqp_url: &str,
    topology: &Topology,
) -> anyhow::Result<Vec<DeadLetter>> {
    let listing = crate::dlq::list(
        &crate::dlq::Target::new(amqp_url, topology),
        &Default::default(),
    )
    .await?;
    Ok(listing
        .letters
        .iter()
        .map(|l| (l.refund_id.clone(), l.code.clone(), l.body.clone()))
        .collect())
}

/// What the database says about batches, forged notifications and OpenAPI requests.
pub(super) async fn db_facts(pool: &PgPool) -> anyhow::Result<DbFacts> {
    let count =
        |sql: &'static str| async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await };
    Ok(DbFacts {
        batches_over_1000: count("SELECT count(*) FROM (SELECT batch_no FROM batch_items GROUP BY batch_no HAVING count(*) > 1000) s").await?,
        batches_with_a_trade_twice: count("SELECT count(*) FROM (SELECT 1 FROM batch_items GROUP BY batch_no, trade_no HAVING count(*) > 1) s").await?,
        refunds_in_two_live_batches: count(
            "SELECT count(*) FROM (SELECT bi.refund_id FROM batch_items bi JOIN batches b USING (batch_no)
             WHERE b.status IN ('created', 'submitting', 'submitted', 'awaiting_operator') AND bi.result_code IS NULL
             GROUP BY bi.refund_id HAVING count(*) > 1) s",
        )
        .await?,
        forged_applied: count("SELECT count(*) FROM notifications WHERE notify_id LIKE 'soak-forged-%' AND verdict = 'applied'").await?,
        forged_stored: count("SELECT count(*) FROM notifications WHERE notify_id LIKE 'soak-forged-%'").await?,
        openapi_unknown_outcomes: count("SELECT count(*) FROM openapi_answers WHERE disposition IN ('unknown', 'unverified')").await?,
        openapi_held: count("SELECT count(*) FROM openapi_requests WHERE held_at IS NOT NULL AND settled_at IS NULL").await?,
    })
}
