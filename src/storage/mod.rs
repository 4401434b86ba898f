//! PostgreSQL: the single source of truth. SQL lives here only, grouped by
//! table; functions that change state take a transaction so a state change and
//! its history (and later its outbox row) commit together.

/// Whether a batch (`b`) ever had a notification that verified: the one
/// spelling of that rule, for the claims that judge absence (in scope for
/// the modules below, which are declared after it).
macro_rules! notified {
    () => {
        "EXISTS (SELECT 1 FROM notifications n
                 WHERE n.batch_no = b.batch_no AND n.kind = 'batch_refund'
                   AND n.verdict NOT IN ('forged', 'malformed', 'unknown_batch', 'wrong_partner'))"
    };
}

pub(crate) mod attention;
pub(crate) mod bank_returns;
pub(crate) mod batch_view;
pub mod batches;
pub(crate) mod health;
pub mod intake;
pub(crate) mod notifications;
pub mod openapi;
pub(crate) mod outbox;
pub mod prune;
pub(crate) mod reconcile;
pub mod refunds;
pub(crate) mod rejected;
pub(crate) mod renumber;
pub(crate) mod result_event;
pub mod retries;
pub mod schema;
pub mod settlements;
pub mod submissions;
pub mod transitions;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};

/// The migrations in `migrations/`, compiled in.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// The longest any statement of a role may run (invariant 5a): a worker
/// stuck on a lock or a slow plan gives up rather than writing after its
/// claim has passed to another process.
pub const STATEMENT_TIMEOUT: &str = "30s";

/// How long a migration waits for a lock before it gives up (and is retried).
pub const MIGRATION_LOCK_TIMEOUT: &str = "10s";

/// Creates the database if missing, applies the migrations on a connection
/// of their own (an index build may take longer than a role's statement may),
/// then connects the roles' pool, whose statements time out after
/// [`STATEMENT_TIMEOUT`].
pub async fn connect_and_migrate(url: &str, pool_size: u32) -> anyhow::Result<PgPool> {
    create_database_if_missing(url).await?;
    // A migration waiting for a table lock queues every query of the live
    // fleet behind it: give up after MIGRATION_LOCK_TIMEOUT and try again
    // later (`run` waits and retries; the migration Job is restarted).
    let opts = options(url)?.options([("lock_timeout", MIGRATION_LOCK_TIMEOUT)]);
    let mut conn = PgConnection::connect_with(&opts)
        .await
        .context("while connecting to PostgreSQL (DATABASE_URL)")?;
    MIGRATOR
        .run(&mut conn)
        .await
        .context("while applying the migrations")?;
    conn.close().await.ok();
    let opts = options(url)?.options([("statement_timeout", STATEMENT_TIMEOUT)]);
    pool_with(opts, pool_size).await
}

/// Connects the roles' pool without migrating, once the schema is the one
/// this binary needs ([`schema::judge`]); a schema still behind is a
/// [`schema::SchemaBehind`] error, which `run` waits out.
pub async fn connect_migrated(url: &str, pool_size: u32) -> anyhow::Result<PgPool> {
    let mut conn = PgConnection::connect_with(&options(url)?)
        .await
        .context("while connecting to PostgreSQL (DATABASE_URL)")?;
    let applied = schema::applied(&mut conn)
        .await
        .context("while reading the applied migrations")?;
    conn.close().await.ok();
    schema::judge(&MIGRATOR, &applied)?;
    let opts = options(url)?.options([("statement_timeout", STATEMENT_TIMEOUT)]);
    pool_with(opts, pool_size).await
}

/// A pool that waits at most 5 s for a connection, so a database outage turns
/// into errors the roles can back off from instead of hanging.
pub async fn connect(url: &str, pool_size: u32) -> anyhow::Result<PgPool> {
    pool_with(options(url)?, pool_size).await
}

async fn pool_with(opts: PgConnectOptions, pool_size: u32) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(pool_size)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(opts)
        .await
        .context("while connecting to PostgreSQL (DATABASE_URL)")
}

/// Every connection says it reads a stored `batched` through its batch
/// (migration 30): the schema refuses writes from any that does not.
pub const ACCEPTED_BY_BATCH: (&str, &str) = ("refund_worker.accepted_by_batch", "on");

/// No JIT compilation for the worker's statements. They are short and touch
/// at most a batch's rows, but on estimates from large arrays (or tables never
/// analyzed) some cost more than `jit_above_cost`, and PostgreSQL then spends
/// more time compiling them with LLVM than running them: the batcher's trade
/// check took 447 ms in 20 calls, 299 ms of it compiling (decision record
/// 2026-12-08, "no JIT for the worker's statements").
pub const NO_JIT: (&str, &str) = ("jit", "off");

fn options(url: &str) -> anyhow::Result<PgConnectOptions> {
    // The error text of a bad URL could repeat its password: say only that it is bad.
    PgConnectOptions::from_str(url)
        .map(|o| o.options([ACCEPTED_BY_BATCH, NO_JIT]))
        .map_err(|_| anyhow::anyhow!("DATABASE_URL is not a valid PostgreSQL URL"))
}

/// `CREATE DATABASE` through the `postgres` maintenance database; a concurrent
/// creator winning the race is fine.
pub async fn create_database_if_missing(url: &str) -> anyhow::Result<()> {
    let opts = options(url)?;
    let Some(name) = opts.get_database().map(str::to_owned) else {
        return Ok(());
    };
    let mut conn = PgConnection::connect_with(&opts.clone().database("postgres"))
        .await
        .context("while connecting to PostgreSQL to create the database")?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        let sql = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        match sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await {
            Ok(_) => tracing::info!(database = %name, "created the database"),
            Err(sqlx::Error::Database(e))
                if matches!(e.code().as_deref(), Some("42P04" | "23505")) => {}
            Err(e) => return Err(e).context(format!("while creating database {name}")),
        }
    }
    conn.close().await.ok();
    Ok(())
}
