//! The rspamd client (rspamd's HTTP protocol, <https://rspamd.com/doc/developers/protocol.html>):
//! [`Rspamd::check`] asks the normal worker (`POST /checkv2`) about an inbound message
//! with its envelope; [`Learner`] teaches the controller (`POST /learnspam`,
//! `/learnham`) from a bounded queue, off the path of the IMAP command that moved the
//! message.
//!
//! rspamd runs next to Postfach on loopback, over plain HTTP: a small HTTP/1.1 client
//! ([`http`]) is all it takes, bounded in time and in the size of the answer, and no
//! HTTP library is needed. What rspamd answers is believed only as far as a number and
//! a few short names go.

mod http;
mod learn;

use std::net::IpAddr;
use std::time::Duration;

use postfach_types::{Secret, SpamScore};

pub use http::Endpoint;
pub use learn::{LEARN_QUEUE, Learn, Learner};

/// The largest answer read from rspamd (a `/checkv2` reply with every symbol is a few KiB).
pub const MAX_REPLY: usize = 256 * 1024;
/// The symbol names kept from an answer, for the log.
const MAX_SYMBOLS: usize = 32;

/// Why rspamd gave no verdict: the message is then "unchecked".
#[derive(Debug, thiserror::Error)]
pub enum SpamError {
    #[error("cannot reach rspamd: {0}")]
    Connect(std::io::Error),
    #[error("rspamd did not answer within {0:?}")]
    Timeout(Duration),
    #[error("talking to rspamd failed: {0}")]
    Io(std::io::Error),
    #[error("rspamd's answer is not HTTP/1.x as expected: {0}")]
    Protocol(&'static str),
    #[error("rspamd's answer is larger than {MAX_REPLY} bytes")]
    TooLarge,
    #[error("rspamd answered HTTP {status}: {text}")]
    Status { status: u16, text: String },
    #[error("rspamd's answer cannot be read: {0}")]
    Json(String),
}

/// How rspamd is reached (`[spam]`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The normal worker, for `/checkv2`.
    pub rspamd: Endpoint,
    /// The controller, for learning; `None`: no learning.
    pub controller: Option<Endpoint>,
    /// The controller's password (`Password:` header); `None`: none sent.
    pub password: Option<Secret<String>>,
    /// The whole exchange (connect, send, answer) must end within this.
    pub timeout: Duration,
}

/// What Postfach tells rspamd besides the message.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// MAIL FROM; `None` for the null sender.
    pub from: Option<&'a str>,
    pub recipients: &'a [String],
    pub client: IpAddr,
    pub helo: Option<&'a str>,
    /// The authenticated user (submission); `None` on the MX.
    pub user: Option<&'a str>,
    pub queue_id: &'a str,
}

/// rspamd's verdict on a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub score: SpamScore,
    /// rspamd's own reject score (for the log; Postfach's thresholds decide).
    pub required: Option<SpamScore>,
    /// rspamd's own action (for the log).
    pub action: String,
    /// The symbols that matched, at most [`MAX_SYMBOLS`] (for the log).
    pub symbols: Vec<String>,
}

/// The rspamd client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Rspamd {
    settings: std::sync::Arc<Settings>,
}

impl Rspamd {
    pub fn new(settings: Settings) -> Self {
        Rspamd { settings: std::sync::Arc::new(settings) }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Asks rspamd about `message` (`POST /checkv2`).
    pub async fn check(&self, message: &[u8], envelope: &Envelope<'_>) -> Result<Verdict, SpamError> {
        let mut headers: Vec<(&str, String)> = Vec::with_capacity(6 + envelope.recipients.len());
        headers.push(("IP", envelope.client.to_string()));
        headers.push(("Queue-Id", envelope.queue_id.to_string()));
        // rspamd reads an empty From as the null sender.
        headers.push(("From", envelope.from.unwrap_or("").to_string()));
        if let Some(helo) = envelope.helo {
            headers.push(("Helo", helo.to_string()));
        }
        if let Some(user) = envelope.user {
            headers.push(("User", user.to_string()));
        }
        for recipient in envelope.recipients {
            headers.push(("Rcpt", recipient.clone()));
        }
        let body = http::post(&self.settings.rspamd, "/checkv2", &headers, message, self.settings.timeout).await?;
        parse_verdict(&body)
    }

    /// Teaches rspamd that `message` is spam or ham. An answer that it knew this message
    /// already counts as success.
    pub async fn learn(&self, learn: Learn, message: &[u8]) -> Result<(), SpamError> {
        let Some(controller) = &self.settings.controller else { return Ok(()) };
        let mut headers = Vec::new();
        if let Some(password) = &self.settings.password {
            headers.push(("Password", password.expose().clone()));
        }
        match http::post(controller, learn.path(), &headers, message, self.settings.timeout).await {
            Ok(_) => Ok(()),
            // rspamd answers 208 Already Reported for a message learnt before.
            Err(SpamError::Status { status: 208, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[derive(serde::Deserialize)]
struct Reply {
    score: f64,
    required_score: Option<f64>,
    #[serde(default)]
    action: String,
    #[serde(default)]
    symbols: serde_json::Map<String, serde_json::Value>,
}

fn parse_verdict(body: &[u8]) -> Result<Verdict, SpamError> {
    let reply: Reply = serde_json::from_slice(body).map_err(|e| SpamError::Json(e.to_string()))?;
    let score = SpamScore::from_f64(reply.score).ok_or(SpamError::Json("the score is not a number".into()))?;
    let clean = |s: &str| s.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(64).collect::<String>();
    Ok(Verdict {
        score,
        required: reply.required_score.and_then(SpamScore::from_f64),
        action: clean(&reply.action),
        symbols: reply.symbols.keys().take(MAX_SYMBOLS).map(|s| clean(s)).collect(),
    })
}

#[cfg(test)]
mod tests;
