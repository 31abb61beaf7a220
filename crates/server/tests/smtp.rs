//! End-to-end tests of the SMTP servers: the inbound MX (issue 3) and submission (issue 6
//! parts 1–2), on a real server on 127.0.0.1, with real clients (Python's smtplib, swaks,
//! msmtp) and a real DNS server ([`postfach_testdns`]) serving the test zones for SPF,
//! DKIM and DMARC.

mod common;

use std::process::Command;

use common::{PASSWORD, TestServer};
use mail_auth::common::crypto::{RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use postfach_store::Scope;
use postfach_store::logins::LoginFilter;
use postfach_store::mailboxes::{MailboxSettings, SettingsChange};
use postfach_testdns::{Data, Rr, TestDns};
use postfach_types::{DomainName, EmailAddress, LoginResult};
use tokio::io::AsyncWriteExt;

/// A test key (RSA-2048) for DKIM-signing test messages; its public half is published in
/// the test zone at `sel._domainkey.signed.test`.
const DKIM_KEY: &str = include_str!("data/dkim-test-key.pem");
const DKIM_PUBLIC: &str = include_str!("data/dkim-test-key.pub.b64");

/// The zones: one sender domain per SPF outcome, a DKIM signer, and two DMARC policies.
fn zones() -> TestDns {
    TestDns::start([
        Rr::new("pass.test", Data::txt("v=spf1 ip4:127.0.0.1 -all")),
        Rr::new("fail.test", Data::txt("v=spf1 -all")),
        Rr::new("soft.test", Data::txt("v=spf1 ~all")),
        Rr::new("none.test", Data::A("192.0.2.1".parse().expect("ip"))),
        Rr::new("client.test", Data::A("127.0.0.1".parse().expect("ip"))),
        Rr::new("signed.test", Data::txt("v=spf1 -all")),
        Rr::new("sel._domainkey.signed.test", Data::txt(&format!("v=DKIM1; k=rsa; p={}", DKIM_PUBLIC.trim()))),
        Rr::new("_dmarc.signed.test", Data::txt("v=DMARC1; p=reject")),
        Rr::new("reject.test", Data::txt("v=spf1 -all")),
        Rr::new("_dmarc.reject.test", Data::txt("v=DMARC1; p=reject")),
        Rr::new("quarantine.test", Data::txt("v=spf1 -all")),
        Rr::new("_dmarc.quarantine.test", Data::txt("v=DMARC1; p=quarantine")),
    ])
}

async fn start(dns: &TestDns) -> TestServer {
    let addr = dns.addr();
    TestServer::start_with(|c| c.dns.resolver = Some(addr)).await
}

use common::clients::SmtpClient as Client;

/// Delivers one message over a fresh connection with HELO `helo`.
async fn deliver(ts: &TestServer, helo: &str, from: &str, to: &[&str], message: &str) -> (Vec<String>, String) {
    let (mut c, greeting) = Client::connect(ts.addr("smtp")).await;
    assert!(greeting.starts_with("220 mail.postfach.test"), "{greeting}");
    assert!(c.cmd(&format!("EHLO {helo}")).await.starts_with("250"));
    let result = c.transaction(from, to, message).await;
    c.cmd("QUIT").await;
    result
}

/// The messages in a folder of a mailbox, as text, oldest first.
async fn folder(ts: &TestServer, address: &str, name: &str) -> Vec<String> {
    let store = ts.server.store();
    let mailbox = store.mailbox(Scope::Platform, &EmailAddress::parse(address).expect("address")).await.expect("mb");
    let folder = store.folder(mailbox.id, name).await.expect("folder").expect("exists");
    let mut out = Vec::new();
    for message in store.messages(mailbox.id, folder.id).await.expect("messages") {
        let blob = ts.server.blobs().get(&message.blob).await.expect("blob");
        out.push(String::from_utf8_lossy(&blob).into_owned());
    }
    out
}

async fn inbox(ts: &TestServer, address: &str) -> Vec<String> {
    folder(ts, address, "INBOX").await
}

/// The `Authentication-Results:` field of a stored message, unfolded.
fn auth_results(message: &str) -> String {
    let start = message.find("Authentication-Results:").expect("Authentication-Results present");
    let rest = &message[start..];
    let mut field = String::new();
    for (i, line) in rest.split("\r\n").enumerate() {
        if i > 0 && !line.starts_with([' ', '\t']) {
            break;
        }
        field.push_str(line.trim());
        field.push(' ');
    }
    field
}

/// Runs a client program; returns (success, stdout + stderr).
async fn run(program: &str, args: Vec<String>, stdin: Option<String>) -> (bool, String) {
    let program = program.to_string();
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(&program);
        command.args(&args);
        command.stdin(std::process::Stdio::piped());
        command.stdout(std::process::Stdio::piped());
        command.stderr(std::process::Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|e| panic!("{program} must be installed: {e}"));
        if let Some(input) = stdin {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
        }
        drop(child.stdin.take());
        let output = child.wait_with_output().expect("wait");
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.success(), text)
    })
    .await
    .expect("join")
}

