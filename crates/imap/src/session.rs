//! One IMAP connection: the command loop, the state machine of RFC 3501 §3 and every
//! command handler.
//!
//! Input is split into commands by imap-codec's `Fragmentizer` (which also handles
//! literals, RFC 3501 §4.3 and LITERAL+ RFC 7888) and parsed by its `CommandCodec`;
//! anything it cannot parse gets BAD and changes nothing. Responses are written into a
//! buffer that is flushed after each command or when it grows, so FETCH of many messages
//! streams. The session keeps little while idle: the selected folder's UID list, a
//! read buffer that is dropped between reads, and a broadcast cursor.
//!
//! Changes from other sessions, deliveries and POP3 arrive on `Store::subscribe`; the
//! session then compares the folder with what it told the client and sends EXISTS,
//! EXPUNGE (or VANISHED with QRESYNC) and FETCH FLAGS (RFC 3501 §7, RFC 2177 IDLE).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures_util::StreamExt;
use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::fragmentizer::{FragmentInfo, Fragmentizer};
use imap_codec::imap_types::auth::AuthMechanism;
use imap_codec::imap_types::command::{CommandBody, FetchModifier, SelectParameter, StoreModifier};
use imap_codec::imap_types::core::{LiteralMode, Vec1};
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::extensions::enable::CapabilityEnable;
use imap_codec::imap_types::fetch::{Macro, MacroOrMessageDataItemNames, MessageDataItemName, Part, Section};
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::SequenceSet;
use imap_codec::imap_types::status::StatusDataItemName;
use postfach_auth::sasl::{self, SaslError};
use postfach_auth::{Attempt, AuthError, Authenticator, Connection, Principal};
use postfach_blob::{BlobId, BlobStore};
use postfach_net::{MaybeTls, TlsAcceptor};
use postfach_policy::PublicRefusal;
use postfach_store::folders::{Folder, FolderId, SEPARATOR};
use postfach_store::messages::{FlagChange, Flags, MailboxChange, Message, NewMessage};
use postfach_store::{MailboxId, Store, StoreError};
use postfach_types::{Mechanism, Secret, Service, TlsInfo, UnixTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast;

use crate::search::{self, Candidate, Context};
use crate::seqset;
use crate::wire;

/// Longest command line outside literals (RFC 7162 §4 asks for at least 8192 octets).
const MAX_LINE: usize = 64 * 1024;
/// An idle session is closed after this long (RFC 3501 §5.4: at least 30 minutes).
const IDLE_TIMEOUT: Duration = Duration::from_secs(31 * 60);
/// A client that has not logged in gets less time (RFC 9051 §5.4: short before
/// authentication).
const LOGIN_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a TLS handshake after STARTTLS may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Failed logins before the connection is closed.
const MAX_FAILURES: u32 = 3;
/// Output is flushed whenever the buffer grows beyond this.
const FLUSH_AT: usize = 128 * 1024;
/// Message files read per hand-off to the blocking pool during FETCH.
const READ_BATCH: usize = 16;
/// Bytes read at once.
const READ_CHUNK: usize = 16 * 1024;

/// A connection the session can talk over: the network one (which can switch to TLS) or
/// an in-memory one in tests.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + Sized + 'static {
    /// What TLS negotiated, `None` for plaintext.
    fn tls(&self) -> Option<TlsInfo>;
    /// Upgrades to TLS after STARTTLS (`None` when this transport cannot).
    fn start_tls(self, acceptor: &TlsAcceptor) -> Option<impl Future<Output = io::Result<Self>> + Send>;
}

impl Transport for MaybeTls {
    fn tls(&self) -> Option<TlsInfo> {
        self.tls_info()
    }

    fn start_tls(self, acceptor: &TlsAcceptor) -> Option<impl Future<Output = io::Result<Self>> + Send> {
        let MaybeTls::Plain(tcp) = self else { return None };
        let acceptor = acceptor.clone();
        Some(async move {
            acceptor
                .accept(tcp, HANDSHAKE_TIMEOUT)
                .await
                .map_err(|e| io::Error::new(io::ErrorKind::ConnectionAborted, e))
        })
    }
}

impl Transport for tokio::io::DuplexStream {
    fn tls(&self) -> Option<TlsInfo> {
        None
    }

    fn start_tls(self, _: &TlsAcceptor) -> Option<impl Future<Output = io::Result<Self>> + Send> {
        None::<std::future::Ready<io::Result<Self>>>
    }
}

/// What every IMAP session shares. Cheap to clone behind an `Arc`.
#[derive(Debug)]
pub struct ImapServer {
    store: Store,
    blobs: BlobStore,
    auth: Arc<Authenticator>,
    /// `None` when no certificate is configured (tests): no STARTTLS, no implicit TLS.
    tls: Option<TlsAcceptor>,
    max_message_size: u64,
}

impl ImapServer {
    pub fn new(
        store: Store,
        blobs: BlobStore,
        auth: Arc<Authenticator>,
        tls: Option<Arc<rustls::ServerConfig>>,
        max_message_size: u64,
    ) -> Arc<Self> {
        Arc::new(Self { store, blobs, auth, tls: tls.map(TlsAcceptor::new), max_message_size })
    }

    /// Runs a session over any transport until the client logs out or goes away.
    pub async fn run<S: Transport>(self: Arc<Self>, stream: S, peer: SocketAddr, admitted: bool) {
        let mut session = Session::new(self, stream, peer);
        if !admitted {
            session
                .out
                .extend_from_slice(b"* BYE too many connections from your address; close some and try again\r\n");
            let _ = session.flush().await;
            return;
        }
        if let Err(e) = session.run().await {
            tracing::debug!(remote = %peer, error = %e, "IMAP session ended");
        }
    }
}

impl postfach_net::Protocol for ImapServer {
    fn busy_reply(&self, why: postfach_net::Busy) -> Vec<u8> {
        match why {
            postfach_net::Busy::PerAddress => {
                b"* BYE too many connections from your address; close some and try again\r\n".to_vec()
            }
            postfach_net::Busy::Service => b"* BYE the server is busy; please try again later\r\n".to_vec(),
        }
    }

    fn serve(self: Arc<Self>, conn: postfach_net::Conn) -> futures_util::future::BoxFuture<'static, ()> {
        Box::pin(async move {
            let peer = conn.peer();
            let Some((stream, slot)) = conn.into_stream() else { return };
            self.run(stream, peer, true).await;
            drop(slot);
        })
    }
}

/// Why the command loop stops.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("connection error: {0}")]
    Io(#[from] io::Error),
    #[error("the client went away")]
    Closed,
    #[error("the session ends")]
    Logout,
}

/// A failure inside a command, turned into a tagged reply in one place.
#[derive(Debug)]
enum Failure {
    /// Syntax or state error: BAD.
    Bad(String),
    /// The command could not be done: NO with an optional response code.
    No(Option<&'static str>, String),
    /// The connection must end.
    End(SessionError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => Failure::No(Some("NONEXISTENT"), m),
            StoreError::Conflict(m) => Failure::No(None, m),
            other => {
                tracing::warn!(error = %other, "IMAP command failed on the store");
                Failure::No(
                    Some("UNAVAILABLE"),
                    "the server could not do this right now; please try again later".into(),
                )
            }
        }
    }
}

impl From<postfach_blob::BlobError> for Failure {
    fn from(e: postfach_blob::BlobError) -> Self {
        tracing::warn!(error = %e, "IMAP command failed on the message storage");
        Failure::No(Some("UNAVAILABLE"), "the server could not do this right now; please try again later".into())
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::End(SessionError::Io(e))
    }
}

impl From<SessionError> for Failure {
    fn from(e: SessionError) -> Self {
        Failure::End(e)
    }
}

type Outcome = Result<String, Failure>;

fn ok(text: &str) -> Outcome {
    Ok(text.to_string())
}

fn bad<T>(text: &str) -> Result<T, Failure> {
    Err(Failure::Bad(text.to_string()))
}

fn no<T>(code: Option<&'static str>, text: &str) -> Result<T, Failure> {
    Err(Failure::No(code, text.to_string()))
}

/// The selected folder as the client knows it.
#[derive(Debug)]
struct Selected {
    folder: FolderId,
    read_only: bool,
    /// UIDs by sequence number - 1.
    uids: Vec<u32>,
    /// Highest modseq the client was told about.
    modseq: u64,
    /// A change was announced since the last look.
    dirty: bool,
}

#[derive(Debug)]
enum State {
    NotAuthenticated,
    Authenticated { mailbox: MailboxId },
    Selected { mailbox: MailboxId, sel: Selected },
}

struct Session<S> {
    server: Arc<ImapServer>,
    stream: Option<S>,
    peer: SocketAddr,
    out: Vec<u8>,
    frag: Fragmentizer,
    state: State,
    failures: u32,
    condstore: bool,
    qresync: bool,
    changes: Option<broadcast::Receiver<MailboxChange>>,
    /// Bytes handed to the fragmentizer that no fragment has used yet.
    pending: usize,
    /// Whether a literal is being received.
    in_literal: bool,
}

