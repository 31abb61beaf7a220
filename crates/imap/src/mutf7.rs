//! Modified UTF-7 for mailbox names (RFC 3501 §5.1.3), what IMAP4rev1 clients send and
//! expect. Folder names are kept as UTF-8; sessions that enabled IMAP4rev2 or UTF8=ACCEPT
//! use UTF-8 on the wire (RFC 9051 §5.1, RFC 6855 §3), the others get names converted here.
//!
//! Printable US-ASCII other than `&` stands for itself, `&` is `&-`, everything else is
//! UTF-16BE in base64 with `,` for `/` and no padding, between `&` and `-`.

use base64::Engine;
use base64::alphabet::Alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

fn engine() -> GeneralPurpose {
    // The modified alphabet is valid by construction; fall back to the standard one.
    let alphabet = Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")
        .unwrap_or(base64::alphabet::STANDARD);
    GeneralPurpose::new(
        &alphabet,
        GeneralPurposeConfig::new().with_encode_padding(false).with_decode_padding_mode(DecodePaddingMode::RequireNone),
    )
}

/// The modified UTF-7 form of a UTF-8 name.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |out: &mut String, pending: &mut Vec<u16>| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&engine().encode(bytes));
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut out, &mut pending);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut out, &mut pending);
    out
}

/// The UTF-8 name for a modified UTF-7 one; `None` when it is not valid modified UTF-7.
pub fn decode(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(amp) = rest.find('&') {
        let (plain, tail) = rest.split_at(amp);
        if !plain.chars().all(|c| (' '..='~').contains(&c)) {
            return None;
        }
        out.push_str(plain);
        let end = tail.find('-')?;
        let encoded = &tail[1..end];
        if encoded.is_empty() {
            out.push('&');
        } else {
            let bytes = engine().decode(encoded).ok()?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes.chunks(2).map(|p| u16::from_be_bytes([p[0], p[1]])).collect();
            let text = String::from_utf16(&units).ok()?;
            // Printable ASCII must not be encoded (RFC 3501 §5.1.3).
            if text.chars().any(|c| (' '..='~').contains(&c)) {
                return None;
            }
            out.push_str(&text);
        }
        rest = &tail[end + 1..];
    }
    if !rest.chars().all(|c| (' '..='~').contains(&c)) {
        return None;
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3501_examples_and_round_trips() {
        // RFC 3501 §5.1.3: "~peter/mail/台北/日本語".
        assert_eq!(encode("~peter/mail/台北/日本語"), "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
        assert_eq!(decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-").as_deref(), Some("~peter/mail/台北/日本語"));
        assert_eq!(encode("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(encode("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(decode("Tom &- Jerry").as_deref(), Some("Tom & Jerry"));
        for name in ["INBOX", "Gesendete Objekte", "Ärger/Öl", "😀 emoji", "a&b&&c"] {
            assert_eq!(decode(&encode(name)).as_deref(), Some(name), "{name}");
        }
    }

    #[test]
    fn invalid_forms_are_refused() {
        assert_eq!(decode("&U,BTFw"), None, "no closing dash");
        assert_eq!(decode("&AGE-"), None, "encoded printable ASCII");
        assert_eq!(decode("Grüße"), None, "8-bit is not modified UTF-7");
        assert_eq!(decode("&ZeVn-"), None, "odd number of bytes");
    }
}
