//! Outbound mail: the durable queue, delivery to other mail servers, DKIM signing and
//! delivery status notifications.
//!
//! [`Outbound::submit`] takes a message from the submission server: it checks the
//! sender's rate limit, completes and DKIM-signs the message, and then either delivers it
//! straight into the mailboxes here (when every recipient is hosted here) or writes it to
//! the queue spool (`data_dir/queue`, fsync'd) and commits its queue rows; only then does
//! it return, so an accepted message is never lost (invariant 4). [`Outbound::run`] runs
//! the delivery workers: they claim due recipients, deliver local ones into their
//! mailboxes and remote ones over SMTP to the domain's MX hosts (opportunistic STARTTLS),
//! retry temporary failures with exponential backoff until the queue lifetime is over, and
//! send the sender a delivery status notification (RFC 3464) for recipients that failed,
//! and optionally a delay warning.
//!
//! Modules: [`schedule`] (backoff, rate limit), [`message`] (header completion, dates),
//! [`dkim`] (signing), [`mx`] (where mail goes), [`client`] (the SMTP client), [`dsn`]
//! (notifications), and the private worker loop.

pub mod cert_check;
pub mod client;
pub mod dane;
pub mod dkim;
pub mod dsn;
pub mod message;
pub mod mta_sts;
pub mod mx;
pub mod schedule;
pub mod tls_policy;
pub mod tls_rpt;
mod worker;

pub use worker::{CLAIM_HEARTBEAT, CLAIM_LEASE};

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use postfach_blob::BlobStore;
use postfach_store::Store;
use postfach_store::delivery::DeliveryBatcher;
use postfach_store::local::{LocalTarget, deliver_local};
use postfach_store::messages::DeliveryFolder;
use postfach_store::queue::NewQueuedMessage;
use postfach_store::resolve::{Recipient, Resolution};
use postfach_store::warnings::{WarningEvent, WarningFacts, WarningKind, WarningTarget};
use postfach_types::{DomainName, EmailAddress, MailboxId, NodeName, Room, UnixTime};
use tls_policy::Demand;
use tokio::sync::Notify;

/// One message handed over by the submission server, after authentication and the
/// sender-address checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The authenticated mailbox that sends it (for the rate limit and the queue's owner).
    pub mailbox_id: MailboxId,
    /// The envelope sender; `None` is the null reverse-path.
    pub return_path: Option<EmailAddress>,
    pub recipients: Vec<EmailAddress>,
    /// The message as it goes out.
    pub message: Vec<u8>,
    /// The sending client's address (told in the sending-limit warning).
    pub client: Option<std::net::IpAddr>,
    /// Sent with REQUIRETLS (RFC 8689): delivered only over TLS with a verified
    /// certificate, else returned to the sender.
    pub require_tls: bool,
}

/// Who a queued message is from, and what TLS its sender asks for.
#[derive(Debug, Clone)]
struct Queued {
    customer_id: Option<postfach_types::CustomerId>,
    mailbox_id: Option<MailboxId>,
    return_path: Option<EmailAddress>,
    demand: Demand,
}

/// The id of an accepted message, as shown in the `250` reply, the log and
/// `postfach queue list`: 16 upper-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(String);

