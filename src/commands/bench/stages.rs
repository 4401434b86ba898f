//! Where the time of an end-to-end run went (pure): each refund's times,
//! from publish to its result event consumed, into the median gap of each
//! stage and the latencies the report prints.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::load::percentiles;

/// The median time refunds spent in each stage, microseconds.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Stages {
    pub publish_to_stored_us: u64,
    pub stored_to_batched_us: u64,
    pub batched_to_accepted_us: u64,
    pub accepted_to_settled_us: u64,
    pub settled_to_published_us: u64,
    pub published_to_consumed_us: u64,
}

impl Stages {
    /// The stages in order, named for the table.
    pub fn named(&self) -> [(&'static str, u64); 6] {
        [
            ("publish -> stored", self.publish_to_stored_us),
            ("stored -> batched", self.stored_to_batched_us),
            ("batched -> accepted", self.batched_to_accepted_us),
            ("accepted -> settled", self.accepted_to_settled_us),
            ("settled -> published", self.settled_to_published_us),
            ("published -> consumed", self.published_to_consumed_us),
        ]
    }
}

/// A refund's times as the database has them: id, stored, batched,
/// accepted, settled, result event published.
pub type StageRow = (
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

/// The per-refund gaps of a run.
#[derive(Debug, Default)]
pub struct Timings {
    pub to_result: Vec<Duration>,
    pub to_accepted: Vec<Duration>,
    pub stages: Stages,
}

impl Timings {
    /// From each refund's times: when it was published (by index in its id
    /// `P-i`), stored, batched, accepted, settled, published and consumed.
    pub fn new(
        rows: &[StageRow],
        sent_at: &[DateTime<Utc>],
        consumed: &HashMap<String, (DateTime<Utc>, bool)>,
    ) -> Self {
        let gap =
            |from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>| (to? - from?).to_std().ok();
        let mut stages: [Vec<Duration>; 6] = Default::default();
        let mut out = Self::default();
        for (id, stored, batched, accepted, settled, published) in rows {
            let Some(sent) = id
                .strip_prefix("P-")
                .and_then(|i| i.parse::<usize>().ok())
                .and_then(|i| sent_at.get(i).copied())
            else {
                continue;
            };
            let done = consumed.get(id).map(|(at, _)| *at);
            let times = [
                Some(sent),
                Some(*stored),
                *batched,
                *accepted,
                *settled,
                *published,
                done,
            ];
            for (k, stage) in stages.iter_mut().enumerate() {
                stage.extend(gap(times[k], times[k + 1]));
            }
            out.to_result.extend(gap(Some(sent), done));
            out.to_accepted.extend(gap(Some(sent), *accepted));
        }
        let median = |v: &[Duration]| percentiles(v.to_vec()).map(|p| p.p50_us).unwrap_or(0);
        out.stages = Stages {
            publish_to_stored_us: median(&stages[0]),
            stored_to_batched_us: median(&stages[1]),
            batched_to_accepted_us: median(&stages[2]),
            accepted_to_settled_us: median(&stages[3]),
            settled_to_published_us: median(&stages[4]),
            published_to_consumed_us: median(&stages[5]),
        };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(1_764_000_000_000 + ms).unwrap()
    }

    #[test]
    fn each_stage_is_the_gap_between_its_two_times() {
        let rows = vec![
            (
                "P-0".to_owned(),
                at(5),
                Some(at(15)),
                Some(at(45)),
                Some(at(145)),
                Some(at(150)),
            ),
            // Not yet batched: only what it went through counts.
            ("P-1".to_owned(), at(7), None, None, None, None),
            // Not one of the run's: ignored.
            ("X-9".to_owned(), at(0), None, None, None, None),
        ];
        let sent = vec![at(0), at(1)];
        let consumed = HashMap::from([("P-0".to_owned(), (at(152), true))]);
        let t = Timings::new(&rows, &sent, &consumed);
        assert_eq!(t.to_result, [Duration::from_millis(152)]);
        assert_eq!(t.to_accepted, [Duration::from_millis(45)]);
        let stages: Vec<u64> = t.stages.named().iter().map(|(_, us)| *us).collect();
        // publish -> stored has two samples (5 and 6 ms): nearest-rank median 5.
        assert_eq!(stages, [5_000, 10_000, 30_000, 100_000, 5_000, 2_000]);
    }
}
