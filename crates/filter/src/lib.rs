//! Final delivery into a mailbox with an active Sieve script (docs/sieve.md): the one
//! place a script decides where a message goes, called by every way mail reaches a
//! mailbox (the MX, and the outbound queue's local delivery: local submission, alias and
//! alias-domain targets, notices).
//!
//! Delivery learns with the recipient whether a script is active and when it last changed
//! (`Recipient::sieve_active_at`, [`Scripted::of`]); only then is the script loaded and
//! compiled, once per change, through the [`Filter`]'s cache. The folder delivery chose
//! (INBOX, or Junk by the spam decision) is the *implicit keep*; `fileinto` and `discard`
//! override it. Whatever goes wrong with a script (it cannot be loaded, fails while
//! running, names a folder that does not exist without `:create`) ends in the implicit
//! keep: a message is never lost to a filter (invariant 16).
//!
//! Messages a script sends (vacation replies, redirects that leave the customer when
//! `[sieve] redirect = "any"`) go through a [`Sender`]: the outbound queue, which counts
//! them against the mailbox's sending limit. A mailbox whose sending switch is off sends
//! neither; the message is kept. This crate sits below `smtp` and `outbound` so both
//! call the same code (`smtp` does not depend on `outbound`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use postfach_blob::BlobStore;
use postfach_metrics::SieveAction;
use postfach_sieve::{Envelope, Outcome, Script};
use postfach_store::delivery::DeliveryBatcher;
use postfach_store::local::{LocalError, LocalTarget, deliver_local};
use postfach_store::messages::{DeliveryFolder, Flags};
use postfach_store::resolve::{Recipient, Resolution};
use postfach_store::{Scope, Store};
use postfach_types::{CustomerId, EmailAddress, MailboxId, UnixTime};

/// Where a script's `redirect` may send a message (`[sieve] redirect`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Redirect {
    /// Only to mailboxes of the same customer (the default: this server prefers aliases
    /// to forwarding).
    #[default]
    Customer,
    /// Anywhere; copies that leave the customer go through the outbound queue.
    Any,
}

/// A message a script sends: a vacation reply, or a redirected copy that leaves the
/// customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The mailbox whose script sends it (its sending limit counts it).
    pub mailbox: MailboxId,
    /// The envelope sender; `None` is the null reverse-path.
    pub return_path: Option<EmailAddress>,
    pub recipient: EmailAddress,
    pub message: Vec<u8>,
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Takes what a script sends: the outbound queue (`Outbound::submit`, which checks the
/// mailbox's sending limit). An error is a text for the log.
pub trait Sender: Send + Sync {
    fn send(&self, outgoing: Outgoing) -> SendFuture<'_>;
}

/// A recipient mailbox whose active script runs at delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scripted {
    pub mailbox_id: MailboxId,
    /// When its script last changed (the cache key).
    pub active_at: i64,
    /// The recipient address that reached it (an alias, a subaddress or its own).
    pub to: EmailAddress,
    /// The mailbox's own address.
    pub mailbox: EmailAddress,
    /// Its customer: `redirect` reaches only its mailboxes by default.
    pub customer: CustomerId,
}

impl Scripted {
    /// The script to run for `recipient` reached as `to`; `None` when it has none.
    pub fn of(to: &EmailAddress, recipient: &Recipient) -> Option<Self> {
        Some(Scripted {
            mailbox_id: recipient.mailbox_id,
            active_at: recipient.sieve_active_at?,
            to: to.clone(),
            mailbox: recipient.mailbox.clone(),
            customer: recipient.customer_id,
        })
    }
}

/// Where the message went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filed {
    /// Stored in one or more folders.
    Stored,
    /// The script discarded it (nothing stored, the transaction still succeeds).
    Discarded,
    /// The script rejects it (nothing stored): the reason for the `550` reply, one line of
    /// printable ASCII.
    Rejected(String),
}

/// Runs mailboxes' scripts at delivery. Cheap to clone; clones share the script cache.
#[derive(Debug, Clone)]
pub struct Filter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    blobs: BlobStore,
    deliveries: DeliveryBatcher,
    redirect: Redirect,
    scripts: Scripts,
}

/// The longest `:days` a vacation reply is remembered for (a script asking more gets
/// this: RFC 5230 §4.1 lets a site set a maximum).
pub const MAX_VACATION_DAYS: u32 = 365;

