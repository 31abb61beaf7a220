//! The POP3 server end to end: real sockets on 127.0.0.1, real TLS, and real clients
//! (Python's poplib, curl, fetchmail, getmail6) downloading and deleting mail, plus every
//! way a login is refused, each checked in the login log.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::clients::{run, run_ok};
use common::{PASSWORD, TestServer};
use postfach_blob::BlobId;
use postfach_store::Scope;
use postfach_store::logins::{LoginFilter, LoginRecord};
use postfach_store::mailboxes::{Mailbox, MailboxSettings};
use postfach_types::{AccessMode, LoginResult};

const ADDRESS: &str = "max@acme.example";

fn pop3_mode() -> MailboxSettings {
    MailboxSettings { access: AccessMode::Pop3, ..Default::default() }
}

fn message(i: usize) -> Vec<u8> {
    format!(
        "From: sender@example.org\r\nTo: {ADDRESS}\r\nSubject: message {i}\r\n\r\nHello number {i}.\r\n.a line starting with a dot\r\n..two dots\r\nbye\r\n"
    )
    .into_bytes()
}

/// Delivers `count` messages to the mailbox's INBOX; returns their bytes.
async fn deliver(t: &TestServer, mailbox: &Mailbox, count: usize) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    for i in 1..=count {
        let bytes = message(i);
        t.put_in_inbox(mailbox, bytes.clone()).await;
        all.push(bytes);
    }
    all
}

async fn inbox_count(t: &TestServer, mailbox: &Mailbox) -> usize {
    let store = t.server.store();
    let inbox = store.folder(mailbox.id, "INBOX").await.expect("folder").expect("inbox");
    store.messages(mailbox.id, inbox.id).await.expect("messages").len()
}

async fn logins(t: &TestServer, mailbox: &Mailbox) -> Vec<LoginRecord> {
    let filter = LoginFilter { mailbox: Some(mailbox.id), ..Default::default() };
    t.server.store().logins(Scope::Platform, filter).await.expect("logins")
}

/// Runs a Python script with PORT (pop3), TLS_PORT (pop3s), CERT, USER and PASS set;
/// returns its stdout, failing the test when it fails.
async fn python(t: &TestServer, script: &str) -> String {
    run_ok(
        Command::new("python3")
            .arg("-c")
            .arg(format!("import os, poplib, ssl, socket, base64\n{script}"))
            .env("PORT", t.port("pop3").to_string())
            .env("TLS_PORT", t.port("pop3s").to_string())
            .env("CERT", t.cert())
            .env("USER", ADDRESS)
            .env("PASS", PASSWORD),
    )
    .await
}

/// A line-by-line plaintext client (blocking, run from a blocking task).
struct Raw {
    stream: std::net::TcpStream,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Self {
        let stream = std::net::TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        Raw { stream }
    }

    fn send(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).expect("send");
    }

    /// Reads until the server closes the connection (a reset counts as closed); fails the
    /// test when it has not closed within 10 s.
    fn read_to_end(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let read = if left.is_zero() {
                Err(std::io::ErrorKind::TimedOut.into())
            } else {
                self.stream.set_read_timeout(Some(left)).expect("timeout");
                self.stream.read(&mut buf)
            };
            match read {
                Ok(0) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    panic!(
                        "the server did not close the connection within 10 s; got: {}",
                        String::from_utf8_lossy(&all)
                    );
                }
                Err(_) => break,
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    }

    /// Reads one line (CRLF included).
    fn line(&mut self) -> String {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            match self.stream.read(&mut byte) {
                Ok(1) => line.push(byte[0]),
                _ => break,
            }
        }
        String::from_utf8_lossy(&line).into_owned()
    }

    /// Reads a multi-line response up to and including ".CRLF".
    fn multi(&mut self) -> String {
        let mut all = String::new();
        loop {
            let line = self.line();
            all.push_str(&line);
            if line == ".\r\n" || line.is_empty() || line.starts_with("-ERR") {
                return all;
            }
        }
    }
}

