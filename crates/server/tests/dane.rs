//! DANE for outbound mail with the whole server running: `[dns] trust_anchor` makes the
//! queue's DNSSEC validation trust the signed test zone; a receiving server whose
//! certificate matches its TLSA record gets the mail over TLS; when an attacker strips
//! STARTTLS, the mail waits in the queue instead of going out in plaintext.

mod common;
#[path = "../../outbound/tests/support/dane_pki.rs"]
mod dane_pki;
#[path = "../../outbound/tests/support/sink.rs"]
mod sink;

use std::time::{Duration, Instant};

use common::TestServer;
use postfach_outbound::Submission;
use postfach_store::Scope;
use postfach_store::queue::QueuedMessage;
use postfach_testdns::{Data, Rr, TestDns};
use postfach_types::EmailAddress;
use sink::{Behaviour, Sink};

const WAIT: Duration = Duration::from_secs(30);

fn address(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("address")
}

/// A server whose outbound lookups go to the signed `dns`, trusting its key.
async fn start(dns: &TestDns, sink: &Sink, dir: &tempfile::TempDir) -> TestServer {
    let anchor = dir.path().join("root.key");
    std::fs::write(&anchor, dns.trust_anchor().expect("signed zone")).expect("write the trust anchor");
    let (resolver, port) = (dns.addr(), sink.port());
    TestServer::start_with(|c| {
        c.dns.resolver = Some(resolver);
        c.dns.trust_anchor = Some(anchor);
        c.outbound.smtp_port = port;
    })
    .await
}

async fn submit(t: &TestServer, subject: &str) {
    let max = t.mailbox("max@acme.example", Default::default()).await;
    let submission = Submission {
        mailbox_id: max.id,
        client: None,
        require_tls: false,
        return_path: Some(address("max@acme.example")),
        recipients: vec![address("anna@dane.test")],
        message: format!(
            "From: <max@acme.example>\r\nTo: <anna@dane.test>\r\nSubject: {subject}\r\n\
             Message-ID: <{subject}@acme.example>\r\n\r\nGuten Tag!\r\n"
        )
        .into_bytes(),
    };
    t.server.outbound().submit(submission).await.expect("queued");
}

fn zone(tlsa: Data) -> Vec<Rr> {
    vec![
        Rr::new("dane.test", Data::Mx(10, "mx.dane.test".into())),
        Rr::new("mx.dane.test", Data::A("127.0.0.1".parse().expect("ip"))),
        Rr::new("_25._tcp.mx.dane.test", tlsa),
    ]
}

#[tokio::test]
async fn mail_goes_to_a_dane_server_over_tls_with_the_certificate_its_tlsa_record_names() {
    let cert = dane_pki::self_signed("mx.dane.test");
    let dns = TestDns::start_signed(zone(dane_pki::dane_ee_3_1_1(&cert)));
    let sink = Sink::start_with_certificate(Behaviour::Accept, cert.chain.clone(), cert.key());
    let dir = tempfile::tempdir().expect("temp dir");
    let t = start(&dns, &sink, &dir).await;
    submit(&t, "dane").await;
    let deadline = Instant::now() + WAIT;
    while sink.received().is_empty() {
        assert!(Instant::now() < deadline, "the mail did not arrive");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sink.received()[0].tls, "delivered over STARTTLS");
}

#[tokio::test]
async fn a_stripped_starttls_keeps_the_mail_queued_instead_of_sending_it_in_plaintext() {
    let cert = dane_pki::self_signed("mx.dane.test");
    let dns = TestDns::start_signed(zone(dane_pki::dane_ee_3_1_1(&cert)));
    let sink = Sink::start_with_certificate(Behaviour::Accept, cert.chain.clone(), cert.key());
    sink.strip_starttls();
    let dir = tempfile::tempdir().expect("temp dir");
    let t = start(&dns, &sink, &dir).await;
    submit(&t, "stripped").await;
    let deadline = Instant::now() + WAIT;
    let deferred: QueuedMessage = loop {
        let queue = t.server.store().queue_list(Scope::Platform).await.expect("list");
        if let Some(message) = queue.into_iter().find(|m| m.recipients[0].attempts >= 1) {
            break message;
        }
        assert!(Instant::now() < deadline, "no delivery attempt was recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let recipient = &deferred.recipients[0];
    assert_eq!(recipient.status.as_deref(), Some("4.7.5"), "{recipient:?}");
    assert!(recipient.diagnostic.as_deref().is_some_and(|d| d.contains("DANE")), "{recipient:?}");
    assert!(sink.attempts().is_empty() && sink.received().is_empty(), "nothing was sent in plaintext");
}
