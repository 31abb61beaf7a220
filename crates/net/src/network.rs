//! IP networks in CIDR notation (`192.0.2.0/24`, `2001:db8::/32`), for the list of load
//! balancers whose PROXY headers are believed (`[proxy] trusted_networks`).
//!
//! A network is kept in canonical form, like client addresses ([`crate::canonical`]): an
//! IPv4-mapped IPv6 network (`::ffff:192.0.2.0/120`) is the IPv4 network it maps
//! (`192.0.2.0/24`), so it matches the canonical peers the accept loop compares it with.
//! Bits past the prefix must be zero: `10.0.0.1/8` is refused rather than guessed at.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

/// An IP network: an address and how many leading bits of it are fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

/// Why a text is not a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    #[error("'{0}' is not a network like 192.0.2.0/24, 2001:db8::/32 or 192.0.2.7")]
    Syntax(String),
    #[error("'{text}': the prefix length of an {family} network is at most {max}")]
    Prefix { text: String, family: &'static str, max: u8 },
    #[error("'{text}' has bits set past its prefix: write {network}")]
    HostBits { text: String, network: Network },
    #[error("'{0}' covers IPv4-mapped and other IPv6 addresses: write IPv4 networks as IPv4, like 192.0.2.0/24")]
    MixedMapped(String),
}

/// Bits in the `::ffff:0:0/96` prefix of IPv4-mapped IPv6 addresses.
const MAPPED_PREFIX: u8 = 96;

impl Network {
    /// Whether `ip` (in any form, IPv4-mapped included) lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, crate::peer::canonical_ip(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => masked(u32::from(ip).into(), 32, self.prefix) == u32::from(net).into(),
            (IpAddr::V6(net), IpAddr::V6(ip)) => masked(u128::from(ip), 128, self.prefix) == u128::from(net),
            _ => false,
        }
    }
}

/// `bits` with everything past the first `prefix` of `width` bits cleared.
fn masked(bits: u128, width: u8, prefix: u8) -> u128 {
    let host_bits = u32::from(width - prefix);
    let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
    bits & mask & (u128::MAX >> (128 - u32::from(width)))
}

impl FromStr for Network {
    type Err = NetworkError;

    /// `ADDRESS/PREFIX`, or a bare address for a single host (`/32`, `/128`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = || NetworkError::Syntax(text.to_string());
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => {
                // Decimal digits only: no sign, no spaces, no leading zeros beyond "0".
                let digits_ok = !prefix.is_empty()
                    && prefix.len() <= 3
                    && prefix.bytes().all(|b| b.is_ascii_digit())
                    && (prefix == "0" || !prefix.starts_with('0'));
                let prefix: u8 = if digits_ok { prefix.parse().map_err(|_| syntax())? } else { return Err(syntax()) };
                (addr.parse::<IpAddr>().map_err(|_| syntax())?, Some(prefix))
            }
            None => (text.parse::<IpAddr>().map_err(|_| syntax())?, None),
        };
        let (family, width) = if addr.is_ipv4() { ("IPv4", 32) } else { ("IPv6", 128) };
        let prefix = prefix.unwrap_or(width);
        if prefix > width {
            return Err(NetworkError::Prefix { text: text.to_string(), family, max: width });
        }
        let network = canonical_network(addr, prefix).ok_or_else(|| NetworkError::MixedMapped(text.to_string()))?;
        let bits = match network.addr {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        };
        if masked(bits.0, bits.1, network.prefix) != bits.0 {
            let cleared = masked(bits.0, bits.1, network.prefix);
            let addr = match network.addr {
                IpAddr::V4(_) => IpAddr::from(std::net::Ipv4Addr::from(u32::try_from(cleared).unwrap_or(0))),
                IpAddr::V6(_) => IpAddr::from(Ipv6Addr::from(cleared)),
            };
            return Err(NetworkError::HostBits {
                text: text.to_string(),
                network: Network { addr, prefix: network.prefix },
            });
        }
        Ok(network)
    }
}

