//! Tests of the whole crate through its public API: structure and sections (ported from
//! the IMAP server's mail-parser based tests), limits under a small stack, the intake
//! rules, and random inputs that must never panic nor produce disordered ranges.

use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::{
    AddressItem, FieldsScope, IntakeError, Limits, MAX_ADDRESSES, MAX_DEPTH, MAX_FIELD_VALUE, Message, PartKind,
    Problem, check_intake, parse_address_list,
};

use crate::samples::NESTED;

fn s(b: &[u8]) -> &str {
    std::str::from_utf8(b).expect("utf-8")
}

#[test]
fn nested_structure_and_part_numbers() {
    let msg = Message::parse(NESTED);
    assert!(msg.problems().is_empty(), "{:?}", msg.problems());
    let body = |path: &[u32]| s(msg.body_bytes(msg.locate(path).expect("part")));
    assert_eq!(body(&[1, 1]), "Hallo Welt=0A\r\nzweite Zeile");
    assert_eq!(body(&[1, 2]), "<p>Hallo</p>");
    assert_eq!(body(&[3]), "JVBERi0=");
    assert_eq!(body(&[2]), "From: Anna <anna@example.net>\r\nSubject: inner\r\n\r\ninner body");
    assert_eq!(body(&[2, 1]), "inner body");
    for missing in [&[4][..], &[1, 1, 1], &[0], &[2, 2], &[]] {
        assert!(msg.locate(missing).is_none(), "{missing:?}");
    }
    let two = msg.locate(&[2]).expect("2");
    assert_eq!(msg.enclosed_header_bytes(two), Some(&b"From: Anna <anna@example.net>\r\nSubject: inner\r\n\r\n"[..]));
    assert_eq!(msg.enclosed_text_bytes(two), Some(&b"inner body"[..]));
    let inner = msg.header(msg.enclosed(two).expect("enclosed"));
    assert_eq!(inner.decoded("subject").as_deref(), Some("inner"));
    assert_eq!(inner.mailboxes("from")[0].address(), "anna@example.net");
    let mime = s(msg.mime_header_bytes(msg.locate(&[3]).expect("3")));
    assert!(mime.starts_with("Content-Type: application/pdf") && mime.ends_with("\r\n\r\n"), "{mime:?}");
    // Kinds, types and encodings.
    let part = |path: &[u32]| &msg.parts()[msg.locate(path).expect("part")];
    assert!(part(&[1]).content_type.is("multipart", "alternative"));
    assert_eq!(msg.children(msg.locate(&[1]).expect("1")).len(), 2);
    assert_eq!(part(&[1, 1]).encoding, "quoted-printable");
    assert_eq!(part(&[1, 1]).content_type.param("charset"), Some("utf-8"));
    assert!(matches!(part(&[2]).kind, PartKind::Message { .. }));
    assert_eq!(part(&[3]).content_type.param("name"), Some("a.pdf"));
    assert_eq!(msg.children(0).len(), 3);
    assert_eq!(msg.depth(), 2);
    assert!(msg.text_bytes().starts_with(b"preamble\r\n") && msg.text_bytes().ends_with(b"--outer--\r\nepilogue\r\n"));
    assert!(msg.header_bytes().ends_with(b"boundary=\"outer\"\r\n\r\n"));
}

#[test]
fn top_header_view() {
    let msg = Message::parse(NESTED);
    let top = msg.top();
    assert_eq!(top.decoded("Subject").as_deref(), Some("Grüße and more"));
    assert_eq!(top.first("subject").expect("subject").value(), b" =?UTF-8?B?R3LDvMOfZQ==?= and more");
    let date = top.date().expect("date");
    assert_eq!((date.year, date.month, date.day, date.hour), (2023, 11, 14, 22));
    let from = top.mailboxes("From");
    assert_eq!(from[0].name.as_deref(), Some("Jürgen Müller"));
    assert_eq!(from[0].address(), "juergen@example.org");
    let to = top.addresses("to");
    assert_eq!(to.len(), 5);
    assert!(matches!(&to[1], AddressItem::GroupStart { name_raw: Some(n), .. } if n == "team"));
    assert_eq!(to[4], AddressItem::GroupEnd);
    assert!(msg.has_field("message-id") && msg.has_field("DATE") && !msg.has_field("Sender"));
    let to_field = top.first("TO").expect("to");
    assert_eq!(to_field.name_str(), "To");
    assert_eq!(to_field.bytes(), b"To: Max <max@acme.example>, team: a@x.example, b@y.example;\r\n");
    check_intake(&msg).expect("a normal message passes");
}

