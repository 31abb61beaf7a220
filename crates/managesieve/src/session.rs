//! One ManageSieve connection (RFC 5804): the non-authenticated state with CAPABILITY,
//! STARTTLS and AUTHENTICATE, and the authenticated state with the script commands.
//!
//! Everything a client sends is bounded before it is read: a command line by
//! [`Limits::max_line`](crate::Limits), a literal by its announced length, checked
//! against the script size limit (after login) or a small limit (before login) before a
//! byte of it is read. A literal that is too large ends the session: its bytes are
//! already on their way and are not read.
//!
//! Every login goes through the one authentication gate; SASL is run by
//! [`postfach_auth::sasl::Exchange`], this module only frames it (challenges and
//! responses are ManageSieve strings, RFC 5804 §2.1).

use std::net::IpAddr;
use std::sync::Arc;

use postfach_admin::Who;
use postfach_auth::sasl::{Exchange, SaslMechanism, Step};
use postfach_auth::{AuthError, Connection, Principal};
use postfach_net::{Conn, Line};
use postfach_policy::PublicRefusal;
use postfach_store::Scope;
use postfach_types::{MailboxId, Service};

use crate::command::{Command, ParseError, Token, tokenize};
use crate::reply::{bye, literal, no, ok, quoted};
use crate::scripts::{self, Refused};
use crate::{ManageSieveServer, SieveError};

const LOG_IN_FIRST: &str = "Log in first (AUTHENTICATE).";
const TRY_LATER: &str = "The server cannot check your login right now. Please try again later.";

/// Serves one admitted connection until it ends.
pub(crate) async fn run(server: Arc<ManageSieveServer>, mut conn: Conn) {
    conn.set_login_deadline(Some(server.limits.login_timeout));
    let remote_ip = conn.peer().ip();
    let revocations_seen = server.auth.revocations_seen();
    let mut session =
        Session { server, conn, remote_ip, user: None, auth_failures: 0, bad_commands: 0, revocations_seen };
    match session.serve().await {
        Ok(()) | Err(SieveError::Closed) => {}
        Err(e) => tracing::debug!(remote = %remote_ip, error = %e, "managesieve session ended"),
    }
    session.conn.close().await;
}

/// The logged-in mailbox user.
struct User {
    /// Who logged in, with the credential used (an app password is checked for
    /// revocation before every command).
    principal: Principal,
    /// The caller of the script operations.
    who: Who,
    mailbox: MailboxId,
}

/// Whether the session goes on after a command.
enum Flow {
    Continue,
    Close,
}

/// What reading a command gave.
enum Read {
    Command(Vec<Token>),
    Bad(ParseError),
}

struct Session {
    server: Arc<ManageSieveServer>,
    conn: Conn,
    remote_ip: IpAddr,
    user: Option<User>,
    auth_failures: u32,
    bad_commands: u32,
    /// The revocation count this session last looked at (`Authenticator::still_valid`).
    revocations_seen: u64,
}

/// Literals one command may carry (PUTSCRIPT and RENAMESCRIPT have two strings).
const MAX_LITERALS: usize = 2;

impl Session {
    async fn serve(&mut self) -> Result<(), SieveError> {
        // RFC 5804 §1.7: the capabilities, then OK.
        self.capabilities();
        ok(&mut self.conn, &format!("{} ManageSieve server ready.", self.server.hostname));
        loop {
            let read = match self.read_command().await {
                Ok(read) => read,
                Err(Ended::Session(e)) => {
                    let text = match e {
                        SieveError::Idle => "No command for too long. Closing the connection.",
                        SieveError::LoginTimeout => "You did not log in in time. Closing the connection.",
                        _ => return Err(e),
                    };
                    bye(&mut self.conn, None, text);
                    self.conn.flush().await?;
                    return Err(e);
                }
                Err(Ended::Refused { code, text }) => {
                    bye(&mut self.conn, code, &text);
                    return Ok(());
                }
            };
            let command = match read {
                Read::Command(tokens) => Command::parse(tokens),
                Read::Bad(e) => Err(e),
            };
            let command = match command {
                Ok(command) => command,
                Err(e) => {
                    self.bad_commands += 1;
                    if self.bad_commands >= self.server.limits.max_bad_commands {
                        bye(&mut self.conn, None, "Too many unknown commands. Closing the connection.");
                        return Ok(());
                    }
                    match e {
                        ParseError::Unknown => no(&mut self.conn, None, "Unknown command."),
                        ParseError::Syntax(hint) => no(&mut self.conn, None, &format!("Syntax error: {hint}.")),
                    }
                    continue;
                }
            };
            if !self.credential_still_valid().await {
                bye(&mut self.conn, None, "The app password of this connection was revoked. Closing the connection.");
                return Ok(());
            }
            let (name, started) = (command.name(), std::time::Instant::now());
            let flow = self.step(command).await?;
            postfach_metrics::command(postfach_metrics::Protocol::ManageSieve, name, started.elapsed());
            if let Flow::Close = flow {
                return Ok(());
            }
        }
    }

