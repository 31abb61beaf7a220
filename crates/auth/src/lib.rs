//! The one gate for every credential: every protocol server and the panel call
//! [`Authenticator`] and nothing else to let someone in — passwords
//! ([`Authenticator::authenticate`]), the end of every SASL exchange
//! ([`Authenticator::finish_sasl`], over the state machine in [`sasl`]), malformed SASL
//! exchanges ([`Authenticator::refuse_malformed`]), logins refused before a password was asked for
//! ([`Authenticator::refuse_unencrypted`]), API bearer tokens
//! ([`Authenticator::authenticate_token`]) and TOTP codes
//! ([`Authenticator::second_factor`]).
//!
//! One call turns the login into its canonical form ([`LoginName`]: the throttle key, the
//! lookup and the login log all use it), throttles, looks the account up, verifies the
//! secret (in constant-ish time for unknown accounts too), applies the pure rules of
//! `postfach_policy::login`, marks a password that crossed the network in plaintext as
//! exposed (also when the attempt is refused for throttling, within a budget), and records
//! the attempt in the login log, whatever its outcome: counted in the metrics, and when
//! refused also told in one log line (target `postfach::login`, what fail2ban reads), and,
//! for a mailbox's attempt without TLS, with a protocol it does not allow, or refused by
//! the throttle (and for an exposed password), handed to the warning mails without
//! waiting (`postfach_store::warnings`). Input that is not a valid login
//! name names no account: it counts against the address only, and the log shows a
//! bounded form of it ([`LoginName::lossy`]).

pub mod accounts;
pub mod generate;
mod passwords;
pub mod sasl;
mod throttle;
pub mod tokens;
pub mod totp;
mod verified;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use postfach_policy::{AccountFacts, AccountKind, CredentialFacts, LoginDecision, LoginFacts, Refusal, TlsRequiredBy};
use postfach_store::app_passwords::{AppPasswordLogin, LastUse};
use postfach_store::customers::Customer;
use postfach_store::logins::{LoginAccount, LoginAccountKind, LoginEntryId, LoginRecord};
use postfach_store::mailboxes::{Mailbox, MailboxSettings};
use postfach_store::sessions::{PanelSession, SessionLifetime};
use postfach_store::warnings::{WarningEvent, WarningFacts, WarningKind, WarningTarget};
use postfach_store::{Scope, Store, StoreError};
use postfach_types::{
    ApiTokenId, AppPasswordId, CustomerId, CustomerName, EmailAddress, LoginName, LoginResult, LoginTarget, MailboxId,
    Mechanism, Role, Secret, Service, TlsInfo, UnixTime,
};

pub use passwords::{ITERATIONS, LANES, MEMORY_KIB, PasswordHasher};
pub use throttle::Throttle;

/// A live panel session and the account that holds it ([`Authenticator::panel_session`]).
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session: PanelSession,
    pub holder: Holder,
}

/// Who holds a panel session.
#[derive(Debug, Clone)]
pub enum Holder {
    /// A customer or admin account.
    Account(Customer),
    /// A mailbox user.
    Mailbox(Mailbox),
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The login is refused; turn it into a reply with [`Refusal::public`].
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
    /// Also the number of wrong TOTP codes that lock an account's second factor.
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

/// One login attempt with a password.
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
    /// `may_send`: the mailbox may send through submission (its sending switch, decided by
    /// `postfach_policy::AccountKind::may_send`); submission refuses `MAIL FROM` otherwise.
    /// `app_password`: the app password the login used (`None`: the main password);
    /// sessions ask [`Authenticator::still_valid`] whether it was revoked since.
    Mailbox {
        id: MailboxId,
        customer_id: CustomerId,
        address: EmailAddress,
        may_send: bool,
        app_password: Option<AppPasswordId>,
        /// The login log's entry of this login, so that the client's name (IMAP `ID`) can
        /// be added to it ([`Authenticator::client_named`]); `None` outside a device login.
        login_entry: Option<LoginEntryId>,
    },
    Account {
        customer_id: CustomerId,
        name: CustomerName,
        role: Role,
    },
}

