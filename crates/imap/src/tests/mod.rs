//! The command loop over real loopback connections: malformed input, literals (also
//! before login), a login-select-append-fetch round, CONDSTORE/QRESYNC, and random bytes
//! (whatever arrives, the session answers in IMAP syntax or closes, and its task ends
//! without a panic — the task is awaited, not detached).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use postfach_auth::{AuthSettings, Authenticator, PasswordHasher};
use postfach_blob::{Backend, BlobStore, Namespace};
use postfach_net::{Conn, MaybeTls, MemoryBudget, Protocol, Timeouts};
use postfach_store::mailboxes::MailboxSettings;
use postfach_store::{Scope, Store};
use postfach_types::{DomainName, EmailAddress, Role, Secret};
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::{ImapServer, Settings};

pub(crate) const ADDRESS: &str = "max@acme.example";
const PASSWORD: &str = "violet mango tractor whisper";

mod conformance;

pub(crate) struct Fixture {
    pub server: Arc<ImapServer>,
    listener: TcpListener,
    _dir: tempfile::TempDir,
}

pub(crate) async fn fixture(max_message_size: u64) -> Fixture {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(&format!("sqlite://{}", dir.path().join("db.sqlite").display())).await.expect("store");
    let blobs = BlobStore::open(&Backend::Fs, dir.path(), Namespace::Mailboxes).expect("blobs");
    let settings = AuthSettings { allow_plaintext_auth: true, ..AuthSettings::default() };
    let hasher = PasswordHasher::new(2);
    let auth = Arc::new(Authenticator::new(store.clone(), settings, hasher.clone()).await.expect("auth"));
    let name = postfach_types::CustomerName::parse("acme").expect("name");
    let customer = postfach_auth::accounts::create_customer(
        &store,
        &hasher,
        &name,
        &Secret::new("acme panel passphrase 42".into()),
        Role::Customer,
    )
    .await
    .expect("customer");
    store.add_domain(customer.id, &DomainName::parse("acme.example").expect("domain"), true).await.expect("domain");
    let settings = MailboxSettings { tls_required: false, ..MailboxSettings::default() };
    postfach_auth::accounts::create_mailbox(
        &store,
        &hasher,
        Scope::Platform,
        &EmailAddress::parse(ADDRESS).expect("address"),
        &Secret::new(PASSWORD.into()),
        settings,
    )
    .await
    .expect("mailbox");
    let server = ImapServer::new(store, blobs, auth, MemoryBudget::new(1 << 26), Settings::new(max_message_size));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    Fixture { server, listener, _dir: dir }
}

impl Fixture {
    /// The test mailbox.
    pub async fn mailbox(&self) -> postfach_types::MailboxId {
        let address = EmailAddress::parse(ADDRESS).expect("address");
        self.server.store.mailbox(Scope::Platform, &address).await.expect("mailbox").id
    }

    /// Puts a message into the INBOX the way the MX does.
    pub async fn deliver(&self, bytes: &[u8]) {
        use postfach_store::messages::{Delivery, DeliveryFolder, Flags, NewMessage};
        let blob = self.server.blobs.put(bytes.to_vec()).await.expect("blob");
        let message = NewMessage {
            blob,
            size: bytes.len() as u64,
            internal_date: postfach_types::UnixTime::now(),
            flags: Flags::default(),
            keywords: Vec::new(),
        };
        let mailbox_id = self.mailbox().await;
        self.server
            .store
            .deliver(&[Delivery { mailbox_id, folder: DeliveryFolder::Inbox, message }])
            .await
            .expect("deliver");
    }

    /// A client connection and the task serving it.
    async fn connect(&self) -> (TcpStream, JoinHandle<()>) {
        let addr: SocketAddr = self.listener.local_addr().expect("addr");
        let client = TcpStream::connect(addr).await.expect("connect");
        let (tcp, peer) = self.listener.accept().await.expect("accept");
        let conn = Conn::new(MaybeTls::Plain(tcp), peer, None, Timeouts::default(), None);
        let session = tokio::spawn(self.server.clone().serve(conn));
        (client, session)
    }
}

