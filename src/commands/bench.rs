//! `refund-worker bench`.

use std::process::ExitCode;

use crate::cli::BenchProfile;
use crate::config::Settings;

pub async fn bench(
    _settings: &Settings,
    _n: usize,
    _profile: BenchProfile,
    _json: bool,
) -> anyhow::Result<ExitCode> {
    anyhow::bail!("bench: being written")
}
