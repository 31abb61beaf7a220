//! The IMAP server end to end: real sockets on 127.0.0.1, real TLS, and real clients
//! (Python's imaplib, curl, mbsync, fetchmail) reading, flagging, moving, expunging and
//! appending mail; IDLE waking up on delivery; several sessions staying consistent; and
//! every way a login is refused, each checked in the login log.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::clients::{ImapClient as Raw, run, run_ok};
use common::{PASSWORD, TestServer};
use postfach_store::Scope;
use postfach_store::logins::{LoginFilter, LoginRecord};
use postfach_store::mailboxes::{Mailbox, MailboxSettings};
use postfach_store::messages::{Delivery, DeliveryFolder, FlagChange, Flags, NewMessage};
use postfach_types::{AccessMode, LoginResult, UnixTime};

const ADDRESS: &str = "max@acme.example";

fn message(i: usize) -> Vec<u8> {
    format!(
        "From: Sender <sender@example.org>\r\nTo: {ADDRESS}\r\nSubject: message {i}\r\nMessage-ID: <m{i}@example.org>\r\n\r\nHello number {i}.\r\n"
    )
    .into_bytes()
}

async fn deliver(t: &TestServer, mailbox: &Mailbox, from: usize, count: usize) {
    for i in from..from + count {
        t.put_in_inbox(mailbox, message(i)).await;
    }
}

async fn folder_flags(t: &TestServer, mailbox: &Mailbox, folder: &str) -> Vec<Flags> {
    let store = t.server.store();
    let f = store.folder(mailbox.id, folder).await.expect("folder").expect("exists");
    store.messages(mailbox.id, f.id).await.expect("messages").into_iter().map(|m| m.flags).collect()
}

async fn last_login(t: &TestServer) -> LoginRecord {
    let logins = t.server.store().logins(Scope::Platform, LoginFilter::default()).await.expect("logins");
    logins.into_iter().next().expect("a login log entry")
}

/// Runs a Python script with PORT (imap), TLS_PORT (imaps), CERT, USER and PASS set.
async fn python(t: &TestServer, script: &str) -> String {
    run_ok(
        Command::new("python3")
            .arg("-c")
            .arg(format!("import os, imaplib, ssl, socket, base64, re\n{script}"))
            .env("PORT", t.port("imap").to_string())
            .env("TLS_PORT", t.port("imaps").to_string())
            .env("CERT", t.cert())
            .env("USER", ADDRESS)
            .env("PASS", PASSWORD),
    )
    .await
}

fn plaintext_allowed(config: &mut postfach_server::config::Config) {
    config.security.allow_plaintext_auth = true;
}

fn no_tls_required() -> MailboxSettings {
    MailboxSettings { tls_required: false, ..Default::default() }
}

