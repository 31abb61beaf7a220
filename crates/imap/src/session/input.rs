//! Reading commands: bytes from the connection into the framer, and the decision on each
//! literal the client announces (RFC 9051 §4.3, RFC 7888):
//!
//! - before login a literal may have at most [`PRE_LOGIN_LITERAL`] bytes; a larger one is
//!   refused without `+` (a synchronizing client then sends nothing more; the bytes of a
//!   non-synchronizing one are read and dropped, never kept);
//! - APPEND data larger than the message limit is refused with `NO [TOOBIG]`;
//! - APPEND data larger than [`IN_MEMORY_APPEND`] goes to a spool file chunk by chunk
//!   (reading it back for the intake checks is bounded by the shared memory budget);
//! - anything else is held in memory, bounded by the framer's command limit, which is
//!   small before login ([`PRE_LOGIN_LINE`], [`PRE_LOGIN_COMMAND`]);
//! - `+` is sent only for a literal the framer really takes.

use postfach_blob::{Spool, SpoolFile};

use super::{End, Session, State};
use crate::protocol::{Command, Event, LiteralAnnouncement, LiteralDecision, Rejection, Tag};

/// Largest literal accepted before login (a LOGIN password fits many times).
pub const PRE_LOGIN_LITERAL: u64 = 8 * 1024;
/// Longest command text before login.
pub const PRE_LOGIN_LINE: usize = 8 * 1024;
/// Most bytes one command may hold before login, literals included.
pub const PRE_LOGIN_COMMAND: usize = 16 * 1024;
/// APPEND data up to this size is held in memory; larger data is spooled to disk.
pub const IN_MEMORY_APPEND: u64 = 64 * 1024;

/// What the input side keeps between framer events.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// APPEND data being written to disk.
    spool: Option<Spool>,
    /// Writing the spool failed; the command is answered with UNAVAILABLE.
    spool_failed: bool,
    /// The spooled APPEND data of the command about to run.
    pub spooled: Option<SpoolFile>,
    /// Why the session refused the literal the framer will report as refused.
    refusal: Option<(&'static str, String)>,
}

/// What the client sent next.
#[derive(Debug)]
pub(crate) enum Input {
    Command(Command),
    /// Not a command that can run: answered with `tag BAD|NO text`.
    Refused {
        tag: Option<Tag>,
        code: &'static str,
        text: String,
    },
}

impl Session {
    /// The next command, reading as much as needed.
    pub(crate) async fn next_input(&mut self) -> Result<Input, End> {
        loop {
            match self.framer.next_event() {
                None => self.read_more().await?,
                Some(Event::Literal(literal)) => {
                    let decision = self.decide(&literal).await;
                    if self.framer.decide(decision) && literal.sync {
                        self.line("+ go ahead");
                        self.conn.flush().await?;
                    }
                }
                Some(Event::LiteralChunk(bytes)) => {
                    if let Some(spool) = &mut self.input.spool
                        && let Err(e) = spool.write(&bytes).await
                    {
                        tracing::warn!(error = %e, "spooling APPEND data failed");
                        self.input.spool = None;
                        self.input.spool_failed = true;
                    }
                }
                Some(Event::Rejected { tag, reason }) => {
                    self.input.spool = None;
                    let (code, text) = match reason {
                        Rejection::LiteralRefused => {
                            self.input.refusal.take().unwrap_or(("NO", "[TOOBIG] the literal is too large".to_string()))
                        }
                        Rejection::LineTooLong => ("BAD", "the command line is too long".to_string()),
                        Rejection::CommandTooLarge => ("NO", "[TOOBIG] the command is too large".to_string()),
                        Rejection::LiteralMinusTooLarge => {
                            ("BAD", "a non-synchronizing literal may have at most 4096 bytes".to_string())
                        }
                    };
                    return Ok(Input::Refused { tag, code, text });
                }
                Some(Event::Command(input)) => {
                    let spooled = match self.input.spool.take() {
                        Some(spool) if input.spooled.is_some() => spool.finish().await.ok(),
                        _ => None,
                    };
                    if std::mem::take(&mut self.input.spool_failed) || (input.spooled.is_some() && spooled.is_none()) {
                        let tag = input.parse().ok().map(|c| c.tag);
                        let text = "[UNAVAILABLE] the message could not be received; please try again later".into();
                        return Ok(Input::Refused { tag, code: "NO", text });
                    }
                    return Ok(match input.parse() {
                        Ok(command) => {
                            self.input.spooled = spooled;
                            Input::Command(command)
                        }
                        Err(e) => Input::Refused { tag: e.tag, code: "BAD", text: e.reason.to_string() },
                    });
                }
            }
        }
    }

    /// Reads more bytes into the framer; the wait is shorter before login.
    pub(crate) async fn read_more(&mut self) -> Result<(), End> {
        let settings = &self.server.settings;
        let timeout = match self.state {
            State::NotAuthenticated => settings.login_timeout,
            _ => settings.idle_timeout,
        };
        self.conn.fill(timeout).await?;
        let n = self.conn.buffered().len();
        self.framer.push(self.conn.buffered());
        self.conn.consume(n);
        Ok(())
    }

    async fn decide(&mut self, literal: &LiteralAnnouncement) -> LiteralDecision {
        let refuse = |input: &mut super::input::Pending, code, text: String| {
            input.refusal = Some((code, text));
            LiteralDecision::Refuse
        };
        if matches!(self.state, State::NotAuthenticated) && literal.len > PRE_LOGIN_LITERAL {
            let text = format!("[LIMIT] before login a literal may have at most {PRE_LOGIN_LITERAL} bytes");
            return refuse(&mut self.input, "NO", text);
        }
        if !literal.append_data {
            return LiteralDecision::Accept;
        }
        let max = self.server.settings.max_message_size;
        if literal.len > max {
            // RFC 9051 §7.1: TOOBIG; RFC 7889 tells the limit in CAPABILITY.
            let text = format!("[TOOBIG] the message is larger than the limit of {max} bytes");
            return refuse(&mut self.input, "NO", text);
        }
        if literal.len <= IN_MEMORY_APPEND {
            return LiteralDecision::Accept;
        }
        match self.server.blobs.spool().await {
            Ok(spool) => {
                self.input.spool = Some(spool);
                LiteralDecision::Stream
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a spool file for APPEND");
                let text = "[UNAVAILABLE] the message cannot be received right now; please try again later".into();
                refuse(&mut self.input, "NO", text)
            }
        }
    }
}
