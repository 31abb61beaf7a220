//! Inbound MTA-STS (RFC 8461) for customer domains: the policy file the server serves at
//! `https://mta-sts.DOMAIN/.well-known/mta-sts.txt` ([`policy`]), the `_mta-sts` TXT
//! record whose id follows the policy text ([`txt_value`]); and reading a published
//! record ([`txt_id`]) and a fetched policy ([`Policy::parse`], [`Policy::matches`]), the
//! one strict reading used by the domain check and by outbound delivery.
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

/// The label of the host a domain's policy is served at, and (with `_`) of its TXT record.
pub const POLICY_LABEL: &str = "mta-sts";

/// The name the policy is served at: `mta-sts.DOMAIN`.
pub fn policy_host(domain: &impl std::fmt::Display) -> String {
    format!("{POLICY_LABEL}.{domain}")
}

/// The name of the policy's TXT record: `_mta-sts.DOMAIN` (RFC 8461 §3.1).
pub fn record_name(domain: &impl std::fmt::Display) -> String {
    format!("_{POLICY_LABEL}.{domain}")
}

/// The domain a policy host name (a Host header or SNI name) belongs to: `mta-sts.D` → D.
pub fn domain_of_policy_host(host: &str) -> Option<DomainName> {
    let host = host.trim_end_matches('.');
    let (label, rest) = host.split_once('.')?;
    DomainName::parse(rest).ok().filter(|_| label.eq_ignore_ascii_case(POLICY_LABEL))
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

/// Whether a published TXT text is an MTA-STS record at all (starts with `v=STSv1`).
pub fn is_sts_record(record: &str) -> bool {
    record.trim_start().get(..7).is_some_and(|v| v.eq_ignore_ascii_case("v=STSv1"))
}

/// What a domain's TXT texts at `_mta-sts` say (RFC 8461 §3.1): texts that do not start
/// with `v=STSv1` are not MTA-STS records; unless exactly one is left, the domain has no
/// policy. The one reading for the domain check and for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published<'a> {
    Missing,
    Several,
    /// The record and its id (`None`: the record cannot be read).
    One {
        record: &'a str,
        id: Option<String>,
    },
}

impl Published<'_> {
    pub fn read(texts: &[String]) -> Published<'_> {
        let mut records = texts.iter().filter(|t| is_sts_record(t));
        match (records.next(), records.next()) {
            (None, _) => Published::Missing,
            (Some(record), None) => Published::One { record, id: txt_id(record) },
            (Some(_), Some(_)) => Published::Several,
        }
    }
}

/// The longest max_age honoured (RFC 8461 §3.2: 31557600 seconds, about a year).
pub const MAX_AGE_LIMIT: u64 = 31_557_600;

/// What a policy says to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Testing,
    /// The domain withdrew its policy.
    None,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        [Mode::Enforce, Mode::Testing, Mode::None].into_iter().find(|m| m.as_str() == s)
    }
}

/// A domain's MTA-STS policy (RFC 8461 §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    /// The `mx:` patterns, lower-case: `mx.example.com` or `*.example.com`.
    pub mx: Vec<String>,
    /// Seconds the policy may be cached.
    pub max_age: u64,
}

impl Policy {
    /// Reads a policy file. Strict: `version: STSv1` first, exactly one `mode` and
    /// `max_age`, at least one `mx` unless the mode is `none`; unknown keys are ignored
    /// (§3.2), anything else malformed refuses the whole policy.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let mut version = None;
        let mut mode = None;
        let mut max_age = None;
        let mut mx = Vec::new();
        for (n, line) in text.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let (key, value) = line.split_once(':').ok_or_else(|| format!("line {} is not `key: value`", n + 1))?;
            let value = value.trim_matches([' ', '\t']);
            if version.is_none() && key != "version" {
                return Err("the policy does not start with `version: STSv1`".into());
            }
            match key {
                "version" => {
                    once(&version, key)?;
                    if value != "STSv1" {
                        return Err(format!("unknown policy version {value:?}"));
                    }
                    version = Some(());
                }
                "mode" => {
                    once(&mode, key)?;
                    mode = Some(Mode::parse(value).ok_or_else(|| format!("unknown mode {value:?}"))?);
                }
                "max_age" => {
                    once(&max_age, key)?;
                    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(format!("max_age {value:?} is not a number of seconds"));
                    }
                    let seconds: u64 = value.parse().map_err(|_| format!("max_age {value:?} is not a number"))?;
                    max_age = Some(seconds.min(MAX_AGE_LIMIT));
                }
                "mx" => {
                    let pattern = value.to_ascii_lowercase();
                    if !valid_pattern(&pattern) {
                        return Err(format!("mx {value:?} is not a host name or *.domain pattern"));
                    }
                    if mx.len() >= 100 {
                        return Err("the policy names more than 100 mx patterns".into());
                    }
                    mx.push(pattern);
                }
                _ => {}
            }
        }
        version.ok_or("the policy has no version")?;
        let mode = mode.ok_or("the policy has no mode")?;
        let max_age = max_age.ok_or("the policy has no max_age")?;
        if mx.is_empty() && mode != Mode::None {
            return Err("the policy names no mx".into());
        }
        Ok(Policy { mode, mx, max_age })
    }

    /// Whether the MX host `host` is named by an `mx:` pattern (§4.1: a wildcard stands for
    /// exactly one left-most label).
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx.iter().any(|pattern| match pattern.strip_prefix("*.") {
            Some(parent) => host.split_once('.').is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
            None => *pattern == host,
        })
    }
}

