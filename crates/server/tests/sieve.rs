//! Sieve at final delivery, end to end with the whole server in-process (docs/sieve.md):
//! the recipient's script runs for every way mail reaches a mailbox (the MX, local
//! submission, an alias, an alias domain, the queue's local delivery); `redirect` leaves
//! the customer only when the operator allows it, through the queue from the mailbox's
//! own address; a mailbox whose sending is switched off sends no vacation reply and no
//! redirect; old vacation replies are forgotten by the upkeep. Each on SQLite and
//! PostgreSQL. Mail is sent with Python's smtplib; what leaves arrives at a local sink
//! SMTP server found through a real DNS server (TestDns).

mod common;
#[path = "../../outbound/tests/support/sink.rs"]
mod sink;

use std::time::{Duration, Instant};

use common::{PASSWORD, TestServer, postgres_database};
use postfach_server::config::{Config, SieveRedirect};
use postfach_store::mailboxes::{Mailbox, MailboxSettings, SettingsChange};
use postfach_store::{Scope, Store};
use postfach_testdns::{Data, Rr, TestDns};
use postfach_types::{DomainName, EmailAddress};
use sink::{Behaviour, Sink};

const WAIT: Duration = Duration::from_secs(30);

fn address(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("address")
}

/// outside.test's MX is the sink; pass.test may send from 127.0.0.1.
fn zone() -> TestDns {
    TestDns::start([
        Rr::new("outside.test", Data::Mx(10, "mx.outside.test".into())),
        Rr::new("mx.outside.test", Data::A("127.0.0.1".parse().expect("ip"))),
        Rr::new("pass.test", Data::txt("v=spf1 ip4:127.0.0.1 -all")),
    ])
}

/// Which database a scenario runs on.
enum Backend {
    Sqlite,
    Postgres,
}

/// A server on `backend` sending to `sink`, with `redirect` as `[sieve] redirect`, the
/// mailboxes max and erika in acme.example, the alias info@ → erika and the alias domain
/// acme-alias.example.
async fn start(
    backend: Backend,
    dir: &tempfile::TempDir,
    dns: &TestDns,
    sink: &Sink,
    redirect: SieveRedirect,
) -> TestServer {
    let (resolver, port) = (dns.addr(), sink.port());
    let adjust = move |c: &mut Config| {
        c.dns.resolver = Some(resolver);
        c.outbound.smtp_port = port;
        c.sieve.redirect = redirect;
    };
    let t = match backend {
        Backend::Sqlite => TestServer::start_with(adjust).await,
        Backend::Postgres => TestServer::start_node(&postgres_database().await, dir.path(), adjust).await,
    };
    t.mailbox("max@acme.example", MailboxSettings::default()).await;
    t.mailbox("erika@acme.example", MailboxSettings::default()).await;
    let store = t.server.store();
    store
        .add_alias(Scope::Platform, &address("info@acme.example"), &address("erika@acme.example"))
        .await
        .expect("alias");
    let (alias, acme) =
        (DomainName::parse("acme-alias.example").expect("d"), DomainName::parse("acme.example").expect("d"));
    store.add_domain_alias(Scope::Platform, &alias, &acme, true).await.expect("alias domain");
    t
}

async fn mailbox(t: &TestServer, a: &str) -> Mailbox {
    t.server.store().mailbox(Scope::Platform, &address(a)).await.expect("mailbox")
}

/// Stores `script` as the active script of `a`.
async fn activate(t: &TestServer, a: &str, script: &str) {
    let mailbox = mailbox(t, a).await;
    let admin = postfach_admin::Admin::new(t.server.store().clone(), t.server.authenticator().clone(), None);
    let who = postfach_admin::Who::Mailbox { mailbox: mailbox.clone() };
    admin.put_script(&who, mailbox.id, "rules", script).await.expect("script stored");
    admin.activate_script(&who, mailbox.id, Some("rules")).await.expect("script active");
}

