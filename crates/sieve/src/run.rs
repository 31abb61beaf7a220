//! One run of a mailbox's active script over an arriving message, turned into an
//! [`Outcome`] that delivery carries out. No I/O: the vacation memory is asked through
//! `replied`, a run is bounded by the runtime's limits (`crate::runtime`).
//!
//! The vacation question ("did this sender get this reply within `:days`?") is answered
//! without awaiting inside the interpreter: run once answering "no"; if that run wants to
//! reply and the store says the reply is not due, run again answering "yes" for that id.
//! The same script over the same message takes the same path.

use std::sync::Arc;

use crate::Script;

/// The envelope of one delivery to one mailbox.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// MAIL FROM; empty for the null sender.
    pub from: &'a str,
    /// The recipient address that reached the mailbox.
    pub to: &'a str,
    /// The mailbox's own address (vacation never answers it).
    pub mailbox: &'a str,
}

/// A vacation reply the script wants to send: the complete message the interpreter
/// built (RFC 5230: `Auto-Submitted: auto-replied`, `In-Reply-To`, `References`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vacation {
    /// Whom it is for (the envelope sender).
    pub to: String,
    /// The interpreter's name for this reply (sender and handle or reason): the key of the
    /// `:days` memory.
    pub id: String,
    /// `:days` (or `:seconds`) in seconds.
    pub period_secs: u64,
    pub message: Vec<u8>,
}

/// A folder the message goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInto {
    pub folder: String,
    pub flags: Vec<String>,
    /// `:create`: make the folder when it does not exist.
    pub create: bool,
}

/// What the script decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Keep in the implicit keep folder (INBOX, or Junk by the spam decision), with flags.
    pub keep: Option<Vec<String>>,
    pub file_into: Vec<FileInto>,
    /// `reject`/`ereject` and the reason for the sender.
    pub reject: Option<String>,
    /// `redirect` targets (checked against `[sieve] redirect` by delivery).
    pub redirect: Vec<String>,
    pub vacation: Option<Vacation>,
    /// Why the run failed; delivery then keeps the message in the implicit keep folder.
    pub error: Option<RunError>,
}

/// A run that could not finish (the message is kept).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    #[error("the filter script ran too long and was stopped")]
    TooLong,
    #[error("the filter script failed: {0}")]
    Failed(String),
}

impl Outcome {
    /// Whether the message ends up stored nowhere (a `discard`, or only a redirect
    /// without `:copy`, or a reject).
    pub fn stores_nothing(&self) -> bool {
        self.error.is_none() && self.keep.is_none() && self.file_into.is_empty()
    }
}

/// Runs `script` over `message` for one mailbox. `replied(id)`: whether the vacation
/// reply named `id` went out within its period (asked at most once per id).
pub fn run(script: &Script, message: &[u8], envelope: Envelope<'_>, replied: &dyn Fn(&str) -> bool) -> Outcome {
    let runtime = crate::runtime();
    let mut context =
        runtime.filter(message).with_user_address(envelope.mailbox).with_envelope(sieve::Envelope::To, envelope.to);
    if !envelope.from.is_empty() {
        context.set_envelope(sieve::Envelope::From, envelope.from);
    }
    let mut outcome = Outcome::default();
    let mut created: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut pending: Option<(String, u64)> = None;
    let mut input = sieve::Input::script(sieve::Script::Personal("active".into()), Arc::clone(&script.0));
    while let Some(result) = context.run(input) {
        input = true.into();
        match result {
            Ok(sieve::Event::Keep { flags, .. }) => outcome.keep = Some(flags),
            Ok(sieve::Event::Discard) => {}
            Ok(sieve::Event::FileInto { folder, flags, create, .. }) => {
                outcome.file_into.push(FileInto { folder, flags, create })
            }
            Ok(sieve::Event::Reject { reason, .. }) => outcome.reject = Some(reason),
            Ok(sieve::Event::DuplicateId { id, expiry, .. }) => {
                let seen = replied(&id);
                pending = (!seen).then_some((id, expiry));
                input = seen.into();
            }
            Ok(sieve::Event::CreatedMessage { message_id, message }) => created.push((message_id, message)),
            Ok(sieve::Event::SendMessage { recipient, message_id, .. }) => {
                let to = match recipient {
                    sieve::Recipient::Address(a) | sieve::Recipient::List(a) => a,
                    sieve::Recipient::Group(mut all) => all.pop().unwrap_or_default(),
                };
                match created.iter().position(|(id, _)| *id == message_id) {
                    Some(at) if message_id > 0 => {
                        let (_, message) = created.swap_remove(at);
                        let (id, period_secs) = pending.take().unwrap_or_default();
                        outcome.vacation = Some(Vacation { to, id, period_secs, message });
                    }
                    _ => outcome.redirect.push(to),
                }
            }
            Ok(
                sieve::Event::MailboxExists { .. }
                | sieve::Event::ListContains { .. }
                | sieve::Event::IncludeScript { .. }
                | sieve::Event::Function { .. },
            ) => input = false.into(),
            Ok(sieve::Event::SetEnvelope { .. } | sieve::Event::Notify { .. }) => {}
            Err(sieve::runtime::RuntimeError::CPULimitReached) => {
                outcome.error = Some(RunError::TooLong);
                break;
            }
            Err(e) => {
                outcome.error = Some(RunError::Failed(e.to_string()));
                break;
            }
        }
    }
    // RFC 3834 §2 and RFC 5230 §4.5, checked here too: the interpreter misses some
    // (`Auto-Submitted`, `Precedence: list`/`junk`).
    if outcome.vacation.is_some() && automatic(message) {
        outcome.vacation = None;
    }
    outcome
}

/// The most header bytes read for the automatic-mail check.
const MAX_HEADER_SCAN: usize = 64 * 1024;

/// Whether the message says it was sent automatically or to a list: `Auto-Submitted`
/// other than `no`, `Precedence` bulk, list or junk, or a `List-*` field.
pub(crate) fn automatic(message: &[u8]) -> bool {
    let head = &message[..message.len().min(MAX_HEADER_SCAN)];
    let end = head.windows(4).position(|w| w == b"\r\n\r\n").or_else(|| head.windows(2).position(|w| w == b"\n\n"));
    let head = String::from_utf8_lossy(&head[..end.unwrap_or(head.len())]);
    // Unfold, then look at each field.
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ").replace("\n ", " ").replace("\n\t", " ");
    unfolded.lines().any(|line| {
        let Some((name, value)) = line.split_once(':') else { return false };
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim().to_ascii_lowercase();
        let first = value.split([';', ' ', '(']).next().unwrap_or("");
        match name.as_str() {
            "auto-submitted" => first != "no",
            "precedence" => matches!(first, "bulk" | "list" | "junk"),
            n => n.starts_with("list-"),
        }
    })
}
