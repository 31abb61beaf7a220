//! Where submission hands an accepted message: the outbound queue.
//!
//! [`SubmissionSink`] is the seam between the submission server and the queue
//! (`postfach-outbound`, `Outbound::submit`, which returns once the message is durable).
//! [`LocalDelivery`] is a sink for platforms without the outbound queue: it delivers to
//! mailboxes hosted here and refuses everything else with a temporary error, so nothing
//! is ever acknowledged and then dropped.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use postfach_blob::BlobStore;
use postfach_store::Store;
use postfach_store::delivery::DeliveryBatcher;
use postfach_store::local::{LocalTarget, deliver_local};
use postfach_store::messages::DeliveryFolder;
use postfach_store::resolve::Resolution;
use postfach_types::{EmailAddress, MailboxId};

/// One accepted submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The authenticated mailbox that sends it.
    pub mailbox_id: MailboxId,
    /// The envelope sender; `None` for the null reverse-path.
    pub return_path: Option<EmailAddress>,
    pub recipients: Vec<EmailAddress>,
    /// The message as it goes out, with the server's trace and completed header fields.
    pub message: Vec<u8>,
    /// The sending client's address.
    pub client: std::net::IpAddr,
    /// Sent with REQUIRETLS (RFC 8689).
    pub require_tls: bool,
}

/// Why a submission could not be taken. Both are temporary: the client tries again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("the sending rate limit of this mailbox is reached; try again in {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(String),
}

pub type SubmitFuture<'a> = Pin<Box<dyn Future<Output = Result<String, SubmitError>> + Send + 'a>>;

/// Takes a submission durably; the returned text (a queue id) goes into the `250` reply.
pub trait SubmissionSink: Send + Sync + std::fmt::Debug {
    fn submit(&self, submission: Submission) -> SubmitFuture<'_>;
}

/// A submission sink as the sender of what Sieve scripts send at delivery (vacation
/// replies, redirects leaving the customer): handed to the queue like a submission from
/// the mailbox, so its sending limit counts them.
pub(crate) struct Sending<'a>(pub &'a dyn SubmissionSink);

impl postfach_filter::Sender for Sending<'_> {
    fn send(&self, outgoing: postfach_filter::Outgoing) -> postfach_filter::SendFuture<'_> {
        Box::pin(async move {
            let submission = Submission {
                mailbox_id: outgoing.mailbox,
                return_path: outgoing.return_path,
                recipients: vec![outgoing.recipient],
                message: outgoing.message,
                client: std::net::IpAddr::from([127, 0, 0, 1]),
                require_tls: false,
            };
            self.0.submit(submission).await.map(|_| ()).map_err(|e| e.to_string())
        })
    }
}

/// Delivers submissions to local mailboxes only (see the module docs); Sieve scripts do
/// not run here (the server's sink is the outbound queue, whose local delivery runs them).
#[derive(Debug, Clone)]
pub struct LocalDelivery {
    pub store: Store,
    pub blobs: BlobStore,
    pub deliveries: DeliveryBatcher,
}

impl SubmissionSink for LocalDelivery {
    fn submit(&self, submission: Submission) -> SubmitFuture<'_> {
        Box::pin(async move {
            let unavailable = |e: &dyn std::fmt::Display| {
                tracing::warn!(error = %e, "storing a submitted message failed");
                SubmitError::Unavailable("the message could not be stored; try again later".into())
            };
            let mut mailboxes = BTreeSet::new();
            for recipient in &submission.recipients {
                match self.store.resolve(recipient).await.map_err(|e| unavailable(&e))? {
                    Resolution::Mailbox(r) => {
                        mailboxes.insert(r.mailbox_id);
                    }
                    Resolution::UnknownAddress => {
                        return Err(SubmitError::Unavailable(format!("{recipient} does not exist here")));
                    }
                    Resolution::NotHosted => {
                        return Err(SubmitError::Unavailable(format!(
                            "sending to other domains ({}) is not available on this server yet",
                            recipient.domain()
                        )));
                    }
                }
            }
            let mailboxes: Vec<_> = mailboxes.into_iter().collect();
            let target = LocalTarget::Mailboxes {
                batcher: &self.deliveries,
                mailboxes: &mailboxes,
                folder: DeliveryFolder::Inbox,
            };
            let blob = deliver_local(&self.blobs, submission.message, target).await.map_err(|e| unavailable(&e))?.blob;
            Ok(blob.to_string())
        })
    }
}
