//! The mailbox's active Sieve script at final delivery (docs/sieve.md).
//!
//! Delivery learns with the recipient whether a script is active and when it last changed
//! (`Recipient::sieve_active_at`); only then is the script loaded and compiled, once per
//! change, through [`Scripts`]. The folder delivery chose (INBOX, or Junk by the spam
//! decision) is the *implicit keep*; `fileinto` and `discard` override it. Whatever goes
//! wrong with a script (it cannot be loaded, fails while running, names a folder that
//! does not exist without `:create`) ends in the implicit keep: a message is never lost to
//! a filter.

use std::collections::HashMap;
use std::sync::Mutex;

use postfach_blob::BlobStore;
use postfach_sieve::{Envelope, Outcome, Script};
use postfach_store::delivery::DeliveryBatcher;

use crate::sink::{Submission, SubmissionSink};
use postfach_store::local::{LocalError, LocalTarget, deliver_local};
use postfach_store::messages::{DeliveryFolder, Flags};
use postfach_store::resolve::Resolution;
use postfach_store::{Scope, Store};
use postfach_types::{CustomerId, EmailAddress, MailboxId, UnixTime};

/// Compiled scripts kept at most; beyond it the cache starts over.
const MAX_CACHED: usize = 1024;

/// Compiled active scripts by mailbox, valid while the script's `updated_at` matches.
#[derive(Debug, Default)]
pub(crate) struct Scripts {
    compiled: Mutex<HashMap<MailboxId, (i64, Script)>>,
}

impl Scripts {
    /// The active script of `mailbox` as of `active_at`, compiled; `None` when it is gone
    /// or cannot be compiled any more (logged).
    async fn get(&self, store: &Store, mailbox: MailboxId, active_at: i64) -> Option<Script> {
        if let Ok(cache) = self.compiled.lock()
            && let Some((at, script)) = cache.get(&mailbox)
            && *at == active_at
        {
            return Some(script.clone());
        }
        let stored = match store.active_sieve_script(Scope::Platform, mailbox).await {
            Ok(Some(stored)) => stored,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(mailbox = mailbox.get(), error = %e, "reading the filter script failed; message kept");
                return None;
            }
        };
        let script = match postfach_sieve::compile(&stored.text) {
            Ok(script) => script,
            Err(e) => {
                tracing::warn!(mailbox = mailbox.get(), error = %e, "the filter script does not compile; message kept");
                return None;
            }
        };
        if let Ok(mut cache) = self.compiled.lock() {
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(mailbox, (stored.updated_at.0, script.clone()));
        }
        Some(script)
    }
}

/// One message for one mailbox whose script runs.
pub(crate) struct Filtered<'a> {
    pub mailbox: MailboxId,
    pub active_at: i64,
    /// The mailbox's customer: `redirect` reaches only its mailboxes.
    pub customer: CustomerId,
    pub envelope: Envelope<'a>,
    /// The implicit keep.
    pub folder: DeliveryFolder,
    /// Whether a `reject` may refuse the message in the SMTP reply (the MX with this one
    /// mailbox as the only recipient); otherwise a reject keeps the message.
    pub may_refuse: bool,
}

/// Where the message went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Filed {
    /// Stored in one or more folders.
    Stored,
    /// The script discarded it (nothing stored, the transaction still succeeds).
    Discarded,
    /// The script rejects it (nothing stored): the reason for the `550` reply, one line of
    /// printable ASCII.
    Rejected(String),
}

