//! The one canonical form of a client's address: IPv4 is always IPv4, never the
//! IPv4-mapped IPv6 form (`::ffff:a.b.c.d`) a dual-stack socket reports. Admission, the
//! connection's `peer()`, the login log and the throttle all see this form, so one client
//! is never counted, throttled or logged as two.

use std::net::{IpAddr, SocketAddr};

/// The canonical form of `ip`.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// The canonical form of `addr` (the port is kept).
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(canonical_ip(addr.ip()), addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_ipv4_is_ipv4() {
        let mapped: SocketAddr = "[::ffff:192.0.2.7]:25".parse().expect("addr");
        assert_eq!(canonical(mapped), "192.0.2.7:25".parse::<SocketAddr>().expect("addr"));
        let v6: SocketAddr = "[2001:db8::1]:143".parse().expect("addr");
        assert_eq!(canonical(v6), v6);
        let v4: IpAddr = "192.0.2.7".parse().expect("ip");
        assert_eq!(canonical_ip(v4), v4);
    }
}
