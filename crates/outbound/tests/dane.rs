//! DANE for outbound mail (RFC 7672) against the signed test DNS server, real TLS
//! handshakes and a receiving SMTP server on 127.0.0.1: which hosts DANE applies to, which
//! certificates pass, and what delivery does with a matching certificate, a mismatching
//! one, a stripped STARTTLS, an insecure zone and forged (bogus) DNS answers.

#[path = "support/dane_pki.rs"]
mod dane_pki;
#[path = "support/sink.rs"]
mod sink;

use std::sync::Arc;
use std::time::Duration;

use dane_pki::{ServerCert, dane_ee_3_1_1, dane_ta_2_0_1, issued_by_private_ca, self_signed};
use postfach_outbound::client::{self, Attempt, Envelope, RcptResult, Target, Timeouts, TlsClients};
use postfach_outbound::dane::{Dane, DaneResolver, Tlsa};
use postfach_outbound::mx;
use postfach_outbound::tls_policy::{DaneAnswer, Demand, Destination, PolicySource};
use postfach_testdns::{Data, Rr, TestDns};
use postfach_types::EmailAddress;
use rustls::pki_types::ServerName;
use sink::{Behaviour, Sink};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn a_record() -> Data {
    Data::A("127.0.0.1".parse().expect("IPv4"))
}

fn tlsa(data: &Data) -> Tlsa {
    let Data::Tlsa { usage, selector, matching, data } = data else { panic!("not a TLSA record") };
    Tlsa { usage: *usage, selector: *selector, matching: *matching, data: data.clone() }
}

/// A signed zone with one domain per case, the trust anchor in a file, and the resolver.
struct World {
    dns: TestDns,
    resolver: DaneResolver,
    _dir: tempfile::TempDir,
}

fn world(records: Vec<Rr>) -> World {
    let dns = TestDns::start_signed(records);
    let dir = tempfile::tempdir().expect("temp dir");
    let anchor = dir.path().join("root.key");
    std::fs::write(&anchor, dns.trust_anchor().expect("signed")).expect("write anchor");
    let resolver = DaneResolver::new(Some(dns.addr()), Some(&anchor)).expect("resolver");
    World { dns, resolver, _dir: dir }
}

fn mx_domain(domain: &str, records: Vec<Data>) -> Vec<Rr> {
    let host = format!("mx.{domain}");
    let mut rrs = vec![Rr::new(domain, Data::Mx(10, host.clone())), Rr::new(&host, a_record())];
    rrs.extend(records.into_iter().map(|r| Rr::new(&format!("_25._tcp.{host}"), r)));
    rrs
}

#[tokio::test]
async fn dane_applies_only_where_mx_address_and_tlsa_are_all_secure() {
    let ee = Data::Tlsa { usage: 3, selector: 1, matching: 1, data: vec![7; 32] };
    let pkix = Data::Tlsa { usage: 1, selector: 1, matching: 1, data: vec![7; 32] };
    let mut records = Vec::new();
    records.extend(mx_domain("secure.test", vec![ee.clone(), pkix.clone()]));
    records.extend(mx_domain("no-tlsa.test", vec![]));
    records.extend(mx_domain("pkix-only.test", vec![pkix]));
    records.extend(mx_domain("insecure.test", vec![ee.clone()]));
    records.extend(mx_domain("forged.test", vec![ee.clone()]));
    records.extend(mx_domain("forged-mx.test", vec![ee.clone()]));
    // The MX is in an unsigned zone, its host in a signed one.
    records.push(Rr::new("unsigned-mx.test", Data::Mx(10, "mx.secure.test".into())));
    let w = world(records);
    w.dns.set_unsigned_zone("insecure.test");
    w.dns.set_unsigned_zone("unsigned-mx.test");
    w.dns.set_bogus("_25._tcp.mx.forged.test");
    w.dns.set_bogus("forged-mx.test");

    let answer = |domain: &'static str| {
        let resolver = w.resolver.clone();
        async move { resolver.answer(domain, &format!("mx.{domain}")).await }
    };
    assert!(matches!(answer("secure.test").await, DaneAnswer::Usable(_)));
    assert!(matches!(answer("no-tlsa.test").await, DaneAnswer::NotApplicable));
    assert!(matches!(answer("pkix-only.test").await, DaneAnswer::Unusable), "PKIX-EE is unusable for SMTP");
    assert!(matches!(answer("insecure.test").await, DaneAnswer::NotApplicable));
    assert!(matches!(w.resolver.answer("unsigned-mx.test", "mx.secure.test").await, DaneAnswer::NotApplicable));
    for domain in ["forged.test", "forged-mx.test"] {
        let answer = answer(domain).await;
        assert!(
            matches!(&answer, DaneAnswer::Defer(why) if why.contains("cannot be trusted") && why.contains("administrator should check")),
            "{domain}: {answer:?}"
        );
    }
}