/// How long the upkeep keeps vacation replies: longer than [`MAX_VACATION_DAYS`].
pub const VACATION_MEMORY_DAYS: u32 = MAX_VACATION_DAYS + 1;

/// A redirected copy that already passed this many `Delivered-To:` hops is kept instead.
const MAX_HOPS: usize = 20;

impl Filter {
    pub fn new(store: Store, blobs: BlobStore, deliveries: DeliveryBatcher, redirect: Redirect) -> Self {
        Filter { inner: Arc::new(Inner { store, blobs, deliveries, redirect, scripts: Scripts::default() }) }
    }

    /// Runs `scripted`'s script over `message` (from the envelope sender `from`, `None`
    /// for the null sender) and stores it where the script says (crate documentation).
    /// `folder` is the implicit keep; `may_refuse`: whether a `reject` may refuse the
    /// message in the SMTP reply (the MX with this one mailbox as the only recipient),
    /// otherwise a reject keeps it. An error means nothing was stored and the sender
    /// should try again.
    pub async fn deliver(
        &self,
        sender: &dyn Sender,
        scripted: &Scripted,
        from: Option<&EmailAddress>,
        folder: DeliveryFolder,
        may_refuse: bool,
        message: &[u8],
    ) -> Result<Filed, LocalError> {
        let inner = &*self.inner;
        let mailbox = scripted.mailbox_id;
        let keep = |flags: Vec<String>| self.keep(mailbox, folder, flags, message);
        let Some(script) = inner.scripts.get(&inner.store, mailbox, scripted.active_at).await else {
            return keep(Vec::new()).await;
        };
        let (from_text, to, own) =
            (from.map(ToString::to_string).unwrap_or_default(), scripted.to.to_string(), scripted.mailbox.to_string());
        let envelope = Envelope { from: &from_text, to: &to, mailbox: &own };
        let mut may_send = None;
        let mut outcome = self.run(mailbox, &script, message, envelope, &mut may_send).await;
        if let Some(error) = &outcome.error {
            tracing::info!(mailbox = mailbox.get(), %error, "filter script failed; message kept");
            postfach_metrics::sieve_action(SieveAction::Error);
            return keep(Vec::new()).await;
        }
        if let Some(reason) = &outcome.reject {
            if may_refuse {
                tracing::info!(mailbox = mailbox.get(), "filter script rejects the message");
                postfach_metrics::sieve_action(SieveAction::Reject);
                return Ok(Filed::Rejected(reply_text(reason)));
            }
            tracing::info!(mailbox = mailbox.get(), "filter script rejects a message it cannot refuse; kept instead");
            return keep(outcome.keep.take().unwrap_or_default()).await;
        }
        if let Some(vacation) = &outcome.vacation {
            self.reply(sender, mailbox, vacation).await;
        }
        // A redirect that is not carried out must not lose the message.
        let mut refused = false;
        for target in &outcome.redirect {
            if self.redirect(sender, scripted, target, message, &mut may_send).await? {
                postfach_metrics::sieve_action(SieveAction::Redirect);
            } else {
                postfach_metrics::sieve_action(SieveAction::Refused);
                refused = true;
            }
        }
        if outcome.stores_nothing() && !refused {
            tracing::info!(mailbox = mailbox.get(), "filter script discarded the message");
            if outcome.redirect.is_empty() {
                postfach_metrics::sieve_action(SieveAction::Discard);
            }
            return Ok(Filed::Discarded);
        }
        let mut kept = outcome.keep.is_some() || outcome.file_into.is_empty();
        kept |= refused;
        for file_into in &outcome.file_into {
            match self.file(mailbox, file_into, message).await {
                Ok(true) => postfach_metrics::sieve_action(SieveAction::FileInto),
                Ok(false) => kept = true,
                Err(e) => {
                    tracing::warn!(mailbox = mailbox.get(), error = %e, "filing a message failed; message kept");
                    kept = true;
                }
            }
        }
        if kept {
            return keep(outcome.keep.take().unwrap_or_default()).await;
        }
        Ok(Filed::Stored)
    }

