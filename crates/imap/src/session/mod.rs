//! One IMAP connection: reading commands through the framer, the state gate, dispatch to
//! the handler modules, and the one place where tagged replies are written.
//!
//! Module map: `input` (framing, literal decisions, spooling APPEND data), `gate` (which
//! command is allowed in which state, RFC 9051 §3), `login` (capabilities, STARTTLS,
//! LOGIN, AUTHENTICATE, ENABLE, ID), `mailboxes` (SELECT, CREATE, …, STATUS, APPEND),
//! `listing` (LIST, LSUB), `fetch`, `changes` (STORE, COPY, MOVE, EXPUNGE, CLOSE),
//! `searching` (SEARCH, ESEARCH, SEARCHRES) and `updates` (what other sessions changed,
//! IDLE). Handlers return [`Outcome`]; syntax and state errors are BAD, refusals NO with
//! a response code (RFC 5530), and both are turned into the tagged reply in [`Session::reply`].

mod changes;
mod fetch;
mod gate;
mod input;
mod listing;
mod login;
mod mailboxes;
mod searching;
mod updates;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use postfach_auth::Principal;
use postfach_net::{Conn, Ended};
use postfach_store::StoreError;
use postfach_store::messages::MailboxChange;
use postfach_types::{EmailAddress, FolderId, MailboxId};
use tokio::sync::broadcast;

use crate::protocol::{Command, CommandBody, Framer, FramerConfig, Tag};
use crate::{ImapServer, wire};

/// Failed logins before the connection is closed.
const MAX_FAILURES: u32 = 3;
/// Commands answered BAD in a row before the connection is closed.
const MAX_BAD: u32 = 20;
/// Output is written out whenever it grows beyond this.
const FLUSH_AT: usize = 128 * 1024;

