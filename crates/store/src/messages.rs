//! Message metadata: what IMAP and POP3 need about each message, the bytes themselves
//! being in the blob store.
//!
//! UIDs are handed out from the folder's `uidnext` inside the writing transaction, so they
//! strictly increase and are never reused (RFC 3501 §2.3.1.1). Every change raises the
//! folder's `highest_modseq` and stamps the changed messages with it (RFC 7162 CONDSTORE);
//! expunged UIDs are remembered with their modseq for QRESYNC. Each change is committed
//! with its announcement (`changes`), heard on [`Store::subscribe`] by IDLE sessions on
//! this node and, on PostgreSQL, on every other node.
//!
//! Message bytes outlive their last message by a grace period: an IMAP session that has
//! not yet been told about an expunge may still fetch the message (RFC 2180 §4.1.1), so
//! an expunged message keeps its blob id, size, date and flags in `expunged`, and a blob
//! no message refers to any more waits in `blob_orphans` until the upkeep sweep removes
//! it ([`Store::due_orphans`]). Nothing deletes message files on a client's command.

use std::collections::BTreeSet;

use postfach_types::{BlobId, UnixTime};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::Tx;
use crate::folders::no_folder;
use crate::{FolderId, MailboxId, Store, StoreError};

/// System flags as bits (RFC 3501 §2.3.2). `\Recent` is not stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(pub u8);

impl Flags {
    pub const SEEN: Flags = Flags(1);
    pub const ANSWERED: Flags = Flags(2);
    pub const FLAGGED: Flags = Flags(4);
    pub const DELETED: Flags = Flags(8);
    pub const DRAFT: Flags = Flags(16);
    pub const ALL: [(Flags, &'static str); 5] = [
        (Flags::SEEN, "\\Seen"),
        (Flags::ANSWERED, "\\Answered"),
        (Flags::FLAGGED, "\\Flagged"),
        (Flags::DELETED, "\\Deleted"),
        (Flags::DRAFT, "\\Draft"),
    ];

    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    pub fn without(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }

    /// The IMAP names of the set flags.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Flags::ALL.into_iter().filter(move |(f, _)| self.contains(*f)).map(|(_, n)| n)
    }

    /// The flag for an IMAP system flag name (case-insensitive), if it is one.
    pub fn from_name(name: &str) -> Option<Flags> {
        Flags::ALL.iter().find(|(_, n)| n.eq_ignore_ascii_case(name)).map(|(f, _)| *f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub uid: u32,
    pub modseq: u64,
    /// The blob holding the bytes.
    pub blob: BlobId,
    pub size: u64,
    pub internal_date: UnixTime,
    pub flags: Flags,
    /// Keywords (user flags), sorted, without duplicates.
    pub keywords: Vec<String>,
}

/// A message about to be stored; its blob is already durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub blob: BlobId,
    pub size: u64,
    pub internal_date: UnixTime,
    pub flags: Flags,
    pub keywords: Vec<String>,
}

/// Where a delivered message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryFolder {
    Inbox,
    Junk,
}

impl DeliveryFolder {
    /// The folder's name in every mailbox.
    pub fn name(self) -> &'static str {
        match self {
            DeliveryFolder::Inbox => "INBOX",
            DeliveryFolder::Junk => "Junk",
        }
    }
}

/// One message for one mailbox, as the SMTP server hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub mailbox_id: MailboxId,
    pub folder: DeliveryFolder,
    pub message: NewMessage,
}

/// Where a message landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub mailbox_id: MailboxId,
    pub folder_id: FolderId,
    pub uid: u32,
    pub modseq: u64,
    /// The quota warning level (percent) this message made the mailbox cross, which the
    /// mailbox has not been told about yet (`store::notice` tells it).
    pub quota_warning: Option<u8>,
}

