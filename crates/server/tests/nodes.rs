//! Several nodes on one PostgreSQL database and one data folder, as in-process servers on
//! 127.0.0.1: IDLE on one node wakes for a delivery through another, the POP3 `[IN-USE]`
//! lock holds across nodes (and goes with its node's lock connection), failed logins
//! count together, and so do the sending allowances.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::clients::{ImapClient, SmtpClient};
use common::{PASSWORD, TestServer, postgres_database};
use postfach_store::Store;
use postfach_store::mailboxes::MailboxSettings;
use postfach_testdns::{Data, Rr, TestDns};
use postfach_types::{AccessMode, MailboxId};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const ADDRESS: &str = "max@acme.example";

/// A node that allows plaintext logins (the clients here speak without TLS).
async fn node(
    database: &str,
    data_dir: &Path,
    adjust: impl FnOnce(&mut postfach_server::config::Config),
) -> TestServer {
    TestServer::start_node(database, data_dir, |c| {
        c.security.allow_plaintext_auth = true;
        adjust(c);
    })
    .await
}

fn plaintext(access: AccessMode) -> MailboxSettings {
    MailboxSettings { tls_required: false, access, ..Default::default() }
}

#[tokio::test]
async fn idle_on_one_node_wakes_for_a_delivery_through_another() {
    let dns = TestDns::start([Rr::new("pass.test", Data::txt("v=spf1 ip4:127.0.0.1 -all"))]);
    let (database, dir) = (postgres_database().await, tempfile::tempdir().expect("dir"));
    let resolver = dns.addr();
    let a = node(&database, dir.path(), |c| c.dns.resolver = Some(resolver)).await;
    let b = node(&database, dir.path(), |c| c.dns.resolver = Some(resolver)).await;
    a.mailbox(ADDRESS, plaintext(AccessMode::Imap)).await;

    let mut imap = ImapClient::connect(b.addr("imap")).await;
    imap.line().await;
    assert!(imap.cmd("l", &format!("LOGIN {ADDRESS} \"{PASSWORD}\"")).await.contains("l OK"));
    assert!(imap.cmd("s", "SELECT INBOX").await.contains("* 0 EXISTS"));
    imap.send("i IDLE\r\n").await;
    assert!(imap.line().await.starts_with("+ "));

    let (mut smtp, _) = SmtpClient::connect(a.addr("smtp")).await;
    assert!(smtp.cmd("EHLO pass.test").await.starts_with("250"));
    let message = "From: <erika@pass.test>\r\nTo: <max@acme.example>\r\nSubject: across\r\n\r\nHello from node A.\r\n";
    let (_, done) = smtp.transaction("erika@pass.test", &[ADDRESS], message).await;
    assert!(done.starts_with("250"), "{done}");
    let delivered = Instant::now();
    // IDLE does not poll (it waits up to the 30-minute idle timeout): only the
    // announcement from node A can wake it. The bound is generous so a loaded machine does
    // not fail the test; the latency is printed (docs/benchmarks.md records it).
    let mut woke = String::new();
    tokio::time::timeout(Duration::from_secs(10), imap.reader.read_line(&mut woke))
        .await
        .expect("IDLE on node B woke for the delivery on node A")
        .expect("read");
    eprintln!("IDLE on node B woke {:?} after node A's 250", delivered.elapsed());
    assert_eq!(woke, "* 1 EXISTS\r\n", "after {:?}", delivered.elapsed());
    imap.send("DONE\r\n").await;
    assert!(imap.until("i ").await.contains("i OK"));
    a.server.shutdown().await;
    b.server.shutdown().await;
}

/// A line-by-line POP3 client.
struct Pop3 {
    reader: BufReader<TcpStream>,
}

impl Pop3 {
    async fn connect(addr: SocketAddr) -> Self {
        let mut c = Pop3 { reader: BufReader::new(TcpStream::connect(addr).await.expect("connect")) };
        assert!(c.line().await.starts_with("+OK"));
        c
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(30), self.reader.read_line(&mut line)).await;
        read.expect("the server answers in time").expect("read");
        line
    }

    async fn cmd(&mut self, line: &str) -> String {
        self.reader.get_mut().write_all(format!("{line}\r\n").as_bytes()).await.expect("write");
        self.line().await
    }

    /// USER and PASS; the reply to PASS.
    async fn login(&mut self) -> String {
        assert!(self.cmd(&format!("USER {ADDRESS}")).await.starts_with("+OK"));
        self.cmd(&format!("PASS {PASSWORD}")).await
    }
}

