//! Postfach's ManageSieve server (RFC 5804): mail programs upload, list, activate,
//! download, check and delete the Sieve filters of the mailbox they logged in to, on the
//! `managesieve` listener (STARTTLS).
//!
//! Every login goes through [`postfach_auth::Authenticator`] (service `sieve`), which
//! applies the mailbox's access rules and TLS rule, throttles and records the attempt;
//! every script operation is an administrative operation of `postfach-admin`
//! (`admin::sieve`) done as the logged-in mailbox user, so the limits on the number and
//! size of scripts and the check of a script are decided there, as for the panel and the
//! API. This crate only speaks the protocol. `server` binds the sockets;
//! [`ManageSieveServer`] is the [`Protocol`] its listener serves.

mod command;
mod reply;
mod scripts;
mod session;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use postfach_admin::Admin;
use postfach_auth::Authenticator;
use postfach_net::{Busy, Conn, Protocol};
use postfach_store::Store;

pub use command::{Command, ParseError, Token, tokenize};
pub use reply::quoted;

/// What can end a session early; each is logged once and never shown to the client.
#[derive(Debug, thiserror::Error)]
pub enum SieveError {
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    #[error("the client was idle for too long")]
    Idle,
    #[error("the client did not log in in time")]
    LoginTimeout,
    #[error("the client closed the connection")]
    Closed,
}

impl From<postfach_net::Ended> for SieveError {
    fn from(ended: postfach_net::Ended) -> Self {
        match ended {
            postfach_net::Ended::Timeout => SieveError::Idle,
            postfach_net::Ended::LoginTimeout => SieveError::LoginTimeout,
            postfach_net::Ended::Closed => SieveError::Closed,
        }
    }
}

/// Limits of one session. A literal after login is bounded by the script size limit
/// of `admin::sieve` ([`postfach_admin::SieveLimits`]), so a larger script is refused
/// before a byte of it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A logged-in session waiting this long for a command is closed.
    pub idle_timeout: Duration,
    /// A session that has not logged in is closed after waiting this long.
    pub login_timeout: Duration,
    /// The longest line of a command (CRLF included); literals are counted apart.
    pub max_line: usize,
    /// The most literal bytes one command may carry before login (SASL responses).
    pub max_literal_before_login: u64,
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
            max_literal_before_login: 8192,
            max_auth_failures: 3,
            max_bad_commands: 20,
        }
    }
}

/// The ManageSieve service, shared by its listeners.
#[derive(Debug)]
pub struct ManageSieveServer {
    pub(crate) auth: Arc<Authenticator>,
    pub(crate) admin: Admin,
    pub(crate) store: Store,
    pub(crate) hostname: String,
    pub(crate) limits: Limits,
}

impl ManageSieveServer {
    pub fn new(auth: Arc<Authenticator>, admin: Admin, store: Store, hostname: String, limits: Limits) -> Arc<Self> {
        Arc::new(Self { auth, admin, store, hostname, limits })
    }
}

impl Protocol for ManageSieveServer {
    fn busy_reply(&self, why: Busy) -> Vec<u8> {
        let text = match why {
            Busy::PerAddress => "Too many connections from your address. Close other programs or try again later.",
            Busy::Service => "The server is busy. Please try again later.",
        };
        format!("BYE (TRYLATER) {}\r\n", quoted(text)).into_bytes()
    }

    fn serve(self: Arc<Self>, conn: Conn) -> BoxFuture<'static, ()> {
        Box::pin(session::run(self, conn))
    }
}
