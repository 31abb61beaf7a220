//! The TLS outcomes of Postfach's own outbound deliveries, counted for the daily TLS-RPT
//! reports it sends to destination domains that ask for them (RFC 8460 §4): one row per
//! destination domain, UTC day, policy, result and receiving server, its counter
//! incremented by each delivery attempt, in the transaction that records the attempt's
//! results (`Store::queue_record`; [`Store::count_tls_outcome`] alone). The report job
//! reads a day ([`Store::tls_outcomes`]) and forgets it ([`Store::forget_tls_outcomes`]).
//!
//! Bounded: a domain gets at most [`MAX_TLS_OUTCOME_ROWS`] distinct rows a day (a domain
//! with ever new MX names cannot grow the table); after that, nothing more is counted
//! for that domain that day.

use sqlx::Row;

use crate::{Store, StoreError};

/// Distinct outcome rows kept per destination domain and day.
pub const MAX_TLS_OUTCOME_ROWS: i64 = 50;
/// Longest text kept in a row's policy, host or address.
const MAX_FIELD: usize = 1000;

/// One delivery attempt's TLS outcome, or a day's count of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOutcome {
    /// The destination (policy) domain, lower-case.
    pub domain: String,
    /// `sts`, `tlsa` or `no-policy-found` (RFC 8460 §4.3 `policy-type`).
    pub policy_type: String,
    /// The policy's lines (`policy-string`), joined by newlines; empty if none.
    pub policy: String,
    /// `success` or an RFC 8460 §4.3 `result-type` like `starttls-not-supported`.
    pub result: String,
    /// The MX host talked to, or empty.
    pub mx_host: String,
    /// Its address, or empty.
    pub mx_ip: String,
}

/// Days since 1970-01-01 (UTC) of a Unix time.
pub fn day_of(unix: i64) -> i64 {
    unix.div_euclid(86_400)
}

fn bounded(s: &str) -> &str {
    match s.char_indices().nth(MAX_FIELD) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

/// Counts one attempt's outcome on `day` (one UPSERT) on `conn`.
pub(crate) async fn count(conn: &mut sqlx::AnyConnection, day: i64, outcome: &TlsOutcome) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tls_rpt_counts (domain, day, policy_type, policy, result, mx_host, mx_ip, sessions) \
             SELECT $1, $2, $3, $4, $5, $6, $7, 1 \
             WHERE (SELECT COUNT(*) FROM tls_rpt_counts WHERE domain = $1 AND day = $2) < $8 \
             ON CONFLICT (domain, day, policy_type, policy, result, mx_host, mx_ip) \
             DO UPDATE SET sessions = tls_rpt_counts.sessions + 1",
    )
    .bind(bounded(&outcome.domain))
    .bind(day)
    .bind(&outcome.policy_type)
    .bind(bounded(&outcome.policy))
    .bind(&outcome.result)
    .bind(bounded(&outcome.mx_host))
    .bind(bounded(&outcome.mx_ip))
    .bind(MAX_TLS_OUTCOME_ROWS)
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// Counts one attempt's outcome on `day` (one UPSERT).
    pub async fn count_tls_outcome(&self, day: i64, outcome: &TlsOutcome) -> Result<(), StoreError> {
        count(&mut *self.pool.acquire().await?, day, outcome).await
    }

    /// The counted outcomes of `day`, grouped by domain, with their counts.
    pub async fn tls_outcomes(&self, day: i64) -> Result<Vec<(TlsOutcome, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT domain, policy_type, policy, result, mx_host, mx_ip, sessions FROM tls_rpt_counts \
             WHERE day = $1 ORDER BY domain, policy_type, policy, result, mx_host, mx_ip",
        )
        .bind(day)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    TlsOutcome {
                        domain: r.try_get("domain")?,
                        policy_type: r.try_get("policy_type")?,
                        policy: r.try_get("policy")?,
                        result: r.try_get("result")?,
                        mx_host: r.try_get("mx_host")?,
                        mx_ip: r.try_get("mx_ip")?,
                    },
                    u64::try_from(r.try_get::<i64, _>("sessions")?).unwrap_or(0),
                ))
            })
            .collect()
    }

    /// Forgets the outcomes of `domain` on `day` (its report went out or is not wanted).
    pub async fn forget_tls_outcomes(&self, domain: &str, day: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM tls_rpt_counts WHERE domain = $1 AND day = $2")
            .bind(domain)
            .bind(day)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets every outcome counted before `day` (reports that could not be sent).
    pub async fn forget_tls_outcomes_before(&self, day: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM tls_rpt_counts WHERE day < $1").bind(day).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}