#[test]
fn single_part_message_has_part_one() {
    let msg = Message::parse(b"Subject: x\r\n\r\nhello\r\n");
    assert_eq!(msg.locate(&[1]), Some(0));
    assert_eq!(msg.body_bytes(0), b"hello\r\n");
    assert!(msg.locate(&[2]).is_none());
    assert_eq!(msg.parts()[0].content_type.param("charset"), Some("us-ascii"));
    assert_eq!(msg.decoded_text(0).as_deref(), Some("hello\r\n"));
}

#[test]
fn enclosed_message_ends_at_its_part() {
    let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: message/rfc822\r\n\r\n\
Subject: fwd\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\r\nnested text\r\n--c--\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nafter\r\n--b--\r\nepilogue\r\n";
    let msg = Message::parse(raw);
    let part = msg.locate(&[1]).expect("1");
    let text = s(msg.enclosed_text_bytes(part).expect("message/rfc822"));
    assert_eq!(text, "--c\r\n\r\nnested text\r\n--c--");
    assert_eq!(s(msg.body_bytes(msg.locate(&[1, 1]).expect("1.1"))), "nested text");
    assert_eq!(s(msg.body_bytes(msg.locate(&[2]).expect("2"))), "after");
    let root = msg.enclosed(part).expect("root");
    assert_eq!(msg.parts()[root].body.end, msg.parts()[part].body.end);
    // Without the close delimiter of the enclosed multipart the outer boundary still ends it.
    let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n\
Content-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\r\nunclosed\r\n--b  \r\n\r\nnext\r\n--b--\r\nepilogue\r\n";
    let msg = Message::parse(raw);
    assert_eq!(s(msg.body_bytes(msg.locate(&[1, 1]).expect("1.1"))), "unclosed");
    assert_eq!(s(msg.enclosed_text_bytes(msg.locate(&[1]).expect("1")).expect("msg")), "--c\r\n\r\nunclosed");
    assert_eq!(s(msg.body_bytes(msg.locate(&[2]).expect("2"))), "next");
}

