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
//! IPv6 addresses are counted per /64, the smallest block one user usually holds. Old
//! failures are dropped as keys are touched, and the whole map is swept regularly, so
//! memory stays bounded by the number of keys that failed within one window.

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

#[derive(Debug)]
pub struct Throttle {
    window: Duration,
    max_per_ip: usize,
    max_per_login: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// When each key was counted (a failure, or an exposure check), oldest first.
    events: HashMap<Key, VecDeque<Instant>>,
    touches_since_sweep: usize,
}

const SWEEP_EVERY: usize = 1024;

impl Throttle {
    pub fn new(window: Duration, max_per_ip: u32, max_per_login: u32) -> Self {
        Self {
            window,
            max_per_ip: max_per_ip.max(1) as usize,
            max_per_login: max_per_login.max(1) as usize,
            state: Mutex::default(),
        }
    }

    /// Whether an attempt from `ip` for `login` must be refused now.
    pub fn is_throttled(&self, ip: IpAddr, login: &str, now: Instant) -> bool {
        let mut state = self.lock();
        let ip_failures = state.recent(&ip_key(ip), now, self.window);
        let login_failures = state.recent(&Key::Login(login.to_string()), now, self.window);
        ip_failures >= self.max_per_ip || login_failures >= self.max_per_login
    }

    /// Whether the address alone has reached its limit (for credentials that name no
    /// login, such as API tokens).
    pub fn is_ip_throttled(&self, ip: IpAddr, now: Instant) -> bool {
        self.lock().recent(&ip_key(ip), now, self.window) >= self.max_per_ip
    }

    pub fn record_failure(&self, ip: IpAddr, login: &str, now: Instant) {
        self.record(&[ip_key(ip), Key::Login(login.to_string())], now);
    }

    pub fn record_ip_failure(&self, ip: IpAddr, now: Instant) {
        self.record(&[ip_key(ip)], now);
    }

    /// Whether the account's second factor is locked by wrong codes.
    pub fn is_second_factor_locked(&self, account: CustomerId, now: Instant) -> bool {
        self.lock().recent(&Key::SecondFactor(account), now, self.window) >= self.max_per_login
    }

    /// A wrong code counts for the account's second factor and for the address.
    pub fn record_second_factor_failure(&self, ip: IpAddr, account: CustomerId, now: Instant) {
        self.record(&[ip_key(ip), Key::SecondFactor(account)], now);
    }

    /// A correct code forgets the account's wrong codes.
    pub fn record_second_factor_success(&self, account: CustomerId) {
        self.lock().events.remove(&Key::SecondFactor(account));
    }

    /// Takes one of the `max_per_login` exposure checks a throttled login gets per window
    /// (see the module documentation); `false` when they are used up.
    pub fn take_exposure_check(&self, login: &str, now: Instant) -> bool {
        let key = Key::ExposureCheck(login.to_string());
        let mut state = self.lock();
        if state.recent(&key, now, self.window) >= self.max_per_login {
            return false;
        }
        state.record(&[key], now, self.window);
        true
    }

    fn record(&self, keys: &[Key], now: Instant) {
        self.lock().record(keys, now, self.window);
    }

    /// A successful login forgets the login name's failures (not the address's, not the
    /// second factor's).
    pub fn record_success(&self, login: &str) {
        self.lock().events.remove(&Key::Login(login.to_string()));
    }

    /// Number of keys currently tracked (for tests and metrics).
    pub fn tracked_keys(&self) -> usize {
        self.lock().events.len()
    }

    /// Drops every failure older than the window.
    pub fn sweep(&self, now: Instant) {
        self.lock().sweep(now, self.window);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (plain collections).
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
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

    #[test]
    fn login_limit_applies_across_addresses_and_expires() {
        let t = Throttle::new(Duration::from_secs(900), 10, 5);
        let start = Instant::now();
        for i in 0..5 {
            assert!(!t.is_throttled(ip(&format!("192.0.2.{i}")), "max@example.net", start));
            t.record_failure(ip(&format!("192.0.2.{i}")), "max@example.net", start);
        }
        assert!(t.is_throttled(ip("198.51.100.7"), "max@example.net", start));
        assert!(!t.is_throttled(ip("198.51.100.7"), "erika@example.net", start));
        assert!(!t.is_throttled(ip("198.51.100.7"), "max@example.net", start + Duration::from_secs(900)));
    }

    #[test]
    fn ip_limit_applies_across_logins_and_ipv6_counts_per_64() {
        let t = Throttle::new(Duration::from_secs(60), 3, 100);
        let now = Instant::now();
        for (i, addr) in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"].iter().enumerate() {
            t.record_failure(ip(addr), &format!("user{i}@example.net"), now);
        }
        assert!(t.is_throttled(ip("2001:db8:1:2::77"), "new@example.net", now));
        assert!(!t.is_throttled(ip("2001:db8:1:3::1"), "new@example.net", now));
    }

    #[test]
    fn success_clears_the_login_but_not_the_address() {
        let t = Throttle::new(Duration::from_secs(60), 2, 2);
        let now = Instant::now();
        t.record_failure(ip("192.0.2.1"), "a@example.net", now);
        t.record_failure(ip("192.0.2.1"), "a@example.net", now);
        assert!(t.is_throttled(ip("192.0.2.2"), "a@example.net", now));
        t.record_success("a@example.net");
        assert!(!t.is_throttled(ip("192.0.2.2"), "a@example.net", now));
        assert!(t.is_throttled(ip("192.0.2.1"), "b@example.net", now));
    }

    #[test]
    fn second_factor_failures_survive_a_correct_password() {
        let t = Throttle::new(Duration::from_secs(60), 100, 3);
        let now = Instant::now();
        let (seven, eight) = (CustomerId::new(7), CustomerId::new(8));
        for i in 0..3 {
            assert!(!t.is_second_factor_locked(seven, now));
            t.record_second_factor_failure(ip(&format!("192.0.2.{i}")), seven, now);
        }
        assert!(t.is_second_factor_locked(seven, now));
        t.record_success("boss");
        assert!(t.is_second_factor_locked(seven, now), "a correct password does not unlock the second factor");
        assert!(!t.is_second_factor_locked(eight, now));
        t.record_second_factor_success(seven);
        assert!(!t.is_second_factor_locked(seven, now));
    }

    #[test]
    fn exposure_checks_are_counted_per_login_and_window() {
        let t = Throttle::new(Duration::from_secs(60), 100, 2);
        let now = Instant::now();
        assert!(t.take_exposure_check("a@example.net", now));
        assert!(t.take_exposure_check("a@example.net", now));
        assert!(!t.take_exposure_check("a@example.net", now), "the budget is used up");
        assert!(t.take_exposure_check("b@example.net", now), "another login has its own");
        // Checks are not failures: they throttle nothing.
        assert!(!t.is_throttled(ip("192.0.2.1"), "a@example.net", now));
        t.record_success("a@example.net");
        assert!(!t.take_exposure_check("a@example.net", now), "a success does not refill it");
        assert!(t.take_exposure_check("a@example.net", now + Duration::from_secs(60)), "the window does");
    }

    #[test]
    fn sweeping_forgets_old_failures() {
        let t = Throttle::new(Duration::from_secs(10), 5, 5);
        let now = Instant::now();
        for i in 0..100 {
            t.record_failure(ip(&format!("192.0.2.{i}")), &format!("u{i}@example.net"), now);
        }
        assert_eq!(t.tracked_keys(), 200);
        t.sweep(now + Duration::from_secs(11));
        assert_eq!(t.tracked_keys(), 0);
    }
}
