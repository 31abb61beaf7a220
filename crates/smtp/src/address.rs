//! The paths of `MAIL FROM` and `RCPT TO`, read from the raw command line.
//!
//! smtp-proto's parser is lenient the way RFC 5321 asks a relay to be: it silently drops
//! source routes and unquotes quoted local parts. An MX that never relays must see those
//! forms to refuse them, so the path is taken from the raw line here first. The classic
//! relay tricks (RFC 2505 §2.1, RFC 5321 §3.6.1 and appendix C) are named, so the server
//! can answer them with its relay refusal instead of "unknown user".

use postfach_types::EmailAddress;

/// Why a path is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// `@a,@b:user@c` (RFC 5321 §4.1.2 A-d-l, appendix C).
    SourceRoute,
    /// `user%host@ourdomain`: the "percent hack".
    PercentHack,
    /// `host!user` or `host!user@ourdomain`: UUCP bang paths.
    BangPath,
    /// `user@host@ourdomain`.
    MultipleAt,
    /// `"user@host"@ourdomain` and other quoted local parts that hide routing characters.
    QuotedRoute,
    /// A quoted local part without routing characters: nothing hosted here has one.
    Quoted,
    /// `<postmaster>` without a domain (RFC 5321 §4.5.1).
    BarePostmaster,
    /// Not an address at all; the text says why.
    Syntax(String),
}

impl PathError {
    /// Whether this form asks the server to pass the message on to somewhere else.
    pub fn is_relay_trick(&self) -> bool {
        matches!(
            self,
            PathError::SourceRoute
                | PathError::PercentHack
                | PathError::BangPath
                | PathError::MultipleAt
                | PathError::QuotedRoute
        )
    }
}

/// The text between `<` and `>` of a `MAIL FROM:<…>` or `RCPT TO:<…>` line, quotes
/// respected; `None` when the line has no such path.
pub fn raw_path(line: &str) -> Option<&str> {
    let colon = line.find(':')?;
    let rest = line[colon + 1..].trim_start();
    let inner = rest.strip_prefix('<')?;
    let mut in_quote = false;
    let mut escaped = false;
    for (i, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quote => escaped = true,
            '"' => in_quote = !in_quote,
            '>' if !in_quote => return Some(&inner[..i]),
            _ => {}
        }
    }
    None
}

/// Whether a raw line is the command `verb` (case-insensitive), like `RCPT` or `MAIL`.
pub fn is_command(line: &[u8], verb: &str) -> bool {
    line.len() > verb.len() && line[..verb.len()].eq_ignore_ascii_case(verb.as_bytes())
}

/// Checks a forward path (a recipient) as the MX sees it.
pub fn forward_path(raw: &str) -> Result<EmailAddress, PathError> {
    let raw = raw.trim();
    if raw.starts_with('@') {
        return Err(PathError::SourceRoute);
    }
    if let Some(start) = raw.find('"') {
        let quoted = &raw[start + 1..];
        let inside = quoted.rfind('"').map_or(quoted, |end| &quoted[..end]);
        return Err(if inside.contains(['@', '%', '!']) { PathError::QuotedRoute } else { PathError::Quoted });
    }
    let ats = raw.matches('@').count();
    if ats == 0 {
        if raw.contains('!') {
            return Err(PathError::BangPath);
        }
        if raw.eq_ignore_ascii_case("postmaster") {
            return Err(PathError::BarePostmaster);
        }
        return Err(PathError::Syntax("an address needs an @ and a domain".into()));
    }
    if ats > 1 {
        return Err(PathError::MultipleAt);
    }
    let local = raw.split('@').next().unwrap_or_default();
    if local.contains('%') {
        return Err(PathError::PercentHack);
    }
    if local.contains('!') {
        return Err(PathError::BangPath);
    }
    EmailAddress::parse(raw).map_err(|e| PathError::Syntax(e.to_string()))
}

