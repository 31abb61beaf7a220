//! What FETCH shows of a message's bytes (RFC 9051 §7.5.2, RFC 3501 §7.4.2): ENVELOPE,
//! BODY/BODYSTRUCTURE, `BODY[section]` and `BINARY[section]` (RFC 3516), all read through
//! `postfach_message`, the same parse every intake check uses.
//!
//! The parse is flat and bounded (at most `postfach_message::MAX_DEPTH` levels of parts and
//! attached messages, deeper ones are opaque leaves), so the structure written here is at
//! most that deep however the stored message is built. Header values in ENVELOPE are sent
//! as they appear (RFC 2047 encoded words included, clients decode them); display names
//! are sent as written; parameter values that were decoded (RFC 2231) and are not 7-bit
//! are encoded again as UTF-8 encoded words so the response stays 7-bit.

use std::borrow::Cow;

use postfach_message::{AddressItem, HeaderView, Message, PartKind, UnknownEncoding};

use crate::protocol::{AString, Section, SectionText};
use crate::wire::{encode_word, nstring, string};

/// Appends the ENVELOPE of the message whose root part is `root` (RFC 9051 §7.5.2).
pub fn envelope(out: &mut Vec<u8>, msg: &Message<'_>, root: usize) {
    let h = msg.header(root);
    out.push(b'(');
    nstring(out, h.first("Date").map(|f| f.unfolded()).as_deref());
    out.push(b' ');
    nstring(out, h.first("Subject").map(|f| f.unfolded()).as_deref());
    let from = h.addresses("From");
    let sender = h.addresses("Sender");
    let reply_to = h.addresses("Reply-To");
    // RFC 9051 §7.5.2: Sender and Reply-To default to From.
    for list in
        [&from, if sender.is_empty() { &from } else { &sender }, if reply_to.is_empty() { &from } else { &reply_to }]
    {
        out.push(b' ');
        addresses(out, list);
    }
    for name in ["To", "Cc", "Bcc"] {
        out.push(b' ');
        addresses(out, &h.addresses(name));
    }
    out.push(b' ');
    nstring(out, h.first("In-Reply-To").map(|f| f.unfolded()).as_deref());
    out.push(b' ');
    nstring(out, h.first("Message-ID").map(|f| f.unfolded()).as_deref());
    out.push(b')');
}

/// An address list: `((name adl mailbox host)…)`, a group as its start marker
/// `(NIL NIL "group" NIL)`, its members and the end marker `(NIL NIL NIL NIL)`; NIL when empty.
fn addresses(out: &mut Vec<u8>, list: &[AddressItem]) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for item in list {
        match item {
            AddressItem::Mailbox(m) => {
                out.push(b'(');
                nstring(out, m.name_raw.as_deref().map(str::as_bytes));
                out.extend_from_slice(b" NIL ");
                string(out, m.local.as_bytes());
                out.push(b' ');
                string(out, m.domain.as_bytes());
                out.push(b')');
            }
            AddressItem::GroupStart { name_raw, .. } => {
                out.extend_from_slice(b"(NIL NIL ");
                string(out, name_raw.as_deref().unwrap_or_default().as_bytes());
                out.extend_from_slice(b" NIL)");
            }
            AddressItem::GroupEnd => out.extend_from_slice(b"(NIL NIL NIL NIL)"),
        }
    }
    out.push(b')');
}

/// Appends BODYSTRUCTURE (`extended`) or BODY of the message whose root part is `root`.
/// `rev2`: message/global is described like message/rfc822 (RFC 9051 §7.5.2); IMAP4rev1
/// clients get it as a basic body part.
pub fn body_structure(out: &mut Vec<u8>, msg: &Message<'_>, root: usize, extended: bool, rev2: bool) {
    part_structure(out, msg, root, extended, rev2);
}

fn params(out: &mut Vec<u8>, params: &[(String, String)]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        string(out, name.as_bytes());
        out.push(b' ');
        string(out, encode_word(value).as_bytes());
    }
    out.push(b')');
}

fn field(out: &mut Vec<u8>, h: &HeaderView<'_>, name: &str) {
    nstring(out, h.first(name).map(|f| f.unfolded()).as_deref());
}

