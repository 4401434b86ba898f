//! The submitter as a role ([`crate::role_loop`]): at once while there is
//! work; when idle, until a new batch is announced (`NOTIFY batches`) or the
//! poll comes round, which also covers retries that fall due. A listener the
//! database refuses, or one lost, is tried for again every 30 s; until then
//! the poll alone serves.

use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Step, Submitter};
use crate::role_loop::{self, Pace, Role};

const IDLE_POLL: Duration = Duration::from_millis(200);
/// How long a submitter without a listener waits before trying for one again.
const RELISTEN: Duration = Duration::from_secs(30);

struct Waking {
    submitter: Submitter,
    listener: Option<PgListener>,
    /// When a missing listener is tried for again.
    relisten_at: Instant,
}

pub(super) async fn run(submitter: Submitter, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = listen(&submitter.pool).await;
    role_loop::run(
        Waking {
            submitter,
            listener,
            relisten_at: Instant::now() + RELISTEN,
        },
        shutdown,
    )
    .await
}

impl Role for Waking {
    const NAME: &'static str = "submitter";

    async fn work(&mut self, _: &CancellationToken) -> anyhow::Result<Pace> {
        Ok(match self.submitter.step(Utc::now()).await? {
            Step::Idle => Pace::Idle(IDLE_POLL),
            _ => Pace::Busy,
        })
    }

    async fn idle(&mut self, wait: Duration) {
        if self.listener.is_none() && Instant::now() >= self.relisten_at {
            self.listener = listen(&self.submitter.pool).await;
            self.relisten_at = Instant::now() + RELISTEN;
        }
        let Some(listener) = &mut self.listener else {
            return tokio::time::sleep(wait).await;
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            woken = listener.recv() => {
                if woken.is_err() {
                    // Lost (a database restart): poll until the next try.
                    self.listener = None;
                }
            }
        }
    }
}

/// A listener on `batches`, or `None` (polling only) when the database
/// refuses one now; the next failed wake tries again.
async fn listen(pool: &PgPool) -> Option<PgListener> {
    let mut l = PgListener::connect_with(pool).await.ok()?;
    l.listen("batches").await.ok()?;
    Some(l)
}
