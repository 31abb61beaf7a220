//! The IMAP server (RFC 3501 IMAP4rev1 with IDLE, UIDPLUS, MOVE, NAMESPACE, ID, ENABLE,
//! LITERAL+, SPECIAL-USE, CHILDREN, UNSELECT, SASL-IR and CONDSTORE).
//!
//! [`ImapServer`] holds what every session shares; the server crate hands it accepted
//! connections for the `imap` (STARTTLS) and `imaps` (implicit TLS) listeners.

mod mime;
pub mod protocol;
mod search;
mod seqset;
mod session;
mod wire;

#[cfg(test)]
mod tests;

pub use session::{ImapServer, Transport};
