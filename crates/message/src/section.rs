//! Sections for IMAP `BODY[section]` (RFC 3501 §6.4.5, RFC 9051 §6.4.5): part numbers
//! and the bytes they address, exactly as stored.

use crate::{Message, PartKind};

impl<'a> Message<'a> {
    /// Follows part numbers: in a multipart the n-th child; a non-multipart message has
    /// only part 1, its body (the root part itself); after a message/rfc822 part the
    /// numbers continue inside the enclosed message. `None` for an empty path or a number
    /// that does not exist.
    pub fn locate(&self, path: &[u32]) -> Option<usize> {
        let (mut root, mut cur): (usize, Option<usize>) = (0, None);
        for &n in path {
            let n = usize::try_from(n).ok()?;
            if let Some(p) = cur
                && let PartKind::Message { enclosed } = self.parts.get(p)?.kind
            {
                root = enclosed;
                cur = None;
            }
            cur = Some(match &self.parts.get(cur.unwrap_or(root))?.kind {
                PartKind::Multipart { children } => *children.get(n.checked_sub(1)?)?,
                _ if cur.is_none() && n == 1 => root,
                _ => return None,
            });
        }
        cur
    }

    fn bytes(&self, range: std::ops::Range<usize>) -> &'a [u8] {
        self.raw.get(range).unwrap_or_default()
    }

    /// The part's body as stored (still transfer-encoded); for part 0 the message TEXT.
    pub fn body_bytes(&self, part: usize) -> &'a [u8] {
        self.parts.get(part).map_or(&[], |p| self.bytes(p.body.clone()))
    }

    /// The part's header block with its empty line (`section.MIME`; for part 0 and for
    /// enclosed roots this is the message HEADER).
    pub fn mime_header_bytes(&self, part: usize) -> &'a [u8] {
        self.parts.get(part).map_or(&[], |p| self.bytes(p.header.clone()))
    }

    /// The top-level message header (`BODY[HEADER]`).
    pub fn header_bytes(&self) -> &'a [u8] {
        self.mime_header_bytes(0)
    }

    /// The top-level message body (`BODY[TEXT]`).
    pub fn text_bytes(&self) -> &'a [u8] {
        self.body_bytes(0)
    }

    /// The root part of the message enclosed in a message/rfc822 part.
    pub fn enclosed(&self, part: usize) -> Option<usize> {
        match self.parts.get(part)?.kind {
            PartKind::Message { enclosed } => Some(enclosed),
            _ => None,
        }
    }

    /// The children of a multipart (empty for anything else).
    pub fn children(&self, part: usize) -> &[usize] {
        match self.parts.get(part).map(|p| &p.kind) {
            Some(PartKind::Multipart { children }) => children,
            _ => &[],
        }
    }

    /// `section.HEADER` of a message/rfc822 part: the enclosed message's header.
    pub fn enclosed_header_bytes(&self, part: usize) -> Option<&'a [u8]> {
        self.enclosed(part).map(|r| self.mime_header_bytes(r))
    }

    /// `section.TEXT` of a message/rfc822 part: the enclosed message's body, which ends
    /// where the message/rfc822 part ends.
    pub fn enclosed_text_bytes(&self, part: usize) -> Option<&'a [u8]> {
        self.enclosed(part).map(|r| self.body_bytes(r))
    }
}
