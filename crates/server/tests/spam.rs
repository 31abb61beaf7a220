//! Spam filtering with a real rspamd (issue 17 part 4, `docs/spam.md`): each test run
//! starts its own rspamd (Debian's `rspamd`) and, for its Bayes statistics, its own
//! `redis-server`, both on 127.0.0.1 ports of their own, from a minimal configuration in
//! a temporary folder. A small Lua rule in that configuration scores every message whose
//! Subject contains `junk-me` with 8 points: between the default Junk (6) and refuse (15)
//! thresholds. GTUBE scores rspamd's own reject score (15).

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::clients::{ImapClient, SmtpClient};
use common::pebble::free_port;
use common::{PASSWORD, TestServer};
use postfach_server::config::{Spam, SpamFailure};
use postfach_store::Scope;
use postfach_store::customers::SpamThresholds;
use postfach_store::mailboxes::MailboxSettings;
use postfach_testdns::{Data, Rr, TestDns};
use postfach_types::{EmailAddress, SpamScore, SpamThreshold};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// The GTUBE test pattern (rspamd refuses it with its reject score).
const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

/// Scores a message 8 when its Subject contains `junk-me`.
const RULES: &str = r#"
rspamd_config:register_symbol({
  name = 'POSTFACH_TEST_JUNK',
  score = 8.0,
  callback = function(task)
    local subject = task:get_header('Subject')
    return subject ~= nil and subject:find('junk%-me') ~= nil
  end
})
"#;

/// A private redis-server and rspamd; both are stopped when this is dropped.
struct Rspamd {
    normal: SocketAddr,
    controller: SocketAddr,
    redis: SocketAddr,
    rspamd: Option<Child>,
    redis_server: Child,
    dir: tempfile::TempDir,
}