    /// False once the app password this session logged in with was revoked.
    async fn credential_still_valid(&mut self) -> bool {
        let Some(user) = &self.user else { return true };
        self.server.auth.still_valid(&user.principal, &mut self.revocations_seen).await
    }

    async fn step(&mut self, command: Command) -> Result<Flow, SieveError> {
        match command {
            Command::Capability => {
                self.capabilities();
                ok(&mut self.conn, "Capability completed.");
            }
            Command::Logout => {
                ok(&mut self.conn, "Logout completed.");
                return Ok(Flow::Close);
            }
            // RFC 5804 §2.6: the tag lets a client find the answer to its NOOP.
            Command::Noop { tag: Some(tag) } => {
                let code = format!("TAG {}", quoted(&tag));
                crate::reply::respond(&mut self.conn, crate::reply::Status::Ok, Some(&code), "Done.");
            }
            Command::Noop { tag: None } => ok(&mut self.conn, "Done."),
            Command::StartTls => return self.starttls().await,
            Command::Authenticate { mechanism, initial } => return self.authenticate(&mechanism, initial).await,
            // RFC 5804 §2.14.
            Command::Unauthenticate => match self.user.take() {
                Some(_) => {
                    self.conn.set_login_deadline(Some(self.server.limits.login_timeout));
                    ok(&mut self.conn, "Logged out; you may log in again.");
                }
                None => no(&mut self.conn, None, "You are not logged in."),
            },
            other => match &self.user {
                None => no(&mut self.conn, None, LOG_IN_FIRST),
                Some(user) => {
                    let answer = scripts::run(&self.server, &user.who, user.mailbox, other).await;
                    self.answer(answer);
                }
            },
        }
        Ok(Flow::Continue)
    }

    /// Queues the answer to a script command.
    fn answer(&mut self, answer: Result<scripts::Done, Refused>) {
        match answer {
            Ok(scripts::Done::Ok(text)) => ok(&mut self.conn, text),
            Ok(scripts::Done::List(list)) => {
                let mut out = String::new();
                for (name, active) in list {
                    out.push_str(&quoted(&name));
                    out.push_str(if active { " ACTIVE\r\n" } else { "\r\n" });
                }
                self.conn.queue(out.as_bytes());
                ok(&mut self.conn, "Listscripts completed.");
            }
            Ok(scripts::Done::Script(text)) => {
                literal(&mut self.conn, text.as_bytes());
                ok(&mut self.conn, "Getscript completed.");
            }
            Err(refused) => no(&mut self.conn, refused.code, &refused.text),
        }
    }

    /// Whether credentials may be offered on this connection as it is now.
    fn login_offered(&self) -> bool {
        self.conn.is_tls() || self.server.auth.plaintext_auth_allowed()
    }

    fn connection(&self) -> Connection {
        Connection { remote_ip: self.remote_ip, tls: self.conn.tls_info().cloned() }
    }

