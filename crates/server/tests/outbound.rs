//! Outbound mail end to end, with the whole server running in-process: mail to an
//! outside domain is found through a real DNS server (TestDns), delivered to a second SMTP
//! server on 127.0.0.1 and arrives DKIM-signed with a signature that verifies against the
//! published key; a permanent failure comes back as a notification in the sender's INBOX;
//! and a queue with pending mail survives a restart.

mod common;
#[path = "../../outbound/tests/support/sink.rs"]
mod sink;

use std::time::{Duration, Instant};

use common::TestServer;
use mail_auth::{AuthenticatedMessage, DkimResult};
use postfach_outbound::Submission;
use postfach_server::Server;
use postfach_store::mailboxes::Mailbox;
use postfach_store::{Scope, Store};
use postfach_testdns::{Data, Rr, TestDns};
use postfach_types::{DomainName, EmailAddress};
use sink::{Behaviour, Sink};

const WAIT: Duration = Duration::from_secs(30);

fn address(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("address")
}

/// The zone: outside.test's MX is the sink's host; nomail.test has a null MX.
fn zone() -> Vec<Rr> {
    vec![
        Rr::new("outside.test", Data::Mx(10, "mx.outside.test".into())),
        Rr::new("mx.outside.test", Data::A("127.0.0.1".parse().expect("ip"))),
        Rr::new("nomail.test", Data::Mx(0, ".".into())),
    ]
}

/// A server whose outbound mail is looked up in `dns` and delivered to `sink`, with the
/// mailbox max@acme.example and acme.example's DKIM key published in `dns`.
async fn start(dns: &TestDns, sink: &Sink) -> (TestServer, Mailbox) {
    let (resolver, port) = (dns.addr(), sink.port());
    let t = TestServer::start_with(|c| {
        c.dns.resolver = Some(resolver);
        c.outbound.smtp_port = port;
    })
    .await;
    let max = t.mailbox("max@acme.example", Default::default()).await;
    let acme = DomainName::parse("acme.example").expect("domain");
    let key = postfach_dns::dkim::ensure_key(t.server.store(), Scope::Platform, &acme).await.expect("DKIM key");
    dns.add(Rr::new(
        &postfach_dns::dkim::record_name(&key.selector, &acme),
        Data::txt(&postfach_dns::dkim::record_value(&key.public_key)),
    ));
    (t, max)
}

fn submission(max: &Mailbox, to: &str, subject: &str) -> Submission {
    Submission {
        mailbox_id: max.id,
        client: None,
        require_tls: false,
        return_path: Some(address("max@acme.example")),
        recipients: vec![address(to)],
        message: format!(
            "From: Max Muster <max@acme.example>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\
             Date: Fri, 27 Nov 2026 04:08:04 +0000\r\nMessage-ID: <{subject}@acme.example>\r\n\
             MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGuten Tag!\r\n"
        )
        .into_bytes(),
    }
}

