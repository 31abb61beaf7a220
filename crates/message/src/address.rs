//! Address lists (RFC 5322 §3.4, with the §4.4 obsolete forms), parsed the way real
//! mail needs: groups, display names (atoms, quoted strings with quoted-pairs, RFC 2047
//! encoded words kept raw for IMAP ENVELOPE and decoded alongside), comments (nested,
//! skipped by a counter, not recursion), angle-addr with obs-route dropped, quoted local
//! parts and domain literals. Lenient: a bare `user@host`, a missing `>`, empty elements
//! and trailing commas, a missing `;` at the end of a group, words before a bare address
//! (taken as its display name), and an element without `@` (a mailbox with an empty
//! domain, which never matches an owned address).
//!
//! Linear: tokens are made on demand, each is looked at a bounded number of times, and the
//! parse stops after a maximum number of items (`Limits::max_addresses`), so the rest of
//! a huge list is never even tokenized.

/// One mailbox. `local` is the local part with quoting removed, `domain` as written
/// (a domain literal keeps its brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The display name as written, quotes and comments removed, encoded words kept.
    pub name_raw: Option<String>,
    /// The display name with RFC 2047 encoded words decoded.
    pub name: Option<String>,
    pub local: String,
    pub domain: String,
}

impl Mailbox {
    /// `local@domain`, the local part quoted when it is not a dot-atom (RFC 5322 §3.4.1);
    /// just the local part when there is no domain.
    pub fn address(&self) -> String {
        let dot_atom = !self.local.is_empty()
            && self.local.split('.').all(|a| !a.is_empty() && a.bytes().all(|b| b >= 0x80 || is_atext(b)));
        let local = if dot_atom || self.local.is_empty() {
            self.local.clone()
        } else {
            format!("\"{}\"", self.local.replace('\\', "\\\\").replace('"', "\\\""))
        };
        if self.domain.is_empty() { local } else { format!("{local}@{}", self.domain) }
    }
}

/// One element of an address list in the order IMAP ENVELOPE lists it (RFC 3501 §7.4.2):
/// group members come between their `GroupStart` and `GroupEnd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressItem {
    Mailbox(Mailbox),
    GroupStart { name_raw: Option<String>, name: Option<String> },
    GroupEnd,
}

/// RFC 5322 §3.2.3 atext.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

/// A word (atom, quoted string or domain literal) has kind `WORD`; a special has its byte.
const WORD: u8 = 0;

#[derive(Debug, Clone)]
struct Tok {
    kind: u8,
    text: Vec<u8>,
    /// Whitespace or a comment came before it.
    space: bool,
}

/// RFC 5322 §3.2: words, specials, CFWS (folding whitespace and comments) skipped; one
/// token at a time.
#[derive(Debug)]
struct Tokenizer<'v> {
    v: &'v [u8],
    i: usize,
}

impl Iterator for Tokenizer<'_> {
    type Item = Tok;

    fn next(&mut self) -> Option<Tok> {
        let v = self.v;
        let mut space = false;
        loop {
            let c = *v.get(self.i)?;
            let (kind, text) = match c {
                b' ' | b'\t' | b'\r' | b'\n' | b')' => {
                    space = true;
                    self.i += 1;
                    continue;
                }
                // RFC 5322 §3.2.2: comments nest; a counter keeps the depth without recursion.
                b'(' => {
                    let mut depth = 0usize;
                    while let Some(&b) = v.get(self.i) {
                        self.i += 1;
                        match b {
                            b'\\' => self.i += 1,
                            b'(' => depth += 1,
                            b')' => depth -= 1,
                            _ => {}
                        }
                        if depth == 0 {
                            break;
                        }
                    }
                    space = true;
                    continue;
                }
                // RFC 5322 §3.2.4: quoted-string with quoted-pairs; folding removed.
                b'"' => {
                    let mut text = Vec::new();
                    self.i += 1;
                    while let Some(&b) = v.get(self.i) {
                        self.i += 1;
                        match b {
                            b'"' => break,
                            b'\\' => {
                                text.extend(v.get(self.i));
                                self.i += 1;
                            }
                            b'\r' | b'\n' => {}
                            _ => text.push(b),
                        }
                    }
                    (WORD, text)
                }
                // RFC 5322 §3.4.1: domain-literal, kept with its brackets.
                b'[' => {
                    let rest = &v[self.i..];
                    let len = rest.iter().position(|&b| b == b']').map_or(rest.len(), |n| n + 1);
                    self.i += len;
                    (WORD, rest[..len].iter().copied().filter(|b| !b.is_ascii_whitespace()).collect())
                }
                b'<' | b'>' | b',' | b':' | b';' | b'@' | b'.' => {
                    self.i += 1;
                    (c, Vec::new())
                }
                _ => {
                    let rest = &v[self.i..];
                    let len = rest.iter().position(|&b| b" \t\r\n()\"[<>,:;@.".contains(&b)).unwrap_or(rest.len());
                    self.i += len;
                    (WORD, rest[..len].to_vec())
                }
            };
            return Some(Tok { kind, text, space });
        }
    }
}