impl QueueId {
    fn random() -> Self {
        let bytes: [u8; 8] = rand::random();
        Self(bytes.iter().map(|b| format!("{b:02X}")).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for QueueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a submission was not taken. Both are temporary for the client (SMTP 4xx).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    #[error("the sending limit of this mailbox is reached; try again in {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(String),
}

/// The settings of the queue, from the configuration's `[outbound]` and `[dns]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundSettings {
    /// This server's name: EHLO, `Message-ID`s, the notifications' sender.
    pub hostname: DomainName,
    /// The DNS resolver for MX lookups; `None`: the system's.
    pub resolver: Option<SocketAddr>,
    /// The port remote mail servers are reached on (25; tests use their own).
    pub smtp_port: u16,
    /// The addresses outbound mail leaves from (`[outbound] ips`); empty: the system's
    /// choice.
    pub source_ips: Vec<std::net::IpAddr>,
    /// How long delivery is retried before the message is returned to its sender.
    pub queue_lifetime: Duration,
    /// Messages each mailbox may send per hour.
    pub rate_limit_per_hour: u32,
    /// After how long a still undelivered message gets a delay warning; `None`: never.
    pub delay_warning: Option<Duration>,
    /// This node's name (`[cluster] node`): its queue claims carry it.
    pub node: NodeName,
    /// How long a claim lasts and how often it is renewed ([`ClaimTiming::default`]).
    pub claims: ClaimTiming,
    /// Where Sieve `redirect` may send (`[sieve] redirect`).
    pub sieve_redirect: postfach_filter::Redirect,
    /// Certificates trusted beside the system's roots when a certificate must be verified
    /// (`[outbound] tls_ca_file`: a private CA; tests use their own).
    pub tls_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// The DNSKEYs DANE's DNSSEC validation trusts (`[dns] trust_anchor`: a file of DNSKEY
    /// records); `None`: the IANA root keys.
    pub dnssec_trust_anchor: Option<std::path::PathBuf>,
    /// The port MTA-STS policies are fetched from (443; tests use their own).
    pub mta_sts_port: u16,
    /// Count each delivery's TLS outcome and send the daily TLS reports (RFC 8460) to
    /// destinations that ask for them (`[tls_reports] send`).
    pub tls_reports: bool,
}

/// The lease of a queue claim and the heartbeat that renews it. The server always uses
/// the default, [`CLAIM_LEASE`] and [`CLAIM_HEARTBEAT`]; tests shorten both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimTiming {
    pub lease: Duration,
    /// Shorter than `lease`, with room for a missed renewal.
    pub heartbeat: Duration,
}

impl Default for ClaimTiming {
    fn default() -> Self {
        ClaimTiming { lease: CLAIM_LEASE, heartbeat: CLAIM_HEARTBEAT }
    }
}

/// Where the queue spool lives under the data folder (with the filesystem backend).
pub fn spool_dir(data_dir: &Path) -> PathBuf {
    postfach_blob::Namespace::Queue.folder(data_dir)
}

/// The outbound queue. Cheap to clone; all clones share one queue.
#[derive(Debug, Clone)]
pub struct Outbound {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    /// Mailbox message blobs, for local delivery.
    blobs: BlobStore,
    /// The queue spool.
    spool: BlobStore,
    deliveries: DeliveryBatcher,
    settings: OutboundSettings,
    limiter: schedule::RateLimiter,
    /// Runs recipients' Sieve scripts at local delivery.
    filter: postfach_filter::Filter,
    /// Wakes the workers when new mail is queued.
    wake: Notify,
}

impl Outbound {
    /// `spool` is the queue's own blob folder ([`spool_dir`]), apart from the mailboxes'
    /// blobs so the mailbox orphan sweep never sees queued mail.
    pub fn new(
        store: Store,
        blobs: BlobStore,
        spool: BlobStore,
        deliveries: DeliveryBatcher,
        settings: OutboundSettings,
    ) -> Self {
        let limiter = schedule::RateLimiter::for_store(&store, settings.rate_limit_per_hour);
        let filter =
            postfach_filter::Filter::new(store.clone(), blobs.clone(), deliveries.clone(), settings.sieve_redirect);
        let wake = Notify::new();
        Self { inner: Arc::new(Inner { store, blobs, spool, deliveries, settings, limiter, filter, wake }) }
    }

    /// The Sieve filter local delivery uses, for the MX to share (one script cache).
    pub fn filter(&self) -> &postfach_filter::Filter {
        &self.inner.filter
    }