    /// RFC 5804 §1.7. SASL mechanisms are listed only where a login could succeed (none
    /// before STARTTLS when plaintext logins are off); OWNER once logged in.
    fn capabilities(&mut self) {
        let mut out = String::from("\"IMPLEMENTATION\" \"Postfach\"\r\n");
        let mechanisms = if self.user.is_none() && self.login_offered() { "PLAIN LOGIN" } else { "" };
        out.push_str(&format!("\"SASL\" {}\r\n", quoted(mechanisms)));
        out.push_str(&format!("\"SIEVE\" {}\r\n", quoted(&scripts::extensions())));
        if self.user.is_none() && self.conn.can_start_tls() {
            out.push_str("\"STARTTLS\"\r\n");
        }
        if let Some(user) = &self.user {
            out.push_str(&format!("\"OWNER\" {}\r\n", quoted(&user.who.display_name())));
        }
        out.push_str("\"UNAUTHENTICATE\"\r\n\"VERSION\" \"1.0\"\r\n");
        self.conn.queue(out.as_bytes());
    }

    /// RFC 5804 §2.2: after the handshake the capabilities are sent again, then OK.
    async fn starttls(&mut self) -> Result<Flow, SieveError> {
        if self.user.is_some() || !self.conn.can_start_tls() {
            let text = if self.conn.is_tls() {
                "This connection is already encrypted."
            } else {
                "STARTTLS is only possible before logging in."
            };
            no(&mut self.conn, None, text);
            return Ok(Flow::Continue);
        }
        ok(&mut self.conn, "Begin TLS negotiation now.");
        if let Err(e) = self.conn.start_tls().await {
            tracing::debug!(remote = %self.remote_ip, "managesieve: the STARTTLS handshake failed");
            return Err(e.into());
        }
        self.capabilities();
        ok(&mut self.conn, "TLS is on.");
        Ok(Flow::Continue)
    }

    /// RFC 5804 §2.1: SASL with the gate's exchange; challenges and responses are strings.
    async fn authenticate(&mut self, mechanism: &str, initial: Option<Vec<u8>>) -> Result<Flow, SieveError> {
        if self.user.is_some() {
            no(&mut self.conn, None, "You are already logged in (UNAUTHENTICATE first to change user).");
            return Ok(Flow::Continue);
        }
        let Some(mechanism) = SaslMechanism::parse(mechanism) else {
            no(&mut self.conn, None, "This server offers the SASL mechanisms PLAIN and LOGIN.");
            return Ok(Flow::Continue);
        };
        let (mut exchange, mut step) = Exchange::start(mechanism, initial.as_deref(), self.login_offered());
        let end = loop {
            match step {
                Step::End(end) => break end,
                Step::Challenge(challenge) => {
                    self.conn.queue(format!("{}\r\n", quoted(challenge)).as_bytes());
                    let response = match self.read_command().await {
                        Ok(Read::Command(tokens)) => sasl_response(tokens),
                        Ok(Read::Bad(_)) => Vec::new(),
                        Err(Ended::Session(e)) => return Err(e),
                        Err(Ended::Refused { code, text }) => {
                            bye(&mut self.conn, code, &text);
                            return Ok(Flow::Close);
                        }
                    };
                    step = exchange.respond(&response);
                }
            }
        };
        let connection = self.connection();
        let gate = self.server.auth.clone();
        match gate.finish_sasl(Service::ManageSieve, mechanism, end, &connection).await {
            None => {
                no(&mut self.conn, None, "Authentication cancelled.");
                Ok(Flow::Continue)
            }
            Some(result) => self.logged_in(result).await,
        }
    }

    /// The gate's answer to a login.
    async fn logged_in(&mut self, result: Result<Principal, AuthError>) -> Result<Flow, SieveError> {
        let (id, principal) = match result {
            Ok(principal) if let Some(id) = principal.mailbox_id() => (id, principal),
            // The policy lets only mailboxes use ManageSieve; kept total anyway.
            Ok(_) => {
                let (code, text) = refusal_text(PublicRefusal::ServiceNotAllowed);
                no(&mut self.conn, code, text);
                return Ok(self.failed());
            }
            Err(e) => return Ok(self.refused(&e)),
        };
        match self.server.store.mailbox_by_id(Scope::Platform, id).await {
            Ok(mailbox) => {
                tracing::debug!(mailbox = id.get(), "managesieve login");
                self.user = Some(User { principal, who: Who::Mailbox { mailbox }, mailbox: id });
                self.conn.set_login_deadline(None);
                ok(&mut self.conn, "Logged in.");
            }
            Err(e) => {
                tracing::warn!(mailbox = id.get(), error = %e, "managesieve: cannot read the mailbox");
                no(&mut self.conn, Some("TRYLATER"), "Your filters cannot be read right now. Please try again later.");
            }
        }
        Ok(Flow::Continue)
    }

