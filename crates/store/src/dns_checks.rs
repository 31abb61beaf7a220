//! The cached results of the DNS checks of each domain, and the record of their changes.
//!
//! `postfach-dns` runs the checks (ownership, MX, SPF, DKIM, DMARC, SRV, autoconfig) and hands the
//! [`DomainReport`] to [`Store::save_dns_report`], which replaces the domain's cached
//! verdicts and records every check whose level changed (so the panel can show "SPF broke
//! on …"). The types live here because the store keeps them; `postfach_dns::checks`
//! re-exports them.

use postfach_types::{DomainName, UnixTime};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::decode;
use crate::domains::find;
use crate::{Scope, Store, StoreError};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Ok,
    Warning,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that can be parsed back from the database was not written by Postfach.
#[derive(Debug, thiserror::Error)]
#[error("'{0}' is not a known value")]
pub struct UnknownValue(pub(crate) String);

impl std::str::FromStr for Level {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, UnknownValue> {
        match s {
            "ok" => Ok(Level::Ok),
            "warning" => Ok(Level::Warning),
            "error" => Ok(Level::Error),
            other => Err(UnknownValue(other.to_string())),
        }
    }
}

/// Which published thing a verdict is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Check {
    /// The `_postfach-verify` TXT record that proves the customer controls the domain.
    Ownership,
    Mx,
    Spf,
    Dkim,
    Dmarc,
    /// The SRV records mail programs find the servers by (RFC 6186, RFC 8314).
    Srv,
    /// The `autoconfig.` and `autodiscover.` names of automatic client setup.
    Autoconfig,
    /// The `_smtp._tls` TXT record of TLS reporting (RFC 8460).
    TlsRpt,
    /// Inbound MTA-STS (RFC 8461): the `_mta-sts` TXT record, the policy file served at
    /// `mta-sts.DOMAIN`, and its `mx:` hosts against the domain's MX records.
    MtaSts,
}

impl Check {
    pub const ALL: [Check; 9] = [
        Check::Ownership,
        Check::Mx,
        Check::Spf,
        Check::Dkim,
        Check::Dmarc,
        Check::Srv,
        Check::Autoconfig,
        Check::TlsRpt,
        Check::MtaSts,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Check::Ownership => "ownership",
            Check::Mx => "mx",
            Check::Spf => "spf",
            Check::Dkim => "dkim",
            Check::Dmarc => "dmarc",
            Check::Srv => "srv",
            Check::Autoconfig => "autoconfig",
            Check::TlsRpt => "tlsrpt",
            Check::MtaSts => "mta_sts",
        }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Check {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, UnknownValue> {
        Check::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| UnknownValue(s.to_string()))
    }
}

/// One sentence in German and English; the panel shows the user's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub de: String,
    pub en: String,
}

/// One finding of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub check: Check,
    /// A stable code for the finding, like `spf.too_many_lookups`, for scripts and tests.
    pub code: String,
    pub level: Level,
    /// What was found and, unless it is ok, what to do about it.
    pub message: Text,
}

/// The result of one run of the checks of one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainReport {
    pub domain: DomainName,
    pub checked_at: UnixTime,
    pub verdicts: Vec<Verdict>,
}

impl DomainReport {
    /// The worst level of all verdicts (`Ok` for an empty report).
    pub fn level(&self) -> Level {
        self.verdicts.iter().map(|v| v.level).max().unwrap_or(Level::Ok)
    }

    /// The worst level of the verdicts of one check; `None` if the check did not run.
    pub fn level_of(&self, check: Check) -> Option<Level> {
        self.verdicts.iter().filter(|v| v.check == check).map(|v| v.level).max()
    }

    /// The verdicts of one check.
    pub fn of(&self, check: Check) -> impl Iterator<Item = &Verdict> {
        self.verdicts.iter().filter(move |v| v.check == check)
    }
}

/// A check whose level changed between two runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckChange {
    pub domain: DomainName,
    pub at: UnixTime,
    pub check: Check,
    pub from: Level,
    pub to: Level,
    /// The worst verdict of the check after the change.
    pub message: Text,
}

fn verdict_from_row(row: &AnyRow) -> Result<Verdict, sqlx::Error> {
    Ok(Verdict {
        check: decode(row.try_get("check_name")?, str::parse::<Check>)?,
        code: row.try_get("code")?,
        level: decode(row.try_get("level")?, str::parse::<Level>)?,
        message: Text { de: row.try_get("message_de")?, en: row.try_get("message_en")? },
    })
}