/// Sends one message with smtplib: over the MX from sender@pass.test, or (`login`) as
/// max@acme.example over submission with STARTTLS. Panics unless it was accepted.
async fn send(t: &TestServer, login: bool, to: &[&str], subject: &str) {
    let script = r#"
import smtplib, ssl, sys, json
port, login, cert, sender, rcpts, subject, password = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3], sys.argv[4], json.loads(sys.argv[5]), sys.argv[6], sys.argv[7]
message = "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@pass.test>\r\n\r\nHello.\r\n" % (sender, rcpts[0], subject, subject.replace(" ", "."))
s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.pass.test")
if login:
    s.starttls(context=ssl.create_default_context(cafile=cert))
    s.login(sender, password)
s.sendmail(sender, rcpts, message)
s.quit()
print("SENT")
"#;
    let (service, sender) = if login { ("submission", "max@acme.example") } else { ("smtp", "sender@pass.test") };
    let rcpts = format!("[{}]", to.iter().map(|r| format!("\"{r}\"")).collect::<Vec<_>>().join(","));
    let mut python = std::process::Command::new("python3");
    python.args(["-c", script, &t.port(service).to_string(), if login { "1" } else { "0" }]);
    python.arg(t.cert()).args([sender, &rcpts, subject, PASSWORD]);
    let output = common::clients::run(&mut python).await;
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "SENT", "{}", String::from_utf8_lossy(&output.stderr));
}

