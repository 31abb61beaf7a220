//! Multi-line responses (RFC 1939 §3): every line ends in CRLF, a line starting with "."
//! gets another "." in front, and ".CRLF" ends the response.
//!
//! [`Stuffer`] works chunk by chunk, so RETR can stream a large message from its file
//! with a fixed buffer. Bare LF line ends (not produced by our SMTP server, but possible
//! in imported mail) are sent as CRLF.

use memchr::memchr;

/// Dot-stuffs a message fed in chunks.
#[derive(Debug, Clone)]
pub struct Stuffer {
    /// The next byte starts a line.
    line_start: bool,
    /// The last byte fed was CR.
    after_cr: bool,
}

impl Default for Stuffer {
    fn default() -> Self {
        Self { line_start: true, after_cr: false }
    }
}

impl Stuffer {
    /// Appends `input`, stuffed, to `out`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + 16);
        while !input.is_empty() {
            if self.line_start && input[0] == b'.' {
                out.push(b'.');
            }
            match memchr(b'\n', input) {
                Some(i) => {
                    let line = &input[..i];
                    out.extend_from_slice(line);
                    let had_cr = match line.last() {
                        Some(&b) => b == b'\r',
                        None => self.after_cr,
                    };
                    if !had_cr {
                        out.push(b'\r');
                    }
                    out.push(b'\n');
                    self.line_start = true;
                    self.after_cr = false;
                    input = &input[i + 1..];
                }
                None => {
                    out.extend_from_slice(input);
                    self.line_start = false;
                    self.after_cr = input.last() == Some(&b'\r');
                    input = &[];
                }
            }
        }
    }

    /// Ends the response: completes an unfinished last line and adds ".CRLF".
    pub fn finish(self, out: &mut Vec<u8>) {
        if !self.line_start {
            if !self.after_cr {
                out.push(b'\r');
            }
            out.push(b'\n');
        }
        out.extend_from_slice(b".\r\n");
    }
}

/// The part of a message TOP sends (RFC 1939 §7): the header, the blank line, and the
/// first `lines` lines of the body, found chunk by chunk so that TOP of a large message
/// streams like RETR.
#[derive(Debug, Clone)]
pub struct TopCut {
    in_header: bool,
    /// Body lines still to send.
    left: u64,
    /// Bytes of the current line so far, and whether they are exactly one CR.
    line_len: usize,
    line_is_cr: bool,
    done: bool,
}

impl TopCut {
    pub fn new(lines: u64) -> Self {
        Self { in_header: true, left: lines, line_len: 0, line_is_cr: false, done: false }
    }

    /// How many bytes of `chunk` (the next bytes of the message) belong to the answer.
    pub fn take(&mut self, chunk: &[u8]) -> usize {
        let mut pos = 0;
        while !self.done && pos < chunk.len() {
            if !self.in_header && self.left == 0 {
                self.done = true;
                break;
            }
            let Some(i) = memchr(b'\n', &chunk[pos..]) else {
                let part = &chunk[pos..];
                self.line_is_cr = self.line_len + part.len() == 1 && part == b"\r";
                self.line_len += part.len();
                return chunk.len();
            };
            let part = &chunk[pos..pos + i];
            let empty = match self.line_len + part.len() {
                0 => true,
                1 => part == b"\r" || (part.is_empty() && self.line_is_cr),
                _ => false,
            };
            pos += i + 1;
            (self.line_len, self.line_is_cr) = (0, false);
            if self.in_header {
                // The header ends at the first empty line.
                self.in_header = !empty;
            } else {
                self.left -= 1;
            }
        }
        if !self.in_header && self.left == 0 {
            self.done = true;
        }
        pos
    }

    /// Whether the answer is complete (nothing more of the message belongs to it).
    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// [`TopCut`] over a whole message.
pub fn top(message: &[u8], lines: u64) -> &[u8] {
    let n = TopCut::new(lines).take(message);
    &message[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuff_in_chunks(input: &[u8], chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut s = Stuffer::default();
        for c in input.chunks(chunk) {
            s.feed(c, &mut out);
        }
        s.finish(&mut out);
        out
    }

    #[test]
    fn dots_at_line_start_are_doubled() {
        let msg = b".hidden\r\nline\r\n..two\r\n.\r\nend.\r\n";
        let want = b"..hidden\r\nline\r\n...two\r\n..\r\nend.\r\n.\r\n".to_vec();
        for chunk in 1..=msg.len() {
            assert_eq!(stuff_in_chunks(msg, chunk), want, "chunk size {chunk}");
        }
    }

    #[test]
    fn unfinished_last_line_and_bare_lf() {
        assert_eq!(stuff_in_chunks(b"a\nb", 100), b"a\r\nb\r\n.\r\n");
        for chunk in 1..5 {
            assert_eq!(stuff_in_chunks(b"a\r\n\n.b\r", chunk), b"a\r\n\r\n..b\r\n.\r\n", "chunk {chunk}");
        }
        assert_eq!(stuff_in_chunks(b"", 1), b".\r\n");
    }

    #[test]
    fn top_sends_header_and_some_body_lines() {
        let msg = b"Subject: x\r\nFrom: a\r\n\r\none\r\ntwo\r\nthree\r\n";
        assert_eq!(top(msg, 0), b"Subject: x\r\nFrom: a\r\n\r\n");
        assert_eq!(top(msg, 2), b"Subject: x\r\nFrom: a\r\n\r\none\r\ntwo\r\n");
        assert_eq!(top(msg, 99), msg);
        assert_eq!(top(b"Subject: no body", 3), b"Subject: no body");
        assert_eq!(top(b"A: b\n\nx\ny\n", 1), b"A: b\n\nx\n");
    }

    #[test]
    fn top_cuts_the_same_whatever_the_chunks() {
        let msg = b"Subject: x\r\nFrom: a\r\n\r\none\r\n\r\nthree\r\nfour";
        for lines in 0..6 {
            let whole = top(msg, lines).to_vec();
            for size in 1..msg.len() {
                let mut cut = TopCut::new(lines);
                let mut got = Vec::new();
                for chunk in msg.chunks(size) {
                    let n = cut.take(chunk);
                    got.extend_from_slice(&chunk[..n]);
                    if cut.is_done() {
                        break;
                    }
                }
                assert_eq!(got, whole, "lines {lines}, chunks of {size}");
            }
        }
    }
}