/// Logs in on `addr` until the maildrop is free (bounded): the released lock goes out
/// right after the other session ended, not before its QUIT is answered.
async fn login_once_free(addr: SocketAddr) -> Pop3 {
    for _ in 0..100 {
        let mut c = Pop3::connect(addr).await;
        let reply = c.login().await;
        if reply.starts_with("+OK") {
            return c;
        }
        assert!(reply.starts_with("-ERR [IN-USE]"), "{reply}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the maildrop stayed locked");
}

#[tokio::test]
async fn a_pop3_session_on_one_node_locks_the_maildrop_on_every_node() {
    let (database, dir) = (postgres_database().await, tempfile::tempdir().expect("dir"));
    let a = node(&database, dir.path(), |_| {}).await;
    let b = node(&database, dir.path(), |_| {}).await;
    let mailbox = a.mailbox(ADDRESS, plaintext(AccessMode::Pop3)).await;
    a.put_in_inbox(&mailbox, b"Subject: one\r\n\r\nbody\r\n".to_vec()).await;

    let mut on_a = Pop3::connect(a.addr("pop3")).await;
    assert!(on_a.login().await.starts_with("+OK"));
    let mut on_b = Pop3::connect(b.addr("pop3")).await;
    let refused = on_b.login().await;
    assert!(refused.starts_with("-ERR [IN-USE]"), "{refused}");
    // Also on A itself, through the in-process lock.
    assert!(Pop3::connect(a.addr("pop3")).await.login().await.starts_with("-ERR [IN-USE]"));

    assert!(on_a.cmd("QUIT").await.starts_with("+OK"));
    let mut on_b = login_once_free(b.addr("pop3")).await;
    assert!(Pop3::connect(a.addr("pop3")).await.login().await.starts_with("-ERR [IN-USE]"));
    assert!(on_b.cmd("QUIT").await.starts_with("+OK"));

    // A takes it again; then A's lock connection dies (as when its node dies).
    let mut on_a = login_once_free(a.addr("pop3")).await;
    let ended = terminate_lock_holder(&database, mailbox.id).await;
    assert_eq!(ended, 1, "one connection held the lock");
    let mut on_b = login_once_free(b.addr("pop3")).await;
    // A's session no longer holds the maildrop: it deletes nothing.
    assert!(on_a.cmd("DELE 1").await.starts_with("+OK"));
    let quit = on_a.cmd("QUIT").await;
    assert!(quit.starts_with("-ERR [SYS/TEMP]"), "{quit}");
    assert!(on_b.cmd("STAT").await.starts_with("+OK 1 "), "the message is still there");
    assert!(on_b.cmd("QUIT").await.starts_with("+OK"));
    // Node A locks again through a new connection.
    let mut on_a = login_once_free(a.addr("pop3")).await;
    assert!(Pop3::connect(b.addr("pop3")).await.login().await.starts_with("-ERR [IN-USE]"));
    assert!(on_a.cmd("QUIT").await.starts_with("+OK"));
    a.server.shutdown().await;
    b.server.shutdown().await;
}

/// Ends the database connection holding the POP3 lock of `mailbox`; how many it ended.
async fn terminate_lock_holder(database: &str, mailbox: MailboxId) -> usize {
    let pool = sqlx::AnyPool::connect(database).await.expect("pool");
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT CAST(pg_terminate_backend(pid) AS INTEGER) AS ended FROM pg_locks \
         WHERE locktype = 'advisory' AND classid = {} AND objid = {} AND objsubid = 2 AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        postfach_store::locks::POP3_LOCK_CLASS,
        mailbox.get()
    )))
    .fetch_all(&pool)
    .await
    .expect("terminate");
    pool.close().await;
    rows.len()
}