/// How STORE changes flags (RFC 3501 §6.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagChange {
    Add,
    Remove,
    Replace,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOutcome {
    /// The messages whose flags changed, with their new state.
    pub changed: Vec<Message>,
    /// UIDs not changed because they were modified after `unchanged_since` (RFC 7162 §3.1.3).
    pub modified: Vec<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expunged {
    /// The removed UIDs, ascending.
    pub uids: Vec<u32>,
    /// Blobs no message refers to any more. They are recorded for the upkeep sweep, which
    /// removes them after the grace period; callers never delete them.
    pub orphaned_blobs: Vec<BlobId>,
}

/// What a subscriber hears: a change in one folder of one mailbox, announced at commit,
/// or that announcements may have been missed (anything may have changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailboxChange {
    Folder { mailbox_id: MailboxId, folder_id: FolderId },
    Missed,
}

impl MailboxChange {
    /// Whether a session showing `folder` of `mailbox` must look again.
    pub fn concerns(self, mailbox: MailboxId, folder: FolderId) -> bool {
        match self {
            MailboxChange::Folder { mailbox_id, folder_id } => mailbox_id == mailbox && folder_id == folder,
            MailboxChange::Missed => true,
        }
    }
}

const COLUMNS: &str = "uid, modseq, blob_id, size, internal_date, flags, keywords";

fn from_row(row: &AnyRow) -> Result<Message, StoreError> {
    let keywords: String = row.try_get("keywords")?;
    Ok(Message {
        uid: to_u32(row.try_get("uid")?),
        modseq: u64::try_from(row.try_get::<i64, _>("modseq")?).unwrap_or(0),
        blob: crate::db::decode(row.try_get("blob_id")?, BlobId::parse)?,
        size: u64::try_from(row.try_get::<i64, _>("size")?).unwrap_or(0),
        internal_date: UnixTime(row.try_get("internal_date")?),
        flags: Flags(u8::try_from(row.try_get::<i64, _>("flags")?).unwrap_or(0)),
        keywords: keywords.split(' ').filter(|k| !k.is_empty()).map(str::to_string).collect(),
    })
}

/// The messages `messages_between` packed into lines.
fn unpack(packed: &str) -> Result<Vec<Message>, StoreError> {
    let bad = || StoreError::Database(sqlx::Error::Decode("unreadable message metadata".into()));
    packed
        .split('\n')
        .map(|line| {
            let mut fields = line.splitn(7, ' ');
            let mut number = || fields.next().and_then(|f| f.parse::<i64>().ok()).ok_or_else(bad);
            let uid = to_u32(number()?);
            let modseq = u64::try_from(number()?).unwrap_or(0);
            let blob = fields.next().and_then(|f| BlobId::parse(f).ok()).ok_or_else(bad)?;
            let mut number = || fields.next().and_then(|f| f.parse::<i64>().ok()).ok_or_else(bad);
            let size = u64::try_from(number()?).unwrap_or(0);
            let internal_date = UnixTime(number()?);
            let flags = Flags(u8::try_from(number()?).unwrap_or(0));
            let keywords =
                fields.next().unwrap_or("").split(' ').filter(|k| !k.is_empty()).map(str::to_string).collect();
            Ok(Message { uid, modseq, blob, size, internal_date, flags, keywords })
        })
        .collect()
}

