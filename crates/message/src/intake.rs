//! The intake check: what SMTP (MX and submission) and IMAP APPEND refuse to store.
//!
//! The lenient parse serves any stored message; intake is strict about the things where
//! two readers could disagree: limits beyond which part of the message is opaque or a
//! header field is not read, a top header block that is not a list of fields (RFC 5322
//! §2.2), and duplicates of the fields that may occur at most once (RFC 5322 §3.6). The
//! texts are shown to customers.

use std::fmt;

use crate::{Message, Problem};

/// RFC 5322 §3.6: the fields that may occur at most once in a message header.
pub const UNIQUE_FIELDS: [&str; 11] =
    ["Date", "From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Message-ID", "In-Reply-To", "References", "Subject"];

/// RFC 5322 §3.6.2, §3.6.3 and §3.6.6: the address fields of a message header. Intake
/// refuses a top-level one with more than `Limits::max_addresses` items, since the views
/// read no further and the sender rule and DMARC alignment must see every author.
pub const ADDRESS_FIELDS: [&str; 11] = [
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Bcc",
    "Resent-From",
    "Resent-Sender",
    "Resent-To",
    "Resent-Cc",
    "Resent-Bcc",
];

/// Field names in refusals are cut to this many bytes (a name may be as long as a line).
const NAME_SHOWN: usize = 64;

/// Which limit on header fields a message went beyond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldsScope {
    /// `Limits::max_fields`: one header block (the message's, a MIME part's or an attached
    /// message's).
    HeaderBlock,
    /// `Limits::max_total_fields`: all header blocks of the message together.
    WholeMessage,
}

impl fmt::Display for FieldsScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FieldsScope::HeaderBlock => {
                "one header of the message (its own, a MIME part's or an attached message's) has"
            }
            FieldsScope::WholeMessage => {
                "all headers of the message (its own, its MIME parts' and attached messages') have together"
            }
        })
    }
}

/// Why a message is refused at intake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    #[error("the message nests MIME parts or attached messages more than {limit} levels deep")]
    TooDeep { limit: usize },
    #[error("the message has more than {limit} MIME parts")]
    TooManyParts { limit: usize },
    #[error("{scope} more than {limit} header fields")]
    TooManyFields { limit: usize, scope: FieldsScope },
    #[error("the {field}: header field is longer than {limit} bytes")]
    FieldTooLong { field: String, limit: usize },
    #[error("the {field}: header field has too many parameters or unfinished encoded words to be read")]
    FieldTooComplex { field: &'static str },
    #[error("the {field}: header field has more than {limit} addresses")]
    TooManyAddresses { field: &'static str, limit: usize },
    #[error("line {line} of the message header is not a header field (\"Name: value\") nor the continuation of one")]
    HeaderSyntax { line: usize },
    #[error("the message has more than one {field}: header field")]
    Duplicate { field: &'static str },
}

/// Checks a parsed message for intake. Rules in this order: depth, parts, fields per
/// header block or message (anywhere), field value length (anywhere), Content-Type and
/// Content-Disposition too costly to read (anywhere), addresses per top-level address
/// field, top-level header syntax, top-level duplicates.
pub fn check_intake(msg: &Message<'_>) -> Result<(), IntakeError> {
    let limits = msg.limits();
    let problems = msg.problems();
    if problems.iter().any(|p| matches!(p, Problem::TooDeep { .. })) {
        return Err(IntakeError::TooDeep { limit: limits.max_depth });
    }
    if problems.iter().any(|p| matches!(p, Problem::TooManyParts { .. })) {
        return Err(IntakeError::TooManyParts { limit: limits.max_parts });
    }
    let fields = problems.iter().find_map(|p| match p {
        Problem::TooManyFields { whole_message, .. } => Some(*whole_message),
        _ => None,
    });
    if let Some(whole_message) = fields {
        return Err(match whole_message {
            false => IntakeError::TooManyFields { limit: limits.max_fields, scope: FieldsScope::HeaderBlock },
            true => IntakeError::TooManyFields { limit: limits.max_total_fields, scope: FieldsScope::WholeMessage },
        });
    }
    let name = |part: usize, field: usize| msg.header(part).field_at(field).map(|f| f.name_str()).unwrap_or_default();
    let long = problems.iter().find_map(|p| match *p {
        Problem::FieldTooLong { part, field } => Some(name(part, field)),
        _ => None,
    });
    if let Some(field) = long {
        let mut field = field.to_owned();
        field.truncate(NAME_SHOWN);
        return Err(IntakeError::FieldTooLong { field, limit: limits.max_field_value });
    }
    let complex = problems.iter().find_map(|p| match *p {
        Problem::FieldTooComplex { part, field } => Some(name(part, field)),
        _ => None,
    });
    if let Some(field) = complex {
        let field = ["Content-Type", "Content-Disposition"].into_iter().find(|n| n.eq_ignore_ascii_case(field));
        return Err(IntakeError::FieldTooComplex { field: field.unwrap_or("Content-Type") });
    }
    let top = msg.top();
    for field in ADDRESS_FIELDS {
        if top.all(field).any(|f| top.too_many_addresses(f)) {
            return Err(IntakeError::TooManyAddresses { field, limit: limits.max_addresses });
        }
    }
    let syntax = problems.iter().find_map(|p| match p {
        Problem::HeaderSyntax { part: 0, line_offset } => Some(*line_offset),
        _ => None,
    });
    if let Some(offset) = syntax {
        let before = msg.raw().get(..offset).unwrap_or_default();
        return Err(IntakeError::HeaderSyntax { line: 1 + before.iter().filter(|&&b| b == b'\n').count() });
    }
    match UNIQUE_FIELDS.into_iter().find(|name| top.count(name) > 1) {
        Some(field) => Err(IntakeError::Duplicate { field }),
        None => Ok(()),
    }
}