/// The number in a response code such as `[HIGHESTMODSEQ 42]`.
pub(crate) fn code_number(text: &str, code: &str) -> u64 {
    text.split(&format!("[{code} ")).nth(1).and_then(|r| r.split(']').next()).and_then(|n| n.parse().ok()).expect(code)
}

pub(crate) struct Client {
    io: TcpStream,
    buf: Vec<u8>,
    session: JoinHandle<()>,
}

impl Client {
    async fn read_more(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(Duration::from_secs(20), self.io.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => false,
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(_) => panic!("no answer; so far: {}", String::from_utf8_lossy(&self.buf)),
        }
    }

    /// Reads until a line starting with `prefix` has arrived; returns everything (bytes
    /// that are not UTF-8 shown as U+FFFD).
    pub async fn until(&mut self, prefix: &str) -> String {
        let prefix = prefix.as_bytes();
        loop {
            let mut start = 0;
            let mut found = None;
            while start <= self.buf.len() {
                let line_end = self.buf[start..].windows(2).position(|w| w == b"\r\n").map(|p| start + p + 2);
                let Some(end) = line_end else { break };
                if self.buf[start..].starts_with(prefix) {
                    found = Some(end);
                    break;
                }
                start = end;
            }
            if let Some(end) = found {
                let all = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end);
                return all;
            }
            let so_far = String::from_utf8_lossy(&self.buf).into_owned();
            assert!(self.read_more().await, "closed; so far: {so_far}");
        }
    }

    pub async fn send(&mut self, s: &[u8]) {
        self.io.write_all(s).await.expect("write");
    }

    pub async fn cmd(&mut self, tag: &str, line: &str) -> String {
        self.send(format!("{tag} {line}\r\n").as_bytes()).await;
        self.until(&format!("{tag} ")).await
    }

    /// Waits for the session to end and asserts that it did not panic.
    pub async fn finished(self) {
        drop(self.io);
        let ended = tokio::time::timeout(Duration::from_secs(20), self.session).await.expect("the session ends");
        assert!(ended.is_ok(), "the session task panicked: {ended:?}");
    }
}

pub(crate) async fn client(f: &Fixture) -> Client {
    let (io, session) = f.connect().await;
    let mut c = Client { io, buf: Vec::new(), session };
    let greeting = c.until("* OK").await;
    assert!(greeting.contains("IMAP4rev1") && greeting.contains("IMAP4rev2"), "{greeting}");
    assert!(!greeting.contains("STARTTLS"), "no certificate here: {greeting}");
    c
}

pub(crate) fn login() -> String {
    format!("LOGIN {ADDRESS} \"{PASSWORD}\"")
}

#[tokio::test]
async fn malformed_commands_get_bad_and_the_session_goes_on() {
    let f = fixture(4096).await;
    let mut c = client(&f).await;
    assert!(c.cmd("a1", "HELLO").await.starts_with("a1 BAD"));
    assert!(c.cmd("a2", "LOGIN onlyone").await.starts_with("a2 BAD"));
    c.send(b"(((\r\n").await;
    assert!(c.until("* BAD").await.starts_with("* BAD"));
    assert!(c.cmd("a3", "SELECT INBOX").await.starts_with("a3 BAD"), "not logged in");
    assert!(c.cmd("a4", "CAPABILITY").await.contains("* CAPABILITY IMAP4rev1"));
    assert!(c.cmd("a5", &login()).await.contains("a5 OK [CAPABILITY"));
    assert!(c.cmd("a6", "FETCH 1 FLAGS").await.starts_with("a6 BAD"), "nothing selected");
    let select = c.cmd("a7", "SELECT INBOX").await;
    assert!(select.contains("* 0 EXISTS") && select.contains("a7 OK [READ-WRITE]"), "{select}");
    assert!(c.cmd("a8", "FETCH 1 FLAGS").await.starts_with("a8 BAD"), "no message 1");
    assert!(c.cmd("a9", "UID FETCH 1:* FLAGS").await.starts_with("a9 OK"), "UID ranges may be empty");
    assert!(c.cmd("a10", "SEARCH CHARSET KOI8-R ALL").await.starts_with("a10 NO [BADCHARSET"));
    c.cmd("a11", "LOGOUT").await;
    c.finished().await;
}