impl<S> std::fmt::Debug for Session<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("peer", &self.peer).field("state", &self.state).finish()
    }
}

/// One complete client message.
enum Input {
    Command(Vec<u8>),
    TooLong(Option<String>),
}

impl<S: Transport> Session<S> {
    fn new(server: Arc<ImapServer>, stream: S, peer: SocketAddr) -> Self {
        let frag = fragmentizer(server.max_message_size);
        Self {
            server,
            stream: Some(stream),
            peer,
            out: Vec::new(),
            frag,
            state: State::NotAuthenticated,
            failures: 0,
            condstore: false,
            qresync: false,
            changes: None,
            pending: 0,
            in_literal: false,
        }
    }

    fn stream(&mut self) -> Result<&mut S, SessionError> {
        self.stream.as_mut().ok_or(SessionError::Closed)
    }

    fn tls(&self) -> Option<TlsInfo> {
        self.stream.as_ref().and_then(Transport::tls)
    }

    async fn flush(&mut self) -> Result<(), SessionError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        let stream = self.stream()?;
        stream.write_all(&out).await?;
        stream.flush().await?;
        self.out = out;
        self.out.clear();
        if self.out.capacity() > FLUSH_AT * 2 {
            self.out = Vec::new();
        }
        Ok(())
    }

    async fn maybe_flush(&mut self) -> Result<(), SessionError> {
        if self.out.len() >= FLUSH_AT { self.flush().await } else { Ok(()) }
    }

    fn line(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    async fn run(&mut self) -> Result<(), SessionError> {
        let caps = self.capabilities();
        self.line(&format!("* OK [CAPABILITY {caps}] Postfach IMAP ready"));
        self.flush().await?;
        loop {
            let input = match self.next_input().await {
                Ok(i) => i,
                Err(SessionError::Logout) => {
                    self.line("* BYE the connection was idle too long; please reconnect");
                    let _ = self.flush().await;
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            let bytes = match input {
                Input::Command(b) => b,
                Input::TooLong(tag) => {
                    let tag = tag.unwrap_or_else(|| "*".into());
                    self.line(&format!("{tag} BAD [TOOBIG] the command or message is too large"));
                    self.flush().await?;
                    continue;
                }
            };
            // Boxed: the waiting session stays small, the command's state lives only while it runs.
            let result = Box::pin(self.command(&bytes)).await;
            // Large APPEND payloads are not kept.
            drop(bytes);
            match result {
                Ok(()) => {}
                Err(SessionError::Logout) => {
                    let _ = self.flush().await;
                    return Ok(());
                }
                Err(e) => {
                    let _ = self.flush().await;
                    return Err(e);
                }
            }
            self.flush().await?;
            if self.out.capacity() > 16 * 1024 {
                self.out = Vec::new();
            }
            if self.failures >= MAX_FAILURES {
                self.line("* BYE too many failed logins; please check your password and try again later");
                let _ = self.flush().await;
                return Ok(());
            }
        }
    }

    /// Reads until a whole command (with its literals) is there.
    async fn next_input(&mut self) -> Result<Input, SessionError> {
        loop {
            match self.frag.progress() {
                Some(fragment) => {
                    self.pending = self.pending.saturating_sub(fragment.range().len());
                    match fragment {
                        FragmentInfo::Line { announcement: Some(ann), .. } => {
                            self.in_literal = true;
                            let limit = self.server.max_message_size;
                            if u64::from(ann.length) > limit {
                                if ann.mode == LiteralMode::Sync {
                                    // The client waits for "+": refuse instead, it sends nothing more.
                                    let tag = self.frag.decode_tag().map(|t| t.inner().to_string());
                                    self.frag.skip_message();
                                    self.in_literal = false;
                                    return Ok(Input::TooLong(tag));
                                }
                                // LITERAL+: the bytes come anyway; they are discarded as they arrive.
                                self.frag.poison_message();
                            } else if ann.mode == LiteralMode::Sync {
                                self.line("+ go ahead");
                                self.flush().await?;
                            }
                        }
                        FragmentInfo::Literal { .. } => self.in_literal = false,
                        FragmentInfo::Line { .. } => {}
                    }
                    if self.frag.is_message_complete() {
                        let tag = self.frag.decode_tag().map(|t| t.inner().to_string());
                        if self.frag.is_max_message_size_exceeded() || self.frag.is_message_poisoned() {
                            return Ok(Input::TooLong(tag));
                        }
                        let bytes = self.frag.message_bytes().to_vec();
                        return Ok(Input::Command(bytes));
                    }
                }
                None => {
                    if self.pending == 0 && !self.in_literal && self.frag.message_bytes().is_empty() {
                        // Nothing buffered: start over with empty buffers (cheap idle sessions).
                        self.frag = fragmentizer(self.server.max_message_size);
                    }
                    if !self.in_literal && self.pending > MAX_LINE {
                        self.line("* BYE the command line is too long");
                        let _ = self.flush().await;
                        return Err(SessionError::Closed);
                    }
                    let timeout =
                        if matches!(self.state, State::NotAuthenticated) { LOGIN_TIMEOUT } else { IDLE_TIMEOUT };
                    // A small buffer while waiting for the next command keeps idle sessions cheap.
                    let size = if self.pending == 0 && !self.in_literal { 1024 } else { READ_CHUNK };
                    let mut buf = vec![0u8; size];
                    let stream = self.stream()?;
                    let n = match tokio::time::timeout(timeout, stream.read(&mut buf)).await {
                        Ok(r) => r?,
                        Err(_) => return Err(SessionError::Logout),
                    };
                    if n == 0 {
                        return Err(SessionError::Closed);
                    }
                    self.pending += n;
                    self.frag.enqueue_bytes(&buf[..n]);
                }
            }
        }
    }

    fn capabilities(&self) -> String {
        let mut caps = vec!["IMAP4rev1", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE", "NAMESPACE"];
        let encrypted = self.tls().is_some();
        match self.state {
            State::NotAuthenticated => {
                if !encrypted && self.server.tls.is_some() {
                    caps.push("STARTTLS");
                }
                if encrypted || self.server.auth.plaintext_auth_allowed() {
                    caps.extend(["AUTH=PLAIN", "AUTH=LOGIN"]);
                } else {
                    // RFC 3501 §6.2.3
                    caps.push("LOGINDISABLED");
                }
            }
            _ => caps.extend(["UIDPLUS", "MOVE", "SPECIAL-USE", "CHILDREN", "UNSELECT", "CONDSTORE", "QRESYNC"]),
        }
        caps.join(" ")
    }

    async fn command(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        let (tag, body) = match CommandCodec::default().decode(bytes) {
            Ok(([], cmd)) => (cmd.tag.inner().to_string(), cmd.body),
            _ => {
                // RFC 3501 §7.1.5: BAD, nothing else happens.
                let tag = tag_of(bytes).unwrap_or_else(|| "*".to_string());
                self.line(&format!("{tag} BAD the command was not understood; check its syntax"));
                return Ok(());
            }
        };
        if matches!(body, CommandBody::StartTLS) {
            return self.starttls(&tag).await;
        }
        let name = body.name();
        let uid_command = matches!(
            &body,
            CommandBody::Fetch { uid: true, .. }
                | CommandBody::Store { uid: true, .. }
                | CommandBody::Search { uid: true, .. }
                | CommandBody::Copy { uid: true, .. }
                | CommandBody::Move { uid: true, .. }
                | CommandBody::ExpungeUid { .. }
        );
        // RFC 3501 §7.4.1: no EXPUNGE during FETCH, STORE and SEARCH (other than UID forms).
        let expunge_allowed = uid_command
            || !matches!(&body, CommandBody::Fetch { .. } | CommandBody::Store { .. } | CommandBody::Search { .. });
        let result = self.dispatch(&tag, body).await;
        let reply = match result {
            Ok(text) => {
                if !matches!(self.state, State::NotAuthenticated) {
                    self.refresh(expunge_allowed).await;
                }
                if text.starts_with('[') || text.is_empty() {
                    format!("{tag} OK {}", if text.is_empty() { format!("{name} done") } else { text })
                } else {
                    format!("{tag} OK {text}")
                }
            }
            Err(Failure::Bad(text)) => format!("{tag} BAD {text}"),
            Err(Failure::No(code, text)) => match code {
                Some(code) => format!("{tag} NO [{code}] {text}"),
                None => format!("{tag} NO {text}"),
            },
            Err(Failure::End(e)) => return Err(e),
        };
        self.line(&reply);
        Ok(())
    }

    fn mailbox(&self) -> Result<MailboxId, Failure> {
        match &self.state {
            State::Authenticated { mailbox } | State::Selected { mailbox, .. } => Ok(*mailbox),
            State::NotAuthenticated => bad("please log in first"),
        }
    }

    fn selected(&mut self) -> Result<(MailboxId, &mut Selected), Failure> {
        match &mut self.state {
            State::Selected { mailbox, sel } => Ok((*mailbox, sel)),
            _ => bad("please select a folder first"),
        }
    }

    async fn dispatch(&mut self, tag: &str, body: CommandBody<'_>) -> Outcome {
        match body {
            CommandBody::Capability => {
                let caps = self.capabilities();
                self.line(&format!("* CAPABILITY {caps}"));
                ok("CAPABILITY done")
            }
            CommandBody::Noop => ok("NOOP done"),
            CommandBody::Check => {
                self.selected()?;
                ok("CHECK done")
            }
            CommandBody::Logout => {
                self.line("* BYE logging out");
                self.line(&format!("{tag} OK LOGOUT done"));
                Err(Failure::End(SessionError::Logout))
            }
            CommandBody::StartTLS => bad("STARTTLS is handled before dispatch"),
            CommandBody::Login { username, password } => {
                let login = String::from_utf8_lossy(username.as_ref()).into_owned();
                let secret = Secret::new(String::from_utf8_lossy(password.declassify().as_ref()).into_owned());
                self.login(Mechanism::ImapLogin, Some((login, secret))).await
            }
            CommandBody::Authenticate { mechanism, initial_response } => {
                let ir = initial_response.map(|s| s.declassify().to_vec());
                self.authenticate(mechanism, ir).await
            }
            CommandBody::Id { .. } => {
                // RFC 2971
                self.line("* ID (\"name\" \"Postfach\")");
                ok("ID done")
            }
            CommandBody::Enable { capabilities } => self.enable(capabilities),
            CommandBody::Namespace => {
                self.mailbox()?;
                // RFC 2342: one personal namespace, no others.
                self.line(&format!("* NAMESPACE ((\"\" \"{SEPARATOR}\")) NIL NIL"));
                ok("NAMESPACE done")
            }
            CommandBody::Select { mailbox, parameters } => {
                self.select(&mailbox_name(&mailbox), parameters, false).await
            }
            CommandBody::Examine { mailbox, parameters } => {
                self.select(&mailbox_name(&mailbox), parameters, true).await
            }
            CommandBody::Unselect => {
                let (mailbox, _) = self.selected()?;
                self.state = State::Authenticated { mailbox };
                ok("UNSELECT done")
            }
            CommandBody::Close => {
                let (mailbox, sel) = self.selected()?;
                let (folder, read_only) = (sel.folder, sel.read_only);
                self.state = State::Authenticated { mailbox };
                if !read_only {
                    // RFC 3501 §6.4.2: expunge silently.
                    let expunged = self.server.store.expunge(mailbox, folder, None).await?;
                    self.delete_blobs(expunged.orphaned_blobs).await;
                }
                ok("CLOSE done")
            }
            CommandBody::Create { mailbox } => {
                let id = self.mailbox()?;
                let name = mailbox_name(&mailbox);
                let name = name.trim_end_matches(SEPARATOR);
                // RFC 3501 §6.3.3: create missing superior levels too.
                let mut prefix = String::new();
                let parts: Vec<&str> = name.split(SEPARATOR).collect();
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        prefix.push(SEPARATOR);
                    }
                    prefix.push_str(part);
                    let exists = self.server.store.folder(id, &prefix).await?.is_some();
                    if exists && i + 1 == parts.len() {
                        return no(Some("ALREADYEXISTS"), "a folder with this name exists already");
                    }
                    if !exists {
                        self.server.store.create_folder(id, &prefix, None).await?;
                    }
                }
                ok("CREATE done")
            }
            CommandBody::Delete { mailbox } => {
                let id = self.mailbox()?;
                let name = mailbox_name(&mailbox);
                if let State::Selected { sel, .. } = &self.state
                    && let Some(f) = self.server.store.folder(id, &name).await?
                    && f.id == sel.folder
                {
                    self.state = State::Authenticated { mailbox: id };
                }
                let orphans = self.server.store.delete_folder(id, &name).await?;
                self.delete_blobs(orphans).await;
                ok("DELETE done")
            }
            CommandBody::Rename { from, to } => {
                let id = self.mailbox()?;
                self.server.store.rename_folder(id, &mailbox_name(&from), &mailbox_name(&to)).await?;
                ok("RENAME done")
            }
            CommandBody::Subscribe { mailbox } => {
                let id = self.mailbox()?;
                self.server.store.set_subscribed(id, &mailbox_name(&mailbox), true).await?;
                ok("SUBSCRIBE done")
            }
            CommandBody::Unsubscribe { mailbox } => {
                let id = self.mailbox()?;
                self.server.store.set_subscribed(id, &mailbox_name(&mailbox), false).await?;
                ok("UNSUBSCRIBE done")
            }
            CommandBody::List { reference, mailbox_wildcard } => {
                self.list(&mailbox_name(&reference), &wildcard(&mailbox_wildcard), false).await
            }
            CommandBody::Lsub { reference, mailbox_wildcard } => {
                self.list(&mailbox_name(&reference), &wildcard(&mailbox_wildcard), true).await
            }
            CommandBody::Status { mailbox, item_names } => self.status(&mailbox_name(&mailbox), &item_names).await,
            CommandBody::Append { mailbox, flags, date, message } => {
                let bytes = match message {
                    LiteralOrLiteral8::Literal(l) => l.as_ref().to_vec(),
                    LiteralOrLiteral8::Literal8(l) => l.data.to_vec(),
                };
                let date = date.map(|d| UnixTime(d.as_ref().timestamp()));
                self.append(&mailbox_name(&mailbox), &flags, date, bytes).await
            }
            CommandBody::Expunge => self.expunge(None).await,
            CommandBody::ExpungeUid { sequence_set } => self.expunge(Some(sequence_set)).await,
            CommandBody::Search { charset, criteria, uid } => {
                if let Some(cs) = charset {
                    let cs = cs.as_ref().to_ascii_uppercase();
                    if cs != "UTF-8" && cs != "US-ASCII" {
                        return no(
                            Some("BADCHARSET (UTF-8 US-ASCII)"),
                            "only UTF-8 and US-ASCII searches are supported",
                        );
                    }
                }
                self.search(criteria, uid).await
            }
            CommandBody::Fetch { sequence_set, macro_or_item_names, uid, modifiers } => {
                self.fetch(sequence_set, macro_or_item_names, uid, modifiers).await
            }
            CommandBody::Store { sequence_set, kind, response, flags, uid, modifiers } => {
                self.store(sequence_set, kind, response, &flags, uid, modifiers).await
            }
            CommandBody::Copy { sequence_set, mailbox, uid } => {
                self.copy(sequence_set, &mailbox_name(&mailbox), uid, false).await
            }
            CommandBody::Move { sequence_set, mailbox, uid } => {
                self.copy(sequence_set, &mailbox_name(&mailbox), uid, true).await
            }
            CommandBody::Idle => self.idle().await,
            CommandBody::GetQuotaRoot { mailbox } => {
                // RFC 9208 §4.3: Postfach sets no storage limits, so no folder has a quota root.
                let id = self.mailbox()?;
                let name = mailbox_name(&mailbox);
                if self.server.store.folder(id, &name).await?.is_none() {
                    return no(Some("NONEXISTENT"), "there is no folder with this name");
                }
                let mut line = b"* QUOTAROOT ".to_vec();
                wire::astring(&mut line, &name);
                line.extend_from_slice(b"\r\n");
                self.out.extend_from_slice(&line);
                ok("GETQUOTAROOT done")
            }
            CommandBody::GetQuota { .. } => {
                self.mailbox()?;
                no(Some("NONEXISTENT"), "this mailbox has no storage limit")
            }
            CommandBody::SetQuota { .. } => no(Some("NOPERM"), "quotas are set by your provider"),
            _ => bad("this command is not supported"),
        }
    }

    async fn delete_blobs(&self, blobs: Vec<String>) {
        for blob in blobs.iter().filter_map(|b| BlobId::parse(b).ok()) {
            if let Err(e) = self.server.blobs.delete(&blob).await {
                tracing::warn!(error = %e, "removing a message file failed; the sweep will retry");
            }
        }
    }

    // ----- not authenticated (RFC 3501 §6.2) -----

    /// RFC 3501 §6.2.1: answer in plaintext, then negotiate. Whatever the client sent
    /// after the command is discarded with the old fragmentizer (RFC 2595 §3.1).
    async fn starttls(&mut self, tag: &str) -> Result<(), SessionError> {
        if !matches!(self.state, State::NotAuthenticated) || self.tls().is_some() || self.server.tls.is_none() {
            self.line(&format!("{tag} BAD STARTTLS is only possible before login on an unencrypted connection"));
            return Ok(());
        }
        self.line(&format!("{tag} OK begin TLS negotiation now"));
        self.flush().await?;
        let stream = self.stream.take().ok_or(SessionError::Closed)?;
        let Some(acceptor) = self.server.tls.clone() else { return Err(SessionError::Closed) };
        let Some(upgrade) = stream.start_tls(&acceptor) else { return Err(SessionError::Closed) };
        let stream = tokio::time::timeout(LOGIN_TIMEOUT, upgrade).await.map_err(|_| SessionError::Closed)??;
        self.stream = Some(stream);
        self.frag = fragmentizer(self.server.max_message_size);
        self.pending = 0;
        self.in_literal = false;
        Ok(())
    }

    async fn login(&mut self, mechanism: Mechanism, credentials: Option<(String, Secret<String>)>) -> Outcome {
        if !matches!(self.state, State::NotAuthenticated) {
            return bad("you are logged in already");
        }
        let encrypted = self.tls().is_some();
        let connection = Connection { remote_ip: self.peer.ip(), tls: self.tls() };
        let Some((login, secret)) = credentials else {
            if !encrypted && !self.server.auth.plaintext_auth_allowed() {
                return no(
                    Some("PRIVACYREQUIRED"),
                    "please use an encrypted connection (STARTTLS or port 993) to log in",
                );
            }
            return bad("no credentials were sent");
        };
        let attempt =
            Attempt { service: Service::Imap, mechanism, login: &login, secret: &secret, connection: &connection };
        // RFC 3501 §6.2.3 LOGINDISABLED: a password sent anyway still goes through the gate,
        // which records it and marks a correct one as exposed.
        match self.server.auth.authenticate(attempt).await {
            Ok(Principal::Mailbox { id, address, .. }) => {
                tracing::info!(remote = %self.peer, mailbox = %address, "IMAP login");
                self.state = State::Authenticated { mailbox: id };
                self.changes = Some(self.server.store.subscribe());
                self.failures = 0;
                let caps = self.capabilities();
                Ok(format!("[CAPABILITY {caps}] logged in"))
            }
            Ok(Principal::Account { .. }) => {
                self.failures += 1;
                no(Some("AUTHENTICATIONFAILED"), "the login name or password is wrong")
            }
            Err(e) => self.refused(&e),
        }
    }

    /// The reply to a refused login: only what [`Refusal::public`] allows the client to
    /// learn (RFC 5530 response codes).
    fn refused(&mut self, error: &AuthError) -> Outcome {
        let Some(refusal) = error.refusal() else {
            tracing::warn!(error = %error, "IMAP login could not be checked");
            return no(Some("UNAVAILABLE"), "logins are not possible right now; please try again later");
        };
        self.failures += 1;
        match refusal.public(self.tls().is_some()) {
            PublicRefusal::ServiceNotAllowed => no(
                Some("AUTHORIZATIONFAILED"),
                "IMAP is switched off for this mailbox. The mailbox's access mode can be changed on the mailbox page of the customer panel.",
            ),
            PublicRefusal::TlsRequired => {
                no(Some("PRIVACYREQUIRED"), "please use an encrypted connection (STARTTLS or port 993) to log in")
            }
            PublicRefusal::Failed { encrypted: false } => no(
                Some("PRIVACYREQUIRED"),
                "the login failed: check the address and the password, and use an encrypted connection (STARTTLS or port 993), which this mailbox may require",
            ),
            PublicRefusal::Failed { encrypted: true } => {
                no(Some("AUTHENTICATIONFAILED"), "the login name or password is wrong")
            }
            PublicRefusal::Disabled => {
                no(Some("AUTHORIZATIONFAILED"), "this mailbox is disabled; please ask your provider")
            }
            PublicRefusal::Throttled => {
                no(Some("UNAVAILABLE"), "too many failed logins; please wait a few minutes and try again")
            }
            PublicRefusal::Malformed => {
                no(Some("AUTHENTICATIONFAILED"), "the login could not be read; send your own address and password")
            }
        }
    }

    async fn authenticate(&mut self, mechanism: AuthMechanism<'_>, ir: Option<Vec<u8>>) -> Outcome {
        if !matches!(self.state, State::NotAuthenticated) {
            return bad("you are logged in already");
        }
        let no_plaintext = self.tls().is_none() && !self.server.auth.plaintext_auth_allowed();
        let connection = Connection { remote_ip: self.peer.ip(), tls: self.tls() };
        let gate = self.server.auth.clone();
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).map_err(|_| SaslError::NotBase64);
        let (log, credentials) = match mechanism {
            AuthMechanism::Plain => {
                let data = match ir {
                    Some(d) => d,
                    // Never prompt for a password that would cross the network in plaintext.
                    None if no_plaintext => {
                        return self.refused(
                            &gate.refuse_unencrypted(Service::Imap, Mechanism::Plain, None, &connection).await,
                        );
                    }
                    None => self.sasl_line("").await?,
                };
                (Mechanism::Plain, text(data).and_then(|m| sasl::plain(&m)))
            }
            AuthMechanism::Login => {
                let user = match ir {
                    Some(d) => d,
                    None if no_plaintext => {
                        let refused =
                            gate.refuse_unencrypted(Service::Imap, Mechanism::SaslLogin, None, &connection).await;
                        return self.refused(&refused);
                    }
                    None => self.sasl_line(sasl::LOGIN_USERNAME).await?,
                };
                let user = match text(user) {
                    Ok(user) => user,
                    Err(_) => {
                        let refused =
                            gate.refuse_malformed(Service::Imap, Mechanism::SaslLogin, None, &connection).await;
                        return self.refused(&refused);
                    }
                };
                if no_plaintext {
                    let refused =
                        gate.refuse_unencrypted(Service::Imap, Mechanism::SaslLogin, Some(&user), &connection).await;
                    return self.refused(&refused);
                }
                let pass = self.sasl_line(sasl::LOGIN_PASSWORD).await?;
                let credentials = text(pass).map(|p| sasl::Credentials { login: user, secret: Secret::new(p) });
                (Mechanism::SaslLogin, credentials)
            }
            _ => return no(None, "this authentication mechanism is not supported; use PLAIN or LOGIN"),
        };
        match credentials {
            Ok(c) => self.login(log, Some((c.login, c.secret))).await,
            Err(SaslError::Cancelled) => bad("authentication cancelled"),
            Err(_) => self.refused(&gate.refuse_malformed(Service::Imap, log, None, &connection).await),
        }
    }

    /// One SASL exchange: a continuation with `challenge`, the client's base64 line
    /// back (RFC 3501 §6.2.2; `*` cancels).
    async fn sasl_line(&mut self, challenge: &str) -> Result<Vec<u8>, Failure> {
        self.line(&format!("+ {challenge}"));
        self.flush().await?;
        let line = match self.next_input().await? {
            Input::Command(b) => b,
            Input::TooLong(_) => return bad("the authentication data is too long"),
        };
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text == "*" {
            return bad("authentication cancelled");
        }
        match base64::engine::general_purpose::STANDARD.decode(text.trim()) {
            Ok(d) => Ok(d),
            Err(_) => {
                let connection = Connection { remote_ip: self.peer.ip(), tls: self.tls() };
                let refused =
                    self.server.auth.refuse_malformed(Service::Imap, Mechanism::Plain, None, &connection).await;
                self.refused(&refused).map(|_| Vec::new())
            }
        }
    }

    fn enable(&mut self, capabilities: Vec1<CapabilityEnable<'_>>) -> Outcome {
        self.mailbox()?;
        let mut enabled = Vec::new();
        for cap in capabilities.as_ref() {
            let name = match cap {
                CapabilityEnable::CondStore => "CONDSTORE".to_string(),
                other => other.to_string().to_ascii_uppercase(),
            };
            match name.as_str() {
                "CONDSTORE" => {
                    self.condstore = true;
                    enabled.push("CONDSTORE");
                }
                "QRESYNC" => {
                    self.condstore = true;
                    self.qresync = true;
                    enabled.push("QRESYNC");
                }
                _ => {}
            }
        }
        // RFC 5161 §3.2
        self.line(format!("* ENABLED {}", enabled.join(" ")).trim_end());
        ok("ENABLE done")
    }

    // ----- authenticated (RFC 3501 §6.3) -----

    async fn folder(&self, mailbox: MailboxId, name: &str) -> Result<Folder, Failure> {
        match self.server.store.folder(mailbox, name).await? {
            Some(f) => Ok(f),
            None => no(Some("NONEXISTENT"), "there is no folder with this name"),
        }
    }

    async fn select(&mut self, name: &str, parameters: Vec<SelectParameter>, read_only: bool) -> Outcome {
        let mailbox = self.mailbox()?;
        // RFC 3501 §6.3.1: a failed SELECT leaves no folder selected.
        self.state = State::Authenticated { mailbox };
        let folder = self.folder(mailbox, name).await?;
        let messages = self.server.store.messages(mailbox, folder.id).await?;
        let mut qresync = None;
        for p in parameters {
            match p {
                SelectParameter::CondStore => self.condstore = true,
                SelectParameter::QResync { uid_validity, mod_sequence_value, known_uids, .. } => {
                    if !self.qresync {
                        return bad("please ENABLE QRESYNC first");
                    }
                    qresync = Some((uid_validity.get(), mod_sequence_value.get(), known_uids));
                }
            }
        }
        let mut keywords: Vec<&str> = messages.iter().flat_map(|m| m.keywords.iter().map(String::as_str)).collect();
        keywords.sort_unstable();
        keywords.dedup();
        let flags = format!(
            "\\Answered \\Flagged \\Deleted \\Seen \\Draft{}",
            keywords.iter().map(|k| format!(" {k}")).collect::<String>()
        );
        self.line(&format!("* FLAGS ({flags})"));
        if read_only {
            self.line("* OK [PERMANENTFLAGS ()] read-only");
        } else {
            self.line(&format!("* OK [PERMANENTFLAGS ({flags} \\*)] flags can be changed"));
        }
        self.line(&format!("* {} EXISTS", messages.len()));
        self.line("* 0 RECENT");
        if let Some(pos) = messages.iter().position(|m| !m.flags.contains(Flags::SEEN)) {
            self.line(&format!("* OK [UNSEEN {}] first unseen message", pos + 1));
        }
        self.line(&format!("* OK [UIDVALIDITY {}] UIDs valid", folder.uidvalidity));
        let uidnext = folder.uidnext.max(messages.last().map_or(1, |m| m.uid + 1));
        self.line(&format!("* OK [UIDNEXT {uidnext}] predicted next UID"));
        self.line(&format!("* OK [HIGHESTMODSEQ {}] modification sequences", folder.highest_modseq));
        let uids: Vec<u32> = messages.iter().map(|m| m.uid).collect();
        if let Some((validity, since, known)) = qresync
            && validity == folder.uidvalidity
        {
            // RFC 7162 §3.2.5.1
            let mut vanished = self.server.store.expunged_since(mailbox, folder.id, since).await?;
            if let Some(known) = known {
                let max = vanished.last().copied().unwrap_or(0);
                vanished.retain(|u| seqset::contains(&known, *u, max));
            }
            if !vanished.is_empty() {
                self.line(&format!("* VANISHED (EARLIER) {}", seqset::compact(vanished)));
            }
            for (i, m) in messages.iter().enumerate() {
                if m.modseq > since {
                    let mut line = format!("* {} FETCH (UID {} ", i + 1, m.uid).into_bytes();
                    flags_item(&mut line, m);
                    line.extend_from_slice(format!(" MODSEQ ({}))\r\n", m.modseq).as_bytes());
                    self.out.extend_from_slice(&line);
                }
            }
        }
        let modseq = folder.highest_modseq;
        self.state =
            State::Selected { mailbox, sel: Selected { folder: folder.id, read_only, uids, modseq, dirty: false } };
        let name = if read_only { "EXAMINE" } else { "SELECT" };
        Ok(format!("[{}] {name} done", if read_only { "READ-ONLY" } else { "READ-WRITE" }))
    }

    async fn list(&mut self, reference: &str, pattern: &str, lsub: bool) -> Outcome {
        let mailbox = self.mailbox()?;
        let verb = if lsub { "LSUB" } else { "LIST" };
        if pattern.is_empty() {
            // RFC 3501 §6.3.8: the hierarchy delimiter.
            self.line(&format!("* {verb} (\\Noselect) \"{SEPARATOR}\" \"\""));
            return ok(&format!("{verb} done"));
        }
        let full = format!("{reference}{pattern}");
        let folders = self.server.store.folders(mailbox).await?;
        let names: Vec<&str> = folders.iter().map(|f| f.name.as_str()).collect();
        for f in &folders {
            if lsub && !f.subscribed {
                continue;
            }
            if !wildcard_match(&full, &f.name) {
                continue;
            }
            let prefix = format!("{}{SEPARATOR}", f.name);
            let children = names.iter().any(|n| n.starts_with(&prefix));
            let mut attrs = vec![if children { "\\HasChildren" } else { "\\HasNoChildren" }];
            if let Some(su) = f.special_use {
                attrs.push(su.attribute());
            }
            if f.subscribed && !lsub {
                attrs.push("\\Subscribed");
            }
            let mut line = format!("* {verb} ({}) \"{SEPARATOR}\" ", attrs.join(" ")).into_bytes();
            wire::astring(&mut line, &f.name);
            line.extend_from_slice(b"\r\n");
            self.out.extend_from_slice(&line);
        }
        ok(&format!("{verb} done"))
    }

    async fn status(&mut self, name: &str, items: &[StatusDataItemName]) -> Outcome {
        let mailbox = self.mailbox()?;
        let folder = self.folder(mailbox, name).await?;
        let messages = self.server.store.messages(mailbox, folder.id).await?;
        let mut parts = Vec::new();
        for item in items {
            parts.push(match item {
                StatusDataItemName::Messages => format!("MESSAGES {}", messages.len()),
                StatusDataItemName::Recent => "RECENT 0".to_string(),
                StatusDataItemName::UidNext => {
                    format!("UIDNEXT {}", folder.uidnext.max(messages.last().map_or(1, |m| m.uid + 1)))
                }
                StatusDataItemName::UidValidity => format!("UIDVALIDITY {}", folder.uidvalidity),
                StatusDataItemName::Unseen => {
                    format!("UNSEEN {}", messages.iter().filter(|m| !m.flags.contains(Flags::SEEN)).count())
                }
                StatusDataItemName::Deleted => {
                    format!("DELETED {}", messages.iter().filter(|m| m.flags.contains(Flags::DELETED)).count())
                }
                StatusDataItemName::DeletedStorage => format!(
                    "DELETED-STORAGE {}",
                    messages.iter().filter(|m| m.flags.contains(Flags::DELETED)).map(|m| m.size).sum::<u64>()
                ),
                StatusDataItemName::HighestModSeq => format!("HIGHESTMODSEQ {}", folder.highest_modseq),
                #[allow(unreachable_patterns)]
                _ => continue,
            });
        }
        let mut line = b"* STATUS ".to_vec();
        wire::astring(&mut line, &folder.name);
        line.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
        self.out.extend_from_slice(&line);
        ok("STATUS done")
    }

    async fn append(&mut self, name: &str, flags: &[Flag<'_>], date: Option<UnixTime>, bytes: Vec<u8>) -> Outcome {
        let mailbox = self.mailbox()?;
        let folder = match self.server.store.folder(mailbox, name).await? {
            Some(f) => f,
            // RFC 3501 §6.3.11
            None => return no(Some("TRYCREATE"), "there is no folder with this name; create it first"),
        };
        if bytes.is_empty() {
            return no(None, "an empty message cannot be stored");
        }
        let (flags, keywords) = split_flags(flags);
        let size = bytes.len() as u64;
        let blob = self.server.blobs.put(bytes).await?;
        let message = NewMessage {
            blob: blob.to_string(),
            size,
            internal_date: date.unwrap_or_else(UnixTime::now),
            flags,
            keywords,
        };
        let (uid, _) = self.server.store.append(mailbox, folder.id, &message).await?;
        // RFC 4315 §3
        Ok(format!("[APPENDUID {} {uid}] APPEND done", folder.uidvalidity))
    }

    // ----- selected (RFC 3501 §6.4) -----

    async fn expunge(&mut self, only: Option<SequenceSet>) -> Outcome {
        let store = self.server.store.clone();
        let (mailbox, sel) = self.selected()?;
        if sel.read_only {
            return no(Some("READ-ONLY"), "the folder was opened read-only (EXAMINE)");
        }
        let only = match only {
            Some(set) => {
                let idx = seqset::resolve(&set, true, &sel.uids).unwrap_or_default();
                Some(idx.iter().map(|&i| sel.uids[i]).collect::<Vec<u32>>())
            }
            None => None,
        };
        let folder = sel.folder;
        let expunged = store.expunge(mailbox, folder, only.as_deref()).await?;
        self.report_expunged(&expunged.uids);
        self.delete_blobs(expunged.orphaned_blobs).await;
        ok("EXPUNGE done")
    }

    /// Tells the client that `uids` are gone and forgets them.
    fn report_expunged(&mut self, uids: &[u32]) {
        let qresync = self.qresync;
        let State::Selected { sel, .. } = &mut self.state else { return };
        let mut lines = Vec::new();
        let mut gone = Vec::new();
        for uid in uids {
            if let Ok(pos) = sel.uids.binary_search(uid) {
                sel.uids.remove(pos);
                gone.push(*uid);
                if !qresync {
                    lines.push(format!("* {} EXPUNGE", pos + 1));
                }
            }
        }
        if qresync && !gone.is_empty() {
            // RFC 7162 §3.2.10
            lines.push(format!("* VANISHED {}", seqset::compact(gone)));
        }
        for l in lines {
            self.line(&l);
        }
    }

    async fn search(&mut self, criteria: Vec1<SearchKey<'_>>, uid: bool) -> Outcome {
        let store = self.server.store.clone();
        let (mailbox, sel) = self.selected()?;
        let mut keys = criteria.into_inner();
        let key = if keys.len() == 1 { keys.remove(0) } else { SearchKey::And(Vec1::unvalidated(keys)) };
        let (folder, known) = (sel.folder, sel.uids.clone());
        let messages = store.messages(mailbox, folder).await?;
        let need_content = search::needs_content(&key);
        let ctx = Context {
            last_seq: u32::try_from(known.len()).unwrap_or(u32::MAX),
            last_uid: known.last().copied().unwrap_or(0),
        };
        let mut hits = Vec::new();
        let mut max_modseq = 0;
        for (i, &u) in known.iter().enumerate() {
            let Ok(pos) = messages.binary_search_by_key(&u, |m| m.uid) else { continue };
            let meta = &messages[pos];
            let seq = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let matched = if need_content {
                let bytes = self.read_blob(meta).await?;
                let parsed = crate::mime::parse(&bytes);
                search::matches(&key, &Candidate { seq, meta, parsed: parsed.as_ref() }, ctx)
            } else {
                search::matches(&key, &Candidate { seq, meta, parsed: None }, ctx)
            };
            if matched {
                hits.push(if uid { meta.uid } else { seq });
                max_modseq = max_modseq.max(meta.modseq);
            }
        }
        let mut line = String::from("* SEARCH");
        for h in &hits {
            line.push(' ');
            line.push_str(&h.to_string());
        }
        if search::has_modseq(&key) && !hits.is_empty() {
            // RFC 7162 §3.1.5
            line.push_str(&format!(" (MODSEQ {max_modseq})"));
        }
        if search::has_modseq(&key) {
            self.condstore = true;
        }
        self.line(&line);
        ok("SEARCH done")
    }

    async fn read_blob(&self, meta: &Message) -> Result<Vec<u8>, Failure> {
        let id = match BlobId::parse(&meta.blob) {
            Ok(id) => id,
            Err(e) => return Err(e.into()),
        };
        Ok(self.server.blobs.get(&id).await?)
    }

    async fn fetch(
        &mut self,
        set: SequenceSet,
        items: MacroOrMessageDataItemNames<'_>,
        uid: bool,
        modifiers: Vec<FetchModifier>,
    ) -> Outcome {
        let store = self.server.store.clone();
        let (mailbox, sel) = self.selected()?;
        let Ok(idx) = seqset::resolve(&set, uid, &sel.uids) else {
            return bad("the message sequence numbers are not in this folder");
        };
        let (folder, read_only) = (sel.folder, sel.read_only);
        let wanted: Vec<(usize, u32)> = idx.iter().map(|&i| (i, sel.uids[i])).collect();
        let mut items = match items {
            MacroOrMessageDataItemNames::Macro(m) => match m {
                Macro::Fast => {
                    vec![MessageDataItemName::Flags, MessageDataItemName::InternalDate, MessageDataItemName::Rfc822Size]
                }
                Macro::All => vec![
                    MessageDataItemName::Flags,
                    MessageDataItemName::InternalDate,
                    MessageDataItemName::Rfc822Size,
                    MessageDataItemName::Envelope,
                ],
                Macro::Full => vec![
                    MessageDataItemName::Flags,
                    MessageDataItemName::InternalDate,
                    MessageDataItemName::Rfc822Size,
                    MessageDataItemName::Envelope,
                    MessageDataItemName::Body,
                ],
                _ => {
                    vec![MessageDataItemName::Flags, MessageDataItemName::InternalDate, MessageDataItemName::Rfc822Size]
                }
            },
            MacroOrMessageDataItemNames::MessageDataItemNames(items) => items,
        };
        let mut changed_since = None;
        let mut vanished = false;
        for m in modifiers {
            match m {
                FetchModifier::ChangedSince(v) => changed_since = Some(v.get()),
                FetchModifier::Vanished => vanished = true,
            }
        }
        if vanished && !(uid && self.qresync && changed_since.is_some()) {
            return bad("VANISHED needs UID FETCH with CHANGEDSINCE after ENABLE QRESYNC");
        }
        if uid && !items.contains(&MessageDataItemName::Uid) {
            // RFC 3501 §6.4.8: UID FETCH always reports the UID.
            items.insert(0, MessageDataItemName::Uid);
        }
        if changed_since.is_some() || items.contains(&MessageDataItemName::ModSeq) {
            self.condstore = true;
            if !items.contains(&MessageDataItemName::ModSeq) {
                items.push(MessageDataItemName::ModSeq);
            }
        }
        let mut messages = store.messages(mailbox, folder).await?;
        if vanished && let Some(since) = changed_since {
            // RFC 7162 §3.2.6
            let gone = store.expunged_since(mailbox, folder, since).await?;
            let lo = wanted.first().map_or(0, |w| w.1);
            let gone: Vec<u32> =
                gone.into_iter().filter(|u| seqset::contains(&set, *u, u32::MAX) || *u >= lo).collect();
            if !gone.is_empty() {
                self.line(&format!("* VANISHED (EARLIER) {}", seqset::compact(gone)));
            }
        }
        // Fetching a body without PEEK sets \Seen (RFC 3501 §6.4.5).
        let sets_seen = !read_only
            && items.iter().any(|i| {
                matches!(
                    i,
                    MessageDataItemName::BodyExt { peek: false, .. }
                        | MessageDataItemName::Rfc822
                        | MessageDataItemName::Rfc822Text
                )
            });
        let mut seen_now = Vec::new();
        if sets_seen {
            let unseen: Vec<u32> = wanted
                .iter()
                .filter_map(|(_, u)| messages.binary_search_by_key(u, |m| m.uid).ok())
                .filter(|&p| !messages[p].flags.contains(Flags::SEEN))
                .map(|p| messages[p].uid)
                .collect();
            if !unseen.is_empty() {
                let outcome =
                    store.store_flags(mailbox, folder, &unseen, FlagChange::Add, Flags::SEEN, &[], None).await?;
                for changed in outcome.changed {
                    if let Ok(p) = messages.binary_search_by_key(&changed.uid, |m| m.uid) {
                        seen_now.push(changed.uid);
                        messages[p] = changed;
                    }
                }
            }
        }
        let needs_bytes = items.iter().any(|i| {
            !matches!(
                i,
                MessageDataItemName::Flags
                    | MessageDataItemName::InternalDate
                    | MessageDataItemName::Rfc822Size
                    | MessageDataItemName::Uid
                    | MessageDataItemName::ModSeq
            )
        });
        let selected: Vec<(usize, &Message)> = wanted
            .iter()
            .filter_map(|&(i, u)| messages.binary_search_by_key(&u, |m| m.uid).ok().map(|p| (i, &messages[p])))
            .filter(|(_, m)| changed_since.is_none_or(|since| m.modseq > since))
            .collect();
        // Message files are read a few ahead while earlier ones are sent.
        let blobs = self.server.blobs.clone();
        let ids: Vec<String> =
            if needs_bytes { selected.iter().map(|(_, m)| m.blob.clone()).collect() } else { Vec::new() };
        // Files are read in batches on the blocking pool: one hand-off per batch instead of
        // one per message keeps small messages cheap (they come from the page cache).
        let batches: Vec<Vec<String>> = ids.chunks(READ_BATCH).map(<[String]>::to_vec).collect();
        let mut bodies = futures_util::stream::iter(batches.into_iter().map(move |batch| {
            let blobs = blobs.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    batch
                        .iter()
                        .map(|blob| {
                            let id = BlobId::parse(blob)?;
                            let path = blobs.path(&id);
                            std::fs::read(&path).map_err(|source| postfach_blob::BlobError::Io { path, source })
                        })
                        .collect::<Vec<_>>()
                })
                .await
                .unwrap_or_else(|e| vec![Err(postfach_blob::BlobError::Task(e.to_string()))])
            }
        }))
        .buffered(2)
        .flat_map(futures_util::stream::iter);
        for &(i, meta) in &selected {
            let bytes = if needs_bytes {
                match bodies.next().await {
                    Some(Ok(b)) => Some(b),
                    Some(Err(e)) => return Err(e.into()),
                    None => None,
                }
            } else {
                None
            };
            self.out.extend_from_slice(format!("* {} FETCH (", i + 1).as_bytes());
            render_items(&mut self.out, &items, meta, bytes.as_deref());
            if seen_now.contains(&meta.uid) && !items.contains(&MessageDataItemName::Flags) {
                self.out.push(b' ');
                flags_item(&mut self.out, meta);
            }
            self.out.extend_from_slice(b")\r\n");
            self.maybe_flush().await?;
        }
        drop(bodies);
        ok(if uid { "UID FETCH done" } else { "FETCH done" })
    }

    async fn store(
        &mut self,
        set: SequenceSet,
        kind: StoreType,
        response: StoreResponse,
        flags: &[Flag<'_>],
        uid: bool,
        modifiers: Vec<StoreModifier>,
    ) -> Outcome {
        let store = self.server.store.clone();
        let condstore_before = self.condstore;
        let (mailbox, sel) = self.selected()?;
        if sel.read_only {
            return no(Some("READ-ONLY"), "the folder was opened read-only (EXAMINE)");
        }
        let Ok(idx) = seqset::resolve(&set, uid, &sel.uids) else {
            return bad("the message sequence numbers are not in this folder");
        };
        let uids: Vec<u32> = idx.iter().map(|&i| sel.uids[i]).collect();
        let folder = sel.folder;
        let mut unchanged_since = None;
        for m in modifiers {
            let StoreModifier::UnchangedSince(v) = m;
            unchanged_since = Some(v);
        }
        let (sys, keywords) = split_flags(flags);
        let change = match kind {
            StoreType::Add => FlagChange::Add,
            StoreType::Remove => FlagChange::Remove,
            StoreType::Replace => FlagChange::Replace,
        };
        let outcome = store.store_flags(mailbox, folder, &uids, change, sys, &keywords, unchanged_since).await?;
        let condstore = condstore_before || unchanged_since.is_some();
        self.condstore = condstore;
        let (_, sel) = self.selected()?;
        let mut lines = Vec::new();
        let report: Vec<Message> =
            if response == StoreResponse::Silent && unchanged_since.is_none() { Vec::new() } else { outcome.changed };
        for m in &report {
            let Ok(pos) = sel.uids.binary_search(&m.uid) else { continue };
            let mut line = format!("* {} FETCH (", pos + 1).into_bytes();
            if uid {
                line.extend_from_slice(format!("UID {} ", m.uid).as_bytes());
            }
            flags_item(&mut line, m);
            if condstore {
                line.extend_from_slice(format!(" MODSEQ ({})", m.modseq).as_bytes());
            }
            line.extend_from_slice(b")\r\n");
            lines.push(line);
        }
        let modified: Vec<u32> = if uid {
            outcome.modified.clone()
        } else {
            outcome
                .modified
                .iter()
                .filter_map(|u| sel.uids.binary_search(u).ok())
                .map(|p| u32::try_from(p + 1).unwrap_or(u32::MAX))
                .collect()
        };
        for l in lines {
            self.out.extend_from_slice(&l);
        }
        if !modified.is_empty() {
            // RFC 7162 §3.1.3
            return Ok(format!("[MODIFIED {}] conditional STORE failed for some messages", seqset::compact(modified)));
        }
        ok("STORE done")
    }

    async fn copy(&mut self, set: SequenceSet, target: &str, uid: bool, moving: bool) -> Outcome {
        let store = self.server.store.clone();
        let (mailbox, sel) = self.selected()?;
        if moving && sel.read_only {
            return no(Some("READ-ONLY"), "the folder was opened read-only (EXAMINE)");
        }
        let Ok(idx) = seqset::resolve(&set, uid, &sel.uids) else {
            return bad("the message sequence numbers are not in this folder");
        };
        let uids: Vec<u32> = idx.iter().map(|&i| sel.uids[i]).collect();
        let from = sel.folder;
        let Some(to) = store.folder(mailbox, target).await? else {
            return no(Some("TRYCREATE"), "there is no folder with this name; create it first");
        };
        let pairs = if moving {
            store.move_messages(mailbox, from, &uids, to.id).await?
        } else {
            store.copy_messages(mailbox, from, &uids, to.id).await?
        };
        let verb = if moving { "MOVE" } else { "COPY" };
        if pairs.is_empty() {
            return ok(&format!("{verb} done (nothing to do)"));
        }
        let code = format!(
            "COPYUID {} {} {}",
            to.uidvalidity,
            seqset::compact(pairs.iter().map(|p| p.0)),
            seqset::compact(pairs.iter().map(|p| p.1))
        );
        if moving {
            // RFC 6851 §4.3: COPYUID untagged before the expunges.
            self.line(&format!("* OK [{code}] moved"));
            let moved: Vec<u32> = pairs.iter().map(|p| p.0).collect();
            self.report_expunged(&moved);
            return ok("MOVE done");
        }
        Ok(format!("[{code}] COPY done"))
    }

    async fn idle(&mut self) -> Outcome {
        self.mailbox()?;
        // RFC 2177
        self.line("+ idling");
        self.refresh(true).await;
        self.flush().await?;
        loop {
            let mut buf = vec![0u8; 512];
            let Some(stream) = self.stream.as_mut() else { return Err(SessionError::Closed.into()) };
            let changes = self.changes.as_mut();
            tokio::select! {
                read = tokio::time::timeout(IDLE_TIMEOUT, stream.read(&mut buf)) => {
                    let n = match read {
                        Ok(r) => r?,
                        Err(_) => return Err(SessionError::Logout.into()),
                    };
                    if n == 0 {
                        return Err(SessionError::Closed.into());
                    }
                    self.frag.enqueue_bytes(&buf[..n]);
                    self.pending += n;
                    let fragment = self.frag.progress();
                    if let Some(f) = fragment {
                        self.pending = self.pending.saturating_sub(f.range().len());
                    }
                    if let Some(FragmentInfo::Line { .. }) = fragment
                        && self.frag.is_message_complete()
                    {
                        // Anything pipelined after DONE stays queued for the command loop.
                        let line = self.frag.message_bytes().to_vec();
                        return if line.trim_ascii().eq_ignore_ascii_case(b"DONE") {
                            ok("IDLE terminated")
                        } else {
                            bad("IDLE ends with DONE")
                        };
                    }
                }
                change = recv(changes) => {
                    if let Some(change) = change {
                        self.note_change(change);
                    }
                    self.refresh(true).await;
                    self.flush().await?;
                }
            }
        }
    }

    fn note_change(&mut self, change: Option<MailboxChange>) {
        if let State::Selected { mailbox, sel } = &mut self.state {
            match change {
                Some(c) if c.mailbox_id == *mailbox && c.folder_id == sel.folder => sel.dirty = true,
                Some(_) => {}
                // Lagged: something may have changed.
                None => sel.dirty = true,
            }
        }
    }

    /// Tells the client what changed in the selected folder since it last heard
    /// (RFC 3501 §7.3.1 EXISTS, §7.4.1 EXPUNGE, §7.4.2 FETCH).
    async fn refresh(&mut self, expunge_allowed: bool) {
        if let Some(rx) = self.changes.as_mut() {
            let mut seen = Vec::new();
            loop {
                match rx.try_recv() {
                    Ok(c) => seen.push(Some(c)),
                    Err(broadcast::error::TryRecvError::Lagged(_)) => seen.push(None),
                    Err(_) => break,
                }
            }
            for c in seen {
                self.note_change(c);
            }
        }
        let store = self.server.store.clone();
        let condstore = self.condstore;
        let State::Selected { mailbox, sel } = &mut self.state else { return };
        if !sel.dirty {
            return;
        }
        let mailbox = *mailbox;
        let result: Result<Vec<u8>, StoreError> = async {
            let mut out = Vec::new();
            let Some(folder) = store.folder_by_id(mailbox, sel.folder).await? else { return Ok(out) };
            if folder.highest_modseq == sel.modseq {
                sel.dirty = false;
                return Ok(out);
            }
            let current = store.uids(mailbox, sel.folder).await?;
            let changed = store.messages_changed_since(mailbox, sel.folder, sel.modseq).await?;
            let mut complete = true;
            if expunge_allowed {
                let gone: Vec<u32> = sel.uids.iter().copied().filter(|u| current.binary_search(u).is_err()).collect();
                if !gone.is_empty() {
                    if self.qresync {
                        out.extend_from_slice(
                            format!("* VANISHED {}\r\n", seqset::compact(gone.iter().copied())).as_bytes(),
                        );
                        sel.uids.retain(|u| current.binary_search(u).is_ok());
                    } else {
                        for u in gone {
                            if let Ok(pos) = sel.uids.binary_search(&u) {
                                sel.uids.remove(pos);
                                out.extend_from_slice(format!("* {} EXPUNGE\r\n", pos + 1).as_bytes());
                            }
                        }
                    }
                }
            } else if sel.uids.iter().any(|u| current.binary_search(u).is_err()) {
                complete = false;
            }
            let last = sel.uids.last().copied().unwrap_or(0);
            let new: Vec<u32> = current.iter().copied().filter(|&u| u > last).collect();
            if !new.is_empty() {
                sel.uids.extend(new);
                out.extend_from_slice(format!("* {} EXISTS\r\n", sel.uids.len()).as_bytes());
            }
            for m in changed.iter().filter(|m| m.uid <= last) {
                if let Ok(pos) = sel.uids.binary_search(&m.uid) {
                    let mut line = format!("* {} FETCH (UID {} ", pos + 1, m.uid).into_bytes();
                    flags_item(&mut line, m);
                    if condstore {
                        line.extend_from_slice(format!(" MODSEQ ({})", m.modseq).as_bytes());
                    }
                    line.extend_from_slice(b")\r\n");
                    out.extend_from_slice(&line);
                }
            }
            if complete {
                sel.modseq = folder.highest_modseq;
                sel.dirty = false;
            }
            Ok(out)
        }
        .await;
        match result {
            Ok(out) => self.out.extend_from_slice(&out),
            Err(e) => tracing::warn!(error = %e, "checking the selected folder for changes failed"),
        }
    }
}