/// Refuses a key given twice.
fn once<T>(slot: &Option<T>, key: &str) -> Result<(), String> {
    if slot.is_some() { Err(format!("`{key}` is given twice")) } else { Ok(()) }
}

/// A host name (letters, digits, `-`, dots between labels), optionally behind `*.`.
fn valid_pattern(pattern: &str) -> bool {
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The `_mta-sts` TXT record's id (§3.1): `v=STSv1; id=...;`, the id 1-32 letters or
/// digits. `None` when the record is not an MTA-STS record or is malformed.
pub fn txt_id(record: &str) -> Option<String> {
    let mut fields = record.split(';').map(|f| f.trim_matches([' ', '\t'])).filter(|f| !f.is_empty());
    if fields.next()? != "v=STSv1" {
        return None;
    }
    let mut id = None;
    for field in fields {
        let (key, value) = field.split_once('=')?;
        if key == "id" {
            if id.is_some() || value.is_empty() || value.len() > 32 || !value.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return None;
            }
            id = Some(value.to_string());
        }
    }
    id
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
        assert_eq!(txt_id(&value), Some(policy_id(&enforce)));
        let parsed = Policy::parse(&enforce).expect("parses");
        assert_eq!(parsed.mode, Mode::Enforce);
        assert!(parsed.matches("MAIL.platform.test."));
        assert!(!parsed.matches("mx.elsewhere.test"));
    }

    #[test]
    fn names_and_patterns() {
        assert_eq!(domain_of_policy_host("MTA-STS.example.test."), Some(dom("example.test")));
        assert_eq!(domain_of_policy_host("mail.example.test"), None);
        assert_eq!(domain_of_policy_host("mta-sts."), None);
    }

    #[test]
    fn a_policy_is_read_strictly() {
        let p = Policy::parse(
            "version: STSv1\r\nmode: enforce\r\nmx: MX.example.net\r\nmx: *.backup.example\r\nmax_age: 604800\r\n",
        )
        .expect("policy");
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.mx, ["mx.example.net", "*.backup.example"]);
        assert_eq!(p.max_age, 604_800);
        let p = Policy::parse("version: STSv1\nmode: none\nmax_age: 999999999\nextension: x\n").expect("none");
        assert_eq!((p.mode, p.max_age), (Mode::None, MAX_AGE_LIMIT));
        for bad in [
            "",
            "mode: enforce\nversion: STSv1\nmx: a.example\nmax_age: 1\n",
            "\nmode: enforce\nversion: STSv1\nmx: a.example\nmax_age: 1\n",
            "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",
            "version: STSv1\nmode: enforcing\nmx: a.example\nmax_age: 1\n",
            "version: STSv1\nmode: enforce\nmax_age: 1\n",
            "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n",
            "version: STSv1\nmode: enforce\nmode: testing\nmx: a.example\nmax_age: 1\n",
            "version: STSv1\nmode: enforce\nmx: a example\nmax_age: 1\n",
            "version: STSv1\nmode: enforce\nmx: a.example\n",
            "<html>version: STSv1</html>",
        ] {
            assert!(Policy::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn mx_patterns_match_one_label() {
        let p =
            Policy { mode: Mode::Enforce, mx: vec!["mx.example.net".into(), "*.backup.example".into()], max_age: 1 };
        assert!(p.matches("mx.example.net"));
        assert!(p.matches("MX.Example.net."));
        assert!(p.matches("a.backup.example"));
        assert!(!p.matches("backup.example"));
        assert!(!p.matches("a.b.backup.example"));
        assert!(!p.matches("xmx.example.net"));
        assert!(!p.matches("evil.test"));
    }

    #[test]
    fn published_records_are_read_once_for_check_and_delivery() {
        let texts = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let one = texts(&["v=spf1 -all", "v=STSv1; id=abc;"]);
        assert_eq!(Published::read(&one), Published::One { record: "v=STSv1; id=abc;", id: Some("abc".into()) });
        // A second record, even an unreadable one, means none counts (RFC 8461 §3.1).
        assert_eq!(Published::read(&texts(&["v=STSv1; id=abc;", "v=STSv1; id=a-b"])), Published::Several);
        assert_eq!(
            Published::read(&texts(&["v=STSv1; id=a-b"])),
            Published::One { record: "v=STSv1; id=a-b", id: None }
        );
        assert_eq!(Published::read(&texts(&["v=spf1 -all"])), Published::Missing);
    }

    #[test]
    fn txt_ids() {
        assert_eq!(txt_id("v=STSv1; id=20160831085700Z;").as_deref(), Some("20160831085700Z"));
        assert_eq!(txt_id("v=STSv1;id=abc").as_deref(), Some("abc"));
        assert_eq!(txt_id("v=spf1 -all"), None);
        assert_eq!(txt_id("v=STSv1; id=a-b;"), None);
        assert_eq!(txt_id("v=STSv1;"), None);
    }
}
