//! Domain names, local parts, e-mail addresses and customer names.
//!
//! All names are case-insensitive in Postfach and are kept in one canonical form: lower
//! case, and domains as IDNA A-labels (`bücher.example` is kept as
//! `xn--bcher-kva.example`). Comparing two values therefore compares their canonical forms.
//!
//! Names with invisible characters (format characters such as a soft hyphen or a
//! zero-width space, and other default-ignorable code points) are refused rather than
//! cleaned: IDNA would drop some of them silently and so give one name two spellings.

use std::fmt;

use crate::invisible::is_invisible;

/// Why a name or address was refused. The texts are meant for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("'{0}' is not a valid domain name: {1}")]
    Domain(String, &'static str),
    #[error("'{0}' is not a valid e-mail address: {1}")]
    Address(String, &'static str),
    #[error(
        "'{0}' is not a valid customer name: use 2 to 64 characters a-z, 0-9, '.', '-' or '_', starting with a letter or digit"
    )]
    CustomerName(String),
}

/// A domain name in canonical form: lower case ASCII, IDN labels as A-labels (RFC 5890),
/// no trailing dot, every label 1–63 letters, digits or hyphens (RFC 1035 §2.3.1).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct DomainName(String);

impl DomainName {
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let err = |why| AddressError::Domain(input.to_string(), why);
        let trimmed = input.trim();
        let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
        if trimmed.is_empty() {
            return Err(err("it is empty"));
        }
        // UTS #46 maps these to nothing; refuse them before it does.
        if trimmed.chars().any(is_invisible) {
            return Err(err("it contains an invisible formatting character"));
        }
        let ascii = idna::domain_to_ascii(trimmed).map_err(|_| err("it is not a valid internationalised name"))?;
        if ascii.len() > 253 {
            return Err(err("it is longer than 253 characters"));
        }
        for label in ascii.split('.') {
            if label.is_empty() {
                return Err(err("it has an empty label"));
            }
            if label.len() > 63 {
                return Err(err("a label is longer than 63 characters"));
            }
            if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(err("only letters, digits, hyphens and dots are allowed"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(err("a label starts or ends with a hyphen"));
            }
        }
        Ok(Self(ascii))
    }

    /// The canonical (A-label) form, as stored and as used in DNS.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name for people: U-labels where the name is internationalised.
    pub fn to_unicode(&self) -> String {
        let (unicode, result) = idna::domain_to_unicode(&self.0);
        if result.is_ok() { unicode } else { self.0.clone() }
    }

    /// True for names with at least two labels: only these can be hosted as mail domains.
    pub fn has_parent(&self) -> bool {
        self.0.contains('.')
    }

