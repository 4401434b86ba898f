//! Whether the database's schema is the one this binary was built for,
//! without changing it: what `run --no-migrate` checks at start, where a
//! migration Job (`refund-worker migrate`) owns the schema and the fleet only
//! reads it.
//!
//! Migrations are additive, so a binary may run on a schema that is newer
//! than it knows (an older replica during a rolling deploy); it may not run
//! on one that lacks any of its own migrations, nor on one where a migration
//! failed half-way or was changed after it was applied.

use sqlx::PgConnection;
use sqlx::migrate::Migrator;

/// The schema lacks a migration this binary needs: the migration Job has not
/// run (or not finished) yet. Worth waiting for, unlike [`SchemaBroken`].
#[derive(Debug, thiserror::Error)]
#[error(
    "the database lacks migration {version} ({description}); waiting for `refund-worker migrate` (the migration Job) to apply it"
)]
pub struct SchemaBehind {
    pub version: i64,
    pub description: String,
}

/// The schema cannot be used as it is, whatever one waits for.
#[derive(Debug, thiserror::Error)]
pub enum SchemaBroken {
    #[error(
        "migration {0} failed half-way (_sqlx_migrations.success is false): mend it by hand, then run `refund-worker migrate`"
    )]
    Failed(i64),
    #[error(
        "migration {0} was changed after it was applied (its checksum differs): this binary and the database disagree on the schema"
    )]
    Changed(i64),
}

/// One row of `_sqlx_migrations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub version: i64,
    pub success: bool,
    pub checksum: Vec<u8>,
}

/// The pure rule: every migration the binary knows is applied, succeeded and
/// unchanged. The first it lacks is reported as [`SchemaBehind`].
pub fn judge(known: &Migrator, applied: &[Applied]) -> anyhow::Result<()> {
    for m in known.iter().filter(|m| m.migration_type.is_up_migration()) {
        let Some(row) = applied.iter().find(|a| a.version == m.version) else {
            return Err(SchemaBehind {
                version: m.version,
                description: m.description.to_string(),
            }
            .into());
        };
        if !row.success {
            return Err(SchemaBroken::Failed(m.version).into());
        }
        if row.checksum.as_slice() != m.checksum.as_ref() {
            return Err(SchemaBroken::Changed(m.version).into());
        }
    }
    Ok(())
}

/// Reads `_sqlx_migrations`; a database never migrated has none.
pub async fn applied(conn: &mut PgConnection) -> Result<Vec<Applied>, sqlx::Error> {
    let rows: Result<Vec<(i64, bool, Vec<u8>)>, sqlx::Error> =
        sqlx::query_as("SELECT version, success, checksum FROM _sqlx_migrations")
            .fetch_all(conn)
            .await;
    match rows {
        Ok(rows) => Ok(rows
            .into_iter()
            .map(|(version, success, checksum)| Applied {
                version,
                success,
                checksum,
            })
            .collect()),
        // undefined_table: nothing migrated yet.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MIGRATOR;

    fn all_applied() -> Vec<Applied> {
        MIGRATOR
            .iter()
            .map(|m| Applied {
                version: m.version,
                success: true,
                checksum: m.checksum.to_vec(),
            })
            .collect()
    }

    #[test]
    fn every_migration_applied_is_ready() {
        assert!(judge(&MIGRATOR, &all_applied()).is_ok());
    }

    #[test]
    fn a_newer_schema_than_the_binary_knows_is_fine() {
        let mut rows = all_applied();
        rows.push(Applied {
            version: 99_991_231_000_001,
            success: true,
            checksum: vec![1],
        });
        assert!(judge(&MIGRATOR, &rows).is_ok());
    }

    #[test]
    fn a_missing_migration_is_waited_for() {
        let mut rows = all_applied();
        let last = rows.pop().map(|r| r.version);
        let e = judge(&MIGRATOR, &rows).unwrap_err();
        let behind = e.downcast_ref::<SchemaBehind>().unwrap();
        assert_eq!(Some(behind.version), last);
        assert!(judge(&MIGRATOR, &[]).unwrap_err().is::<SchemaBehind>());
    }

    #[test]
    fn a_failed_or_changed_migration_is_broken() {
        let mut rows = all_applied();
        rows[0].success = false;
        assert!(matches!(
            judge(&MIGRATOR, &rows).unwrap_err().downcast_ref(),
            Some(SchemaBroken::Failed(_))
        ));
        let mut rows = all_applied();
        rows[1].checksum = vec![0];
        assert!(matches!(
            judge(&MIGRATOR, &rows).unwrap_err().downcast_ref(),
            Some(SchemaBroken::Changed(_))
        ));
    }
}

/// The last migration written before the rules of [`beside_a_live_fleet`]:
/// applied migrations are never edited (their checksums are in every
/// database that ran them), so the older ones keep their plain index builds.
pub const RULES_SINCE: i64 = 20_261_206_000_013;

/// What a migration after [`RULES_SINCE`] must respect to run while the
/// fleet serves: an index is built or dropped `CONCURRENTLY` (no write lock on a large
/// table), alone in a `-- no-transaction` migration (PostgreSQL refuses it
/// in a transaction, and a multi-statement string is one), without
/// `IF NOT EXISTS` (a failed build leaves an invalid index that must stop the
/// next run rather than pass for a good one); a check constraint is added
/// `NOT VALID` (validated later without blocking writes). The problems
/// found, empty when it complies.
pub fn beside_a_live_fleet(sql: &str, no_tx: bool) -> Vec<&'static str> {
    let text = sql
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase();
    let words: Vec<&str> = text.split_whitespace().collect();
    let statements = text.split(';').filter(|s| !s.trim().is_empty()).count();
    let mut problems = Vec::new();
    let creates_index = words
        .windows(3)
        .any(|w| w[0] == "CREATE" && (w[1] == "INDEX" || (w[1] == "UNIQUE" && w[2] == "INDEX")));
    if creates_index {
        if !text.contains("INDEX CONCURRENTLY") {
            problems.push("an index is built without CONCURRENTLY");
        }
        if !no_tx || statements != 1 {
            problems.push("an index build must be alone in a `-- no-transaction` migration");
        }
        if text.contains("IF NOT EXISTS") {
            problems.push("an index build must not say IF NOT EXISTS");
        }
    }
    let drops_index = words.windows(2).any(|w| w == ["DROP", "INDEX"]);
    if drops_index {
        if !text.contains("DROP INDEX CONCURRENTLY") {
            problems.push("an index is dropped without CONCURRENTLY");
        }
        if !no_tx || statements != 1 {
            problems.push("an index drop must be alone in a `-- no-transaction` migration");
        }
    }
    let adds_check = words.windows(2).any(|w| w == ["ADD", "CONSTRAINT"]) && text.contains("CHECK");
    if adds_check && !text.contains("NOT VALID") {
        problems.push("a check constraint is added without NOT VALID");
    }
    problems
}

