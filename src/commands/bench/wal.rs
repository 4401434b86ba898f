//! Which tables and indexes wrote a run's WAL: PostgreSQL's `pg_walinspect`
//! reads the records between two positions, and each record counts for the
//! relation of its first block (a commit record, which has none, counts for
//! its resource manager). Where the extension cannot be created (it needs a
//! superuser, and PostgreSQL 15 or later) the run reports none.

use serde::Serialize;
use sqlx::PgPool;

/// More WAL than this is not read (a scan of it takes longer than the run).
const MAX_SCAN_BYTES: i64 = 2 << 30;

/// One relation's share of a run's WAL, per refund.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RelationWal {
    /// `refunds`, `refunds_pkey`, `Transaction` (commits), …
    pub relation: String,
    pub bytes_per_refund: i64,
    /// Of those, full-page images.
    pub fpi_bytes_per_refund: i64,
    /// Records per 1 000 refunds.
    pub records_per_1000: i64,
}

/// The WAL position now, as text (`0/16B3748`).
pub async fn position(pool: &PgPool) -> sqlx::Result<String> {
    sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(pool)
        .await
}

/// The WAL between `from` and `to` by relation of the run's database,
/// largest first; empty where `pg_walinspect` is not available.
pub async fn by_relation(pool: &PgPool, from: &str, to: &str, n: usize) -> Vec<RelationWal> {
    match read(pool, from, to, n.max(1) as i64).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::info!(error = %e, "no WAL by relation (pg_walinspect)");
            Vec::new()
        }
    }
}

async fn read(pool: &PgPool, from: &str, to: &str, n: i64) -> sqlx::Result<Vec<RelationWal>> {
    let size: i64 = sqlx::query_scalar("SELECT pg_wal_lsn_diff($2::pg_lsn, $1::pg_lsn)::int8")
        .bind(from)
        .bind(to)
        .fetch_one(pool)
        .await?;
    if size > MAX_SCAN_BYTES {
        return Ok(Vec::new());
    }
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        .execute(pool)
        .await?;
    sqlx::query_as(
        "WITH here AS (
             SELECT oid::text AS db, dattablespace::text AS spc
             FROM pg_database WHERE datname = current_database()
         ), r AS (
             SELECT w.record_length, w.fpi_length, w.resource_manager,
                    substring(w.block_ref from 'rel (\\d+)/') AS spc,
                    substring(w.block_ref from 'rel \\d+/(\\d+)/') AS db,
                    substring(w.block_ref from 'rel \\d+/\\d+/(\\d+)') AS node
             FROM pg_get_wal_records_info($1::pg_lsn, $2::pg_lsn) w
         )
         SELECT CASE
                    WHEN r.node IS NULL THEN r.resource_manager
                    WHEN r.db <> here.db THEN '(other databases)'
                    ELSE COALESCE(
                        pg_filenode_relation(
                            CASE WHEN r.spc = here.spc THEN 0 ELSE r.spc::oid END,
                            r.node::oid)::text,
                        'relfilenode ' || r.node)
                END AS relation,
                (sum(r.record_length) / $3)::int8 AS bytes_per_refund,
                (sum(r.fpi_length) / $3)::int8 AS fpi_bytes_per_refund,
                (count(*) * 1000 / $3)::int8 AS records_per_1000
         FROM r CROSS JOIN here
         GROUP BY 1 ORDER BY sum(r.record_length) DESC",
    )
    .bind(from)
    .bind(to)
    .bind(n)
    .fetch_all(pool)
    .await
}
