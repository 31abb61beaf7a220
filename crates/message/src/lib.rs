//! The one view of a message's bytes.
//!
//! Every check (SMTP intake: From/Sender ownership, DMARC alignment; IMAP APPEND) and
//! every display (IMAP ENVELOPE, BODYSTRUCTURE, `BODY[section]`, SEARCH) reads a message
//! through [`Message::parse`], so they cannot disagree about which header field counts or
//! where a part ends. The parse is one linear pass over lines with an explicit stack of
//! open multiparts; its result is a flat arena of [`Part`]s that refer to each other by
//! index, so nothing recurses, neither parsing, walking nor dropping. Everything is
//! bounded by [`Limits`]; what goes beyond a limit stays an opaque leaf and is recorded
//! as a [`Problem`], so stored messages are still served while [`check_intake`] refuses
//! new ones.
//!
//! Decisions where the specifications leave room (see each module for details):
//! - A header line that is neither a field nor a continuation is skipped (the header block
//!   goes on) and recorded as [`Problem::HeaderSyntax`]; intake refuses it.
//! - When a field occurs more than once, views read the *first* one; intake refuses
//!   duplicates of the RFC 5322 §3.6 fields that may occur once.
//! - A multipart with no boundary parameter or without any delimiter line is a leaf.

mod address;
mod header;
mod intake;
mod parse;
#[doc(hidden)]
pub mod samples;
mod section;
#[cfg(test)]
mod tests;
mod text;

pub use address::{AddressItem, Mailbox, parse_address_list};
pub use header::{Field, FieldRef, HeaderView};
pub use intake::{IntakeError, UNIQUE_FIELDS, check_intake};
pub use mail_parser::DateTime;
pub use parse::{ContentType, Message, Part, PartKind};
pub use text::UnknownEncoding;

/// Nesting levels: each multipart and each message/rfc822 level counts one.
pub const MAX_DEPTH: usize = 50;
/// Parts in one message, enclosed messages' parts included.
pub const MAX_PARTS: usize = 5_000;
/// Header fields kept per header block.
pub const MAX_FIELDS: usize = 1_000;
/// Header fields kept in all header blocks of a message together (so a crafted message
/// costs at most about a megabyte of field positions).
pub const MAX_TOTAL_FIELDS: usize = 20_000;
/// Bytes of encoded body read, and of text returned, by [`Message::decoded_text`].
pub const MAX_TEXT: usize = 1 << 20;

/// The bounds of one parse. `Default` gives the `MAX_*` constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_depth: usize,
    pub max_parts: usize,
    pub max_fields: usize,
    pub max_total_fields: usize,
    pub max_text: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: MAX_DEPTH,
            max_parts: MAX_PARTS,
            max_fields: MAX_FIELDS,
            max_total_fields: MAX_TOTAL_FIELDS,
            max_text: MAX_TEXT,
        }
    }
}

/// Something the lenient parse worked around. `part` is an index into [`Message::parts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// This part would have opened a level beyond `max_depth`; it is kept as a leaf.
    TooDeep { part: usize },
    /// A child of this part could not be created (`max_parts`); its bytes stay in this
    /// part's body. Recorded once per message.
    TooManyParts { part: usize },
    /// This part's header block has more than `max_fields` fields (or the message more
    /// than `max_total_fields`); the rest are skipped.
    TooManyFields { part: usize },
    /// The header block of this part has a line at `line_offset` (a byte offset into the
    /// raw message) that is neither `name:` nor a continuation of a field. The line is
    /// skipped. Recorded for the first such line of each header block.
    HeaderSyntax { part: usize, line_offset: usize },
}
