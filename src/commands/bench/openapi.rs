//! `bench --profile openapi`: the pipeline's run (`pipeline::drive`) with
//! every refund for one partner on the OpenAPI channel, one
//! `alipay.trade.refund` per refund against the in-process sandbox.
//!
//! The worker reads its partner from a settings file written into a temp
//! directory with the repository's public sandbox keys (embedded, so the
//! bench runs from any directory); the sandbox verifies with the app key's
//! public half and signs its answers with Alipay's sandbox key.
//!
//! Invariant checked after every run, else it fails: every refund ended
//! `succeeded`, each was paid exactly once across its `out_request_no`s,
//! and the sandbox paid no `out_request_no` twice and nothing else.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use lapin::Connection;
use serde::Serialize;

use super::pipeline::{self, Load, PipelineRun};
use super::rig::{Lane, Rig};
use crate::alipay::openapi::sign::AppKey;
use crate::config::Settings;
use crate::sandbox::OpenApiApp;

/// The bench's OpenAPI partner and app (as in deploy/demo.toml).
pub const PARTNER: &str = "2088000000000009";
const APP_ID: &str = "2021000000000001";
const APP_PRIVATE: &str = include_str!("../../../deploy/sandbox-keys/app-private.pem");
const ALIPAY_PRIVATE: &str = include_str!("../../../deploy/sandbox-keys/alipay-private.pem");
const ALIPAY_PUBLIC: &str = include_str!("../../../deploy/sandbox-keys/alipay-public.pem");

/// How hard the worker may call the gateway.
#[derive(Debug, Clone, Copy)]
pub struct Knobs {
    /// `OPENAPI_CONCURRENCY`.
    pub concurrency: usize,
    /// `OPENAPI_CALLS_PER_SECOND`.
    pub calls_per_second: u32,
}

/// What the OpenAPI run adds to the pipeline's figures.
#[derive(Debug, Serialize)]
pub struct OpenApiFigures {
    pub concurrency: usize,
    pub calls_per_second: u32,
    /// `alipay.trade.refund` calls the sandbox counted.
    pub refund_calls: u64,
    /// `alipay.trade.fastpay.refund.query` calls.
    pub query_calls: u64,
    /// Calls the sandbox refused (signature, app, parameters): 0 in a good run.
    pub refused_calls: u64,
    /// Refund and query calls per 1000 refunds (1000 = one call each).
    pub calls_per_1000: u64,
    /// Refunds the sandbox paid exactly once.
    pub paid_once: usize,
}

/// Runs `n` refunds for the OpenAPI partner through a fresh worker and sandbox.
pub async fn measure(
    settings: &Settings,
    conn: &Connection,
    id: &str,
    n: usize,
    knobs: Knobs,
) -> anyhow::Result<(PipelineRun, OpenApiFigures)> {
    let dir = std::env::temp_dir().join(format!("refund-worker-bench-{id}"));
    let result = in_dir(settings, conn, id, n, knobs, &dir).await;
    std::fs::remove_dir_all(&dir).ok();
    result
}

async fn in_dir(
    settings: &Settings,
    conn: &Connection,
    id: &str,
    n: usize,
    knobs: Knobs,
    dir: &Path,
) -> anyhow::Result<(PipelineRun, OpenApiFigures)> {
    let lane = lane(write_config(dir)?, knobs)?;
    let mut rig = Rig::start(settings, conn, id, lane).await?;
    let result = match pipeline::drive_costed(&mut rig, conn, n, Load::Saturation).await {
        Ok(run) => check(&rig, n, knobs).await.map(|figures| (run, figures)),
        Err(e) => Err(e),
    };
    let usage = rig.finish(settings).await;
    let (run, figures) = result?;
    Ok((run.with_usage(usage), figures))
}

