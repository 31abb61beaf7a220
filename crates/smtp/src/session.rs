//! One SMTP session: the command gate and every reply, for the MX and for submission.
//!
//! Replies carry enhanced status codes (RFC 2034, RFC 3463). Failures are classified
//! where they happen (syntax 5.5.x, address 5.1.x, policy 5.7.x, media 5.6.x, server
//! 4.3.0) and turned into a reply in one place, [`Session::reply`]; details go to the
//! log, the wire gets a plain text that tells the client what to do. The only lines
//! written elsewhere are those that carry no enhanced code by their RFCs: the `220`
//! greeting, the `250` answers to HELO and EHLO (RFC 2034 §3, RFC 5321 §4.1.1.1), `354`
//! (RFC 5321 §4.1.1.4) and AUTH's `334` challenges (RFC 4954 §4). AUTH is in `login`, the
//! message checks in `intake`, the accept/Junk/refuse rules of the MX in
//! `postfach_policy::inbound`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use postfach_message::{Message, check_intake};
use postfach_net::{Conn, Ended, Line};
use postfach_policy::inbound::{
    Deferral, Folder, FromDomain, InboundDecision, InboundFacts, InboundRefusal, SenderFacts, Spam,
};
use postfach_store::customers::SpamThresholds;
use postfach_store::local::{LocalError, LocalTarget, deliver_local};
use postfach_store::messages::DeliveryFolder;
use postfach_store::resolve::Resolution;
use postfach_types::{EmailAddress, MailboxId, Space, UnixTime};
use smtp_proto::{EhloResponse, Error as ParseError, MailFrom, Request};

use crate::address::{self, PathError};
use crate::data::{self, Received};
use crate::headers::{self, Trace};
use crate::intake;
use crate::quota;
use crate::sink::{Submission, SubmitError};
use crate::spam::{self as spam_check, Checked};
use crate::tls_report;
use crate::verify::{self, SpfResults};
use crate::{Inner, SpfFailAction};

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
pub(crate) const MAX_LINE: usize = 4096;

/// Errors after which the session is closed (RFC 5321 §4.3.2 allows closing on abuse).
const MAX_ERRORS: u32 = 20;
/// Commands that do nothing towards a message, before the connection is closed.
const MAX_JUNK: u32 = 100;

pub(crate) enum Flow {
    Continue,
    Close,
}

pub(crate) struct Transaction {
    pub sender: Option<EmailAddress>,
    /// MX only: SPF results taken at MAIL FROM.
    pub spf: Option<SpfResults>,
    pub recipients: Vec<EmailAddress>,
    /// MX only: the distinct mailboxes the recipients lead to (one copy each), with
    /// their use and quotas as read at RCPT.
    pub mailboxes: BTreeMap<MailboxId, Space>,
    /// MX only: the spam thresholds of each mailbox's customer, read with it at RCPT.
    pub spam: BTreeMap<MailboxId, SpamThresholds>,
    /// MX only: the mailboxes with an active Sieve script, with its `updated_at` and the
    /// first recipient address that reached each, its own address and its customer.
    pub sieve: BTreeMap<MailboxId, postfach_filter::Scripted>,
    /// MX only: the recipient is the platform's TLS reporting address (`[tls_reports]`),
    /// the transaction's only recipient; the message is read as a TLS report, not stored.
    pub tls_report: bool,
    /// The size the client declared with MAIL FROM (RFC 1870), 0 if none.
    pub declared_size: u64,
    pub utf8: bool,
    /// Sent with REQUIRETLS (RFC 8689): the queue delivers it only over verified TLS.
    pub require_tls: bool,
}

pub(crate) struct User {
    pub mailbox_id: MailboxId,
    pub address: EmailAddress,
    pub allowed: Vec<EmailAddress>,
    /// The mailbox's sending switch, as the gate decided at login (`Principal::Mailbox`).
    pub may_send: bool,
    /// Who logged in, with the credential used (an app password is checked for
    /// revocation before every command).
    pub principal: postfach_auth::Principal,
    /// The revocation count this session last looked at (`Authenticator::still_valid`).
    pub revocations_seen: u64,
}

pub(crate) struct Session<'a> {
    pub inner: &'a Inner,
    pub kind: Kind,
    pub conn: Conn,
    pub helo: Option<String>,
    pub esmtp: bool,
    pub tx: Option<Transaction>,
    pub user: Option<User>,
    /// The SPF result of the HELO identity, once checked (RFC 7208 §2.3).
    pub helo_spf: Option<mail_auth::SpfOutput>,
    pub errors: u32,
    /// NOOP, RSET, VRFY and HELP since the last accepted message (Postfix's
    /// `smtpd_junk_command_limit`): a client that only keeps the line busy is closed.
    pub junk: u32,
    /// The code of the last reply written, for the message metrics.
    pub last_code: u16,
    /// A message's DATA is under way (354 was sent): its final reply is counted.
    pub message_phase: bool,
    /// The message just stored went to the Junk folder.
    pub stored_in_junk: bool,
}