/// Runs a conversation with a [`Raw`] client on a blocking thread.
async fn raw<T: Send + 'static>(addr: SocketAddr, talk: impl FnOnce(&mut Raw) -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(move || talk(&mut Raw::connect(addr))).await.expect("raw client")
}

async fn blob_exists(t: &TestServer, blob: &BlobId) -> bool {
    t.server.blobs().exists(blob).await.expect("blob store")
}

#[tokio::test]
async fn poplib_downloads_and_deletes_over_pop3s() {
    let t = TestServer::start().await;
    let mailbox = t.mailbox(ADDRESS, pop3_mode()).await;
    let sent = deliver(&t, &mailbox, 3).await;
    let store = t.server.store();
    let inbox = store.folder(mailbox.id, "INBOX").await.expect("folder").expect("inbox");
    let blobs: Vec<BlobId> =
        store.messages(mailbox.id, inbox.id).await.expect("messages").into_iter().map(|m| m.blob).collect();

    let out = python(
        &t,
        r#"
p = poplib.POP3_SSL("localhost", int(os.environ["TLS_PORT"]), context=ssl.create_default_context(cafile=os.environ["CERT"]))
p.user(os.environ["USER"]); p.pass_(os.environ["PASS"])
print("stat", p.stat())
print("uidl", [u.decode() for u in p.uidl()[1]])
for i in (1, 2, 3):
    resp, lines, octets = p.retr(i)
    print("retr", i, base64.b64encode(b"\r\n".join(lines) + b"\r\n").decode())
resp, lines, octets = p.top(2, 1)
print("top", lines[-1].decode(), len(lines))
for i in (1, 2, 3):
    p.dele(i)
print("stat-after-dele", p.stat())
print("quit", p.quit().decode())
"#,
    )
    .await;
    let sizes: usize = sent.iter().map(Vec::len).sum();
    assert!(out.contains(&format!("stat (3, {sizes})")), "{out}");
    let uidvalidity = inbox.uidvalidity;
    assert!(out.contains(&format!("uidl ['1 {uidvalidity}.1', '2 {uidvalidity}.2', '3 {uidvalidity}.3']")), "{out}");
    for (i, bytes) in sent.iter().enumerate() {
        let encoded = base64_encode(bytes);
        assert!(out.contains(&format!("retr {} {encoded}", i + 1)), "message {} arrives intact: {out}", i + 1);
    }
    assert!(out.contains("top Hello number 2. 5"), "TOP sends header, blank line and 1 body line: {out}");
    assert!(out.contains("stat-after-dele (0, 0)"), "{out}");
    assert!(out.contains("quit +OK"), "{out}");
    assert_eq!(inbox_count(&t, &mailbox).await, 0, "QUIT removed the deleted messages");
    // Their files stay for the grace period (an IMAP session may still read them) and are
    // recorded for the sweep, which would remove them once that has passed.
    for b in &blobs {
        assert!(blob_exists(&t, b).await, "files stay readable during the grace period");
    }
    let later = postfach_types::UnixTime(postfach_types::UnixTime::now().0 + 2 * 3600);
    let mut due = t.server.store().due_orphans(later, 100).await.expect("orphans");
    due.sort();
    let mut expected = blobs.clone();
    expected.sort();
    assert_eq!(due, expected, "every file is due for the sweep after the grace period");
    let log = logins(&t, &mailbox).await;
    assert_eq!(log[0].result, LoginResult::Ok);
    assert!(log[0].tls.is_some());
    t.server.shutdown().await;
}

