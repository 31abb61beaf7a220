//! Customers and admins: the panel accounts that own domains.
//!
//! These are platform-level operations (CLI and admin panel); a customer never lists or
//! changes other customers.

use postfach_types::{CustomerName, EmailAddress, Role, SpamThreshold, UnixTime};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{decode, flag};
use crate::{Conflict, CustomerId, Store, StoreError};

#[derive(Debug, Clone)]
pub struct Customer {
    pub id: CustomerId,
    pub name: CustomerName,
    pub role: Role,
    pub disabled: bool,
    pub created_at: UnixTime,
    /// The limit on what all its mailboxes store together, in bytes; `None`: no limit.
    pub quota_bytes: Option<u64>,
    /// The address that gets a copy of every warning mail (`warnings`); `None`: none.
    pub contact_address: Option<EmailAddress>,
    /// From which spam score its mail is refused or goes to Junk.
    pub spam: SpamThresholds,
    /// "Always require TLS to other servers" for all its mailboxes (`outbound_tls`).
    pub outbound_tls_required: bool,
}

/// A customer's two spam thresholds (rspamd scores): mail at or above `reject` is
/// refused, at or above `junk` goes to the Junk folder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpamThresholds {
    pub reject: SpamThreshold,
    pub junk: SpamThreshold,
}

impl SpamThresholds {
    /// Read from the `spam_reject` and `spam_junk` columns of `row` (a value that does not
    /// parse, written by hand, counts as the default).
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let read = |column: &str| -> Result<SpamThreshold, sqlx::Error> {
            Ok(row
                .try_get::<Option<String>, _>(column)?
                .and_then(|text| SpamThreshold::parse(&text).ok())
                .unwrap_or_default())
        };
        Ok(SpamThresholds { reject: read("spam_reject")?, junk: read("spam_junk")? })
    }
}

const COLUMNS: &str =
    "id, name, role, disabled, created_at, quota_bytes, contact_address, spam_reject, spam_junk, outbound_tls_required";

fn from_row(row: &AnyRow) -> Result<Customer, sqlx::Error> {
    Ok(Customer {
        id: row.try_get("id")?,
        name: decode(row.try_get("name")?, CustomerName::parse)?,
        role: decode(row.try_get("role")?, str::parse)?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_at: UnixTime(row.try_get("created_at")?),
        quota_bytes: row.try_get::<Option<i64>, _>("quota_bytes")?.map(|q| u64::try_from(q).unwrap_or(0)),
        contact_address: row
            .try_get::<Option<String>, _>("contact_address")?
            .map(|a| decode(a, EmailAddress::parse))
            .transpose()?,
        spam: SpamThresholds::from_row(row)?,
        outbound_tls_required: row.try_get::<i64, _>("outbound_tls_required")? != 0,
    })
}

impl Store {
    pub async fn add_customer(
        &self,
        name: &CustomerName,
        password_hash: &str,
        role: Role,
    ) -> Result<Customer, StoreError> {
        let result = sqlx::query(
            "INSERT INTO customers (name, password_hash, role, disabled, created_at) VALUES ($1, $2, $3, 0, $4) \
             RETURNING id, name, role, disabled, created_at, quota_bytes, contact_address, spam_reject, spam_junk, \
             outbound_tls_required",
        )
        .bind(name.as_str())
        .bind(password_hash)
        .bind(role.as_str())
        .bind(UnixTime::now().0)
        .fetch_one(&self.pool)
        .await;
        match result {
            Ok(row) => Ok(from_row(&row)?),
            Err(e) if StoreError::is_unique_violation(&e) => {
                Err(Conflict::CustomerExists { name: name.clone() }.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn customers(&self) -> Result<Vec<Customer>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM customers ORDER BY name")))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    pub async fn customer(&self, name: &CustomerName) -> Result<Customer, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM customers WHERE name = $1")))
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok(from_row(&row)?),
            None => Err(no_customer(name)),
        }
    }

    pub async fn customer_by_id(&self, id: CustomerId) -> Result<Customer, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM customers WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok(from_row(&row)?),
            None => Err(StoreError::NotFound(format!("there is no customer with id {id}"))),
        }
    }

    /// Removes a customer that owns no domains any more.
    pub async fn remove_customer(&self, name: &CustomerName) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let id: CustomerId = sqlx::query("SELECT id FROM customers WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| no_customer(name))?
            .try_get("id")?;
        let domains: i64 = sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM domains WHERE customer_id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if domains > 0 {
            return Err(Conflict::CustomerOwnsDomains { name: name.clone(), domains }.into());
        }
        sqlx::query("DELETE FROM customers WHERE id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Disables or re-enables a customer; a disabled customer's mailboxes cannot log in.
    pub async fn set_customer_disabled(&self, name: &CustomerName, disabled: bool) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE customers SET disabled = $1 WHERE name = $2")
            .bind(flag(disabled))
            .bind(name.as_str())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 { Err(no_customer(name)) } else { Ok(()) }
    }

    /// Sets a customer's spam thresholds.
    pub async fn set_customer_spam(&self, id: CustomerId, spam: SpamThresholds) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE customers SET spam_reject = $1, spam_junk = $2 WHERE id = $3")
            .bind(spam.reject.to_stored())
            .bind(spam.junk.to_stored())
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            Err(StoreError::NotFound(format!("there is no customer with id {id}")))
        } else {
            Ok(())
        }
    }

    pub async fn set_customer_password(&self, name: &CustomerName, password_hash: &str) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE customers SET password_hash = $1 WHERE name = $2")
            .bind(password_hash)
            .bind(name.as_str())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 { Err(no_customer(name)) } else { Ok(()) }
    }
}

fn no_customer(name: &CustomerName) -> StoreError {
    StoreError::NotFound(format!("there is no customer named {name}"))
}