#[cfg(test)]
mod fleet_rules {
    use super::*;
    use crate::storage::MIGRATOR;

    #[test]
    fn every_migration_since_the_rules_can_run_beside_a_live_fleet() {
        for m in MIGRATOR.iter().filter(|m| m.version > RULES_SINCE) {
            let problems = beside_a_live_fleet(m.sql.as_str(), m.no_tx);
            assert!(problems.is_empty(), "migration {}: {problems:?}", m.version);
        }
    }

    #[test]
    fn the_rules_catch_what_would_lock_a_large_table() {
        let plain = "CREATE INDEX refunds_x ON refunds (partner);";
        assert!(
            beside_a_live_fleet(plain, false).contains(&"an index is built without CONCURRENTLY")
        );
        let in_tx = "CREATE INDEX CONCURRENTLY refunds_x ON refunds (partner);";
        assert_eq!(beside_a_live_fleet(in_tx, true), Vec::<&str>::new());
        assert!(!beside_a_live_fleet(in_tx, false).is_empty());
        let two =
            "CREATE UNIQUE INDEX CONCURRENTLY a ON t (x); CREATE INDEX CONCURRENTLY b ON t (y);";
        assert!(!beside_a_live_fleet(two, true).is_empty());
        let lenient = "CREATE INDEX CONCURRENTLY IF NOT EXISTS a ON t (x)";
        assert!(!beside_a_live_fleet(lenient, true).is_empty());
        let drop = "DROP INDEX refunds_x;";
        assert!(
            beside_a_live_fleet(drop, true).contains(&"an index is dropped without CONCURRENTLY")
        );
        let drop = "DROP INDEX CONCURRENTLY refunds_x;";
        assert_eq!(beside_a_live_fleet(drop, true), Vec::<&str>::new());
        assert!(!beside_a_live_fleet(drop, false).is_empty());
        let check = "ALTER TABLE t ADD CONSTRAINT c CHECK (x > 0);";
        assert!(!beside_a_live_fleet(check, false).is_empty());
        let later = "ALTER TABLE t ADD CONSTRAINT c CHECK (x > 0) NOT VALID;";
        assert!(beside_a_live_fleet(later, false).is_empty());
        let comment = "-- CREATE INDEX would lock\nALTER TABLE t ADD COLUMN y TEXT;";
        assert!(beside_a_live_fleet(comment, false).is_empty());
    }
}
