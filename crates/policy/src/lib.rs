//! Pure policy decisions: who may log in to what over which connection, which passwords
//! are strong enough, and whether inbound mail is accepted and into which folder.
//!
//! No I/O happens here. Every protocol server and the panel reach these rules only through
//! the `auth` crate, so each rule lives in exactly one place and is tested as a table.

pub mod inbound;
pub mod login;
pub mod password;

pub use login::{
    AccountFacts, AccountKind, CredentialFacts, LoginDecision, LoginFacts, PublicRefusal, Refusal, TlsRequiredBy,
};
pub use password::{
    FeedbackItem, MAX_PASSWORD_CHARS, MIN_OWN_LETTERS, MIN_PASSWORD_CHARS, MIN_SCORE, PasswordRefusal, PasswordVerdict,
    check_password, user_inputs,
};
