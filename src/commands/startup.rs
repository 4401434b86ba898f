//! `run`'s start: PostgreSQL migrated (or, with `--no-migrate`, found
//! migrated by the migration Job) and the topology declared before any role
//! starts. A service that is not answering yet (restarting, or started
//! at the same moment by compose) is waited for with backoff, until it
//! answers or the process is told to stop; any other error (a bad URL,
//! refused credentials, a failed migration) ends the start at once.

use anyhow::Context;
use sqlx::PgPool;

use crate::amqp::{self, Topology};
use crate::config::Settings;
use crate::delays::Delays;
use crate::health::gate::Gate;
use crate::storage;
use crate::storage::schema::SchemaBehind;

/// PostgreSQL's "the database system is starting up" and "terminating
/// connection due to administrator command" (a restart).
const STARTING_OR_STOPPING: &[&str] = &["57P03", "57P01"];
/// PostgreSQL's invalid_catalog_name: the database does not exist yet (with
/// `--no-migrate`, the migration Job creates it).
const NO_DATABASE_YET: &str = "3D000";
/// PostgreSQL's lock_not_available: a migration gave up waiting for a lock
/// the live fleet held (`MIGRATION_LOCK_TIMEOUT`); it is tried again.
const LOCK_NOT_AVAILABLE: &str = "55P03";
/// AMQP's CONNECTION_FORCED: the broker is stopping.
const CONNECTION_FORCED: u16 = 320;

/// How `run` starts.
pub struct Start<'a> {
    pub settings: &'a Settings,
    pub topology: &'a Topology,
    /// Apply the migrations (the default), or only check that they are.
    pub migrate: bool,
    /// The early HTTP listener, told what start is waiting for.
    pub gate: Gate,
}

