//! The soak's OpenAPI partner: its ids, the public sandbox keys (embedded,
//! so a soak runs from any directory), the config file the workers are
//! started with, and the sandbox's side of the same app.
//!
//! Invariants: the workers sign with the key the sandbox verifies with
//! (`app-private.pem` and its public half) and verify what the sandbox
//! signs (`alipay-private.pem` and `alipay-public.pem`); the config
//! directory lives as long as [`WorkerConfig`] and is removed with it. The
//! keys are deploy/sandbox-keys/ (public, test only): never a real app's.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::alipay::openapi::sign::AppKey;
use crate::sandbox::{OpenApiApp, SandboxConfig};

/// The OpenAPI partner, beside the mapi one (`harness::PARTNER`).
pub const PARTNER: &str = "2088000000000009";
/// Its app at Alipay.
pub const APP_ID: &str = "2021000000000001";

const APP_PRIVATE: &str = include_str!("../../deploy/sandbox-keys/app-private.pem");
const ALIPAY_PRIVATE: &str = include_str!("../../deploy/sandbox-keys/alipay-private.pem");
const ALIPAY_PUBLIC: &str = include_str!("../../deploy/sandbox-keys/alipay-public.pem");

/// The workers' TOML file, with the OpenAPI partner's `[[partners]]` table,
/// and the key files it names, in a directory of their own.
pub struct WorkerConfig {
    dir: PathBuf,
    pub file: PathBuf,
}

impl WorkerConfig {
    /// Writes the keys and the file into a fresh directory named after the run.
    pub fn write(run_id: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("refund-worker-soak-{run_id}"));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("while creating {}", dir.display()))?;
        let private = dir.join("app-private.pem");
        let public = dir.join("alipay-public.pem");
        let file = dir.join("worker.toml");
        write(&private, APP_PRIVATE)?;
        write(&public, ALIPAY_PUBLIC)?;
        write(&file, &partners_table(&private, &public))?;
        Ok(WorkerConfig { dir, file })
    }
}

impl Drop for WorkerConfig {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("while writing {}", path.display()))
}

/// The `[[partners]]` table of the OpenAPI partner (the mapi partner comes
/// from the environment). Paths are TOML literal strings: no escapes.
fn partners_table(private: &Path, public: &Path) -> String {
    format!(
        "[[partners]]\nid = \"{PARTNER}\"\nchannel = \"openapi\"\napp_id = \"{APP_ID}\"\n\
         private_key_file = '{}'\nalipay_public_key_file = '{}'\n",
        private.display(),
        public.display()
    )
}

/// The sandbox knows the app (verifying with the public half of the key the
/// workers sign with) and signs its answers as Alipay.
pub fn serve_app(config: &mut SandboxConfig) -> anyhow::Result<()> {
    let app = AppKey::parse(APP_PRIVATE).context("while reading the app's sandbox key")?;
    let alipay = AppKey::parse(ALIPAY_PRIVATE).context("while reading Alipay's sandbox key")?;
    config.openapi_apps = vec![OpenApiApp {
        app_id: APP_ID.into(),
        partner: PARTNER.into(),
        app_public: app.public_key(),
    }];
    config.alipay_key = Some(Arc::new(alipay));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Settings, Source};

    #[test]
    fn the_written_file_configures_the_openapi_partner_with_the_embedded_keys() {
        let c = WorkerConfig::write(&format!("test-{}", std::process::id())).unwrap();
        let toml = std::fs::read_to_string(&c.file).unwrap();
        let src = Source::new(Default::default(), Some(&toml)).unwrap();
        let settings = Settings::from_source(&src).unwrap();
        let apps = &settings.alipay.openapi.apps;
        assert_eq!(apps.len(), 1);
        assert_eq!(
            (apps[0].partner.as_str(), apps[0].app_id.as_str()),
            (PARTNER, APP_ID)
        );
        let dir = c.dir.clone();
        drop(c);
        assert!(!dir.exists(), "removed with the config");
    }
}
