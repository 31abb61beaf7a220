//! One SMTP session: the command gate and every reply, for the MX and for submission.
//!
//! Replies carry enhanced status codes (RFC 2034, RFC 3463). Failures are classified
//! where they happen (syntax 5.5.x, address 5.1.x, policy 5.7.x, server 4.3.0) and turned
//! into a reply in one place, [`Session::reply`]; details go to the log, the wire gets a
//! plain text that tells the client what to do.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use postfach_auth::{Attempt, AuthError, Connection, Principal};
use postfach_net::{ConnectionGuard, MaybeTls};
use postfach_policy::Refusal;
use postfach_store::MailboxId;
use postfach_store::messages::{Delivery, DeliveryFolder, Flags, NewMessage};
use postfach_store::resolve::Resolution;
use postfach_types::{EmailAddress, Mechanism, Secret, Service, UnixTime};
use smtp_proto::{EhloResponse, Error as ParseError, MailFrom, Request};

use crate::address::{self, PathError};
use crate::conn::{Conn, Ended, Line};
use crate::headers::{self, Trace};
use crate::senders::AuthorFields;
use crate::sink::{Submission, SubmitError};
use crate::verify::{self, DmarcVerdict, FailPolicy, SpfResults};
use crate::{Inner, SpfFailAction, sasl};

/// Which server a session belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Inbound mail from other servers, for hosted mailboxes only.
    Mx,
    /// Mail from authenticated mailboxes, to anywhere.
    Submission,
}

/// The longest command line accepted, CRLF included. RFC 5321 §4.5.3.1.4 asks for at
/// least 512; extensions and AUTH PLAIN responses need more.
const MAX_LINE: usize = 4096;

/// Errors after which the session is closed (RFC 5321 §4.3.2 allows closing on abuse).
const MAX_ERRORS: u32 = 20;

enum Flow {
    Continue,
    Close,
}

struct Transaction {
    sender: Option<EmailAddress>,
    /// MX only: SPF results taken at MAIL FROM.
    spf: Option<SpfResults>,
    recipients: Vec<EmailAddress>,
    /// MX only: the distinct mailboxes the recipients lead to (one copy each).
    mailboxes: BTreeSet<MailboxId>,
    utf8: bool,
}

struct User {
    mailbox_id: MailboxId,
    address: EmailAddress,
    allowed: Vec<EmailAddress>,
}

struct Session<'a> {
    inner: &'a Inner,
    kind: Kind,
    conn: Conn,
    peer: SocketAddr,
    helo: Option<String>,
    esmtp: bool,
    tx: Option<Transaction>,
    user: Option<User>,
    /// The SPF result of the HELO identity, once checked (RFC 7208 §2.3).
    helo_spf: Option<mail_auth::SpfOutput>,
    errors: u32,
}

pub(crate) async fn run(inner: &Inner, kind: Kind, stream: MaybeTls, peer: SocketAddr, slot: Option<ConnectionGuard>) {
    let mut conn = Conn::new(stream);
    let host = inner.settings.hostname.as_str();
    if slot.is_none() {
        // RFC 5321 §3.1: a server may refuse a connection with 421 in place of 220.
        conn.queue(format!("421 4.7.0 {host} Too many connections from your address; try again later\r\n").as_bytes());
        conn.close().await;
        return;
    }
    conn.queue(format!("220 {host} ESMTP Postfach\r\n").as_bytes());
    let mut session =
        Session { inner, kind, conn, peer, helo: None, esmtp: false, tx: None, user: None, helo_spf: None, errors: 0 };
    session.serve().await;
    session.conn.close().await;
    drop(slot);
}

