//! One POP3 connection: the AUTHORIZATION, TRANSACTION and UPDATE states of RFC 1939 §3,
//! with STLS (RFC 2595 §4) and SASL PLAIN (RFC 5034) in AUTHORIZATION.
//!
//! Replies are collected in an output buffer that is written when the session would wait
//! for the client, so a pipelined batch of commands (RFC 2449 §6.6) is answered with one
//! write, and a message fetched with RETR goes out in large chunks.
//!
//! Every login attempt, whatever the connection and the configuration, goes through the
//! one authentication gate ([`postfach_auth::Authenticator`]): it decides (access mode,
//! TLS rule, throttling) and records the attempt in the login log. Without TLS, when the
//! operator allows no plaintext logins, no password is asked for: `USER` and `AUTH PLAIN`
//! without an initial response are refused at once (and recorded). The connection is
//! `postfach_net::Conn`.

use std::net::IpAddr;
use std::sync::Arc;

use postfach_auth::sasl::{Exchange, SaslMechanism, Step};
use postfach_auth::{Attempt, AuthError, Connection, Principal};
use postfach_net::{Conn, Line};
use postfach_policy::PublicRefusal;
use postfach_types::{MailboxId, Mechanism, Secret, Service};
use tokio::io::AsyncReadExt;

use crate::command::{Command, MsgNum, ParseError};
use crate::maildrop::{Entry, Lock, Maildrop, NoMessage};
use crate::stuffing::{Stuffer, TopCut};
use crate::{Pop3Error, Pop3Server};

/// Messages up to this size are read in one go; larger ones are streamed.
const READ_WHOLE: u64 = 1024 * 1024;
/// Chunk size when streaming a message, and the output size that triggers a write.
const CHUNK: usize = 256 * 1024;

const LOG_IN_FIRST: &str = "-ERR Log in first (USER and PASS, or AUTH PLAIN).";
const TRY_LATER: &str = "-ERR [SYS/TEMP] The server cannot check your login right now. Please try again later.";
const STORE_TROUBLE: &str = "-ERR [SYS/TEMP] Your mailbox cannot be read right now. Please try again later.";

/// Serves one admitted connection until it ends.
pub(crate) async fn run(server: Arc<Pop3Server>, mut conn: Conn) {
    conn.set_login_deadline(Some(server.limits.login_timeout));
    let remote_ip = conn.peer().ip();
    let mut session = Session {
        server,
        conn,
        remote_ip,
        state: State::Authorization { user: None },
        auth_failures: 0,
        bad_commands: 0,
        principal: None,
        revocations_seen: 0,
    };
    session.revocations_seen = session.server.auth.revocations_seen();
    match session.serve().await {
        Ok(()) | Err(Pop3Error::Closed) => {}
        Err(e) => tracing::debug!(remote = %remote_ip, error = %e, "pop3 session ended"),
    }
    session.conn.close().await;
}

/// Queues a one-line reply (CRLF added).
fn reply(conn: &mut Conn, line: &str) {
    conn.queue(line.as_bytes());
    conn.queue(b"\r\n");
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
    /// Who logged in, with the credential used (an app password is checked for
    /// revocation before every command).
    principal: Option<Principal>,
    /// The revocation count this session last looked at (`Authenticator::still_valid`).
    revocations_seen: u64,
}