/// A TLS server on 127.0.0.1 presenting `cert` once; returns its port.
async fn tls_server(cert: &ServerCert) -> u16 {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(cert.chain.clone(), cert.key())
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else { return };
        if let Ok(mut tls) = acceptor.accept(tcp).await {
            let _ = tls.write_all(b"hello").await;
            let _ = tls.shutdown().await;
        }
    });
    port
}

/// Whether a client holding `records` completes a handshake with a server showing `cert`
/// under the MX host name `name`.
async fn handshake(cert: &ServerCert, records: &[Data], name: &str) -> Result<(), String> {
    let port = tls_server(cert).await;
    let verifier = Arc::new(Dane::verifier(records.iter().map(tlsa).collect()));
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let name = ServerName::try_from(name.to_string()).expect("name");
    let mut tls = connector.connect(name, tcp).await.map_err(|e| e.to_string())?;
    let mut greeting = Vec::new();
    tls.read_to_end(&mut greeting).await.map_err(|e| e.to_string())?;
    assert_eq!(greeting, b"hello");
    Ok(())
}

#[tokio::test]
async fn dane_ee_matches_the_servers_key_whatever_its_name() {
    let cert = self_signed("some-other-name.example");
    assert_eq!(handshake(&cert, &[dane_ee_3_1_1(&cert)], "mx.secure.test").await, Ok(()));
    let stranger = self_signed("mx.secure.test");
    let refused = handshake(&stranger, &[dane_ee_3_1_1(&cert)], "mx.secure.test").await;
    assert!(refused.is_err_and(|e| e.contains("matches none of its TLSA records")));
}

#[tokio::test]
async fn dane_ta_needs_a_chain_to_the_named_ca_and_the_mx_host_name() {
    let cert = issued_by_private_ca("mx.secure.test");
    assert_eq!(handshake(&cert, &[dane_ta_2_0_1(&cert)], "mx.secure.test").await, Ok(()));
    // The same chain for another host name: the CA vouches for mx.secure.test only.
    assert!(handshake(&cert, &[dane_ta_2_0_1(&cert)], "mx.other.test").await.is_err());
    // Another CA's record.
    let other = issued_by_private_ca("mx.secure.test");
    assert!(handshake(&cert, &[dane_ta_2_0_1(&other)], "mx.secure.test").await.is_err());
    // A DANE-EE record for the CA's key does not make the CA's server certificate match.
    let ta_as_ee = Data::Tlsa {
        usage: 3,
        selector: 0,
        matching: 1,
        data: match dane_ta_2_0_1(&cert) {
            Data::Tlsa { data, .. } => data,
            _ => unreachable!(),
        },
    };
    assert!(handshake(&cert, &[ta_as_ee], "mx.secure.test").await.is_err());
}

fn timeouts() -> Timeouts {
    let short = Duration::from_secs(10);
    Timeouts {
        connect: short,
        greeting: short,
        command: short,
        data_init: short,
        data_block: short,
        data_end: short,
        quit: short,
        attempt: Duration::from_secs(30),
    }
}

/// One delivery to `domain` the way the queue makes it: MX route, DANE answer per host,
/// the TLS policy's requirement, the SMTP client; to a sink on `port`.
async fn deliver_to(w: &World, domain: &str, port: u16) -> Attempt {
    let plain = mx::resolver(Some(w.dns.addr())).expect("resolver");
    let hosts = mx::route(&plain, domain).await.expect("route");
    let destination = Destination { domain, mta_sts: None, demand: Demand::None };
    let mut targets = Vec::new();
    for host in hosts {
        let requirement = destination.for_host(&host.name, &w.resolver.answer(domain, &host.name).await);
        targets.push(Target { host, requirement });
    }
    let from = EmailAddress::parse("max@acme.example").expect("address");
    let to = [EmailAddress::parse(&format!("someone@{domain}")).expect("address")];
    let message = b"From: max@acme.example\r\nSubject: DANE\r\n\r\nsecret text\r\n";
    let envelope = Envelope { helo: "mail.postfach.test", from: Some(&from), recipients: &to, message };
    client::deliver_within(&targets, port, &[], envelope, &TlsClients::new(&[]), &timeouts()).await
}

/// A signed zone where dane.test's MX host publishes `tlsa`, and insecure.test (an
/// unsigned zone) publishes the same; forged.test's TLSA answer has a bad signature.
fn delivery_world(tlsa: Data) -> World {
    let mut records = Vec::new();
    for domain in ["dane.test", "insecure.test", "forged.test"] {
        records.extend(mx_domain(domain, vec![tlsa.clone()]));
    }
    let w = world(records);
    w.dns.set_unsigned_zone("insecure.test");
    w.dns.set_bogus("_25._tcp.mx.forged.test");
    w
}

