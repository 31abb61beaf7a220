//! Capabilities, STARTTLS, LOGIN, AUTHENTICATE (PLAIN, LOGIN with SASL-IR), ENABLE and
//! ID. Credentials are decoded by `postfach_auth::sasl` and decided by the one
//! authentication gate; this module only turns its answer into IMAP words (RFC 5530
//! response codes), never more than `Refusal::public` allows.

use postfach_auth::sasl::{Exchange, SaslMechanism, Step};
use postfach_auth::{Attempt, AuthError, Connection, Principal};
use postfach_policy::PublicRefusal;
use postfach_types::{Mechanism, Secret, Service};

use super::{End, Failure, Outcome, Session, State, bad, no, ok};
use crate::protocol::{AString, Atom, Event, LiteralDecision, Tag};

impl Session {
    /// The capability list for the current state (RFC 9051 §7.2.2).
    pub(crate) fn capabilities(&self) -> String {
        let mut caps = vec!["IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE", "NAMESPACE"];
        match self.state {
            State::NotAuthenticated => {
                let encrypted = self.conn.is_tls();
                if self.conn.can_start_tls() {
                    caps.push("STARTTLS");
                }
                if encrypted || self.server.auth.plaintext_auth_allowed() {
                    caps.extend(["AUTH=PLAIN", "AUTH=LOGIN"]);
                } else {
                    // RFC 9051 §6.2.3
                    caps.push("LOGINDISABLED");
                }
            }
            _ => caps.extend([
                "UIDPLUS",
                "MOVE",
                "UNSELECT",
                "CHILDREN",
                "SPECIAL-USE",
                "LIST-EXTENDED",
                "LIST-STATUS",
                "ESEARCH",
                "SEARCHRES",
                "STATUS=SIZE",
                "QUOTA",
                "QUOTA=RES-STORAGE",
                "QUOTA=RES-MESSAGE",
                "BINARY",
                "CONDSTORE",
                "QRESYNC",
                "UTF8=ACCEPT",
            ]),
        }
        let mut text = caps.join(" ");
        if !matches!(self.state, State::NotAuthenticated) {
            // RFC 7889: the largest APPEND accepted.
            text.push_str(&format!(" APPENDLIMIT={}", self.server.settings.max_message_size));
        }
        text
    }

    /// RFC 9051 §6.2.1: answer in plaintext, then negotiate. Whatever the client sent
    /// after the command is discarded (RFC 2595 §3.1): the connection's buffer by
    /// `Conn::start_tls`, the framer's here.
    pub(crate) async fn starttls(&mut self, tag: &Tag) -> Outcome {
        if !self.conn.can_start_tls() {
            return bad("STARTTLS is only possible on an unencrypted connection that offers it");
        }
        self.line(&format!("{} OK begin TLS negotiation now", tag.as_str()));
        self.framer.discard_buffered();
        self.conn.start_tls().await.map_err(|_| Failure::End(End::Quiet))?;
        // The tagged reply went out before the handshake.
        Err(Failure::Answered)
    }

    fn connection(&self) -> Connection {
        Connection { remote_ip: self.conn.peer().ip(), tls: self.conn.tls_info().cloned() }
    }

    fn no_plaintext(&self) -> bool {
        !self.conn.is_tls() && !self.server.auth.plaintext_auth_allowed()
    }

    pub(crate) async fn login_command(&mut self, username: AString, password: Secret<Vec<u8>>) -> Outcome {
        let connection = self.connection();
        let (Ok(login), Ok(secret)) =
            (String::from_utf8(username.0), String::from_utf8(password.expose().clone()).map(Secret::new))
        else {
            let refused = self.server.auth.refuse_malformed(Service::Imap, Mechanism::ImapLogin, &connection).await;
            return self.refused(&refused);
        };
        self.log_in(Mechanism::ImapLogin, &login, &secret).await
    }

    /// The credentials go through the gate, also without TLS when LOGINDISABLED is
    /// advertised (RFC 9051 §6.2.3): the gate records the attempt and marks a correct
    /// password as exposed.
    async fn log_in(&mut self, mechanism: Mechanism, login: &str, secret: &Secret<String>) -> Outcome {
        let connection = self.connection();
        let attempt = Attempt { service: Service::Imap, mechanism, login, secret, connection: &connection };
        let result = self.server.auth.authenticate(attempt).await;
        self.logged_in(result)
    }

    /// The gate's answer to a login: the session enters the authenticated state, or the
    /// refusal is answered.
    fn logged_in(&mut self, result: Result<Principal, AuthError>) -> Outcome {
        match result {
            Ok(Principal::Mailbox { id, customer_id, address, may_send, app_password, login_entry }) => {
                tracing::info!(remote = %self.conn.peer(), mailbox = %address, client = ?self.client, "IMAP login");
                let principal = Principal::Mailbox {
                    id,
                    customer_id,
                    address: address.clone(),
                    may_send,
                    app_password,
                    login_entry,
                };
                self.principal = Some(principal);
                self.state = State::Authenticated { mailbox: id, address };
                self.conn.set_login_deadline(None);
                let limits = crate::protocol::FramerConfig::default();
                self.framer.set_limits(limits.max_line, limits.max_command);
                self.changes = Some(self.server.store.subscribe());
                self.failures = 0;
                let caps = self.capabilities();
                Ok(format!("[CAPABILITY {caps}] logged in"))
            }
            Ok(Principal::Account { .. }) => {
                self.refused(&AuthError::Refused(postfach_policy::Refusal::BadCredentials))
            }
            Err(e) => self.refused(&e),
        }
    }

