//! AUTH on the submission ports (RFC 4954): PLAIN and LOGIN, the exchange of
//! `postfach_auth::sasl` in `334` lines, decided by the one authentication gate.
//!
//! Without TLS, when the operator allows no plaintext logins, no password is ever asked
//! for: AUTH LOGIN and AUTH PLAIN without an initial response are refused at once (the
//! attempt is recorded). An AUTH PLAIN that brought its password along in plaintext goes
//! through the gate anyway, so a correct password is marked as exposed.

use postfach_auth::sasl::{Exchange, SaslMechanism, Step};
use postfach_auth::{AuthError, Connection, Principal};
use postfach_net::Line;
use postfach_policy::PublicRefusal;
use postfach_types::Service;

use crate::session::{Flow, Kind, Session, User};

impl Session<'_> {
    fn connection(&self) -> Connection {
        Connection { remote_ip: self.peer().ip(), tls: self.conn.tls_info().cloned() }
    }

    /// AUTH PLAIN and LOGIN (RFC 4954): the exchange of `postfach_auth::sasl` in `334`
    /// lines, ended by the one authentication gate.
    pub(crate) async fn auth(&mut self, mechanism: u64, initial: String) -> Flow {
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
        let mechanism = match mechanism {
            smtp_proto::AUTH_PLAIN => SaslMechanism::Plain,
            smtp_proto::AUTH_LOGIN => SaslMechanism::Login,
            _ => {
                self.reply(504, [5, 5, 4], "Unknown authentication mechanism; use PLAIN or LOGIN");
                return Flow::Continue;
            }
        };
        let gate = self.inner.services.auth.clone();
        let may_prompt = self.conn.is_tls() || gate.plaintext_auth_allowed();
        let initial = (!initial.is_empty()).then_some(initial.as_bytes());
        let (mut exchange, mut step) = Exchange::start(mechanism, initial, may_prompt);
        let end = loop {
            match step {
                Step::End(end) => break end,
                Step::Challenge(challenge) => {
                    self.conn.queue(format!("334 {challenge}\r\n").as_bytes());
                    match self.read_line().await {
                        Some(Line::Text(line)) => step = exchange.respond(&line),
                        Some(Line::TooLong) => {
                            self.reply(500, [5, 5, 6], "Authentication response too long");
                            return Flow::Continue;
                        }
                        None => return Flow::Continue,
                    }
                }
            }
        };
        let connection = self.connection();
        let revocations_seen = gate.revocations_seen();
        match gate.finish_sasl(Service::Submission, mechanism, end, &connection).await {
            None => self.reply(501, [5, 7, 0], "Authentication cancelled"),
            Some(Ok(principal @ Principal::Mailbox { .. })) => {
                let Principal::Mailbox { id, ref address, may_send, .. } = principal else { return Flow::Continue };
                let address = address.clone();
                match self.inner.services.store.allowed_senders(id).await {
                    Ok(allowed) => {
                        tracing::info!(remote = %self.peer(), mailbox = %address, may_send, "submission login");
                        self.user =
                            Some(User { mailbox_id: id, address, allowed, may_send, principal, revocations_seen });
                        self.conn.set_login_deadline(None);
                        self.reply(235, [2, 7, 0], "Logged in");
                    }
                    Err(e) => self.server_error("reading the sender addresses failed", &e),
                }
            }
            Some(Ok(Principal::Account { .. })) => self.reply(535, [5, 7, 8], "Wrong address or password"),
            Some(Err(error)) => {
                self.refused(&error);
            }
        }
        Flow::Continue
    }

    /// The reply for a refused login: only what [`postfach_policy::Refusal::public`]
    /// allows the client to learn.
    fn refused(&mut self, error: &AuthError) -> Flow {
        let Some(refusal) = error.refusal() else {
            tracing::warn!(remote = %self.peer(), error = %error, "authentication failed temporarily");
            self.reply(454, [4, 7, 0], "Temporary authentication failure; please try again later");
            return Flow::Continue;
        };
        match refusal.public(self.conn.is_tls()) {
            PublicRefusal::Failed { encrypted: true } => self.reply(535, [5, 7, 8], "Wrong address or password"),
            // RFC 4954 §6: 538 5.7.11 "Encryption required for requested authentication mechanism".
            PublicRefusal::Failed { encrypted: false } => self.reply(
                538,
                [5, 7, 11],
                "Login failed: check the address and the password, and log in over an encrypted connection (STARTTLS or port 465), which this mailbox may require",
            ),
            PublicRefusal::TlsRequired => self.reply(
                530,
                [5, 7, 0],
                "Encryption required: use STARTTLS (or port 465) before logging in; no password was accepted",
            ),
            // Not given for submission (its sending switch is asked at MAIL FROM); kept
            // for a rule that may refuse the service one day.
            PublicRefusal::ServiceNotAllowed => {
                self.reply(535, [5, 7, 8], "This mailbox may not log in to send mail; ask the provider of your mail service")
            }
            PublicRefusal::Disabled => {
                self.reply(535, [5, 7, 8], "This mailbox is disabled; ask the provider of your mail service")
            }
            PublicRefusal::Throttled => {
                self.reply(454, [4, 7, 0], "Too many failed logins; please wait a while and try again")
            }
            PublicRefusal::Malformed => self.reply(
                535,
                [5, 7, 8],
                "Cannot read the login: send base64 of your address and password, for your own mailbox only",
            ),
            PublicRefusal::AppPasswordRequired => self.reply(
                535,
                [5, 7, 8],
                "This mailbox's password works only in the customer panel: create an app password for this device there and use it here",
            ),
            PublicRefusal::NotForThisAppPassword => self.reply(
                535,
                [5, 7, 8],
                "This app password is not for sending mail: create one for sending in the customer panel",
            ),
        }
        Flow::Continue
    }
}
