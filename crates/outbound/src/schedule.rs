//! When to try again: exponential backoff between attempts, and the per-mailbox sending
//! rate limit. Both are arithmetic on times handed in, so they are table-tested.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use postfach_store::Store;
use postfach_store::counters::{Allowance, Clock, millis};
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
/// allowance refills evenly over the hour. Counted in integers: one message costs
/// [`COST`] units, and each millisecond refills `per_hour`, so an empty bucket is full
/// again after one hour.
///
/// The rule is [`RateLimiter::take`]; only where the buckets are kept differs. A single
/// node keeps them in memory (a restart forgives); nodes sharing PostgreSQL keep them in
/// the database (`postfach_store::counters`), each bucket locked while it is decided, so
/// a mailbox's allowance is one for the whole cluster.
#[derive(Debug)]
pub struct RateLimiter {
    per_hour: u64,
    buckets: Buckets,
}

#[derive(Debug)]
enum Buckets {
    Memory(Mutex<HashMap<MailboxId, Bucket>>),
    Shared { store: Store, clock: Clock },
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    units: u64,
    at: Instant,
}

const COST: u64 = 3_600_000;
/// Buckets kept in memory before full (forgiven) ones are dropped.
const PRUNE_ABOVE: usize = 10_000;
/// After this long unused, every bucket is full again, so forgetting it loses nothing.
const REFILL: Duration = Duration::from_secs(3600);

impl RateLimiter {
    /// Buckets in memory (one node).
    pub fn new(per_hour: u32) -> Self {
        Self { per_hour: u64::from(per_hour.max(1)), buckets: Buckets::Memory(Mutex::new(HashMap::new())) }
    }

    /// Buckets in `store` when several nodes share it ([`Store::is_shared`]), else in memory.
    pub fn for_store(store: &Store, per_hour: u32) -> Self {
        if !store.is_shared() {
            return Self::new(per_hour);
        }
        Self {
            per_hour: u64::from(per_hour.max(1)),
            buckets: Buckets::Shared { store: store.clone(), clock: Clock::new() },
        }
    }

    fn capacity(&self) -> u64 {
        self.per_hour * COST
    }

    /// The units a bucket holding `units` has after `elapsed_ms` more milliseconds.
    fn refilled(&self, units: u64, elapsed_ms: u64) -> u64 {
        units.saturating_add(elapsed_ms.saturating_mul(self.per_hour)).min(self.capacity())
    }

    /// THE rule: from a bucket that held `left` units `elapsed_ms` ago (`None`: a new,
    /// full one), the units left now and the answer: sent, or in how many seconds the
    /// next message is allowed.
    fn take(&self, left: Option<(u64, u64)>) -> (u64, Result<(), u64>) {
        let units = left.map_or(self.capacity(), |(units, elapsed_ms)| self.refilled(units, elapsed_ms));
        if units >= COST {
            (units - COST, Ok(()))
        } else {
            let ms = (COST - units).div_ceil(self.per_hour);
            (units, Err(ms.div_ceil(1000).max(1)))
        }
    }

    /// Takes one message from `mailbox`'s allowance, or says in how many seconds the next
    /// one is allowed. When the shared buckets cannot be read, the message goes (the
    /// queue itself needs the same database, so this is a short window).
    pub async fn check(&self, mailbox: MailboxId, now: Instant) -> Result<(), u64> {
        match &self.buckets {
            Buckets::Memory(buckets) => {
                let mut buckets = buckets.lock().unwrap_or_else(|p| p.into_inner());
                if buckets.len() > PRUNE_ABOVE {
                    let capacity = self.capacity();
                    buckets.retain(|_, b| self.refilled(b.units, elapsed_ms(b.at, now)) < capacity);
                }
                let left = buckets.get(&mailbox).map(|b| (b.units, elapsed_ms(b.at, now)));
                let (units, answer) = self.take(left);
                buckets.insert(mailbox, Bucket { units, at: now });
                answer
            }
            Buckets::Shared { store, clock } => {
                let now_ms = clock.ms(now);
                let decided = store
                    .update_send_allowance(mailbox, |stored| {
                        let left =
                            stored.map(|a| (a.units, u64::try_from(now_ms.saturating_sub(a.at_ms)).unwrap_or(0)));
                        let (units, answer) = self.take(left);
                        (Allowance { units, at_ms: now_ms }, answer)
                    })
                    .await;
                decided.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, mailbox = mailbox.get(), "cannot read the sending allowance; letting the message go");
                    Ok(())
                })
            }
        }
    }

    /// Forgets shared buckets that are full again (memory prunes itself).
    pub async fn sweep(&self, now: Instant) {
        if let Buckets::Shared { store, clock } = &self.buckets {
            let before = clock.ms(now).saturating_sub(millis(REFILL));
            if let Err(e) = store.prune_send_allowances(before).await {
                tracing::warn!(error = %e, "pruning the sending allowances failed");
            }
        }
    }
}

fn elapsed_ms(at: Instant, now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(at).as_millis()).unwrap_or(u64::MAX)
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

    #[tokio::test]
    async fn the_rate_limit_allows_a_burst_then_refills_evenly() {
        let limiter = RateLimiter::new(3);
        let start = Instant::now();
        let (one, two) = (MailboxId::new(1), MailboxId::new(2));
        for _ in 0..3 {
            assert_eq!(limiter.check(one, start).await, Ok(()));
        }
        assert_eq!(limiter.check(one, start).await, Err(1200), "one message per 20 minutes refills");
        assert_eq!(limiter.check(two, start).await, Ok(()), "other mailboxes have their own allowance");
        assert_eq!(limiter.check(one, start + Duration::from_secs(600)).await, Err(600));
        assert_eq!(limiter.check(one, start + Duration::from_secs(1200)).await, Ok(()));
        assert!(limiter.check(one, start + Duration::from_secs(1201)).await.is_err());
        assert_eq!(
            limiter.check(one, start + Duration::from_secs(10 * 3600)).await,
            Ok(()),
            "never more than the burst"
        );
    }
}
