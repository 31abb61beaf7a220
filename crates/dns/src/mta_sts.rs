//! Inbound MTA-STS (RFC 8461) for customer domains: the policy file the server serves at
//! `https://mta-sts.DOMAIN/.well-known/mta-sts.txt` ([`policy`]), the `_mta-sts` TXT
//! record whose id follows the policy text ([`txt_value`]), and reading a fetched policy
//! back for the domain check ([`Policy::parse`]).
//!
//! The id is derived from the policy text (a hash), so it needs no stored counter, is the
//! same on every node, and changes exactly when the policy does (mode, MX hosts, max_age).

use postfach_store::domains::MtaStsMode;
use postfach_types::DomainName;

use crate::records;

/// Where senders fetch the policy (RFC 8461 §3.2).
pub const POLICY_PATH: &str = "/.well-known/mta-sts.txt";
/// The largest policy file read back by the check (RFC 8461 §3.3 suggests 64 KiB).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

/// How long senders may cache the policy, in seconds: a week when enforced, a day while
/// testing (so that a mistake found in testing is corrected quickly).
pub fn max_age(mode: MtaStsMode) -> u32 {
    match mode {
        MtaStsMode::Enforce => 604_800,
        MtaStsMode::Testing | MtaStsMode::Off => 86_400,
    }
}

/// The name the policy is served at: `mta-sts.DOMAIN`.
pub fn policy_host(domain: &DomainName) -> String {
    format!("mta-sts.{domain}")
}

/// The domain a policy host name (a Host header or SNI name) belongs to: `mta-sts.D` → D.
pub fn domain_of_policy_host(host: &str) -> Option<DomainName> {
    let host = host.trim_end_matches('.');
    let rest = host.get(..8).filter(|p| p.eq_ignore_ascii_case("mta-sts."))?;
    DomainName::parse(&host[rest.len()..]).ok()
}

/// The policy file for a domain in `mode` (RFC 8461 §3.2): one `mx:` line per MX host
/// the platform publishes ([`records::mx_hosts`]). `None` when MTA-STS is off.
pub fn policy(hostname: &DomainName, mode: MtaStsMode) -> Option<String> {
    if mode == MtaStsMode::Off {
        return None;
    }
    let mut text = format!("version: STSv1\r\nmode: {mode}\r\n");
    for host in records::mx_hosts(hostname) {
        text.push_str(&format!("mx: {host}\r\n"));
    }
    text.push_str(&format!("max_age: {}\r\n", max_age(mode)));
    Some(text)
}

/// The id of a policy text: 20 hex digits of its SHA-256 (RFC 8461 §3.1 allows 1 to 32
/// letters and digits).
pub fn policy_id(policy: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, policy.as_bytes());
    digest.as_ref()[..10].iter().map(|b| format!("{b:02x}")).collect()
}

/// The `_mta-sts.DOMAIN` TXT record announcing `policy` (RFC 8461 §3.1).
pub fn txt_value(policy: &str) -> String {
    format!("v=STSv1; id={}", policy_id(policy))
}

/// The `id` of a published `_mta-sts` TXT record, if it is one (`v=STSv1` first).
pub fn published_id(record: &str) -> Option<String> {
    let mut fields = record.split(';').map(str::trim).filter(|f| !f.is_empty());
    if !fields.next()?.eq_ignore_ascii_case("v=STSv1") {
        return None;
    }
    fields.find_map(|f| f.strip_prefix("id=").map(|id| id.trim().to_string()))
}

/// Whether a published TXT text is an MTA-STS record at all (starts with `v=STSv1`).
pub fn is_sts_record(record: &str) -> bool {
    record.trim_start().get(..7).is_some_and(|v| v.eq_ignore_ascii_case("v=STSv1"))
}

/// A policy file as fetched (RFC 8461 §3.2): what the check compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: String,
    pub mx: Vec<String>,
    pub max_age: Option<u64>,
}

impl Policy {
    /// Reads a policy file; `None` unless it says `version: STSv1`. Unknown keys are
    /// ignored (§3.2).
    pub fn parse(text: &str) -> Option<Policy> {
        let mut version = None;
        let mut policy = Policy { mode: String::new(), mx: Vec::new(), max_age: None };
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else { continue };
            let value = value.trim();
            match key.trim() {
                "version" => version = Some(value.to_string()),
                "mode" => policy.mode = value.to_string(),
                "mx" => policy.mx.push(value.to_string()),
                "max_age" => policy.max_age = value.parse().ok(),
                _ => {}
            }
        }
        (version.as_deref() == Some("STSv1")).then_some(policy)
    }

    /// Whether an MX host is covered by one of the policy's `mx:` patterns.
    pub fn covers(&self, mx_host: &str) -> bool {
        self.mx.iter().any(|pattern| mx_matches(pattern, mx_host))
    }
}

/// RFC 8461 §4.1: a pattern is a host name, or `*.` and a name, which matches exactly one
/// further label on the left.
pub fn mx_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(parent) => host.split_once('.').is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dom(s: &str) -> DomainName {
        DomainName::parse(s).expect("domain")
    }

    #[test]
    fn the_policy_lists_the_mx_host_and_its_id_follows_the_mode() {
        let host = dom("mail.platform.test");
        assert_eq!(policy(&host, MtaStsMode::Off), None);
        let testing = policy(&host, MtaStsMode::Testing).expect("policy");
        assert_eq!(testing, "version: STSv1\r\nmode: testing\r\nmx: mail.platform.test\r\nmax_age: 86400\r\n");
        let enforce = policy(&host, MtaStsMode::Enforce).expect("policy");
        assert_ne!(policy_id(&testing), policy_id(&enforce));
        assert_eq!(policy_id(&enforce), policy_id(&enforce.clone()));
        let value = txt_value(&enforce);
        assert_eq!(published_id(&value), Some(policy_id(&enforce)));
        let parsed = Policy::parse(&enforce).expect("parses");
        assert_eq!(parsed.mode, "enforce");
        assert!(parsed.covers("MAIL.platform.test."));
        assert!(!parsed.covers("mx.elsewhere.test"));
    }

    #[test]
    fn names_and_patterns() {
        assert_eq!(domain_of_policy_host("MTA-STS.example.test."), Some(dom("example.test")));
        assert_eq!(domain_of_policy_host("mail.example.test"), None);
        assert_eq!(domain_of_policy_host("mta-sts."), None);
        assert!(mx_matches("*.example.test", "mx1.example.test"));
        assert!(!mx_matches("*.example.test", "a.b.example.test"));
        assert!(!mx_matches("*.example.test", "example.test"));
        assert_eq!(published_id("v=STSv1; id=abc123;"), Some("abc123".to_string()));
        assert_eq!(published_id("v=spf1 -all"), None);
    }
}
