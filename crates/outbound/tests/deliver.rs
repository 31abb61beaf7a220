//! The outbound queue against real sockets: a test DNS zone, a receiving SMTP server on
//! 127.0.0.1, and the store on SQLite. Mail goes out DKIM-signed over STARTTLS, failures
//! come back as notifications in the sender's INBOX, local mail never touches the network,
//! and the rate limit holds.

#[path = "support/sink.rs"]
mod sink;

use std::time::Duration;

use mail_auth::DkimOutput;
use mail_auth::{AuthenticatedMessage, DkimResult};
use postfach_blob::{Backend, BlobStore, Namespace};
use postfach_outbound::{Outbound, OutboundError, OutboundSettings, Submission};
use postfach_store::delivery::DeliveryBatcher;
use postfach_store::mailboxes::MailboxSettings;
use postfach_store::{Scope, Store};
use postfach_testdns::{Data, Rr, TestDns};
use postfach_types::{CustomerName, DomainName, EmailAddress, MailboxId, Role, UnixTime};
use sink::{Behaviour, Sink};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA";
const WAIT: Duration = Duration::from_secs(30);

struct World {
    store: Store,
    outbound: Outbound,
    dns: TestDns,
    sink: Sink,
    max: MailboxId,
    erika: MailboxId,
    stop: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

fn address(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("address")
}

/// acme.example with mailboxes max and erika (and its DKIM key published); outside.test
/// with an MX pointing at the sink; nomail.test with a null MX.
async fn world(behaviour: Behaviour, rate_limit_per_hour: u32) -> World {
    world_with(behaviour, rate_limit_per_hour, |_| {}).await
}

async fn world_with(
    behaviour: Behaviour,
    rate_limit_per_hour: u32,
    adjust: impl FnOnce(&mut OutboundSettings),
) -> World {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&format!("sqlite://{}/postfach.sqlite", dir.path().display())).await.expect("store");
    let customer = store.add_customer(&CustomerName::parse("acme").expect("n"), HASH, Role::Customer).await.expect("c");
    let acme = DomainName::parse("acme.example").expect("d");
    store.add_domain(customer.id, &acme, true).await.expect("domain");
    let add = |local: &str| {
        let store = store.clone();
        let address = address(&format!("{local}@acme.example"));
        async move { store.add_mailbox(Scope::Platform, &address, HASH, MailboxSettings::default()).await.expect("mb").id }
    };
    let (max, erika) = (add("max").await, add("erika").await);
    let key = postfach_dns::dkim::ensure_key(&store, Scope::Platform, &acme).await.expect("DKIM key");

    let sink = Sink::start(behaviour);
    let dns = TestDns::start([
        Rr::new("outside.test", Data::Mx(10, "mx.outside.test".into())),
        Rr::new("mx.outside.test", Data::A("127.0.0.1".parse().expect("ip"))),
        Rr::new("nomail.test", Data::Mx(0, ".".into())),
        Rr::new(
            &postfach_dns::dkim::record_name(&key.selector, &acme),
            Data::txt(&postfach_dns::dkim::record_value(&key.public_key)),
        ),
    ]);
    let blobs = BlobStore::open(&Backend::Fs, dir.path(), Namespace::Mailboxes).expect("blobs");
    let spool = BlobStore::open(&Backend::Fs, dir.path(), Namespace::Queue).expect("spool");
    let mut settings = OutboundSettings {
        hostname: DomainName::parse("mail.postfach.test").expect("host"),
        resolver: Some(dns.addr()),
        smtp_port: sink.port(),
        source_ips: Vec::new(),
        queue_lifetime: Duration::from_secs(432_000),
        rate_limit_per_hour,
        delay_warning: None,
        node: postfach_types::NodeName::parse("node-a").expect("node"),
        claims: postfach_outbound::ClaimTiming::default(),
        sieve_redirect: Default::default(),
        tls_roots: Vec::new(),
        dnssec_trust_anchor: None,
        mta_sts_port: 443,
        tls_reports: true,
    };
    adjust(&mut settings);
    let outbound = Outbound::new(store.clone(), blobs, spool, DeliveryBatcher::start(store.clone()), settings);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(outbound.clone().run(postfach_store::leader::Leader::always(), stopped));
    World { store, outbound, dns, sink, max, erika, stop, _dir: dir }
}

