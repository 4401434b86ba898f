//! A broker connection's loss noticed by the session that uses it, whatever
//! that session is awaiting at the moment. lapin fails the calls pending
//! when a connection dies, but a call made in the instant the connection
//! dies (an ack, a publish) can be left waiting for ever: the I/O loop that
//! would have written or failed its frame is already gone. A session run
//! through [`unless_lost`] ends with an error as soon as its connection is
//! no longer connected, and its role reconnects after its backoff (over
//! every address of `AMQP_URL`), as after any other lost session.

use std::future::Future;
use std::time::Duration;

use lapin::Connection;

/// How often the connection's state is looked at.
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// Resolves once `conn` is no longer connected (lost, or closed by the broker).
pub async fn lost(conn: &Connection) -> anyhow::Error {
    loop {
        let status = conn.status();
        if !status.connected() {
            let how = if status.errored() { "lost" } else { "closed" };
            return anyhow::anyhow!("the broker connection was {how}");
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
}

/// Runs `session` on `conn` until it ends, or until `conn` is lost, then
/// with an error. Dropping the session then is what a crash would be:
/// whatever it held unacked, the broker delivers again.
pub async fn unless_lost<T>(
    conn: &Connection,
    session: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::select! {
        // The session's own error says more than the state, when both come.
        biased;
        result = session => result,
        gone = lost(conn) => Err(gone),
    }
}

/// The longest closing a connection may take before it is dropped.
pub const CLOSE_LIMIT: Duration = Duration::from_secs(2);

/// Closes `conn`, or drops it after [`CLOSE_LIMIT`]: a close sent on a
/// connection that died in the instant can wait for ever, like any other
/// call, and a role (or a command) going on matters more than a clean
/// goodbye. Dropping it is what a crash would be: whatever was unacked, the
/// broker delivers again.
pub async fn close(conn: &Connection, why: &str) {
    let _ = tokio::time::timeout(CLOSE_LIMIT, conn.close(200, why.into())).await;
}
