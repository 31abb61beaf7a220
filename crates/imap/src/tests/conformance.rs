//! IMAP conformance, wire exchange by wire exchange (issue 12): FLAGS and PERMANENTFLAGS
//! before new keywords, `\Recent` for exactly one session, sections inside attached
//! messages, ENVELOPE groups, LSUB, LIST-EXTENDED and LIST-STATUS, QRESYNC, IMAP4rev2,
//! ESEARCH and SEARCHRES, BINARY, STATUS SIZE, and messages expunged by another session.

use super::{Client, client, code_number, fixture, login};

/// Two clients, both logged in, both with INBOX selected.
async fn two(f: &super::Fixture) -> (Client, Client) {
    let mut a = client(f).await;
    let mut b = client(f).await;
    a.cmd("a", &login()).await;
    b.cmd("b", &login()).await;
    a.cmd("a", "SELECT INBOX").await;
    b.cmd("b", "SELECT INBOX").await;
    (a, b)
}

const SIMPLE: &[u8] = b"From: a@example.org\r\nSubject: one\r\n\r\nbody\r\n";

/// Lines of a reply without the tagged one.
fn untagged(reply: &str) -> Vec<&str> {
    reply.split("\r\n").filter(|l| l.starts_with('*')).collect()
}

#[tokio::test]
async fn new_keywords_are_announced_before_the_fetch_that_carries_them() {
    let f = fixture(1 << 20).await;
    f.deliver(SIMPLE).await;
    let (mut a, mut b) = two(&f).await;
    // The storing session hears FLAGS and PERMANENTFLAGS first (RFC 3501 §7.2.6).
    let stored = a.cmd("a1", "STORE 1 +FLAGS ($label1)").await;
    assert_eq!(
        untagged(&stored),
        [
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $label1)",
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $label1 \\*)] flags can be changed",
            "* 1 FETCH (FLAGS (\\Recent $label1))",
        ],
        "{stored}"
    );
    // The other session too, before its FETCH.
    let noop = b.cmd("b1", "NOOP").await;
    assert_eq!(
        untagged(&noop),
        [
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $label1)",
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $label1 \\*)] flags can be changed",
            "* 1 FETCH (UID 1 FLAGS ($label1))",
        ],
        "{noop}"
    );
    // A known keyword is not announced again; the storing session is not told twice.
    let again = a.cmd("a2", "STORE 1 -FLAGS.SILENT ($label1)").await;
    assert!(untagged(&again).is_empty(), "{again}");
    assert_eq!(untagged(&b.cmd("b2", "NOOP").await), ["* 1 FETCH (UID 1 FLAGS ())"]);
}

#[tokio::test]
async fn recent_is_seen_by_exactly_one_session() {
    let f = fixture(1 << 20).await;
    f.deliver(SIMPLE).await;
    f.deliver(SIMPLE).await;
    let mut c = client(&f).await;
    c.cmd("c", &login()).await;
    assert!(c.cmd("c1", "STATUS INBOX (RECENT MESSAGES)").await.contains("* STATUS INBOX (RECENT 2 MESSAGES 2)"));
    // EXAMINE shows them without taking them (RFC 3501 §6.3.2).
    assert!(c.cmd("c2", "EXAMINE INBOX").await.contains("* 2 RECENT\r\n"));
    let (mut a, mut b) = two(&f).await;
    let _ = &mut b;
    let again = a.cmd("a1", "SELECT INBOX").await;
    assert!(again.contains("* 0 RECENT\r\n"), "the first SELECT took them: {again}");
    assert!(c.cmd("c3", "STATUS INBOX (RECENT)").await.contains("(RECENT 0)"));
    // A new message: whichever session looks first gets it as \Recent, the other does not.
    f.deliver(SIMPLE).await;
    let seen_a = a.cmd("a2", "NOOP").await;
    assert!(seen_a.contains("* 3 EXISTS\r\n* 1 RECENT\r\n"), "{seen_a}");
    let seen_b = b.cmd("b2", "NOOP").await;
    assert!(seen_b.contains("* 3 EXISTS\r\n* 0 RECENT\r\n"), "{seen_b}");
    assert!(a.cmd("a3", "FETCH 3 FLAGS").await.contains("* 3 FETCH (FLAGS (\\Recent))"));
    assert!(b.cmd("b3", "FETCH 3 FLAGS").await.contains("* 3 FETCH (FLAGS ())"));
    assert!(a.cmd("a4", "SEARCH RECENT").await.contains("* SEARCH 3\r\n"));
    assert!(b.cmd("b4", "SEARCH NEW").await.contains("* SEARCH\r\n"));
}

