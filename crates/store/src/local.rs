//! [`deliver_local`]: the one way a message's bytes become a stored message, used by
//! every path that stores one (the MX, submission's local sink, DSNs and other outbound
//! notices, IMAP APPEND).
//!
//! The order is invariant 8 ("nothing acknowledged is lost"): the bytes go to the blob
//! store first, which returns only once they are durable (file and folder fsync'd, or the
//! S3 PUT completed); then the metadata
//! pointing at the blob is committed. A failed commit leaves an orphaned blob, which the
//! upkeep sweep removes after its grace period; no row ever points at missing bytes.
//!
//! It lives here, not in `blob`, so that the blob store stays a leaf that knows nothing of
//! the database (and can be replaced by an object store); the store only names blobs by
//! [`BlobId`].

use postfach_blob::{BlobError, BlobId, BlobStore, Content};
use postfach_types::UnixTime;

use crate::delivery::DeliveryBatcher;
use crate::messages::{Delivery, DeliveryFolder, Flags, NewMessage, Placed};
use crate::notice::Notice;
use crate::{FolderId, MailboxId, Store, StoreError};

/// Where a message is stored.
#[derive(Debug)]
pub enum LocalTarget<'a> {
    /// The INBOX or Junk folder of each mailbox, group-committed with other deliveries
    /// (MX, submission's local sink, DSNs). Arrival time now, no flags.
    Mailboxes { batcher: &'a DeliveryBatcher, mailboxes: &'a [MailboxId], folder: DeliveryFolder },
    /// One folder, with the date, flags and keywords the client gave (IMAP APPEND, RFC
    /// 9051 §6.3.12). The folder must belong to the mailbox.
    Folder {
        store: &'a Store,
        mailbox: MailboxId,
        folder: FolderId,
        internal_date: UnixTime,
        flags: Flags,
        keywords: Vec<String>,
    },
}

/// A stored message: its blob, and where it landed (one entry per mailbox or the folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub blob: BlobId,
    pub placed: Vec<Placed>,
}

/// Why a message was not stored. Either way nothing refers to its bytes.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The bytes could not be written durably.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The metadata could not be committed (the blob is left for the orphan sweep).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Writes the message (bytes, or a spool file streamed as it is) to the blob store, then
/// commits the message rows (module documentation).
pub async fn deliver_local(
    blobs: &BlobStore,
    content: impl Into<Content>,
    target: LocalTarget<'_>,
) -> Result<Delivered, LocalError> {
    let content = content.into();
    let size = content.len();
    let blob = blobs.put(content).await?;
    let store = match &target {
        LocalTarget::Mailboxes { batcher, .. } => batcher.store().clone(),
        LocalTarget::Folder { store, .. } => (*store).clone(),
    };
    let placed = match target {
        LocalTarget::Mailboxes { batcher, mailboxes, folder } => {
            let message = NewMessage {
                blob: blob.clone(),
                size,
                internal_date: UnixTime::now(),
                flags: Flags::default(),
                keywords: Vec::new(),
            };
            let deliveries =
                mailboxes.iter().map(|&mailbox_id| Delivery { mailbox_id, folder, message: message.clone() }).collect();
            batcher.deliver(deliveries).await?
        }
        LocalTarget::Folder { store, mailbox, folder, internal_date, flags, keywords } => {
            let message = NewMessage { blob: blob.clone(), size, internal_date, flags, keywords };
            vec![store.append_placed(mailbox, folder, &message).await?]
        }
    };
    for p in &placed {
        if let Some(level) = p.quota_warning {
            warn_quota(blobs, &store, p.mailbox_id, level).await;
        }
    }
    Ok(Delivered { blob, placed })
}

/// Delivers the quota warning for `level` into the mailbox's INBOX. A failure is logged,
/// not returned: the message that crossed the level is stored already.
async fn warn_quota(blobs: &BlobStore, store: &Store, mailbox: MailboxId, level: u8) {
    let state = match store.quota_state(mailbox).await {
        Ok(state) => state,
        Err(e) => return tracing::warn!(mailbox = mailbox.get(), error = %e, "reading the quota for a warning failed"),
    };
    let notice = Notice::QuotaWarning { level, space: state.space };
    let bytes = notice.render(&state.address, state.language, UnixTime::now());
    match deliver_notice(blobs, store, mailbox, bytes).await {
        Ok(()) => tracing::info!(mailbox = mailbox.get(), level, "quota warning delivered"),
        Err(e) => tracing::warn!(mailbox = mailbox.get(), level, error = %e, "delivering a quota warning failed"),
    }
}

/// Stores a platform notice (`notice`) in the mailbox's INBOX: blob, then commit, like
/// every delivery. Notices are not refused by a full quota and start no further notices.
pub async fn deliver_notice(
    blobs: &BlobStore,
    store: &Store,
    mailbox: MailboxId,
    bytes: Vec<u8>,
) -> Result<(), LocalError> {
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    let blob = blobs.put(bytes).await?;
    let message =
        NewMessage { blob, size, internal_date: UnixTime::now(), flags: Flags::default(), keywords: Vec::new() };
    store.deliver(&[Delivery { mailbox_id: mailbox, folder: DeliveryFolder::Inbox, message }]).await?;
    Ok(())
}
