//! The one authentication path: every protocol server and the panel call
//! [`Authenticator::authenticate`] and nothing else to let someone in.
//!
//! One call throttles, looks the account up, verifies the secret (in constant-ish time
//! for unknown accounts too), applies the pure rules of `postfach_policy::login`, marks a
//! password that crossed the network in plaintext as exposed, and records the attempt in
//! the login log, whatever its outcome.

pub mod accounts;
mod passwords;
mod throttle;
mod verified;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use postfach_policy::{AccountFacts, AccountKind, LoginDecision, LoginFacts, Refusal};
use postfach_store::logins::{LoginAccount, LoginAccountKind, LoginRecord};
use postfach_store::{CustomerId, MailboxId, Store, StoreError};
use postfach_types::{CustomerName, EmailAddress, LoginResult, Mechanism, Role, Secret, Service, TlsInfo, UnixTime};

pub use passwords::{ITERATIONS, LANES, MEMORY_KIB, PasswordHasher};
pub use throttle::Throttle;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The login is refused; the reason is safe to turn into a protocol reply.
    #[error("login refused: {0:?}")]
    Refused(Refusal),
    /// The directory could not be asked; the client should try again later.
    #[error("the account directory is unavailable: {0}")]
    Unavailable(#[from] StoreError),
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

impl AuthError {
    /// The refusal, if this is one (`None` for temporary failures).
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            AuthError::Refused(r) => Some(*r),
            _ => None,
        }
    }
}

/// Operator settings of the authentication path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthSettings {
    pub allow_plaintext_auth: bool,
    pub max_failures_per_ip: u32,
    pub max_failures_per_login: u32,
    pub failure_window: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            allow_plaintext_auth: false,
            max_failures_per_ip: 10,
            max_failures_per_login: 5,
            failure_window: Duration::from_secs(15 * 60),
        }
    }
}

/// What the connection tells about the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub remote_ip: IpAddr,
    /// `None` for an unencrypted connection.
    pub tls: Option<TlsInfo>,
}

/// One login attempt.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub service: Service,
    pub mechanism: Mechanism,
    /// The login name as the client sent it.
    pub login: &'a str,
    pub secret: &'a Secret<String>,
    pub connection: &'a Connection,
}

/// Who got in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Mailbox { id: MailboxId, customer_id: CustomerId, address: EmailAddress },
    Account { customer_id: CustomerId, name: CustomerName, role: Role },
}

#[derive(Debug)]
pub struct Authenticator {
    store: Store,
    settings: AuthSettings,
    hasher: PasswordHasher,
    throttle: Throttle,
    /// Verified against when the login matches no account, so that unknown accounts
    /// cost as much time as wrong passwords.
    dummy_hash: String,
    /// Passwords verified correctly in the last minutes (see `verified`).
    verified: verified::VerifiedCache,
}

