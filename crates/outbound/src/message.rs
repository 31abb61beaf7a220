//! Small, pure edits of a submitted message before it is signed and queued: CRLF line
//! endings, the `Date:` and `Message-ID:` a submission server may add (RFC 6409 §8.2,
//! §8.3), the header section, and RFC 5322 dates.

use postfach_types::{DomainName, UnixTime};

/// The message as it is queued: every bare LF and bare CR written as CRLF (the one rule,
/// [`postfach_message::crlf_line_endings`]), and a final line ending, so the DKIM body
/// hash and the DATA terminator see the same last line.
pub fn normalize_line_endings(message: &[u8]) -> Vec<u8> {
    let mut out = postfach_message::crlf_line_endings(message).into_owned();
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The header section, without the empty line that ends it, as the one message view
/// delimits it.
pub fn header_section(message: &[u8]) -> &[u8] {
    let header = postfach_message::Message::parse(message).header_bytes();
    header.strip_suffix(b"\r\n").filter(|h| h.is_empty() || h.ends_with(b"\r\n")).unwrap_or(header)
}

/// Whether the header section has a field called `name` (case-insensitive), as the one
/// message view reads it.
pub fn has_header(message: &[u8], name: &str) -> bool {
    postfach_message::Message::parse(message).top().has(name)
}

/// Adds `Date:` and `Message-ID:` when the client left them out.
pub fn complete_headers(message: Vec<u8>, hostname: &DomainName, now: UnixTime) -> Vec<u8> {
    let mut added = String::new();
    if !has_header(&message, "Date") {
        added.push_str(&format!("Date: {}\r\n", now.rfc5322()));
    }
    if !has_header(&message, "Message-ID") {
        added.push_str(&format!("Message-ID: {}\r\n", message_id(hostname)));
    }
    if added.is_empty() {
        return message;
    }
    let mut out = added.into_bytes();
    out.extend_from_slice(&message);
    out
}

/// A new, globally unique message id (RFC 5322 §3.6.4) at `hostname`.
pub fn message_id(hostname: &DomainName) -> String {
    let bytes: [u8; 16] = rand::random();
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("<{token}@{hostname}>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_endings_become_crlf() {
        assert_eq!(normalize_line_endings(b"a\nb\r\nc"), b"a\r\nb\r\nc\r\n");
        assert_eq!(normalize_line_endings(b"a\rb\r"), b"a\r\nb\r\n");
        assert_eq!(normalize_line_endings(b"a\r\n"), b"a\r\n");
    }

    #[test]
    fn headers_are_found_and_completed() {
        let message = b"From: a@b.example\r\nSubject: hi\r\n\r\nDate: in the body\r\n".to_vec();
        assert!(has_header(&message, "from") && has_header(&message, "SUBJECT"));
        assert!(!has_header(&message, "Date"), "a body line is no header");
        assert_eq!(header_section(&message), b"From: a@b.example\r\nSubject: hi\r\n");
        assert_eq!(header_section(b"\r\nbody\r\n"), b"");
        assert_eq!(header_section(b"Subject: only a header\r\n"), b"Subject: only a header\r\n");
        let host = DomainName::parse("mail.postfach.test").expect("name");
        let done = complete_headers(message, &host, UnixTime(1_795_752_484));
        let text = String::from_utf8(done).expect("utf-8");
        assert!(text.starts_with("Date: Fri, 27 Nov 2026 04:08:04 +0000\r\nMessage-ID: <"), "{text}");
        assert!(text.contains("@mail.postfach.test>\r\nFrom: a@b.example"), "{text}");
        let again = complete_headers(text.clone().into_bytes(), &host, UnixTime(0));
        assert_eq!(again, text.into_bytes(), "nothing added twice");
    }
}
