//! TLS certificates obtained by ACME, the ACME account, and the challenges being answered.
//!
//! Everything lives here so that a cluster orders once (on its leader) and every node
//! serves the same certificates and answers the same challenges. Each write bumps one
//! counter ([`Store::tls_generation`]), which nodes poll to reload only after a change.
//! Private keys and account credentials are [`Secret`]s and never logged.

use postfach_types::{DomainName, Secret, UnixTime};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::db::{Tx, decode};
use crate::{Store, StoreError};

/// One certificate the server wants: for the hostname, or for a customer domain's
/// service names. `Debug` never shows the key.
#[derive(Debug, Clone)]
pub struct StoredCertificate {
    /// The hostname, or the customer domain whose names the certificate covers.
    pub subject: DomainName,
    /// The DNS names the certificate covers (or was last ordered for).
    pub names: Vec<DomainName>,
    /// The issued chain (leaf first) and its key as PEM; `None` until an order succeeded.
    pub issued: Option<Issued>,
    /// The private key (PEM) the next order uses, made when the current certificate was
    /// stored, so that its TLSA record can be published before the renewal.
    pub next_key_pem: Option<Secret<String>>,
    /// Why the last order failed; cleared by a success.
    pub last_error: Option<String>,
    /// Orders that failed in a row.
    pub failures: i64,
    /// No order before this time (backoff after a failure).
    pub next_attempt: UnixTime,
}

/// An issued certificate. `Debug` never shows the key.
#[derive(Debug, Clone)]
pub struct Issued {
    pub chain_pem: String,
    pub key_pem: Secret<String>,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
    /// The issuer's distinguished name, as shown to operators.
    pub issuer: String,
    pub issued_at: UnixTime,
}

/// A challenge response any node may be asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub token: String,
    /// `http-01` or `tls-alpn-01`.
    pub kind: String,
    pub name: DomainName,
    /// The key authorization (tls-alpn-01 certificates carry its SHA-256).
    pub value: String,
}

const SELECT: &str = "SELECT subject, names, chain_pem, key_pem, not_before, not_after, issuer, issued_at, \
     next_key_pem, last_error, failures, next_attempt FROM tls_certificates";

fn from_row(row: &AnyRow) -> Result<StoredCertificate, sqlx::Error> {
    let names: String = row.try_get("names")?;
    let names =
        names.split_whitespace().map(|n| decode(n.to_string(), DomainName::parse)).collect::<Result<Vec<_>, _>>()?;
    let issued = match (row.try_get::<Option<String>, _>("chain_pem")?, row.try_get::<Option<String>, _>("key_pem")?) {
        (Some(chain_pem), Some(key_pem)) => Some(Issued {
            chain_pem,
            key_pem: Secret::new(key_pem),
            not_before: UnixTime(row.try_get::<Option<i64>, _>("not_before")?.unwrap_or(0)),
            not_after: UnixTime(row.try_get::<Option<i64>, _>("not_after")?.unwrap_or(0)),
            issuer: row.try_get::<Option<String>, _>("issuer")?.unwrap_or_default(),
            issued_at: UnixTime(row.try_get::<Option<i64>, _>("issued_at")?.unwrap_or(0)),
        }),
        _ => None,
    };
    Ok(StoredCertificate {
        subject: decode(row.try_get("subject")?, DomainName::parse)?,
        names,
        issued,
        next_key_pem: row.try_get::<Option<String>, _>("next_key_pem")?.map(Secret::new),
        last_error: row.try_get("last_error")?,
        failures: row.try_get("failures")?,
        next_attempt: UnixTime(row.try_get("next_attempt")?),
    })
}

fn joined(names: &[DomainName]) -> String {
    names.iter().map(DomainName::as_str).collect::<Vec<_>>().join(" ")
}

/// Tells every node that certificates, challenges or the names wanting them changed.
pub(crate) async fn bump(tx: &mut Tx) -> Result<(), StoreError> {
    sqlx::query("UPDATE tls_generation SET n = n + 1 WHERE id = 1").execute(&mut **tx).await?;
    Ok(())
}

impl Store {
    /// A number that changes whenever a certificate or a challenge changes.
    pub async fn tls_generation(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT n FROM tls_generation WHERE id = 1").fetch_one(&self.pool).await?;
        Ok(row.try_get("n")?)
    }

