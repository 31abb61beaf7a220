//! SEARCH evaluation (RFC 3501 §6.4.4, every key; MODSEQ from RFC 7162 §3.1.5).
//!
//! Criteria are checked against the stored metadata first; keys that look into the
//! message (headers, body, sent date) make the session load and parse it. Strings match
//! as case-insensitive substrings of the decoded text (charset UTF-8, RFC 3501 §6.4.4).

use chrono::Datelike;
use imap_codec::imap_types::search::SearchKey;
use postfach_store::messages::{Flags, Message};

use crate::mime;
use crate::seqset;

/// One message as SEARCH sees it.
#[derive(Debug)]
pub struct Candidate<'a> {
    pub seq: u32,
    pub meta: &'a Message,
    /// The parsed message, when the criteria need it.
    pub parsed: Option<&'a mail_parser::Message<'a>>,
}

/// What the whole folder contributes to `*` in sequence sets.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    pub last_seq: u32,
    pub last_uid: u32,
}

/// Whether evaluating `key` needs the message's bytes.
pub fn needs_content(key: &SearchKey<'_>) -> bool {
    use SearchKey::*;
    match key {
        And(keys) => keys.as_ref().iter().any(needs_content),
        Not(k) => needs_content(k),
        Or(a, b) => needs_content(a) || needs_content(b),
        Bcc(_) | Body(_) | Cc(_) | From(_) | Header(..) | Subject(_) | Text(_) | To(_) | SentBefore(_) | SentOn(_)
        | SentSince(_) => true,
        _ => false,
    }
}

/// Whether `key` needs CONDSTORE answers (a MODSEQ key, RFC 7162 §3.1.5).
pub fn has_modseq(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(has_modseq),
        SearchKey::Not(k) => has_modseq(k),
        SearchKey::Or(a, b) => has_modseq(a) || has_modseq(b),
        SearchKey::ModSequence { .. } => true,
        _ => false,
    }
}

fn lower(s: &impl AsRef<[u8]>) -> String {
    String::from_utf8_lossy(s.as_ref()).to_lowercase()
}

fn day(t: i64) -> (i32, u32, u32) {
    let d = chrono::DateTime::from_timestamp(t, 0).unwrap_or_default();
    (d.year(), d.month(), d.day())
}

fn date_of(d: &imap_codec::imap_types::datetime::NaiveDate) -> (i32, u32, u32) {
    let d = d.as_ref();
    (d.year(), d.month(), d.day())
}

fn header_contains(c: &Candidate<'_>, name: &str, needle: &str) -> bool {
    match c.parsed {
        Some(m) => mime::header_texts(m, name).iter().any(|t| t.contains(needle)),
        None => false,
    }
}

