//! SASL for every protocol (SMTP AUTH RFC 4954, IMAP AUTHENTICATE RFC 9051 §6.2.2, POP3
//! AUTH RFC 5034): the exchange as one state machine ([`Exchange`]), base64 responses,
//! PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login-00). Decided once, here:
//!
//! - a response is base64 of UTF-8 (RFC 4616 §2); anything else is malformed;
//! - `*` cancels (RFC 4954 §4, RFC 9051 §6.2.2, RFC 5034 §4);
//! - an `=` initial response is an empty response (RFC 4954 §4, RFC 9051 §6.2.2);
//! - PLAIN's authorization identity must be empty or name the same account as the
//!   authentication identity, compared as canonical logins ([`LoginName`]): nobody acts as
//!   another account. A mismatch is malformed: counted against the address and recorded,
//!   but no password is checked;
//! - without TLS, when the operator allows no plaintext logins, no password is asked for
//!   (`may_prompt: false`): the exchange ends with [`End::Unencrypted`] before the prompt.
//!
//! The exchange does no I/O. A protocol drives it with its own framing: it sends each
//! [`Step::Challenge`] (`334` in SMTP, `+` in IMAP and POP3), feeds the client's line to
//! [`Exchange::respond`] and hands the [`End`] to [`crate::Authenticator::finish_sasl`],
//! which authenticates the credentials or refuses (throttled and recorded) everything else.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use postfach_types::{LoginName, Mechanism, Secret};

/// The mechanisms a protocol may offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    Login,
}

impl SaslMechanism {
    /// The mechanism a client named (case-insensitively), if it is one of ours.
    pub fn parse(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("PLAIN") {
            Some(Self::Plain)
        } else if name.eq_ignore_ascii_case("LOGIN") {
            Some(Self::Login)
        } else {
            None
        }
    }

    /// How the login log names it.
    pub fn mechanism(self) -> Mechanism {
        match self {
            Self::Plain => Mechanism::Plain,
            Self::Login => Mechanism::SaslLogin,
        }
    }
}

/// LOGIN's first challenge, "Username:" in base64.
pub const LOGIN_USERNAME: &str = "VXNlcm5hbWU6";
/// LOGIN's second challenge, "Password:" in base64.
pub const LOGIN_PASSWORD: &str = "UGFzc3dvcmQ6";

/// Why a SASL response could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("the response is not valid base64 of UTF-8 text")]
    NotBase64,
    #[error("the PLAIN message does not have the form [authzid] NUL authcid NUL password")]
    Malformed,
    /// PLAIN named another account to act as.
    #[error("the authorization identity differs from the login")]
    ForeignAuthorization,
}

/// Login name and password from a SASL exchange.
#[derive(Debug)]
pub struct Credentials {
    pub login: String,
    pub secret: Secret<String>,
}

/// What the protocol does next.
#[derive(Debug)]
pub enum Step {
    /// Send this challenge (already base64; empty for PLAIN's) in the protocol's framing,
    /// then pass the client's next line to [`Exchange::respond`].
    Challenge(&'static str),
    /// The exchange is over.
    End(End),
}

/// How an exchange ended. Only [`End::Cancelled`] is answered without the gate.
#[derive(Debug)]
pub enum End {
    Credentials(Credentials),
    /// The client sent `*` (RFC 4954 §4, RFC 9051 §6.2.2, RFC 5034 §4).
    Cancelled,
    /// Undecodable or of the wrong form: refused through `refuse_malformed`.
    Malformed(SaslError),
    /// A password would have had to be asked for without TLS while the operator allows no
    /// plaintext logins; `login` is the name LOGIN's first response gave, if any.
    Unencrypted {
        login: Option<String>,
    },
}

#[derive(Debug)]
enum Waiting {
    /// PLAIN's one message.
    Plain,
    /// LOGIN's user name.
    LoginUser,
    /// LOGIN's password, for this user name.
    LoginPassword(String),
    /// Nothing: the exchange has ended.
    Nothing,
}

/// One SASL exchange without I/O (see the module documentation).
#[derive(Debug)]
pub struct Exchange {
    mechanism: SaslMechanism,
    /// Whether a prompt for credentials may be sent on this connection.
    may_prompt: bool,
    waiting: Waiting,
}

impl Exchange {
    /// Starts an exchange; `initial` is the initial response sent with the command
    /// (RFC 4959, RFC 4954 §4, RFC 5034 §4), `may_prompt` whether credentials may be
    /// asked for on this connection (false without TLS when plaintext logins are off).
    pub fn start(mechanism: SaslMechanism, initial: Option<&[u8]>, may_prompt: bool) -> (Self, Step) {
        let waiting = match mechanism {
            SaslMechanism::Plain => Waiting::Plain,
            SaslMechanism::Login => Waiting::LoginUser,
        };
        let mut exchange = Self { mechanism, may_prompt, waiting };
        let step = match initial {
            Some(initial) if initial.trim_ascii() == b"=" => exchange.accept(String::new()),
            Some(initial) => exchange.respond(initial),
            None => exchange.prompt(),
        };
        (exchange, step)
    }

