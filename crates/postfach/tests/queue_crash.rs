//! The outbound queue with the real `postfach` binary: a message waiting for an outside
//! server survives SIGKILL of the server and is delivered after the restart; the operator
//! sees, retries and removes queued mail with `postfach queue` (with the TLS policy each
//! delivery attempt used).

mod common;

#[path = "../../outbound/tests/support/sink.rs"]
mod sink;

use common::postfach;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use postfach_testdns::{Data, Rr, TestDns};
use sink::{Behaviour, Sink};

const PASSWORD: &str = "violet mango tractor whisper";
const WAIT: Duration = Duration::from_secs(60);

fn ok(config: &Path, args: &[&str], stdin: &str) -> String {
    let out = postfach(config, args, stdin);
    assert!(out.status.success(), "postfach {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

fn queue(config: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(config, &["queue", "list", "--json"], "")).expect("JSON")
}

fn serve(config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_postfach"))
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server")
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Submits a message the way the submission server does, through `Outbound::submit`
/// on the same database and data folder, while the server runs.
fn submit(config_file: &Path, subject: &str) -> String {
    let config = postfach_server::config::Config::load(Some(config_file)).expect("config");
    tokio::runtime::Runtime::new().expect("runtime").block_on(async move {
        let store = postfach_store::Store::open(&config.database).await.expect("store");
        let max = store
            .mailbox(
                postfach_store::Scope::Platform,
                &postfach_types::EmailAddress::parse("max@acme.example").expect("a"),
            )
            .await
            .expect("mailbox");
        let blobs =
            postfach_blob::BlobStore::open(&config.blobs, &config.data_dir, postfach_blob::Namespace::Mailboxes)
                .expect("blobs");
        let spool = postfach_blob::BlobStore::open(&config.blobs, &config.data_dir, postfach_blob::Namespace::Queue)
            .expect("spool");
        let outbound = postfach_outbound::Outbound::new(
            store.clone(),
            blobs,
            spool,
            postfach_store::delivery::DeliveryBatcher::start(store.clone()),
            postfach_server::outbound_settings(&config),
        );
        let id = outbound
            .submit(postfach_outbound::Submission {
                mailbox_id: max.id,
                client: None,
                require_tls: false,
                return_path: Some(max.address.clone()),
                recipients: vec![postfach_types::EmailAddress::parse("anna@outside.test").expect("a")],
                message: format!("From: max@acme.example\r\nTo: anna@outside.test\r\nSubject: {subject}\r\n\r\nHi\r\n")
                    .into_bytes(),
            })
            .await
            .expect("accepted");
        store.close().await;
        id.to_string()
    })
}

fn spool_files(data: &Path) -> usize {
    let objects: PathBuf = postfach_outbound::spool_dir(data).join("objects");
    std::fs::read_dir(objects)
        .expect("spool")
        .flatten()
        .map(|dir| std::fs::read_dir(dir.path()).map(|d| d.count()).unwrap_or(0))
        .sum()
}

#[test]
fn queued_mail_survives_sigkill_and_is_delivered_after_the_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dns = TestDns::start([
        Rr::new("outside.test", Data::Mx(10, "mx.outside.test".into())),
        Rr::new("mx.outside.test", Data::A("127.0.0.1".parse().expect("ip"))),
    ]);
    let sink = Sink::start(Behaviour::Defer);
    let config = dir.path().join("postfach.toml");
    std::fs::write(
        &config,
        format!(
            "hostname = \"mail.postfach.test\"\ndata_dir = \"data\"\n\
             [listen]\nsmtp = []\nsubmission = []\nsubmissions = []\nimap = []\nimaps = []\npop3 = []\npop3s = []\nmanagesieve = []\nhttps = []\nhttp = []\n\
             [dns]\nresolver = \"{}\"\n[outbound]\nsmtp_port = {}\n",
            dns.addr(),
            sink.port()
        ),
    )
    .expect("config");
    let data = dir.path().join("data");
    ok(&config, &["customer", "add", "acme", "--password-stdin"], "acme panel passphrase 42\n");
    ok(&config, &["domain", "add", "acme.example", "--customer", "acme", "--verified"], "");
    ok(&config, &["mailbox", "add", "max@acme.example", "--password-stdin"], &format!("{PASSWORD}\n"));
    assert!(ok(&config, &["queue", "list"], "").contains("the queue is empty"));

    let mut server = serve(&config);
    // Submit once the server has laid out its folders (both would create them at once).
    wait_until("the server started", || postfach_outbound::spool_dir(&data).join("objects/ff").is_dir());
    let kept = submit(&config, "kept");
    let dropped = submit(&config, "dropped");
    // The server tries both; the outside server says "later".
    wait_until("both messages were tried once", || {
        let q = queue(&config);
        q.as_array().is_some_and(|a| a.len() == 2 && a.iter().all(|m| m["recipients"][0]["attempts"] == 1))
    });
    let q = queue(&config);
    assert_eq!(q[0]["id"], kept.as_str());
    assert_eq!(q[0]["recipients"][0]["state"], "queued");
    assert_eq!(q[0]["recipients"][0]["status"], "4.3.0");
    assert_eq!(q[0]["return_path"], "max@acme.example");
    // The attempt went over STARTTLS (the sink offers it; no MTA-STS or DANE for
    // outside.test): the policy it used, the TLS it got, nothing demanded by the sender.
    assert_eq!(q[0]["recipients"][0]["tls_policy"], "opportunistic", "{q}");
    assert!(q[0]["recipients"][0]["tls"].as_str().is_some_and(|t| t.starts_with("TLSv1.")), "{q}");
    assert!(q[0]["tls_demand"].is_null(), "{q}");
    let table = ok(&config, &["queue", "list"], "");
    assert!(table.contains(&kept) && table.contains("anna@outside.test") && table.contains("451 4.3.0"), "{table}");
    assert!(table.contains("TLS POLICY") && table.contains("opportunistic"), "{table}");

    // SIGKILL: no chance to clean up.
    server.kill().expect("SIGKILL");
    server.wait().expect("reaped");
    sink.set_behaviour(Behaviour::Accept);
    let mut server = serve(&config);
    assert_eq!(queue(&config).as_array().map(Vec::len), Some(2), "both messages survived");

    let out = ok(&config, &["queue", "remove", &dropped], "");
    assert!(out.contains("will not be delivered"), "{out}");
    assert_eq!(spool_files(&data), 1, "the removed message's file is gone");
    let out = ok(&config, &["queue", "retry", &kept], "");
    assert!(out.contains("tried again"), "{out}");
    wait_until("the kept message arrived", || !sink.received().is_empty());
    wait_until("the queue is empty", || queue(&config).as_array().is_some_and(Vec::is_empty));
    let received = sink.received();
    assert_eq!(received.len(), 1, "the removed message never went out");
    assert!(received[0].text().contains("Subject: kept\r\n"));
    assert!(received[0].text().starts_with("DKIM-Signature: "), "signed with the key made at domain add");
    assert_eq!(spool_files(&data), 0, "delivered mail leaves the spool");

    let out = postfach(&config, &["queue", "retry", &kept], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("postfach queue list"));

    let status = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().expect("kill");
    assert!(status.success());
    wait_until("the server stopped", || server.try_wait().ok().flatten().is_some());
}

/// Sends one message to the MX on `port` (no TLS, no login: mail for a hosted mailbox).
fn send_to_mx(port: u16, message: &str) {
    use std::io::{BufRead, BufReader, Write};
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the MX");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let mut expect = |code: &str| loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("reply");
        assert!(line.starts_with(code), "expected {code}, got {line}");
        if line.as_bytes().get(3) != Some(&b'-') {
            break;
        }
    };
    expect("220");
    for (command, code) in [
        ("EHLO client.outside.test", "250"),
        ("MAIL FROM:<anna@outside.test>", "250"),
        ("RCPT TO:<max@acme.example>", "250"),
        ("DATA", "354"),
    ] {
        writer.write_all(format!("{command}\r\n").as_bytes()).expect("send");
        expect(code);
    }
    writer.write_all(format!("{message}.\r\n").as_bytes()).expect("send");
    expect("250");
    let _ = writer.write_all(b"QUIT\r\n");
}

