//! The API's request and response bodies. Responses are built from the admin layer's
//! values here, so the JSON is the API's decision, not the store's row layout; the
//! OpenAPI document (`openapi.rs`) describes these shapes.

use postfach_store::app_passwords::AppPassword;
use postfach_store::customers::Customer;
use postfach_store::domains::{Domain, Removed};
use postfach_store::logins::LoginRecord;
use postfach_store::mailboxes::{Alias, Mailbox};
use postfach_store::sessions::ApiToken;
use postfach_types::{
    AccessMode, AliasId, ApiTokenId, AppPasswordId, CustomerId, CustomerName, DomainId, DomainName, EmailAddress,
    Language, LoginResult, MailboxId, Mechanism, Role, Service, TlsInfo, UnixTime,
};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------- requests

#[derive(Debug, Deserialize)]
pub struct PasswordCheck {
    pub password: String,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub customer: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct NewCustomer {
    pub name: String,
    pub password: String,
    #[serde(default)]
    pub role: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CustomerChange {
    #[serde(default)]
    pub disabled: Option<bool>,
    #[serde(default)]
    pub password: Option<String>,
    /// The total its mailboxes may store: bytes, or text like `"50G"`; `"none"` removes it.
    #[serde(default)]
    pub quota: Option<SizeInput>,
    /// The address that gets a copy of every warning mail; `"none"` removes it.
    #[serde(default)]
    pub contact_address: Option<String>,
    /// The spam score from which its mail is refused: a number, `"none"` (never) or
    /// `"default"` (the platform's).
    #[serde(default)]
    pub spam_reject: Option<ScoreInput>,
    /// The spam score from which its mail goes to Junk, the same way.
    #[serde(default)]
    pub spam_junk: Option<ScoreInput>,
    /// Always require TLS to other servers, for the mail of all its mailboxes.
    #[serde(default)]
    pub require_tls: Option<bool>,
}

/// A spam threshold as JSON gives it: a number, or text (`"6.5"`, `"none"`, `"default"`),
/// both parsed by `admin::input::spam_threshold`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ScoreInput {
    Number(f64),
    Text(String),
}

impl ScoreInput {
    pub fn text(&self) -> String {
        match self {
            ScoreInput::Number(n) => n.to_string(),
            ScoreInput::Text(t) => t.clone(),
        }
    }
}

/// A size or count as JSON gives it: a number, or text (`"2G"`, `"none"`), both parsed by
/// `admin::input`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum SizeInput {
    Number(u64),
    Text(String),
}

