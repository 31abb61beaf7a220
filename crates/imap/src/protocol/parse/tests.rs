//! The parser against RFC examples, real clients' commands and hostile input.

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
    let CommandBody::Fetch(f) = ok("s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)").body else { panic!() };
    assert_eq!((f.changed_since, f.vanished), (Some(12345), true));
    let CommandBody::Fetch(f) = ok("a FETCH 1 ALL").body else { panic!() };
    assert_eq!(f.attrs.len(), 4);
    let CommandBody::Fetch(f) = ok("a FETCH 1 (BODY.PEEK[1.2.HEADER.FIELDS (A B)]<10.20> BINARY[3]<0.5>)").body else {
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
    let CommandBody::Login { username, password } = ok("a LOGIN \"al\\\\ice\" {4+}\r\np\0 w").body else { panic!() };
    assert_eq!((username, password.expose().as_slice()), (astr("al\\ice"), &b"p\0 w"[..]));
    let CommandBody::Authenticate { mechanism, initial_response } = ok("a AUTHENTICATE PLAIN =").body else { panic!() };
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
    let CommandBody::Create { special_use, .. } = ok("a CREATE x (USE (\\Drafts \\Important))").body else { panic!() };
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