/// Checks a reverse path (the envelope sender). `Ok(None)` is the null path `<>` of
/// bounces (RFC 5321 §4.5.5). Source routes are ignored, as RFC 5321 §4.1.2 allows.
pub fn reverse_path(raw: &str) -> Result<Option<EmailAddress>, PathError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let raw = match raw.strip_prefix('@') {
        Some(_) => raw.split_once(':').map(|(_, a)| a).ok_or(PathError::SourceRoute)?,
        None => raw,
    };
    if raw.contains('"') {
        return Err(PathError::Quoted);
    }
    EmailAddress::parse(raw).map(Some).map_err(|e| PathError::Syntax(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cut_from_raw_lines() {
        assert_eq!(raw_path("RCPT TO:<a@b.example>\r\n"), Some("a@b.example"));
        assert_eq!(raw_path("rcpt to: <a@b.example> NOTIFY=NEVER\r\n"), Some("a@b.example"));
        assert_eq!(raw_path("MAIL FROM:<>\r\n"), Some(""));
        assert_eq!(raw_path("RCPT TO:<\"a>b\"@b.example>\r\n"), Some("\"a>b\"@b.example"));
        assert_eq!(raw_path("RCPT TO:<@x.example,@y.example:u@c.example>"), Some("@x.example,@y.example:u@c.example"));
        assert_eq!(raw_path("RCPT TO:a@b.example\r\n"), None);
        assert_eq!(raw_path("RCPT TO:<a@b.example\r\n"), None);
        assert!(is_command(b"rcpt TO:<x>", "RCPT"));
        assert!(!is_command(b"RCP", "RCPT"));
    }

    #[test]
    fn relay_tricks_are_named() {
        let cases = [
            ("@a.example,@b.example:u@acme.example", PathError::SourceRoute),
            ("@a.example:u@acme.example", PathError::SourceRoute),
            ("u%other.example@acme.example", PathError::PercentHack),
            ("u@other.example@acme.example", PathError::MultipleAt),
            ("other.example!u", PathError::BangPath),
            ("other.example!u@acme.example", PathError::BangPath),
            ("\"u@other.example\"@acme.example", PathError::QuotedRoute),
            ("\"u%other.example\"@acme.example", PathError::QuotedRoute),
        ];
        for (raw, expected) in cases {
            let error = forward_path(raw).expect_err(raw);
            assert_eq!(error, expected, "{raw}");
            assert!(error.is_relay_trick(), "{raw}");
        }
    }

    #[test]
    fn other_bad_recipients_are_not_relay_tricks() {
        for (raw, expected) in [("\"u s\"@acme.example", PathError::Quoted), ("Postmaster", PathError::BarePostmaster)]
        {
            let error = forward_path(raw).expect_err(raw);
            assert_eq!(error, expected);
            assert!(!error.is_relay_trick());
        }
        for raw in ["", "user", "user@", "us..er@acme.example", "user@localhost"] {
            assert!(matches!(forward_path(raw), Err(PathError::Syntax(_))), "{raw}");
        }
    }

    #[test]
    fn good_recipients_are_canonical() {
        let a = forward_path("Max.Mustermann+News@ACME.example").expect("valid");
        assert_eq!(a.to_string(), "max.mustermann+news@acme.example");
        assert_eq!(forward_path("jörg@bücher.example").expect("utf-8").to_string(), "jörg@xn--bcher-kva.example");
    }

    #[test]
    fn reverse_paths() {
        assert_eq!(reverse_path(""), Ok(None));
        assert_eq!(reverse_path("a@b.example").expect("ok").map(|a| a.to_string()), Some("a@b.example".into()));
        assert_eq!(
            reverse_path("@relay.example:a@b.example").expect("route ignored").map(|a| a.to_string()),
            Some("a@b.example".into())
        );
        assert_eq!(reverse_path("\"a b\"@b.example"), Err(PathError::Quoted));
        assert!(matches!(reverse_path("nobody"), Err(PathError::Syntax(_))));
    }
}
