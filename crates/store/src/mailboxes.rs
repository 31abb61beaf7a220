//! Mailboxes and aliases.
//!
//! Every address hosted here is one row of `addresses`: the mailbox's own address
//! (`is_alias = 0`) or an alias (`is_alias = 1`), both pointing at a mailbox. The unique
//! key on that table is what makes "an address is a mailbox or an alias, never both"
//! hold, also under concurrent changes; alias domains never hold rows of their own, so
//! the rule holds across them too.

use postfach_types::{AccessMode, CustomerName, DomainName, EmailAddress, Language, UnixTime};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Tx, decode, flag};
use crate::domains::{Domain, find as find_domain};
use crate::quota::MailboxQuota;
use crate::{AliasId, Conflict, CustomerId, MailboxId, Scope, Store, StoreError};

/// The switches a customer sets per mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxSettings {
    pub access: AccessMode,
    pub submission: bool,
    pub tls_required: bool,
}

impl Default for MailboxSettings {
    /// IMAP, sending allowed, TLS only.
    fn default() -> Self {
        Self { access: AccessMode::DEFAULT, submission: true, tls_required: true }
    }
}

/// A change of some settings; `None` keeps the current value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SettingsChange {
    pub access: Option<AccessMode>,
    pub submission: Option<bool>,
    pub tls_required: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct Mailbox {
    pub id: MailboxId,
    pub customer_id: CustomerId,
    pub address: EmailAddress,
    pub settings: MailboxSettings,
    /// The current password was once sent without TLS; cleared by a password change.
    pub password_exposed: bool,
    pub created_at: UnixTime,
    pub changed_at: UnixTime,
    pub quota: MailboxQuota,
    /// What the mailbox stores now: bytes and messages, all folders.
    pub used_bytes: u64,
    pub used_messages: u64,
    /// The language of the mails Postfach writes into it.
    pub language: Language,
    /// Devices must use app passwords: the main password works only for the panel.
    pub app_passwords_only: bool,
    /// "Always require TLS to other servers": its mail is never sent in plaintext
    /// (`outbound_tls`; the customer's switch may be on as well).
    pub outbound_tls_required: bool,
}

#[derive(Debug, Clone)]
pub struct Alias {
    pub id: AliasId,
    pub customer_id: CustomerId,
    pub address: EmailAddress,
    /// The mailbox that receives the alias's mail.
    pub mailbox: EmailAddress,
}

const MAILBOX_SELECT: &str = "SELECT m.id, m.customer_id, m.address, m.access, m.submission, m.tls_required, \
     m.password_exposed, m.created_at, m.changed_at, m.quota_bytes, m.quota_messages, m.used_bytes, m.used_messages, \
     m.language, m.app_passwords_only, m.outbound_tls_required FROM mailboxes m";

const ALIAS_SELECT: &str = "SELECT a.id, a.customer_id, a.address, m.address AS mailbox \
     FROM addresses a JOIN mailboxes m ON m.id = a.mailbox_id";

fn mailbox_from_row(row: &AnyRow) -> Result<Mailbox, sqlx::Error> {
    Ok(Mailbox {
        id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        address: decode(row.try_get("address")?, EmailAddress::parse)?,
        settings: MailboxSettings {
            access: decode(row.try_get("access")?, str::parse)?,
            submission: row.try_get::<i64, _>("submission")? != 0,
            tls_required: row.try_get::<i64, _>("tls_required")? != 0,
        },
        password_exposed: row.try_get::<i64, _>("password_exposed")? != 0,
        created_at: UnixTime(row.try_get("created_at")?),
        changed_at: UnixTime(row.try_get("changed_at")?),
        quota: MailboxQuota {
            bytes: row.try_get::<Option<i64>, _>("quota_bytes")?.map(|q| u64::try_from(q).unwrap_or(0)),
            messages: row.try_get::<Option<i64>, _>("quota_messages")?.map(|q| u64::try_from(q).unwrap_or(0)),
        },
        used_bytes: u64::try_from(row.try_get::<i64, _>("used_bytes")?).unwrap_or(0),
        used_messages: u64::try_from(row.try_get::<i64, _>("used_messages")?).unwrap_or(0),
        language: decode(row.try_get("language")?, str::parse)?,
        app_passwords_only: row.try_get::<i64, _>("app_passwords_only")? != 0,
        outbound_tls_required: row.try_get::<i64, _>("outbound_tls_required")? != 0,
    })
}

