//! `dlq replay`: each chosen dead letter is published again to its origin
//! (see [`super::republish`] for what the copy carries) with `mandatory` on a
//! confirm channel, and removed from the dead-letter queue only after the
//! broker has confirmed the copy and routed it somewhere.
//!
//! A dead letter stays where it is, reported, when: it has no origin; its
//! origin is the dead-letter exchange itself; the origin exchange does not
//! exist; the copy is unroutable or refused; or the broker connection fails
//! before its confirm. The worst case — the connection lost between a confirm
//! and the removal — leaves it both replayed and still dead-lettered; intake
//! deduplicates by `refund_id`, so replaying it again later is harmless.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Confirmation, ExchangeKind, PublisherConfirm};

use super::letter::{Letter, Origin};
use super::render::{Action, Outcome};
use super::republish::replay_properties;
use super::select::Selection;
use super::snapshot::{BROKER_TIMEOUT, Snapshot, bounded};
use super::{Tally, Target, conclude};

/// Copies published before their confirms are awaited.
const WINDOW: usize = 64;

/// Replays the chosen dead letters (or, with `dry_run`, only says what it
/// would do). Each outcome goes to `report` as soon as it is known.
pub async fn replay(
    target: &Target,
    selection: &Selection,
    dry_run: bool,
    report: &mut (dyn FnMut(&Outcome) + Send),
) -> anyhow::Result<Tally> {
    let snap = Snapshot::take(target, "replay").await?;
    let result = replay_held(target, &snap, selection, dry_run, report).await;
    conclude(target, snap, result).await
}

/// Where a dead letter can be sent back to, or why it cannot.
pub fn destination(letter: &Letter, target: &Target) -> Result<Origin, String> {
    match &letter.origin {
        None => {
            Err("no origin: neither x-original-exchange/x-original-routing-key nor x-death".into())
        }
        Some(o) if o.exchange == target.dead_letter_exchange => Err(format!(
            "its origin is the dead-letter exchange {} itself",
            o.exchange
        )),
        Some(o) => Ok(o.clone()),
    }
}

async fn replay_held(
    target: &Target,
    snap: &Snapshot,
    selection: &Selection,
    dry_run: bool,
    report: &mut (dyn FnMut(&Outcome) + Send),
) -> anyhow::Result<Tally> {
    let now = Utc::now();
    let (mut tally, mut todo) = plan(target, snap, selection, now, report);
    if dry_run {
        for (i, to) in todo {
            tally.record(
                report,
                Outcome::of(&snap.letters[i], Action::WouldReplay(to)),
            );
        }
        return Ok(tally);
    }
    leave_missing_exchanges(snap, &mut todo, &mut tally, report).await?;
    if todo.is_empty() {
        return Ok(tally);
    }
    let publisher = open_publisher(snap).await?;
    // Why the session broke, once it has: nothing more is tried on it.
    let mut broken: Option<String> = None;
    for window in todo.chunks(WINDOW) {
        if let Some(why) = &broken {
            for (i, _) in window {
                let why = format!("not attempted: {why}");
                tally.record(report, Outcome::of(&snap.letters[*i], Action::Left(why)));
            }
            continue;
        }
        let pending = publish_window(&publisher, snap, window, now, &mut broken).await;
        confirm_window(snap, pending, &mut broken, &mut tally, report).await;
    }
    bounded(
        "closing the publishing channel",
        publisher.close(200, "dlq replay done".into()),
    )
    .await
    .ok();
    Ok(tally)
}

/// The chosen letters that have somewhere to go, by index into the snapshot;
/// those that have not are reported as left at once.
fn plan(
    target: &Target,
    snap: &Snapshot,
    selection: &Selection,
    now: DateTime<Utc>,
    report: &mut (dyn FnMut(&Outcome) + Send),
) -> (Tally, Vec<(usize, Origin)>) {
    let chosen = selection.choose(&snap.letters, now);
    let mut tally = Tally {
        unknown_ids: chosen.unknown_ids,
        ..Tally::default()
    };
    let mut todo = Vec::new();
    for i in chosen.indexes {
        let letter = &snap.letters[i];
        match destination(letter, target) {
            Ok(to) => todo.push((i, to)),
            Err(why) => tally.record(report, Outcome::of(letter, Action::Left(why))),
        }
    }
    (tally, todo)
}

/// Reports as left, and drops from `todo`, the letters whose origin exchange
/// does not exist: publishing to it would close the channel.
async fn leave_missing_exchanges(
    snap: &Snapshot,
    todo: &mut Vec<(usize, Origin)>,
    tally: &mut Tally,
    report: &mut (dyn FnMut(&Outcome) + Send),
) -> anyhow::Result<()> {
    let exchanges: BTreeSet<&str> = todo.iter().map(|(_, to)| to.exchange.as_str()).collect();
    let missing = missing_exchanges(snap, exchanges).await?;
    todo.retain(|(i, to)| match missing.get(&to.exchange) {
        Some(why) => {
            let why = format!("cannot replay to exchange {}: {why}", to.exchange);
            tally.record(report, Outcome::of(&snap.letters[*i], Action::Left(why)));
            false
        }
        None => true,
    });
    Ok(())
}