#[tokio::test]
async fn literals_append_fetch_and_size_limit() {
    let f = fixture(4096).await;
    let mut c = client(&f).await;
    let logged_in = c.cmd("a1", &format!("LOGIN {{{}+}}\r\n{ADDRESS} \"{PASSWORD}\"", ADDRESS.len())).await;
    assert!(logged_in.contains("a1 OK"), "{logged_in}");
    let msg = "From: a@example.org\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\r\nHallo\r\n";
    // A synchronising literal: the server says "+" first.
    c.send(format!("a2 APPEND INBOX (\\Seen) {{{}}}\r\n", msg.len()).as_bytes()).await;
    assert!(c.until("+ ").await.starts_with("+ "));
    c.send(format!("{msg}\r\n").as_bytes()).await;
    let appended = c.until("a2 ").await;
    assert!(appended.contains("a2 OK [APPENDUID "), "{appended}");
    c.cmd("a3", "SELECT INBOX").await;
    let fetched = c.cmd("a4", "FETCH 1 (FLAGS ENVELOPE BODY[HEADER.FIELDS (SUBJECT)] BODY.PEEK[1])").await;
    assert!(fetched.contains("FLAGS (\\Seen \\Recent)"), "{fetched}");
    assert!(fetched.contains("\"=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\""), "{fetched}");
    assert!(
        fetched.contains("BODY[HEADER.FIELDS (SUBJECT)] {40}\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\r\n"),
        "{fetched}"
    );
    assert!(fetched.contains("BODY[1] {7}\r\nHallo\r\n"), "{fetched}");
    // RFC 7889 §4 / RFC 4469 §4.2: too large for APPEND is a tagged NO [TOOBIG], said
    // before the client sends the data (no "+").
    let too_big = c.cmd("a5", "APPEND INBOX {100000}").await;
    assert!(too_big.starts_with("a5 NO [TOOBIG]"), "{too_big}");
    assert!(c.cmd("a6", "NOOP").await.starts_with("a6 OK"));
    c.finished().await;
}

#[tokio::test]
async fn literals_before_login_are_small_and_never_get_a_continuation() {
    let f = fixture(1 << 20).await;
    let mut c = client(&f).await;
    // A synchronising literal over 8 KiB: refused at once, no "+", nothing more is read.
    c.send(b"a1 LOGIN {52428800}\r\n").await;
    let refused = c.until("a1 ").await;
    assert!(refused.starts_with("a1 NO [LIMIT]") && !refused.contains('+'), "{refused}");
    // A non-synchronising one: its bytes are read and dropped, then it is refused.
    let mut big = b"a2 LOGIN {20000+}\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'x', 20_000));
    big.extend_from_slice(b" pw\r\n");
    c.send(&big).await;
    assert!(c.until("a2 ").await.starts_with("a2 NO [LIMIT]"));
    // A small literal works, and after login large APPEND data is accepted.
    c.send(format!("a3 LOGIN {{{}}}\r\n", ADDRESS.len()).as_bytes()).await;
    assert!(c.until("+ ").await.starts_with("+ "));
    c.send(format!("{ADDRESS} \"{PASSWORD}\"\r\n").as_bytes()).await;
    assert!(c.until("a3 ").await.contains("a3 OK"));
    let mut message = b"Subject: big\r\n\r\n".to_vec();
    message.extend(std::iter::repeat_n(b'y', 300_000));
    c.send(format!("a4 APPEND INBOX {{{}+}}\r\n", message.len()).as_bytes()).await;
    c.send(&message).await;
    c.send(b"\r\n").await;
    assert!(c.until("a4 ").await.contains("a4 OK [APPENDUID"));
    c.cmd("a5", "SELECT INBOX").await;
    let size = c.cmd("a6", "FETCH 1 RFC822.SIZE").await;
    assert!(size.contains(&format!("RFC822.SIZE {}", message.len())), "{size}");
    c.finished().await;
}

