//! The one canonical form of a login name, for the throttle key, the account lookup and
//! the login log alike (DESIGN.md invariant 6: one canonical login).
//!
//! A client may send `CEO@Example.TEST`, ` ceo@example.test ` or a full-width
//! `ｃｅｏ@ｅｘａｍｐｌｅ.test`: all of them name one account and get one key,
//! `ceo@example.test`. A name that only looks like another one is refused rather than
//! cleaned up (invisible or control characters, white space inside, a trailing dot, an
//! empty label), so no spelling of an account can get a throttle key of its own.
//!
//! The steps, in order:
//! 1. refuse more than [`MAX_LOGIN_NAME_BYTES`] bytes (before any work on the input);
//! 2. trim ASCII spaces and tabs at both ends, and nothing else;
//! 3. refuse control characters (`Cc`), invisible characters (`Cf` and the other
//!    default-ignorable code points), any remaining white space and unassigned code
//!    points (whose normalisation a later Unicode version could change);
//! 4. Unicode NFKC, lower case, NFKC again (lower-casing can un-normalise), and step 3
//!    once more on the result (NFKC turns U+00A8 into a space and a combining mark);
//! 5. with an `@`: refuse a trailing dot or an empty label in the domain, then
//!    [`EmailAddress::parse`] (domain to IDNA A-labels); without one: a panel account,
//!    [`CustomerName::parse`].

use std::fmt;

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::invisible::is_invisible;
use crate::{AddressError, CustomerName, EmailAddress};

/// Login names longer than this (in bytes, as sent) are refused before they are
/// normalised: NFKC can expand a character eighteenfold. An address has at most 254
/// characters; this leaves room for a full-width spelling of a long one.
pub const MAX_LOGIN_NAME_BYTES: usize = 1024;

/// Why a login name was refused. For the log: protocol replies stay generic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginNameError {
    #[error("the login name is empty")]
    Empty,
    #[error("the login name is longer than {MAX_LOGIN_NAME_BYTES} bytes")]
    TooLong,
    #[error("the login name contains the control character U+{:04X}", u32::from(*.0))]
    ControlCharacter(char),
    #[error("the login name contains the invisible character U+{:04X}", u32::from(*.0))]
    InvisibleCharacter(char),
    #[error("the login name contains white space (U+{:04X}) that is not at its ends", u32::from(*.0))]
    WhiteSpace(char),
    #[error("the login name contains the unassigned code point U+{:04X}", u32::from(*.0))]
    UnassignedCharacter(char),
    #[error("the domain of the login name ends with a dot")]
    TrailingDot,
    #[error("the domain of the login name has an empty label")]
    EmptyLabel,
    /// It has an `@` but is not a valid e-mail address.
    #[error(transparent)]
    Address(AddressError),
    /// It has no `@` but is not a valid panel account name.
    #[error(transparent)]
    AccountName(AddressError),
}

/// What a login name names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LoginTarget {
    /// A mailbox, by its address (IMAP, POP3, submission, the panel).
    Mailbox(EmailAddress),
    /// A panel account (customer or admin), by its name; it never contains `@`.
    Account(CustomerName),
}

/// A login name in canonical form: what it names, and the key that the throttle, the
/// lookup and the login log all use. Two inputs that name the same account have equal
/// keys; see the module documentation for the rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LoginName {
    key: String,
    target: LoginTarget,
}

impl LoginName {
    /// Turns what a client sent as its login name into the canonical login name.
    pub fn parse(input: &str) -> Result<Self, LoginNameError> {
        if input.len() > MAX_LOGIN_NAME_BYTES {
            return Err(LoginNameError::TooLong);
        }
        let trimmed = input.trim_matches([' ', '\t']);
        if trimmed.is_empty() {
            return Err(LoginNameError::Empty);
        }
        check_characters(trimmed)?;
        let folded: String = trimmed.nfkc().collect::<String>().to_lowercase().nfkc().collect();
        check_characters(&folded)?;
        match folded.rsplit_once('@') {
            Some((_, domain)) => {
                check_labels(domain)?;
                let address = EmailAddress::parse(&folded).map_err(LoginNameError::Address)?;
                Ok(Self { key: address.to_string(), target: LoginTarget::Mailbox(address) })
            }
            None => {
                let name = CustomerName::parse(&folded).map_err(LoginNameError::AccountName)?;
                Ok(Self { key: name.as_str().to_string(), target: LoginTarget::Account(name) })
            }
        }
    }