fn base64_encode(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn stls_capabilities_and_auth_plain() {
    let t = TestServer::start().await;
    let mailbox = t.mailbox(ADDRESS, pop3_mode()).await;
    deliver(&t, &mailbox, 2).await;
    let out = python(
        &t,
        r#"
ctx = ssl.create_default_context(cafile=os.environ["CERT"])
p = poplib.POP3("localhost", int(os.environ["PORT"]))
print("before", sorted(p.capa().keys()))
p.stls(context=ctx)
print("after", sorted(p.capa().keys()))
plain = base64.b64encode(b"\0" + os.environ["USER"].encode() + b"\0" + os.environ["PASS"].encode()).decode()
p._putcmd("AUTH PLAIN")
print("challenge", repr(p._getline()[0]))
p._putcmd(plain)
print("continued", p._getresp().decode())
print("stat", p.stat())
p.quit()
p = poplib.POP3_SSL("localhost", int(os.environ["TLS_PORT"]), context=ctx)
print("initial", p._shortcmd("AUTH PLAIN " + plain).decode())
print("stat", p.stat())
p.quit()
"#,
    )
    .await;
    assert!(
        out.contains("before ['AUTH-RESP-CODE', 'IMPLEMENTATION', 'PIPELINING', 'RESP-CODES', 'STLS', 'TOP', 'UIDL']"),
        "no login offered before STLS: {out}"
    );
    assert!(
        out.contains(
            "after ['AUTH-RESP-CODE', 'IMPLEMENTATION', 'PIPELINING', 'RESP-CODES', 'SASL', 'TOP', 'UIDL', 'USER']"
        ),
        "{out}"
    );
    assert!(out.contains("challenge b'+ '"), "{out}");
    assert!(out.contains("continued +OK Logged in, 2 messages"), "{out}");
    assert!(out.contains("initial +OK Logged in, 2 messages"), "{out}");
    let log = logins(&t, &mailbox).await;
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|l| l.result == LoginResult::Ok && l.tls.is_some()));
    assert!(log.iter().all(|l| l.mechanism == postfach_types::Mechanism::Plain));
    t.server.shutdown().await;
}

#[tokio::test]
async fn plaintext_sent_with_stls_is_discarded() {
    let t = TestServer::start().await;
    let out = python(
        &t,
        r#"
s = socket.create_connection(("127.0.0.1", int(os.environ["PORT"])))
f = s.makefile("rb")
f.readline()
# A command smuggled in the same packet as STLS must not be answered inside TLS.
s.sendall(b"STLS\r\nNOOP\r\n")
print("stls", f.readline().decode().strip())
ctx = ssl.create_default_context(cafile=os.environ["CERT"])
t = ctx.wrap_socket(s, server_hostname="localhost")
t.sendall(b"CAPA\r\n")
tf = t.makefile("rb")
print("first", tf.readline().decode().strip())
"#,
    )
    .await;
    assert!(out.contains("stls +OK Begin TLS negotiation"), "{out}");
    assert!(out.contains("first +OK Capability list follows"), "the plaintext NOOP was dropped: {out}");
    t.server.shutdown().await;
}

#[tokio::test]
async fn dropped_connection_and_rset_delete_nothing() {
    let t = TestServer::start().await;
    let mailbox = t.mailbox(ADDRESS, pop3_mode()).await;
    deliver(&t, &mailbox, 2).await;
    python(
        &t,
        r#"
ctx = ssl.create_default_context(cafile=os.environ["CERT"])
p = poplib.POP3_SSL("localhost", int(os.environ["TLS_PORT"]), context=ctx)
p.user(os.environ["USER"]); p.pass_(os.environ["PASS"])
p.dele(1); p.dele(2)
p.sock.close()  # no QUIT
"#,
    )
    .await;
    // The server notices the closed connection; the next login waits for the lock to go.
    let out = python(
        &t,
        r#"
import time
ctx = ssl.create_default_context(cafile=os.environ["CERT"])
for attempt in range(50):
    p = poplib.POP3_SSL("localhost", int(os.environ["TLS_PORT"]), context=ctx)
    p.user(os.environ["USER"])
    try:
        p.pass_(os.environ["PASS"])
        break
    except poplib.error_proto as e:
        assert b"[IN-USE]" in e.args[0], e
        p.sock.close(); time.sleep(0.1)
print("stat", p.stat()[0])
p.dele(1)
p.rset()
print("quit", p.quit().decode())
"#,
    )
    .await;
    assert!(out.contains("stat 2"), "{out}");
    assert!(out.contains("quit +OK Goodbye."), "{out}");
    assert_eq!(inbox_count(&t, &mailbox).await, 2, "nothing was deleted");
    t.server.shutdown().await;
}