const ATTACHED: &[u8] = b"From: a@example.org\r\n\
Cc: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;, foo:;\r\n\
Subject: fwd\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
--outer\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: inner\r\n\
Content-Type: multipart/alternative; boundary=\"inner\"\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain\r\n\
\r\n\
plain text\r\n\
--inner\r\n\
Content-Type: text/html\r\n\
\r\n\
<p>html</p>\r\n\
--inner--\r\n\
--outer\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: second\r\n\
\r\n\
second body\r\n\
--outer--\r\n\
epilogue text\r\n";

#[tokio::test]
async fn sections_of_attached_messages_end_at_their_part_and_envelope_groups_are_marked() {
    let f = fixture(1 << 20).await;
    f.deliver(ATTACHED).await;
    let mut c = client(&f).await;
    c.cmd("c", &login()).await;
    c.cmd("c", "SELECT INBOX").await;
    let got =
        c.cmd("f1", "FETCH 1 (BODY.PEEK[1.1.TEXT] BODY.PEEK[1.2.TEXT] BODY.PEEK[2.TEXT] BODY.PEEK[1.TEXT])").await;
    assert!(got.contains("BODY[1.1.TEXT] NIL"), "part 1.1 is text/plain, it has no TEXT: {got}");
    assert!(got.contains("BODY[2.TEXT] {11}\r\nsecond body"), "{got}");
    assert!(
        got.contains("BODY[1.TEXT] {107}\r\n--inner\r\nContent-Type: text/plain\r\n\r\nplain text\r\n--inner\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--inner--"),
        "{got}"
    );
    assert!(!got.contains("epilogue"), "nothing runs past its part: {got}");
    let parts = c.cmd("f2", "FETCH 1 (BODY.PEEK[1.1] BODY.PEEK[1.2] BODY.PEEK[2.1])").await;
    assert!(parts.contains("BODY[1.1] {10}\r\nplain text"), "{parts}");
    assert!(parts.contains("BODY[1.2] {11}\r\n<p>html</p>"), "{parts}");
    assert!(parts.contains("BODY[2.1] {11}\r\nsecond body"), "{parts}");
    let envelope = c.cmd("f3", "FETCH 1 ENVELOPE").await;
    // RFC 3501 §7.4.2: group start (NIL NIL "name" NIL), members, end (NIL NIL NIL NIL).
    assert!(
        envelope.contains("((NIL NIL \"group\" NIL)(NIL NIL \"g1\" \"d1.org\")(NIL NIL \"g2\" \"d2.org\")(NIL NIL NIL NIL)(NIL NIL \"group2\" NIL)(NIL NIL \"g3\" \"d3.org\")(NIL NIL NIL NIL)(NIL NIL \"foo\" NIL)(NIL NIL NIL NIL))"),
        "{envelope}"
    );
}

#[tokio::test]
async fn lsub_returns_unsubscribed_parents_as_noselect_without_children_attributes() {
    let f = fixture(1 << 20).await;
    let mut c = client(&f).await;
    c.cmd("c", &login()).await;
    c.cmd("c1", "CREATE parent/child/deep").await;
    c.cmd("c2", "UNSUBSCRIBE parent").await;
    c.cmd("c3", "UNSUBSCRIBE parent/child").await;
    let lsub = c.cmd("c4", "LSUB \"\" parent/%").await;
    assert_eq!(untagged(&lsub), ["* LSUB (\\Noselect) \"/\" parent/child"], "{lsub}");
    let lsub = c.cmd("c5", "LSUB \"\" parent/*").await;
    assert_eq!(untagged(&lsub), ["* LSUB () \"/\" parent/child/deep"], "{lsub}");
    // A deleted folder stays subscribed (RFC 9051 §6.3.7).
    c.cmd("c6", "DELETE parent/child/deep").await;
    let listed = c.cmd("c7", "LIST (SUBSCRIBED) \"\" parent/*").await;
    assert_eq!(untagged(&listed), ["* LIST (\\NonExistent \\Subscribed) \"/\" parent/child/deep"], "{listed}");
    assert!(c.cmd("c8", "LSUB \"\" parent/*").await.contains("* LSUB (\\Noselect) \"/\" parent/child/deep"));
}

