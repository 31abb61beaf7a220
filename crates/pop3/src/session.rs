//! One POP3 connection: the AUTHORIZATION, TRANSACTION and UPDATE states of RFC 1939 §3,
//! with STLS (RFC 2595 §4) and SASL PLAIN (RFC 5034) in AUTHORIZATION.
//!
//! Replies are collected in an output buffer that is written when the session would wait
//! for the client, so a pipelined batch of commands (RFC 2449 §6.6) is answered with one
//! write, and a message fetched with RETR goes out in large chunks.
//!
//! Every login attempt, whatever the connection and the configuration, is handed to
//! [`postfach_auth::Authenticator::authenticate`]: it decides (access mode, TLS rule,
//! throttling) and records the attempt in the login log. In particular USER is always
//! accepted, also before STLS when plaintext logins are off, so that the PASS that follows
//! reaches the login log (and a correct password sent in the clear is marked exposed)
//! before it is refused with `[AUTH]`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use base64::Engine;
use memchr::memchr;
use postfach_auth::{Attempt, AuthError, Connection, Principal};
use postfach_blob::BlobId;
use postfach_net::{ConnectionGuard, MaybeTls, TlsAcceptor};
use postfach_policy::Refusal;
use postfach_store::MailboxId;
use postfach_types::{Mechanism, Secret, Service, TlsInfo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::command::{Command, MsgNum, ParseError};
use crate::maildrop::{Entry, Lock, Maildrop, NoMessage};
use crate::stuffing::{Stuffer, top};
use crate::{Limits, Pop3Error, Pop3Server, Transport};

/// Messages up to this size are read in one go; larger ones are streamed.
const READ_WHOLE: u64 = 1024 * 1024;
/// Chunk size when streaming a message, and the output size that triggers a write.
const CHUNK: usize = 256 * 1024;

const TOO_MANY_CONNECTIONS: &[u8] =
    b"-ERR [SYS/TEMP] Too many connections from your address. Close other mail programs or try again later.\r\n";
const LOG_IN_FIRST: &str = "-ERR Log in first (USER and PASS, or AUTH PLAIN).";
const TRY_LATER: &str = "-ERR [SYS/TEMP] The server cannot check your login right now. Please try again later.";
const STORE_TROUBLE: &str = "-ERR [SYS/TEMP] Your mailbox cannot be read right now. Please try again later.";

/// Serves one accepted connection until it ends.
pub(crate) async fn run(
    server: Arc<Pop3Server>,
    tcp: TcpStream,
    peer: SocketAddr,
    slot: Option<ConnectionGuard>,
    transport: Transport,
) {
    let limits = server.limits;
    let stream = match transport {
        Transport::Starttls => MaybeTls::Plain(tcp),
        Transport::ImplicitTls => match timeout(limits.handshake_timeout, server.tls.accept(tcp)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return tracing::debug!(remote = %peer, error = %e, "pop3s: TLS handshake failed"),
            Err(_) => return tracing::debug!(remote = %peer, "pop3s: TLS handshake timed out"),
        },
    };
    let mut conn = Conn::new(stream, limits);
    if slot.is_none() {
        conn.out.extend_from_slice(TOO_MANY_CONNECTIONS);
        let _ = conn.flush().await;
        conn.close().await;
        return;
    }
    let mut session = Session {
        server,
        conn,
        remote_ip: peer.ip(),
        state: State::Authorization { user: None },
        auth_failures: 0,
        bad_commands: 0,
    };
    match session.serve().await {
        Ok(()) | Err(Pop3Error::Closed) => {}
        Err(e) => tracing::debug!(remote = %peer, error = %e, "pop3 session ended"),
    }
    session.conn.close().await;
    drop(slot);
}

enum State {
    /// RFC 1939 §4; `user` is the name given with USER, waiting for PASS.
    Authorization { user: Option<String> },
    /// RFC 1939 §5; the lock lives as long as the maildrop is open.
    Transaction { maildrop: Maildrop, _lock: Lock },
}

/// Whether the session goes on after a command.
enum Flow {
    Continue,
    Close,
}

struct Session {
    server: Arc<Pop3Server>,
    conn: Conn,
    remote_ip: IpAddr,
    state: State,
    auth_failures: u32,
    bad_commands: u32,
}

impl Session {
    async fn serve(&mut self) -> Result<(), Pop3Error> {
        // RFC 1939 §4: the greeting. No APOP timestamp: APOP is not offered.
        self.conn.reply(&format!("+OK {} POP3 server ready", self.server.hostname));
        loop {
            let line = match self.conn.read_line().await {
                Ok(line) => line,
                Err(Pop3Error::LineTooLong(n)) => {
                    self.conn.reply("-ERR That command line is too long. Closing the connection.");
                    self.conn.flush().await?;
                    return Err(Pop3Error::LineTooLong(n));
                }
                Err(Pop3Error::Idle) => {
                    // RFC 1939 §3: an idle session is closed without entering UPDATE.
                    self.conn.reply("-ERR No command for too long. Closing the connection.");
                    self.conn.flush().await?;
                    return Err(Pop3Error::Idle);
                }
                Err(e) => return Err(e),
            };
            let command = match Command::parse(&line) {
                Ok(command) => command,
                Err(e) => {
                    self.bad_commands += 1;
                    match e {
                        ParseError::Unknown => self.conn.reply("-ERR Unknown command."),
                        ParseError::Syntax(hint) => self.conn.reply(&format!("-ERR Syntax error: {hint}.")),
                    }
                    if self.bad_commands >= self.server.limits.max_bad_commands {
                        self.conn.reply("-ERR Too many unknown commands. Closing the connection.");
                        return Ok(());
                    }
                    continue;
                }
            };
            if let Flow::Close = self.step(command).await? {
                return Ok(());
            }
        }
    }

    async fn step(&mut self, command: Command) -> Result<Flow, Pop3Error> {
        match command {
            Command::Capa => self.capa(),
            Command::Quit => return self.quit().await,
            Command::Noop => match self.state {
                State::Transaction { .. } => self.conn.reply("+OK"),
                State::Authorization { .. } => self.conn.reply(LOG_IN_FIRST),
            },
            Command::Stls => return self.stls().await,
            Command::User(name) => match &mut self.state {
                State::Authorization { user } => {
                    *user = Some(name);
                    self.conn.reply("+OK Now send your password with PASS.");
                }
                State::Transaction { .. } => self.conn.reply("-ERR You are already logged in."),
            },
            Command::Pass(secret) => match &mut self.state {
                State::Authorization { user } => match user.take() {
                    Some(login) => return self.login(&login, &secret, Mechanism::UserPass).await,
                    None => self.conn.reply("-ERR Send USER with your address first."),
                },
                State::Transaction { .. } => self.conn.reply("-ERR You are already logged in."),
            },
            Command::Auth { mechanism, initial } => return self.auth(mechanism, initial).await,
            other => match &mut self.state {
                State::Authorization { .. } => self.conn.reply(LOG_IN_FIRST),
                State::Transaction { maildrop, .. } => {
                    return transaction(&self.server, &mut self.conn, maildrop, other).await;
                }
            },
        }
        Ok(Flow::Continue)
    }

    /// Whether credentials may be offered on this connection as it is now.
    fn login_offered(&self) -> bool {
        self.conn.tls.is_some() || self.server.auth.plaintext_auth_allowed()
    }

    /// RFC 2449 §5. USER and SASL are listed only where a login could succeed (RFC 2595
    /// §4: not before STLS when plaintext logins are off).
    fn capa(&mut self) {
        let mut out = String::from("+OK Capability list follows\r\n");
        if let State::Authorization { .. } = self.state {
            if self.login_offered() {
                out.push_str("USER\r\nSASL PLAIN\r\n");
            }
            if self.conn.tls.is_none() {
                out.push_str("STLS\r\n");
            }
        }
        out.push_str("TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nIMPLEMENTATION Postfach\r\n.\r\n");
        self.conn.out.extend_from_slice(out.as_bytes());
    }

    /// RFC 2595 §4.
    async fn stls(&mut self) -> Result<Flow, Pop3Error> {
        match self.state {
            State::Transaction { .. } => self.conn.reply("-ERR STLS is only possible before logging in."),
            State::Authorization { .. } if self.conn.tls.is_some() => {
                self.conn.reply("-ERR This connection is already encrypted.")
            }
            State::Authorization { .. } => {
                self.conn.reply("+OK Begin TLS negotiation");
                self.conn.upgrade(&self.server.tls).await?;
                // Nothing learnt before TLS counts afterwards.
                self.state = State::Authorization { user: None };
            }
        }
        Ok(Flow::Continue)
    }

    /// RFC 5034 §4: AUTH with or without an initial response; only PLAIN (RFC 4616).
    async fn auth(&mut self, mechanism: Option<String>, initial: Option<String>) -> Result<Flow, Pop3Error> {
        if let State::Transaction { .. } = self.state {
            self.conn.reply("-ERR You are already logged in.");
            return Ok(Flow::Continue);
        }
        let Some(mechanism) = mechanism else {
            // The bare AUTH that some clients send to list the mechanisms.
            self.conn.out.extend_from_slice(b"+OK\r\nPLAIN\r\n.\r\n");
            return Ok(Flow::Continue);
        };
        if mechanism != "PLAIN" {
            self.conn.reply("-ERR This server offers AUTH PLAIN only (or USER and PASS).");
            return Ok(Flow::Continue);
        }
        let response = match initial {
            // RFC 5034 §4: "=" is an empty initial response.
            Some(initial) if initial == "=" => String::new(),
            Some(initial) => initial,
            None => {
                self.conn.reply("+ ");
                let line = self.conn.read_line().await?;
                String::from_utf8_lossy(&line).into_owned()
            }
        };
        if response.trim() == "*" {
            self.conn.reply("-ERR Authentication cancelled.");
            return Ok(Flow::Continue);
        }
        match decode_plain(&response) {
            Some(Plain { authzid, authcid, password }) if authzid.is_empty() || authzid == authcid => {
                self.login(&authcid, &password, Mechanism::Plain).await
            }
            Some(_) => {
                self.conn.reply("-ERR [AUTH] Logging in on behalf of another user is not supported.");
                Ok(self.failed())
            }
            None => {
                self.conn.reply("-ERR [AUTH] The PLAIN credentials could not be decoded.");
                Ok(self.failed())
            }
        }
    }

    /// Counts a failed login; closes the session after too many.
    fn failed(&mut self) -> Flow {
        self.auth_failures += 1;
        if self.auth_failures >= self.server.limits.max_auth_failures { Flow::Close } else { Flow::Continue }
    }

    /// The one path into the mailbox: authenticate, lock, take the snapshot.
    async fn login(&mut self, login: &str, secret: &Secret<String>, mechanism: Mechanism) -> Result<Flow, Pop3Error> {
        let connection = Connection { remote_ip: self.remote_ip, tls: self.conn.tls.clone() };
        let attempt = Attempt { service: Service::Pop3, mechanism, login, secret, connection: &connection };
        let id = match self.server.auth.authenticate(attempt).await {
            Ok(Principal::Mailbox { id, .. }) => id,
            // The policy lets only mailboxes use POP3; kept total anyway.
            Ok(Principal::Account { .. }) => {
                self.conn.reply(refusal_text(Refusal::BadCredentials));
                return Ok(self.failed());
            }
            Err(AuthError::Refused(refusal)) => {
                self.conn.reply(refusal_text(refusal));
                return Ok(self.failed());
            }
            Err(e) => {
                tracing::warn!(error = %e, "pop3: the login could not be checked");
                self.conn.reply(TRY_LATER);
                return Ok(Flow::Continue);
            }
        };
        // RFC 1939 §4 and RFC 2449 §8.1.2: one session per maildrop.
        let Some(lock) = self.server.locks.try_lock(id) else {
            self.conn.reply(
                "-ERR [IN-USE] Another mail program is connected to this mailbox right now. \
                 Close it, or try again in a few minutes.",
            );
            return Ok(Flow::Continue);
        };
        match open_maildrop(&self.server, id).await {
            Ok(maildrop) => {
                let (count, size) = maildrop.stat();
                self.conn.reply(&format!("+OK Logged in, {count} messages ({size} octets)."));
                tracing::debug!(mailbox = id, messages = count, "pop3 login");
                self.state = State::Transaction { maildrop, _lock: lock };
            }
            Err(e) => {
                tracing::warn!(mailbox = id, error = %e, "pop3: cannot open the inbox");
                self.conn.reply(STORE_TROUBLE);
            }
        }
        Ok(Flow::Continue)
    }

    /// RFC 1939 §6: QUIT in TRANSACTION enters UPDATE and removes the messages marked
    /// deleted, all in one store transaction.
    async fn quit(&mut self) -> Result<Flow, Pop3Error> {
        let State::Transaction { maildrop, .. } = &self.state else {
            self.conn.reply("+OK Goodbye.");
            return Ok(Flow::Close);
        };
        let uids = maildrop.deleted_uids();
        if uids.is_empty() {
            self.conn.reply("+OK Goodbye.");
            return Ok(Flow::Close);
        }
        let store = &self.server.store;
        match store.remove_messages(maildrop.mailbox_id, maildrop.folder_id, &uids).await {
            Ok(expunged) => {
                for orphan in expunged.orphaned_blobs.iter().filter_map(|b| BlobId::parse(b).ok()) {
                    if let Err(e) = self.server.blobs.delete(&orphan).await {
                        // The upkeep sweep removes it later.
                        tracing::warn!(error = %e, "pop3: removing a deleted message's file failed");
                    }
                }
                self.conn.reply(&format!("+OK Goodbye, {} messages deleted.", expunged.uids.len()));
            }
            Err(e) => {
                tracing::warn!(mailbox = maildrop.mailbox_id, error = %e, "pop3: deleting messages at QUIT failed");
                self.conn.reply(
                    "-ERR [SYS/TEMP] The messages could not be deleted and are still on the server. \
                     Please try again later.",
                );
            }
        }
        Ok(Flow::Close)
    }
}

/// The TRANSACTION-state commands (RFC 1939 §5, §7).
async fn transaction(
    server: &Pop3Server,
    conn: &mut Conn,
    maildrop: &mut Maildrop,
    command: Command,
) -> Result<Flow, Pop3Error> {
    match command {
        Command::Stat => {
            let (count, size) = maildrop.stat();
            conn.reply(&format!("+OK {count} {size}"));
        }
        Command::List(None) => {
            let (count, size) = maildrop.stat();
            let mut out = format!("+OK {count} messages ({size} octets)\r\n");
            for (n, entry) in maildrop.live() {
                out.push_str(&format!("{n} {}\r\n", entry.size));
            }
            out.push_str(".\r\n");
            conn.out.extend_from_slice(out.as_bytes());
        }
        Command::List(Some(n)) => match maildrop.get(n) {
            Ok(entry) => conn.reply(&format!("+OK {} {}", n.0, entry.size)),
            Err(e) => conn.reply(&no_message(n, e)),
        },
        Command::Uidl(None) => {
            let mut out = String::from("+OK Unique-ID listing follows\r\n");
            for (n, entry) in maildrop.live() {
                out.push_str(&format!("{n} {}\r\n", maildrop.unique_id(entry)));
            }
            out.push_str(".\r\n");
            conn.out.extend_from_slice(out.as_bytes());
        }
        Command::Uidl(Some(n)) => match maildrop.get(n) {
            Ok(entry) => conn.reply(&format!("+OK {} {}", n.0, maildrop.unique_id(entry))),
            Err(e) => conn.reply(&no_message(n, e)),
        },
        Command::Dele(n) => match maildrop.delete(n) {
            Ok(()) => conn.reply(&format!("+OK Message {} deleted.", n.0)),
            Err(e) => conn.reply(&no_message(n, e)),
        },
        Command::Rset => {
            maildrop.reset();
            let (count, size) = maildrop.stat();
            conn.reply(&format!("+OK {count} messages ({size} octets)."));
        }
        Command::Retr(n) => match maildrop.get(n) {
            Ok(entry) => return retr(server, conn, entry).await,
            Err(e) => conn.reply(&no_message(n, e)),
        },
        Command::Top(n, lines) => match maildrop.get(n) {
            Ok(entry) => match read_message(server, entry).await {
                Some(bytes) => {
                    conn.out.extend_from_slice(b"+OK\r\n");
                    let mut stuffer = Stuffer::default();
                    stuffer.feed(top(&bytes, lines), &mut conn.out);
                    stuffer.finish(&mut conn.out);
                }
                None => conn.reply(STORE_TROUBLE),
            },
            Err(e) => conn.reply(&no_message(n, e)),
        },
        Command::Noop => conn.reply("+OK"),
        // Handled by the session before it gets here.
        Command::Capa | Command::Quit | Command::Stls | Command::User(_) | Command::Pass(_) | Command::Auth { .. } => {
            conn.reply("-ERR You are already logged in.")
        }
    }
    Ok(Flow::Continue)
}

/// RFC 1939 §7 RETR: the whole message, dot-stuffed; large messages are streamed from
/// their file in [`CHUNK`]-sized pieces.
async fn retr(server: &Pop3Server, conn: &mut Conn, entry: &Entry) -> Result<Flow, Pop3Error> {
    if entry.size <= READ_WHOLE {
        match read_message(server, entry).await {
            Some(bytes) => {
                conn.out.extend_from_slice(format!("+OK {} octets\r\n", bytes.len()).as_bytes());
                let mut stuffer = Stuffer::default();
                stuffer.feed(&bytes, &mut conn.out);
                stuffer.finish(&mut conn.out);
            }
            None => conn.reply(STORE_TROUBLE),
        }
        return Ok(Flow::Continue);
    }
    let file = match BlobId::parse(&entry.blob) {
        Ok(id) => tokio::fs::File::open(server.blobs.path(&id)).await,
        Err(e) => Err(std::io::Error::other(e)),
    };
    let mut file = match file {
        Ok(file) => file,
        Err(e) => {
            tracing::warn!(uid = entry.uid, error = %e, "pop3: cannot open a message");
            conn.reply(STORE_TROUBLE);
            return Ok(Flow::Continue);
        }
    };
    conn.out.extend_from_slice(format!("+OK {} octets\r\n", entry.size).as_bytes());
    let mut stuffer = Stuffer::default();
    let mut chunk = vec![0u8; CHUNK];
    loop {
        // Once the response has started, a read error can only end the connection.
        let n = file.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        stuffer.feed(&chunk[..n], &mut conn.out);
        if conn.out.len() >= CHUNK {
            conn.flush().await?;
        }
    }
    stuffer.finish(&mut conn.out);
    Ok(Flow::Continue)
}

/// Messages up to this size are read right here instead of on the blocking pool: they
/// come from the page cache in microseconds, less than the hand-off to another thread
/// costs, and POP3 pays that cost once per RETR round trip.
const READ_IN_PLACE: u64 = 64 * 1024;

async fn read_message(server: &Pop3Server, entry: &Entry) -> Option<Vec<u8>> {
    let read = match BlobId::parse(&entry.blob) {
        Ok(id) if entry.size <= READ_IN_PLACE => {
            let path = server.blobs.path(&id);
            std::fs::read(&path).map_err(|source| postfach_blob::BlobError::Io { path, source })
        }
        Ok(id) => server.blobs.get(&id).await,
        Err(e) => Err(e),
    };
    read.map_err(|e| tracing::warn!(uid = entry.uid, error = %e, "pop3: cannot read a message")).ok()
}

async fn open_maildrop(server: &Pop3Server, id: MailboxId) -> Result<Maildrop, postfach_store::StoreError> {
    let Some(folder) = server.store.folder(id, "INBOX").await? else {
        return Err(postfach_store::StoreError::NotFound("INBOX".into()));
    };
    let entries = server
        .store
        .messages(id, folder.id)
        .await?
        .into_iter()
        .map(|m| Entry { uid: m.uid, size: m.size, blob: m.blob, deleted: false })
        .collect();
    Ok(Maildrop::new(id, folder.id, folder.uidvalidity, entries))
}

fn no_message(n: MsgNum, why: NoMessage) -> String {
    match why {
        NoMessage::Unknown => format!("-ERR There is no message {}.", n.0),
        NoMessage::Deleted => format!("-ERR Message {} is already deleted.", n.0),
    }
}

/// The reply to a refused login (RFC 2449 §8.1 and RFC 3206 response codes): what
/// happened and what the user can do, without internals.
pub(crate) fn refusal_text(refusal: Refusal) -> &'static str {
    match refusal {
        Refusal::ServiceNotAllowed => {
            "-ERR [AUTH] POP3 is switched off for this mailbox, to protect the mail kept on the server. \
             Change the mailbox's access mode in the customer panel (or ask your provider)."
        }
        Refusal::TlsRequired => {
            "-ERR [AUTH] This mailbox accepts encrypted logins only: turn on STLS (STARTTLS) in your mail \
             program, or use POP3 over SSL/TLS on port 995."
        }
        Refusal::Throttled => "-ERR [SYS/TEMP] Too many failed logins. Please try again later.",
        Refusal::BadCredentials => "-ERR [AUTH] Wrong address or password.",
        Refusal::Disabled => "-ERR [AUTH] This mailbox is disabled. Please ask your provider.",
    }
}