/// The subjects of the messages in folder `name` of `a`, once there are `n` (bounded).
async fn subjects(t: &TestServer, a: &str, name: &str, n: usize) -> Vec<String> {
    let store: &Store = t.server.store();
    let mailbox = mailbox(t, a).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let mut found = Vec::new();
        if let Some(folder) = store.folder(mailbox.id, name).await.expect("folder") {
            for m in store.messages(mailbox.id, folder.id).await.expect("messages") {
                let text = String::from_utf8_lossy(&t.server.blobs().get(&m.blob).await.expect("blob")).into_owned();
                let subject = text.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or_default();
                found.push(subject.to_string());
            }
        }
        if found.len() >= n {
            return found;
        }
        assert!(Instant::now() < deadline, "{} of {n} messages in {name}: {found:?}", found.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (bounded) until the outbound queue is empty: whatever was to leave has left.
async fn queue_empty(t: &TestServer) {
    let deadline = Instant::now() + WAIT;
    while !t.server.store().queue_list(Scope::Platform).await.expect("queue").is_empty() {
        assert!(Instant::now() < deadline, "the queue never emptied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A counter of `postfach_sieve_actions_total`.
fn actions(action: &str) -> f64 {
    let text = postfach_metrics::render(None);
    let series = format!("postfach_sieve_actions_total{{action=\"{action}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&series)?.parse().ok()).expect("the series is exported")
}

const INVOICES: &str = "require [\"fileinto\", \"mailbox\"];\n\
    if header :contains \"subject\" \"invoice\" { fileinto :create \"Invoices\"; }\n";

/// The MX, local submission (to the mailbox, an alias and the alias domain), and the
/// queue's local delivery (a submission that also goes outside) all run erika's script:
/// every invoice is filed, the rest is kept in the INBOX.
async fn every_way_in_runs_the_script(backend: Backend) {
    let (dns, sink, dir) = (zone(), Sink::start(Behaviour::Accept), tempfile::tempdir().expect("dir"));
    let t = start(backend, &dir, &dns, &sink, SieveRedirect::Customer).await;
    activate(&t, "erika@acme.example", INVOICES).await;
    let filed_before = actions("fileinto");

    send(&t, false, &["erika@acme.example"], "invoice over the MX").await;
    send(&t, true, &["erika@acme.example"], "invoice submitted").await;
    send(&t, true, &["info@acme.example"], "invoice to the alias").await;
    send(&t, true, &["erika@acme-alias.example"], "invoice to the alias domain").await;
    send(&t, true, &["erika@acme.example", "friend@outside.test"], "invoice through the queue").await;
    send(&t, true, &["erika@acme.example"], "lunch").await;

    let invoices = subjects(&t, "erika@acme.example", "Invoices", 5).await;
    assert_eq!(
        invoices,
        [
            "invoice over the MX",
            "invoice submitted",
            "invoice to the alias",
            "invoice to the alias domain",
            "invoice through the queue"
        ]
    );
    assert_eq!(subjects(&t, "erika@acme.example", "INBOX", 1).await, ["lunch"]);
    assert_eq!(sink.arrived(1, WAIT).await.len(), 1, "the outside recipient got its copy");
    assert!(actions("fileinto") - filed_before >= 5.0, "the metric counts what the scripts filed");
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_way_in_runs_the_script_sqlite() {
    every_way_in_runs_the_script(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_way_in_runs_the_script_postgres() {
    every_way_in_runs_the_script(Backend::Postgres).await;
}

const REDIRECT: &str = "redirect \"friend@outside.test\";\n";

/// The default (`[sieve] redirect = "customer"`): a redirect to another mailbox of the
/// customer delivers there, one to the outside is refused and the message kept.
async fn redirect_stays_within_the_customer(backend: Backend) {
    let (dns, sink, dir) = (zone(), Sink::start(Behaviour::Accept), tempfile::tempdir().expect("dir"));
    let t = start(backend, &dir, &dns, &sink, SieveRedirect::Customer).await;
    activate(&t, "erika@acme.example", "redirect \"max@acme.example\";\n").await;
    send(&t, false, &["erika@acme.example"], "for max").await;
    assert_eq!(subjects(&t, "max@acme.example", "INBOX", 1).await, ["for max"]);
    assert!(subjects(&t, "erika@acme.example", "INBOX", 0).await.is_empty());

    let refused_before = actions("refused");
    activate(&t, "erika@acme.example", REDIRECT).await;
    send(&t, true, &["erika@acme.example"], "kept here").await;
    assert_eq!(subjects(&t, "erika@acme.example", "INBOX", 1).await, ["kept here"]);
    queue_empty(&t).await;
    assert!(sink.received().is_empty(), "nothing left the customer");
    assert!(actions("refused") > refused_before);
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redirect_stays_within_the_customer_sqlite() {
    redirect_stays_within_the_customer(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redirect_stays_within_the_customer_postgres() {
    redirect_stays_within_the_customer(Backend::Postgres).await;
}

/// `[sieve] redirect = "any"`: the copy leaves through the queue from erika's own address
/// with `Delivered-To:` in front and the message otherwise unchanged, nothing is kept.
/// With erika's sending switched off neither a redirect nor a vacation reply leaves, and
/// the message is kept.
async fn redirect_anywhere_and_the_sending_switch(backend: Backend) {
    let (dns, sink, dir) = (zone(), Sink::start(Behaviour::Accept), tempfile::tempdir().expect("dir"));
    let t = start(backend, &dir, &dns, &sink, SieveRedirect::Any).await;
    activate(&t, "erika@acme.example", REDIRECT).await;
    send(&t, false, &["erika@acme.example"], "passed on").await;
    let received = sink.arrived(1, WAIT).await;
    assert_eq!(received[0].mail_from, "erika@acme.example", "the mailbox's own address is the envelope sender");
    assert_eq!(received[0].rcpt_to, ["friend@outside.test"]);
    let text = received[0].text();
    assert!(text.contains("Delivered-To: erika@acme.example\r\n"), "{text}");
    assert!(text.contains("Subject: passed on\r\n") && text.contains("From: <sender@pass.test>"), "{text}");
    assert!(!text.contains("Return-Path:"), "{text}");
    assert!(subjects(&t, "erika@acme.example", "INBOX", 0).await.is_empty(), "a redirect without :copy keeps nothing");

    let switch_off = SettingsChange { submission: Some(false), ..Default::default() };
    t.server
        .store()
        .set_mailbox_settings(Scope::Platform, &address("erika@acme.example"), switch_off)
        .await
        .expect("off");
    let refused_before = actions("refused");
    send(&t, false, &["erika@acme.example"], "not passed on").await;
    activate(&t, "erika@acme.example", "require \"vacation\";\nvacation :days 1 \"I am away.\";\n").await;
    send(&t, false, &["erika@acme.example"], "no reply").await;
    assert_eq!(subjects(&t, "erika@acme.example", "INBOX", 2).await, ["not passed on", "no reply"]);
    queue_empty(&t).await;
    assert_eq!(sink.received().len(), 1, "nothing more left while sending is off");
    assert!(actions("refused") - refused_before >= 2.0);
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redirect_anywhere_and_the_sending_switch_sqlite() {
    redirect_anywhere_and_the_sending_switch(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redirect_anywhere_and_the_sending_switch_postgres() {
    redirect_anywhere_and_the_sending_switch(Backend::Postgres).await;
}

/// A vacation reply to a mailbox here (local submission) is delivered into the
/// sender's INBOX: the reply goes through the queue like any message of the mailbox.
async fn vacation_reply_to_a_local_sender(backend: Backend) {
    let (dns, sink, dir) = (zone(), Sink::start(Behaviour::Accept), tempfile::tempdir().expect("dir"));
    let t = start(backend, &dir, &dns, &sink, SieveRedirect::Customer).await;
    activate(&t, "erika@acme.example", "require \"vacation\";\nvacation :subject \"Away\" \"I am away.\";\n").await;
    send(&t, true, &["erika@acme.example"], "are you there").await;
    assert_eq!(subjects(&t, "erika@acme.example", "INBOX", 1).await, ["are you there"]);
    assert_eq!(subjects(&t, "max@acme.example", "INBOX", 1).await, ["Away"]);
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn vacation_reply_to_a_local_sender_sqlite() {
    vacation_reply_to_a_local_sender(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn vacation_reply_to_a_local_sender_postgres() {
    vacation_reply_to_a_local_sender(Backend::Postgres).await;
}

/// The leader's upkeep forgets vacation replies older than the longest `:days`
/// (`postfach_filter::VACATION_MEMORY_DAYS`) and keeps younger ones.
async fn the_upkeep_forgets_old_vacation_replies(database: String, dir: &tempfile::TempDir) {
    let (dns, sink) = (zone(), Sink::start(Behaviour::Accept));
    let (resolver, port) = (dns.addr(), sink.port());
    let adjust = move |c: &mut Config| {
        c.dns.resolver = Some(resolver);
        c.outbound.smtp_port = port;
    };
    let t = TestServer::start_node(&database, dir.path(), adjust).await;
    let erika = t.mailbox("erika@acme.example", MailboxSettings::default()).await;
    let store = t.server.store();
    assert!(store.vacation_reply_due(erika.id, "old@pass.test", "h", 7).await.expect("due"));
    assert!(store.vacation_reply_due(erika.id, "young@pass.test", "h", 7).await.expect("due"));
    t.server.shutdown().await;

    // Age the replies (the store has no way to write the past), then start again.
    let days = i64::from(postfach_filter::VACATION_MEMORY_DAYS);
    let aged = [("old@pass.test", days + 1), ("young@pass.test", days - 1)];
    let age = "UPDATE vacation_replies SET replied_at = replied_at - $1 WHERE sender = $2";
    let backend = if database.starts_with("sqlite") {
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&database).await.expect("sqlite");
        for (sender, days_ago) in aged {
            sqlx::query(age).bind(days_ago * 86_400).bind(sender).execute(&mut conn).await.expect("aged");
        }
        "sqlite"
    } else {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&database).await.expect("postgres");
        for (sender, days_ago) in aged {
            sqlx::query(age).bind(days_ago * 86_400).bind(sender).execute(&mut conn).await.expect("aged");
        }
        "postgres"
    };
    let t = TestServer::start_node(&database, dir.path(), adjust).await;
    let store = t.server.store();
    // Due again only once forgotten: asking with `:days` far longer than the age.
    let deadline = Instant::now() + WAIT;
    loop {
        if store.vacation_reply_due(erika.id, "old@pass.test", "h", 10_000).await.expect("due") {
            break;
        }
        assert!(Instant::now() < deadline, "the old reply was never forgotten ({backend})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!store.vacation_reply_due(erika.id, "young@pass.test", "h", 10_000).await.expect("due"), "kept");
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_upkeep_forgets_old_vacation_replies_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let database = format!("sqlite://{}", dir.path().join("postfach.sqlite").display());
    the_upkeep_forgets_old_vacation_replies(database, &dir).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_upkeep_forgets_old_vacation_replies_postgres() {
    let dir = tempfile::tempdir().expect("dir");
    the_upkeep_forgets_old_vacation_replies(postgres_database().await, &dir).await;
}