    /// The reply to a refused login; counts it, and closes the session after too many.
    fn refused(&mut self, error: &AuthError) -> Flow {
        match error.refusal() {
            Some(refusal) => {
                let (code, text) = refusal_text(refusal.public(self.conn.is_tls()));
                no(&mut self.conn, code, text);
                self.failed()
            }
            None => {
                tracing::warn!(error = %error, "managesieve: the login could not be checked");
                no(&mut self.conn, Some("TRYLATER"), TRY_LATER);
                Flow::Continue
            }
        }
    }

    /// Counts a failed login; closes the session after too many.
    fn failed(&mut self) -> Flow {
        self.auth_failures += 1;
        if self.auth_failures >= self.server.limits.max_auth_failures {
            bye(&mut self.conn, None, "Too many failed logins. Closing the connection.");
            Flow::Close
        } else {
            Flow::Continue
        }
    }

    /// The next command: its lines and literals, each bounded before it is read. The
    /// idle timeout is shorter before login.
    async fn read_command(&mut self) -> Result<Read, Ended> {
        let limits = self.server.limits;
        let (timeout, literal_limit, total_limit) = match self.user {
            None => {
                let limit = limits.max_literal_before_login;
                (limits.login_timeout.min(limits.idle_timeout), limit, limit)
            }
            Some(_) => {
                let script = self.max_script_size();
                (limits.idle_timeout, script, script + limits.max_line as u64)
            }
        };
        let mut tokens = Vec::new();
        let (mut literals, mut total) = (0, 0u64);
        loop {
            let line = match self.conn.read_line(limits.max_line, timeout).await? {
                Line::Text(mut line) => {
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    line
                }
                Line::TooLong => {
                    let text = "That command line is too long. Closing the connection.";
                    return Err(Ended::Refused { code: None, text: text.into() });
                }
            };
            let length = match tokenize(&line, &mut tokens) {
                Ok(None) => return Ok(Read::Command(tokens)),
                Ok(Some(length)) => length,
                // The rest of a command with a broken literal marker cannot be found:
                // its literal, if any, would be read as commands.
                Err(e) if line.ends_with(b"}") => {
                    let ParseError::Syntax(hint) = e else { return Ok(Read::Bad(e)) };
                    return Err(Ended::Refused { code: None, text: format!("Syntax error: {hint}.") });
                }
                Err(e) => return Ok(Read::Bad(e)),
            };
            literals += 1;
            total = total.saturating_add(length);
            if length > literal_limit || total > total_limit || literals > MAX_LITERALS {
                return Err(self.literal_refused(length));
            }
            let bytes = self.read_literal(length, timeout).await?;
            tokens.push(Token::String(bytes));
        }
    }

    /// The largest script, by the limits `admin::sieve` applies.
    fn max_script_size(&self) -> u64 {
        self.server.admin.sieve_limits().max_script_bytes as u64
    }

    /// Why a literal is not read, in words; the session ends after it.
    fn literal_refused(&self, length: u64) -> Ended {
        match self.user {
            Some(_) => Ended::Refused {
                code: Some("QUOTA/MAXSIZE"),
                text: format!(
                    "That is {length} bytes; a script may have at most {} bytes. Closing the connection.",
                    self.max_script_size()
                ),
            },
            None => Ended::Refused { code: None, text: "That is too long for a login. Closing the connection.".into() },
        }
    }

