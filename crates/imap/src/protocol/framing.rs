//! Splitting the client's byte stream into commands (RFC 9051 §2.2.1, §4.3; RFC 7888
//! LITERAL+/LITERAL-; RFC 3516 literal8). The session pushes what it read and pulls
//! [`Event`]s. A command line ending in a literal header stops the framer with
//! [`Event::Literal`] until the session calls [`Framer::decide`]: keep the literal in
//! memory, stream it out as [`Event::LiteralChunk`]s (big APPEND data, written to a spool
//! file), or refuse it. A refused or overlong command is consumed to its end without being
//! kept (a refused synchronizing literal is never sent, so nothing more of it is read) and
//! reported once as [`Event::Rejected`]. Memory is bounded: one command's text (at most
//! `max_line`), the literals the session accepted into memory (at most `max_command` in
//! all), and whatever the session pushed but no event has used yet.

use std::mem;

use super::command::Tag;
use super::parse::{CommandInput, SpooledLiteral, is_append_data_prefix};

/// RFC 7888 §5: under LITERAL- a non-synchronizing literal is at most 4096 bytes.
pub const LITERAL_MINUS_MAX: u64 = 4096;
/// An input buffer with more capacity than this is freed when it runs empty.
const KEEP_CAPACITY: usize = 16 * 1024;
/// Enough of a line's end to recognise a literal header (`~{`, 20 digits, `+}`, CR).
const TAIL: usize = 32;

/// Limits of one connection's framer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramerConfig {
    /// Longest command text: all lines of one command, literal data not counted.
    pub max_line: usize,
    /// Most bytes one command may hold in memory, text and accepted literals together; an
    /// [`LiteralDecision::Accept`] beyond it is refused with [`Rejection::CommandTooLarge`].
    pub max_command: usize,
    /// Apply RFC 7888 LITERAL- rules: a non-synchronizing literal over 4096 bytes is refused.
    pub literal_minus: bool,
}

impl Default for FramerConfig {
    fn default() -> Self {
        FramerConfig { max_line: 64 * 1024, max_command: 1024 * 1024, literal_minus: false }
    }
}

/// A literal announced at the end of a command line; the session must answer with
/// [`Framer::decide`] before the framer goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteralAnnouncement {
    pub tag: Option<Tag>,
    pub len: u64,
    /// `{n}`: the client waits for `+` before it sends the data. After `Accept` or
    /// `Stream` the session sends the continuation; after `Refuse` it answers instead.
    pub sync: bool,
    /// A literal8 `~{n}` (RFC 3516).
    pub binary: bool,
    /// This literal is APPEND message data, the one kind that may be streamed.
    pub append_data: bool,
    /// Bytes of the command held so far (see [`Framer::pending_command`]).
    pub command_len: usize,
}

/// The session's answer to a [`LiteralAnnouncement`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiteralDecision {
    /// Keep the literal in the command's bytes.
    Accept,
    /// Hand the data out as [`Event::LiteralChunk`]s; the command then comes with a
    /// [`SpooledLiteral`]. At most one literal per command (a second one is refused).
    Stream,
    /// Refuse the command; it is skipped and then reported as [`Rejection::LiteralRefused`].
    Refuse,
}

/// Why a command was skipped rather than delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The command text exceeded `max_line` (answer `BAD`).
    LineTooLong,
    /// The session refused a literal (it knows why: `NO [TOOBIG]`, `BAD`, ...).
    LiteralRefused,
    /// Accepting the literal would exceed `max_command`.
    CommandTooLarge,
    /// A non-synchronizing literal over 4096 bytes under LITERAL- (RFC 7888 §5, `BAD`).
    LiteralMinusTooLarge,
}

/// What the framer has for the session.
#[derive(Debug)]
pub enum Event {
    /// A complete command, ready for [`CommandInput::parse`].
    Command(CommandInput),
    /// A literal waits for [`Framer::decide`]; repeated until decided.
    Literal(LiteralAnnouncement),
    /// The next bytes of a streamed literal; together they are exactly its data.
    LiteralChunk(Vec<u8>),
    /// A command was skipped to its end; answer it now (`* BAD` without a tag).
    Rejected { tag: Option<Tag>, reason: Rejection },
}

