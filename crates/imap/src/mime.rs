//! What FETCH and SEARCH need from a message's bytes (RFC 3501 §6.4.5, §7.4.2): ENVELOPE,
//! BODYSTRUCTURE, `BODY[section]` extraction by part number, and header/text matching.
//!
//! The message is parsed with `mail-parser`; parts are located by their byte offsets in
//! the raw message, so sections come back byte for byte as stored. A nested
//! message/rfc822 part is its own `mail_parser::Message` with offsets into its own bytes.
//! Header values in ENVELOPE are sent as they appear in the message (RFC 2047 encoded
//! words included, clients decode them); display names that mail-parser decoded are
//! encoded again as UTF-8 encoded words, so the response stays 7-bit.

use mail_parser::{Address, HeaderValue, Message, MessageParser, MessagePart, PartType};

use crate::wire::{encode_word, nstring, string};

/// Parses a stored message.
pub fn parse(raw: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse(raw)
}

fn raw_of<'m>(msg: &'m Message<'_>) -> &'m [u8] {
    msg.raw_message.as_ref()
}

fn slice(raw: &[u8], from: u32, to: u32) -> &[u8] {
    let from = (from as usize).min(raw.len());
    let to = (to as usize).clamp(from, raw.len());
    &raw[from..to]
}

/// The field name of a header, as written.
fn header_name<'r>(raw: &'r [u8], h: &mail_parser::Header<'_>) -> &'r [u8] {
    let name = slice(raw, h.offset_field, h.offset_start);
    let name = name.strip_suffix(b":").unwrap_or(name);
    name.trim_ascii()
}

/// The raw value of the first header `name` of `part`, unfolded and trimmed.
pub fn raw_header(raw: &[u8], part: &MessagePart<'_>, name: &str) -> Option<Vec<u8>> {
    let h = part.headers.iter().find(|h| header_name(raw, h).eq_ignore_ascii_case(name.as_bytes()))?;
    Some(unfold(slice(raw, h.offset_start, h.offset_end)))
}

fn unfold(value: &[u8]) -> Vec<u8> {
    let v: Vec<u8> = value.iter().copied().filter(|&b| b != b'\r' && b != b'\n').collect();
    v.trim_ascii().to_vec()
}

/// The message header (with the empty line ending it).
pub fn header_bytes<'m>(msg: &'m Message<'_>) -> &'m [u8] {
    match msg.parts.first() {
        Some(root) => slice(raw_of(msg), root.offset_header, root.offset_body),
        None => raw_of(msg),
    }
}

/// The message body after the header.
pub fn text_bytes<'m>(msg: &'m Message<'_>) -> &'m [u8] {
    match msg.parts.first() {
        Some(root) => {
            let raw = raw_of(msg);
            slice(raw, root.offset_body, u32::try_from(raw.len()).unwrap_or(u32::MAX))
        }
        None => &[],
    }
}

