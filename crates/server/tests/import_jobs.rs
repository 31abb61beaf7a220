//! Moving in from the old provider through the JSON API: a real Dovecot (Debian's
//! dovecot-imapd, `postfach-testdovecot`) on loopback with a few dozen messages in
//! several folders; the job is started with POST, followed with GET until done, and the
//! messages are read back over IMAPS. A job the node left running when it stopped is
//! shown as interrupted after the restart and resumed with the password, copying only
//! what is new. With `[import] allow_private_targets` off, the loopback server is refused
//! in words. On SQLite and PostgreSQL.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::clients::run;
use common::{PASSWORD, TestServer};
use postfach_server::config::Config;
use postfach_store::Scope;
use postfach_store::import_jobs::JobSource;
use postfach_store::mailboxes::MailboxSettings;
use postfach_testdovecot::{Dovecot, Folders, OLD_LOGIN, OLD_PASSWORD, READ_ALL, fill, parse_folders, python_imap};
use postfach_types::UnixTime;
use serde_json::{Value, json};

const ADDRESS: &str = "max@acme.example";

/// The old server's folders: a few dozen messages, a `\Sent` folder and a nested one.
const FOLDERS: [(&str, usize); 3] = [("INBOX", 20), ("Sent", 8), ("Projects/2024", 6)];

fn allow_dovecot(dovecot: &Dovecot) -> impl FnOnce(&mut Config) {
    let ca = dovecot.ca();
    move |c: &mut Config| {
        c.import.allow_private_targets = true;
        c.import.ca_file = Some(ca);
    }
}

/// A new API token of the server's customer `acme`.
async fn token(t: &TestServer) -> String {
    let customer = t.customer().await;
    let token = postfach_auth::tokens::new_api_token();
    let hash = postfach_auth::tokens::token_hash(token.expose());
    t.server.store().create_api_token(customer, "script", &hash).await.expect("token");
    token.expose().clone()
}

/// An API call with curl: (HTTP status, JSON answer).
async fn api(t: &TestServer, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("https://localhost:{}/api/v1{path}", t.port("https"));
    let mut command = Command::new("curl");
    command.args(["-sS", "-w", "\n%{http_code}", "-X", method, "--cacert"]).arg(t.cert());
    command.args(["-H", &format!("Authorization: Bearer {token}")]);
    if let Some(body) = body {
        command.args(["-H", "Content-Type: application/json", "--data-binary", &body.to_string()]);
    }
    let output = run(command.arg(&url)).await;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or_else(|| panic!("curl: {text}"));
    let json = if body.is_empty() { Value::Null } else { serde_json::from_str(body).expect("JSON answer") };
    (status.parse().expect("status"), json)
}

fn start_body(dovecot: &Dovecot, password: &str) -> Value {
    json!({ "host": "localhost", "port": dovecot.imaps, "security": "tls", "login": OLD_LOGIN, "password": password })
}