    /// The canonical string: `ceo@example.test` (domain as A-labels) or `admin`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The mailbox or panel account this name names.
    pub fn target(&self) -> &LoginTarget {
        &self.target
    }

    pub fn into_target(self) -> LoginTarget {
        self.target
    }

    /// How the login log shows input that is *not* a valid login name, so operators see
    /// what was tried: its first [`LOSSY_LOGIN_CHARS`] characters, with control and
    /// invisible characters replaced by U+FFFD. Not a key: it names no account, and
    /// nothing but the log may use it.
    pub fn lossy(input: &str) -> String {
        input
            .chars()
            .take(LOSSY_LOGIN_CHARS)
            .map(|c| if c.is_control() || is_invisible(c) { char::REPLACEMENT_CHARACTER } else { c })
            .collect()
    }
}

/// At most this many characters of an invalid login name reach the login log.
pub const LOSSY_LOGIN_CHARS: usize = 100;

impl fmt::Display for LoginName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

impl serde::Serialize for LoginName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.key)
    }
}

fn check_characters(name: &str) -> Result<(), LoginNameError> {
    for c in name.chars() {
        if c.is_control() {
            return Err(LoginNameError::ControlCharacter(c));
        }
        if is_invisible(c) {
            return Err(LoginNameError::InvisibleCharacter(c));
        }
        if c.is_whitespace() {
            return Err(LoginNameError::WhiteSpace(c));
        }
        if c.general_category() == GeneralCategory::Unassigned {
            return Err(LoginNameError::UnassignedCharacter(c));
        }
    }
    Ok(())
}