/// Why the session ends.
#[derive(Debug)]
pub(crate) enum End {
    /// LOGOUT, or the client went away; nothing more to say.
    Quiet,
    /// Say this `* BYE` text, then close.
    Bye(&'static str),
}

impl From<Ended> for End {
    fn from(ended: Ended) -> Self {
        match ended {
            Ended::Closed => End::Quiet,
            Ended::Timeout => End::Bye("the connection was idle too long; please reconnect"),
            Ended::LoginTimeout => End::Bye("you did not log in in time; please reconnect and log in"),
        }
    }
}

/// A command's failure, turned into its tagged reply in one place.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Syntax or state error: BAD.
    Bad(String),
    /// The command could not be done: NO with an optional response code.
    No(Option<&'static str>, String),
    /// The connection ends.
    End(End),
    /// The handler wrote the tagged reply itself (STARTTLS, before the handshake).
    Answered,
}

impl From<End> for Failure {
    fn from(end: End) -> Self {
        Failure::End(end)
    }
}

impl From<Ended> for Failure {
    fn from(ended: Ended) -> Self {
        Failure::End(ended.into())
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => Failure::No(Some("NONEXISTENT"), m),
            StoreError::Conflict(m) => Failure::No(None, m),
            StoreError::OverQuota(room) => Failure::No(Some("OVERQUOTA"), over_quota_text(room).into()),
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

impl From<postfach_store::local::LocalError> for Failure {
    fn from(e: postfach_store::local::LocalError) -> Self {
        match e {
            postfach_store::local::LocalError::Blob(e) => e.into(),
            postfach_store::local::LocalError::Store(e) => e.into(),
        }
    }
}

/// What a client is told when a message does not fit the quota (RFC 9208 §4.5 OVERQUOTA).
pub(crate) fn over_quota_text(room: postfach_types::Room) -> &'static str {
    match room {
        postfach_types::Room::TooBig => {
            "the message is larger than this mailbox's storage limit and cannot be stored here"
        }
        _ => {
            "the mailbox is full: delete messages (and empty the trash) to make room, or ask your provider for more space"
        }
    }
}

/// A handler found the session in a state the gate does not let its command into: a
/// bug, not a client error (the gate answers those). Logged, answered as a server failure.
pub(crate) fn ungated() -> Failure {
    tracing::error!("an IMAP command reached its handler in a state the gate does not allow");
    Failure::No(Some("SERVERBUG"), "the server could not do this; please try again".into())
}

/// What the tagged OK says: an optional response code and a text.
pub(crate) type Outcome = Result<String, Failure>;

pub(crate) fn ok(text: &str) -> Outcome {
    Ok(text.to_string())
}

pub(crate) fn bad<T>(text: &str) -> Result<T, Failure> {
    Err(Failure::Bad(text.to_string()))
}

pub(crate) fn no<T>(code: Option<&'static str>, text: &str) -> Result<T, Failure> {
    Err(Failure::No(code, text.to_string()))
}

/// Extensions the client switched on with ENABLE (RFC 5161) or by using them.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Enabled {
    /// RFC 7162 CONDSTORE: MODSEQ in FETCH responses.
    pub condstore: bool,
    /// RFC 7162 QRESYNC: VANISHED instead of EXPUNGE.
    pub qresync: bool,
    /// RFC 9051 IMAP4rev2 responses (no \Recent, ESEARCH, UTF-8 mailbox names, …).
    pub rev2: bool,
    /// RFC 6855 UTF8=ACCEPT: UTF-8 mailbox names without IMAP4rev2.
    pub utf8: bool,
}

impl Enabled {
    /// Mailbox names on the wire are UTF-8 (else modified UTF-7).
    pub fn utf8_names(self) -> bool {
        self.rev2 || self.utf8
    }
}

/// The selected folder as the client knows it.
#[derive(Debug)]
pub(crate) struct Selected {
    pub folder: FolderId,
    /// The folder's name (UTF-8), for the LIST response of a rev2 SELECT.
    pub name: String,
    pub read_only: bool,
    /// UIDs by sequence number - 1.
    pub uids: Vec<u32>,
    /// Highest modseq the client was told about.
    pub modseq: u64,
    /// A change was announced since the last look.
    pub dirty: bool,
    /// The keywords announced in FLAGS and PERMANENTFLAGS (RFC 9051 §7.3.5).
    pub keywords: BTreeSet<String>,
    /// UIDs that are `\Recent` in this session (RFC 3501 §2.3.2), ascending.
    pub recent: Vec<u32>,
    /// The result saved by `SEARCH RETURN (SAVE)` (RFC 5182), as UIDs.
    pub saved: Vec<u32>,
    /// Flag changes this session already reported (UID → modseq), not to be repeated.
    pub told: BTreeMap<u32, u64>,
}

#[derive(Debug)]
pub(crate) enum State {
    NotAuthenticated,
    Authenticated { mailbox: MailboxId, address: EmailAddress },
    Selected { mailbox: MailboxId, address: EmailAddress, sel: Box<Selected> },
}

impl State {
    pub fn mailbox(&self) -> Option<MailboxId> {
        match self {
            State::NotAuthenticated => None,
            State::Authenticated { mailbox, .. } | State::Selected { mailbox, .. } => Some(*mailbox),
        }
    }
}

pub(crate) struct Session {
    pub server: Arc<ImapServer>,
    pub conn: Conn,
    pub framer: Framer,
    pub state: State,
    pub enabled: Enabled,
    pub failures: u32,
    pub bad_in_a_row: u32,
    pub changes: Option<broadcast::Receiver<MailboxChange>>,
    pub input: input::Pending,
    /// What the client said it is (RFC 2971 ID), for logs and the app password's last use.
    pub client: Option<String>,
    /// Who logged in, with the credential used (an app password is checked for
    /// revocation before every command).
    pub principal: Option<Principal>,
    /// The revocation count this session last looked at (`Authenticator::still_valid`).
    pub revocations_seen: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("peer", &self.conn.peer()).field("state", &self.state).finish()
    }
}

