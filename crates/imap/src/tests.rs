//! The command loop over an in-memory duplex stream: malformed input, literals, a full
//! login-select-append-fetch round, and random bytes (the fuzz target that runs in CI
//! without nightly: whatever arrives, the session answers in IMAP syntax or closes, and
//! never panics).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use postfach_auth::{AuthSettings, Authenticator, PasswordHasher};
use postfach_blob::BlobStore;
use postfach_store::mailboxes::MailboxSettings;
use postfach_store::{Scope, Store};
use postfach_types::{DomainName, EmailAddress, Role, Secret};
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use crate::ImapServer;

const ADDRESS: &str = "max@acme.example";
const PASSWORD: &str = "violet mango tractor whisper";

struct Fixture {
    server: Arc<ImapServer>,
    _dir: tempfile::TempDir,
}

async fn fixture(max_message_size: u64) -> Fixture {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(&format!("sqlite://{}", dir.path().join("db.sqlite").display())).await.expect("store");
    let blobs = BlobStore::open(&dir.path().join("blobs")).expect("blobs");
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
    Fixture { server: ImapServer::new(store, blobs, auth, None, max_message_size), _dir: dir }
}

fn peer() -> SocketAddr {
    "127.0.0.1:40000".parse().expect("addr")
}

/// Starts a session; returns the client end.
fn connect(f: &Fixture) -> DuplexStream {
    let (client, server) = tokio::io::duplex(64 * 1024);
    tokio::spawn(f.server.clone().run(server, peer(), true));
    client
}

struct Client {
    io: DuplexStream,
    buf: Vec<u8>,
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

    /// Reads until a line starting with `prefix` has arrived; returns everything.
    async fn until(&mut self, prefix: &str) -> String {
        loop {
            let text = String::from_utf8_lossy(&self.buf).into_owned();
            if let Some(pos) =
                text.find(&format!("\r\n{prefix}")).map(|p| p + 2).or(text.starts_with(prefix).then_some(0))
                && let Some(end) = text[pos..].find("\r\n")
            {
                let all = text[..pos + end + 2].to_string();
                self.buf.drain(..pos + end + 2);
                return all;
            }
            assert!(self.read_more().await, "closed; so far: {text}");
        }
    }

    async fn send(&mut self, s: &[u8]) {
        self.io.write_all(s).await.expect("write");
    }

    async fn cmd(&mut self, tag: &str, line: &str) -> String {
        self.send(format!("{tag} {line}\r\n").as_bytes()).await;
        self.until(&format!("{tag} ")).await
    }
}

async fn client(f: &Fixture) -> Client {
    let mut c = Client { io: connect(f), buf: Vec::new() };
    let greeting = c.until("* OK").await;
    assert!(greeting.contains("IMAP4rev1") && !greeting.contains("STARTTLS"), "{greeting}");
    c
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
    assert!(c.cmd("a5", &format!("LOGIN {ADDRESS} \"{PASSWORD}\"")).await.contains("a5 OK [CAPABILITY"));
    assert!(c.cmd("a6", "FETCH 1 FLAGS").await.starts_with("a6 BAD"), "nothing selected");
    let select = c.cmd("a7", "SELECT INBOX").await;
    assert!(select.contains("* 0 EXISTS") && select.contains("a7 OK [READ-WRITE]"), "{select}");
    assert!(c.cmd("a8", "FETCH 1 FLAGS").await.starts_with("a8 BAD"), "no message 1");
    assert!(c.cmd("a9", "UID FETCH 1:* FLAGS").await.starts_with("a9 OK"), "UID ranges may be empty");
    assert!(c.cmd("a10", "SEARCH CHARSET KOI8-R ALL").await.starts_with("a10 NO [BADCHARSET"));
}

