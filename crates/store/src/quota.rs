//! Quotas: the limits of mailboxes and customers, and the use counters that the message
//! transactions keep (`mailboxes.used_bytes`, `used_messages`), so that a delivery reads
//! one row instead of summing messages.
//!
//! What fits is decided by [`postfach_types::Space::room`]. The customer's limit covers
//! what all its mailboxes store together; a mailbox's own limit may not exceed it.
//! Warning levels ([`postfach_types::WARNING_LEVELS`]) are remembered per mailbox in
//! `quota_warned`: raised when a message makes the use cross one (the caller then sends
//! the notice, once), lowered when deletions bring the use below it again.

use postfach_types::{CustomerName, EmailAddress, Language, Room, Space, UnixTime};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Tx, decode};
use crate::mailboxes::find_mailbox;
use crate::{Conflict, MailboxId, Scope, Store, StoreError};

/// A mailbox's own limits; `None`: no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxQuota {
    pub bytes: Option<u64>,
    pub messages: Option<u64>,
}

/// A mailbox's use, limits and language, as a quota warning needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaState {
    pub address: EmailAddress,
    pub language: Language,
    pub space: Space,
}

/// The columns that make a [`Space`] for the mailbox `m` (its customer's total is summed
/// over the customer's mailboxes only when the customer has a limit).
pub(crate) const SPACE_COLUMNS: &str = "m.used_bytes, m.used_messages, m.quota_bytes, m.quota_messages, \
     (SELECT c.quota_bytes FROM customers c WHERE c.id = m.customer_id) AS customer_quota, \
     CASE WHEN (SELECT c.quota_bytes FROM customers c WHERE c.id = m.customer_id) IS NULL THEN 0 \
     ELSE (SELECT CAST(COALESCE(SUM(o.used_bytes), 0) AS BIGINT) FROM mailboxes o WHERE o.customer_id = m.customer_id) END \
     AS customer_used";

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn limit(v: Option<i64>) -> Option<u64> {
    v.map(count)
}

fn db_number(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn space_from_row(row: &AnyRow) -> Result<Space, sqlx::Error> {
    Ok(Space {
        used_bytes: count(row.try_get("used_bytes")?),
        used_messages: count(row.try_get("used_messages")?),
        quota_bytes: limit(row.try_get("quota_bytes")?),
        quota_messages: limit(row.try_get("quota_messages")?),
        customer_used_bytes: count(row.try_get("customer_used")?),
        customer_quota_bytes: limit(row.try_get("customer_quota")?),
    })
}

/// Adds `bytes` in `messages` messages to the mailbox's use; returns the warning level to
/// tell the mailbox about, if the use just crossed one it was not told about yet.
pub(crate) async fn add_use(
    tx: &mut Tx,
    mailbox: MailboxId,
    bytes: u64,
    messages: u64,
) -> Result<Option<u8>, StoreError> {
    let row = sqlx::query(
        "UPDATE mailboxes SET used_bytes = used_bytes + $1, used_messages = used_messages + $2 WHERE id = $3 \
         RETURNING used_bytes, used_messages, quota_bytes, quota_messages, quota_warned",
    )
    .bind(db_number(bytes))
    .bind(db_number(messages))
    .bind(mailbox)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let (level, warned) = own_level(&row)?;
    if level <= warned {
        return Ok(None);
    }
    set_warned(tx, mailbox, level).await?;
    Ok(Some(level))
}

/// Takes `bytes` in `messages` messages off the mailbox's use (the mailbox of `folder`),
/// and lowers the remembered warning level when the use fell below it.
pub(crate) async fn remove_use(
    tx: &mut Tx,
    folder: crate::FolderId,
    bytes: u64,
    messages: u64,
) -> Result<(), StoreError> {
    let row = sqlx::query(
        "UPDATE mailboxes SET used_bytes = CASE WHEN used_bytes > $1 THEN used_bytes - $1 ELSE 0 END, \
         used_messages = CASE WHEN used_messages > $2 THEN used_messages - $2 ELSE 0 END \
         WHERE id = (SELECT mailbox_id FROM folders WHERE id = $3) \
         RETURNING id, used_bytes, used_messages, quota_bytes, quota_messages, quota_warned",
    )
    .bind(db_number(bytes))
    .bind(db_number(messages))
    .bind(folder)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Ok(()) };
    let (level, warned) = own_level(&row)?;
    if level < warned {
        set_warned(tx, row.try_get("id")?, level).await?;
    }
    Ok(())
}

/// The warning level the mailbox's use has reached, and the one it was told about.
fn own_level(row: &AnyRow) -> Result<(u8, u8), sqlx::Error> {
    let space = Space {
        used_bytes: count(row.try_get("used_bytes")?),
        used_messages: count(row.try_get("used_messages")?),
        quota_bytes: limit(row.try_get("quota_bytes")?),
        quota_messages: limit(row.try_get("quota_messages")?),
        ..Space::default()
    };
    let warned = u8::try_from(row.try_get::<i64, _>("quota_warned")?).unwrap_or(0);
    Ok((space.warning_level(), warned))
}