impl Store {
    /// Replaces the cached report of `report.domain` and records each check whose level
    /// changed since the last report. Returns those changes.
    pub async fn save_dns_report(&self, scope: Scope, report: &DomainReport) -> Result<Vec<CheckChange>, StoreError> {
        let mut tx = self.begin_write().await?;
        let d = find(&mut tx, scope, &report.domain).await?;
        let rows = sqlx::query(
            "SELECT check_name, code, level, message_de, message_en FROM dns_check_results WHERE domain_id = $1 ORDER BY position",
        )
        .bind(d.id)
        .fetch_all(&mut *tx)
        .await?;
        let before = DomainReport {
            domain: report.domain.clone(),
            checked_at: report.checked_at,
            verdicts: rows.iter().map(verdict_from_row).collect::<Result<_, _>>()?,
        };
        let mut changes = Vec::new();
        if !before.verdicts.is_empty() {
            for check in Check::ALL {
                let (Some(from), Some(to)) = (before.level_of(check), report.level_of(check)) else { continue };
                if from == to {
                    continue;
                }
                let Some(worst) = report.of(check).max_by_key(|v| v.level) else { continue };
                changes.push(CheckChange {
                    domain: report.domain.clone(),
                    at: report.checked_at,
                    check,
                    from,
                    to,
                    message: worst.message.clone(),
                });
            }
        }
        sqlx::query("DELETE FROM dns_check_results WHERE domain_id = $1").bind(d.id).execute(&mut *tx).await?;
        for (position, v) in report.verdicts.iter().enumerate() {
            sqlx::query(
                "INSERT INTO dns_check_results (customer_id, domain_id, position, checked_at, check_name, code, level, \
                 message_de, message_en) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(d.customer_id)
            .bind(d.id)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .bind(report.checked_at.0)
            .bind(v.check.as_str())
            .bind(&v.code)
            .bind(v.level.as_str())
            .bind(&v.message.de)
            .bind(&v.message.en)
            .execute(&mut *tx)
            .await?;
        }
        for c in &changes {
            sqlx::query(
                "INSERT INTO dns_check_changes (customer_id, domain_id, at, check_name, from_level, to_level, message_de, \
                 message_en) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(d.customer_id)
            .bind(d.id)
            .bind(c.at.0)
            .bind(c.check.as_str())
            .bind(c.from.as_str())
            .bind(c.to.as_str())
            .bind(&c.message.de)
            .bind(&c.message.en)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(changes)
    }

    /// The cached report of `domain`; `None` if it has not been checked yet.
    pub async fn dns_report(&self, scope: Scope, domain: &DomainName) -> Result<Option<DomainReport>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let d = find(&mut conn, scope, domain).await?;
        let rows = sqlx::query(
            "SELECT checked_at, check_name, code, level, message_de, message_en FROM dns_check_results \
             WHERE domain_id = $1 ORDER BY position",
        )
        .bind(d.id)
        .fetch_all(&mut *conn)
        .await?;
        let Some(first) = rows.first() else { return Ok(None) };
        Ok(Some(DomainReport {
            domain: d.name,
            checked_at: UnixTime(first.try_get("checked_at")?),
            verdicts: rows.iter().map(verdict_from_row).collect::<Result<_, _>>()?,
        }))
    }

    /// The recorded level changes of `domain`'s checks, newest first, at most `limit`.
    pub async fn dns_check_changes(
        &self,
        scope: Scope,
        domain: &DomainName,
        limit: i64,
    ) -> Result<Vec<CheckChange>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let d = find(&mut conn, scope, domain).await?;
        let rows = sqlx::query(
            "SELECT at, check_name, from_level, to_level, message_de, message_en FROM dns_check_changes \
             WHERE domain_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(d.id)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(CheckChange {
                    domain: d.name.clone(),
                    at: UnixTime(row.try_get("at")?),
                    check: decode(row.try_get("check_name")?, str::parse::<Check>)?,
                    from: decode(row.try_get("from_level")?, str::parse::<Level>)?,
                    to: decode(row.try_get("to_level")?, str::parse::<Level>)?,
                    message: Text { de: row.try_get("message_de")?, en: row.try_get("message_en")? },
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
