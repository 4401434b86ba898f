//! After `replay` or `purge` removed letters: the queue is read again, and a
//! letter that is one of those removed is removed again.
//!
//! Why: a quorum queue may drop acks that arrive just before their channel
//! closes and hand those letters back with the rest (rabbitmq-server#10327,
//! open; seen here in about one run in 25 of the replay test on a busy
//! machine, with or without a round trip before the close). A replayed
//! letter would then be listed again beside its copy, a purged one would be
//! back. The letter that comes back is the same message: the same body and
//! properties, but for the broker's `x-delivery-count`. Removing it again
//! loses nothing: its copy was confirmed (replay) or it was chosen for
//! removal and saved if asked (purge). Each removed letter is matched at
//! most once, so a second, separately dead-lettered message is never taken
//! for it unless the two are identical to the byte.

use std::collections::HashMap;
use std::time::Duration;

use lapin::BasicProperties;
use lapin::types::FieldTable;

use super::Target;
use super::letter::Letter;
use super::snapshot::{Locked, Snapshot};
use crate::amqp::topology::DELIVERY_COUNT_HEADER;

/// Reads of the queue after the command's own (each removes what it finds).
const ROUNDS: usize = 3;
/// Tries to take the reader's lock, which the command's own connection
/// holds until the broker has seen it close.
const LOCK_TRIES: usize = 50;
/// How long the first read waits for the letters the command held to be
/// back (they come back together with any whose ack was lost).
const BACK_WAIT: Duration = Duration::from_secs(5);

/// What the re-reading found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recheck {
    /// Removed letters that had come back and were removed again.
    pub again: usize,
    /// Removed letters still in the queue after the last round.
    pub left: usize,
}

/// Reads the queue until none of `removed` is in it (at most [`ROUNDS`]
/// times), removing those that are. `held` are the letters the command
/// read and handed back: the broker hands back those and any whose ack it
/// lost in one step, so the first read is trusted only once it shows every
/// one of `held` (or [`BACK_WAIT`] has passed).
pub async fn remove_again(
    target: &Target,
    removed: &[Letter],
    held: &[Letter],
) -> anyhow::Result<Recheck> {
    let mut result = Recheck::default();
    if removed.is_empty() {
        return Ok(result);
    }
    let deadline = tokio::time::Instant::now() + BACK_WAIT;
    let mut round = 1;
    while round <= ROUNDS {
        let snap = take(target).await?;
        if round == 1
            && returned(held, &snap.letters).len() < held.len()
            && tokio::time::Instant::now() < deadline
        {
            snap.release().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let back = returned(removed, &snap.letters);
        if back.is_empty() || round == ROUNDS {
            result.left = back.len();
            snap.release().await;
            return Ok(result);
        }
        tracing::warn!(
            count = back.len(),
            round,
            "dead letters removed a moment ago are back in the queue (the broker lost their acks); removing them again"
        );
        let mut failed = None;
        for &i in &back {
            match snap.remove(i).await {
                Ok(()) => result.again += 1,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        snap.release().await;
        if let Some(e) = failed {
            return Err(e.context("while removing again the letters the broker handed back"));
        }
        round += 1;
    }
    Ok(result)
}

/// A snapshot, once the command's own connection has let go of the lock.
async fn take(target: &Target) -> anyhow::Result<Snapshot> {
    let mut tries = 0;
    loop {
        tries += 1;
        match Snapshot::take(target, "recheck").await {
            Err(e) if e.downcast_ref::<Locked>().is_some() && tries < LOCK_TRIES => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// The indexes of `letters` that are letters of `removed` handed back, each
/// removed letter matched at most once.
pub fn returned(removed: &[Letter], letters: &[Letter]) -> Vec<usize> {
    let mut unmatched: HashMap<&[u8], Vec<&Letter>> = HashMap::new();
    for r in removed {
        unmatched.entry(&r.body[..]).or_default().push(r);
    }
    let mut found = Vec::new();
    for (i, letter) in letters.iter().enumerate() {
        let Some(same_body) = unmatched.get_mut(&letter.body[..]) else {
            continue;
        };
        if let Some(k) = same_body.iter().position(|r| same_message(r, letter)) {
            same_body.swap_remove(k);
            found.push(i);
        }
    }
    found
}

/// The same message: the same body and properties, but the delivery count.
pub fn same_message(a: &Letter, b: &Letter) -> bool {
    a.body == b.body
        && without_delivery_count(&a.properties) == without_delivery_count(&b.properties)
}

fn without_delivery_count(properties: &BasicProperties) -> BasicProperties {
    let Some(headers) = properties.headers() else {
        return properties.clone();
    };
    let mut kept = FieldTable::default();
    for (k, v) in headers {
        if k.as_str() != DELIVERY_COUNT_HEADER {
            kept.insert(k.clone(), v.clone());
        }
    }
    properties.clone().with_headers(kept)
}

#[cfg(test)]
mod tests {
    use lapin::types::{AMQPValue, LongString};

    use super::*;

    fn letter(id: &str, body: &str, headers: &[(&str, AMQPValue)]) -> Letter {
        let mut table = FieldTable::default();
        for (k, v) in headers {
            table.insert((*k).into(), v.clone());
        }
        let properties = BasicProperties::default()
            .with_message_id(id.into())
            .with_headers(table);
        Letter::new(1, properties, body.as_bytes().to_vec())
    }

    fn text(s: &str) -> AMQPValue {
        AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
    }

    #[test]
    fn a_letter_handed_back_differs_only_in_its_delivery_count() {
        let at = ("x-dead-lettered-at", text("2026-12-07T12:00:00.123Z"));
        let sent = letter("m-1", "{}", std::slice::from_ref(&at));
        let back = letter(
            "m-1",
            "{}",
            &[
                at.clone(),
                (DELIVERY_COUNT_HEADER, AMQPValue::LongLongInt(1)),
            ],
        );
        assert!(same_message(&sent, &back));
        let other_time = letter(
            "m-1",
            "{}",
            &[("x-dead-lettered-at", text("2026-12-07T12:00:01.000Z"))],
        );
        assert!(!same_message(&sent, &other_time));
        let replayed = letter(
            "m-1",
            "{}",
            &[at.clone(), ("x-replay-count", AMQPValue::LongLongInt(1))],
        );
        assert!(!same_message(&sent, &replayed));
        assert!(!same_message(
            &sent,
            &letter("m-1", "{ }", std::slice::from_ref(&at))
        ));
        assert!(!same_message(&sent, &letter("m-2", "{}", &[at])));
    }

    #[test]
    fn each_removed_letter_is_matched_once() {
        let a = letter("a", "1", &[]);
        let b = letter("b", "2", &[]);
        let queue = vec![
            letter("c", "3", &[]),
            a.clone(),
            letter(
                "a",
                "1",
                &[(DELIVERY_COUNT_HEADER, AMQPValue::LongLongInt(2))],
            ),
            b.clone(),
        ];
        assert_eq!(returned(&[a.clone(), b.clone()], &queue), vec![1, 3]);
        assert_eq!(returned(&[a.clone(), a], &queue), vec![1, 2]);
        assert_eq!(returned(&[], &queue), Vec::<usize>::new());
        assert_eq!(returned(&[b], &queue[..3]), Vec::<usize>::new());
    }
}