    /// The labels, left to right.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The part of an address before the `@`, in canonical (lower case) form.
///
/// Accepts an RFC 5321 §4.1.2 dot-atom, with UTF-8 allowed as by RFC 6531. Quoted local
/// parts are refused: nothing hosted here needs one, and they are a classic way to hide an
/// `@` or a route.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct LocalPart(String);

/// The character that separates a local part from its tag in subaddresses (`user+tag@`).
pub const SUBADDRESS_SEPARATOR: char = '+';

impl LocalPart {
    fn parse(input: &str, whole: &str) -> Result<Self, AddressError> {
        let err = |why| AddressError::Address(whole.to_string(), why);
        if input.is_empty() {
            return Err(err("the part before the @ is empty"));
        }
        if input.starts_with('"') {
            return Err(err("quoted local parts are not accepted"));
        }
        if input.len() > 64 {
            return Err(err("the part before the @ is longer than 64 characters"));
        }
        // RFC 5322 §3.2.3 atext, plus the non-ASCII characters of RFC 6531 §3.3 that are
        // visible: no controls, no white space (U+00A0, U+3000 …), nothing invisible.
        let atext = |c: char| {
            c.is_ascii_alphanumeric()
                || "!#$%&'*+-/=?^_`{|}~".contains(c)
                || (!c.is_ascii() && !c.is_control() && !c.is_whitespace() && !is_invisible(c))
        };
        if input.split('.').any(|atom| atom.is_empty() || !atom.chars().all(atext)) {
            return Err(err("the part before the @ has a character or dot that is not allowed"));
        }
        Ok(Self(input.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this local part may name a mailbox or alias hosted here: letters, digits and
    /// `.`, `-`, `_` only. Relay syntax (`%`, `!`), the subaddress separator and other
    /// punctuation can therefore never match a hosted address.
    ///
    /// It must also be in Unicode NFKC form: login names are normalised to NFKC before the
    /// lookup (see [`crate::LoginName`]), so a hosted `ｍａｘ` (full-width) could never be
    /// logged into, and its login would name the mailbox `max` instead.
    pub fn check_hostable(&self) -> Result<(), &'static str> {
        if !self.0.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '-' || c == '_') {
            Err("use only letters, digits, '.', '-' and '_' before the @")
        } else if !unicode_normalization::is_nfkc(&self.0) {
            Err("use ordinary letters and digits before the @, not full-width or other compatibility forms")
        } else {
            Ok(())
        }
    }

    /// `user` for `user+tag`, if this is a subaddress.
    pub fn without_tag(&self) -> Option<LocalPart> {
        let (base, _tag) = self.0.split_once(SUBADDRESS_SEPARATOR)?;
        (!base.is_empty()).then(|| LocalPart(base.to_string()))
    }
}

impl fmt::Display for LocalPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An e-mail address `local@domain` in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EmailAddress {
    local: LocalPart,
    domain: DomainName,
}

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let trimmed = input.trim();
        let err = |why| AddressError::Address(input.to_string(), why);
        if trimmed.len() > 254 {
            return Err(err("it is longer than 254 characters"));
        }
        if trimmed.chars().any(is_invisible) {
            return Err(err("it contains an invisible formatting character"));
        }
        let (local, domain) = trimmed.rsplit_once('@').ok_or_else(|| err("it has no @"))?;
        if local.contains('@') {
            return Err(err("it has more than one @"));
        }
        let local = LocalPart::parse(local, input)?;
        let domain = DomainName::parse(domain).map_err(|_| err("the part after the @ is not a valid domain name"))?;
        if !domain.has_parent() {
            return Err(err("the part after the @ is not a full domain name"));
        }
        Ok(Self { local, domain })
    }

    pub fn new(local: LocalPart, domain: DomainName) -> Self {
        Self { local, domain }
    }

    pub fn local_part(&self) -> &LocalPart {
        &self.local
    }

    pub fn domain(&self) -> &DomainName {
        &self.domain
    }

    /// The same local part at another domain (used for alias domains).
    pub fn at_domain(&self, domain: &DomainName) -> Self {
        Self { local: self.local.clone(), domain: domain.clone() }
    }

