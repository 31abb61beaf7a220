//! The queue runner: claims due recipients and delivers them, sends the notifications that
//! are owed, removes finished messages, and sweeps the spool for blobs no queued message
//! refers to.
//!
//! Every node of a cluster runs one, on the shared queue. A node claims the due recipients
//! of at most as many messages as it has free delivery slots, so that the others get their
//! share. A claim is a lease of [`CLAIM_LEASE`] that a heartbeat renews every
//! [`CLAIM_HEARTBEAT`] while the attempt (or its wait for a slot) lasts; outcomes are
//! recorded only while the node still holds the claim. At start a node releases its own
//! claims (not other nodes'), so an attempt of its own cut short by a crash is retried at
//! once; a node that dies for good loses its claims when their lease runs out, and another
//! node delivers then. Notices, the removal of finished messages and the spool sweep run
//! on the cluster's leader only ([`Leader`]), so nothing is sent or removed twice.
//!
//! **Duplicates.** A node that dies (or is cut off from the database) after the remote
//! server accepted a message but before the outcome was recorded leaves the recipient
//! queued: its own restart (same node name) retries it at once, another node after the
//! lease ran out, at most [`CLAIM_LEASE`] later. Either way the recipient gets the message
//! twice, which RFC 5321 §6.1 prefers to losing it. A node cut off from the database for
//! longer than the lease while an attempt runs may likewise deliver beside the node that
//! took its claim over. The window is one attempt's end per recipient: between the remote
//! `250` after DATA and the commit of the outcome (usually milliseconds).
//!
//! New mail wakes the runner at once; mail made due elsewhere (`postfach queue retry`,
//! another node's submission, a lease that ran out) is found by polling every [`POLL`].

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use postfach_store::leader::Leader;
use postfach_store::queue::{AttemptTls, DueGroup, Notice, Outcome, QueuedMessage, QueuedRecipient, RecipientState};
use postfach_store::resolve::{Recipient, Resolution};
use postfach_store::tls_rpt_out::TlsOutcome;
use postfach_types::{EmailAddress, QueueRecipientId, Room, UnixTime};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::client::{self, Envelope, RcptResult, Target, TlsClients};
use crate::dane::DaneResolver;
use crate::dsn::{self, Action, NoticeRecipient};
use crate::mx::{self, RouteError};
use crate::tls_policy::{self, Destination};
use crate::tls_rpt;
use crate::{Outbound, QueueId, mta_sts, schedule};

/// How often the queue is looked at when nothing wakes the runner.
const POLL: Duration = Duration::from_secs(5);
/// How long a claim lasts unless renewed: the longest another node waits before it takes
/// over the recipients of a node that died.
pub const CLAIM_LEASE: Duration = Duration::from_secs(60);
/// How often a node renews the claims of its running attempts: a third of the lease, so
/// two missed renewals in a row are survived.
pub const CLAIM_HEARTBEAT: Duration = Duration::from_secs(20);
/// Deliveries running at once.
const PARALLEL: usize = 8;
/// How often the spool is swept, and how old a blob must be to be swept.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// The recipients this node's attempts hold claims on (running or waiting for a slot).
type Held = Arc<Mutex<BTreeSet<QueueRecipientId>>>;

/// Removes an attempt's recipients from [`Held`] when the attempt ends, however it ends.
struct HeldGuard {
    held: Held,
    recipients: Vec<QueueRecipientId>,
}

impl HeldGuard {
    fn new(held: &Held, recipients: &[QueueRecipientId]) -> HeldGuard {
        lock(held).extend(recipients.iter().copied());
        HeldGuard { held: held.clone(), recipients: recipients.to_vec() }
    }
}

impl Drop for HeldGuard {
    fn drop(&mut self) {
        let mut held = lock(&self.held);
        for id in &self.recipients {
            held.remove(id);
        }
    }
}

fn lock(held: &Held) -> std::sync::MutexGuard<'_, BTreeSet<QueueRecipientId>> {
    held.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn lease_from(now: UnixTime, lease: Duration) -> UnixTime {
    UnixTime(now.0.saturating_add(i64::try_from(lease.as_secs()).unwrap_or(i64::MAX)))
}