    /// The mechanism, for the login log.
    pub fn mechanism(&self) -> SaslMechanism {
        self.mechanism
    }

    /// The client's response line (without its line end) to the last challenge.
    pub fn respond(&mut self, line: &[u8]) -> Step {
        let line = line.trim_ascii();
        if line == b"*" {
            self.waiting = Waiting::Nothing;
            return Step::End(End::Cancelled);
        }
        match decode(line) {
            Ok(text) => self.accept(text),
            Err(e) => self.end(End::Malformed(e)),
        }
    }

    /// A decoded response.
    fn accept(&mut self, text: String) -> Step {
        match std::mem::replace(&mut self.waiting, Waiting::Nothing) {
            Waiting::Plain => match plain(&text) {
                Ok(credentials) => Step::End(End::Credentials(credentials)),
                Err(e) => Step::End(End::Malformed(e)),
            },
            Waiting::LoginUser => {
                self.waiting = Waiting::LoginPassword(text);
                self.prompt()
            }
            Waiting::LoginPassword(login) => {
                Step::End(End::Credentials(Credentials { login, secret: Secret::new(text) }))
            }
            // A response after the end is not part of any exchange.
            Waiting::Nothing => Step::End(End::Malformed(SaslError::Malformed)),
        }
    }

    /// The challenge for what the exchange waits for, unless asking is not allowed.
    fn prompt(&mut self) -> Step {
        if !self.may_prompt {
            let login = match std::mem::replace(&mut self.waiting, Waiting::Nothing) {
                Waiting::LoginPassword(login) => Some(login),
                _ => None,
            };
            return Step::End(End::Unencrypted { login });
        }
        match self.waiting {
            Waiting::Plain => Step::Challenge(""),
            Waiting::LoginUser => Step::Challenge(LOGIN_USERNAME),
            Waiting::LoginPassword(_) => Step::Challenge(LOGIN_PASSWORD),
            Waiting::Nothing => Step::End(End::Malformed(SaslError::Malformed)),
        }
    }

