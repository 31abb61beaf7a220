//! The signed test DNS server through hickory's own DNSSEC validator, trusting only the
//! server's key: signed data is secure, an unsigned zone is insecure, damaged signatures
//! are bogus, and denials of existence validate.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use hickory_proto::dnssec::{Proof, TrustAnchors};
use hickory_proto::rr::{RData, RecordType};
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};
use postfach_testdns::{Data, Rr, TestDns};

fn validating_resolver(dns: &TestDns) -> TokioResolver {
    let addr: SocketAddr = dns.addr();
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    let config = ResolverConfig::from_parts(None, vec![], vec![NameServerConfig::new(addr.ip(), true, vec![udp, tcp])]);
    let mut opts = ResolverOpts::default();
    opts.cache_size = 0;
    let anchor = TrustAnchors::from_str(&dns.trust_anchor().expect("signed server")).expect("trust anchor parses");
    Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(opts)
        .with_trust_anchor(Arc::new(anchor))
        .build()
        .expect("resolver")
}

fn tlsa() -> Data {
    Data::Tlsa { usage: 3, selector: 1, matching: 1, data: vec![0xab; 32] }
}

fn signed_server() -> TestDns {
    let dns = TestDns::start_signed([
        Rr::new("secure.example", Data::Mx(10, "mx.secure.example".into())),
        Rr::new("mx.secure.example", Data::A("127.0.0.1".parse().expect("IPv4"))),
        Rr::new("_25._tcp.mx.secure.example", tlsa()),
        Rr::new("mx.insecure.example", Data::A("127.0.0.1".parse().expect("IPv4"))),
        Rr::new("_25._tcp.mx.insecure.example", tlsa()),
        Rr::new("_25._tcp.mx.forged.example", tlsa()),
    ]);
    dns.set_unsigned_zone("insecure.example");
    dns.set_bogus("_25._tcp.mx.forged.example");
    dns
}

/// The proofs of the answer records of `rtype` (`Err` with the error text when the lookup fails).
async fn proofs(resolver: &TokioResolver, name: &str, rtype: RecordType) -> Result<Vec<Proof>, String> {
    let lookup = resolver.lookup(name, rtype).await.map_err(|e| e.to_string())?;
    Ok(lookup.answers().iter().filter(|r| r.record_type() == rtype).map(|r| r.proof).collect())
}

#[tokio::test]
async fn signed_data_is_secure_unsigned_zone_insecure_damaged_signature_bogus() {
    let dns = signed_server();
    let resolver = validating_resolver(&dns);

    assert_eq!(proofs(&resolver, "_25._tcp.mx.secure.example.", RecordType::TLSA).await, Ok(vec![Proof::Secure]));
    assert_eq!(proofs(&resolver, "secure.example.", RecordType::MX).await, Ok(vec![Proof::Secure]));
    assert_eq!(proofs(&resolver, "mx.secure.example.", RecordType::A).await, Ok(vec![Proof::Secure]));
    assert_eq!(proofs(&resolver, "_25._tcp.mx.insecure.example.", RecordType::TLSA).await, Ok(vec![Proof::Insecure]));

    let forged = proofs(&resolver, "_25._tcp.mx.forged.example.", RecordType::TLSA).await;
    assert_eq!(forged, Err("DNS error: DNSSEC validation failed".to_string()), "a forged answer is refused");
}

#[tokio::test]
async fn denials_of_existence_validate() {
    let dns = signed_server();
    let resolver = validating_resolver(&dns);
    // No AAAA at a name that exists, and no name at all: both secure "no records".
    for (name, rtype) in
        [("mx.secure.example.", RecordType::AAAA), ("_25._tcp.nothing.secure.example.", RecordType::TLSA)]
    {
        let error = resolver.lookup(name, rtype).await.expect_err("no records");
        assert!(error.is_no_records_found(), "{name} {rtype}: {error}");
    }
    // The same through a resolver that does not ask for DNSSEC records: plain answers.
    let plain = {
        let addr = dns.addr();
        let mut udp = ConnectionConfig::udp();
        udp.port = addr.port();
        let config = ResolverConfig::from_parts(None, vec![], vec![NameServerConfig::new(addr.ip(), true, vec![udp])]);
        Resolver::builder_with_config(config, TokioRuntimeProvider::default()).build().expect("resolver")
    };
    let lookup = plain.lookup("_25._tcp.mx.secure.example.", RecordType::TLSA).await.expect("TLSA");
    assert!(lookup.answers().iter().all(|r| matches!(r.data, RData::TLSA(_))), "{:?}", lookup.answers());
}