impl SizeInput {
    pub fn text(&self) -> String {
        match self {
            SizeInput::Number(n) => n.to_string(),
            SizeInput::Text(t) => t.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct NewDomain {
    pub name: String,
}

/// What to change on a domain; absent fields stay as they are.
#[derive(Debug, Deserialize)]
pub struct DomainChange {
    /// Admins only.
    pub verified: Option<bool>,
    /// Certificates for `mail.`, `autoconfig.` and `autodiscover.` of the domain.
    pub certificates: Option<bool>,
    /// Inbound MTA-STS: `off`, `testing` or `enforce`.
    pub mta_sts: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct CascadeQuery {
    pub cascade: bool,
}

#[derive(Debug, Deserialize)]
pub struct NewDomainAlias {
    pub name: String,
    pub target: String,
}

#[derive(Debug, Deserialize)]
pub struct NewMailbox {
    pub address: String,
    pub password: String,
    #[serde(default)]
    pub access: Option<String>,
    #[serde(default)]
    pub submission: Option<bool>,
    #[serde(default)]
    pub tls_required: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct MailboxChange {
    #[serde(default)]
    pub access: Option<String>,
    #[serde(default)]
    pub submission: Option<bool>,
    #[serde(default)]
    pub tls_required: Option<bool>,
    /// Storage limit: bytes, or text like `"2G"`; `"none"` removes it.
    #[serde(default)]
    pub quota: Option<SizeInput>,
    /// Message-count limit; `"none"` removes it.
    #[serde(default)]
    pub quota_messages: Option<SizeInput>,
    /// Devices must use app passwords.
    #[serde(default)]
    pub app_passwords_only: Option<bool>,
    /// Always require TLS to other servers: its mail is never sent in plaintext.
    #[serde(default)]
    pub require_tls: Option<bool>,
    /// Language of Postfach's own notices to the mailbox: `de` or `en`.
    #[serde(default)]
    pub language: Option<String>,
    /// Warning mails switched on (`true`) or off, by kind: `unencrypted`,
    /// `wrong-protocol`, `exposed`, `locked`, `sending-limit`,
    /// `new-device`, `unused-app-password`.
    #[serde(default)]
    pub warnings: Option<std::collections::BTreeMap<String, bool>>,
}

#[derive(Debug, Deserialize)]
pub struct NewPassword {
    pub password: String,
    /// Required when mailbox users set their own password.
    #[serde(default)]
    pub current_password: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct FilterQuery {
    pub filter: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct NewAlias {
    pub address: String,
    pub mailbox: String,
}

#[derive(Debug, Deserialize)]
pub struct NewToken {
    pub name: String,
}

/// An import to start: the old server, login and password (kept only while it runs).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewImport {
    /// The old server's host name.
    pub host: String,
    /// Default 993 (`tls`) or 143 (`starttls`).
    pub port: Option<u16>,
    /// `tls` (default) or `starttls`.
    #[serde(default)]
    pub security: String,
    pub login: String,
    pub password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAppPassword {
    pub name: String,
    /// `imap`, `pop3`, `submission`.
    pub services: Vec<String>,
}

// ---------------------------------------------------------------- responses

#[derive(Debug, Serialize)]
pub struct CustomerView {
    pub id: CustomerId,
    pub name: CustomerName,
    pub role: Role,
    pub disabled: bool,
    pub created_at: UnixTime,
    /// The limit on what all its mailboxes store together, in bytes; `null`: none.
    pub quota_bytes: Option<u64>,
    /// The address that gets a copy of every warning mail; `null`: none.
    pub contact_address: Option<EmailAddress>,
    /// The spam score from which its mail is refused: a score like `"15.00"`, `"none"`
    /// (never) or `"default"` (the platform's, `[spam] reject_score`).
    pub spam_reject: String,
    /// The spam score from which its mail goes to Junk, the same way.
    pub spam_junk: String,
    /// Always require TLS to other servers, for the mail of all its mailboxes.
    pub require_tls: bool,
}

impl From<Customer> for CustomerView {
    fn from(c: Customer) -> Self {
        CustomerView {
            id: c.id,
            name: c.name,
            role: c.role,
            disabled: c.disabled,
            created_at: c.created_at,
            quota_bytes: c.quota_bytes,
            contact_address: c.contact_address,
            spam_reject: c.spam.reject.to_string(),
            spam_junk: c.spam.junk.to_string(),
            require_tls: c.outbound_tls_required,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct DomainView {
    pub id: DomainId,
    pub customer_id: CustomerId,
    pub customer: CustomerName,
    pub name: DomainName,
    pub alias_of: Option<DomainName>,
    pub verified: bool,
    pub verify_token: String,
    pub created_at: UnixTime,
    /// The customer asked for certificates for the domain's service names.
    pub certificates: bool,
    /// Inbound MTA-STS: `off`, `testing` or `enforce`.
    pub mta_sts: String,
}

impl From<&Domain> for DomainView {
    fn from(d: &Domain) -> Self {
        DomainView {
            id: d.id,
            customer_id: d.customer_id,
            customer: d.customer.clone(),
            name: d.name.clone(),
            alias_of: d.alias_of.clone(),
            verified: d.verified,
            verify_token: d.verify_token.clone(),
            created_at: d.created_at,
            certificates: d.certificates,
            mta_sts: d.mta_sts.to_string(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RemovedView {
    pub mailboxes: i64,
    pub aliases: i64,
    pub alias_domains: i64,
}

impl From<Removed> for RemovedView {
    fn from(r: Removed) -> Self {
        RemovedView { mailboxes: r.mailboxes, aliases: r.aliases, alias_domains: r.alias_domains }
    }
}

#[derive(Debug, Serialize)]
pub struct MailboxView {
    pub id: MailboxId,
    pub customer_id: CustomerId,
    pub address: EmailAddress,
    pub access: AccessMode,
    pub submission: bool,
    pub tls_required: bool,
    pub password_exposed: bool,
    pub created_at: UnixTime,
    pub changed_at: UnixTime,
    /// Limits (`null`: none) and use: bytes and messages in all folders.
    pub quota_bytes: Option<u64>,
    pub quota_messages: Option<u64>,
    pub used_bytes: u64,
    pub used_messages: u64,
    pub language: Language,
    /// Devices must use app passwords; the main password works only for the panel.
    pub app_passwords_only: bool,
    /// Always require TLS to other servers (the mailbox's own switch).
    pub require_tls: bool,
}

impl From<Mailbox> for MailboxView {
    fn from(m: Mailbox) -> Self {
        MailboxView {
            id: m.id,
            customer_id: m.customer_id,
            address: m.address,
            access: m.settings.access,
            submission: m.settings.submission,
            tls_required: m.settings.tls_required,
            password_exposed: m.password_exposed,
            created_at: m.created_at,
            changed_at: m.changed_at,
            app_passwords_only: m.app_passwords_only,
            require_tls: m.outbound_tls_required,
            quota_bytes: m.quota.bytes,
            quota_messages: m.quota.messages,
            used_bytes: m.used_bytes,
            used_messages: m.used_messages,
            language: m.language,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AliasView {
    pub id: AliasId,
    pub customer_id: CustomerId,
    pub address: EmailAddress,
    pub mailbox: EmailAddress,
}

impl From<Alias> for AliasView {
    fn from(a: Alias) -> Self {
        AliasView { id: a.id, customer_id: a.customer_id, address: a.address, mailbox: a.mailbox }
    }
}

#[derive(Debug, Serialize)]
pub struct LoginView {
    pub at: UnixTime,
    pub customer_id: Option<CustomerId>,
    pub mailbox_id: Option<MailboxId>,
    pub login: String,
    pub service: Service,
    pub remote_ip: std::net::IpAddr,
    pub tls: Option<TlsInfo>,
    pub mechanism: Mechanism,
    pub result: LoginResult,
    /// The app password's name, `null` for the main password.
    pub credential: Option<String>,
}

impl From<LoginRecord> for LoginView {
    fn from(r: LoginRecord) -> Self {
        LoginView {
            at: r.at,
            customer_id: r.customer_id,
            mailbox_id: r.mailbox_id,
            login: r.login,
            service: r.service,
            remote_ip: r.remote_ip,
            tls: r.tls,
            mechanism: r.mechanism,
            result: r.result,
            credential: r.credential,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TokenView {
    pub id: ApiTokenId,
    pub customer_id: CustomerId,
    pub name: String,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
}

impl From<ApiToken> for TokenView {
    fn from(t: ApiToken) -> Self {
        TokenView {
            id: t.id,
            customer_id: t.customer_id,
            name: t.name,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
        }
    }
}

/// An app password as listed (never the password itself).
#[derive(Debug, Serialize)]
pub struct AppPasswordView {
    pub id: AppPasswordId,
    pub mailbox_id: MailboxId,
    pub name: String,
    pub services: Vec<Service>,
    pub created_at: UnixTime,
    /// The last successful login with it; `null` while unused.
    pub last_used_at: Option<UnixTime>,
    pub last_service: Option<Service>,
    pub last_remote_ip: Option<std::net::IpAddr>,
    /// `null` also for a login without TLS.
    pub last_tls_version: Option<String>,
    /// The client's name from IMAP `ID`.
    pub last_client: Option<String>,
}

impl From<AppPassword> for AppPasswordView {
    fn from(a: AppPassword) -> Self {
        let last = a.last_use.as_ref();
        AppPasswordView {
            id: a.id,
            mailbox_id: a.mailbox_id,
            name: a.name,
            services: a.services,
            created_at: a.created_at,
            last_used_at: last.map(|l| l.at),
            last_service: last.map(|l| l.service),
            last_remote_ip: last.map(|l| l.remote_ip),
            last_tls_version: last.and_then(|l| l.tls_version.clone()),
            last_client: last.and_then(|l| l.client.clone()),
        }
    }
}

/// One recipient of mail sent from a mailbox, once its delivery ended.
#[derive(Debug, Serialize)]
pub struct SentView {
    pub at: UnixTime,
    pub recipient: String,
    pub delivered: bool,
    /// The enhanced status code, like `2.0.0` or `5.1.1`.
    pub status: Option<String>,
    /// Why it was not delivered.
    pub diagnostic: Option<String>,
    /// The receiving server; `null`: delivered here (or no server was reached).
    pub remote_mta: Option<String>,
    /// The TLS version and cipher; `null`: no encryption.
    pub tls: Option<String>,
    /// The rule the delivery followed: `opportunistic`, `mta-sts`, `dane`, `none`.
    pub tls_policy: Option<String>,
    /// Went to another server without encryption.
    pub unencrypted: bool,
}

impl From<postfach_store::sent_log::SentEntry> for SentView {
    fn from(e: postfach_store::sent_log::SentEntry) -> Self {
        SentView {
            unencrypted: e.unencrypted(),
            at: e.at,
            recipient: e.recipient,
            delivered: e.delivered,
            status: e.status,
            diagnostic: e.diagnostic,
            remote_mta: e.remote_mta,
            tls: e.tls,
            tls_policy: e.tls_policy,
        }
    }
}

/// A client of a mailbox seen in the last 90 days: a credential used on a service.
#[derive(Debug, Serialize)]
pub struct DeviceView {
    /// The app password's name; `null` for the mailbox's own password.
    pub credential: Option<String>,
    /// The app password's id while it exists (to revoke it); `null` otherwise.
    pub app_password_id: Option<AppPasswordId>,
    pub service: Service,
    /// The client's name from IMAP `ID`, as last recorded for the app password.
    pub client: Option<String>,
    pub first_seen: UnixTime,
    pub last_seen: UnixTime,
    pub logins: i64,
    pub last_remote_ip: std::net::IpAddr,
    /// `null`: the last login was not encrypted.
    pub last_tls_version: Option<String>,
}

impl From<postfach_store::devices::Device> for DeviceView {
    fn from(d: postfach_store::devices::Device) -> Self {
        DeviceView {
            credential: d.credential,
            app_password_id: d.app_password,
            service: d.service,
            client: d.client,
            first_seen: d.first_seen,
            last_seen: d.last_seen,
            logins: d.logins,
            last_remote_ip: d.last_ip,
            last_tls_version: d.last_tls,
        }
    }
}

/// An IMAP import job of a mailbox (never the old server's password).
#[derive(Debug, Serialize)]
pub struct ImportJobView {
    pub id: postfach_types::ImportJobId,
    pub mailbox_id: MailboxId,
    pub host: String,
    pub port: u16,
    /// `tls` or `starttls`.
    pub security: &'static str,
    pub login: String,
    pub started_by: String,
    /// The node running it.
    pub node: String,
    /// `queued`, `running`, `done`, `failed` or `interrupted`.
    pub state: &'static str,
    pub folders: u64,
    /// Messages copied (while running: handled so far).
    pub copied: u64,
    pub skipped: u64,
    pub current_folder: Option<String>,
    pub created_at: UnixTime,
    pub started_at: Option<UnixTime>,
    pub finished_at: Option<UnixTime>,
    /// What happened, once it ended (English).
    pub result: Option<String>,
}

impl From<postfach_store::import_jobs::ImportJob> for ImportJobView {
    fn from(j: postfach_store::import_jobs::ImportJob) -> Self {
        ImportJobView {
            id: j.id,
            mailbox_id: j.mailbox_id,
            host: j.source.host,
            port: j.source.port,
            security: if j.source.starttls { "starttls" } else { "tls" },
            login: j.source.login,
            started_by: j.started_by,
            node: j.node,
            state: j.state.as_str(),
            folders: j.folders,
            copied: j.copied,
            skipped: j.skipped,
            current_folder: j.current_folder,
            created_at: j.created_at,
            started_at: j.started_at,
            finished_at: j.finished_at,
            result: j.result,
        }
    }
}

/// A new app password: the password is in this answer only.
#[derive(Debug, Serialize)]
pub struct CreatedAppPasswordView {
    pub name: String,
    pub services: Vec<Service>,
    pub password: String,
}

impl From<postfach_admin::CreatedAppPassword> for CreatedAppPasswordView {
    fn from(c: postfach_admin::CreatedAppPassword) -> Self {
        CreatedAppPasswordView {
            name: c.app_password.name,
            services: c.app_password.services,
            password: c.password.expose().to_string(),
        }
    }
}

/// Converts a list.
pub fn all<T, V: From<T>>(items: Vec<T>) -> Vec<V> {
    items.into_iter().map(V::from).collect()
}

pub use postfach_admin::sieve_forms::{RuleInput, VacationInput};

/// A mailbox's vacation and filter forms.
#[derive(Debug, Serialize)]
pub struct SieveFormsView {
    /// `none`, `forms` (the forms' script is active) or `hand_written` (another script is;
    /// saving a form then needs `?replace=true`).
    pub active: &'static str,
    pub active_script: Option<String>,
    /// The addresses a vacation may name (`:addresses`): the mailbox's own and its aliases.
    pub addresses: Vec<String>,
    /// `null` until the vacation form was first saved.
    pub vacation: Option<VacationInput>,
    /// In order: the first rule that matches applies.
    pub rules: Vec<RuleInput>,
}

/// The filter list, in order.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesBody {
    pub rules: Vec<RuleInput>,
}

/// A script's text.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptBody {
    pub text: String,
}

/// Which stored script filters the mail (`null`: none).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActiveScriptBody {
    pub name: Option<String>,
}
