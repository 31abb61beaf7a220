//! SPF records (RFC 7208): recognising them, linting them, counting the DNS lookups they
//! cause, and merging an existing record with the platform's include.
//!
//! Evaluation against an IP address is left to mail-auth (see [`crate::checks`]); this
//! module looks at the text: the things that make a record risky or unusable although it
//! may still evaluate to "pass" for our servers.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::RData;
use mail_auth::common::parse::TxtRecordParser;

/// RFC 7208 §4.6.4: at most 10 terms that cause DNS lookups.
pub const MAX_LOOKUPS: usize = 10;

/// Whether a TXT record is an SPF record: it starts with `v=spf1` followed by a space or
/// nothing (RFC 7208 §4.5), in any case.
pub fn is_spf(txt: &str) -> bool {
    let t = txt.trim_start();
    t.len() >= 6 && t[..6].eq_ignore_ascii_case("v=spf1") && t[6..].chars().next().is_none_or(|c| c == ' ')
}

/// The terms after `v=spf1`.
pub fn terms(record: &str) -> impl Iterator<Item = &str> {
    record.split(' ').filter(|t| !t.is_empty()).skip(1)
}

/// The qualifier of the record's `all` mechanism: `'+'`, `'-'`, `'~'` or `'?'`; `None`
/// without `all`.
pub fn all_qualifier(record: &str) -> Option<char> {
    terms(record).find_map(|t| {
        let (q, rest) = split_qualifier(t);
        rest.eq_ignore_ascii_case("all").then_some(q)
    })
}

fn split_qualifier(term: &str) -> (char, &str) {
    match term.chars().next() {
        Some(q @ ('+' | '-' | '~' | '?')) => (q, &term[1..]),
        _ => ('+', term),
    }
}

/// The mechanism name and its argument (after `:` or `/`), lower-cased name.
fn mechanism(term: &str) -> (String, Option<&str>) {
    let (_, rest) = split_qualifier(term);
    match rest.find([':', '/']) {
        Some(i) => (rest[..i].to_ascii_lowercase(), Some(&rest[i..])),
        None => (rest.to_ascii_lowercase(), None),
    }
}

/// A modifier `name=value` (RFC 7208 §4.6.1), with its lower-cased name.
fn modifier(term: &str) -> Option<(String, &str)> {
    let (name, value) = term.split_once('=')?;
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    valid.then(|| (name.to_ascii_lowercase(), value))
}

/// The first term of `record` that is not valid SPF, with a reason; `None` if the record
/// is well-formed. The grammar is RFC 7208 §4.6.1 and §5; mail-auth's parser has the
/// last word.
pub fn syntax_error(record: &str) -> Option<String> {
    for term in terms(record) {
        if let Some((name, value)) = modifier(term) {
            if (name == "redirect" || name == "exp") && value.is_empty() {
                return Some(format!("'{term}' names no domain"));
            }
            continue;
        }
        let (name, arg) = mechanism(term);
        let ok = match name.as_str() {
            "all" => arg.is_none(),
            "include" | "exists" => arg.is_some_and(|a| a.len() > 1 && a.starts_with(':')),
            "a" | "mx" => arg.is_none_or(valid_domain_spec_and_cidr),
            "ptr" => arg.is_none_or(|a| a.starts_with(':') && a.len() > 1),
            "ip4" => arg
                .and_then(|a| a.strip_prefix(':'))
                .is_some_and(|a| valid_ip(a, 32, |s| s.parse::<Ipv4Addr>().is_ok())),
            "ip6" => arg
                .and_then(|a| a.strip_prefix(':'))
                .is_some_and(|a| valid_ip(a, 128, |s| s.parse::<Ipv6Addr>().is_ok())),
            _ => false,
        };
        if !ok {
            return Some(format!("'{term}' is not a valid SPF term"));
        }
    }
    if mail_auth::spf::Spf::parse(record.as_bytes()).is_err() {
        return Some("the record cannot be parsed".to_string());
    }
    None
}

fn valid_domain_spec_and_cidr(arg: &str) -> bool {
    let (domain, cidr) = match arg.split_once('/') {
        Some((d, c)) => (d, Some(c)),
        None => (arg, None),
    };
    let domain_ok = domain.is_empty() || (domain.starts_with(':') && domain.len() > 1);
    let cidr_ok = cidr.is_none_or(|c| c.split('/').all(|n| n.is_empty() || n.parse::<u8>().is_ok_and(|n| n <= 128)));
    domain_ok && cidr_ok
}

