//! Postfach's POP3 server: RFC 1939 (USER/PASS, STAT, LIST, RETR, DELE, NOOP, RSET,
//! QUIT, TOP, UIDL; no APOP), RFC 2449 CAPA with response codes, RFC 2595 STLS and
//! RFC 5034 SASL PLAIN, on the `pop3` (STLS) and `pop3s` (implicit TLS, RFC 8314)
//! listeners.
//!
//! POP3 sees a mailbox's INBOX. Every login goes through
//! [`postfach_auth::Authenticator::authenticate`], which applies the mailbox's access mode
//! and TLS rule and records the attempt; this crate only turns its answer into words.
//! `server` binds the sockets; [`Pop3Server`] is the [`Protocol`] its listeners serve.

mod command;
mod maildrop;
mod session;
mod stuffing;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use postfach_auth::Authenticator;
use postfach_blob::BlobStore;
use postfach_net::{Busy, Conn, Protocol};
use postfach_store::Store;

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
    #[error("the client did not log in in time")]
    LoginTimeout,
    #[error("the client sent a line longer than {0} bytes")]
    LineTooLong(usize),
    #[error("the client closed the connection")]
    Closed,
}

impl From<postfach_net::Ended> for Pop3Error {
    fn from(ended: postfach_net::Ended) -> Self {
        match ended {
            postfach_net::Ended::Timeout => Pop3Error::Idle,
            postfach_net::Ended::LoginTimeout => Pop3Error::LoginTimeout,
            postfach_net::Ended::Closed => Pop3Error::Closed,
        }
    }
}

/// Limits of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A session waiting this long for a command is closed. RFC 1939 §3: at least 10 minutes.
    pub idle_timeout: Duration,
    /// A session that has not logged in is closed after waiting this long.
    pub login_timeout: Duration,
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
            login_timeout: Duration::from_secs(60),
            max_line: 8192,
            max_auth_failures: 3,
            max_bad_commands: 20,
        }
    }
}

/// The POP3 service, shared by all its listeners (so the IN-USE lock spans `pop3` and
/// `pop3s`). Make one per node: it holds the node's session-lock connection.
#[derive(Debug)]
pub struct Pop3Server {
    pub(crate) auth: Arc<Authenticator>,
    pub(crate) store: Store,
    pub(crate) blobs: BlobStore,
    pub(crate) hostname: String,
    pub(crate) limits: Limits,
    pub(crate) locks: Locks,
}

impl Pop3Server {
    pub fn new(
        auth: Arc<Authenticator>,
        store: Store,
        blobs: BlobStore,
        hostname: String,
        limits: Limits,
    ) -> Arc<Self> {
        let locks = Locks::new(store.session_locks());
        Arc::new(Self { auth, store, blobs, hostname, limits, locks })
    }
}

impl Protocol for Pop3Server {
    fn busy_reply(&self, why: Busy) -> Vec<u8> {
        match why {
            Busy::PerAddress => b"-ERR [SYS/TEMP] Too many connections from your address. Close other mail programs or try again later.\r\n".to_vec(),
            Busy::Service => b"-ERR [SYS/TEMP] The server is busy. Please try again later.\r\n".to_vec(),
        }
    }

    fn serve(self: Arc<Self>, conn: Conn) -> BoxFuture<'static, ()> {
        Box::pin(session::run(self, conn))
    }
}
