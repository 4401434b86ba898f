//! One module per subcommand; each returns the process exit code.

pub mod bench;
pub mod publish;
pub mod refund;
pub mod run;
pub mod sandbox;

use std::process::ExitCode;

use crate::cli::{Command, RefundCommand};
use crate::config::Settings;
use crate::storage;

/// Exit code 2: a bad setting or argument (contract §1).
pub const EXIT_USAGE: u8 = 2;

pub async fn dispatch(command: Command, settings: Settings) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run { roles } => run::run(settings, &roles).await,
        Command::Migrate => {
            storage::connect_and_migrate(&settings.database_url, 2).await?;
            println!("database ready: migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::Publish { file } => publish::publish(&settings, file.as_deref()).await,
        Command::Refund {
            command: RefundCommand::Show { id, json },
        } => refund::show(&settings, &id, json).await,
        Command::Bench {
            refunds,
            profile,
            json,
        } => bench::bench(&settings, refunds, profile, json).await,
        Command::Sandbox(args) => sandbox::sandbox(&settings, *args).await,
    }
}
