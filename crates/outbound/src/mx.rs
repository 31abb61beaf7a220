//! Where mail for a domain goes: MX lookup (RFC 5321 §5.1), the implicit MX (the domain's
//! own A/AAAA records when it has no MX), and the null MX (RFC 7505), which says the domain
//! accepts no mail at all.
//!
//! The resolver asks the configured `[dns] resolver` (tests point it at their own DNS
//! server) or the system's resolvers, and keeps no cache, like the DNS checks.

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::config::LookupIpStrategy;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};

/// A host to try, with its addresses, in the order to try them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The MX host name (or the domain itself for an implicit MX), without the final dot.
    pub name: String,
    pub addresses: Vec<IpAddr>,
}

/// Why there is nowhere to deliver to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// Delivery can never work: report the failure (RFC 3463 status, text for people).
    Permanent { status: &'static str, text: String },
    /// Try again later (DNS trouble).
    Temporary { status: &'static str, text: String },
}

/// Builds the (caching) resolver for `address`, or the system's when `None`.
pub fn resolver(address: Option<SocketAddr>) -> Result<TokioResolver, String> {
    let (config, mut opts) = postfach_dns::resolver::caching_config(address).map_err(|e| e.to_string())?;
    opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(opts)
        .build()
        .map_err(|e| e.to_string())
}

/// The MX host names in the order to try them, from `(preference, exchange)` records.
/// RFC 7505 §3: a single MX with the root name `.` as exchange is a null MX.
pub fn order_mx(domain: &str, mut records: Vec<(u16, String)>) -> Result<Vec<String>, RouteError> {
    let is_root = |name: &str| name.trim_end_matches('.').is_empty();
    if !records.is_empty() && records.iter().all(|(_, name)| is_root(name)) {
        return Err(RouteError::Permanent {
            status: "5.1.10",
            text: format!("the domain {domain} does not accept mail (it publishes a null MX record)"),
        });
    }
    records.retain(|(_, name)| !is_root(name));
    // RFC 5321 §5.1: lowest preference first; equal preferences in random order.
    records.sort_by_key(|(preference, _)| (*preference, rand::random::<u16>()));
    let mut names: Vec<String> = Vec::new();
    for (_, name) in records {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// The hosts that take mail for `domain`, each with its addresses.
pub async fn route(resolver: &TokioResolver, domain: &str) -> Result<Vec<Host>, RouteError> {
    let fqdn = format!("{}.", domain.trim_end_matches('.'));
    let names = match resolver.lookup(fqdn.as_str(), RecordType::MX).await {
        Ok(lookup) => {
            let records = lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
                    _ => None,
                })
                .collect::<Vec<_>>();
            if records.is_empty() { vec![domain.to_string()] } else { order_mx(domain, records)? }
        }
        Err(e) if e.is_nx_domain() => {
            return Err(RouteError::Permanent { status: "5.1.2", text: format!("the domain {domain} does not exist") });
        }
        // RFC 5321 §5.1: no MX records, so the domain itself is the host (implicit MX).
        Err(e) if e.is_no_records_found() => vec![domain.to_string()],
        Err(e) => {
            return Err(RouteError::Temporary {
                status: "4.4.3",
                text: format!("looking up the mail servers of {domain} failed: {e}"),
            });
        }
    };
    let mut hosts = Vec::new();
    let mut last_error = None;
    for name in names {
        match resolver.lookup_ip(format!("{name}.").as_str()).await {
            Ok(ips) => {
                let addresses: Vec<IpAddr> = ips.iter().collect();
                if !addresses.is_empty() {
                    hosts.push(Host { name, addresses });
                }
            }
            Err(e) => last_error = Some(format!("{name}: {e}")),
        }
    }
    if hosts.is_empty() {
        return Err(RouteError::Temporary {
            status: "4.4.4",
            text: match last_error {
                Some(e) => format!("no address found for the mail servers of {domain} ({e})"),
                None => format!("no address found for the mail servers of {domain}"),
            },
        });
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_mx_is_a_permanent_failure() {
        let error = order_mx("nomail.example", vec![(0, ".".into())]).expect_err("null MX");
        assert!(matches!(error, RouteError::Permanent { status: "5.1.10", .. }), "{error:?}");
        // A stray "." beside real MX records is ignored.
        assert_eq!(
            order_mx("x.example", vec![(0, ".".into()), (10, "mx.x.example.".into())]).expect("hosts"),
            ["mx.x.example"]
        );
    }

    #[test]
    fn mx_hosts_are_tried_by_preference() {
        let hosts = order_mx(
            "x.example",
            vec![(20, "b.x.example.".into()), (10, "A.x.example.".into()), (30, "c.x.example".into())],
        )
        .expect("hosts");
        assert_eq!(hosts, ["a.x.example", "b.x.example", "c.x.example"]);
        assert_eq!(
            order_mx("x.example", vec![(10, "a.example".into()), (20, "a.example".into())]).expect("h").len(),
            1
        );
    }
}
