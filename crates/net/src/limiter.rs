//! Open connections per remote address, shared by all listeners of one service.
//!
//! A guard is taken when a connection is accepted and released when it is dropped, so
//! the count is right however the session ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Debug, Clone)]
pub struct ConnectionLimiter {
    max_per_ip: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// Holds one connection slot until dropped.
#[derive(Debug)]
pub struct ConnectionGuard {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl ConnectionLimiter {
    pub fn new(max_per_ip: usize) -> Self {
        Self { max_per_ip: max_per_ip.max(1), open: Arc::default() }
    }

    /// A slot for `ip`, or `None` when it already holds the maximum.
    pub fn try_acquire(&self, ip: IpAddr) -> Option<ConnectionGuard> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            return None;
        }
        *count += 1;
        Some(ConnectionGuard { ip, open: self.open.clone() })
    }

    pub fn open_connections(&self, ip: IpAddr) -> usize {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_limited_per_address_and_returned_on_drop() {
        let limiter = ConnectionLimiter::new(2);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let first = limiter.try_acquire(a).expect("1st");
        let _second = limiter.try_acquire(a).expect("2nd");
        assert!(limiter.try_acquire(a).is_none());
        assert!(limiter.try_acquire(b).is_some());
        drop(first);
        assert_eq!(limiter.open_connections(a), 1);
        assert!(limiter.try_acquire(a).is_some());
    }
}