#[tokio::test]
async fn a_second_session_gets_in_use_and_new_mail_waits_for_the_next_session() {
    let t = TestServer::start().await;
    let mailbox = t.mailbox(ADDRESS, pop3_mode()).await;
    deliver(&t, &mailbox, 1).await;
    // The first session stays open while the script runs a second one; a message
    // delivered meanwhile (by the script's request) shows up only in a new session.
    let out = python(
        &t,
        r#"
ctx = ssl.create_default_context(cafile=os.environ["CERT"])
first = poplib.POP3_SSL("localhost", int(os.environ["TLS_PORT"]), context=ctx)
first.user(os.environ["USER"]); first.pass_(os.environ["PASS"])
second = poplib.POP3("localhost", int(os.environ["PORT"]))
second.stls(context=ctx)
second.user(os.environ["USER"])
try:
    second.pass_(os.environ["PASS"])
    print("second logged in")
except poplib.error_proto as e:
    print("second", e.args[0].decode())
print("first stat", first.stat()[0])
first.quit()
second.user(os.environ["USER"])
second.pass_(os.environ["PASS"])
print("retry stat", second.stat()[0])
second.quit()
"#,
    )
    .await;
    assert!(out.contains("second -ERR [IN-USE]"), "{out}");
    assert!(out.contains("first stat 1"), "{out}");
    assert!(out.contains("retry stat 1"), "the lock is released at QUIT: {out}");

    // Snapshot at login: mail arriving during a session is not shown in it.
    let addr = t.addr("pop3s");
    let cert = t.cert();
    let script = r#"
import sys
ctx = ssl.create_default_context(cafile=os.environ["CERT"])
p = poplib.POP3_SSL("localhost", int(os.environ["TLS_PORT"]), context=ctx)
p.user(os.environ["USER"]); p.pass_(os.environ["PASS"])
print("stat", p.stat()[0], flush=True)
sys.stdin.readline()
print("stat", p.stat()[0], flush=True)
p.quit()
"#;
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!("import os, poplib, ssl\n{script}"))
        .env("TLS_PORT", addr.port().to_string())
        .env("CERT", &cert)
        .env("USER", ADDRESS)
        .env("PASS", PASSWORD)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let first_line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut line).expect("line");
        (line, stdout)
    })
    .await
    .expect("read");
    assert_eq!(first_line.0.trim(), "stat 1");
    deliver(&t, &mailbox, 1).await;
    let mut stdin = child.stdin.take().expect("stdin");
    let (rest, status) = tokio::task::spawn_blocking(move || {
        stdin.write_all(b"go\n").expect("write");
        let mut stdout = first_line.1;
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).expect("rest");
        (rest, child.wait().expect("wait"))
    })
    .await
    .expect("finish");
    assert!(status.success());
    assert_eq!(rest.trim(), "stat 1", "the new message waits for the next session");
    let out = python(
        &t,
        r#"
p = poplib.POP3_SSL("localhost", int(os.environ["TLS_PORT"]), context=ssl.create_default_context(cafile=os.environ["CERT"]))
p.user(os.environ["USER"]); p.pass_(os.environ["PASS"])
print("stat", p.stat()[0]); p.quit()
"#,
    )
    .await;
    assert!(out.contains("stat 2"), "{out}");
    t.server.shutdown().await;
}

#[tokio::test]
async fn imap_mode_mailbox_is_refused_untouched_and_logged() {
    let t = TestServer::start().await;
    let mailbox = t.mailbox(ADDRESS, MailboxSettings { access: AccessMode::Imap, ..Default::default() }).await;
    deliver(&t, &mailbox, 2).await;
    let out = python(
        &t,
        r#"
p = poplib.POP3_SSL("localhost", int(os.environ["TLS_PORT"]), context=ssl.create_default_context(cafile=os.environ["CERT"]))
p.user(os.environ["USER"])
try:
    p.pass_(os.environ["PASS"])
    print("logged in")
except poplib.error_proto as e:
    print("refused", e.args[0].decode())
for cmd in ("STAT", "DELE 1", "QUIT"):
    try:
        print(cmd, p._shortcmd(cmd).decode())
    except poplib.error_proto as e:
        print(cmd, e.args[0].decode())
"#,
    )
    .await;
    assert!(
        out.contains(
            "refused -ERR [AUTH] POP3 is switched off for this mailbox, to protect the mail kept on the server. \
             Change the mailbox's access mode in the customer panel (or ask your provider)."
        ),
        "{out}"
    );
    assert!(out.contains("STAT -ERR Log in first"), "{out}");
    assert!(out.contains("DELE 1 -ERR Log in first"), "{out}");
    assert_eq!(inbox_count(&t, &mailbox).await, 2, "the IMAP mailbox is untouched");
    let log = logins(&t, &mailbox).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].result, LoginResult::ServiceDisabled);
    assert_eq!(log[0].service, postfach_types::Service::Pop3);
    assert_eq!(log[0].login, ADDRESS);
    t.server.shutdown().await;
}