#[tokio::test]
async fn imaplib_reads_flags_copies_moves_expunges_and_appends() {
    let t = TestServer::start().await;
    let mailbox = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    deliver(&t, &mailbox, 1, 3).await;
    python(
        &t,
        r#"
ctx = ssl.create_default_context(cafile=os.environ["CERT"])
m = imaplib.IMAP4_SSL("localhost", int(os.environ["TLS_PORT"]), ssl_context=ctx)
assert "AUTH=PLAIN" in m.capabilities, m.capabilities
typ, data = m.login(os.environ["USER"], os.environ["PASS"])
assert typ == "OK", data
for cap in ["IDLE", "UIDPLUS", "MOVE", "NAMESPACE", "SPECIAL-USE", "CONDSTORE", "UNSELECT", "ENABLE", "ID", "CHILDREN", "LITERAL+"]:
    assert cap in m.capabilities or cap in str(m.capability()[1]), cap
typ, data = m.list()
names = b"\n".join(data)
assert b'(\\HasNoChildren \\Sent \\Subscribed) "/" Sent' in names, names
assert b'"/" INBOX' in names, names
typ, data = m.select("INBOX")
assert typ == "OK" and data == [b"3"], data
typ, data = m.uid("SEARCH", None, "ALL")
assert data == [b"1 2 3"], data
typ, data = m.search(None, "SUBJECT", '"message 2"')
assert data == [b"2"], data
typ, data = m.fetch("1", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)] ENVELOPE RFC822.SIZE)")
assert typ == "OK", data
rest = data[1]
assert b"ENVELOPE (NIL \"message 1\" ((\"Sender\" NIL \"sender\" \"example.org\"))" in rest and b"RFC822.SIZE" in rest, data
assert data[0][1] == b"Subject: message 1\r\n\r\n", data
typ, data = m.fetch("1", "(FLAGS)")
assert b"\\Seen" not in data[0], data
typ, data = m.fetch("2", "(BODY[TEXT])")
assert data[0][1] == b"Hello number 2.\r\n", data
typ, data = m.fetch("2", "(FLAGS)")
assert b"\\Seen" in data[0], data
typ, data = m.fetch("1", "(BODY.PEEK[]<0.4>)")
assert data[0][1] == b"From", data
typ, data = m.fetch("1:3", "(BODYSTRUCTURE)")
assert b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit"' in data[0], data
typ, data = m.store("1", "+FLAGS", "(\\Flagged $Important)")
assert typ == "OK" and b"\\Flagged" in data[0] and b"$Important" in data[0], data
typ, data = m.uid("COPY", "1", "Archive")
code = m.untagged_responses.pop("COPYUID")
assert typ == "OK" and code[0].split()[1:] == [b"1", b"1"], (data, code)
typ, data = m._simple_command("UID", "MOVE", "3", "Trash")
assert typ == "OK", data
assert m.untagged_responses.pop("EXPUNGE") == [b"3"]
typ, data = m.store("2", "+FLAGS", "(\\Deleted)")
typ, data = m.expunge()
assert typ == "OK" and data == [b"2"], data
typ, data = m.search(None, "ALL")
assert data == [b"1"], data
msg = b"From: max@acme.example\r\nSubject: draft\r\n\r\nnot yet\r\n"
typ, data = m.append("Drafts", "(\\Draft)", None, msg)
assert typ == "OK" and b"APPENDUID" in data[0], data
typ, data = m.status("Drafts", "(MESSAGES UIDNEXT UNSEEN)")
assert b"MESSAGES 1" in data[0] and b"UIDNEXT 2" in data[0], data
typ, data = m.create("Projects/2024")
assert typ == "OK", data
typ, data = m.list('""', "Projects*")
assert b'(\\HasChildren \\Subscribed) "/" Projects' in b"\n".join(data), data
typ, data = m.rename("Projects/2024", "Projects/2025")
assert typ == "OK", data
typ, data = m.delete("Projects/2025")
assert typ == "OK", data
typ, data = m.select("Nope")
assert typ == "NO", data
m.logout()
print("done")
"#,
    )
    .await;
    assert_eq!(folder_flags(&t, &mailbox, "INBOX").await, vec![Flags::FLAGGED]);
    assert_eq!(folder_flags(&t, &mailbox, "Archive").await, vec![Flags::FLAGGED]);
    assert_eq!(folder_flags(&t, &mailbox, "Trash").await.len(), 1);
    assert_eq!(folder_flags(&t, &mailbox, "Drafts").await, vec![Flags::DRAFT]);
    let login = last_login(&t).await;
    assert_eq!(login.result, LoginResult::Ok);
    assert!(login.tls.is_some());
}

#[tokio::test]
async fn curl_over_starttls_and_imaps() {
    let t = TestServer::start().await;
    let mailbox = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    deliver(&t, &mailbox, 1, 2).await;
    let user = format!("{ADDRESS}:{PASSWORD}");
    let out = run(Command::new("curl").args(["-sS", "--ssl-reqd", "--cacert"]).arg(t.cert()).args([
        "-u",
        &user,
        &format!("imap://localhost:{}/INBOX", t.port("imap")),
        "-X",
        "STATUS INBOX (MESSAGES)",
    ]))
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("STATUS INBOX (MESSAGES 2)"), "{text}");
    let out = run(Command::new("curl").args(["-sS", "--cacert"]).arg(t.cert()).args([
        "-u",
        &user,
        &format!("imaps://localhost:{}/INBOX;UID=2", t.port("imaps")),
    ]))
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, message(2));
    assert_eq!(last_login(&t).await.result, LoginResult::Ok);
}

