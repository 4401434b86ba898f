use std::process::ExitCode;

use clap::Parser;
use refund_worker::cli::{Cli, Command};
use refund_worker::config::Settings;
use refund_worker::{commands, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("refund-worker: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    // The sandbox logs why it refused a request: that is what it is for.
    let quiet = !matches!(cli.command, Command::Run { .. } | Command::Sandbox(_));
    telemetry::init(settings.log_format, if quiet { "warn" } else { "info" });
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("refund-worker: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::dispatch(cli.command, settings)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("refund-worker: {e:#}");
            ExitCode::FAILURE
        }
    }
}
