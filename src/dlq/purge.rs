//! `dlq purge`: removes the chosen dead letters for good, each reported as
//! it goes. With `--save FILE` they are first appended to the file, which is
//! fsynced before the first removal; if saving fails nothing is removed.
//! Without `--yes` ([`PurgeMode::DryRun`]) it only says what would go.

use std::path::PathBuf;

use chrono::Utc;

use super::render::{Action, Outcome};
use super::save;
use super::select::Selection;
use super::snapshot::Snapshot;
use super::{Tally, Target, conclude};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurgeMode {
    /// Remove nothing; report what would go.
    DryRun,
    /// Remove, after saving to the file if one is given.
    Remove { save: Option<PathBuf> },
}

pub async fn purge(
    target: &Target,
    selection: &Selection,
    mode: &PurgeMode,
    report: &mut (dyn FnMut(&Outcome) + Send),
) -> anyhow::Result<Tally> {
    let snap = Snapshot::take(target, "purge").await?;
    let result = purge_held(target, &snap, selection, mode, report).await;
    conclude(target, snap, result).await
}

async fn purge_held(
    target: &Target,
    snap: &Snapshot,
    selection: &Selection,
    mode: &PurgeMode,
    report: &mut (dyn FnMut(&Outcome) + Send),
) -> anyhow::Result<Tally> {
    let now = Utc::now();
    let chosen = selection.choose(&snap.letters, now);
    let mut tally = Tally {
        unknown_ids: chosen.unknown_ids,
        ..Tally::default()
    };
    let save_to = match mode {
        PurgeMode::DryRun => {
            for &i in &chosen.indexes {
                tally.record(report, Outcome::of(&snap.letters[i], Action::WouldPurge));
            }
            return Ok(tally);
        }
        PurgeMode::Remove { save } => save,
    };
    if let Some(path) = save_to {
        let letters: Vec<_> = chosen.indexes.iter().map(|&i| &snap.letters[i]).collect();
        save::save(path, &letters, &target.dead_queue, now)?;
    }
    let mut broken: Option<String> = None;
    for &i in &chosen.indexes {
        let letter = &snap.letters[i];
        let action = match &broken {
            Some(why) => Action::Left(format!("not attempted: {why}")),
            None => match snap.remove(i).await {
                Ok(()) => Action::Purged,
                Err(e) => {
                    let why = format!("{e:#}");
                    broken = Some(why.clone());
                    Action::Left(why)
                }
            },
        };
        tally.record(report, Outcome::of(letter, action));
    }
    Ok(tally)
}