fn valid_ip(arg: &str, max: u8, parse: impl Fn(&str) -> bool) -> bool {
    match arg.split_once('/') {
        Some((ip, len)) => parse(ip) && len.parse::<u8>().is_ok_and(|n| n <= max),
        None => parse(arg),
    }
}

/// The DNS lookups a record needs, counted through its includes and redirect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LookupCount {
    /// Terms that cause lookups (include, a, mx, ptr, exists, redirect), recursively.
    pub lookups: usize,
    /// Included or redirected-to names without an SPF record (each a permanent error
    /// for receivers, RFC 7208 §5.2).
    pub missing: Vec<String>,
}

/// Counts the lookup terms of `record` (published at `domain`) and, recursively, of the
/// records it includes or redirects to (RFC 7208 §4.6.4). Stops counting past 20.
pub async fn count_lookups(resolver: &TokioResolver, record: &str) -> LookupCount {
    let mut count = LookupCount::default();
    let mut seen = HashSet::new();
    let mut pending = vec![record.to_string()];
    while let Some(record) = pending.pop() {
        let has_all = all_qualifier(&record).is_some();
        for term in terms(&record) {
            let target = if let Some((name, value)) = modifier(term) {
                // RFC 7208 §6.1: redirect is ignored when the record has an all mechanism.
                if name != "redirect" || has_all {
                    continue;
                }
                Some(value.to_string())
            } else {
                let (name, arg) = mechanism(term);
                match name.as_str() {
                    "include" => arg.and_then(|a| a.strip_prefix(':')).map(str::to_string),
                    "a" | "mx" | "ptr" | "exists" => None,
                    _ => continue,
                }
            };
            count.lookups += 1;
            if count.lookups > 20 {
                return count;
            }
            let Some(target) = target else { continue };
            // A target with macros can only be expanded for a real message.
            let target = target.trim_end_matches('.').to_ascii_lowercase();
            if target.contains('%') || !seen.insert(target.clone()) {
                continue;
            }
            match spf_records(resolver, &target).await {
                Ok(records) if records.len() == 1 => pending.extend(records),
                Ok(_) => count.missing.push(target),
                Err(_) => {}
            }
        }
    }
    count
}

/// The SPF records published at `domain` (all TXT records that are SPF). An empty list
/// when the name has none or does not exist; `Err` when DNS did not answer.
pub async fn spf_records(resolver: &TokioResolver, domain: &str) -> Result<Vec<String>, String> {
    Ok(txt_records(resolver, domain).await?.into_iter().filter(|t| is_spf(t)).collect())
}

/// The TXT records at `name`, each with its strings joined (RFC 7208 §3.3). An empty
/// list when there are none or the name does not exist; `Err` when DNS did not answer.
pub async fn txt_records(resolver: &TokioResolver, name: &str) -> Result<Vec<String>, String> {
    let fqdn = format!("{}.", name.trim_end_matches('.'));
    match resolver.txt_lookup(fqdn.as_str()).await {
        Ok(lookup) => Ok(lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => {
                    Some(txt.txt_data.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect::<String>())
                }
                _ => None,
            })
            .collect()),
        Err(e) if e.is_no_records_found() => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    }
}

/// One SPF record that keeps every mechanism and modifier of `existing` (one or more
/// records, duplicates dropped) and adds `include:<include>` before the end, which is
/// `-all` — or the existing `redirect=` when the records had no `all` (RFC 7208 §6.1).
pub fn merge(existing: &[String], include: &str) -> String {
    let ours = format!("include:{include}");
    let mut kept: Vec<&str> = Vec::new();
    let mut redirect = None;
    let mut exp = None;
    let mut had_all = false;
    for record in existing {
        for term in terms(record) {
            if let Some((name, _)) = modifier(term) {
                match name.as_str() {
                    "redirect" => {
                        redirect.get_or_insert(term);
                    }
                    "exp" => {
                        exp.get_or_insert(term);
                    }
                    _ => {}
                }
                continue;
            }
            let (name, _) = mechanism(term);
            if name == "all" {
                had_all = true;
                continue;
            }
            let normal = term.strip_prefix('+').unwrap_or(term);
            if !kept.iter().any(|k| k.strip_prefix('+').unwrap_or(k).eq_ignore_ascii_case(normal)) {
                kept.push(term);
            }
        }
    }
    let mut out = String::from("v=spf1");
    for term in &kept {
        out.push(' ');
        out.push_str(term);
    }
    if !kept.iter().any(|k| k.strip_prefix('+').unwrap_or(k).trim_end_matches('.').eq_ignore_ascii_case(&ours)) {
        out.push(' ');
        out.push_str(&ours);
    }
    match redirect {
        Some(redirect) if !had_all => {
            out.push(' ');
            out.push_str(redirect);
        }
        _ => out.push_str(" -all"),
    }
    if let Some(exp) = exp {
        out.push(' ');
        out.push_str(exp);
    }
    out
}