async fn set_warned(tx: &mut Tx, mailbox: MailboxId, level: u8) -> Result<(), StoreError> {
    sqlx::query("UPDATE mailboxes SET quota_warned = $1 WHERE id = $2")
        .bind(i64::from(level))
        .bind(mailbox)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The mailbox's space as seen inside `tx`.
pub(crate) async fn space_in(tx: &mut Tx, mailbox: MailboxId) -> Result<Space, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {SPACE_COLUMNS} FROM mailboxes m WHERE m.id = $1")))
        .bind(mailbox)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| StoreError::NotFound("the mailbox does not exist (any more)".into()))?;
    Ok(space_from_row(&row)?)
}

/// Refuses, inside the transaction that just added `bytes` in `messages` messages to the
/// mailbox's use, when they did not fit; the caller's transaction is then dropped, so
/// nothing is stored.
pub(crate) async fn check_added(tx: &mut Tx, mailbox: MailboxId, bytes: u64, messages: u64) -> Result<(), StoreError> {
    let after = space_in(tx, mailbox).await?;
    let before = Space {
        used_bytes: after.used_bytes.saturating_sub(bytes),
        used_messages: after.used_messages.saturating_sub(messages),
        customer_used_bytes: after.customer_used_bytes.saturating_sub(bytes),
        ..after
    };
    match before.room(bytes, messages) {
        Room::Fits => Ok(()),
        room => Err(StoreError::OverQuota(room)),
    }
}

impl Store {
    /// The mailbox's use and limits, for QUOTA, APPEND and the panel.
    pub async fn mailbox_space(&self, mailbox: MailboxId) -> Result<Space, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {SPACE_COLUMNS} FROM mailboxes m WHERE m.id = $1")))
            .bind(mailbox)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound("the mailbox does not exist (any more)".into()))?;
        Ok(space_from_row(&row)?)
    }

    /// What a quota warning to the mailbox needs: its address, language and space.
    pub async fn quota_state(&self, mailbox: MailboxId) -> Result<QuotaState, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT m.address, m.language, {SPACE_COLUMNS} FROM mailboxes m WHERE m.id = $1"
        )))
        .bind(mailbox)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound("the mailbox does not exist (any more)".into()))?;
        Ok(QuotaState {
            address: decode(row.try_get("address")?, EmailAddress::parse)?,
            language: decode(row.try_get("language")?, str::parse)?,
            space: space_from_row(&row)?,
        })
    }

    /// Sets a mailbox's limits. A byte limit above its customer's limit is refused.
    pub async fn set_mailbox_quota(
        &self,
        scope: Scope,
        address: &EmailAddress,
        quota: MailboxQuota,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let mailbox = find_mailbox(&mut tx, scope, address).await?;
        let customer: Option<i64> = sqlx::query("SELECT quota_bytes FROM customers WHERE id = $1")
            .bind(mailbox.customer_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("quota_bytes")?;
        if let (Some(customer), Some(wanted)) = (limit(customer), quota.bytes)
            && wanted > customer
        {
            return Err(Conflict::QuotaAboveCustomer { mailbox: address.clone(), customer_quota: customer }.into());
        }
        sqlx::query("UPDATE mailboxes SET quota_bytes = $1, quota_messages = $2, changed_at = $3 WHERE id = $4")
            .bind(quota.bytes.map(db_number))
            .bind(quota.messages.map(db_number))
            .bind(UnixTime::now().0)
            .bind(mailbox.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets the language of the mails Postfach writes into a mailbox.
    pub async fn set_mailbox_language(
        &self,
        scope: Scope,
        address: &EmailAddress,
        language: Language,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE mailboxes SET language = $1, changed_at = $2 WHERE address = $3 AND ($4 IS NULL OR customer_id = $4)",
        )
        .bind(language.as_str())
        .bind(UnixTime::now().0)
        .bind(address.to_string())
        .bind(scope.customer_filter())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            Err(StoreError::NotFound(format!("there is no mailbox {address}")))
        } else {
            Ok(())
        }
    }

    /// Sets a customer's limit on the total its mailboxes store. Refused while one of its
    /// mailboxes has a larger limit of its own.
    pub async fn set_customer_quota(&self, name: &CustomerName, bytes: Option<u64>) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let id: crate::CustomerId = sqlx::query("SELECT id FROM customers WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("there is no customer named {name}")))?
            .try_get("id")?;
        if let Some(bytes) = bytes {
            let larger = sqlx::query(
                "SELECT address, quota_bytes FROM mailboxes WHERE customer_id = $1 AND quota_bytes > $2 \
                 ORDER BY quota_bytes DESC, address LIMIT 1",
            )
            .bind(id)
            .bind(db_number(bytes))
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = larger {
                return Err(Conflict::MailboxQuotaAbove {
                    mailbox: decode(row.try_get("address")?, EmailAddress::parse)?,
                    mailbox_quota: count(row.try_get("quota_bytes")?),
                }
                .into());
            }
        }
        sqlx::query("UPDATE customers SET quota_bytes = $1 WHERE id = $2")
            .bind(bytes.map(db_number))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// What all mailboxes of a customer store together, in bytes.
    pub async fn customer_usage(&self, customer: crate::CustomerId) -> Result<u64, StoreError> {
        let used: i64 = sqlx::query(
            "SELECT CAST(COALESCE(SUM(used_bytes), 0) AS BIGINT) AS used FROM mailboxes WHERE customer_id = $1",
        )
        .bind(customer)
        .fetch_one(&self.pool)
        .await?
        .try_get("used")?;
        Ok(count(used))
    }
}
