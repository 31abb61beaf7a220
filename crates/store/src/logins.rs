//! Login accounts (what the `auth` crate checks a secret against) and the login log.
//!
//! The log records every attempt on every service, refusals included, with its TLS
//! state. It is what the panel's "Anmeldungen" list shows and is pruned after the
//! configured retention.

use std::net::IpAddr;

use postfach_types::{CustomerName, EmailAddress, LoginResult, Mechanism, Role, Service, TlsInfo, UnixTime};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::decode;
use crate::mailboxes::MailboxSettings;
use crate::{CustomerId, MailboxId, Scope, Store, StoreError};

/// An account a login name resolved to, with what the login policy needs.
#[derive(Debug, Clone)]
pub struct LoginAccount {
    pub customer_id: CustomerId,
    pub password_hash: String,
    /// The account or its customer is disabled.
    pub disabled: bool,
    pub kind: LoginAccountKind,
}

#[derive(Debug, Clone)]
pub enum LoginAccountKind {
    /// `app_passwords_only`: the main password works only for the panel.
    Mailbox {
        id: MailboxId,
        address: EmailAddress,
        settings: MailboxSettings,
        app_passwords_only: bool,
    },
    Customer {
        name: CustomerName,
        role: Role,
    },
}

/// One entry of the login log, as [`Store::record_login`] wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginEntryId(i64);

/// One login attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRecord {
    pub at: UnixTime,
    pub customer_id: Option<CustomerId>,
    pub mailbox_id: Option<MailboxId>,
    /// The login name as sent (cut to 256 characters, control characters replaced).
    pub login: String,
    pub service: Service,
    pub remote_ip: IpAddr,
    /// `None`: the attempt was not encrypted.
    pub tls: Option<TlsInfo>,
    pub mechanism: Mechanism,
    pub result: LoginResult,
    /// The app password's name when the login used one; `None` for the main password
    /// (and for attempts that proved no credential).
    pub credential: Option<String>,
}

/// Which log entries to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFilter {
    pub mailbox: Option<MailboxId>,
    pub only_unencrypted: bool,
    pub only_failed: bool,
    pub limit: i64,
}

impl Default for LoginFilter {
    fn default() -> Self {
        Self { mailbox: None, only_unencrypted: false, only_failed: false, limit: 100 }
    }
}

const MAX_LOGIN_CHARS: usize = 256;

fn clean_login(login: &str) -> String {
    login.chars().take(MAX_LOGIN_CHARS).map(|c| if c.is_control() { '\u{FFFD}' } else { c }).collect()
}

fn record_from_row(row: &AnyRow) -> Result<LoginRecord, sqlx::Error> {
    let tls = match (row.try_get::<Option<String>, _>("tls_version")?, row.try_get::<Option<String>, _>("tls_cipher")?)
    {
        (Some(version), Some(cipher)) => Some(TlsInfo { version, cipher }),
        _ => None,
    };
    Ok(LoginRecord {
        at: UnixTime(row.try_get("at")?),
        customer_id: row.try_get("customer_id")?,
        mailbox_id: row.try_get("mailbox_id")?,
        login: row.try_get("login")?,
        service: decode(row.try_get("service")?, str::parse)?,
        remote_ip: decode(row.try_get("remote_ip")?, str::parse)?,
        tls,
        mechanism: decode(row.try_get("mechanism")?, str::parse)?,
        result: decode(row.try_get("result")?, str::parse)?,
        credential: row.try_get("credential")?,
    })
}