#[tokio::test]
async fn list_extended_special_use_several_patterns_and_list_status() {
    let f = fixture(1 << 20).await;
    f.deliver(SIMPLE).await;
    let mut c = client(&f).await;
    c.cmd("c", &login()).await;
    c.cmd("c1", "CREATE Projects/2026").await;
    c.cmd("c2", "UNSUBSCRIBE Projects").await;
    let special = c.cmd("c3", "LIST \"\" \"*\" RETURN (SPECIAL-USE)").await;
    assert!(
        special.contains("* LIST (\\HasNoChildren \\Sent \\Subscribed) \"/\" Sent") && special.contains("c3 OK"),
        "{special}"
    );
    let only = c.cmd("c4", "LIST (SPECIAL-USE) \"\" \"*\"").await;
    assert_eq!(untagged(&only).len(), 5, "Sent, Drafts, Trash, Junk, Archive: {only}");
    let several = c.cmd("c5", "LIST \"\" (INBOX \"Projects/%\")").await;
    assert_eq!(
        untagged(&several),
        [
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" INBOX",
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" Projects/2026"
        ],
        "{several}"
    );
    let recursive = c.cmd("c6", "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"Projects\"").await;
    assert_eq!(
        untagged(&recursive),
        ["* LIST (\\HasChildren) \"/\" Projects (\"CHILDINFO\" (\"SUBSCRIBED\"))"],
        "{recursive}"
    );
    let status = c.cmd("c7", "LIST \"\" \"INBOX\" RETURN (STATUS (MESSAGES UNSEEN SIZE))").await;
    assert_eq!(
        untagged(&status),
        [
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" INBOX",
            &format!("* STATUS INBOX (MESSAGES 1 UNSEEN 1 SIZE {})", SIMPLE.len())
        ],
        "{status}"
    );
    let bad = c.cmd("c8", "LIST (RECURSIVEMATCH) \"\" \"*\"").await;
    assert!(bad.starts_with("c8 BAD"), "RECURSIVEMATCH alone: {bad}");
}

