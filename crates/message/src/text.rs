//! Decoded content: the text of text/* parts for SEARCH BODY/TEXT (transfer decoding, RFC
//! 2045 §6.7 quoted-printable and §6.8 base64, then the charset, RFC 2046 §4.1.2, to UTF-8
//! with mail-parser's decoders; bounded by `Limits::max_text`), and the transfer-decoded
//! bytes of any leaf for IMAP `BINARY[section]` (RFC 3516). Decoding is lenient: broken
//! escapes stay literal, stray bytes in base64 are skipped.

use std::borrow::Cow;

use mail_parser::decoders::{base64::base64_decode, charsets::map::charset_decoder};

use crate::{Message, PartKind};

/// A Content-Transfer-Encoding this crate does not know (RFC 3516 §4.3 `UNKNOWN-CTE`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown content transfer encoding {0}")]
pub struct UnknownEncoding(pub String);

impl<'a> Message<'a> {
    /// The part's body with its transfer encoding undone (RFC 3516 §4.2); 7bit, 8bit and
    /// binary bodies come back as they are.
    pub fn decoded_body(&self, part: usize) -> Result<Cow<'a, [u8]>, UnknownEncoding> {
        let Some(p) = self.parts.get(part) else { return Ok(Cow::Borrowed(&[])) };
        let body = self.body_bytes(part);
        match p.encoding.as_str() {
            "7bit" | "8bit" | "binary" | "" => Ok(Cow::Borrowed(body)),
            "base64" => Ok(Cow::Owned(base64(body))),
            "quoted-printable" => Ok(Cow::Owned(quoted_printable(body))),
            other => Err(UnknownEncoding(other.to_string())),
        }
    }

    /// The decoded text of a text/* leaf, at most `max_text` bytes; `None` for other parts.
    pub fn decoded_text(&self, part: usize) -> Option<String> {
        let p = self.parts.get(part)?;
        if p.content_type.ctype != "text" || p.kind != PartKind::Leaf {
            return None;
        }
        let max = self.limits().max_text;
        let body = self.body_bytes(part);
        let body = &body[..body.len().min(max)];
        let bytes = match p.encoding.as_str() {
            "base64" => base64(body),
            "quoted-printable" => quoted_printable(body),
            _ => body.to_vec(),
        };
        let decoder = p.content_type.param("charset").and_then(|c| charset_decoder(c.trim().as_bytes()));
        let mut text = match decoder {
            Some(decode) => decode(&bytes),
            None => String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        };
        if text.len() > max {
            let mut cut = max;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        Some(text)
    }
}

/// RFC 2045 §6.8, skipping anything outside the alphabet (line breaks, stray bytes).
fn base64(body: &[u8]) -> Vec<u8> {
    let clean: Vec<u8> = body.iter().copied().filter(|&b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)).collect();
    base64_decode(&clean).unwrap_or_default()
}

/// RFC 2045 §6.7: `=XX` escapes, soft line breaks (`=` then optional padding and a line
/// break); an `=` that is neither stays as it is.
fn quoted_printable(body: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        i += 1;
        if b != b'=' {
            out.push(b);
            continue;
        }
        let rest = &body[i..];
        if let [h, l, ..] = rest
            && let (Some(h), Some(l)) = (hex(*h), hex(*l))
        {
            out.push((h * 16 + l) as u8);
            i += 2;
            continue;
        }
        let pad = rest.iter().take_while(|&&c| c == b' ' || c == b'\t' || c == b'\r').count();
        match rest.get(pad) {
            Some(b'\n') => i += pad + 1,
            None => i += pad,
            Some(_) => out.push(b'='),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::quoted_printable;
    use crate::Message;

    #[test]
    fn decoded_bodies_for_binary() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC/w==\r\n--b\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n--b--\r\n";
        let m = Message::parse(raw);
        let first = m.locate(&[1]).expect("part 1");
        assert_eq!(m.decoded_body(first).expect("base64").as_ref(), &[0, 1, 2, 255]);
        let second = m.locate(&[2]).expect("part 2");
        assert_eq!(m.decoded_body(second).expect_err("unknown").0, "x-uuencode");
    }

    #[test]
    fn quoted_printable_is_lenient() {
        assert_eq!(quoted_printable(b"a=3Db=\r\nc= \r\nd"), b"a=bcd");
        assert_eq!(quoted_printable(b"100% =zz ="), b"100% =zz ");
        assert_eq!(quoted_printable(b"=C3=BC=c3=bc"), "üü".as_bytes());
    }
}
