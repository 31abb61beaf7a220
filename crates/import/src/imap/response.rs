//! The parse of one server response as the import reads it: the wire bytes of a response
//! (its lines and the literals they announce, as [`super::client`] read them, already
//! bounded) into tokens. Nesting is bounded by [`MAX_DEPTH`]; nothing here allocates more
//! than the response it was given.

/// Deepest parenthesised nesting accepted (a FETCH response needs two).
const MAX_DEPTH: usize = 8;

/// One token of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// An atom, a number, `NIL`, a flag (`\Seen`) or a section (`BODY[]`).
    Atom(Vec<u8>),
    /// A quoted string or a literal.
    String(Vec<u8>),
    List(Vec<Token>),
}

impl Token {
    pub(crate) fn atom(&self) -> Option<&[u8]> {
        match self {
            Token::Atom(a) => Some(a),
            _ => None,
        }
    }

    /// An atom, quoted string or literal as bytes (`NIL` is an atom: the caller decides).
    pub(crate) fn bytes(&self) -> Option<&[u8]> {
        match self {
            Token::Atom(a) | Token::String(a) => Some(a),
            Token::List(_) => None,
        }
    }

    pub(crate) fn number(&self) -> Option<u64> {
        let atom = self.atom()?;
        if atom.is_empty() || atom.len() > 20 || !atom.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(atom).ok()?.parse().ok()
    }

    pub(crate) fn list(&self) -> Option<&[Token]> {
        match self {
            Token::List(items) => Some(items),
            _ => None,
        }
    }

    pub(crate) fn is_atom(&self, word: &str) -> bool {
        self.atom().is_some_and(|a| a.eq_ignore_ascii_case(word.as_bytes()))
    }
}

/// The tokens of a whole response (its final CRLF included), or `None` when it is not
/// IMAP syntax.
pub(crate) fn tokens(wire: &[u8]) -> Option<Vec<Token>> {
    let mut parser = Parser { wire, at: 0 };
    let items = parser.sequence(0, None)?;
    (parser.rest() == b"\r\n" || parser.rest() == b"\n").then_some(items)
}

/// The text of a status response after its status word, split into the response code (the
/// part between `[` and `]`, if any) and the human-readable rest.
pub(crate) fn status_text(after_status: &[u8]) -> (Option<&[u8]>, &[u8]) {
    let text = trim_line_end(after_status);
    let text = text.strip_prefix(b" ").unwrap_or(text);
    if let Some(code) = text.strip_prefix(b"[")
        && let Some(end) = code.iter().position(|&b| b == b']')
    {
        let rest = &code[end + 1..];
        return (Some(&code[..end]), rest.strip_prefix(b" ").unwrap_or(rest));
    }
    (None, text)
}

pub(crate) fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A server's text made fit to show a customer: printable characters only, at most 200.
pub(crate) fn shown(text: &[u8]) -> String {
    String::from_utf8_lossy(trim_line_end(text)).chars().filter(|c| !c.is_control()).take(200).collect()
}

