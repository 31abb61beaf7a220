//! The maildrop a POP3 session works on (RFC 1939 §5): a snapshot of INBOX taken at
//! login, with deletion marks that reach the store only at QUIT, and the lock that keeps
//! a second session off the same mailbox.
//!
//! Message numbers are positions in the snapshot (1-based) and stay fixed for the whole
//! session; mail arriving meanwhile appears in the next session. A deleted message keeps
//! its number but is no longer listed or retrievable (RFC 1939 §6, DELE).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use postfach_store::StoreError;
use postfach_store::locks::{POP3_LOCK_CLASS, SessionLock, SessionLocks};
use postfach_types::{FolderId, MailboxId};

use crate::command::MsgNum;

/// One message of the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub uid: u32,
    pub size: u64,
    pub blob: postfach_blob::BlobId,
    pub deleted: bool,
}

/// Why a message number does not name a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoMessage {
    /// Out of range (or 0).
    Unknown,
    /// Marked as deleted in this session.
    Deleted,
}

#[derive(Debug)]
pub struct Maildrop {
    pub mailbox_id: MailboxId,
    pub folder_id: FolderId,
    pub uidvalidity: u32,
    entries: Vec<Entry>,
}

impl Maildrop {
    pub fn new(mailbox_id: MailboxId, folder_id: FolderId, uidvalidity: u32, entries: Vec<Entry>) -> Self {
        Self { mailbox_id, folder_id, uidvalidity, entries }
    }

    /// The message with this number, unless it is unknown or deleted.
    pub fn get(&self, n: MsgNum) -> Result<&Entry, NoMessage> {
        let entry = usize::try_from(n.0)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| self.entries.get(i))
            .ok_or(NoMessage::Unknown)?;
        if entry.deleted { Err(NoMessage::Deleted) } else { Ok(entry) }
    }

    /// Number and total size of the messages not marked deleted (RFC 1939 §5, STAT).
    pub fn stat(&self) -> (usize, u64) {
        self.live().fold((0, 0), |(n, size), (_, e)| (n + 1, size + e.size))
    }

    /// The messages not marked deleted, with their numbers.
    pub fn live(&self) -> impl Iterator<Item = (usize, &Entry)> {
        self.entries.iter().enumerate().filter(|(_, e)| !e.deleted).map(|(i, e)| (i + 1, e))
    }

    /// The unique-id listing of a message (RFC 1939 §7, UIDL): tied to the IMAP
    /// UIDVALIDITY and UID, so it never changes and is never reused.
    pub fn unique_id(&self, entry: &Entry) -> String {
        format!("{}.{}", self.uidvalidity, entry.uid)
    }

    pub fn delete(&mut self, n: MsgNum) -> Result<(), NoMessage> {
        self.get(n)?;
        if let Some(e) = usize::try_from(n.0 - 1).ok().and_then(|i| self.entries.get_mut(i)) {
            e.deleted = true;
        }
        Ok(())
    }

    /// RFC 1939 §5, RSET: unmark everything.
    pub fn reset(&mut self) {
        for e in &mut self.entries {
            e.deleted = false;
        }
    }

    /// The UIDs to remove in the UPDATE state.
    pub fn deleted_uids(&self) -> Vec<u32> {
        self.entries.iter().filter(|e| e.deleted).map(|e| e.uid).collect()
    }
}

/// The maildrop locks of one node, shared by all its POP3 listeners: in this process
/// first (no database round trip when the mailbox is busy here), then for every node
/// sharing the database (`postfach_store::locks`, class [`POP3_LOCK_CLASS`]).
#[derive(Debug, Clone)]
pub struct Locks {
    local: Arc<Mutex<HashSet<MailboxId>>>,
    cluster: SessionLocks,
}

/// Holds a mailbox for one session; released when dropped, however the session ends.
#[derive(Debug)]
pub struct Lock {
    id: MailboxId,
    held: Arc<Mutex<HashSet<MailboxId>>>,
    cluster: SessionLock,
}

impl Locks {
    pub fn new(cluster: SessionLocks) -> Self {
        Self { local: Arc::default(), cluster }
    }

    /// The lock on `id`, or `None` when another session, on any node, holds it
    /// (RFC 2449 §8.1.2 IN-USE).
    pub async fn try_lock(&self, id: MailboxId) -> Result<Option<Lock>, StoreError> {
        if !self.local.lock().unwrap_or_else(PoisonError::into_inner).insert(id) {
            return Ok(None);
        }
        let release_local = || {
            self.local.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        };
        match self.cluster.try_lock(POP3_LOCK_CLASS, id.get()).await {
            Ok(Some(cluster)) => Ok(Some(Lock { id, held: self.local.clone(), cluster })),
            Ok(None) => {
                release_local();
                Ok(None)
            }
            Err(e) => {
                release_local();
                Err(e)
            }
        }
    }
}

impl Lock {
    /// Whether the lock still holds on every node (see `postfach_store::locks`).
    pub async fn confirm(&self) -> bool {
        self.cluster.confirm().await
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drop_of(sizes: &[u64]) -> Maildrop {
        let entries = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| Entry {
                uid: (i as u32 + 1) * 10,
                size,
                blob: postfach_blob::BlobId::from_bytes([0; 16]),
                deleted: false,
            })
            .collect();
        Maildrop::new(MailboxId::new(1), FolderId::new(1), 7, entries)
    }

    #[test]
    fn deletion_marks_hide_messages_until_reset() {
        let mut drop = drop_of(&[100, 200, 300]);
        assert_eq!(drop.stat(), (3, 600));
        drop.delete(MsgNum(2)).expect("delete");
        assert_eq!(drop.stat(), (2, 400));
        assert_eq!(drop.get(MsgNum(2)), Err(NoMessage::Deleted));
        assert_eq!(drop.delete(MsgNum(2)), Err(NoMessage::Deleted));
        assert_eq!(drop.live().map(|(n, _)| n).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(drop.deleted_uids(), vec![20]);
        drop.reset();
        assert_eq!(drop.stat(), (3, 600));
        assert!(drop.deleted_uids().is_empty());
    }

    #[test]
    fn numbers_out_of_range() {
        let mut drop = drop_of(&[1]);
        assert_eq!(drop.get(MsgNum(0)), Err(NoMessage::Unknown));
        assert_eq!(drop.get(MsgNum(2)), Err(NoMessage::Unknown));
        assert_eq!(drop.get(MsgNum(u64::MAX)), Err(NoMessage::Unknown));
        assert_eq!(drop.delete(MsgNum(0)), Err(NoMessage::Unknown));
        assert!(drop.get(MsgNum(1)).is_ok());
    }

    #[test]
    fn unique_ids_combine_uidvalidity_and_uid() {
        let drop = drop_of(&[1, 2]);
        let ids: Vec<String> = drop.live().map(|(_, e)| drop.unique_id(e)).collect();
        assert_eq!(ids, vec!["7.10", "7.20"]);
    }

    #[tokio::test]
    async fn one_session_per_mailbox() {
        let locks = Locks::new(SessionLocks::single_node());
        let (five, six) = (MailboxId::new(5), MailboxId::new(6));
        let first = locks.try_lock(five).await.expect("lock").expect("free");
        assert!(locks.try_lock(five).await.expect("lock").is_none());
        assert!(locks.try_lock(six).await.expect("lock").is_some());
        drop(first);
        assert!(locks.try_lock(five).await.expect("lock").is_some());
    }
}