#[tokio::test]
async fn mbsync_pulls_the_mailbox_and_pushes_flags() {
    let t = TestServer::start().await;
    let mailbox = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    deliver(&t, &mailbox, 1, 5).await;
    let dir = tempfile::tempdir().expect("tmp");
    let maildir = dir.path().join("mail");
    std::fs::create_dir_all(&maildir).expect("maildir");
    let rc = dir.path().join("mbsyncrc");
    let write_rc = |sync: &str| {
        std::fs::write(
            &rc,
            format!(
                "IMAPAccount acct\nHost localhost\nPort {}\nUser {ADDRESS}\nPass \"{PASSWORD}\"\nSSLType IMAPS\nCertificateFile {}\n\n\
                 IMAPStore remote\nAccount acct\n\n\
                 MaildirStore local\nPath {}/\nInbox {}/INBOX\n\n\
                 Channel ch\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Near\nSync {sync}\nSyncState *\n",
                t.port("imaps"),
                t.cert().display(),
                maildir.display(),
                maildir.display()
            ),
        )
        .expect("rc");
    };
    write_rc("Pull");
    let out = run(Command::new("mbsync").arg("-c").arg(&rc).arg("-a")).await;
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let files = |sub: &str| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(maildir.join("INBOX").join(sub))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    let mut all = files("new");
    all.extend(files("cur"));
    assert_eq!(all.len(), 5, "{all:?}");
    // Mark one read and flagged locally, then push.
    let first = all
        .iter()
        .find(|p| {
            std::fs::read_to_string(p)
                .is_ok_and(|b| b.contains("Subject: message 1\n") || b.contains("Subject: message 1\r\n"))
        })
        .expect("message 1")
        .clone();
    let name = first.file_name().and_then(|n| n.to_str()).expect("name").split(":2,").next().expect("base").to_string();
    std::fs::rename(&first, maildir.join("INBOX/cur").join(format!("{name}:2,FS"))).expect("rename");
    write_rc("All");
    let out = run(Command::new("mbsync").arg("-c").arg(&rc).arg("-a")).await;
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let flags = folder_flags(&t, &mailbox, "INBOX").await;
    assert_eq!(flags[0], Flags::SEEN.union(Flags::FLAGGED), "{flags:?}");
    assert!(flags[1..].iter().all(|f| !f.contains(Flags::SEEN)), "{flags:?}");
}