fn to_u32(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Keywords as stored: sorted, each once, space-separated. A keyword is an IMAP atom; one
/// with a space or a control character (which no IMAP client can send) is dropped here, so
/// the stored text always splits back into the same keywords (and `messages_between` can
/// pack rows into lines).
fn keywords_text(keywords: &[String]) -> String {
    let storable = |k: &&str| !k.is_empty() && !k.bytes().any(|b| b <= b' ' || b == 0x7f);
    let set: BTreeSet<&str> = keywords.iter().map(String::as_str).filter(storable).collect();
    set.into_iter().collect::<Vec<_>>().join(" ")
}

impl Store {
    /// Announcements of message changes, for IDLE and other open sessions.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<MailboxChange> {
        self.changes.subscribe()
    }

    /// Wakes this node's subscribers; changes reach it through
    /// [`Store::commit_and_announce`] (and the relay from other nodes).
    pub(crate) fn notify(&self, change: MailboxChange) {
        // No receivers is fine.
        let _ = self.changes.send(change);
    }

    /// Stores deliveries to one or many mailboxes in ONE transaction: when it returns, all
    /// are durable (the blobs were made durable before). Batching many SMTP transactions
    /// into one call shares the commit's fsync among them. Folders are locked in one
    /// order (by mailbox, INBOX before Junk), so two nodes' batches never deadlock.
    pub async fn deliver(&self, deliveries: &[Delivery]) -> Result<Vec<Placed>, StoreError> {
        let mut order: Vec<usize> = (0..deliveries.len()).collect();
        order.sort_by_key(|&i| (deliveries[i].mailbox_id, deliveries[i].folder == DeliveryFolder::Junk));
        let mut tx = self.begin_write().await?;
        let mut placed: Vec<Option<Placed>> = vec![None; deliveries.len()];
        for i in order {
            let d = &deliveries[i];
            let folder = folder_for_delivery(&mut tx, d.mailbox_id, d.folder.name()).await?;
            let (uid, modseq, quota_warning) = insert_message(&mut tx, d.mailbox_id, folder, &d.message).await?;
            placed[i] = Some(Placed { mailbox_id: d.mailbox_id, folder_id: folder, uid, modseq, quota_warning });
        }
        let placed: Vec<Placed> = placed.into_iter().flatten().collect();
        let changed: Vec<_> = placed.iter().map(|p| (p.mailbox_id, p.folder_id)).collect();
        self.commit_and_announce(tx, &changed).await?;
        Ok(placed)
    }

    /// IMAP APPEND (RFC 3501 §6.3.11): (UID, modseq). Refused with
    /// [`StoreError::OverQuota`] (nothing stored) when the message does not fit the quota.
    pub async fn append(
        &self,
        mailbox: MailboxId,
        folder: FolderId,
        message: &NewMessage,
    ) -> Result<(u32, u64), StoreError> {
        let placed = self.append_placed(mailbox, folder, message).await?;
        Ok((placed.uid, placed.modseq))
    }

    /// [`Store::append`], telling where the message landed and any quota warning due.
    pub async fn append_placed(
        &self,
        mailbox: MailboxId,
        folder: FolderId,
        message: &NewMessage,
    ) -> Result<Placed, StoreError> {
        let mut tx = self.begin_write().await?;
        check_folder(&mut tx, mailbox, folder).await?;
        let (uid, modseq, quota_warning) = insert_message(&mut tx, mailbox, folder, message).await?;
        crate::quota::check_added(&mut tx, mailbox, message.size, 1).await?;
        self.commit_and_announce(tx, &[(mailbox, folder)]).await?;
        Ok(Placed { mailbox_id: mailbox, folder_id: folder, uid, modseq, quota_warning })
    }

    /// All messages of a folder, by ascending UID.
    pub async fn messages(&self, mailbox: MailboxId, folder: FolderId) -> Result<Vec<Message>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM messages WHERE mailbox_id = $1 AND folder_id = $2 ORDER BY uid"
        )))
        .bind(mailbox)
        .bind(folder)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Messages whose modseq is above `modseq` (new or changed since), by UID.
    pub async fn messages_changed_since(
        &self,
        mailbox: MailboxId,
        folder: FolderId,
        modseq: u64,
    ) -> Result<Vec<Message>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM messages WHERE mailbox_id = $1 AND folder_id = $2 AND modseq > $3 ORDER BY uid"
        )))
        .bind(mailbox)
        .bind(folder)
        .bind(i64::try_from(modseq).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// The messages with UIDs from `lo` to `hi`, by UID (a FETCH of a few messages in a
    /// large folder reads only those).
    pub async fn messages_between(
        &self,
        mailbox: MailboxId,
        folder: FolderId,
        lo: u32,
        hi: u32,
    ) -> Result<Vec<Message>, StoreError> {
        // One row instead of one per message: the database driver hands every row across
        // threads, which for a FETCH of a thousand messages cost more than the query.
        // Keywords are IMAP atoms (no control characters), so a newline ends a message
        // and the rest of its line after the sixth space is its keywords.
        let packed: Option<String> = sqlx::query_scalar(
            "SELECT string_agg(uid || ' ' || modseq || ' ' || blob_id || ' ' || size || ' ' || internal_date \
             || ' ' || flags || ' ' || keywords, '\n' ORDER BY uid) \
             FROM messages WHERE mailbox_id = $1 AND folder_id = $2 AND uid >= $3 AND uid <= $4",
        )
        .bind(mailbox)
        .bind(folder)
        .bind(i64::from(lo))
        .bind(i64::from(hi))
        .fetch_one(&self.pool)
        .await?;
        packed.as_deref().map_or(Ok(Vec::new()), unpack)
    }

    /// Expunged messages among `uids`, as they were when expunged (for sessions not yet
    /// told about the expunge, RFC 2180 §4.1.1). Their bytes may already be gone after
    /// the grace period.
    pub async fn expunged_messages(
        &self,
        mailbox: MailboxId,
        folder: FolderId,
        uids: &[u32],
    ) -> Result<Vec<Message>, StoreError> {
        let mut out = Vec::new();
        for &uid in uids {
            let row = sqlx::query(
                "SELECT e.uid, e.modseq, e.blob_id, e.size, e.internal_date, e.flags, e.keywords FROM expunged e \
                 JOIN folders f ON f.id = e.folder_id \
                 WHERE f.mailbox_id = $1 AND e.folder_id = $2 AND e.uid = $3 AND e.blob_id IS NOT NULL",
            )
            .bind(mailbox)
            .bind(folder)
            .bind(i64::from(uid))
            .fetch_optional(&self.pool)
            .await?;
            if let Some(row) = row {
                out.push(from_row(&row)?);
            }
        }
        Ok(out)
    }

    /// Blobs that became orphans before `before` and still are: the upkeep sweep deletes
    /// their files, then calls [`Store::forget_orphans`].
    pub async fn due_orphans(&self, before: UnixTime, limit: i64) -> Result<Vec<BlobId>, StoreError> {
        let rows = sqlx::query(
            "SELECT o.blob_id FROM blob_orphans o WHERE o.since < $1 \
             AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = o.blob_id) ORDER BY o.since LIMIT $2",
        )
        .bind(before.0)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| crate::db::decode(r.try_get("blob_id")?, BlobId::parse))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    /// Forgets orphan records (after their files were deleted), and orphans that a message
    /// refers to again.
    pub async fn forget_orphans(&self, blobs: &[BlobId]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for blob in blobs {
            sqlx::query("DELETE FROM blob_orphans WHERE blob_id = $1").bind(blob.as_str()).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Of the given blob files, those the age-based sweep may delete: no message refers to
    /// them and they are not waiting out the grace period as recorded orphans.
    pub async fn sweepable_blobs(&self, candidates: Vec<BlobId>) -> Result<Vec<BlobId>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(crate::db::unreferenced_blobs(&mut conn, BLOB_IN_USE_OR_WAITING, candidates).await?)
    }

    /// Forgets expunges that happened before `before` (QRESYNC keeps them this long); each
    /// folder's floor rises to the highest modseq forgotten, so a client that synced before
    /// it gets every missing UID as VANISHED instead of an exact list. The floor never
    /// falls, not even when the clock went back and a later prune forgets only lower modseqs.
    pub async fn prune_expunged(&self, before: UnixTime) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE folders SET expunged_floor = (SELECT CASE WHEN MAX(e.modseq) > folders.expunged_floor \
             THEN MAX(e.modseq) ELSE folders.expunged_floor END FROM expunged e \
             WHERE e.folder_id = folders.id AND e.expunged_at < $1) \
             WHERE id IN (SELECT folder_id FROM expunged WHERE expunged_at < $1)",
        )
        .bind(before.0)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("DELETE FROM expunged WHERE expunged_at < $1").bind(before.0).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// The UIDs of a folder, ascending.
    pub async fn uids(&self, mailbox: MailboxId, folder: FolderId) -> Result<Vec<u32>, StoreError> {
        let rows = sqlx::query("SELECT uid FROM messages WHERE mailbox_id = $1 AND folder_id = $2 ORDER BY uid")
            .bind(mailbox)
            .bind(folder)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(to_u32(r.try_get("uid")?))).collect()
    }

    /// UIDs expunged after `modseq` (RFC 7162 §3.2.10 VANISHED).
    pub async fn expunged_since(
        &self,
        mailbox: MailboxId,
        folder: FolderId,
        modseq: u64,
    ) -> Result<Vec<u32>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.uid FROM expunged e JOIN folders f ON f.id = e.folder_id \
             WHERE f.mailbox_id = $1 AND e.folder_id = $2 AND e.modseq > $3 ORDER BY e.uid",
        )
        .bind(mailbox)
        .bind(folder)
        .bind(i64::try_from(modseq).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(to_u32(r.try_get("uid")?))).collect()
    }

    /// Changes flags and keywords of the given UIDs (RFC 3501 §6.4.6), optionally only
    /// where unchanged since a modseq (RFC 7162 §3.1.3).
    #[allow(clippy::too_many_arguments)]
    pub async fn store_flags(
        &self,
        mailbox: MailboxId,
        folder: FolderId,
        uids: &[u32],
        change: FlagChange,
        flags: Flags,
        keywords: &[String],
        unchanged_since: Option<u64>,
    ) -> Result<StoreOutcome, StoreError> {
        let mut tx = self.begin_write().await?;
        check_folder(&mut tx, mailbox, folder).await?;
        let mut outcome = StoreOutcome::default();
        let mut modseq = None;
        for chunk in uids.chunks(500) {
            for message in select_uids(&mut tx, folder, chunk).await? {
                if unchanged_since.is_some_and(|since| message.modseq > since) {
                    outcome.modified.push(message.uid);
                    continue;
                }
                let (new_flags, new_keywords) = apply(&message, change, flags, keywords);
                if new_flags == message.flags && new_keywords == message.keywords {
                    continue;
                }
                let m = match modseq {
                    Some(m) => m,
                    None => {
                        let m = bump_modseq(&mut tx, folder).await?;
                        modseq = Some(m);
                        m
                    }
                };
                sqlx::query(
                    "UPDATE messages SET flags = $1, keywords = $2, modseq = $3 WHERE folder_id = $4 AND uid = $5",
                )
                .bind(i64::from(new_flags.0))
                .bind(keywords_text(&new_keywords))
                .bind(i64::try_from(m).unwrap_or(i64::MAX))
                .bind(folder)
                .bind(i64::from(message.uid))
                .execute(&mut *tx)
                .await?;
                outcome.changed.push(Message { flags: new_flags, keywords: new_keywords, modseq: m, ..message });
            }
        }
        let changed = if modseq.is_some() { vec![(mailbox, folder)] } else { Vec::new() };
        self.commit_and_announce(tx, &changed).await?;
        Ok(outcome)
    }

    /// Removes the messages flagged `\Deleted` (RFC 3501 §6.4.3), optionally only among
    /// `only` (UID EXPUNGE, RFC 4315 §2.1).
    pub async fn expunge(
        &self,
        mailbox: MailboxId,
        folder: FolderId,
        only: Option<&[u32]>,
    ) -> Result<Expunged, StoreError> {
        let mut tx = self.begin_write().await?;
        check_folder(&mut tx, mailbox, folder).await?;
        let rows = sqlx::query("SELECT uid FROM messages WHERE folder_id = $1 AND flags >= 8 ORDER BY uid")
            .bind(folder)
            .fetch_all(&mut *tx)
            .await?;
        // `flags >= 8` narrows the scan; the exact bit is checked here.
        let mut candidates: Vec<u32> = Vec::new();
        for uid in rows.iter().map(|r| r.try_get::<i64, _>("uid").map(to_u32)) {
            candidates.push(uid?);
        }
        let deleted = select_uids(&mut tx, folder, &candidates).await?;
        let mut uids: Vec<u32> = deleted.iter().filter(|m| m.flags.contains(Flags::DELETED)).map(|m| m.uid).collect();
        if let Some(only) = only {
            let only: BTreeSet<u32> = only.iter().copied().collect();
            uids.retain(|u| only.contains(u));
        }
        self.remove_and_commit(tx, mailbox, folder, &uids).await
    }

    /// Removes the given messages whatever their flags (POP3 deletions at QUIT,
    /// RFC 1939 §6; the source side of MOVE).
    pub async fn remove_messages(
        &self,
        mailbox: MailboxId,
        folder: FolderId,
        uids: &[u32],
    ) -> Result<Expunged, StoreError> {
        let mut tx = self.begin_write().await?;
        check_folder(&mut tx, mailbox, folder).await?;
        self.remove_and_commit(tx, mailbox, folder, uids).await
    }

    /// The end of every removal: remove `uids` in `tx`, commit, and only then tell the
    /// folder's sessions (when something was removed).
    async fn remove_and_commit(
        &self,
        mut tx: Tx,
        mailbox: MailboxId,
        folder: FolderId,
        uids: &[u32],
    ) -> Result<Expunged, StoreError> {
        let expunged = remove(&mut tx, folder, uids).await?;
        let changed = if expunged.uids.is_empty() { Vec::new() } else { vec![(mailbox, folder)] };
        self.commit_and_announce(tx, &changed).await?;
        Ok(expunged)
    }

    /// Copies messages to another folder of the same mailbox (RFC 3501 §6.4.7); returns
    /// (source UID, new UID) pairs for COPYUID (RFC 4315 §3). The copies share the blobs.
    /// All or nothing: when one of `uids` (unique) is no longer in the folder, nothing is
    /// copied and the result is empty; when the copies do not fit the quota, nothing is
    /// copied and the result is [`StoreError::OverQuota`].
    pub async fn copy_messages(
        &self,
        mailbox: MailboxId,
        from: FolderId,
        uids: &[u32],
        to: FolderId,
    ) -> Result<Vec<(u32, u32)>, StoreError> {
        let mut tx = self.begin_write().await?;
        let (pairs, bytes) = copy(&mut tx, mailbox, from, uids, to).await?;
        if pairs.len() < uids.len() {
            // All or nothing: some are gone (expunged by another session).
            return Ok(Vec::new());
        }
        crate::quota::check_added(&mut tx, mailbox, bytes, pairs.len() as u64).await?;
        let changed = if pairs.is_empty() { Vec::new() } else { vec![(mailbox, to)] };
        self.commit_and_announce(tx, &changed).await?;
        Ok(pairs)
    }

    /// MOVE (RFC 6851): copy and remove in one transaction; all or nothing like
    /// [`Store::copy_messages`].
    pub async fn move_messages(
        &self,
        mailbox: MailboxId,
        from: FolderId,
        uids: &[u32],
        to: FolderId,
    ) -> Result<Vec<(u32, u32)>, StoreError> {
        // Moving within a mailbox does not change its use: no quota check.
        let mut tx = self.begin_write().await?;
        let (pairs, _) = copy(&mut tx, mailbox, from, uids, to).await?;
        if pairs.len() < uids.len() {
            return Ok(Vec::new());
        }
        let moved: Vec<u32> = pairs.iter().map(|(src, _)| *src).collect();
        remove(&mut tx, from, &moved).await?;
        let changed = if pairs.is_empty() { Vec::new() } else { vec![(mailbox, to), (mailbox, from)] };
        self.commit_and_announce(tx, &changed).await?;
        Ok(pairs)
    }

    /// Bytes stored in a mailbox (all folders), as its use counter keeps them.
    pub async fn mailbox_usage(&self, mailbox: MailboxId) -> Result<u64, StoreError> {
        Ok(self.mailbox_space(mailbox).await?.used_bytes)
    }

    /// Of the given blob ids, those no message refers to (for the orphan sweep).
    pub async fn unreferenced_blobs(&self, candidates: Vec<BlobId>) -> Result<Vec<BlobId>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(crate::db::unreferenced_blobs(&mut conn, MESSAGE_USES_BLOB, candidates).await?)
    }
}

