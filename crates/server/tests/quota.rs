//! Quotas end to end, on SQLite and on PostgreSQL: IMAP QUOTA (RFC 9208) and OVERQUOTA
//! over a raw socket, the MX's 452 4.2.2 / 552 5.2.2 (a raw client and Python's
//! smtplib), mail accepted again after an expunge, and the 80 % and 95 % warnings read
//! back over IMAP in English and German, each sent once.

mod common;

use std::process::Command;

use common::clients::{ImapClient, SmtpClient, run};
use common::{PASSWORD, TestServer, postgres_database};
use postfach_server::config::Config;
use postfach_store::Scope;
use postfach_store::mailboxes::MailboxSettings;
use postfach_store::quota::MailboxQuota;
use postfach_testdns::{Data, Rr, TestDns};
use postfach_types::{EmailAddress, Language, MailboxId};

const MAX: &str = "max@acme.example";
const ERIKA: &str = "erika@acme.example";

fn zones() -> TestDns {
    TestDns::start([
        Rr::new("pass.test", Data::txt("v=spf1 ip4:127.0.0.1 -all")),
        Rr::new("client.pass.test", Data::A("127.0.0.1".parse().expect("ip"))),
    ])
}

fn adjust(dns: &TestDns) -> impl FnOnce(&mut Config) {
    let addr = dns.addr();
    move |c: &mut Config| {
        c.dns.resolver = Some(addr);
        c.security.allow_plaintext_auth = true;
    }
}

async fn sqlite(dns: &TestDns) -> TestServer {
    TestServer::start_with(adjust(dns)).await
}

async fn postgres(dns: &TestDns, dir: &tempfile::TempDir) -> TestServer {
    TestServer::start_node(&postgres_database().await, dir.path(), adjust(dns)).await
}

async fn mailbox(t: &TestServer, address: &str, quota: MailboxQuota) -> MailboxId {
    let mailbox = t.mailbox(address, MailboxSettings { tls_required: false, ..Default::default() }).await;
    let address = EmailAddress::parse(address).expect("address");
    t.server.store().set_mailbox_quota(Scope::Platform, &address, quota).await.expect("quota");
    mailbox.id
}

/// A message of exactly `size` bytes.
fn message(subject: &str, size: usize) -> String {
    let head = format!("From: <sender@pass.test>\r\nTo: <{MAX}>\r\nSubject: {subject}\r\n\r\n");
    let mut body = String::new();
    while head.len() + body.len() + 80 < size {
        body.push_str(&"x".repeat(70));
        body.push_str("\r\n");
    }
    let fill = size - head.len() - body.len() - 2;
    body.push_str(&"y".repeat(fill));
    body.push_str("\r\n");
    head + &body
}

async fn imap_login(t: &TestServer) -> ImapClient {
    let mut imap = ImapClient::connect(t.addr("imap")).await;
    imap.line().await;
    let login = imap.cmd("a", &format!("LOGIN {MAX} \"{PASSWORD}\"")).await;
    assert!(login.contains("a OK"), "{login}");
    imap
}

async fn append(imap: &mut ImapClient, folder: &str, bytes: &str) -> String {
    imap.send(&format!("p APPEND {folder} {{{}+}}\r\n{bytes}\r\n", bytes.len())).await;
    imap.until("p ").await
}

async fn used(t: &TestServer, mailbox: MailboxId) -> u64 {
    t.server.store().mailbox_space(mailbox).await.expect("space").used_bytes
}

/// How many messages in INBOX have `subject` in their Subject.
async fn count_subject(imap: &mut ImapClient, subject: &str) -> usize {
    imap.cmd("s", "SELECT INBOX").await;
    let found = imap.cmd("f", &format!("SEARCH SUBJECT \"{subject}\"")).await;
    let line = found.lines().find(|l| l.starts_with("* SEARCH")).unwrap_or("* SEARCH");
    line.split_whitespace().count() - 2
}

