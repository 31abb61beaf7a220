//! Failed-login throttling: a sliding window of failures per remote address, per login
//! name (its canonical form, so spellings share one count) and per account's second
//! factor.
//!
//! When either key has reached its limit within the window, further attempts are refused
//! without the password deciding anything (so a guesser learns nothing). The one
//! exception costs hashing but answers nothing: a password sent in plaintext for a
//! throttled login is still verified to mark it exposed, at most `max_per_login` times per
//! login and window ([`Throttle::take_exposure_check`]); beyond that, refused attempts
//! cost no hashing at all. The second-factor count is separate: a correct password never
//! clears it, only a correct code does, so knowing the password does not buy more guesses
//! at the code.
//! IPv6 addresses are counted per /64, the smallest block one user usually holds.
//!
//! The rules are here; only the counting storage differs ([`Counts`]). A single node
//! (SQLite) counts in memory: old failures are dropped as keys are touched, and the whole
//! map is swept regularly, so memory stays bounded by the number of keys that failed
//! within one window. Nodes sharing PostgreSQL count in the database
//! (`postfach_store::counters`), so ten failures spread over three nodes lock like ten on
//! one; the upkeep sweep prunes the events older than the window. If the database cannot
//! be asked, the throttle fails closed (the attempt is refused as throttled).

use postfach_store::Store;
use postfach_store::counters::{Clock, millis};
use postfach_types::CustomerId;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Ip(IpAddr),
    Login(String),
    SecondFactor(CustomerId),
    /// Plaintext passwords verified for a throttled login, only to mark them exposed.
    ExposureCheck(String),
}

impl Key {
    /// The key's name in the shared table.
    fn name(&self) -> String {
        match self {
            Key::Ip(ip) => format!("ip {ip}"),
            Key::Login(login) => format!("login {login}"),
            Key::SecondFactor(account) => format!("2fa {}", account.get()),
            Key::ExposureCheck(login) => format!("exposure {login}"),
        }
    }
}

#[derive(Debug)]
pub struct Throttle {
    window: Duration,
    max_per_ip: usize,
    max_per_login: usize,
    counts: Counts,
}

/// Where the events are counted.
#[derive(Debug)]
enum Counts {
    /// This process only (one node).
    Memory(Mutex<State>),
    /// The shared database, for every node; times are this node's clock.
    Shared { store: Store, clock: Clock },
}

#[derive(Debug, Default)]
struct State {
    /// When each key was counted (a failure, or an exposure check), oldest first.
    events: HashMap<Key, VecDeque<Instant>>,
    touches_since_sweep: usize,
}

const SWEEP_EVERY: usize = 1024;

impl Throttle {
    /// A throttle counting in this process's memory (one node).
    pub fn new(window: Duration, max_per_ip: u32, max_per_login: u32) -> Self {
        Self::with_counts(window, max_per_ip, max_per_login, Counts::Memory(Mutex::default()))
    }

    /// A throttle counting in `store` when the database is shared by several nodes
    /// ([`Store::is_shared`]), in memory otherwise.
    pub fn for_store(store: &Store, window: Duration, max_per_ip: u32, max_per_login: u32) -> Self {
        if !store.is_shared() {
            return Self::new(window, max_per_ip, max_per_login);
        }
        let counts = Counts::Shared { store: store.clone(), clock: Clock::new() };
        Self::with_counts(window, max_per_ip, max_per_login, counts)
    }

    fn with_counts(window: Duration, max_per_ip: u32, max_per_login: u32, counts: Counts) -> Self {
        Self { window, max_per_ip: max_per_ip.max(1) as usize, max_per_login: max_per_login.max(1) as usize, counts }
    }

    /// Whether an attempt from `ip` for `login` must be refused now.
    pub async fn is_throttled(&self, ip: IpAddr, login: &str, now: Instant) -> bool {
        let counts = self.counts.recent(&[ip_key(ip), Key::Login(login.to_string())], now, self.window).await;
        counts[0] >= self.max_per_ip || counts[1] >= self.max_per_login
    }

    /// Whether the address alone has reached its limit (for credentials that name no
    /// login, such as API tokens).
    pub async fn is_ip_throttled(&self, ip: IpAddr, now: Instant) -> bool {
        self.counts.recent(&[ip_key(ip)], now, self.window).await[0] >= self.max_per_ip
    }

    pub async fn record_failure(&self, ip: IpAddr, login: &str, now: Instant) {
        self.counts.record(&[ip_key(ip), Key::Login(login.to_string())], now, self.window).await;
    }

    pub async fn record_ip_failure(&self, ip: IpAddr, now: Instant) {
        self.counts.record(&[ip_key(ip)], now, self.window).await;
    }

    /// Whether the account's second factor is locked by wrong codes.
    pub async fn is_second_factor_locked(&self, account: CustomerId, now: Instant) -> bool {
        self.counts.recent(&[Key::SecondFactor(account)], now, self.window).await[0] >= self.max_per_login
    }