async fn recv(rx: Option<&mut broadcast::Receiver<MailboxChange>>) -> Option<Option<MailboxChange>> {
    match rx {
        Some(rx) => match rx.recv().await {
            Ok(c) => Some(Some(c)),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(None),
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

fn fragmentizer(max_message_size: u64) -> Fragmentizer {
    let limit = max_message_size.saturating_add(MAX_LINE as u64 * 2);
    Fragmentizer::new(u32::try_from(limit).unwrap_or(u32::MAX))
}

/// The tag of a line that did not parse, if it starts with one.
fn tag_of(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|&b| b == b' ' || b == b'\r' || b == b'\n')?;
    let tag = &bytes[..end];
    let valid = !tag.is_empty() && tag.iter().all(|&b| b.is_ascii_graphic() && !b"(){%*\"\\+".contains(&b));
    valid.then(|| String::from_utf8_lossy(tag).into_owned())
}

fn mailbox_name(mailbox: &Mailbox<'_>) -> String {
    match mailbox {
        Mailbox::Inbox => "INBOX".to_string(),
        Mailbox::Other(other) => String::from_utf8_lossy(other.as_ref()).into_owned(),
    }
}

fn wildcard(w: &ListMailbox<'_>) -> String {
    match w {
        ListMailbox::Token(t) => String::from_utf8_lossy(t.as_ref()).into_owned(),
        ListMailbox::String(s) => String::from_utf8_lossy(s.as_ref()).into_owned(),
    }
}

/// LIST patterns (RFC 3501 §6.3.8): `*` matches anything, `%` anything but the separator.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some(('%', rest)) => {
                let stop = n.iter().position(|&c| c == SEPARATOR).unwrap_or(n.len());
                (0..=stop).any(|i| go(rest, &n[i..]))
            }
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    let pattern = if pattern.len() >= 5 && pattern[..5].eq_ignore_ascii_case("INBOX") && name == "INBOX" {
        format!("INBOX{}", &pattern[5..])
    } else {
        pattern.to_string()
    };
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

fn split_flags(flags: &[Flag<'_>]) -> (Flags, Vec<String>) {
    let mut sys = Flags::default();
    let mut keywords = Vec::new();
    for f in flags {
        match f {
            Flag::Seen => sys = sys.union(Flags::SEEN),
            Flag::Answered => sys = sys.union(Flags::ANSWERED),
            Flag::Flagged => sys = sys.union(Flags::FLAGGED),
            Flag::Deleted => sys = sys.union(Flags::DELETED),
            Flag::Draft => sys = sys.union(Flags::DRAFT),
            Flag::Keyword(k) => keywords.push(k.as_ref().to_string()),
            // \Recent and unknown system flags cannot be stored.
            Flag::Extension(_) => {}
        }
    }
    (sys, keywords)
}

fn flags_item(out: &mut Vec<u8>, m: &Message) {
    out.extend_from_slice(b"FLAGS (");
    let mut names: Vec<&str> = m.flags.names().collect();
    names.extend(m.keywords.iter().map(String::as_str));
    out.extend_from_slice(names.join(" ").as_bytes());
    out.push(b')');
}

fn section_spec(section: Option<&Section<'_>>) -> String {
    let part = |p: &Part| p.0.as_ref().iter().map(|n| n.to_string()).collect::<Vec<_>>().join(".");
    let with = |p: &Option<Part>, s: &str| match p {
        Some(p) => format!("{}.{s}", part(p)),
        None => s.to_string(),
    };
    let names = |list: &Vec1<imap_codec::imap_types::core::AString<'_>>| {
        let mut out = Vec::new();
        for (i, n) in list.as_ref().iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            wire::astring(&mut out, &String::from_utf8_lossy(n.as_ref()));
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    match section {
        None => String::new(),
        Some(Section::Part(p)) => part(p),
        Some(Section::Header(p)) => with(p, "HEADER"),
        Some(Section::HeaderFields(p, list)) => format!("{} ({})", with(p, "HEADER.FIELDS"), names(list)),
        Some(Section::HeaderFieldsNot(p, list)) => format!("{} ({})", with(p, "HEADER.FIELDS.NOT"), names(list)),
        Some(Section::Text(p)) => with(p, "TEXT"),
        Some(Section::Mime(p)) => format!("{}.MIME", part(p)),
    }
}

/// The bytes of a section (RFC 3501 §6.4.5); `None` when the part does not exist.
fn section_bytes(raw: &[u8], msg: Option<&mail_parser::Message<'_>>, section: Option<&Section<'_>>) -> Option<Vec<u8>> {
    use crate::mime;
    let Some(section) = section else { return Some(raw.to_vec()) };
    let msg = msg?;
    let nums = |p: &Part| p.0.as_ref().iter().map(|n| n.get()).collect::<Vec<u32>>();
    // The message a HEADER/TEXT specifier refers to: the top one or an enclosed one.
    let target = |p: &Option<Part>| -> Option<&mail_parser::Message<'_>> {
        match p {
            None => Some(msg),
            Some(p) => mime::locate(msg, &nums(p))?.enclosed(),
        }
    };
    let names = |list: &Vec1<imap_codec::imap_types::core::AString<'_>>| -> Vec<Vec<u8>> {
        list.as_ref().iter().map(|n| n.as_ref().to_vec()).collect()
    };
    Some(match section {
        Section::Part(p) => mime::locate(msg, &nums(p))?.body().to_vec(),
        Section::Header(p) => mime::header_bytes(target(p)?).to_vec(),
        Section::Text(p) => mime::text_bytes(target(p)?).to_vec(),
        Section::HeaderFields(p, list) => mime::header_fields(target(p)?, &names(list), false),
        Section::HeaderFieldsNot(p, list) => mime::header_fields(target(p)?, &names(list), true),
        Section::Mime(p) => mime::locate(msg, &nums(p))?.mime().to_vec(),
    })
}