/// Runs the mailbox's script over `message` and stores it where the script says (module
/// documentation). An error means nothing was stored and the sender should try again.
pub(crate) async fn deliver(
    scripts: &Scripts,
    store: &Store,
    blobs: &BlobStore,
    batcher: &DeliveryBatcher,
    sink: &dyn SubmissionSink,
    filtered: Filtered<'_>,
    message: &[u8],
) -> Result<Filed, LocalError> {
    let Filtered { mailbox, active_at, customer, envelope, folder, may_refuse } = filtered;
    let keep = |flags: Vec<String>| keep(store, blobs, batcher, mailbox, folder, flags, message);
    let Some(script) = scripts.get(store, mailbox, active_at).await else {
        return keep(Vec::new()).await;
    };
    let outcome = run(store, mailbox, &script, message, envelope).await;
    if let Some(error) = &outcome.error {
        tracing::info!(mailbox = mailbox.get(), %error, "filter script failed; message kept");
        return keep(Vec::new()).await;
    }
    if let Some(reason) = &outcome.reject {
        if may_refuse {
            tracing::info!(mailbox = mailbox.get(), "filter script rejects the message");
            return Ok(Filed::Rejected(reply_text(reason)));
        }
        tracing::info!(mailbox = mailbox.get(), "filter script rejects a message for several recipients; kept instead");
        return keep(outcome.keep.unwrap_or_default()).await;
    }
    if let Some(vacation) = &outcome.vacation {
        reply(sink, mailbox, vacation).await;
    }
    // A redirect that is not carried out must not lose the message.
    let mut refused = false;
    for target in &outcome.redirect {
        if !redirect(store, blobs, batcher, customer, target, message).await? {
            tracing::info!(mailbox = mailbox.get(), "redirect refused: this server prefers aliases to forwarding");
            refused = true;
        }
    }
    if outcome.stores_nothing() && !refused {
        tracing::info!(mailbox = mailbox.get(), "filter script discarded the message");
        return Ok(Filed::Discarded);
    }
    let mut kept = outcome.keep.is_some() || outcome.file_into.is_empty();
    kept |= refused;
    for file_into in &outcome.file_into {
        match file(store, blobs, mailbox, file_into, message).await {
            Ok(true) => {}
            Ok(false) => kept = true,
            Err(e) => {
                tracing::warn!(mailbox = mailbox.get(), error = %e, "filing a message failed; message kept");
                kept = true;
            }
        }
    }
    if kept {
        return keep(outcome.keep.unwrap_or_default()).await;
    }
    Ok(Filed::Stored)
}

/// Runs the script; a vacation reply it wants is kept only when the store says it is due
/// (and the store then remembers it), else the script runs again told "replied".
async fn run(store: &Store, mailbox: MailboxId, script: &Script, message: &[u8], envelope: Envelope<'_>) -> Outcome {
    let outcome = postfach_sieve::run(script, message, envelope, &|_| false);
    let Some(vacation) = &outcome.vacation else { return outcome };
    let days = u32::try_from(vacation.period_secs.div_ceil(86_400)).unwrap_or(u32::MAX).max(1);
    let due = match store.vacation_reply_due(mailbox, &vacation.to, &vacation.id, days).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(mailbox = mailbox.get(), error = %e, "asking whether a vacation reply is due failed");
            false
        }
    };
    if due { outcome } else { postfach_sieve::run(script, message, envelope, &|id| id == vacation.id) }
}

/// Queues the vacation reply from the mailbox with the null sender (RFC 3834 §3.3),
/// DKIM-signed by the queue like every message it takes. A failure is logged: the
/// arriving message is stored either way.
async fn reply(sink: &dyn SubmissionSink, mailbox: MailboxId, vacation: &postfach_sieve::Vacation) {
    let Ok(to) = EmailAddress::parse(&vacation.to) else { return };
    let submission = Submission {
        mailbox_id: mailbox,
        return_path: None,
        recipients: vec![to],
        message: vacation.message.clone(),
        client: std::net::IpAddr::from([127, 0, 0, 1]),
        require_tls: false,
    };
    match sink.submit(submission).await {
        Ok(id) => tracing::info!(mailbox = mailbox.get(), id, "vacation reply queued"),
        Err(e) => tracing::warn!(mailbox = mailbox.get(), error = %e, "queueing a vacation reply failed"),
    }
}

