//! How fast anyone may guess tokens: after 5 wrong tokens a minute from one
//! client address, or 20 a minute from everyone, tokens are not even looked
//! at (429 with `Retry-After`) until the limit lets one more through. Both
//! `/login` and bearer requests count; sessions (a cookie) are not held.
//!
//! `governor` keeps the counts (a burst of 5, then one every 12 s per
//! address; 20, then one every 3 s overall). Its answer for a wrong token
//! says whether any room is left; when none is, the client (or everyone) is
//! held for one interval, so the next guess is refused before its token is
//! checked and a client over the limit learns nothing from the answer. The
//! address is the TCP peer's: behind a proxy every client shares the proxy's.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use governor::clock::{DefaultClock, QuantaInstant};
use governor::middleware::{StateInformationMiddleware, StateSnapshot};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{NotUntil, Quota, RateLimiter};

/// Wrong tokens a minute from one client address.
pub const PER_CLIENT: NonZeroU32 = nonzero(5);
/// Wrong tokens a minute from everyone together.
pub const OVERALL: NonZeroU32 = nonzero(20);
/// Addresses remembered before the idle ones are forgotten.
const FORGET_AFTER: usize = 10_000;

const fn nonzero(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(n) => n,
        None => NonZeroU32::MIN,
    }
}

type Keyed =
    RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock, StateInformationMiddleware>;
type Direct = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;
type Outcome = Result<StateSnapshot, NotUntil<QuantaInstant>>;

/// Who is held, and until when.
#[derive(Default)]
struct Held {
    clients: HashMap<IpAddr, Instant>,
    everyone: Option<Instant>,
}

pub struct SignInLimit {
    per_client: Keyed,
    overall: Direct,
    per_client_quota: Quota,
    overall_quota: Quota,
    held: Mutex<Held>,
}

impl SignInLimit {
    /// `per_client` and `overall` wrong tokens a minute.
    pub fn new(per_client: NonZeroU32, overall: NonZeroU32) -> Self {
        let per_client_quota = Quota::per_minute(per_client);
        let overall_quota = Quota::per_minute(overall);
        Self {
            per_client: RateLimiter::keyed(per_client_quota).with_middleware(),
            overall: RateLimiter::direct(overall_quota).with_middleware(),
            per_client_quota,
            overall_quota,
            held: Mutex::new(Held::default()),
        }
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Before a token from `client` is checked: `Err` is how long it must
    /// wait (whole seconds, at least one).
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let held = self.held();
        let until = [held.clients.get(&client).copied(), held.everyone]
            .into_iter()
            .flatten()
            .filter(|until| *until > now)
            .max();
        match until {
            Some(until) => Err(Duration::from_secs(until.duration_since(now).as_secs() + 1)),
            None => Ok(()),
        }
    }

    /// A token from `client` was wrong: counts it, and holds the client (or
    /// everyone) when it used the last of the room.
    pub fn failed(&self, client: IpAddr) {
        let now = Instant::now();
        let mut held = self.held();
        if no_room(self.per_client.check_key(&client)) {
            let until = now + self.per_client_quota.replenish_interval();
            held.clients.insert(client, until);
        }
        if no_room(self.overall.check()) {
            held.everyone = Some(now + self.overall_quota.replenish_interval());
        }
        if held.clients.len() > FORGET_AFTER {
            held.clients.retain(|_, until| *until > now);
        }
        if self.per_client.len() > FORGET_AFTER {
            self.per_client.retain_recent();
        }
    }
}

/// Whether a counted wrong token left no room for another.
fn no_room(outcome: Outcome) -> bool {
    match outcome {
        Ok(state) => state.remaining_burst_capacity() == 0,
        Err(_) => true,
    }
}

impl Default for SignInLimit {
    fn default() -> Self {
        Self::new(PER_CLIENT, OVERALL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn after_five_wrong_tokens_from_one_client_it_waits_and_the_others_do_not() {
        let l = SignInLimit::default();
        for n in 1..=5 {
            assert_eq!(l.check(ip(1)), Ok(()), "{n}");
            l.failed(ip(1));
        }
        let wait = l.check(ip(1)).unwrap_err();
        assert!(
            (Duration::from_secs(1)..=Duration::from_secs(13)).contains(&wait),
            "{wait:?}"
        );
        assert_eq!(l.check(ip(2)), Ok(()), "another client is not held");
    }

    #[test]
    fn after_twenty_wrong_tokens_a_minute_from_anyone_everyone_waits() {
        let l = SignInLimit::default();
        for n in 0..20 {
            assert_eq!(l.check(ip(n)), Ok(()), "{n}");
            l.failed(ip(n));
        }
        assert!(l.check(ip(100)).is_err());
    }
}