fn render_items(out: &mut Vec<u8>, items: &[MessageDataItemName<'_>], meta: &Message, raw: Option<&[u8]>) {
    let raw = raw.unwrap_or(&[]);
    let mut parsed: Option<Option<mail_parser::Message<'_>>> = None;
    let mut parse = || -> Option<mail_parser::Message<'_>> { crate::mime::parse(raw) };
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        match item {
            MessageDataItemName::Uid => out.extend_from_slice(format!("UID {}", meta.uid).as_bytes()),
            MessageDataItemName::Flags => flags_item(out, meta),
            MessageDataItemName::InternalDate => {
                out.extend_from_slice(format!("INTERNALDATE {}", wire::date_time(meta.internal_date)).as_bytes())
            }
            MessageDataItemName::Rfc822Size => out.extend_from_slice(format!("RFC822.SIZE {}", meta.size).as_bytes()),
            MessageDataItemName::ModSeq => out.extend_from_slice(format!("MODSEQ ({})", meta.modseq).as_bytes()),
            MessageDataItemName::Rfc822 => {
                out.extend_from_slice(b"RFC822 ");
                wire::literal(out, raw);
            }
            MessageDataItemName::Rfc822Header | MessageDataItemName::Rfc822Text => {
                let m = parsed.get_or_insert_with(&mut parse);
                let (name, bytes) = if matches!(item, MessageDataItemName::Rfc822Header) {
                    ("RFC822.HEADER ", m.as_ref().map_or(raw, |m| crate::mime::header_bytes(m)))
                } else {
                    ("RFC822.TEXT ", m.as_ref().map_or(&[][..], |m| crate::mime::text_bytes(m)))
                };
                out.extend_from_slice(name.as_bytes());
                wire::literal(out, bytes);
            }
            MessageDataItemName::Envelope => {
                out.extend_from_slice(b"ENVELOPE ");
                match parsed.get_or_insert_with(&mut parse) {
                    Some(m) => crate::mime::envelope(out, m),
                    None => out.extend_from_slice(b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
                }
            }
            MessageDataItemName::Body | MessageDataItemName::BodyStructure => {
                let extended = matches!(item, MessageDataItemName::BodyStructure);
                out.extend_from_slice(if extended { b"BODYSTRUCTURE " } else { b"BODY " });
                match parsed.get_or_insert_with(&mut parse) {
                    Some(m) => crate::mime::body_structure(out, m, extended),
                    None => out.extend_from_slice(b"(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0)"),
                }
            }
            MessageDataItemName::BodyExt { section, partial, .. } => {
                let bytes: std::borrow::Cow<'_, [u8]> = if section.is_none() {
                    std::borrow::Cow::Borrowed(raw)
                } else {
                    let m = parsed.get_or_insert_with(&mut parse);
                    section_bytes(raw, m.as_ref(), section.as_ref()).unwrap_or_default().into()
                };
                out.extend_from_slice(format!("BODY[{}]", section_spec(section.as_ref())).as_bytes());
                match partial {
                    Some((start, len)) => {
                        let start_u = (*start as usize).min(bytes.len());
                        let end = start_u.saturating_add(len.get() as usize).min(bytes.len());
                        out.extend_from_slice(format!("<{start}> ").as_bytes());
                        wire::literal(out, &bytes[start_u..end]);
                    }
                    None => {
                        out.push(b' ');
                        wire::literal(out, &bytes);
                    }
                }
            }
            #[allow(unreachable_patterns)]
            // BINARY (RFC 3516) is not advertised; answer with something harmless.
            _ => out.extend_from_slice(format!("UID {}", meta.uid).as_bytes()),
        }
    }
}
