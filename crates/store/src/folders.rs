//! Folders (IMAP mailboxes) of a mailbox, with what IMAP needs to keep clients in sync:
//! UIDVALIDITY, the next UID, the highest modification sequence (RFC 7162), the highest
//! UID claimed as `\Recent` (RFC 3501 §2.3.2), and the subscriptions (names of their own:
//! a deleted folder stays subscribed, RFC 9051 §6.3.7).
//!
//! Every mailbox has INBOX, Sent, Drafts, Trash, Junk and Archive, the last five with
//! their special-use attribute (RFC 6154). They are created with the mailbox, and for
//! mailboxes older than the message store on first access. A folder's UIDVALIDITY is
//! larger than that of any folder the mailbox had before, so a folder deleted and created
//! again never reuses a (UIDVALIDITY, UID) pair.

use postfach_types::{BlobId, UnixTime};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::Tx;
use crate::{FolderId, MailboxId, Store, StoreError};

/// The IMAP hierarchy separator.
pub const SEPARATOR: char = '/';

/// RFC 6154 special-use attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecialUse {
    Sent,
    Drafts,
    Trash,
    Junk,
    Archive,
}

impl SpecialUse {
    pub fn as_str(self) -> &'static str {
        match self {
            SpecialUse::Sent => "sent",
            SpecialUse::Drafts => "drafts",
            SpecialUse::Trash => "trash",
            SpecialUse::Junk => "junk",
            SpecialUse::Archive => "archive",
        }
    }

    /// The LIST attribute, e.g. `\Sent`.
    pub fn attribute(self) -> &'static str {
        match self {
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Trash => "\\Trash",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Archive => "\\Archive",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "sent" => SpecialUse::Sent,
            "drafts" => SpecialUse::Drafts,
            "trash" => SpecialUse::Trash,
            "junk" => SpecialUse::Junk,
            "archive" => SpecialUse::Archive,
            other => return Err(StoreError::Conflict(format!("unknown special use {other}"))),
        })
    }
}

/// The folders every mailbox has.
pub const DEFAULT_FOLDERS: &[(&str, Option<SpecialUse>)] = &[
    ("INBOX", None),
    ("Sent", Some(SpecialUse::Sent)),
    ("Drafts", Some(SpecialUse::Drafts)),
    ("Trash", Some(SpecialUse::Trash)),
    ("Junk", Some(SpecialUse::Junk)),
    ("Archive", Some(SpecialUse::Archive)),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    pub id: FolderId,
    pub mailbox_id: MailboxId,
    /// The full name, levels separated by [`SEPARATOR`]; `INBOX` for the inbox.
    pub name: String,
    pub special_use: Option<SpecialUse>,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highest_modseq: u64,
    /// Messages with a higher UID have not been seen as `\Recent` by any session yet.
    pub recent_uid: u32,
    /// Expunges up to this modseq are forgotten (see [`Store::prune_expunged`]).
    pub expunged_floor: u64,
    pub subscribed: bool,
}

impl Folder {
    pub fn is_inbox(&self) -> bool {
        self.name == "INBOX"
    }
}

const COLUMNS: &str = "id, mailbox_id, name, special_use, uidvalidity, uidnext, highest_modseq, recent_uid, \
     expunged_floor, CAST(CASE WHEN EXISTS (SELECT 1 FROM subscriptions s WHERE s.mailbox_id = folders.mailbox_id \
     AND s.name = folders.name) THEN 1 ELSE 0 END AS BIGINT) AS subscribed";

pub(crate) fn from_row(row: &AnyRow) -> Result<Folder, StoreError> {
    Ok(Folder {
        id: row.try_get("id")?,
        mailbox_id: row.try_get("mailbox_id")?,
        name: row.try_get("name")?,
        special_use: match row.try_get::<Option<String>, _>("special_use")? {
            Some(s) => Some(SpecialUse::parse(&s)?),
            None => None,
        },
        uidvalidity: u32::try_from(row.try_get::<i64, _>("uidvalidity")?).unwrap_or(u32::MAX),
        uidnext: u32::try_from(row.try_get::<i64, _>("uidnext")?).unwrap_or(u32::MAX),
        highest_modseq: u64::try_from(row.try_get::<i64, _>("highest_modseq")?).unwrap_or(0),
        recent_uid: u32::try_from(row.try_get::<i64, _>("recent_uid")?).unwrap_or(u32::MAX),
        expunged_floor: u64::try_from(row.try_get::<i64, _>("expunged_floor")?).unwrap_or(0),
        subscribed: row.try_get::<i64, _>("subscribed")? != 0,
    })
}

