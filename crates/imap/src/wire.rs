//! Writing IMAP response syntax (RFC 3501 §4, §9): strings as atoms, quoted strings or
//! literals as their content requires, NIL, and dates.
//!
//! Responses are written straight into the session's output buffer: FETCH streams many
//! messages and building typed response values for each would only add copies.

use std::io::Write as _;

use postfach_types::UnixTime;

/// Appends `s` as an IMAP string: quoted when it is short 7-bit text without CR/LF,
/// a literal otherwise (RFC 3501 §4.3).
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() < 1024 && s.iter().all(|&b| b.is_ascii() && b != b'\r' && b != b'\n' && b != 0);
    if quotable {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        literal(out, s);
    }
}

/// Appends a literal `{n}\r\n<bytes>`.
pub fn literal(out: &mut Vec<u8>, s: &[u8]) {
    let _ = write!(out, "{{{}}}\r\n", s.len());
    out.extend_from_slice(s);
}

/// Appends an nstring: the string or NIL.
pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// Appends a mailbox name: an atom when it is one, a quoted string or literal otherwise.
pub fn astring(out: &mut Vec<u8>, s: &str) {
    let atom = !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_graphic() && !b"(){ %*\"\\]".contains(&b))
        && !s.eq_ignore_ascii_case("NIL");
    if atom { out.extend_from_slice(s.as_bytes()) } else { string(out, s.as_bytes()) }
}

/// A reply text as the wire allows it: one line, with control characters (a folder name
/// a client sent as a literal may hold CR LF) as spaces, and 7-bit for clients that did
/// not enable UTF-8 (RFC 3501 §9 `TEXT-CHAR`; RFC 9051 allows UTF-8).
pub fn response_text(text: &str, utf8: bool) -> String {
    text.chars()
        .map(|c| match c {
            c if c.is_control() => ' ',
            c if !c.is_ascii() && !utf8 => '?',
            c => c,
        })
        .collect()
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// `"dd-Mon-yyyy hh:mm:ss +0000"` (RFC 9051 date-time), in UTC.
pub fn date_time(t: UnixTime) -> String {
    use chrono::{Datelike, Timelike};
    let d = chrono::DateTime::from_timestamp(t.0, 0).unwrap_or_default();
    let month = MONTHS.get(d.month0() as usize).copied().unwrap_or("Jan");
    format!("\"{:02}-{month}-{:04} {:02}:{:02}:{:02} +0000\"", d.day(), d.year(), d.hour(), d.minute(), d.second())
}

/// Encodes a decoded header text for ENVELOPE/BODYSTRUCTURE: 7-bit text stays as it is,
/// anything else becomes an RFC 2047 encoded word so clients that expect 7-bit get it.
pub fn encode_word(s: &str) -> String {
    if s.is_ascii() {
        return s.to_string();
    }
    use base64::Engine;
    format!("=?utf-8?b?{}?=", base64::engine::general_purpose::STANDARD.encode(s.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_pick_the_right_form() {
        let mut out = Vec::new();
        string(&mut out, b"a \"b\" \\c");
        assert_eq!(out, b"\"a \\\"b\\\" \\\\c\"");
        out.clear();
        string(&mut out, "Grüße".as_bytes());
        assert_eq!(out, "{7}\r\nGrüße".as_bytes());
        out.clear();
        astring(&mut out, "INBOX");
        out.push(b' ');
        astring(&mut out, "My Folder");
        assert_eq!(out, b"INBOX \"My Folder\"");
    }

    #[test]
    fn response_texts_stay_one_line() {
        assert_eq!(response_text("NO there is no folder named a\r\nb x", false), "NO there is no folder named a  b x");
        assert_eq!(response_text("NO Grüße", false), "NO Gr??e");
        assert_eq!(response_text("NO Grüße", true), "NO Grüße");
    }

    #[test]
    fn dates_are_imap_date_times() {
        assert_eq!(date_time(UnixTime(0)), "\"01-Jan-1970 00:00:00 +0000\"");
        assert_eq!(date_time(UnixTime(1_700_000_000)), "\"14-Nov-2023 22:13:20 +0000\"");
    }
}
