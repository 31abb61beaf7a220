//! The server's metrics, in one place: static counters and histograms that the decision
//! points bump with one call (an atomic add), and their Prometheus text format
//! ([`render`]), served by `postfach-web` on the `[metrics]` listeners.
//!
//! Every label comes from a fixed set known here (services, results, command names;
//! anything else is counted as `other`), so no client can grow the number of series.
//! What only the database knows (the queue, DNS check states, stored bytes) is read by
//! the server at scrape time and handed to [`render`] as [`Gauges`].
//!
//! Own encoder rather than `prometheus-client` or `metrics`: the text format is a few
//! lines of `name{labels} value`, the families are fixed at compile time, and a static
//! array of atomics needs no registry, no locks and no further dependencies.

mod encode;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use postfach_types::{LoginResult, Service};

pub use encode::render;

/// A monotonic count.
#[derive(Debug)]
struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }

    fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The listeners' services (`postfach_net::Endpoint::service`); the last one is `other`.
const LISTENERS: [&str; 12] = [
    "smtp",
    "submission",
    "submissions",
    "imap",
    "imaps",
    "pop3",
    "pop3s",
    "managesieve",
    "https",
    "http",
    "metrics",
    "other",
];

fn listener(service: &str) -> usize {
    LISTENERS.iter().position(|s| *s == service).unwrap_or(LISTENERS.len() - 1)
}

static CONNECTIONS: [Counter; LISTENERS.len()] = [const { Counter::new() }; LISTENERS.len()];
/// Per listener: `[ok, failed]`.
static TLS_HANDSHAKES: [[Counter; 2]; LISTENERS.len()] = [const { [const { Counter::new() }; 2] }; LISTENERS.len()];

/// A connection was accepted on a listener of `service` (before admission).
pub fn connection(service: &str) {
    CONNECTIONS[listener(service)].inc();
}

/// A TLS handshake (implicit TLS or STARTTLS) on a listener of `service` ended.
pub fn tls_handshake(service: &str, ok: bool) {
    TLS_HANDSHAKES[listener(service)][usize::from(!ok)].inc();
}

const SERVICES: usize = Service::ALL.len();
const RESULTS: usize = LoginResult::ALL.len();
/// Per service, result and `[no TLS, TLS]`.
static LOGINS: [[[Counter; 2]; RESULTS]; SERVICES] =
    [const { [const { [const { Counter::new() }; 2] }; RESULTS] }; SERVICES];

/// A login attempt was decided (the authentication gate calls this once per attempt).
pub fn login(service: Service, result: LoginResult, tls: bool) {
    LOGINS[service as usize][result as usize][usize::from(tls)].inc();
}

/// How a message came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Mx,
    Submission,
}

/// What became of a message that came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// Stored in the INBOX (MX) or queued for delivery (submission).
    Accepted,
    /// Stored in the Junk folder.
    Junk,
    /// Refused for now (4xx): the sender tries again.
    Deferred,
    /// Refused (5xx).
    Refused,
}

const VIAS: [&str; 2] = ["mx", "submission"];
const INBOUND: [&str; 4] = ["accepted", "junk", "deferred", "refused"];
static MESSAGES_IN: [[Counter; INBOUND.len()]; VIAS.len()] =
    [const { [const { Counter::new() }; INBOUND.len()] }; VIAS.len()];

/// A message's DATA ended with a final reply.
pub fn message_in(via: Via, result: Inbound) {
    MESSAGES_IN[via as usize][result as usize].inc();
}

/// What a spam check of an inbound message (rspamd) came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpamCheck {
    /// rspamd gave a verdict (counted once more below as clean, junk or rejected).
    Checked,
    /// Below the Junk threshold.
    Clean,
    /// Into Junk by its score.
    Junk,
    /// Refused by its score.
    Rejected,
    /// rspamd could not be asked: accepted unchecked, or deferred.
    Unreachable,
}

const SPAM_CHECKS: [&str; 5] = ["checked", "clean", "junk", "rejected", "unreachable"];
static SPAM: [Counter; SPAM_CHECKS.len()] = [const { Counter::new() }; SPAM_CHECKS.len()];

/// A spam check ended this way.
pub fn spam_check(result: SpamCheck) {
    SPAM[result as usize].inc();
}

/// What a mailbox's Sieve script did with a message at final delivery (one count per
/// action taken; a script that fails counts `Error` and its message `Keep`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SieveAction {
    /// Stored in the folder delivery chose (implicit or explicit keep).
    Keep,
    FileInto,
    Discard,
    /// Refused in the SMTP reply.
    Reject,
    /// A copy sent on (to a mailbox of the customer, or through the queue).
    Redirect,
    /// A vacation reply queued.
    Vacation,
    /// A redirect or vacation reply not sent: not allowed, the sending switch is off, a
    /// loop, or the sending limit (the message is kept).
    Refused,
    /// The script could not be loaded or failed while running (the message is kept).
    Error,
}

