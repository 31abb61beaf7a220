//! When to try again: exponential backoff between attempts, and the per-mailbox sending
//! rate limit. Both are pure arithmetic on times handed in, so they are table-tested.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use postfach_types::MailboxId;

/// The wait after the first failed attempt.
pub const FIRST_RETRY: Duration = Duration::from_secs(300);
/// The longest wait between two attempts.
pub const MAX_RETRY: Duration = Duration::from_secs(4 * 3600);

/// The wait after `failures` failed attempts (1 = the first attempt failed): 5 minutes,
/// doubling each time, at most 4 hours. RFC 5321 §4.5.4.1 asks for at least 30 minutes
/// between attempts to one destination after the first retries; the doubling reaches that
/// by the third attempt.
pub fn backoff(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    FIRST_RETRY.saturating_mul(1u32 << exponent).min(MAX_RETRY)
}

/// [`backoff`] stretched by up to a tenth at random, so messages that failed together do
/// not all come back at the same second.
pub fn backoff_with_jitter(failures: u32) -> Duration {
    let base = backoff(failures);
    let tenth = base.as_secs() / 10;
    base + Duration::from_secs(if tenth == 0 { 0 } else { rand::random_range(0..=tenth) })
}

/// A token bucket per mailbox: `per_hour` messages may be sent in a burst, and the
/// allowance refills evenly over the hour. Kept in memory: a restart forgives. Counted in
/// integers: one message costs [`COST`] units, and each millisecond refills `per_hour`.
#[derive(Debug)]
pub struct RateLimiter {
    per_hour: u64,
    buckets: Mutex<HashMap<MailboxId, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    units: u64,
    at: Instant,
}

const COST: u64 = 3_600_000;
/// Buckets kept before full (forgiven) ones are dropped.
const PRUNE_ABOVE: usize = 10_000;

impl RateLimiter {
    pub fn new(per_hour: u32) -> Self {
        Self { per_hour: u64::from(per_hour.max(1)), buckets: Mutex::new(HashMap::new()) }
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> u64 {
        let ms = u64::try_from(now.saturating_duration_since(bucket.at).as_millis()).unwrap_or(u64::MAX);
        bucket.units.saturating_add(ms.saturating_mul(self.per_hour)).min(self.per_hour * COST)
    }

    /// Takes one message from `mailbox`'s allowance, or says in how many seconds the next
    /// one is allowed.
    pub fn check(&self, mailbox: MailboxId, now: Instant) -> Result<(), u64> {
        let capacity = self.per_hour * COST;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| self.refilled(*b, now) < capacity);
        }
        let bucket = *buckets.entry(mailbox).or_insert(Bucket { units: capacity, at: now });
        let units = self.refilled(bucket, now);
        if units >= COST {
            buckets.insert(mailbox, Bucket { units: units - COST, at: now });
            Ok(())
        } else {
            buckets.insert(mailbox, Bucket { units, at: now });
            let ms = (COST - units).div_ceil(self.per_hour);
            Err(ms.div_ceil(1000).max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_five_minutes_up_to_four_hours() {
        let minutes: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs() / 60).collect();
        assert_eq!(minutes, [5, 10, 20, 40, 80, 160, 240, 240, 240]);
        assert_eq!(backoff(0), FIRST_RETRY, "no failure yet counts as the first");
        assert_eq!(backoff(u32::MAX), MAX_RETRY, "no overflow");
        for n in 1..20 {
            let jittered = backoff_with_jitter(n);
            assert!(jittered >= backoff(n) && jittered <= backoff(n) + backoff(n) / 10, "{n}: {jittered:?}");
        }
    }

    #[test]
    fn a_five_day_lifetime_allows_about_thirty_attempts() {
        let mut elapsed = Duration::ZERO;
        let mut attempts = 1;
        while elapsed + backoff(attempts) < Duration::from_secs(432_000) {
            elapsed += backoff(attempts);
            attempts += 1;
        }
        assert!((30..=40).contains(&attempts), "{attempts}");
    }

    #[test]
    fn the_rate_limit_allows_a_burst_then_refills_evenly() {
        let limiter = RateLimiter::new(3);
        let start = Instant::now();
        let (one, two) = (MailboxId::new(1), MailboxId::new(2));
        for _ in 0..3 {
            assert_eq!(limiter.check(one, start), Ok(()));
        }
        assert_eq!(limiter.check(one, start), Err(1200), "one message per 20 minutes refills");
        assert_eq!(limiter.check(two, start), Ok(()), "other mailboxes have their own allowance");
        assert_eq!(limiter.check(one, start + Duration::from_secs(600)), Err(600));
        assert_eq!(limiter.check(one, start + Duration::from_secs(1200)), Ok(()));
        assert!(limiter.check(one, start + Duration::from_secs(1201)).is_err());
        assert_eq!(limiter.check(one, start + Duration::from_secs(10 * 3600)), Ok(()), "never more than the burst");
    }
}