/// Serves one admitted connection until it ends.
pub(crate) async fn run(server: Arc<ImapServer>, mut conn: Conn) {
    conn.set_login_deadline(Some(server.settings.login_timeout));
    let before_login =
        FramerConfig { max_line: input::PRE_LOGIN_LINE, max_command: input::PRE_LOGIN_COMMAND, ..Default::default() };
    let framer = Framer::new(before_login);
    let mut session = Session {
        server,
        conn,
        framer,
        state: State::NotAuthenticated,
        enabled: Enabled::default(),
        failures: 0,
        bad_in_a_row: 0,
        changes: None,
        input: input::Pending::default(),
        client: None,
        principal: None,
        revocations_seen: 0,
    };
    session.revocations_seen = session.server.auth.revocations_seen();
    let caps = session.capabilities();
    session.line(&format!("* OK [CAPABILITY {caps}] Postfach IMAP ready"));
    if let End::Bye(text) = session.serve().await {
        session.line(&format!("* BYE {text}"));
    }
    session.conn.close().await;
}

impl Session {
    pub fn line(&mut self, s: &str) {
        let out = self.conn.output();
        out.extend_from_slice(s.as_bytes());
        out.extend_from_slice(b"\r\n");
    }

    pub fn out(&mut self) -> &mut Vec<u8> {
        self.conn.output()
    }

    pub async fn maybe_flush(&mut self) -> Result<(), Failure> {
        if self.conn.queued() >= FLUSH_AT {
            self.conn.flush().await?;
        }
        Ok(())
    }

    async fn serve(&mut self) -> End {
        loop {
            let next = match self.next_input().await {
                Ok(next) => next,
                Err(end) => return end,
            };
            let result = match next {
                input::Input::Command(command) => Box::pin(self.command(command)).await,
                input::Input::Refused { tag, code, text } => {
                    let tag = tag.map_or_else(|| "*".to_string(), |t| t.as_str().to_string());
                    self.line(&format!("{tag} {code} {text}"));
                    self.bad_in_a_row += 1;
                    Ok(())
                }
            };
            if let Err(end) = result {
                return end;
            }
            if let Err(e) = self.conn.flush().await {
                return e.into();
            }
            if self.failures >= MAX_FAILURES {
                return End::Bye("too many failed logins; please check your password and try again later");
            }
            if self.bad_in_a_row >= MAX_BAD {
                return End::Bye("too many commands that could not be understood");
            }
        }
    }

    /// Runs one command and writes its tagged reply.
    async fn command(&mut self, command: Command) -> Result<(), End> {
        let Command { tag, body } = command;
        if !self.credential_still_valid().await {
            return Err(End::Bye(
                "the app password of this connection was revoked; log in again with a valid password",
            ));
        }
        if let Err(reason) = gate::allowed(&self.state, &body) {
            self.bad_in_a_row += 1;
            self.line(&format!("{} BAD {reason}", tag.as_str()));
            return Ok(());
        }
        // RFC 9051 §7.5.1: no EXPUNGE during FETCH, STORE and SEARCH (other than UID forms).
        let expunge_allowed =
            body.is_uid() || !matches!(&body, CommandBody::Fetch(_) | CommandBody::Store(_) | CommandBody::Search(_));
        let name = body.name();
        let started = std::time::Instant::now();
        let result = self.dispatch(&tag, body).await;
        if matches!(name, "ID" | "LOGIN" | "AUTHENTICATE") {
            self.tell_client_name().await;
        }
        // IDLE lasts as long as the client waits: no latency to speak of.
        if name != "IDLE" {
            postfach_metrics::command(postfach_metrics::Protocol::Imap, name, started.elapsed());
        }
        let reply = match result {
            Ok(text) => {
                self.bad_in_a_row = 0;
                if self.state.mailbox().is_some() {
                    self.refresh(expunge_allowed).await;
                }
                if text.is_empty() { format!("OK {name} done") } else { format!("OK {text}") }
            }
            Err(Failure::Bad(text)) => {
                self.bad_in_a_row += 1;
                format!("BAD {text}")
            }
            Err(Failure::No(code, text)) => {
                self.bad_in_a_row = 0;
                match code {
                    Some(code) => format!("NO [{code}] {text}"),
                    None => format!("NO {text}"),
                }
            }
            Err(Failure::End(end)) => return Err(end),
            Err(Failure::Answered) => return Ok(()),
        };
        let reply = wire::response_text(&reply, self.enabled.utf8_names());
        self.line(&format!("{} {reply}", tag.as_str()));
        Ok(())
    }

