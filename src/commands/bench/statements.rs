//! Which statements spent a run's database time: PostgreSQL's
//! `pg_stat_statements`, reset for the run's database before the run and
//! read after it. Execution time is what the server spent in a statement,
//! waits for row locks and I/O included, so it says where the database's
//! time goes, not its CPU alone. The extension works only where the
//! server preloads it (`shared_preload_libraries`, a restart) and the
//! bench is a superuser; otherwise the run reports none.

use serde::Serialize;
use sqlx::PgPool;

/// The longest statement text kept (whitespace folded).
const TEXT_CHARS: usize = 96;

/// One statement's share of a run, per refund.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatementTime {
    /// The normalized text (`$1` for constants), whitespace folded, cut.
    pub statement: String,
    /// Calls per 1 000 refunds.
    pub calls_per_1000: i64,
    /// Execution time per refund, microseconds.
    pub exec_us_per_refund: i64,
    /// Rows returned or changed per refund, in thousandths.
    pub rows_per_1000: i64,
}

/// Forgets the run's database's statements so far (its migrations);
/// `false` where `pg_stat_statements` is not available.
pub async fn reset(pool: &PgPool) -> bool {
    let ready = async {
        sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .execute(pool)
            .await?;
        sqlx::query(
            "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0)",
        )
        .execute(pool)
        .await
    };
    match ready.await {
        Ok(_) => true,
        Err(e) => {
            tracing::info!(error = %e, "no time by statement (pg_stat_statements)");
            false
        }
    }
}

/// The `k` statements of the run's database that took longest, per refund
/// of `n`; empty where `pg_stat_statements` is not available.
pub async fn top(pool: &PgPool, n: usize, k: usize) -> Vec<StatementTime> {
    let rows: Result<Vec<(String, i64, f64, i64)>, sqlx::Error> = sqlx::query_as(
        "SELECT query, calls, total_exec_time, rows FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND query NOT LIKE '%pg_stat_statements%'
         ORDER BY total_exec_time DESC LIMIT $1",
    )
    .bind(k as i64)
    .fetch_all(pool)
    .await;
    match rows {
        Ok(rows) => rows
            .into_iter()
            .map(|(q, calls, ms, rows)| per_refund(&q, calls, ms, rows, n))
            .collect(),
        Err(e) => {
            tracing::info!(error = %e, "no time by statement (pg_stat_statements)");
            Vec::new()
        }
    }
}

/// One row of `pg_stat_statements` as a share of `n` refunds.
fn per_refund(query: &str, calls: i64, total_ms: f64, rows: i64, n: usize) -> StatementTime {
    let n = n.max(1) as i64;
    StatementTime {
        statement: shorten(query),
        calls_per_1000: calls * 1000 / n,
        exec_us_per_refund: (total_ms * 1000.0 / n as f64).round() as i64,
        rows_per_1000: rows * 1000 / n,
    }
}

/// The text on one line, runs of whitespace as one space, at most
/// [`TEXT_CHARS`] characters (`…` where cut).
fn shorten(query: &str) -> String {
    let folded = query.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.chars().count() <= TEXT_CHARS {
        return folded;
    }
    let mut cut: String = folded.chars().take(TEXT_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_is_folded_onto_one_line_and_cut() {
        assert_eq!(shorten("SELECT  1\n   FROM t"), "SELECT 1 FROM t");
        let long = format!("SELECT {}", "x, ".repeat(60));
        let cut = shorten(&long);
        assert_eq!(cut.chars().count(), TEXT_CHARS);
        assert!(cut.ends_with('…'), "{cut}");
        assert!(!cut.contains('\n'));
    }

    #[test]
    fn figures_are_per_refund_and_per_thousand_refunds() {
        // 20 calls, 2 915.4 ms, 20 000 rows over 20 000 refunds.
        let s = per_refund("UPDATE refunds SET status = $1", 20, 2915.4, 20_000, 20_000);
        assert_eq!(s.calls_per_1000, 1);
        assert_eq!(s.exec_us_per_refund, 146);
        assert_eq!(s.rows_per_1000, 1000);
        // No refunds: no division by zero.
        assert_eq!(per_refund("SELECT 1", 3, 1.0, 3, 0).calls_per_1000, 3000);
    }
}