fn message(from: &str, to: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: Max <{from}>\r\nTo: {to}\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nHallo,\r\n.leading dot\r\nGrüße\r\n"
    )
    .into_bytes()
}

fn submission(world: &World, to: &[&str], subject: &str) -> Submission {
    Submission {
        mailbox_id: world.max,
        client: None,
        require_tls: false,
        return_path: Some(address("max@acme.example")),
        recipients: to.iter().map(|a| address(a)).collect(),
        message: message("max@acme.example", &to.join(", "), subject),
    }
}

/// The texts of the messages in a mailbox's INBOX.
async fn inbox(world: &World, mailbox: MailboxId) -> Vec<String> {
    let folders = world.store.folders(mailbox).await.expect("folders");
    let inbox = folders.iter().find(|f| f.name == "INBOX").expect("INBOX");
    let blobs = BlobStore::open(&Backend::Fs, world._dir.path(), Namespace::Mailboxes).expect("blobs");
    let mut texts = Vec::new();
    for m in world.store.messages(mailbox, inbox.id).await.expect("messages") {
        let bytes = blobs.get(&m.blob).await.expect("blob");
        texts.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    texts
}

async fn wait_for_inbox(world: &World, mailbox: MailboxId, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let texts = inbox(world, mailbox).await;
        if texts.len() >= n {
            return texts;
        }
        assert!(std::time::Instant::now() < deadline, "{} of {n} messages arrived: {texts:?}", texts.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn queue_is_empty(world: &World) {
    let deadline = std::time::Instant::now() + WAIT;
    while !world.store.queue_list(Scope::Platform).await.expect("list").is_empty() {
        assert!(std::time::Instant::now() < deadline, "the queue never emptied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mail_to_an_outside_domain_arrives_signed_over_starttls() {
    let w = world(Behaviour::Accept, 500).await;
    let id =
        w.outbound.submit(submission(&w, &["Anna@Outside.test", "bob@outside.test"], "Angebot")).await.expect("ok");
    assert_eq!(id.as_str().len(), 16);
    let received = w.sink.arrived(1, WAIT).await;
    assert_eq!(received.len(), 1, "one transaction for both recipients at one domain");
    let mail = &received[0];
    assert_eq!(mail.mail_from, "max@acme.example");
    assert_eq!(mail.rcpt_to, ["anna@outside.test", "bob@outside.test"]);
    assert_eq!(mail.helo, "mail.postfach.test");
    assert!(mail.tls, "delivered over STARTTLS although the certificate is self-signed");
    let text = mail.text();
    assert!(text.starts_with("DKIM-Signature: "), "{text}");
    assert!(text.contains("d=acme.example") && text.contains("a=rsa-sha256") && text.contains("c=relaxed/relaxed"));
    assert!(text.contains("\r\n.leading dot\r\n"), "dot-stuffing undone: {text}");
    assert!(text.contains("Message-ID: <") && text.contains("Date: "), "completed headers: {text}");

    // The signature verifies against the published key, through a real DNS lookup.
    let verifier = postfach_dns::resolver::authenticator(Some(w.dns.addr())).expect("verifier");
    let parsed = AuthenticatedMessage::parse(&mail.data).expect("parse");
    let results: Vec<DkimOutput<'_>> = verifier.verify_dkim(&parsed).await;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].result(), &DkimResult::Pass, "{results:?}");
    let signed: Vec<String> =
        results[0].signature().expect("signature").h.iter().map(|h| h.to_ascii_lowercase()).collect();
    for header in ["from", "to", "subject", "date", "message-id", "mime-version", "content-type"] {
        assert!(signed.iter().any(|h| h == header), "{header} is signed: {signed:?}");
    }
    queue_is_empty(&w).await;
    let _ = w.stop.send(true);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_recipient_and_a_null_mx_come_back_as_one_notification_each() {
    let w = world(Behaviour::Reject, 500).await;
    w.outbound.submit(submission(&w, &["nobody@outside.test"], "Refused")).await.expect("queued");
    let texts = wait_for_inbox(&w, w.max, 1).await;
    let dsn = &texts[0];
    assert!(dsn.starts_with("Return-Path: <>\r\n"), "{dsn}");
    assert!(dsn.contains("Subject: Undelivered Mail Returned to Sender"), "{dsn}");
    assert!(dsn.contains("multipart/report; report-type=delivery-status"), "{dsn}");
    assert!(dsn.contains("Final-Recipient: rfc822; nobody@outside.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"));
    assert!(dsn.contains("Diagnostic-Code: smtp; 550 5.1.1 no such user here"), "{dsn}");
    assert!(dsn.contains("Remote-MTA: dns; mx.outside.test"), "{dsn}");
    assert!(dsn.contains("Subject: Refused"), "the original header is attached: {dsn}");
    queue_is_empty(&w).await;

    w.outbound.submit(submission(&w, &["someone@nomail.test"], "Null MX")).await.expect("queued");
    let texts = wait_for_inbox(&w, w.max, 2).await;
    let dsn = &texts[1];
    assert!(dsn.contains("Final-Recipient: rfc822; someone@nomail.test\r\nAction: failed\r\nStatus: 5.1.10\r\n"));
    assert!(dsn.contains("does not accept mail"), "{dsn}");
    assert_eq!(w.sink.attempts().len(), 1, "the null MX domain was never contacted");
    queue_is_empty(&w).await;
    let _ = w.stop.send(true);
}

#[tokio::test(flavor = "multi_thread")]
async fn local_recipients_are_delivered_straight_into_their_mailboxes() {
    let w = world(Behaviour::Accept, 500).await;
    // Purely local: delivered when submit returns, nothing queued.
    w.outbound.submit(submission(&w, &["erika@acme.example"], "Intern")).await.expect("delivered");
    let texts = inbox(&w, w.erika).await;
    assert_eq!(texts.len(), 1, "delivered before submit returned");
    assert!(texts[0].starts_with("Return-Path: <max@acme.example>\r\n"), "{}", texts[0]);
    assert!(w.store.queue_list(Scope::Platform).await.expect("list").is_empty());

    // Mixed: the local copy and the outside copy both arrive; an unknown local address
    // bounces without touching the network.
    w.outbound
        .submit(submission(&w, &["erika@acme.example", "anna@outside.test", "ghost@acme.example"], "Gemischt"))
        .await
        .expect("queued");
    wait_for_inbox(&w, w.erika, 2).await;
    let bounce = wait_for_inbox(&w, w.max, 1).await;
    assert!(bounce[0].contains("Final-Recipient: rfc822; ghost@acme.example\r\nAction: failed\r\nStatus: 5.1.1"));
    let received = w.sink.arrived(1, WAIT).await;
    assert_eq!(received[0].rcpt_to, ["anna@outside.test"], "only the outside recipient went out");
    queue_is_empty(&w).await;
    let _ = w.stop.send(true);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sending_rate_limit_is_per_mailbox() {
    let w = world(Behaviour::Accept, 2).await;
    for subject in ["one", "two"] {
        w.outbound.submit(submission(&w, &["erika@acme.example"], subject)).await.expect("allowed");
    }
    let refused = w.outbound.submit(submission(&w, &["erika@acme.example"], "three")).await;
    match refused {
        Err(OutboundError::RateLimited { retry_after_secs }) => assert!((1..=1800).contains(&retry_after_secs)),
        other => panic!("expected the rate limit, got {other:?}"),
    }
    let mut other = submission(&w, &["max@acme.example"], "from erika");
    other.mailbox_id = w.erika;
    w.outbound.submit(other).await.expect("another mailbox has its own allowance");
    assert_eq!(inbox(&w, w.erika).await.len(), 2);
    let _ = w.stop.send(true);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deferred_message_waits_and_is_delivered_when_retried() {
    let w = world(Behaviour::Defer, 500).await;
    w.outbound.submit(submission(&w, &["anna@outside.test"], "Later")).await.expect("queued");
    let queue = {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let q = w.store.queue_list(Scope::Platform).await.expect("list");
            if q.first().is_some_and(|m| m.recipients[0].attempts == 1) {
                break q;
            }
            assert!(std::time::Instant::now() < deadline, "the attempt was never recorded: {q:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let r = &queue[0].recipients[0];
    assert_eq!(r.status.as_deref(), Some("4.3.0"));
    assert!(r.diagnostic.as_deref().is_some_and(|d| d.contains("451 4.3.0 try again later")), "{r:?}");
    assert!(r.tls.as_deref().is_some_and(|t| t.starts_with("TLSv1.")), "TLS state recorded: {r:?}");
    assert!(r.next_attempt_at.0 >= UnixTime::now().0 + 250, "retried after about five minutes: {r:?}");
    assert!(inbox(&w, w.max).await.is_empty(), "a temporary failure bounces nothing");

    w.sink.set_behaviour(Behaviour::Accept);
    assert_eq!(w.store.queue_retry(Scope::Platform, &queue[0].queue_id).await.expect("retry"), 1);
    w.sink.arrived(1, WAIT).await;
    queue_is_empty(&w).await;
    let _ = w.stop.send(true);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delayed_message_warns_its_sender_once() {
    let w = world_with(Behaviour::Defer, 500, |s| s.delay_warning = Some(Duration::ZERO)).await;
    w.outbound.submit(submission(&w, &["anna@outside.test"], "Slow")).await.expect("queued");
    let texts = wait_for_inbox(&w, w.max, 1).await;
    let warning = &texts[0];
    assert!(warning.contains("Subject: Delayed Mail (still being retried)"), "{warning}");
    assert!(warning.contains("Action: delayed\r\nStatus: 4.3.0\r\n"), "{warning}");
    assert!(warning.contains("Will-Retry-Until: "), "{warning}");
    assert!(warning.contains("Nothing needs\r\nto be done"), "{warning}");
    let q = w.store.queue_list(Scope::Platform).await.expect("list");
    assert_eq!(q.len(), 1, "still queued after the warning");
    assert!(q[0].recipients[0].delay_warned);
    let _ = w.stop.send(true);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_past_the_queue_lifetime_is_returned() {
    let w = world_with(Behaviour::Defer, 500, |s| s.queue_lifetime = Duration::ZERO).await;
    w.outbound.submit(submission(&w, &["anna@outside.test"], "Too late")).await.expect("queued");
    let texts = wait_for_inbox(&w, w.max, 1).await;
    let dsn = &texts[0];
    assert!(dsn.contains("Action: failed\r\nStatus: 4.4.7\r\n"), "{dsn}");
    assert!(dsn.contains("not delivered in time; last problem: 451 4.3.0 try again later"), "{dsn}");
    queue_is_empty(&w).await;
    let _ = w.stop.send(true);
}

#[tokio::test(flavor = "multi_thread")]
async fn mail_leaves_from_the_configured_address() {
    let source: std::net::IpAddr = "127.0.0.2".parse().expect("ip");
    let w =
        world_with(Behaviour::Accept, 500, |s| s.source_ips = vec!["2001:db8::25".parse().expect("v6"), source]).await;
    w.outbound.submit(submission(&w, &["anna@outside.test"], "Von hier")).await.expect("queued");
    let received = w.sink.arrived(1, WAIT).await;
    assert_eq!(received[0].peer, source, "sent from the IPv4 address of [outbound] ips");
    let _ = w.stop.send(true);
}