    /// False once the app password this session logged in with was revoked.
    async fn credential_still_valid(&mut self) -> bool {
        let Some(principal) = &self.principal else { return true };
        self.server.auth.still_valid(principal, &mut self.revocations_seen).await
    }

    /// Records the client's `ID` name as its app password's last use.
    async fn tell_client_name(&mut self) {
        if let (Some(principal), Some(client)) = (&self.principal, &self.client)
            && let Err(e) = self.server.auth.client_named(principal, client).await
        {
            tracing::warn!(error = %e, "cannot record the client name of an app password");
        }
    }

    async fn dispatch(&mut self, tag: &Tag, body: CommandBody) -> Outcome {
        use CommandBody as C;
        match body {
            C::Capability => {
                let caps = self.capabilities();
                self.line(&format!("* CAPABILITY {caps}"));
                ok("CAPABILITY done")
            }
            C::Noop => ok("NOOP done"),
            C::Logout => {
                self.line("* BYE logging out");
                self.line(&format!("{} OK LOGOUT done", tag.as_str()));
                Err(Failure::End(End::Quiet))
            }
            C::Id(fields) => self.id(fields),
            C::StartTls => self.starttls(tag).await,
            C::Authenticate { mechanism, initial_response } => self.authenticate(mechanism, initial_response).await,
            C::Login { username, password } => self.login_command(username, password).await,
            C::Enable(caps) => self.enable(&caps),
            C::Select(select) => self.select(select, false).await,
            C::Examine(select) => self.select(select, true).await,
            C::Create { mailbox, special_use } => self.create(mailbox, special_use).await,
            C::Delete(mailbox) => self.delete(mailbox).await,
            C::Rename { from, to } => self.rename(from, to).await,
            C::Subscribe(mailbox) => self.subscribe(mailbox, true).await,
            C::Unsubscribe(mailbox) => self.subscribe(mailbox, false).await,
            C::List(list) => self.list(list).await,
            C::Lsub { reference, pattern } => self.lsub(reference, pattern).await,
            C::Namespace => {
                // RFC 2342: one personal namespace, no others.
                self.line(&format!("* NAMESPACE ((\"\" \"{}\")) NIL NIL", postfach_store::folders::SEPARATOR));
                ok("NAMESPACE done")
            }
            C::Status { mailbox, items } => self.status(mailbox, &items).await,
            C::Append(append) => self.append(append).await,
            C::Idle => self.idle().await,
            C::GetQuota(root) => self.quota(root).await,
            C::GetQuotaRoot(mailbox) => self.quota_root(mailbox).await,
            C::SetQuota { .. } => {
                no(Some("NOPERM"), "storage limits are set by your provider in the control panel, not by mail programs")
            }
            C::Check => ok("CHECK done"),
            C::Close => self.close().await,
            C::Unselect => {
                self.unselect();
                ok("UNSELECT done")
            }
            C::Expunge { uid_set } => self.expunge(uid_set).await,
            C::Search(search) => self.search(tag, search).await,
            C::Fetch(fetch) => self.fetch(fetch).await,
            C::Store(store) => self.store(store).await,
            C::Copy(transfer) => self.transfer(transfer, false).await,
            C::Move(transfer) => self.transfer(transfer, true).await,
        }
    }

    /// The mailbox of the signed-in user. The gate (`gate.rs`) let the command through
    /// only in a state that has one; handlers never check the state themselves.
    pub fn mailbox(&self) -> Result<MailboxId, Failure> {
        self.state.mailbox().ok_or_else(ungated)
    }

    /// The selected folder (the gate made sure there is one).
    pub fn selected(&mut self) -> Result<(MailboxId, &mut Selected), Failure> {
        match &mut self.state {
            State::Selected { mailbox, sel, .. } => Ok((*mailbox, sel)),
            _ => Err(ungated()),
        }
    }

    /// Leaves the selected folder (UNSELECT, a failed SELECT).
    pub fn unselect(&mut self) {
        let state = std::mem::replace(&mut self.state, State::NotAuthenticated);
        self.state = match state {
            State::Selected { mailbox, address, .. } | State::Authenticated { mailbox, address } => {
                State::Authenticated { mailbox, address }
            }
            State::NotAuthenticated => State::NotAuthenticated,
        };
    }
}
