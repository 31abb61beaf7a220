//! SEARCH evaluation (RFC 9051 §6.4.4, every key; MODSEQ of RFC 7162 §3.1.5, OLDER and
//! YOUNGER of RFC 5032).
//!
//! Keys are checked against the stored metadata first; keys that look into the message
//! (headers, body, sent date) need it parsed by `postfach_message`, the same parse FETCH
//! shows. Strings match as case-insensitive substrings of the raw and the decoded text
//! (RFC 2047 words, transfer encodings and charsets undone, RFC 9051 §6.4.4).

use std::cell::OnceCell;
use std::collections::HashMap;

use chrono::NaiveDate;
use postfach_message::{Message as Parsed, PartKind};
use postfach_store::messages::{Flags, Message};

use crate::protocol::{AString, SearchKey, SeqRanges, SequenceSet};
use crate::seqset;

/// Search keys that look into a message's content, at most, in one search program (each
/// costs a pass over the message's text).
pub const MAX_CONTENT_KEYS: usize = 64;

/// One message as SEARCH sees it.
#[derive(Debug)]
pub struct Candidate<'a> {
    pub seq: u32,
    pub meta: &'a Message,
    /// The parsed message, when the key needs it.
    pub parsed: Option<&'a Parsed<'a>>,
    /// `\Recent` in this session.
    pub recent: bool,
    /// The lower-cased texts, made once per message however many keys ask.
    pub texts: Texts,
}

/// A message's lower-cased header and body text, made when first needed.
#[derive(Debug, Default)]
pub struct Texts {
    header: OnceCell<String>,
    body: OnceCell<String>,
}

/// What the whole folder contributes: `*` in sequence sets, `$`, the time for OLDER.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The sequence sets of the program, resolved once.
    pub sets: &'a Sets,
    /// The saved result (RFC 5182), as sorted UIDs.
    pub saved: &'a [u32],
    pub now: i64,
}

/// The sequence sets of a search program resolved for membership tests (`*` is the last
/// sequence number or UID), found by the set's place in the program.
#[derive(Debug, Default)]
pub struct Sets(HashMap<usize, seqset::Membership>);

impl Sets {
    pub fn of(key: &SearchKey, last_seq: u32, last_uid: u32) -> Sets {
        fn walk(key: &SearchKey, last_seq: u32, last_uid: u32, out: &mut Sets) {
            match key {
                SearchKey::And(keys) => keys.iter().for_each(|k| walk(k, last_seq, last_uid, out)),
                SearchKey::Not(k) => walk(k, last_seq, last_uid, out),
                SearchKey::Or(a, b) => {
                    walk(a, last_seq, last_uid, out);
                    walk(b, last_seq, last_uid, out);
                }
                SearchKey::SequenceSet(SequenceSet::Ranges(r)) => {
                    out.0.insert(std::ptr::from_ref(r).addr(), seqset::Membership::new(r, last_seq));
                }
                SearchKey::Uid(SequenceSet::Ranges(r)) => {
                    out.0.insert(std::ptr::from_ref(r).addr(), seqset::Membership::new(r, last_uid));
                }
                _ => {}
            }
        }
        let mut sets = Sets::default();
        walk(key, last_seq, last_uid, &mut sets);
        sets
    }

    fn contains(&self, ranges: &SeqRanges, n: u32) -> bool {
        self.0.get(&std::ptr::from_ref(ranges).addr()).is_some_and(|m| m.contains(n))
    }
}

/// How many keys of the program look into message content.
pub fn content_keys(key: &SearchKey) -> usize {
    use SearchKey::*;
    match key {
        And(keys) => keys.iter().map(content_keys).sum(),
        Not(k) => content_keys(k),
        Or(a, b) => content_keys(a) + content_keys(b),
        k => usize::from(needs_content(k)),
    }
}

/// Whether evaluating `key` needs the message's bytes.
pub fn needs_content(key: &SearchKey) -> bool {
    use SearchKey::*;
    match key {
        And(keys) => keys.iter().any(needs_content),
        Not(k) => needs_content(k),
        Or(a, b) => needs_content(a) || needs_content(b),
        Bcc(_) | Body(_) | Cc(_) | From(_) | Header(..) | Subject(_) | Text(_) | To(_) | SentBefore(_) | SentOn(_)
        | SentSince(_) => true,
        _ => false,
    }
}

/// Whether `key` needs CONDSTORE answers (a MODSEQ key, RFC 7162 §3.1.5).
pub fn has_modseq(key: &SearchKey) -> bool {
    match key {
        SearchKey::And(keys) => keys.iter().any(has_modseq),
        SearchKey::Not(k) => has_modseq(k),
        SearchKey::Or(a, b) => has_modseq(a) || has_modseq(b),
        SearchKey::ModSeq { .. } => true,
        _ => false,
    }
}