/// `INBOX` in any case means the inbox (RFC 3501 §5.1); other names are kept as given.
pub fn canonical_name(name: &str) -> String {
    if name.eq_ignore_ascii_case("INBOX") { "INBOX".to_string() } else { name.to_string() }
}

/// Checks a folder name a client asked to create.
pub fn validate_name(name: &str) -> Result<(), StoreError> {
    let bad = name.is_empty()
        || name.len() > 255
        || name.starts_with(SEPARATOR)
        || name.ends_with(SEPARATOR)
        || name.contains("//")
        || name.chars().any(|c| c.is_control() || c == '*' || c == '%');
    if bad {
        Err(StoreError::Conflict(format!(
            "'{name}' is not a usable folder name: use letters, digits and spaces, with '/' between levels"
        )))
    } else {
        Ok(())
    }
}

impl Store {
    /// All folders of a mailbox, ordered by name (INBOX first).
    pub async fn folders(&self, mailbox: MailboxId) -> Result<Vec<Folder>, StoreError> {
        let mut folders = self.list_folders(mailbox).await?;
        if !folders.iter().any(Folder::is_inbox) {
            let mut tx = self.begin_write().await?;
            create_default_folders(&mut tx, mailbox).await?;
            tx.commit().await?;
            folders = self.list_folders(mailbox).await?;
        }
        Ok(folders)
    }

