//! Header fields the servers add to a message: the `Received:` trace field (RFC 5321
//! §4.4), `Return-Path:` at final delivery, and the MSA's completions (RFC 6409 §8);
//! plus removing forged `Authentication-Results:` fields that claim to come from us
//! (RFC 8601 §5).

use std::fmt::Write;

use postfach_types::UnixTime;

/// The `with` protocol keyword of a `Received:` field (RFC 3848, RFC 6531 §3.7.3).
pub fn protocol(esmtp: bool, tls: bool, authenticated: bool, utf8: bool) -> &'static str {
    match (esmtp, utf8, tls, authenticated) {
        (false, ..) => "SMTP",
        (true, false, false, false) => "ESMTP",
        (true, false, true, false) => "ESMTPS",
        (true, false, false, true) => "ESMTPA",
        (true, false, true, true) => "ESMTPSA",
        (true, true, false, false) => "UTF8SMTP",
        (true, true, true, false) => "UTF8SMTPS",
        (true, true, false, true) => "UTF8SMTPA",
        (true, true, true, true) => "UTF8SMTPSA",
    }
}

/// What a `Received:` field says about one transaction.
#[derive(Debug, Clone)]
pub struct Trace<'a> {
    pub helo: &'a str,
    pub remote_ip: std::net::IpAddr,
    pub hostname: &'a str,
    /// The node of a cluster that received it (`[cluster] node`), named in a comment after
    /// `by` (RFC 5321 §4.4 allows comments there).
    pub node: Option<&'a postfach_types::NodeName>,
    pub protocol: &'static str,
    /// `TLSv1.3` and the cipher suite, when encrypted.
    pub tls: Option<&'a postfach_types::TlsInfo>,
    pub id: &'a str,
    /// Named only when the message has exactly one recipient, so that one recipient never
    /// learns about the others.
    pub single_recipient: Option<&'a str>,
    pub at: UnixTime,
}

/// The `Received:` field, folded, ending in CRLF.
pub fn received(trace: &Trace<'_>) -> String {
    let mut field = format!("Received: from {} ([{}])\r\n\tby {}", clean(trace.helo), trace.remote_ip, trace.hostname);
    if let Some(node) = trace.node {
        // A node name has no character that could end the comment.
        let _ = write!(field, " (Postfach node {node})");
    }
    if let Some(tls) = trace.tls {
        let _ = write!(field, " (using {} with cipher {})", clean(&tls.version), clean(&tls.cipher));
    }
    let _ = write!(field, "\r\n\twith {} id {}", trace.protocol, trace.id);
    if let Some(rcpt) = trace.single_recipient {
        let _ = write!(field, "\r\n\tfor <{}>", clean(rcpt));
    }
    let _ = write!(field, ";\r\n\t{}\r\n", trace.at.rfc5322());
    field
}

/// `Return-Path:` as the final delivery adds it (RFC 5321 §4.4).
pub fn return_path(sender: Option<&str>) -> String {
    format!("Return-Path: <{}>\r\n", sender.map(clean).unwrap_or_default())
}

/// Text from the client made safe for a header field: printable, no line breaks, no
/// characters that end a comment or a field part, at most 255 characters.
pub fn clean(text: &str) -> String {
    text.chars().take(255).map(|c| if c.is_control() || "()<>;\\\"".contains(c) { '_' } else { c }).collect()
}

/// Where the header ends: the offset of the body (after the empty line), or the
/// message length when there is no body.
pub fn header_len(message: &[u8]) -> usize {
    let mut pos = 0;
    while pos < message.len() {
        let end = message[pos..].iter().position(|&b| b == b'\n').map_or(message.len(), |i| pos + i + 1);
        let line = &message[pos..end];
        if line == b"\r\n" || line == b"\n" {
            return end;
        }
        pos = end;
    }
    message.len()
}

/// Removes every `Authentication-Results:` field whose authserv-id is `authserv_id`:
/// only this server may write those (RFC 8601 §5). Everything else is kept byte for byte.
pub fn strip_forged_results(message: &[u8], authserv_id: &str) -> Option<Vec<u8>> {
    strip_fields(message, |name, value| {
        if !name.eq_ignore_ascii_case(b"authentication-results") {
            return false;
        }
        let value = String::from_utf8_lossy(value);
        let id = value.trim_start().split([';', ' ', '\t', '\r', '\n']).next().unwrap_or_default();
        id.eq_ignore_ascii_case(authserv_id)
    })
}