/// The tokens of a value, made as far as they are asked for.
#[derive(Debug)]
struct Toks<'v> {
    tokenizer: Tokenizer<'v>,
    made: Vec<Tok>,
}

impl Toks<'_> {
    /// The kind of token `i`, if the value has that many.
    fn kind(&mut self, i: usize) -> Option<u8> {
        while self.made.len() <= i {
            self.made.push(self.tokenizer.next()?);
        }
        Some(self.made[i].kind)
    }
}

fn text(toks: &[Tok], spaces: bool) -> String {
    let mut out = Vec::new();
    for t in toks {
        if spaces && t.space && !out.is_empty() {
            out.push(b' ');
        }
        if t.kind == WORD { out.extend_from_slice(&t.text) } else { out.push(t.kind) }
    }
    String::from_utf8_lossy(&out).trim().to_owned()
}

/// A display name (RFC 5322 §3.2.5 phrase, obs-phrase dots included): raw and decoded.
fn names(toks: &[Tok]) -> (Option<String>, Option<String>) {
    let raw = text(toks, true);
    if raw.is_empty() {
        return (None, None);
    }
    let decoded = crate::header::decode_words(raw.as_bytes());
    (Some(raw), Some(decoded))
}

/// addr-spec (RFC 5322 §3.4.1), CFWS around dots dropped (obs-local-part, obs-domain).
fn addr_spec(toks: &[Tok]) -> (String, String) {
    match toks.iter().rposition(|t| t.kind == b'@') {
        Some(at) => (text(&toks[..at], false), text(&toks[at + 1..], false)),
        None => (text(toks, true), String::new()),
    }
}

fn mailbox(name: &[Tok], spec: &[Tok]) -> AddressItem {
    let (name_raw, name) = names(name);
    let (local, domain) = addr_spec(spec);
    AddressItem::Mailbox(Mailbox { name_raw, name, local, domain })
}

/// An element without angle brackets: a bare addr-spec, possibly after junk words that
/// become its display name.
fn flush(buf: &mut Vec<Tok>, out: &mut Vec<AddressItem>) {
    if buf.is_empty() {
        return;
    }
    let mut start = 0;
    if let Some(at) = buf.iter().rposition(|t| t.kind == b'@') {
        // The local part is the run of words joined by dots just before the `@`.
        let (mut j, mut word) = (at, false);
        while j > 0 {
            match buf[j - 1].kind {
                WORD if !word => word = true,
                b'.' => word = false,
                _ => break,
            }
            j -= 1;
        }
        start = j;
    }
    out.push(mailbox(&buf[..start], &buf[start..]));
    buf.clear();
}

/// Parses an address-list (RFC 5322 §3.4) from a raw field value (folding allowed): at
/// most [`crate::MAX_ADDRESSES`] items (and a closing group marker).
pub fn parse_address_list(value: &[u8]) -> Vec<AddressItem> {
    address_list(value, crate::MAX_ADDRESSES).0
}