    /// Runs the script; a vacation reply it wants is kept only when the mailbox may send
    /// and the store says it is due (and the store then remembers it), else the script
    /// runs again told "replied".
    async fn run(
        &self,
        mailbox: MailboxId,
        script: &Script,
        message: &[u8],
        envelope: Envelope<'_>,
        may_send: &mut Option<bool>,
    ) -> Outcome {
        let outcome = postfach_sieve::run(script, message, envelope, &|_| false);
        let Some(vacation) = &outcome.vacation else { return outcome };
        let due = if !self.may_send(mailbox, may_send).await {
            tracing::info!(mailbox = mailbox.get(), "no vacation reply: sending is switched off for the mailbox");
            postfach_metrics::sieve_action(SieveAction::Refused);
            false
        } else {
            let days =
                u32::try_from(vacation.period_secs.div_ceil(86_400)).unwrap_or(u32::MAX).clamp(1, MAX_VACATION_DAYS);
            match self.inner.store.vacation_reply_due(mailbox, &vacation.to, &vacation.id, days).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(mailbox = mailbox.get(), error = %e, "asking whether a vacation reply is due failed");
                    false
                }
            }
        };
        if due { outcome } else { postfach_sieve::run(script, message, envelope, &|id| id == vacation.id) }
    }

    /// The mailbox's sending switch, read once per message and only when a script sends.
    async fn may_send(&self, mailbox: MailboxId, known: &mut Option<bool>) -> bool {
        if let Some(known) = *known {
            return known;
        }
        let allowed = match self.inner.store.mailbox_by_id(Scope::Platform, mailbox).await {
            Ok(found) => found.settings.submission,
            Err(e) => {
                tracing::warn!(mailbox = mailbox.get(), error = %e, "reading the mailbox's sending switch failed");
                false
            }
        };
        *known = Some(allowed);
        allowed
    }

    /// Queues the vacation reply from the mailbox with the null sender (RFC 3834 §3.3),
    /// DKIM-signed by the queue like every message it takes. A failure is logged: the
    /// arriving message is stored either way.
    async fn reply(&self, sender: &dyn Sender, mailbox: MailboxId, vacation: &postfach_sieve::Vacation) {
        let Ok(to) = EmailAddress::parse(&vacation.to) else { return };
        let outgoing = Outgoing { mailbox, return_path: None, recipient: to, message: vacation.message.clone() };
        match sender.send(outgoing).await {
            Ok(()) => {
                tracing::info!(mailbox = mailbox.get(), "vacation reply queued");
                postfach_metrics::sieve_action(SieveAction::Vacation);
            }
            Err(e) => {
                tracing::warn!(mailbox = mailbox.get(), error = %e, "queueing a vacation reply failed");
                postfach_metrics::sieve_action(SieveAction::Refused);
            }
        }
    }

    /// Carries out one `redirect`: a mailbox of the same customer gets a copy in its
    /// INBOX (its own script does not run on it); any other address only with
    /// `[sieve] redirect = "any"`, through the queue ([`leaving`]). `false` when it is not
    /// carried out (logged; the caller keeps the message).
    async fn redirect(
        &self,
        sender: &dyn Sender,
        scripted: &Scripted,
        target: &str,
        message: &[u8],
        may_send: &mut Option<bool>,
    ) -> Result<bool, LocalError> {
        let inner = &*self.inner;
        let mailbox = scripted.mailbox_id;
        let Ok(address) = EmailAddress::parse(target) else { return Ok(false) };
        if let Resolution::Mailbox(found) = inner.store.resolve(&address).await?
            && found.customer_id == scripted.customer
        {
            let mailboxes = [found.mailbox_id];
            let target = LocalTarget::Mailboxes {
                batcher: &inner.deliveries,
                mailboxes: &mailboxes,
                folder: DeliveryFolder::Inbox,
            };
            deliver_local(&inner.blobs, message.to_vec(), target).await?;
            return Ok(true);
        }
        if inner.redirect == Redirect::Customer {
            tracing::info!(mailbox = mailbox.get(), "redirect refused: this server prefers aliases to forwarding");
            return Ok(false);
        }
        if !self.may_send(mailbox, may_send).await {
            tracing::info!(mailbox = mailbox.get(), "redirect refused: sending is switched off for the mailbox");
            return Ok(false);
        }
        let Some(copy) = leaving(&scripted.mailbox, message) else {
            tracing::info!(mailbox = mailbox.get(), "redirect refused: the message went round in a loop");
            return Ok(false);
        };
        let outgoing =
            Outgoing { mailbox, return_path: Some(scripted.mailbox.clone()), recipient: address, message: copy };
        match sender.send(outgoing).await {
            Ok(()) => {
                tracing::info!(mailbox = mailbox.get(), "redirected copy queued");
                Ok(true)
            }
            Err(e) => {
                tracing::info!(mailbox = mailbox.get(), error = %e, "redirect refused by the queue; message kept");
                Ok(false)
            }
        }
    }

    /// Stores the message in the `fileinto` folder; `false` when the folder does not exist
    /// and may not be created (the caller keeps the message).
    async fn file(
        &self,
        mailbox: MailboxId,
        file_into: &postfach_sieve::FileInto,
        message: &[u8],
    ) -> Result<bool, LocalError> {
        let (store, blobs) = (&self.inner.store, &self.inner.blobs);
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
        &self,
        mailbox: MailboxId,
        folder: DeliveryFolder,
        names: Vec<String>,
        message: &[u8],
    ) -> Result<Filed, LocalError> {
        let (store, blobs, batcher) = (&self.inner.store, &self.inner.blobs, &self.inner.deliveries);
        postfach_metrics::sieve_action(SieveAction::Keep);
        if !names.is_empty()
            && let Some(found) = store.folder(mailbox, folder.name()).await?
        {
            let (flags, keywords) = flags(&names);
            let target = LocalTarget::Folder {
                store,
                mailbox,
                folder: found.id,
                internal_date: UnixTime::now(),
                flags,
                keywords,
            };
            deliver_local(blobs, message.to_vec(), target).await?;
            return Ok(Filed::Stored);
        }
        let mailboxes = [mailbox];
        let target = LocalTarget::Mailboxes { batcher, mailboxes: &mailboxes, folder };
        deliver_local(blobs, message.to_vec(), target).await?;
        Ok(Filed::Stored)
    }
}