    /// Takes a message. Returns when it is durable (blob fsync'd and queue rows committed),
    /// or, when every recipient is hosted here, when it is delivered.
    pub async fn submit(&self, submission: Submission) -> Result<QueueId, OutboundError> {
        let inner = &self.inner;
        if submission.recipients.is_empty() {
            return Err(OutboundError::Unavailable("the message has no recipients".into()));
        }
        if let Err(retry_after_secs) = inner.limiter.check(submission.mailbox_id, Instant::now()).await {
            let facts = WarningFacts {
                client: submission.client,
                sender: submission.return_path.clone(),
                ..Default::default()
            };
            let target = WarningTarget::Mailbox(submission.mailbox_id);
            inner.store.warnings().tell(WarningEvent::new(WarningKind::SendingLimit, target, facts));
            return Err(OutboundError::RateLimited { retry_after_secs });
        }
        let queue_id = QueueId::random();
        let now = UnixTime::now();
        let message = message::normalize_line_endings(&submission.message);
        let message = message::complete_headers(message, &inner.settings.hostname, now);
        let message = dkim::sign(&inner.store, message).await;

        let recipients: Vec<EmailAddress> =
            submission.recipients.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect();
        let mut local = Vec::new();
        let mut all_local = true;
        for rcpt in &recipients {
            match inner.store.resolve(rcpt).await {
                // A mailbox without room for it goes through the queue, which tries again
                // later (or bounces a message that can never fit).
                Ok(Resolution::Mailbox(r)) if r.space.room(message.len() as u64, 1) == Room::Fits => {
                    local.push((rcpt.clone(), r));
                }
                _ => all_local = false,
            }
        }
        if all_local {
            self.deliver_local(&local, submission.return_path.as_ref(), &message).await.map_err(|e| {
                tracing::warn!(queue_id = %queue_id, error = %e, "local delivery of a submission failed");
                OutboundError::Unavailable("the message could not be stored; please try again".into())
            })?;
            tracing::info!(queue_id = %queue_id, mailbox = submission.mailbox_id.get(), recipients = recipients.len(), "delivered locally");
            return Ok(queue_id);
        }

        let facts = inner.store.sender_facts(submission.mailbox_id).await.ok().flatten();
        let demand = if submission.require_tls {
            Demand::RequireTls
        } else if facts.is_some_and(|f| f.tls_required) {
            Demand::Encrypted
        } else {
            Demand::None
        };
        let queued = Queued {
            customer_id: facts.map(|f| f.customer_id),
            mailbox_id: Some(submission.mailbox_id),
            return_path: submission.return_path.clone(),
            demand,
        };
        self.enqueue(&queue_id, queued, recipients, message, now).await?;
        Ok(queue_id)
    }

    /// Queues a message Postfach writes itself (a warning mail's copy for a customer's
    /// contact): signed already, from the null sender (RFC 3834 §3.3: no bounce comes
    /// back), counted against no mailbox's sending limit.
    pub async fn send_platform(
        &self,
        customer_id: Option<postfach_types::CustomerId>,
        recipient: EmailAddress,
        message: Vec<u8>,
    ) -> Result<QueueId, OutboundError> {
        let queue_id = QueueId::random();
        let queued = Queued { customer_id, mailbox_id: None, return_path: None, demand: Demand::None };
        self.enqueue(&queue_id, queued, vec![recipient], message, UnixTime::now()).await?;
        Ok(queue_id)
    }

