//! The server's side of RFC 5804 §4: responses (`OK`, `NO`, `BYE` with an optional
//! response code and a human-readable string) and strings.

use postfach_net::Conn;

/// Longest text sent as a quoted string; longer texts go as a literal.
const MAX_QUOTED: usize = 1024;

/// `text` as a ManageSieve string: quoted with `"` and `\` escaped (control characters
/// become spaces, so a line can never be ended early), or a literal `{N}` when long.
pub fn quoted(text: &str) -> String {
    let clean: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if clean.len() > MAX_QUOTED {
        return format!("{{{}}}\r\n{clean}", clean.len());
    }
    let mut out = String::with_capacity(clean.len() + 2);
    out.push('"');
    for c in clean.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Queues a literal string (RFC 5804 §4 `literal-s2c`) and its line end.
pub fn literal(conn: &mut Conn, bytes: &[u8]) {
    conn.queue(format!("{{{}}}\r\n", bytes.len()).as_bytes());
    conn.queue(bytes);
    conn.queue(b"\r\n");
}

/// How a command ended (RFC 5804 §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bye,
}

/// Queues a response: status, optional response code (already formatted, without
/// parentheses) and text.
pub fn respond(conn: &mut Conn, status: Status, code: Option<&str>, text: &str) {
    let status = match status {
        Status::Ok => "OK",
        Status::No => "NO",
        Status::Bye => "BYE",
    };
    let code = code.map(|c| format!(" ({c})")).unwrap_or_default();
    conn.queue(format!("{status}{code} {}\r\n", quoted(text)).as_bytes());
}

pub fn ok(conn: &mut Conn, text: &str) {
    respond(conn, Status::Ok, None, text);
}

pub fn no(conn: &mut Conn, code: Option<&str>, text: &str) {
    respond(conn, Status::No, code, text);
}

pub fn bye(conn: &mut Conn, code: Option<&str>, text: &str) {
    respond(conn, Status::Bye, code, text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings_escape_and_never_break_the_line() {
        assert_eq!(quoted("plain"), "\"plain\"");
        assert_eq!(quoted("a \"b\" c\\d"), r#""a \"b\" c\\d""#);
        assert_eq!(quoted("line 1\r\nline 2"), "\"line 1  line 2\"");
        let long = "x".repeat(MAX_QUOTED + 1);
        assert_eq!(quoted(&long), format!("{{{}}}\r\n{long}", long.len()));
    }
}
