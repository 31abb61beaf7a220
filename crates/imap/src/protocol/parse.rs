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

    // ---- commands ----

    fn command(&mut self) -> Res<CommandBody> {
        use CommandBody as C;
        let name = self.word().map_err(|_| "expected a command name")?;
        Ok(match name.as_str() {
            "CAPABILITY" => C::Capability,
            "NOOP" => C::Noop,
            "LOGOUT" => C::Logout,
            "STARTTLS" => C::StartTls,
            "NAMESPACE" => C::Namespace,
            "IDLE" => C::Idle,
            "CHECK" => C::Check,
            "CLOSE" => C::Close,
            "UNSELECT" => C::Unselect,
            "EXPUNGE" => C::Expunge { uid_set: None },
            "ID" => {
                // RFC 2971 §4: id_params_list ::= "(" #(string SPACE nstring) ")" / nil
                self.sp()?;
                if self.keyword("NIL") {
                    C::Id(None)
                } else {
                    C::Id(Some(self.list(true, |p| {
                        let key = AString(p.string()?);
                        p.sp()?;
                        Ok((key, p.nstring()?))
                    })?))
                }
            }
            "AUTHENTICATE" => {
                // RFC 9051 §6.2.2, RFC 4959 §3: an initial response, "=" for an empty one.
                // Taken as sent (one word of visible characters); `postfach_auth::sasl`
                // decodes it, so that an undecodable one is refused by the gate.
                self.sp()?;
                let mechanism = self.atom()?;
                let mut initial_response = None;
                if self.eat(b' ') {
                    let response = self.take_while(|b| b.is_ascii_graphic());
                    if response.is_empty() {
                        return Err("an initial response is expected after the space");
                    }
                    initial_response = Some(Secret::new(response.to_vec()));
                }
                C::Authenticate { mechanism, initial_response }
            }
            "LOGIN" => {
                self.sp()?;
                let username = self.astring()?;
                self.sp()?;
                C::Login { username, password: Secret::new(self.astring()?.0) }
            }
            "ENABLE" => {
                // RFC 5161 §4: "ENABLE" 1*(SP capability)
                let mut caps = Vec::new();
                while self.eat(b' ') {
                    caps.push(self.atom()?);
                }
                if caps.is_empty() {
                    return Err("ENABLE needs a capability");
                }
                C::Enable(caps)
            }
            "SELECT" | "EXAMINE" => {
                self.sp()?;
                let select = self.select()?;
                if name == "SELECT" { C::Select(select) } else { C::Examine(select) }
            }
            "CREATE" => {
                // RFC 4466 §2.2 create-params, RFC 6154 §3 `"USE" SP "(" [use-attr *(SP use-attr)] ")"`
                self.sp()?;
                let mailbox = self.mailbox()?;
                let mut special_use = Vec::new();
                if self.eat(b' ') {
                    self.list(false, |p| {
                        if !p.keyword("USE") {
                            return Err("unknown CREATE parameter");
                        }
                        p.sp()?;
                        special_use.extend(p.list(true, Self::use_attr)?);
                        Ok(())
                    })?;
                }
                C::Create { mailbox, special_use }
            }
            "DELETE" | "SUBSCRIBE" | "UNSUBSCRIBE" | "GETQUOTAROOT" => {
                self.sp()?;
                let mailbox = self.mailbox()?;
                match name.as_str() {
                    "DELETE" => C::Delete(mailbox),
                    "SUBSCRIBE" => C::Subscribe(mailbox),
                    "UNSUBSCRIBE" => C::Unsubscribe(mailbox),
                    _ => C::GetQuotaRoot(mailbox),
                }
            }
            "RENAME" => {
                self.sp()?;
                let from = self.mailbox()?;
                self.sp()?;
                C::Rename { from, to: self.mailbox()? }
            }
            "LIST" => {
                self.sp()?;
                C::List(self.list_command()?)
            }
            "LSUB" => {
                self.sp()?;
                let reference = self.astring()?;
                self.sp()?;
                C::Lsub { reference, pattern: self.list_mailbox()? }
            }
            "STATUS" => {
                // RFC 9051 §9: status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"
                self.sp()?;
                let mailbox = self.mailbox()?;
                self.sp()?;
                C::Status { mailbox, items: self.list(false, Self::status_item)? }
            }
            "APPEND" => {
                // RFC 9051 §9: append = "APPEND" SP mailbox [SP flag-list] [SP date-time] SP literal;
                // RFC 3516 §4.4 allows literal8.
                self.sp()?;
                let (mailbox, flags, date) = self.append_head()?;
                let data = match self.literal(true)? {
                    (Lit::Inline(bytes), binary) => AppendData::Inline { bytes: bytes.to_vec(), binary },
                    (Lit::Spooled(spooled), _) => AppendData::Spooled(spooled),
                };
                C::Append(Append { mailbox, flags, date, data })
            }
            "GETQUOTA" => {
                // RFC 9208 §4.2
                self.sp()?;
                C::GetQuota(self.astring()?)
            }
            "SETQUOTA" => {
                // RFC 9208 §4.4: setquota_list = "(" [setquota_resource *(SP setquota_resource)] ")"
                self.sp()?;
                let root = self.astring()?;
                self.sp()?;
                let limits = self.list(true, |p| {
                    let resource = p.atom()?;
                    p.sp()?;
                    Ok((resource, p.number64()?))
                })?;
                C::SetQuota { root, limits }
            }
            "SEARCH" => C::Search(self.search(false)?),
            "FETCH" => C::Fetch(self.fetch(false)?),
            "STORE" => C::Store(self.store(false)?),
            "COPY" => C::Copy(self.transfer(false)?),
            "MOVE" => C::Move(self.transfer(false)?),
            "UID" => {
                // RFC 9051 §9: uid = "UID" SP (copy / move / fetch / search / store / uid-expunge)
                self.sp()?;
                match self.word()?.as_str() {
                    "SEARCH" => C::Search(self.search(true)?),
                    "FETCH" => C::Fetch(self.fetch(true)?),
                    "STORE" => C::Store(self.store(true)?),
                    "COPY" => C::Copy(self.transfer(true)?),
                    "MOVE" => C::Move(self.transfer(true)?),
                    "EXPUNGE" => {
                        self.sp()?;
                        C::Expunge { uid_set: Some(self.sequence_set()?) }
                    }
                    _ => return Err("unknown UID command"),
                }
            }
            _ => return Err("unknown command"),
        })
    }

    /// RFC 6154 §6: use-attr = "\All" / "\Archive" / "\Drafts" / "\Flagged" / "\Junk" /
    /// "\Sent" / "\Trash" / use-attr-ext.
    fn use_attr(&mut self) -> Res<SpecialUse> {
        self.expect(b'\\', "bad special-use attribute")?;
        let atom = self.atom()?;
        Ok(match atom.as_str().to_ascii_uppercase().as_str() {
            "ALL" => SpecialUse::All,
            "ARCHIVE" => SpecialUse::Archive,
            "DRAFTS" => SpecialUse::Drafts,
            "FLAGGED" => SpecialUse::Flagged,
            "JUNK" => SpecialUse::Junk,
            "SENT" => SpecialUse::Sent,
            "TRASH" => SpecialUse::Trash,
            _ => SpecialUse::Other(atom),
        })
    }

    /// RFC 9051 §9: select = "SELECT" SP mailbox [select-params]; RFC 7162 §7:
    /// select-param = "CONDSTORE" / "QRESYNC" SP "(" uidvalidity SP mod-sequence-value
    /// [SP known-uids] [SP seq-match-data] ")".
    fn select(&mut self) -> Res<Select> {
        let mut select = Select { mailbox: self.mailbox()?, condstore: false, qresync: None };
        if self.eat(b' ') {
            self.list(false, |p| {
                match p.word()?.as_str() {
                    "CONDSTORE" => select.condstore = true,
                    "QRESYNC" => {
                        p.sp()?;
                        p.expect(b'(', "bad QRESYNC")?;
                        let uid_validity = p.nz_number()?;
                        p.sp()?;
                        let modseq = Some(p.number64()?).filter(|&m| m > 0).ok_or("bad QRESYNC")?;
                        let mut q = QResync { uid_validity, modseq, known_uids: None, seq_match: None };
                        if p.eat(b' ') && p.peek() != Some(b'(') {
                            q.known_uids = Some(p.seq_ranges()?);
                            p.eat(b' ');
                        }
                        if p.eat(b'(') {
                            let known = p.seq_ranges()?;
                            p.sp()?;
                            q.seq_match = Some((known, p.seq_ranges()?));
                            p.expect(b')', "bad QRESYNC")?;
                        }
                        p.expect(b')', "bad QRESYNC")?;
                        select.qresync = Some(q);
                    }
                    _ => return Err("unknown SELECT parameter"),
                }
                Ok(())
            })?;
        }
        Ok(select)
    }

    /// RFC 5258 §6: list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat
    /// [SP list-return-opts]; RFC 5819 STATUS and RFC 6154 SPECIAL-USE return options.
    fn list_command(&mut self) -> Res<List> {
        let mut selection = ListSelection::default();
        if self.peek() == Some(b'(') {
            self.list(true, |p| {
                match p.word()?.as_str() {
                    "SUBSCRIBED" => selection.subscribed = true,
                    "REMOTE" => selection.remote = true,
                    "RECURSIVEMATCH" => selection.recursive_match = true,
                    "SPECIAL-USE" => selection.special_use = true,
                    _ => return Err("unknown LIST selection option"),
                }
                Ok(())
            })?;
            // RFC 5258 §3: RECURSIVEMATCH needs a base option (REMOTE is not one).
            if selection.recursive_match && !selection.subscribed && !selection.special_use {
                return Err("RECURSIVEMATCH needs another selection option");
            }
            self.sp()?;
        }
        let reference = self.astring()?;
        self.sp()?;
        let patterns =
            if self.peek() == Some(b'(') { self.list(false, Self::list_mailbox)? } else { vec![self.list_mailbox()?] };
        let mut returns = ListReturn::default();
        if self.eat(b' ') {
            if !self.keyword("RETURN") {
                return Err("expected RETURN");
            }
            self.sp()?;
            self.list(true, |p| {
                match p.word()?.as_str() {
                    "CHILDREN" => returns.children = true,
                    "SUBSCRIBED" => returns.subscribed = true,
                    "SPECIAL-USE" => returns.special_use = true,
                    "STATUS" => {
                        p.sp()?;
                        returns.status = Some(p.list(false, Self::status_item)?);
                    }
                    _ => return Err("unknown LIST return option"),
                }
                Ok(())
            })?;
        }
        Ok(List { selection, reference, patterns, returns })
    }

    /// APPEND up to the message literal: `mailbox [SP flag-list] [SP date-time] SP`.
    fn append_head(&mut self) -> Res<(Mailbox, Vec<Flag>, Option<DateTime<FixedOffset>>)> {
        let mailbox = self.mailbox()?;
        self.sp()?;
        let mut flags = Vec::new();
        if self.peek() == Some(b'(') {
            flags = self.list(true, Self::flag)?;
            self.sp()?;
        }
        let mut date = None;
        if self.peek() == Some(b'"') {
            date = Some(self.date_time()?);
            self.sp()?;
        }
        Ok((mailbox, flags, date))
    }

    /// RFC 9051 §9: search = "SEARCH" [search-return-opts] SP search-program;
    /// search-program = ["CHARSET" SP charset SP] search-key *(SP search-key).
    fn search(&mut self, uid: bool) -> Res<Search> {
        self.sp()?;
        let mut returns = None;
        if self.keyword("RETURN") {
            // RFC 4731 §3, RFC 5182 §2: MIN MAX ALL COUNT SAVE; "()" means ALL.
            self.sp()?;
            let mut r = SearchReturn::default();
            self.list(true, |p| {
                match p.word()?.as_str() {
                    "MIN" => r.min = true,
                    "MAX" => r.max = true,
                    "ALL" => r.all = true,
                    "COUNT" => r.count = true,
                    "SAVE" => r.save = true,
                    _ => return Err("unknown SEARCH return option"),
                }
                Ok(())
            })?;
            if r == SearchReturn::default() {
                r.all = true;
            }
            returns = Some(r);
            self.sp()?;
        }
        let mut charset = None;
        if self.keyword("CHARSET") {
            self.sp()?;
            charset = Some(self.astring()?);
            self.sp()?;
        }
        let mut keys = vec![self.search_key(0)?];
        while self.eat(b' ') {
            keys.push(self.search_key(0)?);
        }
        let key = if keys.len() == 1 { keys.remove(0) } else { SearchKey::And(keys) };
        Ok(Search { uid, charset, returns, key })
    }

    /// RFC 9051 §6.4.4 and §9 search-key, RFC 3501's obsolete keys, RFC 7162 MODSEQ,
    /// RFC 5032 OLDER/YOUNGER. Depth and count are bounded (`MAX_SEARCH_*`).
    fn search_key(&mut self, depth: usize) -> Res<SearchKey> {
        use SearchKey as K;
        self.keys += 1;
        if depth >= MAX_SEARCH_DEPTH {
            return Err("search program nested too deeply");
        }
        if self.keys > MAX_SEARCH_KEYS {
            return Err("search program too long");
        }
        match self.peek() {
            Some(b'(') => {
                self.i += 1;
                let mut keys = vec![self.search_key(depth + 1)?];
                while self.eat(b' ') {
                    keys.push(self.search_key(depth + 1)?);
                }
                self.expect(b')', "expected )")?;
                return Ok(K::And(keys));
            }
            Some(b'0'..=b'9' | b'*' | b'$') => return self.sequence_set().map(K::SequenceSet),
            _ => {}
        }
        let string = |p: &mut Self| p.sp().and_then(|()| p.astring());
        let date = |p: &mut Self| p.sp().and_then(|()| p.date());
        let sub = |p: &mut Self| p.sp().and_then(|()| p.search_key(depth + 1)).map(Box::new);
        Ok(match self.word().map_err(|_| "bad search key")?.as_str() {
            "ALL" => K::All,
            "ANSWERED" => K::Answered,
            "BCC" => K::Bcc(string(self)?),
            "BEFORE" => K::Before(date(self)?),
            "BODY" => K::Body(string(self)?),
            "CC" => K::Cc(string(self)?),
            "DELETED" => K::Deleted,
            "DRAFT" => K::Draft,
            "FLAGGED" => K::Flagged,
            "FROM" => K::From(string(self)?),
            "HEADER" => K::Header(string(self)?, string(self)?),
            "KEYWORD" => K::Keyword(self.sp().and_then(|()| self.atom())?),
            "LARGER" => K::Larger(self.sp().and_then(|()| self.number64())?),
            "NEW" => K::New,
            "NOT" => K::Not(sub(self)?),
            "OLD" => K::Old,
            "ON" => K::On(date(self)?),
            "OR" => K::Or(sub(self)?, sub(self)?),
            "RECENT" => K::Recent,
            "SEEN" => K::Seen,
            "SENTBEFORE" => K::SentBefore(date(self)?),
            "SENTON" => K::SentOn(date(self)?),
            "SENTSINCE" => K::SentSince(date(self)?),
            "SINCE" => K::Since(date(self)?),
            "SMALLER" => K::Smaller(self.sp().and_then(|()| self.number64())?),
            "SUBJECT" => K::Subject(string(self)?),
            "TEXT" => K::Text(string(self)?),
            "TO" => K::To(string(self)?),
            "UID" => K::Uid(self.sp().and_then(|()| self.sequence_set())?),
            "UNANSWERED" => K::Unanswered,
            "UNDELETED" => K::Undeleted,
            "UNDRAFT" => K::Undraft,
            "UNFLAGGED" => K::Unflagged,
            "UNKEYWORD" => K::Unkeyword(self.sp().and_then(|()| self.atom())?),
            "UNSEEN" => K::Unseen,
            "OLDER" => K::Older(self.sp().and_then(|()| self.nz_number())?),
            "YOUNGER" => K::Younger(self.sp().and_then(|()| self.nz_number())?),
            "MODSEQ" => {
                // RFC 7162 §7: "MODSEQ" [SP entry-name SP entry-type-req] SP mod-sequence-valzer
                self.sp()?;
                let mut entry = None;
                if self.peek() == Some(b'"') {
                    let name = AString(self.quoted()?);
                    self.sp()?;
                    let kind = match self.word()?.as_str() {
                        "PRIV" => EntryType::Private,
                        "SHARED" => EntryType::Shared,
                        "ALL" => EntryType::All,
                        _ => return Err("bad MODSEQ entry type"),
                    };
                    self.sp()?;
                    entry = Some((name, kind));
                }
                K::ModSeq { entry, modseq: self.number64()? }
            }
            _ => return Err("unknown search key"),
        })
    }

    /// RFC 9051 §9: fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att
    /// / "(" fetch-att *(SP fetch-att) ")"); RFC 7162 §7 fetch-modifiers.
    fn fetch(&mut self, uid: bool) -> Res<Fetch> {
        use FetchAttr as F;
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let attrs = if self.peek() == Some(b'(') {
            self.list(false, Self::fetch_attr)?
        } else if self.keyword("ALL") {
            vec![F::Flags, F::InternalDate, F::Rfc822Size, F::Envelope]
        } else if self.keyword("FAST") {
            vec![F::Flags, F::InternalDate, F::Rfc822Size]
        } else if self.keyword("FULL") {
            vec![F::Flags, F::InternalDate, F::Rfc822Size, F::Envelope, F::Body]
        } else {
            vec![self.fetch_attr()?]
        };
        let (mut changed_since, mut vanished) = (None, false);
        if self.eat(b' ') {
            self.list(false, |p| {
                match p.word()?.as_str() {
                    "CHANGEDSINCE" => changed_since = Some(p.sp().and_then(|()| p.number64())?),
                    "VANISHED" => vanished = true,
                    _ => return Err("unknown FETCH modifier"),
                }
                Ok(())
            })?;
        }
        // RFC 7162 §3.2.6: VANISHED only in UID FETCH, and only with CHANGEDSINCE.
        if vanished && !(uid && changed_since.is_some()) {
            return Err("VANISHED needs UID FETCH and CHANGEDSINCE");
        }
        Ok(Fetch { uid, set, attrs, changed_since, vanished })
    }

    /// RFC 9051 §9 fetch-att, RFC 3516 §4.2 BINARY, RFC 7162 MODSEQ.
    fn fetch_attr(&mut self) -> Res<FetchAttr> {
        use FetchAttr as F;
        let word = self.word().map_err(|_| "bad FETCH item")?;
        Ok(match word.as_str() {
            "FLAGS" => F::Flags,
            "INTERNALDATE" => F::InternalDate,
            "RFC822.SIZE" => F::Rfc822Size,
            "ENVELOPE" => F::Envelope,
            "BODYSTRUCTURE" => F::BodyStructure,
            "UID" => F::Uid,
            "RFC822" => F::Rfc822,
            "RFC822.HEADER" => F::Rfc822Header,
            "RFC822.TEXT" => F::Rfc822Text,
            "MODSEQ" => F::ModSeq,
            "BODY" if self.peek() != Some(b'[') => F::Body,
            "BODY" | "BODY.PEEK" => {
                let section = self.section()?;
                F::BodySection { peek: word == "BODY.PEEK", section, partial: self.partial()? }
            }
            "BINARY" | "BINARY.PEEK" => {
                let part = self.section_binary()?;
                F::Binary { peek: word == "BINARY.PEEK", part, partial: self.partial()? }
            }
            "BINARY.SIZE" => F::BinarySize { part: self.section_binary()? },
            _ => return Err("unknown FETCH item"),
        })
    }

    /// RFC 9051 §9: section = "[" [section-spec] "]"; section-spec = section-msgtext /
    /// (section-part ["." section-text]); section-part = nz-number *("." nz-number).
    fn section(&mut self) -> Res<Section> {
        self.expect(b'[', "expected [")?;
        let mut section = Section::default();
        if self.peek().is_some_and(|b| b.is_ascii_digit()) {
            loop {
                section.part.push(self.nz_number()?);
                if !self.eat(b'.') {
                    break;
                }
                if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    section.text = Some(self.section_text(true)?);
                    break;
                }
            }
        } else if self.peek() != Some(b']') {
            section.text = Some(self.section_text(false)?);
        }
        self.expect(b']', "bad section")?;
        Ok(section)
    }

    /// RFC 9051 §9: section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list /
    /// "TEXT"; section-text = section-msgtext / "MIME".
    fn section_text(&mut self, mime_ok: bool) -> Res<SectionText> {
        Ok(match self.word()?.as_str() {
            "HEADER" => SectionText::Header,
            "HEADER.FIELDS" => SectionText::HeaderFields(self.sp().and_then(|()| self.list(false, Self::astring))?),
            "HEADER.FIELDS.NOT" => {
                SectionText::HeaderFieldsNot(self.sp().and_then(|()| self.list(false, Self::astring))?)
            }
            "TEXT" => SectionText::Text,
            "MIME" if mime_ok => SectionText::Mime,
            _ => return Err("bad section"),
        })
    }

    /// RFC 3516 §4.2: section-binary = "[" [section-part] "]".
    fn section_binary(&mut self) -> Res<Vec<NonZeroU32>> {
        self.expect(b'[', "expected [")?;
        let mut part = Vec::new();
        if self.peek() != Some(b']') {
            loop {
                part.push(self.nz_number()?);
                if !self.eat(b'.') {
                    break;
                }
            }
        }
        self.expect(b']', "bad section")?;
        Ok(part)
    }

    /// RFC 9051 §9: partial = "<" number64 "." nz-number64 ">" (32-bit here).
    fn partial(&mut self) -> Res<Option<Partial>> {
        if !self.eat(b'<') {
            return Ok(None);
        }
        let start = self.number()?;
        self.expect(b'.', "bad partial")?;
        let length = self.nz_number()?;
        self.expect(b'>', "bad partial")?;
        Ok(Some(Partial { start, length }))
    }

    /// RFC 9051 §9: store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags;
    /// RFC 7162 §7 store-modifier = "UNCHANGEDSINCE" SP mod-sequence-valzer;
    /// store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag))).
    fn store(&mut self, uid: bool) -> Res<Store> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let mut unchanged_since = None;
        if self.peek() == Some(b'(') {
            self.list(false, |p| {
                if !p.keyword("UNCHANGEDSINCE") {
                    return Err("unknown STORE modifier");
                }
                unchanged_since = Some(p.sp().and_then(|()| p.number64())?);
                Ok(())
            })?;
            self.sp()?;
        }
        let mode = if self.eat(b'+') {
            StoreMode::Add
        } else if self.eat(b'-') {
            StoreMode::Remove
        } else {
            StoreMode::Replace
        };
        let silent = match self.word()?.as_str() {
            "FLAGS" => false,
            "FLAGS.SILENT" => true,
            _ => return Err("expected FLAGS"),
        };
        self.sp()?;
        let flags = if self.peek() == Some(b'(') {
            self.list(true, Self::flag)?
        } else {
            let mut flags = vec![self.flag()?];
            while self.eat(b' ') {
                flags.push(self.flag()?);
            }
            flags
        };
        Ok(Store { uid, set, mode, silent, flags, unchanged_since })
    }

    /// RFC 9051 §9: copy = "COPY" SP sequence-set SP mailbox; move likewise (RFC 6851).
    fn transfer(&mut self, uid: bool) -> Res<Transfer> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        Ok(Transfer { uid, set, mailbox: self.mailbox()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Command {
        match parse_command(format!("{s}\r\n").as_bytes()) {
            Ok(c) => c,
            Err(e) => panic!("{s:?}: {e}"),
        }
    }

    fn err(s: &str) -> ParseError {
        match parse_command(format!("{s}\r\n").as_bytes()) {
            Ok(c) => panic!("{s:?} parsed as {c:?}"),
            Err(e) => e,
        }
    }

    fn n(v: u32) -> NonZeroU32 {
        NonZeroU32::new(v).expect("non-zero")
    }

    fn range(a: u32, b: u32) -> SeqRange {
        SeqRange { from: SeqNumber::Value(n(a)), to: SeqNumber::Value(n(b)) }
    }

    fn atom(s: &str) -> Atom {
        Atom::new(s.as_bytes()).expect("atom")
    }

    fn astr(s: &str) -> AString {
        AString(s.as_bytes().to_vec())
    }

    /// RFC 3501/9051 examples and what Thunderbird, Apple Mail, mbsync, offlineimap and
    /// mutt send, with the name each must get.
    #[test]
    fn accepts_rfc_examples_and_real_clients() {
        let table = [
            ("a001 CAPABILITY", "CAPABILITY"),
            ("a002 noop", "NOOP"),
            ("A023 LOGOUT", "LOGOUT"),
            ("a001 STARTTLS", "STARTTLS"),
            ("a AUTHENTICATE PLAIN", "AUTHENTICATE"),
            ("a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==", "AUTHENTICATE"),
            ("a001 LOGIN SMITH SESAME", "LOGIN"),
            ("a LOGIN {5}\r\nalice \"pa\\\"ss\"", "LOGIN"),
            ("t ENABLE CONDSTORE QRESYNC", "ENABLE"),
            ("a ID NIL", "ID"),
            ("a ID (\"name\" \"Thunderbird\" \"version\" \"115.0\" \"vendor\" NIL)", "ID"),
            ("a ID ()", "ID"),
            ("A142 SELECT INBOX", "SELECT"),
            ("a SELECT \"INBOX\" (CONDSTORE)", "SELECT"),
            ("A932 EXAMINE blurdybloop", "EXAMINE"),
            ("A003 CREATE owatagusiam/", "CREATE"),
            ("t CREATE MySpecial (USE (\\Drafts \\Sent))", "CREATE"),
            ("A683 DELETE blurdybloop", "DELETE"),
            ("A683 RENAME blurdybloop sarasoop", "RENAME"),
            ("A002 SUBSCRIBE #news.comp.mail.mime", "SUBSCRIBE"),
            ("A002 UNSUBSCRIBE \"&ZeVnLIqe-\"", "UNSUBSCRIBE"),
            ("A101 LIST \"\" \"\"", "LIST"),
            ("A202 LIST ~/Mail/ %", "LIST"),
            ("A02 LIST () \"\" %", "LIST"),
            ("A03 LIST \"\" \"%\" RETURN (SPECIAL-USE)", "LIST"),
            ("A002 LSUB \"#news.\" \"comp.mail.*\"", "LSUB"),
            ("A042 STATUS blurdybloop (UIDNEXT MESSAGES)", "STATUS"),
            ("a NAMESPACE", "NAMESPACE"),
            ("a IDLE", "IDLE"),
            ("G GETQUOTA \"\"", "GETQUOTA"),
            ("G GETQUOTAROOT INBOX", "GETQUOTAROOT"),
            ("S SETQUOTA \"\" (STORAGE 512)", "SETQUOTA"),
            ("FXXZ CHECK", "CHECK"),
            ("A341 CLOSE", "CLOSE"),
            ("a UNSELECT", "UNSELECT"),
            ("A202 EXPUNGE", "EXPUNGE"),
            ("A003 UID EXPUNGE 3000:3002", "UID EXPUNGE"),
            ("A003 APPEND saved-messages (\\Seen) {5}\r\nhello", "APPEND"),
            ("a APPEND Drafts \" 4-Jul-2023 02:44:25 +0000\" {0+}\r\n", "APPEND"),
            ("A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"", "SEARCH"),
            ("A284 SEARCH CHARSET UTF-8 TEXT {6}\r\nXXXXXX", "SEARCH"),
            ("A285 UID SEARCH RETURN (MIN MAX) 1:5000", "UID SEARCH"),
            ("a UID SEARCH UID 1:* SINCE \"1-Jan-2020\" NOT DELETED", "UID SEARCH"),
            ("a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338 YOUNGER 3600 OLDER 60", "SEARCH"),
            (
                "a SEARCH ALL ANSWERED BCC x BEFORE 1-Jan-2000 BODY x CC x DELETED DRAFT FLAGGED FROM x \
                 HEADER X-A b KEYWORD $Junk LARGER 10 NEW NOT OLD ON 2-Feb-2002 OR SEEN RECENT \
                 SENTBEFORE 1-Jan-2000 SENTON 1-Jan-2000 SENTSINCE 1-Jan-2000 SINCE 1-Jan-2000 \
                 SMALLER 5 SUBJECT x TEXT x TO x UID 1,2 UNANSWERED UNDELETED UNDRAFT UNFLAGGED \
                 UNKEYWORD $Forwarded UNSEEN 1:3 $ MODSEQ 5",
                "SEARCH",
            ),
            ("A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])", "FETCH"),
            (
                "a1 UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date \
                 Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])",
                "UID FETCH",
            ),
            ("a FETCH 1 FAST", "FETCH"),
            ("a FETCH 1 FULL", "FETCH"),
            ("a FETCH 1:2 BODY[]", "FETCH"),
            (
                "a FETCH 1 (BODY[1.2.MIME] BODY[2.HEADER.FIELDS.NOT (X)] BODY[1.TEXT] BINARY[] RFC822 RFC822.HEADER \
                 RFC822.TEXT ENVELOPE BODYSTRUCTURE BODY INTERNALDATE MODSEQ BINARY.SIZE[1] BINARY.PEEK[1.2]<0.100>)",
                "FETCH",
            ),
            ("a uid fetch 1:* (uid flags)", "UID FETCH"),
            ("A003 STORE 2:4 +FLAGS (\\Deleted)", "STORE"),
            ("a STORE 1 FLAGS \\Seen \\Flagged", "STORE"),
            ("a STORE 1 -flags.silent ()", "STORE"),
            ("A003 COPY 2:4 MEETING", "COPY"),
            ("a UID COPY $ Trash", "UID COPY"),
            ("a MOVE 1 Archive", "MOVE"),
            ("a UID MOVE 42:69 foo", "UID MOVE"),
            ("x] noop", "NOOP"),
        ];
        for (line, name) in table {
            assert_eq!(ok(line).name(), name, "{line:?}");
        }
    }

    #[test]
    fn command_values() {
        let c = ok("x UID STORE 1:3 +FLAGS.SILENT (\\Deleted $Label1)");
        assert_eq!(c.tag.as_str(), "x");
        assert!(c.is_uid());
        let CommandBody::Store(s) = c.body else { panic!() };
        assert_eq!(s.set, SequenceSet::Ranges(SeqRanges(vec![range(1, 3)])));
        assert_eq!((s.mode, s.silent), (StoreMode::Add, true));
        assert_eq!(s.flags, vec![Flag::Deleted, Flag::Keyword(atom("$Label1"))]);

        let c = ok("d105 STORE 7,5:* (UNCHANGEDSINCE 320162338) FLAGS (\\Recent \\X-Other)");
        let CommandBody::Store(s) = c.body else { panic!() };
        assert_eq!(s.unchanged_since, Some(320162338));
        let SequenceSet::Ranges(r) = &s.set else { panic!() };
        assert_eq!(r.ranges()[1], SeqRange { from: SeqNumber::Value(n(5)), to: SeqNumber::Last });
        assert_eq!(s.flags, vec![Flag::Recent, Flag::Extension(atom("X-Other"))]);

        let c = ok("A142 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))");
        let CommandBody::Select(s) = c.body else { panic!() };
        let q = s.qresync.expect("qresync");
        assert_eq!((q.uid_validity, q.modseq), (n(67890007), 20050715194045000));
        assert_eq!(q.known_uids.map(|k| k.0.len()), Some(3));
        let c = ok("B1 EXAMINE inbox (QRESYNC (1 2 (1,3:5 10,30:32)) CONDSTORE)");
        let CommandBody::Examine(s) = c.body else { panic!() };
        assert_eq!(s.mailbox, Mailbox::Inbox);
        assert!(s.condstore && s.qresync.is_some_and(|q| q.known_uids.is_none() && q.seq_match.is_some()));

        let c = ok("a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"*\" RETURN (CHILDREN STATUS (MESSAGES UNSEEN SIZE))");
        let CommandBody::List(l) = c.body else { panic!() };
        assert!(l.selection.subscribed && l.selection.recursive_match && !l.selection.remote);
        assert_eq!(l.patterns, vec![astr("*")]);
        assert!(l.returns.children);
        assert_eq!(l.returns.status, Some(vec![StatusItem::Messages, StatusItem::Unseen, StatusItem::Size]));
        let c = ok("a LIST (SUBSCRIBED REMOTE RECURSIVEMATCH SPECIAL-USE) \"\" (\"a\" \"b\") \
                    RETURN (CHILDREN SUBSCRIBED SPECIAL-USE STATUS (MESSAGES UNSEEN))");
        let CommandBody::List(l) = c.body else { panic!() };
        assert_eq!(l.patterns, vec![astr("a"), astr("b")]);
        assert!(l.selection.remote && l.selection.special_use && l.returns.subscribed && l.returns.special_use);

        let c = ok("t SEARCH RETURN (SAVE MIN) UNSEEN");
        let CommandBody::Search(s) = c.body else { panic!() };
        assert_eq!(s.returns, Some(SearchReturn { save: true, min: true, ..Default::default() }));
        assert_eq!(s.key, SearchKey::Unseen);
        let CommandBody::Search(s) = ok("t SEARCH RETURN () 1:*").body else { panic!() };
        assert_eq!(s.returns, Some(SearchReturn { all: true, ..Default::default() }));

        let CommandBody::Fetch(f) = ok("t FETCH $ (FLAGS)").body else { panic!() };
        assert_eq!((f.set, f.attrs), (SequenceSet::Saved, vec![FetchAttr::Flags]));
        let CommandBody::Fetch(f) = ok("s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)").body else {
            panic!()
        };
        assert_eq!((f.changed_since, f.vanished), (Some(12345), true));
        let CommandBody::Fetch(f) = ok("a FETCH 1 ALL").body else { panic!() };
        assert_eq!(f.attrs.len(), 4);
        let CommandBody::Fetch(f) = ok("a FETCH 1 (BODY.PEEK[1.2.HEADER.FIELDS (A B)]<10.20> BINARY[3]<0.5>)").body
        else {
            panic!()
        };
        let part = vec![n(1), n(2)];
        let text = Some(SectionText::HeaderFields(vec![astr("A"), astr("B")]));
        let partial = Some(Partial { start: 10, length: n(20) });
        assert_eq!(f.attrs[0], FetchAttr::BodySection { peek: true, section: Section { part, text }, partial });
        let partial = Some(Partial { start: 0, length: n(5) });
        assert_eq!(f.attrs[1], FetchAttr::Binary { peek: false, part: vec![n(3)], partial });
    }

    #[test]
    fn append_dates_and_literal8() {
        let c = ok("a APPEND \"Sent\" (\\Seen) \"14-Jul-2023 02:44:25 -0700\" ~{5}\r\nhello");
        let CommandBody::Append(a) = c.body else { panic!() };
        assert_eq!(a.mailbox.as_bytes(), b"Sent");
        assert_eq!(a.flags, vec![Flag::Seen]);
        assert_eq!(a.date.map(|d| d.to_rfc3339()), Some("2023-07-14T02:44:25-07:00".to_owned()));
        assert_eq!(a.data, AppendData::Inline { bytes: b"hello".to_vec(), binary: true });
        // A literal8 is only allowed for APPEND data (RFC 3516 §4.2).
        assert_eq!(err("a SELECT ~{3}\r\nabc").reason, "literal8 not allowed here");
        assert_eq!(err("a APPEND x \"31-Feb-2023 00:00:00 +0000\" {1}\r\nx").reason, "bad date");
        assert_eq!(err("a SEARCH SINCE 1-Foo-2020").reason, "bad date");
        let missing = parse_command(b"a APPEND x {5}\r\nhel").map_err(|e| e.reason);
        assert_eq!(missing, Err("literal data missing"));
        assert_eq!(err("a APPEND x {1}\r\nx {1}\r\ny").reason, "unexpected characters at end of command");
    }

    #[test]
    fn spooled_append_data() {
        let bytes = b"a APPEND INBOX (\\Seen) {5}\r\n\r\n".to_vec();
        let spooled = SpooledLiteral { offset: bytes.len() - 2, len: 5, binary: false };
        let c = CommandInput { bytes, spooled: Some(spooled) }.parse().expect("parses");
        let CommandBody::Append(a) = c.body else { panic!() };
        assert_eq!(a.data, AppendData::Spooled(spooled));
        // Anywhere else a spooled literal is an error.
        let bytes = b"a LOGIN {5}\r\n x\r\n".to_vec();
        let input = CommandInput { bytes, spooled: Some(SpooledLiteral { offset: 13, len: 5, binary: false }) };
        assert_eq!(input.parse().map_err(|e| e.reason), Err("unexpected literal"));

        assert!(is_append_data_prefix(b"a APPEND INBOX (\\Seen) {300}\r\n"));
        assert!(is_append_data_prefix(b"a append {4}\r\nSent \"1-Jan-2020 00:00:00 +0000\" ~{300+}\r\n"));
        assert!(!is_append_data_prefix(b"a APPEND {5}\r\n"));
        assert!(!is_append_data_prefix(b"a LOGIN {5}\r\n"));
    }

    #[test]
    fn strings_mailboxes_and_auth() {
        let CommandBody::Login { username, password } = ok("a LOGIN \"al\\\\ice\" {4+}\r\np\0 w").body else {
            panic!()
        };
        assert_eq!((username, password.expose().as_slice()), (astr("al\\ice"), &b"p\0 w"[..]));
        let CommandBody::Authenticate { mechanism, initial_response } = ok("a AUTHENTICATE PLAIN =").body else {
            panic!()
        };
        assert!(mechanism.is("plain"));
        assert_eq!(initial_response.map(|r| r.expose().clone()), Some(b"=".to_vec()));
        // Undecodable responses reach the authentication gate, which refuses them.
        let CommandBody::Authenticate { initial_response, .. } = ok("a AUTHENTICATE PLAIN !!").body else { panic!() };
        assert_eq!(initial_response.map(|r| r.expose().clone()), Some(b"!!".to_vec()));
        assert!(err("a AUTHENTICATE PLAIN ").reason.contains("initial response"));
        assert_eq!(err("a AUTHENTICATE PLAIN AAA BBB").reason, "unexpected characters at end of command");

        for (name, want) in [("INBOX", Mailbox::Inbox), ("inbox", Mailbox::Inbox), ("\"InBoX\"", Mailbox::Inbox)] {
            let CommandBody::Select(s) = ok(&format!("a SELECT {name}")).body else { panic!() };
            assert_eq!(s.mailbox, want);
        }
        let CommandBody::Rename { from, to } = ok("a RENAME InBox.sub \"Gr\u{fc}\u{df}e\"").body else { panic!() };
        assert_eq!(from.as_bytes(), b"InBox.sub");
        assert_eq!(to.as_bytes(), "Grüße".as_bytes());

        let CommandBody::Id(Some(pairs)) = ok("a ID (\"name\" \"mutt\" \"os\" NIL)").body else { panic!() };
        assert_eq!(pairs, vec![(astr("name"), Some(astr("mutt"))), (astr("os"), None)]);
        let CommandBody::Create { special_use, .. } = ok("a CREATE x (USE (\\Drafts \\Important))").body else {
            panic!()
        };
        assert_eq!(special_use, vec![SpecialUse::Drafts, SpecialUse::Other(atom("Important"))]);
    }

    #[test]
    fn errors_carry_the_tag() {
        for (line, tag, reason) in [
            ("", None, "missing or invalid tag"),
            (" NOOP", None, "missing or invalid tag"),
            ("a+b NOOP", None, "missing or invalid tag"),
            ("a", Some("a"), "expected a space"),
            ("a FOO", Some("a"), "unknown command"),
            ("a DONE", Some("a"), "unknown command"),
            ("a UID NOOP", Some("a"), "unknown UID command"),
            ("a NOOP extra", Some("a"), "unexpected characters at end of command"),
            ("b1 FETCH 0 FLAGS", Some("b1"), "bad sequence set"),
            ("b2 FETCH 1:*:3 FLAGS", Some("b2"), "bad sequence set"),
            ("b3 FETCH 1,$ FLAGS", Some("b3"), "bad sequence set"),
            ("b4 FETCH 1 (FLAGS", Some("b4"), "expected a space or )"),
            ("b5 FETCH 1 FLAGS)", Some("b5"), "unexpected characters at end of command"),
            ("b6 SEARCH (ALL", Some("b6"), "expected )"),
            ("c1 LOGIN \"a\0b\" c", Some("c1"), "bad quoted string"),
            ("c2 LOGIN \"a\\b\" c", Some("c2"), "bad escape in quoted string"),
            ("c3 LOGIN {99999999999999999999}\r\nx y", Some("c3"), "bad literal length"),
            ("c4 LOGIN {18446744073709551615}\r\nx y", Some("c4"), "literal data missing"),
            ("d1 FETCH 1 BODY[0]", Some("d1"), "number must not be zero"),
            ("d2 FETCH 1 BODY[]<0.0>", Some("d2"), "number must not be zero"),
            ("d3 FETCH 1 BODY[MIME]", Some("d3"), "bad section"),
            ("d4 FETCH 1 BODY.PEEK", Some("d4"), "expected ["),
            ("d5 UID FETCH 1 FLAGS (VANISHED)", Some("d5"), "VANISHED needs UID FETCH and CHANGEDSINCE"),
            ("d6 FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)", Some("d6"), "VANISHED needs UID FETCH and CHANGEDSINCE"),
            ("d7 FETCH 1 (ALL)", Some("d7"), "unknown FETCH item"),
            ("e1 LIST (RECURSIVEMATCH) \"\" *", Some("e1"), "RECURSIVEMATCH needs another selection option"),
            ("e2 LIST (FOO) \"\" *", Some("e2"), "unknown LIST selection option"),
            ("e3 SELECT INBOX (QRESYNC (0 1))", Some("e3"), "number must not be zero"),
            ("e4 STATUS INBOX ()", Some("e4"), "empty list"),
            ("e5 SEARCH FROM", Some("e5"), "expected a space"),
            ("e6 SEARCH RETURN (PARTIAL 1:5) ALL", Some("e6"), "unknown SEARCH return option"),
            ("e7 ENABLE", Some("e7"), "ENABLE needs a capability"),
            ("e8 SEARCH KEYWORD \\Seen", Some("e8"), "expected an atom"),
            ("e9 SEARCH LARGER 99999999999999999999", Some("e9"), "number too large"),
        ] {
            let e = err(line);
            assert_eq!((e.tag.as_ref().map(Tag::as_str), e.reason), (tag, reason), "{line:?}");
        }
    }

    #[test]
    fn search_nesting_is_bounded() {
        let deep = |unit: &str, tail: &str, k: usize| format!("a SEARCH {}ALL{}", unit.repeat(k), tail.repeat(k));
        assert!(parse_command(format!("{}\r\n", deep("NOT ", "", 60)).as_bytes()).is_ok());
        for line in [deep("NOT ", "", 100_000), deep("(", ")", 100_000), deep("OR ALL ", "", 100_000)] {
            let e = err(&line);
            assert_eq!((e.tag.as_ref().map(Tag::as_str), e.reason), (Some("a"), "search program nested too deeply"));
        }
        let long = format!("a SEARCH{}", " ALL".repeat(MAX_SEARCH_KEYS + 1));
        assert_eq!(err(&long).reason, "search program too long");
    }
}
