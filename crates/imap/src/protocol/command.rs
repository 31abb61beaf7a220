//! The command AST: what a client asked for, as validated values (RFC 9051 §6, RFC 3501 §6
//! and the extensions named at each type). A [`Command`] is produced only by the parser in
//! `parse/`; values that carry an invariant (tags, atoms, mailbox names, sequence sets)
//! have private fields and are built through checking constructors, so the session never
//! sees `\Inbox` spelled two ways, a sequence number `0` or an empty set.

use std::num::NonZeroU32;

use chrono::{DateTime, FixedOffset, NaiveDate};
use postfach_types::Secret;

use super::parse::SpooledLiteral;

// RFC 9051 §9 (formal syntax): atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards /
// quoted-specials / resp-specials; ATOM-CHAR = <any CHAR except atom-specials>.
pub(crate) fn is_atom_char(b: u8) -> bool {
    (0x21..0x7f).contains(&b) && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// RFC 9051 §9: ASTRING-CHAR = ATOM-CHAR / resp-specials.
pub(crate) fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// RFC 9051 §9: list-char = ATOM-CHAR / list-wildcards / resp-specials.
pub(crate) fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

/// A command tag (RFC 9051 §9: `tag = 1*<any ASTRING-CHAR except "+">`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag(String);

impl Tag {
    pub fn new(bytes: &[u8]) -> Option<Tag> {
        if bytes.is_empty() || !bytes.iter().all(|&b| is_astring_char(b) && b != b'+') {
            return None;
        }
        // Every ASTRING-CHAR is 7-bit, so the conversion cannot fail.
        std::str::from_utf8(bytes).ok().map(|s| Tag(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An atom (RFC 9051 §9 `atom = 1*ATOM-CHAR`): keywords, capability names, SASL
/// mechanisms, quota resource names. Compare with [`Atom::is`], atoms are case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Atom(String);

impl Atom {
    pub fn new(bytes: &[u8]) -> Option<Atom> {
        if bytes.is_empty() || !bytes.iter().all(|&b| is_atom_char(b)) {
            return None;
        }
        std::str::from_utf8(bytes).ok().map(|s| Atom(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Case-insensitive comparison.
    pub fn is(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

/// An `astring`, `string` or `nstring` value as the client sent it (atom, quoted string or
/// literal); any bytes, 8-bit included.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AString(pub Vec<u8>);

impl AString {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A mailbox name (RFC 9051 §9 `mailbox = "INBOX" / astring`). Any case of the whole name
/// "INBOX" is [`Mailbox::Inbox`] (RFC 9051 §5.1); `InBox.sub` stays as sent. Modified
/// UTF-7 or UTF-8 is left undecoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Mailbox {
    Inbox,
    Other(MailboxName),
}

/// A mailbox name that is not INBOX (private field: only [`Mailbox::new`] builds it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MailboxName(Vec<u8>);

impl MailboxName {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Mailbox {
    pub fn new(bytes: Vec<u8>) -> Mailbox {
        if bytes.eq_ignore_ascii_case(b"INBOX") { Mailbox::Inbox } else { Mailbox::Other(MailboxName(bytes)) }
    }

    /// The name, `INBOX` in upper case for the inbox.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Mailbox::Inbox => b"INBOX",
            Mailbox::Other(name) => name.as_bytes(),
        }
    }
}

/// One end of a sequence range (RFC 9051 §9 `seq-number = nz-number / "*"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqNumber {
    Value(NonZeroU32),
    /// `*`: the largest number in use.
    Last,
}

/// `a`, or `a:b` in either order (RFC 9051 §9 `seq-range`); `from == to` for a single number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqRange {
    pub from: SeqNumber,
    pub to: SeqNumber,
}

/// A sequence set of message numbers or UIDs, depending on the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequenceSet {
    Ranges(SeqRanges),
    /// RFC 5182 §2.1 / RFC 9051 §6.4.4.1: `$`, the result saved by `SEARCH RETURN (SAVE)`.
    /// Accepted only as the whole set, as Dovecot does.
    Saved,
}

/// A non-empty list of ranges (private field: only the parser builds it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqRanges(pub(crate) Vec<SeqRange>);

impl SeqRanges {
    pub fn ranges(&self) -> &[SeqRange] {
        &self.0
    }
}

/// A message flag (RFC 9051 §2.3.2, §9 `flag`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Flag {
    Answered,
    Flagged,
    Deleted,
    Seen,
    Draft,
    /// `\Recent`: RFC 3501 only; parsed so that the session can refuse it with a clear reply.
    Recent,
    /// A keyword such as `$Forwarded` or `NonJunk` (no backslash).
    Keyword(Atom),
    /// `\Something` not defined above, stored without the backslash.
    Extension(Atom),
}

/// RFC 6154 §3 special-use attributes for `CREATE ... (USE (...))`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecialUse {
    All,
    Archive,
    Drafts,
    Flagged,
    Junk,
    Sent,
    Trash,
    /// An attribute we do not know, without the backslash; answer `NO [USEATTR]`.
    Other(Atom),
}

/// A search key (RFC 9051 §6.4.4, RFC 3501 §6.4.4). Dates are calendar days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    Answered,
    Bcc(AString),
    Before(NaiveDate),
    Body(AString),
    Cc(AString),
    Deleted,
    Draft,
    Flagged,
    From(AString),
    Header(AString, AString),
    Keyword(Atom),
    Larger(u64),
    New,
    Not(Box<SearchKey>),
    Old,
    On(NaiveDate),
    Or(Box<SearchKey>, Box<SearchKey>),
    Recent,
    Seen,
    SentBefore(NaiveDate),
    SentOn(NaiveDate),
    SentSince(NaiveDate),
    Since(NaiveDate),
    Smaller(u64),
    Subject(AString),
    Text(AString),
    To(AString),
    Uid(SequenceSet),
    Unanswered,
    Undeleted,
    Undraft,
    Unflagged,
    Unkeyword(Atom),
    Unseen,
    SequenceSet(SequenceSet),
    /// A parenthesised list, or several keys in a row: all must match.
    And(Vec<SearchKey>),
    /// RFC 7162 §3.1.5: `MODSEQ ["/flags/\Seen" all] 620162338`.
    ModSeq {
        entry: Option<(AString, EntryType)>,
        modseq: u64,
    },
    /// RFC 5032: seconds.
    Older(NonZeroU32),
    Younger(NonZeroU32),
}

/// RFC 7162 §7 `entry-type-req`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryType {
    Private,
    Shared,
    All,
}

/// RFC 4731 §3 / RFC 5182 §2: `SEARCH RETURN (...)`. An empty list means `ALL`, and is
/// stored that way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchReturn {
    pub min: bool,
    pub max: bool,
    pub all: bool,
    pub count: bool,
    pub save: bool,
}

/// BODY section (RFC 9051 §6.4.5 `section-spec`): part numbers, then an optional text part.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    pub part: Vec<NonZeroU32>,
    pub text: Option<SectionText>,
}