#[tokio::test]
async fn failed_logins_spread_over_nodes_lock_the_login_on_every_node() {
    let (database, dir) = (postgres_database().await, tempfile::tempdir().expect("dir"));
    let limits = |c: &mut postfach_server::config::Config| {
        c.security.max_failures_per_login = 5;
        c.security.max_failures_per_ip = 1000;
    };
    let nodes = [
        node(&database, dir.path(), limits).await,
        node(&database, dir.path(), limits).await,
        node(&database, dir.path(), limits).await,
    ];
    nodes[0].mailbox(ADDRESS, plaintext(AccessMode::Imap)).await;
    for i in 0..5 {
        let mut c = ImapClient::connect(nodes[i % 3].addr("imap")).await;
        c.line().await;
        let reply = c.cmd("w", &format!("LOGIN {ADDRESS} \"wrong guess {i}\"")).await;
        assert!(reply.contains("w NO") && !reply.contains("UNAVAILABLE"), "{i}: {reply}");
    }
    // Five failures over three nodes: the right password is refused on each of them.
    for node in &nodes {
        let mut c = ImapClient::connect(node.addr("imap")).await;
        c.line().await;
        let reply = c.cmd("r", &format!("LOGIN {ADDRESS} \"{PASSWORD}\"")).await;
        assert!(reply.starts_with("r NO [UNAVAILABLE]"), "{reply}");
    }
    for node in nodes {
        node.server.shutdown().await;
    }
}

#[tokio::test]
async fn the_sending_allowance_is_one_for_all_nodes() {
    use postfach_outbound::schedule::RateLimiter;
    let (database, dir) = (postgres_database().await, tempfile::tempdir().expect("dir"));
    let a = node(&database, dir.path(), |_| {}).await;
    let mailbox = a.mailbox(ADDRESS, plaintext(AccessMode::Imap)).await;
    let stores = [Store::open(&database).await.expect("store"), Store::open(&database).await.expect("store")];
    let limiters = [RateLimiter::for_store(&stores[0], 4), RateLimiter::for_store(&stores[1], 4)];
    let now = Instant::now();
    for i in 0..4 {
        assert_eq!(limiters[i % 2].check(mailbox.id, now).await, Ok(()), "{i}");
    }
    // The burst of four is used up on both nodes: one message per 15 minutes refills.
    assert_eq!(limiters[0].check(mailbox.id, now).await, Err(900));
    assert_eq!(limiters[1].check(mailbox.id, now).await, Err(900));
    assert_eq!(limiters[1].check(mailbox.id, now + Duration::from_secs(900)).await, Ok(()));
    assert!(limiters[0].check(mailbox.id, now + Duration::from_secs(900)).await.is_err());
    // Full buckets are forgotten by the sweep, emptied ones are kept.
    limiters[0].sweep(now + Duration::from_secs(900)).await;
    assert!(limiters[0].check(mailbox.id, now + Duration::from_secs(901)).await.is_err(), "kept");
    for store in stores {
        store.close().await;
    }
    a.server.shutdown().await;
}

/// An app password revoked through node A ends a session logged in with it on node B at
/// its next command: node B hears of the revocation on the change channel.
#[tokio::test]
async fn an_app_password_revoked_on_one_node_ends_its_session_on_another() {
    let (database, dir) = (postgres_database().await, tempfile::tempdir().expect("dir"));
    let a = node(&database, dir.path(), |_| {}).await;
    let b = node(&database, dir.path(), |_| {}).await;
    let max = a.mailbox(ADDRESS, plaintext(AccessMode::Imap)).await;
    let admin = postfach_admin::Admin::new(a.server.store().clone(), a.server.authenticator().clone(), None);
    let who = postfach_admin::Who::Operator;
    let phone = admin.add_app_password(&who, max.id, "Phone", &[postfach_types::Service::Imap]).await.expect("add");

    let mut imap = ImapClient::connect(b.addr("imap")).await;
    imap.line().await;
    assert!(imap.cmd("l", &format!("LOGIN {ADDRESS} {}", phone.password.expose())).await.contains("l OK"));
    assert!(imap.cmd("n", "NOOP").await.contains("n OK"));
    admin.remove_app_password(&who, max.id, "Phone").await.expect("revoke");
    // The announcement travels through PostgreSQL: commands before it arrives still pass.
    let mut ended = None;
    for i in 0..100 {
        imap.send(&format!("n{i} NOOP\r\n")).await;
        let line = imap.line().await;
        if line.starts_with("* BYE") {
            ended = Some(line);
            break;
        }
        assert!(line.starts_with(&format!("n{i} OK")), "{line}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ended = ended.expect("node B ended the session within 10 s");
    assert!(ended.contains("revoked"), "{ended}");
    a.server.shutdown().await;
    b.server.shutdown().await;
}