/// The keys and a settings file with one `[[partners]]` table on the
/// OpenAPI channel, written into `dir`; the file's path.
fn write_config(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("while creating {}", dir.display()))?;
    let private = dir.join("app-private.pem");
    let public = dir.join("alipay-public.pem");
    std::fs::write(&private, APP_PRIVATE)?;
    std::fs::write(&public, ALIPAY_PUBLIC)?;
    let toml = format!(
        "[[partners]]\nid = \"{PARTNER}\"\nchannel = \"openapi\"\napp_id = \"{APP_ID}\"\n\
         private_key_file = {:?}\nalipay_public_key_file = {:?}\n",
        private.display().to_string(),
        public.display().to_string(),
    );
    let file = dir.join("bench.toml");
    std::fs::write(&file, toml)?;
    Ok(file)
}

/// The worker's settings file and limits, the sandbox's app and key.
fn lane(config: PathBuf, knobs: Knobs) -> anyhow::Result<Lane> {
    let app_key = AppKey::parse(APP_PRIVATE).context("the embedded app key")?;
    let alipay_key = AppKey::parse(ALIPAY_PRIVATE).context("the embedded Alipay key")?;
    Ok(Lane {
        partner: PARTNER.into(),
        config: Some(config),
        env: vec![
            ("OPENAPI_CONCURRENCY", knobs.concurrency.to_string()),
            (
                "OPENAPI_CALLS_PER_SECOND",
                knobs.calls_per_second.to_string(),
            ),
        ],
        openapi_apps: vec![OpenApiApp {
            app_id: APP_ID.into(),
            partner: PARTNER.into(),
            app_public: app_key.public_key(),
        }],
        alipay_key: Some(Arc::new(alipay_key)),
        workers: 1,
    })
}

/// Every refund succeeded and was paid once; the sandbox's call counts.
async fn check(rig: &Rig, n: usize, knobs: Knobs) -> anyhow::Result<OpenApiFigures> {
    let rows: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT r.refund_id, r.status, r.trade_no, q.out_request_no
         FROM refunds r LEFT JOIN openapi_requests q ON q.refund_id = r.refund_id",
    )
    .fetch_all(&rig.pool)
    .await?;
    let mut paid: HashMap<&str, (u32, &str)> = HashMap::with_capacity(n);
    for (refund_id, status, trade_no, out_request_no) in &rows {
        let times = out_request_no
            .as_deref()
            .map(|no| rig.sandbox.openapi_times_paid(trade_no, no))
            .unwrap_or(0);
        let entry = paid.entry(refund_id).or_insert((0, status));
        entry.0 += times;
    }
    anyhow::ensure!(paid.len() == n, "{} refunds stored of {n}", paid.len());
    let wrong: Vec<_> = paid
        .iter()
        .filter(|(_, (times, status))| *times != 1 || *status != "succeeded")
        .take(5)
        .collect();
    anyhow::ensure!(
        wrong.is_empty(),
        "refunds not succeeded and paid once (id, (times paid, status)), e.g. {wrong:?}"
    );
    let view = rig.sandbox.ledger().openapi;
    let twice = view.refunds.iter().filter(|r| r.times_paid != 1).count();
    anyhow::ensure!(
        twice == 0 && view.refunds.len() == n && view.moved_total_fen == n as i64,
        "the sandbox made {} refunds ({twice} not paid exactly once) moving {} fen for {n} of 1 fen",
        view.refunds.len(),
        view.moved_total_fen
    );
    let calls = view.calls;
    Ok(OpenApiFigures {
        concurrency: knobs.concurrency,
        calls_per_second: knobs.calls_per_second,
        refund_calls: calls.refund,
        query_calls: calls.query,
        refused_calls: calls.refused,
        calls_per_1000: ((calls.refund + calls.query) * 1000).div_ceil(n as u64),
        paid_once: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;

    #[test]
    fn the_written_settings_file_configures_the_partner_on_the_openapi_channel() {
        let dir = tempfile::tempdir().unwrap();
        let file = write_config(dir.path()).unwrap();
        let text = std::fs::read_to_string(file).unwrap();
        let settings =
            Settings::from_source(&Source::new(Default::default(), Some(&text)).unwrap()).unwrap();
        let app = settings.alipay.openapi.app_of(PARTNER).unwrap();
        assert_eq!(app.app_id, APP_ID);
        assert_eq!(settings.batch.openapi_partners, [PARTNER]);
    }
}