    /// Exactly `length` bytes (already bounded by the caller).
    async fn read_literal(&mut self, length: u64, timeout: std::time::Duration) -> Result<Vec<u8>, Ended> {
        let length = usize::try_from(length).unwrap_or(usize::MAX);
        let mut bytes = Vec::with_capacity(length.min(64 * 1024));
        while bytes.len() < length {
            if self.conn.buffered().is_empty() {
                self.conn.fill(timeout).await?;
            }
            let pending = self.conn.buffered();
            let take = pending.len().min(length - bytes.len());
            bytes.extend_from_slice(&pending[..take]);
            self.conn.consume(take);
        }
        Ok(bytes)
    }
}

/// Why reading a command ended the session.
enum Ended {
    Session(SieveError),
    /// Answered with BYE and this text, then closed.
    Refused {
        code: Option<&'static str>,
        text: String,
    },
}

impl From<postfach_net::Ended> for Ended {
    fn from(ended: postfach_net::Ended) -> Self {
        Ended::Session(ended.into())
    }
}

impl From<Ended> for SieveError {
    fn from(ended: Ended) -> Self {
        match ended {
            Ended::Session(e) => e,
            Ended::Refused { .. } => SieveError::Closed,
        }
    }
}

/// A client's SASL response: one string (RFC 5804 §2.1); `"*"` cancels. Anything else is
/// passed on as it is, for the exchange to refuse as malformed.
fn sasl_response(tokens: Vec<Token>) -> Vec<u8> {
    match <[Token; 1]>::try_from(tokens) {
        Ok([Token::String(bytes)]) => bytes,
        Ok([Token::Atom(word)]) => word.into_bytes(),
        Err(_) => b"!".to_vec(),
    }
}

/// The reply to a refused login: an RFC 5804 §1.3 response code where one fits, and what
/// happened and what the user can do, never more than
/// [`postfach_policy::Refusal::public`] allows.
pub(crate) fn refusal_text(refusal: PublicRefusal) -> (Option<&'static str>, &'static str) {
    match refusal {
        PublicRefusal::ServiceNotAllowed => {
            (None, "Filters are managed here by mailboxes only. Log in with a mailbox's address.")
        }
        PublicRefusal::TlsRequired => (
            Some("ENCRYPT-NEEDED"),
            "This server accepts encrypted logins only: turn on STARTTLS (TLS) in your filter program.",
        ),
        PublicRefusal::Failed { encrypted: false } => (
            None,
            "Login failed. Check the address and the password, and use an encrypted connection (STARTTLS), \
             which this mailbox may require.",
        ),
        PublicRefusal::Failed { encrypted: true } => (None, "Wrong address or password."),
        PublicRefusal::Throttled => (Some("TRYLATER"), "Too many failed logins. Please try again later."),
        PublicRefusal::Disabled => (None, "This mailbox is disabled. Please ask your provider."),
        PublicRefusal::Malformed => {
            (None, "The login could not be read. Send your own address and password (SASL PLAIN).")
        }
        PublicRefusal::AppPasswordRequired => (
            None,
            "This mailbox's password works only in the customer panel. Create an app password for filters \
             (ManageSieve) there and enter it here instead.",
        ),
        PublicRefusal::NotForThisAppPassword => {
            (None, "This app password is not for filters. Create one for filters (ManageSieve) in the customer panel.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_what_to_do_and_carry_codes_where_they_fit() {
        assert_eq!(refusal_text(PublicRefusal::TlsRequired).0, Some("ENCRYPT-NEEDED"));
        assert_eq!(refusal_text(PublicRefusal::Throttled).0, Some("TRYLATER"));
        assert!(refusal_text(PublicRefusal::Failed { encrypted: false }).1.contains("STARTTLS"));
        // Without TLS every failure looks the same, whatever the mailbox's rule.
        assert_eq!(refusal_text(PublicRefusal::Failed { encrypted: false }).0, None);
    }

    #[test]
    fn a_sasl_response_is_one_string() {
        assert_eq!(sasl_response(vec![Token::String(b"AGEAYg==".to_vec())]), b"AGEAYg==");
        assert_eq!(sasl_response(vec![Token::String(b"*".to_vec())]), b"*");
        assert_eq!(sasl_response(vec![]), b"!");
    }
}