#[tokio::test]
async fn plaintext_login_is_refused_when_plaintext_auth_is_off() {
    let t = TestServer::start().await;
    let mailbox = t.mailbox(ADDRESS, pop3_mode()).await;
    deliver(&t, &mailbox, 1).await;
    let (capa, user, pass) = raw(t.addr("pop3"), |c| {
        c.line();
        c.send("CAPA\r\n");
        let capa = c.multi();
        c.send(&format!("USER {ADDRESS}\r\n"));
        let user = c.line();
        c.send(&format!("PASS {PASSWORD}\r\n"));
        (capa, user, c.line())
    })
    .await;
    assert!(capa.contains("STLS\r\n") && !capa.contains("USER\r\n") && !capa.contains("SASL"), "{capa}");
    // USER is refused before any password is asked for; a PASS sent anyway has no USER.
    assert!(user.starts_with("-ERR [AUTH] ") && user.contains("STLS"), "{user}");
    assert!(pass.starts_with("-ERR Send USER"), "{pass}");
    let log = logins(&t, &mailbox).await;
    assert_eq!(log[0].result, LoginResult::TlsRequired);
    assert_eq!(log[0].tls, None);
    let stored = t.server.store().mailbox(Scope::Platform, &mailbox.address).await.expect("mailbox");
    assert!(!stored.password_exposed, "the password was never asked for");
    // AUTH PLAIN before STLS too.
    let auth = raw(t.addr("pop3"), |c| {
        c.line();
        c.send("AUTH PLAIN AG1heEBhY21lLmV4YW1wbGUAd3Jvbmc=\r\n");
        c.line()
    })
    .await;
    assert!(auth.starts_with("-ERR [AUTH] ") && auth.contains("STLS"), "{auth}");
    assert_eq!(logins(&t, &mailbox).await.len(), 2);
    // A client that sends the right password in its initial response anyway: refused,
    // and the password is now known to be exposed.
    let right = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("\0{ADDRESS}\0{PASSWORD}"))
    };
    let auth = raw(t.addr("pop3"), move |c| {
        c.line();
        c.send(&format!("AUTH PLAIN {right}\r\n"));
        c.line()
    })
    .await;
    assert!(auth.starts_with("-ERR [AUTH] "), "{auth}");
    let stored = t.server.store().mailbox(Scope::Platform, &mailbox.address).await.expect("mailbox");
    assert!(stored.password_exposed, "a correct password sent in the clear is marked exposed");
    assert_eq!(inbox_count(&t, &mailbox).await, 1);
    t.server.shutdown().await;
}