#[tokio::test]
async fn one_command_cannot_ask_for_too_much_or_break_the_reply_lines() {
    let f = fixture(1 << 20).await;
    f.deliver(b"Subject: one\r\n\r\nbody\r\n").await;
    let mut c = client(&f).await;
    c.cmd("a0", &login()).await;
    // After login too, a literal over the command limit (1 MiB) gets no "+".
    c.send(b"a1 SELECT {2000000}\r\n").await;
    let refused = c.until("a1 ").await;
    assert!(refused.starts_with("a1 NO [TOOBIG]") && !refused.contains('+'), "{refused}");
    // A folder name sent as a literal may hold CR LF; the reply that echoes it stays one line.
    let name = "x\r\n* BYE fake";
    c.send(format!("a2 CREATE {{{}}}\r\n", name.len()).as_bytes()).await;
    assert!(c.until("+ ").await.starts_with("+ "));
    c.send(format!("{name}\r\n").as_bytes()).await;
    let created = c.until("a2 ").await;
    assert!(created.starts_with("a2 NO 'x  * BYE fake' is not a usable folder name"), "{created}");
    assert_eq!(c.cmd("a3", "NOOP").await, "a3 OK NOOP done\r\n");
    // At most 32 sections in one FETCH, at most 64 content keys in one SEARCH.
    c.cmd("a4", "SELECT INBOX").await;
    let sections =
        |n: usize| (1..=n).map(|i| format!("BODY.PEEK[HEADER.FIELDS (X-{i})]")).collect::<Vec<_>>().join(" ");
    let fetched = c.cmd("a5", &format!("FETCH 1 ({})", sections(32))).await;
    assert!(fetched.contains("BODY[HEADER.FIELDS (X-32)] {2}") && fetched.contains("a5 OK"), "{fetched}");
    let refused = c.cmd("a6", &format!("FETCH 1 ({})", sections(33))).await;
    assert!(refused.starts_with("a6 BAD a FETCH may ask for at most 32 message sections"), "{refused}");
    let keys = |n: usize| (0..n).map(|i| format!("BODY word{i}")).collect::<Vec<_>>().join(" ");
    assert!(c.cmd("a7", &format!("SEARCH {}", keys(64))).await.contains("a7 OK"));
    let refused = c.cmd("a8", &format!("SEARCH {}", keys(65))).await;
    assert!(refused.starts_with("a8 BAD a SEARCH may look into the messages with at most 64 keys"), "{refused}");
    // APPEND applies the message limits: a header field of 70 KB is refused, nothing stored.
    let message = format!("Subject: {}\r\n\r\nbody\r\n", "word ".repeat(14_000));
    c.send(format!("a9 APPEND INBOX {{{}+}}\r\n{message}\r\n", message.len()).as_bytes()).await;
    let refused = c.until("a9 ").await;
    assert!(refused.starts_with("a9 NO [LIMIT] the Subject: header field is longer than 65536 bytes"), "{refused}");
    assert!(c.cmd("a10", "STATUS INBOX (MESSAGES)").await.contains("(MESSAGES 1)"));
    c.finished().await;
}