/// Reads the mailbox's jobs until the newest one has ended; returns it.
async fn wait_until_ended(t: &TestServer, token: &str, mailbox: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, jobs) = api(t, token, "GET", &format!("/mailboxes/{mailbox}/imports"), None).await;
        assert_eq!(status, 200, "{jobs}");
        let newest = jobs[0].clone();
        if !["queued", "running"].contains(&newest["state"].as_str().expect("state")) {
            return newest;
        }
        assert!(Instant::now() < deadline, "the import did not end: {newest}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every message here, read over IMAPS as the mailbox's user.
fn read_back(t: &TestServer) -> Folders {
    parse_folders(&python_imap(t.port("imaps"), &t.cert(), ADDRESS, PASSWORD, READ_ALL))
}

/// The old server's messages are all here, in folders of the same name (the empty
/// `\Trash` folder aside, which becomes ours).
fn assert_all_here(old: &Folders, ours: &Folders) {
    for (name, messages) in old.iter().filter(|(_, m)| !m.is_empty()) {
        assert_eq!(ours.get(name), Some(messages), "{name}: dates, flags and bytes");
    }
}

async fn moves_in_through_the_api(database: Option<String>) {
    let old_dir = tempfile::tempdir().expect("temp dir");
    let dovecot = Dovecot::start(old_dir.path());
    fill(&dovecot, &FOLDERS, 1);
    let old = parse_folders(&dovecot.python(READ_ALL));
    let data = tempfile::tempdir().expect("data dir");
    let t = match &database {
        None => TestServer::start_with(allow_dovecot(&dovecot)).await,
        Some(url) => TestServer::start_node(url, data.path(), allow_dovecot(&dovecot)).await,
    };
    let max = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    let token = token(&t).await;
    let path = format!("/mailboxes/{}/imports", max.id);

    let (status, job) = api(&t, &token, "POST", &path, Some(start_body(&dovecot, OLD_PASSWORD))).await;
    assert_eq!(status, 202, "{job}");
    assert_eq!((job["state"].as_str(), job["login"].as_str()), (Some("queued"), Some(OLD_LOGIN)));
    assert!(!job.to_string().contains("secret"), "the password is never shown: {job}");
    let done = wait_until_ended(&t, &token, max.id.get()).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["copied"], 34, "{done}");
    assert!(done["result"].as_str().expect("result").contains("34 messages copied"), "{done}");
    assert_all_here(&old, &read_back(&t));

    // A wrong password: the job fails with the old server's refusal in words.
    let (status, _) = api(&t, &token, "POST", &path, Some(start_body(&dovecot, "wrong"))).await;
    assert_eq!(status, 202);
    let failed = wait_until_ended(&t, &token, max.id.get()).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(failed["result"].as_str().expect("result").contains("refused the login"), "{failed}");

    // Bad input is refused before any job exists.
    let (status, refused) =
        api(&t, &token, "POST", &path, Some(json!({ "host": "a b", "login": OLD_LOGIN, "password": "x" }))).await;
    assert_eq!((status, refused["code"].as_str()), (422, Some("invalid_server")), "{refused}");
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moves_in_through_the_api_on_sqlite() {
    moves_in_through_the_api(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moves_in_through_the_api_on_postgres() {
    moves_in_through_the_api(Some(common::postgres_database().await)).await;
}

/// Customer-given servers on loopback are refused unless the operator allows them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_server_is_refused_by_default() {
    let t = TestServer::start().await;
    let max = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    let token = token(&t).await;
    let body = json!({ "host": "localhost", "port": 993, "login": OLD_LOGIN, "password": "x" });
    let (status, refused) = api(&t, &token, "POST", &format!("/mailboxes/{}/imports", max.id), Some(body)).await;
    assert_eq!((status, refused["code"].as_str()), (422, Some("server_not_public")), "{refused}");
    assert!(refused["message"].as_str().expect("message").contains("not a server on the internet"), "{refused}");
    let (_, jobs) = api(&t, &token, "GET", &format!("/mailboxes/{}/imports", max.id), None).await;
    assert_eq!(jobs, json!([]), "a refused start leaves no job");
    t.server.shutdown().await;
}

/// A job left running by a node that stopped is interrupted after its restart, and
/// started again with the password it copies only the messages that are new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_job_is_shown_and_resumed() {
    let old_dir = tempfile::tempdir().expect("temp dir");
    let dovecot = Dovecot::start(old_dir.path());
    fill(&dovecot, &FOLDERS, 1);
    let first = TestServer::start_with(allow_dovecot(&dovecot)).await;
    let max = first.mailbox(ADDRESS, MailboxSettings::default()).await;
    let token = token(&first).await;
    let path = format!("/mailboxes/{}/imports", max.id);
    let (status, _) = api(&first, &token, "POST", &path, Some(start_body(&dovecot, OLD_PASSWORD))).await;
    assert_eq!(status, 202);
    assert_eq!(wait_until_ended(&first, &token, max.id.get()).await["copied"], 34);

    // New mail at the old provider; then a job that this node was running when it died.
    fill(&dovecot, &[("INBOX", 5)], 1000);
    let source = JobSource { host: "localhost".into(), port: dovecot.imaps, starttls: false, login: OLD_LOGIN.into() };
    let store = first.server.store();
    let cut = store
        .create_import_job(Scope::Platform, max.id, &source, "acme", &first.config.cluster.node, UnixTime::now())
        .await
        .expect("job");
    store.start_import_job(cut.id).await.expect("running");
    let database = first.config.database.clone();
    let TestServer { server, config, dir } = first;
    server.shutdown().await;

    let again = TestServer::start_node(&database, &config.data_dir, allow_dovecot(&dovecot)).await;
    let (_, jobs) = api(&again, &token, "GET", &path, None).await;
    assert_eq!(jobs[0]["id"], cut.id.get(), "{jobs}");
    assert_eq!(jobs[0]["state"], "interrupted", "{jobs}");
    let (status, _) = api(&again, &token, "POST", &path, Some(start_body(&dovecot, OLD_PASSWORD))).await;
    assert_eq!(status, 202, "an interrupted job does not block a new one");
    let resumed = wait_until_ended(&again, &token, max.id.get()).await;
    assert_eq!((resumed["state"].as_str(), resumed["copied"].as_u64()), (Some("done"), Some(5)), "{resumed}");
    assert_all_here(&parse_folders(&dovecot.python(READ_ALL)), &read_back(&again));
    again.server.shutdown().await;
    drop(dir);
}

/// A job of a node that is gone for good (its lease ran out) does not block its mailbox:
/// the leader's upkeep shows it as interrupted, and a new start takes its place at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_a_node_that_is_gone_stops_blocking_the_mailbox() {
    use postfach_store::import_jobs::JOB_LEASE_SECS;
    let allow_loopback = |c: &mut Config| c.import.allow_private_targets = true;
    let first = TestServer::start_with(allow_loopback).await;
    let max = first.mailbox(ADDRESS, MailboxSettings::default()).await;
    let token = token(&first).await;
    let path = format!("/mailboxes/{}/imports", max.id);
    let gone = postfach_types::NodeName::parse("node-gone").expect("node");
    let long_ago = UnixTime(UnixTime::now().0 - 2 * JOB_LEASE_SECS);
    let source = JobSource { host: "localhost".into(), port: 993, starttls: false, login: OLD_LOGIN.into() };
    let stale = async |t: &TestServer| {
        t.server
            .store()
            .create_import_job(Scope::Platform, max.id, &source, "acme", &gone, long_ago)
            .await
            .expect("job")
    };

    // Left by node-gone; this node's upkeep (its first round runs at start) marks it.
    let abandoned = stale(&first).await;
    let database = first.config.database.clone();
    let TestServer { server, config, dir } = first;
    server.shutdown().await;
    let again = TestServer::start_node(&database, &config.data_dir, allow_loopback).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, jobs) = api(&again, &token, "GET", &path, None).await;
        assert_eq!(jobs[0]["id"], abandoned.id.get(), "{jobs}");
        if jobs[0]["state"] == "interrupted" {
            break;
        }
        assert!(Instant::now() < deadline, "the abandoned job is still shown as {}", jobs[0]["state"]);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Another one left by node-gone: a new start does not wait for the upkeep.
    let blocking = stale(&again).await;
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let body = json!({ "host": "localhost", "port": silent.local_addr().expect("addr").port(), "security": "tls",
                       "login": OLD_LOGIN, "password": OLD_PASSWORD });
    let (status, started) = api(&again, &token, "POST", &path, Some(body)).await;
    assert_eq!(status, 202, "{started}");
    let (_, jobs) = api(&again, &token, "GET", &path, None).await;
    assert_eq!(jobs[0]["id"], started["id"], "{jobs}");
    assert_eq!((jobs[1]["id"].as_i64(), jobs[1]["state"].as_str()), (Some(blocking.id.get()), Some("interrupted")));
    again.server.shutdown().await;
    drop((dir, silent));
}