#[derive(Debug)]
enum State {
    /// Reading command text up to the next LF.
    Line,
    Decide(LiteralAnnouncement),
    /// Reading literal data into the command, or streaming it out.
    Literal {
        remaining: u64,
        stream: bool,
    },
    /// Discarding the literal data of a rejected command.
    Skip {
        remaining: u64,
    },
    /// Discarding the rest of a rejected command's line, keeping only its end to see
    /// whether another non-synchronizing literal follows.
    SkipLine {
        tail: Vec<u8>,
    },
    /// The rejected command is consumed; report it.
    Report,
}

/// Incremental command framer for one connection.
#[derive(Debug)]
pub struct Framer {
    config: FramerConfig,
    input: Vec<u8>,
    /// Bytes of `input` already used.
    pos: usize,
    /// The command so far.
    cmd: Vec<u8>,
    /// Where the current line starts in `cmd`.
    line_start: usize,
    /// Command text in `cmd` (literal data not counted).
    text_len: usize,
    /// Literals announced in this command so far.
    literals: usize,
    spooled: Option<SpooledLiteral>,
    state: State,
    rejected: Option<(Option<Tag>, Rejection)>,
}

impl Framer {
    pub fn new(config: FramerConfig) -> Self {
        Framer {
            config,
            input: Vec::new(),
            pos: 0,
            cmd: Vec::new(),
            line_start: 0,
            text_len: 0,
            literals: 0,
            spooled: None,
            state: State::Line,
            rejected: None,
        }
    }

