//! The task that writes warning mails (`postfach_store::warnings`): it takes the events
//! the gate, the sending allowance and the DNS re-check hand over, drops those of a kind
//! the mailbox switched off, applies the rate limit in the database (one mail per kind and
//! target a day; the rest is counted into the next mail), renders the mail in the
//! mailbox's language, DKIM-signs it with its domain's key (`postfach_outbound::dkim`, the
//! one signing place) and delivers it into the mailbox's INBOX; a copy for the customer's
//! contact address goes through the outbound queue.
//!
//! Warnings about a domain go to the customer: into the INBOX of the domain's
//! `postmaster@` mailbox when there is one, and to the contact address.

use std::collections::HashSet;

use postfach_blob::BlobStore;
use postfach_outbound::Outbound;
use postfach_store::local::deliver_notice;
use postfach_store::notice::{Notice, Warning};
use postfach_store::resolve::Resolution;
use postfach_store::warnings::{WarningEvent, WarningKind, WarningTarget, network_of};
use postfach_store::{Store, StoreError};
use postfach_types::{AccessMode, CustomerId, EmailAddress, Language, MailboxId, UnixTime};
use tokio::sync::{mpsc, watch};

/// How many (mailbox, credential, service, network) the task remembers as known, so a
/// device that logs in often costs no login-log lookup; forgotten when full and daily.
const KNOWN_DEVICES: usize = 10_000;

/// How many events may wait for the task; more are dropped and counted.
pub(crate) const CHANNEL_CAPACITY: usize = 1024;

/// What the task needs besides the events.
#[derive(Debug, Clone)]
pub(crate) struct Mailer {
    pub store: Store,
    pub blobs: BlobStore,
    pub outbound: Outbound,
    /// The panel's address, ending in `/`; `None`: no panel to link to.
    pub panel: Option<String>,
    /// How far back the login log reaches (`security.login_log_retention_days`).
    pub login_log_retention_days: u32,
}

/// Devices known to have logged in before, by (mailbox, credential, service, network).
#[derive(Default)]
struct KnownDevices {
    keys: HashSet<String>,
    since: Option<UnixTime>,
}

impl KnownDevices {
    fn key(event: &WarningEvent) -> Option<String> {
        let WarningTarget::Mailbox(mailbox) = event.target else { return None };
        let facts = &event.facts;
        Some(format!("{} {:?} {:?} {}", mailbox.get(), facts.credential, facts.service, network_of(facts.client?)))
    }

    fn knows(&mut self, key: &str, now: UnixTime) -> bool {
        if self.keys.len() >= KNOWN_DEVICES || self.since.is_none_or(|s| now.0 - s.0 > 86_400) {
            self.keys.clear();
            self.since = Some(now);
        }
        self.keys.contains(key)
    }
}

/// Writes warning mails until `stopped` changes.
pub(crate) async fn run(mailer: Mailer, mut events: mpsc::Receiver<WarningEvent>, mut stopped: watch::Receiver<bool>) {
    let mut known = KnownDevices::default();
    loop {
        let event = tokio::select! {
            event = events.recv() => match event {
                Some(event) => event,
                None => return,
            },
            _ = stopped.changed() => return,
        };
        let kind = event.kind;
        if kind == WarningKind::NewDevice {
            match mailer.is_new_device(&event, &mut known).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(kind = %kind, error = %e, "whether a device is new could not be looked up");
                    continue;
                }
            }
        }
        if let Err(e) = mailer.handle(event).await {
            tracing::warn!(kind = %kind, error = %e, "a warning mail could not be written");
        }
    }
}

/// Where one warning goes.
struct Recipient {
    /// The mailbox whose INBOX gets it.
    inbox: Option<(MailboxId, EmailAddress)>,
    language: Language,
    customer_id: CustomerId,
    contact: Option<EmailAddress>,
    /// The domain the mail is from (its key signs it).
    from_domain: String,
}

impl Mailer {
    /// Whether a successful login (a [`WarningKind::NewDevice`] candidate) is the first of
    /// its credential and service from its network within the login log's retention.
    async fn is_new_device(&self, event: &WarningEvent, known: &mut KnownDevices) -> Result<bool, StoreError> {
        let (WarningTarget::Mailbox(mailbox), Some(service), Some(client), Some(key)) =
            (event.target, event.facts.service, event.facts.client, KnownDevices::key(event))
        else {
            return Ok(false);
        };
        if known.knows(&key, UnixTime::now()) {
            return Ok(false);
        }
        let since = UnixTime(event.at.0 - i64::from(self.login_log_retention_days) * 86_400);
        let credential = event.facts.credential.as_deref();
        let seen = self.store.seen_before(mailbox, credential, service, client, since, event.at).await?;
        known.keys.insert(key);
        Ok(!seen)
    }

