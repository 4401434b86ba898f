//! Where a refund's cost goes, measured around one run: CPU time of
//! PostgreSQL (every backend, and those that exited, through the
//! postmaster's reaped-children time), of RabbitMQ (the Erlang VM), of the
//! worker and of the bench itself, from /proc; the rows PostgreSQL inserted,
//! updated (HOT or not) and deleted in the run's database
//! (`pg_stat_user_tables`); and the WAL written (`pg_current_wal_lsn`).
//!
//! PostgreSQL and RabbitMQ serve the whole machine: anything else using them
//! during the run is counted too (the WAL position is the cluster's). Run
//! benchmarks on an otherwise quiet machine and compare within a run.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::PgPool;

/// USER_HZ is 100 on every Linux this runs on: a tick is 10 ms.
const MS_PER_TICK: u64 = 10;

/// CPU ticks by process id.
type Ticks = HashMap<u32, u64>;

/// The counters at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    postgres_ticks: Ticks,
    rabbitmq_ticks: Ticks,
    bench_ticks: u64,
    wal_bytes: i64,
    rows: Rows,
}

/// Row changes in the run's database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Rows {
    pub inserted: i64,
    pub updated: i64,
    pub hot_updated: i64,
    pub deleted: i64,
}

/// What `n` refunds cost, per 1 000 refunds (CPU) or per refund (rows, WAL),
/// in thousandths where a per-refund figure is small.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cost {
    pub postgres_cpu_ms_per_1000: u64,
    pub rabbitmq_cpu_ms_per_1000: u64,
    pub worker_cpu_ms_per_1000: u64,
    pub bench_cpu_ms_per_1000: u64,
    /// Row versions written per refund, in thousandths.
    pub rows_inserted_per_1000: u64,
    pub rows_updated_per_1000: u64,
    pub rows_hot_updated_per_1000: u64,
    pub rows_deleted_per_1000: u64,
    pub wal_bytes_per_refund: u64,
    /// The WAL by table and index, largest first (`wal.rs`; empty without
    /// `pg_walinspect`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub wal_by_relation: Vec<super::wal::RelationWal>,
    /// The database's time by statement, longest first (`statements.rs`;
    /// empty without `pg_stat_statements`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub statements: Vec<super::statements::StatementTime>,
}

impl Snapshot {
    /// Reads every counter now; `pool` is the run's database.
    pub async fn take(pool: &PgPool) -> anyhow::Result<Self> {
        let wal_bytes: i64 =
            sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8")
                .fetch_one(pool)
                .await?;
        let rows: Rows = sqlx::query_as(
            "SELECT COALESCE(sum(n_tup_ins), 0)::int8 AS inserted,
                    COALESCE(sum(n_tup_upd), 0)::int8 AS updated,
                    COALESCE(sum(n_tup_hot_upd), 0)::int8 AS hot_updated,
                    COALESCE(sum(n_tup_del), 0)::int8 AS deleted
             FROM pg_stat_user_tables",
        )
        .fetch_one(pool)
        .await?;
        let procs = processes();
        let ticks_of = |names: &[&str]| -> Ticks {
            procs
                .iter()
                .filter(|p| names.contains(&p.comm.as_str()))
                .map(|p| (p.pid, p.ticks))
                .collect()
        };
        Ok(Self {
            postgres_ticks: ticks_of(&["postgres"]),
            rabbitmq_ticks: ticks_of(&["beam.smp", "erl_child_setup", "inet_gethost"]),
            bench_ticks: own_ticks(),
            wal_bytes,
            rows,
        })
    }
}