impl Principal {
    /// The mailbox, for a mailbox login.
    pub fn mailbox_id(&self) -> Option<MailboxId> {
        match self {
            Principal::Mailbox { id, .. } => Some(*id),
            Principal::Account { .. } => None,
        }
    }

    /// The principal of a mailbox with these settings.
    pub fn mailbox(id: MailboxId, customer_id: CustomerId, address: EmailAddress, settings: &MailboxSettings) -> Self {
        let may_send = mailbox_kind(settings).may_send();
        Principal::Mailbox { id, customer_id, address, may_send, app_password: None, login_entry: None }
    }
}

/// A successful token use is written to the login log at most this often per token and
/// address (an API client makes many requests; the log records logins, not requests).
const TOKEN_LOG_INTERVAL: Duration = Duration::from_secs(600);

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
    /// When each (token, address) was last written to the login log.
    token_logged: Mutex<HashMap<(ApiTokenId, IpAddr), Instant>>,
}

impl Authenticator {
    pub async fn new(store: Store, settings: AuthSettings, hasher: PasswordHasher) -> Result<Self, AuthError> {
        let dummy_hash = hasher.hash(&Secret::new(format!("{:x}", rand::random::<u128>()))).await?;
        let throttle = Throttle::for_store(
            &store,
            settings.failure_window,
            settings.max_failures_per_ip,
            settings.max_failures_per_login,
        );
        Ok(Self {
            store,
            settings,
            hasher,
            throttle,
            dummy_hash,
            verified: verified::VerifiedCache::new(),
            token_logged: Mutex::default(),
        })
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

    /// Drops throttle and token-log state older than the window; the server calls this
    /// periodically.
    pub async fn sweep(&self) {
        self.throttle.sweep(Instant::now()).await;
        self.token_logged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, at| at.elapsed() < TOKEN_LOG_INTERVAL);
    }

    /// A login with a password.
    pub async fn authenticate(&self, attempt: Attempt<'_>) -> Result<Principal, AuthError> {
        let ip = attempt.connection.remote_ip;
        let encrypted = attempt.connection.tls.is_some();
        let name = LoginName::parse(attempt.login).ok();
        let logged = logged_login(name.as_ref(), attempt.login);
        let mut record = self.record(attempt.service, attempt.mechanism, &logged, attempt.connection);
        let account = match &name {
            Some(name) => self.find_account(attempt.service, name).await?,
            None => None,
        };
        if let Some(account) = &account {
            record.customer_id = Some(account.customer_id);
            record.mailbox_id = mailbox_id(account);
        }

        let now = Instant::now();
        if self.is_throttled(ip, name.as_ref(), now).await {
            // A correct password that just crossed the network in plaintext is exposed,
            // refused or not; checking costs hashing, so a throttled login gets a budget.
            if !encrypted
                && let Some(name) = &name
                && self.throttle.take_exposure_check(name.key(), now).await
            {
                self.mark_if_exposed(account.as_ref(), attempt).await?;
            }
            return self.refuse(record, Refusal::Throttled).await;
        }

        let app_password = self.app_password_for(account.as_ref(), attempt.secret).await?;
        let password_matches = match (&name, &account, &app_password) {
            (Some(name), Some(_), Some(app)) => {
                let key = format!("{}\0app:{}", name.key(), app.id);
                self.secret_matches(&key, &app.hash, attempt.secret).await?
            }
            (Some(name), Some(account), None) => {
                self.secret_matches(name.key(), &account.password_hash, attempt.secret).await?
            }
            _ => {
                let _ = self.hasher.verify(&self.dummy_hash, attempt.secret).await?;
                false
            }
        };
        let facts = LoginFacts {
            service: attempt.service,
            encrypted,
            operator_allows_plaintext: self.settings.allow_plaintext_auth,
            account: account.as_ref().map(account_facts),
            password_matches,
        };
        let decision = match facts.decide() {
            LoginDecision::Allow => credential_facts(account.as_ref(), app_password.as_ref()).decide(attempt.service),
            denied => denied,
        };
        if password_matches && let Some(app) = &app_password {
            record.credential = Some(app.name.clone());
        }

        if facts.password_exposed()
            && app_password.is_none()
            && let Some(account) = &account
        {
            self.mark_exposed(account, attempt.service, ip).await?;
        }
        if !password_matches {
            self.record_failure(ip, name.as_ref(), now).await;
        } else if decision == LoginDecision::Allow
            && let Some(name) = &name
        {
            self.throttle.record_success(name.key()).await;
        }
        match (decision, account) {
            (LoginDecision::Allow, Some(account)) => {
                record.result = LoginResult::Ok;
                let entry = self.write_down(&record).await?;
                let mut principal = principal(account);
                if let Principal::Mailbox { login_entry, .. } = &mut principal {
                    *login_entry = Some(entry);
                }
                if let (Some(app), Principal::Mailbox { app_password, .. }) = (&app_password, &mut principal) {
                    *app_password = Some(app.id);
                    let last = LastUse {
                        at: record.at,
                        service: attempt.service,
                        remote_ip: ip,
                        tls_version: attempt.connection.tls.as_ref().map(|t| t.version.clone()),
                        client: None,
                    };
                    self.store.record_app_password_use(app.id, &last).await?;
                }
                Ok(principal)
            }
            (LoginDecision::Deny(refusal), _) => self.refuse(record, refusal).await,
            // Unreachable (`decide` never allows without an account), but the match must
            // be exhaustive; refusing is the safe answer.
            (LoginDecision::Allow, None) => self.refuse(record, Refusal::BadCredentials).await,
        }
    }

