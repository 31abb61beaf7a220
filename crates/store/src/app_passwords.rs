//! App passwords: one credential per device of a mailbox, limited to some services,
//! revocable, with its last use.
//!
//! Only the hash of a password is stored, with its `lookup` key (the random start of the
//! password, see `postfach_auth::app_passwords`) so that a login finds the one row to
//! verify against. The rules (how a password looks, what a login may do with it) live in
//! `auth`; the store keeps rows and counts revocations.
//!
//! Revocation reaches sessions that are already logged in through [`Revocations`]: a
//! counter in memory bumped by every revocation on this node and, on PostgreSQL, by the
//! revocations other nodes announce on the change channel (`changes.rs`). A session
//! compares the counter per command (an atomic load) and only when it moved asks the
//! database whether its app password still exists.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use postfach_types::{Service, UnixTime};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::decode;
use crate::{AppPasswordId, Conflict, CustomerId, MailboxId, Scope, Store, StoreError};

/// The most app passwords one mailbox may have.
pub const MAX_PER_MAILBOX: i64 = 50;

/// The revocation counter shared by every clone of a [`Store`].
#[derive(Debug, Clone, Default)]
pub struct Revocations(Arc<AtomicU64>);

impl Revocations {
    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, Ordering::Release);
    }

    pub fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// An app password as listed (never the password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPassword {
    pub id: AppPasswordId,
    pub customer_id: CustomerId,
    pub mailbox_id: MailboxId,
    pub name: String,
    pub services: Vec<Service>,
    pub created_at: UnixTime,
    pub last_use: Option<LastUse>,
}

/// The last successful login with an app password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastUse {
    pub at: UnixTime,
    pub service: Service,
    pub remote_ip: IpAddr,
    /// `None`: without TLS.
    pub tls_version: Option<String>,
    /// The client's name from IMAP `ID`, when it sent one.
    pub client: Option<String>,
}

/// A new app password to store.
#[derive(Debug, Clone)]
pub struct NewAppPassword<'a> {
    pub name: &'a str,
    pub services: &'a [Service],
    pub lookup: &'a str,
    pub hash: &'a str,
}

/// What a login checks an app password against.
#[derive(Debug, Clone)]
pub struct AppPasswordLogin {
    pub id: AppPasswordId,
    pub name: String,
    pub hash: String,
    pub services: Vec<Service>,
}

fn services_to_text(services: &[Service]) -> String {
    services.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
}

fn services_from_text(text: &str) -> Result<Vec<Service>, sqlx::Error> {
    text.split_whitespace().map(|w| decode(w.to_string(), str::parse)).collect()
}

macro_rules! select {
    ($where:literal) => {
        concat!(
            "SELECT id, customer_id, mailbox_id, name, services, created_at, last_used_at, last_service, ",
            "last_ip, last_tls, last_client FROM app_passwords ",
            $where
        )
    };
}

fn from_row(row: &AnyRow) -> Result<AppPassword, sqlx::Error> {
    let last_use = match row.try_get::<Option<i64>, _>("last_used_at")? {
        Some(at) => Some(LastUse {
            at: UnixTime(at),
            service: decode(row.try_get("last_service")?, str::parse)?,
            remote_ip: decode(row.try_get("last_ip")?, str::parse)?,
            tls_version: row.try_get("last_tls")?,
            client: row.try_get("last_client")?,
        }),
        None => None,
    };
    Ok(AppPassword {
        id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        mailbox_id: row.try_get("mailbox_id")?,
        name: row.try_get("name")?,
        services: services_from_text(&row.try_get::<String, _>("services")?)?,
        created_at: UnixTime(row.try_get("created_at")?),
        last_use,
    })
}