    /// Adds bytes read from the client. Push only after [`Framer::next_event`] returned
    /// `None`, so that input buffered here stays one read long.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        self.input.extend_from_slice(bytes);
    }

    /// Changes the size limits (a session uses small ones before login); the command in
    /// progress is judged by the new ones from its next byte.
    pub fn set_limits(&mut self, max_line: usize, max_command: usize) {
        self.config.max_line = max_line;
        self.config.max_command = max_command;
    }

    /// The command received so far (while a literal waits for a decision: up to and
    /// including its header).
    pub fn pending_command(&self) -> &[u8] {
        &self.cmd
    }

    /// Input pushed but not used yet.
    pub fn buffered(&self) -> usize {
        self.input.len() - self.pos
    }

    /// Forgets everything buffered and any partial command: after STARTTLS, plaintext
    /// sent behind the command must not be read as if it came over TLS (RFC 3501 §6.2.1,
    /// RFC 2595 §3.1).
    pub fn discard_buffered(&mut self) {
        *self = Framer::new(self.config);
    }

    /// The next event, or `None` when more input is needed.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            let avail = self.input.len() - self.pos;
            match self.state {
                State::Decide(ref a) => return Some(Event::Literal(a.clone())),
                State::Report => {
                    self.state = State::Line;
                    let (tag, reason) = self.rejected.take()?;
                    return Some(Event::Rejected { tag, reason });
                }
                State::Literal { remaining: 0, .. } => {
                    self.state = State::Line;
                    self.line_start = self.cmd.len();
                }
                State::Skip { remaining: 0 } => self.state = State::SkipLine { tail: Vec::new() },
                _ if avail == 0 => {
                    self.release_input();
                    return None;
                }
                State::Line => {
                    if let Some(event) = self.read_line() {
                        return Some(event);
                    }
                }
                State::Literal { remaining, stream } => {
                    let n = clamp(remaining, avail);
                    let chunk = &self.input[self.pos..self.pos + n];
                    self.pos += n;
                    self.state = State::Literal { remaining: remaining - n as u64, stream };
                    if stream {
                        return Some(Event::LiteralChunk(chunk.to_vec()));
                    }
                    self.cmd.extend_from_slice(chunk);
                }
                State::Skip { remaining } => {
                    let n = clamp(remaining, avail);
                    self.pos += n;
                    self.state = State::Skip { remaining: remaining - n as u64 };
                }
                State::SkipLine { ref mut tail } => {
                    let rest = &self.input[self.pos..];
                    let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
                        keep_tail(tail, rest);
                        self.pos = self.input.len();
                        continue;
                    };
                    keep_tail(tail, &rest[..lf]);
                    self.pos += lf + 1;
                    // A synchronizing literal at the end is never sent: the client waits for "+".
                    self.state = match literal_header(tail) {
                        Some(h) if !h.sync => State::Skip { remaining: h.len },
                        _ => State::Report,
                    };
                }
            }
        }
    }

    /// Answers the pending [`Event::Literal`]; ignored when none is pending.
    /// Returns whether the literal is taken (its bytes are to come): only then may a
    /// synchronizing client be told to send them. A decision the framer cannot keep
    /// (accepting beyond `max_command`, a second stream) is a refusal.
    pub fn decide(&mut self, decision: LiteralDecision) -> bool {
        let a = match mem::replace(&mut self.state, State::Line) {
            State::Decide(a) => a,
            other => {
                self.state = other;
                return false;
            }
        };
        let fits = (self.cmd.len() as u64).saturating_add(a.len) <= self.config.max_command as u64;
        let refuse = |a: &LiteralAnnouncement| if a.sync { State::Report } else { State::Skip { remaining: a.len } };
        match decision {
            LiteralDecision::Accept if fits => {
                self.cmd.reserve(clamp(a.len, self.config.max_command));
                self.state = State::Literal { remaining: a.len, stream: false };
                true
            }
            LiteralDecision::Stream if self.spooled.is_none() => {
                self.spooled = Some(SpooledLiteral { offset: self.cmd.len(), len: a.len, binary: a.binary });
                self.state = State::Literal { remaining: a.len, stream: true };
                true
            }
            LiteralDecision::Accept => {
                self.reject(a.tag.clone(), Rejection::CommandTooLarge, refuse(&a));
                false
            }
            _ => {
                self.reject(a.tag.clone(), Rejection::LiteralRefused, refuse(&a));
                false
            }
        }
    }

    /// Moves command text up to the next LF into `cmd`; on a complete line, the command
    /// or a literal announcement.
    fn read_line(&mut self) -> Option<Event> {
        let rest = &self.input[self.pos..];
        let lf = rest.iter().position(|&b| b == b'\n');
        if self.text_len + lf.unwrap_or(rest.len()) > self.config.max_line {
            let tag = self.tag_with(rest);
            let mut tail = Vec::new();
            keep_tail(&mut tail, &self.cmd[self.line_start..]);
            self.reject(tag, Rejection::LineTooLong, State::SkipLine { tail });
            return None;
        }
        let Some(lf) = lf else {
            self.cmd.extend_from_slice(rest);
            self.text_len += rest.len();
            self.pos = self.input.len();
            return None;
        };
        self.cmd.extend_from_slice(&rest[..=lf]);
        self.text_len += lf + 1;
        self.pos += lf + 1;
        let line = &self.cmd[self.line_start..self.cmd.len() - 1];
        if self.line_start == 0 && (line.is_empty() || line == b"\r") {
            // An empty line is not a command; telnet users send them.
            self.cmd.clear();
            self.text_len = 0;
            return None;
        }
        let Some(h) = literal_header(line) else {
            let (bytes, spooled) = (mem::take(&mut self.cmd), self.spooled.take());
            (self.line_start, self.text_len, self.literals) = (0, 0, 0);
            return Some(Event::Command(CommandInput { bytes, spooled }));
        };
        let tag = tag_of(&self.cmd);
        if !h.sync && self.config.literal_minus && h.len > LITERAL_MINUS_MAX {
            // RFC 7888 §5: reject with BAD, but the data is coming and must be read.
            self.reject(tag, Rejection::LiteralMinusTooLarge, State::Skip { remaining: h.len });
            return None;
        }
        // APPEND data is the first or second literal (after a mailbox name as a literal);
        // looking no further keeps the prefix parsing linear in the command's length.
        self.literals += 1;
        let a = LiteralAnnouncement {
            tag,
            len: h.len,
            sync: h.sync,
            binary: h.binary,
            append_data: self.literals <= 2 && is_append_data_prefix(&self.cmd),
            command_len: self.cmd.len(),
        };
        self.state = State::Decide(a.clone());
        Some(Event::Literal(a))
    }

    /// Drops the command so far; `Report` follows `next` (skipping states) or is `next`.
    fn reject(&mut self, tag: Option<Tag>, reason: Rejection, next: State) {
        self.rejected = Some((tag, reason));
        (self.cmd, self.spooled, self.line_start, self.text_len, self.literals) = (Vec::new(), None, 0, 0, 0);
        self.state = next;
    }

    /// The tag of the command, completing `cmd` from unread input if needed.
    fn tag_with(&self, rest: &[u8]) -> Option<Tag> {
        if self.cmd.contains(&b' ') {
            return tag_of(&self.cmd);
        }
        let more = &rest[..rest.iter().position(|&b| b == b' ')?];
        Tag::new(&[&self.cmd[..], more].concat())
    }

    fn release_input(&mut self) {
        self.input.clear();
        self.pos = 0;
        if self.input.capacity() > KEEP_CAPACITY {
            self.input = Vec::new();
        }
    }
}