/// offlineimap3: a full two-way sync, flags both ways, a message added locally, and a
/// folder renamed on the server.
#[tokio::test]
async fn offlineimap_syncs_both_ways_with_flags_and_a_renamed_folder() {
    let t = TestServer::start().await;
    let mailbox = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    deliver(&t, &mailbox, 1, 5).await;
    let store = t.server.store();
    let projects = store.create_folder(mailbox.id, "Projects", None).await.expect("folder");
    for i in 0..2 {
        let blob = t.server.blobs().put(message(10 + i)).await.expect("blob");
        let new = NewMessage {
            blob,
            size: message(10 + i).len() as u64,
            internal_date: UnixTime::now(),
            flags: Flags::default(),
            keywords: Vec::new(),
        };
        store.append(mailbox.id, projects.id, &new).await.expect("append");
    }
    let dir = tempfile::tempdir().expect("tmp");
    let maildir = dir.path().join("mail");
    std::fs::create_dir_all(&maildir).expect("maildir");
    let rc = dir.path().join("offlineimaprc");
    std::fs::write(
        &rc,
        format!(
            "[general]\naccounts = A\nmetadata = {meta}\n\n[Account A]\nlocalrepository = L\nremoterepository = R\n\n\
             [Repository L]\ntype = Maildir\nlocalfolders = {mail}\n\n\
             [Repository R]\ntype = IMAP\nremotehost = localhost\nremoteport = {port}\nremoteuser = {ADDRESS}\n\
             remotepass = {PASSWORD}\nssl = yes\nsslcacertfile = {cert}\ncreatefolders = False\n\
             folderfilter = lambda f: f in ['INBOX', 'Projects', 'Archive2026']\n",
            meta = dir.path().join("meta").display(),
            mail = maildir.display(),
            port = t.port("imaps"),
            cert = t.cert().display(),
        ),
    )
    .expect("rc");
    let sync = || async {
        let out =
            run(Command::new("offlineimap").arg("-c").arg(&rc).args(["-o", "-u", "basic"]).env("HOME", dir.path()))
                .await;
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let files = |folder: &str| -> Vec<std::path::PathBuf> {
        ["new", "cur"]
            .iter()
            .flat_map(|sub| std::fs::read_dir(maildir.join(folder).join(sub)).into_iter().flatten().flatten())
            .map(|e| e.path())
            .collect()
    };
    sync().await;
    assert_eq!((files("INBOX").len(), files("Projects").len()), (5, 2));
    // Locally: message 1 read and flagged, and a new message in Projects.
    let first = files("INBOX")
        .into_iter()
        .find(|p| {
            std::fs::read_to_string(p)
                .is_ok_and(|b| b.contains("Subject: message 1\r\n") || b.contains("Subject: message 1\n"))
        })
        .expect("message 1");
    let name = first.file_name().and_then(|n| n.to_str()).expect("name").split(":2,").next().expect("base").to_string();
    std::fs::rename(&first, maildir.join("INBOX/cur").join(format!("{name}:2,FS"))).expect("flag locally");
    std::fs::write(
        maildir.join("Projects/new/1700000000.local.host"),
        "From: max@acme.example\r\nSubject: local\r\n\r\nwritten offline\r\n",
    )
    .expect("local message");
    sync().await;
    let flags = folder_flags(&t, &mailbox, "INBOX").await;
    assert_eq!(flags[0], Flags::SEEN.union(Flags::FLAGGED), "{flags:?}");
    assert_eq!(folder_flags(&t, &mailbox, "Projects").await.len(), 3, "the local message was uploaded");
    // On the server: message 2 flagged, and Projects renamed.
    let inbox = store.folder(mailbox.id, "INBOX").await.expect("f").expect("inbox");
    store.store_flags(mailbox.id, inbox.id, &[2], FlagChange::Add, Flags::FLAGGED, &[], None).await.expect("flag");
    store.rename_folder(mailbox.id, "Projects", "Archive2026").await.expect("rename");
    sync().await;
    assert_eq!(files("Archive2026").len(), 3, "the renamed folder arrived with its messages");
    let flagged: Vec<_> = files("INBOX").into_iter().filter(|p| p.to_string_lossy().contains(":2,F")).collect();
    assert_eq!(flagged.len(), 2, "message 1 and message 2 are flagged locally: {flagged:?}");
}

#[tokio::test]
async fn fetchmail_downloads_over_imaps() {
    let t = TestServer::start().await;
    let mailbox = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    deliver(&t, &mailbox, 1, 3).await;
    let dir = tempfile::tempdir().expect("tmp");
    let out_file = dir.path().join("out.mbox");
    let rc = dir.path().join("fetchmailrc");
    std::fs::write(
        &rc,
        format!(
            "poll localhost port {} proto imap user \"{ADDRESS}\" password \"{PASSWORD}\" ssl sslcertck sslcertfile \"{}\" keep fetchall mda \"cat >> {}\"\n",
            t.port("imaps"),
            t.cert().display(),
            out_file.display()
        ),
    )
    .expect("rc");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = run(Command::new("fetchmail")
        .arg("-f")
        .arg(&rc)
        .args(["-s", "--nodetach", "--idfile"])
        .arg(dir.path().join("ids"))
        .env("HOME", dir.path()))
    .await;
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let mbox = std::fs::read_to_string(&out_file).expect("delivered");
    for i in 1..=3 {
        assert!(mbox.contains(&format!("Subject: message {i}")), "{mbox}");
    }
    assert_eq!(folder_flags(&t, &mailbox, "INBOX").await.len(), 3, "keep leaves the mail on the server");
}

#[tokio::test]
async fn idle_wakes_up_on_delivery_over_tls() {
    let t = TestServer::start().await;
    let mailbox = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    deliver(&t, &mailbox, 1, 1).await;
    let script = r#"
import sys
ctx = ssl.create_default_context(cafile=os.environ["CERT"])
m = imaplib.IMAP4_SSL("localhost", int(os.environ["TLS_PORT"]), ssl_context=ctx)
m.login(os.environ["USER"], os.environ["PASS"])
m.select("INBOX")
m.send(b"i1 IDLE\r\n")
line = m.readline()
assert line.startswith(b"+"), line
print("IDLING", flush=True)
line = m.readline()
assert line == b"* 2 EXISTS\r\n", line
m.send(b"DONE\r\n")
line = m.readline()
# RFC 3501 §7.3.2: this session sees the new message as \Recent and is told so.
assert line == b"* 2 RECENT\r\n", line
line = m.readline()
assert line.startswith(b"i1 OK"), line
print("WOKE", flush=True)
m.logout()
"#;
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(format!("import os, imaplib, ssl\n{script}"))
        .env("TLS_PORT", t.port("imaps").to_string())
        .env("CERT", t.cert())
        .env("USER", ADDRESS)
        .env("PASS", PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    let stdout = child.stdout.take().expect("stdout");
    // The client's lines, read on a blocking thread.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next = async |rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>| {
        tokio::time::timeout(Duration::from_secs(30), rx.recv()).await.expect("in time")
    };
    assert_eq!(next(&mut rx).await.as_deref(), Some("IDLING"));
    deliver(&t, &mailbox, 2, 1).await;
    let woke = next(&mut rx).await;
    let status =
        tokio::task::spawn_blocking(move || child.wait_with_output()).await.expect("join").expect("python ends");
    assert_eq!(woke.as_deref(), Some("WOKE"), "{}", String::from_utf8_lossy(&status.stderr));
    assert!(status.status.success());
}

#[tokio::test]
async fn sessions_see_each_others_flags_expunges_and_appends() {
    let t = TestServer::start_with(plaintext_allowed).await;
    let mailbox = t.mailbox(ADDRESS, no_tls_required()).await;
    deliver(&t, &mailbox, 1, 3).await;
    let login = format!("LOGIN {ADDRESS} \"{PASSWORD}\"");
    let mut a = Raw::connect(t.addr("imap")).await;
    let mut b = Raw::connect(t.addr("imap")).await;
    a.line().await;
    b.line().await;
    assert!(a.cmd("a1", &login).await.contains("a1 OK"));
    assert!(b.cmd("b1", &login).await.contains("b1 OK"));
    assert!(a.cmd("a2", "SELECT INBOX").await.contains("* 3 EXISTS"));
    assert!(b.cmd("b2", "SELECT INBOX").await.contains("* 3 EXISTS"));
    // A flags, B sees it at NOOP.
    a.cmd("a3", "STORE 2 +FLAGS.SILENT (\\Seen)").await;
    let seen = b.cmd("b3", "NOOP").await;
    assert!(seen.contains("* 2 FETCH (UID 2 FLAGS (\\Seen))"), "{seen}");
    // A flags message 1 deleted and expunges it; B, idling, hears of both, in that order.
    b.send("b4 IDLE\r\n").await;
    assert!(b.line().await.starts_with('+'));
    a.cmd("a4", "STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    let flagged = b.until("* 1 FETCH").await;
    assert_eq!(flagged, "* 1 FETCH (UID 1 FLAGS (\\Deleted))\r\n");
    let expunged = a.cmd("a5", "EXPUNGE").await;
    assert!(expunged.contains("* 1 EXPUNGE"), "{expunged}");
    assert_eq!(b.line().await, "* 1 EXPUNGE\r\n");
    // A appends to INBOX; B sees EXISTS with the next UID.
    let appended = a.cmd("a6", "APPEND INBOX {20+}\r\nSubject: a\r\n\r\nbody\r\n").await;
    assert!(appended.contains("[APPENDUID") && appended.contains(" 4]"), "{appended}");
    b.until("* 3 EXISTS").await;
    b.send("DONE\r\n").await;
    b.until("b4 OK").await;
    let uids = b.cmd("b5", "UID SEARCH ALL").await;
    assert!(uids.contains("* SEARCH 2 3 4\r\n"), "{uids}");
    // SEARCH must not report expunges (RFC 3501 §7.4.1), FETCH afterwards is consistent.
    // A selected first, so A holds \Recent for the delivered messages (RFC 3501 §2.3.2),
    // B does not. The appended one is recent in whichever session heard of it first (A
    // after its APPEND, or B idling), and in exactly one.
    let in_a = a.cmd("a7", "FETCH 1:* (UID FLAGS)").await;
    assert!(in_a.contains("* 1 FETCH (UID 2 FLAGS (\\Seen \\Recent))"), "{in_a}");
    let in_b = b.cmd("b5a", "FETCH 1:* (UID FLAGS)").await;
    assert!(in_b.contains("* 1 FETCH (UID 2 FLAGS (\\Seen))"), "{in_b}");
    let recent_4 = [&in_a, &in_b].iter().filter(|f| f.contains("* 3 FETCH (UID 4 FLAGS (\\Recent))")).count();
    let plain_4 = [&in_a, &in_b].iter().filter(|f| f.contains("* 3 FETCH (UID 4 FLAGS ())")).count();
    assert_eq!((recent_4, plain_4), (1, 1), "{in_a}\n{in_b}");
    a.cmd("a8", "LOGOUT").await;
    b.cmd("b6", "LOGOUT").await;
}

#[tokio::test]
async fn idle_hears_of_removals_by_other_services() {
    let t = TestServer::start_with(plaintext_allowed).await;
    let mailbox = t.mailbox(ADDRESS, no_tls_required()).await;
    deliver(&t, &mailbox, 1, 2).await;
    let mut c = Raw::connect(t.addr("imap")).await;
    c.line().await;
    c.cmd("a1", &format!("LOGIN {ADDRESS} \"{PASSWORD}\"")).await;
    c.cmd("a2", "SELECT INBOX").await;
    c.send("a3 IDLE\r\n").await;
    assert!(c.line().await.starts_with('+'));
    // What a POP3 session does at QUIT (RFC 1939 §6).
    let store = t.server.store();
    let inbox = store.folder(mailbox.id, "INBOX").await.expect("folder").expect("inbox");
    store.remove_messages(mailbox.id, inbox.id, &[1]).await.expect("remove");
    assert_eq!(c.line().await, "* 1 EXPUNGE\r\n");
    c.send("DONE\r\n").await;
    assert!(c.until("a3 ").await.contains("a3 OK"));
    let fetched = c.cmd("a4", "FETCH 1:* (UID)").await;
    assert!(fetched.contains("* 1 FETCH (UID 2)") && !fetched.contains("* 2 FETCH"), "{fetched}");
}

#[tokio::test]
async fn malformed_input_gets_bad_and_nothing_else_happens() {
    let t = TestServer::start_with(|c| {
        plaintext_allowed(c);
        c.limits.max_message_size = 2048;
    })
    .await;
    let _mailbox = t.mailbox(ADDRESS, no_tls_required()).await;
    let mut c = Raw::connect(t.addr("imap")).await;
    c.line().await;
    assert!(c.cmd("x1", "FROBNICATE now").await.starts_with("x1 BAD"));
    assert!(c.cmd("x2", "SELECT").await.starts_with("x2 BAD"));
    assert!(c.cmd("x3", "SELECT INBOX").await.starts_with("x3 BAD"), "not logged in yet");
    c.send("\u{1}\u{2}garbage(((\r\n").await;
    assert!(c.line().await.starts_with("* BAD"));
    assert!(c.cmd("x4", &format!("LOGIN {ADDRESS} \"{PASSWORD}\"")).await.contains("x4 OK"));
    assert!(c.cmd("x5", "FETCH 1 (FLAGS)").await.starts_with("x5 BAD"), "no folder selected");
    c.cmd("x6", "SELECT INBOX").await;
    assert!(c.cmd("x7", "FETCH 5 (FLAGS)").await.starts_with("x7 BAD"), "no such message");
    // A literal above the message size limit is refused before it is sent.
    let too_big = c.cmd("x8", "APPEND INBOX {5000}").await;
    assert!(too_big.starts_with("x8 BAD [TOOBIG]") || too_big.starts_with("x8 NO [TOOBIG]"), "{too_big}");
    // LITERAL+: the bytes arrive anyway and are skipped.
    c.send(&format!("x9 APPEND INBOX {{5000+}}\r\n{}\r\n", "a".repeat(5000))).await;
    let skipped = c.until("x9 ").await;
    assert!(skipped.contains("[TOOBIG]"), "{skipped}");
    assert!(c.cmd("x10", "NOOP").await.starts_with("x10 OK"), "the session goes on");
    let status = c.cmd("x11", "STATUS INBOX (MESSAGES)").await;
    assert!(status.contains("MESSAGES 0"), "{status}");
}

#[tokio::test]
async fn plaintext_login_is_refused_with_privacyrequired_and_logged() {
    let t = TestServer::start().await;
    let mailbox = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    let mut c = Raw::connect(t.addr("imap")).await;
    let greeting = c.line().await;
    assert!(greeting.contains("LOGINDISABLED") && greeting.contains("STARTTLS"), "{greeting}");
    assert!(!greeting.contains("AUTH=PLAIN"), "{greeting}");
    let reply = c.cmd("a1", &format!("LOGIN {ADDRESS} \"{PASSWORD}\"")).await;
    assert!(reply.starts_with("a1 NO [PRIVACYREQUIRED]"), "{reply}");
    let login = last_login(&t).await;
    assert_eq!(login.login, ADDRESS);
    assert_eq!(login.result, LoginResult::TlsRequired);
    assert!(login.tls.is_none());
    let exposed = t.server.store().mailbox(Scope::Platform, &mailbox.address).await.expect("mailbox");
    assert!(exposed.password_exposed, "a correct password sent in plaintext is marked exposed");
    // AUTHENTICATE PLAIN with an initial response is recorded too, as a record of its own.
    let before = t.server.store().logins(Scope::Platform, LoginFilter::default()).await.expect("logins").len();
    let ir = base64_plain(ADDRESS, "wrong password here");
    let reply = c.cmd("a2", &format!("AUTHENTICATE PLAIN {ir}")).await;
    assert!(reply.starts_with("a2 NO [PRIVACYREQUIRED]"), "{reply}");
    let after = t.server.store().logins(Scope::Platform, LoginFilter::default()).await.expect("logins");
    assert_eq!(after.len(), before + 1);
    assert_eq!((after[0].login.as_str(), after[0].mechanism), (ADDRESS, postfach_types::Mechanism::Plain));
}

fn base64_plain(user: &str, pass: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"))
}

#[tokio::test]
async fn tls_required_mailbox_gets_privacyrequired_over_plaintext() {
    let t = TestServer::start_with(plaintext_allowed).await;
    t.mailbox(ADDRESS, MailboxSettings::default()).await;
    let mut c = Raw::connect(t.addr("imap")).await;
    let greeting = c.line().await;
    assert!(greeting.contains("AUTH=PLAIN") && !greeting.contains("LOGINDISABLED"), "{greeting}");
    let reply = c.cmd("a1", &format!("LOGIN {ADDRESS} \"{PASSWORD}\"")).await;
    assert!(reply.starts_with("a1 NO [PRIVACYREQUIRED]"), "{reply}");
    let login = last_login(&t).await;
    assert_eq!(login.result, LoginResult::TlsRequired);
    assert!(login.tls.is_none());
    // A wrong password on the same mailbox reads exactly the same.
    let wrong = c.cmd("a2", &format!("LOGIN {ADDRESS} wrongwrongwrong")).await;
    assert_eq!(wrong.replacen("a2", "a1", 1), reply);
}

#[tokio::test]
async fn pop3_mailbox_gets_authorizationfailed_with_a_hint() {
    let t = TestServer::start().await;
    t.mailbox(ADDRESS, MailboxSettings { access: AccessMode::Pop3, ..Default::default() }).await;
    let out = python(
        &t,
        r#"
ctx = ssl.create_default_context(cafile=os.environ["CERT"])
m = imaplib.IMAP4_SSL("localhost", int(os.environ["TLS_PORT"]), ssl_context=ctx)
try:
    m.login(os.environ["USER"], os.environ["PASS"])
    raise SystemExit("login should fail")
except imaplib.IMAP4.error as e:
    print(e)
"#,
    )
    .await;
    assert!(out.contains("[AUTHORIZATIONFAILED]"), "{out}");
    assert!(out.contains("IMAP is switched off for this mailbox") && out.contains("customer panel"), "{out}");
    let login = last_login(&t).await;
    assert_eq!(login.result, LoginResult::ServiceDisabled);
    assert!(login.tls.is_some());
}

#[tokio::test]
async fn wrong_passwords_fail_disconnect_and_then_throttle() {
    let t = TestServer::start_with(|c| {
        plaintext_allowed(c);
        c.security.max_failures_per_login = 3;
    })
    .await;
    t.mailbox(ADDRESS, no_tls_required()).await;
    let mut c = Raw::connect(t.addr("imap")).await;
    c.line().await;
    // Without TLS every failed login reads the same, whether the password was wrong or the
    // mailbox wants TLS (so nobody learns which mailboxes accept plaintext).
    for tag in ["a1", "a2"] {
        let reply = c.cmd(tag, &format!("LOGIN {ADDRESS} wrongwrongwrong")).await;
        assert!(reply.starts_with(&format!("{tag} NO [PRIVACYREQUIRED] the login failed")), "{reply}");
    }
    assert_eq!(last_login(&t).await.result, LoginResult::BadCredentials);
    // AUTHENTICATE PLAIN without an initial response: the third failure ends the session.
    c.send("a3 AUTHENTICATE PLAIN\r\n").await;
    assert!(c.line().await.starts_with('+'));
    c.send(&format!("{}\r\n", base64_plain(ADDRESS, "still wrong"))).await;
    let reply = c.until("a3 ").await;
    assert!(reply.contains("a3 NO [PRIVACYREQUIRED] the login failed"), "{reply}");
    assert!(c.line().await.starts_with("* BYE"));
    // The login is throttled now, even with the right password.
    let mut c = Raw::connect(t.addr("imap")).await;
    c.line().await;
    let reply = c.cmd("b1", &format!("LOGIN {ADDRESS} \"{PASSWORD}\"")).await;
    assert!(reply.starts_with("b1 NO [UNAVAILABLE]"), "{reply}");
    assert_eq!(last_login(&t).await.result, LoginResult::Throttled);
}

#[tokio::test]
async fn authenticate_login_mechanism_and_starttls_with_imaplib() {
    let t = TestServer::start().await;
    t.mailbox(ADDRESS, MailboxSettings::default()).await;
    let out = python(
        &t,
        r#"
ctx = ssl.create_default_context(cafile=os.environ["CERT"])
m = imaplib.IMAP4("localhost", int(os.environ["PORT"]))
assert "LOGINDISABLED" in m.capabilities, m.capabilities
m.starttls(ssl_context=ctx)
assert "AUTH=PLAIN" in m.capabilities and "LOGINDISABLED" not in m.capabilities, m.capabilities
user, pw = os.environ["USER"], os.environ["PASS"]
answers = iter([user.encode(), pw.encode()])
typ, data = m.authenticate("LOGIN", lambda challenge: next(answers))
assert typ == "OK", data
typ, data = m.xatom("NAMESPACE")
print(m.untagged_responses.get("NAMESPACE"))
m.logout()
"#,
    )
    .await;
    assert!(out.contains("((\"\" \"/\")) NIL NIL"), "{out}");
    let login = last_login(&t).await;
    assert_eq!(login.result, LoginResult::Ok);
    assert!(login.tls.is_some());
}

#[tokio::test]
async fn too_many_connections_from_one_address_get_bye() {
    let t = TestServer::start_with(|c| c.limits.max_connections_per_ip = 1).await;
    let mut first = Raw::connect(t.addr("imap")).await;
    assert!(first.line().await.starts_with("* OK"));
    let mut second = Raw::connect(t.addr("imap")).await;
    let line = second.line().await;
    assert!(line.starts_with("* BYE too many connections from your address"), "{line}");
    assert!(first.cmd("a1", "NOOP").await.starts_with("a1 OK"));
}

/// A UID FETCH of many whole messages streams them all, complete (the time it takes is
/// measured by the benchmarks, `bench/README.md`, not here).
#[tokio::test]
async fn uid_fetch_of_many_messages_streams_them_all() {
    let t = TestServer::start().await;
    let mailbox = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    let body = "x".repeat(4000);
    let mut deliveries = Vec::new();
    for i in 0..300 {
        let bytes = format!("Subject: m{i}\r\n\r\n{body}\r\n").into_bytes();
        let blob = t.server.blobs().put(bytes.clone()).await.expect("blob");
        let message = NewMessage {
            blob,
            size: bytes.len() as u64,
            internal_date: UnixTime::now(),
            flags: Flags::default(),
            keywords: Vec::new(),
        };
        deliveries.push(Delivery { mailbox_id: mailbox.id, folder: DeliveryFolder::Inbox, message });
    }
    t.server.store().deliver(&deliveries).await.expect("deliver");
    python(
        &t,
        r#"
ctx = ssl.create_default_context(cafile=os.environ["CERT"])
m = imaplib.IMAP4_SSL("localhost", int(os.environ["TLS_PORT"]), ssl_context=ctx)
m.login(os.environ["USER"], os.environ["PASS"])
m.select("INBOX", readonly=True)
typ, data = m.uid("FETCH", "1:*", "(FLAGS RFC822.SIZE BODY.PEEK[])")
bodies = [d for d in data if isinstance(d, tuple)]
assert typ == "OK" and len(bodies) == 300, len(bodies)
for i, b in enumerate(bodies):
    assert b[1] == ("Subject: m%d\r\n\r\n" % i).encode() + b"x" * 4000 + b"\r\n", i
"#,
    )
    .await;
}
