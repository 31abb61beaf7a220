//! Every administrative operation once: customers, domains and alias domains (with
//! ownership verification and DNS checks), mailboxes and their settings, aliases,
//! passwords, two-factor sign-in, API tokens, the login list, the outbound queue and
//! the import jobs that move a mailbox in from another provider.
//!
//! The CLI, the panel and the JSON API are thin adapters over [`Admin`]: they parse their
//! input with [`input`] (so a bad value is refused the same way everywhere), name the
//! caller ([`Who`]) and turn an [`AdminError`] into their own output. Each operation
//! checks the caller's role and reaches the store only through the caller's
//! [`Scope`]: another customer's objects answer [`AdminError::NotFound`], exactly like
//! objects that do not exist. Passwords are checked against the rule only through
//! `postfach_auth::accounts`, and credentials only through the `Authenticator`.

mod account;
pub mod app_passwords;
mod customers;
pub mod devices;
mod domains;
mod error;
pub mod imports;
pub mod input;
mod logins;
mod mailboxes;
mod outbound_tls;
mod queue;
mod quota;
pub mod sieve;
pub mod sieve_forms;
mod spam;
mod warnings;
mod who;

use std::sync::Arc;

use postfach_auth::Authenticator;
use postfach_dns::checks::Checker;
use postfach_store::{Scope, Store};

pub use account::TotpStatus;
pub use app_passwords::CreatedAppPassword;
pub use customers::CustomerChange;
pub use domains::{DomainRecords, TLS_REPORTS_SHOWN};
pub use error::{AdminError, Unavailable};
pub use imports::{ImportRequest, ImportRunner};
pub use input::LoginQuery;
pub use mailboxes::MailboxPassword;
pub use postfach_auth::accounts::OwnPasswordChange;
pub use postfach_store::Conflict;
pub use sieve::SieveLimits;
pub use warnings::WarningSwitch;
pub use who::Who;

/// The administrative operations over one store. Cheap to clone.
#[derive(Clone)]
pub struct Admin {
    store: Store,
    auth: Arc<Authenticator>,
    dns: Option<Arc<Checker>>,
    sieve: SieveLimits,
    /// This node's import jobs; `None` where no jobs run (the CLI).
    imports: Option<ImportRunner>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").field("dns", &self.dns.is_some()).finish_non_exhaustive()
    }
}

impl Admin {
    /// `dns`: the checker of `postfach-dns`; without it DNS checks are unavailable and
    /// domain pages show only the ownership record.
    pub fn new(store: Store, auth: Arc<Authenticator>, dns: Option<Checker>) -> Admin {
        Admin { store, auth, dns: dns.map(Arc::new), sieve: SieveLimits::default(), imports: None }
    }

    /// The same operations with the Sieve limits of `[sieve]` (defaults otherwise).
    pub fn with_sieve_limits(mut self, limits: SieveLimits) -> Admin {
        self.sieve = limits;
        self
    }

    /// The same operations, running import jobs with `runner` (the server's one).
    pub fn with_imports(mut self, runner: Option<ImportRunner>) -> Admin {
        self.imports = runner;
        self
    }
}

/// A customer or admin account (or the operator): who manages domains, mailboxes and
/// aliases. Mailbox users may not.
fn manager(who: &Who) -> Result<Scope, AdminError> {
    match who {
        Who::Mailbox { .. } => Err(AdminError::Forbidden),
        _ => Ok(who.scope()),
    }
}

/// The operator or an admin: the whole platform.
fn platform(who: &Who) -> Result<(), AdminError> {
    match who {
        Who::Operator | Who::Admin { .. } => Ok(()),
        _ => Err(AdminError::Forbidden),
    }
}
