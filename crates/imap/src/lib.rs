//! The IMAP server: IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051) side by side, with
//! IDLE, UIDPLUS, MOVE, NAMESPACE, ID, ENABLE, LITERAL+, SPECIAL-USE, CHILDREN, UNSELECT,
//! SASL-IR, CONDSTORE/QRESYNC, LIST-EXTENDED, LIST-STATUS, ESEARCH, SEARCHRES, STATUS=SIZE,
//! BINARY, UTF8=ACCEPT and APPENDLIMIT.
//!
//! Module map: `protocol` (our own framer, parser and command AST), `session` (the state
//! machine, one module per concern), `render` (ENVELOPE, BODYSTRUCTURE and sections from
//! `postfach_message`), `search` (SEARCH evaluation), `mutf7` (mailbox names for
//! IMAP4rev1 clients), `seqset` and `wire` (response syntax).
//!
//! [`ImapServer`] holds what every session shares; it is the `postfach_net::Protocol` the
//! server's `imap` (STARTTLS) and `imaps` (implicit TLS) listeners serve.

mod mutf7;
pub mod protocol;
mod render;
mod search;
mod seqset;
mod session;
mod wire;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use postfach_auth::Authenticator;
use postfach_blob::BlobStore;
use postfach_net::{Busy, Conn, MemoryBudget, Protocol};
use postfach_store::Store;

/// Operator settings of the IMAP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The largest message APPEND accepts (announced as APPENDLIMIT, RFC 7889).
    pub max_message_size: u64,
    /// How long a connection may wait before logging in.
    pub login_timeout: Duration,
    /// How long a logged-in session may be silent (RFC 9051 §5.4: at least 30 minutes).
    pub idle_timeout: Duration,
}

impl Settings {
    pub fn new(max_message_size: u64) -> Self {
        Settings {
            max_message_size,
            login_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(31 * 60),
        }
    }
}

/// What every IMAP session shares.
#[derive(Debug)]
pub struct ImapServer {
    store: Store,
    blobs: BlobStore,
    auth: Arc<Authenticator>,
    budget: MemoryBudget,
    settings: Settings,
}

impl ImapServer {
    pub fn new(
        store: Store,
        blobs: BlobStore,
        auth: Arc<Authenticator>,
        budget: MemoryBudget,
        settings: Settings,
    ) -> Arc<Self> {
        Arc::new(Self { store, blobs, auth, budget, settings })
    }
}

impl Protocol for ImapServer {
    fn busy_reply(&self, why: Busy) -> Vec<u8> {
        match why {
            Busy::PerAddress => b"* BYE too many connections from your address; close some and try again\r\n".to_vec(),
            Busy::Service => b"* BYE the server is busy; please try again later\r\n".to_vec(),
        }
    }

    fn serve(self: Arc<Self>, conn: Conn) -> BoxFuture<'static, ()> {
        Box::pin(session::run(self, conn))
    }
}
