//! Domains and alias domains.
//!
//! Both live in one table: an alias domain is a domain row whose `alias_of` names the
//! real domain it mirrors. So a name is hosted at most once, both kinds share ownership
//! and verification, and an alias domain can never hold mailboxes of its own. Alias
//! domains point at real domains only (no chains) of the same customer.

use postfach_types::{CustomerName, DomainName, UnixTime};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{Tx, decode, flag, random_token};
use crate::{Conflict, CustomerId, DomainId, Scope, Store, StoreError};

#[derive(Debug, Clone)]
pub struct Domain {
    pub id: DomainId,
    pub customer_id: CustomerId,
    pub customer: CustomerName,
    pub name: DomainName,
    /// For an alias domain: the domain it mirrors.
    pub alias_of: Option<DomainName>,
    /// Ownership proven (or asserted by the operator). Unverified domains receive and
    /// send nothing.
    pub verified: bool,
    /// Verified because its ownership record was found in DNS (not asserted by the
    /// operator): the record must stay published, and the DNS checks look for it.
    pub proven_by_record: bool,
    /// The token the customer publishes in DNS to prove ownership.
    pub verify_token: String,
    pub created_at: UnixTime,
    /// The customer asked for certificates for `mail.`, `autoconfig.` and `autodiscover.`
    /// of this domain (issued by ACME where those names point to this server).
    pub certificates: bool,
    /// The domain's inbound MTA-STS mode (RFC 8461).
    pub mta_sts: MtaStsMode,
}

/// A domain's inbound MTA-STS mode (RFC 8461 §5): what its published policy asks
/// sending servers to do when they cannot reach the MX over verified TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum MtaStsMode {
    /// No policy is served and no record is suggested.
    #[default]
    Off,
    /// Senders deliver anyway and report the failure (TLS-RPT).
    Testing,
    /// Senders deliver only over TLS with a valid certificate for an `mx:` host.
    Enforce,
}

impl MtaStsMode {
    pub const ALL: [MtaStsMode; 3] = [MtaStsMode::Off, MtaStsMode::Testing, MtaStsMode::Enforce];

    /// The mode as the policy file, the CLI, the API and the database write it.
    pub fn as_str(self) -> &'static str {
        match self {
            MtaStsMode::Off => "off",
            MtaStsMode::Testing => "testing",
            MtaStsMode::Enforce => "enforce",
        }
    }
}

impl std::fmt::Display for MtaStsMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for MtaStsMode {
    type Err = crate::dns_checks::UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MtaStsMode::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| crate::dns_checks::UnknownValue(s.to_string()))
    }
}

/// What a cascading removal took with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    pub mailboxes: i64,
    pub aliases: i64,
    pub alias_domains: i64,
}

impl Domain {
    /// The DNS TXT record (name, value) that proves the customer controls this domain.
    pub fn ownership_record(&self) -> (String, String) {
        (format!("_postfach-verify.{}", self.name), format!("postfach-verify={}", self.verify_token))
    }
}

const SELECT: &str = "SELECT d.id, d.customer_id, c.name AS customer, d.name, t.name AS alias_of, d.verified, \
     d.proven_by_record, d.verify_token, d.created_at, d.certificates, d.mta_sts FROM domains d JOIN customers c ON c.id = d.customer_id \
     LEFT JOIN domains t ON t.id = d.alias_of";

fn from_row(row: &AnyRow) -> Result<Domain, sqlx::Error> {
    Ok(Domain {
        id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        customer: decode(row.try_get("customer")?, CustomerName::parse)?,
        name: decode(row.try_get("name")?, DomainName::parse)?,
        alias_of: match row.try_get::<Option<String>, _>("alias_of")? {
            Some(name) => Some(decode(name, DomainName::parse)?),
            None => None,
        },
        verified: row.try_get::<i64, _>("verified")? != 0,
        proven_by_record: row.try_get::<i64, _>("proven_by_record")? != 0,
        verify_token: row.try_get("verify_token")?,
        created_at: UnixTime(row.try_get("created_at")?),
        certificates: row.try_get::<i64, _>("certificates")? != 0,
        mta_sts: decode(row.try_get("mta_sts")?, |s: &str| s.parse::<MtaStsMode>())?,
    })
}

