//! The soak's own broker connection (publishing with confirms, inspecting,
//! collecting), opened again when a real restart (`--restart-every`) or any
//! other loss closed it.

use std::time::Duration;

use lapin::options::ConfirmSelectOptions;
use lapin::{Channel, Connection};

use crate::amqp;

/// How long [`Link::reopen`] keeps trying: longer than a broker restart.
const REOPEN_LIMIT: Duration = Duration::from_secs(120);

pub struct Link {
    url: String,
    conn: Connection,
    pub channel: Channel,
}

impl Link {
    /// A connection and a channel in confirm mode.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let conn = amqp::connect(url, "refund-worker soak").await?;
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self {
            url: url.to_owned(),
            conn,
            channel,
        })
    }

    /// Replaces the connection, retrying while the broker is away.
    pub async fn reopen(&mut self) -> anyhow::Result<()> {
        self.conn.close(200, "soak reopening".into()).await.ok();
        let deadline = tokio::time::Instant::now() + REOPEN_LIMIT;
        loop {
            match Self::open(&self.url).await {
                Ok(fresh) => {
                    *self = fresh;
                    return Ok(());
                }
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "soak: the broker is not back yet");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e.context(format!("no broker for {REOPEN_LIMIT:?}"))),
            }
        }
    }

    pub async fn close(self) {
        self.conn.close(200, "soak done".into()).await.ok();
    }
}