fn clamp(remaining: u64, avail: usize) -> usize {
    usize::try_from(remaining).map_or(avail, |r| r.min(avail))
}

fn tag_of(cmd: &[u8]) -> Option<Tag> {
    Tag::new(&cmd[..cmd.iter().position(|&b| b == b' ')?])
}

fn keep_tail(tail: &mut Vec<u8>, more: &[u8]) {
    tail.extend_from_slice(&more[more.len().saturating_sub(TAIL)..]);
    let excess = tail.len().saturating_sub(TAIL);
    tail.drain(..excess);
}

#[derive(Debug, Clone, Copy)]
struct Header {
    len: u64,
    sync: bool,
    binary: bool,
}

/// RFC 9051 §4.3 `{n}`, RFC 7888 §3 `{n+}`, RFC 3516 §4.2 `~{n}`: whether `line`
/// (without LF) ends with a literal header. A length that overflows is no header; the
/// parser then rejects the command.
fn literal_header(line: &[u8]) -> Option<Header> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let rest = line.strip_suffix(b"}")?;
    let (rest, sync) = match rest.strip_suffix(b"+") {
        Some(rest) => (rest, false),
        None => (rest, true),
    };
    let start = rest.iter().rposition(|b| !b.is_ascii_digit()).map_or(0, |p| p + 1);
    let (rest, digits) = rest.split_at(start);
    let rest = rest.strip_suffix(b"{").filter(|_| !digits.is_empty())?;
    let len = digits.iter().try_fold(0u64, |n, &b| n.checked_mul(10)?.checked_add(u64::from(b - b'0')))?;
    Some(Header { len, sync, binary: rest.ends_with(b"~") })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::command::{AppendData, CommandBody};

    /// An event in comparable form; adjacent chunks are merged.
    #[derive(Debug, PartialEq, Eq)]
    enum Ev {
        Cmd(Vec<u8>, Option<SpooledLiteral>),
        Lit(Option<String>, u64, bool, bool),
        Data(Vec<u8>),
        Rej(Option<String>, Rejection),
    }

    /// Feeds `input` in `chunk`-sized pieces, deciding every literal with `decide`.
    fn run(
        f: &mut Framer,
        input: &[u8],
        chunk: usize,
        decide: impl Fn(&LiteralAnnouncement) -> LiteralDecision,
    ) -> Vec<Ev> {
        let mut out = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            f.push(piece);
            while let Some(event) = f.next_event() {
                assert!(f.cmd.len() <= f.config.max_command + f.config.max_line);
                match event {
                    Event::Command(c) => out.push(Ev::Cmd(c.bytes, c.spooled)),
                    Event::Literal(a) => {
                        out.push(Ev::Lit(a.tag.as_ref().map(|t| t.as_str().to_owned()), a.len, a.sync, a.append_data));
                        f.decide(decide(&a));
                    }
                    Event::LiteralChunk(bytes) => match out.last_mut() {
                        Some(Ev::Data(data)) => data.extend(bytes),
                        _ => out.push(Ev::Data(bytes)),
                    },
                    Event::Rejected { tag, reason } => out.push(Ev::Rej(tag.map(|t| t.as_str().to_owned()), reason)),
                }
            }
        }
        out
    }

    fn cmd(s: &str) -> Ev {
        Ev::Cmd(s.as_bytes().to_vec(), None)
    }

    fn tag(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    fn accept(_: &LiteralAnnouncement) -> LiteralDecision {
        LiteralDecision::Accept
    }

    fn refuse(_: &LiteralAnnouncement) -> LiteralDecision {
        LiteralDecision::Refuse
    }

    #[test]
    fn pipelined_commands_in_any_chunking() {
        let input = b"\r\na NOOP\r\nb LOGIN {5}\r\nalice {3+}\r\npw1\r\nc SELECT INBOX\nd APPEND x ~{2}\r\n\0\x01\r\n";
        let want = vec![
            cmd("a NOOP\r\n"),
            Ev::Lit(tag("b"), 5, true, false),
            Ev::Lit(tag("b"), 3, false, false),
            cmd("b LOGIN {5}\r\nalice {3+}\r\npw1\r\n"),
            cmd("c SELECT INBOX\n"),
            Ev::Lit(tag("d"), 2, true, true),
            cmd("d APPEND x ~{2}\r\n\0\x01\r\n"),
        ];
        for chunk in [1, 2, 3, 5, 7, 11, input.len()] {
            let mut f = Framer::new(FramerConfig::default());
            assert_eq!(run(&mut f, input, chunk, accept), want, "chunk {chunk}");
            assert_eq!(f.buffered(), 0);
        }
    }

    #[test]
    fn sync_literal_waits_for_the_decision() {
        let mut f = Framer::new(FramerConfig::default());
        f.push(b"a LOGIN {5}\r\nalice");
        let Some(Event::Literal(a)) = f.next_event() else { panic!() };
        assert!(a.sync && !a.append_data && a.len == 5);
        assert_eq!(f.pending_command(), b"a LOGIN {5}\r\n");
        // Undecided: the same announcement again, no progress.
        assert!(matches!(f.next_event(), Some(Event::Literal(b)) if b == a));
        f.decide(LiteralDecision::Accept);
        assert!(f.next_event().is_none());
        f.push(b" secret\r\n");
        let Some(Event::Command(c)) = f.next_event() else { panic!() };
        assert_eq!(c.bytes, b"a LOGIN {5}\r\nalice secret\r\n");
        assert!(c.parse().is_ok());
    }

    #[test]
    fn refused_sync_literal_leaves_the_next_command_intact() {
        let input = b"a APPEND INBOX {999999}\r\nb NOOP\r\n";
        for chunk in [1, 4, input.len()] {
            let mut f = Framer::new(FramerConfig::default());
            let want = vec![
                Ev::Lit(tag("a"), 999999, true, true),
                Ev::Rej(tag("a"), Rejection::LiteralRefused),
                cmd("b NOOP\r\n"),
            ];
            assert_eq!(run(&mut f, input, chunk, refuse), want);
        }
    }

    #[test]
    fn refused_non_sync_literal_is_consumed_without_buffering() {
        let data = vec![b'x'; 100_000];
        let input = [&b"a APPEND INBOX {100000+}\r\n"[..], &data, b" {3+}\r\nabc\r\nb NOOP\r\n"].concat();
        for chunk in [1, 999, input.len()] {
            let mut f = Framer::new(FramerConfig { max_command: 100, ..Default::default() });
            let got = run(&mut f, &input, chunk, refuse);
            let want = vec![
                Ev::Lit(tag("a"), 100_000, false, true),
                Ev::Rej(tag("a"), Rejection::LiteralRefused),
                cmd("b NOOP\r\n"),
            ];
            assert_eq!(got, want, "chunk {chunk}");
        }
        // Accepting beyond max_command is refused the same way.
        let mut f = Framer::new(FramerConfig { max_command: 100, ..Default::default() });
        let got = run(&mut f, &input, 4096, accept);
        assert_eq!(got[1], Ev::Rej(tag("a"), Rejection::CommandTooLarge));
        assert_eq!(got[2], cmd("b NOOP\r\n"));
    }

    #[test]
    fn literal_minus_limits_non_sync_literals() {
        let big = [&b"a LOGIN {5000+}\r\n"[..], &[b'p'; 5000], b" x\r\nb NOOP\r\n"].concat();
        let mut f = Framer::new(FramerConfig { literal_minus: true, ..Default::default() });
        let want = vec![Ev::Rej(tag("a"), Rejection::LiteralMinusTooLarge), cmd("b NOOP\r\n")];
        assert_eq!(run(&mut f, &big, 100, accept), want);
        let small = [&b"a LOGIN {4096+}\r\n"[..], &[b'p'; 4096], b" x\r\n"].concat();
        let got = run(&mut f, &small, 100, accept);
        assert_eq!((got.len(), &got[1]), (2, &Ev::Cmd(small.clone(), None)));
        // Without LITERAL- the same big literal is the session's call.
        let mut f = Framer::new(FramerConfig::default());
        assert_eq!(run(&mut f, &big, 100, accept).len(), 3);
    }

    #[test]
    fn streamed_literal_chunks_add_up() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let head = b"a APPEND INBOX (\\Seen) {20000}\r\n";
        let input = [&head[..], &data, b"\r\nb NOOP\r\n"].concat();
        let stream =
            |a: &LiteralAnnouncement| if a.append_data { LiteralDecision::Stream } else { LiteralDecision::Accept };
        for chunk in [1, 1000, input.len()] {
            let mut f = Framer::new(FramerConfig { max_command: 1000, ..Default::default() });
            let got = run(&mut f, &input, chunk, stream);
            let spooled = SpooledLiteral { offset: head.len(), len: 20_000, binary: false };
            let bytes = [&head[..], b"\r\n"].concat();
            assert_eq!(
                got,
                vec![
                    Ev::Lit(tag("a"), 20_000, true, true),
                    Ev::Data(data.clone()),
                    Ev::Cmd(bytes.clone(), Some(spooled)),
                    cmd("b NOOP\r\n")
                ]
            );
            let parsed = CommandInput { bytes, spooled: Some(spooled) }.parse().map(|c| c.body);
            assert!(matches!(parsed, Ok(CommandBody::Append(a)) if a.data == AppendData::Spooled(spooled)));
            assert!(f.input.capacity() <= KEEP_CAPACITY && f.cmd.capacity() == 0);
        }
        // An empty streamed literal ends at once.
        let mut f = Framer::new(FramerConfig::default());
        let got = run(&mut f, b"a APPEND x {0}\r\n\r\n", 1, stream);
        assert!(matches!(&got[1], Ev::Cmd(_, Some(s)) if s.len == 0));
    }

    #[test]
    fn overlong_line_is_skipped_and_reported() {
        let config = FramerConfig { max_line: 100, ..Default::default() };
        let long = format!("a{}\r\nb NOOP\r\n", " X".repeat(200));
        // The end of the long line announces a non-sync literal, which must be skipped too.
        let with_literal = format!("c LOGIN {} {{3+}}\r\nabc\r\nd NOOP\r\n", "x".repeat(200));
        for chunk in [1, 7, 64, 1000] {
            let mut f = Framer::new(config);
            assert_eq!(
                run(&mut f, long.as_bytes(), chunk, accept),
                vec![Ev::Rej(tag("a"), Rejection::LineTooLong), cmd("b NOOP\r\n")]
            );
            let got = run(&mut f, with_literal.as_bytes(), chunk, accept);
            assert_eq!(got, vec![Ev::Rej(tag("c"), Rejection::LineTooLong), cmd("d NOOP\r\n")]);
        }
        // No readable tag: an endless first word.
        let mut f = Framer::new(config);
        let got = run(&mut f, format!("{}\r\n", "y".repeat(300)).as_bytes(), 10, accept);
        assert_eq!(got, vec![Ev::Rej(None, Rejection::LineTooLong)]);
    }

    #[test]
    fn discard_after_starttls() {
        let mut f = Framer::new(FramerConfig::default());
        f.push(b"a STARTTLS\r\nb LOGIN injected x\r\n");
        assert!(matches!(f.next_event(), Some(Event::Command(c)) if c.bytes == b"a STARTTLS\r\n"));
        assert!(f.buffered() > 0);
        f.discard_buffered();
        assert!(f.next_event().is_none());
        f.push(b"c NOOP\r\n");
        assert!(matches!(f.next_event(), Some(Event::Command(c)) if c.bytes == b"c NOOP\r\n"));
    }

    #[test]
    fn literal_headers() {
        let h = |s: &[u8]| literal_header(s).map(|h| (h.len, h.sync, h.binary));
        assert_eq!(h(b"a LOGIN {5}"), Some((5, true, false)));
        assert_eq!(h(b"a LOGIN {5+}\r"), Some((5, false, false)));
        assert_eq!(h(b"a APPEND x ~{0}"), Some((0, true, true)));
        for no in [&b"a {}"[..], b"a {+}", b"a 5}", b"a {99999999999999999999}", b"a {5} ", b"}"] {
            assert_eq!(h(no), None, "{no:?}");
        }
    }
}