impl Store {
    /// The mailbox with this address, for a protocol login.
    pub async fn mailbox_login(&self, address: &EmailAddress) -> Result<Option<LoginAccount>, StoreError> {
        let row = sqlx::query(
            "SELECT m.id, m.customer_id, m.address, m.password_hash, m.access, m.submission, m.tls_required, \
             m.app_passwords_only, c.disabled FROM mailboxes m JOIN customers c ON c.id = m.customer_id WHERE m.address = $1",
        )
        .bind(address.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(LoginAccount {
            customer_id: row.try_get("customer_id")?,
            password_hash: row.try_get("password_hash")?,
            disabled: row.try_get::<i64, _>("disabled")? != 0,
            kind: LoginAccountKind::Mailbox {
                id: row.try_get("id")?,
                address: decode(row.try_get("address")?, EmailAddress::parse)?,
                settings: MailboxSettings {
                    access: decode(row.try_get("access")?, str::parse)?,
                    submission: row.try_get::<i64, _>("submission")? != 0,
                    tls_required: row.try_get::<i64, _>("tls_required")? != 0,
                },
                app_passwords_only: row.try_get::<i64, _>("app_passwords_only")? != 0,
            },
        }))
    }

    /// The customer or admin with this name, for a panel sign-in.
    pub async fn customer_login(&self, name: &CustomerName) -> Result<Option<LoginAccount>, StoreError> {
        let row = sqlx::query("SELECT id, name, role, password_hash, disabled FROM customers WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(LoginAccount {
            customer_id: row.try_get("id")?,
            password_hash: row.try_get("password_hash")?,
            disabled: row.try_get::<i64, _>("disabled")? != 0,
            kind: LoginAccountKind::Customer {
                name: decode(row.try_get("name")?, CustomerName::parse)?,
                role: decode(row.try_get("role")?, str::parse)?,
            },
        }))
    }

    /// Writes the attempt down; the entry's id (for [`Store::name_login_client`]).
    pub async fn record_login(&self, record: &LoginRecord) -> Result<LoginEntryId, StoreError> {
        let row = sqlx::query(
            "INSERT INTO login_log (at, customer_id, mailbox_id, login, service, remote_ip, tls_version, tls_cipher, \
             mechanism, result, credential) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(record.at.0)
        .bind(record.customer_id)
        .bind(record.mailbox_id)
        .bind(clean_login(&record.login))
        .bind(record.service.as_str())
        .bind(record.remote_ip.to_string())
        .bind(record.tls.as_ref().map(|t| t.version.clone()))
        .bind(record.tls.as_ref().map(|t| t.cipher.clone()))
        .bind(record.mechanism.as_str())
        .bind(record.result.as_str())
        .bind(record.credential.as_deref())
        .fetch_one(&self.pool)
        .await?;
        Ok(LoginEntryId(row.try_get("id")?))
    }

    /// Names the client of a successful login (from IMAP `ID`, cut to 64 characters by
    /// the protocol); the devices page groups by it. The first name a session sends stays.
    pub async fn name_login_client(&self, entry: LoginEntryId, client: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE login_log SET client = $1 WHERE id = $2 AND client IS NULL")
            .bind(client)
            .bind(entry.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Log entries in scope, newest first. A customer sees the attempts on its own
    /// mailboxes and its own panel account, never attempts on unknown names.
    pub async fn logins(&self, scope: Scope, filter: LoginFilter) -> Result<Vec<LoginRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, customer_id, mailbox_id, login, service, remote_ip, tls_version, tls_cipher, mechanism, result, \
             credential FROM login_log WHERE ($1 IS NULL OR customer_id = $1) AND ($2 IS NULL OR mailbox_id = $2) \
             AND ($3 = 0 OR tls_version IS NULL) AND ($4 = 0 OR result <> 'ok') \
             ORDER BY at DESC, id DESC LIMIT $5",
        )
        .bind(scope.customer_filter())
        .bind(filter.mailbox)
        .bind(i64::from(filter.only_unencrypted))
        .bind(i64::from(filter.only_failed))
        .bind(filter.limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(record_from_row).collect::<Result<_, _>>()?)
    }

    /// Deletes log entries older than `before`; returns how many.
    pub async fn prune_logins(&self, before: UnixTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM login_log WHERE at < $1").bind(before.0).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}