impl Session {
    async fn serve(&mut self) -> Result<(), Pop3Error> {
        // RFC 1939 §4: the greeting. No APOP timestamp: APOP is not offered.
        reply(&mut self.conn, &format!("+OK {} POP3 server ready", self.server.hostname));
        loop {
            let line = match self.read_line().await {
                Ok(line) => line,
                Err(Pop3Error::LineTooLong(n)) => {
                    reply(&mut self.conn, "-ERR That command line is too long. Closing the connection.");
                    self.conn.flush().await?;
                    return Err(Pop3Error::LineTooLong(n));
                }
                Err(Pop3Error::Idle) => {
                    // RFC 1939 §3: an idle session is closed without entering UPDATE.
                    reply(&mut self.conn, "-ERR No command for too long. Closing the connection.");
                    self.conn.flush().await?;
                    return Err(Pop3Error::Idle);
                }
                Err(Pop3Error::LoginTimeout) => {
                    reply(&mut self.conn, "-ERR You did not log in in time. Closing the connection.");
                    self.conn.flush().await?;
                    return Err(Pop3Error::LoginTimeout);
                }
                Err(e) => return Err(e),
            };
            let command = match Command::parse(&line) {
                Ok(command) => command,
                Err(e) => {
                    self.bad_commands += 1;
                    match e {
                        ParseError::Unknown => reply(&mut self.conn, "-ERR Unknown command."),
                        ParseError::Syntax(hint) => reply(&mut self.conn, &format!("-ERR Syntax error: {hint}.")),
                    }
                    if self.bad_commands >= self.server.limits.max_bad_commands {
                        reply(&mut self.conn, "-ERR Too many unknown commands. Closing the connection.");
                        return Ok(());
                    }
                    continue;
                }
            };
            if !self.credential_still_valid().await {
                // Closed without entering UPDATE: nothing marked deleted is removed.
                reply(&mut self.conn, "-ERR The app password of this connection was revoked. Closing the connection.");
                self.conn.flush().await?;
                return Ok(());
            }
            let (name, started) = (command.name(), std::time::Instant::now());
            let flow = self.step(command).await?;
            postfach_metrics::command(postfach_metrics::Protocol::Pop3, name, started.elapsed());
            if let Flow::Close = flow {
                return Ok(());
            }
        }
    }

    /// False once the app password this session logged in with was revoked.
    async fn credential_still_valid(&mut self) -> bool {
        let Some(principal) = &self.principal else { return true };
        self.server.auth.still_valid(principal, &mut self.revocations_seen).await
    }

    async fn step(&mut self, command: Command) -> Result<Flow, Pop3Error> {
        match command {
            Command::Capa => self.capa(),
            Command::Quit => return self.quit().await,
            Command::Noop => match self.state {
                State::Transaction { .. } => reply(&mut self.conn, "+OK"),
                State::Authorization { .. } => reply(&mut self.conn, LOG_IN_FIRST),
            },
            Command::Stls => return self.stls().await,
            // Never ask for a password that would cross the network in plaintext.
            Command::User(name) if !self.login_offered() && matches!(self.state, State::Authorization { .. }) => {
                let connection = self.connection();
                let refused = self
                    .server
                    .auth
                    .refuse_unencrypted(Service::Pop3, Mechanism::UserPass, Some(&name), &connection)
                    .await;
                return self.refused(&refused);
            }
            Command::User(name) => match &mut self.state {
                State::Authorization { user } => {
                    *user = Some(name);
                    reply(&mut self.conn, "+OK Now send your password with PASS.");
                }
                State::Transaction { .. } => reply(&mut self.conn, "-ERR You are already logged in."),
            },
            Command::Pass(secret) => match &mut self.state {
                State::Authorization { user } => match user.take() {
                    Some(login) => return self.login(&login, &secret, Mechanism::UserPass).await,
                    None => reply(&mut self.conn, "-ERR Send USER with your address first."),
                },
                State::Transaction { .. } => reply(&mut self.conn, "-ERR You are already logged in."),
            },
            Command::Auth { mechanism, initial } => return self.auth(mechanism, initial).await,
            other => match &mut self.state {
                State::Authorization { .. } => reply(&mut self.conn, LOG_IN_FIRST),
                State::Transaction { maildrop, .. } => {
                    return transaction(&self.server, &mut self.conn, maildrop, other).await;
                }
            },
        }
        Ok(Flow::Continue)
    }

    /// Whether credentials may be offered on this connection as it is now.
    fn login_offered(&self) -> bool {
        self.conn.is_tls() || self.server.auth.plaintext_auth_allowed()
    }