#[test]
fn defaults_leaves_and_bare_lf() {
    // RFC 2046 §5.1.5: parts of a digest default to message/rfc822.
    let msg = Message::parse(b"Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\nbody\n--d--\n");
    let one = msg.locate(&[1]).expect("1");
    assert!(msg.parts()[one].content_type.is("message", "rfc822"));
    assert_eq!(msg.header(msg.enclosed(one).expect("enclosed")).decoded("subject").as_deref(), Some("one"));
    assert_eq!(s(msg.body_bytes(msg.locate(&[1, 1]).expect("1.1"))), "body");
    // No boundary parameter, or a boundary that never occurs: a leaf.
    for raw in [
        &b"Content-Type: multipart/mixed\r\n\r\n--x\r\n"[..],
        b"Content-Type: multipart/mixed; boundary=q\r\n\r\n--x\r\n",
    ] {
        let msg = Message::parse(raw);
        assert_eq!(msg.parts().len(), 1);
        assert_eq!(msg.parts()[0].kind, PartKind::Leaf);
    }
    // message/rfc822 in base64 stays opaque; an unreadable type is text/plain.
    let msg = Message::parse(
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: BASE64\r\n\r\nU3ViamVjdDogeA==\r\n",
    );
    assert_eq!((msg.parts().len(), msg.parts()[0].encoding.as_str()), (1, "base64"));
    let msg = Message::parse(b"Content-Type: garbage\r\n\r\nx");
    assert!(msg.parts()[0].content_type.is("text", "plain"));
    // A header without body, and one cut by a delimiter line.
    let msg = Message::parse(b"Subject: only\r\n");
    assert_eq!((msg.header_bytes(), msg.text_bytes()), (&b"Subject: only\r\n"[..], &b""[..]));
    let msg = Message::parse(b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nX-A: 1\r\n--b--\r\n");
    let one = msg.locate(&[1]).expect("1");
    assert_eq!((s(msg.mime_header_bytes(one)), msg.body_bytes(one)), ("X-A: 1", &b""[..]));
    assert_eq!(msg.header(one).decoded("x-a").as_deref(), Some("1"));
}

#[test]
fn decoded_text_of_parts() {
    let msg = Message::parse(NESTED);
    let text = msg.decoded_text(msg.locate(&[1, 1]).expect("1.1")).expect("text");
    assert_eq!(text, "Hallo Welt\n\r\nzweite Zeile");
    assert!(msg.decoded_text(msg.locate(&[3]).expect("3")).is_none());
    let raw = b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: base64\r\n\r\n/Pz8\r\n";
    assert_eq!(Message::parse(raw).decoded_text(0).as_deref(), Some("üüü"));
}

/// Runs `f` in a thread with a 256 KiB stack: recursion anywhere would overflow it.
fn small_stack(f: impl FnOnce() + Send + 'static) {
    let thread = std::thread::Builder::new().stack_size(256 * 1024).spawn(f).expect("spawn");
    thread.join().expect("no stack overflow, no panic");
}

fn assert_capped(raw: &[u8]) {
    let msg = Message::parse(raw);
    assert_eq!(msg.depth(), MAX_DEPTH);
    assert!(msg.problems().iter().any(|p| matches!(p, Problem::TooDeep { .. })), "{:?}", msg.problems());
    assert_eq!(check_intake(&msg), Err(IntakeError::TooDeep { limit: MAX_DEPTH }));
    // The opaque remainder is still served as the body of the deepest part.
    let deepest = msg.parts().iter().position(|p| p.depth == MAX_DEPTH).expect("deepest");
    assert!(msg.body_bytes(deepest).len() > raw.len() / 2);
    drop(msg);
}

#[test]
fn deep_message_rfc822_nesting_is_capped() {
    small_stack(|| {
        for levels in [20_000, 100_000] {
            let mut raw = b"Content-Type: message/rfc822\r\n\r\n".repeat(levels);
            raw.extend_from_slice(b"Subject: bottom\r\n\r\nbody\r\n");
            assert_capped(&raw);
        }
    });
}

#[test]
fn deep_multipart_nesting_is_capped() {
    small_stack(|| {
        let levels = 20_000;
        let mut raw = Vec::new();
        for i in 0..levels {
            raw.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n").as_bytes(),
            );
        }
        raw.extend_from_slice(b"\r\nbottom\r\n");
        for i in (0..levels).rev() {
            raw.extend_from_slice(format!("--b{i}--\r\n").as_bytes());
        }
        assert_capped(&raw);
    });
}