fn alias_from_row(row: &AnyRow) -> Result<Alias, sqlx::Error> {
    Ok(Alias {
        id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        address: decode(row.try_get("address")?, EmailAddress::parse)?,
        mailbox: decode(row.try_get("mailbox")?, EmailAddress::parse)?,
    })
}

impl Store {
    pub async fn add_mailbox(
        &self,
        scope: Scope,
        address: &EmailAddress,
        password_hash: &str,
        settings: MailboxSettings,
    ) -> Result<Mailbox, StoreError> {
        let mut tx = self.begin_write().await?;
        let domain = hosting_domain(&mut tx, scope, address).await?;
        let now = UnixTime::now().0;
        let id: MailboxId = sqlx::query(
            "INSERT INTO mailboxes (customer_id, domain_id, address, password_hash, access, submission, tls_required, \
             password_exposed, created_at, changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $8) RETURNING id",
        )
        .bind(domain.customer_id)
        .bind(domain.id)
        .bind(address.to_string())
        .bind(password_hash)
        .bind(settings.access.as_str())
        .bind(flag(settings.submission))
        .bind(flag(settings.tls_required))
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| address_taken(e, address))?
        .try_get("id")?;
        insert_address(&mut tx, &domain, address, id, false).await?;
        crate::folders::create_default_folders(&mut tx, id).await?;
        let mailbox = find_mailbox(&mut tx, scope, address).await?;
        tx.commit().await?;
        Ok(mailbox)
    }

    pub async fn mailbox(&self, scope: Scope, address: &EmailAddress) -> Result<Mailbox, StoreError> {
        let mut conn = self.pool.acquire().await?;
        find_mailbox(&mut conn, scope, address).await
    }

    pub async fn mailbox_by_id(&self, scope: Scope, id: MailboxId) -> Result<Mailbox, StoreError> {
        self.one_in_scope(
            format!("{MAILBOX_SELECT} WHERE m.id = $1 AND ($2 IS NULL OR m.customer_id = $2)"),
            id,
            scope,
            "mailbox",
            mailbox_from_row,
        )
        .await
    }

    /// The mailboxes in scope, optionally of one domain, ordered by address.
    pub async fn mailboxes(&self, scope: Scope, domain: Option<&DomainName>) -> Result<Vec<Mailbox>, StoreError> {
        let sql = format!(
            "{MAILBOX_SELECT} JOIN domains d ON d.id = m.domain_id \
             WHERE ($1 IS NULL OR m.customer_id = $1) AND ($2 IS NULL OR d.name = $2) ORDER BY m.address"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(scope.customer_filter())
            .bind(domain.map(DomainName::to_string))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(mailbox_from_row).collect::<Result<_, _>>()?)
    }

    pub async fn set_mailbox_settings(
        &self,
        scope: Scope,
        address: &EmailAddress,
        change: SettingsChange,
    ) -> Result<Mailbox, StoreError> {
        let mut tx = self.begin_write().await?;
        let current = find_mailbox(&mut tx, scope, address).await?;
        let new = MailboxSettings {
            access: change.access.unwrap_or(current.settings.access),
            submission: change.submission.unwrap_or(current.settings.submission),
            tls_required: change.tls_required.unwrap_or(current.settings.tls_required),
        };
        sqlx::query(
            "UPDATE mailboxes SET access = $1, submission = $2, tls_required = $3, changed_at = $4 WHERE id = $5",
        )
        .bind(new.access.as_str())
        .bind(flag(new.submission))
        .bind(flag(new.tls_required))
        .bind(UnixTime::now().0)
        .bind(current.id)
        .execute(&mut *tx)
        .await?;
        let mailbox = find_mailbox(&mut tx, scope, address).await?;
        tx.commit().await?;
        Ok(mailbox)
    }

    /// Sets a new password hash; this also clears the exposed flag.
    pub async fn set_mailbox_password(
        &self,
        scope: Scope,
        address: &EmailAddress,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE mailboxes SET password_hash = $1, password_exposed = 0, changed_at = $2 \
             WHERE address = $3 AND ($4 IS NULL OR customer_id = $4)",
        )
        .bind(password_hash)
        .bind(UnixTime::now().0)
        .bind(address.to_string())
        .bind(scope.customer_filter())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 { Err(no_mailbox(address)) } else { Ok(()) }
    }

    /// Records that the mailbox's current password crossed the network unencrypted.
    pub async fn mark_password_exposed(&self, id: MailboxId) -> Result<(), StoreError> {
        sqlx::query("UPDATE mailboxes SET password_exposed = 1 WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Removes a mailbox and the aliases that pointed at it; returns those aliases.
    pub async fn remove_mailbox(&self, scope: Scope, address: &EmailAddress) -> Result<Vec<EmailAddress>, StoreError> {
        let mut tx = self.begin_write().await?;
        let mailbox = find_mailbox(&mut tx, scope, address).await?;
        let rows = sqlx::query("SELECT address FROM addresses WHERE mailbox_id = $1 AND is_alias = 1 ORDER BY address")
            .bind(mailbox.id)
            .fetch_all(&mut *tx)
            .await?;
        let aliases = rows
            .iter()
            .map(|row| decode(row.try_get("address")?, EmailAddress::parse))
            .collect::<Result<Vec<_>, _>>()?;
        for sql in [
            "DELETE FROM addresses WHERE mailbox_id = $1",
            "DELETE FROM expunged WHERE folder_id IN (SELECT id FROM folders WHERE mailbox_id = $1)",
            "DELETE FROM messages WHERE mailbox_id = $1",
            "DELETE FROM app_passwords WHERE mailbox_id = $1",
            "DELETE FROM import_positions WHERE mailbox_id = $1",
            "DELETE FROM import_jobs WHERE mailbox_id = $1",
            "DELETE FROM sent_log WHERE mailbox_id = $1",
            "DELETE FROM folders WHERE mailbox_id = $1",
            "DELETE FROM mailboxes WHERE id = $1",
        ] {
            sqlx::query(sql).bind(mailbox.id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(aliases)
    }

    /// Adds `address` as an alias of the mailbox `mailbox`, which must belong to the same
    /// customer as the alias's domain (it may be in another of the customer's domains).
    pub async fn add_alias(
        &self,
        scope: Scope,
        address: &EmailAddress,
        mailbox: &EmailAddress,
    ) -> Result<Alias, StoreError> {
        let mut tx = self.begin_write().await?;
        let target = find_mailbox(&mut tx, scope, mailbox).await?;
        let domain = hosting_domain(&mut tx, scope, address).await?;
        if domain.customer_id != target.customer_id {
            return Err(Conflict::OtherCustomer { mailbox: mailbox.clone(), domain: domain.name.clone() }.into());
        }
        insert_address(&mut tx, &domain, address, target.id, true).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{ALIAS_SELECT} WHERE a.address = $1")))
            .bind(address.to_string())
            .fetch_one(&mut *tx)
            .await?;
        let alias = alias_from_row(&row)?;
        tx.commit().await?;
        Ok(alias)
    }

    /// The alias with this id, if it is in scope.
    pub async fn alias_by_id(&self, scope: Scope, id: AliasId) -> Result<Alias, StoreError> {
        self.one_in_scope(
            format!("{ALIAS_SELECT} WHERE a.id = $1 AND a.is_alias = 1 AND ($2 IS NULL OR a.customer_id = $2)"),
            id,
            scope,
            "alias",
            alias_from_row,
        )
        .await
    }

    /// The aliases in scope, optionally only those at one domain, ordered by address.
    pub async fn aliases(&self, scope: Scope, domain: Option<&DomainName>) -> Result<Vec<Alias>, StoreError> {
        let sql = format!(
            "{ALIAS_SELECT} JOIN domains d ON d.id = a.domain_id WHERE a.is_alias = 1 \
             AND ($1 IS NULL OR a.customer_id = $1) AND ($2 IS NULL OR d.name = $2) ORDER BY a.address"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(scope.customer_filter())
            .bind(domain.map(DomainName::to_string))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(alias_from_row).collect::<Result<_, _>>()?)
    }

    /// The aliases that deliver into one mailbox.
    pub async fn aliases_of(&self, scope: Scope, mailbox: &EmailAddress) -> Result<Vec<Alias>, StoreError> {
        let sql = format!(
            "{ALIAS_SELECT} WHERE a.is_alias = 1 AND m.address = $1 AND ($2 IS NULL OR a.customer_id = $2) ORDER BY a.address"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(mailbox.to_string())
            .bind(scope.customer_filter())
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(alias_from_row).collect::<Result<_, _>>()?)
    }

    pub async fn remove_alias(&self, scope: Scope, address: &EmailAddress) -> Result<(), StoreError> {
        let done = sqlx::query(
            "DELETE FROM addresses WHERE address = $1 AND is_alias = 1 AND ($2 IS NULL OR customer_id = $2)",
        )
        .bind(address.to_string())
        .bind(scope.customer_filter())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            Err(StoreError::NotFound(format!("there is no alias {address}")))
        } else {
            Ok(())
        }
    }

    /// The customer that owns a mailbox, for the password rule's user inputs.
    pub async fn mailbox_customer_name(&self, id: MailboxId) -> Result<CustomerName, StoreError> {
        let row =
            sqlx::query("SELECT c.name FROM mailboxes m JOIN customers c ON c.id = m.customer_id WHERE m.id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("there is no mailbox with id {id}")))?;
        Ok(decode(row.try_get("name")?, CustomerName::parse)?)
    }
}

/// The real domain, in scope, in which `address` may be created as a mailbox or alias.
async fn hosting_domain(tx: &mut Tx, scope: Scope, address: &EmailAddress) -> Result<Domain, StoreError> {
    address
        .local_part()
        .check_hostable()
        .map_err(|why| Conflict::NotHostable { address: address.clone(), why: why.to_string() })?;
    let domain = find_domain(tx, scope, address.domain()).await?;
    if let Some(real) = &domain.alias_of {
        return Err(Conflict::InAliasDomain {
            domain: domain.name.clone(),
            real: real.clone(),
            instead: address.at_domain(real),
        }
        .into());
    }
    Ok(domain)
}

async fn insert_address(
    tx: &mut Tx,
    domain: &Domain,
    address: &EmailAddress,
    mailbox: MailboxId,
    is_alias: bool,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO addresses (customer_id, domain_id, local_part, address, mailbox_id, is_alias, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(domain.customer_id)
    .bind(domain.id)
    .bind(address.local_part().as_str())
    .bind(address.to_string())
    .bind(mailbox)
    .bind(flag(is_alias))
    .bind(UnixTime::now().0)
    .execute(&mut **tx)
    .await
    .map_err(|e| address_taken(e, address))?;
    Ok(())
}

fn address_taken(e: sqlx::Error, address: &EmailAddress) -> StoreError {
    if StoreError::is_unique_violation(&e) {
        Conflict::AddressTaken { address: address.clone() }.into()
    } else {
        e.into()
    }
}

pub(crate) async fn find_mailbox(
    conn: &mut sqlx::AnyConnection,
    scope: Scope,
    address: &EmailAddress,
) -> Result<Mailbox, StoreError> {
    let sql = format!("{MAILBOX_SELECT} WHERE m.address = $1 AND ($2 IS NULL OR m.customer_id = $2)");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(address.to_string())
        .bind(scope.customer_filter())
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(row) => Ok(mailbox_from_row(&row)?),
        None => Err(no_mailbox(address)),
    }
}

fn no_mailbox(address: &EmailAddress) -> StoreError {
    StoreError::NotFound(format!("there is no mailbox {address}"))
}