/// The three parts of a SASL PLAIN response (RFC 4616 §2).
struct Plain {
    authzid: String,
    authcid: String,
    password: Secret<String>,
}

fn decode_plain(response: &str) -> Option<Plain> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(response.trim()).ok()?;
    let mut parts = bytes.split(|&b| b == 0);
    let (authzid, authcid, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || authcid.is_empty() {
        return None;
    }
    Some(Plain {
        authzid: String::from_utf8(authzid.to_vec()).ok()?,
        authcid: String::from_utf8(authcid.to_vec()).ok()?,
        password: Secret::new(String::from_utf8(password.to_vec()).ok()?),
    })
}

/// The connection with its input and output buffers.
struct Conn {
    io: Option<MaybeTls>,
    /// What TLS negotiated, `None` while plaintext.
    tls: Option<TlsInfo>,
    input: Vec<u8>,
    /// Where the unread input starts.
    pos: usize,
    out: Vec<u8>,
    limits: Limits,
}

impl Conn {
    fn new(io: MaybeTls, limits: Limits) -> Self {
        let tls = io.tls_info();
        Self { io: Some(io), tls, input: Vec::with_capacity(1024), pos: 0, out: Vec::with_capacity(4096), limits }
    }

    /// Queues a one-line reply (CRLF added).
    fn reply(&mut self, line: &str) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// The next line without its line end. Writes the queued replies first if the client
    /// has to be waited for.
    async fn read_line(&mut self) -> Result<Vec<u8>, Pop3Error> {
        let max = self.limits.max_line;
        loop {
            if let Some(i) = memchr(b'\n', &self.input[self.pos..]) {
                let mut line = &self.input[self.pos..self.pos + i];
                if let Some(stripped) = line.strip_suffix(b"\r") {
                    line = stripped;
                }
                if i + 1 > max {
                    return Err(Pop3Error::LineTooLong(max));
                }
                let line = line.to_vec();
                self.pos += i + 1;
                return Ok(line);
            }
            if self.input.len() - self.pos > max {
                return Err(Pop3Error::LineTooLong(max));
            }
            self.input.drain(..self.pos);
            self.pos = 0;
            self.flush().await?;
            let io = self.io.as_mut().ok_or(Pop3Error::Closed)?;
            let mut chunk = [0u8; 4096];
            let n = timeout(self.limits.idle_timeout, io.read(&mut chunk)).await.map_err(|_| Pop3Error::Idle)??;
            if n == 0 {
                return Err(Pop3Error::Closed);
            }
            self.input.extend_from_slice(&chunk[..n]);
        }
    }