    /// The end of a SASL exchange ([`sasl::Exchange`]): credentials are authenticated, an
    /// exchange that produced none is refused through [`Self::refuse_malformed`] or
    /// [`Self::refuse_unencrypted`]. `None` when the client cancelled: nothing to record,
    /// the protocol answers the cancel in its own words.
    pub async fn finish_sasl(
        &self,
        service: Service,
        mechanism: sasl::SaslMechanism,
        end: sasl::End,
        connection: &Connection,
    ) -> Option<Result<Principal, AuthError>> {
        let logged = mechanism.mechanism();
        Some(match end {
            sasl::End::Cancelled => return None,
            sasl::End::Credentials(credentials) => {
                let attempt = Attempt {
                    service,
                    mechanism: logged,
                    login: &credentials.login,
                    secret: &credentials.secret,
                    connection,
                };
                self.authenticate(attempt).await
            }
            sasl::End::Malformed(_) => Err(self.refuse_malformed(service, logged, connection).await),
            sasl::End::Unencrypted { login } => {
                Err(self.refuse_unencrypted(service, logged, login.as_deref(), connection).await)
            }
        })
    }

    /// A SASL exchange that produced no usable credentials (bad base64, wrong form,
    /// another account as authorization identity): counted like a wrong password for the
    /// address and recorded.
    pub async fn refuse_malformed(&self, service: Service, mechanism: Mechanism, connection: &Connection) -> AuthError {
        let record = self.record(service, mechanism, "", connection);
        let now = Instant::now();
        let refusal = if self.throttle.is_ip_throttled(connection.remote_ip, now).await {
            Refusal::Throttled
        } else {
            self.throttle.record_ip_failure(connection.remote_ip, now).await;
            Refusal::Malformed
        };
        self.refused(record, refusal).await
    }

    /// A login refused before a password was asked for, because the connection is not
    /// encrypted and the operator allows no plaintext logins (POP3 `USER`, SMTP `AUTH
    /// LOGIN` without TLS): recorded with the name, if one was given, and refused.
    pub async fn refuse_unencrypted(
        &self,
        service: Service,
        mechanism: Mechanism,
        login: Option<&str>,
        connection: &Connection,
    ) -> AuthError {
        let name = login.and_then(|l| LoginName::parse(l).ok());
        let logged = login.map(|l| logged_login(name.as_ref(), l)).unwrap_or_default();
        let mut record = self.record(service, mechanism, &logged, connection);
        if let Some(name) = &name
            && let Ok(Some(account)) = self.find_account(service, name).await
        {
            record.customer_id = Some(account.customer_id);
            record.mailbox_id = mailbox_id(&account);
        }
        self.refused(record, Refusal::TlsRequired { by: TlsRequiredBy::Operator }).await
    }