fn apply(message: &Message, change: FlagChange, flags: Flags, keywords: &[String]) -> (Flags, Vec<String>) {
    let mut set: BTreeSet<String> = message.keywords.iter().cloned().collect();
    let new_flags = match change {
        FlagChange::Add => {
            set.extend(keywords.iter().cloned());
            message.flags.union(flags)
        }
        FlagChange::Remove => {
            for k in keywords {
                set.remove(k);
            }
            message.flags.without(flags)
        }
        FlagChange::Replace => {
            set = keywords.iter().cloned().collect();
            flags
        }
    };
    (new_flags, set.into_iter().filter(|k| !k.is_empty()).collect())
}

async fn folder_for_delivery(tx: &mut Tx, mailbox: MailboxId, name: &str) -> Result<FolderId, StoreError> {
    if let Some(id) = crate::folders::folder_id_in(tx, mailbox, name).await? {
        return Ok(id);
    }
    crate::folders::create_default_folders(tx, mailbox).await?;
    match crate::folders::folder_id_in(tx, mailbox, name).await? {
        Some(id) => Ok(id),
        // A customer deleted Junk: deliver to INBOX rather than lose the message.
        None if name != "INBOX" => Box::pin(folder_for_delivery(tx, mailbox, "INBOX")).await,
        None => Err(no_folder(name)),
    }
}