/// The cost of `n` refunds between two snapshots; `worker_cpu_ms` is the
/// worker child's own.
pub fn between(before: &Snapshot, after: &Snapshot, worker_cpu_ms: u64, n: usize) -> Cost {
    let n = n.max(1) as u64;
    let per_1000_ms = |b: u64, a: u64| a.saturating_sub(b) * MS_PER_TICK * 1000 / n;
    let group = |b: &Ticks, a: &Ticks| per_1000_ms(0, grown(b, a));
    let per_1000 = |b: i64, a: i64| (a - b).max(0) as u64 * 1000 / n;
    Cost {
        postgres_cpu_ms_per_1000: group(&before.postgres_ticks, &after.postgres_ticks),
        rabbitmq_cpu_ms_per_1000: group(&before.rabbitmq_ticks, &after.rabbitmq_ticks),
        worker_cpu_ms_per_1000: worker_cpu_ms * 1000 / n,
        bench_cpu_ms_per_1000: per_1000_ms(before.bench_ticks, after.bench_ticks),
        rows_inserted_per_1000: per_1000(before.rows.inserted, after.rows.inserted),
        rows_updated_per_1000: per_1000(before.rows.updated, after.rows.updated),
        rows_hot_updated_per_1000: per_1000(before.rows.hot_updated, after.rows.hot_updated),
        rows_deleted_per_1000: per_1000(before.rows.deleted, after.rows.deleted),
        wal_bytes_per_refund: (after.wal_bytes - before.wal_bytes).max(0) as u64 / n,
        wal_by_relation: Vec::new(),
        statements: Vec::new(),
    }
}

/// Ticks a group of processes spent between two readings, process by
/// process: one alive at both counts its growth, one started since counts
/// all of it, one that ended counts through its parent's reaped-children
/// time (a PostgreSQL backend in the postmaster's). A process of the same
/// name that stopped meanwhile (another broker node) cannot make it negative.
fn grown(before: &Ticks, after: &Ticks) -> u64 {
    after
        .iter()
        .map(|(pid, a)| a.saturating_sub(before.get(pid).copied().unwrap_or(0)))
        .sum()
}

/// One process's id, name and CPU ticks, its reaped children's included.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Proc {
    pid: u32,
    comm: String,
    ticks: u64,
}

fn processes() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|stat| parse_stat(&stat))
        .collect()
}

fn own_ticks() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| parse_stat(&s))
        .map_or(0, |p| p.ticks)
}

/// `/proc/PID/stat`: the name in parentheses (it may hold spaces), then
/// utime, stime, cutime and cstime as fields 14–17.
fn parse_stat(stat: &str) -> Option<Proc> {
    let pid = stat.split_whitespace().next()?.parse().ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<i64>().ok());
    // After the name: state is index 0, utime index 11 … cstime index 14.
    let ticks = (11..=14).map(field).sum::<Option<i64>>()?;
    Some(Proc {
        pid,
        comm,
        ticks: ticks.max(0) as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_the_name_and_all_four_times() {
        let line = "4242 (postgres: bench x) S 1 2 3 0 -1 4194560 100 0 0 0 250 40 7 3 20 0 1 0 500 1000 200";
        assert_eq!(
            parse_stat(line),
            Some(Proc {
                pid: 4242,
                comm: "postgres: bench x".into(),
                ticks: 300
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn the_cost_is_per_refund_from_the_deltas() {
        let before = Snapshot {
            postgres_ticks: Ticks::from([(1, 100), (7, 30)]),
            rabbitmq_ticks: Ticks::from([(2, 50), (9, 1_000)]),
            bench_ticks: 10,
            wal_bytes: 1_000,
            rows: Rows {
                inserted: 5,
                ..Rows::default()
            },
        };
        // Backend 7 ended (its time is in the postmaster's), 8 started;
        // another node 9 stopped and must not count against the broker.
        let after = Snapshot {
            postgres_ticks: Ticks::from([(1, 270), (8, 30)]),
            rabbitmq_ticks: Ticks::from([(2, 150)]),
            bench_ticks: 20,
            wal_bytes: 2_001_000,
            rows: Rows {
                inserted: 4_005,
                updated: 8_000,
                hot_updated: 2_000,
                deleted: 0,
            },
        };
        let c = between(&before, &after, 900, 1_000);
        assert_eq!(c.postgres_cpu_ms_per_1000, 2_000);
        assert_eq!(c.rabbitmq_cpu_ms_per_1000, 1_000);
        assert_eq!(c.worker_cpu_ms_per_1000, 900);
        assert_eq!(c.bench_cpu_ms_per_1000, 100);
        assert_eq!(c.rows_inserted_per_1000, 4_000);
        assert_eq!(c.rows_updated_per_1000, 8_000);
        assert_eq!(c.rows_hot_updated_per_1000, 2_000);
        assert_eq!(c.wal_bytes_per_refund, 2_000);
    }
}
