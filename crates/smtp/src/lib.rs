//! Postfach's SMTP servers: the inbound MX on the `smtp` listeners (RFC 5321) and
//! authenticated submission on the `submission` (STARTTLS) and `submissions` (implicit
//! TLS) listeners (RFC 6409, RFC 8314).
//!
//! One session type serves both; [`Smtp::protocol`] gives the `postfach_net::Protocol`
//! the server's listeners serve each connection with, for the MX or for submission.
//!
//! - The MX accepts mail only for mailboxes hosted here (no relaying, ever), checks SPF,
//!   DKIM and DMARC ([`verify`]), lets `postfach_policy::inbound` decide whether a sender
//!   and a message are accepted and into which folder, and acknowledges a message with
//!   `250` only after `postfach_store::local::deliver_local` made its bytes durable and
//!   committed its metadata (through the group-committing delivery batcher).
//! - Submission lets a mailbox log in through the one authentication path
//!   (the SASL exchange of `postfach_auth::sasl`, ended by
//!   [`postfach_auth::Authenticator::finish_sasl`]), enforces the sender-address rule
//!   ([`senders`]) and hands the message to a [`SubmissionSink`]: the outbound queue.
//!
//! Module map: [`address`] (paths and relay tricks), [`senders`] (sender rule),
//! [`headers`] (trace fields), [`verify`] (SPF/DKIM/DMARC), `session` (the command
//! loop), `login` (AUTH), `spam` (asking rspamd), `data` (receiving a message into a spool file), `intake` (the
//! checks every message passes: structure, header, authors, spoofing), [`tls_report`]
//! (reading TLS reports mailed to the reporting address), [`sink`]
//! (hand-over of submissions). The connection itself is `postfach_net::Conn`.

pub mod address;
mod data;
pub mod headers;
mod intake;
pub use intake::RESERVE_FACTOR;
mod login;
mod quota;
pub mod senders;
mod session;
mod spam;
pub mod tls_report;
pub use spam::SpamSettings;
pub mod sink;
pub mod verify;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use postfach_auth::Authenticator;
use postfach_blob::BlobStore;
use postfach_net::{Busy, Conn, MemoryBudget, Protocol};
use postfach_store::Store;
use postfach_store::delivery::DeliveryBatcher;
use postfach_types::{DomainName, EmailAddress, NodeName};

pub use session::Kind;
pub use sink::{LocalDelivery, Submission, SubmissionSink, SubmitError, SubmitFuture};

#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    #[error("cannot set up the DNS resolver for SPF, DKIM and DMARC: {0}")]
    Resolver(String),
}

/// What the inbound server does with mail whose MAIL FROM fails SPF (`-all`), when no
/// stricter rule (DMARC reject, spoofing of a hosted domain) applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpfFailAction {
    /// Deliver it; the `Authentication-Results:` field records the failure.
    #[default]
    Tag,
    /// Refuse it at MAIL FROM with `550 5.7.23`.
    Reject,
}

/// Operator settings of the SMTP servers.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The name in the greeting, the trace fields and the authserv-id.
    pub hostname: DomainName,
    /// Largest message, announced as `SIZE` (RFC 1870).
    pub max_message_size: u64,
    /// Recipients per transaction.
    pub max_recipients: u32,
    pub spf_fail: SpfFailAction,
    /// How long the server waits for the next command (RFC 5321 §4.5.3.2.7: at least 5 minutes).
    pub command_timeout: Duration,
    /// How long the server waits for the next piece of a message after DATA.
    pub data_timeout: Duration,
    /// How long submission waits for a command before the client has logged in.
    pub login_timeout: Duration,
    /// This node's name in a cluster (`[cluster] node`), for the `Received:` fields;
    /// `None` leaves it out.
    pub node: Option<NodeName>,
    /// Spam checks of inbound MX mail with rspamd (`[spam]`); `None`: off.
    pub spam: Option<SpamSettings>,
    /// The platform's TLS reporting address (`[tls_reports] address`, RFC 8460): the MX
    /// accepts it as a recipient and reads such mail as a report ([`tls_report`]); `None`:
    /// no such address.
    pub tls_reports: Option<EmailAddress>,
}

impl Settings {
    /// The defaults for everything but the configured values.
    pub fn new(hostname: DomainName, max_message_size: u64, max_recipients: u32, spf_fail: SpfFailAction) -> Self {
        Settings {
            hostname,
            max_message_size,
            max_recipients,
            spf_fail,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(300),
            login_timeout: Duration::from_secs(60),
            node: None,
            spam: None,
            tls_reports: None,
        }
    }
}

/// What the servers use.
#[derive(Debug, Clone)]
pub struct Services {
    pub store: Store,
    pub blobs: BlobStore,
    pub deliveries: DeliveryBatcher,
    pub auth: Arc<Authenticator>,
    /// Bounds the message bytes all sessions hold in memory while checking messages.
    pub budget: MemoryBudget,
    /// `[dns] resolver`: where SPF, DKIM and DMARC records are looked up.
    pub dns_resolver: Option<SocketAddr>,
    /// Where accepted submissions go: the outbound queue.
    pub submissions: Arc<dyn SubmissionSink>,
    /// Runs recipients' Sieve scripts at delivery (the same one the queue uses).
    pub filter: postfach_filter::Filter,
}

/// The SMTP servers. Cheap to clone.
#[derive(Clone)]
pub struct Smtp {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub settings: Settings,
    pub services: Services,
    pub verifier: mail_auth::MessageAuthenticator,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp").field("settings", &self.inner.settings).finish_non_exhaustive()
    }
}

impl Smtp {
    pub fn new(settings: Settings, services: Services) -> Result<Smtp, SmtpError> {
        let verifier = verify::authenticator(services.dns_resolver)?;
        Ok(Smtp { inner: Arc::new(Inner { settings, services, verifier }) })
    }

    /// The protocol for the listeners of one kind: the MX (`smtp`), or submission
    /// (`submission` with STARTTLS and `submissions` with implicit TLS, RFC 8314 §3.3).
    pub fn protocol(&self, kind: Kind) -> Arc<dyn Protocol> {
        Arc::new(Listener { inner: self.inner.clone(), kind })
    }
}

/// One kind of SMTP listener.
struct Listener {
    inner: Arc<Inner>,
    kind: Kind,
}

impl Protocol for Listener {
    fn busy_reply(&self, why: Busy) -> Vec<u8> {
        // RFC 5321 §3.1: a server may refuse a connection with 421 in place of 220.
        let host = &self.inner.settings.hostname;
        let text = match why {
            Busy::PerAddress => "Too many connections from your address; close some and try again later",
            Busy::Service => "The server is busy; please try again later",
        };
        format!("421 4.7.0 {host} {text}\r\n").into_bytes()
    }

    fn serve(self: Arc<Self>, conn: Conn) -> BoxFuture<'static, ()> {
        Box::pin(async move { session::run(&self.inner, self.kind, conn).await })
    }
}