/// Only the header fields named (or, with `not`, all others), followed by the empty line
/// (RFC 3501 §6.4.5 HEADER.FIELDS).
pub fn header_fields(msg: &Message<'_>, names: &[Vec<u8>], not: bool) -> Vec<u8> {
    let raw = raw_of(msg);
    let mut out = Vec::new();
    if let Some(root) = msg.parts.first() {
        for h in &root.headers {
            let name = header_name(raw, h);
            let listed = names.iter().any(|n| n.eq_ignore_ascii_case(name));
            if listed != not {
                let mut field = slice(raw, h.offset_field, h.offset_end).to_vec();
                if !field.ends_with(b"\n") {
                    field.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(&field);
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Where a part path leads: a part of some (possibly nested) message.
#[derive(Debug, Clone, Copy)]
pub struct Located<'m, 'x> {
    pub msg: &'m Message<'x>,
    pub part: usize,
}

/// Follows part numbers (RFC 3501 §6.4.5): in a multipart, the n-th child; a
/// non-multipart message has only part 1, its body; after a message/rfc822 part the
/// numbers continue inside the enclosed message.
pub fn locate<'m, 'x>(msg: &'m Message<'x>, path: &[u32]) -> Option<Located<'m, 'x>> {
    let mut msg = msg;
    let mut cur: Option<usize> = None;
    for &n in path {
        let n = n as usize;
        if let Some(p) = cur
            && let PartType::Message(nested) = &msg.parts.get(p)?.body
        {
            msg = nested;
            cur = None;
        }
        cur = Some(match cur {
            None => match &msg.parts.first()?.body {
                PartType::Multipart(children) => *children.get(n.checked_sub(1)?)? as usize,
                _ if n == 1 => 0,
                _ => return None,
            },
            Some(p) => match &msg.parts.get(p)?.body {
                PartType::Multipart(children) => *children.get(n.checked_sub(1)?)? as usize,
                _ => return None,
            },
        });
    }
    cur.map(|part| Located { msg, part })
}

impl<'m, 'x> Located<'m, 'x> {
    fn part(&self) -> Option<&'m MessagePart<'x>> {
        self.msg.parts.get(self.part)
    }

    /// The part's body as stored (still transfer-encoded).
    pub fn body(&self) -> &'m [u8] {
        match self.part() {
            Some(p) => slice(raw_of(self.msg), p.offset_body, p.offset_end),
            None => &[],
        }
    }

    /// The part's MIME header.
    pub fn mime(&self) -> &'m [u8] {
        match self.part() {
            // The body of a non-multipart message is part 1; its MIME header is the
            // message header's.
            Some(p) => slice(raw_of(self.msg), p.offset_header, p.offset_body),
            None => &[],
        }
    }

    /// The enclosed message when this is a message/rfc822 part.
    pub fn enclosed(&self) -> Option<&'m Message<'x>> {
        match &self.part()?.body {
            PartType::Message(m) => Some(m),
            _ => None,
        }
    }
}

/// Appends the ENVELOPE of `msg` (RFC 3501 §7.4.2).
pub fn envelope(out: &mut Vec<u8>, msg: &Message<'_>) {
    let raw = raw_of(msg);
    let Some(root) = msg.parts.first() else {
        out.extend_from_slice(b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
        return;
    };
    out.push(b'(');
    nstring(out, raw_header(raw, root, "Date").as_deref());
    out.push(b' ');
    nstring(out, raw_header(raw, root, "Subject").as_deref());
    let from = addresses(root, "From");
    let sender = addresses(root, "Sender");
    let reply_to = addresses(root, "Reply-To");
    for list in
        [&from, if sender.is_some() { &sender } else { &from }, if reply_to.is_some() { &reply_to } else { &from }]
    {
        out.push(b' ');
        write_addresses(out, list.as_ref());
    }
    for name in ["To", "Cc", "Bcc"] {
        out.push(b' ');
        write_addresses(out, addresses(root, name).as_ref());
    }
    out.push(b' ');
    nstring(out, raw_header(raw, root, "In-Reply-To").as_deref());
    out.push(b' ');
    nstring(out, raw_header(raw, root, "Message-ID").as_deref());
    out.push(b')');
}

/// One address for ENVELOPE: (name adl mailbox host); a group start has no host and the
/// group name as mailbox, a group end is all NIL.
type EnvAddress = (Option<String>, Option<String>, Option<String>);

fn header_value<'p, 'x>(part: &'p MessagePart<'x>, name: &str) -> Option<&'p HeaderValue<'x>> {
    part.headers.iter().find(|h| h.name.as_str().eq_ignore_ascii_case(name)).map(|h| &h.value)
}

fn addresses(part: &MessagePart<'_>, name: &str) -> Option<Vec<EnvAddress>> {
    let value = header_value(part, name)?;
    let split = |a: &mail_parser::Addr<'_>| -> EnvAddress {
        let name = a.name.as_deref().map(encode_word);
        let address = a.address.as_deref().unwrap_or("");
        match address.rsplit_once('@') {
            Some((local, host)) => (name, Some(local.to_string()), Some(host.to_string())),
            None => (name, Some(address.to_string()), Some(String::new())),
        }
    };
    let list = match value {
        HeaderValue::Address(Address::List(list)) => list.iter().map(split).collect::<Vec<_>>(),
        HeaderValue::Address(Address::Group(groups)) => {
            let mut all = Vec::new();
            for g in groups {
                match &g.name {
                    Some(group) => {
                        all.push((None, Some(encode_word(group)), None));
                        all.extend(g.addresses.iter().map(split));
                        all.push((None, None, None));
                    }
                    None => all.extend(g.addresses.iter().map(split)),
                }
            }
            all
        }
        _ => return None,
    };
    if list.is_empty() { None } else { Some(list) }
}

fn write_addresses(out: &mut Vec<u8>, list: Option<&Vec<EnvAddress>>) {
    let Some(list) = list else {
        out.extend_from_slice(b"NIL");
        return;
    };
    out.push(b'(');
    for (name, mailbox, host) in list {
        out.push(b'(');
        nstring(out, name.as_deref().map(str::as_bytes));
        out.extend_from_slice(b" NIL ");
        nstring(out, mailbox.as_deref().map(str::as_bytes));
        out.push(b' ');
        nstring(out, host.as_deref().map(str::as_bytes));
        out.push(b')');
    }
    out.push(b')');
}

/// Appends BODYSTRUCTURE (`extended`) or BODY of `msg` (RFC 3501 §7.4.2).
pub fn body_structure(out: &mut Vec<u8>, msg: &Message<'_>, extended: bool) {
    if msg.parts.is_empty() {
        out.extend_from_slice(b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)");
        return;
    }
    part_structure(out, msg, 0, extended, 0);
}

fn content_type<'p, 'x>(part: &'p MessagePart<'x>) -> Option<&'p mail_parser::ContentType<'x>> {
    match header_value(part, "Content-Type") {
        Some(HeaderValue::ContentType(ct)) => Some(ct),
        _ => None,
    }
}

fn params(out: &mut Vec<u8>, ct: Option<&mail_parser::ContentType<'_>>) {
    let attrs = ct.and_then(|c| c.attributes.as_ref()).filter(|a| !a.is_empty());
    match attrs {
        None => out.extend_from_slice(b"NIL"),
        Some(attrs) => {
            out.push(b'(');
            for (i, a) in attrs.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                string(out, a.name.as_bytes());
                out.push(b' ');
                string(out, encode_word(&a.value).as_bytes());
            }
            out.push(b')');
        }
    }
}

fn part_structure(out: &mut Vec<u8>, msg: &Message<'_>, index: usize, extended: bool, depth: usize) {
    let raw = raw_of(msg);
    let Some(part) = msg.parts.get(index) else { return };
    let ct = content_type(part);
    if let PartType::Multipart(children) = &part.body {
        out.push(b'(');
        if children.is_empty() || depth > 50 {
            // An empty multipart has no valid BODYSTRUCTURE; describe it as empty text.
            out.extend_from_slice(b"(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0)");
        }
        if depth <= 50 {
            for &child in children {
                part_structure(out, msg, child as usize, extended, depth + 1);
            }
        }
        out.push(b' ');
        let subtype = ct.and_then(|c| c.c_subtype.as_deref()).unwrap_or("mixed");
        string(out, subtype.as_bytes());
        if extended {
            out.push(b' ');
            params(out, ct);
            out.push(b' ');
            disposition(out, raw, part);
            out.push(b' ');
            nstring(out, raw_header(raw, part, "Content-Language").as_deref());
            out.push(b' ');
            nstring(out, raw_header(raw, part, "Content-Location").as_deref());
        }
        out.push(b')');
        return;
    }
    let (mtype, subtype) = match (&part.body, ct) {
        (PartType::Message(_), _) => ("message".to_string(), "rfc822".to_string()),
        (_, Some(ct)) => (
            ct.c_type.to_ascii_lowercase(),
            ct.c_subtype.as_deref().map_or_else(|| "plain".to_string(), str::to_ascii_lowercase),
        ),
        _ => ("text".to_string(), "plain".to_string()),
    };
    out.push(b'(');
    string(out, mtype.as_bytes());
    out.push(b' ');
    string(out, subtype.as_bytes());
    out.push(b' ');
    if ct.is_none() && mtype == "text" {
        out.extend_from_slice(b"(\"charset\" \"us-ascii\")");
    } else {
        params(out, ct);
    }
    out.push(b' ');
    nstring(out, raw_header(raw, part, "Content-ID").as_deref());
    out.push(b' ');
    nstring(out, raw_header(raw, part, "Content-Description").as_deref());
    out.push(b' ');
    let encoding = raw_header(raw, part, "Content-Transfer-Encoding").unwrap_or_else(|| b"7bit".to_vec());
    string(out, &encoding.to_ascii_lowercase());
    let body = slice(raw, part.offset_body, part.offset_end);
    out.extend_from_slice(format!(" {}", body.len()).as_bytes());
    if let PartType::Message(nested) = &part.body {
        out.push(b' ');
        envelope(out, nested);
        out.push(b' ');
        if depth <= 50 {
            body_structure(out, nested, extended);
        } else {
            out.extend_from_slice(b"(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0)");
        }
        out.extend_from_slice(format!(" {}", lines(body)).as_bytes());
    } else if mtype == "text" {
        out.extend_from_slice(format!(" {}", lines(body)).as_bytes());
    }
    if extended {
        out.extend_from_slice(b" ");
        nstring(out, raw_header(raw, part, "Content-MD5").as_deref());
        out.push(b' ');
        disposition(out, raw, part);
        out.push(b' ');
        nstring(out, raw_header(raw, part, "Content-Language").as_deref());
        out.push(b' ');
        nstring(out, raw_header(raw, part, "Content-Location").as_deref());
    }
    out.push(b')');
}

fn lines(body: &[u8]) -> usize {
    let n = body.iter().filter(|&&b| b == b'\n').count();
    if body.is_empty() || body.ends_with(b"\n") { n } else { n + 1 }
}

fn disposition(out: &mut Vec<u8>, _raw: &[u8], part: &MessagePart<'_>) {
    match header_value(part, "Content-Disposition") {
        Some(HeaderValue::ContentType(cd)) => {
            out.push(b'(');
            string(out, cd.c_type.as_bytes());
            out.push(b' ');
            params(out, Some(cd));
            out.push(b')');
        }
        _ => out.extend_from_slice(b"NIL"),
    }
}

/// Lower-cased text of every header named `name` (raw and decoded), for SEARCH.
pub fn header_texts(msg: &Message<'_>, name: &str) -> Vec<String> {
    let raw = raw_of(msg);
    let Some(root) = msg.parts.first() else { return Vec::new() };
    let mut texts = Vec::new();
    for h in root.headers.iter().filter(|h| header_name(raw, h).eq_ignore_ascii_case(name.as_bytes())) {
        let mut text = String::from_utf8_lossy(&unfold(slice(raw, h.offset_start, h.offset_end))).into_owned();
        text.push('\n');
        text.push_str(&decoded_value(&h.value));
        texts.push(text.to_lowercase());
    }
    texts
}

/// Lower-cased text of all headers (raw and decoded), for SEARCH TEXT.
pub fn all_headers_text(msg: &Message<'_>) -> String {
    let mut text = String::from_utf8_lossy(header_bytes(msg)).into_owned();
    if let Some(root) = msg.parts.first() {
        for h in &root.headers {
            text.push('\n');
            text.push_str(&decoded_value(&h.value));
        }
    }
    text.to_lowercase()
}

fn decoded_value(value: &HeaderValue<'_>) -> String {
    let addr = |a: &mail_parser::Addr<'_>| {
        format!("{} <{}>", a.name.as_deref().unwrap_or(""), a.address.as_deref().unwrap_or(""))
    };
    match value {
        HeaderValue::Text(t) => t.to_string(),
        HeaderValue::TextList(l) => l.join(" "),
        HeaderValue::Address(Address::List(l)) => l.iter().map(addr).collect::<Vec<_>>().join(", "),
        HeaderValue::Address(Address::Group(g)) => {
            g.iter().flat_map(|g| g.addresses.iter().map(addr)).collect::<Vec<_>>().join(", ")
        }
        _ => String::new(),
    }
}

/// Lower-cased decoded text of the body parts (and the raw body), for SEARCH BODY/TEXT.
pub fn body_text(msg: &Message<'_>) -> String {
    let mut text = String::new();
    collect_text(msg, &mut text, 0);
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(text_bytes(msg)));
    text.to_lowercase()
}