async fn imap_quota_overquota_and_warnings(t: TestServer) {
    let mb = mailbox(&t, MAX, MailboxQuota { bytes: Some(10 * 1024), messages: Some(20) }).await;
    let mut imap = imap_login(&t).await;
    let caps = imap.cmd("c", "CAPABILITY").await;
    for cap in [" QUOTA ", " QUOTA=RES-STORAGE ", " QUOTA=RES-MESSAGE "] {
        assert!(caps.contains(cap), "{cap} in {caps}");
    }

    let reply = append(&mut imap, "INBOX", &message("first", 6000)).await;
    assert!(reply.contains("p OK"), "{reply}");
    let root = imap.cmd("q", "GETQUOTAROOT INBOX").await;
    assert!(root.contains("* QUOTAROOT INBOX \"\"\r\n"), "{root}");
    assert!(root.contains("* QUOTA \"\" (STORAGE 6 10 MESSAGE 1 20)\r\n"), "{root}");
    let quota = imap.cmd("q", "GETQUOTA \"\"").await;
    assert!(quota.contains("* QUOTA \"\" (STORAGE 6 10 MESSAGE 1 20)") && quota.contains("q OK"), "{quota}");
    let set = imap.cmd("q", "SETQUOTA \"\" (STORAGE 99999)").await;
    assert!(set.contains("q NO") && set.contains("control panel"), "{set}");

    // Over quota: refused, nothing stored.
    let full = append(&mut imap, "INBOX", &message("too much", 5000)).await;
    assert!(full.contains("p NO [OVERQUOTA]") && full.contains("delete messages"), "{full}");
    let big = append(&mut imap, "Archive", &message("too big", 11 * 1024)).await;
    assert!(big.contains("p NO [OVERQUOTA]") && big.contains("larger than"), "{big}");
    imap.cmd("s", "SELECT INBOX").await;
    let copy = imap.cmd("k", "COPY 1 Archive").await;
    assert!(copy.contains("k NO [OVERQUOTA]"), "{copy}");
    let status = imap.cmd("t", "STATUS Archive (MESSAGES SIZE)").await;
    assert!(status.contains("(MESSAGES 0 SIZE 0)"), "{status}");
    let status = imap.cmd("t", "STATUS INBOX (MESSAGES SIZE)").await;
    assert!(status.contains("(MESSAGES 1 SIZE 6000)"), "{status}");
    assert_eq!(used(&t, mb).await, 6000);

    // Crossing 80 %: one warning, in English (the default).
    let reply = append(&mut imap, "INBOX", &message("second", 2400)).await;
    assert!(reply.contains("p OK"), "{reply}");
    assert_eq!(count_subject(&mut imap, "Your mailbox is 80 % full").await, 1);
    let fetched = imap.cmd("g", "FETCH 3 BODY.PEEK[TEXT]").await;
    assert!(fetched.contains("The mailbox max@acme.example is 80 % full"), "{fetched}");
    assert!(fetched.contains("Delete old messages"), "{fetched}");
    let reply = append(&mut imap, "INBOX", &message("third", 200)).await;
    assert!(reply.contains("p OK"), "{reply}");
    assert_eq!(count_subject(&mut imap, "Your mailbox is 80 % full").await, 1, "not repeated");

    // Crossing 95 %: in German, once the mailbox asks for German.
    let address = EmailAddress::parse(MAX).expect("address");
    t.server.store().set_mailbox_language(Scope::Platform, &address, Language::De).await.expect("language");
    let room = 10 * 1024 * 96 / 100 - used(&t, mb).await as usize;
    let reply = append(&mut imap, "INBOX", &message("fourth", room)).await;
    assert!(reply.contains("p OK"), "{reply}");
    assert_eq!(count_subject(&mut imap, "Ihr Postfach ist zu 95 % voll").await, 1);
    assert_eq!(count_subject(&mut imap, "voll").await, 1, "one German warning: {}", used(&t, mb).await);

    // Deleting brings the use below 80 %; crossing again warns again.
    imap.cmd("d", "STORE 1 +FLAGS (\\Deleted)").await;
    let expunged = imap.cmd("e", "EXPUNGE").await;
    assert!(expunged.contains("e OK"), "{expunged}");
    let room = 10 * 1024 * 81 / 100 - used(&t, mb).await as usize;
    let reply = append(&mut imap, "INBOX", &message("fifth", room)).await;
    assert!(reply.contains("p OK"), "{reply}");
    assert_eq!(count_subject(&mut imap, "Ihr Postfach ist zu 80 % voll").await, 1);
    imap.cmd("z", "LOGOUT").await;
}