#[test]
fn part_field_and_line_limits() {
    let mut raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
    raw.extend_from_slice(&b"--b\r\n\r\nx\r\n".repeat(6_000));
    raw.extend_from_slice(b"--b--\r\n");
    let msg = Message::parse(&raw);
    assert_eq!(msg.parts().len(), crate::MAX_PARTS);
    assert_eq!(check_intake(&msg), Err(IntakeError::TooManyParts { limit: crate::MAX_PARTS }));

    let mut raw = b"X-A: 1\r\n".repeat(1_001);
    raw.extend_from_slice(b"Subject: late\r\n\r\nbody");
    let msg = Message::parse(&raw);
    assert_eq!(msg.top().fields().count(), crate::MAX_FIELDS);
    assert_eq!(msg.text_bytes(), b"body");
    let err = check_intake(&msg).expect_err("too many fields");
    assert_eq!(err, IntakeError::TooManyFields { limit: crate::MAX_FIELDS, scope: FieldsScope::HeaderBlock });
    assert!(err.to_string().starts_with("one header of the message"), "{err}");

    // Every block below its limit, all of them together above the message's.
    let mut raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
    for _ in 0..25 {
        raw.extend_from_slice(b"--b\r\n");
        raw.extend_from_slice(&b"X-A: 1\r\n".repeat(900));
        raw.extend_from_slice(b"\r\nx\r\n");
    }
    raw.extend_from_slice(b"--b--\r\n");
    let msg = Message::parse(&raw);
    assert_eq!(msg.parts().iter().map(|p| p.fields.len()).sum::<usize>(), crate::MAX_TOTAL_FIELDS);
    assert!(msg.problems().contains(&Problem::TooManyFields { part: 23, whole_message: true }), "{:?}", msg.problems());
    let err = check_intake(&msg).expect_err("too many fields");
    let scope = FieldsScope::WholeMessage;
    assert_eq!(err, IntakeError::TooManyFields { limit: crate::MAX_TOTAL_FIELDS, scope });
    assert!(err.to_string().starts_with("all headers of the message"), "{err}");

    let mut raw = b"Subject: ".to_vec();
    raw.extend(std::iter::repeat_n(b'a', 3 << 20));
    raw.extend_from_slice(b"\r\n\r\nbody");
    let msg = Message::parse(&raw);
    assert_eq!(msg.top().first("subject").expect("subject").value().len(), (3 << 20) + 1);
    assert_eq!(msg.text_bytes(), b"body");
}

