//! Sieve scripts of a mailbox and what vacation replies remember.
//!
//! A mailbox has named scripts, at most one of them active (a partial unique index keeps
//! it so under concurrent changes). The active script's `updated_at` is mirrored in
//! `mailboxes.sieve_active_at` in the same transaction, so delivery learns with the
//! recipient whether a script runs and whether its compiled copy is still current.
//! Whether a script is valid, how long it may be and how many there may be are decided by
//! the caller (`postfach-admin`); the store only counts inside the transaction.
//!
//! Vacation replies (RFC 5230) are remembered per mailbox, sender and vacation `handle`;
//! [`Store::vacation_reply_due`] decides atomically whether this sender gets a reply now.

use postfach_types::UnixTime;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Tx, flag};
use crate::{Conflict, CustomerId, MailboxId, Scope, Store, StoreError};

/// A script as listed (without its text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SieveScriptInfo {
    pub name: String,
    pub active: bool,
    /// The script's length in bytes.
    pub size: u64,
    pub updated_at: UnixTime,
}

/// A script with its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SieveScript {
    pub mailbox_id: MailboxId,
    pub name: String,
    pub text: String,
    pub active: bool,
    pub updated_at: UnixTime,
}

/// Whether a put created a new script or replaced the text of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Created,
    Replaced,
}

fn script_from_row(row: &AnyRow) -> Result<SieveScript, sqlx::Error> {
    Ok(SieveScript {
        mailbox_id: row.try_get("mailbox_id")?,
        name: row.try_get("name")?,
        text: row.try_get("script")?,
        active: row.try_get::<i64, _>("active")? != 0,
        updated_at: UnixTime(row.try_get("updated_at")?),
    })
}

/// The mailbox's customer, checked against `scope` inside `tx`.
async fn owner(tx: &mut Tx, scope: Scope, mailbox: MailboxId) -> Result<CustomerId, StoreError> {
    let row = sqlx::query("SELECT customer_id FROM mailboxes WHERE id = $1 AND ($2 IS NULL OR customer_id = $2)")
        .bind(mailbox)
        .bind(scope.customer_filter())
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        Some(row) => Ok(row.try_get("customer_id")?),
        None => Err(StoreError::NotFound(format!("there is no mailbox with id {mailbox}"))),
    }
}

fn no_script(name: &str) -> StoreError {
    StoreError::NotFound(format!("this mailbox has no filter script named '{name}'"))
}

/// The `updated_at` of a change to one of the mailbox's scripts: now, but always later than
/// every earlier change of its scripts, so that two changes within one second still differ
/// (delivery's compiled-script cache is keyed by it).
async fn change_time(tx: &mut Tx, mailbox: MailboxId) -> Result<i64, StoreError> {
    let last: Option<i64> = sqlx::query("SELECT MAX(updated_at) AS last FROM sieve_scripts WHERE mailbox_id = $1")
        .bind(mailbox)
        .fetch_one(&mut **tx)
        .await?
        .try_get("last")?;
    Ok(UnixTime::now().0.max(last.map_or(0, |l| l + 1)))
}

