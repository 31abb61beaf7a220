//! Where an IMAP import stands: per target mailbox, source (host and login) and source
//! folder, the folder's UIDVALIDITY and the highest UID copied. A second run asks for
//! messages above it; a changed UIDVALIDITY means the numbers start over (the importer
//! then relies on its duplicate check).

use sqlx::Row;

use crate::{MailboxId, Store, StoreError};

/// The source an import reads: the old server's host name and the login used there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSource<'a> {
    pub host: &'a str,
    pub login: &'a str,
}

/// How far one source folder has been copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportPosition {
    pub uidvalidity: u32,
    /// The highest source UID copied (or skipped for good).
    pub last_uid: u32,
}

impl Store {
    /// Where the import of `folder` from `source` into `mailbox` stands, if it ran before.
    pub async fn import_position(
        &self,
        mailbox: MailboxId,
        source: &ImportSource<'_>,
        folder: &str,
    ) -> Result<Option<ImportPosition>, StoreError> {
        let row = sqlx::query(
            "SELECT uidvalidity, last_uid FROM import_positions \
             WHERE mailbox_id = $1 AND host = $2 AND login = $3 AND folder = $4",
        )
        .bind(mailbox)
        .bind(source.host)
        .bind(source.login)
        .bind(folder)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let number = |column: &str| -> Result<u32, StoreError> {
            let value: i64 = row.try_get(column)?;
            u32::try_from(value).map_err(|e| StoreError::from(sqlx::Error::Decode(Box::new(e))))
        };
        Ok(Some(ImportPosition { uidvalidity: number("uidvalidity")?, last_uid: number("last_uid")? }))
    }

    /// Records that `folder` from `source` has been copied into `mailbox` up to `position`.
    pub async fn set_import_position(
        &self,
        mailbox: MailboxId,
        source: &ImportSource<'_>,
        folder: &str,
        position: ImportPosition,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO import_positions (mailbox_id, host, login, folder, uidvalidity, last_uid) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (mailbox_id, host, login, folder) \
             DO UPDATE SET uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid",
        )
        .bind(mailbox)
        .bind(source.host)
        .bind(source.login)
        .bind(folder)
        .bind(i64::from(position.uidvalidity))
        .bind(i64::from(position.last_uid))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