/// The extension data shared by every body type (RFC 9051 §7.5.2): disposition, language,
/// location.
fn disposition_language_location(out: &mut Vec<u8>, h: &HeaderView<'_>) {
    match h.disposition() {
        Some((kind, ps)) => {
            out.push(b'(');
            string(out, kind.as_bytes());
            out.push(b' ');
            params(out, &ps);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    field(out, h, "Content-Language");
    out.push(b' ');
    field(out, h, "Content-Location");
}

// Recursion is bounded: the parse never nests deeper than `postfach_message::MAX_DEPTH`.
fn part_structure(out: &mut Vec<u8>, msg: &Message<'_>, index: usize, extended: bool, rev2: bool) {
    let Some(part) = msg.part(index) else {
        out.extend_from_slice(b"(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0)");
        return;
    };
    let h = msg.header(index);
    let ct = &part.content_type;
    if let PartKind::Multipart { children } = &part.kind {
        out.push(b'(');
        for &child in children {
            part_structure(out, msg, child, extended, rev2);
        }
        out.push(b' ');
        string(out, ct.subtype.as_bytes());
        if extended {
            out.push(b' ');
            params(out, &ct.params);
            out.push(b' ');
            disposition_language_location(out, &h);
        }
        out.push(b')');
        return;
    }
    // A multipart kept opaque (no boundary, or too deep) is described as what it is: bytes.
    let (ctype, subtype) = if ct.ctype == "multipart" {
        ("application", "octet-stream")
    } else {
        (ct.ctype.as_str(), ct.subtype.as_str())
    };
    out.push(b'(');
    string(out, ctype.as_bytes());
    out.push(b' ');
    string(out, subtype.as_bytes());
    out.push(b' ');
    params(out, if ct.ctype == "multipart" { &[] } else { &ct.params });
    out.push(b' ');
    field(out, &h, "Content-ID");
    out.push(b' ');
    field(out, &h, "Content-Description");
    out.push(b' ');
    string(out, part.encoding.as_bytes());
    let body = msg.body_bytes(index);
    out.extend_from_slice(format!(" {}", body.len()).as_bytes());
    let enclosed = match part.kind {
        PartKind::Message { enclosed } if rev2 || ct.is("message", "rfc822") => Some(enclosed),
        _ => None,
    };
    match enclosed {
        Some(enclosed) => {
            out.push(b' ');
            envelope(out, msg, enclosed);
            out.push(b' ');
            part_structure(out, msg, enclosed, extended, rev2);
            out.extend_from_slice(format!(" {}", lines(body)).as_bytes());
        }
        None if ctype == "text" => out.extend_from_slice(format!(" {}", lines(body)).as_bytes()),
        None => {}
    }
    if extended {
        out.push(b' ');
        field(out, &h, "Content-MD5");
        out.push(b' ');
        disposition_language_location(out, &h);
    }
    out.push(b')');
}

fn lines(body: &[u8]) -> usize {
    let n = body.iter().filter(|&&b| b == b'\n').count();
    if body.is_empty() || body.ends_with(b"\n") { n } else { n + 1 }
}

/// The bytes of `BODY[section]` (RFC 9051 §6.4.5); `None` when the part does not exist.
pub fn section<'a>(msg: &Message<'a>, section: &Section) -> Option<Cow<'a, [u8]>> {
    let raw = msg.raw();
    let path: Vec<u32> = section.part.iter().map(|n| n.get()).collect();
    // The message a HEADER/TEXT specifier refers to: the top one or an enclosed one.
    let target = || -> Option<usize> { if path.is_empty() { Some(0) } else { msg.enclosed(msg.locate(&path)?) } };
    Some(match &section.text {
        None if path.is_empty() => Cow::Borrowed(raw),
        None => Cow::Borrowed(msg.body_bytes(msg.locate(&path)?)),
        Some(SectionText::Header) => Cow::Borrowed(msg.mime_header_bytes(target()?)),
        Some(SectionText::Text) => Cow::Borrowed(msg.body_bytes(target()?)),
        Some(SectionText::Mime) => Cow::Borrowed(msg.mime_header_bytes(msg.locate(&path)?)),
        Some(SectionText::HeaderFields(names)) => Cow::Owned(header_fields(msg, target()?, names, false)),
        Some(SectionText::HeaderFieldsNot(names)) => Cow::Owned(header_fields(msg, target()?, names, true)),
    })
}

/// Only the header fields named (or, with `not`, all others), then the empty line.
fn header_fields(msg: &Message<'_>, root: usize, names: &[AString], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for f in msg.header(root).fields() {
        let listed = names.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(f.name()));
        if listed != not {
            out.extend_from_slice(f.bytes());
            if !out.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// What `BINARY[part]` cannot give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinaryError {
    NoSuchPart,
    Unknown(UnknownEncoding),
}