    /// A wrong code counts for the account's second factor and for the address.
    pub async fn record_second_factor_failure(&self, ip: IpAddr, account: CustomerId, now: Instant) {
        self.counts.record(&[ip_key(ip), Key::SecondFactor(account)], now, self.window).await;
    }

    /// A correct code forgets the account's wrong codes.
    pub async fn record_second_factor_success(&self, account: CustomerId) {
        self.counts.forget(&Key::SecondFactor(account)).await;
    }

    /// Takes one of the `max_per_login` exposure checks a throttled login gets per window
    /// (see the module documentation); `false` when they are used up.
    pub async fn take_exposure_check(&self, login: &str, now: Instant) -> bool {
        let key = Key::ExposureCheck(login.to_string());
        self.counts.take(&key, now, self.window, self.max_per_login).await
    }

    /// A successful login forgets the login name's failures (not the address's, not the
    /// second factor's).
    pub async fn record_success(&self, login: &str) {
        self.counts.forget(&Key::Login(login.to_string())).await;
    }

    /// Number of keys currently tracked in memory (for tests and metrics; 0 when the
    /// counts are in the database).
    pub fn tracked_keys(&self) -> usize {
        match &self.counts {
            Counts::Memory(state) => lock(state).events.len(),
            Counts::Shared { .. } => 0,
        }
    }

    /// Drops every failure older than the window.
    pub async fn sweep(&self, now: Instant) {
        self.counts.sweep(now, self.window).await;
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // A panic while holding the lock leaves consistent data (plain collections).
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The one interface of the two storages. In memory nothing waits; in the database each
/// call is one query.
impl Counts {
    /// How many events each key has within the window before `now`; a key that cannot be
    /// counted reads as over every limit.
    async fn recent(&self, keys: &[Key], now: Instant, window: Duration) -> Vec<usize> {
        match self {
            Counts::Memory(state) => {
                let mut state = lock(state);
                keys.iter().map(|k| state.recent(k, now, window)).collect()
            }
            Counts::Shared { store, clock } => {
                let names: Vec<String> = keys.iter().map(Key::name).collect();
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                match store.count_throttle_events(&names, since(clock, now, window)).await {
                    Ok(counts) => counts.into_iter().map(|n| usize::try_from(n).unwrap_or(usize::MAX)).collect(),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the login throttle; refusing the attempt");
                        vec![usize::MAX; keys.len()]
                    }
                }
            }
        }
    }

    async fn record(&self, keys: &[Key], now: Instant, window: Duration) {
        match self {
            Counts::Memory(state) => lock(state).record(keys, now, window),
            Counts::Shared { store, clock } => {
                let names: Vec<String> = keys.iter().map(Key::name).collect();
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                if let Err(e) = store.record_throttle_events(&names, clock.ms(now)).await {
                    tracing::warn!(error = %e, "cannot count a failed attempt in the login throttle");
                }
            }
        }
    }

    /// Counts an event for `key` if it has fewer than `max` in the window; whether it did.
    async fn take(&self, key: &Key, now: Instant, window: Duration, max: usize) -> bool {
        match self {
            Counts::Memory(state) => {
                let mut state = lock(state);
                if state.recent(key, now, window) >= max {
                    return false;
                }
                state.record(std::slice::from_ref(key), now, window);
                true
            }
            Counts::Shared { store, clock } => {
                let max = u64::try_from(max).unwrap_or(u64::MAX);
                match store.take_throttle_event(&key.name(), clock.ms(now), since(clock, now, window), max).await {
                    Ok(taken) => taken,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the login throttle");
                        false
                    }
                }
            }
        }
    }

    async fn forget(&self, key: &Key) {
        match self {
            Counts::Memory(state) => {
                lock(state).events.remove(key);
            }
            Counts::Shared { store, .. } => {
                if let Err(e) = store.forget_throttle_events(&key.name()).await {
                    tracing::warn!(error = %e, "cannot clear a key of the login throttle");
                }
            }
        }
    }

    async fn sweep(&self, now: Instant, window: Duration) {
        match self {
            Counts::Memory(state) => lock(state).sweep(now, window),
            Counts::Shared { store, clock } => {
                if let Err(e) = store.prune_throttle_events(since(clock, now, window)).await {
                    tracing::warn!(error = %e, "pruning the login throttle failed");
                }
            }
        }
    }
}

/// The start of the window ending at `now`: events at or before it no longer count.
fn since(clock: &Clock, now: Instant, window: Duration) -> i64 {
    clock.ms(now).saturating_sub(millis(window))
}

impl State {
    fn record(&mut self, keys: &[Key], now: Instant, window: Duration) {
        for key in keys {
            self.events.entry(key.clone()).or_default().push_back(now);
        }
        self.touches_since_sweep += 1;
        if self.touches_since_sweep >= SWEEP_EVERY {
            self.sweep(now, window);
        }
    }