    /// Records a refusal and returns it as the error to give the caller.
    async fn refused(&self, record: LoginRecord, refusal: Refusal) -> AuthError {
        match self.refuse::<()>(record, refusal).await {
            Err(e) => e,
            Ok(()) => AuthError::Refused(refusal),
        }
    }

    /// An API bearer token. A wrong token names no account, so it counts against the
    /// address only (tokens carry 256 random bits: guessing one is hopeless anyway). A
    /// token not of our form is refused like a wrong one, without a database lookup.
    pub async fn authenticate_token(
        &self,
        token: &Secret<String>,
        connection: &Connection,
    ) -> Result<Principal, AuthError> {
        let ip = connection.remote_ip;
        let mut record = self.record(Service::Api, Mechanism::ApiToken, "", connection);
        let now = Instant::now();
        if self.throttle.is_ip_throttled(ip, now).await {
            return self.refuse(record, Refusal::Throttled).await;
        }
        let found = if tokens::is_api_token_form(token.expose()) {
            self.store.api_token_by_hash(&tokens::token_hash(token.expose())).await?
        } else {
            None
        };
        let Some(found) = found else {
            self.throttle.record_ip_failure(ip, now).await;
            return self.refuse(record, Refusal::BadCredentials).await;
        };
        let account = self.store.customer_by_id(found.customer_id).await?;
        record.customer_id = Some(account.id);
        record.login = account.name.to_string();
        let facts = LoginFacts {
            service: Service::Api,
            encrypted: connection.tls.is_some(),
            operator_allows_plaintext: self.settings.allow_plaintext_auth,
            account: Some(AccountFacts { kind: AccountKind::PanelAccount, disabled: account.disabled }),
            password_matches: true,
        };
        if let LoginDecision::Deny(refusal) = facts.decide() {
            return self.refuse(record, refusal).await;
        }
        let log_now = {
            let mut logged = self.token_logged.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let due = logged.get(&(found.id, ip)).is_none_or(|at| at.elapsed() >= TOKEN_LOG_INTERVAL);
            if due {
                logged.insert((found.id, ip), now);
            }
            due
        };
        if log_now {
            record.result = LoginResult::Ok;
            self.write_down(&record).await?;
        } else {
            postfach_metrics::login(record.service, LoginResult::Ok, record.tls.is_some());
        }
        Ok(Principal::Account { customer_id: account.id, name: account.name, role: account.role })
    }

