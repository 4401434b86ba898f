//! `refund-worker dlq list|show|replay|purge`: the on-call shell around
//! [`crate::dlq`]. Reports go to stdout one line per message as they happen;
//! summaries and problems to stderr. Exit 0 when everything asked for was
//! done, 1 when some message could not be handled (the rest still are), 2
//! for bad arguments — including `purge` without `--yes`.

use std::process::ExitCode;

use crate::cli::{DlqCommand, PurgeSelection, ReplaySelection};
use crate::config::Settings;
use crate::dlq::{self, Filter, PurgeMode, Selection, Tally, Target, render};

use super::EXIT_USAGE;

pub async fn dlq(settings: &Settings, command: DlqCommand) -> anyhow::Result<ExitCode> {
    let target = Target::from_settings(settings);
    match command {
        DlqCommand::List {
            limit,
            code,
            older_than,
            json,
        } => {
            let filter = Filter {
                code,
                older_than,
                limit,
            };
            list(&target, &filter, json).await
        }
        DlqCommand::Show { id } => show(&target, &id).await,
        DlqCommand::Replay { which, dry_run } => {
            replay(&target, &replay_selection(which), dry_run).await
        }
        DlqCommand::Purge { which, yes, save } => {
            let mode = if yes {
                PurgeMode::Remove { save }
            } else {
                PurgeMode::DryRun
            };
            purge(&target, &purge_selection(which), &mode).await
        }
    }
}

fn replay_selection(which: ReplaySelection) -> Selection {
    match (which.id, which.code, which.all) {
        (_, Some(code), _) => Selection::Code(code),
        (_, None, true) => Selection::All,
        (ids, None, false) => Selection::Ids(ids),
    }
}

fn purge_selection(which: PurgeSelection) -> Selection {
    match (which.id, which.code, which.older_than) {
        (_, Some(code), _) => Selection::Code(code),
        (_, None, Some(age)) => Selection::OlderThan(age),
        (ids, None, None) => Selection::Ids(ids),
    }
}

async fn list(target: &Target, filter: &Filter, json: bool) -> anyhow::Result<ExitCode> {
    let listing = dlq::list(target, filter).await?;
    for letter in &listing.letters {
        if json {
            println!("{}", render::list_json(letter));
        } else {
            println!("{}", render::list_line(letter));
        }
    }
    eprintln!(
        "{} shown of {} dead letters in {} (all left in the queue)",
        listing.letters.len(),
        listing.read,
        target.dead_queue
    );
    warn_short_read(listing.read, listing.ready);
    if let Some(why) = &listing.incomplete {
        eprintln!(
            "only the first {} of {} were read ({why}); the rest are in the queue, unlisted",
            listing.read, listing.ready
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Says so when fewer messages came than the broker counted (another reader?).
fn warn_short_read(read: usize, ready: u32) {
    if read < usize::try_from(ready).unwrap_or(usize::MAX) {
        eprintln!(
            "warning: the broker counted {ready} ready but only {read} arrived \
             (is something else reading the dead-letter queue?)"
        );
    }
}

async fn show(target: &Target, id: &str) -> anyhow::Result<ExitCode> {
    let (found, of) = dlq::show(target, id).await?;
    if found.is_empty() {
        eprintln!(
            "no dead letter with message_id or position {id} in {} ({of} there)",
            target.dead_queue
        );
        return Ok(ExitCode::from(1));
    }
    if found.len() > 1 {
        eprintln!(
            "{} dead letters have message_id {id}; showing each",
            found.len()
        );
    }
    for (n, letter) in found.iter().enumerate() {
        if n > 0 {
            println!();
        }
        print!("{}", render::show_text(letter, of));
    }
    Ok(ExitCode::SUCCESS)
}

async fn replay(target: &Target, selection: &Selection, dry_run: bool) -> anyhow::Result<ExitCode> {
    let mut print = |o: &dlq::Outcome| println!("{}", render::outcome_line(o));
    let tally = dlq::replay(target, selection, dry_run, &mut print).await?;
    let verb = if dry_run { "would replay" } else { "replayed" };
    let mut summary = format!("{verb} {}", tally.done);
    if tally.failed > 0 {
        summary.push_str(&format!(
            "; {} left in {} (see LEFT IN QUEUE above)",
            tally.failed, target.dead_queue
        ));
    }
    if dry_run {
        summary.push_str("; dry run: nothing was changed");
    }
    Ok(finish(&summary, &tally))
}

async fn purge(
    target: &Target,
    selection: &Selection,
    mode: &PurgeMode,
) -> anyhow::Result<ExitCode> {
    let mut print = |o: &dlq::Outcome| println!("{}", render::outcome_line(o));
    let tally = dlq::purge(target, selection, mode, &mut print).await?;
    match mode {
        PurgeMode::DryRun => {
            report_unknown(&tally);
            eprintln!(
                "refund-worker: purge removes dead letters for good; nothing was removed: \
                 add --yes to remove the {} listed above",
                tally.done
            );
            Ok(ExitCode::from(EXIT_USAGE))
        }
        PurgeMode::Remove { save } => {
            let mut summary = format!("purged {}", tally.done);
            if let Some(path) = save {
                summary.push_str(&format!(" (saved first to {})", path.display()));
            }
            if tally.failed > 0 {
                summary.push_str(&format!("; {} left in {}", tally.failed, target.dead_queue));
            }
            Ok(finish(&summary, &tally))
        }
    }
}

fn report_unknown(tally: &Tally) {
    for id in &tally.unknown_ids {
        eprintln!("no dead letter with message_id or position {id}");
    }
}

/// Prints the summary and the ids that named nothing; the exit code.
fn finish(summary: &str, tally: &Tally) -> ExitCode {
    report_unknown(tally);
    eprintln!("{summary}");
    if let Some(why) = &tally.incomplete {
        eprintln!(
            "only part of the dead-letter queue was read ({why}): what is above is done; run it again for the rest"
        );
    }
    if tally.recheck.again > 0 {
        eprintln!(
            "{} removed letters came back to the queue (the broker lost their acks) and were removed again",
            tally.recheck.again
        );
    }
    if tally.recheck.left > 0 {
        eprintln!(
            "{} removed letters are back in the queue after three tries to remove them again: list the queue and run it again (replaying one twice is harmless)",
            tally.recheck.left
        );
    }
    if let Some(why) = &tally.recheck_failed {
        eprintln!(
            "could not read the queue again to check that the removed letters stayed removed ({why}): list it to see"
        );
    }
    if tally.all_handled() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
