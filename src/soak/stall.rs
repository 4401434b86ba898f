//! Stalled workers: a worker process stopped (`SIGSTOP`) for longer than the
//! submitter's lease, then continued (`SIGCONT`), as a process paused by a
//! long GC, a swapped-out host or a frozen VM would be. Its claims run out
//! meanwhile and another worker takes its batches over; when it wakes it
//! carries on with the call it was in, so what it writes must be fenced.
//!
//! Owns how long a stall lasts (derived from the gateway time-out the soak
//! gives its workers, as the submitter derives its lease) and the book of
//! who is stopped until when. Invariant: a stopped worker is always
//! continued — when due, before it is stopped for good (SIGTERM would wait
//! on a stopped process for ever), when the faults end, and when the soak
//! ends or fails (`Workers` continues every one before it kills or stops
//! them) — so no process is left stopped.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use super::Workers;

/// `ALIPAY_TIMEOUT_MS` of the soak's workers: a whole gateway request.
pub const ALIPAY_TIMEOUT: Duration = Duration::from_millis(1500);

/// The submitter's lease on a claimed batch for a gateway time-out, as
/// `submit::Submitter::step` computes it: past the whole-request time-out
/// twice, with a second to record the answer.
pub fn submit_lease(timeout: Duration) -> Duration {
    timeout * 2 + Duration::from_secs(1)
}

/// How long a stalled worker stays stopped: its lease and two seconds more,
/// so every claim it held has run out and can be taken over (6 s).
pub fn stall_length() -> Duration {
    submit_lease(ALIPAY_TIMEOUT) + Duration::from_secs(2)
}

/// Who is stopped until when, by worker (pure).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stalls {
    until: Vec<Option<Instant>>,
}

impl Stalls {
    pub fn new(workers: usize) -> Self {
        Self {
            until: vec![None; workers],
        }
    }

    /// Books worker `i` as stopped until `until`; false when it already is
    /// (a stall is not stretched by a second one).
    pub fn start(&mut self, i: usize, until: Instant) -> bool {
        match self.until.get_mut(i) {
            Some(slot @ None) => {
                *slot = Some(until);
                true
            }
            _ => false,
        }
    }

    /// Whether worker `i` is booked as stopped.
    pub fn is_stalled(&self, i: usize) -> bool {
        self.until.get(i).is_some_and(Option::is_some)
    }

    /// The workers due to be continued at `now`, taken off the book.
    pub fn due(&mut self, now: Instant) -> Vec<usize> {
        self.take_where(|until| until <= now)
    }

    /// Every worker still booked as stopped, taken off the book.
    pub fn all(&mut self) -> Vec<usize> {
        self.take_where(|_| true)
    }

    /// Takes worker `i` off the book (it was killed: nothing to continue).
    pub fn forget(&mut self, i: usize) {
        if let Some(slot) = self.until.get_mut(i) {
            *slot = None;
        }
    }

    /// When the next stopped worker is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.until.iter().flatten().min().copied()
    }

    fn take_where(&mut self, due: impl Fn(Instant) -> bool) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, slot) in self.until.iter_mut().enumerate() {
            if slot.is_some_and(&due) {
                *slot = None;
                out.push(i);
            }
        }
        out
    }
}

/// Sends a signal by name (`STOP`, `CONT`) with `kill`, as the soak's other
/// signals go, so no signal crate is needed; true when `kill` succeeded.
fn signal(child: &Child, name: &str) -> bool {
    Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Workers {
    /// Stops worker `i` until `until`; false when it is not running, is
    /// stopped already, or the signal failed (then nothing is booked).
    pub fn stall(&mut self, i: usize, until: Instant) -> bool {
        let Some(child) = self.children.get(i).and_then(Option::as_ref) else {
            return false;
        };
        if self.stalls.is_stalled(i) || !signal(child, "STOP") {
            return false;
        }
        self.stalls.start(i, until)
    }

    /// Continues every stopped worker whose stall is over at `now`.
    pub fn resume_due(&mut self, now: Instant) {
        let due = self.stalls.due(now);
        self.resume(&due);
    }

    /// Continues every stopped worker, due or not.
    pub fn resume_all(&mut self) {
        let all = self.stalls.all();
        self.resume(&all);
    }

    /// Whether worker `i` is stopped now.
    pub fn is_stalled(&self, i: usize) -> bool {
        self.stalls.is_stalled(i)
    }

    /// When the next stopped worker is due to be continued.
    pub fn next_resume(&self) -> Option<Instant> {
        self.stalls.next_due()
    }

    fn resume(&mut self, which: &[usize]) {
        for &i in which {
            if let Some(child) = self.children.get(i).and_then(Option::as_ref)
                && !signal(child, "CONT")
            {
                eprintln!("soak: could not continue worker {i} (pid {})", child.id());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_outlasts_the_submitters_lease() {
        assert_eq!(submit_lease(ALIPAY_TIMEOUT), Duration::from_secs(4));
        assert_eq!(stall_length(), Duration::from_secs(6));
        assert!(stall_length() > submit_lease(ALIPAY_TIMEOUT));
    }

    #[test]
    fn a_stalled_worker_is_due_once_at_its_time_and_never_stalled_twice_at_once() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut book = Stalls::new(3);
        assert!(book.start(1, s(6)));
        assert!(!book.start(1, s(60)), "not stretched");
        assert!(!book.start(3, s(6)), "no such worker");
        assert!(book.start(2, s(8)));
        assert_eq!(book.next_due(), Some(s(6)));
        assert!(book.due(s(5)).is_empty());
        assert_eq!(book.due(s(6)), [1]);
        assert!(book.due(s(7)).is_empty(), "continued once");
        assert!(!book.is_stalled(1) && book.is_stalled(2));
        assert_eq!(book.next_due(), Some(s(8)));
        // Stalled again after it was continued.
        assert!(book.start(1, s(20)));
        assert_eq!(book.all(), [1, 2]);
        assert_eq!(book.next_due(), None);
        assert_eq!(book, Stalls::new(3));
    }

    #[test]
    fn a_killed_worker_is_taken_off_the_book() {
        let t0 = Instant::now();
        let mut book = Stalls::new(2);
        assert!(book.start(0, t0));
        book.forget(0);
        assert!(book.due(t0 + Duration::from_secs(1)).is_empty());
        assert!(book.start(0, t0));
    }
}