#[test]
fn intake_rules() {
    let ok = b"From: a@b.example\r\nTo: c@d.example\r\nSubject: hi\r\n\r\nbody\r\n";
    assert_eq!(check_intake(&Message::parse(ok)), Ok(()));
    for (field, raw) in [
        ("From", &b"From: a@b.example\r\nFrom: evil@c.example\r\n\r\n"[..]),
        ("Sender", b"From: a@b\r\nSender: a@b\r\nsender: x@y\r\n\r\n"),
        ("Subject", b"Subject: a\r\nSUBJECT: b\r\n\r\n"),
        ("Message-ID", b"Message-ID: <a@b>\r\nMessage-Id: <c@d>\r\n\r\n"),
    ] {
        let err = check_intake(&Message::parse(raw)).expect_err(field);
        assert_eq!(err, IntakeError::Duplicate { field });
        assert_eq!(err.to_string(), format!("the message has more than one {field}: header field"));
    }
    // A junk first line: skipped by the lenient view (which still sees From), refused at intake.
    let msg = Message::parse(b"X\r\nFrom: a@b\r\n\r\n");
    assert_eq!(msg.problems(), [Problem::HeaderSyntax { part: 0, line_offset: 0 }]);
    assert_eq!(msg.top().mailboxes("from")[0].address(), "a@b");
    assert_eq!(check_intake(&msg), Err(IntakeError::HeaderSyntax { line: 1 }));
    assert!(check_intake(&msg).expect_err("junk").to_string().starts_with("line 1 of the message header"));
    for raw in
        [&b" folded: first\r\nFrom: a@b\r\n\r\n"[..], b"From: a@b\r\nSub ject: x\r\n\r\n", b"plain text, no header\r\n"]
    {
        assert!(matches!(check_intake(&Message::parse(raw)), Err(IntakeError::HeaderSyntax { .. })), "{raw:?}");
    }
    // Obs-syntax whitespace before the colon is a field; a junk line in a MIME part header
    // is the part's problem, not the top header's.
    assert_eq!(check_intake(&Message::parse(b"Subject : x\r\n\r\n")), Ok(()));
    let msg = Message::parse(b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\njunk\r\n\r\nx\r\n--b--\r\n");
    assert!(matches!(msg.problems(), [Problem::HeaderSyntax { part: 1, .. }]));
    assert_eq!(check_intake(&msg), Ok(()));
}

/// Ranges are inside `raw`, ordered, and every part lies inside its parent's body.
fn check_ranges(msg: &Message<'_>) {
    let len = msg.raw().len();
    for (i, p) in msg.parts().iter().enumerate() {
        assert!(p.header.start <= p.header.end && p.header.end == p.body.start, "{i}: {p:?}");
        assert!(p.body.start <= p.body.end && p.body.end <= len, "{i}: {p:?}");
        for f in &p.fields {
            assert!(p.header.start <= f.name.start && f.name.end < f.value.start, "{i}: {f:?}");
            assert!(f.value.start <= f.value.end && f.value.end <= p.header.end, "{i}: {f:?} {p:?}");
        }
        if let Some(q) = p.parent {
            let parent = &msg.parts()[q];
            assert!(
                q < i && parent.body.start <= p.header.start && p.body.end <= parent.body.end,
                "{i}: {p:?} in {parent:?}"
            );
            assert_eq!(p.depth, parent.depth + 1);
        }
        for &c in msg.children(i) {
            assert_eq!(msg.parts()[c].parent, Some(i));
        }
    }
    assert!(msg.depth() <= MAX_DEPTH && msg.parts().len() <= crate::MAX_PARTS);
    let _ = (check_intake(msg), msg.top().addresses("from"), msg.top().date(), msg.decoded_text(0));
}

#[test]
fn random_inputs_never_panic() {
    let mut rng = StdRng::seed_from_u64(0x5057_4653);
    let alphabet = b"-\r\n:; \t\"=<>@,()bxB";
    for _ in 0..3_000 {
        let len = rng.random_range(0..400);
        let raw: Vec<u8> = (0..len)
            .map(|_| if rng.random_bool(0.7) { alphabet[rng.random_range(0..alphabet.len())] } else { rng.random() })
            .collect();
        check_ranges(&Message::parse(&raw));
    }
    let pieces: [&[u8]; 8] =
        [b"\r\n", b"\n", b"--outer", b"--inner--", b"--", b"Content-Type: message/rfc822\r\n\r\n", b" ", b":"];
    for _ in 0..3_000 {
        let mut raw = NESTED.to_vec();
        for _ in 0..rng.random_range(1..8) {
            let at = rng.random_range(0..=raw.len());
            match rng.random_range(0..4) {
                0 => raw.truncate(at),
                1 => drop(raw.drain(at..(at + rng.random_range(1..40)).min(raw.len()))),
                2 => raw.splice(at..at, pieces[rng.random_range(0..pieces.len())].iter().copied()).for_each(drop),
                _ => {
                    if let Some(b) = raw.get_mut(at) {
                        *b = rng.random();
                    }
                }
            }
        }
        check_ranges(&Message::parse(&raw));
    }
}

#[test]
fn degenerate_parts_stay_ordered() {
    let mp = "Content-Type: multipart/mixed; boundary=b\r\n\r\n";
    for body in [
        "--b\r\nContent-Type: message/rfc822\r\n\r\n--b--\r\n",
        "--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\n--b--",
        "--b\r\n--b\n--b--",
        "--b\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\n",
        "--b--\r\n--b\r\n",
    ] {
        let raw = format!("{mp}{body}");
        let msg = Message::parse(raw.as_bytes());
        check_ranges(&msg);
        assert!(msg.parts().len() > 1 || body.starts_with("--b--"), "{body:?}");
    }
    // The CRLF before a delimiter belongs to it (RFC 2046 §5.1.1), even when it is the
    // one that would have ended a header block: the part is a header without body.
    let raw = format!("{mp}--b\r\nContent-Type: message/rfc822\r\n\r\n--b--\r\n");
    let msg = Message::parse(raw.as_bytes());
    let one = msg.locate(&[1]).expect("1");
    assert_eq!((s(msg.mime_header_bytes(one)), msg.body_bytes(one)), ("Content-Type: message/rfc822\r\n", &b""[..]));
    assert_eq!(msg.enclosed_header_bytes(one), Some(&b""[..]));
}

/// A message with ordinary From, To, Subject and Date fields, one of them replaced by
/// (or, for another name, followed by) `name: value`, and a body.
fn with_field(name: &str, value: &[u8]) -> Vec<u8> {
    let mut fields: Vec<(&str, &[u8])> = vec![
        ("From", b"Max <max@acme.example>"),
        ("To", b"team@acme.example"),
        ("Subject", b"hi"),
        ("Date", b"Tue, 14 Nov 2023 22:13:20 +0000"),
    ];
    match fields.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
        Some(field) => field.1 = value,
        None => fields.insert(2, (name, value)),
    }
    let mut raw = Vec::new();
    for (name, value) in fields {
        raw.extend_from_slice(format!("{name}: ").as_bytes());
        raw.extend_from_slice(value);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"\r\nbody\r\n");
    raw
}