/// RFC 9051 §9 `section-text`; `Mime` only follows part numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    Header,
    HeaderFields(Vec<AString>),
    HeaderFieldsNot(Vec<AString>),
    Text,
    Mime,
}

/// `<start.length>` (RFC 9051 §6.4.5); the length is never zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partial {
    pub start: u32,
    pub length: NonZeroU32,
}

/// A FETCH data item (RFC 9051 §6.4.5, RFC 3516 §4.2, RFC 7162 §3.1.4). The macros ALL,
/// FAST and FULL are expanded by the parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAttr {
    Flags,
    InternalDate,
    Rfc822Size,
    Envelope,
    /// `BODY` without a section: the non-extensible BODYSTRUCTURE.
    Body,
    BodyStructure,
    Uid,
    Rfc822,
    Rfc822Header,
    Rfc822Text,
    ModSeq,
    BodySection {
        peek: bool,
        section: Section,
        partial: Option<Partial>,
    },
    Binary {
        peek: bool,
        part: Vec<NonZeroU32>,
        partial: Option<Partial>,
    },
    BinarySize {
        part: Vec<NonZeroU32>,
    },
}

/// A STATUS data item (RFC 9051 §6.3.11, RFC 8438, RFC 7162, RFC 7889).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    Messages,
    UidNext,
    UidValidity,
    Unseen,
    Deleted,
    Size,
    Recent,
    HighestModSeq,
    AppendLimit,
}

