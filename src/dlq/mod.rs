//! The dead-letter tooling behind `refund-worker dlq list|show|replay|purge`
//! (contract §6), as library functions so tests can aim them at any broker.
//!
//! - `letter`: what a dead letter says (code, origin, replay count…); pure.
//! - `select`: ages, filters and selections; pure.
//! - `republish`: the properties of a replayed copy; pure.
//! - `render`: lines, JSON and the `show` page; pure.
//! - `save`: `purge --save` files.
//! - `snapshot`: reading the whole queue while leaving it there.
//! - `replay`, `purge`: the two commands that move or remove messages.
//! - `recheck`: after them, removing again what the broker handed back.
//!
//! The rule throughout: a dead letter leaves `refunds.dead` only by an ack,
//! and that ack is sent only after its replayed copy is confirmed (replay) or
//! after its saved copy is on disk (purge with `--save`).

pub(crate) mod letter;
pub(crate) mod purge;
pub(crate) mod recheck;
pub(crate) mod render;
pub(crate) mod replay;
pub(crate) mod republish;
pub(crate) mod save;
pub(crate) mod select;
pub(crate) mod snapshot;

use chrono::Utc;

use crate::amqp::Topology;
use crate::config::Settings;
pub use letter::Letter;
pub use purge::{PurgeMode, purge};
pub use recheck::Recheck;
pub use render::{Action, Outcome};
pub use replay::replay;
pub use select::{Age, Filter, Selection, parse_age};
use snapshot::Snapshot;
pub use snapshot::Window;

/// The broker and the names the tooling works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: String,
    pub dead_queue: String,
    pub dead_letter_exchange: String,
    /// How much of the queue a command reads at most.
    pub window: Window,
}

impl Target {
    pub fn new(url: &str, topology: &Topology) -> Self {
        Self {
            url: url.to_owned(),
            dead_queue: topology.dead_queue.clone(),
            dead_letter_exchange: topology.dead_letter_exchange.clone(),
            window: Window::DEFAULT,
        }
    }

    pub fn from_settings(settings: &Settings) -> Self {
        let topology = Topology::of(&settings.amqp);
        Self::new(&settings.amqp.url, &topology)
    }
}

/// What a `replay` or `purge` came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Replayed or removed (or, in a dry run, that would be).
    pub done: usize,
    /// Left in the queue because they could not be handled.
    pub failed: usize,
    /// `--id` values that named no dead letter.
    pub unknown_ids: Vec<String>,
    /// Why the command saw only part of the queue (its window), if it did:
    /// what it did is done, the rest is for another run (exit 1).
    pub incomplete: Option<String>,
    /// Removed letters the broker handed back, and what became of them.
    pub recheck: Recheck,
    /// Why the queue could not be read again after removing, if it could not.
    pub recheck_failed: Option<String>,
}

impl Tally {
    fn record(&mut self, report: &mut (dyn FnMut(&Outcome) + Send), outcome: Outcome) {
        if outcome.is_failure() {
            self.failed += 1;
        } else {
            self.done += 1;
        }
        report(&outcome);
    }

    /// Whether everything asked for was handled (exit code 0).
    pub fn all_handled(&self) -> bool {
        self.failed == 0
            && self.unknown_ids.is_empty()
            && self.incomplete.is_none()
            && self.recheck.left == 0
            && self.recheck_failed.is_none()
    }

    /// Releases the snapshot, then reads the queue again for letters it
    /// removed that the broker handed back ([`recheck`]).
    async fn release_and_recheck(&mut self, target: &Target, snap: Snapshot) {
        let (removed, held) = snap.release_parted().await;
        match recheck::remove_again(target, &removed, &held).await {
            Ok(r) => self.recheck = r,
            Err(e) => self.recheck_failed = Some(format!("{e:#}")),
        }
    }
}

/// The end of a command that may have removed letters: the snapshot
/// released and, when the command went through, its removals checked.
async fn conclude(
    target: &Target,
    snap: Snapshot,
    result: anyhow::Result<Tally>,
) -> anyhow::Result<Tally> {
    match result {
        Ok(mut tally) => {
            tally.incomplete = snap.incomplete.clone();
            tally.release_and_recheck(target, snap).await;
            Ok(tally)
        }
        Err(e) => {
            snap.release().await;
            Err(e)
        }
    }
}

/// What `list` read: the letters that passed the filter, how many were read
/// in all, and how many the broker said were ready.
#[derive(Debug, Clone)]
pub struct Listing {
    pub letters: Vec<Letter>,
    pub read: usize,
    pub ready: u32,
    /// Why `read` is not the whole queue, if it is not.
    pub incomplete: Option<String>,
}

/// Every dead letter that passes `filter`, in queue order; the queue is left
/// as it was.
pub async fn list(target: &Target, filter: &Filter) -> anyhow::Result<Listing> {
    let snap = Snapshot::take(target, "list").await?;
    let ready = snap.expected;
    let incomplete = snap.incomplete.clone();
    let all = snap.release().await;
    let now = Utc::now();
    let letters = filter.apply(&all, now).into_iter().cloned().collect();
    Ok(Listing {
        letters,
        read: all.len(),
        ready,
        incomplete,
    })
}

/// The dead letters an id names (a `message_id`, else a 1-based position),
/// and how many were read in all; the queue is left as it was. Only the
/// window is searched (`list` says when the queue is longer).
pub async fn show(target: &Target, id: &str) -> anyhow::Result<(Vec<Letter>, usize)> {
    let snap = Snapshot::take(target, "show").await?;
    let all = snap.release().await;
    let found = select::find(&all, id)
        .into_iter()
        .map(|i| all[i].clone())
        .collect();
    Ok((found, all.len()))
}