#[tokio::test]
async fn literals_append_fetch_and_size_limit() {
    let f = fixture(4096).await;
    let mut c = client(&f).await;
    c.cmd(
        "a1",
        &format!("LOGIN {{{}}}\r\n{ADDRESS} \"{PASSWORD}\"", ADDRESS.len())
            .replace(&format!("{{{}}}\r\n", ADDRESS.len()), &format!("{{{}+}}\r\n", ADDRESS.len())),
    )
    .await;
    let msg = "From: a@example.org\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\r\nHallo\r\n";
    // A synchronising literal: the server says "+" first.
    c.send(format!("a2 APPEND INBOX (\\Seen) {{{}}}\r\n", msg.len()).as_bytes()).await;
    assert!(c.until("+ ").await.starts_with("+ "));
    c.send(format!("{msg}\r\n").as_bytes()).await;
    let appended = c.until("a2 ").await;
    assert!(appended.contains("a2 OK [APPENDUID "), "{appended}");
    c.cmd("a3", "SELECT INBOX").await;
    let fetched = c.cmd("a4", "FETCH 1 (FLAGS ENVELOPE BODY[HEADER.FIELDS (SUBJECT)] BODY.PEEK[1])").await;
    assert!(fetched.contains("FLAGS (\\Seen)"), "{fetched}");
    assert!(fetched.contains("\"=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\""), "{fetched}");
    assert!(
        fetched.contains("BODY[HEADER.FIELDS (SUBJECT)] {40}\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\r\n"),
        "{fetched}"
    );
    assert!(fetched.contains("BODY[1] {7}\r\nHallo\r\n"), "{fetched}");
    let too_big = c.cmd("a5", "APPEND INBOX {100000}").await;
    assert!(too_big.starts_with("a5 BAD [TOOBIG]"), "{too_big}");
    assert!(c.cmd("a6", "NOOP").await.starts_with("a6 OK"));
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
    "INBOX",
    "1:*",
    "*",
    "1",
    "2:4",
    "(FLAGS)",
    "(BODY[1.2.MIME])",
    "BODY.PEEK[]<0.10>",
    "(\\Seen)",
    "+FLAGS",
    "-FLAGS.SILENT",
    "\"\"",
    "{3}",
    "{5+}",
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
];

#[tokio::test]
async fn random_input_never_panics_and_is_answered_in_imap_syntax() {
    let f = fixture(4096).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x1a4);
    for round in 0..60 {
        let mut c = client(&f).await;
        if round % 2 == 1 {
            c.cmd("l", &format!("LOGIN {ADDRESS} \"{PASSWORD}\"")).await;
            c.cmd("s", "SELECT INBOX").await;
            c.cmd("p", "APPEND INBOX {24+}\r\nSubject: x\r\n\r\nhello\r\n\r\n").await;
        }
        let mut input = Vec::new();
        for _ in 0..rng.random_range(1..80) {
            if rng.random_bool(0.15) {
                let n = rng.random_range(1..20);
                input.extend((0..n).map(|_| rng.random::<u8>()));
            } else {
                input.extend_from_slice(WORDS[rng.random_range(0..WORDS.len())].as_bytes());
            }
        }
        input.extend_from_slice(b"\r\nzz LOGOUT\r\n");
        let (mut reader, mut writer) = tokio::io::split(c.io);
        let send = tokio::spawn(async move {
            let _ = writer.write_all(&input).await;
            let _ = writer.shutdown().await;
            input
        });
        let mut out = c.buf;
        let _ = tokio::time::timeout(Duration::from_secs(20), reader.read_to_end(&mut out)).await;
        let input = send.await.expect("writer");
        let text = String::from_utf8_lossy(&out);
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
}

#[tokio::test]
async fn condstore_and_qresync() {
    let f = fixture(4096).await;
    let mut c = client(&f).await;
    c.cmd("a1", &format!("LOGIN {ADDRESS} \"{PASSWORD}\"")).await;
    for _ in 0..3 {
        c.cmd("ap", "APPEND INBOX {16+}\r\nSubject: c\r\n\r\nhi").await;
    }
    let enabled = c.cmd("a2", "ENABLE QRESYNC").await;
    assert!(enabled.contains("* ENABLED QRESYNC"), "{enabled}");
    let select = c.cmd("a3", "SELECT INBOX (CONDSTORE)").await;
    let modseq: u64 = select
        .split("[HIGHESTMODSEQ ")
        .nth(1)
        .and_then(|r| r.split(']').next())
        .and_then(|n| n.parse().ok())
        .expect("HIGHESTMODSEQ");
    let uidvalidity: u32 = select
        .split("[UIDVALIDITY ")
        .nth(1)
        .and_then(|r| r.split(']').next())
        .and_then(|n| n.parse().ok())
        .expect("UIDVALIDITY");
    let stored = c.cmd("a4", &format!("STORE 1 (UNCHANGEDSINCE {modseq}) +FLAGS (\\Seen)")).await;
    assert!(stored.contains("* 1 FETCH (FLAGS (\\Seen) MODSEQ ("), "{stored}");
    let stale = c.cmd("a5", "STORE 1 (UNCHANGEDSINCE 1) +FLAGS (\\Flagged)").await;
    assert!(stale.contains("a5 OK [MODIFIED 1]"), "{stale}");
    let changed = c.cmd("a6", &format!("FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq})")).await;
    assert!(changed.contains("* 1 FETCH (FLAGS (\\Seen) MODSEQ (") && !changed.contains("* 2 FETCH"), "{changed}");
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
}