    fn connection(&self) -> Connection {
        Connection { remote_ip: self.remote_ip, tls: self.conn.tls_info().cloned() }
    }

    /// The next command line without its line end; the idle timeout is shorter before login.
    async fn read_line(&mut self) -> Result<Vec<u8>, Pop3Error> {
        let limits = self.server.limits;
        let timeout = match self.state {
            State::Authorization { .. } => limits.login_timeout.min(limits.idle_timeout),
            State::Transaction { .. } => limits.idle_timeout,
        };
        match self.conn.read_line(limits.max_line, timeout).await {
            Ok(Line::Text(mut line)) => {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                Ok(line)
            }
            Ok(Line::TooLong) => Err(Pop3Error::LineTooLong(limits.max_line)),
            Err(ended) => Err(ended.into()),
        }
    }

    /// RFC 2449 §5. USER and SASL are listed only where a login could succeed (RFC 2595
    /// §4: not before STLS when plaintext logins are off).
    fn capa(&mut self) {
        let mut out = String::from("+OK Capability list follows\r\n");
        if let State::Authorization { .. } = self.state {
            if self.login_offered() {
                out.push_str("USER\r\nSASL PLAIN\r\n");
            }
            if self.conn.can_start_tls() {
                out.push_str("STLS\r\n");
            }
        }
        out.push_str("TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nIMPLEMENTATION Postfach\r\n.\r\n");
        self.conn.queue(out.as_bytes());
    }

    /// RFC 2595 §4.
    async fn stls(&mut self) -> Result<Flow, Pop3Error> {
        match self.state {
            State::Transaction { .. } => reply(&mut self.conn, "-ERR STLS is only possible before logging in."),
            State::Authorization { .. } if !self.conn.can_start_tls() => {
                reply(&mut self.conn, "-ERR This connection is already encrypted.")
            }
            State::Authorization { .. } => {
                reply(&mut self.conn, "+OK Begin TLS negotiation");
                self.conn.start_tls().await.map_err(|_| Pop3Error::Closed)?;
                // Nothing learnt before TLS counts afterwards.
                self.state = State::Authorization { user: None };
            }
        }
        Ok(Flow::Continue)
    }

    /// RFC 5034 §4: AUTH with or without an initial response; PLAIN (RFC 4616) only, the
    /// exchange of `postfach_auth::sasl` in `+` lines.
    async fn auth(&mut self, mechanism: Option<String>, initial: Option<String>) -> Result<Flow, Pop3Error> {
        if let State::Transaction { .. } = self.state {
            reply(&mut self.conn, "-ERR You are already logged in.");
            return Ok(Flow::Continue);
        }
        let Some(mechanism) = mechanism else {
            // The bare AUTH that some clients send to list the mechanisms: the same list
            // as CAPA's SASL line, so empty where no login is offered (RFC 2595 §4).
            let list: &[u8] = if self.login_offered() { b"+OK\r\nPLAIN\r\n.\r\n" } else { b"+OK\r\n.\r\n" };
            self.conn.queue(list);
            return Ok(Flow::Continue);
        };
        let Some(mechanism @ SaslMechanism::Plain) = SaslMechanism::parse(&mechanism) else {
            reply(&mut self.conn, "-ERR This server offers AUTH PLAIN only (or USER and PASS).");
            return Ok(Flow::Continue);
        };
        let (mut exchange, mut step) =
            Exchange::start(mechanism, initial.as_ref().map(|i| i.as_bytes()), self.login_offered());
        let end = loop {
            match step {
                Step::End(end) => break end,
                Step::Challenge(challenge) => {
                    reply(&mut self.conn, &format!("+ {challenge}"));
                    let line = self.read_line().await?;
                    step = exchange.respond(&line);
                }
            }
        };
        let connection = self.connection();
        let gate = self.server.auth.clone();
        match gate.finish_sasl(Service::Pop3, mechanism, end, &connection).await {
            None => {
                reply(&mut self.conn, "-ERR Authentication cancelled.");
                Ok(Flow::Continue)
            }
            Some(result) => self.logged_in(result).await,
        }
    }