/// `DomainName::parse` forgives a trailing dot and IDNA maps several characters to dots;
/// a login name gets neither. U+3002 is the ideographic full stop that UTS #46 treats as
/// a dot (NFKC has already turned U+FF0E and U+FF61 into `.` and U+3002).
fn check_labels(domain: &str) -> Result<(), LoginNameError> {
    if domain.is_empty() {
        return Ok(()); // `EmailAddress::parse` says what is wrong with `user@`.
    }
    if domain.ends_with(['.', '\u{3002}']) {
        return Err(LoginNameError::TrailingDot);
    }
    if domain.split(['.', '\u{3002}']).any(str::is_empty) {
        return Err(LoginNameError::EmptyLabel);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(input: &str) -> Result<String, LoginNameError> {
        LoginName::parse(input).map(|l| l.key().to_string())
    }

    #[test]
    fn invalid_input_is_logged_bounded_and_visible() {
        assert_eq!(LoginName::lossy("bad\u{0}name\u{202e}\r\n"), "bad\u{fffd}name\u{fffd}\u{fffd}\u{fffd}");
        assert_eq!(LoginName::lossy(&"ä".repeat(5000)).chars().count(), LOSSY_LOGIN_CHARS);
        assert_eq!(LoginName::lossy(" Spaced Out "), " Spaced Out ", "nothing else is changed");
    }

    #[test]
    fn spellings_of_one_mailbox_share_one_key() {
        for input in [
            "ceo@example.test",
            "CEO@Example.TEST",
            "ceo@ｅｘａｍｐｌｅ.test",
            "ｃｅｏ＠ｅｘａｍｐｌｅ．ｔｅｓｔ",
            " ceo@example.test ",
            "\tceo@example.test \t",
            "ceo@example。test",
        ] {
            assert_eq!(key(input), Ok("ceo@example.test".to_string()), "{input:?}");
            assert!(matches!(LoginName::parse(input).map(LoginName::into_target), Ok(LoginTarget::Mailbox(_))));
        }
    }

    #[test]
    fn internationalised_names_are_canonical() {
        let cases = [
            ("max@bücher.example", "max@xn--bcher-kva.example"),
            ("Max@BÜCHER.example", "max@xn--bcher-kva.example"),
            ("max@xn--bcher-kva.example", "max@xn--bcher-kva.example"),
            // NFKC composes u + U+0308 into ü.
            ("max@bu\u{0308}cher.example", "max@xn--bcher-kva.example"),
            ("JÖRG@example.net", "jörg@example.net"),
            ("jo\u{0308}rg@example.net", "jörg@example.net"),
        ];
        for (input, canonical) in cases {
            assert_eq!(key(input), Ok(canonical.to_string()), "{input:?}");
        }
    }

    #[test]
    fn names_without_at_are_panel_accounts() {
        for (input, canonical) in
            [("admin", "admin"), ("Admin", "admin"), (" acme-gmbh\t", "acme-gmbh"), ("ＡＤＭＩＮ", "admin")]
        {
            let login = LoginName::parse(input).expect(input);
            assert_eq!(login.key(), canonical);
            assert_eq!(login.target(), &LoginTarget::Account(CustomerName::parse(canonical).expect("valid")));
        }
    }

    #[test]
    fn look_alike_and_malformed_names_are_refused() {
        use LoginNameError::*;
        type Expected = fn(&LoginNameError) -> bool;
        let cases: &[(&str, Expected)] = &[
            ("ceo@e\u{00AD}xample.test", |e| *e == InvisibleCharacter('\u{00AD}')),
            ("ce\u{200B}o@example.test", |e| *e == InvisibleCharacter('\u{200B}')),
            ("ceo\u{200D}@example.test", |e| *e == InvisibleCharacter('\u{200D}')),
            ("\u{FEFF}ceo@example.test", |e| *e == InvisibleCharacter('\u{FEFF}')),
            ("ceo@exam\u{202E}elp.test", |e| *e == InvisibleCharacter('\u{202E}')),
            ("ceo@example.test\u{E0041}", |e| *e == InvisibleCharacter('\u{E0041}')),
            ("ce\u{034F}o@example.test", |e| *e == InvisibleCharacter('\u{034F}')),
            ("ceo\u{FE0F}@example.test", |e| *e == InvisibleCharacter('\u{FE0F}')),
            ("ceo\u{3164}@example.test", |e| *e == InvisibleCharacter('\u{3164}')),
            ("ad\u{00AD}min", |e| *e == InvisibleCharacter('\u{00AD}')),
            ("ceo\u{0007}@example.test", |e| *e == ControlCharacter('\u{0007}')),
            ("ceo@example.test\r\n", |e| *e == ControlCharacter('\r')),
            ("ceo@example.test\0", |e| *e == ControlCharacter('\0')),
            ("\u{00A0}ceo@example.test", |e| *e == WhiteSpace('\u{00A0}')),
            ("ceo@example.test\u{3000}", |e| *e == WhiteSpace('\u{3000}')),
            ("ceo @example.test", |e| *e == WhiteSpace(' ')),
            ("ad min", |e| *e == WhiteSpace(' ')),
            // NFKC turns the diaeresis U+00A8 into a space and a combining mark.
            ("ceo\u{00A8}@example.test", |e| *e == WhiteSpace(' ')),
            ("ceo\u{0378}@example.test", |e| *e == UnassignedCharacter('\u{0378}')),
            ("ceo@example.test.", |e| *e == TrailingDot),
            ("ceo@example.test．", |e| *e == TrailingDot),
            ("ceo@example.test。", |e| *e == TrailingDot),
            ("ceo@example..test", |e| *e == EmptyLabel),
            ("ceo@.example.test", |e| *e == EmptyLabel),
            ("ceo@example。。test", |e| *e == EmptyLabel),
            ("", |e| *e == Empty),
            (" \t ", |e| *e == Empty),
            ("ceo@", |e| matches!(e, Address(_))),
            ("@example.test", |e| matches!(e, Address(_))),
            ("ceo@localhost", |e| matches!(e, Address(_))),
            ("ceo@exa_mple.test", |e| matches!(e, Address(_))),
            ("a", |e| matches!(e, AccountName(_))),
            ("admin!", |e| matches!(e, AccountName(_))),
        ];
        for (input, expected) in cases {
            match LoginName::parse(input) {
                Ok(login) => panic!("{input:?} should be refused, got {login}"),
                Err(e) => assert!(expected(&e), "{input:?}: unexpected {e:?}"),
            }
        }
    }

    #[test]
    fn length_is_limited_before_normalisation() {
        let long = format!("{}@example.test", "\u{FDFA}".repeat(400));
        assert_eq!(LoginName::parse(&long), Err(LoginNameError::TooLong));
        // Just under the limit: refused by the address rule, not by a panic or a slow path.
        let near = format!("{}@example.test", "a".repeat(MAX_LOGIN_NAME_BYTES - 13));
        assert!(matches!(LoginName::parse(&near), Err(LoginNameError::Address(_))));
    }

    #[test]
    fn key_is_displayed() {
        let login = LoginName::parse("CEO@Bücher.example").expect("valid");
        assert_eq!(login.to_string(), "ceo@xn--bcher-kva.example");
    }
}