    /// The address for people: the domain in U-labels.
    pub fn to_unicode(&self) -> String {
        format!("{}@{}", self.local, self.domain.to_unicode())
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

impl serde::Serialize for EmailAddress {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The login name of a customer or admin of the panel: 2–64 characters of `a-z0-9._-`,
/// starting with a letter or digit. Kept in lower case. It never contains `@`, so a login
/// name is never confused with a mailbox address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct CustomerName(String);

impl CustomerName {
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let name = input.trim().to_ascii_lowercase();
        let valid_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
        let valid = (2..=64).contains(&name.len())
            && name.chars().all(valid_char)
            && name.starts_with(|c: char| c.is_ascii_alphanumeric());
        if valid { Ok(Self(name)) } else { Err(AddressError::CustomerName(input.to_string())) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CustomerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_canonical() {
        let cases = [
            ("Example.NET", "example.net"),
            ("example.net.", "example.net"),
            ("bücher.example", "xn--bcher-kva.example"),
            ("BÜCHER.example", "xn--bcher-kva.example"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ];
        for (input, canonical) in cases {
            assert_eq!(DomainName::parse(input).map(|d| d.to_string()), Ok(canonical.to_string()), "{input}");
        }
        assert_eq!(DomainName::parse("xn--bcher-kva.example").map(|d| d.to_unicode()), Ok("bücher.example".into()));
    }

    #[test]
    fn bad_domains_are_refused() {
        for input in ["", ".", "a..b", "-a.example", "a-.example", "a_b.example", "a b.example", &"x".repeat(64)] {
            assert!(DomainName::parse(input).is_err(), "{input:?} should be refused");
        }
    }

    #[test]
    fn addresses_are_canonical() {
        let a = EmailAddress::parse("Max.Mustermann@Bücher.Example").expect("valid");
        assert_eq!(a.to_string(), "max.mustermann@xn--bcher-kva.example");
        assert_eq!(a.to_unicode(), "max.mustermann@bücher.example");
        assert_eq!(EmailAddress::parse("JÖRG@example.net").map(|a| a.to_string()), Ok("jörg@example.net".into()));
    }

    #[test]
    fn relay_tricks_and_bad_addresses_are_refused() {
        for input in [
            "u@host@example.net",
            "\"u@host\"@example.net",
            "@a,@b:u@example.net",
            "user",
            "@example.net",
            "user@",
            "user@localhost",
            ".user@example.net",
            "us..er@example.net",
            "user.@example.net",
            "us er@example.net",
        ] {
            assert!(EmailAddress::parse(input).is_err(), "{input:?} should be refused");
        }
    }

    #[test]
    fn invisible_characters_are_refused_not_dropped() {
        // UTS #46 maps U+00AD to nothing: without the check this parsed as ceo@example.test.
        for input in [
            "ceo@e\u{00AD}xample.test",
            "ceo@exa\u{200B}mple.test",
            "ceo@example.te\u{200D}st",
            "ceo@example.test\u{FEFF}",
            "ceo@exam\u{034F}ple.test",
            "ceo@examp\u{FE00}le.test",
            "ce\u{200B}o@example.test",
            "ce\u{00AD}o@example.test",
            "ceo\u{2060}@example.test",
            "\u{202E}ceo@example.test",
            "ceo\u{E0041}@example.test",
            "ceo\u{115F}@example.test",
            "ce\u{00A0}o@example.test",
            "ce\u{3000}o@example.test",
        ] {
            assert!(EmailAddress::parse(input).is_err(), "{input:?} should be refused");
        }
        for input in ["e\u{00AD}xample.test", "exa\u{200B}mple.test", "example.test\u{FEFF}", "bu\u{034F}cher.example"]
        {
            assert!(DomainName::parse(input).is_err(), "{input:?} should be refused");
        }
        // Visible non-ASCII stays valid (RFC 6531).
        assert_eq!(
            EmailAddress::parse("jörg@bücher.example").map(|a| a.to_unicode()),
            Ok("jörg@bücher.example".into())
        );
    }

    #[test]
    fn hostable_local_parts_are_nfkc() {
        let hostable = |s: &str| EmailAddress::parse(s).expect("syntax ok").local_part().check_hostable();
        assert_eq!(hostable("jörg@example.net"), Ok(()));
        // Full-width letters and a decomposed ü are valid syntax but cannot be hosted:
        // their login name would be normalised to another mailbox's.
        assert!(hostable("ｍａｘ@example.net").is_err());
        assert!(hostable("jo\u{0308}rg@example.net").is_err());
        assert!(hostable("ﬁnn@example.net").is_err());
    }

    #[test]
    fn hostable_local_parts_exclude_relay_syntax() {
        let hostable = |s: &str| EmailAddress::parse(s).expect("syntax ok").local_part().check_hostable().is_ok();
        assert!(hostable("max.mustermann@example.net"));
        assert!(hostable("jörg_b-1@example.net"));
        for relay in ["u%host@example.net", "host!u@example.net", "u+tag@example.net", "u=x@example.net"] {
            assert!(!hostable(relay), "{relay}");
        }
    }

    #[test]
    fn subaddress_tag_is_split_off() {
        let a = EmailAddress::parse("max+news+x@example.net").expect("valid");
        assert_eq!(a.local_part().without_tag().map(|l| l.to_string()), Some("max".into()));
        let plain = EmailAddress::parse("max@example.net").expect("valid");
        assert_eq!(plain.local_part().without_tag(), None);
        let only_tag = EmailAddress::parse("+x@example.net").expect("valid");
        assert_eq!(only_tag.local_part().without_tag(), None);
    }

    #[test]
    fn customer_names() {
        assert_eq!(CustomerName::parse("Acme-GmbH").map(|c| c.to_string()), Ok("acme-gmbh".into()));
        for bad in ["a", "-acme", "acme@x", "acme gmbh", &"a".repeat(65)] {
            assert!(CustomerName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
