//! `bench --repeat N`: each figure's median and spread over the runs, since
//! one run on a shared machine is one sample of its noise.

use serde::Serialize;

use super::end_to_end::EndToEndReport;

/// One figure over the runs.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Spread {
    pub name: &'static str,
    pub median: u64,
    pub min: u64,
    pub max: u64,
    /// Thousandths: a ratio or a per-refund figure printed as `x.yyy`.
    pub milli: bool,
}

impl Spread {
    /// `None` when no run has the figure.
    pub fn of(name: &'static str, milli: bool, values: &[Option<u64>]) -> Option<Self> {
        let mut v: Vec<u64> = values.iter().flatten().copied().collect();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        Some(Self {
            name,
            median: v[v.len() / 2],
            min: v[0],
            max: v[v.len() - 1],
            milli,
        })
    }

    fn show(&self, v: u64) -> String {
        if self.milli {
            format!("{}.{:03}", v / 1000, v % 1000)
        } else {
            v.to_string()
        }
    }
}

/// Every figure's spread, in the order printed.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub runs: usize,
    pub figures: Vec<Spread>,
}

impl Summary {
    pub fn of(reports: &[EndToEndReport]) -> Self {
        let pick = |f: &dyn Fn(&EndToEndReport) -> Option<u64>| -> Vec<Option<u64>> {
            reports.iter().map(f).collect()
        };
        let rows: Vec<(&'static str, bool, Vec<Option<u64>>)> = vec![
            (
                "refunds/s",
                false,
                pick(&|r| Some(r.run.refunds_per_second)),
            ),
            (
                "ceiling events/s (one hop)",
                false,
                pick(&|r| r.ceiling.as_ref().map(|c| c.events_per_second)),
            ),
            (
                "ceiling events/s (two hops)",
                false,
                pick(&|r| r.ceiling_two_hops.as_ref().map(|c| c.events_per_second)),
            ),
            ("ratio to one hop", true, pick(&|r| r.ratio_permille)),
            (
                "ratio to two hops",
                true,
                pick(&|r| r.ratio_two_hops_permille),
            ),
            ("N workers / one", true, pick(&|r| r.workers_ratio_permille)),
            (
                "gateway requests per 1000",
                false,
                pick(&|r| r.run.requests_per_1000),
            ),
            (
                "p99 publish -> result ms",
                false,
                pick(&|r| r.run.publish_to_result.map(|p| p.p99_us / 1000)),
            ),
            (
                "worker peak RSS MiB",
                false,
                pick(&|r| Some(r.run.worker_peak_rss_bytes >> 20)),
            ),
            (
                "PostgreSQL CPU ms / 1000",
                false,
                pick(&|r| Some(r.run.cost.postgres_cpu_ms_per_1000)),
            ),
            (
                "RabbitMQ CPU ms / 1000",
                false,
                pick(&|r| Some(r.run.cost.rabbitmq_cpu_ms_per_1000)),
            ),
            (
                "worker CPU ms / 1000",
                false,
                pick(&|r| Some(r.run.cost.worker_cpu_ms_per_1000)),
            ),
            (
                "bench CPU ms / 1000",
                false,
                pick(&|r| Some(r.run.cost.bench_cpu_ms_per_1000)),
            ),
            (
                "rows inserted / refund",
                true,
                pick(&|r| Some(r.run.cost.rows_inserted_per_1000)),
            ),
            (
                "rows updated / refund",
                true,
                pick(&|r| Some(r.run.cost.rows_updated_per_1000)),
            ),
            (
                "rows HOT-updated / refund",
                true,
                pick(&|r| Some(r.run.cost.rows_hot_updated_per_1000)),
            ),
            (
                "rows deleted / refund",
                true,
                pick(&|r| Some(r.run.cost.rows_deleted_per_1000)),
            ),
            (
                "WAL bytes / refund",
                false,
                pick(&|r| Some(r.run.cost.wal_bytes_per_refund)),
            ),
        ];
        Self {
            runs: reports.len(),
            figures: rows
                .into_iter()
                .filter_map(|(name, milli, values)| Spread::of(name, milli, &values))
                .collect(),
        }
    }

    pub fn print(&self) {
        println!("over {} runs: median (min – max)", self.runs);
        for s in &self.figures {
            println!(
                "  {:<30} {:>10} ({} – {})",
                s.name,
                s.show(s.median),
                s.show(s.min),
                s.show(s.max)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_run_and_the_spread_its_ends() {
        let s = Spread::of("x", false, &[Some(30), None, Some(10), Some(20)]).unwrap();
        assert_eq!((s.median, s.min, s.max), (20, 10, 30));
        assert_eq!(Spread::of("x", false, &[None, None]), None);
        let r = Spread::of("r", true, &[Some(612)]).unwrap();
        assert_eq!(r.show(r.median), "0.612");
    }
}