    /// Writes the queued replies.
    async fn flush(&mut self) -> Result<(), Pop3Error> {
        if self.out.is_empty() {
            return Ok(());
        }
        let io = self.io.as_mut().ok_or(Pop3Error::Closed)?;
        let write = async {
            io.write_all(&self.out).await?;
            io.flush().await
        };
        timeout(self.limits.idle_timeout, write).await.map_err(|_| Pop3Error::Idle)??;
        self.out.clear();
        // After a large message, give the memory back: sessions mostly sit idle.
        if self.out.capacity() > 4 * CHUNK {
            self.out.shrink_to(64 * 1024);
        }
        Ok(())
    }

    /// STLS: answer, drop whatever plaintext the client sent after the command
    /// (RFC 2595 §4, like RFC 3207 §4.2), and run the handshake on the raw socket.
    async fn upgrade(&mut self, acceptor: &TlsAcceptor) -> Result<(), Pop3Error> {
        self.flush().await?;
        if self.pos < self.input.len() {
            tracing::debug!(bytes = self.input.len() - self.pos, "pop3: discarding input sent before TLS");
        }
        self.input.clear();
        self.pos = 0;
        let plain = self.io.take().ok_or(Pop3Error::Closed)?;
        let tls =
            timeout(self.limits.handshake_timeout, acceptor.upgrade(plain)).await.map_err(|_| Pop3Error::Idle)??;
        self.tls = tls.tls_info();
        self.io = Some(tls);
        Ok(())
    }

