//! The whole server with its message bytes in S3 (`[blobs] backend = "s3"`, a real Garage
//! on loopback): mail taken in over SMTP and APPEND is read back over IMAP and POP3, the
//! outbound queue's copy lives in the bucket where another node finds it, and while the
//! store is away nothing is acknowledged and nothing is stored.

mod common;

use common::clients::{ImapClient, SmtpClient};
use common::{PASSWORD, TestServer};
use postfach_blob::{Backend, BlobStore, Namespace, S3Settings};
use postfach_outbound::Submission;
use postfach_store::Scope;
use postfach_store::mailboxes::{Mailbox, MailboxSettings};
use postfach_store::queue::RecipientState;
use postfach_testdns::{Data, Rr, TestDns};
use postfach_testgarage::Garage;
use postfach_types::{AccessMode, EmailAddress, Secret};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn s3(garage: &Garage) -> Backend {
    Backend::S3(S3Settings {
        endpoint: garage.endpoint.clone(),
        bucket: garage.bucket.clone(),
        region: garage.region.clone(),
        access_key_id: garage.access_key_id.clone(),
        secret_access_key: Secret::new(garage.secret_access_key.clone()),
    })
}

async fn start(garage: &Garage, dns: &TestDns) -> TestServer {
    let (backend, resolver) = (s3(garage), dns.addr());
    // Outbound mail goes to a port where nothing listens: it stays queued.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    TestServer::start_with(|c| {
        c.blobs = backend;
        c.dns.resolver = Some(resolver);
        c.security.allow_plaintext_auth = true;
        c.outbound.smtp_port = closed;
    })
    .await
}

fn message(subject: &str) -> String {
    format!(
        "From: <anna@pass.test>\r\nTo: <max@acme.example>\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@pass.test>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0000\r\n\r\nHallo aus dem Bucket: {subject}\r\n"
    )
}

/// One MX transaction; the final reply.
async fn deliver(t: &TestServer, to: &[&str], subject: &str) -> String {
    let (mut c, _) = SmtpClient::connect(t.addr("smtp")).await;
    assert!(c.cmd("EHLO client.pass.test").await.starts_with("250"));
    let (_, reply) = c.transaction("anna@pass.test", to, &message(subject)).await;
    c.cmd("QUIT").await;
    reply
}

async fn inbox_len(t: &TestServer, mailbox: &Mailbox) -> usize {
    let store = t.server.store();
    let inbox = store.folder(mailbox.id, "INBOX").await.expect("folder").expect("INBOX");
    store.messages(mailbox.id, inbox.id).await.expect("messages").len()
}

async fn imap_login(t: &TestServer) -> ImapClient {
    let mut imap = ImapClient::connect(t.addr("imap")).await;
    imap.line().await;
    let login = imap.cmd("a", &format!("LOGIN max@acme.example \"{PASSWORD}\"")).await;
    assert!(login.contains("a OK"), "{login}");
    imap
}

/// POP3 RETR of message `n` (the lines up to the terminating dot).
async fn pop3_retr(t: &TestServer, n: u32) -> String {
    let stream = tokio::net::TcpStream::connect(t.addr("pop3")).await.expect("connect");
    let mut pop = BufReader::new(stream);
    let mut line = String::new();
    pop.read_line(&mut line).await.expect("greeting");
    for command in ["USER pop@acme.example".to_string(), format!("PASS {PASSWORD}")] {
        pop.get_mut().write_all(format!("{command}\r\n").as_bytes()).await.expect("write");
        line.clear();
        pop.read_line(&mut line).await.expect("reply");
        assert!(line.starts_with("+OK"), "{command}: {line}");
    }
    pop.get_mut().write_all(format!("RETR {n}\r\n").as_bytes()).await.expect("write");
    let mut all = String::new();
    loop {
        line.clear();
        assert!(pop.read_line(&mut line).await.expect("read") > 0, "closed: {all}");
        if line == ".\r\n" {
            break;
        }
        all.push_str(&line);
    }
    pop.get_mut().write_all(b"QUIT\r\n").await.expect("write");
    all
}

