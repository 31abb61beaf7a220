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

pub mod mutf7;
pub mod protocol;
mod render;
mod search;
mod seqset;
mod session;
mod wire;

#[cfg(test)]
mod tests;

/// Entry points for the fuzz targets in `fuzz/` (built with `--cfg fuzzing` only).
#[cfg(fuzzing)]
pub mod fuzzing {
    use std::num::NonZeroU32;

    use postfach_message::Message;

    use crate::protocol::{AString, Section, SectionText};
    use crate::render;

    /// Everything FETCH can render from a message's bytes.
    pub fn render_everything(raw: &[u8]) {
        let msg = Message::parse(raw);
        let mut out = Vec::new();
        for rev2 in [false, true] {
            render::envelope(&mut out, &msg, 0);
            render::body_structure(&mut out, &msg, 0, true, rev2);
            render::body_structure(&mut out, &msg, 0, false, rev2);
        }
        let texts = [
            None,
            Some(SectionText::Header),
            Some(SectionText::Text),
            Some(SectionText::Mime),
            Some(SectionText::HeaderFields(vec![AString(b"From".to_vec()), AString(b"Subject".to_vec())])),
            Some(SectionText::HeaderFieldsNot(vec![AString(b"Received".to_vec())])),
        ];
        for a in 0..4u32 {
            for b in 0..3u32 {
                let path: Vec<u32> = [a, b].into_iter().filter(|&n| n > 0).collect();
                let part: Vec<NonZeroU32> = path.iter().filter_map(|&n| NonZeroU32::new(n)).collect();
                for text in &texts {
                    let _ = render::section(&msg, &Section { part: part.clone(), text: text.clone() });
                }
                let _ = render::binary(&msg, &path);
            }
        }
    }
}

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
    /// Teaches rspamd from moves into and out of Junk (`postfach_spam`); off by default.
    learner: postfach_spam::Learner,
}

impl ImapServer {
    pub fn new(
        store: Store,
        blobs: BlobStore,
        auth: Arc<Authenticator>,
        budget: MemoryBudget,
        settings: Settings,
    ) -> Arc<Self> {
        Self::with_learner(store, blobs, auth, budget, settings, postfach_spam::Learner::off())
    }

    /// The server with spam learning: COPY and MOVE into the `\Junk` folder learn spam,
    /// out of it (not into `\Trash`) learn ham.
    pub fn with_learner(
        store: Store,
        blobs: BlobStore,
        auth: Arc<Authenticator>,
        budget: MemoryBudget,
        settings: Settings,
        learner: postfach_spam::Learner,
    ) -> Arc<Self> {
        Arc::new(Self { store, blobs, auth, budget, settings, learner })
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