/// The IPv4 network an IPv4-mapped one stands for; `None` for a mapped address whose
/// prefix is shorter than the mapping's own (it would cover other IPv6 addresses too).
fn canonical_network(addr: IpAddr, prefix: u8) -> Option<Network> {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) if prefix >= MAPPED_PREFIX => Some(Network { addr: v4.into(), prefix: prefix - MAPPED_PREFIX }),
            Some(_) => None,
            None => Some(Network { addr, prefix }),
        },
        v4 => Some(Network { addr: v4, prefix }),
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Network {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        let lan = net("10.1.0.0/16");
        assert!(lan.contains(ip("10.1.0.0")));
        assert!(lan.contains(ip("10.1.255.255")));
        assert!(lan.contains(ip("::ffff:10.1.2.3")), "a dual-stack socket's mapped form is the same client");
        assert!(!lan.contains(ip("10.2.0.0")));
        assert!(!lan.contains(ip("::a01:203")), "IPv6 never matches an IPv4 network");
        let v6 = net("2001:db8:1::/48");
        assert!(v6.contains(ip("2001:db8:1:ffff::1")));
        assert!(!v6.contains(ip("2001:db8:2::1")));
        assert!(!v6.contains(ip("10.1.2.3")));
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(!net("0.0.0.0/0").contains(ip("2001:db8::1")));
        assert!(net("::/0").contains(ip("2001:db8::1")));
        let host = net("127.0.0.3");
        assert_eq!(host.to_string(), "127.0.0.3/32");
        assert!(host.contains(ip("127.0.0.3")));
        assert!(!host.contains(ip("127.0.0.2")));
        assert_eq!(net("2001:db8::7").to_string(), "2001:db8::7/128");
    }

    #[test]
    fn mapped_networks_are_ipv4() {
        assert_eq!(net("::ffff:192.0.2.0/120"), net("192.0.2.0/24"));
        assert_eq!(net("::ffff:192.0.2.7"), net("192.0.2.7/32"));
        assert_eq!(net("::ffff:0:0/96"), net("0.0.0.0/0"));
        assert!(net("::ffff:192.0.2.0/120").contains(ip("192.0.2.9")));
        assert!(matches!("::ffff:0:0/95".parse::<Network>(), Err(NetworkError::MixedMapped(_))));
    }

    #[test]
    fn bad_networks_are_refused_with_a_reason() {
        for bad in [
            "",
            "/",
            "10.0.0.0/",
            "/8",
            "10.0.0.0/x",
            "10.0.0.0/+8",
            "10.0.0.0/08",
            "10.0.0.0/ 8",
            " 10.0.0.0/8",
            "10.0.0/8",
            "010.0.0.0/8",
            "10.0.0.0/8/8",
            "example.org/24",
            "10.0.0.0/1000",
            "fe80::1%eth0/64",
        ] {
            assert!(matches!(bad.parse::<Network>(), Err(NetworkError::Syntax(_))), "{bad:?} is refused as syntax");
        }
        assert!(matches!("10.0.0.0/33".parse::<Network>(), Err(NetworkError::Prefix { max: 32, .. })));
        assert!(matches!("2001:db8::/129".parse::<Network>(), Err(NetworkError::Prefix { max: 128, .. })));
        let err = "10.0.0.1/8".parse::<Network>().expect_err("host bits");
        assert_eq!(err.to_string(), "'10.0.0.1/8' has bits set past its prefix: write 10.0.0.0/8");
        let err = "2001:db8::1/32".parse::<Network>().expect_err("host bits");
        assert_eq!(err.to_string(), "'2001:db8::1/32' has bits set past its prefix: write 2001:db8::/32");
        assert!("::ffff:192.0.2.1/120".parse::<Network>().is_err());
    }
}
