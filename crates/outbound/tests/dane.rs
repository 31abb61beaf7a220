//! DANE for outbound mail (RFC 7672) against the signed test DNS server and real TLS
//! handshakes on 127.0.0.1: which hosts DANE applies to, and which certificates pass.

#[path = "support/dane_pki.rs"]
mod dane_pki;

use std::sync::Arc;

use dane_pki::{ServerCert, dane_ee_3_1_1, dane_ta_2_0_1, issued_by_private_ca, self_signed};
use postfach_outbound::dane::{Dane, DaneResolver, Tlsa, verifying_connector};
use postfach_testdns::{Data, Rr, TestDns};
use rustls::pki_types::ServerName;
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

    assert_eq!(
        w.resolver.host("secure.test", "mx.secure.test").await,
        Dane::Verify(vec![tlsa(&ee)]),
        "PKIX-EE dropped"
    );
    assert_eq!(w.resolver.host("no-tlsa.test", "mx.no-tlsa.test").await, Dane::NotApplicable);
    assert_eq!(w.resolver.host("pkix-only.test", "mx.pkix-only.test").await, Dane::EncryptOnly);
    assert_eq!(w.resolver.host("insecure.test", "mx.insecure.test").await, Dane::NotApplicable);
    assert_eq!(w.resolver.host("unsigned-mx.test", "mx.secure.test").await, Dane::NotApplicable);
    for (domain, host) in [("forged.test", "mx.forged.test"), ("forged-mx.test", "mx.forged-mx.test")] {
        let answer = w.resolver.host(domain, host).await;
        assert!(matches!(&answer, Dane::Defer(why) if why.contains("cannot be trusted")), "{domain}: {answer:?}");
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
    let connector = verifying_connector(records.iter().map(tlsa).collect()).expect("connector");
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