fn assert_delivered(attempt: &Attempt, source: PolicySource) {
    assert_eq!(attempt.results, vec![RcptResult::Delivered], "{attempt:?}");
    assert_eq!(attempt.used.source, source, "{attempt:?}");
}

/// Deferred (temporary), with nothing of the message or its envelope given to the server.
fn assert_deferred_unsent(attempt: &Attempt, sink: &Sink, why: &str) {
    match &attempt.results[..] {
        [RcptResult::Unprotected(failure)] => {
            assert!(!failure.is_permanent(), "{failure:?}");
            assert!(failure.text.contains(why), "{failure:?}");
        }
        other => panic!("expected a deferral, got {other:?}"),
    }
    assert!(sink.attempts().is_empty(), "no recipient was given: {:?}", sink.attempts());
    assert!(sink.received().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn a_certificate_matching_dane_ee_gets_the_mail_over_tls() {
    let cert = self_signed("mx.dane.test");
    let w = delivery_world(dane_ee_3_1_1(&cert));
    let sink = Sink::start_with_certificate(Behaviour::Accept, cert.chain.clone(), cert.key());
    let attempt = deliver_to(&w, "dane.test", sink.port()).await;
    assert_delivered(&attempt, PolicySource::Dane);
    let received = sink.received();
    assert!(received.len() == 1 && received[0].tls, "delivered over STARTTLS: {received:?}");
}

#[tokio::test]
async fn a_chain_to_the_dane_ta_ca_gets_the_mail_over_tls() {
    let cert = issued_by_private_ca("mx.dane.test");
    let w = delivery_world(dane_ta_2_0_1(&cert));
    let sink = Sink::start_with_certificate(Behaviour::Accept, cert.chain.clone(), cert.key());
    assert_delivered(&deliver_to(&w, "dane.test", sink.port()).await, PolicySource::Dane);
    assert!(sink.received().iter().all(|m| m.tls) && sink.received().len() == 1);
}

#[tokio::test]
async fn a_certificate_not_matching_the_tlsa_records_is_not_given_the_mail() {
    let published = self_signed("mx.dane.test");
    let w = delivery_world(dane_ee_3_1_1(&published));
    let impostor = self_signed("mx.dane.test");
    let sink = Sink::start_with_certificate(Behaviour::Accept, impostor.chain.clone(), impostor.key());
    let attempt = deliver_to(&w, "dane.test", sink.port()).await;
    assert_eq!(attempt.used.source, PolicySource::Dane);
    assert_deferred_unsent(&attempt, &sink, "TLS handshake failed");
}

#[tokio::test]
async fn a_stripped_starttls_defers_instead_of_sending_in_plaintext() {
    let cert = self_signed("mx.dane.test");
    let w = delivery_world(dane_ee_3_1_1(&cert));
    let sink = Sink::start_with_certificate(Behaviour::Accept, cert.chain.clone(), cert.key());
    sink.strip_starttls();
    let attempt = deliver_to(&w, "dane.test", sink.port()).await;
    assert_eq!(attempt.used.source, PolicySource::Dane);
    assert_deferred_unsent(&attempt, &sink, "DANE");
}

#[tokio::test]
async fn tlsa_records_in_an_insecure_zone_fall_back_to_opportunistic_tls() {
    let published = self_signed("mx.insecure.test");
    let w = delivery_world(dane_ee_3_1_1(&published));
    // Neither the published certificate nor STARTTLS at all: without DNSSEC the records
    // mean nothing, and opportunistic TLS delivers anyway.
    let other = self_signed("mx.insecure.test");
    let sink = Sink::start_with_certificate(Behaviour::Accept, other.chain.clone(), other.key());
    assert_delivered(&deliver_to(&w, "insecure.test", sink.port()).await, PolicySource::Opportunistic);
    sink.strip_starttls();
    let plaintext = deliver_to(&w, "insecure.test", sink.port()).await;
    assert_eq!(plaintext.results, vec![RcptResult::Delivered], "{plaintext:?}");
    assert_ne!(plaintext.used.source, PolicySource::Dane);
    let received = sink.received();
    assert_eq!(received.iter().map(|m| m.tls).collect::<Vec<_>>(), [true, false]);
}

#[tokio::test]
async fn forged_tlsa_answers_defer_the_mail() {
    let cert = self_signed("mx.forged.test");
    let w = delivery_world(dane_ee_3_1_1(&cert));
    let sink = Sink::start_with_certificate(Behaviour::Accept, cert.chain.clone(), cert.key());
    let attempt = deliver_to(&w, "forged.test", sink.port()).await;
    assert_eq!(attempt.used.source, PolicySource::Dane);
    assert_deferred_unsent(&attempt, &sink, "could not be checked");
}