pub(crate) async fn run(outbound: Outbound, leader: Leader, mut stopped: watch::Receiver<bool>) {
    let inner = outbound.inner.clone();
    let node = &inner.settings.node;
    match inner.store.queue_release_claims(node).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(recipients = n, "released this node's queue claims left by its previous run"),
        Err(e) => tracing::warn!(error = %e, "cannot release this node's old queue claims"),
    }
    let resolver = loop {
        let settings = &inner.settings;
        let resolvers = mx::resolver(settings.resolver).and_then(|mx| {
            DaneResolver::new(settings.resolver, settings.dnssec_trust_anchor.as_deref()).map(|dane| (mx, dane))
        });
        match resolvers {
            Ok(resolvers) => break Arc::new(resolvers),
            Err(e) => {
                tracing::error!(error = %e, "cannot set up the DNS resolver for outbound mail; retrying in a minute");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                    _ = stopped.changed() => return,
                }
            }
        }
    };
    let tls = Arc::new(TlsClients::new(&inner.settings.tls_roots));
    let permits = Arc::new(Semaphore::new(PARALLEL));
    let held: Held = Arc::default();
    let heartbeat = tokio::spawn(renew_claims(outbound.clone(), held.clone()));
    let mut tasks = JoinSet::new();
    let mut last_sweep: Option<Instant> = None;
    loop {
        if *stopped.borrow() {
            break;
        }
        let free = permits.available_permits();
        if free > 0 {
            let now = UnixTime::now();
            let lease = lease_from(now, inner.settings.claims.lease);
            let messages = u32::try_from(free).unwrap_or(1);
            match inner.store.queue_claim_due(node, now, lease, messages).await {
                Ok(groups) => {
                    let guards: Vec<HeldGuard> = groups.iter().map(|g| HeldGuard::new(&held, &g.recipients)).collect();
                    for (group, guard) in groups.into_iter().zip(guards) {
                        let Ok(permit) = permits.clone().acquire_owned().await else { break };
                        let (outbound, resolver, tls) = (outbound.clone(), resolver.clone(), tls.clone());
                        tasks.spawn(async move {
                            attempt(&outbound, &resolver.0, &resolver.1, &tls, group).await;
                            drop((permit, guard));
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reading the queue failed"),
            }
        }
        if leader.is_leader() {
            send_notices(&outbound).await;
            remove_finished(&outbound).await;
            if last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
                sweep_spool(&outbound).await;
                last_sweep = Some(Instant::now());
            }
        }
        tokio::select! {
            _ = inner.wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = stopped.changed() => break,
        }
    }
    // Attempts still running are cut short; their claims run out with their lease (or are
    // released when this node starts again).
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    heartbeat.abort();
}

/// The heartbeat: renews the claims of this node's attempts every [`CLAIM_HEARTBEAT`].
async fn renew_claims(outbound: Outbound, held: Held) {
    let inner = &outbound.inner;
    let timing = inner.settings.claims;
    loop {
        tokio::time::sleep(timing.heartbeat).await;
        let ids: Vec<QueueRecipientId> = lock(&held).iter().copied().collect();
        if ids.is_empty() {
            continue;
        }
        let lease = lease_from(UnixTime::now(), timing.lease);
        match inner.store.queue_renew_claims(&inner.settings.node, &ids, lease).await {
            Ok(n) if n < ids.len() as u64 => {
                // Recorded meanwhile, or lost: the lease ran out and another node took over.
                tracing::debug!(held = ids.len(), renewed = n, "some queue claims were not renewed");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "renewing this node's queue claims failed; retrying"),
        }
    }
}

/// One delivery attempt for the recipients of one message at one domain.
async fn attempt(
    outbound: &Outbound,
    resolver: &TokioResolver,
    dane: &DaneResolver,
    tls: &TlsClients,
    group: DueGroup,
) {
    let inner = &outbound.inner;
    let message = match inner.store.queue_message(group.message_id).await {
        Ok(Some(message)) => message,
        Ok(None) => return, // removed meanwhile
        Err(e) => return tracing::warn!(error = %e, "reading a queued message failed"),
    };
    let wanted: BTreeSet<QueueRecipientId> = group.recipients.iter().copied().collect();
    let recipients: Vec<&QueuedRecipient> =
        message.recipients.iter().filter(|r| wanted.contains(&r.id) && r.state == RecipientState::Queued).collect();
    if recipients.is_empty() {
        return;
    }
    let bytes = inner.spool.get(&message.blob).await;
    let now = UnixTime::now();
    let notify = message.return_path.is_some();
    let bytes = match bytes {
        Ok(bytes) => bytes,
        Err(e) if e.is_missing() => {
            tracing::error!(queue_id = %message.queue_id, error = %e, "the queued message file is missing");
            let outcomes: Vec<_> = recipients
                .iter()
                .map(|r| {
                    (r.id, failed("4.3.0", "the message was lost from the queue storage".into(), None, None, notify))
                })
                .collect();
            return record(outbound, &message, now, &outcomes, None).await;
        }
        // The storage did not answer (an object store that is away): try again later, like
        // any temporary failure; the message is not lost.
        Err(e) => {
            tracing::warn!(queue_id = %message.queue_id, error = %e, "reading the queued message failed; retrying later");
            let reason = "the queue storage did not answer".to_string();
            let outcomes: Vec<_> = recipients
                .iter()
                .map(|r| (r.id, deferred(outbound, &message, r, now, "4.3.0", reason.clone(), None, None)))
                .collect();
            return record(outbound, &message, now, &outcomes, None).await;
        }
    };

    let mut outcomes = Vec::new();
    let mut local: Vec<(QueueRecipientId, (EmailAddress, Recipient))> = Vec::new();
    let mut remote: Vec<&QueuedRecipient> = Vec::new();
    for r in &recipients {
        match inner.store.resolve(&r.address).await {
            // A full mailbox is tried again later like a busy server; a message larger
            // than the mailbox's whole limit never fits (RFC 3463 X.2.2).
            Ok(Resolution::Mailbox(m)) => match m.space.room(bytes.len() as u64, 1) {
                Room::Fits => local.push((r.id, (r.address.clone(), m))),
                Room::Full => outcomes.push((
                    r.id,
                    deferred(
                        outbound,
                        &message,
                        r,
                        now,
                        "4.2.2",
                        format!("the mailbox {} is full", r.address),
                        None,
                        None,
                    ),
                )),
                Room::TooBig => outcomes.push((
                    r.id,
                    failed(
                        "5.2.2",
                        format!("the message is larger than the mailbox {} can hold", r.address),
                        None,
                        None,
                        notify,
                    ),
                )),
            },
            Ok(Resolution::UnknownAddress) => outcomes
                .push((r.id, failed("5.1.1", format!("there is no mailbox {} here", r.address), None, None, notify))),
            Ok(Resolution::NotHosted) => remote.push(r),
            Err(e) => outcomes.push((r.id, deferred(outbound, &message, r, now, "4.3.0", e.to_string(), None, None))),
        }
    }
    if !local.is_empty() {
        let arrivals: Vec<(EmailAddress, Recipient)> = local.iter().map(|(_, arrival)| arrival.clone()).collect();
        match outbound.deliver_local(&arrivals, message.return_path.as_ref(), &bytes).await {
            Ok(()) => {
                for (id, _) in &local {
                    outcomes.push((*id, Outcome::Delivered { remote_mta: None, tls: None }));
                }
            }
            Err(e) => {
                tracing::warn!(queue_id = %message.queue_id, error = %e, "local delivery failed");
                for (id, _) in &local {
                    if let Some(r) = recipients.iter().find(|r| r.id == *id) {
                        outcomes.push((*id, deferred(outbound, &message, r, now, "4.3.0", e.clone(), None, None)));
                    }
                }
            }
        }
    }
    let mut tls_outcome = None;
    if !remote.is_empty() {
        let (remote_outcomes, tls_used) =
            deliver_remote(outbound, resolver, dane, tls, &message, &group.domain, &remote, &bytes, now).await;
        outcomes.extend(remote_outcomes);
        tls_outcome = tls_used;
    }
    record(outbound, &message, now, &outcomes, tls_outcome.as_ref()).await;
}

#[allow(clippy::too_many_arguments)]
async fn deliver_remote(
    outbound: &Outbound,
    resolver: &TokioResolver,
    dane: &DaneResolver,
    tls: &TlsClients,
    message: &QueuedMessage,
    domain: &str,
    recipients: &[&QueuedRecipient],
    bytes: &[u8],
    now: UnixTime,
) -> (Vec<(QueueRecipientId, Outcome)>, Option<TlsOutcome>) {
    let settings = &outbound.inner.settings;
    let notify = message.return_path.is_some();
    let hosts = match mx::route(resolver, domain).await {
        Ok(hosts) => hosts,
        Err(RouteError::Permanent { status, text }) => {
            return (
                recipients.iter().map(|r| (r.id, failed(status, text.clone(), None, None, notify))).collect(),
                None,
            );
        }
        Err(RouteError::Temporary { status, text }) => {
            let outcomes = recipients
                .iter()
                .map(|r| (r.id, deferred(outbound, message, r, now, status, text.clone(), None, None)))
                .collect();
            return (outcomes, None);
        }
    };
    let fetcher = mta_sts::Fetcher { resolver, tls, port: settings.mta_sts_port };
    let mta_sts = mta_sts::current(&outbound.inner.store, fetcher, domain).await;
    let demand = tls_policy::Demand::from_stored(message.tls_demand.as_deref());
    let destination = Destination { domain, mta_sts: mta_sts.as_ref(), demand };
    let mut targets = Vec::with_capacity(hosts.len());
    for host in hosts {
        let requirement = destination.for_host(&host.name, &dane.answer(domain, &host.name).await);
        targets.push(Target { host, requirement });
    }
    let addresses: Vec<EmailAddress> = recipients.iter().map(|r| r.address.clone()).collect();
    let helo = settings.hostname.to_string();
    let envelope = Envelope { helo: &helo, from: message.return_path.as_ref(), recipients: &addresses, message: bytes };
    let attempt = client::deliver(&targets, settings.smtp_port, &settings.source_ips, envelope, tls).await;
    // Counted for the domain's daily TLS report with the results; reports themselves are not.
    let tls_outcome = tls_rpt::outcome(domain, &attempt, mta_sts.as_ref())
        .filter(|_| settings.tls_reports && !tls_rpt::is_report(bytes));
    let mut outcomes = Vec::new();
    for (r, result) in recipients.iter().zip(attempt.results) {
        let mta = attempt.remote_mta.clone();
        let tls_state = mta.as_ref().map(|_| AttemptTls {
            policy: attempt.used.source.as_str().to_string(),
            detail: attempt.used.detail.clone(),
        });
        let outcome = match result {
            RcptResult::Delivered => {
                postfach_metrics::outbound_tls(attempt.used.source.as_str(), attempt.used.version);
                tracing::info!(
                    queue_id = %message.queue_id,
                    recipient = %r.address,
                    server = mta.as_deref().unwrap_or(""),
                    tls = attempt.used.detail.as_deref().unwrap_or("none"),
                    tls_policy = attempt.used.source.as_str(),
                    tls_report = attempt.used.report.as_deref().unwrap_or(""),
                    "delivered"
                );
                Outcome::Delivered { remote_mta: mta, tls: tls_state }
            }
            RcptResult::Refused(reply) => failed_reply(&reply, mta, tls_state, notify),
            RcptResult::Impossible { status, text } => failed(status, text, mta, tls_state, notify),
            RcptResult::Deferred(reply) => {
                let status = reply.status();
                deferred_owned(outbound, message, r, now, status, reply.line(), mta, tls_state)
            }
            RcptResult::Unreachable(text) => deferred(outbound, message, r, now, "4.4.1", text, None, tls_state),
            // Postfach's own refusal, not the server's: no Remote-MTA in the notice.
            RcptResult::Unprotected(failure) if failure.is_permanent() => {
                failed(failure.status, failure.text, None, tls_state, notify)
            }
            RcptResult::Unprotected(failure) => {
                deferred(outbound, message, r, now, failure.status, failure.text, None, tls_state)
            }
        };
        outcomes.push((r.id, outcome));
    }
    (outcomes, tls_outcome)
}

fn failed_reply(reply: &client::Reply, mta: Option<String>, tls: Option<AttemptTls>, notify: bool) -> Outcome {
    Outcome::Failed { status: reply.status(), diagnostic: reply.line(), remote_mta: host_of(mta), tls, notify }
}

fn failed(status: &str, text: String, mta: Option<String>, tls: Option<AttemptTls>, notify: bool) -> Outcome {
    Outcome::Failed { status: status.to_string(), diagnostic: text, remote_mta: host_of(mta), tls, notify }
}

#[allow(clippy::too_many_arguments)]
fn deferred(
    outbound: &Outbound,
    message: &QueuedMessage,
    recipient: &QueuedRecipient,
    now: UnixTime,
    status: &str,
    text: String,
    mta: Option<String>,
    tls: Option<AttemptTls>,
) -> Outcome {
    deferred_owned(outbound, message, recipient, now, status.to_string(), text, mta, tls)
}

/// A temporary failure: retry after the backoff, or give up when the lifetime is over
/// (RFC 3463 4.4.7, "delivery time expired").
#[allow(clippy::too_many_arguments)]
fn deferred_owned(
    outbound: &Outbound,
    message: &QueuedMessage,
    recipient: &QueuedRecipient,
    now: UnixTime,
    status: String,
    text: String,
    mta: Option<String>,
    tls: Option<AttemptTls>,
) -> Outcome {
    let notify = message.return_path.is_some();
    let failures = recipient.attempts.saturating_add(1);
    let next = now.0.saturating_add(i64::try_from(schedule::backoff_with_jitter(failures).as_secs()).unwrap_or(0));
    if now >= message.expires_at {
        tracing::info!(queue_id = %message.queue_id, recipient = %recipient.address, "queue lifetime over; giving up");
        return Outcome::Failed {
            status: "4.4.7".into(),
            diagnostic: format!("not delivered in time; last problem: {text}"),
            remote_mta: host_of(mta),
            tls,
            notify,
        };
    }
    let warn_delay =
        notify
            && !recipient.delay_warned
            && outbound.inner.settings.delay_warning.is_some_and(|after| {
                now.0 - message.created_at.0 >= i64::try_from(after.as_secs()).unwrap_or(i64::MAX)
            });
    tracing::info!(queue_id = %message.queue_id, recipient = %recipient.address, problem = %text, "deferred");
    Outcome::Deferred {
        next_attempt_at: UnixTime(next.min(message.expires_at.0.max(now.0))),
        status,
        diagnostic: text,
        remote_mta: host_of(mta),
        tls,
        warn_delay,
    }
}

/// `mx.example.net[192.0.2.1]` → `mx.example.net` (the DSN's Remote-MTA is a DNS name).
fn host_of(mta: Option<String>) -> Option<String> {
    mta.map(|m| m.split('[').next().unwrap_or(&m).to_string())
}

/// Records an attempt's results (and its TLS outcome for the destination's report).
async fn record(
    outbound: &Outbound,
    message: &QueuedMessage,
    now: UnixTime,
    outcomes: &[(QueueRecipientId, Outcome)],
    tls_outcome: Option<&TlsOutcome>,
) {
    if outcomes.is_empty() {
        return;
    }
    for (id, outcome) in outcomes {
        postfach_metrics::message_out(match outcome {
            Outcome::Delivered { .. } => postfach_metrics::Outbound::Delivered,
            Outcome::Deferred { .. } => postfach_metrics::Outbound::Deferred,
            Outcome::Failed { .. } => postfach_metrics::Outbound::Bounced,
        });
        if let Outcome::Failed { status, diagnostic, .. } = outcome {
            let address = message.recipients.iter().find(|r| r.id == *id).map(|r| r.address.to_string());
            tracing::info!(queue_id = %message.queue_id, recipient = address.unwrap_or_default(), status, problem = diagnostic, "failed");
        }
    }
    match outbound.inner.store.queue_record(&outbound.inner.settings.node, now, outcomes, tls_outcome).await {
        Ok(n) if n < outcomes.len() as u64 => tracing::warn!(
            queue_id = %message.queue_id,
            recipients = outcomes.len() as u64 - n,
            "this node lost its claim on recipients during the attempt (its lease ran out); their results are \
             left to the node that holds them now"
        ),
        Ok(_) => {}
        Err(e) => {
            tracing::error!(queue_id = %message.queue_id, error = %e, "recording delivery results failed; they will be retried")
        }
    }
    if outcomes.iter().any(|(_, o)| !matches!(o, Outcome::Delivered { .. })) {
        outbound.inner.wake.notify_one();
    }
}

/// Sends the notifications that are owed, one per message.
async fn send_notices(outbound: &Outbound) {
    let inner = &outbound.inner;
    let messages = match inner.store.queue_notices(32).await {
        Ok(messages) => messages,
        Err(e) => return tracing::warn!(error = %e, "reading owed notices failed"),
    };
    for message in messages {
        let owed: Vec<&QueuedRecipient> = message.recipients.iter().filter(|r| r.notify.is_some()).collect();
        let ids: Vec<QueueRecipientId> = owed.iter().map(|r| r.id).collect();
        if let Some(to) = &message.return_path {
            let original = inner.spool.get(&message.blob).await.ok();
            let recipients: Vec<NoticeRecipient> = owed
                .iter()
                .map(|r| NoticeRecipient {
                    address: r.address.clone(),
                    action: if r.notify == Some(Notice::Failed) { Action::Failed } else { Action::Delayed },
                    status: r.status.clone().unwrap_or_else(|| "5.0.0".into()),
                    diagnostic: r.diagnostic.clone(),
                    remote_mta: r.remote_mta.clone(),
                    last_attempt: r.last_attempt_at,
                })
                .collect();
            let report = dsn::render(&dsn::Notice {
                hostname: &inner.settings.hostname,
                queue_id: &message.queue_id,
                to,
                arrival: message.created_at,
                expires: message.expires_at,
                now: UnixTime::now(),
                recipients: &recipients,
                original_headers: original.as_deref().map(crate::message::header_section),
            });
            if let Err(e) = send_notice(outbound, to, report).await {
                tracing::warn!(queue_id = %message.queue_id, error = %e, "sending a delivery notice failed; will retry");
                continue;
            }
            tracing::info!(queue_id = %message.queue_id, to = %to, recipients = ids.len(), "delivery notice sent");
        }
        if let Err(e) = inner.store.queue_notices_sent(&ids).await {
            tracing::warn!(error = %e, "recording sent notices failed");
        }
    }
}

/// Delivers a notification: into the sender's mailbox when it is hosted here, else
/// through the queue with the null reverse-path (RFC 5321 §4.5.5).
async fn send_notice(outbound: &Outbound, to: &EmailAddress, report: Vec<u8>) -> Result<(), String> {
    let inner = &outbound.inner;
    if let Ok(Resolution::Mailbox(m)) = inner.store.resolve(to).await {
        return outbound.deliver_local(&[(to.clone(), m)], None, &report).await;
    }
    let now = UnixTime::now();
    let size = u64::try_from(report.len()).unwrap_or(u64::MAX);
    let blob = inner.spool.put(report).await.map_err(|e| e.to_string())?;
    let lifetime = i64::try_from(inner.settings.queue_lifetime.as_secs()).unwrap_or(i64::MAX);
    let queued = postfach_store::queue::NewQueuedMessage {
        queue_id: QueueId::random().to_string(),
        customer_id: None,
        mailbox_id: None,
        return_path: None,
        blob: blob.clone(),
        size,
        created_at: now,
        expires_at: UnixTime(now.0.saturating_add(lifetime)),
        recipients: vec![to.clone()],
        tls_demand: None,
    };
    if let Err(e) = inner.store.enqueue(&queued).await {
        let _ = inner.spool.delete(&blob).await;
        return Err(e.to_string());
    }
    inner.wake.notify_one();
    Ok(())
}

async fn remove_finished(outbound: &Outbound) {
    let inner = &outbound.inner;
    let finished = match inner.store.queue_finished(100).await {
        Ok(finished) => finished,
        Err(e) => return tracing::warn!(error = %e, "reading finished queue entries failed"),
    };
    for (id, blob) in finished {
        if let Err(e) = inner.store.queue_delete(id).await {
            tracing::warn!(error = %e, "removing a finished queue entry failed");
            continue;
        }
        if let Err(e) = inner.spool.delete(&blob).await {
            tracing::warn!(error = %e, "removing a finished queue file failed");
        }
    }
}

/// Removes spool blobs older than an hour that no queued message refers to (left by a
/// commit that failed after the blob was written, or a crash between the two steps of a
/// removal).
async fn sweep_spool(outbound: &Outbound) {
    let inner = &outbound.inner;
    let candidates = match inner.spool.older_than(SWEEP_EVERY).await {
        Ok(c) if c.is_empty() => return,
        Ok(c) => c,
        Err(e) => return tracing::warn!(error = %e, "listing the queue spool failed"),
    };
    match inner.store.queue_unreferenced_blobs(candidates).await {
        Ok(orphans) => {
            for orphan in &orphans {
                let _ = inner.spool.delete(orphan).await;
            }
            if !orphans.is_empty() {
                tracing::info!(removed = orphans.len(), "removed orphaned queue files");
            }
        }
        Err(e) => tracing::warn!(error = %e, "checking the queue spool failed"),
    }
}
