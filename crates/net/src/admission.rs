//! Who may open a connection: at most `max_per_ip` open connections per remote address
//! and `max_per_service` in all, shared by every listener of one service (`imap` and
//! `imaps` count together).
//!
//! The slot is taken when the TCP connection is accepted, before any TLS handshake, and
//! released when the [`Slot`] is dropped, however the session ends. IPv6 clients are
//! counted per /64, the block one subscriber usually holds.
//!
//! A connection from a trusted load balancer is for a client named only by the PROXY
//! header that follows: its slot counts towards the service's total at once
//! ([`Admission::admit_unattributed`]) and towards the client's address once the header
//! named it ([`Admission::attribute`]), so the balancer is never counted as one client.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// The remote address already holds `max_per_ip` connections of this service.
    PerAddress,
    /// The service holds `max_per_service` connections in all.
    Service,
}

/// The connection counts of one service. Cheap to clone; clones share the counts.
#[derive(Debug, Clone)]
pub struct Admission {
    max_per_ip: usize,
    max_per_service: usize,
    open: Arc<Mutex<Open>>,
}

#[derive(Debug, Default)]
struct Open {
    per_ip: HashMap<IpAddr, usize>,
    total: usize,
}

/// One admitted connection; dropping it gives the slot back.
#[derive(Debug)]
pub struct Slot {
    /// The counting key of the client's address; `None` while it is not known.
    ip: Option<IpAddr>,
    open: Arc<Mutex<Open>>,
}

impl Admission {
    pub fn new(max_per_ip: usize, max_per_service: usize) -> Self {
        Self { max_per_ip: max_per_ip.max(1), max_per_service: max_per_service.max(1), open: Arc::default() }
    }

    /// A slot for a connection from `ip`, or why there is none.
    pub fn admit(&self, ip: IpAddr) -> Result<Slot, Busy> {
        let key = counting_key(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= self.max_per_service {
            return Err(Busy::Service);
        }
        let count = open.per_ip.entry(key).or_insert(0);
        if *count >= self.max_per_ip {
            return Err(Busy::PerAddress);
        }
        *count += 1;
        open.total += 1;
        Ok(Slot { ip: Some(key), open: self.open.clone() })
    }

    /// A slot counted towards the service's total only, for a connection whose client is
    /// not known yet (a load balancer's, before its PROXY header).
    pub fn admit_unattributed(&self) -> Result<Slot, Busy> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.total >= self.max_per_service {
            return Err(Busy::Service);
        }
        open.total += 1;
        Ok(Slot { ip: None, open: self.open.clone() })
    }

    /// Charges an unattributed `slot` to the client at `ip`; a slot already charged is
    /// returned as it is. When the address holds its share already, the slot is given
    /// back and the answer is [`Busy::PerAddress`].
    pub fn attribute(&self, mut slot: Slot, ip: IpAddr) -> Result<Slot, Busy> {
        if slot.ip.is_some() {
            return Ok(slot);
        }
        let key = counting_key(ip);
        {
            let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
            let count = open.per_ip.entry(key).or_insert(0);
            if *count < self.max_per_ip {
                *count += 1;
                slot.ip = Some(key);
                return Ok(slot);
            }
        }
        // Dropped outside the lock: the slot takes it to give its share back.
        drop(slot);
        Err(Busy::PerAddress)
    }

    /// Open connections from `ip` (counted as [`Admission::admit`] counts them).
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.per_ip.get(&counting_key(ip)).copied().unwrap_or(0)
    }

    /// Open connections of the service.
    pub fn open_total(&self) -> usize {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).total
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        let Some(ip) = self.ip else { return };
        if let Some(count) = open.per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                open.per_ip.remove(&ip);
            }
        }
    }
}

/// IPv4 (also when mapped into IPv6) as it is; other IPv6 addresses by their /64.
fn counting_key(ip: IpAddr) -> IpAddr {
    match crate::peer::canonical_ip(ip) {
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::from(segments)
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn slots_are_limited_per_address_and_returned_on_drop() {
        let admission = Admission::new(2, 100);
        let first = admission.admit(ip("192.0.2.1")).expect("1st");
        let _second = admission.admit(ip("::ffff:192.0.2.1")).expect("2nd, same address mapped");
        assert_eq!(admission.admit(ip("192.0.2.1")).err(), Some(Busy::PerAddress));
        assert!(admission.admit(ip("192.0.2.2")).is_ok());
        drop(first);
        assert_eq!(admission.open_from(ip("192.0.2.1")), 1);
        assert!(admission.admit(ip("192.0.2.1")).is_ok());
    }

    #[test]
    fn ipv6_counts_per_64_and_the_service_has_a_cap() {
        let admission = Admission::new(2, 3);
        let _a = admission.admit(ip("2001:db8:1:2::1")).expect("a");
        let _b = admission.admit(ip("2001:db8:1:2:ffff::9")).expect("b");
        assert_eq!(admission.admit(ip("2001:db8:1:2::77")).err(), Some(Busy::PerAddress));
        let c = admission.admit(ip("2001:db8:1:3::1")).expect("c");
        assert_eq!(admission.admit(ip("198.51.100.1")).err(), Some(Busy::Service));
        drop(c);
        assert_eq!(admission.open_total(), 2);
        assert!(admission.admit(ip("198.51.100.1")).is_ok());
    }

    #[test]
    fn a_balancers_slots_count_for_the_clients_they_carry() {
        let admission = Admission::new(2, 4);
        let pending = admission.admit_unattributed().expect("pending");
        assert_eq!(admission.open_total(), 1);
        assert_eq!(admission.open_from(ip("127.0.0.3")), 0, "the balancer itself is not counted");
        let first = admission.attribute(pending, ip("203.0.113.9")).expect("1st");
        let first = admission.attribute(first, ip("198.51.100.1")).expect("already charged");
        assert_eq!(admission.open_from(ip("203.0.113.9")), 1);
        assert_eq!(admission.open_from(ip("198.51.100.1")), 0);
        let _second = admission.admit(ip("203.0.113.9")).expect("2nd, direct");
        let third = admission.admit_unattributed().expect("pending");
        assert_eq!(admission.attribute(third, ip("::ffff:203.0.113.9")).err(), Some(Busy::PerAddress));
        assert_eq!(admission.open_total(), 2, "the refused slot was given back");
        let _other = admission.attribute(admission.admit_unattributed().expect("pending"), ip("2001:db8::1"));
        let _fourth = admission.admit_unattributed().expect("pending");
        assert_eq!(admission.admit_unattributed().err(), Some(Busy::Service), "pending slots count in the total");
        drop(first);
        assert_eq!(admission.open_from(ip("203.0.113.9")), 1);
        assert_eq!(admission.open_total(), 3);
    }
}
