//! The directory (customers, domains, mailboxes, aliases, the login log) on SQLite or
//! PostgreSQL.
//!
//! One implementation serves both databases through sqlx's `Any` driver: the SQL is
//! written once in the subset both understand (`$N` placeholders, `BIGINT` columns with 0/1
//! for booleans, `RETURNING`), and the few dialect differences live in [`db`]. The same
//! test suite runs against both.
//!
//! Rules that keep the directory consistent are enforced here, inside transactions, not by
//! callers: an address is a mailbox or an alias, never both (one `addresses` table with a
//! unique key); mailboxes and aliases live only in real domains, which alias domains
//! mirror; everything a customer owns is reached through a [`Scope`].

mod db;
mod error;
mod migrations;

pub mod app_passwords;
pub mod backup;
pub mod certificates;
pub mod changes;
pub mod counters;
pub mod customers;
pub mod delivery;
pub mod devices;
pub mod dkim;
pub mod dns_checks;
pub mod domains;
pub mod folders;
pub mod import_jobs;
pub mod imports;
pub mod leader;
pub mod local;
pub mod locks;
pub mod logins;
pub mod mailboxes;
pub mod messages;
pub mod notice;
pub mod outbound_tls;
pub mod queue;
pub mod quota;
pub mod resolve;
pub mod sent_log;
pub mod sessions;
pub mod sieve;
pub mod stats;
pub mod tls_reports;
pub mod tls_rpt_out;
pub mod warnings;

pub use db::{Backend, Store};
pub use error::{Conflict, StoreError};

// Ids are database row ids, typed per kind of object in `postfach-types` (which gives them
// sqlx's Encode/Decode, so they bind and decode as the i64 they wrap).
use postfach_types::{
    AliasId, ApiTokenId, AppPasswordId, CustomerId, DkimKeyId, DomainId, FolderId, MailboxId, QueueMessageId,
    QueueRecipientId, SessionId,
};

/// Whose objects a call may see and change. Every tenant-scoped function takes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The operator (CLI, admins): everything.
    Platform,
    /// One customer: only its own objects. Anything else looks like it does not exist.
    Customer(CustomerId),
}

impl Scope {
    /// The customer filter bound into queries as `($n IS NULL OR customer_id = $n)`.
    fn customer_filter(self) -> Option<CustomerId> {
        match self {
            Scope::Platform => None,
            Scope::Customer(id) => Some(id),
        }
    }
}