impl Store {
    /// The revocation counter (see the module documentation).
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// Stores a new app password for a mailbox in `scope`. Refused when the mailbox has
    /// one of that name already, or [`MAX_PER_MAILBOX`].
    pub async fn add_app_password(
        &self,
        scope: Scope,
        mailbox: MailboxId,
        new: NewAppPassword<'_>,
    ) -> Result<AppPassword, StoreError> {
        let mut tx = self.begin_write().await?;
        let owner = sqlx::query("SELECT customer_id FROM mailboxes WHERE id = $1 AND ($2 IS NULL OR customer_id = $2)")
            .bind(mailbox)
            .bind(scope.customer_filter())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(owner) = owner else {
            return Err(StoreError::NotFound(format!("there is no mailbox with id {mailbox}")));
        };
        let customer_id: CustomerId = owner.try_get("customer_id")?;
        let existing = sqlx::query("SELECT name FROM app_passwords WHERE mailbox_id = $1")
            .bind(mailbox)
            .fetch_all(&mut *tx)
            .await?;
        if existing.len() as i64 >= MAX_PER_MAILBOX {
            return Err(Conflict::TooManyAppPasswords { limit: MAX_PER_MAILBOX }.into());
        }
        for row in &existing {
            if row.try_get::<String, _>("name")? == new.name {
                return Err(Conflict::AppPasswordNameTaken { name: new.name.to_string() }.into());
            }
        }
        let row = sqlx::query(
            "INSERT INTO app_passwords (customer_id, mailbox_id, name, lookup, hash, services, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(customer_id)
        .bind(mailbox)
        .bind(new.name)
        .bind(new.lookup)
        .bind(new.hash)
        .bind(services_to_text(new.services))
        .bind(UnixTime::now().0)
        .fetch_one(&mut *tx)
        .await?;
        let id: AppPasswordId = row.try_get("id")?;
        let created = sqlx::query(select!("WHERE id = $1")).bind(id).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(from_row(&created)?)
    }

    /// A mailbox's app passwords in `scope`, by name.
    pub async fn app_passwords(&self, scope: Scope, mailbox: MailboxId) -> Result<Vec<AppPassword>, StoreError> {
        let rows = sqlx::query(select!("WHERE mailbox_id = $1 AND ($2 IS NULL OR customer_id = $2) ORDER BY name"))
            .bind(mailbox)
            .bind(scope.customer_filter())
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Revokes a mailbox's app password by name: the row is gone, sessions that used it
    /// learn it at their next command (on every node).
    pub async fn remove_app_password(&self, scope: Scope, mailbox: MailboxId, name: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "DELETE FROM app_passwords WHERE mailbox_id = $1 AND name = $2 AND ($3 IS NULL OR customer_id = $3)",
        )
        .bind(mailbox)
        .bind(name)
        .bind(scope.customer_filter())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("this mailbox has no app password named '{name}'")));
        }
        self.announce_revocation(tx).await
    }

    /// The app password of `mailbox` whose lookup key is `lookup`, for a login.
    pub async fn app_password_login(
        &self,
        mailbox: MailboxId,
        lookup: &str,
    ) -> Result<Option<AppPasswordLogin>, StoreError> {
        let row =
            sqlx::query("SELECT id, name, hash, services FROM app_passwords WHERE lookup = $1 AND mailbox_id = $2")
                .bind(lookup)
                .bind(mailbox)
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(AppPasswordLogin {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            hash: row.try_get("hash")?,
            services: services_from_text(&row.try_get::<String, _>("services")?)?,
        }))
    }

    /// Whether the app password still exists (asked by a session only after the
    /// revocation counter moved).
    pub async fn app_password_exists(&self, id: AppPasswordId) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT id FROM app_passwords WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        Ok(row.is_some())
    }

    /// Records a successful login with an app password.
    pub async fn record_app_password_use(&self, id: AppPasswordId, last: &LastUse) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE app_passwords SET last_used_at = $1, last_service = $2, last_ip = $3, last_tls = $4, \
             last_client = COALESCE($5, last_client) WHERE id = $6",
        )
        .bind(last.at.0)
        .bind(last.service.as_str())
        .bind(last.remote_ip.to_string())
        .bind(last.tls_version.clone())
        .bind(last.client.clone())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records the client name an IMAP client sent with `ID` after logging in.
    pub async fn record_app_password_client(&self, id: AppPasswordId, client: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE app_passwords SET last_client = $1 WHERE id = $2")
            .bind(client)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sets whether the mailbox's devices must use app passwords.
    pub async fn set_app_passwords_only(&self, scope: Scope, mailbox: MailboxId, on: bool) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE mailboxes SET app_passwords_only = $1, changed_at = $2 WHERE id = $3 \
             AND ($4 IS NULL OR customer_id = $4)",
        )
        .bind(crate::db::flag(on))
        .bind(UnixTime::now().0)
        .bind(mailbox)
        .bind(scope.customer_filter())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("there is no mailbox with id {mailbox}")));
        }
        Ok(())
    }
}