/// Command fragments the random generator combines, so that random input reaches past the
/// parser into the handlers too.
const WORDS: &[&str] = &[
    "a1",
    "b2",
    "LOGIN",
    "SELECT",
    "EXAMINE",
    "FETCH",
    "UID",
    "STORE",
    "SEARCH",
    "COPY",
    "MOVE",
    "APPEND",
    "EXPUNGE",
    "LIST",
    "LSUB",
    "STATUS",
    "IDLE",
    "DONE",
    "NOOP",
    "CREATE",
    "DELETE",
    "RENAME",
    "ENABLE",
    "CONDSTORE",
    "QRESYNC",
    "IMAP4rev2",
    "INBOX",
    "1:*",
    "*",
    "$",
    "1",
    "2:4",
    "(FLAGS)",
    "(BODY[1.2.MIME])",
    "BODY.PEEK[]<0.10>",
    "BINARY[1]",
    "(\\Seen)",
    "+FLAGS",
    "-FLAGS.SILENT",
    "\"\"",
    "{3}",
    "{5+}",
    "~{4}",
    "\r\n",
    "\r\n",
    "\r\n",
    " ",
    " ",
    " ",
    "(",
    ")",
    "\"",
    "\\",
    "%",
    "CHARSET",
    "UTF-8",
    "HEADER",
    "TEXT",
    "OR",
    "NOT",
    "BEFORE",
    "1-Jan-2024",
    "AUTHENTICATE",
    "PLAIN",
    "=",
    "AGFAAGI=",
    "RETURN",
    "(SAVE MIN)",
    "(SUBSCRIBED)",
    "RETURN (STATUS (MESSAGES))",
];