    /// A panel session cookie: the live session whose token hashes to `token_hash` and who
    /// holds it, or `None` when it is unknown, expired, or its account may no longer sign
    /// in. Whether it may is decided by the same rule as a password or token login
    /// (`policy::LoginFacts::decide`), so disabling a customer locks every credential of
    /// it at once, and in one place.
    pub async fn panel_session(
        &self,
        token_hash: &str,
        lifetime: SessionLifetime,
    ) -> Result<Option<SignedIn>, AuthError> {
        let Some(session) = self.store.panel_session(token_hash, lifetime).await? else { return Ok(None) };
        let customer = match self.store.customer_by_id(session.customer_id).await {
            Ok(customer) => customer,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let (kind, holder) = match session.mailbox_id {
            Some(id) => match self.store.mailbox_by_id(Scope::Customer(customer.id), id).await {
                Ok(mailbox) => {
                    let s = mailbox.settings;
                    let kind = AccountKind::Mailbox {
                        access: s.access,
                        submission: s.submission,
                        tls_required: s.tls_required,
                    };
                    (kind, Holder::Mailbox(mailbox))
                }
                Err(StoreError::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            },
            None => (AccountKind::PanelAccount, Holder::Account(customer.clone())),
        };
        let facts = LoginFacts {
            service: Service::Panel,
            // The cookie only travels over HTTPS (`Secure`), and proved the password when
            // the session began.
            encrypted: true,
            operator_allows_plaintext: self.settings.allow_plaintext_auth,
            account: Some(AccountFacts { kind, disabled: customer.disabled }),
            password_matches: true,
        };
        Ok(match facts.decide() {
            LoginDecision::Allow => Some(SignedIn { session, holder }),
            LoginDecision::Deny(_) => None,
        })
    }

    /// A TOTP code for `account` (at sign-in, or when switching the second factor on or
    /// off). Wrong codes lock the account's second factor after
    /// `max_failures_per_login` tries within the window, whatever the password does; a
    /// code works only once (`enable` also marks the secret as confirmed).
    pub async fn second_factor(
        &self,
        account: CustomerId,
        code: &str,
        enable: bool,
        connection: &Connection,
    ) -> Result<(), AuthError> {
        let customer = self.store.customer_by_id(account).await?;
        let mut record = self.record(Service::Panel, Mechanism::Totp, customer.name.as_str(), connection);
        record.customer_id = Some(account);
        let now = Instant::now();
        if self.throttle.is_second_factor_locked(account, now).await
            || self.throttle.is_ip_throttled(connection.remote_ip, now).await
        {
            return self.refuse(record, Refusal::Throttled).await;
        }
        let secret = self.store.totp_secret(account).await?;
        let step = secret
            .as_ref()
            .filter(|s| s.enabled || enable)
            .and_then(|s| totp::totp_step_of(&s.secret, code, u64::try_from(UnixTime::now().0).unwrap_or_default()));
        let accepted = match step {
            Some(step) => self.store.use_totp_step(account, step, enable).await?,
            None => false,
        };
        if !accepted {
            self.throttle.record_second_factor_failure(connection.remote_ip, account, now).await;
            return self.refuse(record, Refusal::BadCredentials).await;
        }
        self.throttle.record_second_factor_success(account).await;
        record.result = LoginResult::Ok;
        self.write_down(&record).await?;
        Ok(())
    }

    /// Mailboxes log in with their address; panel accounts with their name (panel only).
    async fn find_account(&self, service: Service, name: &LoginName) -> Result<Option<LoginAccount>, AuthError> {
        match name.target() {
            LoginTarget::Mailbox(address) => Ok(self.store.mailbox_login(address).await?),
            LoginTarget::Account(name) if service == Service::Panel => Ok(self.store.customer_login(name).await?),
            LoginTarget::Account(_) => Ok(None),
        }
    }

    /// Throttling by the login when the input is a valid login name, else by the address
    /// alone (input that names no account gets no key of its own).
    async fn is_throttled(&self, ip: IpAddr, name: Option<&LoginName>, now: Instant) -> bool {
        match name {
            Some(name) => self.throttle.is_throttled(ip, name.key(), now).await,
            None => self.throttle.is_ip_throttled(ip, now).await,
        }
    }

    async fn record_failure(&self, ip: IpAddr, name: Option<&LoginName>, now: Instant) {
        match name {
            Some(name) => self.throttle.record_failure(ip, name.key(), now).await,
            None => self.throttle.record_ip_failure(ip, now).await,
        }
    }

    /// For a throttled plaintext attempt: marks the mailbox's password exposed if this is
    /// it. Verified with the hasher directly, never through the verified cache (a repeat
    /// would answer faster), and against the dummy hash when no mailbox matches, so the
    /// time tells nothing either way.
    async fn mark_if_exposed(&self, account: Option<&LoginAccount>, attempt: Attempt<'_>) -> Result<(), AuthError> {
        let mailbox = account.filter(|a| mailbox_id(a).is_some());
        let hash = mailbox.map_or(&self.dummy_hash, |a| &a.password_hash);
        if self.hasher.verify(hash, attempt.secret).await?
            && let Some(account) = mailbox
        {
            self.mark_exposed(account, attempt.service, attempt.connection.remote_ip).await?;
        }
        Ok(())
    }

    /// Verifies `secret` against `hash` (remembering a success briefly under `key`).
    async fn secret_matches(&self, key: &str, hash: &str, secret: &Secret<String>) -> Result<bool, AuthError> {
        if self.verified.contains(key, hash, secret) {
            return Ok(true);
        }
        let matches = self.hasher.verify(hash, secret).await?;
        if matches {
            self.verified.insert(key, hash, secret);
        } else {
            self.verified.remove(key);
        }
        Ok(matches)
    }

    /// The app password a secret of that form selects by its lookup key, for a mailbox
    /// login; `None` for any other secret (then it is checked as the main password, so
    /// a login costs one verification either way).
    async fn app_password_for(
        &self,
        account: Option<&LoginAccount>,
        secret: &Secret<String>,
    ) -> Result<Option<AppPasswordLogin>, AuthError> {
        let (Some(mailbox), Some(lookup)) =
            (account.and_then(mailbox_id), generate::app_password_lookup(secret.expose()))
        else {
            return Ok(None);
        };
        Ok(self.store.app_password_login(mailbox, lookup).await?)
    }

    /// Whether a session that logged in as `principal` may go on: false once the app
    /// password it used was revoked (here or on another node). Costs an atomic load per
    /// call; the database is asked only when some app password was revoked since `seen`,
    /// which the caller keeps (start it at [`Self::revocations_seen`] before the login).
    pub async fn still_valid(&self, principal: &Principal, seen: &mut u64) -> bool {
        let Principal::Mailbox { app_password: Some(id), .. } = principal else { return true };
        let now = self.store.revocations().current();
        if now == *seen {
            return true;
        }
        match self.store.app_password_exists(*id).await {
            Ok(exists) => {
                *seen = now;
                exists
            }
            // The session goes on; the next command asks again.
            Err(e) => {
                tracing::warn!(error = %e, "cannot check whether an app password was revoked");
                true
            }
        }
    }

    /// The revocation count a session starts from (taken before its login, so a
    /// revocation during the login is seen at the first command).
    pub fn revocations_seen(&self) -> u64 {
        self.store.revocations().current()
    }

    /// Records the client's name (IMAP `ID`) with the session's login in the login log
    /// (the devices page groups by it) and as the last use of the app password the
    /// session logged in with.
    pub async fn client_named(&self, principal: &Principal, client: &str) -> Result<(), AuthError> {
        if let Principal::Mailbox { app_password, login_entry, .. } = principal {
            if let Some(entry) = login_entry {
                self.store.name_login_client(*entry, client).await?;
            }
            if let Some(id) = app_password {
                self.store.record_app_password_client(*id, client).await?;
            }
        }
        Ok(())
    }

    async fn mark_exposed(&self, account: &LoginAccount, service: Service, ip: IpAddr) -> Result<(), AuthError> {
        if let Some(id) = mailbox_id(account) {
            self.store.mark_password_exposed(id).await?;
            let facts = WarningFacts { service: Some(service), client: Some(ip), ..WarningFacts::default() };
            self.store.warnings().tell(WarningEvent::new(WarningKind::Exposed, WarningTarget::Mailbox(id), facts));
            tracing::warn!(mailbox = id.get(), %service, remote_ip = %ip, "correct password sent without TLS; marked as exposed");
        }
        Ok(())
    }

    fn record(&self, service: Service, mechanism: Mechanism, login: &str, connection: &Connection) -> LoginRecord {
        LoginRecord {
            at: UnixTime::now(),
            customer_id: None,
            mailbox_id: None,
            login: login.to_string(),
            service,
            remote_ip: connection.remote_ip,
            tls: connection.tls.clone(),
            mechanism,
            result: LoginResult::Throttled,
            credential: None,
        }
    }

    /// Records a refused attempt and returns the refusal.
    async fn refuse<T>(&self, mut record: LoginRecord, refusal: Refusal) -> Result<T, AuthError> {
        record.result = refusal.result();
        self.write_down(&record).await?;
        Err(AuthError::Refused(refusal))
    }

    /// The one place an attempt is written down: counted in the metrics, recorded in the
    /// login log, and, when refused, told in exactly one log line (what fail2ban reads,
    /// `docs/operations.md`). The client's address comes first, right after the fixed
    /// text, and the login last and quoted, so a login that looks like `client=1.2.3.4`
    /// cannot pass for the address. Never the password.
    async fn write_down(&self, record: &LoginRecord) -> Result<LoginEntryId, StoreError> {
        postfach_metrics::login(record.service, record.result, record.tls.is_some());
        if record.result != LoginResult::Ok {
            let tls = record.tls.as_ref().map_or("no", |tls| tls.version.as_str());
            tracing::info!(
                target: "postfach::login",
                client = %record.remote_ip,
                service = %record.service,
                tls = %tls,
                reason = %record.result,
                mechanism = %record.mechanism,
                login = ?record.login,
                "login refused"
            );
        }
        self.tell_warnings(record);
        self.store.record_login(record).await
    }

    /// Hands the warnings this attempt starts to the warning task (`store::warnings`):
    /// an attempt for a mailbox without TLS, with a protocol it does not allow, or refused
    /// by the throttle; and every successful device login as a candidate for "a new
    /// device". No waiting: a full hand-over drops the event.
    fn tell_warnings(&self, record: &LoginRecord) {
        let Some(mailbox) = record.mailbox_id else { return };
        let facts =
            WarningFacts { service: Some(record.service), client: Some(record.remote_ip), ..WarningFacts::default() };
        let mut kinds = Vec::new();
        if record.tls.is_none() && record.service.is_device_service() {
            kinds.push(WarningKind::Unencrypted);
        }
        match record.result {
            LoginResult::ServiceDisabled => kinds.push(WarningKind::WrongProtocol),
            LoginResult::Throttled => kinds.push(WarningKind::Locked),
            _ => {}
        }
        for kind in kinds {
            self.store.warnings().tell(WarningEvent::new(kind, WarningTarget::Mailbox(mailbox), facts.clone()));
        }
        // Only a candidate: whether the device is new, the warning task looks up in the
        // login log, off this path.
        if record.result == LoginResult::Ok && record.service.is_device_service() {
            let facts = WarningFacts {
                credential: record.credential.clone(),
                tls: record.tls.as_ref().map(|t| t.version.clone()),
                ..facts
            };
            let mut event = WarningEvent::new(WarningKind::NewDevice, WarningTarget::Mailbox(mailbox), facts);
            event.at = record.at;
            self.store.warnings().tell(event);
        }
    }
}

/// How the login log shows what a client sent: the canonical name, or a bounded, lossy
/// form of input that is not one.
fn logged_login(name: Option<&LoginName>, input: &str) -> String {
    name.map_or_else(|| LoginName::lossy(input), |name| name.key().to_string())
}

fn mailbox_id(account: &LoginAccount) -> Option<MailboxId> {
    match &account.kind {
        LoginAccountKind::Mailbox { id, .. } => Some(*id),
        LoginAccountKind::Customer { .. } => None,
    }
}

fn mailbox_kind(settings: &MailboxSettings) -> AccountKind {
    AccountKind::Mailbox {
        access: settings.access,
        submission: settings.submission,
        tls_required: settings.tls_required,
    }
}

fn account_facts(account: &LoginAccount) -> AccountFacts {
    let kind = match &account.kind {
        LoginAccountKind::Mailbox { settings, .. } => mailbox_kind(settings),
        LoginAccountKind::Customer { .. } => AccountKind::PanelAccount,
    };
    AccountFacts { kind, disabled: account.disabled }
}

/// What the credential of a login allows: the main password (with the mailbox's
/// app-passwords-only switch) or the app password.
fn credential_facts<'a>(account: Option<&LoginAccount>, app: Option<&'a AppPasswordLogin>) -> CredentialFacts<'a> {
    match (app, account.map(|a| &a.kind)) {
        (Some(app), _) => CredentialFacts::AppPassword { services: &app.services },
        (None, Some(LoginAccountKind::Mailbox { app_passwords_only, .. })) => {
            CredentialFacts::MainPassword { app_passwords_only: *app_passwords_only }
        }
        (None, _) => CredentialFacts::MainPassword { app_passwords_only: false },
    }
}

fn principal(account: LoginAccount) -> Principal {
    match account.kind {
        LoginAccountKind::Mailbox { id, address, settings, .. } => {
            Principal::mailbox(id, account.customer_id, address, &settings)
        }
        LoginAccountKind::Customer { name, role } => {
            Principal::Account { customer_id: account.customer_id, name, role }
        }
    }
}