/// Delivers a copy to the INBOX of `target` when it is a mailbox of the same customer
/// (`[sieve] redirect = "customer"`, the default); `false` when it is not (the caller
/// keeps the message). The target's own script does not run on a redirected copy.
async fn redirect(
    store: &Store,
    blobs: &BlobStore,
    batcher: &DeliveryBatcher,
    customer: CustomerId,
    target: &str,
    message: &[u8],
) -> Result<bool, LocalError> {
    let Ok(address) = EmailAddress::parse(target) else { return Ok(false) };
    let Resolution::Mailbox(found) = store.resolve(&address).await? else { return Ok(false) };
    if found.customer_id != customer {
        return Ok(false);
    }
    let mailboxes = [found.mailbox_id];
    let target = LocalTarget::Mailboxes { batcher, mailboxes: &mailboxes, folder: DeliveryFolder::Inbox };
    deliver_local(blobs, message.to_vec(), target).await?;
    Ok(true)
}

/// Stores the message in the `fileinto` folder; `false` when the folder does not exist
/// and may not be created (the caller keeps the message).
async fn file(
    store: &Store,
    blobs: &BlobStore,
    mailbox: MailboxId,
    file_into: &postfach_sieve::FileInto,
    message: &[u8],
) -> Result<bool, LocalError> {
    let folder = match store.folder(mailbox, &file_into.folder).await? {
        Some(folder) => folder,
        None if file_into.create => store.create_folder(mailbox, &file_into.folder, None).await?,
        None => {
            tracing::info!(
                mailbox = mailbox.get(),
                "filter script files into a folder that does not exist; message kept"
            );
            return Ok(false);
        }
    };
    let (flags, keywords) = flags(&file_into.flags);
    let target =
        LocalTarget::Folder { store, mailbox, folder: folder.id, internal_date: UnixTime::now(), flags, keywords };
    deliver_local(blobs, message.to_vec(), target).await?;
    Ok(true)
}

/// The implicit keep (or an explicit `keep`): the folder delivery chose, with the
/// script's flags when it set any.
async fn keep(
    store: &Store,
    blobs: &BlobStore,
    batcher: &DeliveryBatcher,
    mailbox: MailboxId,
    folder: DeliveryFolder,
    names: Vec<String>,
    message: &[u8],
) -> Result<Filed, LocalError> {
    if !names.is_empty()
        && let Some(found) = store.folder(mailbox, folder.name()).await?
    {
        let (flags, keywords) = flags(&names);
        let target =
            LocalTarget::Folder { store, mailbox, folder: found.id, internal_date: UnixTime::now(), flags, keywords };
        deliver_local(blobs, message.to_vec(), target).await?;
        return Ok(Filed::Stored);
    }
    let mailboxes = [mailbox];
    let target = LocalTarget::Mailboxes { batcher, mailboxes: &mailboxes, folder };
    deliver_local(blobs, message.to_vec(), target).await?;
    Ok(Filed::Stored)
}

/// imap4flags names as system flags and keywords.
fn flags(names: &[String]) -> (Flags, Vec<String>) {
    let mut flags = Flags::default();
    let mut keywords = Vec::new();
    for name in names {
        match Flags::from_name(name) {
            Some(flag) => flags = flags.union(flag),
            None if !name.starts_with('\\') => keywords.push(name.clone()),
            None => {}
        }
    }
    (flags, keywords)
}

/// The longest reject reason put into an SMTP reply.
const MAX_REASON: usize = 200;

/// A script's reject reason as one SMTP reply line: printable ASCII, bounded.
fn reply_text(reason: &str) -> String {
    let line: String = reason
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let line: String = line.chars().take(MAX_REASON).collect();
    if line.is_empty() { "The recipient's mail filter refuses this message".to_string() } else { line }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reject_reasons_become_one_bounded_line() {
        assert_eq!(super::reply_text("No ads,\r\nplease.\u{7}"), "No ads, please.");
        assert_eq!(super::reply_text("\u{e4}\u{e4}"), "The recipient's mail filter refuses this message");
        assert_eq!(super::reply_text(&"x".repeat(1000)).len(), super::MAX_REASON);
    }
}