/// The messages in `mailbox`'s INBOX, as text.
async fn inbox(server: &Server, mailbox: &Mailbox, n: usize) -> Vec<String> {
    let store: &Store = server.store();
    let deadline = Instant::now() + WAIT;
    loop {
        let folders = store.folders(mailbox.id).await.expect("folders");
        let inbox = folders.iter().find(|f| f.name == "INBOX").expect("INBOX");
        let messages = store.messages(mailbox.id, inbox.id).await.expect("messages");
        if messages.len() >= n {
            let mut texts = Vec::new();
            for m in messages {
                texts.push(String::from_utf8_lossy(&server.blobs().get(&m.blob).await.expect("blob")).into_owned());
            }
            return texts;
        }
        assert!(Instant::now() < deadline, "{} of {n} messages arrived in the INBOX", messages.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mail_to_an_outside_domain_arrives_dkim_signed_and_verifies() {
    let dns = TestDns::start(zone());
    let sink = Sink::start(Behaviour::Accept);
    let (t, max) = start(&dns, &sink).await;
    let id = t.server.outbound().submit(submission(&max, "anna@outside.test", "hello")).await.expect("queued");

    let mail = sink.arrived(1, WAIT).await.remove(0);
    assert_eq!(
        (mail.mail_from.as_str(), mail.rcpt_to.as_slice()),
        ("max@acme.example", &["anna@outside.test".into()][..])
    );
    assert_eq!(mail.helo, "mail.postfach.test");
    assert!(mail.tls, "opportunistic STARTTLS was used");
    assert!(mail.text().contains("Subject: hello\r\n"));

    let verifier = postfach_dns::resolver::authenticator(Some(dns.addr())).expect("verifier");
    let parsed = AuthenticatedMessage::parse(&mail.data).expect("parse");
    let results = verifier.verify_dkim(&parsed).await;
    assert_eq!(results.len(), 1, "one signature");
    assert_eq!(results[0].result(), &DkimResult::Pass, "{results:?}");
    assert_eq!(results[0].signature().expect("signature").d, "acme.example");

    // Delivered mail leaves the queue.
    let deadline = Instant::now() + WAIT;
    while !t.server.store().queue_list(Scope::Platform).await.expect("list").is_empty() {
        assert!(Instant::now() < deadline, "{id} stayed in the queue");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn permanent_failures_come_back_as_notifications_in_the_inbox() {
    let dns = TestDns::start(zone());
    let sink = Sink::start(Behaviour::Reject);
    let (t, max) = start(&dns, &sink).await;

    t.server.outbound().submit(submission(&max, "nobody@outside.test", "refused")).await.expect("queued");
    let dsn = inbox(&t.server, &max, 1).await.remove(0);
    assert!(dsn.contains("Subject: Undelivered Mail Returned to Sender"), "{dsn}");
    assert!(dsn.contains("Content-Type: multipart/report; report-type=delivery-status"), "{dsn}");
    assert!(dsn.contains("Final-Recipient: rfc822; nobody@outside.test\r\nAction: failed\r\nStatus: 5.1.1"), "{dsn}");
    assert!(dsn.contains("Diagnostic-Code: smtp; 550 5.1.1 no such user here"), "{dsn}");
    assert!(dsn.contains("Subject: refused"), "the original header comes along: {dsn}");

    t.server.outbound().submit(submission(&max, "someone@nomail.test", "nullmx")).await.expect("queued");
    let dsn = inbox(&t.server, &max, 2).await.remove(1);
    assert!(dsn.contains("Final-Recipient: rfc822; someone@nomail.test\r\nAction: failed\r\nStatus: 5.1.10"), "{dsn}");
    assert_eq!(sink.attempts(), ["nobody@outside.test"], "the null MX domain was never contacted");
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_mail_survives_a_restart_and_is_delivered_afterwards() {
    let dns = TestDns::start(zone());
    let sink = Sink::start(Behaviour::Defer);
    let (t, max) = start(&dns, &sink).await;
    let id = t.server.outbound().submit(submission(&max, "anna@outside.test", "persistent")).await.expect("queued");

    // The first attempt is deferred by the outside server.
    let deadline = Instant::now() + WAIT;
    loop {
        let queue = t.server.store().queue_list(Scope::Platform).await.expect("list");
        if queue.first().is_some_and(|m| m.recipients[0].attempts >= 1) {
            assert_eq!(queue[0].queue_id, id.as_str());
            break;
        }
        assert!(Instant::now() < deadline, "no attempt was recorded: {queue:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let TestServer { server, config, dir } = t;
    server.shutdown().await;

    sink.set_behaviour(Behaviour::Accept);
    let server = Server::start(&config).await.expect("restart");
    let queue = server.store().queue_list(Scope::Platform).await.expect("list");
    assert_eq!(queue.len(), 1, "the queued message is still there after the restart");
    // The operator does not want to wait for the backoff.
    server.store().queue_retry(Scope::Platform, id.as_str()).await.expect("retry");
    let mail = sink.arrived(1, WAIT).await.remove(0);
    assert!(mail.text().contains("Subject: persistent\r\n"));
    server.shutdown().await;
    drop(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_client_submits_and_the_mail_goes_out_signed() {
    let dns = TestDns::start(zone());
    let sink = Sink::start(Behaviour::Accept);
    let (t, _max) = start(&dns, &sink).await;
    let args = vec![
        "--host=localhost".to_string(),
        format!("--port={}", t.port("submission")),
        "--tls=on".into(),
        "--tls-starttls=on".into(),
        format!("--tls-trust-file={}", t.cert().display()),
        "--auth=plain".into(),
        "--user=max@acme.example".into(),
        format!("--passwordeval=echo {}", common::PASSWORD),
        "--from=max@acme.example".into(),
        "anna@outside.test".into(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new("msmtp")
            .args(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("msmtp must be installed (Debian package msmtp)");
        let message = "From: Max <max@acme.example>\nTo: anna@outside.test\nSubject: via msmtp\n\nHallo Anna\n";
        child.stdin.take().expect("stdin").write_all(message.as_bytes()).expect("write");
        child.wait_with_output().expect("msmtp ran")
    })
    .await
    .expect("join");
    assert!(out.status.success(), "msmtp: {}", String::from_utf8_lossy(&out.stderr));

    let mail = sink.arrived(1, WAIT).await.remove(0);
    assert_eq!(mail.rcpt_to, ["anna@outside.test"]);
    assert!(mail.text().contains("Subject: via msmtp\r\n"), "{}", mail.text());
    let verifier = postfach_dns::resolver::authenticator(Some(dns.addr())).expect("verifier");
    let parsed = AuthenticatedMessage::parse(&mail.data).expect("parse");
    let results = verifier.verify_dkim(&parsed).await;
    assert!(results.iter().any(|r| r.result() == &DkimResult::Pass), "{results:?}");
    t.server.shutdown().await;
}

/// Sends one message from friend@outside.test to max@acme.example over the real MX with
/// Python's smtplib.
fn mx_send(port: u16, subject: &str) {
    let script = "import smtplib, os\n\
        msg = 'From: friend@outside.test\\r\\nTo: max@acme.example\\r\\nSubject: ' + os.environ['SUBJECT'] + '\\r\\nMessage-ID: <' + os.environ['SUBJECT'] + '@outside.test>\\r\\n\\r\\nHello.\\r\\n'\n\
        s = smtplib.SMTP('127.0.0.1', int(os.environ['PORT']))\n\
        s.sendmail('friend@outside.test', ['max@acme.example'], msg)\n\
        s.quit()\nprint('SENT')\n";
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .env("PORT", port.to_string())
        .env("SUBJECT", subject)
        .output()
        .expect("python3 runs");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "SENT", "{}", String::from_utf8_lossy(&output.stderr));
}

/// A Sieve `vacation` at delivery over the MX: the first message from a sender gets one
/// reply, queued with the null sender and DKIM-signed, arriving at the sender's server;
/// the second message from the same sender gets none. Both messages are kept.
#[tokio::test(flavor = "multi_thread")]
async fn sieve_vacation_replies_once_per_sender_dkim_signed() {
    let dns = TestDns::start(zone());
    let sink = Sink::start(Behaviour::Accept);
    let (t, max) = start(&dns, &sink).await;
    let store: &Store = t.server.store();
    let admin = postfach_admin::Admin::new(store.clone(), t.server.authenticator().clone(), None);
    let who = postfach_admin::Who::Mailbox { mailbox: max.clone() };
    let script = "require \"vacation\";\nvacation :days 7 :subject \"Away\" \"I am away until Monday.\";\n";
    admin.put_script(&who, max.id, "away", script).await.expect("script stored");
    admin.activate_script(&who, max.id, Some("away")).await.expect("script active");
    let mx = t.server.addresses().first("smtp").expect("smtp listener").port();

    mx_send(mx, "first");
    let received = sink.arrived(1, WAIT).await;
    assert_eq!(received[0].rcpt_to, vec!["friend@outside.test".to_string()]);
    assert_eq!(received[0].mail_from, "", "replies go out with the null sender");
    let reply = String::from_utf8_lossy(&received[0].data).into_owned();
    assert!(reply.contains("Subject: Away") && reply.contains("Auto-Submitted: auto-replied"), "{reply}");
    assert!(reply.contains("DKIM-Signature:"), "{reply}");

    mx_send(mx, "second");
    inbox(&t.server, &max, 2).await;
    // The reply would have been queued before the second 250: wait until the queue is
    // empty, then nothing more may have reached the sender.
    let deadline = Instant::now() + WAIT;
    while !store.queue_list(Scope::Platform).await.expect("queue").is_empty() {
        assert!(Instant::now() < deadline, "the queue never emptied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sink.received().len(), 1, "one reply per sender within :days");
    t.server.shutdown().await;
}

/// REQUIRETLS (RFC 8689) and unadvertised parameters with Python's smtplib: the MX in
/// plaintext neither advertises nor takes REQUIRETLS and answers `555` to parameters it
/// did not advertise; submission over STARTTLS advertises and takes it, and a message
/// for a domain that publishes no MTA-STS or DANE comes back to its sender in plain words
/// instead of going out with an unverified certificate.
#[tokio::test(flavor = "multi_thread")]
async fn requiretls_is_advertised_over_tls_and_unknown_parameters_get_555() {
    let dns = TestDns::start(zone());
    let sink = Sink::start(Behaviour::Accept);
    let (t, max) = start(&dns, &sink).await;
    let script = "import smtplib, ssl, os\n\
        out = []\n\
        m = smtplib.SMTP('127.0.0.1', int(os.environ['MX']))\n\
        m.ehlo('client.outside.test')\n\
        out.append('mx-ehlo-requiretls=%s' % m.has_extn('requiretls'))\n\
        out.append('mx-requiretls=%d' % m.mail('friend@outside.test', ['REQUIRETLS'])[0])\n\
        out.append('mx-ret=%d' % m.mail('friend@outside.test', ['RET=HDRS'])[0])\n\
        out.append('mx-envid=%d' % m.mail('friend@outside.test', ['ENVID=x1'])[0])\n\
        out.append('mx-mail=%d' % m.mail('friend@outside.test')[0])\n\
        out.append('mx-notify=%d' % m.rcpt('max@acme.example', ['NOTIFY=NEVER'])[0])\n\
        m.quit()\n\
        s = smtplib.SMTP('localhost', int(os.environ['SUB']))\n\
        s.starttls(context=ssl.create_default_context(cafile=os.environ['CA']))\n\
        s.ehlo('client.acme.example')\n\
        out.append('sub-ehlo-requiretls=%s' % s.has_extn('requiretls'))\n\
        s.login('max@acme.example', os.environ['PW'])\n\
        msg = 'From: max@acme.example\\r\\nTo: anna@outside.test\\r\\nSubject: secret\\r\\n\\r\\nOnly over TLS.\\r\\n'\n\
        s.sendmail('max@acme.example', ['anna@outside.test'], msg, mail_options=['REQUIRETLS'])\n\
        s.quit()\n\
        print(' '.join(out))\n";
    let (mx, sub, ca) = (t.port("smtp"), t.port("submission"), t.cert().display().to_string());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .env("MX", mx.to_string())
            .env("SUB", sub.to_string())
            .env("CA", ca)
            .env("PW", common::PASSWORD)
            .output()
            .expect("python3 runs")
    })
    .await
    .expect("join");
    let said = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert_eq!(
        said,
        "mx-ehlo-requiretls=False mx-requiretls=555 mx-ret=555 mx-envid=555 mx-mail=250 mx-notify=555 \
         sub-ehlo-requiretls=True",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let texts = inbox(&t.server, &max, 1).await;
    let dsn = &texts[0];
    assert!(dsn.contains("Status: 5.7.10"), "{dsn}");
    assert!(dsn.contains("REQUIRETLS") && dsn.contains("neither MTA-STS nor DANE"), "{dsn}");
    assert!(sink.received().is_empty(), "not sent with an unverified certificate");
    t.server.shutdown().await;
}