    /// Writes `message` to the queue spool, then commits its queue rows (invariant 8).
    async fn enqueue(
        &self,
        queue_id: &QueueId,
        queued: Queued,
        recipients: Vec<EmailAddress>,
        message: Vec<u8>,
        now: UnixTime,
    ) -> Result<(), OutboundError> {
        let Queued { customer_id, mailbox_id, return_path, demand } = queued;
        let inner = &self.inner;
        let size = u64::try_from(message.len()).unwrap_or(u64::MAX);
        let blob = inner.spool.put(message).await.map_err(|e| {
            tracing::error!(queue_id = %queue_id, error = %e, "writing to the queue spool failed");
            OutboundError::Unavailable("the message could not be queued; please try again".into())
        })?;
        let lifetime = i64::try_from(inner.settings.queue_lifetime.as_secs()).unwrap_or(i64::MAX);
        let count = recipients.len();
        let queued = NewQueuedMessage {
            queue_id: queue_id.to_string(),
            customer_id,
            mailbox_id,
            return_path: return_path.clone(),
            blob: blob.clone(),
            size,
            created_at: now,
            expires_at: UnixTime(now.0.saturating_add(lifetime)),
            recipients,
            tls_demand: demand.stored().map(str::to_string),
        };
        if let Err(e) = inner.store.enqueue(&queued).await {
            tracing::error!(queue_id = %queue_id, error = %e, "committing a queued message failed");
            let _ = inner.spool.delete(&blob).await;
            return Err(OutboundError::Unavailable("the message could not be queued; please try again".into()));
        }
        tracing::info!(
            queue_id = %queue_id,
            mailbox = mailbox_id.map(|m| m.get()),
            from = %return_path.as_ref().map(ToString::to_string).unwrap_or_default(),
            recipients = count,
            size,
            "queued"
        );
        inner.wake.notify_one();
        Ok(())
    }

    /// Sends the TLS reports (RFC 8460) due by `day` (days since 1970, UTC; the upkeep
    /// passes yesterday): that day's, and those of the [`tls_rpt::KEEP_DAYS`] days before
    /// whose domain's DNS did not answer then. Returns the reports sent.
    pub async fn send_tls_reports(&self, day: i64) -> usize {
        if !self.inner.settings.tls_reports {
            // Off: nothing is counted; what was counted before it was switched off goes.
            if let Err(e) = self.inner.store.forget_tls_outcomes_before(i64::MAX).await {
                tracing::warn!(error = %e, "forgetting TLS report counts failed");
            }
            return 0;
        }
        let oldest = day - tls_rpt::KEEP_DAYS + 1;
        if let Err(e) = self.inner.store.forget_tls_outcomes_before(oldest).await {
            tracing::warn!(error = %e, "forgetting old TLS report counts failed");
        }
        let mut sent = 0;
        for due in oldest..=day {
            sent += self.send_tls_reports_of(due).await;
        }
        sent
    }