impl Rspamd {
    /// Starts both and waits (bounded) until rspamd answers `/ping`.
    async fn start(dns: SocketAddr) -> Rspamd {
        let dir = tempfile::tempdir().expect("temp dir");
        let redis: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let redis_server = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &redis.port().to_string(), "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs (Debian package redis-server)");
        let normal: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let controller: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let d = dir.path().display();
        std::fs::write(dir.path().join("rules.lua"), RULES).expect("rules");
        let config = format!(
            r#"
options {{
  pidfile = "{d}/rspamd.pid";
  dns {{ nameserver = ["{dns}"]; timeout = 1s; retransmits = 1; }}
}}
logging {{ type = "file"; filename = "{d}/rspamd.log"; level = "info"; }}
worker "normal" {{ bind_socket = "{normal}"; count = 1; }}
worker "controller" {{ bind_socket = "{controller}"; count = 1; password = "controller secret"; enable_password = "controller secret"; }}
actions {{ reject = 15; add_header = 6; }}
classifier "bayes" {{
  backend = "redis";
  servers = "{redis}";
  min_tokens = 3;
  min_learns = 1000;
  statfile {{ symbol = "BAYES_HAM"; spam = false; }}
  statfile {{ symbol = "BAYES_SPAM"; spam = true; }}
}}
lua = "{d}/rules.lua";
"#
        );
        let config_path = dir.path().join("rspamd.conf");
        std::fs::write(&config_path, config).expect("config");
        let mut rspamd = Command::new("rspamd");
        rspamd.arg("-f").arg("-c").arg(&config_path).stdout(Stdio::null()).stderr(Stdio::null());
        if is_root() {
            // rspamd drops privileges to a user of its own; as root it must be told to stay.
            rspamd.args(["-u", "root", "-g", "root", "-i"]);
        }
        let rspamd = rspamd.spawn().expect("rspamd runs (Debian package rspamd)");
        let this = Rspamd { normal, controller, redis, rspamd: Some(rspamd), redis_server, dir };
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if http(this.normal, "GET /ping HTTP/1.0\r\n\r\n").await.is_some_and(|r| r.contains("pong")) {
                break;
            }
            assert!(Instant::now() < deadline, "rspamd did not answer within 180 s:\n{}", this.log());
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        this
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("rspamd.log")).unwrap_or_default()
    }

    /// Stops rspamd (redis keeps running).
    fn stop(&mut self) {
        if let Some(mut child) = self.rspamd.take() {
            stop(&mut child);
        }
        // Its workers are separate processes: wait until the port is closed.
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(self.normal).is_ok() {
            assert!(Instant::now() < deadline, "rspamd's worker still answers");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// How many messages the Bayes statistics learnt as spam or ham (`HGET <symbol> learns`).
    async fn learns(&self, symbol: &str) -> u64 {
        let mut stream = tokio::net::TcpStream::connect(self.redis).await.expect("redis");
        stream.write_all(format!("HGET {symbol} learns\r\n").as_bytes()).await.expect("write");
        let mut reader = BufReader::new(stream);
        let mut first = String::new();
        reader.read_line(&mut first).await.expect("read");
        if first.starts_with("$-1") {
            return 0;
        }
        let mut value = String::new();
        reader.read_line(&mut value).await.expect("read");
        value.trim().parse().unwrap_or(0)
    }

    /// Waits (bounded) until `symbol` learnt at least `n` messages.
    async fn wait_learns(&self, symbol: &str, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.learns(symbol).await < n {
            assert!(Instant::now() < deadline, "rspamd did not learn {n} as {symbol}:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn spam(&self, failure: SpamFailure) -> Spam {
        Spam {
            rspamd: postfach_spam::Endpoint::parse(&format!("http://{}", self.normal)).expect("endpoint"),
            controller: Some(postfach_spam::Endpoint::parse(&format!("http://{}", self.controller)).expect("endpoint")),
            password: Some(postfach_types::Secret::new("controller secret".into())),
            failure,
            timeout_secs: 10,
            reject_score: Some(SpamScore::from_hundredths(1500)),
            junk_score: Some(SpamScore::from_hundredths(600)),
        }
    }
}

impl Drop for Rspamd {
    fn drop(&mut self) {
        if let Some(mut child) = self.rspamd.take() {
            stop(&mut child);
        }
        stop(&mut self.redis_server);
    }
}

/// SIGTERM (rspamd's main process then stops its workers), then wait.
fn stop(child: &mut Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// One plain HTTP/1.0 exchange; `None` when nothing answers.
async fn http(addr: SocketAddr, request: &str) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer)).await.ok()?.ok()?;
    Some(answer)
}

fn zones() -> TestDns {
    TestDns::start([Rr::new("sender.test", Data::txt("v=spf1 ip4:127.0.0.1 -all"))])
}

const MAX: &str = "max@acme.example";

fn message(subject: &str, body: &str) -> String {
    format!(
        "From: Sender <a@sender.test>\r\nTo: {MAX}\r\nSubject: {subject}\r\nMessage-ID: <{}@sender.test>\r\n\
         X-Spam-Status: No, score=-100 (the sender's own)\r\nX-Spam-Score: -100\r\n\r\n{body}\r\n",
        rand_id()
    )
}

/// A Message-ID part unique in this run.
fn rand_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    format!("{}.{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Delivers one message to the MX; the final reply.
async fn deliver(ts: &TestServer, message: &str) -> String {
    let (mut c, greeting) = SmtpClient::connect(ts.addr("smtp")).await;
    assert!(greeting.starts_with("220"), "{greeting}");
    assert!(c.cmd("EHLO client.sender.test").await.starts_with("250"));
    let (rcpts, reply) = c.transaction("a@sender.test", &[MAX], message).await;
    assert!(rcpts.iter().all(|r| r.starts_with("250")), "{rcpts:?}");
    c.cmd("QUIT").await;
    reply
}

/// The messages of a folder, as text, oldest first.
async fn folder(ts: &TestServer, name: &str) -> Vec<String> {
    let store = ts.server.store();
    let mailbox = store.mailbox(Scope::Platform, &EmailAddress::parse(MAX).expect("address")).await.expect("mb");
    let folder = store.folder(mailbox.id, name).await.expect("folder").expect("exists");
    let mut out = Vec::new();
    for message in store.messages(mailbox.id, folder.id).await.expect("messages") {
        let blob = ts.server.blobs().get(&message.blob).await.expect("blob");
        out.push(String::from_utf8_lossy(&blob).into_owned());
    }
    out
}

/// The values of every `name:` field of a stored message's header.
fn fields(message: &str, name: &str) -> Vec<String> {
    let header = message.split("\r\n\r\n").next().unwrap_or_default();
    header
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

async fn set_thresholds(ts: &TestServer, reject: SpamThreshold, junk: SpamThreshold) {
    let customer = ts.customer().await;
    ts.server.store().set_customer_spam(customer, SpamThresholds { reject, junk }).await.expect("thresholds");
}

async fn start_server(dns: &TestDns, spam: Spam) -> TestServer {
    let resolver = dns.addr();
    let ts = TestServer::start_with(|c| {
        c.dns.resolver = Some(resolver);
        c.security.allow_plaintext_auth = true;
        c.spam = Some(spam);
    })
    .await;
    ts.mailbox(MAX, MailboxSettings { tls_required: false, ..Default::default() }).await;
    ts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rspamd_checks_decide_and_learn() {
    let dns = zones();
    let mut rspamd = Rspamd::start(dns.addr()).await;
    let ts = start_server(&dns, rspamd.spam(SpamFailure::Accept)).await;

    // GTUBE: refused at the end of DATA with a text a person can act on.
    let reply = deliver(&ts, &message("hello", GTUBE)).await;
    assert!(reply.starts_with("550 5.7.1 Message refused as spam"), "{reply}");

    // A clean message: INBOX, with our fields only (the sender's own are gone).
    let reply = deliver(&ts, &message("garden party", "cake and lemonade for everyone next weekend")).await;
    assert!(reply.starts_with("250"), "{reply}");
    let inbox = folder(&ts, "INBOX").await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(fields(&inbox[0], "X-Spam-Status"), ["No, score=0.00"]);
    assert_eq!(fields(&inbox[0], "X-Spam-Score"), ["0.00"]);

    // Between the Junk and the refuse threshold: Junk, marked as spam.
    let reply = deliver(&ts, &message("please junk-me", "cheap watches and more cheap watches today")).await;
    assert!(reply.starts_with("250"), "{reply}");
    let junk = folder(&ts, "Junk").await;
    assert_eq!(junk.len(), 1);
    assert_eq!(fields(&junk[0], "X-Spam-Status"), ["Yes, score=8.00"]);
    assert_eq!(fields(&junk[0], "X-Spam-Score"), ["8.00"]);

    // The customer's own thresholds: Junk only from 9 (the same message stays in the
    // INBOX), then refuse from 7 (refused).
    set_thresholds(&ts, SpamThreshold::Default, SpamThreshold::At(SpamScore::from_hundredths(900))).await;
    let reply = deliver(&ts, &message("please junk-me", "cheap watches, the second offer")).await;
    assert!(reply.starts_with("250"), "{reply}");
    assert_eq!(folder(&ts, "INBOX").await.len(), 2);
    assert_eq!(fields(&folder(&ts, "INBOX").await[1], "X-Spam-Status"), ["No, score=8.00"]);
    set_thresholds(&ts, SpamThreshold::At(SpamScore::from_hundredths(700)), SpamThreshold::Never).await;
    let reply = deliver(&ts, &message("please junk-me", "cheap watches, the third offer")).await;
    assert!(reply.starts_with("550 5.7.1"), "{reply}");
    // `none` for both: even GTUBE is delivered (to the INBOX).
    set_thresholds(&ts, SpamThreshold::Never, SpamThreshold::Never).await;
    assert!(deliver(&ts, &message("hello", GTUBE)).await.starts_with("250"));
    assert_eq!(folder(&ts, "INBOX").await.len(), 3);
    set_thresholds(&ts, SpamThreshold::Default, SpamThreshold::Default).await;

    // Learning: MOVE of the clean message into Junk is spam, MOVE of the Junk message
    // out of it is ham, COPY into Junk is spam too. The commands answer at once.
    let mut imap = ImapClient::connect(ts.addr("imap")).await;
    imap.line().await;
    assert!(imap.cmd("a", &format!("LOGIN {MAX} \"{PASSWORD}\"")).await.contains("a OK"));
    assert!(imap.cmd("b", "SELECT INBOX").await.contains("b OK"));
    assert!(imap.cmd("c", "UID MOVE 1 Junk").await.contains("c OK"));
    rspamd.wait_learns("BAYES_SPAM", 1).await;
    assert!(imap.cmd("d", "SELECT Junk").await.contains("d OK"));
    // The Junk folder holds the junk-me message (UID 1) and the moved one (UID 2).
    assert!(imap.cmd("e", "UID MOVE 1 INBOX").await.contains("e OK"));
    rspamd.wait_learns("BAYES_HAM", 1).await;
    assert!(imap.cmd("f", "SELECT INBOX").await.contains("f OK"));
    assert!(imap.cmd("g", "UID COPY 2 Junk").await.contains("g OK"));
    rspamd.wait_learns("BAYES_SPAM", 2).await;
    // Out of Junk into the Trash is deleting, not ham: after it, one more message is
    // learnt as spam (the learner works in order), and still no further ham.
    let reply = deliver(&ts, &message("lottery", "you have won the lottery, send your bank details")).await;
    assert!(reply.starts_with("250"), "{reply}");
    assert!(imap.cmd("h", "SELECT Junk").await.contains("h OK"));
    let ham_before = rspamd.learns("BAYES_HAM").await;
    assert!(imap.cmd("i", "UID MOVE 1:* Trash").await.contains("i OK"));
    assert!(imap.cmd("j", "SELECT INBOX").await.contains("j OK"));
    let lottery = imap.cmd("k", "UID SEARCH SUBJECT lottery").await;
    let uid = lottery.lines().find_map(|l| l.strip_prefix("* SEARCH ")).expect("found").trim().to_string();
    assert!(imap.cmd("l", &format!("UID MOVE {uid} Junk")).await.contains("l OK"));
    rspamd.wait_learns("BAYES_SPAM", 3).await;
    assert_eq!(rspamd.learns("BAYES_HAM").await, ham_before);
    imap.cmd("m", "LOGOUT").await;

    // rspamd stopped: fail open, the message marked as not checked.
    rspamd.stop();
    let reply = deliver(&ts, &message("while rspamd is down", "nobody checks this")).await;
    assert!(reply.starts_with("250"), "{reply}");
    let inbox = folder(&ts, "INBOX").await;
    let last = inbox.last().expect("delivered");
    assert!(last.contains("while rspamd is down"));
    assert_eq!(fields(last, "X-Spam-Status"), ["unchecked (the spam filter could not be reached)"]);
    assert!(fields(last, "X-Spam-Score").is_empty());
    let metrics = postfach_metrics::render(None);
    assert!(metrics.contains("postfach_spam_checks_total{result=\"unreachable\"} "), "{metrics}");
    assert!(!metrics.contains("postfach_spam_checks_total{result=\"unreachable\"} 0\n"));
    assert!(!metrics.contains("postfach_spam_checks_total{result=\"rejected\"} 0\n"));
    assert!(!metrics.contains("postfach_spam_learns_total{kind=\"spam\",result=\"learnt\"} 0\n"));

    // The operator's failure = "defer": 451 4.7.1, nothing stored.
    let defer = start_server(&dns, rspamd.spam(SpamFailure::Defer)).await;
    let reply = deliver(&defer, &message("deferred", "try again later")).await;
    assert!(reply.starts_with("451 4.7.1"), "{reply}");
    assert!(folder(&defer, "INBOX").await.is_empty());
    drop(rspamd);
}

/// Sieve after the spam decision (invariant 16): a message rspamd scored into Junk stays
/// in Junk under the implicit keep of a script that does not file it, and a `fileinto`
/// takes it elsewhere; a clean message the script does not file stays in the INBOX.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sieve_keeps_junk_in_junk_unless_it_files_it() {
    let dns = zones();
    let rspamd = Rspamd::start(dns.addr()).await;
    let ts = start_server(&dns, rspamd.spam(SpamFailure::Accept)).await;
    let store = ts.server.store();
    let max = store.mailbox(Scope::Platform, &EmailAddress::parse(MAX).expect("address")).await.expect("mb");
    let admin = postfach_admin::Admin::new(store.clone(), ts.server.authenticator().clone(), None);
    let who = postfach_admin::Who::Mailbox { mailbox: max.clone() };
    let script = "require [\"fileinto\", \"mailbox\"];\n\
        if header :contains \"subject\" \"archive-me\" { fileinto :create \"Archive\"; }\n";
    admin.put_script(&who, max.id, "rules", script).await.expect("script stored");
    admin.activate_script(&who, max.id, Some("rules")).await.expect("script active");

    let reply = deliver(&ts, &message("please junk-me", "cheap watches for the implicit keep")).await;
    assert!(reply.starts_with("250"), "{reply}");
    let reply = deliver(&ts, &message("please junk-me archive-me", "cheap watches for the archive")).await;
    assert!(reply.starts_with("250"), "{reply}");
    let reply = deliver(&ts, &message("garden party", "cake and lemonade for everyone next weekend")).await;
    assert!(reply.starts_with("250"), "{reply}");

    let junk = folder(&ts, "Junk").await;
    assert_eq!(junk.len(), 1, "{junk:#?}");
    assert!(junk[0].contains("Subject: please junk-me\r\n"), "{}", junk[0]);
    assert_eq!(fields(&junk[0], "X-Spam-Status"), ["Yes, score=8.00"]);
    let archive = folder(&ts, "Archive").await;
    assert_eq!(archive.len(), 1, "{archive:#?}");
    assert!(archive[0].contains("Subject: please junk-me archive-me\r\n"), "{}", archive[0]);
    let inbox = folder(&ts, "INBOX").await;
    assert_eq!(inbox.len(), 1, "{inbox:#?}");
    assert!(inbox[0].contains("Subject: garden party\r\n"), "{}", inbox[0]);
    ts.server.shutdown().await;
    drop(rspamd);
}
