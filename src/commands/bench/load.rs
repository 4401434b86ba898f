//! The arithmetic of the benchmark's report: percentiles, rates and
//! milliseconds (the publisher and the process usage are in `harness`).

use std::time::{Duration, Instant};

/// p50, p90, p99 and max of a set of latencies, in microseconds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Percentiles {
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

pub fn percentiles(mut samples: Vec<Duration>) -> Option<Percentiles> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    // Nearest rank: the sample at or above the q-th share of the sorted list.
    let at = |per_mille: usize| {
        let i = (samples.len() * per_mille).div_ceil(1000).saturating_sub(1);
        samples[i.min(samples.len() - 1)].as_micros() as u64
    };
    Some(Percentiles {
        p50_us: at(500),
        p90_us: at(900),
        p99_us: at(990),
        max_us: at(1000),
    })
}

/// Microseconds as milliseconds with three decimals, for the table.
pub fn ms(us: u64) -> String {
    format!("{}.{:03}", us / 1000, us % 1000)
}

/// Events per second over a duration.
pub fn rate(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64().max(1e-9)
}

/// Microseconds since `start`, written into benchmark bodies for latency.
pub fn micros_since(start: Instant) -> u64 {
    start.elapsed().as_micros() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_list(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        assert!(percentiles(Vec::new()).is_none());
        let one = percentiles(ms_list(&[7])).unwrap();
        assert_eq!((one.p50_us, one.p99_us, one.max_us), (7000, 7000, 7000));
        // 1..=100 ms shuffled: p50 is the 50th, p99 the 99th, max the 100th.
        let mut v: Vec<u64> = (1..=100).rev().collect();
        v.swap(3, 70);
        let p = percentiles(ms_list(&v)).unwrap();
        assert_eq!(
            (p.p50_us, p.p90_us, p.p99_us, p.max_us),
            (50_000, 90_000, 99_000, 100_000)
        );
        // Two samples: the median is the lower.
        let two = percentiles(ms_list(&[9, 1])).unwrap();
        assert_eq!((two.p50_us, two.max_us), (1000, 9000));
    }

    #[test]
    fn milliseconds_print_with_three_decimals() {
        assert_eq!(ms(1_234_567), "1234.567");
        assert_eq!(ms(5), "0.005");
    }
}
