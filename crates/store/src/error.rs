//! The store's errors. Texts of `NotFound` and `Conflict` are written for the person who
//! asked for the change; database errors stay generic on the outside. A change the
//! directory's rules refuse is [`StoreError::Refused`] with a typed [`Conflict`], so callers
//! decide on the rule, never on the wording.

use postfach_types::{CustomerName, DomainName, EmailAddress};

use crate::domains::Removed;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named object does not exist (or is not visible in this scope).
    #[error("{0}")]
    NotFound(String),
    /// The change would break a rule of the directory; nothing was changed.
    #[error(transparent)]
    Refused(#[from] Conflict),
    /// Any other refused change (folders, queue, keys); nothing was changed.
    #[error("{0}")]
    Conflict(String),
    /// The message does not fit the mailbox's (or its customer's) quota; nothing was
    /// stored. `Room::Full` or `Room::TooBig`.
    #[error("the mailbox is over its storage quota")]
    OverQuota(postfach_types::Room),
    /// The database was migrated by a newer Postfach than this one.
    #[error(
        "the database has schema version {found}, but this Postfach knows only up to {known}; run the newer Postfach"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("the database URL is not usable: {0}")]
    BadUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot create the database folder {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// A rule of the directory that a change would break, checked inside the transaction
/// that makes the change. One variant per rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// App password names are unique within a mailbox.
    #[error("this mailbox already has an app password named '{name}'; choose another name")]
    AppPasswordNameTaken { name: String },
    /// A mailbox has at most this many app passwords.
    #[error("this mailbox already has {limit} app passwords; remove one you no longer use first")]
    TooManyAppPasswords { limit: i64 },
    /// One address space: an address is a mailbox or an alias, once.
    #[error("{address} is already in use as a mailbox or alias")]
    AddressTaken { address: EmailAddress },
    /// A name is hosted at most once, as a domain or an alias domain.
    #[error("{name} is already set up here (as a domain or alias domain)")]
    DomainTaken { name: DomainName },
    /// Only names under a parent (`example.net`, not `net`) can be hosted.
    #[error("{name} is not a full domain name; use a name like example.net")]
    NotFullDomain { name: DomainName },
    /// Alias domains hold no addresses of their own.
    #[error(
        "{domain} is an alias domain of {real}: every address at {real} already works at {domain}; create {instead} instead"
    )]
    InAliasDomain { domain: DomainName, real: DomainName, instead: EmailAddress },
    /// Alias domains point at real domains, never at other alias domains.
    #[error("{target} is itself an alias domain of {real}; point the new alias domain at {real}")]
    AliasChain { target: DomainName, real: DomainName },
    /// A domain with contents is removed only with everything in it.
    #[error(
        "{name} still has {} mailbox(es), {} alias(es) and {} alias domain(s); remove them first, or remove the domain with everything in it (--cascade)",
        .contents.mailboxes, .contents.aliases, .contents.alias_domains
    )]
    DomainNotEmpty { name: DomainName, contents: Removed },
    /// An alias delivers only into a mailbox of its own domain's customer.
    #[error(
        "{mailbox} belongs to another customer than {domain}; an alias can only point at a mailbox of the same customer"
    )]
    OtherCustomer { mailbox: EmailAddress, domain: DomainName },
    /// The local part is valid mail syntax but not one that may be created here.
    #[error("{address} cannot be created: {why}")]
    NotHostable { address: EmailAddress, why: String },
    /// Customer names are unique.
    #[error("a customer named {name} already exists; choose another name")]
    CustomerExists { name: CustomerName },
    /// A customer is removed only once it owns no domains.
    #[error(
        "customer {name} still owns {domains} domain(s); remove them first (postfach domain remove DOMAIN --cascade)"
    )]
    CustomerOwnsDomains { name: CustomerName, domains: i64 },
    /// A mailbox's limit stays within its customer's limit.
    #[error(
        "the storage limit of {mailbox} cannot be larger than its customer's total of {}; choose a smaller one",
        postfach_types::format_size(*.customer_quota)
    )]
    QuotaAboveCustomer { mailbox: EmailAddress, customer_quota: u64 },
    /// A customer's limit stays above each of its mailboxes' own limits.
    #[error(
        "{mailbox} has a storage limit of {} of its own; lower that first, or choose a larger total",
        postfach_types::format_size(*.mailbox_quota)
    )]
    MailboxQuotaAbove { mailbox: EmailAddress, mailbox_quota: u64 },
    /// Sieve script names are unique within a mailbox.
    #[error("this mailbox already has a filter script named '{name}'; choose another name")]
    SieveScriptNameTaken { name: String },
    /// A mailbox has at most this many Sieve scripts.
    #[error("this mailbox already has {limit} filter scripts; remove one you no longer use first")]
    TooManySieveScripts { limit: u32 },
    /// The active script is not removed while it filters mail.
    #[error("the filter script '{name}' is active; switch it off or activate another one first")]
    SieveScriptActive { name: String },
    /// One import job per mailbox at a time.
    #[error("an import into this mailbox is already running; wait until it has finished")]
    ImportRunning,
    /// An enabled second factor is not replaced; it is switched off first.
    #[error("two-factor sign-in is already on; switch it off first")]
    TotpOn,
}

impl StoreError {
    pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
        matches!(err, sqlx::Error::Database(e) if e.is_unique_violation())
    }
}