fn lower(s: &AString) -> String {
    String::from_utf8_lossy(s.as_bytes()).to_lowercase()
}

fn day(t: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp(t, 0).unwrap_or_default().date_naive()
}

fn sent(c: &Candidate<'_>) -> Option<NaiveDate> {
    let d = c.parsed?.top().date()?;
    NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
}

/// Lower-cased texts of every field `name` (raw and decoded) of the top header.
fn field_texts(m: &Parsed<'_>, name: &str) -> Vec<String> {
    m.top().all(name).map(|f| format!("{}\n{}", f.text(), f.decoded()).to_lowercase()).collect()
}

/// Lower-cased text of the whole top header, raw and decoded.
fn header_text(m: &Parsed<'_>) -> String {
    let mut text = String::from_utf8_lossy(m.header_bytes()).into_owned();
    for f in m.top().fields() {
        text.push('\n');
        text.push_str(&f.decoded());
    }
    text.to_lowercase()
}

/// Lower-cased decoded text of every text part, and the raw body.
fn body_text(m: &Parsed<'_>) -> String {
    let mut text = String::new();
    for (i, part) in m.parts().iter().enumerate() {
        if part.kind == PartKind::Leaf
            && let Some(t) = m.decoded_text(i)
        {
            text.push_str(&t);
            text.push('\n');
        }
    }
    text.push_str(&String::from_utf8_lossy(m.text_bytes()));
    text.to_lowercase()
}

fn in_set(set: &SequenceSet, n: u32, uid: u32, ctx: Context<'_>) -> bool {
    match set {
        SequenceSet::Ranges(ranges) => ctx.sets.contains(ranges, n),
        SequenceSet::Saved => ctx.saved.binary_search(&uid).is_ok(),
    }
}

/// Whether the candidate matches `key`.
pub fn matches(key: &SearchKey, c: &Candidate<'_>, ctx: Context<'_>) -> bool {
    use SearchKey::*;
    let flags = c.meta.flags;
    let has_keyword = |k: &str| c.meta.keywords.iter().any(|x| x.eq_ignore_ascii_case(k));
    let field = |name: &str, s: &AString| {
        let needle = lower(s);
        c.parsed.is_some_and(|m| field_texts(m, name).iter().any(|t| t.contains(&needle)))
    };
    let age = ctx.now - c.meta.internal_date.0;
    match key {
        And(keys) => keys.iter().all(|k| matches(k, c, ctx)),
        SequenceSet(set) => in_set(set, c.seq, c.meta.uid, ctx),
        Uid(set) => in_set(set, c.meta.uid, c.meta.uid, ctx),
        All => true,
        Answered => flags.contains(Flags::ANSWERED),
        Deleted => flags.contains(Flags::DELETED),
        Draft => flags.contains(Flags::DRAFT),
        Flagged => flags.contains(Flags::FLAGGED),
        Seen => flags.contains(Flags::SEEN),
        Unanswered => !flags.contains(Flags::ANSWERED),
        Undeleted => !flags.contains(Flags::DELETED),
        Undraft => !flags.contains(Flags::DRAFT),
        Unflagged => !flags.contains(Flags::FLAGGED),
        Unseen => !flags.contains(Flags::SEEN),
        // RFC 3501 §6.4.4: NEW is RECENT and UNSEEN, OLD is NOT RECENT.
        Recent => c.recent,
        New => c.recent && !flags.contains(Flags::SEEN),
        Old => !c.recent,
        Keyword(k) => has_keyword(k.as_str()),
        Unkeyword(k) => !has_keyword(k.as_str()),
        Larger(n) => c.meta.size > *n,
        Smaller(n) => c.meta.size < *n,
        Before(d) => day(c.meta.internal_date.0) < *d,
        On(d) => day(c.meta.internal_date.0) == *d,
        Since(d) => day(c.meta.internal_date.0) >= *d,
        SentBefore(d) => sent(c).is_some_and(|s| s < *d),
        SentOn(d) => sent(c).is_some_and(|s| s == *d),
        SentSince(d) => sent(c).is_some_and(|s| s >= *d),
        Older(secs) => age >= i64::from(secs.get()),
        Younger(secs) => age <= i64::from(secs.get()),
        Bcc(s) => field("Bcc", s),
        Cc(s) => field("Cc", s),
        From(s) => field("From", s),
        To(s) => field("To", s),
        Subject(s) => field("Subject", s),
        Header(name, value) => {
            let name = String::from_utf8_lossy(name.as_bytes()).into_owned();
            let value = lower(value);
            c.parsed.is_some_and(|m| {
                let texts = field_texts(m, &name);
                if value.is_empty() { !texts.is_empty() } else { texts.iter().any(|t| t.contains(&value)) }
            })
        }
        Body(s) => c.parsed.is_some_and(|m| c.texts.body.get_or_init(|| body_text(m)).contains(&lower(s))),
        Text(s) => c.parsed.is_some_and(|m| {
            let needle = lower(s);
            c.texts.header.get_or_init(|| header_text(m)).contains(&needle)
                || c.texts.body.get_or_init(|| body_text(m)).contains(&needle)
        }),
        Not(k) => !matches(k, c, ctx),
        Or(a, b) => matches(a, c, ctx) || matches(b, c, ctx),
        ModSeq { modseq, .. } => c.meta.modseq >= *modseq,
    }
}

