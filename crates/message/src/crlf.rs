//! The one line-ending rule for message bytes: RFC 5322 §2.1 (and RFC 5321 §2.3.8) allow
//! CR and LF only together as CRLF, while clients and old stores send bare LFs and, rarely,
//! bare CRs. Every way a message is stored or queued (MX and submission intake, the
//! outbound queue) writes each bare LF and each bare CR as one CRLF, so the bytes that are
//! stored, signed and served are the same. Nothing else changes: no line ending is added
//! at the end, and a message that already has only CRLFs is returned as it is.

use std::borrow::Cow;

/// The message with every bare LF and every bare CR written as CRLF; CRLF pairs, all other
/// bytes and a missing final line ending stay as they are. Borrowed (no copy) when the
/// message has only CRLF line endings.
pub fn crlf_line_endings(message: &[u8]) -> Cow<'_, [u8]> {
    let Some(first) = (0..message.len()).find(|&i| is_bare(message, i)) else {
        return Cow::Borrowed(message);
    };
    let mut out = Vec::with_capacity(message.len() + message.len() / 32 + 2);
    out.extend_from_slice(&message[..first]);
    let mut i = first;
    while let Some(&b) = message.get(i) {
        match b {
            b'\r' if message.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

/// Whether the byte at `i` is a CR not followed by LF, or an LF not preceded by CR.
fn is_bare(message: &[u8], i: usize) -> bool {
    match message[i] {
        b'\n' => i == 0 || message[i - 1] != b'\r',
        b'\r' => message.get(i + 1) != Some(&b'\n'),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bare_line_ending_becomes_one_crlf() {
        let cases: &[(&[u8], &[u8])] = &[
            // bare LF
            (b"a\nb\n", b"a\r\nb\r\n"),
            (b"\n", b"\r\n"),
            (b"\n\n", b"\r\n\r\n"),
            // bare CR
            (b"a\rb\r", b"a\r\nb\r\n"),
            (b"\r", b"\r\n"),
            (b"\r\r", b"\r\n\r\n"),
            // LF CR is two line endings, not one
            (b"a\n\rb", b"a\r\n\r\nb"),
            // mixed
            (b"a\nb\r\nc\rd\n", b"a\r\nb\r\nc\r\nd\r\n"),
            (b"a\r\r\nb", b"a\r\n\r\nb"),
            (b"a\r\n\nb", b"a\r\n\r\nb"),
            // trailing: no line ending is added, a bare one at the end is completed
            (b"a\r\nb", b"a\r\nb"),
            (b"a\nb", b"a\r\nb"),
            (b"a\r", b"a\r\n"),
        ];
        for &(input, expected) in cases {
            assert_eq!(crlf_line_endings(input).as_ref(), expected, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn crlf_only_and_empty_messages_are_borrowed_unchanged() {
        for input in [&b""[..], b"a", b"a\r\n", b"a\r\nb\r\n", b"\r\n\r\n", b"x\r\n.\r\n\xff"] {
            assert!(matches!(crlf_line_endings(input), Cow::Borrowed(b) if b == input), "{input:?}");
        }
    }

    #[test]
    fn other_bytes_pass_through() {
        let input = b"Subject: Gr\xc3\xbc\xc3\x9fe\n\x00\t\xff\n";
        assert_eq!(crlf_line_endings(input).as_ref(), b"Subject: Gr\xc3\xbc\xc3\x9fe\r\n\x00\t\xff\r\n");
    }
}