    async fn handle(&self, event: WarningEvent) -> Result<(), StoreError> {
        let (recipient, about, access, submission, link) = match event.target {
            WarningTarget::Mailbox(id) => {
                let Some(m) = self.store.mailbox_warning_facts(id).await? else { return Ok(()) };
                if m.off.contains(&event.kind) {
                    return Ok(());
                }
                let link = self.panel.as_ref().map(|p| format!("{p}mailboxes/{}", id.get()));
                let recipient = Recipient {
                    from_domain: m.address.domain().to_string(),
                    inbox: Some((id, m.address.clone())),
                    language: m.language,
                    customer_id: m.customer_id,
                    contact: m.contact,
                };
                (recipient, m.address.to_string(), m.access, m.submission, link)
            }
            WarningTarget::Domain(id) => {
                let Some(d) = self.store.domain_warning_facts(id).await? else { return Ok(()) };
                let link = self.panel.as_ref().map(|p| format!("{p}domains/{}", id.get()));
                let postmaster = EmailAddress::parse(&format!("postmaster@{}", d.name)).ok();
                let inbox = match &postmaster {
                    Some(address) => match self.store.resolve(address).await {
                        Ok(Resolution::Mailbox(r)) => Some((r.mailbox_id, address.clone())),
                        _ => None,
                    },
                    None => None,
                };
                // The language of the mailbox that reads it, if it is hosted here.
                let reader = match (&inbox, &d.contact) {
                    (Some((id, _)), _) => Some(*id),
                    (None, Some(contact)) => match self.store.resolve(contact).await {
                        Ok(Resolution::Mailbox(r)) => Some(r.mailbox_id),
                        _ => None,
                    },
                    (None, None) => None,
                };
                let language = match reader {
                    Some(id) => self.store.mailbox_warning_facts(id).await?.map_or(Language::En, |m| m.language),
                    None => Language::En,
                };
                let recipient = Recipient {
                    from_domain: d.name.to_string(),
                    inbox,
                    language,
                    customer_id: d.customer_id,
                    contact: d.contact,
                };
                (recipient, d.name.to_string(), AccessMode::DEFAULT, true, link)
            }
        };
        if recipient.inbox.is_none() && recipient.contact.is_none() {
            tracing::info!(kind = %event.kind, about = %about, "a warning has nobody to go to (no postmaster mailbox, no contact address)");
            return Ok(());
        }
        let Some(untold) = self.store.warning_due(event.kind, event.target, event.at).await? else {
            tracing::debug!(kind = %event.kind, about = %about, "warning counted for the next mail");
            return Ok(());
        };
        let notice = Notice::Warning(Warning {
            kind: event.kind,
            about: about.clone(),
            at: event.at,
            facts: event.facts,
            untold: Some(untold),
            access,
            submission,
            link,
        });
        let to = match (&recipient.inbox, &recipient.contact) {
            (Some((_, address)), _) => address.clone(),
            (None, Some(contact)) => contact.clone(),
            (None, None) => return Ok(()),
        };
        let bytes = notice.render_from(&recipient.from_domain, &to, recipient.language, UnixTime::now());
        let bytes = postfach_outbound::dkim::sign(&self.store, bytes).await;
        if let Some((mailbox, _)) = &recipient.inbox {
            match deliver_notice(&self.blobs, &self.store, *mailbox, bytes.clone()).await {
                Ok(()) => tracing::info!(kind = %event.kind, about = %about, "warning mail delivered"),
                Err(e) => {
                    tracing::warn!(kind = %event.kind, about = %about, error = %e, "delivering a warning mail failed")
                }
            }
        }
        if let Some(contact) = recipient.contact.filter(|c| Some(c) != recipient.inbox.as_ref().map(|(_, a)| a)) {
            match self.outbound.send_platform(Some(recipient.customer_id), contact, bytes).await {
                Ok(id) => {
                    tracing::info!(kind = %event.kind, about = %about, queue_id = %id, "warning mail copy queued for the contact")
                }
                Err(e) => {
                    tracing::warn!(kind = %event.kind, about = %about, error = %e, "queueing a warning mail copy failed")
                }
            }
        }
        Ok(())
    }
}