    /// Sends the reports of `day` to each destination domain whose `_smtp._tls` TXT record
    /// names `mailto:` addresses, then forgets that day's counts (sent, or not wanted):
    /// running it again sends nothing twice. `https:` addresses are not served.
    async fn send_tls_reports_of(&self, day: i64) -> usize {
        let store = &self.inner.store;
        let rows = match store.tls_outcomes(day).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "reading the counts for the TLS reports failed");
                return 0;
            }
        };
        if rows.is_empty() {
            return 0;
        }
        let resolver = match mx::resolver(self.inner.settings.resolver) {
            Ok(resolver) => resolver,
            Err(e) => {
                tracing::warn!(error = %e, "no DNS resolver for the TLS reports");
                return 0;
            }
        };
        let submitter = self.inner.settings.hostname.to_string();
        let mut sent = 0;
        for domain_rows in rows.chunk_by(|a, b| a.0.domain == b.0.domain) {
            let domain = domain_rows[0].0.domain.as_str();
            let records = match postfach_dns::spf::txt_records(&resolver, &format!("_smtp._tls.{domain}")).await {
                Ok(records) => records,
                // DNS did not answer: tried again at the next run (the counts stay, for at
                // most KEEP_DAYS).
                Err(_) => continue,
            };
            let published = postfach_dns::checks::PublishedTlsRpt::read(&records);
            let mailto = published.mailto();
            // The same id for the same domain and day: should a report go out twice (the
            // leader stopped between queueing it and forgetting the counts), receivers that
            // keep one report per id (RFC 8460 §4.4; ours do) count it once.
            let report_id = format!("{day}.{domain}@{submitter}");
            let json = tls_rpt::report_json(&submitter, &report_id, day, domain, domain_rows);
            for to in mailto.iter().take(tls_rpt::MAX_RECIPIENTS) {
                let Ok(address) = EmailAddress::parse(to) else { continue };
                let mail = tls_rpt::report_mail(&submitter, domain, to, &report_id, &json, day, UnixTime::now());
                let mail = dkim::sign(store, mail).await;
                match self.send_platform(None, address, mail).await {
                    Ok(queue_id) => {
                        sent += 1;
                        tracing::info!(domain, queue_id = %queue_id, "TLS report queued");
                    }
                    Err(e) => tracing::warn!(domain, error = %e, "queueing a TLS report failed"),
                }
            }
            if let Err(e) = store.forget_tls_outcomes(domain, day).await {
                tracing::warn!(domain, error = %e, "forgetting the sent TLS report's counts failed");
            }
        }
        sent
    }

    /// Forgets sending allowances that are full again (the server's upkeep calls this).
    pub async fn sweep(&self) {
        self.inner.limiter.sweep(Instant::now()).await;
    }

    /// Runs the delivery workers until `stopped` changes. The jobs that must run once per
    /// cluster (notices, removing finished messages, the spool sweep) run while `leader`
    /// says this node leads.
    pub async fn run(self, leader: postfach_store::leader::Leader, stopped: tokio::sync::watch::Receiver<bool>) {
        worker::run(self, leader, stopped).await;
    }

    /// Stores `message` in the INBOX of each recipient mailbox (reached as the address
    /// beside it), with a `Return-Path:` (RFC 5321 §4.4) in front; a mailbox with an
    /// active Sieve script files it itself (`postfach_filter`; INBOX is its implicit keep).
    async fn deliver_local(
        &self,
        recipients: &[(EmailAddress, Recipient)],
        return_path: Option<&EmailAddress>,
        message: &[u8],
    ) -> Result<(), String> {
        let inner = &self.inner;
        let mut bytes =
            format!("Return-Path: <{}>\r\n", return_path.map(ToString::to_string).unwrap_or_default()).into_bytes();
        bytes.extend_from_slice(message);
        let mut plain = BTreeSet::new();
        let mut scripted = BTreeMap::new();
        for (to, recipient) in recipients {
            match postfach_filter::Scripted::of(to, recipient) {
                Some(script) => {
                    scripted.entry(recipient.mailbox_id).or_insert(script);
                }
                None => {
                    plain.insert(recipient.mailbox_id);
                }
            }
        }
        for script in scripted.values() {
            // Only the MX can refuse in its reply: a reject here keeps the message.
            let filed = inner.filter.deliver(self, script, return_path, DeliveryFolder::Inbox, false, &bytes).await;
            filed.map_err(|e| e.to_string())?;
        }
        if plain.is_empty() {
            return Ok(());
        }
        let mailboxes: Vec<MailboxId> = plain.into_iter().collect();
        let target =
            LocalTarget::Mailboxes { batcher: &inner.deliveries, mailboxes: &mailboxes, folder: DeliveryFolder::Inbox };
        deliver_local(&inner.blobs, bytes, target).await.map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// What Sieve scripts send at local delivery (vacation replies, redirects leaving the
/// customer) is submitted like mail from the mailbox: its sending limit counts it.
impl postfach_filter::Sender for Outbound {
    fn send(&self, outgoing: postfach_filter::Outgoing) -> postfach_filter::SendFuture<'_> {
        Box::pin(async move {
            let submission = Submission {
                mailbox_id: outgoing.mailbox,
                return_path: outgoing.return_path,
                recipients: vec![outgoing.recipient],
                message: outgoing.message,
                client: None,
                require_tls: false,
            };
            self.submit(submission).await.map(|_| ()).map_err(|e| e.to_string())
        })
    }
}