/// Python's smtplib: sends `message` from `from` to `to`. `tls`: "none", "starttls" or
/// "implicit"; `login`: log in as `from` with [`PASSWORD`].
async fn smtplib(
    ts: &TestServer,
    service: &str,
    tls: &str,
    login: bool,
    from: &str,
    to: &[&str],
    message: &str,
) -> (bool, String) {
    let script = r#"
import smtplib, ssl, sys, json
port, tls, login, cert, sender, rcpts, password = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1", sys.argv[4], sys.argv[5], json.loads(sys.argv[6]), sys.argv[7]
message = sys.stdin.read()
ctx = ssl.create_default_context(cafile=cert)
if tls == "implicit":
    s = smtplib.SMTP_SSL("127.0.0.1", port, context=ctx, local_hostname="client.pass.test")
else:
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.pass.test")
    if tls == "starttls":
        s.starttls(context=ctx)
try:
    if login:
        s.login(sender, password)
    s.sendmail(sender, rcpts, message)
    print("SENT")
except smtplib.SMTPException as e:
    print("REFUSED", e)
    sys.exit(1)
finally:
    try:
        s.quit()
    except Exception:
        pass
"#;
    let rcpts = format!("[{}]", to.iter().map(|r| format!("\"{r}\"")).collect::<Vec<_>>().join(","));
    let args = vec![
        "-c".to_string(),
        script.to_string(),
        ts.port(service).to_string(),
        tls.to_string(),
        if login { "1" } else { "0" }.to_string(),
        ts.cert().display().to_string(),
        from.to_string(),
        rcpts,
        PASSWORD.to_string(),
    ];
    run("python3", args, Some(message.to_string())).await
}