const SIEVE_ACTIONS: [&str; 8] = ["keep", "fileinto", "discard", "reject", "redirect", "vacation", "refused", "error"];
static SIEVE: [Counter; SIEVE_ACTIONS.len()] = [const { Counter::new() }; SIEVE_ACTIONS.len()];

/// A Sieve script took this action at delivery.
pub fn sieve_action(action: SieveAction) {
    SIEVE[action as usize].inc();
}

/// What became of a TLS report (RFC 8460) mailed to the platform's reporting address, per
/// policy domain in it (`refused`: the whole mail was not a readable report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsReport {
    Stored,
    /// Stored before (the same organisation and report id).
    Duplicate,
    /// About a domain not hosted here: dropped.
    Foreign,
    Refused,
}

const TLS_REPORT_RESULTS: [&str; 4] = ["stored", "duplicate", "foreign", "refused"];
static TLS_REPORTS: [Counter; TLS_REPORT_RESULTS.len()] = [const { Counter::new() }; TLS_REPORT_RESULTS.len()];

/// A received TLS report (or one of its domains) ended this way.
pub fn tls_report(result: TlsReport) {
    TLS_REPORTS[result as usize].inc();
}

/// What became of a learning call (moving a message into or out of Junk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpamLearn {
    Learnt,
    Failed,
    /// The learning queue was full.
    Dropped,
}

const SPAM_LEARNS: [&str; 3] = ["learnt", "failed", "dropped"];
/// Per `[spam, ham]` and result.
static LEARNS: [[Counter; SPAM_LEARNS.len()]; 2] = [const { [const { Counter::new() }; SPAM_LEARNS.len()] }; 2];

/// A message moved into (`spam`) or out of Junk was learnt, or not.
pub fn spam_learn(spam: bool, result: SpamLearn) {
    LEARNS[usize::from(!spam)][result as usize].inc();
}

/// What an outbound delivery attempt did for one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbound {
    Delivered,
    /// Failed for now; tried again later.
    Deferred,
    /// Failed for good (a non-delivery notice goes to the sender).
    Bounced,
}

const OUTBOUND: [&str; 3] = ["delivered", "deferred", "bounced"];
static MESSAGES_OUT: [Counter; OUTBOUND.len()] = [const { Counter::new() }; OUTBOUND.len()];

/// An outbound delivery attempt ended for one recipient.
pub fn message_out(result: Outbound) {
    MESSAGES_OUT[result as usize].inc();
}

/// The TLS rule a remote delivery followed (`outbound::tls_policy::PolicySource`).
pub const TLS_POLICIES: [&str; 4] = ["none", "opportunistic", "mta-sts", "dane"];
/// The TLS version of a remote delivery; `none` is plaintext, anything unknown `other`.
pub const TLS_VERSIONS: [&str; 4] = ["none", "TLSv1.2", "TLSv1.3", "other"];
static OUTBOUND_TLS: [[Counter; TLS_VERSIONS.len()]; TLS_POLICIES.len()] =
    [const { [const { Counter::new() }; TLS_VERSIONS.len()] }; TLS_POLICIES.len()];

/// A message was delivered to a remote server for one recipient, following the TLS rule
/// `policy` (one of [`TLS_POLICIES`], else counted as `none`) with `version` (`None`:
/// plaintext).
pub fn outbound_tls(policy: &str, version: Option<&str>) {
    let p = TLS_POLICIES.iter().position(|p| *p == policy).unwrap_or(0);
    let v = match version {
        None => 0,
        Some(v) => TLS_VERSIONS.iter().position(|known| *known == v).filter(|i| *i > 0).unwrap_or(3),
    };
    OUTBOUND_TLS[p][v].inc();
}

/// `[signed, failed]`.
static DKIM_SIGNATURES: [Counter; 2] = [const { Counter::new() }; 2];

/// An outbound message was DKIM-signed (or signing failed).
pub fn dkim_signature(ok: bool) {
    DKIM_SIGNATURES[usize::from(!ok)].inc();
}

/// The upper bounds of the latency buckets, in seconds and in microseconds.
const BOUNDS: [(&str, u64); 12] = [
    ("0.001", 1_000),
    ("0.0025", 2_500),
    ("0.005", 5_000),
    ("0.01", 10_000),
    ("0.025", 25_000),
    ("0.05", 50_000),
    ("0.1", 100_000),
    ("0.25", 250_000),
    ("0.5", 500_000),
    ("1", 1_000_000),
    ("2.5", 2_500_000),
    ("10", 10_000_000),
];

