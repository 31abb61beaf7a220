//! TLS reports (TLS-RPT, RFC 8460) that other mail servers sent about their connections to
//! a hosted domain: stored by the MX ([`Store::add_tls_report`]) against the domain the
//! report's policy names, shown per domain ([`Store::tls_reports`]), forgotten after
//! [`TLS_REPORT_RETENTION_SECS`] by the upkeep ([`Store::forget_tls_reports_before`]).
//!
//! Nothing in a report is believed beyond showing it: it is what its sender says. Each
//! domain keeps at most [`MAX_TLS_REPORTS_PER_DOMAIN`] reports (the newest), so that a
//! flood of reports cannot grow the database without bound.

use postfach_types::{DomainId, DomainName, UnixTime};
use sqlx::Row;

use crate::{Scope, Store, StoreError};

/// Reports kept per domain; the oldest go first.
pub const MAX_TLS_REPORTS_PER_DOMAIN: i64 = 500;
/// How long a report is kept: 180 days.
pub const TLS_REPORT_RETENTION_SECS: i64 = 180 * 86_400;

/// Failure details kept per report (RFC 8460 §4.3 `failure-details`).
pub const MAX_FAILURES_PER_REPORT: usize = 100;

/// One group of failed sessions of a report: a result type (RFC 8460 §4.3, like
/// `starttls-not-supported`) with where it happened, as the report says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFailure {
    pub result_type: String,
    /// The sending server's address, or empty.
    pub sending_mta_ip: String,
    /// The MX host the sender tried, or empty.
    pub receiving_mx: String,
    pub failed: u64,
}

/// What one report says about one hosted domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsReportSummary {
    /// `organization-name`: who sent the report.
    pub organization: String,
    /// `contact-info`.
    pub contact: String,
    /// `report-id`.
    pub report_id: String,
    /// `date-range`.
    pub start: UnixTime,
    pub end: UnixTime,
    /// `total-successful-session-count`, summed over the domain's policies.
    pub successful: u64,
    /// `total-failure-session-count`, summed over the domain's policies.
    pub failed: u64,
    pub failures: Vec<TlsFailure>,
}

/// A stored report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsReport {
    pub received_at: UnixTime,
    pub summary: TlsReportSummary,
}

/// What [`Store::add_tls_report`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    Stored,
    /// The same report (organisation and report id) was stored before.
    Duplicate,
}

fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn uncount(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl Store {
    /// The verified domain (or alias domain) `name`, if hosted here: where a report about
    /// it is stored. Reports are about any domain; only hosted ones are kept.
    pub async fn tls_report_domain(&self, name: &DomainName) -> Result<Option<DomainId>, StoreError> {
        let row = sqlx::query("SELECT id FROM domains WHERE name = $1 AND verified = 1")
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("id")).transpose()?)
    }

    /// Stores a report about `domain`, then drops the domain's oldest reports beyond
    /// [`MAX_TLS_REPORTS_PER_DOMAIN`]. Failure details beyond [`MAX_FAILURES_PER_REPORT`]
    /// are not kept (the parser bounds them already).
    pub async fn add_tls_report(&self, domain: DomainId, report: &TlsReportSummary) -> Result<Added, StoreError> {
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO tls_reports (domain_id, received_at, organization, contact, report_id, start_at, end_at, \
             successful, failed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (domain_id, organization, report_id) DO NOTHING RETURNING id",
        )
        .bind(domain)
        .bind(UnixTime::now().0)
        .bind(&report.organization)
        .bind(&report.contact)
        .bind(&report.report_id)
        .bind(report.start.0)
        .bind(report.end.0)
        .bind(count(report.successful))
        .bind(count(report.failed))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = inserted else { return Ok(Added::Duplicate) };
        let id: i64 = row.try_get("id")?;
        for failure in report.failures.iter().take(MAX_FAILURES_PER_REPORT) {
            sqlx::query(
                "INSERT INTO tls_report_failures (tls_report_id, result_type, sending_mta_ip, receiving_mx, failed) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(&failure.result_type)
            .bind(&failure.sending_mta_ip)
            .bind(&failure.receiving_mx)
            .bind(count(failure.failed))
            .execute(&mut *tx)
            .await?;
        }
        // The failure details go with their report (ON DELETE CASCADE).
        sqlx::query(
            "DELETE FROM tls_reports WHERE domain_id = $1 AND id NOT IN \
             (SELECT id FROM tls_reports WHERE domain_id = $1 ORDER BY received_at DESC, id DESC LIMIT $2)",
        )
        .bind(domain)
        .bind(MAX_TLS_REPORTS_PER_DOMAIN)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Added::Stored)
    }

    /// The reports about a domain in scope, newest first, at most `limit`.
    pub async fn tls_reports(&self, scope: Scope, domain: DomainId, limit: u32) -> Result<Vec<TlsReport>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.id, r.received_at, r.organization, r.contact, r.report_id, r.start_at, r.end_at, \
             r.successful, r.failed FROM tls_reports r JOIN domains d ON d.id = r.domain_id \
             WHERE r.domain_id = $1 AND ($2 IS NULL OR d.customer_id = $2) \
             ORDER BY r.end_at DESC, r.id DESC LIMIT $3",
        )
        .bind(domain)
        .bind(scope.customer_filter())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get("id")?;
            let failures = sqlx::query(
                "SELECT result_type, sending_mta_ip, receiving_mx, failed FROM tls_report_failures \
                 WHERE tls_report_id = $1 ORDER BY failed DESC, result_type",
            )
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|f| {
                Ok(TlsFailure {
                    result_type: f.try_get("result_type")?,
                    sending_mta_ip: f.try_get("sending_mta_ip")?,
                    receiving_mx: f.try_get("receiving_mx")?,
                    failed: uncount(f.try_get("failed")?),
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
            out.push(TlsReport {
                received_at: UnixTime(row.try_get("received_at")?),
                summary: TlsReportSummary {
                    organization: row.try_get("organization")?,
                    contact: row.try_get("contact")?,
                    report_id: row.try_get("report_id")?,
                    start: UnixTime(row.try_get("start_at")?),
                    end: UnixTime(row.try_get("end_at")?),
                    successful: uncount(row.try_get("successful")?),
                    failed: uncount(row.try_get("failed")?),
                    failures,
                },
            });
        }
        Ok(out)
    }

    /// Forgets reports received before `at` (with their failure details); returns how many.
    pub async fn forget_tls_reports_before(&self, at: UnixTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM tls_reports WHERE received_at < $1").bind(at.0).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}