#[tokio::test]
async fn tls_only_mailbox_is_refused_over_plaintext_even_when_the_operator_allows_it() {
    let t = TestServer::start_with(|c| c.security.allow_plaintext_auth = true).await;
    let strict = t.mailbox(ADDRESS, pop3_mode()).await;
    let legacy = t.mailbox("old@acme.example", MailboxSettings { tls_required: false, ..pop3_mode() }).await;
    deliver(&t, &legacy, 2).await;
    let (capa, refused) = raw(t.addr("pop3"), |c| {
        c.line();
        c.send("CAPA\r\n");
        let capa = c.multi();
        c.send(&format!("USER {ADDRESS}\r\nPASS {PASSWORD}\r\n"));
        c.line();
        (capa, c.line())
    })
    .await;
    assert!(capa.contains("USER\r\n") && capa.contains("SASL PLAIN\r\n"), "{capa}");
    // Refused like a wrong password would be (which mailboxes accept plaintext is not told).
    assert!(refused.starts_with("-ERR [AUTH] Login failed.") && refused.contains("STLS"), "{refused}");
    assert_eq!(logins(&t, &strict).await[0].result, LoginResult::TlsRequired);

    // The legacy mailbox works over plaintext; the whole session is pipelined in one write.
    let all = raw(t.addr("pop3"), |c| {
        c.send(&format!("USER old@acme.example\r\nPASS {PASSWORD}\r\nSTAT\r\nLIST\r\nRETR 1\r\nQUIT\r\n"));
        c.read_to_end()
    })
    .await;
    let lines: Vec<&str> = all.split("\r\n").collect();
    assert!(
        lines[0].starts_with("+OK") && lines[1].starts_with("+OK") && lines[2].starts_with("+OK Logged in"),
        "{all}"
    );
    assert!(lines[3].starts_with("+OK 2 "), "{all}");
    assert!(all.contains("\r\n..a line starting with a dot\r\n...two dots\r\n"), "RETR is dot-stuffed: {all}");
    assert!(all.ends_with("+OK Goodbye.\r\n"), "{all}");
    let log = logins(&t, &legacy).await;
    assert_eq!((log[0].result, log[0].tls.clone()), (LoginResult::Ok, None));
    t.server.shutdown().await;
}

#[tokio::test]
async fn throttled_logins_get_sys_temp_and_bad_sessions_are_closed() {
    let t = TestServer::start_with(|c| c.security.max_failures_per_login = 2).await;
    let mailbox = t.mailbox(ADDRESS, pop3_mode()).await;
    let out = python(
        &t,
        r#"
ctx = ssl.create_default_context(cafile=os.environ["CERT"])
p = poplib.POP3_SSL("localhost", int(os.environ["TLS_PORT"]), context=ctx)
for password in ("wrong one", "wrong two", os.environ["PASS"]):
    p.user(os.environ["USER"])
    try:
        p.pass_(password)
        print("in")
    except poplib.error_proto as e:
        print("refused", e.args[0].decode())
try:
    p.noop()
    print("still open")
except Exception as e:
    print("closed")
"#,
    )
    .await;
    let refusals: Vec<&str> = out.lines().filter(|l| l.starts_with("refused")).collect();
    assert_eq!(refusals.len(), 3, "{out}");
    assert!(refusals[0].starts_with("refused -ERR [AUTH] Wrong address or password."), "{out}");
    assert!(refusals[2].starts_with("refused -ERR [SYS/TEMP] Too many failed logins"), "{out}");
    assert!(out.contains("closed"), "three failures end the session: {out}");
    let log = logins(&t, &mailbox).await;
    let results: Vec<LoginResult> = log.iter().rev().map(|l| l.result).collect();
    assert_eq!(results, [LoginResult::BadCredentials, LoginResult::BadCredentials, LoginResult::Throttled]);
    t.server.shutdown().await;
}

#[tokio::test]
async fn connections_over_the_per_address_limit_are_told_so() {
    let t = TestServer::start_with(|c| c.limits.max_connections_per_ip = 1).await;
    let addr = t.addr("pop3");
    let (greeting, over) = tokio::task::spawn_blocking(move || {
        let mut first = Raw::connect(addr);
        let greeting = first.line();
        let over = Raw::connect(addr).read_to_end();
        (greeting, over)
    })
    .await
    .expect("clients");
    assert!(greeting.starts_with("+OK"), "{greeting}");
    assert!(over.starts_with("-ERR [SYS/TEMP] Too many connections from your address"), "{over}");
    t.server.shutdown().await;
}

fn curl(t: &TestServer, args: &[&str]) -> Command {
    let mut c = Command::new("curl");
    c.arg("-s").arg("-S").arg("--cacert").arg(t.cert()).arg("-u").arg(format!("{ADDRESS}:{PASSWORD}")).args(args);
    c
}