/// Repeats `piece(i)` for i = 0, 1, … until at least `len` bytes.
fn repeated(len: usize, piece: impl Fn(usize) -> String) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 0;
    while out.len() < len {
        out.extend_from_slice(piece(i).as_bytes());
        i += 1;
    }
    out
}

/// The other fields of a message built by [`with_field`] still read normally.
fn others_still_read(msg: &Message<'_>) {
    let top = msg.top();
    assert_eq!(top.mailboxes("from")[0].address(), "max@acme.example");
    assert_eq!(top.author_domains(), ["acme.example"]);
    assert_eq!(top.addresses("to").len(), 1);
    assert_eq!(top.decoded("subject").as_deref(), Some("hi"));
    assert_eq!(top.date().expect("date").year, 2023);
    assert_eq!(msg.text_bytes(), b"body\r\n");
}

#[test]
fn huge_content_type_is_refused_and_read_as_the_default() {
    // 4 MiB, some 200,000 RFC 2231 continuations of one parameter and of distinct ones.
    let mut value = b"multipart/mixed; boundary=b".to_vec();
    value.extend(repeated(4 << 20, |i| format!("; name*{i}*=x; p{i}*1=y")));
    let raw = with_field("Content-Type", &value);
    let msg = Message::parse(&raw);
    assert_eq!(msg.problems(), [Problem::FieldTooLong { part: 0, field: 2 }]);
    // Stored: the RFC 2045 §5.2 default, a single leaf; the other fields as ever.
    let root = &msg.parts()[0];
    assert!(root.content_type.is("text", "plain") && root.kind == PartKind::Leaf, "{root:?}");
    assert_eq!(root.content_type.param("charset"), Some("us-ascii"));
    others_still_read(&msg);
    assert_eq!(msg.top().first("content-type").expect("field").value().len(), value.len() + 1);
    let err = check_intake(&msg).expect_err("too long");
    assert_eq!(err, IntakeError::FieldTooLong { field: "Content-Type".into(), limit: MAX_FIELD_VALUE });
    assert_eq!(err.to_string(), "the Content-Type: header field is longer than 65536 bytes");
}

#[test]
fn costly_parameters_within_the_length_are_refused_too() {
    // Below the length bound, but thousands of distinct continuations (quadratic in
    // mail-parser), or unfinished encoded words in a quoted value (quadratic re-reading).
    let distinct = repeated(60_000, |i| format!("; a{i}*1=x"));
    let words = repeated(60_000, |_| "=?ab?q?x ".to_owned());
    for (name, params) in [("Content-Type", distinct), ("Content-Disposition", words)] {
        let mut value = b"multipart/mixed; boundary=b; x=\"".to_vec();
        value.extend_from_slice(&params);
        value.push(b'"');
        let raw = with_field(name, &value);
        let msg = Message::parse(&raw);
        assert_eq!(msg.problems(), [Problem::FieldTooComplex { part: 0, field: 2 }], "{name}");
        assert!(msg.parts()[0].content_type.is("text", "plain"), "{name}");
        assert!(msg.top().disposition().is_none(), "{name}");
        others_still_read(&msg);
        let err = check_intake(&msg).expect_err(name);
        assert_eq!(err, IntakeError::FieldTooComplex { field: name }, "{name}");
        assert!(err.to_string().starts_with(&format!("the {name}: header field has too many")), "{err}");
    }
    // In a MIME part's header as well.
    let mut raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Disposition: attachment".to_vec();
    raw.extend(repeated(30_000, |i| format!("; a{i}*1=x")));
    raw.extend_from_slice(b"\r\n\r\nx\r\n--b--\r\n");
    let msg = Message::parse(&raw);
    let one = msg.locate(&[1]).expect("1");
    assert_eq!(msg.problems(), [Problem::FieldTooComplex { part: one, field: 0 }]);
    assert!(msg.header(one).disposition().is_none());
    assert_eq!(check_intake(&msg), Err(IntakeError::FieldTooComplex { field: "Content-Disposition" }));
}