pub fn matches(key: &SearchKey<'_>, c: &Candidate<'_>, ctx: Context) -> bool {
    use SearchKey::*;
    let flags = c.meta.flags;
    let sent = || c.parsed.and_then(mime::sent_date).map(|(y, m, d)| (i32::from(y), u32::from(m), u32::from(d)));
    match key {
        And(keys) => keys.as_ref().iter().all(|k| matches(k, c, ctx)),
        SequenceSet(set) => seqset::contains(set, c.seq, ctx.last_seq),
        Uid(set) => seqset::contains(set, c.meta.uid, ctx.last_uid),
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
        // \Recent is not kept: no message is recent (RFC 3501 §2.3.2 allows this).
        Recent | New => false,
        Old => true,
        Keyword(k) => c.meta.keywords.iter().any(|x| x.eq_ignore_ascii_case(k.as_ref())),
        Unkeyword(k) => !c.meta.keywords.iter().any(|x| x.eq_ignore_ascii_case(k.as_ref())),
        Larger(n) => c.meta.size > u64::from(*n),
        Smaller(n) => c.meta.size < u64::from(*n),
        Before(d) => day(c.meta.internal_date.0) < date_of(d),
        On(d) => day(c.meta.internal_date.0) == date_of(d),
        Since(d) => day(c.meta.internal_date.0) >= date_of(d),
        SentBefore(d) => sent().is_some_and(|s| s < date_of(d)),
        SentOn(d) => sent().is_some_and(|s| s == date_of(d)),
        SentSince(d) => sent().is_some_and(|s| s >= date_of(d)),
        Bcc(s) => header_contains(c, "Bcc", &lower(s)),
        Cc(s) => header_contains(c, "Cc", &lower(s)),
        From(s) => header_contains(c, "From", &lower(s)),
        To(s) => header_contains(c, "To", &lower(s)),
        Subject(s) => header_contains(c, "Subject", &lower(s)),
        Header(name, value) => {
            let name = String::from_utf8_lossy(name.as_ref()).into_owned();
            let value = lower(value);
            match c.parsed {
                Some(m) => {
                    let texts = mime::header_texts(m, &name);
                    if value.is_empty() { !texts.is_empty() } else { texts.iter().any(|t| t.contains(&value)) }
                }
                None => false,
            }
        }
        Body(s) => c.parsed.is_some_and(|m| mime::body_text(m).contains(&lower(s))),
        Text(s) => c.parsed.is_some_and(|m| {
            let needle = lower(s);
            mime::all_headers_text(m).contains(&needle) || mime::body_text(m).contains(&needle)
        }),
        Not(k) => !matches(k, c, ctx),
        Or(a, b) => matches(a, c, ctx) || matches(b, c, ctx),
        ModSequence { modseq, .. } => c.meta.modseq >= *modseq,
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_codec::decode::Decoder;
    use imap_codec::imap_types::command::CommandBody;
    use postfach_types::UnixTime;

    fn criteria(text: &str) -> SearchKey<'static> {
        let line = format!("a SEARCH {text}\r\n").into_bytes().leak();
        let (_, cmd) = imap_codec::CommandCodec::default().decode(line).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        match cmd.body {
            CommandBody::Search { criteria, .. } => {
                let mut keys = criteria.into_inner();
                if keys.len() == 1 { keys.remove(0) } else { SearchKey::And(keys.try_into().expect("non-empty")) }
            }
            other => panic!("{other:?}"),
        }
    }

    fn meta(uid: u32, flags: Flags, size: u64, date: i64) -> Message {
        Message {
            uid,
            modseq: u64::from(uid) * 10,
            blob: String::new(),
            size,
            internal_date: UnixTime(date),
            flags,
            keywords: vec!["$Forwarded".into()],
        }
    }

    const MAIL: &[u8] = b"From: =?UTF-8?Q?J=C3=BCrgen?= <j@example.org>\r\nTo: max@acme.example\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\nX-Ticket: 4711\r\n\r\nDer Bericht ist fertig.\r\n";

    #[test]
    fn every_kind_of_key() {
        let parsed = mime::parse(MAIL).expect("parse");
        let m = meta(7, Flags::SEEN.union(Flags::FLAGGED), 2000, 1_700_000_000);
        let c = Candidate { seq: 3, meta: &m, parsed: Some(&parsed) };
        let ctx = Context { last_seq: 5, last_uid: 9 };
        let yes = |s: &str| assert!(matches(&criteria(s), &c, ctx), "{s} should match");
        let no = |s: &str| assert!(!matches(&criteria(s), &c, ctx), "{s} should not match");
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
        yes("NOT DELETED");
        yes("OR DELETED SEEN");
        no("OR DELETED DRAFT");
        yes("(SEEN FLAGGED)");
        yes("MODSEQ 70");
        no("MODSEQ 71");
    }

    #[test]
    fn content_keys_are_detected() {
        assert!(needs_content(&criteria("OR SEEN BODY x")));
        assert!(!needs_content(&criteria("SEEN UID 1:4 NOT DELETED")));
        assert!(has_modseq(&criteria("NOT MODSEQ 4")));
    }
}