#[cfg(test)]
mod tests {
    use postfach_types::UnixTime;

    use super::*;
    use crate::protocol::{CommandBody, parse_command};

    fn criteria(text: &str) -> SearchKey {
        match parse_command(format!("a SEARCH {text}\r\n").as_bytes()).unwrap_or_else(|e| panic!("{text}: {e:?}")).body
        {
            CommandBody::Search(s) => s.key,
            other => panic!("{other:?}"),
        }
    }

    fn meta(uid: u32, flags: Flags, size: u64, date: i64) -> Message {
        Message {
            uid,
            modseq: u64::from(uid) * 10,
            blob: postfach_blob::BlobId::from_bytes([0; 16]),
            size,
            internal_date: UnixTime(date),
            flags,
            keywords: vec!["$Forwarded".into()],
        }
    }

    const MAIL: &[u8] = b"From: =?UTF-8?Q?J=C3=BCrgen?= <j@example.org>\r\nTo: max@acme.example\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\nX-Ticket: 4711\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nDer Bericht ist fertig: gr=C3=BCn.\r\n";

    #[test]
    fn every_kind_of_key() {
        let parsed = Parsed::parse(MAIL);
        let m = meta(7, Flags::SEEN.union(Flags::FLAGGED), 2000, 1_700_000_000);
        let c = Candidate { seq: 3, meta: &m, parsed: Some(&parsed), recent: false, texts: Texts::default() };
        let check = |s: &str, c: &Candidate<'_>| {
            let key = criteria(s);
            let sets = Sets::of(&key, 5, 9);
            matches(&key, c, Context { sets: &sets, saved: &[7], now: 1_700_000_100 })
        };
        let yes = |s: &str| assert!(check(s, &c), "{s} should match");
        let no = |s: &str| assert!(!check(s, &c), "{s} should not match");
        yes("ALL");
        yes("SEEN FLAGGED UNANSWERED UNDELETED UNDRAFT OLD");
        no("UNSEEN");
        no("RECENT");
        no("NEW");
        yes("KEYWORD $forwarded");
        no("UNKEYWORD $Forwarded");
        yes("LARGER 1999 SMALLER 2001");
        no("LARGER 2000");
        yes("ON 14-Nov-2023");
        yes("SINCE 14-Nov-2023 BEFORE 15-Nov-2023");
        no("BEFORE 14-Nov-2023");
        yes("SENTON 14-Nov-2023 SENTSINCE 1-Jan-2023 SENTBEFORE 1-Jan-2024");
        yes("FROM {7}\r\njürgen");
        yes("FROM j@example.org");
        yes("SUBJECT {7}\r\ngrüße");
        yes("TO max@acme");
        no("CC max");
        no("BCC max");
        yes("HEADER X-Ticket 4711");
        yes("HEADER X-Ticket \"\"");
        no("HEADER X-Other \"\"");
        yes("BODY bericht");
        yes("BODY {5}\r\ngrün");
        no("BODY {7}\r\nGrüße");
        yes("TEXT {7}\r\ngrüße");
        yes("TEXT bericht");
        yes("3");
        yes("2:*");
        no("4:*");
        yes("UID 7");
        yes("UID 5:*");
        no("UID 8:*");
        no("UID 1:6");
        yes("UID $");
        yes("NOT DELETED");
        yes("OR DELETED SEEN");
        no("OR DELETED DRAFT");
        yes("(SEEN FLAGGED)");
        yes("MODSEQ 70");
        no("MODSEQ 71");
        yes("OLDER 50");
        no("YOUNGER 50");
        yes("1:2,3,5:4");
        no("1:2,4:*");
        let r = Candidate { recent: true, ..c };
        assert!(check("RECENT", &r) && !check("NEW", &r));
        assert!(!check("OLD", &r));
    }

    #[test]
    fn content_keys_are_detected() {
        assert!(needs_content(&criteria("OR SEEN BODY x")));
        assert!(!needs_content(&criteria("SEEN UID 1:4 NOT DELETED")));
        assert!(has_modseq(&criteria("NOT MODSEQ 4")));
        assert_eq!(content_keys(&criteria("OR BODY a TEXT b (SEEN SUBJECT c) NOT FROM d")), 4);
    }
}
