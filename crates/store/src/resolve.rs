//! Address logic, in one place: which mailbox an address delivers to, and which addresses
//! a mailbox may send as.
//!
//! An address reaches a mailbox through the mailbox's own address, an alias, an alias
//! domain (every address of the real domain also exists at each of its alias domains),
//! or a subaddress (`local+tag@` falls back to `local@` when `local+tag@` itself is not
//! hosted). Only verified domains take part: an unverified domain is not hosted.

use postfach_types::{EmailAddress, LocalPart, Space};
use sqlx::Row;

use crate::db::decode;
use crate::{CustomerId, DomainId, MailboxId, Store, StoreError};

/// Where an address leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// A mailbox hosted here receives it.
    Mailbox(Recipient),
    /// The domain is hosted here, but no mailbox has this address.
    UnknownAddress,
    /// The domain is not hosted here (or not yet verified): relaying, never accepted.
    NotHosted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub mailbox_id: MailboxId,
    pub customer_id: CustomerId,
    /// The mailbox's own address (not the alias or subaddress that reached it).
    pub mailbox: EmailAddress,
    /// Its use and quotas, read with the address (no extra round trip at RCPT).
    pub space: Space,
    /// Its customer's spam thresholds, read with the address too.
    pub spam: crate::customers::SpamThresholds,
    /// When the mailbox's active Sieve script last changed (`None`: no script runs), read
    /// with the address so mailboxes without a script cost delivery nothing more.
    pub sieve_active_at: Option<i64>,
}

impl Store {
    pub async fn resolve(&self, address: &EmailAddress) -> Result<Resolution, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query(
            "SELECT d.id, d.verified, d.alias_of, t.verified AS target_verified \
             FROM domains d LEFT JOIN domains t ON t.id = d.alias_of WHERE d.name = $1",
        )
        .bind(address.domain().as_str())
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else { return Ok(Resolution::NotHosted) };
        let alias_of: Option<DomainId> = row.try_get("alias_of")?;
        let live = row.try_get::<i64, _>("verified")? != 0
            && (alias_of.is_none() || row.try_get::<Option<i64>, _>("target_verified")? == Some(1));
        if !live {
            return Ok(Resolution::NotHosted);
        }
        let domain_id = alias_of.unwrap_or(row.try_get("id")?);
        let candidates = [Some(address.local_part().clone()), address.local_part().without_tag()];
        for local in candidates.iter().flatten() {
            if let Some(recipient) = lookup(&mut conn, domain_id, local).await? {
                return Ok(Resolution::Mailbox(recipient));
            }
        }
        Ok(Resolution::UnknownAddress)
    }

    /// The addresses `mailbox` may send as: its own address and its aliases, each also at
    /// every alias domain of its domain; own address first, the rest sorted. Addresses at
    /// unverified domains are left out. (Subaddresses of these are allowed too; the
    /// submission server checks them with [`EmailAddress`]'s tag logic.)
    pub async fn allowed_senders(&self, mailbox: MailboxId) -> Result<Vec<EmailAddress>, StoreError> {
        let rows = sqlx::query(
            "SELECT a.local_part, d.name AS domain, a.is_alias FROM addresses a JOIN domains d ON d.id = a.domain_id \
             WHERE a.mailbox_id = $1 AND d.verified = 1 \
             UNION ALL \
             SELECT a.local_part, ad.name AS domain, 1 AS is_alias FROM addresses a \
             JOIN domains d ON d.id = a.domain_id JOIN domains ad ON ad.alias_of = d.id \
             WHERE a.mailbox_id = $1 AND d.verified = 1 AND ad.verified = 1",
        )
        .bind(mailbox)
        .fetch_all(&self.pool)
        .await?;
        let mut own = Vec::new();
        let mut others = Vec::new();
        for row in &rows {
            let address = decode(
                format!("{}@{}", row.try_get::<String, _>("local_part")?, row.try_get::<String, _>("domain")?),
                EmailAddress::parse,
            )?;
            if row.try_get::<i64, _>("is_alias")? == 0 { own.push(address) } else { others.push(address) }
        }
        others.sort();
        others.dedup();
        own.extend(others);
        Ok(own)
    }
}

async fn lookup(
    conn: &mut sqlx::AnyConnection,
    domain: DomainId,
    local: &LocalPart,
) -> Result<Option<Recipient>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT m.id, m.customer_id, m.address, m.sieve_active_at, c.spam_reject, c.spam_junk, {} FROM addresses a \
         JOIN mailboxes m ON m.id = a.mailbox_id JOIN customers c ON c.id = m.customer_id \
         WHERE a.domain_id = $1 AND a.local_part = $2",
        crate::quota::SPACE_COLUMNS
    )))
    .bind(domain)
    .bind(local.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(Recipient {
        mailbox_id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        mailbox: decode(row.try_get("address")?, EmailAddress::parse)?,
        space: crate::quota::space_from_row(&row)?,
        spam: crate::customers::SpamThresholds::from_row(&row)?,
        sieve_active_at: row.try_get("sieve_active_at")?,
    }))
}