#[tokio::test]
async fn curl_lists_retrieves_and_deletes() {
    let t = TestServer::start().await;
    let mailbox = t.mailbox(ADDRESS, pop3_mode()).await;
    let sent = deliver(&t, &mailbox, 2).await;
    let pop3s = format!("pop3s://localhost:{}/", t.port("pop3s"));
    let pop3 = format!("pop3://localhost:{}/", t.port("pop3"));

    let list = run(&mut curl(&t, &[&pop3s])).await;
    assert!(list.status.success(), "{}", String::from_utf8_lossy(&list.stderr));
    assert_eq!(String::from_utf8_lossy(&list.stdout), format!("1 {}\r\n2 {}\r\n", sent[0].len(), sent[1].len()));
    let retr = run(&mut curl(&t, &["--ssl-reqd", &format!("{pop3}2")])).await;
    assert!(retr.status.success(), "{}", String::from_utf8_lossy(&retr.stderr));
    assert_eq!(retr.stdout, sent[1], "curl over STLS gets the message as sent");

    let dele = run(&mut curl(&t, &["-X", "DELE", "-I", &format!("{pop3s}1")])).await;
    assert!(dele.status.success(), "{}", String::from_utf8_lossy(&dele.stderr));
    assert_eq!(inbox_count(&t, &mailbox).await, 1, "curl's DELE is applied at its QUIT");
    // Plaintext is refused outright when the client does not ask for STLS.
    let plain = run(&mut curl(&t, &[&pop3])).await;
    assert!(!plain.status.success());
    assert_eq!(inbox_count(&t, &mailbox).await, 1);
    t.server.shutdown().await;
}

/// Changes the owner of a folder to `nobody` when running as root (getmail refuses to
/// deliver as root).
fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

#[tokio::test]
async fn fetchmail_downloads_and_deletes() {
    let t = TestServer::start().await;
    let mailbox = t.mailbox(ADDRESS, pop3_mode()).await;
    deliver(&t, &mailbox, 3).await;
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("out.mbox");
    let rc = dir.path().join("fetchmailrc");
    std::fs::write(
        &rc,
        format!(
            "poll localhost port {} proto pop3 user \"{ADDRESS}\" password \"{PASSWORD}\" ssl sslcertck sslcertfile \"{}\" fetchall mda \"cat >> {}\"\n",
            t.port("pop3s"),
            t.cert().display(),
            out.display()
        ),
    )
    .expect("rc");
    std::fs::set_permissions(&rc, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    let result = run(Command::new("fetchmail")
        .arg("-f")
        .arg(&rc)
        .arg("-s")
        .arg("--nodetach")
        .arg("--idfile")
        .arg(dir.path().join("ids"))
        .env("HOME", dir.path()))
    .await;
    assert!(result.status.success(), "fetchmail: {}", String::from_utf8_lossy(&result.stderr));
    let mbox = std::fs::read_to_string(&out).expect("fetchmail delivered");
    for i in 1..=3 {
        assert!(mbox.contains(&format!("Subject: message {i}")), "{mbox}");
    }
    assert!(mbox.contains("\n.a line starting with a dot"), "un-stuffed by the client: {mbox}");
    assert_eq!(inbox_count(&t, &mailbox).await, 0, "fetchmail deletes what it fetched");
    t.server.shutdown().await;
}

#[tokio::test]
async fn getmail_downloads_and_deletes() {
    let t = TestServer::start().await;
    let mailbox = t.mailbox(ADDRESS, pop3_mode()).await;
    deliver(&t, &mailbox, 2).await;
    let dir = tempfile::tempdir().expect("dir");
    let maildir = dir.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).expect("maildir");
    }
    let user = if running_as_root() {
        chmod_all(dir.path());
        "user = nobody\n"
    } else {
        ""
    };
    std::fs::write(
        dir.path().join("getmailrc"),
        format!(
            "[retriever]\ntype = SimplePOP3SSLRetriever\nserver = localhost\nport = {}\nusername = {ADDRESS}\npassword = {PASSWORD}\nca_certs = {}\n\n\
             [destination]\ntype = Maildir\npath = {}/\n{user}\n[options]\nread_all = true\ndelete = true\n",
            t.port("pop3s"),
            t.cert().display(),
            maildir.display()
        ),
    )
    .expect("rc");
    let result = run(Command::new("getmail")
        .arg(format!("--getmaildir={}", dir.path().display()))
        .arg("--rcfile=getmailrc")
        .arg("-q"))
    .await;
    assert!(
        result.status.success(),
        "getmail: {}{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    let delivered: Vec<String> = std::fs::read_dir(maildir.join("new"))
        .expect("new")
        .map(|e| std::fs::read_to_string(e.expect("entry").path()).expect("read"))
        .collect();
    assert_eq!(delivered.len(), 2);
    assert!(delivered.iter().any(|m| m.contains("Subject: message 2")));
    assert_eq!(inbox_count(&t, &mailbox).await, 0, "getmail deleted what it fetched");
    t.server.shutdown().await;
}