#[test]
fn the_node_names_itself_in_received_fields_and_on_its_queue_claims() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dns = TestDns::start([
        Rr::new("outside.test", Data::Mx(10, "mx.outside.test".into())),
        Rr::new("mx.outside.test", Data::A("127.0.0.1".parse().expect("ip"))),
    ]);
    let sink = Sink::start(Behaviour::Accept);
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let config = dir.path().join("postfach.toml");
    std::fs::write(
        &config,
        format!(
            "hostname = \"mail.postfach.test\"\ndata_dir = \"data\"\n\
             [listen]\nsmtp = [\"127.0.0.1:{port}\"]\nsubmission = []\nsubmissions = []\nimap = []\nimaps = []\n\
             pop3 = []\npop3s = []\nmanagesieve = []\nhttps = []\nhttp = []\n\
             [dns]\nresolver = \"{}\"\n[outbound]\nsmtp_port = {}\n[cluster]\nnode = \"node-7\"\n",
            dns.addr(),
            sink.port()
        ),
    )
    .expect("config");
    ok(&config, &["customer", "add", "acme", "--password-stdin"], "acme panel passphrase 42\n");
    ok(&config, &["domain", "add", "acme.example", "--customer", "acme", "--verified"], "");
    ok(&config, &["mailbox", "add", "max@acme.example", "--password-stdin"], &format!("{PASSWORD}\n"));
    let mut server = serve(&config);
    wait_until("the server listens", || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());

    // The Received field the node adds names it, in a comment after "by".
    send_to_mx(port, "From: anna@outside.test\r\nTo: max@acme.example\r\nSubject: hello\r\n\r\nHi\r\n");
    let stored = tokio::runtime::Runtime::new().expect("runtime").block_on(async {
        let config = postfach_server::config::Config::load(Some(&config)).expect("config");
        let store = postfach_store::Store::open(&config.database).await.expect("store");
        let max = postfach_types::EmailAddress::parse("max@acme.example").expect("a");
        let mailbox = store.mailbox(postfach_store::Scope::Platform, &max).await.expect("mailbox");
        let folders = store.folders(mailbox.id).await.expect("folders");
        let inbox = folders.iter().find(|f| f.name == "INBOX").expect("INBOX");
        let messages = store.messages(mailbox.id, inbox.id).await.expect("messages");
        let blobs =
            postfach_blob::BlobStore::open(&config.blobs, &config.data_dir, postfach_blob::Namespace::Mailboxes)
                .expect("blobs");
        let bytes = blobs.get(&messages[0].blob).await.expect("blob");
        store.close().await;
        String::from_utf8_lossy(&bytes).into_owned()
    });
    assert!(stored.contains("\tby mail.postfach.test (Postfach node node-7)\r\n"), "{stored}");

    // While the node delivers a message, `queue list` shows the node holding it.
    sink.hold();
    let id = submit(&config, "claimed");
    wait_until("the node delivers", || !sink.attempts().is_empty());
    let q = queue(&config);
    assert_eq!(q[0]["id"], id.as_str());
    assert_eq!(q[0]["recipients"][0]["claimed_by"], "node-7", "{q}");
    assert!(q[0]["recipients"][0]["claim_expires_at"].as_i64().is_some(), "{q}");
    let table = ok(&config, &["queue", "list"], "");
    assert!(table.contains("CLAIMED BY") && table.contains("node-7"), "{table}");
    sink.release();
    wait_until("the queue is empty", || queue(&config).as_array().is_some_and(Vec::is_empty));
    assert_eq!(sink.received().len(), 1);

    let status = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().expect("kill");
    assert!(status.success());
    wait_until("the server stopped", || server.try_wait().ok().flatten().is_some());
}