#[tokio::test]
async fn mail_lives_in_s3_and_nothing_is_acknowledged_while_it_is_away() {
    let mut garage = Garage::start();
    let dns = TestDns::start([
        Rr::new("pass.test", Data::txt("v=spf1 ip4:127.0.0.1 -all")),
        Rr::new("outside.test", Data::Mx(10, "mx.outside.test".into())),
        Rr::new("mx.outside.test", Data::A("127.0.0.1".parse().expect("ip"))),
    ]);
    let t = start(&garage, &dns).await;
    // Plaintext logins keep the test's clients simple; TLS is not what is tested here.
    let plain = MailboxSettings { tls_required: false, ..Default::default() };
    let max = t.mailbox("max@acme.example", plain).await;
    let pop = t.mailbox("pop@acme.example", MailboxSettings { access: AccessMode::Pop3, ..plain }).await;

    // In over SMTP, one copy for two mailboxes; out over IMAP and POP3.
    let reply = deliver(&t, &["max@acme.example", "pop@acme.example"], "first").await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    assert!(!t.config.data_dir.join("blobs/objects").exists(), "no message file on this node's disk");
    let mut imap = imap_login(&t).await;
    assert!(imap.cmd("b", "SELECT INBOX").await.contains("b OK"));
    let fetched = imap.cmd("c", "FETCH 1 (BODY[] BODY[HEADER.FIELDS (SUBJECT)] BODY[TEXT]<0.9>)").await;
    assert!(fetched.contains("Hallo aus dem Bucket: first"), "{fetched}");
    assert!(fetched.contains("Subject: first"), "{fetched}");
    assert!(fetched.contains("BODY[TEXT]<0> {9}\r\nHallo aus"), "{fetched}");
    assert!(pop3_retr(&t, 1).await.contains("Hallo aus dem Bucket: first"));

    // APPEND of a literal large enough to be spooled: stored from the spool file.
    let appended = message("appended") + &"Zeile mit etwas Text, damit es groß wird.\r\n".repeat(4000);
    imap.send(&format!("d APPEND INBOX {{{}}}\r\n", appended.len())).await;
    assert!(imap.line().await.starts_with('+'));
    imap.send(&format!("{appended}\r\n")).await;
    let done = imap.until("d ").await;
    assert!(done.contains("d OK [APPENDUID"), "{done}");
    let fetched = imap.cmd("e", "FETCH 2 BODY.PEEK[]").await;
    assert!(fetched.contains(&format!("{{{}}}", appended.len())) && fetched.contains("Subject: appended"));

    // The outbound queue's copy is in the bucket, under its own prefix: any node can send it.
    let queued = t
        .server
        .outbound()
        .submit(Submission {
            mailbox_id: max.id,
            client: None,
            require_tls: false,
            return_path: Some(EmailAddress::parse("max@acme.example").expect("address")),
            recipients: vec![EmailAddress::parse("anna@outside.test").expect("address")],
            message: message("outbound").into_bytes(),
        })
        .await
        .expect("queued");
    let entry = t.server.store().queue_list(Scope::Platform).await.expect("queue").into_iter().next().expect("queued");
    assert_eq!(entry.queue_id, queued.as_str());
    let elsewhere = tempfile::tempdir().expect("another node's data folder");
    let node_b = BlobStore::open(&s3(&garage), elsewhere.path(), Namespace::Queue).expect("open");
    let copy = node_b.get(&entry.blob).await.expect("the queued copy is in the bucket");
    assert!(String::from_utf8_lossy(&copy).contains("Hallo aus dem Bucket: outbound"));
    assert!(!t.server.blobs().exists(&entry.blob).await.expect("exists"), "not among the mailboxes' blobs");

    // The store goes away: DATA gets a temporary error, and nothing is stored.
    let before = (inbox_len(&t, &max).await, inbox_len(&t, &pop).await);
    garage.stop();
    let reply = deliver(&t, &["max@acme.example", "pop@acme.example"], "while-down").await;
    assert!(reply.starts_with("451 4.3.0"), "{reply}");
    assert!(reply.contains("not accepted") && reply.contains("again later"), "{reply}");
    let small = "Subject: x\r\n\r\nbody\r\n";
    imap.send(&format!("f APPEND INBOX {{{}}}\r\n", small.len())).await;
    assert!(imap.line().await.starts_with('+'));
    imap.send(&format!("{small}\r\n")).await;
    let refused = imap.until("f ").await;
    assert!(refused.contains("f NO [UNAVAILABLE]"), "{refused}");
    assert_eq!((inbox_len(&t, &max).await, inbox_len(&t, &pop).await), before, "nothing stored");
    // A queued message whose storage is away is tried again later, never bounced as lost.
    let store = t.server.store();
    store.queue_retry(Scope::Platform, queued.as_str()).await.expect("retry now");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let recipient = loop {
        let entry = store.queue_list(Scope::Platform).await.expect("queue").into_iter().next().expect("still queued");
        let r = entry.recipients[0].clone();
        if r.diagnostic.as_deref().is_some_and(|d| d.contains("storage did not answer")) {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "no attempt while the store was away: {r:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(recipient.state, RecipientState::Queued, "{recipient:?}");
    assert_eq!((recipient.status.as_deref(), recipient.notify), (Some("4.3.0"), None), "{recipient:?}");

    // Back again: mail flows, and what was there before is still there.
    garage.restart();
    let reply = deliver(&t, &["max@acme.example"], "after").await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    assert_eq!(inbox_len(&t, &max).await, before.0 + 1);
    assert!(imap.cmd("g1", "NOOP").await.contains("* 3 EXISTS"));
    let fetched = imap.cmd("g", "FETCH 1:* BODY.PEEK[HEADER.FIELDS (SUBJECT)]").await;
    assert!(fetched.contains("Subject: first") && fetched.contains("Subject: after"), "{fetched}");
    assert!(!fetched.contains("while-down"), "{fetched}");
    imap.cmd("z", "LOGOUT").await;
}

#[tokio::test]
async fn a_server_whose_bucket_refuses_its_key_does_not_start() {
    let garage = Garage::start();
    let Backend::S3(mut settings) = s3(&garage) else { unreachable!() };
    settings.secret_access_key = Secret::new("wrong-secret-0123456789".into());
    let dir = tempfile::tempdir().expect("tmp");
    let database = format!("sqlite://{}", dir.path().join("data/postfach.sqlite").display());
    let mut config = common::test_config(&database, &dir.path().join("data"));
    config.blobs = Backend::S3(settings);
    let error = postfach_server::Server::start(&config).await.expect_err("refused").to_string();
    assert!(error.starts_with("cannot open the message storage: object storage: listing the bucket failed"), "{error}");
    assert!(!error.contains("wrong-secret"), "{error}");
}