    fn recent(&mut self, key: &Key, now: Instant, window: Duration) -> usize {
        let Some(times) = self.events.get_mut(key) else { return 0 };
        while times.front().is_some_and(|t| now.duration_since(*t) >= window) {
            times.pop_front();
        }
        let n = times.len();
        if n == 0 {
            self.events.remove(key);
        }
        n
    }

    fn sweep(&mut self, now: Instant, window: Duration) {
        self.events.retain(|_, times| {
            times.retain(|t| now.duration_since(*t) < window);
            !times.is_empty()
        });
        self.touches_since_sweep = 0;
    }
}

fn ip_key(ip: IpAddr) -> Key {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            Key::Ip(IpAddr::from(segments))
        }
        v4 => Key::Ip(v4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[tokio::test]
    async fn login_limit_applies_across_addresses_and_expires() {
        let t = Throttle::new(Duration::from_secs(900), 10, 5);
        let start = Instant::now();
        for i in 0..5 {
            assert!(!t.is_throttled(ip(&format!("192.0.2.{i}")), "max@example.net", start).await);
            t.record_failure(ip(&format!("192.0.2.{i}")), "max@example.net", start).await;
        }
        assert!(t.is_throttled(ip("198.51.100.7"), "max@example.net", start).await);
        assert!(!t.is_throttled(ip("198.51.100.7"), "erika@example.net", start).await);
        assert!(!t.is_throttled(ip("198.51.100.7"), "max@example.net", start + Duration::from_secs(900)).await);
    }

    #[tokio::test]
    async fn ip_limit_applies_across_logins_and_ipv6_counts_per_64() {
        let t = Throttle::new(Duration::from_secs(60), 3, 100);
        let now = Instant::now();
        for (i, addr) in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"].iter().enumerate() {
            t.record_failure(ip(addr), &format!("user{i}@example.net"), now).await;
        }
        assert!(t.is_throttled(ip("2001:db8:1:2::77"), "new@example.net", now).await);
        assert!(!t.is_throttled(ip("2001:db8:1:3::1"), "new@example.net", now).await);
    }

    #[tokio::test]
    async fn success_clears_the_login_but_not_the_address() {
        let t = Throttle::new(Duration::from_secs(60), 2, 2);
        let now = Instant::now();
        t.record_failure(ip("192.0.2.1"), "a@example.net", now).await;
        t.record_failure(ip("192.0.2.1"), "a@example.net", now).await;
        assert!(t.is_throttled(ip("192.0.2.2"), "a@example.net", now).await);
        t.record_success("a@example.net").await;
        assert!(!t.is_throttled(ip("192.0.2.2"), "a@example.net", now).await);
        assert!(t.is_throttled(ip("192.0.2.1"), "b@example.net", now).await);
    }

    #[tokio::test]
    async fn second_factor_failures_survive_a_correct_password() {
        let t = Throttle::new(Duration::from_secs(60), 100, 3);
        let now = Instant::now();
        let (seven, eight) = (CustomerId::new(7), CustomerId::new(8));
        for i in 0..3 {
            assert!(!t.is_second_factor_locked(seven, now).await);
            t.record_second_factor_failure(ip(&format!("192.0.2.{i}")), seven, now).await;
        }
        assert!(t.is_second_factor_locked(seven, now).await);
        t.record_success("boss").await;
        assert!(t.is_second_factor_locked(seven, now).await, "a correct password does not unlock the second factor");
        assert!(!t.is_second_factor_locked(eight, now).await);
        t.record_second_factor_success(seven).await;
        assert!(!t.is_second_factor_locked(seven, now).await);
    }

    #[tokio::test]
    async fn exposure_checks_are_counted_per_login_and_window() {
        let t = Throttle::new(Duration::from_secs(60), 100, 2);
        let now = Instant::now();
        assert!(t.take_exposure_check("a@example.net", now).await);
        assert!(t.take_exposure_check("a@example.net", now).await);
        assert!(!t.take_exposure_check("a@example.net", now).await, "the budget is used up");
        assert!(t.take_exposure_check("b@example.net", now).await, "another login has its own");
        // Checks are not failures: they throttle nothing.
        assert!(!t.is_throttled(ip("192.0.2.1"), "a@example.net", now).await);
        t.record_success("a@example.net").await;
        assert!(!t.take_exposure_check("a@example.net", now).await, "a success does not refill it");
        assert!(t.take_exposure_check("a@example.net", now + Duration::from_secs(60)).await, "the window does");
    }

    #[tokio::test]
    async fn sweeping_forgets_old_failures() {
        let t = Throttle::new(Duration::from_secs(10), 5, 5);
        let now = Instant::now();
        for i in 0..100 {
            t.record_failure(ip(&format!("192.0.2.{i}")), &format!("u{i}@example.net"), now).await;
        }
        assert_eq!(t.tracked_keys(), 200);
        t.sweep(now + Duration::from_secs(11)).await;
        assert_eq!(t.tracked_keys(), 0);
    }
}