struct Parser<'a> {
    wire: &'a [u8],
    at: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a [u8] {
        &self.wire[self.at..]
    }

    fn peek(&self) -> Option<u8> {
        self.wire.get(self.at).copied()
    }

    /// Tokens separated by spaces until `close` (or the line's end at the top).
    fn sequence(&mut self, depth: usize, close: Option<u8>) -> Option<Vec<Token>> {
        let mut items = Vec::new();
        loop {
            while self.peek() == Some(b' ') {
                self.at += 1;
            }
            match (self.peek(), close) {
                (Some(b')'), Some(b')')) => {
                    self.at += 1;
                    return Some(items);
                }
                (None | Some(b'\r' | b'\n'), None) => return Some(items),
                (None | Some(b'\r' | b'\n' | b')'), _) => return None,
                _ => items.push(self.token(depth)?),
            }
        }
    }

    fn token(&mut self, depth: usize) -> Option<Token> {
        match self.peek()? {
            b'(' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.at += 1;
                Some(Token::List(self.sequence(depth + 1, Some(b')'))?))
            }
            b'"' => self.quoted(),
            b'{' => self.literal(),
            _ => self.atom(),
        }
    }

    fn quoted(&mut self) -> Option<Token> {
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let b = self.peek()?;
            self.at += 1;
            match b {
                b'"' => return Some(Token::String(out)),
                b'\\' => {
                    out.push(self.peek()?);
                    self.at += 1;
                }
                b'\r' | b'\n' => return None,
                b => out.push(b),
            }
        }
    }

    fn literal(&mut self) -> Option<Token> {
        let rest = self.rest();
        let end = rest.iter().position(|&b| b == b'}')?;
        let digits = rest[1..end].strip_suffix(b"+").unwrap_or(&rest[1..end]);
        if digits.is_empty() || digits.len() > 12 || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let length: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
        let after = &rest[end + 1..];
        let skip = if after.starts_with(b"\r\n") {
            2
        } else if after.starts_with(b"\n") {
            1
        } else {
            return None;
        };
        let start = self.at + end + 1 + skip;
        let stop = start.checked_add(length)?;
        let bytes = self.wire.get(start..stop)?.to_vec();
        self.at = stop;
        Some(Token::String(bytes))
    }

    /// An atom; a `[...]` inside it (a section such as `BODY[HEADER.FIELDS (X)]`) is part
    /// of it, spaces and parentheses included.
    fn atom(&mut self) -> Option<Token> {
        let start = self.at;
        let mut in_brackets = false;
        while let Some(b) = self.peek() {
            match b {
                b'[' => in_brackets = true,
                b']' => in_brackets = false,
                b'\r' | b'\n' => break,
                b' ' | b'(' | b')' | b'"' | b'{' if !in_brackets => break,
                _ => {}
            }
            self.at += 1;
        }
        (self.at > start).then(|| Token::Atom(self.wire[start..self.at].to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::{Token, status_text, tokens};

    fn atom(s: &str) -> Token {
        Token::Atom(s.as_bytes().to_vec())
    }

    #[test]
    fn fetch_with_literal() {
        let wire = b"* 3 FETCH (UID 7 FLAGS (\\Seen $Label1) INTERNALDATE \"13-Sep-2020 12:26:40 +0000\" RFC822.SIZE 5 BODY[] {5}\r\nhi\r\n!)\r\n";
        let t = tokens(wire).expect("parses");
        assert_eq!(t[0], atom("*"));
        assert_eq!(t[2], atom("FETCH"));
        let items = t[3].list().expect("list");
        assert_eq!(items[1].number(), Some(7));
        assert_eq!(items[3], Token::List(vec![atom("\\Seen"), atom("$Label1")]));
        assert_eq!(items[5], Token::String(b"13-Sep-2020 12:26:40 +0000".to_vec()));
        assert_eq!(items[8], atom("BODY[]"));
        assert_eq!(items[9], Token::String(b"hi\r\n!".to_vec()));
    }

    #[test]
    fn list_and_sections() {
        let t = tokens(b"* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent \\\"x\\\"\"\r\n").expect("parses");
        assert_eq!(t[4], Token::String(b"Sent \"x\"".to_vec()));
        let t = tokens(b"* 1 FETCH (BODY[HEADER.FIELDS (MESSAGE-ID)] NIL)\r\n").expect("parses");
        assert_eq!(t[3].list().expect("list")[0], atom("BODY[HEADER.FIELDS (MESSAGE-ID)]"));
    }

    #[test]
    fn refuses_what_is_not_imap() {
        assert_eq!(tokens(b"* 1 FETCH (UID 1\r\n"), None);
        assert_eq!(tokens(b"* 1 FETCH (BODY[] {10}\r\nshort)\r\n"), None);
        assert_eq!(tokens(b"* \"open\r\n"), None);
        let deep = format!("* {}{}\r\n", "(".repeat(20), ")".repeat(20));
        assert_eq!(tokens(deep.as_bytes()), None);
    }

    #[test]
    fn status_codes() {
        assert_eq!(status_text(b" [UIDVALIDITY 42] ok\r\n"), (Some(&b"UIDVALIDITY 42"[..]), &b"ok"[..]));
        assert_eq!(status_text(b" Logged in\r\n"), (None, &b"Logged in"[..]));
    }
}