    async fn list_folders(&self, mailbox: MailboxId) -> Result<Vec<Folder>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM folders WHERE mailbox_id = $1 ORDER BY CASE WHEN name = 'INBOX' THEN 0 ELSE 1 END, name"
        )))
        .bind(mailbox)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn folder(&self, mailbox: MailboxId, name: &str) -> Result<Option<Folder>, StoreError> {
        let name = canonical_name(name);
        if name == "INBOX" {
            return Ok(self.folders(mailbox).await?.into_iter().find(Folder::is_inbox));
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM folders WHERE mailbox_id = $1 AND name = $2"
        )))
        .bind(mailbox)
        .bind(&name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn folder_by_id(&self, mailbox: MailboxId, id: FolderId) -> Result<Option<Folder>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM folders WHERE mailbox_id = $1 AND id = $2"
        )))
        .bind(mailbox)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn create_folder(
        &self,
        mailbox: MailboxId,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<Folder, StoreError> {
        let name = canonical_name(name);
        validate_name(&name)?;
        self.folders(mailbox).await?;
        let mut tx = self.begin_write().await?;
        insert_folder(&mut tx, mailbox, &name, special_use).await?;
        tx.commit().await?;
        self.folder(mailbox, &name).await?.ok_or_else(|| StoreError::NotFound(format!("folder {name} vanished")))
    }

    /// Deletes a folder and its messages; returns the blob ids no message refers to any
    /// more. Their files are removed by the upkeep sweep after the grace period, never
    /// here: another session may still read them. INBOX cannot be deleted; the folder's
    /// subscription stays (RFC 9051 §6.3.7).
    pub async fn delete_folder(&self, mailbox: MailboxId, name: &str) -> Result<Vec<BlobId>, StoreError> {
        let name = canonical_name(name);
        if name == "INBOX" {
            return Err(StoreError::Conflict("INBOX cannot be deleted".into()));
        }
        let mut tx = self.begin_write().await?;
        let id: FolderId = sqlx::query("SELECT id FROM folders WHERE mailbox_id = $1 AND name = $2")
            .bind(mailbox)
            .bind(&name)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| no_folder(&name))?
            .try_get("id")?;
        let blobs = blobs_of(&mut tx, "SELECT DISTINCT blob_id FROM messages WHERE folder_id = $1", id).await?;
        let gone = sqlx::query(
            "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS bytes, CAST(COUNT(*) AS BIGINT) AS n \
             FROM messages WHERE folder_id = $1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let count = |column: &str| gone.try_get::<i64, _>(column).map(|v| u64::try_from(v).unwrap_or(0));
        crate::quota::remove_use(&mut tx, id, count("bytes")?, count("n")?).await?;
        sqlx::query("DELETE FROM expunged WHERE folder_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM messages WHERE folder_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM folders WHERE id = $1").bind(id).execute(&mut *tx).await?;
        let orphans = crate::messages::unreferenced(&mut tx, blobs).await?;
        crate::messages::record_orphans(&mut tx, &orphans).await?;
        self.commit_and_announce(tx, &[(mailbox, id)]).await?;
        Ok(orphans)
    }

    /// Renames a folder and its subfolders (RFC 3501 §6.3.5). Renaming INBOX moves its
    /// messages into a new folder and leaves INBOX empty.
    pub async fn rename_folder(&self, mailbox: MailboxId, from: &str, to: &str) -> Result<(), StoreError> {
        let (from, to) = (canonical_name(from), canonical_name(to));
        validate_name(&to)?;
        if to == "INBOX" {
            return Err(StoreError::Conflict("a folder cannot be renamed to INBOX".into()));
        }
        if from == "INBOX" {
            let inbox = self.folder(mailbox, "INBOX").await?.ok_or_else(|| no_folder("INBOX"))?;
            let target = self.create_folder(mailbox, &to, None).await?;
            let uids = self.uids(mailbox, inbox.id).await?;
            self.move_messages(mailbox, inbox.id, &uids, target.id).await?;
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        let prefix = format!("{from}{SEPARATOR}");
        let rows = sqlx::query(
            "SELECT id, name FROM folders WHERE mailbox_id = $1 AND (name = $2 OR SUBSTR(name, 1, CAST($4 AS INTEGER)) = $3)",
        )
        .bind(mailbox)
        .bind(&from)
        .bind(&prefix)
        .bind(i64::try_from(prefix.chars().count()).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await?;
        if !rows.iter().any(|r| r.try_get::<String, _>("name").is_ok_and(|n| n == from)) {
            return Err(no_folder(&from));
        }
        for row in &rows {
            let id: FolderId = row.try_get("id")?;
            let old: String = row.try_get("name")?;
            let new = format!("{to}{}", &old[from.len()..]);
            sqlx::query("UPDATE folders SET name = $1 WHERE id = $2")
                .bind(&new)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(|e| exists(e, &new))?;
            // A renamed folder keeps its subscription (as Dovecot does).
            let subscribed = sqlx::query("DELETE FROM subscriptions WHERE mailbox_id = $1 AND name = $2")
                .bind(mailbox)
                .bind(&old)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if subscribed > 0 {
                subscribe(&mut tx, mailbox, &new).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// SUBSCRIBE / UNSUBSCRIBE (RFC 9051 §6.3.7, §6.3.8). Subscribing needs an existing
    /// folder; unsubscribing works for any subscribed name (also of a deleted folder).
    pub async fn set_subscribed(&self, mailbox: MailboxId, name: &str, subscribed: bool) -> Result<(), StoreError> {
        let name = canonical_name(name);
        self.folders(mailbox).await?;
        let mut tx = self.begin_write().await?;
        if subscribed {
            if folder_id_in(&mut tx, mailbox, &name).await?.is_none() {
                return Err(no_folder(&name));
            }
            subscribe(&mut tx, mailbox, &name).await?;
        } else {
            let done = sqlx::query("DELETE FROM subscriptions WHERE mailbox_id = $1 AND name = $2")
                .bind(mailbox)
                .bind(&name)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("{name} is not subscribed")));
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The subscribed names, folders or not, sorted.
    pub async fn subscriptions(&self, mailbox: MailboxId) -> Result<Vec<String>, StoreError> {
        self.folders(mailbox).await?;
        let rows = sqlx::query("SELECT name FROM subscriptions WHERE mailbox_id = $1 ORDER BY name")
            .bind(mailbox)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| r.try_get::<String, _>("name")).collect::<Result<_, _>>()?)
    }

    /// Claims the messages no session has seen as `\Recent` yet (RFC 3501 §2.3.2: exactly
    /// one session sees a message as recent): returns the UID range `(after, upto]` this
    /// caller got, empty when there was nothing new. Safe against concurrent claims on
    /// other connections and nodes (compare-and-set).
    pub async fn claim_recent(&self, mailbox: MailboxId, folder: FolderId) -> Result<(u32, u32), StoreError> {
        for _ in 0..16 {
            let Some(f) = self.folder_by_id(mailbox, folder).await? else { return Err(no_folder("(selected)")) };
            let upto = f.uidnext.saturating_sub(1);
            if upto <= f.recent_uid {
                return Ok((f.recent_uid, f.recent_uid));
            }
            let done = sqlx::query("UPDATE folders SET recent_uid = $1 WHERE id = $2 AND recent_uid = $3")
                .bind(i64::from(upto))
                .bind(folder)
                .bind(i64::from(f.recent_uid))
                .execute(&self.pool)
                .await?;
            if done.rows_affected() == 1 {
                return Ok((f.recent_uid, upto));
            }
        }
        // Lost the race many times in a row: someone else got them.
        Ok((0, 0))
    }
}

/// The id of the folder stored under `name` (its exact stored spelling), in a transaction.
pub(crate) async fn folder_id_in(tx: &mut Tx, mailbox: MailboxId, name: &str) -> Result<Option<FolderId>, StoreError> {
    let row = sqlx::query("SELECT id FROM folders WHERE mailbox_id = $1 AND name = $2")
        .bind(mailbox)
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(|r| r.try_get("id")).transpose()?)
}

async fn subscribe(tx: &mut Tx, mailbox: MailboxId, name: &str) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO subscriptions (mailbox_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(mailbox)
        .bind(name)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(crate) async fn create_default_folders(tx: &mut Tx, mailbox: MailboxId) -> Result<(), StoreError> {
    for (name, special_use) in DEFAULT_FOLDERS {
        let exists = sqlx::query("SELECT 1 AS one FROM folders WHERE mailbox_id = $1 AND name = $2")
            .bind(mailbox)
            .bind(*name)
            .fetch_optional(&mut **tx)
            .await?;
        if exists.is_none() {
            insert_folder(tx, mailbox, name, *special_use).await?;
        }
    }
    Ok(())
}

async fn insert_folder(
    tx: &mut Tx,
    mailbox: MailboxId,
    name: &str,
    special_use: Option<SpecialUse>,
) -> Result<(), StoreError> {
    // UIDVALIDITY: now in seconds, but always above any value this mailbox used before.
    let last: i64 = sqlx::query("SELECT last_uidvalidity FROM mailboxes WHERE id = $1")
        .bind(mailbox)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("there is no mailbox with id {mailbox}")))?
        .try_get("last_uidvalidity")?;
    let uidvalidity = (UnixTime::now().0 % i64::from(u32::MAX)).max(last + 1).max(1);
    sqlx::query("UPDATE mailboxes SET last_uidvalidity = $1 WHERE id = $2")
        .bind(uidvalidity)
        .bind(mailbox)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO folders (mailbox_id, name, special_use, uidvalidity, uidnext, highest_modseq, created_at) \
         VALUES ($1, $2, $3, $4, 1, 1, $5)",
    )
    .bind(mailbox)
    .bind(name)
    .bind(special_use.map(SpecialUse::as_str))
    .bind(uidvalidity)
    .bind(UnixTime::now().0)
    .execute(&mut **tx)
    .await
    .map_err(|e| exists(e, name))?;
    // New folders are subscribed, so clients that list only subscribed folders see them.
    subscribe(tx, mailbox, name).await
}

async fn blobs_of(tx: &mut Tx, sql: &'static str, id: FolderId) -> Result<Vec<BlobId>, StoreError> {
    let rows = sqlx::query(sql).bind(id).fetch_all(&mut **tx).await?;
    Ok(rows
        .iter()
        .map(|r| crate::db::decode(r.try_get("blob_id")?, BlobId::parse))
        .collect::<Result<_, sqlx::Error>>()?)
}

fn exists(e: sqlx::Error, name: &str) -> StoreError {
    if StoreError::is_unique_violation(&e) {
        StoreError::Conflict(format!("a folder named {name} exists already"))
    } else {
        e.into()
    }
}

pub(crate) fn no_folder(name: &str) -> StoreError {
    StoreError::NotFound(format!("there is no folder named {name}"))
}