async fn check_folder(tx: &mut Tx, mailbox: MailboxId, folder: FolderId) -> Result<(), StoreError> {
    let found = sqlx::query("SELECT id FROM folders WHERE id = $1 AND mailbox_id = $2")
        .bind(folder)
        .bind(mailbox)
        .fetch_optional(&mut **tx)
        .await?;
    if found.is_some() { Ok(()) } else { Err(StoreError::NotFound("the folder does not exist (any more)".into())) }
}

/// Raises the folder's highest modseq and returns the new value.
async fn bump_modseq(tx: &mut Tx, folder: FolderId) -> Result<u64, StoreError> {
    let row =
        sqlx::query("UPDATE folders SET highest_modseq = highest_modseq + 1 WHERE id = $1 RETURNING highest_modseq")
            .bind(folder)
            .fetch_one(&mut **tx)
            .await?;
    Ok(u64::try_from(row.try_get::<i64, _>("highest_modseq")?).unwrap_or(0))
}

async fn insert_message(
    tx: &mut Tx,
    mailbox: MailboxId,
    folder: FolderId,
    message: &NewMessage,
) -> Result<(u32, u64, Option<u8>), StoreError> {
    let row = sqlx::query(
        "UPDATE folders SET uidnext = uidnext + 1, highest_modseq = highest_modseq + 1 WHERE id = $1 \
         RETURNING uidnext - 1 AS uid, highest_modseq",
    )
    .bind(folder)
    .fetch_one(&mut **tx)
    .await?;
    let uid: i64 = row.try_get("uid")?;
    let modseq: i64 = row.try_get("highest_modseq")?;
    sqlx::query(
        "INSERT INTO messages (mailbox_id, folder_id, uid, modseq, blob_id, size, internal_date, flags, keywords) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(mailbox)
    .bind(folder)
    .bind(uid)
    .bind(modseq)
    .bind(message.blob.as_str())
    .bind(i64::try_from(message.size).unwrap_or(i64::MAX))
    .bind(message.internal_date.0)
    .bind(i64::from(message.flags.0))
    .bind(keywords_text(&message.keywords))
    .execute(&mut **tx)
    .await?;
    let warning = crate::quota::add_use(tx, mailbox, message.size, 1).await?;
    Ok((to_u32(uid), u64::try_from(modseq).unwrap_or(0), warning))
}

async fn select_uids(tx: &mut Tx, folder: FolderId, uids: &[u32]) -> Result<Vec<Message>, StoreError> {
    let mut out = Vec::with_capacity(uids.len());
    for &uid in uids {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM messages WHERE folder_id = $1 AND uid = $2"
        )))
        .bind(folder)
        .bind(i64::from(uid))
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(row) = row {
            out.push(from_row(&row)?);
        }
    }
    Ok(out)
}