    /// Every certificate, issued or wanted, by subject.
    pub async fn certificates(&self) -> Result<Vec<StoredCertificate>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!("{SELECT} ORDER BY subject"))).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Stores a newly issued certificate for `subject` and the key its next order will
    /// use (`next_key_pem`), replacing the previous ones and clearing the failure record.
    pub async fn save_certificate(
        &self,
        subject: &DomainName,
        names: &[DomainName],
        issued: &Issued,
        next_key_pem: &Secret<String>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO tls_certificates (subject, names, chain_pem, key_pem, not_before, not_after, issuer, \
             issued_at, next_key_pem, last_error, failures, next_attempt) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, 0, 0) \
             ON CONFLICT (subject) DO UPDATE SET names = excluded.names, chain_pem = excluded.chain_pem, \
             key_pem = excluded.key_pem, not_before = excluded.not_before, not_after = excluded.not_after, \
             issuer = excluded.issuer, issued_at = excluded.issued_at, next_key_pem = excluded.next_key_pem, \
             last_error = NULL, failures = 0, next_attempt = 0",
        )
        .bind(subject.as_str())
        .bind(joined(names))
        .bind(&issued.chain_pem)
        .bind(issued.key_pem.expose())
        .bind(issued.not_before.0)
        .bind(issued.not_after.0)
        .bind(&issued.issuer)
        .bind(issued.issued_at.0)
        .bind(next_key_pem.expose())
        .execute(&mut *tx)
        .await?;
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a failed order for `subject`: the reason, one more failure, and the time
    /// before which no new order is made. An issued certificate stays in use.
    pub async fn record_certificate_failure(
        &self,
        subject: &DomainName,
        names: &[DomainName],
        error: &str,
        next_attempt: UnixTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO tls_certificates (subject, names, last_error, failures, next_attempt) \
             VALUES ($1, $2, $3, 1, $4) ON CONFLICT (subject) DO UPDATE SET \
             last_error = excluded.last_error, failures = tls_certificates.failures + 1, \
             next_attempt = excluded.next_attempt",
        )
        .bind(subject.as_str())
        .bind(joined(names))
        .bind(error)
        .bind(next_attempt.0)
        .execute(&mut *tx)
        .await?;
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forgets the certificates of subjects no longer wanted (a domain removed or opted
    /// out). Returns how many were removed.
    pub async fn retain_certificates(&self, wanted: &[DomainName]) -> Result<u64, StoreError> {
        let mut removed = 0;
        for certificate in self.certificates().await? {
            if wanted.contains(&certificate.subject) {
                continue;
            }
            let mut tx = self.begin_write().await?;
            removed += sqlx::query("DELETE FROM tls_certificates WHERE subject = $1")
                .bind(certificate.subject.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            bump(&mut tx).await?;
            tx.commit().await?;
        }
        Ok(removed)
    }

    /// The stored ACME account credentials (JSON, holding the account key) for `directory`.
    pub async fn acme_account(&self, directory: &str) -> Result<Option<Secret<String>>, StoreError> {
        let row = sqlx::query("SELECT credentials FROM acme_accounts WHERE directory = $1")
            .bind(directory)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<String, _>("credentials")).transpose()?.map(Secret::new))
    }

    pub async fn save_acme_account(&self, directory: &str, credentials: &Secret<String>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO acme_accounts (directory, credentials, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (directory) DO UPDATE SET credentials = excluded.credentials",
        )
        .bind(directory)
        .bind(credentials.expose())
        .bind(UnixTime::now().0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Publishes a challenge response to every node.
    pub async fn put_challenge(&self, challenge: &Challenge) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO acme_challenges (token, kind, name, value, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (token) DO UPDATE SET kind = excluded.kind, name = excluded.name, value = excluded.value",
        )
        .bind(&challenge.token)
        .bind(&challenge.kind)
        .bind(challenge.name.as_str())
        .bind(&challenge.value)
        .bind(UnixTime::now().0)
        .execute(&mut *tx)
        .await?;
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn remove_challenge(&self, token: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM acme_challenges WHERE token = $1").bind(token).execute(&mut *tx).await?;
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The http-01 response for `token`, if one is being answered.
    pub async fn http_challenge(&self, token: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM acme_challenges WHERE token = $1 AND kind = 'http-01'")
            .bind(token)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    /// Every challenge being answered (tls-alpn-01 responses are served from memory).
    pub async fn challenges(&self) -> Result<Vec<Challenge>, StoreError> {
        let rows = sqlx::query("SELECT token, kind, name, value FROM acme_challenges ORDER BY token")
            .fetch_all(&self.pool)
            .await?;
        let mut challenges = Vec::with_capacity(rows.len());
        for row in &rows {
            challenges.push(Challenge {
                token: row.try_get("token")?,
                kind: row.try_get("kind")?,
                name: decode(row.try_get("name")?, DomainName::parse)?,
                value: row.try_get("value")?,
            });
        }
        Ok(challenges)
    }

    /// Removes challenges older than `before` (an order that never finished).
    pub async fn prune_challenges(&self, before: UnixTime) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let done =
            sqlx::query("DELETE FROM acme_challenges WHERE created_at < $1").bind(before.0).execute(&mut *tx).await?;
        if done.rows_affected() > 0 {
            bump(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Verified domains whose MTA-STS mode is not off: `mta-sts.DOMAIN` needs a certificate.
    pub async fn domains_with_mta_sts(&self) -> Result<Vec<DomainName>, StoreError> {
        let rows = sqlx::query("SELECT name FROM domains WHERE mta_sts <> 'off' AND verified = 1 ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| decode(r.try_get("name")?, DomainName::parse)).collect::<Result<_, _>>()?)
    }

    /// Verified domains whose customer switched certificates on.
    pub async fn domains_with_certificates(&self) -> Result<Vec<DomainName>, StoreError> {
        let rows = sqlx::query("SELECT name FROM domains WHERE certificates = 1 AND verified = 1 ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| decode(r.try_get("name")?, DomainName::parse)).collect::<Result<_, _>>()?)
    }
}