    /// The reply to a refused login.
    fn refused(&mut self, error: &AuthError) -> Outcome {
        let Some(refusal) = error.refusal() else {
            tracing::warn!(error = %error, "IMAP login could not be checked");
            return no(Some("UNAVAILABLE"), "logins are not possible right now; please try again later");
        };
        self.failures += 1;
        match refusal.public(self.conn.is_tls()) {
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
            PublicRefusal::AppPasswordRequired => no(
                Some("AUTHORIZATIONFAILED"),
                "this mailbox's password works only in the customer panel: create an app password for this device there and enter it here instead",
            ),
            PublicRefusal::NotForThisAppPassword => no(
                Some("AUTHORIZATIONFAILED"),
                "this app password is not for IMAP: create one for IMAP in the customer panel, or allow IMAP for it",
            ),
        }
    }

    /// AUTHENTICATE (RFC 9051 §6.2.2) with PLAIN or LOGIN, initial response allowed
    /// (RFC 4959): the exchange of `postfach_auth::sasl` in `+` continuations. Without
    /// TLS, when plaintext logins are off, no password is asked for.
    pub(crate) async fn authenticate(&mut self, mechanism: Atom, initial: Option<Secret<Vec<u8>>>) -> Outcome {
        let Some(mechanism) = SaslMechanism::parse(mechanism.as_str()) else {
            return no(None, "this authentication mechanism is not supported; use PLAIN or LOGIN");
        };
        let may_prompt = !self.no_plaintext();
        let (mut exchange, mut step) =
            Exchange::start(mechanism, initial.as_ref().map(|ir| ir.expose().as_slice()), may_prompt);
        let end = loop {
            match step {
                Step::End(end) => break end,
                Step::Challenge(challenge) => step = exchange.respond(&self.sasl_response(challenge).await?),
            }
        };
        let connection = self.connection();
        let gate = self.server.auth.clone();
        match gate.finish_sasl(Service::Imap, mechanism, end, &connection).await {
            None => bad("authentication cancelled"),
            Some(result) => self.logged_in(result),
        }
    }

    /// Sends a continuation with `challenge` and returns the client's line (RFC 9051
    /// §6.2.2). The line is bounded by the framer; a literal has no place in it.
    async fn sasl_response(&mut self, challenge: &str) -> Result<Vec<u8>, Failure> {
        self.line(&format!("+ {challenge}"));
        self.conn.flush().await?;
        loop {
            match self.framer.next_event() {
                None => self.read_more().await?,
                Some(Event::Command(input)) => return Ok(input.bytes),
                Some(Event::Literal(_)) => {
                    self.framer.decide(LiteralDecision::Refuse);
                }
                Some(Event::LiteralChunk(_)) => {}
                Some(Event::Rejected { .. }) => return bad("the authentication data is too long"),
            }
        }
    }

    /// ENABLE (RFC 5161, RFC 9051 §6.3.1): CONDSTORE, QRESYNC (RFC 7162), IMAP4rev2 and
    /// UTF8=ACCEPT (RFC 6855).
    pub(crate) fn enable(&mut self, capabilities: &[Atom]) -> Outcome {
        let mut enabled = Vec::new();
        for cap in capabilities {
            let name = cap.as_str().to_ascii_uppercase();
            let newly = match name.as_str() {
                "CONDSTORE" => !std::mem::replace(&mut self.enabled.condstore, true),
                "QRESYNC" => {
                    self.enabled.condstore = true;
                    !std::mem::replace(&mut self.enabled.qresync, true)
                }
                "IMAP4REV2" => !std::mem::replace(&mut self.enabled.rev2, true),
                "UTF8=ACCEPT" => !std::mem::replace(&mut self.enabled.utf8, true),
                _ => false,
            };
            if newly {
                enabled.push(name);
            }
        }
        // RFC 5161 §3.2: only what was newly enabled.
        self.line(format!("* ENABLED {}", enabled.join(" ")).trim_end());
        ok("ENABLE done")
    }

    /// ID (RFC 2971): remember what the client calls itself; tell our name.
    pub(crate) fn id(&mut self, fields: Option<Vec<(AString, Option<AString>)>>) -> Outcome {
        let value = |key: &str| {
            fields.as_ref()?.iter().find(|(k, _)| k.as_bytes().eq_ignore_ascii_case(key.as_bytes())).and_then(
                |(_, v)| {
                    v.as_ref().map(|v| {
                        let text = String::from_utf8_lossy(v.as_bytes());
                        text.chars().take(64).map(|c| if c.is_control() { '?' } else { c }).collect::<String>()
                    })
                },
            )
        };
        if let Some(name) = value("name") {
            let version = value("version").unwrap_or_default();
            self.client = Some(format!("{name} {version}").trim().to_string());
        }
        self.line("* ID (\"name\" \"Postfach\")");
        ok("ID done")
    }
}
