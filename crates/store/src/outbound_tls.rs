//! Outbound TLS state the nodes share: destination domains' MTA-STS policies as fetched
//! (RFC 8461 §5), and the "always require TLS to other servers" option of mailboxes and
//! customers.

use sqlx::Row;

use crate::db::flag;
use crate::{Scope, Store, StoreError};
use postfach_types::{CustomerId, MailboxId, UnixTime};

/// A destination domain's MTA-STS policy as fetched, in the words of its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedMtaSts {
    /// The id of the `_mta-sts` TXT record it was fetched under.
    pub txt_id: String,
    /// `enforce`, `testing` or `none`.
    pub mode: String,
    /// The `mx:` patterns.
    pub mx: Vec<String>,
    pub max_age: u64,
    pub fetched_at: UnixTime,
}

impl CachedMtaSts {
    /// Whether it may still be used at `now` (max_age not run out).
    pub fn fresh_at(&self, now: UnixTime) -> bool {
        now.0 < self.fetched_at.0.saturating_add(i64::try_from(self.max_age).unwrap_or(i64::MAX))
    }
}

/// What the queue needs to know about a sending mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderFacts {
    pub customer_id: CustomerId,
    /// The mailbox or its customer has "always require TLS to other servers" on.
    pub tls_required: bool,
}

impl Store {
    /// The cached MTA-STS policy of `domain` (lower-case), if any.
    pub async fn mta_sts_cached(&self, domain: &str) -> Result<Option<CachedMtaSts>, StoreError> {
        let row = sqlx::query("SELECT txt_id, mode, mx, max_age, fetched_at FROM mta_sts_policies WHERE domain = $1")
            .bind(domain)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(CachedMtaSts {
            txt_id: row.try_get("txt_id")?,
            mode: row.try_get("mode")?,
            mx: row.try_get::<String, _>("mx")?.split('\n').filter(|p| !p.is_empty()).map(str::to_string).collect(),
            max_age: u64::try_from(row.try_get::<i64, _>("max_age")?).unwrap_or(0),
            fetched_at: UnixTime(row.try_get("fetched_at")?),
        }))
    }

    /// Stores (or replaces) the policy of `domain`.
    pub async fn mta_sts_save(&self, domain: &str, policy: &CachedMtaSts) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO mta_sts_policies (domain, txt_id, mode, mx, max_age, fetched_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (domain) DO UPDATE SET txt_id = excluded.txt_id, mode = excluded.mode, mx = excluded.mx, \
             max_age = excluded.max_age, fetched_at = excluded.fetched_at",
        )
        .bind(domain)
        .bind(&policy.txt_id)
        .bind(&policy.mode)
        .bind(policy.mx.join("\n"))
        .bind(i64::try_from(policy.max_age).unwrap_or(i64::MAX))
        .bind(policy.fetched_at.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets the policy of `domain` (it withdrew its `_mta-sts` record and the cached
    /// one ran out).
    pub async fn mta_sts_forget(&self, domain: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM mta_sts_policies WHERE domain = $1").bind(domain).execute(&self.pool).await?;
        Ok(())
    }

    /// The customer of a sending mailbox and whether its mail must go out encrypted, in one
    /// read.
    pub async fn sender_facts(&self, mailbox: MailboxId) -> Result<Option<SenderFacts>, StoreError> {
        let row = sqlx::query(
            "SELECT m.customer_id, m.outbound_tls_required AS m_tls, c.outbound_tls_required AS c_tls \
             FROM mailboxes m JOIN customers c ON c.id = m.customer_id WHERE m.id = $1",
        )
        .bind(mailbox)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(SenderFacts {
            customer_id: row.try_get("customer_id")?,
            tls_required: row.try_get::<i64, _>("m_tls")? != 0 || row.try_get::<i64, _>("c_tls")? != 0,
        }))
    }

    /// Switches a mailbox's "always require TLS to other servers".
    pub async fn set_mailbox_outbound_tls(&self, scope: Scope, mailbox: MailboxId, on: bool) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE mailboxes SET outbound_tls_required = $1, changed_at = $2 WHERE id = $3 \
             AND ($4 IS NULL OR customer_id = $4)",
        )
        .bind(flag(on))
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

    /// Switches a customer's "always require TLS to other servers" (for all its mailboxes).
    pub async fn set_customer_outbound_tls(&self, customer: CustomerId, on: bool) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE customers SET outbound_tls_required = $1 WHERE id = $2")
            .bind(flag(on))
            .bind(customer)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("there is no customer with id {customer}")));
        }
        Ok(())
    }
}