/// A channel of its own with publisher confirms on.
async fn open_publisher(snap: &Snapshot) -> anyhow::Result<Channel> {
    let publisher = bounded(
        "opening the publishing channel",
        snap.connection().create_channel(),
    )
    .await?;
    bounded(
        "enabling publisher confirms",
        publisher.confirm_select(ConfirmSelectOptions::default()),
    )
    .await?;
    Ok(publisher)
}

/// A copy published (its confirm still to come), or why it was not.
type Sent<'w> = (usize, &'w Origin, Result<PublisherConfirm, String>);

/// Publishes a window's copies without waiting for their confirms. The first
/// failure sets `broken`, and the rest of the window is not attempted.
async fn publish_window<'w>(
    publisher: &Channel,
    snap: &Snapshot,
    window: &'w [(usize, Origin)],
    now: DateTime<Utc>,
    broken: &mut Option<String>,
) -> Vec<Sent<'w>> {
    let mut pending = Vec::with_capacity(window.len());
    for (i, to) in window {
        let letter = &snap.letters[*i];
        let sent = if broken.is_some() {
            Err("not attempted: an earlier publish failed".to_owned())
        } else {
            let publish = publisher.basic_publish(
                to.exchange.as_str().into(),
                to.routing_key.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &letter.body,
                replay_properties(letter, now),
            );
            bounded("publishing the copy", publish).await.map_err(|e| {
                let why = format!("{e:#}");
                *broken = Some(why.clone());
                why
            })
        };
        pending.push((*i, to, sent));
    }
    pending
}

/// Awaits a window's confirms and removes each confirmed, routed letter from
/// the dead-letter queue, reporting each as soon as it is known. A failed
/// session sets `broken` (the first reason is kept).
async fn confirm_window(
    snap: &Snapshot,
    pending: Vec<Sent<'_>>,
    broken: &mut Option<String>,
    tally: &mut Tally,
    report: &mut (dyn FnMut(&Outcome) + Send),
) {
    // One deadline for the window's confirms, so a dead session costs
    // one timeout, not one per message.
    let deadline = tokio::time::Instant::now() + BROKER_TIMEOUT;
    for (i, to, sent) in pending {
        let letter = &snap.letters[i];
        let action = match sent {
            Err(why) => Action::Left(why),
            Ok(confirm) => match settle(confirm, to, deadline).await {
                Err(why) => {
                    broken.get_or_insert_with(|| why.clone());
                    Action::Left(why)
                }
                Ok(Some(why)) => Action::Left(why),
                Ok(None) => match snap.remove(i).await {
                    Ok(()) => Action::Replayed(to.clone()),
                    Err(e) => {
                        let why = format!(
                            "replayed, but {e:#}; it is still dead-lettered and may be \
                             replayed again (harmless: intake deduplicates)"
                        );
                        broken.get_or_insert_with(|| why.clone());
                        Action::Left(why)
                    }
                },
            },
        };
        tally.record(report, Outcome::of(letter, action));
    }
}

/// Awaits one confirm: `Ok(None)` when the broker took and routed the copy,
/// `Ok(Some(why))` when it refused or could not route it, `Err` when the
/// session failed (nothing more can be published on it).
async fn settle(
    confirm: PublisherConfirm,
    to: &Origin,
    deadline: tokio::time::Instant,
) -> Result<Option<String>, String> {
    match tokio::time::timeout_at(deadline, confirm).await {
        Err(_) => Err(format!(
            "no confirm from the broker within {}s",
            BROKER_TIMEOUT.as_secs()
        )),
        Ok(Err(e)) => Err(format!("no confirm from the broker: {e}")),
        Ok(Ok(Confirmation::Ack(None))) => Ok(None),
        Ok(Ok(Confirmation::Ack(Some(returned)))) => Ok(Some(format!(
            "unroutable: exchange {} key {} has no queue bound ({})",
            to.exchange, to.routing_key, returned.reply_text
        ))),
        Ok(Ok(Confirmation::Nack(_))) => {
            Ok(Some("the broker refused the copy (queue full?)".into()))
        }
        Ok(Ok(Confirmation::NotRequested)) => Err("publisher confirms are off".into()),
    }
}

/// The origin exchanges that do not exist, each with the broker's answer.
/// A passive declare of a missing exchange closes its channel, so each check
/// gets its own. The default exchange (`""`) always exists.
async fn missing_exchanges(
    snap: &Snapshot,
    exchanges: BTreeSet<&str>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut missing = BTreeMap::new();
    for exchange in exchanges.into_iter().filter(|x| !x.is_empty()) {
        let ch = bounded("opening a channel", snap.connection().create_channel()).await?;
        let passive = ExchangeDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let declare = ch.exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            passive,
            FieldTable::default(),
        );
        match tokio::time::timeout(BROKER_TIMEOUT, declare).await {
            Ok(Ok(())) => {
                bounded("closing a channel", ch.close(200, "checked".into()))
                    .await
                    .ok();
            }
            Ok(Err(e)) => {
                missing.insert(exchange.to_owned(), e.to_string());
            }
            Err(_) => anyhow::bail!("no answer from the broker while checking exchange {exchange}"),
        }
    }
    Ok(missing)
}