    fn end(&mut self, end: End) -> Step {
        self.waiting = Waiting::Nothing;
        Step::End(end)
    }
}

/// Base64 of UTF-8 text (RFC 4648 §4 with padding).
fn decode(line: &[u8]) -> Result<String, SaslError> {
    let bytes = STANDARD.decode(line).map_err(|_| SaslError::NotBase64)?;
    String::from_utf8(bytes).map_err(|_| SaslError::NotBase64)
}

/// `[authzid] NUL authcid NUL passwd` (RFC 4616 §2).
fn plain(message: &str) -> Result<Credentials, SaslError> {
    let mut parts = message.split('\0');
    let (Some(authzid), Some(authcid), Some(passwd), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    if authcid.is_empty() {
        return Err(SaslError::Malformed);
    }
    if !authzid.is_empty() && !same_account(authzid, authcid) {
        return Err(SaslError::ForeignAuthorization);
    }
    Ok(Credentials { login: authcid.to_string(), secret: Secret::new(passwd.to_string()) })
}

/// Whether two login names name the same account (both must be valid logins).
fn same_account(a: &str, b: &str) -> bool {
    match (LoginName::parse(a), LoginName::parse(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> Vec<u8> {
        STANDARD.encode(s).into_bytes()
    }

    /// What an exchange ended with, in a comparable form.
    #[derive(Debug, PartialEq, Eq)]
    enum Seen {
        Challenge(&'static str),
        Credentials(String, String),
        Cancelled,
        Malformed(SaslError),
        Unencrypted(Option<String>),
    }

    fn seen(step: Step) -> Seen {
        match step {
            Step::Challenge(c) => Seen::Challenge(c),
            Step::End(End::Credentials(c)) => Seen::Credentials(c.login, c.secret.expose().clone()),
            Step::End(End::Cancelled) => Seen::Cancelled,
            Step::End(End::Malformed(e)) => Seen::Malformed(e),
            Step::End(End::Unencrypted { login }) => Seen::Unencrypted(login),
        }
    }

    /// Runs an exchange over the client's lines; returns every step.
    fn run(mechanism: &str, initial: Option<&[u8]>, may_prompt: bool, lines: &[&[u8]]) -> Vec<Seen> {
        let mechanism = SaslMechanism::parse(mechanism).expect("mechanism");
        let (mut exchange, mut step) = Exchange::start(mechanism, initial, may_prompt);
        let mut lines = lines.iter();
        let mut steps = Vec::new();
        loop {
            let done = matches!(step, Step::End(_));
            steps.push(seen(step));
            if done {
                return steps;
            }
            step = exchange.respond(lines.next().expect("a response for every challenge"));
        }
    }

    /// mechanism, initial response, may prompt, client lines => steps
    type Row<'a> = (&'a str, Option<&'a [u8]>, bool, Vec<&'a [u8]>, Vec<Seen>);

    fn creds(login: &str, password: &str) -> Seen {
        Seen::Credentials(login.into(), password.into())
    }

    #[test]
    fn exchanges() {
        use Seen::*;
        let max = b64("\0max@acme.example\0secret pw");
        let as_max = b64("MAX@Acme.Example\0max@acme.example\0pw");
        let as_eve = b64("eve@acme.example\0max@acme.example\0pw");
        let empty_authcid = b64("\0\0pw");
        let no_nul = b64("no separators");
        let extra = b64("a\0b@c.example\0pw\0extra");
        let invalid_utf8 = STANDARD.encode([0xff, 0xfe]).into_bytes();
        let user = b64("max@acme.example");
        let pw = b64("pw");
        let ask_user = Challenge(LOGIN_USERNAME);
        let ask_pw = Challenge(LOGIN_PASSWORD);
        let login = |s: &str| Some(s.to_string());
        #[rustfmt::skip]
        let table: Vec<Row> = vec![
            // mechanism, initial response, may prompt, client lines => steps
            ("PLAIN", Some(&max),           true,  vec![],              vec![creds("max@acme.example", "secret pw")]),
            ("plain", None,                 true,  vec![&max],          vec![Challenge(""), creds("max@acme.example", "secret pw")]),
            ("PLAIN", None,                 true,  vec![b"*"],          vec![Challenge(""), Cancelled]),
            ("PLAIN", None,                 true,  vec![b"* \r\n"],     vec![Challenge(""), Cancelled]),
            ("PLAIN", Some(b"*"),           true,  vec![],              vec![Cancelled]),
            // The same account spelled differently may be named as authzid; another may not.
            ("PLAIN", Some(&as_max),        true,  vec![],              vec![creds("max@acme.example", "pw")]),
            ("PLAIN", Some(&as_eve),        true,  vec![],              vec![Malformed(SaslError::ForeignAuthorization)]),
            ("PLAIN", Some(&empty_authcid), true,  vec![],              vec![Malformed(SaslError::Malformed)]),
            ("PLAIN", Some(&no_nul),        true,  vec![],              vec![Malformed(SaslError::Malformed)]),
            ("PLAIN", Some(&extra),         true,  vec![],              vec![Malformed(SaslError::Malformed)]),
            ("PLAIN", Some(b"="),           true,  vec![],              vec![Malformed(SaslError::Malformed)]),
            ("PLAIN", Some(b"!!"),          true,  vec![],              vec![Malformed(SaslError::NotBase64)]),
            ("PLAIN", Some(b"AAA"),         true,  vec![],              vec![Malformed(SaslError::NotBase64)]),
            ("PLAIN", None,                 true,  vec![&invalid_utf8], vec![Challenge(""), Malformed(SaslError::NotBase64)]),
            // An initial response is the client's choice; a prompt is ours.
            ("PLAIN", Some(&max),           false, vec![],              vec![creds("max@acme.example", "secret pw")]),
            ("PLAIN", None,                 false, vec![],              vec![Unencrypted(None)]),
            ("LOGIN", None,                 true,  vec![&user, &pw],    vec![ask_user, ask_pw, creds("max@acme.example", "pw")]),
            ("LOGIN", Some(&user),          true,  vec![&pw],           vec![Challenge(LOGIN_PASSWORD), creds("max@acme.example", "pw")]),
            ("LOGIN", Some(b"="),           true,  vec![&pw],           vec![Challenge(LOGIN_PASSWORD), creds("", "pw")]),
            ("LOGIN", None,                 true,  vec![&user, b"*"],   vec![Challenge(LOGIN_USERNAME), Challenge(LOGIN_PASSWORD), Cancelled]),
            ("LOGIN", None,                 true,  vec![b"%%"],         vec![Challenge(LOGIN_USERNAME), Malformed(SaslError::NotBase64)]),
            ("LOGIN", None,                 false, vec![],              vec![Unencrypted(None)]),
            ("LOGIN", Some(&user),          false, vec![],              vec![Unencrypted(login("max@acme.example"))]),
        ];
        for (i, (mechanism, initial, may_prompt, lines, expected)) in table.into_iter().enumerate() {
            assert_eq!(run(mechanism, initial, may_prompt, &lines), expected, "row {i}");
        }
    }

    #[test]
    fn after_the_end_nothing_is_credentials() {
        let (mut exchange, step) = Exchange::start(SaslMechanism::Plain, Some(&b64("\0a@b.example\0pw")), true);
        assert!(matches!(step, Step::End(End::Credentials(_))));
        assert!(matches!(exchange.respond(&b64("\0a@b.example\0pw")), Step::End(End::Malformed(_))));
    }

    #[test]
    fn mechanisms_and_challenges() {
        assert_eq!(decode(LOGIN_USERNAME.as_bytes()).as_deref(), Ok("Username:"));
        assert_eq!(decode(LOGIN_PASSWORD.as_bytes()).as_deref(), Ok("Password:"));
        assert_eq!(SaslMechanism::parse("plain"), Some(SaslMechanism::Plain));
        assert_eq!(SaslMechanism::parse("Login"), Some(SaslMechanism::Login));
        assert_eq!(SaslMechanism::parse("CRAM-MD5"), None);
        assert_eq!(SaslMechanism::parse("PLAİN"), None);
    }
}
