//! The soak's worker processes: every role, each on its own HTTP port,
//! reaching PostgreSQL and RabbitMQ through the soak's proxies, killed and
//! restarted by the fault schedule; each serves the mapi partner (from the
//! environment) and the OpenAPI partner (from the config file written by
//! `openapi`), both against the soak's sandbox. Invariant: dropping
//! [`Workers`] leaves no worker behind, stopped or running, and then removes
//! the config file.

use std::process::Child;

use anyhow::Context;

use super::gateway::{ABSENCE_SETTLE, KEY};
use super::openapi::WorkerConfig;
use super::stall::{ALIPAY_TIMEOUT, Stalls};
use crate::commands::harness::PARTNER;
use crate::commands::harness::worker::{stop, worker_command};

/// The worker processes, each on its own HTTP port, restarted by the schedule.
pub(crate) struct Workers {
    db_url: String,
    amqp_url: String,
    prefix: String,
    gateway: String,
    /// The TOML file with the OpenAPI partner; dropped after the children.
    config: WorkerConfig,
    pub ports: Vec<u16>,
    pub children: Vec<Option<Child>>,
    /// Who is stopped (`stall`) until when.
    pub(super) stalls: Stalls,
}

impl Workers {
    /// `n` workers on free ports, started.
    pub fn start(
        n: usize,
        db_url: String,
        amqp_url: String,
        prefix: String,
        gateway: String,
        config: WorkerConfig,
    ) -> anyhow::Result<Self> {
        let mut ports = Vec::new();
        for _ in 0..n {
            ports.push(
                std::net::TcpListener::bind("127.0.0.1:0")?
                    .local_addr()?
                    .port(),
            );
        }
        let mut workers = Workers {
            db_url,
            amqp_url,
            prefix,
            gateway,
            config,
            ports,
            children: (0..n).map(|_| None).collect(),
            stalls: Stalls::new(n),
        };
        for i in 0..n {
            workers.spawn(i)?;
        }
        Ok(workers)
    }

    pub fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let port = self.ports[i].to_string();
        let listen = format!("127.0.0.1:{port}");
        let notify = format!("http://127.0.0.1:{port}/alipay/notify");
        let timeout_ms = ALIPAY_TIMEOUT.as_millis().to_string();
        let settle_ms = ABSENCE_SETTLE.as_millis().to_string();
        // The workers log errors only, unless SOAK_WORKER_LOG asks for more
        // (a `RUST_LOG` filter), to see why a run did not settle.
        let worker_log = std::env::var("SOAK_WORKER_LOG").unwrap_or_else(|_| "error".into());
        let env = [
            ("AMQP_URL", self.amqp_url.as_str()),
            ("AMQP_RESULTS_QUEUE", "true"),
            ("ALIPAY_PARTNER", PARTNER),
            ("ALIPAY_KEY", KEY),
            ("ALIPAY_GATEWAY", self.gateway.as_str()),
            // The sandbox serves OpenAPI on the same /gateway.do; the rate
            // limit is Alipay's concern, not the soak's.
            ("ALIPAY_OPENAPI_GATEWAY", self.gateway.as_str()),
            ("OPENAPI_CONCURRENCY", "16"),
            ("OPENAPI_CALLS_PER_SECOND", "1000"),
            ("ALIPAY_NOTIFY_URL", notify.as_str()),
            ("ALIPAY_TIMEOUT_MS", timeout_ms.as_str()),
            ("HTTP_LISTEN", listen.as_str()),
            ("BATCH_LINGER_MS", "200"),
            ("SUBMIT_RETRY_BASE_MS", "50"),
            ("ITEM_RETRY_BASE_MS", "500"),
            ("SUBMIT_RETRY_CAP_MS", "1000"),
            ("SUBMIT_GIVE_UP_MS", "20000"),
            ("SUBMIT_ABSENCE_SETTLE_MS", settle_ms.as_str()),
            ("RECONCILE_AFTER_MS", "3000"),
            ("SHUTDOWN_GRACE_MS", "2000"),
            ("RUST_LOG", worker_log.as_str()),
        ];
        let mut cmd = worker_command(
            Some(&self.config.file),
            &self.db_url,
            &self.prefix,
            "intake,batch,submit,http,relay,reconcile",
            &env,
        )?;
        self.children[i] = Some(cmd.spawn().context("while starting a worker")?);
        Ok(())
    }

    /// SIGKILL, which ends a stopped process too: nothing to continue after.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            c.kill().ok();
            c.wait().ok();
        }
        self.stalls.forget(i);
    }

    /// SIGTERM and wait; a stopped worker is continued first, or it would
    /// never act on the signal and the wait would last for ever.
    pub fn stop_all(&mut self) {
        self.resume_all();
        for c in self.children.iter_mut().filter_map(Option::take) {
            let mut c = c;
            stop(&mut c);
        }
    }
}

impl Drop for Workers {
    /// An interrupted soak leaves no worker behind, stopped or running.
    fn drop(&mut self) {
        self.resume_all();
        for i in 0..self.children.len() {
            self.kill(i);
        }
    }
}