    /// The reply to a refused login; counts it, and closes the session after too many.
    fn refused(&mut self, error: &AuthError) -> Result<Flow, Pop3Error> {
        match error.refusal() {
            Some(refusal) => {
                let text = refusal_text(refusal.public(self.conn.is_tls()));
                reply(&mut self.conn, text);
                Ok(self.failed())
            }
            None => {
                tracing::warn!(error = %error, "pop3: the login could not be checked");
                reply(&mut self.conn, TRY_LATER);
                Ok(Flow::Continue)
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
        let connection = self.connection();
        let attempt = Attempt { service: Service::Pop3, mechanism, login, secret, connection: &connection };
        let result = self.server.auth.authenticate(attempt).await;
        self.logged_in(result).await
    }

    /// The gate's answer to a login: lock the maildrop and take the snapshot, or answer
    /// the refusal.
    async fn logged_in(&mut self, result: Result<Principal, AuthError>) -> Result<Flow, Pop3Error> {
        let (id, principal) = match result {
            Ok(principal) if let Some(id) = principal.mailbox_id() => (id, principal),
            // The policy lets only mailboxes use POP3; kept total anyway.
            Ok(_) => {
                let text = refusal_text(PublicRefusal::Failed { encrypted: self.conn.is_tls() });
                reply(&mut self.conn, text);
                return Ok(self.failed());
            }
            Err(e) => return self.refused(&e),
        };
        // RFC 1939 §4 and RFC 2449 §8.1.2: one session per maildrop.
        let lock = match self.server.locks.try_lock(id).await {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                reply(
                    &mut self.conn,
                    "-ERR [IN-USE] Another mail program is connected to this mailbox right now. \
                     Close it, or try again in a few minutes.",
                );
                return Ok(Flow::Continue);
            }
            Err(e) => {
                tracing::warn!(mailbox = id.get(), error = %e, "pop3: cannot lock the maildrop");
                reply(&mut self.conn, STORE_TROUBLE);
                return Ok(Flow::Continue);
            }
        };
        match open_maildrop(&self.server, id).await {
            Ok(maildrop) => {
                let (count, size) = maildrop.stat();
                reply(&mut self.conn, &format!("+OK Logged in, {count} messages ({size} octets)."));
                tracing::debug!(mailbox = id.get(), messages = count, "pop3 login");
                self.state = State::Transaction { maildrop, _lock: lock };
                self.principal = Some(principal);
                self.conn.set_login_deadline(None);
            }
            Err(e) => {
                tracing::warn!(mailbox = id.get(), error = %e, "pop3: cannot open the inbox");
                reply(&mut self.conn, STORE_TROUBLE);
            }
        }
        Ok(Flow::Continue)
    }

    /// RFC 1939 §6: QUIT in TRANSACTION enters UPDATE and removes the messages marked
    /// deleted, all in one store transaction.
    async fn quit(&mut self) -> Result<Flow, Pop3Error> {
        let State::Transaction { maildrop, _lock: lock } = &self.state else {
            reply(&mut self.conn, "+OK Goodbye.");
            return Ok(Flow::Close);
        };
        let uids = maildrop.deleted_uids();
        if uids.is_empty() {
            reply(&mut self.conn, "+OK Goodbye.");
            return Ok(Flow::Close);
        }
        // Deleting relies on holding the maildrop alone: on every node, still now.
        if !lock.confirm().await {
            tracing::warn!(mailbox = maildrop.mailbox_id.get(), "pop3: the maildrop lock was lost; nothing deleted");
            reply(
                &mut self.conn,
                "-ERR [SYS/TEMP] The connection to your mailbox was interrupted; no messages were deleted. \
                 Please try again.",
            );
            return Ok(Flow::Close);
        }
        let store = &self.server.store;
        match store.remove_messages(maildrop.mailbox_id, maildrop.folder_id, &uids).await {
            // The files go with the upkeep sweep, after the grace period for IMAP sessions.
            Ok(expunged) => {
                reply(&mut self.conn, &format!("+OK Goodbye, {} messages deleted.", expunged.uids.len()));
            }
            Err(e) => {
                tracing::warn!(mailbox = maildrop.mailbox_id.get(), error = %e, "pop3: deleting messages at QUIT failed");
                reply(
                    &mut self.conn,
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
            reply(conn, &format!("+OK {count} {size}"));
        }
        Command::List(None) => {
            let (count, size) = maildrop.stat();
            let mut out = format!("+OK {count} messages ({size} octets)\r\n");
            for (n, entry) in maildrop.live() {
                out.push_str(&format!("{n} {}\r\n", entry.size));
            }
            out.push_str(".\r\n");
            conn.queue(out.as_bytes());
        }
        Command::List(Some(n)) => match maildrop.get(n) {
            Ok(entry) => reply(conn, &format!("+OK {} {}", n.0, entry.size)),
            Err(e) => reply(conn, &no_message(n, e)),
        },
        Command::Uidl(None) => {
            let mut out = String::from("+OK Unique-ID listing follows\r\n");
            for (n, entry) in maildrop.live() {
                out.push_str(&format!("{n} {}\r\n", maildrop.unique_id(entry)));
            }
            out.push_str(".\r\n");
            conn.queue(out.as_bytes());
        }
        Command::Uidl(Some(n)) => match maildrop.get(n) {
            Ok(entry) => reply(conn, &format!("+OK {} {}", n.0, maildrop.unique_id(entry))),
            Err(e) => reply(conn, &no_message(n, e)),
        },
        Command::Dele(n) => match maildrop.delete(n) {
            Ok(()) => reply(conn, &format!("+OK Message {} deleted.", n.0)),
            Err(e) => reply(conn, &no_message(n, e)),
        },
        Command::Rset => {
            maildrop.reset();
            let (count, size) = maildrop.stat();
            reply(conn, &format!("+OK {count} messages ({size} octets)."));
        }
        Command::Retr(n) => match maildrop.get(n) {
            Ok(entry) => return send(server, conn, entry, None).await,
            Err(e) => reply(conn, &no_message(n, e)),
        },
        Command::Top(n, lines) => match maildrop.get(n) {
            Ok(entry) => return send(server, conn, entry, Some(lines)).await,
            Err(e) => reply(conn, &no_message(n, e)),
        },
        Command::Noop => reply(conn, "+OK"),
        // Handled by the session before it gets here.
        Command::Capa | Command::Quit | Command::Stls | Command::User(_) | Command::Pass(_) | Command::Auth { .. } => {
            reply(conn, "-ERR You are already logged in.")
        }
    }
    Ok(Flow::Continue)
}

/// RFC 1939 §7 RETR (`top` is `None`: the whole message) and TOP (the header and the
/// first `top` body lines), dot-stuffed; large messages are streamed from their file in
/// [`CHUNK`]-sized pieces, so TOP of a large message costs no more memory than RETR.
async fn send(server: &Pop3Server, conn: &mut Conn, entry: &Entry, top: Option<u64>) -> Result<Flow, Pop3Error> {
    let status = |size: u64| match top {
        None => format!("+OK {size} octets\r\n"),
        Some(_) => "+OK\r\n".to_owned(),
    };
    let mut cut = top.map(TopCut::new);
    if entry.size <= READ_WHOLE {
        match read_message(server, entry).await {
            Some(bytes) => {
                conn.queue(status(bytes.len() as u64).as_bytes());
                let n = cut.as_mut().map_or(bytes.len(), |cut| cut.take(&bytes));
                let mut stuffer = Stuffer::default();
                stuffer.feed(&bytes[..n], conn.output());
                stuffer.finish(conn.output());
            }
            None => reply(conn, STORE_TROUBLE),
        }
        return Ok(Flow::Continue);
    }
    let file = server.blobs.reader(&entry.blob).await;
    let mut file = match file {
        Ok(file) => file,
        Err(e) => {
            tracing::warn!(uid = entry.uid, error = %e, "pop3: cannot open a message");
            reply(conn, STORE_TROUBLE);
            return Ok(Flow::Continue);
        }
    };
    conn.queue(status(entry.size).as_bytes());
    let mut stuffer = Stuffer::default();
    let mut chunk = vec![0u8; CHUNK];
    loop {
        // Once the response has started, a read error can only end the connection.
        let n = file.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        let n = cut.as_mut().map_or(n, |cut| cut.take(&chunk[..n]));
        stuffer.feed(&chunk[..n], conn.output());
        if conn.queued() >= CHUNK {
            conn.flush().await?;
        }
        if cut.as_ref().is_some_and(TopCut::is_done) {
            break;
        }
    }
    stuffer.finish(conn.output());
    Ok(Flow::Continue)
}

/// The message's bytes (small ones read in place from the filesystem: POP3 pays a
/// hand-off to another thread once per RETR round trip, which `get_sized` spares it).
async fn read_message(server: &Pop3Server, entry: &Entry) -> Option<Vec<u8>> {
    let read = server.blobs.get_sized(&entry.blob, entry.size).await;
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
/// happened and what the user can do, without internals, and never more than
/// [`postfach_policy::Refusal::public`] allows.
pub(crate) fn refusal_text(refusal: PublicRefusal) -> &'static str {
    match refusal {
        PublicRefusal::ServiceNotAllowed => {
            "-ERR [AUTH] POP3 is switched off for this mailbox, to protect the mail kept on the server. \
             Change the mailbox's access mode in the customer panel (or ask your provider)."
        }
        PublicRefusal::TlsRequired => {
            "-ERR [AUTH] This server accepts encrypted logins only: turn on STLS (STARTTLS) in your mail \
             program, or use POP3 over SSL/TLS on port 995."
        }
        PublicRefusal::Failed { encrypted: false } => {
            "-ERR [AUTH] Login failed. Check the address and the password, and use an encrypted connection \
             (STLS, or POP3 over SSL/TLS on port 995), which this mailbox may require."
        }
        PublicRefusal::Failed { encrypted: true } => "-ERR [AUTH] Wrong address or password.",
        PublicRefusal::Throttled => "-ERR [SYS/TEMP] Too many failed logins. Please try again later.",
        PublicRefusal::Disabled => "-ERR [AUTH] This mailbox is disabled. Please ask your provider.",
        PublicRefusal::Malformed => {
            "-ERR [AUTH] The login could not be read. Send your own address and password (SASL PLAIN)."
        }
        PublicRefusal::AppPasswordRequired => {
            "-ERR [AUTH] This mailbox's password works only in the customer panel. Create an app password \
             for this device there and enter it here instead."
        }
        PublicRefusal::NotForThisAppPassword => {
            "-ERR [AUTH] This app password is not for POP3. Create one for POP3 in the customer panel."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_carry_response_codes_and_say_what_to_do() {
        assert!(refusal_text(PublicRefusal::ServiceNotAllowed).starts_with("-ERR [AUTH] POP3 is switched off"));
        assert!(refusal_text(PublicRefusal::TlsRequired).contains("STLS"));
        assert!(refusal_text(PublicRefusal::Failed { encrypted: false }).contains("STLS"));
        assert!(refusal_text(PublicRefusal::Throttled).starts_with("-ERR [SYS/TEMP]"));
        let all = [
            PublicRefusal::Failed { encrypted: true },
            PublicRefusal::Failed { encrypted: false },
            PublicRefusal::Disabled,
            PublicRefusal::TlsRequired,
            PublicRefusal::ServiceNotAllowed,
            PublicRefusal::Malformed,
        ];
        for r in all {
            assert!(refusal_text(r).starts_with("-ERR [AUTH] "), "{r:?}");
        }
        for r in all.into_iter().chain([PublicRefusal::Throttled]) {
            assert!(!refusal_text(r).contains('\n'));
        }
    }
}