/// The migrated pool, or `None` when a stop signal came first.
pub async fn start(
    how: Start<'_>,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<Option<PgPool>> {
    let mut delays = Delays::reconnect();
    tokio::pin!(stop);
    loop {
        let attempt = attempt(&how).await;
        let error = match attempt {
            Ok(pool) => return Ok(Some(pool)),
            Err(e) if is_unreachable(&e) => e,
            Err(e) => return Err(e),
        };
        let delay = delays.next_delay();
        how.gate.set_phase(&format!("waiting: {error}"));
        tracing::warn!(
            error = %format!("{error:#}"),
            retry_in_ms = delay.as_millis() as u64,
            "a service is not answering yet; waiting for it before starting"
        );
        tokio::select! {
            _ = &mut stop => return Ok(None),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

async fn attempt(how: &Start<'_>) -> anyhow::Result<PgPool> {
    let s = how.settings;
    let pool = if how.migrate {
        how.gate
            .set_phase("connecting to PostgreSQL and applying migrations");
        storage::connect_and_migrate(&s.database_url, s.database_pool_size).await?
    } else {
        how.gate
            .set_phase("connecting to PostgreSQL and checking the schema (--no-migrate)");
        storage::connect_migrated(&s.database_url, s.database_pool_size).await?
    };
    how.gate
        .set_phase("connecting to RabbitMQ and declaring the topology");
    declare(s, how.topology).await?;
    how.gate.set_phase("starting the roles");
    Ok(pool)
}

/// Declares the topology once, so every role starts against a complete one.
async fn declare(settings: &Settings, topology: &Topology) -> anyhow::Result<()> {
    let conn = amqp::connect(&settings.amqp.url, "refund-worker setup")
        .await
        .context("while connecting to RabbitMQ (AMQP_URL)")?;
    let channel = conn.create_channel().await?;
    topology
        .declare(&channel)
        .await
        .context("while declaring the topology")?;
    amqp::liveness::close(&conn, "declared").await;
    Ok(())
}

/// Whether an error says a service is not answering (yet), rather than
/// that something is wrong that waiting will not mend.
pub fn is_unreachable(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        if cause.is::<SchemaBehind>() {
            return true;
        }
        if let Some(e) = cause.downcast_ref::<sqlx::Error>() {
            return match e {
                // A connection closed while it was being set up reads as a
                // protocol error (sqlx: "unexpected response from SSLRequest").
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Protocol(_) => true,
                sqlx::Error::Database(db) => db.code().is_some_and(|c| {
                    STARTING_OR_STOPPING.contains(&c.as_ref())
                        || c == NO_DATABASE_YET
                        || c == LOCK_NOT_AVAILABLE
                }),
                _ => false,
            };
        }
        // Every broker of AMQP_URL away: waited for. One that refused the
        // credentials (they are the cluster's, so the others would too) or
        // an invalid setting: not.
        if let Some(e) = cause.downcast_ref::<amqp::ConnectError>() {
            let mut failures = e.failures().peekable();
            return failures.peek().is_some()
                && failures.all(|f| match f {
                    amqp::Failure::TimedOut => true,
                    amqp::Failure::Broker(e) => broker_unreachable(e),
                });
        }
        if let Some(e) = cause.downcast_ref::<lapin::Error>() {
            return broker_unreachable(e);
        }
        cause.downcast_ref::<std::io::Error>().is_some()
    })
}

/// Whether a broker's error says it is not answering (yet).
fn broker_unreachable(e: &lapin::Error) -> bool {
    match e.kind() {
        lapin::ErrorKind::IOError(_) | lapin::ErrorKind::InvalidConnectionState(_) => true,
        lapin::ErrorKind::ProtocolError(amqp) => amqp.get_id() == CONNECTION_FORCED,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_unreachable;
    use anyhow::Context;

    fn io(kind: std::io::ErrorKind) -> std::io::Error {
        std::io::Error::new(kind, "x")
    }

    #[test]
    fn a_service_not_answering_is_waited_for() {
        let refused: anyhow::Result<()> =
            Err(sqlx::Error::Io(io(std::io::ErrorKind::ConnectionRefused)))
                .context("while connecting to PostgreSQL (DATABASE_URL)");
        assert!(is_unreachable(&refused.unwrap_err()));
        let timed_out: anyhow::Result<()> = Err(sqlx::Error::PoolTimedOut).context("pool");
        assert!(is_unreachable(&timed_out.unwrap_err()));
        let reset: anyhow::Result<()> =
            Err(lapin::Error::from(io(std::io::ErrorKind::ConnectionReset)))
                .context("while connecting to RabbitMQ (AMQP_URL)");
        assert!(is_unreachable(&reset.unwrap_err()));
    }

    #[test]
    fn anything_else_ends_the_start() {
        let bad_url = anyhow::anyhow!("DATABASE_URL is not a valid PostgreSQL URL");
        assert!(!is_unreachable(&bad_url));
        let migration: anyhow::Result<()> =
            Err(sqlx::migrate::MigrateError::VersionMismatch(9)).context("migrations");
        assert!(!is_unreachable(&migration.unwrap_err()));
        let password: anyhow::Result<()> =
            Err(sqlx::Error::Configuration("bad".into())).context("connecting");
        assert!(!is_unreachable(&password.unwrap_err()));
        let refused = lapin::Error::from(lapin::ErrorKind::AuthProviderError("no".into()));
        assert!(!is_unreachable(&anyhow::Error::from(refused)));
    }

    #[test]
    fn a_cluster_is_waited_for_only_while_every_broker_is_away() {
        use crate::amqp::{Attempt, ConnectError, Failure};
        let away = |address: &str| Attempt {
            address: address.into(),
            failure: Failure::Broker(lapin::Error::from(io(
                std::io::ErrorKind::ConnectionRefused,
            ))),
        };
        let all_away: anyhow::Result<()> = Err(ConnectError::Unanswered(vec![
            away("amqp://a:5672/%2f"),
            Attempt {
                address: "amqp://b:5672/%2f".into(),
                failure: Failure::TimedOut,
            },
        ]))
        .context("while connecting to RabbitMQ (AMQP_URL)");
        assert!(is_unreachable(&all_away.unwrap_err()));

        let one_refuses: anyhow::Result<()> = Err(ConnectError::Unanswered(vec![
            away("amqp://a:5672/%2f"),
            Attempt {
                address: "amqp://b:5672/%2f".into(),
                failure: Failure::Broker(lapin::Error::from(lapin::ErrorKind::AuthProviderError(
                    "no".into(),
                ))),
            },
        ]))
        .context("while connecting to RabbitMQ (AMQP_URL)");
        assert!(!is_unreachable(&one_refuses.unwrap_err()));
    }
}