    /// Writes what is left and closes (TLS close_notify included).
    async fn close(&mut self) {
        let _ = self.flush().await;
        if let Some(mut io) = self.io.take() {
            let _ = timeout(std::time::Duration::from_secs(5), io.shutdown()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn plain_responses() {
        let p = decode_plain(&b64(b"\0max@acme.example\0secret words")).expect("valid");
        assert_eq!((p.authzid.as_str(), p.authcid.as_str()), ("", "max@acme.example"));
        assert_eq!(p.password.expose(), "secret words");
        let p = decode_plain(&b64(b"max@acme.example\0max@acme.example\0pw")).expect("valid");
        assert_eq!(p.authzid, p.authcid);
        assert!(decode_plain("not base64!").is_none());
        assert!(decode_plain(&b64(b"only\0two")).is_none());
        assert!(decode_plain(&b64(b"a\0b\0c\0d")).is_none());
        assert!(decode_plain(&b64(b"\0\0pw")).is_none());
        assert!(decode_plain("").is_none());
    }

    #[test]
    fn refusals_carry_response_codes_and_say_what_to_do() {
        assert!(refusal_text(Refusal::ServiceNotAllowed).starts_with("-ERR [AUTH] POP3 is switched off"));
        assert!(refusal_text(Refusal::TlsRequired).contains("STLS"));
        assert!(refusal_text(Refusal::Throttled).starts_with("-ERR [SYS/TEMP]"));
        for r in [Refusal::BadCredentials, Refusal::Disabled, Refusal::TlsRequired, Refusal::ServiceNotAllowed] {
            assert!(refusal_text(r).starts_with("-ERR [AUTH] "));
        }
        for r in [
            Refusal::BadCredentials,
            Refusal::Disabled,
            Refusal::TlsRequired,
            Refusal::ServiceNotAllowed,
            Refusal::Throttled,
        ] {
            assert!(!refusal_text(r).contains('\n'));
        }
    }
}
