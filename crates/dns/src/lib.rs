//! DNS for Postfach: the resolver, the records each domain publishes, and the checks of
//! what is actually published.
//!
//! - [`resolver`] builds the hickory resolver (and mail-auth's `MessageAuthenticator` on
//!   top of it) for the configured `[dns] resolver` address, or the system's resolvers.
//! - [`records`] lists what a customer publishes for a domain ([`records::for_domain`]) and
//!   what the operator publishes for the platform ([`records::platform`]).
//! - [`spf`] lints SPF records, counts their DNS lookups and merges an existing record
//!   with the platform's include.
//! - [`checks`] runs the published-record checks ([`checks::run`]), the ownership check,
//!   and [`checks::refresh`], which also caches the report and activates a confirmed DKIM key.
//! - [`mta_sts`] builds the inbound MTA-STS policy file and its `_mta-sts` record id.
//! - [`dkim`] generates RSA-2048 DKIM keys and manages their rotation.
//!
//! Nothing here binds a socket or reads the configuration file: the server builds a
//! [`Platform`] and a [`checks::Checker`] from its config and hands them in.

pub mod checks;
pub mod dkim;
pub mod fetch;
pub mod mta_sts;
pub mod records;
pub mod resolver;
pub mod spf;
pub mod tlsa;

use std::net::IpAddr;

use postfach_store::dns_checks::Text;
use postfach_types::{DomainName, EmailAddress};

/// What this crate's operations can fail with.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("cannot set up the DNS resolver: {0}")]
    Resolver(String),
    #[error("cannot generate a DKIM key: {0}")]
    KeyGeneration(String),
    #[error(transparent)]
    Store(#[from] postfach_store::StoreError),
}

/// What the platform is, as far as DNS is concerned: taken from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// The server's name (`hostname`): MX target, SRV target, autoconfig target.
    pub hostname: DomainName,
    /// The name the operator publishes the platform's SPF record at (`[outbound] spf_name`);
    /// customers' SPF records include it. Not a [`DomainName`]: it usually starts with an
    /// underscore label (`_spf.mail.example.net`).
    pub spf_name: String,
    /// The addresses outbound mail leaves from (`[outbound] ips`).
    pub outbound_ips: Vec<IpAddr>,
    /// The client ports offered, for the SRV records (RFC 6186, RFC 8314). `None`: the
    /// service is switched off, and its SRV record says so with the target ".".
    pub ports: ServicePorts,
    /// The platform's TLS reporting address (`[tls_reports]`, RFC 8460), named by each
    /// domain's `_smtp._tls` record; `None`: no record.
    pub tls_reports: Option<EmailAddress>,
}

impl Platform {
    /// Why no records can be built on the configured `hostname`: see [`hostname_problem`].
    pub fn hostname_problem(&self) -> Option<Text> {
        hostname_problem(&self.hostname)
    }
}

/// Why `hostname` cannot be the name other servers and clients reach this server by:
/// `localhost` (or a name under it) or a name of one label is no fully qualified name,
/// and records built on it (`MX 10 localhost.`, `_spf.localhost`) would be wrong. The
/// answer says what to set instead, in German and English. `None`: the name is usable.
pub fn hostname_problem(hostname: &DomainName) -> Option<Text> {
    let name = hostname.as_str();
    let local = name == "localhost" || name.ends_with(".localhost");
    if !local && name.contains('.') {
        return None;
    }
    let (why_de, why_en) = if local {
        ("zeigt nur auf diesen Rechner selbst", "names only this machine itself")
    } else {
        ("ist kein vollständiger Name", "is not a fully qualified name")
    };
    Some(Text {
        de: format!(
            "Der Servername (hostname = \"{name}\" in der Konfigurationsdatei) {why_de}: Andere Mailserver und E-Mail-Programme erreichen den Server so nicht, und DNS-Einträge lassen sich darauf nicht aufbauen. Setzen Sie hostname auf den vollständigen Namen dieses Servers, zum Beispiel \"mail.example.net\", mit A/AAAA-Einträgen, die hierher zeigen, und starten Sie Postfach neu."
        ),
        en: format!(
            "The server name (hostname = \"{name}\" in the configuration file) {why_en}: other mail servers and mail programs cannot reach the server by it, and no DNS records can be built on it. Set hostname to this server's fully qualified name, such as \"mail.example.net\", with A/AAAA records pointing here, and restart Postfach."
        ),
    })
}

/// The ports of the client services, `None` where a service is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServicePorts {
    /// Submission over implicit TLS (RFC 8314), usually 465.
    pub submissions: Option<u16>,
    /// Submission with STARTTLS (RFC 6409), usually 587.
    pub submission: Option<u16>,
    /// IMAP over implicit TLS, usually 993.
    pub imaps: Option<u16>,
    /// IMAP with STARTTLS, usually 143.
    pub imap: Option<u16>,
    /// POP3 over implicit TLS, usually 995.
    pub pop3s: Option<u16>,
    /// POP3 with STLS, usually 110.
    pub pop3: Option<u16>,
}

impl ServicePorts {
    /// Every service at its standard port.
    pub fn standard() -> ServicePorts {
        ServicePorts {
            submissions: Some(465),
            submission: Some(587),
            imaps: Some(993),
            imap: Some(143),
            pop3s: Some(995),
            pop3: Some(110),
        }
    }
}

/// Splits a TXT record's text into character-strings of at most 255 bytes
/// (RFC 1035 §3.3.14, RFC 6376 §3.6.2.2), never inside a UTF-8 character.
pub fn split_txt(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut cut = rest.len().min(255);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        parts.push(rest[..cut].to_string());
        rest = &rest[cut..];
    }
    if parts.is_empty() {
        parts.push(String::new());
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fully_qualified_hostnames_are_usable() {
        let problem = |s: &str| hostname_problem(&DomainName::parse(s).expect("name"));
        for usable in ["mail.example.net", "mail.postfach.test", "mx1.xn--mller-kva.de"] {
            assert_eq!(problem(usable), None, "{usable}");
        }
        for unusable in ["localhost", "LOCALHOST", "mail.localhost", "mail"] {
            let text = problem(unusable).unwrap_or_else(|| panic!("{unusable} is not usable"));
            assert!(text.en.contains("Set hostname to") && text.en.contains("mail.example.net"), "{}", text.en);
            assert!(text.de.contains("Setzen Sie hostname"), "{}", text.de);
        }
    }
}