/// A latency histogram: one count per bucket (not cumulative; the last is `+Inf`) and
/// the sum in microseconds.
#[derive(Debug)]
struct Histogram {
    buckets: [Counter; BOUNDS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    const fn new() -> Self {
        Histogram { buckets: [const { Counter::new() }; BOUNDS.len() + 1], sum_micros: AtomicU64::new(0) }
    }

    fn observe(&self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = BOUNDS.iter().position(|(_, bound)| micros <= *bound).unwrap_or(BOUNDS.len());
        self.buckets[bucket].inc();
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// A protocol whose commands are timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Smtp,
    Imap,
    Pop3,
    ManageSieve,
}

const PROTOCOLS: [&str; 4] = ["smtp", "imap", "pop3", "managesieve"];

/// The command names each protocol's histograms are kept for; every other name is
/// `other`.
const SMTP_COMMANDS: &[&str] = &[
    "EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "VRFY", "EXPN", "HELP", "QUIT",
];
const IMAP_COMMANDS: &[&str] = &[
    "CAPABILITY",
    "NOOP",
    "LOGOUT",
    "ID",
    "STARTTLS",
    "AUTHENTICATE",
    "LOGIN",
    "ENABLE",
    "SELECT",
    "EXAMINE",
    "CREATE",
    "DELETE",
    "RENAME",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "LIST",
    "LSUB",
    "NAMESPACE",
    "STATUS",
    "APPEND",
    "GETQUOTA",
    "GETQUOTAROOT",
    "SETQUOTA",
    "CHECK",
    "CLOSE",
    "UNSELECT",
    "EXPUNGE",
    "UID EXPUNGE",
    "SEARCH",
    "UID SEARCH",
    "FETCH",
    "UID FETCH",
    "STORE",
    "UID STORE",
    "COPY",
    "UID COPY",
    "MOVE",
    "UID MOVE",
];
const POP3_COMMANDS: &[&str] =
    &["CAPA", "USER", "PASS", "AUTH", "STLS", "STAT", "LIST", "UIDL", "RETR", "DELE", "TOP", "NOOP", "RSET", "QUIT"];
const MANAGESIEVE_COMMANDS: &[&str] = &[
    "CAPABILITY",
    "STARTTLS",
    "AUTHENTICATE",
    "LOGOUT",
    "HAVESPACE",
    "PUTSCRIPT",
    "LISTSCRIPTS",
    "SETACTIVE",
    "GETSCRIPT",
    "DELETESCRIPT",
    "RENAMESCRIPT",
    "CHECKSCRIPT",
    "NOOP",
    "UNAUTHENTICATE",
];

/// Room for every protocol's list plus `other`.
const MAX_COMMANDS: usize = 40;

fn commands(protocol: Protocol) -> &'static [&'static str] {
    match protocol {
        Protocol::Smtp => SMTP_COMMANDS,
        Protocol::Imap => IMAP_COMMANDS,
        Protocol::Pop3 => POP3_COMMANDS,
        Protocol::ManageSieve => MANAGESIEVE_COMMANDS,
    }
}

static COMMAND_LATENCY: [[Histogram; MAX_COMMANDS]; PROTOCOLS.len()] =
    [const { [const { Histogram::new() }; MAX_COMMANDS] }; PROTOCOLS.len()];

/// A command of `protocol` named `name` took `elapsed` (from its line read to its reply
/// queued). Names outside the protocol's list count as `other`.
pub fn command(protocol: Protocol, name: &str, elapsed: Duration) {
    let names = commands(protocol);
    let index = names.iter().position(|n| n.eq_ignore_ascii_case(name)).unwrap_or(names.len());
    COMMAND_LATENCY[protocol as usize][index].observe(elapsed);
}

/// What the server reads from the database at scrape time (cached briefly by the caller).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Messages in the outbound queue with at least one recipient still waiting.
    pub queue_messages: u64,
    /// Age of the oldest of them.
    pub queue_oldest_age_secs: u64,
    /// Bytes of every message in the queue.
    pub queue_bytes: u64,
    /// Bytes of the messages in mailboxes (each stored message file once).
    pub mailbox_bytes: u64,
    /// How many domains each check's verdict is at, by state.
    pub dns_domains: Vec<DnsCount>,
    /// The checks that are not `ok`, per domain, worst first, at most a bounded number.
    pub dns_problems: Vec<DnsProblem>,
    /// More problems exist than `dns_problems` lists.
    pub dns_problems_truncated: bool,
}

/// Domains whose `check` is at `state` (`ok`, `warning`, `error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsCount {
    pub check: String,
    pub state: String,
    pub domains: u64,
}

/// A domain's check that is not `ok`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsProblem {
    pub domain: String,
    pub check: String,
    /// `true`: error; `false`: warning.
    pub error: bool,
}

#[cfg(test)]
mod tests;
