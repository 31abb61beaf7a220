//! The intake check: what SMTP (MX and submission) and IMAP APPEND refuse to store.
//!
//! The lenient parse serves any stored message; intake is strict about the things where
//! two readers could disagree: limits beyond which part of the message is opaque, a top
//! header block that is not a list of fields (RFC 5322 §2.2), and duplicates of the
//! fields that may occur at most once (RFC 5322 §3.6). The texts are shown to customers.

use crate::{Message, Problem};

/// RFC 5322 §3.6: the fields that may occur at most once in a message header.
pub const UNIQUE_FIELDS: [&str; 11] =
    ["Date", "From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Message-ID", "In-Reply-To", "References", "Subject"];

/// Why a message is refused at intake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    #[error("the message nests MIME parts or attached messages more than {limit} levels deep")]
    TooDeep { limit: usize },
    #[error("the message has more than {limit} MIME parts")]
    TooManyParts { limit: usize },
    #[error("a header of the message has more than {limit} header fields")]
    TooManyFields { limit: usize },
    #[error("line {line} of the message header is not a header field (\"Name: value\") nor the continuation of one")]
    HeaderSyntax { line: usize },
    #[error("the message has more than one {field}: header field")]
    Duplicate { field: &'static str },
}

/// Checks a parsed message for intake. Rules in this order: depth, parts, fields per
/// header block (anywhere), top-level header syntax, top-level duplicates.
pub fn check_intake(msg: &Message<'_>) -> Result<(), IntakeError> {
    let limits = msg.limits();
    let problems = msg.problems();
    if problems.iter().any(|p| matches!(p, Problem::TooDeep { .. })) {
        return Err(IntakeError::TooDeep { limit: limits.max_depth });
    }
    if problems.iter().any(|p| matches!(p, Problem::TooManyParts { .. })) {
        return Err(IntakeError::TooManyParts { limit: limits.max_parts });
    }
    if problems.iter().any(|p| matches!(p, Problem::TooManyFields { .. })) {
        return Err(IntakeError::TooManyFields { limit: limits.max_fields });
    }
    let syntax = problems.iter().find_map(|p| match p {
        Problem::HeaderSyntax { part: 0, line_offset } => Some(*line_offset),
        _ => None,
    });
    if let Some(offset) = syntax {
        let before = msg.raw().get(..offset).unwrap_or_default();
        return Err(IntakeError::HeaderSyntax { line: 1 + before.iter().filter(|&&b| b == b'\n').count() });
    }
    let top = msg.top();
    match UNIQUE_FIELDS.into_iter().find(|name| top.count(name) > 1) {
        Some(field) => Err(IntakeError::Duplicate { field }),
        None => Ok(()),
    }
}