pub(crate) async fn run(inner: &Inner, kind: Kind, mut conn: Conn) {
    let host = inner.settings.hostname.as_str();
    conn.queue(format!("220 {host} ESMTP Postfach\r\n").as_bytes());
    if kind == Kind::Submission {
        conn.set_login_deadline(Some(inner.settings.login_timeout));
    }
    let mut session = Session {
        inner,
        kind,
        conn,
        helo: None,
        esmtp: false,
        tx: None,
        user: None,
        helo_spf: None,
        errors: 0,
        junk: 0,
        last_code: 0,
        message_phase: false,
        stored_in_junk: false,
    };
    session.serve().await;
    session.conn.close().await;
}

impl Session<'_> {
    pub fn host(&self) -> &str {
        self.inner.settings.hostname.as_str()
    }

    pub fn peer(&self) -> SocketAddr {
        self.conn.peer()
    }

    /// The one place replies are written.
    pub fn reply(&mut self, code: u16, esc: [u8; 3], text: &str) {
        let text: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        let line = format!("{code} {}.{}.{} {text}\r\n", esc[0], esc[1], esc[2]);
        self.conn.queue(line.as_bytes());
        self.last_code = code;
        if code >= 500 {
            self.errors += 1;
        }
    }

    pub fn server_error(&mut self, what: &str, error: &dyn std::fmt::Display) {
        tracing::warn!(remote = %self.peer(), error = %error, "{what}");
        self.reply(451, [4, 3, 0], "Temporary server error; please try again later");
    }

    /// Reads one line for a command or a SASL response; `None` when the session must end
    /// (the reply for a timeout is queued).
    pub async fn read_line(&mut self) -> Option<Line> {
        let settings = &self.inner.settings;
        let timeout = match (self.kind, &self.user) {
            (Kind::Submission, None) => settings.login_timeout.min(settings.command_timeout),
            _ => settings.command_timeout,
        };
        match self.conn.read_line(MAX_LINE, timeout).await {
            Ok(line) => Some(line),
            Err(Ended::Timeout) => {
                // RFC 5321 §4.5.3.2: the server may close an idle connection with 421.
                let text = format!("{} Timeout waiting for a command; closing the connection", self.host());
                self.reply(421, [4, 4, 2], &text);
                None
            }
            Err(Ended::LoginTimeout) => {
                let text = format!("{} You did not log in in time; closing the connection", self.host());
                self.reply(421, [4, 4, 2], &text);
                None
            }
            Err(Ended::Closed) => None,
        }
    }

    async fn serve(&mut self) {
        loop {
            if self.errors >= MAX_ERRORS {
                self.reply(421, [4, 7, 0], "Too many errors; closing the connection");
                return;
            }
            if self.junk >= MAX_JUNK {
                self.reply(421, [4, 7, 0], "Too many commands without a message; closing the connection");
                return;
            }
            let line = match self.read_line().await {
                Some(Line::Text(line)) => line,
                Some(Line::TooLong) => {
                    let text = format!("Line too long: a command may have at most {MAX_LINE} characters");
                    self.reply(500, [5, 5, 2], &text);
                    continue;
                }
                None => return,
            };
            if let Flow::Close = self.command(&line).await {
                return;
            }
        }
    }

    /// Runs one command, timed for the metrics.
    async fn command(&mut self, line: &[u8]) -> Flow {
        if !self.credential_still_valid().await {
            self.reply(421, [4, 7, 0], "The app password of this connection was revoked; closing the connection");
            return Flow::Close;
        }
        let started = std::time::Instant::now();
        let flow = self.run_command(line).await;
        let verb = line
            .split(|b| matches!(b, b' ' | b'\r' | b'\n'))
            .next()
            .and_then(|v| std::str::from_utf8(v).ok())
            .unwrap_or_default();
        postfach_metrics::command(postfach_metrics::Protocol::Smtp, verb, started.elapsed());
        flow
    }

    /// False once the app password this session logged in with was revoked.
    async fn credential_still_valid(&mut self) -> bool {
        let Some(user) = &mut self.user else { return true };
        self.inner.services.auth.still_valid(&user.principal, &mut user.revocations_seen).await
    }

    async fn run_command(&mut self, line: &[u8]) -> Flow {
        let request = Request::parse(&mut line.iter());
        // RFC 5321 §4.1.1.11: no RCPT parameter is advertised here (no DSN extension).
        if let Ok(Request::Rcpt { to }) = &request
            && (to.orcpt.is_some() || to.rrvs != 0 || to.flags != 0)
        {
            let param = if to.orcpt.is_some() {
                "ORCPT"
            } else if to.rrvs != 0 {
                "RRVS"
            } else {
                "NOTIFY"
            };
            self.reply(555, [5, 5, 4], &format!("The parameter {param} is not supported here"));
            return Flow::Continue;
        }
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
            Ok(Request::Data) => {
                let flow = self.data().await;
                if std::mem::take(&mut self.message_phase) {
                    self.count_message();
                }
                return flow;
            }
            Ok(Request::Rset) => {
                self.junk += 1;
                self.tx = None;
                self.reply(250, [2, 0, 0], "OK");
            }
            Ok(Request::Noop { .. }) => {
                self.junk += 1;
                self.reply(250, [2, 0, 0], "OK");
            }
            // RFC 5321 §3.5.3: 252 when the server will not verify; it discloses nothing.
            Ok(Request::Vrfy { .. }) => {
                self.junk += 1;
                self.reply(252, [2, 5, 0], "Cannot verify addresses; send the message and delivery will be attempted")
            }
            Ok(Request::Expn { .. }) => self.reply(502, [5, 5, 1], "EXPN is not available"),
            Ok(Request::Help { .. }) => {
                self.junk += 1;
                self.reply(214, [2, 0, 0], "See RFC 5321; this server speaks ESMTP");
            }
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

    /// Counts the message whose DATA just ended, by its final reply.
    fn count_message(&mut self) {
        use postfach_metrics::{Inbound, Via};
        let via = match self.kind {
            Kind::Mx => Via::Mx,
            Kind::Submission => Via::Submission,
        };
        let junk = std::mem::take(&mut self.stored_in_junk);
        let result = match self.last_code {
            0 => return, // the connection ended without a final reply
            200..=299 if junk => Inbound::Junk,
            200..=299 => Inbound::Accepted,
            400..=499 => Inbound::Deferred,
            _ => Inbound::Refused,
        };
        postfach_metrics::message_in(via, result);
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
        if self.conn.can_start_tls() {
            ehlo.capabilities |= smtp_proto::EXT_START_TLS;
        }
        // RFC 8689 §3: REQUIRETLS only where the session itself is encrypted.
        if tls {
            ehlo.capabilities |= smtp_proto::EXT_REQUIRE_TLS;
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
        if !self.conn.can_start_tls() {
            self.reply(503, [5, 5, 1], "The connection is already encrypted");
            return Flow::Continue;
        }
        self.reply(220, [2, 0, 0], "Ready to start TLS");
        match self.conn.start_tls().await {
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
                tracing::debug!(remote = %self.peer(), "STARTTLS handshake failed");
                Flow::Close
            }
        }
    }

    /// MAIL FROM (RFC 5321 §4.1.1.2).
    async fn mail(&mut self, from: MailFrom<String>) {
        if self.helo.is_none() {
            return self.reply(503, [5, 5, 1], "Send EHLO first");
        }
        if self.kind == Kind::Submission {
            let Some(user) = &self.user else {
                return self.reply(530, [5, 7, 0], "Authentication required: log in with AUTH first");
            };
            if !user.may_send {
                tracing::info!(remote = %self.peer(), mailbox = %user.address, "sending refused: switched off for the mailbox");
                return self.reply(
                    550,
                    [5, 7, 1],
                    "Sending is switched off for this mailbox; the owner of the customer account can switch it on in the panel, in the mailbox's settings",
                );
            }
        }
        if self.tx.is_some() {
            return self.reply(503, [5, 5, 1], "Sender already given; send RSET to start over");
        }
        if let Some(param) = self.unsupported_mail_parameter(&from) {
            // RFC 5321 §4.1.1.11: a parameter this server did not advertise.
            return self.reply(555, [5, 5, 4], &format!("The parameter {param} is not supported here"));
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
        let declared_size = from.size as u64;
        self.tx = Some(Transaction {
            sender,
            spf,
            recipients: Vec::new(),
            mailboxes: BTreeMap::new(),
            spam: BTreeMap::new(),
            sieve: BTreeMap::new(),
            tls_report: false,
            declared_size,
            utf8,
            require_tls: from.flags & smtp_proto::MAIL_REQUIRETLS != 0,
        });
        self.reply(250, [2, 1, 0], "Sender OK");
    }

    /// The first MAIL parameter this session did not advertise: only SIZE, BODY=7BIT or
    /// 8BITMIME, SMTPUTF8, AUTH= (submission), and REQUIRETLS over TLS are taken.
    fn unsupported_mail_parameter(&self, from: &MailFrom<String>) -> Option<&'static str> {
        use smtp_proto::*;
        let mut allowed = MAIL_BODY_7BIT | MAIL_BODY_8BITMIME | MAIL_SMTPUTF8;
        if self.conn.is_tls() {
            allowed |= MAIL_REQUIRETLS;
        }
        let named = [
            (MAIL_REQUIRETLS, "REQUIRETLS"),
            (MAIL_BODY_BINARYMIME, "BODY=BINARYMIME"),
            (MAIL_RET_FULL | MAIL_RET_HDRS, "RET"),
            (MAIL_CONPERM, "CONPERM"),
            (MAIL_BY_NOTIFY | MAIL_BY_RETURN | MAIL_BY_TRACE, "BY"),
        ];
        if let Some((_, name)) = named.iter().find(|(bits, _)| from.flags & bits & !allowed != 0) {
            return Some(name);
        }
        if from.flags & !(allowed | named.iter().fold(0, |all, (bits, _)| all | bits)) != 0 {
            return Some("given");
        }
        [
            (from.env_id.is_some(), "ENVID"),
            (from.trans_id.is_some(), "TRANSID"),
            (from.solicit.is_some(), "SOLICIT"),
            (from.mtrk.is_some(), "MTRK"),
            (from.auth.is_some() && self.kind != Kind::Submission, "AUTH"),
            (from.by != 0, "BY"),
            (from.hold_for != 0 || from.hold_until != 0, "HOLDFOR"),
            (from.mt_priority != 0, "MT-PRIORITY"),
        ]
        .into_iter()
        .find_map(|(given, name)| given.then_some(name))
    }

    /// SPF of the MX's sender; refuses (and returns `None`) where the rules say so.
    async fn check_sender(&mut self, sender: Option<&EmailAddress>) -> Option<SpfResults> {
        let helo = self.helo.clone().unwrap_or_default();
        let sender_text = sender.map(EmailAddress::to_string);
        let known = self.helo_spf.clone();
        let spf =
            verify::spf(&self.inner.verifier, self.peer().ip(), &helo, self.host(), sender_text.as_deref(), known)
                .await;
        self.helo_spf = Some(spf.helo.clone());
        let result = spf.mail_from_result();
        let sender_hosted = match sender {
            Some(sender) => match self.inner.services.store.resolve(sender).await {
                Ok(resolution) => resolution != Resolution::NotHosted,
                Err(e) => {
                    self.server_error("resolving the sender failed", &e);
                    return None;
                }
            },
            None => false,
        };
        let facts = SenderFacts {
            spf: verify::spf_verdict(result),
            sender_hosted,
            reject_spf_fail: self.inner.settings.spf_fail == SpfFailAction::Reject,
        };
        match facts.decide() {
            InboundDecision::Deliver(_) => return Some(spf),
            InboundDecision::Defer(_) => {
                self.reply(451, [4, 4, 3], "Cannot check the sender's SPF record right now; please try again later")
            }
            InboundDecision::Refuse(InboundRefusal::SpfFail) => {
                // RFC 7372 §3.2: 5.7.23 for SPF validation failures.
                let domain = sender.map_or(helo, |s| s.domain().to_string());
                let text = format!("SPF: {domain} does not allow {} to send its mail", self.peer().ip());
                self.reply(550, [5, 7, 23], &text);
            }
            InboundDecision::Refuse(_) => {
                let domain = sender.map(|s| s.domain().to_string()).unwrap_or_default();
                let text = format!(
                    "{domain} is hosted here: mail from it is accepted only from its own servers (SPF {result})"
                );
                self.reply(550, [5, 7, 1], &text);
            }
        }
        None
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
        let declared_size = tx.declared_size;
        // The platform's TLS reporting address is the one MX recipient that is not a
        // mailbox: exactly this address, nothing at the hostname besides it.
        let tls_report = self.kind == Kind::Mx && self.inner.settings.tls_reports.as_ref() == Some(&recipient);
        if tls_report || tx.tls_report {
            if !tx.recipients.is_empty() {
                // RFC 5321 §4.5.3.1.10: the client sends the rest in another transaction.
                return self.reply(
                    452,
                    [4, 5, 3],
                    "The TLS report address takes its own message; send to the other recipients in another message",
                );
            }
            if let Some(tx) = &mut self.tx {
                tx.tls_report = true;
                tx.recipients.push(recipient);
            }
            return self.reply(250, [2, 1, 5], "Recipient OK");
        }
        let resolved = self.inner.services.store.resolve(&recipient).await;
        if let Ok(Resolution::Mailbox(found)) = &resolved
            && let Some((code, esc, text)) = quota::refusal(&found.space, declared_size, &recipient)
        {
            return self.reply(code, esc, &text);
        }
        if self.kind == Kind::Submission {
            // Mail to other domains is the queue's business; a local recipient was checked
            // for room above.
            if let Some(tx) = &mut self.tx {
                tx.recipients.push(recipient);
            }
            return self.reply(250, [2, 1, 5], "Recipient OK");
        }
        match resolved {
            Ok(Resolution::Mailbox(found)) => {
                if let Some(tx) = &mut self.tx {
                    tx.mailboxes.insert(found.mailbox_id, found.space);
                    tx.spam.insert(found.mailbox_id, found.spam);
                    if let Some(scripted) = postfach_filter::Scripted::of(&recipient, &found) {
                        tx.sieve.entry(found.mailbox_id).or_insert(scripted);
                    }
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

    /// DATA (RFC 5321 §4.1.1.4): the message goes to a spool file as it arrives, is read
    /// back under the memory budget and checked once, then stored or queued.
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
        let spool = match self.inner.services.blobs.spool().await {
            Ok(spool) => spool,
            Err(e) => {
                self.server_error("cannot start a spool file", &e);
                return Flow::Continue;
            }
        };
        self.conn.queue(b"354 Send the message; end it with a line holding only a dot\r\n");
        self.message_phase = true;
        self.last_code = 0;
        let max = self.inner.settings.max_message_size;
        let received = data::receive(&mut self.conn, spool, max, self.inner.settings.data_timeout).await;
        let Some(tx) = self.tx.take() else { return Flow::Continue };
        let file = match received {
            Ok(Received::Message(file)) => file,
            Ok(Received::TooBig) => {
                self.reply(552, [5, 3, 4], &format!("Message too big: the limit is {max} bytes"));
                return Flow::Continue;
            }
            Ok(Received::FarTooBig) => {
                self.reply(
                    552,
                    [5, 3, 4],
                    &format!("Message too big: the limit is {max} bytes; closing the connection"),
                );
                return Flow::Close;
            }
            Err(data::DataError::Ended(Ended::Timeout | Ended::LoginTimeout)) => {
                self.reply(421, [4, 4, 2], "Timeout waiting for the message; closing the connection");
                return Flow::Close;
            }
            Err(data::DataError::Ended(Ended::Closed)) => return Flow::Close,
            Err(data::DataError::Spool(e)) => {
                self.server_error("spooling a message failed", &e);
                return Flow::Continue;
            }
        };
        let received = match intake::load(file, &self.inner.services.budget).await {
            Ok(received) => received,
            Err(e @ intake::LoadError::Busy(_)) => {
                tracing::warn!(remote = %self.peer(), error = %e, "message not taken: server busy");
                self.reply(451, [4, 3, 1], "The server is busy; please send the message again later");
                return Flow::Continue;
            }
            Err(intake::LoadError::Spool(e)) => {
                self.server_error("reading a spooled message failed", &e);
                return Flow::Continue;
            }
        };
        // Bare line ends became CRLF: the limit holds for the message as it is stored.
        if received.bytes.len() as u64 > max {
            self.reply(552, [5, 3, 4], &format!("Message too big: the limit is {max} bytes"));
            return Flow::Continue;
        }
        let message = Message::parse(&received.bytes);
        if let Err(error) = check_intake(&message) {
            tracing::info!(remote = %self.peer(), %error, "message refused at intake");
            let (code, esc, text) = intake::refusal(&error);
            self.reply(code, esc, &text);
            return Flow::Continue;
        }
        match self.kind {
            Kind::Mx if tx.tls_report => self.receive_tls_report(&message).await,
            Kind::Mx => self.deliver_inbound(tx, &message).await,
            Kind::Submission => self.submit(tx, &message).await,
        }
        Flow::Continue
    }

    fn trace(&self, tx: &Transaction, id: &str, authenticated: bool) -> String {
        let tls = self.conn.tls_info();
        let protocol = headers::protocol(self.esmtp, tls.is_some(), authenticated, tx.utf8);
        let single = (tx.recipients.len() == 1).then(|| tx.recipients[0].to_string());
        headers::received(&Trace {
            helo: self.helo.as_deref().unwrap_or_default(),
            remote_ip: self.peer().ip(),
            hostname: self.host(),
            node: self.inner.settings.node.as_ref(),
            protocol,
            tls,
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

    async fn deliver_inbound(&mut self, tx: Transaction, message: &Message<'_>) {
        let raw = message.raw();
        let helo = self.helo.clone().unwrap_or_default();
        let sender = tx.sender.as_ref().map(EmailAddress::to_string);
        let Some(spf) = tx.spf.as_ref() else { return self.reply(451, [4, 3, 0], "Please try again") };
        let results =
            verify::message(&self.inner.verifier, raw, self.peer().ip(), &helo, self.host(), sender.as_deref(), spf)
                .await;

        // One header view: the From: domains judged here are the ones IMAP shows. DMARC
        // (mail-auth) reads the header itself; where it reads another author, the message
        // cannot be judged and is refused.
        let from_domains = message.top().author_domains();
        let from_unambiguous = intake::same_domains(&results.from_domains, &from_domains);
        if !from_unambiguous {
            tracing::info!(remote = %self.peer(), ours = ?from_domains, dmarc = ?results.from_domains, "From: read two ways");
        }

        // Anti-spoofing of hosted domains in From:, then DMARC: decided by
        // `postfach_policy::inbound` on the facts gathered here.
        let mail_from_domain = tx.sender.as_ref().map_or(helo.clone(), |s| s.domain().to_string());
        let mut from = Vec::with_capacity(from_domains.len());
        // An ambiguous From: is refused whatever its domains: no need to look them up.
        for domain in from_domains.iter().filter(|_| from_unambiguous) {
            let hosted = match self.is_hosted(domain).await {
                Ok(hosted) => hosted,
                Err(e) => return self.server_error("checking the From: domain failed", &e),
            };
            from.push(FromDomain {
                domain: domain.clone(),
                hosted,
                mail_from_aligned: verify::aligned(&mail_from_domain, domain),
                dkim_aligned: results.dkim_pass_domains.iter().any(|d| verify::aligned(d, domain)),
            });
        }
        let facts = InboundFacts {
            from_unambiguous,
            from,
            spf_pass: spf.mail_from_result() == mail_auth::SpfResult::Pass,
            dmarc: results.dmarc.clone(),
            spam: Spam::Off,
        };
        // Refused or deferred on the other facts already: rspamd need not be asked.
        if let refusal @ (InboundDecision::Refuse(_) | InboundDecision::Defer(_)) = facts.decide() {
            return self.refuse_inbound(refusal);
        }

        let id = format!("{:016x}", rand::random::<u64>());
        let spam_settings = self.inner.settings.spam.as_ref();
        let recipients: Vec<String> = tx.recipients.iter().map(EmailAddress::to_string).collect();
        let envelope = postfach_spam::Envelope {
            from: sender.as_deref(),
            recipients: &recipients,
            client: self.peer().ip(),
            helo: self.helo.as_deref(),
            user: None,
            queue_id: &id,
        };
        let checked = spam_check::check(spam_settings, raw, &envelope).await;

        // One decision per mailbox, the spam fact with its customer's thresholds; the
        // mailboxes are grouped by folder and by the spam verdict their fields show.
        let mut groups: BTreeMap<(bool, bool), Vec<MailboxId>> = BTreeMap::new();
        let mut refusals = Vec::new();
        for &mailbox in tx.mailboxes.keys() {
            let thresholds = tx.spam.get(&mailbox).copied().unwrap_or_default();
            let spam = spam_check::fact(spam_settings, &checked, thresholds);
            let decision = InboundFacts { spam, ..facts.clone() }.decide();
            match decision {
                InboundDecision::Deliver(folder) => {
                    let is_spam = spam.is_spam().unwrap_or(false);
                    groups.entry((folder == Folder::Junk, is_spam)).or_default().push(mailbox);
                }
                other => refusals.push((mailbox, other)),
            }
        }
        if groups.is_empty() {
            let refusal = refusals.into_iter().next().map(|(_, r)| r);
            if let Some(InboundDecision::Refuse(InboundRefusal::Spam { .. })) = &refusal {
                postfach_metrics::spam_check(postfach_metrics::SpamCheck::Rejected);
            }
            return self.refuse_inbound(refusal.unwrap_or(InboundDecision::Defer(Deferral::SpamUnchecked)));
        }
        // A message one recipient's customer refuses but another's takes cannot be
        // refused for one of them after DATA: it goes to the refusing one's Junk.
        for (mailbox, _) in refusals {
            groups.entry((true, true)).or_default().push(mailbox);
        }
        if matches!(checked, Checked::Scored(_)) {
            let junk = groups.keys().any(|&(_, is_spam)| is_spam);
            postfach_metrics::spam_check(if junk {
                postfach_metrics::SpamCheck::Junk
            } else {
                postfach_metrics::SpamCheck::Clean
            });
        }

        let body = headers::strip_forged_results(raw, self.host());
        let body = body.as_deref().unwrap_or(raw);
        let body_without_spam = if spam_settings.is_some() { headers::strip_spam_fields(body) } else { None };
        let body = body_without_spam.as_deref().unwrap_or(body);
        let mut head = Vec::with_capacity(1024);
        head.extend_from_slice(headers::return_path(sender.as_deref()).as_bytes());
        head.extend_from_slice(results.authentication_results.as_bytes());
        head.extend_from_slice(results.received_spf.as_bytes());
        head.extend_from_slice(self.trace(&tx, &id, false).as_bytes());
        let messages: Vec<(DeliveryFolder, Vec<MailboxId>, Vec<u8>)> = groups
            .into_iter()
            .map(|((junk, is_spam), mailboxes)| {
                let mut stored = Vec::with_capacity(head.len() + body.len() + 128);
                stored.extend_from_slice(&head);
                stored.extend_from_slice(spam_check::fields(&checked, is_spam).as_bytes());
                stored.extend_from_slice(body);
                let folder = if junk { DeliveryFolder::Junk } else { DeliveryFolder::Inbox };
                (folder, mailboxes, stored)
            })
            .collect();

        // Quotas at the end of DATA, with the real size (module `quota`).
        let largest = messages.iter().map(|(_, _, stored)| stored.len()).max().unwrap_or(0);
        if let Err((code, esc, text)) = quota::at_end_of_data(&tx.mailboxes, largest as u64) {
            return self.reply(code, esc, text);
        }

        // Invariant 8: blob fsync'd, then the metadata committed, then 250. Recipients
        // that disagree (different folders or verdicts) get one stored copy per group.
        let services = &self.inner.services;
        let mut junk_any = false;
        for (folder, mailboxes, stored) in messages {
            // Mailboxes with a script file it themselves (`postfach_filter`); the folder
            // chosen here is their implicit keep.
            let (filtered, mailboxes): (Vec<MailboxId>, Vec<MailboxId>) =
                mailboxes.into_iter().partition(|m| tx.sieve.contains_key(m));
            for mailbox in filtered {
                let Some(scripted) = tx.sieve.get(&mailbox) else { continue };
                let may_refuse = tx.mailboxes.len() == 1;
                let sending = crate::sink::Sending(&*services.submissions);
                match services.filter.deliver(&sending, scripted, tx.sender.as_ref(), folder, may_refuse, &stored).await
                {
                    Ok(postfach_filter::Filed::Rejected(reason)) => {
                        let text = format!("Refused by the recipient's mail filter: {reason}");
                        return self.reply(550, [5, 7, 1], &text);
                    }
                    Ok(filed) => {
                        tracing::info!(remote = %self.peer(), id, mailbox = mailbox.get(), ?filed, "message filtered")
                    }
                    Err(e) => {
                        tracing::warn!(remote = %self.peer(), error = %e, "storing a filtered message failed");
                        return self.reply(451, [4, 3, 0], "The message could not be stored; please try again later");
                    }
                }
                junk_any |= folder == DeliveryFolder::Junk;
            }
            if mailboxes.is_empty() {
                continue;
            }
            let target = LocalTarget::Mailboxes { batcher: &services.deliveries, mailboxes: &mailboxes, folder };
            match deliver_local(&services.blobs, stored, target).await {
                Ok(_) => {
                    junk_any |= folder == DeliveryFolder::Junk;
                    tracing::info!(remote = %self.peer(), id, sender = sender.as_deref().unwrap_or(""), mailboxes = mailboxes.len(), junk = folder == DeliveryFolder::Junk, "message stored");
                }
                Err(LocalError::Blob(e)) => {
                    tracing::warn!(remote = %self.peer(), error = %e, "writing a message failed");
                    return self.reply(
                        451,
                        [4, 3, 0],
                        "The message could not be stored right now and was not accepted; please send it again later",
                    );
                }
                Err(LocalError::Store(e)) => {
                    tracing::warn!(remote = %self.peer(), error = %e, "storing a message failed");
                    return self.reply(451, [4, 3, 0], "The message could not be stored; please try again later");
                }
            }
        }
        self.junk = 0;
        self.stored_in_junk = junk_any;
        self.reply(250, [2, 0, 0], &format!("Message stored as {id}"));
    }

    /// A message to the TLS reporting address: read as a report (module `tls_report`) and
    /// stored against each hosted domain it names; 250 only once that is done. A report
    /// about domains not hosted here is dropped (logged and counted). A message that is
    /// not a readable report is refused with 550: nothing is stored, and its sender learns
    /// at once that the report was not understood (no bounce from here).
    async fn receive_tls_report(&mut self, message: &Message<'_>) {
        use postfach_metrics::TlsReport as Counted;
        use postfach_store::tls_reports::Added;
        let report = match tls_report::read(message) {
            Ok(report) => report,
            Err(e) => {
                tracing::info!(remote = %self.peer(), error = %e, "TLS report refused");
                postfach_metrics::tls_report(Counted::Refused);
                let text = format!("This is not a TLS report this server can read: {e}");
                return self.reply(550, [5, 6, 0], &text);
            }
        };
        let store = &self.inner.services.store;
        let (mut stored, mut duplicates, mut foreign) = (0, 0, 0);
        for (domain, summary) in &report.domains {
            let added = match store.tls_report_domain(domain).await {
                Ok(Some(id)) => store.add_tls_report(id, summary).await.map(Some),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            };
            let counted = match added {
                Ok(Some(Added::Stored)) => {
                    stored += 1;
                    Counted::Stored
                }
                Ok(Some(Added::Duplicate)) => {
                    duplicates += 1;
                    Counted::Duplicate
                }
                Ok(None) => {
                    foreign += 1;
                    Counted::Foreign
                }
                Err(e) => return self.server_error("storing a TLS report failed", &e),
            };
            postfach_metrics::tls_report(counted);
        }
        let first = report.domains.values().next();
        tracing::info!(
            remote = %self.peer(),
            organization = first.map_or("", |s| s.organization.as_str()),
            report_id = first.map_or("", |s| s.report_id.as_str()),
            stored,
            duplicates,
            foreign,
            unnamed = report.unnamed_policies,
            "TLS report received"
        );
        self.junk = 0;
        self.reply(250, [2, 0, 0], "TLS report received");
    }

    /// The reply to an inbound message `postfach_policy::inbound` refused or deferred.
    fn refuse_inbound(&mut self, decision: InboundDecision) {
        match decision {
            InboundDecision::Deliver(_) => self.reply(451, [4, 3, 0], "Please try again"),
            InboundDecision::Defer(Deferral::SpamUnchecked) => self.reply(
                451,
                [4, 7, 1],
                "The message cannot be checked for spam right now; please try again later",
            ),
            InboundDecision::Defer(_) => {
                self.reply(451, [4, 4, 3], "Cannot check the sender right now; please try again later")
            }
            InboundDecision::Refuse(InboundRefusal::AmbiguousFrom) => self.reply(
                550,
                [5, 6, 0],
                "Message refused: its From: header field cannot be read unambiguously; the sending program must write one plain From: address",
            ),
            InboundDecision::Refuse(InboundRefusal::DmarcReject { domain }) => {
                let text = format!("The DMARC policy of {domain} asks to refuse this message: it failed SPF and DKIM");
                self.reply(550, [5, 7, 1], &text)
            }
            InboundDecision::Refuse(InboundRefusal::Spam { score }) => {
                let text = format!(
                    "Message refused as spam (score {score}); if it is not spam, ask the recipient to have its spam settings checked or write to them another way"
                );
                self.reply(550, [5, 7, 1], &text)
            }
            InboundDecision::Refuse(refusal) => {
                let domain = match refusal {
                    InboundRefusal::HostedFromNotAuthenticated { domain } => domain,
                    _ => String::new(),
                };
                let text = format!(
                    "Mail from {domain} is accepted only from its own servers; this message failed its SPF and DKIM checks"
                );
                self.reply(550, [5, 7, 1], &text)
            }
        }
    }

    async fn submit(&mut self, tx: Transaction, message: &Message<'_>) {
        let Some(user) = &self.user else { return self.reply(530, [5, 7, 0], "Authentication required") };
        let header = message.top();
        if let Some(foreign) = crate::senders::first_foreign(&header, &user.allowed) {
            let text = format!(
                "You may not send as <{}>: From:, Sender: and Resent-From: must name an address of your mailbox {}",
                headers::clean(&foreign),
                user.address
            );
            return self.reply(550, [5, 7, 1], &text);
        }
        let has_from = header.has("From");
        if !has_from && tx.sender.is_none() {
            return self.reply(
                550,
                [5, 7, 1],
                "A message with an empty envelope sender needs a From: address of your mailbox",
            );
        }
        // RFC 6409 §8: the MSA may complete the header.
        let host = self.host().to_string();
        let id = format!("{:016x}", rand::random::<u64>());
        let raw = message.raw();
        let mut out = Vec::with_capacity(raw.len() + 512);
        out.extend_from_slice(self.trace(&tx, &id, true).as_bytes());
        if !has_from && let Some(sender) = &tx.sender {
            out.extend_from_slice(format!("From: <{sender}>\r\n").as_bytes());
        }
        if !header.has("Date") {
            out.extend_from_slice(format!("Date: {}\r\n", UnixTime::now().rfc5322()).as_bytes());
        }
        if !header.has("Message-ID") {
            out.extend_from_slice(format!("Message-ID: <{id}.{:08x}@{host}>\r\n", rand::random::<u32>()).as_bytes());
        }
        out.extend_from_slice(raw);
        let Some(user) = &self.user else { return };
        let submission = Submission {
            mailbox_id: user.mailbox_id,
            return_path: tx.sender,
            recipients: tx.recipients,
            message: out,
            client: self.peer().ip(),
            require_tls: tx.require_tls,
        };
        let address = user.address.clone();
        match self.inner.services.submissions.submit(submission).await {
            Ok(queue_id) => {
                tracing::info!(remote = %self.peer(), mailbox = %address, queue_id, "message submitted");
                self.junk = 0;
                self.reply(250, [2, 0, 0], &format!("Message accepted as {queue_id}"));
            }
            Err(SubmitError::RateLimited { retry_after_secs }) => {
                let text = format!("Sending limit reached for this mailbox; try again in {retry_after_secs} seconds");
                self.reply(451, [4, 7, 1], &text);
            }
            Err(SubmitError::Unavailable(why)) => {
                tracing::warn!(remote = %self.peer(), reason = %why, "submission not taken");
                self.reply(451, [4, 3, 0], &format!("The message was not accepted: {why}"));
            }
        }
    }
}