#[tokio::test]
async fn qresync_with_known_uids_many_expunges_and_a_client_older_than_what_is_kept() {
    let f = fixture(1 << 20).await;
    for _ in 0..40 {
        f.deliver(SIMPLE).await;
    }
    let mut c = client(&f).await;
    c.cmd("c", &login()).await;
    c.cmd("e", "ENABLE QRESYNC").await;
    let select = c.cmd("s", "SELECT INBOX").await;
    let (validity, modseq) = (code_number(&select, "UIDVALIDITY"), code_number(&select, "HIGHESTMODSEQ"));
    // Every third message goes.
    c.cmd("d", "UID STORE 3,6,9,12,15,18,21,24,27,30,33,36,39 +FLAGS.SILENT (\\Deleted)").await;
    let gone = c.cmd("x", "EXPUNGE").await;
    assert!(gone.contains("* VANISHED 3,6,9,12,15,18,21,24,27,30,33,36,39\r\n"), "{gone}");
    c.cmd("u", "UNSELECT").await;
    // The client knows 1:20 only; seq-match data tells the server where it stands.
    let resync = c.cmd("r", &format!("SELECT INBOX (QRESYNC ({validity} {modseq} 1:20 (1:3 1:3)))")).await;
    assert!(resync.contains("* VANISHED (EARLIER) 3,6,9,12,15,18\r\n"), "{resync}");
    let fetched = c.cmd("v", &format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")).await;
    assert!(fetched.contains("* VANISHED (EARLIER) 3,6,9,12,15,18,21,24,27,30,33,36,39\r\n"), "{fetched}");
    c.cmd("u2", "UNSELECT").await;
    // Expunges older than the retention are forgotten: the client then hears of every UID
    // of its range that is not there (RFC 7162 §3.2.5.2 allows more than needed).
    let later = postfach_types::UnixTime(postfach_types::UnixTime::now().0 + 10);
    f.server.store.prune_expunged(later).await.expect("prune");
    let old = c.cmd("o", &format!("SELECT INBOX (QRESYNC ({validity} {modseq}))")).await;
    assert!(old.contains("* VANISHED (EARLIER) 3,6,9,12,15,18,21,24,27,30,33,36,39\r\n"), "{old}");
    let older = c.cmd("o2", &format!("SELECT INBOX (QRESYNC ({validity} 1 1:50))")).await;
    assert!(older.contains("* VANISHED (EARLIER) 3,6,9,12,15,18,21,24,27,30,33,36,39,41:50\r\n"), "{older}");
}

#[tokio::test]
async fn imap4rev2_changes_the_responses_it_specifies() {
    let f = fixture(1 << 20).await;
    f.deliver(SIMPLE).await;
    f.deliver(SIMPLE).await;
    let mut c = client(&f).await;
    c.cmd("c", &login()).await;
    assert!(c.cmd("e", "ENABLE IMAP4rev2").await.contains("* ENABLED IMAP4REV2"));
    let select = c.cmd("s", "SELECT INBOX").await;
    assert!(!select.contains("RECENT") && !select.contains("[UNSEEN"), "{select}");
    assert!(select.contains("* LIST () \"/\" INBOX\r\n"), "{select}");
    // SEARCH answers with ESEARCH (RFC 9051 §6.4.4), also when nothing matches.
    let search = c.cmd("s1", "SEARCH ALL").await;
    assert!(search.contains("* ESEARCH (TAG \"s1\") ALL 1:2\r\n"), "{search}");
    let none = c.cmd("s2", "UID SEARCH DELETED").await;
    assert!(none.contains("* ESEARCH (TAG \"s2\") UID\r\n"), "{none}");
    assert!(!c.cmd("f", "FETCH 1 FLAGS").await.contains("\\Recent"));
    // UTF-8 mailbox names (RFC 9051 §5.1); an IMAP4rev1 client sees modified UTF-7.
    assert!(c.cmd("m", "CREATE \"Entwürfe\"").await.contains("m OK"));
    assert!(c.cmd("l", "LIST \"\" Entw*").await.contains("\"/\" {9}\r\nEntwürfe"));
    let mut old = client(&f).await;
    old.cmd("c", &login()).await;
    assert!(old.cmd("l", "LIST \"\" Entw*").await.contains("\"/\" Entw&APw-rfe"));
    assert!(old.cmd("s", "SELECT Entw&APw-rfe").await.contains("s OK"));
    // Selecting again says the previous folder closed (RFC 9051 §6.3.2).
    assert!(c.cmd("s3", "SELECT INBOX").await.contains("* OK [CLOSED]"));
}

#[tokio::test]
async fn esearch_searchres_binary_and_status_size() {
    let f = fixture(1 << 20).await;
    let mut messages: Vec<Vec<u8>> =
        (0..5).map(|i| format!("Subject: m{i}\r\n\r\nbody {i}\r\n").into_bytes()).collect();
    messages.push(b"Subject: bin\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC/w==\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-secret\r\n\r\nzzz\r\n--b--\r\n".to_vec());
    for m in &messages {
        f.deliver(m).await;
    }
    let mut c = client(&f).await;
    c.cmd("c", &login()).await;
    c.cmd("s", "SELECT INBOX").await;
    c.cmd("d", "STORE 2,4 +FLAGS.SILENT (\\Seen)").await;
    let e = c.cmd("e1", "SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN").await;
    assert!(e.contains("* ESEARCH (TAG \"e1\") MIN 1 MAX 6 COUNT 4 ALL 1,3,5:6\r\n"), "{e}");
    let counted = c.cmd("e2", "UID SEARCH RETURN (COUNT) DELETED").await;
    assert!(counted.contains("* ESEARCH (TAG \"e2\") UID COUNT 0\r\n"), "{counted}");
    // SAVE, then use $ (RFC 5182); SAVE alone answers nothing untagged.
    let saved = c.cmd("e3", "SEARCH RETURN (SAVE) SEEN").await;
    assert!(untagged(&saved).is_empty(), "{saved}");
    let fetched = c.cmd("e4", "FETCH $ (UID)").await;
    assert_eq!(untagged(&fetched), ["* 2 FETCH (UID 2)", "* 4 FETCH (UID 4)"], "{fetched}");
    c.cmd("x1", "STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    c.cmd("x2", "EXPUNGE").await;
    let after = c.cmd("e5", "UID FETCH $ (UID)").await;
    assert_eq!(untagged(&after), ["* 3 FETCH (UID 4)"], "expunged messages leave $: {after}");
    // BINARY (RFC 3516): the decoded part, literal8 where it holds NUL, its size, and
    // UNKNOWN-CTE for an encoding the server cannot undo.
    let binary = c.cmd("b1", "FETCH 5 (BINARY.PEEK[1] BINARY.SIZE[1])").await;
    assert!(binary.contains("BINARY[1] ~{4}\r\n\0\u{1}\u{2}\u{fffd}"), "literal8 for NUL bytes: {binary:?}");
    assert!(binary.contains("BINARY.SIZE[1] 4"), "{binary}");
    let unknown = c.cmd("b2", "FETCH 5 BINARY.PEEK[2]").await;
    assert!(unknown.contains("b2 NO [UNKNOWN-CTE]"), "{unknown}");
    // SIZE (RFC 8438) is the sum of the sizes of the five left (message 2 is expunged).
    let left: usize = messages.iter().enumerate().filter(|(i, _)| *i != 1).map(|(_, m)| m.len()).sum();
    let size = c.cmd("st", "STATUS INBOX (SIZE MESSAGES)").await;
    assert!(size.contains(&format!("* STATUS INBOX (SIZE {left} MESSAGES 5)\r\n")), "{left}: {size}");
}

#[tokio::test]
async fn a_message_expunged_by_another_session_can_still_be_fetched_until_its_bytes_are_gone() {
    let f = fixture(1 << 20).await;
    for i in 0..5 {
        f.deliver(format!("Subject: m{i}\r\n\r\nbody {i}\r\n").as_bytes()).await;
    }
    let (mut a, mut b) = two(&f).await;
    b.cmd("b1", "STORE 1:5 +FLAGS.SILENT (\\Deleted)").await;
    assert!(b.cmd("b2", "EXPUNGE").await.contains("* 1 EXPUNGE"));
    // A has not been told (FETCH may not carry EXPUNGE): it gets the data, not an empty OK.
    let fetched = a.cmd("a1", "FETCH 1:5 (UID BODY.PEEK[TEXT])").await;
    for i in 0..5 {
        assert!(fetched.contains(&format!("body {i}\r\n")), "message {i}: {fetched}");
    }
    assert!(fetched.contains("a1 OK"), "{fetched}");
    // Once the sweep has removed the bytes (after the grace period), the answer says why.
    let mailbox = f.mailbox().await;
    let inbox = f.server.store.folder(mailbox, "INBOX").await.expect("folder").expect("inbox");
    for m in f.server.store.expunged_messages(mailbox, inbox.id, &[1, 2, 3, 4, 5]).await.expect("expunged") {
        f.server.blobs.delete(&m.blob).await.expect("delete");
    }
    let refused = a.cmd("a2", "FETCH 1 BODY.PEEK[]").await;
    assert!(refused.contains("a2 NO [EXPUNGEISSUED]"), "{refused}");
    // COPY of messages A still sees but another session removed: nothing is copied, and
    // the answer says why (RFC 2180 §4.4.1); UID COPY does not carry the expunges either.
    let copy = a.cmd("a2c", "UID COPY 1:5 Archive").await;
    assert!(copy.contains("a2c NO [EXPUNGEISSUED]") && !copy.contains("EXPUNGE\r\n"), "{copy}");
    let archive = f.server.store.folder(mailbox, "Archive").await.expect("folder").expect("archive");
    assert!(f.server.store.uids(mailbox, archive.id).await.expect("uids").is_empty(), "nothing was copied");
    // The next command that may carry expunges tells A.
    let noop = a.cmd("a3", "NOOP").await;
    assert_eq!(noop.matches("EXPUNGE").count(), 5, "{noop}");
}