#[test]
fn long_real_parameters_still_parse() {
    // A 255-character file name (765 bytes of UTF-8) in RFC 2231 pieces of 27 and of 63
    // percent-encoded bytes (whole characters: mail-parser decodes each piece on its
    // own), as mailers write them, and in encoded words (RFC 2047).
    let name = "ファイル名".repeat(51);
    let encoded: String = name.bytes().map(|b| format!("%{b:02X}")).collect();
    for size in [27, 63] {
        let pieces = encoded.as_bytes().chunks(size).map(|c| std::str::from_utf8(c).expect("ascii"));
        let mut value = String::from("attachment");
        for (i, piece) in pieces.enumerate() {
            let charset = if i == 0 { "UTF-8''" } else { "" };
            value.push_str(&format!(";\r\n filename*{i}*={charset}{piece}"));
        }
        let raw = format!(
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Disposition: {value}\r\n\r\nx\r\n--b--\r\n"
        );
        let msg = Message::parse(raw.as_bytes());
        assert!(msg.problems().is_empty(), "{:?}", msg.problems());
        let (kind, params) = msg.header(msg.locate(&[1]).expect("1")).disposition().expect("disposition");
        assert_eq!((kind.as_str(), params), ("attachment", vec![("filename".to_owned(), name.clone())]));
    }
    let words: Vec<String> = name.as_bytes().chunks(15).map(|c| format!("=?utf-8?Q?{}?=", q(c))).collect();
    let raw = format!("Subject: {}\r\n\r\n", words.join("\r\n "));
    let msg = Message::parse(raw.as_bytes());
    assert_eq!(msg.top().decoded("subject"), Some(name));
    assert_eq!(check_intake(&msg), Ok(()));
}

/// RFC 2047 Q-encoding of every byte.
fn q(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("={b:02X}")).collect()
}

#[test]
fn huge_subject_of_encoded_words_is_refused_and_shown_as_written() {
    // 4 MiB of encoded words, unfinished ones (each one mail-parser would read to the end)
    // and proper ones.
    for word in ["=?ab?q?x ", "=?utf-8?q?=C3=BC?= "] {
        let value = repeated(4 << 20, |_| word.to_owned());
        let raw = with_field("Subject", &value);
        let msg = Message::parse(&raw);
        assert_eq!(msg.problems(), [Problem::FieldTooLong { part: 0, field: 2 }]);
        let subject = msg.top().first("subject").expect("subject");
        let decoded = subject.decoded();
        assert_eq!((decoded.len(), decoded == subject.text()), (value.len() - 1, true), "{word}");
        let top = msg.top();
        assert_eq!(top.mailboxes("from")[0].address(), "max@acme.example");
        assert_eq!(top.addresses("to").len(), 1);
        assert_eq!((top.date().expect("date").year, msg.text_bytes()), (2023, &b"body\r\n"[..]));
        let err = check_intake(&msg).expect_err("too long");
        assert_eq!(err, IntakeError::FieldTooLong { field: "Subject".into(), limit: MAX_FIELD_VALUE });
    }
    // Within the length bound unfinished words are left as written (the check of the work
    // is linear), and accepted: nothing depends on decoded text. Proper words decode.
    let value = repeated(60_000, |_| "=?ab?q?x ".to_owned());
    let raw = with_field("Comments", &value);
    let msg = Message::parse(&raw);
    let subject = msg.top().first("comments").expect("comments");
    assert!(subject.readable());
    assert_eq!(subject.decoded(), subject.text());
    assert_eq!(check_intake(&msg), Ok(()));
    let value = repeated(60_000, |_| "=?utf-8?q?=C3=BC?= ".to_owned());
    let raw = with_field("X-Long", &value);
    let msg = Message::parse(&raw);
    let decoded = msg.top().decoded("x-long").expect("x-long");
    assert_eq!(decoded, "ü".repeat(value.len() / 19));
    assert_eq!(check_intake(&msg), Ok(()));
}

