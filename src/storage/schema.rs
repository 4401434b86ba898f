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
