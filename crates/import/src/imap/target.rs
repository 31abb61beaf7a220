//! Where the old server is and how we reach it: the source URL (`imaps://HOST:993`, or
//! `imap://HOST:143` with STARTTLS required), which addresses we may connect to (the one
//! decision [`refused_address`]), and the TLS client (certificates always verified,
//! against the system's roots or a given CA file).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (`imaps://`, port 993).
    Tls,
    /// STARTTLS on a plain connection, required (`imap://`, port 143).
    StartTls,
}

/// The old server, as given in `--from` or the panel's form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceUrl {
    pub host: String,
    pub port: u16,
    pub security: Security,
}

impl SourceUrl {
    /// Parses `imaps://HOST[:PORT]` or `imap://HOST[:PORT]` (a bare host means imaps).
    pub fn parse(text: &str) -> Result<SourceUrl, String> {
        let text = text.trim();
        let (security, rest) = if let Some(rest) = strip_prefix_ignore_case(text, "imaps://") {
            (Security::Tls, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(text, "imap://") {
            (Security::StartTls, rest)
        } else if text.contains("://") {
            return Err("the old server's address must start with imaps:// or imap://".into());
        } else {
            (Security::Tls, text)
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']').ok_or("an IPv6 address needs its closing ]")?;
            (host, after.strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        let port = match port {
            Some(p) => p.parse::<u16>().ok().filter(|&p| p > 0).ok_or("the port must be a number from 1 to 65535")?,
            None if security == Security::Tls => 993,
            None => 143,
        };
        let valid_host = !host.is_empty()
            && host.len() <= 253
            && (host.parse::<IpAddr>().is_ok()
                || host.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                }));
        if !valid_host {
            return Err("the old server's name is not a host name".into());
        }
        Ok(SourceUrl { host: host.to_ascii_lowercase(), port, security })
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    (text.len() >= prefix.len() && text[..prefix.len()].eq_ignore_ascii_case(prefix)).then(|| &text[prefix.len()..])
}

/// Why an address may not be connected to unless the operator allows private targets:
/// it is not on the public internet (loopback, private, link-local, shared, unique
/// local, multicast, unspecified, documentation), so a customer could reach the
/// server's own network through the import.
pub fn refused_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => refused_v4(v4),
            None => refused_v6(v6),
        },
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else if ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
    {
        Some("not a public address")
    } else {
        None
    }
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("a loopback address")
    } else if first & 0xfe00 == 0xfc00 {
        Some("a private address")
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if ip.is_unspecified() || ip.is_multicast() || first == 0x2001 && ip.segments()[1] == 0x0db8 {
        Some("not a public address")
    } else {
        None
    }
}

/// Why the old server's name gives no address we may connect to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("looking up {host} took too long")]
    SlowLookup { host: String },
    #[error("{host} could not be found in DNS")]
    Unknown { host: String },
    /// The name points (also) to an address that is not on the public internet.
    #[error("{host} points to {address} ({why}); the import only connects to servers on the internet")]
    NotPublic { host: String, address: IpAddr, why: &'static str },
}

/// The addresses of `url` we may connect to (every one public unless `allow_private`).
/// The panel asks before it starts a job; the job asks again right before connecting.
pub async fn resolve(url: &SourceUrl, allow_private: bool, timeout: Duration) -> Result<Vec<SocketAddr>, TargetError> {
    let host = || url.host.clone();
    let lookup = tokio::time::timeout(timeout, tokio::net::lookup_host((url.host.as_str(), url.port)))
        .await
        .map_err(|_| TargetError::SlowLookup { host: host() })?
        .map_err(|_| TargetError::Unknown { host: host() })?;
    let addresses: Vec<SocketAddr> = lookup.collect();
    if addresses.is_empty() {
        return Err(TargetError::Unknown { host: host() });
    }
    if allow_private {
        return Ok(addresses);
    }
    // Every address must be public: a name that also points inward is refused whole.
    if let Some((address, why)) = addresses.iter().find_map(|a| refused_address(a.ip()).map(|why| (a, why))) {
        return Err(TargetError::NotPublic { host: host(), address: address.ip(), why });
    }
    Ok(addresses)
}

/// Connects to the first of `addresses` that answers within `timeout`.
pub(crate) async fn connect(addresses: &[SocketAddr], timeout: Duration) -> Result<TcpStream, String> {
    let mut last = String::from("no address");
    for address in addresses {
        match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "no answer in time".into(),
        }
    }
    Err(format!("cannot connect to the old server: {last}"))
}

/// The TLS client: certificates are verified against `ca_file`'s certificates when given
/// (a private CA), else against the system's roots.
pub(crate) fn tls_connector(ca_file: Option<&Path>) -> Result<TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certificates = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{} is not a PEM certificate file: {e}", path.display()))?;
            let (added, _) = roots.add_parsable_certificates(certificates);
            if added == 0 {
                return Err(format!("{} holds no usable certificate", path.display()));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err("the system has no CA certificates (install ca-certificates, or give --ca-file)".into());
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The name the server's certificate must carry.
pub(crate) fn server_name(url: &SourceUrl) -> Result<ServerName<'static>, String> {
    ServerName::try_from(url.host.clone()).map_err(|_| format!("{} cannot be checked against a certificate", url.host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let url = SourceUrl::parse("imaps://Mail.Old.example:10993").expect("url");
        assert_eq!(url, SourceUrl { host: "mail.old.example".into(), port: 10993, security: Security::Tls });
        assert_eq!(SourceUrl::parse("imap://old.example").expect("url").port, 143);
        assert_eq!(SourceUrl::parse("old.example").expect("url").port, 993);
        assert_eq!(SourceUrl::parse("imaps://[::1]:993").expect("url").host, "::1");
        assert!(SourceUrl::parse("https://old.example").is_err());
        assert!(SourceUrl::parse("imaps://old.example:0").is_err());
        assert!(SourceUrl::parse("imaps://old example").is_err());
        assert!(SourceUrl::parse("imaps://user@old.example").is_err());
    }

    #[test]
    fn private_addresses_are_refused() {
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(refused_address(refused.parse().expect("ip")).is_some(), "{refused}");
        }
        for public in ["192.0.2.1", "2001:db8::1"] {
            assert!(refused_address(public.parse().expect("ip")).is_some(), "documentation {public}");
        }
        for public in ["1.1.1.1", "2a00:1450::1", "::ffff:8.8.8.8"] {
            assert_eq!(refused_address(public.parse().expect("ip")), None, "{public}");
        }
    }
}
