//! The dead-letter queue as the operator page sees it, through the same
//! library as `refund-worker dlq`: listing leaves every message in place, a
//! replay removes one only after its copy is confirmed.

use crate::config::Settings;
use crate::dlq::{self, Action, Filter, Selection, Target};

use super::pages::DeadRow;

/// Every dead letter, in queue order; `Err` is why the queue cannot be read.
pub async fn list(settings: &Settings) -> Result<Vec<DeadRow>, String> {
    let listing = dlq::list(&Target::from_settings(settings), &Filter::default())
        .await
        .map_err(|e| format!("{e:#}"))?;
    Ok(listing
        .letters
        .into_iter()
        .map(|l| DeadRow {
            message_id: l.message_id.unwrap_or_else(|| l.position.to_string()),
            refund_id: l.refund_id,
            code: l.code.unwrap_or_else(|| "-".into()),
            reason: l.reason.unwrap_or_default(),
            dead_lettered_at: l.dead_lettered_at.map(|t| t.to_rfc3339()),
        })
        .collect())
}

/// Replays the dead letter with this `message_id`: what happened, in words.
pub async fn replay(settings: &Settings, id: &str) -> Result<String, String> {
    let mut outcomes = Vec::new();
    let tally = dlq::replay(
        &Target::from_settings(settings),
        &Selection::Ids(vec![id.to_owned()]),
        false,
        &mut |o| outcomes.push(o.clone()),
    )
    .await
    .map_err(|e| format!("{e:#}"))?;
    if !tally.unknown_ids.is_empty() {
        return Err("no such dead letter (already replayed or purged?)".into());
    }
    match outcomes.first().map(|o| &o.action) {
        Some(Action::Replayed(origin)) => {
            let mut said = format!(
                "{id} replayed to {} with key {}",
                origin.exchange, origin.routing_key
            );
            if tally.recheck.left > 0 {
                said.push_str("; the broker handed it back and it is listed still: replaying it again is harmless");
            } else if let Some(why) = &tally.recheck_failed {
                said.push_str(&format!("; could not check that it left the queue ({why})"));
            }
            Ok(said)
        }
        Some(Action::Left(why)) => Err(why.clone()),
        other => Err(format!("unexpected outcome {other:?}")),
    }
}
