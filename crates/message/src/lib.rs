//! The one view of a message's bytes.
//!
//! Every check (SMTP intake: From/Sender ownership, DMARC alignment; IMAP APPEND) and
//! every display (IMAP ENVELOPE, BODYSTRUCTURE, `BODY[section]`, SEARCH; DSNs and DKIM
//! signing on the way out) reads a message through [`Message::parse`], so they cannot
//! disagree about which header field counts or where a part ends. POP3 does not use this
//! crate: it reads no structure, TOP only cuts lines. The parse is one linear pass over
//! lines with an explicit stack of open multiparts; its result is a flat arena of
//! [`Part`]s that refer to each other by index, so nothing recurses, neither parsing,
//! walking nor dropping. Everything is bounded by [`Limits`]; what goes beyond a limit
//! stays an opaque leaf (or, for a header field value, unread) and is recorded as a
//! [`Problem`], so stored messages are still served while [`check_intake`] refuses new
//! ones.
//!
//! Header field values are parsed lazily by the views, mostly with mail-parser, whose
//! parsers are quadratic on crafted input (measured with 64 KiB values: unterminated
//! RFC 2047 encoded words in a Subject or a Content-Type parameter, about half a second;
//! thousands of RFC 2231 continuations, some 50 ms). Two rules keep every view linear
//! (details in `parse.rs`):
//! - A value longer than [`MAX_FIELD_VALUE`] is not read at all: a Content-Type then means
//!   the default type, a Content-Disposition, Date or address field is absent, encoded
//!   words stay as written. Intake refuses such a field in any header block.
//! - Before a value goes to mail-parser, a linear pre-scan bounds what mail-parser would
//!   read ([`MAX_PARSE_WORK_PER_BYTE`]); a value that would cost more is not parsed either.
//!   Intake refuses such a Content-Type or Content-Disposition in any header block;
//!   unstructured text (Subject, display names) is then shown with its encoded words as
//!   written, which no check depends on.
//!
//! Address lists are read up to [`MAX_ADDRESSES`] items per field; intake refuses a
//! top-level address field with more, so the sender rule and DMARC alignment always see
//! every author.
//!
//! Decisions where the specifications leave room (see each module for details):
//! - A header line that is neither a field nor a continuation is skipped (the header block
//!   goes on) and recorded as [`Problem::HeaderSyntax`]; intake refuses it in the
//!   top-level header only (a MIME part's header with such a line is served as parsed).
//! - When a field occurs more than once, views read the *first* one; intake refuses
//!   duplicates of the RFC 5322 §3.6 fields that may occur once.
//! - A multipart with no boundary parameter or without any delimiter line is a leaf.

mod address;
mod crlf;
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
pub use crlf::crlf_line_endings;
pub use header::{Field, FieldRef, HeaderView};
pub use intake::{ADDRESS_FIELDS, FieldsScope, IntakeError, UNIQUE_FIELDS, check_intake};
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
/// Bytes of one header field value (as stored, folding included) that the views read.
/// Real fields stay far below (the longest seen in practice, anti-spam and ARC fields or
/// the References of a long thread, are some kilobytes); above it nothing parses the
/// value and intake refuses the message. The bound caps what a single value can cost any
/// parser and how much it can allocate, whatever else goes wrong.
pub const MAX_FIELD_VALUE: usize = 64 * 1024;
/// Items (mailboxes and group markers) read from one address field. Real lists stay far
/// below; the parse stops after this many, so a field of 100,000 addresses costs no more
/// than one of 1,000.
pub const MAX_ADDRESSES: usize = 1_000;
/// mail-parser may re-read at most this many bytes per byte of a value (plus
/// [`PARSE_WORK_SLACK`]), as bounded by a linear pre-scan (`parse.rs`), or the value is
/// not handed to it. Real values stay below 4; the costliest crafted 64 KiB values that
/// pass cost mail-parser under a millisecond.
pub const MAX_PARSE_WORK_PER_BYTE: usize = 16;
/// The fixed allowance of the pre-scan bound, for short values with a few parameters.
pub const PARSE_WORK_SLACK: usize = 4_096;

/// The bounds of one parse. `Default` gives the `MAX_*` constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_depth: usize,
    pub max_parts: usize,
    pub max_fields: usize,
    pub max_total_fields: usize,
    pub max_text: usize,
    pub max_field_value: usize,
    pub max_addresses: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: MAX_DEPTH,
            max_parts: MAX_PARTS,
            max_fields: MAX_FIELDS,
            max_total_fields: MAX_TOTAL_FIELDS,
            max_text: MAX_TEXT,
            max_field_value: MAX_FIELD_VALUE,
            max_addresses: MAX_ADDRESSES,
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
    /// A field of this part's header block was skipped, with the rest of the block:
    /// `whole_message` is true when the message's `max_total_fields` stopped it, false
    /// when the block's own `max_fields` did. Recorded once per header block.
    TooManyFields { part: usize, whole_message: bool },
    /// Field `field` (an index into this part's [`Part::fields`]) has a value longer than
    /// `max_field_value`; views do not read it. Recorded for the first such field of each
    /// header block.
    FieldTooLong { part: usize, field: usize },
    /// Field `field` of this part, the first Content-Type or the first
    /// Content-Disposition, would cost mail-parser more than [`MAX_PARSE_WORK_PER_BYTE`]
    /// per byte; views read it as absent (Content-Type: the default type).
    FieldTooComplex { part: usize, field: usize },
    /// The header block of this part has a line at `line_offset` (a byte offset into the
    /// raw message) that is neither `name:` nor a continuation of a field. The line is
    /// skipped. Recorded for the first such line of each header block.
    HeaderSyntax { part: usize, line_offset: usize },
}
