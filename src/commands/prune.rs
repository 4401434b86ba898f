//! `refund-worker prune --older-than AGE [--dry-run] [--chunk N]`: retention
//! (what goes and what stays: `storage::prune`). Each chunk is its own short
//! transaction, so a prune beside the live fleet holds no lock for long and
//! can be stopped at any moment; running it again goes on where it stopped.

use std::process::ExitCode;
use std::time::Duration;

use crate::config::Settings;
use crate::dlq::Age;
use crate::storage::{self, prune};

/// Below this, a typo (`30m` for `30d`) would take the history of refunds
/// that finished minutes ago.
const SHORTEST: Duration = Duration::from_secs(86_400);

pub async fn prune(
    settings: &Settings,
    older_than: Age,
    dry_run: bool,
    chunk: i64,
) -> anyhow::Result<ExitCode> {
    if older_than.0 < SHORTEST {
        eprintln!("refund-worker: --older-than {older_than} is shorter than 1d: nothing pruned");
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    let pool = storage::connect_migrated(&settings.database_url, 2).await?;
    let age = chrono::Duration::from_std(older_than.0)?;
    let cutoff = chrono::Utc::now() - age;
    for target in prune::Target::ALL {
        if dry_run {
            let n = prune::count(&pool, target, cutoff).await?;
            println!(
                "would prune {n} {} (older than {older_than})",
                target.label()
            );
            continue;
        }
        let mut total = 0u64;
        loop {
            let n = prune::chunk(&pool, target, cutoff, chunk).await?;
            total += n;
            if n == 0 {
                break;
            }
            tracing::debug!(target = target.label(), n, total, "pruned a chunk");
        }
        println!(
            "pruned {total} {} (older than {older_than})",
            target.label()
        );
    }
    pool.close().await;
    Ok(ExitCode::SUCCESS)
}
