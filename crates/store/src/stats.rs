//! Totals for monitoring (the `[metrics]` endpoint's gauges): the outbound queue, the
//! bytes of stored messages and the DNS check states. A few aggregate queries; the server
//! caches their answer, so a scrape costs the database at most one round per interval.

use postfach_types::UnixTime;
use sqlx::Row;

use crate::{Store, StoreError};

/// What [`Store::stats`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Queued messages with at least one recipient still waiting.
    pub queue_messages: u64,
    /// When the oldest of them was queued; `None` when there is none.
    pub queue_oldest: Option<UnixTime>,
    /// Bytes of every message in the queue.
    pub queue_bytes: u64,
    /// Bytes of the messages in mailboxes, each message file counted once.
    pub mailbox_bytes: u64,
    /// `(check, worst level, domains)`: per check, how many domains are at each level.
    pub dns_levels: Vec<(String, DnsLevel, u64)>,
    /// `(domain, check, level)` of checks that are not ok, errors first, then by name.
    pub dns_problems: Vec<(String, String, DnsLevel)>,
}

/// A check's worst verdict for a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DnsLevel {
    Ok,
    Warning,
    Error,
}

impl DnsLevel {
    fn from_rank(rank: i64) -> DnsLevel {
        match rank {
            2 => DnsLevel::Error,
            1 => DnsLevel::Warning,
            _ => DnsLevel::Ok,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DnsLevel::Ok => "ok",
            DnsLevel::Warning => "warning",
            DnsLevel::Error => "error",
        }
    }
}

/// Each domain's worst level per check (verdicts of one check can be several rows).
const WORST: &str = "SELECT domain_id, check_name, CAST(MAX(CASE level WHEN 'error' THEN 2 WHEN 'warning' THEN 1 \
                     ELSE 0 END) AS BIGINT) AS worst FROM dns_check_results GROUP BY domain_id, check_name";

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl Store {
    /// The monitoring totals; at most `max_problems` DNS problems are listed.
    pub async fn stats(&self, max_problems: u32) -> Result<Stats, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let queue = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n, CAST(COALESCE(MIN(created_at), 0) AS BIGINT) AS oldest \
             FROM queue_messages m WHERE EXISTS (SELECT 1 FROM queue_recipients r \
             WHERE r.message_id = m.id AND r.state = 'queued')",
        )
        .fetch_one(&mut *conn)
        .await?;
        let queue_messages = count(queue.try_get("n")?);
        let queue_bytes = sqlx::query("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS bytes FROM queue_messages")
            .fetch_one(&mut *conn)
            .await?
            .try_get("bytes")?;
        let mailbox_bytes = sqlx::query(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS bytes FROM \
             (SELECT blob_id, MAX(size) AS size FROM messages GROUP BY blob_id) b",
        )
        .fetch_one(&mut *conn)
        .await?
        .try_get("bytes")?;
        let levels = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT check_name, worst, CAST(COUNT(*) AS BIGINT) AS n FROM ({WORST}) w \
             GROUP BY check_name, worst ORDER BY check_name, worst"
        )))
        .fetch_all(&mut *conn)
        .await?;
        let problems = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT d.name AS domain, w.check_name, w.worst FROM ({WORST}) w JOIN domains d ON d.id = w.domain_id \
             WHERE w.worst > 0 ORDER BY w.worst DESC, d.name, w.check_name LIMIT $1"
        )))
        .bind(i64::from(max_problems))
        .fetch_all(&mut *conn)
        .await?;
        Ok(Stats {
            queue_messages,
            queue_oldest: (queue_messages > 0).then(|| queue.try_get("oldest").map(UnixTime)).transpose()?,
            queue_bytes: count(queue_bytes),
            mailbox_bytes: count(mailbox_bytes),
            dns_levels: levels
                .iter()
                .map(|r| {
                    Ok((r.try_get("check_name")?, DnsLevel::from_rank(r.try_get("worst")?), count(r.try_get("n")?)))
                })
                .collect::<Result<_, sqlx::Error>>()?,
            dns_problems: problems
                .iter()
                .map(|r| Ok((r.try_get("domain")?, r.try_get("check_name")?, DnsLevel::from_rank(r.try_get("worst")?))))
                .collect::<Result<_, sqlx::Error>>()?,
        })
    }
}