/// RFC 7162 §3.2.5: `QRESYNC (uidvalidity modseq [known-uids] [(seq-match-data)])`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QResync {
    pub uid_validity: NonZeroU32,
    pub modseq: u64,
    pub known_uids: Option<SeqRanges>,
    /// (known sequence numbers, their UIDs).
    pub seq_match: Option<(SeqRanges, SeqRanges)>,
}

/// SELECT or EXAMINE (RFC 9051 §6.3.2, RFC 7162 §3.1.8, §3.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Select {
    pub mailbox: Mailbox,
    pub condstore: bool,
    pub qresync: Option<QResync>,
}

/// RFC 5258 §3 selection options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListSelection {
    pub subscribed: bool,
    pub remote: bool,
    pub recursive_match: bool,
    pub special_use: bool,
}

/// RFC 5258 §3 return options, RFC 5819 STATUS, RFC 6154 SPECIAL-USE.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListReturn {
    pub children: bool,
    pub subscribed: bool,
    pub special_use: bool,
    pub status: Option<Vec<StatusItem>>,
}

/// LIST, basic or extended (RFC 9051 §6.3.9, RFC 5258). The reference and the patterns are
/// raw bytes (wildcards `%` and `*` included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    pub selection: ListSelection,
    pub reference: AString,
    pub patterns: Vec<AString>,
    pub returns: ListReturn,
}

/// APPEND message data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendData {
    /// The literal was held in memory; `binary` for a literal8 `~{n}` (RFC 3516 §4.4).
    Inline { bytes: Vec<u8>, binary: bool },
    /// The literal went to the session's spool file, chunk by chunk.
    Spooled(SpooledLiteral),
}

/// APPEND (RFC 9051 §6.3.12), one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Append {
    pub mailbox: Mailbox,
    pub flags: Vec<Flag>,
    pub date: Option<DateTime<FixedOffset>>,
    pub data: AppendData,
}

/// FETCH or UID FETCH with the RFC 7162 modifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    pub uid: bool,
    pub set: SequenceSet,
    pub attrs: Vec<FetchAttr>,
    pub changed_since: Option<u64>,
    /// RFC 7162 §3.2.6; only with UID FETCH and CHANGEDSINCE (checked by the parser).
    pub vanished: bool,
}

/// How STORE changes flags (RFC 9051 §6.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    Replace,
    Add,
    Remove,
}

/// STORE or UID STORE (RFC 9051 §6.4.6, RFC 7162 §3.1.3 UNCHANGEDSINCE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    pub uid: bool,
    pub set: SequenceSet,
    pub mode: StoreMode,
    pub silent: bool,
    pub flags: Vec<Flag>,
    pub unchanged_since: Option<u64>,
}

/// SEARCH or UID SEARCH (RFC 9051 §6.4.4, RFC 4731 ESEARCH).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub uid: bool,
    pub charset: Option<AString>,
    /// `None` without RETURN: answer with the untagged SEARCH of RFC 3501.
    pub returns: Option<SearchReturn>,
    pub key: SearchKey,
}

/// COPY/MOVE and their UID variants (RFC 9051 §6.4.7, §6.4.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub uid: bool,
    pub set: SequenceSet,
    pub mailbox: Mailbox,
}

/// Every command we understand. `DONE` is not one: the session reads it while idling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody {
    // Any state (RFC 9051 §6.1).
    Capability,
    Noop,
    Logout,
    Id(Option<Vec<(AString, Option<AString>)>>),
    // Not authenticated (§6.2).
    StartTls,
    Authenticate {
        mechanism: Atom,
        initial_response: Option<Secret<Vec<u8>>>,
    },
    Login {
        username: AString,
        password: Secret<Vec<u8>>,
    },
    // Authenticated (§6.3).
    Enable(Vec<Atom>),
    Select(Select),
    Examine(Select),
    Create {
        mailbox: Mailbox,
        special_use: Vec<SpecialUse>,
    },
    Delete(Mailbox),
    Rename {
        from: Mailbox,
        to: Mailbox,
    },
    Subscribe(Mailbox),
    Unsubscribe(Mailbox),
    List(List),
    Lsub {
        reference: AString,
        pattern: AString,
    },
    Namespace,
    Status {
        mailbox: Mailbox,
        items: Vec<StatusItem>,
    },
    Append(Append),
    Idle,
    GetQuota(AString),
    GetQuotaRoot(Mailbox),
    SetQuota {
        root: AString,
        limits: Vec<(Atom, u64)>,
    },
    // Selected (§6.4).
    Check,
    Close,
    Unselect,
    /// `uid_set` is the set of UID EXPUNGE (RFC 4315 §2.1).
    Expunge {
        uid_set: Option<SequenceSet>,
    },
    Search(Search),
    Fetch(Fetch),
    Store(Store),
    Copy(Transfer),
    Move(Transfer),
}