impl Authenticator {
    pub async fn new(store: Store, settings: AuthSettings, hasher: PasswordHasher) -> Result<Self, AuthError> {
        let dummy_hash = hasher.hash(&Secret::new(format!("{:x}", rand::random::<u128>()))).await?;
        let throttle =
            Throttle::new(settings.failure_window, settings.max_failures_per_ip, settings.max_failures_per_login);
        Ok(Self { store, settings, hasher, throttle, dummy_hash, verified: verified::VerifiedCache::new() })
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// Whether a login may be attempted at all without TLS (for capability lists such
    /// as IMAP's LOGINDISABLED).
    pub fn plaintext_auth_allowed(&self) -> bool {
        self.settings.allow_plaintext_auth
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// Drops throttle state older than the window; the server calls this periodically.
    pub fn sweep(&self) {
        self.throttle.sweep(Instant::now());
    }

    pub async fn authenticate(&self, attempt: Attempt<'_>) -> Result<Principal, AuthError> {
        let login = attempt.login.trim().to_lowercase();
        let ip = attempt.connection.remote_ip;
        let mut record = LoginRecord {
            at: UnixTime::now(),
            customer_id: None,
            mailbox_id: None,
            login: attempt.login.to_string(),
            service: attempt.service,
            remote_ip: ip,
            tls: attempt.connection.tls.clone(),
            mechanism: attempt.mechanism,
            result: LoginResult::Throttled,
        };
        let account = self.find_account(attempt.service, &login).await?;
        if let Some(account) = &account {
            record.customer_id = Some(account.customer_id);
            record.mailbox_id = mailbox_id(account);
        }

        if self.throttle.is_throttled(ip, &login, Instant::now()) {
            self.store.record_login(&record).await?;
            return Err(AuthError::Refused(Refusal::Throttled));
        }

        let password_matches = match &account {
            Some(account) if self.verified.contains(&login, &account.password_hash, attempt.secret) => true,
            Some(account) => {
                let matches = self.hasher.verify(&account.password_hash, attempt.secret).await?;
                if matches {
                    self.verified.insert(&login, &account.password_hash, attempt.secret);
                } else {
                    self.verified.remove(&login);
                }
                matches
            }
            None => {
                let _ = self.hasher.verify(&self.dummy_hash, attempt.secret).await?;
                false
            }
        };
        let facts = LoginFacts {
            service: attempt.service,
            encrypted: attempt.connection.tls.is_some(),
            operator_allows_plaintext: self.settings.allow_plaintext_auth,
            account: account.as_ref().map(account_facts),
            password_matches,
        };
        let decision = facts.decide();

        if facts.password_exposed()
            && let Some(id) = account.as_ref().and_then(mailbox_id)
        {
            self.store.mark_password_exposed(id).await?;
            tracing::warn!(mailbox = id, service = %attempt.service, remote_ip = %ip, "correct password sent without TLS; marked as exposed");
        }
        if password_matches {
            if decision == LoginDecision::Allow {
                self.throttle.record_success(&login);
            }
        } else {
            self.throttle.record_failure(ip, &login, Instant::now());
        }

        record.result = match decision {
            LoginDecision::Allow => LoginResult::Ok,
            LoginDecision::Deny(refusal) => refusal.result(),
        };
        self.store.record_login(&record).await?;
        match (decision, account) {
            (LoginDecision::Allow, Some(account)) => Ok(principal(account)),
            (LoginDecision::Deny(refusal), _) => Err(AuthError::Refused(refusal)),
            // `decide` never allows without an account.
            (LoginDecision::Allow, None) => Err(AuthError::Refused(Refusal::BadCredentials)),
        }
    }

    /// Mailboxes log in with their address; panel accounts with their name (panel only).
    async fn find_account(&self, service: Service, login: &str) -> Result<Option<LoginAccount>, AuthError> {
        if let Ok(address) = EmailAddress::parse(login) {
            return Ok(self.store.mailbox_login(&address).await?);
        }
        if service == Service::Panel
            && let Ok(name) = CustomerName::parse(login)
        {
            return Ok(self.store.customer_login(&name).await?);
        }
        Ok(None)
    }
}

fn mailbox_id(account: &LoginAccount) -> Option<MailboxId> {
    match &account.kind {
        LoginAccountKind::Mailbox { id, .. } => Some(*id),
        LoginAccountKind::Customer { .. } => None,
    }
}

fn account_facts(account: &LoginAccount) -> AccountFacts {
    let kind = match &account.kind {
        LoginAccountKind::Mailbox { settings, .. } => AccountKind::Mailbox {
            access: settings.access,
            submission: settings.submission,
            tls_required: settings.tls_required,
        },
        LoginAccountKind::Customer { .. } => AccountKind::PanelAccount,
    };
    AccountFacts { kind, disabled: account.disabled }
}

fn principal(account: LoginAccount) -> Principal {
    match account.kind {
        LoginAccountKind::Mailbox { id, address, .. } => {
            Principal::Mailbox { id, customer_id: account.customer_id, address }
        }
        LoginAccountKind::Customer { name, role } => {
            Principal::Account { customer_id: account.customer_id, name, role }
        }
    }
}