async fn swaks(ts: &TestServer, extra: &[&str]) -> (bool, String) {
    let mut args = vec![
        "--server".to_string(),
        format!("127.0.0.1:{}", ts.port("smtp")),
        "--ehlo".into(),
        "client.pass.test".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    run("swaks", args, None).await
}

/// Customer acme with mailbox max@acme.example, alias info@acme.example and the alias
/// domain acme-alias.example.
async fn acme(ts: &TestServer) {
    ts.mailbox("max@acme.example", MailboxSettings::default()).await;
    let store = ts.server.store();
    let address = |s: &str| EmailAddress::parse(s).expect("address");
    store.add_alias(Scope::Platform, &address("info@acme.example"), &address("max@acme.example")).await.expect("alias");
    let alias_domain = DomainName::parse("acme-alias.example").expect("domain");
    let acme = DomainName::parse("acme.example").expect("domain");
    store.add_domain_alias(Scope::Platform, &alias_domain, &acme, true).await.expect("alias domain");
}

#[tokio::test(flavor = "multi_thread")]
async fn real_clients_deliver_to_mailbox_alias_alias_domain_and_subaddress() {
    let dns = zones();
    let ts = start(&dns).await;
    acme(&ts).await;

    let message = |subject: &str| format!("From: sender@pass.test\r\nSubject: {subject}\r\n\r\nHello.\r\n");
    let (ok, out) =
        smtplib(&ts, "smtp", "starttls", false, "sender@pass.test", &["max@acme.example"], &message("to the mailbox"))
            .await;
    assert!(ok, "{out}");
    let (ok, out) = swaks(
        &ts,
        &["--from", "sender@pass.test", "--to", "info@acme.example", "--header", "Subject: to the alias", "-tls"],
    )
    .await;
    assert!(ok, "{out}");
    let (ok, out) = smtplib(
        &ts,
        "smtp",
        "none",
        false,
        "sender@pass.test",
        &["max@acme-alias.example"],
        &message("to the alias domain"),
    )
    .await;
    assert!(ok, "{out}");
    let (ok, out) = swaks(
        &ts,
        &["--from", "sender@pass.test", "--to", "max+news@acme.example", "--header", "Subject: to a subaddress"],
    )
    .await;
    assert!(ok, "{out}");
    // Two recipients that lead to one mailbox: one copy.
    let (ok, out) = smtplib(
        &ts,
        "smtp",
        "none",
        false,
        "sender@pass.test",
        &["max@acme.example", "info@acme-alias.example", "max+x@acme.example"],
        &message("three addresses, one mailbox"),
    )
    .await;
    assert!(ok, "{out}");

    let messages = inbox(&ts, "max@acme.example").await;
    assert_eq!(messages.len(), 5, "{messages:#?}");
    for (message, subject) in messages.iter().zip([
        "to the mailbox",
        "to the alias",
        "to the alias domain",
        "to a subaddress",
        "three addresses, one mailbox",
    ]) {
        assert!(message.contains(&format!("Subject: {subject}")), "{message}");
        assert!(message.starts_with("Return-Path: <sender@pass.test>\r\n"), "{message}");
        assert!(message.contains("Received: from client.pass.test ([127.0.0.1])"), "{message}");
        assert!(message.contains("by mail.postfach.test"), "{message}");
        assert!(auth_results(message).contains("spf=pass"), "{message}");
        assert!(message.contains("Received-SPF: pass"), "{message}");
    }
    assert!(messages[0].contains("with ESMTPS"), "STARTTLS is recorded: {}", messages[0]);
    assert!(messages[2].contains("with ESMTP id"), "{}", messages[2]);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_relay_trick_and_foreign_domain_is_refused() {
    let dns = zones();
    let ts = start(&dns).await;
    acme(&ts).await;
    // A domain that is added but not verified is not hosted.
    let customer = ts.customer().await;
    ts.server.store().add_domain(customer, &DomainName::parse("pending.example").expect("d"), false).await.expect("d");

    let (mut c, _) = Client::connect(ts.addr("smtp")).await;
    c.cmd("EHLO client.pass.test").await;
    assert!(c.cmd("MAIL FROM:<sender@pass.test>").await.starts_with("250 2.1.0"));
    for trick in [
        "@relay.example,@other.example:max@acme.example",
        "@other.example:victim@other.example",
        "victim%other.example@acme.example",
        "victim@other.example@acme.example",
        "other.example!victim",
        "other.example!victim@acme.example",
        "\"victim@other.example\"@acme.example",
        "\"victim%other.example\"@acme.example",
    ] {
        let reply = c.cmd(&format!("RCPT TO:<{trick}>")).await;
        assert!(reply.starts_with("554 5.7.1") && reply.contains("relay access denied"), "{trick}: {reply}");
    }
    for foreign in ["victim@other.example", "max@pending.example"] {
        let reply = c.cmd(&format!("RCPT TO:<{foreign}>")).await;
        assert!(reply.starts_with("554 5.7.1") && reply.contains("relay access denied"), "{foreign}: {reply}");
    }
    let reply = c.cmd("RCPT TO:<nobody@acme.example>").await;
    assert!(reply.starts_with("550 5.1.1"), "{reply}");
    let reply = c.cmd("DATA").await;
    assert!(reply.starts_with("554"), "no recipient was accepted: {reply}");
    // VRFY discloses nothing.
    assert!(c.cmd("VRFY max@acme.example").await.starts_with("252"));
    assert!(c.cmd("VRFY nobody@acme.example").await.starts_with("252"));
    c.cmd("QUIT").await;
    assert!(inbox(&ts, "max@acme.example").await.is_empty());
}

/// Signs `message` for signed.test with the test key.
fn dkim_sign(message: &str) -> String {
    #[allow(deprecated)]
    let key = RsaKey::<Sha256>::from_pkcs8_pem(DKIM_KEY).expect("test key");
    let signature = DkimSigner::from_key(key)
        .domain("signed.test")
        .selector("sel")
        .headers(["From", "To", "Subject"])
        .sign(message.as_bytes())
        .expect("sign");
    format!("{}{message}", signature.to_header())
}

#[tokio::test(flavor = "multi_thread")]
async fn authentication_results_for_spf_dkim_and_dmarc() {
    let dns = zones();
    let ts = start(&dns).await;
    acme(&ts).await;
    let to = ["max@acme.example"];
    let plain = |from: &str, subject: &str| {
        format!("From: {from}\r\nTo: max@acme.example\r\nSubject: {subject}\r\n\r\nHi.\r\n")
    };

    // SPF: pass, fail (delivered tagged: spf_fail = "tag"), softfail, none.
    for (sender, expected) in [
        ("a@pass.test", "spf=pass"),
        ("a@fail.test", "spf=fail"),
        ("a@soft.test", "spf=softfail"),
        ("a@none.test", "spf=none"),
    ] {
        let (rcpts, reply) = deliver(&ts, "client.test", sender, &to, &plain(sender, expected)).await;
        assert!(rcpts[0].starts_with("250") && reply.starts_with("250 2.0.0"), "{sender}: {rcpts:?} {reply}");
    }
    // DKIM pass (with DMARC pass through the aligned signature, although SPF fails) and
    // DKIM fail (the body was changed after signing).
    let signed = dkim_sign(&plain("a@signed.test", "dkim pass"));
    let (_, reply) = deliver(&ts, "client.test", "a@signed.test", &to, &signed).await;
    assert!(reply.starts_with("250"), "{reply}");
    // (signed by signed.test for an author at pass.test, which publishes no DMARC policy)
    // A changed signed header field breaks the signature (a changed body is "neutral":
    // the body hash, not the signature, fails).
    let tampered = dkim_sign(&plain("a@pass.test", "dkim fail")).replace("Subject: dkim fail", "Subject: dkim FAIL");
    let (_, reply) = deliver(&ts, "client.test", "a@pass.test", &to, &tampered).await;
    assert!(reply.starts_with("250"), "{reply}");

    let messages = inbox(&ts, "max@acme.example").await;
    assert_eq!(messages.len(), 6);
    let results: Vec<String> = messages.iter().map(|m| auth_results(m)).collect();
    assert!(results[0].contains("spf=pass") && results[0].contains("smtp.mailfrom=a@pass.test"), "{}", results[0]);
    assert!(results[1].contains("spf=fail") && results[1].contains("smtp.mailfrom=a@fail.test"), "{}", results[1]);
    assert!(results[2].contains("spf=softfail"), "{}", results[2]);
    assert!(results[3].contains("spf=none"), "{}", results[3]);
    assert!(messages[1].contains("Received-SPF: fail"), "{}", messages[1]);
    assert!(results[4].contains("dkim=pass") && results[4].contains("header.d=signed.test"), "{}", results[4]);
    assert!(results[4].contains("dmarc=pass"), "{}", results[4]);
    assert!(results[5].contains("dkim=fail") && results[5].contains("header.d=signed.test"), "{}", results[5]);
    for r in &results {
        assert!(r.starts_with("Authentication-Results: mail.postfach.test;"), "{r}");
    }

    // DMARC p=reject: refused. p=quarantine: delivered to Junk.
    let (_, reply) = deliver(&ts, "client.test", "a@reject.test", &to, &plain("a@reject.test", "reject")).await;
    assert!(reply.starts_with("550 5.7.1") && reply.contains("DMARC"), "{reply}");
    let (_, reply) = deliver(&ts, "client.test", "a@quarantine.test", &to, &plain("a@quarantine.test", "junk")).await;
    assert!(reply.starts_with("250"), "{reply}");
    assert_eq!(inbox(&ts, "max@acme.example").await.len(), 6, "neither landed in the INBOX");
    let junk = folder(&ts, "max@acme.example", "Junk").await;
    assert_eq!(junk.len(), 1);
    let r = auth_results(&junk[0]);
    assert!(r.contains("dmarc=fail") && r.contains("policy.dmarc=quarantine"), "{r}");
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_results_and_spoofed_hosted_domains_are_refused() {
    let dns = zones();
    let ts = start(&dns).await;
    acme(&ts).await;
    let to = ["max@acme.example"];

    // MAIL FROM a hosted domain, from outside its servers.
    let (_, reply) = deliver(&ts, "client.test", "max@acme.example", &to, "Subject: x\r\n\r\nx\r\n").await;
    assert!(reply.starts_with("550 5.7.1") && reply.contains("acme.example"), "{reply}");
    let (_, reply) = deliver(&ts, "client.test", "someone@acme-alias.example", &to, "Subject: x\r\n\r\nx\r\n").await;
    assert!(reply.starts_with("550 5.7.1"), "alias domains are protected too: {reply}");
    // From: a hosted domain with an outside envelope.
    let spoof = "From: Max <max@acme.example>\r\nSubject: pay this invoice\r\n\r\nx\r\n";
    let (_, reply) = deliver(&ts, "client.test", "a@pass.test", &to, spoof).await;
    assert!(reply.starts_with("550 5.7.1") && reply.contains("acme.example"), "{reply}");
    assert!(inbox(&ts, "max@acme.example").await.is_empty());

    // An Authentication-Results field claiming to be ours is removed.
    let forged = "Authentication-Results: mail.postfach.test; spf=pass smtp.mailfrom=ceo@bank.example\r\n\
                  From: a@pass.test\r\nSubject: forged\r\n\r\nx\r\n";
    let (_, reply) = deliver(&ts, "client.test", "a@pass.test", &to, forged).await;
    assert!(reply.starts_with("250"), "{reply}");
    let stored = &inbox(&ts, "max@acme.example").await[0];
    assert_eq!(stored.matches("Authentication-Results:").count(), 1, "{stored}");
    assert!(!stored.contains("bank.example"), "{stored}");
}

#[tokio::test(flavor = "multi_thread")]
async fn spf_failures_are_rejected_when_configured() {
    let dns = zones();
    let addr = dns.addr();
    let ts = TestServer::start_with(|c| {
        c.dns.resolver = Some(addr);
        c.smtp.spf_fail = postfach_server::config::SpfFail::Reject;
    })
    .await;
    acme(&ts).await;
    let (_, reply) = deliver(&ts, "client.test", "a@fail.test", &["max@acme.example"], "Subject: x\r\n\r\nx\r\n").await;
    assert!(reply.starts_with("550 5.7.23") && reply.contains("fail.test"), "{reply}");
    let (_, reply) = deliver(&ts, "client.test", "a@soft.test", &["max@acme.example"], "Subject: x\r\n\r\nx\r\n").await;
    assert!(reply.starts_with("250"), "softfail is not fail: {reply}");
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_have_clear_replies() {
    let dns = zones();
    let addr = dns.addr();
    let ts = TestServer::start_with(|c| {
        c.dns.resolver = Some(addr);
        c.limits.max_message_size = 2048;
        c.limits.max_recipients = 2;
        c.limits.max_connections_per_ip = 2;
    })
    .await;
    acme(&ts).await;

    let (mut c, _) = Client::connect(ts.addr("smtp")).await;
    let ehlo = c.cmd("EHLO client.pass.test").await;
    for capability in ["PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE 2048", "ENHANCEDSTATUSCODES", "STARTTLS"] {
        assert!(ehlo.contains(capability), "{capability} in {ehlo}");
    }
    assert!(!ehlo.contains("AUTH"), "the MX offers no login: {ehlo}");
    let reply = c.cmd("MAIL FROM:<a@pass.test> SIZE=4096").await;
    assert!(reply.starts_with("552 5.3.4") && reply.contains("2048"), "{reply}");
    let long = format!("NOOP {}", "x".repeat(5000));
    assert!(c.cmd(&long).await.starts_with("500 5.5.2"));
    assert!(c.cmd("NOOP").await.starts_with("250"), "the session goes on after a long line");

    let (rcpts, reply) = c
        .transaction(
            "a@pass.test",
            &["max@acme.example", "info@acme.example", "max+1@acme.example"],
            "Subject: 2\r\n\r\nx",
        )
        .await;
    assert!(rcpts[2].starts_with("452 4.5.3") && rcpts[2].contains("at most 2"), "{rcpts:?}");
    assert!(reply.starts_with("250"), "the first two recipients get the message: {reply}");
    let big = format!("Subject: big\r\n\r\n{}\r\n", "y".repeat(4000));
    let (_, reply) = c.transaction("a@pass.test", &["max@acme.example"], &big).await;
    assert!(reply.starts_with("552 5.3.4"), "{reply}");
    // Pipelined commands (RFC 2920) are answered in order.
    c.writer.write_all(b"RSET\r\nMAIL FROM:<a@pass.test>\r\nRCPT TO:<max@acme.example>\r\nDATA\r\n").await.expect("w");
    assert!(c.reply().await.starts_with("250"));
    assert!(c.reply().await.starts_with("250"));
    assert!(c.reply().await.starts_with("250"));
    assert!(c.reply().await.starts_with("354"));
    assert!(c.cmd("Subject: small\r\n\r\nok\r\n.").await.starts_with("250"));

    // Connections per address: the third gets 421.
    let (_second, greeting) = Client::connect(ts.addr("smtp")).await;
    assert!(greeting.starts_with("220"));
    let (_third, greeting) = Client::connect(ts.addr("smtp")).await;
    assert!(greeting.starts_with("421 4.7.0"), "{greeting}");
    assert_eq!(inbox(&ts, "max@acme.example").await.len(), 2);
}

// ---------------------------------------------------------------------------------------
// Submission

/// acme with max (and its alias, alias domain), plus customer globex with bob@globex.example.
async fn two_customers(ts: &TestServer) {
    acme(ts).await;
    let store = ts.server.store();
    let hasher = ts.server.authenticator().hasher();
    let name = postfach_types::CustomerName::parse("globex").expect("name");
    let globex = postfach_auth::accounts::create_customer(
        store,
        hasher,
        &name,
        &postfach_types::Secret::new("globex panel passphrase 42".into()),
        postfach_types::Role::Customer,
    )
    .await
    .expect("customer");
    store.add_domain(globex.id, &DomainName::parse("globex.example").expect("d"), true).await.expect("domain");
    postfach_auth::accounts::create_mailbox(
        store,
        hasher,
        Scope::Platform,
        &EmailAddress::parse("bob@globex.example").expect("a"),
        &postfach_types::Secret::new(PASSWORD.into()),
        MailboxSettings::default(),
    )
    .await
    .expect("mailbox");
}

async fn msmtp(ts: &TestServer, implicit: bool, from: &str, to: &str, message: &str) -> (bool, String) {
    let (port, starttls) = if implicit { (ts.port("submissions"), "off") } else { (ts.port("submission"), "on") };
    let args = vec![
        "--host=localhost".to_string(),
        format!("--port={port}"),
        "--tls=on".into(),
        format!("--tls-starttls={starttls}"),
        format!("--tls-trust-file={}", ts.cert().display()),
        "--auth=plain".into(),
        "--user=max@acme.example".into(),
        format!("--passwordeval=echo {PASSWORD}"),
        format!("--from={from}"),
        to.to_string(),
    ];
    run("msmtp", args, Some(message.to_string())).await
}

#[tokio::test(flavor = "multi_thread")]
async fn msmtp_and_smtplib_submit() {
    let dns = zones();
    let ts = start(&dns).await;
    two_customers(&ts).await;

    let (ok, out) = msmtp(
        &ts,
        false,
        "max@acme.example",
        "bob@globex.example",
        "From: max@acme.example\nSubject: starttls\n\nHi Bob\n",
    )
    .await;
    assert!(ok, "{out}");
    let (ok, out) = msmtp(
        &ts,
        true,
        "max+list@acme.example",
        "bob@globex.example",
        "From: Max <max@acme-alias.example>\nSubject: implicit\n\nHi\n",
    )
    .await;
    assert!(ok, "{out}");
    let message = "From: info@acme.example\r\nSender: max@acme.example\r\nSubject: smtplib\r\n\r\nHi\r\n";
    let (ok, out) =
        smtplib(&ts, "submission", "starttls", true, "max@acme.example", &["bob@globex.example"], message).await;
    assert!(ok, "{out}");
    let (ok, out) =
        smtplib(&ts, "submissions", "implicit", true, "max@acme.example", &["bob@globex.example"], message).await;
    assert!(ok, "{out}");

    let received = inbox(&ts, "bob@globex.example").await;
    assert_eq!(received.len(), 4, "{received:#?}");
    assert!(received[0].contains("Subject: starttls") && received[1].contains("Subject: implicit"));
    for message in &received {
        assert!(message.contains("with ESMTPSA"), "{message}");
        assert!(message.contains("Message-ID:") && message.contains("Date:"), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_senders_are_refused() {
    let dns = zones();
    let ts = start(&dns).await;
    two_customers(&ts).await;
    let to = ["bob@globex.example"];

    // A spoofed From: with the mailbox's own envelope.
    let (ok, out) = smtplib(
        &ts,
        "submission",
        "starttls",
        true,
        "max@acme.example",
        &to,
        "From: ceo@bank.example\r\nSubject: x\r\n\r\nx\r\n",
    )
    .await;
    assert!(!ok && out.contains("550") && out.contains("ceo@bank.example"), "{out}");
    // A foreign envelope sender.
    let (ok, out) =
        msmtp(&ts, false, "someone@other.example", "bob@globex.example", "From: max@acme.example\n\nx\n").await;
    assert!(!ok && out.contains("550") && out.contains("someone@other.example"), "{out}");
    // An address of another customer, in the envelope and in the header.
    let (ok, out) =
        msmtp(&ts, false, "bob@globex.example", "bob@globex.example", "From: max@acme.example\n\nx\n").await;
    assert!(!ok && out.contains("550") && out.contains("bob@globex.example"), "{out}");
    let (ok, out) =
        smtplib(&ts, "submissions", "implicit", true, "max@acme.example", &to, "From: bob@globex.example\r\n\r\nx\r\n")
            .await;
    assert!(!ok && out.contains("550") && out.contains("bob@globex.example"), "{out}");
    let (ok, out) = smtplib(
        &ts,
        "submissions",
        "implicit",
        true,
        "max@acme.example",
        &to,
        "From: max@acme.example\r\nSender: eve@acme.example\r\n\r\nx\r\n",
    )
    .await;
    assert!(!ok && out.contains("550") && out.contains("eve@acme.example"), "{out}");
    assert!(inbox(&ts, "bob@globex.example").await.is_empty());
}

/// A TLS client on the submissions port, driven line by line through Python.
async fn submission_dialogue(ts: &TestServer, service: &str, lines: &[&str]) -> String {
    let script = r#"
import socket, ssl, sys
port, mode, cert = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=cert)
raw = socket.create_connection(("127.0.0.1", port))
f = None
def reply(f):
    out = []
    while True:
        line = f.readline().decode().rstrip("\r\n")
        out.append(line)
        if len(line) < 4 or line[3] != "-":
            return "\n".join(out)
if mode == "implicit":
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
else:
    s = raw
f = s.makefile("rb")
print(reply(f))
for line in sys.stdin.read().split("\n"):
    if not line:
        continue
    s.sendall((line + "\r\n").encode())
    print(">", line)
    print(reply(f))
"#;
    let mode = if service == "submissions" { "implicit" } else { "plain" };
    let args = vec![
        "-c".to_string(),
        script.to_string(),
        ts.port(service).to_string(),
        mode.into(),
        ts.cert().display().to_string(),
    ];
    let (ok, out) = run("python3", args, Some(lines.join("\n"))).await;
    assert!(ok, "{out}");
    out
}

fn plain_auth(login: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{login}\0{password}"))
}

async fn last_login(ts: &TestServer) -> (LoginResult, bool) {
    let logins = ts.server.store().logins(Scope::Platform, LoginFilter::default()).await.expect("logins");
    let latest = logins.first().expect("a login was recorded");
    assert_eq!(latest.service, postfach_types::Service::Submission);
    (latest.result, latest.tls.is_some())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_login_refusal_has_its_reply_and_log_entry() {
    let dns = zones();
    let addr = dns.addr();
    let ts = TestServer::start_with(|c| {
        c.dns.resolver = Some(addr);
        c.security.max_failures_per_login = 2;
    })
    .await;
    two_customers(&ts).await;
    let good = plain_auth("max@acme.example", PASSWORD);
    let bad = plain_auth("max@acme.example", "wrong password entirely");

    // MAIL before AUTH; AUTH not offered before TLS; plaintext AUTH refused.
    let out = submission_dialogue(
        &ts,
        "submission",
        &["EHLO client.pass.test", "MAIL FROM:<max@acme.example>", &format!("AUTH PLAIN {good}")],
    )
    .await;
    assert!(!out.contains("AUTH PLAIN LOGIN"), "no AUTH before TLS: {out}");
    assert!(out.contains("530 5.7.0 Authentication required"), "{out}");
    assert!(out.contains("530 5.7.0 Encryption required"), "{out}");
    assert_eq!(last_login(&ts).await, (LoginResult::TlsRequired, false));

    // Over TLS: AUTH is offered; a wrong password.
    let out = submission_dialogue(&ts, "submissions", &["EHLO client.pass.test", &format!("AUTH PLAIN {bad}")]).await;
    assert!(out.contains("AUTH PLAIN LOGIN"), "{out}");
    assert!(out.contains("535 5.7.8 Wrong address or password"), "{out}");
    assert_eq!(last_login(&ts).await, (LoginResult::BadCredentials, true));

    // The submission switch off: the login succeeds (a refused AUTH would read as a wrong
    // password to mail programs, which then ask for it again), MAIL FROM says why not.
    let store = ts.server.store();
    let max = EmailAddress::parse("max@acme.example").expect("a");
    let off = SettingsChange { submission: Some(false), ..SettingsChange::default() };
    store.set_mailbox_settings(Scope::Platform, &max, off).await.expect("settings");
    let (sent, out) = smtplib(
        &ts,
        "submissions",
        "implicit",
        true,
        "max@acme.example",
        &["bob@globex.example"],
        "From: max@acme.example\r\nSubject: switched off\r\n\r\nHi\r\n",
    )
    .await;
    assert!(!sent, "{out}");
    assert!(
        out.starts_with("REFUSED (550, b") && out.contains("5.7.1 Sending is switched off for this mailbox"),
        "{out}"
    );
    assert!(out.contains("the owner of the customer account can switch it on in the panel"), "{out}");
    assert_eq!(last_login(&ts).await, (LoginResult::Ok, true), "the login itself succeeded");
    let on = SettingsChange { submission: Some(true), ..SettingsChange::default() };
    store.set_mailbox_settings(Scope::Platform, &max, on).await.expect("settings");

    // LOGIN works; then the throttle after repeated failures.
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let out = submission_dialogue(
        &ts,
        "submissions",
        &["EHLO client.pass.test", "AUTH LOGIN", &b64("max@acme.example"), &b64(PASSWORD)],
    )
    .await;
    assert!(out.contains("334 VXNlcm5hbWU6") && out.contains("235 2.7.0"), "{out}");
    assert_eq!(last_login(&ts).await, (LoginResult::Ok, true));
    let out = submission_dialogue(
        &ts,
        "submissions",
        &[
            "EHLO client.pass.test",
            &format!("AUTH PLAIN {bad}"),
            &format!("AUTH PLAIN {bad}"),
            &format!("AUTH PLAIN {good}"),
        ],
    )
    .await;
    assert!(out.contains("454 4.7.0"), "{out}");
    assert_eq!(last_login(&ts).await, (LoginResult::Throttled, true));

    // A disabled customer's mailbox.
    let globex = postfach_types::CustomerName::parse("globex").expect("name");
    store.set_customer_disabled(&globex, true).await.expect("disable");
    let bob = plain_auth("bob@globex.example", PASSWORD);
    let out = submission_dialogue(&ts, "submissions", &["EHLO client.pass.test", &format!("AUTH PLAIN {bob}")]).await;
    assert!(out.contains("535 5.7.8 This mailbox is disabled"), "{out}");
    assert_eq!(last_login(&ts).await, (LoginResult::AccountDisabled, true));
}

#[tokio::test(flavor = "multi_thread")]
async fn plaintext_logins_where_the_operator_allows_them() {
    let dns = zones();
    let addr = dns.addr();
    let ts = TestServer::start_with(|c| {
        c.dns.resolver = Some(addr);
        c.security.allow_plaintext_auth = true;
    })
    .await;
    two_customers(&ts).await;
    // AUTH is offered without TLS now, but max's mailbox is "TLS only" (the default).
    let good = plain_auth("max@acme.example", PASSWORD);
    let out = submission_dialogue(&ts, "submission", &["EHLO client.pass.test", &format!("AUTH PLAIN {good}")]).await;
    assert!(out.contains("AUTH PLAIN LOGIN"), "{out}");
    assert!(out.contains("538 5.7.11"), "{out}");
    assert_eq!(last_login(&ts).await, (LoginResult::TlsRequired, false));
    // With the switch off, the plaintext login works (and is flagged in the login log).
    let store = ts.server.store();
    let max = EmailAddress::parse("max@acme.example").expect("a");
    let change = SettingsChange { tls_required: Some(false), ..SettingsChange::default() };
    store.set_mailbox_settings(Scope::Platform, &max, change).await.expect("settings");
    let out = submission_dialogue(
        &ts,
        "submission",
        &[
            "EHLO client.pass.test",
            &format!("AUTH PLAIN {good}"),
            "MAIL FROM:<max@acme.example>",
            "RCPT TO:<bob@globex.example>",
        ],
    )
    .await;
    assert!(out.contains("235 2.7.0") && out.contains("250 2.1.5"), "{out}");
    assert_eq!(last_login(&ts).await, (LoginResult::Ok, false));
}

#[tokio::test(flavor = "multi_thread")]
async fn starttls_discards_plaintext_sent_after_it() {
    let dns = zones();
    let ts = start(&dns).await;
    // RFC 3207 §4.2: a command injected after STARTTLS, in the same plaintext packet,
    // must not be executed inside the TLS session.
    let script = r#"
import socket, ssl, sys
port, cert = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cert)
s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")
def reply(f):
    out = []
    while True:
        line = f.readline().decode().rstrip("\r\n")
        out.append(line)
        if len(line) < 4 or line[3] != "-":
            return "\n".join(out)
print(reply(f))
s.sendall(b"EHLO client.pass.test\r\n")
print(reply(f))
s.sendall(b"STARTTLS\r\nMAIL FROM:<injected@pass.test>\r\n")
print(reply(f))
t = ctx.wrap_socket(s, server_hostname="127.0.0.1")
g = t.makefile("rb")
t.sendall(b"MAIL FROM:<a@pass.test>\r\n")
print("AFTER", reply(g))
t.sendall(b"EHLO client.pass.test\r\n")
print("EHLO", reply(g))
"#;
    let args = vec!["-c".to_string(), script.to_string(), ts.port("smtp").to_string(), ts.cert().display().to_string()];
    let (ok, out) = run("python3", args, None).await;
    assert!(ok, "{out}");
    assert!(out.contains("220 2.0.0 Ready to start TLS"), "{out}");
    // The session starts afresh: MAIL needs a new EHLO, and the injected MAIL was dropped
    // (otherwise this would be "503 ... Sender already given").
    assert!(out.contains("AFTER 503 5.5.1 Send EHLO first"), "{out}");
    assert!(out.contains("EHLO 250-mail.postfach.test"), "{out}");
    let after_tls = out.split("EHLO 250").nth(1).expect("EHLO over TLS");
    assert!(!after_tls.contains("STARTTLS"), "no STARTTLS inside TLS: {out}");
}