/// At most `max` items of the address list (and a `GroupEnd` when the cut falls inside a
/// group), and whether there were more.
pub(crate) fn address_list(value: &[u8], max: usize) -> (Vec<AddressItem>, bool) {
    let mut toks = Toks { tokenizer: Tokenizer { v: value, i: 0 }, made: Vec::new() };
    let mut out = Vec::new();
    let mut buf: Vec<Tok> = Vec::new();
    let (mut in_group, mut done) = (false, false);
    let mut i = 0;
    // Items are only ever added, at most two at a time: once there are more than `max`,
    // the list has more than `max` whatever follows.
    while out.len() <= max
        && let Some(kind) = toks.kind(i)
    {
        i += 1;
        match kind {
            b',' | b';' => {
                flush(&mut buf, &mut out);
                done = false;
                if kind == b';' && in_group {
                    out.push(AddressItem::GroupEnd);
                    in_group = false;
                }
            }
            // After an angle-addr, anything up to the next separator is junk.
            _ if done => {}
            // RFC 5322 §3.4 group: display-name ":" [group-list] ";".
            b':' => {
                if in_group {
                    out.push(AddressItem::GroupEnd);
                }
                let (name_raw, name) = names(&buf);
                out.push(AddressItem::GroupStart { name_raw, name });
                buf.clear();
                in_group = true;
            }
            // angle-addr; a missing `>` ends at a separator not followed by an obs-route `@`.
            b'<' => {
                let start = i;
                while let Some(k) = toks.kind(i) {
                    let route = toks.kind(i + 1) == Some(b'@');
                    if k == b'>' || k == b'<' || (matches!(k, b',' | b';') && !route) {
                        break;
                    }
                    i += 1;
                }
                let closed = toks.kind(i) == Some(b'>');
                let mut spec = &toks.made[start..i];
                if closed {
                    i += 1;
                }
                // RFC 5322 §4.4 obs-route: `@a,@b:` before the addr-spec is dropped.
                if let Some(colon) = spec.iter().rposition(|t| t.kind == b':') {
                    spec = &spec[colon + 1..];
                }
                out.push(mailbox(&buf, spec));
                buf.clear();
                done = true;
            }
            _ => buf.push(toks.made[i - 1].clone()),
        }
    }
    if out.len() <= max {
        // The whole value is read: the list is complete.
        flush(&mut buf, &mut out);
        if in_group {
            out.push(AddressItem::GroupEnd);
        }
    }
    let more = out.len() > max;
    if more {
        out.truncate(max);
        let open = out.iter().fold(false, |open, item| match item {
            AddressItem::GroupStart { .. } => true,
            AddressItem::GroupEnd => false,
            AddressItem::Mailbox(_) => open,
        });
        if open {
            out.push(AddressItem::GroupEnd);
        }
    }
    (out, more)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(name: Option<&str>, local: &str, domain: &str) -> AddressItem {
        let name = name.map(str::to_owned);
        let (local, domain) = (local.to_owned(), domain.to_owned());
        AddressItem::Mailbox(Mailbox { name_raw: name.clone(), name, local, domain })
    }

    fn start(name: &str) -> AddressItem {
        AddressItem::GroupStart { name_raw: Some(name.to_owned()), name: Some(name.to_owned()) }
    }

    #[test]
    fn address_table() {
        use AddressItem::GroupEnd;
        let cases: Vec<(&str, Vec<AddressItem>)> = vec![
            ("a@b.example", vec![mb(None, "a", "b.example")]),
            ("Max <max@acme.example>", vec![mb(Some("Max"), "max", "acme.example")]),
            (
                "group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;, foo:;",
                vec![
                    start("group"),
                    mb(None, "g1", "d1.org"),
                    mb(None, "g2", "d2.org"),
                    GroupEnd,
                    start("group2"),
                    mb(None, "g3", "d3.org"),
                    GroupEnd,
                    start("foo"),
                    GroupEnd,
                ],
            ),
            ("undisclosed-recipients:;", vec![start("undisclosed-recipients"), GroupEnd]),
            ("team: a@x.example", vec![start("team"), mb(None, "a", "x.example"), GroupEnd]),
            (
                "\"Doe, John\" <j@x.example>, \"Q \\\"Q\\\" R\" <q@y.example>",
                vec![mb(Some("Doe, John"), "j", "x.example"), mb(Some("Q \"Q\" R"), "q", "y.example")],
            ),
            (
                "John (the (nested) one) Q. Public <jqp(c)@(c)ex.example> (trailing)",
                vec![mb(Some("John Q. Public"), "jqp", "ex.example")],
            ),
            ("<@r1.example,@r2.example:user@host.example>", vec![mb(None, "user", "host.example")]),
            (
                "Ann <ann@x.example, bob@y.example",
                vec![mb(Some("Ann"), "ann", "x.example"), mb(None, "bob", "y.example")],
            ),
            ("\"a b\"@c.example", vec![mb(None, "a b", "c.example")]),
            ("user@[192.0.2.1]", vec![mb(None, "user", "[192.0.2.1]")]),
            (",, a@b.example ,,", vec![mb(None, "a", "b.example")]),
            ("john . smith @ x.example", vec![mb(None, "john.smith", "x.example")]),
            ("John john@x.example", vec![mb(Some("John"), "john", "x.example")]),
            ("nobody", vec![mb(None, "nobody", "")]),
            ("<>", vec![mb(None, "", "")]),
            ("", vec![]),
        ];
        for (input, want) in cases {
            assert_eq!(parse_address_list(input.as_bytes()), want, "{input}");
        }
    }

    #[test]
    fn encoded_word_names_keep_raw_and_decode() {
        let got = parse_address_list(
            b"=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <j@x.example>,\r\n =?utf-8?b?R3LDvMOfZQ==?=: a@b;",
        );
        let AddressItem::Mailbox(m) = &got[0] else { panic!("{got:?}") };
        assert_eq!(m.name_raw.as_deref(), Some("=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?="));
        assert_eq!(m.name.as_deref(), Some("Jürgen Müller"));
        assert_eq!(
            got[1],
            AddressItem::GroupStart { name_raw: Some("=?utf-8?b?R3LDvMOfZQ==?=".into()), name: Some("Grüße".into()) }
        );
    }

    #[test]
    fn address_quotes_local_part_when_needed() {
        let m = |local: &str, domain: &str| Mailbox {
            name_raw: None,
            name: None,
            local: local.into(),
            domain: domain.into(),
        };
        assert_eq!(m("a.b", "c.example").address(), "a.b@c.example");
        assert_eq!(m("a b", "c.example").address(), "\"a b\"@c.example");
        assert_eq!(m("a..b", "c").address(), "\"a..b\"@c");
        assert_eq!(m("jürgen", "c").address(), "jürgen@c");
    }

    #[test]
    fn unbalanced_input_does_not_panic() {
        for input in ["(((", "\"abc", "[1.2", "<", "a@", "@", ":", ";;;", "\\", "((a)b\\", "<@a,@b"] {
            let _ = parse_address_list(input.as_bytes());
        }
    }
}