#[tokio::test]
async fn random_input_never_panics_and_is_answered_in_imap_syntax() {
    let f = fixture(4096).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x1a4);
    for round in 0..60 {
        let mut c = client(&f).await;
        if round % 2 == 1 {
            c.cmd("l", &login()).await;
            c.cmd("s", "SELECT INBOX").await;
            c.cmd("p", "APPEND INBOX {24+}\r\nSubject: x\r\n\r\nhello\r\n\r\n").await;
        }
        let mut input = b"t0 NOOP\r\n".to_vec();
        for _ in 0..rng.random_range(1..80) {
            if rng.random_bool(0.15) {
                let n = rng.random_range(1..20);
                input.extend((0..n).map(|_| rng.random::<u8>()));
            } else {
                input.extend_from_slice(WORDS[rng.random_range(0..WORDS.len())].as_bytes());
            }
        }
        input.extend_from_slice(b"\r\nzz LOGOUT\r\n");
        let Client { io, mut buf, session } = c;
        let (mut reader, mut writer) = io.into_split();
        let sent = input.clone();
        let send = tokio::spawn(async move {
            let _ = writer.write_all(&sent).await;
            let _ = writer.shutdown().await;
        });
        let _ = tokio::time::timeout(Duration::from_secs(20), reader.read_to_end(&mut buf)).await;
        send.await.expect("writer");
        // The session's own task ended, without a panic.
        let ended = tokio::time::timeout(Duration::from_secs(20), session).await.expect("the session ends");
        assert!(ended.is_ok(), "the session panicked on {:?}", String::from_utf8_lossy(&input));
        let text = String::from_utf8_lossy(&buf);
        assert!(text.contains("t0 OK"), "the first command was answered: {text}");
        assert!(text.is_empty() || text.ends_with("\r\n"), "complete lines only: {text:?}");
        // Every response line is untagged, a continuation, or tagged; FETCH literals aside.
        for line in text.split("\r\n").filter(|l| !l.is_empty()) {
            let first = line.split(' ').next().unwrap_or("");
            assert!(
                !first.is_empty() && first.bytes().all(|b| b.is_ascii_graphic()),
                "odd line {line:?} for input {:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }
}

#[tokio::test]
async fn logout_after_garbage_is_answered() {
    let f = fixture(4096).await;
    let mut c = client(&f).await;
    c.send(b"\x00\x01\xff garbage (((\r\n\r\nzz LOGOUT\r\n").await;
    let bye = c.until("zz ").await;
    assert!(bye.contains("* BYE") && bye.contains("zz OK LOGOUT"), "{bye}");
    c.finished().await;
}

#[tokio::test]
async fn pipelined_commands_split_anywhere_are_all_answered() {
    let f = fixture(4096).await;
    let mut c = client(&f).await;
    let script = format!(
        "p1 LOGIN {ADDRESS} \"{PASSWORD}\"\r\np2 SELECT INBOX\r\np3 APPEND INBOX {{16+}}\r\nSubject: p\r\n\r\nhi\r\np4 NOOP\r\np5 UID FETCH 1:* (UID)\r\n"
    );
    // Sent in odd pieces: a command line cut in the middle must not be lost.
    for chunk in script.as_bytes().chunks(7) {
        c.send(chunk).await;
        tokio::task::yield_now().await;
    }
    let all = c.until("p5 ").await;
    for tag in ["p1 OK", "p2 OK", "p3 OK", "p4 OK", "p5 OK"] {
        assert!(all.contains(tag), "{tag} missing in {all}");
    }
    assert!(all.contains("* 1 FETCH (UID 1)"), "{all}");
    // Two commands in one write, the second right after DONE.
    c.send(b"i1 IDLE\r\n").await;
    c.until("+ ").await;
    c.send(b"DONE\r\ni2 NOOP\r\n").await;
    let after = c.until("i2 ").await;
    assert!(after.contains("i1 OK") && after.contains("i2 OK"), "{after}");
    c.finished().await;
}

#[tokio::test]
async fn condstore_and_qresync() {
    let f = fixture(4096).await;
    let mut c = client(&f).await;
    c.cmd("a1", &login()).await;
    for _ in 0..3 {
        c.cmd("ap", "APPEND INBOX {16+}\r\nSubject: c\r\n\r\nhi").await;
    }
    let enabled = c.cmd("a2", "ENABLE QRESYNC").await;
    assert!(enabled.contains("* ENABLED QRESYNC"), "{enabled}");
    let select = c.cmd("a3", "SELECT INBOX (CONDSTORE)").await;
    let modseq = code_number(&select, "HIGHESTMODSEQ");
    let uidvalidity = code_number(&select, "UIDVALIDITY");
    let stored = c.cmd("a4", &format!("STORE 1 (UNCHANGEDSINCE {modseq}) +FLAGS (\\Seen)")).await;
    assert!(stored.contains("* 1 FETCH (FLAGS (\\Seen \\Recent) MODSEQ ("), "{stored}");
    let stale = c.cmd("a5", "STORE 1 (UNCHANGEDSINCE 1) +FLAGS (\\Flagged)").await;
    assert!(stale.contains("a5 OK [MODIFIED 1]"), "{stale}");
    let changed = c.cmd("a6", &format!("FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq})")).await;
    assert!(
        changed.contains("* 1 FETCH (FLAGS (\\Seen \\Recent) MODSEQ (") && !changed.contains("* 2 FETCH"),
        "{changed}"
    );
    let search = c.cmd("a7", &format!("SEARCH MODSEQ {}", modseq + 1)).await;
    assert!(search.contains("* SEARCH 1 (MODSEQ "), "{search}");
    c.cmd("a8", "STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    let expunged = c.cmd("a9", "EXPUNGE").await;
    assert!(expunged.contains("* VANISHED 2"), "with QRESYNC expunges are VANISHED: {expunged}");
    c.cmd("a10", "UNSELECT").await;
    let resync = c.cmd("a11", &format!("SELECT INBOX (QRESYNC ({uidvalidity} {modseq}))")).await;
    assert!(resync.contains("* VANISHED (EARLIER) 2"), "{resync}");
    assert!(resync.contains("* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ ("), "{resync}");
    let vanished = c.cmd("a12", &format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")).await;
    assert!(vanished.contains("* VANISHED (EARLIER) 2"), "{vanished}");
    c.finished().await;
}