async fn remove(tx: &mut Tx, folder: FolderId, uids: &[u32]) -> Result<Expunged, StoreError> {
    let messages = select_uids(tx, folder, uids).await?;
    if messages.is_empty() {
        return Ok(Expunged::default());
    }
    let modseq = bump_modseq(tx, folder).await?;
    let mut blobs = Vec::new();
    let mut removed = Vec::new();
    for m in &messages {
        sqlx::query("DELETE FROM messages WHERE folder_id = $1 AND uid = $2")
            .bind(folder)
            .bind(i64::from(m.uid))
            .execute(&mut **tx)
            .await?;
        sqlx::query(
            "INSERT INTO expunged (folder_id, uid, modseq, expunged_at, blob_id, size, internal_date, flags, keywords) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(folder)
        .bind(i64::from(m.uid))
        .bind(i64::try_from(modseq).unwrap_or(i64::MAX))
        .bind(UnixTime::now().0)
        .bind(m.blob.as_str())
        .bind(i64::try_from(m.size).unwrap_or(i64::MAX))
        .bind(m.internal_date.0)
        .bind(i64::from(m.flags.0))
        .bind(keywords_text(&m.keywords))
        .execute(&mut **tx)
        .await?;
        blobs.push(m.blob.clone());
        removed.push(m.uid);
    }
    removed.sort_unstable();
    let bytes = messages.iter().map(|m| m.size).sum();
    crate::quota::remove_use(tx, folder, bytes, messages.len() as u64).await?;
    let orphaned_blobs = unreferenced(tx, blobs).await?;
    record_orphans(tx, &orphaned_blobs).await?;
    Ok(Expunged { uids: removed, orphaned_blobs })
}

async fn copy(
    tx: &mut Tx,
    mailbox: MailboxId,
    from: FolderId,
    uids: &[u32],
    to: FolderId,
) -> Result<(Vec<(u32, u32)>, u64), StoreError> {
    check_folder(tx, mailbox, from).await?;
    check_folder(tx, mailbox, to).await?;
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut pairs = Vec::new();
    let mut bytes = 0u64;
    for m in select_uids(tx, from, &sorted).await? {
        bytes = bytes.saturating_add(m.size);
        let new = NewMessage {
            blob: m.blob.clone(),
            size: m.size,
            internal_date: m.internal_date,
            flags: m.flags,
            keywords: m.keywords.clone(),
        };
        let (uid, _, _) = insert_message(tx, mailbox, to, &new).await?;
        pairs.push((m.uid, uid));
    }
    Ok((pairs, bytes))
}

/// Of `blobs`, those no message row refers to any more (inside the transaction).
pub(crate) async fn unreferenced(tx: &mut Tx, mut blobs: Vec<BlobId>) -> Result<Vec<BlobId>, StoreError> {
    blobs.sort();
    blobs.dedup();
    Ok(crate::db::unreferenced_blobs(tx, MESSAGE_USES_BLOB, blobs).await?)
}

/// Records blobs that just lost their last message, for the grace-period sweep.
pub(crate) async fn record_orphans(tx: &mut Tx, blobs: &[BlobId]) -> Result<(), StoreError> {
    for blob in blobs {
        sqlx::query("INSERT INTO blob_orphans (blob_id, since) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(blob.as_str())
            .bind(UnixTime::now().0)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

const MESSAGE_USES_BLOB: &str = "SELECT 1 AS one FROM messages WHERE blob_id = $1 LIMIT 1";
const BLOB_IN_USE_OR_WAITING: &str = "SELECT 1 AS one FROM messages WHERE blob_id = $1 \
     UNION ALL SELECT 1 AS one FROM blob_orphans WHERE blob_id = $1 LIMIT 1";
