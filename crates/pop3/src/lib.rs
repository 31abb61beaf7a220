//! Postfach's POP3 server: RFC 1939 (USER/PASS, STAT, LIST, RETR, DELE, NOOP, RSET,
//! QUIT, TOP, UIDL; no APOP), RFC 2449 CAPA with response codes, RFC 2595 STLS and
//! RFC 5034 SASL PLAIN, on the `pop3` (STLS) and `pop3s` (implicit TLS, RFC 8314)
//! listeners.
//!
//! POP3 sees a mailbox's INBOX. Every login goes through
//! [`postfach_auth::Authenticator::authenticate`], which applies the mailbox's access mode
//! and TLS rule and records the attempt; this crate only turns its answer into words.
//! `server` binds the sockets and calls the handler from [`Pop3Server::handler`].

mod command;
mod maildrop;
mod session;
mod stuffing;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use postfach_auth::Authenticator;
use postfach_blob::BlobStore;
use postfach_net::{ConnectionGuard, TlsAcceptor};
use postfach_store::Store;
use tokio::net::TcpStream;

pub use command::{Command, MsgNum, ParseError};
pub use maildrop::{Entry, Lock, Locks, Maildrop, NoMessage};
pub use stuffing::{Stuffer, top};

/// What can end a session early; each is logged once and never shown to the client.
#[derive(Debug, thiserror::Error)]
pub enum Pop3Error {
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    #[error("the client was idle for too long")]
    Idle,
    #[error("the client sent a line longer than {0} bytes")]
    LineTooLong(usize),
    #[error("the client closed the connection")]
    Closed,
}

/// How a listener's connections start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plaintext, upgraded with STLS (port 110).
    Starttls,
    /// TLS from the first byte (port 995, RFC 8314).
    ImplicitTls,
}

/// Limits of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A session waiting this long for a command is closed. RFC 1939 §3: at least 10 minutes.
    pub idle_timeout: Duration,
    /// How long the TLS handshake may take.
    pub handshake_timeout: Duration,
    /// The longest command line, CRLF included. RFC 2449 §4 allows 255 octets; SASL
    /// responses may be longer (RFC 5034 §4), hence the margin.
    pub max_line: usize,
    /// Failed logins in one session before it is closed.
    pub max_auth_failures: u32,
    /// Unknown or malformed commands in one session before it is closed.
    pub max_bad_commands: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(600),
            handshake_timeout: Duration::from_secs(60),
            max_line: 8192,
            max_auth_failures: 3,
            max_bad_commands: 20,
        }
    }
}

/// The POP3 service, shared by all its listeners (so the IN-USE lock spans `pop3` and
/// `pop3s`).
#[derive(Debug)]
pub struct Pop3Server {
    pub(crate) auth: Arc<Authenticator>,
    pub(crate) store: Store,
    pub(crate) blobs: BlobStore,
    pub(crate) tls: TlsAcceptor,
    pub(crate) hostname: String,
    pub(crate) limits: Limits,
    pub(crate) locks: Locks,
}

impl Pop3Server {
    pub fn new(
        auth: Arc<Authenticator>,
        store: Store,
        blobs: BlobStore,
        tls: TlsAcceptor,
        hostname: String,
        limits: Limits,
    ) -> Arc<Self> {
        Arc::new(Self { auth, store, blobs, tls, hostname, limits, locks: Locks::default() })
    }

    /// The connection handler for one kind of listener.
    pub fn handler(
        self: &Arc<Self>,
        transport: Transport,
    ) -> impl Fn(TcpStream, SocketAddr, Option<ConnectionGuard>) -> BoxFuture<'static, ()> + Send + Sync + 'static {
        let server = self.clone();
        move |tcp, peer, slot| {
            let server = server.clone();
            Box::pin(async move { session::run(server, tcp, peer, slot, transport).await })
        }
    }
}
