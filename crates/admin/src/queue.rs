//! The outbound queue: list, retry, remove; and a mailbox's sent mail once delivered.

use postfach_store::queue::QueuedMessage;
use postfach_store::sent_log::SentEntry;
use postfach_types::{BlobId, MailboxId};

use crate::{Admin, AdminError, Who, manager};

impl Admin {
    pub async fn queue(&self, who: &Who) -> Result<Vec<QueuedMessage>, AdminError> {
        Ok(self.store.queue_list(manager(who)?).await?)
    }

    /// Tries a queued message's waiting recipients again soon; returns how many.
    pub async fn retry_queued(&self, who: &Who, queue_id: &str) -> Result<u64, AdminError> {
        Ok(self.store.queue_retry(manager(who)?, queue_id).await?)
    }

    /// Removes a message from the queue (it is not delivered); returns its blob id, whose
    /// file in the queue spool the caller deletes.
    pub async fn remove_queued(&self, who: &Who, queue_id: &str) -> Result<BlobId, AdminError> {
        Ok(self.store.queue_remove(manager(who)?, queue_id).await?)
    }

    /// A visible mailbox's sent mail whose delivery ended, newest first: to whom, the
    /// result, the receiving server and the encryption.
    pub async fn sent_mail(&self, who: &Who, mailbox: MailboxId) -> Result<Vec<SentEntry>, AdminError> {
        let mailbox = self.mailbox(who, mailbox).await?;
        Ok(self.store.sent_mail(who.scope(), mailbox.id).await?)
    }
}