/// A tagged command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub tag: Tag,
    pub body: CommandBody,
}

impl Command {
    pub fn name(&self) -> &'static str {
        self.body.name()
    }

    pub fn is_uid(&self) -> bool {
        self.body.is_uid()
    }
}

impl CommandBody {
    /// The command's name for logs, `UID FETCH` for the UID variant.
    pub fn name(&self) -> &'static str {
        use CommandBody as C;
        let uid = self.is_uid();
        match self {
            C::Capability => "CAPABILITY",
            C::Noop => "NOOP",
            C::Logout => "LOGOUT",
            C::Id(_) => "ID",
            C::StartTls => "STARTTLS",
            C::Authenticate { .. } => "AUTHENTICATE",
            C::Login { .. } => "LOGIN",
            C::Enable(_) => "ENABLE",
            C::Select(_) => "SELECT",
            C::Examine(_) => "EXAMINE",
            C::Create { .. } => "CREATE",
            C::Delete(_) => "DELETE",
            C::Rename { .. } => "RENAME",
            C::Subscribe(_) => "SUBSCRIBE",
            C::Unsubscribe(_) => "UNSUBSCRIBE",
            C::List(_) => "LIST",
            C::Lsub { .. } => "LSUB",
            C::Namespace => "NAMESPACE",
            C::Status { .. } => "STATUS",
            C::Append(_) => "APPEND",
            C::Idle => "IDLE",
            C::GetQuota(_) => "GETQUOTA",
            C::GetQuotaRoot(_) => "GETQUOTAROOT",
            C::SetQuota { .. } => "SETQUOTA",
            C::Check => "CHECK",
            C::Close => "CLOSE",
            C::Unselect => "UNSELECT",
            C::Expunge { .. } if uid => "UID EXPUNGE",
            C::Expunge { .. } => "EXPUNGE",
            C::Search(_) if uid => "UID SEARCH",
            C::Search(_) => "SEARCH",
            C::Fetch(_) if uid => "UID FETCH",
            C::Fetch(_) => "FETCH",
            C::Store(_) if uid => "UID STORE",
            C::Store(_) => "STORE",
            C::Copy(_) if uid => "UID COPY",
            C::Copy(_) => "COPY",
            C::Move(_) if uid => "UID MOVE",
            C::Move(_) => "MOVE",
        }
    }

    /// Whether this is the `UID` variant (numbers are UIDs, not sequence numbers).
    pub fn is_uid(&self) -> bool {
        match self {
            CommandBody::Expunge { uid_set } => uid_set.is_some(),
            CommandBody::Search(s) => s.uid,
            CommandBody::Fetch(f) => f.uid,
            CommandBody::Store(s) => s.uid,
            CommandBody::Copy(t) | CommandBody::Move(t) => t.uid,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_is_case_insensitive_only_as_a_whole_name() {
        assert_eq!(Mailbox::new(b"inbox".to_vec()), Mailbox::Inbox);
        assert_eq!(Mailbox::new(b"InBoX".to_vec()).as_bytes(), b"INBOX");
        assert_eq!(Mailbox::new(b"InBox.sub".to_vec()).as_bytes(), b"InBox.sub");
        assert_ne!(Mailbox::new(b"INBOX2".to_vec()), Mailbox::Inbox);
    }

    #[test]
    fn tags_and_atoms_are_validated() {
        assert!(Tag::new(b"a1").is_some());
        assert!(Tag::new(b"x]").is_some());
        for bad in [&b""[..], b"a+", b"a b", b"a(", b"a*", b"a\"", b"\xc3\xa4"] {
            assert!(Tag::new(bad).is_none(), "{bad:?}");
        }
        assert!(Atom::new(b"$Label1").is_some_and(|a| a.is("$label1")));
        assert!(Atom::new(b"a]").is_none());
    }
}