fn chmod_all(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        if entry.path().is_dir() {
            chmod_all(&entry.path());
        }
    }
}

#[tokio::test]
async fn large_messages_are_streamed_intact() {
    let t = TestServer::start().await;
    let mailbox = t.mailbox(ADDRESS, pop3_mode()).await;
    // 3 MiB with dot lines everywhere, a bare LF and no final line end.
    let mut bytes = b"Subject: big\r\n\r\n".to_vec();
    let mut i = 0u64;
    while bytes.len() < 3 * 1024 * 1024 {
        bytes.extend_from_slice(format!(".line {i} {}\r\n", "x".repeat((i % 97) as usize)).as_bytes());
        i += 1;
    }
    bytes.extend_from_slice(b"bare\nlast");
    t.put_in_inbox(&mailbox, bytes.clone()).await;
    let out = python(
        &t,
        r#"
import hashlib
p = poplib.POP3_SSL("localhost", int(os.environ["TLS_PORT"]), context=ssl.create_default_context(cafile=os.environ["CERT"]))
p.user(os.environ["USER"]); p.pass_(os.environ["PASS"])
resp, lines, octets = p.retr(1)
print("lines", len(lines), "first", lines[2].decode(), "last", lines[-1].decode())
print("sha", hashlib.sha256(b"\r\n".join(lines)).hexdigest())
resp, lines, octets = p.top(1, 2)
print("top", [l.decode() for l in lines])
p.quit()
"#,
    )
    .await;
    // The client sees the original lines (bare LF sent as CRLF, last line completed).
    let text = String::from_utf8(bytes).expect("ascii").replace("bare\n", "bare\r\n");
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert!(out.contains(&format!("lines {} first .line 0  last last", lines.len())), "{out}");
    let sha = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().expect("stdin").write_all(text.as_bytes())?;
            c.wait_with_output()
        })
        .expect("sha256sum");
    let sha = String::from_utf8_lossy(&sha.stdout).split(' ').next().unwrap_or_default().to_string();
    assert!(out.contains(&format!("sha {sha}")), "{out}");
    assert!(out.contains("top ['Subject: big', '', '.line 0 ', '.line 1 x']"), "{out}");
    t.server.shutdown().await;
}

#[tokio::test]
async fn overlong_lines_and_unknown_commands_are_answered() {
    let t = TestServer::start().await;
    let all = raw(t.addr("pop3"), |c| {
        c.send("APOP max@acme.example 0123456789abcdef\r\nXYZZY\r\nRETR 1\r\nNOOP\r\n");
        c.send(&"A".repeat(10_000));
        c.send("\r\n");
        c.read_to_end()
    })
    .await;
    let lines: Vec<&str> = all.lines().collect();
    assert!(lines[0].starts_with("+OK mail.postfach.test POP3 server ready"), "{all}");
    assert_eq!(lines[1], "-ERR Unknown command.", "APOP is not offered");
    assert_eq!(lines[2], "-ERR Unknown command.");
    assert!(lines[3].starts_with("-ERR Log in first"), "{all}");
    assert!(lines[4].starts_with("-ERR Log in first"), "{all}");
    assert_eq!(lines[5], "-ERR That command line is too long. Closing the connection.");
    assert_eq!(lines.len(), 6, "{all}");
    t.server.shutdown().await;
}