/// Whether `record` includes `name` directly.
pub fn includes(record: &str, name: &str) -> bool {
    terms(record).any(|t| {
        let (q, rest) = split_qualifier(t);
        q == '+'
            && rest.split_once(':').is_some_and(|(m, d)| {
                m.eq_ignore_ascii_case("include") && d.trim_end_matches('.').eq_ignore_ascii_case(name)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_spf_records() {
        assert!(is_spf("v=spf1 -all"));
        assert!(is_spf("V=SPF1"));
        assert!(!is_spf("v=spf10 -all"));
        assert!(!is_spf("v=DKIM1; p=abc"));
        assert!(!is_spf("spf2.0/pra"));
    }

    #[test]
    fn finds_the_all_qualifier() {
        assert_eq!(all_qualifier("v=spf1 mx -all"), Some('-'));
        assert_eq!(all_qualifier("v=spf1 mx ~ALL"), Some('~'));
        assert_eq!(all_qualifier("v=spf1 mx all"), Some('+'));
        assert_eq!(all_qualifier("v=spf1 mx ?all"), Some('?'));
        assert_eq!(all_qualifier("v=spf1 redirect=_spf.example.net"), None);
    }

    #[test]
    fn syntax_errors_name_the_term() {
        assert_eq!(syntax_error("v=spf1 mx a:mail.example.org/24 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all"), None);
        assert_eq!(syntax_error("v=spf1 include:_spf.example.net ~all exp=explain.example.org"), None);
        assert_eq!(
            syntax_error("v=spf1 ip4:192.0.2.300 -all").as_deref(),
            Some("'ip4:192.0.2.300' is not a valid SPF term")
        );
        assert_eq!(
            syntax_error("v=spf1 inclde:x.example -all").as_deref(),
            Some("'inclde:x.example' is not a valid SPF term")
        );
        assert_eq!(syntax_error("v=spf1 include -all").as_deref(), Some("'include' is not a valid SPF term"));
        assert_eq!(syntax_error("v=spf1 ip6:::1/129 -all").as_deref(), Some("'ip6:::1/129' is not a valid SPF term"));
    }

    #[test]
    fn merges_keep_mechanisms_and_add_the_include_once() {
        let ours = "_spf.mail.example.net";
        assert_eq!(
            merge(&["v=spf1 mx include:_spf.google.com ~all".into()], ours),
            "v=spf1 mx include:_spf.google.com include:_spf.mail.example.net -all"
        );
        assert_eq!(
            merge(&["v=spf1 ip4:192.0.2.1 -all".into(), "v=spf1 mx ip4:192.0.2.1 ?all".into()], ours),
            "v=spf1 ip4:192.0.2.1 mx include:_spf.mail.example.net -all"
        );
        assert_eq!(
            merge(&["v=spf1 mx redirect=_spf.other.example".into()], ours),
            "v=spf1 mx include:_spf.mail.example.net redirect=_spf.other.example"
        );
        assert_eq!(
            merge(&["v=spf1 include:_spf.mail.example.net mx -all".into()], ours),
            "v=spf1 include:_spf.mail.example.net mx -all"
        );
        assert_eq!(merge(&[], ours), "v=spf1 include:_spf.mail.example.net -all");
    }

    #[test]
    fn include_detection() {
        assert!(includes("v=spf1 include:_spf.Mail.example.net. -all", "_spf.mail.example.net"));
        assert!(!includes("v=spf1 -include:_spf.mail.example.net -all", "_spf.mail.example.net"));
        assert!(!includes("v=spf1 include:_spf.other.net -all", "_spf.mail.example.net"));
    }
}
