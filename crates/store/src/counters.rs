//! Counting storage for the rules that several nodes must apply together: the login
//! throttle's events and the sending allowance of each mailbox. The rules themselves live
//! with their users (`auth::throttle`, `outbound::schedule`); these tables only keep the
//! counts, so that ten failures spread over three nodes count like ten on one. Used when
//! the database is shared ([`Store::is_shared`]); a single node counts in memory.
//!
//! Times are Unix milliseconds chosen by the caller. Both tables are pruned by the upkeep
//! sweep ([`Store::prune_throttle_events`], [`Store::prune_send_allowances`]); between
//! sweeps they grow at most by what the rules let through (a throttled key gets no new
//! events), as the in-memory counts do.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use postfach_types::MailboxId;
use sqlx::Row;

use crate::{Store, StoreError};

/// Turns the monotonic `Instant`s the rules compute with into the Unix milliseconds the
/// nodes share, anchored once to the wall clock (nodes' clocks are assumed close, as NTP
/// keeps them; a few seconds apart shift a window by as much).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    instant: Instant,
    unix_ms: i64,
}

impl Clock {
    pub fn new() -> Self {
        let unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, millis);
        Self { instant: Instant::now(), unix_ms }
    }

    /// `at` in Unix milliseconds.
    pub fn ms(&self, at: Instant) -> i64 {
        match at.checked_duration_since(self.instant) {
            Some(after) => self.unix_ms.saturating_add(millis(after)),
            None => self.unix_ms.saturating_sub(millis(self.instant.duration_since(at))),
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// A duration in whole milliseconds, saturating.
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A mailbox's sending allowance as stored: `units` left at `at_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub units: u64,
    pub at_ms: i64,
}

impl Store {
    /// How many events each of `keys` has after `since_ms`, in the order of `keys` (one
    /// query for all).
    pub async fn count_throttle_events(&self, keys: &[&str], since_ms: i64) -> Result<Vec<u64>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (2..keys.len() + 2).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT key, CAST(COUNT(*) AS BIGINT) AS n FROM throttle_events WHERE at > $1 AND key IN ({}) GROUP BY key",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(since_ms);
        for key in keys {
            query = query.bind(*key);
        }
        let mut counts = vec![0; keys.len()];
        for row in query.fetch_all(&self.pool).await? {
            let key: String = row.try_get("key")?;
            let n: i64 = row.try_get("n")?;
            for (i, _) in keys.iter().enumerate().filter(|(_, k)| **k == key) {
                counts[i] = u64::try_from(n).unwrap_or(0);
            }
        }
        Ok(counts)
    }

    /// Counts one event at `at_ms` for each of `keys`.
    pub async fn record_throttle_events(&self, keys: &[&str], at_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for key in keys {
            sqlx::query("INSERT INTO throttle_events (key, at) VALUES ($1, $2)")
                .bind(*key)
                .bind(at_ms)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Counts one event for `key` if it has fewer than `max` after `since_ms`; whether it
    /// did. Nodes deciding at the same instant may each take one (at most one over per
    /// concurrent decision).
    pub async fn take_throttle_event(
        &self,
        key: &str,
        at_ms: i64,
        since_ms: i64,
        max: u64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO throttle_events (key, at) SELECT $1, $2 \
             WHERE (SELECT COUNT(*) FROM throttle_events WHERE key = $1 AND at > $3) < $4",
        )
        .bind(key)
        .bind(at_ms)
        .bind(since_ms)
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Forgets every event of `key`.
    pub async fn forget_throttle_events(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM throttle_events WHERE key = $1").bind(key).execute(&self.pool).await?;
        Ok(())
    }

    /// Forgets events at or before `before_ms`; returns how many.
    pub async fn prune_throttle_events(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM throttle_events WHERE at <= $1").bind(before_ms).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }

    /// Reads `mailbox`'s allowance (`None`: never used, or forgotten), lets `update`
    /// decide its new value and an answer, and stores that value; the row stays locked
    /// in between, so concurrent senders on any node take turns.
    pub async fn update_send_allowance<R>(
        &self,
        mailbox: MailboxId,
        update: impl FnOnce(Option<Allowance>) -> (Allowance, R),
    ) -> Result<R, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO send_allowances (mailbox_id, units, at) VALUES ($1, -1, 0) ON CONFLICT (mailbox_id) DO NOTHING")
            .bind(mailbox)
            .execute(&mut *tx)
            .await?;
        // A no-op update takes the row lock on PostgreSQL (SQLite's write lock is held).
        let row = sqlx::query("UPDATE send_allowances SET at = at WHERE mailbox_id = $1 RETURNING units, at")
            .bind(mailbox)
            .fetch_one(&mut *tx)
            .await?;
        let units: i64 = row.try_get("units")?;
        let stored = u64::try_from(units).ok().map(|units| Allowance { units, at_ms: row.try_get("at").unwrap_or(0) });
        let (new, answer) = update(stored);
        sqlx::query("UPDATE send_allowances SET units = $1, at = $2 WHERE mailbox_id = $3")
            .bind(i64::try_from(new.units).unwrap_or(i64::MAX))
            .bind(new.at_ms)
            .bind(mailbox)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(answer)
    }

    /// Forgets allowances last used at or before `before_ms` (a caller whose allowance
    /// refills completely within the age it passes loses nothing); returns how many.
    pub async fn prune_send_allowances(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM send_allowances WHERE at <= $1").bind(before_ms).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }
}