/// Python's smtplib sends with SIZE (RFC 1870) where the server offers it; prints the
/// refusal's code and text.
async fn smtplib_send(t: &TestServer, to: &str, message: &str) -> String {
    let script = r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), local_hostname="client.pass.test")
try:
    s.sendmail("sender@pass.test", [sys.argv[2]], sys.stdin.read())
    print("SENT")
except smtplib.SMTPRecipientsRefused as e:
    for code, text in e.recipients.values():
        print("REFUSED", code, text.decode())
finally:
    s.quit()
"#;
    let mut command = Command::new("python3");
    command.arg("-c").arg(script).arg(t.port("smtp").to_string()).arg(to);
    let path = t.dir.path().join("smtplib-message");
    std::fs::write(&path, message).expect("write message");
    command.stdin(std::fs::File::open(&path).expect("open message"));
    let output = run(&mut command).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn smtp_refuses_full_mailboxes_and_accepts_again(t: TestServer) {
    let max = mailbox(&t, MAX, MailboxQuota { bytes: Some(20 * 1024), messages: None }).await;
    mailbox(&t, ERIKA, MailboxQuota::default()).await;

    // The message alone is larger than the whole limit: 552 5.2.2, for good.
    let sent = smtplib_send(&t, MAX, &message("huge", 25 * 1024)).await;
    assert!(sent.starts_with("REFUSED 552 5.2.2"), "{sent}");
    assert_eq!(used(&t, max).await, 0);

    // Fill it to about 90 % (with the trace fields and the 80 % warning).
    let sent = smtplib_send(&t, MAX, &message("filler", 17 * 1024)).await;
    assert_eq!(sent.trim(), "SENT");
    // The declared size does not fit: 452 4.2.2, try later.
    let sent = smtplib_send(&t, MAX, &message("does not fit", 3 * 1024)).await;
    assert!(sent.starts_with("REFUSED 452 4.2.2"), "{sent}");

    // Without SIZE the RCPT check passes; after DATA the message fits erika, so both get
    // it (max goes over by this one message) rather than erika losing it.
    let (mut smtp, _) = SmtpClient::connect(t.addr("smtp")).await;
    smtp.cmd("EHLO client.pass.test").await;
    let (rcpts, done) = smtp.transaction("sender@pass.test", &[MAX, ERIKA], &message("for both", 3 * 1024)).await;
    assert!(rcpts.iter().all(|r| r.starts_with("250")), "{rcpts:?}");
    assert!(done.starts_with("250"), "{done}");
    assert!(used(&t, max).await > 20 * 1024);

    // Now it is full: 452 4.2.2 at RCPT, whatever the size.
    let (rcpts, _) = smtp.transaction("sender@pass.test", &[MAX], &message("tiny", 300)).await;
    assert!(rcpts[0].starts_with("452 4.2.2") && rcpts[0].contains("full"), "{rcpts:?}");
    smtp.cmd("QUIT").await;

    // The user deletes mail over IMAP; mail is accepted again.
    let mut imap = imap_login(&t).await;
    imap.cmd("s", "SELECT INBOX").await;
    imap.cmd("d", "STORE 1:* +FLAGS (\\Deleted)").await;
    let expunged = imap.cmd("e", "EXPUNGE").await;
    assert!(expunged.contains("e OK"), "{expunged}");
    imap.cmd("z", "LOGOUT").await;
    assert_eq!(used(&t, max).await, 0);
    let sent = smtplib_send(&t, MAX, &message("welcome back", 3 * 1024)).await;
    assert_eq!(sent.trim(), "SENT");
}

#[tokio::test]
async fn imap_quota_sqlite() {
    let dns = zones();
    imap_quota_overquota_and_warnings(sqlite(&dns).await).await;
}

#[tokio::test]
async fn imap_quota_postgres() {
    let (dns, dir) = (zones(), tempfile::tempdir().expect("dir"));
    imap_quota_overquota_and_warnings(postgres(&dns, &dir).await).await;
}

#[tokio::test]
async fn smtp_quota_sqlite() {
    let dns = zones();
    smtp_refuses_full_mailboxes_and_accepts_again(sqlite(&dns).await).await;
}

#[tokio::test]
async fn smtp_quota_postgres() {
    let (dns, dir) = (zones(), tempfile::tempdir().expect("dir"));
    smtp_refuses_full_mailboxes_and_accepts_again(postgres(&dns, &dir).await).await;
}
