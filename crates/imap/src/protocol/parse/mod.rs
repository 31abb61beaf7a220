//! Parsing one complete command into a [`Command`]: a recursive-descent parser over the
//! bytes from the tag to the final CRLF, literals inline (RFC 9051 §9 formal syntax, with
//! RFC 3501's obsolete forms and the extensions named at each rule). A literal the framer
//! spooled to a file instead of keeping it is marked in [`CommandInput::spooled`] and comes
//! out as [`AppendData::Spooled`]. Keywords are case-insensitive; a bare LF is accepted
//! where CRLF belongs. Only search keys nest, and their depth and count are bounded, so no
//! input makes the parser recurse deeply, allocate without bound or panic.

use std::num::NonZeroU32;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime};
use postfach_types::Secret;

use super::command::*;

mod commands;
mod fetch;
mod search;
#[cfg(test)]
mod tests;

/// Deepest nesting of NOT, OR and parentheses in a search program.
pub const MAX_SEARCH_DEPTH: usize = 64;
/// Most search keys in one search program.
pub const MAX_SEARCH_KEYS: usize = 10_000;

/// One command as the framer delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandInput {
    /// The command from tag to CRLF, literals inline, except a spooled literal's data.
    pub bytes: Vec<u8>,
    pub spooled: Option<SpooledLiteral>,
}

/// A literal whose data went to the session's spool file rather than into
/// [`CommandInput::bytes`]. The bytes keep its header (`{n}\r\n`); `offset` is where its
/// data would start in them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpooledLiteral {
    pub offset: usize,
    pub len: u64,
    /// A literal8 (`~{n}`, RFC 3516).
    pub binary: bool,
}

impl CommandInput {
    pub fn parse(&self) -> Result<Command, ParseError> {
        parse(&self.bytes, self.spooled)
    }
}

/// A command that could not be parsed: answer `tag BAD reason` (`* BAD` without a tag).
/// The reason is short English text that never repeats client data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError {
    pub tag: Option<Tag>,
    pub reason: &'static str,
}

/// Parses one complete command, literals inline.
pub fn parse_command(input: &[u8]) -> Result<Command, ParseError> {
    parse(input, None)
}

/// Whether `prefix`, a command up to and including a literal header, announces APPEND
/// message data (rather than, say, a mailbox name as a literal): the framer's hint to the
/// session that this literal may be streamed to a spool file.
pub fn is_append_data_prefix(prefix: &[u8]) -> bool {
    let mut p = Parser::new(prefix, None);
    let mut run = || -> Res<bool> {
        p.tag()?;
        p.sp()?;
        if p.word()? != "APPEND" {
            return Ok(false);
        }
        p.sp()?;
        p.append_head()?;
        p.literal_header(true)?;
        Ok(p.i == p.s.len())
    };
    run().unwrap_or(false)
}

fn parse(input: &[u8], spooled: Option<SpooledLiteral>) -> Result<Command, ParseError> {
    let mut p = Parser::new(input, spooled);
    let tag = p.tag().map_err(|reason| ParseError { tag: None, reason })?;
    let mut body = || -> Res<CommandBody> {
        p.sp()?;
        let body = p.command()?;
        p.end()?;
        if p.spooled.is_some() && !p.spool_used {
            return Err("unexpected literal");
        }
        Ok(body)
    };
    match body() {
        Ok(body) => Ok(Command { tag, body }),
        Err(reason) => Err(ParseError { tag: Some(tag), reason }),
    }
}

type Res<T> = Result<T, &'static str>;

enum Lit<'a> {
    Inline(&'a [u8]),
    Spooled(SpooledLiteral),
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    spooled: Option<SpooledLiteral>,
    spool_used: bool,
    keys: usize,
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];

fn is_word_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'-'
}

impl<'a> Parser<'a> {
    fn new(s: &'a [u8], spooled: Option<SpooledLiteral>) -> Self {
        Parser { s, i: 0, spooled, spool_used: false, keys: 0 }
    }

