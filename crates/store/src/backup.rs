//! What a backup asks of the database: a consistent copy of it (SQLite `VACUUM INTO`), the
//! blobs a copy refers to, and the repair of a copy whose blob vanished after the snapshot
//! (a message expunged and swept, a queued message delivered) — the copy then holds what
//! the live database did a moment later.

use std::path::Path;

use sqlx::Row;

use postfach_types::{BlobId, FolderId, MailboxId};

use crate::{Backend, Store, StoreError};

/// Which table's blobs: the mailboxes' messages or the outbound queue's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobSet {
    Mailboxes,
    Queue,
}

impl BlobSet {
    fn table(self) -> &'static str {
        match self {
            BlobSet::Mailboxes => "messages",
            BlobSet::Queue => "queue_messages",
        }
    }
}

impl Store {
    /// Writes a consistent copy of the whole database to `path` (which must not exist)
    /// while writers go on: SQLite's `VACUUM INTO` reads one snapshot. Only on SQLite;
    /// PostgreSQL is copied with `pg_dump` (docs/operations.md, "Backups").
    pub async fn snapshot_into(&self, path: &Path) -> Result<(), StoreError> {
        if self.backend() != Backend::Sqlite {
            return Err(StoreError::BadUrl("a copy of the database is made with pg_dump on PostgreSQL".into()));
        }
        let path = path.to_str().ok_or_else(|| StoreError::BadUrl("the backup path is not UTF-8".into()))?;
        sqlx::query("VACUUM INTO $1").bind(path.to_string()).execute(&self.pool).await?;
        Ok(())
    }

    /// The distinct blobs of `set` with their recorded size, ordered by id, at most
    /// `limit` after `after` (pages through any number of messages in bounded memory).
    pub async fn referenced_blobs(
        &self,
        set: BlobSet,
        after: Option<&BlobId>,
        limit: i64,
    ) -> Result<Vec<(BlobId, u64)>, StoreError> {
        let sql = format!(
            "SELECT blob_id, MAX(size) AS size FROM {} WHERE blob_id > $1 GROUP BY blob_id ORDER BY blob_id LIMIT $2",
            set.table()
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after.map_or("", BlobId::as_str).to_string())
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let blob = crate::db::decode(r.try_get("blob_id")?, BlobId::parse)?;
                Ok((blob, u64::try_from(r.try_get::<i64, _>("size")?).unwrap_or(0)))
            })
            .collect()
    }

    /// Whether anything in `set` still refers to `blob`.
    pub async fn blob_referenced(&self, set: BlobSet, blob: &BlobId) -> Result<bool, StoreError> {
        let sql = format!("SELECT 1 AS one FROM {} WHERE blob_id = $1 LIMIT 1", set.table());
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(blob.as_str()).fetch_optional(&self.pool).await?;
        Ok(row.is_some())
    }

    /// In a backup's copy: forgets what referred to `blob`, which the live server removed
    /// after the snapshot. Messages are expunged the ordinary way (their UIDs are recorded
    /// as expunged, so synchronising clients hear of it); queued messages were delivered or
    /// removed and are dropped. Returns how many rows went.
    pub async fn forget_vanished_blob(&self, set: BlobSet, blob: &BlobId) -> Result<u64, StoreError> {
        match set {
            BlobSet::Mailboxes => {
                let rows = sqlx::query("SELECT mailbox_id, folder_id, uid FROM messages WHERE blob_id = $1")
                    .bind(blob.as_str())
                    .fetch_all(&self.pool)
                    .await?;
                let mut removed = 0;
                for row in &rows {
                    let mailbox: MailboxId = row.try_get("mailbox_id")?;
                    let folder: FolderId = row.try_get("folder_id")?;
                    let uid = u32::try_from(row.try_get::<i64, _>("uid")?).unwrap_or(u32::MAX);
                    removed += self.remove_messages(mailbox, folder, &[uid]).await?.uids.len() as u64;
                }
                Ok(removed)
            }
            BlobSet::Queue => {
                let done = sqlx::query("DELETE FROM queue_messages WHERE blob_id = $1")
                    .bind(blob.as_str())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }
        }
    }
}
