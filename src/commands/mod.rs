//! One module per subcommand; each returns the process exit code.

pub(crate) mod batch;
pub(crate) mod bench;
pub(crate) mod dlq;
pub(crate) mod harness;
pub(crate) mod prune;
pub mod publish;
pub(crate) mod refund;
pub(crate) mod run;
pub(crate) mod sandbox;
pub(crate) mod startup;
pub(crate) mod watch;

use std::process::ExitCode;

use crate::cli::{BatchCommand, Command, RefundCommand};
use crate::config::Settings;
use crate::storage;

/// Exit code 2: a bad setting or argument (contract §1).
pub const EXIT_USAGE: u8 = 2;

/// What `show` commands print: one JSON object with `--json`, else the
/// human form; an unknown id is one line on stderr and exit 1.
pub fn print_found<T: serde::Serialize>(
    found: Option<T>,
    unknown: impl FnOnce() -> String,
    json: bool,
    text: impl FnOnce(&mut std::io::StdoutLock<'static>, &T) -> std::io::Result<()>,
) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let Some(view) = found else {
        eprintln!("{}", unknown());
        return Ok(ExitCode::from(1));
    };
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&view)?)?;
    } else {
        text(&mut out, &view)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn dispatch(command: Command, settings: Settings) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run { roles, no_migrate } => run::run(settings, &roles, !no_migrate).await,
        Command::Migrate => {
            storage::connect_and_migrate(&settings.database_url, 2).await?;
            println!("database ready: migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::Publish { file } => publish::publish(&settings, file.as_deref()).await,
        Command::Refund { command } => refund_command(&settings, command).await,
        Command::Batch { command } => batch_command(&settings, command).await,
        Command::WatchResults {
            terminal,
            idle_ms,
            timeout_ms,
        } => {
            let w = watch::Watch {
                terminal,
                idle: std::time::Duration::from_millis(idle_ms),
                timeout: std::time::Duration::from_millis(timeout_ms),
            };
            watch::watch(&settings, w).await
        }
        Command::Bench {
            refunds,
            profile,
            rate,
            seconds,
            openapi_concurrency,
            openapi_calls_per_second,
            repeat,
            workers,
            json,
        } => {
            let knobs = bench::Knobs {
                steady: bench::Steady { rate, seconds },
                openapi: bench::OpenApiKnobs {
                    concurrency: openapi_concurrency,
                    calls_per_second: openapi_calls_per_second,
                },
                repeat: repeat as usize,
                workers: workers as usize,
            };
            bench::bench(&settings, refunds, profile, knobs, json).await
        }
        Command::Sandbox(args) => sandbox::sandbox(&settings, *args).await,
        Command::Soak {
            workers,
            refunds,
            seed,
            fault_every_ms,
            duration,
            restart_every,
            realistic,
            openapi_share,
            cluster,
            kill_node_every,
        } => {
            if workers == 0 || refunds == 0 {
                eprintln!("--workers and --refunds must be at least 1");
                return Ok(ExitCode::from(EXIT_USAGE));
            }
            let args = crate::soak::SoakArgs {
                workers,
                refunds,
                seed: seed.unwrap_or_else(rand::random),
                fault_every: std::time::Duration::from_millis(fault_every_ms),
                duration: duration.map(|a| a.0),
                restart_every: restart_every.map(|a| a.0),
                realistic,
                openapi_share,
                kill_node_every: kill_node_every.filter(|_| cluster).map(|a| a.0),
            };
            crate::soak::soak(&settings, args).await
        }
        Command::Dlq { command } => dlq::dlq(&settings, command).await,
        Command::Prune {
            older_than,
            dry_run,
            chunk,
        } => prune::prune(&settings, older_than, dry_run, chunk).await,
    }
}

/// `refund show|retry|settle`.
async fn refund_command(settings: &Settings, command: RefundCommand) -> anyhow::Result<ExitCode> {
    match command {
        RefundCommand::Show { id, json } => refund::show(settings, &id, json).await,
        RefundCommand::Retry {
            ids,
            code,
            since,
            by,
        } => refund::retry(settings, ids, code, since.as_deref(), by).await,
        RefundCommand::Settle {
            id,
            succeeded: _,
            failed,
            reason,
            by,
        } => refund::settle(settings, &id, failed, &reason, &by).await,
    }
}

/// `batch release|show|list|form`.
async fn batch_command(settings: &Settings, command: BatchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BatchCommand::Release {
            batch_no,
            reason,
            by,
        } => batch::release(settings, &batch_no, &reason, &by).await,
        BatchCommand::Show { batch_no, json } => batch::show(settings, &batch_no, json).await,
        BatchCommand::List {
            awaiting_operator,
            status,
            limit,
            json,
        } => {
            let status = awaiting_operator
                .then(|| "awaiting_operator".to_owned())
                .or(status);
            batch::list(settings, status.as_deref(), limit, json).await
        }
        BatchCommand::Form { batch_no } => batch::form(settings, &batch_no).await,
    }
}