    // ---- lexical helpers ----

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.i += usize::from(hit);
        hit
    }

    fn expect(&mut self, b: u8, reason: &'static str) -> Res<()> {
        if self.eat(b) { Ok(()) } else { Err(reason) }
    }

    fn sp(&mut self) -> Res<()> {
        self.expect(b' ', "expected a space")
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.i;
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    /// RFC 9051 §9: every command ends with CRLF (a bare LF is tolerated).
    fn end(&mut self) -> Res<()> {
        self.eat(b'\r');
        if self.eat(b'\n') && self.i == self.s.len() { Ok(()) } else { Err("unexpected characters at end of command") }
    }

    /// A keyword (letters, digits, `.`, `-`) in upper case.
    fn word(&mut self) -> Res<String> {
        let w = self.take_while(is_word_char);
        if w.is_empty() {
            return Err("expected a keyword");
        }
        Ok(String::from_utf8_lossy(w).to_ascii_uppercase())
    }

    /// Consumes `kw` (any case) if it comes next as a whole word.
    fn keyword(&mut self, kw: &str) -> bool {
        let end = self.i + kw.len();
        let hit = self.s.get(self.i..end).is_some_and(|w| w.eq_ignore_ascii_case(kw.as_bytes()))
            && !self.s.get(end).is_some_and(|&b| is_word_char(b));
        if hit {
            self.i = end;
        }
        hit
    }

    /// `"(" item *(SP item) ")"`, or `"()"` when `empty_ok`.
    fn list<T>(&mut self, empty_ok: bool, mut item: impl FnMut(&mut Self) -> Res<T>) -> Res<Vec<T>> {
        self.expect(b'(', "expected (")?;
        let mut items = Vec::new();
        if self.eat(b')') {
            return if empty_ok { Ok(items) } else { Err("empty list") };
        }
        loop {
            items.push(item(self)?);
            if self.eat(b')') {
                return Ok(items);
            }
            self.expect(b' ', "expected a space or )")?;
        }
    }

    fn digits(&mut self) -> Res<u64> {
        let d = self.take_while(|b| b.is_ascii_digit());
        if d.is_empty() {
            return Err("expected a number");
        }
        d.iter().try_fold(0u64, |n, &b| n.checked_mul(10)?.checked_add(u64::from(b - b'0'))).ok_or("number too large")
    }

    /// RFC 9051 §9: number (32-bit).
    fn number(&mut self) -> Res<u32> {
        u32::try_from(self.digits()?).map_err(|_| "number too large")
    }

    fn nz_number(&mut self) -> Res<NonZeroU32> {
        NonZeroU32::new(self.number()?).ok_or("number must not be zero")
    }

    /// RFC 9051 §9: number64 (63-bit), also RFC 7162 mod-sequence-valzer.
    fn number64(&mut self) -> Res<u64> {
        Some(self.digits()?).filter(|&n| n <= u64::MAX >> 1).ok_or("number too large")
    }

    fn fixed_digits(&mut self, n: usize, reason: &'static str) -> Res<u32> {
        let d = self.s.get(self.i..self.i + n).filter(|d| d.iter().all(u8::is_ascii_digit)).ok_or(reason)?;
        self.i += n;
        Ok(d.iter().fold(0, |a, &b| a * 10 + u32::from(b - b'0')))
    }

    // ---- strings ----

    /// RFC 9051 §9: `quoted = DQUOTE *QUOTED-CHAR DQUOTE`, escapes only for `"` and `\`;
    /// 8-bit is allowed (UTF8=ACCEPT), CR, LF and NUL are not.
    fn quoted(&mut self) -> Res<Vec<u8>> {
        self.expect(b'"', "expected a quoted string")?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\r' | b'\n' | 0) => return Err("bad quoted string"),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b @ (b'"' | b'\\')) => out.push(b),
                        _ => return Err("bad escape in quoted string"),
                    }
                }
                Some(b) => out.push(b),
            }
            self.i += 1;
        }
    }

    /// RFC 9051 §9: `literal = "{" number64 ["+"] "}" CRLF`; RFC 3516 §4.2 literal8 `~{n}`;
    /// RFC 7888 `{n+}`. Returns the length and whether it is a literal8.
    fn literal_header(&mut self, allow8: bool) -> Res<(u64, bool)> {
        let binary = self.eat(b'~');
        if binary && !allow8 {
            return Err("literal8 not allowed here");
        }
        self.expect(b'{', "expected a literal")?;
        let len = self.digits().map_err(|_| "bad literal length")?;
        self.eat(b'+');
        self.expect(b'}', "bad literal")?;
        self.eat(b'\r');
        self.expect(b'\n', "literal must end the line")?;
        Ok((len, binary))
    }

    fn literal(&mut self, allow8: bool) -> Res<(Lit<'a>, bool)> {
        let (len, binary) = self.literal_header(allow8)?;
        if let Some(sp) = self.spooled.filter(|sp| sp.offset == self.i) {
            if sp.len != len || sp.binary != binary || self.spool_used {
                return Err("bad spooled literal");
            }
            self.spool_used = true;
            return Ok((Lit::Spooled(sp), binary));
        }
        let len = usize::try_from(len).map_err(|_| "literal too long")?;
        let end = self.i.checked_add(len).filter(|&e| e <= self.s.len()).ok_or("literal data missing")?;
        let data = &self.s[self.i..end];
        self.i = end;
        Ok((Lit::Inline(data), binary))
    }

    /// RFC 9051 §9: `string = quoted / literal`.
    fn string(&mut self) -> Res<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => match self.literal(false)?.0 {
                Lit::Inline(data) => Ok(data.to_vec()),
                Lit::Spooled(_) => Err("unexpected literal"),
            },
            _ => Err("expected a string"),
        }
    }

    /// RFC 9051 §9: `astring = 1*ASTRING-CHAR / string`.
    fn astring(&mut self) -> Res<AString> {
        if self.s[self.i..].starts_with(b"~{") {
            return Err("literal8 not allowed here");
        }
        if matches!(self.peek(), Some(b'"' | b'{')) {
            return self.string().map(AString);
        }
        let a = self.take_while(is_astring_char);
        if a.is_empty() { Err("expected a string") } else { Ok(AString(a.to_vec())) }
    }

    /// RFC 9051 §9: `nstring = string / nil`.
    fn nstring(&mut self) -> Res<Option<AString>> {
        if self.keyword("NIL") { Ok(None) } else { self.string().map(|s| Some(AString(s))) }
    }

    /// RFC 9051 §9: `list-mailbox = 1*list-char / string`.
    fn list_mailbox(&mut self) -> Res<AString> {
        if matches!(self.peek(), Some(b'"' | b'{')) {
            return self.string().map(AString);
        }
        let a = self.take_while(is_list_char);
        if a.is_empty() { Err("expected a mailbox pattern") } else { Ok(AString(a.to_vec())) }
    }

    fn atom(&mut self) -> Res<Atom> {
        Atom::new(self.take_while(is_atom_char)).ok_or("expected an atom")
    }

    fn mailbox(&mut self) -> Res<Mailbox> {
        self.astring().map(|a| Mailbox::new(a.0))
    }

    fn tag(&mut self) -> Res<Tag> {
        Tag::new(self.take_while(|b| !matches!(b, b' ' | b'\r' | b'\n'))).ok_or("missing or invalid tag")
    }

    // ---- values ----

    /// RFC 9051 §9: `flag = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" /
    /// flag-keyword / flag-extension`; RFC 3501 adds `\Recent`.
    fn flag(&mut self) -> Res<Flag> {
        let system = self.eat(b'\\');
        let atom = self.atom().map_err(|_| "bad flag")?;
        if !system {
            return Ok(Flag::Keyword(atom));
        }
        Ok(match atom.as_str().to_ascii_uppercase().as_str() {
            "ANSWERED" => Flag::Answered,
            "FLAGGED" => Flag::Flagged,
            "DELETED" => Flag::Deleted,
            "SEEN" => Flag::Seen,
            "DRAFT" => Flag::Draft,
            "RECENT" => Flag::Recent,
            _ => Flag::Extension(atom),
        })
    }

    /// RFC 3501 §9: `date = date-text / DQUOTE date-text DQUOTE`.
    fn date(&mut self) -> Res<NaiveDate> {
        let quoted = self.eat(b'"');
        let date = self.date_text()?;
        if quoted {
            self.expect(b'"', "bad date")?;
        }
        Ok(date)
    }

    /// RFC 3501 §9: `date-text = date-day "-" date-month "-" date-year`, `date-day = 1*2DIGIT`.
    fn date_text(&mut self) -> Res<NaiveDate> {
        let day = self.take_while(|b| b.is_ascii_digit());
        if day.is_empty() || day.len() > 2 {
            return Err("bad date");
        }
        let day = day.iter().fold(0, |a, &b| a * 10 + u32::from(b - b'0'));
        self.expect(b'-', "bad date")?;
        let m = self.s.get(self.i..self.i + 3).ok_or("bad date")?;
        let month = MONTHS.iter().position(|n| n.as_bytes().eq_ignore_ascii_case(m)).ok_or("bad date")?;
        self.i += 3;
        self.expect(b'-', "bad date")?;
        let year = self.fixed_digits(4, "bad date")?;
        let (Ok(year), Ok(month)) = (i32::try_from(year), u32::try_from(month + 1)) else { return Err("bad date") };
        NaiveDate::from_ymd_opt(year, month, day).ok_or("bad date")
    }

    /// RFC 9051 §9: `date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time
    /// SP zone DQUOTE`, `date-day-fixed = (SP DIGIT) / 2DIGIT` (one digit alone tolerated).
    fn date_time(&mut self) -> Res<DateTime<FixedOffset>> {
        const BAD: &str = "bad date-time";
        self.expect(b'"', BAD)?;
        self.eat(b' ');
        let date = self.date_text()?;
        self.expect(b' ', BAD)?;
        let h = self.fixed_digits(2, BAD)?;
        self.expect(b':', BAD)?;
        let m = self.fixed_digits(2, BAD)?;
        self.expect(b':', BAD)?;
        let s = self.fixed_digits(2, BAD)?;
        self.expect(b' ', BAD)?;
        let sign = if self.eat(b'+') {
            1
        } else if self.eat(b'-') {
            -1
        } else {
            return Err(BAD);
        };
        let (zh, zm) = (self.fixed_digits(2, BAD)?, self.fixed_digits(2, BAD)?);
        self.expect(b'"', BAD)?;
        let time = NaiveTime::from_hms_opt(h, m, s).ok_or(BAD)?;
        let secs = i32::try_from((zh * 60 + zm) * 60).map_err(|_| BAD)?;
        let zone = Some(secs).filter(|_| zm < 60).and_then(|s| FixedOffset::east_opt(sign * s)).ok_or(BAD)?;
        date.and_time(time).and_local_timezone(zone).single().ok_or(BAD)
    }

    /// RFC 9051 §9: `sequence-set = (seq-number / seq-range) ["," sequence-set]`, and RFC
    /// 5182 §3 `sequence-set =/ seq-last-command` (`$`, only as the whole set).
    fn sequence_set(&mut self) -> Res<SequenceSet> {
        if self.eat(b'$') {
            return if matches!(self.peek(), Some(b',' | b':')) {
                Err("bad sequence set")
            } else {
                Ok(SequenceSet::Saved)
            };
        }
        self.seq_ranges().map(SequenceSet::Ranges)
    }

    fn seq_ranges(&mut self) -> Res<SeqRanges> {
        let mut ranges = Vec::new();
        loop {
            let from = self.seq_number()?;
            let to = if self.eat(b':') { self.seq_number()? } else { from };
            ranges.push(SeqRange { from, to });
            if !self.eat(b',') {
                break;
            }
        }
        if matches!(self.peek(), Some(b':' | b'*' | b'$')) {
            return Err("bad sequence set");
        }
        Ok(SeqRanges(ranges))
    }

    fn seq_number(&mut self) -> Res<SeqNumber> {
        if self.eat(b'*') {
            return Ok(SeqNumber::Last);
        }
        self.nz_number().map(SeqNumber::Value).map_err(|_| "bad sequence set")
    }

    fn status_item(&mut self) -> Res<StatusItem> {
        // RFC 9051 §9 status-att, RFC 3501 RECENT, RFC 7162 HIGHESTMODSEQ, RFC 7889 APPENDLIMIT.
        Ok(match self.word()?.as_str() {
            "MESSAGES" => StatusItem::Messages,
            "UIDNEXT" => StatusItem::UidNext,
            "UIDVALIDITY" => StatusItem::UidValidity,
            "UNSEEN" => StatusItem::Unseen,
            "DELETED" => StatusItem::Deleted,
            "SIZE" => StatusItem::Size,
            "RECENT" => StatusItem::Recent,
            "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
            "APPENDLIMIT" => StatusItem::AppendLimit,
            _ => return Err("unknown STATUS item"),
        })
    }
}