impl Store {
    /// Adds a domain for `owner`. Only the operator should pass `verified = true`.
    pub async fn add_domain(&self, owner: CustomerId, name: &DomainName, verified: bool) -> Result<Domain, StoreError> {
        let mut tx = self.begin_write().await?;
        insert_domain(&mut tx, owner, name, None, verified).await?;
        let domain = find(&mut tx, Scope::Platform, name).await?;
        tx.commit().await?;
        Ok(domain)
    }

    /// Makes `alias` an alias domain of `target`: every address at `target` also works at
    /// `alias`, for receiving and sending.
    pub async fn add_domain_alias(
        &self,
        scope: Scope,
        alias: &DomainName,
        target: &DomainName,
        verified: bool,
    ) -> Result<Domain, StoreError> {
        let mut tx = self.begin_write().await?;
        let target = find(&mut tx, scope, target).await?;
        if let Some(real) = &target.alias_of {
            return Err(Conflict::AliasChain { target: target.name.clone(), real: real.clone() }.into());
        }
        insert_domain(&mut tx, target.customer_id, alias, Some(target.id), verified).await?;
        let domain = find(&mut tx, scope, alias).await?;
        tx.commit().await?;
        Ok(domain)
    }

    pub async fn domains(&self, scope: Scope) -> Result<Vec<Domain>, StoreError> {
        let sql = format!("{SELECT} WHERE ($1 IS NULL OR d.customer_id = $1) ORDER BY d.name");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(scope.customer_filter()).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// The domain or alias domain with this id, if it is in scope.
    pub async fn domain_by_id(&self, scope: Scope, id: DomainId) -> Result<Domain, StoreError> {
        self.one_in_scope(
            format!("{SELECT} WHERE d.id = $1 AND ($2 IS NULL OR d.customer_id = $2)"),
            id,
            scope,
            "domain",
            from_row,
        )
        .await
    }

    /// The alias domains that mirror `target`, by name.
    pub async fn alias_domains_of(&self, scope: Scope, target: &DomainName) -> Result<Vec<Domain>, StoreError> {
        let sql = format!("{SELECT} WHERE t.name = $1 AND ($2 IS NULL OR d.customer_id = $2) ORDER BY d.name");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(target.as_str())
            .bind(scope.customer_filter())
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    pub async fn domain(&self, scope: Scope, name: &DomainName) -> Result<Domain, StoreError> {
        let mut conn = self.pool.acquire().await?;
        find(&mut conn, scope, name).await
    }

    /// The operator asserts (or withdraws) ownership: the domain is not expected to keep an
    /// ownership record published.
    pub async fn set_domain_verified(&self, scope: Scope, name: &DomainName, verified: bool) -> Result<(), StoreError> {
        self.set_ownership(scope, name, verified, false).await
    }

    /// The domain's ownership record was found in DNS: verified, and from now on the
    /// record is expected to stay published.
    pub async fn set_domain_proven(&self, scope: Scope, name: &DomainName) -> Result<(), StoreError> {
        self.set_ownership(scope, name, true, true).await
    }

    async fn set_ownership(
        &self,
        scope: Scope,
        name: &DomainName,
        verified: bool,
        by_record: bool,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE domains SET verified = $1, proven_by_record = $4 WHERE name = $2 AND ($3 IS NULL OR customer_id = $3)",
        )
        .bind(flag(verified))
        .bind(name.as_str())
        .bind(scope.customer_filter())
        .bind(flag(by_record))
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 { Err(no_domain(name)) } else { Ok(()) }
    }

    /// Switches certificates for the domain's service names on or off (the change is
    /// announced through `tls_generation`).
    pub async fn set_domain_certificates(&self, scope: Scope, name: &DomainName, on: bool) -> Result<(), StoreError> {
        self.set_domain_replanned(scope, name, "certificates", flag(on)).await
    }

    /// Sets the domain's MTA-STS mode (the change is announced through `tls_generation`:
    /// the leader orders or forgets the certificate for `mta-sts.DOMAIN`).
    pub async fn set_domain_mta_sts(
        &self,
        scope: Scope,
        name: &DomainName,
        mode: MtaStsMode,
    ) -> Result<(), StoreError> {
        self.set_domain_replanned(scope, name, "mta_sts", mode.as_str().to_string()).await
    }

    /// Sets `column` of the domain in `scope` to `value`, a change to the names the
    /// platform needs certificates for: announced through `tls_generation`, so the leader
    /// plans the certificates again.
    async fn set_domain_replanned<T>(
        &self,
        scope: Scope,
        name: &DomainName,
        column: &'static str,
        value: T,
    ) -> Result<(), StoreError>
    where
        T: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Send + 'static,
    {
        let mut tx = self.begin_write().await?;
        let sql = format!("UPDATE domains SET {column} = $1 WHERE name = $2 AND ($3 IS NULL OR customer_id = $3)");
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(value)
            .bind(name.as_str())
            .bind(scope.customer_filter())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(no_domain(name));
        }
        crate::certificates::bump(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a domain or alias domain. A real domain that still has mailboxes, aliases
    /// or alias domains is removed only with `cascade`, and then takes them with it.
    pub async fn remove_domain(&self, scope: Scope, name: &DomainName, cascade: bool) -> Result<Removed, StoreError> {
        let mut tx = self.begin_write().await?;
        let domain = find(&mut tx, scope, name).await?;
        let removed = Removed {
            mailboxes: count(
                &mut tx,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM mailboxes WHERE domain_id = $1",
                domain.id,
            )
            .await?,
            aliases: count(
                &mut tx,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM addresses WHERE is_alias = 1 \
                 AND (domain_id = $1 OR mailbox_id IN (SELECT id FROM mailboxes WHERE domain_id = $1))",
                domain.id,
            )
            .await?,
            alias_domains: count(
                &mut tx,
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM domains WHERE alias_of = $1",
                domain.id,
            )
            .await?,
        };
        if removed != Removed::default() && !cascade {
            return Err(Conflict::DomainNotEmpty { name: name.clone(), contents: removed }.into());
        }
        for sql in [
            "DELETE FROM addresses WHERE domain_id = $1 OR mailbox_id IN (SELECT id FROM mailboxes WHERE domain_id = $1)",
            "DELETE FROM expunged WHERE folder_id IN \
             (SELECT f.id FROM folders f JOIN mailboxes m ON m.id = f.mailbox_id WHERE m.domain_id = $1)",
            "DELETE FROM messages WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE domain_id = $1)",
            "DELETE FROM folders WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE domain_id = $1)",
            "DELETE FROM app_passwords WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE domain_id = $1)",
            "DELETE FROM import_positions WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE domain_id = $1)",
            "DELETE FROM import_jobs WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE domain_id = $1)",
            "DELETE FROM sent_log WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE domain_id = $1)",
            "DELETE FROM mailboxes WHERE domain_id = $1",
            "DELETE FROM domains WHERE alias_of = $1",
            "DELETE FROM domains WHERE id = $1",
        ] {
            sqlx::query(sql).bind(domain.id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(removed)
    }
}

async fn count(tx: &mut Tx, sql: &'static str, id: DomainId) -> Result<i64, sqlx::Error> {
    sqlx::query(sql).bind(id).fetch_one(&mut **tx).await?.try_get("n")
}

async fn insert_domain(
    tx: &mut Tx,
    owner: CustomerId,
    name: &DomainName,
    alias_of: Option<DomainId>,
    verified: bool,
) -> Result<(), StoreError> {
    if !name.has_parent() {
        return Err(Conflict::NotFullDomain { name: name.clone() }.into());
    }
    let result = sqlx::query(
        "INSERT INTO domains (customer_id, name, alias_of, verified, verify_token, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(owner)
    .bind(name.as_str())
    .bind(alias_of)
    .bind(flag(verified))
    .bind(random_token())
    .bind(UnixTime::now().0)
    .execute(&mut **tx)
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if StoreError::is_unique_violation(&e) => Err(Conflict::DomainTaken { name: name.clone() }.into()),
        Err(e) if matches!(&e, sqlx::Error::Database(d) if d.is_foreign_key_violation()) => {
            Err(StoreError::NotFound(format!("there is no customer with id {owner}")))
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn find(
    conn: &mut sqlx::AnyConnection,
    scope: Scope,
    name: &DomainName,
) -> Result<Domain, StoreError> {
    let sql = format!("{SELECT} WHERE d.name = $1 AND ($2 IS NULL OR d.customer_id = $2)");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(name.as_str())
        .bind(scope.customer_filter())
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(row) => Ok(from_row(&row)?),
        None => Err(no_domain(name)),
    }
}

pub(crate) fn no_domain(name: &DomainName) -> StoreError {
    StoreError::NotFound(format!("the domain {name} is not set up here"))
}