/// Compiled scripts kept at most; beyond it the cache starts over.
const MAX_CACHED: usize = 1024;

/// Compiled active scripts by mailbox, valid while the script's `updated_at` matches.
#[derive(Debug, Default)]
struct Scripts {
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

/// The copy of `message` that leaves for a redirect: the message unchanged but for the
/// `Return-Path:` delivery put in front (a relay sends none, RFC 5321 §4.4), and with
/// `Delivered-To: <mailbox>` (RFC 9228) in front; `None` when the message already went
/// through this mailbox that way (a loop) or through too many.
fn leaving(mailbox: &EmailAddress, message: &[u8]) -> Option<Vec<u8>> {
    let body = match message.iter().position(|&b| b == b'\n') {
        Some(end) if message[..end].to_ascii_lowercase().starts_with(b"return-path:") => &message[end + 1..],
        _ => message,
    };
    let own = mailbox.to_string().to_ascii_lowercase();
    let header_end = body.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(body.len());
    let mut hops = 0;
    for line in body[..header_end].split(|&b| b == b'\n') {
        let line = line.to_ascii_lowercase();
        let Some(value) = line.strip_prefix(b"delivered-to:") else { continue };
        hops += 1;
        let value = String::from_utf8_lossy(value);
        if hops >= MAX_HOPS || value.trim().trim_start_matches('<').trim_end_matches('>') == own {
            return None;
        }
    }
    let mut copy = format!("Delivered-To: {mailbox}\r\n").into_bytes();
    copy.extend_from_slice(body);
    Some(copy)
}

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
    fn a_redirected_copy_names_the_mailbox_and_stops_loops() {
        let own = postfach_types::EmailAddress::parse("max@example.org").expect("address");
        let arrived = b"Return-Path: <a@example.net>\r\nSubject: hi\r\n\r\nbody\r\n";
        let copy = super::leaving(&own, arrived).expect("copy");
        assert_eq!(copy, b"Delivered-To: max@example.org\r\nSubject: hi\r\n\r\nbody\r\n");
        let mut again = b"Return-Path: <max@example.org>\r\n".to_vec();
        again.extend_from_slice(&copy);
        assert_eq!(super::leaving(&own, &again), None);
        let mut other = b"Delivered-To: <erika@example.com>\r\n".to_vec();
        other.extend_from_slice(arrived);
        assert!(super::leaving(&own, &other).is_some());
        let many = "Delivered-To: x@example.com\r\n".repeat(super::MAX_HOPS) + "\r\nbody";
        assert_eq!(super::leaving(&own, many.as_bytes()), None);
    }

    #[test]
    fn reject_reasons_become_one_bounded_line() {
        assert_eq!(super::reply_text("No ads,\r\nplease.\u{7}"), "No ads, please.");
        assert_eq!(super::reply_text("\u{e4}\u{e4}"), "The recipient's mail filter refuses this message");
        assert_eq!(super::reply_text(&"x".repeat(1000)).len(), super::MAX_REASON);
    }
}