/// Mirrors the active script's `updated_at` into the mailbox row.
async fn mirror_active(tx: &mut Tx, mailbox: MailboxId) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE mailboxes SET sieve_active_at = \
         (SELECT updated_at FROM sieve_scripts WHERE mailbox_id = $1 AND active = 1) WHERE id = $1",
    )
    .bind(mailbox)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// A mailbox's scripts in `scope`, by name.
    pub async fn sieve_scripts(&self, scope: Scope, mailbox: MailboxId) -> Result<Vec<SieveScriptInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, active, LENGTH(script) AS size, updated_at FROM sieve_scripts \
             WHERE mailbox_id = $1 AND ($2 IS NULL OR customer_id = $2) ORDER BY name",
        )
        .bind(mailbox)
        .bind(scope.customer_filter())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SieveScriptInfo {
                    name: row.try_get("name")?,
                    active: row.try_get::<i64, _>("active")? != 0,
                    size: u64::try_from(row.try_get::<i64, _>("size")?).unwrap_or(0),
                    updated_at: UnixTime(row.try_get("updated_at")?),
                })
            })
            .collect()
    }

    /// One script of a mailbox in `scope`, with its text.
    pub async fn sieve_script(&self, scope: Scope, mailbox: MailboxId, name: &str) -> Result<SieveScript, StoreError> {
        let row = sqlx::query(
            "SELECT mailbox_id, name, script, active, updated_at FROM sieve_scripts \
             WHERE mailbox_id = $1 AND name = $2 AND ($3 IS NULL OR customer_id = $3)",
        )
        .bind(mailbox)
        .bind(name)
        .bind(scope.customer_filter())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(script_from_row(&row)?),
            None => Err(no_script(name)),
        }
    }

    /// The active script of a mailbox in `scope`, if one is active.
    pub async fn active_sieve_script(
        &self,
        scope: Scope,
        mailbox: MailboxId,
    ) -> Result<Option<SieveScript>, StoreError> {
        let row = sqlx::query(
            "SELECT mailbox_id, name, script, active, updated_at FROM sieve_scripts \
             WHERE mailbox_id = $1 AND active = 1 AND ($2 IS NULL OR customer_id = $2)",
        )
        .bind(mailbox)
        .bind(scope.customer_filter())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(script_from_row).transpose()?)
    }

    /// When the mailbox's active script last changed (`None`: no script active), for the
    /// delivery's cache of compiled scripts.
    pub async fn sieve_active_at(&self, mailbox: MailboxId) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT sieve_active_at FROM mailboxes WHERE id = $1")
            .bind(mailbox)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<Option<i64>, _>("sieve_active_at")).transpose()?.flatten())
    }

    /// Stores `text` as the script `name`: a new script (refused beyond `max_scripts`) or
    /// the new text of an existing one (an active one stays active).
    pub async fn put_sieve_script(
        &self,
        scope: Scope,
        mailbox: MailboxId,
        name: &str,
        text: &str,
        max_scripts: u32,
    ) -> Result<Put, StoreError> {
        let mut tx = self.begin_write().await?;
        let customer = owner(&mut tx, scope, mailbox).await?;
        let now = change_time(&mut tx, mailbox).await?;
        let replaced =
            sqlx::query("UPDATE sieve_scripts SET script = $1, updated_at = $2 WHERE mailbox_id = $3 AND name = $4")
                .bind(text)
                .bind(now)
                .bind(mailbox)
                .bind(name)
                .execute(&mut *tx)
                .await?;
        let put = if replaced.rows_affected() > 0 {
            Put::Replaced
        } else {
            let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM sieve_scripts WHERE mailbox_id = $1")
                .bind(mailbox)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
            if count >= i64::from(max_scripts) {
                return Err(Conflict::TooManySieveScripts { limit: max_scripts }.into());
            }
            sqlx::query(
                "INSERT INTO sieve_scripts (customer_id, mailbox_id, name, script, active, updated_at) \
                 VALUES ($1, $2, $3, $4, 0, $5)",
            )
            .bind(customer)
            .bind(mailbox)
            .bind(name)
            .bind(text)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            Put::Created
        };
        mirror_active(&mut tx, mailbox).await?;
        tx.commit().await?;
        Ok(put)
    }

    /// Renames a script (an active one stays active).
    pub async fn rename_sieve_script(
        &self,
        scope: Scope,
        mailbox: MailboxId,
        name: &str,
        new_name: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        owner(&mut tx, scope, mailbox).await?;
        if name == new_name {
            let exists = sqlx::query("SELECT 1 AS one FROM sieve_scripts WHERE mailbox_id = $1 AND name = $2")
                .bind(mailbox)
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
            return if exists.is_some() { Ok(()) } else { Err(no_script(name)) };
        }
        let done = sqlx::query("UPDATE sieve_scripts SET name = $1 WHERE mailbox_id = $2 AND name = $3")
            .bind(new_name)
            .bind(mailbox)
            .bind(name)
            .execute(&mut *tx)
            .await;
        match done {
            Ok(done) if done.rows_affected() == 0 => return Err(no_script(name)),
            Ok(_) => {}
            Err(e) if StoreError::is_unique_violation(&e) => {
                return Err(Conflict::SieveScriptNameTaken { name: new_name.to_string() }.into());
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes a script; the active one is refused (switch it off first, RFC 5804).
    pub async fn delete_sieve_script(&self, scope: Scope, mailbox: MailboxId, name: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        owner(&mut tx, scope, mailbox).await?;
        let row = sqlx::query("SELECT active FROM sieve_scripts WHERE mailbox_id = $1 AND name = $2")
            .bind(mailbox)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Err(no_script(name)) };
        if row.try_get::<i64, _>("active")? != 0 {
            return Err(Conflict::SieveScriptActive { name: name.to_string() }.into());
        }
        sqlx::query("DELETE FROM sieve_scripts WHERE mailbox_id = $1 AND name = $2")
            .bind(mailbox)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Makes `name` the mailbox's active script, or with `None` switches filtering off.
    pub async fn activate_sieve_script(
        &self,
        scope: Scope,
        mailbox: MailboxId,
        name: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        owner(&mut tx, scope, mailbox).await?;
        if let Some(name) = name {
            let exists = sqlx::query("SELECT active FROM sieve_scripts WHERE mailbox_id = $1 AND name = $2")
                .bind(mailbox)
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(exists) = exists else { return Err(no_script(name)) };
            if exists.try_get::<i64, _>("active")? != 0 {
                return Ok(());
            }
        }
        sqlx::query("UPDATE sieve_scripts SET active = 0 WHERE mailbox_id = $1 AND active = 1")
            .bind(mailbox)
            .execute(&mut *tx)
            .await?;
        if let Some(name) = name {
            // A new activation counts as a change: delivery compiles it afresh.
            let now = change_time(&mut tx, mailbox).await?;
            sqlx::query("UPDATE sieve_scripts SET active = $1, updated_at = $2 WHERE mailbox_id = $3 AND name = $4")
                .bind(flag(true))
                .bind(now)
                .bind(mailbox)
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        mirror_active(&mut tx, mailbox).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether `sender` gets a vacation reply from `mailbox` now for the vacation
    /// `handle`: yes when none went out within `days` days. A yes is remembered at once
    /// (one statement, so two deliveries at the same time send one reply).
    pub async fn vacation_reply_due(
        &self,
        mailbox: MailboxId,
        sender: &str,
        handle: &str,
        days: u32,
    ) -> Result<bool, StoreError> {
        let now = UnixTime::now().0;
        let cutoff = now - i64::from(days) * 86_400;
        let done = sqlx::query(
            "INSERT INTO vacation_replies (mailbox_id, sender, handle, replied_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (mailbox_id, sender, handle) DO UPDATE SET replied_at = excluded.replied_at \
             WHERE vacation_replies.replied_at <= $5",
        )
        .bind(mailbox)
        .bind(sender)
        .bind(handle)
        .bind(now)
        .bind(cutoff)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Forgets vacation replies older than `days` days (upkeep); the number forgotten.
    pub async fn forget_vacation_replies(&self, days: u32) -> Result<u64, StoreError> {
        let cutoff = UnixTime::now().0 - i64::from(days) * 86_400;
        let done =
            sqlx::query("DELETE FROM vacation_replies WHERE replied_at < $1").bind(cutoff).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}