#[test]
fn huge_address_lists_are_refused_and_read_bounded() {
    // 500,000 addresses (some 6 MiB): too long to be read at all.
    let mut value = Vec::new();
    for i in 0..500_000 {
        value.extend_from_slice(format!("u{i}@x.example, ").as_bytes());
    }
    let raw = with_field("Cc", &value);
    let msg = Message::parse(&raw);
    assert!(msg.top().addresses("cc").is_empty());
    others_still_read(&msg);
    assert_eq!(check_intake(&msg), Err(IntakeError::FieldTooLong { field: "Cc".into(), limit: MAX_FIELD_VALUE }));
    // The parser itself stops after MAX_ADDRESSES items, without reading the rest.
    let items = parse_address_list(&value);
    assert_eq!(items.len(), MAX_ADDRESSES);
    assert!(matches!(&items[999], AddressItem::Mailbox(m) if m.address() == "u999@x.example"));

    // 5,000 short addresses fit the length: the view reads 1,000, intake refuses.
    let value: String = (0..5_000).map(|i| format!("{i}@x,")).collect();
    let raw = with_field("Resent-To", value.as_bytes());
    let msg = Message::parse(&raw);
    assert_eq!(msg.top().addresses("resent-to").len(), MAX_ADDRESSES);
    let err = check_intake(&msg).expect_err("too many");
    assert_eq!(err, IntakeError::TooManyAddresses { field: "Resent-To", limit: MAX_ADDRESSES });
    assert_eq!(err.to_string(), "the Resent-To: header field has more than 1000 addresses");
    // Exactly the limit is fine; a cut inside a group still closes it.
    let value: String = (0..MAX_ADDRESSES).map(|i| format!("{i}@x,")).collect();
    assert_eq!(check_intake(&Message::parse(&with_field("Bcc", value.as_bytes()))), Ok(()));
    let value = format!("team: {};", (0..2_000).map(|i| format!("{i}@x")).collect::<Vec<_>>().join(", "));
    let items = parse_address_list(value.as_bytes());
    assert_eq!(items.len(), MAX_ADDRESSES + 1);
    assert!(matches!(items[0], AddressItem::GroupStart { .. }) && items[MAX_ADDRESSES] == AddressItem::GroupEnd);
}

#[test]
fn smaller_limits_and_long_field_names() {
    let limits = Limits { max_field_value: 100, max_addresses: 2, ..Limits::default() };
    let name = "X".repeat(200);
    let raw = with_field(&name, &[b'v'; 101]);
    let msg = Message::parse_with(&raw, limits);
    // The name in the refusal is cut; the 101-byte value (102 with its space) is too long.
    assert_eq!(check_intake(&msg), Err(IntakeError::FieldTooLong { field: "X".repeat(64), limit: 100 }));
    assert!(!msg.top().first(&name).expect("field").readable());
    let raw = b"From: a@x, b@y, c@z\r\nTo: d@x, e@y\r\n\r\n";
    let msg = Message::parse_with(raw, limits);
    assert_eq!(msg.top().addresses("to").len(), 2);
    assert_eq!(msg.top().author_domains(), ["x", "y"]);
    assert_eq!(check_intake(&msg), Err(IntakeError::TooManyAddresses { field: "From", limit: 2 }));
}

#[test]
fn author_domains_are_each_once_in_order() {
    let from: String = (0..MAX_ADDRESSES).map(|i| format!("a{i}@D{}.example.,", i % 3)).collect();
    let raw = with_field("From", from.as_bytes());
    let msg = Message::parse(&raw);
    assert_eq!(msg.top().author_domains(), ["d0.example", "d1.example", "d2.example"]);
    assert_eq!(check_intake(&msg), Ok(()));
}
