//! Why an operation was refused: one variant per rule, per validation failure, and the
//! few general outcomes (not found, forbidden, unavailable). The English texts are for the
//! CLI; the panel and the API translate by variant (`postfach-web`'s `i18n`).

use postfach_auth::AuthError;
use postfach_auth::accounts::AccountError;
use postfach_dns::DnsError;
use postfach_policy::{PasswordVerdict, Refusal};
use postfach_store::{Conflict, StoreError};
use postfach_types::{DomainName, Secret};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The caller's role may not do this at all.
    #[error("this account may not do this")]
    Forbidden,
    /// The object does not exist, or not in the caller's scope.
    #[error("{0}")]
    NotFound(String),

    // Validation of input.
    #[error(
        "a customer name needs 2 to 64 characters a-z, 0-9, dot, hyphen or underscore, starting with a letter or digit"
    )]
    InvalidCustomerName,
    #[error("the role must be customer or admin")]
    InvalidRole,
    #[error("that is not a valid domain name; use a name like example.net")]
    InvalidDomainName,
    #[error("that is not a valid e-mail address")]
    InvalidAddress,
    #[error("the access mode must be imap, pop3 or none")]
    InvalidAccessMode,
    #[error("a storage limit is a whole number of bytes or of K, M, G or T (like 500M or 2G), or none")]
    InvalidSize,
    #[error("a message limit is a whole number above 0, or none")]
    InvalidMessageCount,
    #[error("the language must be de or en")]
    InvalidLanguage,
    #[error("the MTA-STS mode must be off, testing or enforce")]
    InvalidMtaStsMode,
    #[error(
        "a warning switch is KIND=on or KIND=off, KIND one of: unencrypted, wrong-protocol, exposed, locked, sending-limit, new-device, unused-app-password"
    )]
    InvalidWarningSwitch,
    #[error("the filter must be unencrypted or failed")]
    InvalidFilter,
    #[error("a spam threshold is a score like 6 or 6.5, none (never) or default (the platform's)")]
    InvalidSpamThreshold,
    #[error(
        "the Junk threshold must be below the refuse threshold, or mail would be refused before it could go to Junk"
    )]
    SpamThresholdsReversed,
    #[error("give the token a name, for example the script that will use it")]
    TokenNameMissing,
    #[error("a token name has at most {} characters", crate::input::MAX_TOKEN_NAME)]
    TokenNameTooLong,
    #[error(
        "give the app password a name of at most {} characters, like the device it is for",
        crate::input::MAX_APP_PASSWORD_NAME
    )]
    InvalidAppPasswordName,
    #[error("pick the services for the app password among imap, pop3, submission and sieve, separated by commas")]
    InvalidAppPasswordServices,
    #[error(
        "give the filter script a name of at most {} characters, without line breaks or spaces at either end",
        crate::input::MAX_SIEVE_SCRIPT_NAME
    )]
    InvalidSieveScriptName,
    /// The Sieve script does not compile (or needs an extension not supported here).
    #[error("the filter script has an error in {0}")]
    SieveScriptInvalid(postfach_sieve::ScriptError),
    /// The Sieve script is longer than `[sieve] max_script_bytes`.
    #[error("the filter script is {size} bytes long; at most {limit} bytes are allowed")]
    SieveScriptTooBig { size: usize, limit: usize },
    /// The mailbox's settings do not allow this service (access mode, sending switch).
    #[error("this mailbox does not allow {0}; pick among the services its settings allow")]
    ServiceNotForMailbox(postfach_types::Service),
    #[error(
        "give the old server as a host name like imap.example.net, a port from 1 to 65535 (or none), and tls or starttls"
    )]
    InvalidImportServer,
    #[error("give the login you use at the old provider (usually your old e-mail address)")]
    InvalidImportLogin,
    #[error("give the password you use at the old provider")]
    InvalidImportPassword,
    /// The password breaks the rule; the verdict says why and carries the feedback.
    /// `chars`: the password's length, which the verdict's translations name.
    #[error("{}", .verdict.reason.as_deref().unwrap_or("the password is too weak"))]
    WeakPassword { verdict: PasswordVerdict, chars: usize },

    // Proving who one is again, for a change of one's own account.
    #[error("enter your current password to change it")]
    CurrentPasswordMissing,
    #[error("the current password is not right")]
    CurrentPasswordWrong,
    #[error("the TOTP code is not right")]
    CodeWrong,
    #[error("too many failed attempts; wait a quarter of an hour, then try again")]
    Throttled,
    #[error("this account is disabled")]
    Disabled,
    #[error("this needs an encrypted connection")]
    TlsRequired,

    // Rules of the operations themselves.
    #[error("an admin cannot disable their own account")]
    DisableSelf,
    #[error("change your own password as yourself (it asks for the current one), not by a reset")]
    ResetOwnPassword,
    #[error("domains are added by the customer who owns them (or with the command line)")]
    AdminAddsDomain,
    #[error("{0} is a domain, not an alias domain; remove it with: postfach domain remove {0}")]
    NotAnAliasDomain(DomainName),
    #[error("no DNS checks are configured")]
    DnsChecksOff,
    /// The vacation or filter form has a value it cannot use.
    #[error(transparent)]
    SieveForm(#[from] crate::sieve_forms::FormError),
    /// A form would replace an active script the forms did not write.
    #[error(
        "the active filter script {name:?} was not written by these forms; save again with replace to activate the forms' script instead (the other script stays stored)"
    )]
    HandWrittenScript { name: String },
    /// The old server's name cannot be looked up (or not in time).
    #[error("{host} could not be found; check the old server's name")]
    ImportServerUnknown { host: String },
    /// The old server's name points into a private network (`[import] allow_private_targets`).
    #[error("{host} is not a server on the internet; give the name your old provider publishes for IMAP")]
    ImportServerNotPublic { host: String },
    /// This server runs no imports (the CLI), or all its import slots are taken.
    #[error("no import can be started here at the moment; try again in a few minutes")]
    ImportsBusy,
    /// A rule of the directory, checked by the store in the changing transaction.
    #[error(transparent)]
    Conflict(#[from] Conflict),

    /// The database, the password hasher or DNS failed; try again later.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

/// What failed underneath an operation (logged once by the adapters, never shown).
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Auth(AuthError),
    #[error(transparent)]
    Dns(DnsError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> AdminError {
        match e {
            StoreError::NotFound(what) => AdminError::NotFound(what),
            StoreError::Refused(rule) => AdminError::Conflict(rule),
            e => AdminError::Unavailable(Unavailable::Store(e)),
        }
    }
}

impl From<AuthError> for AdminError {
    fn from(e: AuthError) -> AdminError {
        match e {
            AuthError::Unavailable(e) => e.into(),
            AuthError::Refused(refusal) => refused(refusal, AdminError::CodeWrong),
            e => AdminError::Unavailable(Unavailable::Auth(e)),
        }
    }
}

impl From<DnsError> for AdminError {
    fn from(e: DnsError) -> AdminError {
        match e {
            DnsError::Store(e) => e.into(),
            e => AdminError::Unavailable(Unavailable::Dns(e)),
        }
    }
}

impl AdminError {
    /// A refused account change; `password` is the new password it was about.
    pub(crate) fn account(e: AccountError, password: &Secret<String>) -> AdminError {
        match e {
            AccountError::WeakPassword(verdict) => {
                AdminError::WeakPassword { verdict, chars: password.expose().chars().count() }
            }
            AccountError::Store(e) => e.into(),
            AccountError::CurrentPassword(refusal) => refused(refusal, AdminError::CurrentPasswordWrong),
            AccountError::Auth(e) => e.into(),
        }
    }
}

/// A refusal of the gate when a signed-in user proves themselves again: the user is known,
/// so the real reason is told. `wrong` is what a wrong secret means here.
fn refused(refusal: Refusal, wrong: AdminError) -> AdminError {
    match refusal {
        // App passwords are not taken by the panel, where one proves oneself again.
        Refusal::BadCredentials
        | Refusal::Malformed
        | Refusal::AppPasswordRequired
        | Refusal::NotForThisAppPassword => wrong,
        Refusal::Throttled => AdminError::Throttled,
        Refusal::Disabled => AdminError::Disabled,
        Refusal::TlsRequired { .. } => AdminError::TlsRequired,
        Refusal::ServiceNotAllowed => AdminError::Forbidden,
    }
}