/// `BINARY[part]` (RFC 3516 §4.2): the part's content with its transfer encoding undone.
/// An empty path is the whole message; a multipart or message part is sent as it is.
pub fn binary<'a>(msg: &Message<'a>, part: &[u32]) -> Result<Cow<'a, [u8]>, BinaryError> {
    if part.is_empty() {
        return Ok(Cow::Borrowed(msg.raw()));
    }
    let index = msg.locate(part).ok_or(BinaryError::NoSuchPart)?;
    match msg.part(index).map(|p| &p.kind) {
        Some(PartKind::Leaf) => msg.decoded_body(index).map_err(BinaryError::Unknown),
        _ => Ok(Cow::Borrowed(msg.body_bytes(index))),
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    use postfach_message::samples::NESTED;

    fn render(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).expect("utf-8")
    }

    fn sec(part: &[u32], text: Option<SectionText>) -> Section {
        Section { part: part.iter().map(|&n| NonZeroU32::new(n).expect("nz")).collect(), text }
    }

    fn text(msg: &Message<'_>, s: Section) -> String {
        String::from_utf8(section(msg, &s).expect("section").into_owned()).expect("utf8")
    }

    #[test]
    fn envelope_keeps_encoded_words_and_writes_groups() {
        let msg = Message::parse(NESTED);
        let env = render(|o| envelope(o, &msg, 0));
        assert!(
            env.starts_with("(\"Tue, 14 Nov 2023 22:13:20 +0000\" \"=?UTF-8?B?R3LDvMOfZQ==?= and more\" "),
            "{env}"
        );
        assert!(env.contains("((\"=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?=\" NIL \"juergen\" \"example.org\"))"), "{env}");
        assert!(
            env.contains("((\"Max\" NIL \"max\" \"acme.example\")(NIL NIL \"team\" NIL)(NIL NIL \"a\" \"x.example\")(NIL NIL \"b\" \"y.example\")(NIL NIL NIL NIL))"),
            "{env}"
        );
        // RFC 3501 §7.4.2: group start and end markers, the empty group too, no stray address.
        assert!(
            env.contains("((NIL NIL \"group\" NIL)(NIL NIL \"g1\" \"d1.org\")(NIL NIL \"g2\" \"d2.org\")(NIL NIL NIL NIL)(NIL NIL \"group2\" NIL)(NIL NIL \"g3\" \"d3.org\")(NIL NIL NIL NIL)(NIL NIL \"foo\" NIL)(NIL NIL NIL NIL))"),
            "{env}"
        );
        assert!(env.ends_with(" NIL \"<m1@example.org>\")"), "{env}");
    }

    #[test]
    fn bodystructure_of_nested_multipart_and_enclosed_message() {
        let msg = Message::parse(NESTED);
        let bs = render(|o| body_structure(o, &msg, 0, true, false));
        assert!(bs.starts_with("(((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 27 2 NIL NIL NIL NIL)(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 12 1 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"inner\") NIL NIL NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" "), "{bs}");
        assert!(bs.contains("(\"attachment\" (\"filename\" \"fwd.eml\"))"), "{bs}");
        assert!(
            bs.contains("(\"application\" \"pdf\" (\"name\" \"a.pdf\") NIL NIL \"base64\" 8 NIL NIL NIL NIL)"),
            "{bs}"
        );
        assert!(bs.ends_with(" \"mixed\" (\"boundary\" \"outer\") NIL NIL NIL)"), "{bs}");
        assert!(!render(|o| body_structure(o, &msg, 0, false, false)).contains("boundary"));
    }

    #[test]
    fn sections_by_part_number_end_at_their_part() {
        let msg = Message::parse(NESTED);
        assert_eq!(text(&msg, sec(&[1, 1], None)), "Hallo Welt=0A\r\nzweite Zeile");
        assert_eq!(text(&msg, sec(&[1, 2], None)), "<p>Hallo</p>");
        assert_eq!(text(&msg, sec(&[3], None)), "JVBERi0=");
        assert_eq!(text(&msg, sec(&[2, 1], None)), "inner body");
        // Inside the attached message, TEXT ends at the part's own boundary.
        assert_eq!(text(&msg, sec(&[2], Some(SectionText::Text))), "inner body");
        assert_eq!(
            text(&msg, sec(&[2], Some(SectionText::Header))),
            "From: Anna <anna@example.net>\r\nSubject: inner\r\n\r\n"
        );
        assert!(section(&msg, &sec(&[4], None)).is_none());
        let mime = text(&msg, sec(&[3], Some(SectionText::Mime)));
        assert!(mime.starts_with("Content-Type: application/pdf") && mime.ends_with("\r\n\r\n"), "{mime:?}");
        let fields = text(
            &msg,
            sec(&[], Some(SectionText::HeaderFields(vec![AString(b"subject".to_vec()), AString(b"TO".to_vec())]))),
        );
        assert_eq!(
            fields,
            "To: Max <max@acme.example>, team: a@x.example, b@y.example;\r\nSubject: =?UTF-8?B?R3LDvMOfZQ==?= and more\r\n\r\n"
        );
        assert_eq!(binary(&msg, &[3]).expect("binary").as_ref(), b"%PDF-");
        assert_eq!(binary(&msg, &[9]), Err(BinaryError::NoSuchPart));
    }

    #[test]
    fn deeply_nested_messages_render_with_a_bounded_depth() {
        let mut raw = Vec::new();
        for _ in 0..20_000 {
            raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        raw.extend_from_slice(b"Subject: bottom\r\n\r\nx\r\n");
        let handle = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let msg = Message::parse(&raw);
                let bs = render(|o| body_structure(o, &msg, 0, true, false));
                let env = render(|o| envelope(o, &msg, 0));
                (bs.len(), env.len())
            })
            .expect("thread");
        let (bs, env) = handle.join().expect("no stack overflow");
        assert!(bs > 0 && env > 0);
    }
}