/// The spam fields this server writes (`X-Spam-Status`, `X-Spam-Score`) and their usual
/// companions (`X-Spam-Flag`, `X-Spam-Level`, `X-Spam`): a sender's own are removed so
/// that every such field a mailbox sees is ours.
pub fn strip_spam_fields(message: &[u8]) -> Option<Vec<u8>> {
    strip_fields(message, |name, _| {
        [&b"x-spam-status"[..], b"x-spam-score", b"x-spam-flag", b"x-spam-level", b"x-spam"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
    })
}

/// Removes the header fields for which `remove(name, value)` holds (`None`: none did).
/// Everything else is kept byte for byte.
fn strip_fields(message: &[u8], remove: impl Fn(&[u8], &[u8]) -> bool) -> Option<Vec<u8>> {
    let header_end = header_len(message);
    let mut fields: Vec<(usize, usize)> = Vec::new();
    let mut pos = 0;
    while pos < header_end {
        let end = message[pos..header_end].iter().position(|&b| b == b'\n').map_or(header_end, |i| pos + i + 1);
        let line = &message[pos..end];
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            if let Some(last) = fields.last_mut() {
                last.1 = end;
            }
        } else if line != b"\r\n" && line != b"\n" {
            fields.push((pos, end));
        }
        pos = end;
    }
    let removed = |&(start, end): &(usize, usize)| {
        let field = &message[start..end];
        let Some(colon) = field.iter().position(|&b| b == b':') else { return false };
        remove(field[..colon].trim_ascii(), &field[colon + 1..])
    };
    if !fields.iter().any(removed) {
        return None;
    }
    let mut out = Vec::with_capacity(message.len());
    let mut copied = 0;
    for field in fields.iter().filter(|f| removed(f)) {
        out.extend_from_slice(&message[copied..field.0]);
        copied = field.1;
    }
    out.extend_from_slice(&message[copied..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_follow_rfc_3848_and_6531() {
        assert_eq!(protocol(false, true, true, true), "SMTP");
        assert_eq!(protocol(true, false, false, false), "ESMTP");
        assert_eq!(protocol(true, true, false, false), "ESMTPS");
        assert_eq!(protocol(true, true, true, false), "ESMTPSA");
        assert_eq!(protocol(true, false, true, false), "ESMTPA");
        assert_eq!(protocol(true, true, true, true), "UTF8SMTPSA");
    }

    #[test]
    fn received_field() {
        let tls = postfach_types::TlsInfo { version: "TLSv1.3".into(), cipher: "TLS13_AES_256_GCM_SHA384".into() };
        let field = received(&Trace {
            helo: "client.example\r\nX-Evil: 1",
            remote_ip: "192.0.2.7".parse().expect("ip"),
            hostname: "mx.postfach.test",
            node: Some(&postfach_types::NodeName::parse("node-a").expect("node")),
            protocol: "ESMTPS",
            tls: Some(&tls),
            id: "0123abcd",
            single_recipient: Some("max@acme.example"),
            at: UnixTime(0),
        });
        assert_eq!(
            field,
            "Received: from client.example__X-Evil: 1 ([192.0.2.7])\r\n\tby mx.postfach.test (Postfach node node-a) \
             (using TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384)\r\n\twith ESMTPS id 0123abcd\r\n\t\
             for <max@acme.example>;\r\n\tThu, 1 Jan 1970 00:00:00 +0000\r\n"
        );
        assert_eq!(return_path(None), "Return-Path: <>\r\n");
        assert_eq!(return_path(Some("a@b.example")), "Return-Path: <a@b.example>\r\n");
    }

    #[test]
    fn header_length() {
        assert_eq!(header_len(b"A: b\r\n\r\nbody"), 8);
        assert_eq!(header_len(b"A: b\r\n c\r\n\r\n"), 12);
        assert_eq!(header_len(b"A: b\r\n"), 6);
    }

    #[test]
    fn forged_results_are_removed() {
        let message = b"Authentication-Results: mx.postfach.test;\r\n\tspf=pass smtp.mailfrom=a@b.example\r\n\
            Authentication-Results: other.example; dkim=pass\r\nSubject: x\r\n\
            authentication-results:MX.postfach.test; none\r\n\r\n\
            Authentication-Results: mx.postfach.test; in the body\r\n";
        let cleaned = strip_forged_results(message, "mx.postfach.test").expect("forged fields");
        assert_eq!(
            String::from_utf8(cleaned).expect("utf-8"),
            "Authentication-Results: other.example; dkim=pass\r\nSubject: x\r\n\r\n\
             Authentication-Results: mx.postfach.test; in the body\r\n"
        );
        assert_eq!(strip_forged_results(b"Subject: x\r\n\r\nbody", "mx.postfach.test"), None);
    }

    #[test]
    fn senders_spam_fields_are_removed() {
        let message = b"X-Spam-Status: No, score=-100\r\nSubject: x\r\nx-spam-score:\r\n -100\r\nX-Spam-Flag: NO\r\n\
            X-Spamming: kept\r\n\r\nX-Spam-Status: in the body\r\n";
        let cleaned = strip_spam_fields(message).expect("sender's spam fields");
        assert_eq!(
            String::from_utf8(cleaned).expect("utf-8"),
            "Subject: x\r\nX-Spamming: kept\r\n\r\nX-Spam-Status: in the body\r\n"
        );
        assert_eq!(strip_spam_fields(b"Subject: x\r\n\r\nbody"), None);
    }
}
