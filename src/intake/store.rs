//! Storing a window's valid refunds, holding the window through database
//! outages.
//!
//! Invariant: a transient error is retried for as long as it takes, because
//! the deliveries wait unacked in the broker; an error about the data itself
//! is returned at once ([`Stored::Refused`]), since waiting will not fix it.

use super::window::{WindowContext, holding_delays};
use crate::delays::sleep_or_stop;
use crate::storage::intake::{NewRefund, StoreOutcome, store_window};

pub(super) enum Stored {
    Done(Vec<StoreOutcome>),
    ShuttingDown,
    Refused(sqlx::Error),
}

/// Retries transient database errors with capped exponential backoff for as
/// long as it takes (the deliveries wait, unacked, in the broker), until shutdown.
pub(super) async fn store_with_retry(cx: &WindowContext<'_>, news: &[NewRefund<'_>]) -> Stored {
    if news.is_empty() {
        return Stored::Done(Vec::new());
    }
    let mut delays = holding_delays();
    loop {
        match store_window(cx.pool, news).await {
            Ok(outcomes) => return Stored::Done(outcomes),
            Err(e) if !is_transient(&e) => return Stored::Refused(e),
            Err(e) => {
                let delay = delays.next_delay();
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "cannot store a window; holding it unacked");
                metrics::counter!("refund_worker_intake_store_errors_total").increment(1);
                if !sleep_or_stop(cx.shutdown, delay).await {
                    return Stored::ShuttingDown;
                }
            }
        }
    }
}

/// Errors about the data itself (class 22, data exception; class 23, integrity)
/// will fail again however long we wait; anything else may pass.
fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => !matches!(
            db.code().as_deref().map(|c| &c[..2.min(c.len())]),
            Some("22" | "23")
        ),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::TypeNotFound { .. } => false,
        _ => true,
    }
}