impl Session<'_> {
    fn host(&self) -> &str {
        self.inner.settings.hostname.as_str()
    }

    /// The one place replies are written.
    fn reply(&mut self, code: u16, esc: [u8; 3], text: &str) {
        let text: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        let line = format!("{code} {}.{}.{} {text}\r\n", esc[0], esc[1], esc[2]);
        self.conn.queue(line.as_bytes());
        if code >= 500 {
            self.errors += 1;
        }
    }

    fn server_error(&mut self, what: &str, error: &dyn std::fmt::Display) {
        tracing::warn!(remote = %self.peer, error = %error, "{what}");
        self.reply(451, [4, 3, 0], "Temporary server error; please try again later");
    }

    async fn serve(&mut self) {
        loop {
            if self.errors >= MAX_ERRORS {
                self.reply(421, [4, 7, 0], "Too many errors; closing the connection");
                return;
            }
            let line = match self.conn.read_line(MAX_LINE, self.inner.settings.command_timeout).await {
                Ok(Line::Text(line)) => line,
                Ok(Line::TooLong) => {
                    self.reply(500, [5, 5, 2], "Line too long: a command may have at most 4096 characters");
                    continue;
                }
                Err(Ended::Timeout) => {
                    // RFC 5321 §4.5.3.2: the server may close an idle connection with 421.
                    let text = format!("{} Timeout waiting for a command; closing the connection", self.host());
                    self.reply(421, [4, 4, 2], &text);
                    return;
                }
                Err(Ended::Closed) => return,
            };
            if let Flow::Close = self.command(&line).await {
                return;
            }
        }
    }

    async fn command(&mut self, line: &[u8]) -> Flow {
        let request = Request::parse(&mut line.iter());
        // The recipient comes from the raw line: the parser hides relay tricks.
        if address::is_command(line, "RCPT")
            && matches!(request, Ok(Request::Rcpt { .. }) | Err(ParseError::InvalidRecipientAddress))
        {
            let raw = std::str::from_utf8(line).ok().and_then(address::raw_path).map(str::to_string);
            self.rcpt(raw).await;
            return Flow::Continue;
        }
        match request {
            Ok(Request::Ehlo { host }) => self.ehlo(&host, true),
            Ok(Request::Helo { host }) => self.ehlo(&host, false),
            Ok(Request::StartTls) => return self.starttls().await,
            Ok(Request::Auth { mechanism, initial_response }) => {
                let initial = initial_response.into_owned();
                return self.auth(mechanism, initial).await;
            }
            Ok(Request::Mail { from }) => self.mail(from.into_owned()).await,
            Ok(Request::Rcpt { .. }) => self.rcpt(None).await,
            Ok(Request::Data) => return self.data().await,
            Ok(Request::Rset) => {
                self.tx = None;
                self.reply(250, [2, 0, 0], "OK");
            }
            Ok(Request::Noop { .. }) => self.reply(250, [2, 0, 0], "OK"),
            // RFC 5321 §3.5.3: 252 when the server will not verify; it discloses nothing.
            Ok(Request::Vrfy { .. }) => {
                self.reply(252, [2, 5, 0], "Cannot verify addresses; send the message and delivery will be attempted")
            }
            Ok(Request::Expn { .. }) => self.reply(502, [5, 5, 1], "EXPN is not available"),
            Ok(Request::Help { .. }) => self.reply(214, [2, 0, 0], "See RFC 5321; this server speaks ESMTP"),
            Ok(Request::Quit) => {
                self.reply(221, [2, 0, 0], "Goodbye");
                return Flow::Close;
            }
            Ok(other) => {
                let text = format!("{} is not available here", other.name());
                self.reply(502, [5, 5, 1], &text);
            }
            Err(error) => self.parse_error(error),
        }
        Flow::Continue
    }

    fn parse_error(&mut self, error: ParseError) {
        match error {
            ParseError::UnknownCommand => self.reply(500, [5, 5, 1], "Unknown command"),
            ParseError::SyntaxError { syntax } => self.reply(501, [5, 5, 2], &format!("Syntax: {syntax}")),
            ParseError::InvalidSenderAddress => self.reply(553, [5, 1, 7], "The sender address is not valid"),
            ParseError::InvalidRecipientAddress => self.reply(553, [5, 1, 3], "The recipient address is not valid"),
            ParseError::InvalidParameter { param } => {
                self.reply(501, [5, 5, 4], &format!("The parameter {param} has an invalid value"))
            }
            ParseError::UnsupportedParameter { param } => {
                self.reply(555, [5, 5, 4], &format!("The parameter {} is not supported", headers::clean(&param)))
            }
            ParseError::NeedsMoreData { .. } | ParseError::ResponseTooLong | ParseError::InvalidResponse { .. } => {
                self.reply(500, [5, 5, 2], "Cannot read this command")
            }
        }
    }

    /// EHLO/HELO (RFC 5321 §4.1.1.1); EHLO lists the extensions.
    fn ehlo(&mut self, host: &str, esmtp: bool) {
        self.helo = Some(headers::clean(host));
        self.helo_spf = None;
        self.esmtp = esmtp;
        self.tx = None;
        if !esmtp {
            let text = format!("{} Hello", self.host());
            self.conn.queue(format!("250 {text}\r\n").as_bytes());
            return;
        }
        let tls = self.conn.is_tls();
        let mut ehlo = EhloResponse::new(self.host());
        ehlo.capabilities = smtp_proto::EXT_PIPELINING
            | smtp_proto::EXT_8BIT_MIME
            | smtp_proto::EXT_SMTP_UTF8
            | smtp_proto::EXT_SIZE
            | smtp_proto::EXT_ENHANCED_STATUS_CODES;
        ehlo.size = usize::try_from(self.inner.settings.max_message_size).unwrap_or(usize::MAX);
        if !tls {
            ehlo.capabilities |= smtp_proto::EXT_START_TLS;
        }
        // RFC 4954 §4 and RFC 8314: offer AUTH only where the password would be encrypted,
        // unless the operator allows plaintext logins.
        if self.kind == Kind::Submission && (tls || self.inner.services.auth.plaintext_auth_allowed()) {
            ehlo.capabilities |= smtp_proto::EXT_AUTH;
            ehlo.auth_mechanisms = smtp_proto::AUTH_PLAIN | smtp_proto::AUTH_LOGIN;
        }
        let mut out = Vec::with_capacity(256);
        let _ = ehlo.write(&mut out);
        self.conn.queue(&out);
    }

    /// STARTTLS (RFC 3207).
    async fn starttls(&mut self) -> Flow {
        if self.conn.is_tls() {
            self.reply(503, [5, 5, 1], "The connection is already encrypted");
            return Flow::Continue;
        }
        self.reply(220, [2, 0, 0], "Ready to start TLS");
        match self.conn.upgrade(&self.inner.services.tls).await {
            Ok(()) => {
                // RFC 3207 §4.2: forget everything learnt before the handshake.
                self.helo = None;
                self.helo_spf = None;
                self.esmtp = false;
                self.tx = None;
                self.user = None;
                Flow::Continue
            }
            Err(_) => {
                tracing::debug!(remote = %self.peer, "STARTTLS handshake failed");
                Flow::Close
            }
        }
    }

    /// Reads one SASL response line after a `334` challenge; `None` when the client
    /// cancelled (`*`) or the connection ended (the reply is queued then).
    async fn sasl_response(&mut self, challenge: &str) -> Option<String> {
        self.conn.queue(format!("334 {challenge}\r\n").as_bytes());
        match self.conn.read_line(MAX_LINE, self.inner.settings.command_timeout).await {
            Ok(Line::Text(line)) => {
                let text = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string();
                if text == "*" {
                    self.reply(501, [5, 7, 0], "Authentication cancelled");
                    return None;
                }
                Some(text)
            }
            Ok(Line::TooLong) => {
                self.reply(500, [5, 5, 6], "Authentication response too long");
                None
            }
            Err(_) => None,
        }
    }

    /// AUTH PLAIN and LOGIN (RFC 4954), through the one authentication path.
    async fn auth(&mut self, mechanism: u64, initial: String) -> Flow {
        if self.kind == Kind::Mx {
            self.reply(502, [5, 5, 1], "Logging in is only possible on the submission ports 587 and 465");
            return Flow::Continue;
        }
        if self.helo.is_none() {
            self.reply(503, [5, 5, 1], "Send EHLO first");
            return Flow::Continue;
        }
        if self.user.is_some() {
            self.reply(503, [5, 5, 1], "Already logged in");
            return Flow::Continue;
        }
        if self.tx.is_some() {
            self.reply(503, [5, 5, 1], "AUTH is not allowed during a mail transaction");
            return Flow::Continue;
        }
        let credentials = if mechanism == smtp_proto::AUTH_PLAIN {
            // RFC 4954 §4: "=" is an empty initial response.
            let response = match initial.as_str() {
                "" => match self.sasl_response("").await {
                    Some(r) => r,
                    None => return Flow::Continue,
                },
                "=" => String::new(),
                other => other.to_string(),
            };
            let Some(decoded) = sasl::decode(&response) else {
                self.reply(501, [5, 5, 2], "Cannot decode the response: it must be base64");
                return Flow::Continue;
            };
            match sasl::plain(&decoded) {
                Some(c) => (c.0, c.1, Mechanism::Plain),
                None => {
                    self.reply(535, [5, 7, 8], "Wrong address or password");
                    return Flow::Continue;
                }
            }
        } else if mechanism == smtp_proto::AUTH_LOGIN {
            let user = match initial.as_str() {
                "" => match self.sasl_response(sasl::LOGIN_USERNAME).await {
                    Some(r) => r,
                    None => return Flow::Continue,
                },
                other => other.to_string(),
            };
            let Some(password) = self.sasl_response(sasl::LOGIN_PASSWORD).await else { return Flow::Continue };
            match (sasl::decode(&user), sasl::decode(&password)) {
                (Some(user), Some(password)) => (user, Secret::new(password), Mechanism::SaslLogin),
                _ => {
                    self.reply(501, [5, 5, 2], "Cannot decode the response: it must be base64");
                    return Flow::Continue;
                }
            }
        } else {
            self.reply(504, [5, 5, 4], "Unknown authentication mechanism; use PLAIN or LOGIN");
            return Flow::Continue;
        };
        let (login, secret, mechanism) = credentials;
        let connection = Connection { remote_ip: self.peer.ip(), tls: self.conn.tls_info() };
        let attempt = Attempt {
            service: Service::Submission,
            mechanism,
            login: &login,
            secret: &secret,
            connection: &connection,
        };
        match self.inner.services.auth.authenticate(attempt).await {
            Ok(Principal::Mailbox { id, address, .. }) => match self.inner.services.store.allowed_senders(id).await {
                Ok(allowed) => {
                    tracing::info!(remote = %self.peer, mailbox = %address, "submission login");
                    self.user = Some(User { mailbox_id: id, address, allowed });
                    self.reply(235, [2, 7, 0], "Logged in");
                }
                Err(e) => self.server_error("reading the sender addresses failed", &e),
            },
            Ok(Principal::Account { .. }) => self.reply(535, [5, 7, 8], "Wrong address or password"),
            Err(error) => self.auth_refused(&error),
        }
        Flow::Continue
    }

    fn auth_refused(&mut self, error: &AuthError) {
        let Some(refusal) = error.refusal() else {
            tracing::warn!(remote = %self.peer, error = %error, "authentication failed temporarily");
            self.reply(454, [4, 7, 0], "Temporary authentication failure; please try again later");
            return;
        };
        match refusal {
            Refusal::BadCredentials => self.reply(535, [5, 7, 8], "Wrong address or password"),
            Refusal::TlsRequired if !self.inner.services.auth.plaintext_auth_allowed() => self.reply(
                530,
                [5, 7, 0],
                "Encryption required: use STARTTLS (or port 465) before logging in; the password was not accepted",
            ),
            Refusal::TlsRequired => self.reply(
                538,
                [5, 7, 11],
                "This mailbox may only log in over an encrypted connection: use STARTTLS or port 465",
            ),
            Refusal::ServiceNotAllowed => self.reply(
                535,
                [5, 7, 8],
                "Sending is switched off for this mailbox; switch it on in the panel under the mailbox's settings",
            ),
            Refusal::Disabled => {
                self.reply(535, [5, 7, 8], "This mailbox is disabled; ask the provider of your mail service")
            }
            Refusal::Throttled => {
                self.reply(454, [4, 7, 0], "Too many failed logins; please wait a while and try again")
            }
        }
    }

    /// MAIL FROM (RFC 5321 §4.1.1.2).
    async fn mail(&mut self, from: MailFrom<String>) {
        if self.helo.is_none() {
            return self.reply(503, [5, 5, 1], "Send EHLO first");
        }
        if self.kind == Kind::Submission && self.user.is_none() {
            return self.reply(530, [5, 7, 0], "Authentication required: log in with AUTH first");
        }
        if self.tx.is_some() {
            return self.reply(503, [5, 5, 1], "Sender already given; send RSET to start over");
        }
        let max = self.inner.settings.max_message_size;
        if from.size as u64 > max {
            // RFC 1870 §6.
            return self.reply(552, [5, 3, 4], &format!("Message too big: the limit is {max} bytes"));
        }
        let sender = match address::reverse_path(&from.address) {
            Ok(sender) => sender,
            Err(PathError::Syntax(why)) => return self.reply(553, [5, 1, 7], &why),
            Err(_) => return self.reply(553, [5, 1, 7], "The sender address is not valid"),
        };
        let utf8 = from.flags & smtp_proto::MAIL_SMTPUTF8 != 0;
        let spf = match self.kind {
            Kind::Submission => {
                if let (Some(sender), Some(user)) = (&sender, &self.user)
                    && !crate::senders::is_allowed(sender, &user.allowed)
                {
                    let text = format!(
                        "You may not send as <{sender}>: use an address of your mailbox {} (its own address, an alias, or one at an alias domain)",
                        user.address
                    );
                    return self.reply(550, [5, 7, 1], &text);
                }
                None
            }
            Kind::Mx => match self.check_sender(sender.as_ref()).await {
                Some(spf) => Some(spf),
                None => return,
            },
        };
        self.tx = Some(Transaction { sender, spf, recipients: Vec::new(), mailboxes: BTreeSet::new(), utf8 });
        self.reply(250, [2, 1, 0], "Sender OK");
    }

    /// SPF of the MX's sender; refuses (and returns `None`) where the rules say so.
    async fn check_sender(&mut self, sender: Option<&EmailAddress>) -> Option<SpfResults> {
        let helo = self.helo.clone().unwrap_or_default();
        let sender_text = sender.map(EmailAddress::to_string);
        let known = self.helo_spf.clone();
        let spf =
            verify::spf(&self.inner.verifier, self.peer.ip(), &helo, self.host(), sender_text.as_deref(), known).await;
        self.helo_spf = Some(spf.helo.clone());
        let result = spf.mail_from_result();
        if let Some(sender) = sender {
            // Anti-spoofing: a hosted domain's mail comes from its own servers only.
            let hosted = match self.inner.services.store.resolve(sender).await {
                Ok(resolution) => resolution != Resolution::NotHosted,
                Err(e) => {
                    self.server_error("resolving the sender failed", &e);
                    return None;
                }
            };
            if hosted && result != mail_auth::SpfResult::Pass {
                if result == mail_auth::SpfResult::TempError {
                    self.reply(
                        451,
                        [4, 4, 3],
                        "Cannot check the sender's SPF record right now; please try again later",
                    );
                } else {
                    let text = format!(
                        "{} is hosted here: mail from it is accepted only from its own servers (SPF {result})",
                        sender.domain()
                    );
                    self.reply(550, [5, 7, 1], &text);
                }
                return None;
            }
        }
        if result == mail_auth::SpfResult::Fail && self.inner.settings.spf_fail == SpfFailAction::Reject {
            // RFC 7372 §3.2: 5.7.23 for SPF validation failures.
            let domain = sender.map_or(helo, |s| s.domain().to_string());
            let text = format!("SPF: {domain} does not allow {} to send its mail", self.peer.ip());
            self.reply(550, [5, 7, 23], &text);
            return None;
        }
        Some(spf)
    }

    /// RCPT TO (RFC 5321 §4.1.1.3); `raw` is the path from the raw line.
    async fn rcpt(&mut self, raw: Option<String>) {
        let max = self.inner.settings.max_recipients as usize;
        let Some(tx) = &self.tx else { return self.reply(503, [5, 5, 1], "Send MAIL FROM first") };
        if tx.recipients.len() >= max {
            // RFC 5321 §4.5.3.1.10: 452 for too many recipients.
            let text = format!("Too many recipients: at most {max} per message; send the rest in another message");
            return self.reply(452, [4, 5, 3], &text);
        }
        let Some(raw) = raw else { return self.reply(501, [5, 5, 2], "Syntax: RCPT TO:<address>") };
        let recipient = match address::forward_path(&raw) {
            Ok(r) => r,
            Err(error) if error.is_relay_trick() => {
                let text = format!(
                    "<{}>: relay access denied: this server delivers only to its own mailboxes and does not route addresses",
                    headers::clean(&raw)
                );
                return self.reply(554, [5, 7, 1], &text);
            }
            Err(PathError::Quoted) => {
                return self.reply(553, [5, 1, 3], "Quoted addresses are not accepted here");
            }
            Err(PathError::BarePostmaster) => {
                return self.reply(550, [5, 1, 1], "Write to postmaster at a domain, such as postmaster@example.org");
            }
            Err(error) => {
                let why = match error {
                    PathError::Syntax(why) => why,
                    _ => "The recipient address is not valid".into(),
                };
                return self.reply(553, [5, 1, 3], &why);
            }
        };
        if self.kind == Kind::Submission {
            if let Some(tx) = &mut self.tx {
                tx.recipients.push(recipient);
            }
            return self.reply(250, [2, 1, 5], "Recipient OK");
        }
        match self.inner.services.store.resolve(&recipient).await {
            Ok(Resolution::Mailbox(found)) => {
                if let Some(tx) = &mut self.tx {
                    tx.mailboxes.insert(found.mailbox_id);
                    tx.recipients.push(recipient);
                }
                self.reply(250, [2, 1, 5], "Recipient OK");
            }
            Ok(Resolution::UnknownAddress) => {
                self.reply(550, [5, 1, 1], &format!("<{recipient}>: no such mailbox here"));
            }
            Ok(Resolution::NotHosted) => {
                let text =
                    format!("<{recipient}>: relay access denied: this server only accepts mail for its own domains");
                self.reply(554, [5, 7, 1], &text);
            }
            Err(e) => self.server_error("resolving a recipient failed", &e),
        }
    }

    /// DATA (RFC 5321 §4.1.1.4).
    async fn data(&mut self) -> Flow {
        match &self.tx {
            None => {
                self.reply(503, [5, 5, 1], "Send MAIL FROM first");
                return Flow::Continue;
            }
            Some(tx) if tx.recipients.is_empty() => {
                self.reply(554, [5, 5, 1], "No valid recipients");
                return Flow::Continue;
            }
            Some(_) => {}
        }
        self.conn.queue(b"354 Send the message; end it with a line holding only a dot\r\n");
        let max = usize::try_from(self.inner.settings.max_message_size).unwrap_or(usize::MAX);
        let data = match self.conn.read_data(max, self.inner.settings.data_timeout).await {
            Ok(data) => data,
            Err(Ended::Timeout) => {
                self.reply(421, [4, 4, 2], "Timeout waiting for the message; closing the connection");
                return Flow::Close;
            }
            Err(Ended::Closed) => return Flow::Close,
        };
        let Some(tx) = self.tx.take() else { return Flow::Continue };
        if data.too_big {
            self.reply(552, [5, 3, 4], &format!("Message too big: the limit is {max} bytes"));
            return Flow::Continue;
        }
        match self.kind {
            Kind::Mx => self.deliver_inbound(tx, data.bytes).await,
            Kind::Submission => self.submit(tx, data.bytes).await,
        }
        Flow::Continue
    }

    fn trace(&self, tx: &Transaction, id: &str, authenticated: bool) -> String {
        let tls = self.conn.tls_info();
        let protocol = headers::protocol(self.esmtp, tls.is_some(), authenticated, tx.utf8);
        let single = (tx.recipients.len() == 1).then(|| tx.recipients[0].to_string());
        headers::received(&Trace {
            helo: self.helo.as_deref().unwrap_or_default(),
            remote_ip: self.peer.ip(),
            hostname: self.host(),
            protocol,
            tls: tls.as_ref(),
            id,
            single_recipient: single.as_deref(),
            at: UnixTime::now(),
        })
    }

    /// Whether `domain` is hosted here (and verified).
    async fn is_hosted(&self, domain: &str) -> Result<bool, postfach_store::StoreError> {
        let Ok(probe) = EmailAddress::parse(&format!("postmaster@{domain}")) else { return Ok(false) };
        Ok(self.inner.services.store.resolve(&probe).await? != Resolution::NotHosted)
    }

    async fn deliver_inbound(&mut self, tx: Transaction, message: Vec<u8>) {
        let helo = self.helo.clone().unwrap_or_default();
        let sender = tx.sender.as_ref().map(EmailAddress::to_string);
        let Some(spf) = tx.spf.as_ref() else { return self.reply(451, [4, 3, 0], "Please try again") };
        let results =
            verify::message(&self.inner.verifier, &message, self.peer.ip(), &helo, self.host(), sender.as_deref(), spf)
                .await;

        // Anti-spoofing of hosted domains in From:.
        let mail_from_domain = tx.sender.as_ref().map_or(helo.clone(), |s| s.domain().to_string());
        for domain in &results.from_domains {
            let hosted = match self.is_hosted(domain).await {
                Ok(hosted) => hosted,
                Err(e) => return self.server_error("checking the From: domain failed", &e),
            };
            if !hosted {
                continue;
            }
            let spf_aligned =
                spf.mail_from_result() == mail_auth::SpfResult::Pass && verify::aligned(&mail_from_domain, domain);
            let dkim_aligned = results.dkim_pass_domains.iter().any(|d| verify::aligned(d, domain));
            if results.dmarc == DmarcVerdict::Pass || spf_aligned || dkim_aligned {
                continue;
            }
            if results.dmarc == DmarcVerdict::TempError {
                return self.reply(451, [4, 4, 3], "Cannot check the sender right now; please try again later");
            }
            let text = format!(
                "Mail from {domain} is accepted only from its own servers; this message failed its SPF and DKIM checks"
            );
            return self.reply(550, [5, 7, 1], &text);
        }

        let folder = match &results.dmarc {
            DmarcVerdict::Fail { domain, policy: FailPolicy::Reject } => {
                let text = format!("The DMARC policy of {domain} asks to refuse this message: it failed SPF and DKIM");
                return self.reply(550, [5, 7, 1], &text);
            }
            DmarcVerdict::Fail { policy: FailPolicy::Quarantine, .. } => DeliveryFolder::Junk,
            _ => DeliveryFolder::Inbox,
        };

        let id = format!("{:016x}", rand::random::<u64>());
        let message = headers::crlf_line_endings(&message).unwrap_or(message);
        let body = headers::strip_forged_results(&message, self.host());
        let body = body.as_deref().unwrap_or(&message);
        let mut stored = Vec::with_capacity(body.len() + 1024);
        stored.extend_from_slice(headers::return_path(sender.as_deref()).as_bytes());
        stored.extend_from_slice(results.authentication_results.as_bytes());
        stored.extend_from_slice(results.received_spf.as_bytes());
        stored.extend_from_slice(self.trace(&tx, &id, false).as_bytes());
        stored.extend_from_slice(body);
        drop(message);

        // Invariant 4: blob fsync'd, then the metadata committed, then 250.
        let size = stored.len() as u64;
        let blob = match self.inner.services.blobs.put(stored).await {
            Ok(blob) => blob,
            Err(e) => return self.server_error("writing a message failed", &e),
        };
        let new = NewMessage {
            blob: blob.to_string(),
            size,
            internal_date: UnixTime::now(),
            flags: Flags::default(),
            keywords: Vec::new(),
        };
        let deliveries =
            tx.mailboxes.iter().map(|&mailbox_id| Delivery { mailbox_id, folder, message: new.clone() }).collect();
        match self.inner.services.deliveries.deliver(deliveries).await {
            Ok(_) => {
                tracing::info!(remote = %self.peer, id, sender = sender.as_deref().unwrap_or(""), mailboxes = tx.mailboxes.len(), junk = folder == DeliveryFolder::Junk, "message stored");
                self.reply(250, [2, 0, 0], &format!("Message stored as {id}"));
            }
            Err(e) => {
                tracing::warn!(remote = %self.peer, error = %e, "storing a message failed");
                self.reply(451, [4, 3, 0], "The message could not be stored; please try again later");
            }
        }
    }

    async fn submit(&mut self, tx: Transaction, message: Vec<u8>) {
        let Some(user) = &self.user else { return self.reply(530, [5, 7, 0], "Authentication required") };
        let fields = AuthorFields::read(&message);
        if let Some(foreign) = fields.first_foreign(&user.allowed) {
            let text = format!(
                "You may not send as <{}>: From: and Sender: must name an address of your mailbox {}",
                headers::clean(foreign),
                user.address
            );
            return self.reply(550, [5, 7, 1], &text);
        }
        if fields.from.is_empty() && tx.sender.is_none() {
            return self.reply(
                550,
                [5, 7, 1],
                "A message with an empty envelope sender needs a From: address of your mailbox",
            );
        }
        // RFC 6409 §8: the MSA may complete the header.
        let host = self.host().to_string();
        let id = format!("{:016x}", rand::random::<u64>());
        let mut out = Vec::with_capacity(message.len() + 512);
        out.extend_from_slice(self.trace(&tx, &id, true).as_bytes());
        if !fields.has_from
            && let Some(sender) = &tx.sender
        {
            out.extend_from_slice(format!("From: <{sender}>\r\n").as_bytes());
        }
        if !fields.has_date {
            out.extend_from_slice(format!("Date: {}\r\n", UnixTime::now().rfc5322()).as_bytes());
        }
        if !fields.has_message_id {
            out.extend_from_slice(format!("Message-ID: <{id}.{:08x}@{host}>\r\n", rand::random::<u32>()).as_bytes());
        }
        out.extend_from_slice(&message);
        drop(message);
        let submission =
            Submission { mailbox_id: user.mailbox_id, return_path: tx.sender, recipients: tx.recipients, message: out };
        match self.inner.services.submissions.submit(submission).await {
            Ok(queue_id) => {
                tracing::info!(remote = %self.peer, mailbox = %user.address, queue_id, "message submitted");
                self.reply(250, [2, 0, 0], &format!("Message accepted as {queue_id}"));
            }
            Err(SubmitError::RateLimited { retry_after_secs }) => {
                let text = format!("Sending limit reached for this mailbox; try again in {retry_after_secs} seconds");
                self.reply(451, [4, 7, 1], &text);
            }
            Err(SubmitError::Unavailable(why)) => {
                tracing::warn!(remote = %self.peer, reason = %why, "submission not taken");
                self.reply(451, [4, 3, 0], &format!("The message was not accepted: {why}"));
            }
        }
    }
}