fn collect_text(msg: &Message<'_>, text: &mut String, depth: usize) {
    for part in &msg.parts {
        match &part.body {
            PartType::Text(t) | PartType::Html(t) => {
                text.push_str(t);
                text.push('\n');
            }
            PartType::Message(m) if depth < 10 => collect_text(m, text, depth + 1),
            _ => {}
        }
    }
}

/// The Date header as (year, month, day), for SENTBEFORE/SENTON/SENTSINCE.
pub fn sent_date(msg: &Message<'_>) -> Option<(u16, u8, u8)> {
    msg.date().map(|d| (d.year, d.month, d.day))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NESTED: &[u8] = b"From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.org>\r\n\
To: Max <max@acme.example>, team: a@x.example, b@y.example;\r\n\
Subject: =?UTF-8?B?R3LDvMOfZQ==?= and more\r\n\
Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\
Message-ID: <m1@example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
preamble\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=\"inner\"\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Hallo Welt=0A\r\n\
zweite Zeile\r\n\
--inner\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>Hallo</p>\r\n\
--inner--\r\n\
--outer\r\n\
Content-Type: message/rfc822\r\n\
Content-Disposition: attachment; filename=\"fwd.eml\"\r\n\
\r\n\
From: Anna <anna@example.net>\r\n\
Subject: inner\r\n\
\r\n\
inner body\r\n\
--outer\r\n\
Content-Type: application/pdf; name=\"a.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0=\r\n\
--outer--\r\n";

    fn render(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn envelope_keeps_encoded_words_and_splits_groups() {
        let msg = parse(NESTED).expect("parse");
        let env = render(|o| envelope(o, &msg));
        assert!(
            env.starts_with("(\"Tue, 14 Nov 2023 22:13:20 +0000\" \"=?UTF-8?B?R3LDvMOfZQ==?= and more\" "),
            "{env}"
        );
        // The decoded display name is sent as a UTF-8 encoded word.
        assert!(env.contains("((\"=?utf-8?b?SsO8cmdlbiBNw7xsbGVy?=\" NIL \"juergen\" \"example.org\"))"), "{env}");
        // Group syntax: start marker, members, end marker.
        assert!(
            env.contains("((\"Max\" NIL \"max\" \"acme.example\")(NIL NIL \"team\" NIL)(NIL NIL \"a\" \"x.example\")(NIL NIL \"b\" \"y.example\")(NIL NIL NIL NIL))"),
            "{env}"
        );
        assert!(env.ends_with(" NIL \"<m1@example.org>\")"), "{env}");
    }

    #[test]
    fn bodystructure_of_nested_multipart_and_enclosed_message() {
        let msg = parse(NESTED).expect("parse");
        let bs = render(|o| body_structure(o, &msg, true));
        assert!(bs.starts_with("(((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 27 2 NIL NIL NIL NIL)(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 12 1 NIL NIL NIL NIL) \"alternative\" (\"boundary\" \"inner\") NIL NIL NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" "), "{bs}");
        assert!(bs.contains("(\"attachment\" (\"filename\" \"fwd.eml\"))"), "{bs}");
        assert!(
            bs.contains("(\"application\" \"pdf\" (\"name\" \"a.pdf\") NIL NIL \"base64\" 8 NIL NIL NIL NIL)"),
            "{bs}"
        );
        assert!(bs.ends_with(" \"mixed\" (\"boundary\" \"outer\") NIL NIL NIL)"), "{bs}");
        let body = render(|o| body_structure(o, &msg, false));
        assert!(!body.contains("boundary"), "{body}");
    }

    #[test]
    fn sections_by_part_number() {
        let msg = parse(NESTED).expect("parse");
        let text = |path: &[u32]| String::from_utf8(locate(&msg, path).expect("part").body().to_vec()).expect("utf8");
        assert_eq!(text(&[1, 1]), "Hallo Welt=0A\r\nzweite Zeile");
        assert_eq!(text(&[1, 2]), "<p>Hallo</p>");
        assert_eq!(text(&[3]), "JVBERi0=");
        assert!(text(&[2]).starts_with("From: Anna <anna@example.net>\r\n"));
        let enclosed = locate(&msg, &[2]).and_then(|l| l.enclosed()).expect("message/rfc822");
        assert_eq!(header_bytes(enclosed), b"From: Anna <anna@example.net>\r\nSubject: inner\r\n\r\n");
        assert!(text_bytes(enclosed).starts_with(b"inner body"));
        // Part 2.1 is the enclosed message's body.
        assert!(text(&[2, 1]).starts_with("inner body"));
        assert!(locate(&msg, &[4]).is_none());
        assert!(locate(&msg, &[1, 1, 1]).is_none());
        let mime = String::from_utf8_lossy(locate(&msg, &[3]).expect("part").mime()).into_owned();
        assert!(mime.starts_with("Content-Type: application/pdf") && mime.ends_with("\r\n\r\n"), "{mime:?}");
        let fields = header_fields(&msg, &[b"subject".to_vec(), b"TO".to_vec()], false);
        assert_eq!(
            fields,
            b"To: Max <max@acme.example>, team: a@x.example, b@y.example;\r\nSubject: =?UTF-8?B?R3LDvMOfZQ==?= and more\r\n\r\n"
        );
    }

    #[test]
    fn single_part_message_has_part_one() {
        let msg = parse(b"Subject: x\r\n\r\nhello\r\n").expect("parse");
        assert_eq!(locate(&msg, &[1]).expect("part 1").body(), b"hello\r\n");
        assert!(locate(&msg, &[2]).is_none());
        let bs = render(|o| body_structure(o, &msg, false));
        assert_eq!(bs, "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 1)");
        assert!(header_texts(&msg, "subject")[0].contains('x'));
    }
}
