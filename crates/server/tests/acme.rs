//! ACME certificates against a real Pebble (Debian's `pebble`) on loopback, its DNS
//! pointed at a local test resolver: both challenges end to end, SNI on IMAPS, HTTPS and
//! SMTP STARTTLS seen by a real TLS client trusting only Pebble's root, a customer domain
//! that opted in, renewal without a restart, a failure that is recorded and backed off,
//! and a cluster of two nodes where either may be asked for the challenge.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestServer;
use common::pebble::{Pebble, free_port};
use postfach_server::config::{Acme, AcmeChallenge, Config};
use postfach_store::Scope;
use postfach_store::certificates::StoredCertificate;
use postfach_testdns::{Data, Rr, TestDns};
use postfach_types::{DomainName, UnixTime};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const HOSTNAME: &str = "mail.postfach.test";
/// Long enough for Pebble to validate and issue on a busy machine.
const ISSUED_WITHIN: Duration = Duration::from_secs(120);

/// A resolver answering 127.0.0.1 for `names` (Pebble and the server ask it).
fn dns_for(names: &[&str]) -> TestDns {
    TestDns::start(names.iter().map(|n| Rr::new(n, Data::A(Ipv4Addr::LOCALHOST))))
}

/// Pebble validating against ports chosen for the server's HTTP and HTTPS listeners,
/// and `adjust` turning ACME on in the server's configuration.
fn pebble_and_ports(dns: &TestDns) -> (Pebble, u16, u16) {
    let (http, https) = (free_port(), free_port());
    (Pebble::start(http, https, dns.addr()), http, https)
}

fn acme_config(c: &mut Config, pebble: &Pebble, challenge: AcmeChallenge, dns: &TestDns, http: u16, https: u16) {
    c.hostname = DomainName::parse(HOSTNAME).expect("hostname");
    c.dns.resolver = Some(dns.addr());
    c.listen.http = vec![SocketAddr::from((Ipv4Addr::LOCALHOST, http))];
    c.listen.https = vec![SocketAddr::from((Ipv4Addr::LOCALHOST, https))];
    c.acme = Some(Acme {
        directory: pebble.directory.clone(),
        contact: "mailto:postmaster@postfach.test".to_string(),
        challenge,
        ca_file: Some(pebble.ca_file.clone()),
    });
}

/// Waits (bounded) until `check` holds for the stored certificates.
async fn wait_for(
    t: &TestServer,
    pebble: &Pebble,
    what: &str,
    check: impl Fn(&[StoredCertificate]) -> bool,
) -> Vec<StoredCertificate> {
    let deadline = Instant::now() + ISSUED_WITHIN;
    loop {
        let stored = t.server.store().certificates().await.expect("certificates");
        if check(&stored) {
            return stored;
        }
        assert!(Instant::now() < deadline, "{what}: {stored:#?}\npebble log:\n{}", pebble.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn issued_for(stored: &[StoredCertificate], subject: &str) -> bool {
    stored.iter().any(|c| c.subject.as_str() == subject && c.issued.is_some())
}

/// Waits (bounded) until the server hands out the leaf of `chain_pem` for `name`.
async fn wait_loaded(t: &TestServer, name: &str, chain_pem: &str) {
    let leaf = CertificateDer::pem_slice_iter(chain_pem.as_bytes()).next().expect("a leaf").expect("PEM");
    let deadline = Instant::now() + Duration::from_secs(30);
    while t.server.certificates().for_name(Some(name)).is_none_or(|k| k.cert[0] != leaf) {
        assert!(Instant::now() < deadline, "the certificate for {name} was not loaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How a client reaches the TLS of a service.
enum Way {
    Implicit,
    SmtpStartTls,
}

/// Connects to `addr` asking for `name` (SNI), verifying the certificate against `roots`
/// and `name`; returns the leaf the server presented.
async fn leaf(addr: SocketAddr, name: &str, roots: rustls::RootCertStore, way: Way) -> CertificateDer<'static> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    if let Way::SmtpStartTls = way {
        let mut reader = BufReader::new(&mut tcp);
        let mut line = String::new();
        reader.read_line(&mut line).await.expect("greeting");
        assert!(line.starts_with("220"), "{line}");
        reader.get_mut().write_all(b"EHLO client.test\r\n").await.expect("ehlo");
        loop {
            line.clear();
            reader.read_line(&mut line).await.expect("ehlo reply");
            if line.starts_with("250 ") {
                break;
            }
            assert!(line.starts_with("250-"), "{line}");
        }
        reader.get_mut().write_all(b"STARTTLS\r\n").await.expect("starttls");
        line.clear();
        reader.read_line(&mut line).await.expect("starttls reply");
        assert!(line.starts_with("220"), "{line}");
    }
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let server_name = ServerName::try_from(name.to_string()).expect("name");
    let tls = connector.connect(server_name, tcp).await.unwrap_or_else(|e| panic!("TLS to {addr} as {name}: {e}"));
    let (_, session) = tls.get_ref();
    session.peer_certificates().expect("a certificate")[0].clone().into_owned()
}

#[tokio::test]
async fn tls_alpn_01_certifies_the_hostname_and_an_opted_in_domain_on_every_listener() {
    let dns = dns_for(&[HOSTNAME, "mail.acme.example", "autoconfig.acme.example"]);
    let (pebble, http, https) = pebble_and_ports(&dns);
    let t = TestServer::start_with(|c| acme_config(c, &pebble, AcmeChallenge::TlsAlpn01, &dns, http, https)).await;
    wait_for(&t, &pebble, "the hostname's certificate", |s| issued_for(s, HOSTNAME)).await;

    // The customer opts in; only the names that point here are certified.
    t.customer().await;
    let domain = DomainName::parse("acme.example").expect("domain");
    t.server.store().set_domain_certificates(Scope::Platform, &domain, true).await.expect("opt in");
    let stored = wait_for(&t, &pebble, "the domain's certificate", |s| issued_for(s, "acme.example")).await;
    let customer = stored.iter().find(|c| c.subject == domain).expect("the domain's certificate");
    let names: Vec<&str> = customer.names.iter().map(DomainName::as_str).collect();
    assert_eq!(names, ["mail.acme.example", "autoconfig.acme.example"], "autodiscover does not point here");
    assert!(customer.issued.as_ref().is_some_and(|i| i.issuer.contains("Pebble")), "{customer:?}");

    // A client trusting only Pebble's root gets the right certificate by SNI everywhere,
    // once this node has loaded it (at most one reload period).
    let chain = |subject: &str| {
        let c = stored.iter().find(|c| c.subject.as_str() == subject).expect("stored");
        c.issued.as_ref().expect("issued").chain_pem.clone()
    };
    wait_loaded(&t, HOSTNAME, &chain(HOSTNAME)).await;
    wait_loaded(&t, "mail.acme.example", &chain("acme.example")).await;
    let host_leaf = leaf(t.addr("imaps"), HOSTNAME, pebble.roots(), Way::Implicit).await;
    assert_eq!(leaf(t.addr("https"), HOSTNAME, pebble.roots(), Way::Implicit).await, host_leaf);
    assert_eq!(leaf(t.addr("smtp"), HOSTNAME, pebble.roots(), Way::SmtpStartTls).await, host_leaf);
    let mail_leaf = leaf(t.addr("imaps"), "mail.acme.example", pebble.roots(), Way::Implicit).await;
    assert_ne!(mail_leaf, host_leaf);
    assert_eq!(leaf(t.addr("https"), "autoconfig.acme.example", pebble.roots(), Way::Implicit).await, mail_leaf);
    assert_eq!(leaf(t.addr("submission"), "mail.acme.example", pebble.roots(), Way::SmtpStartTls).await, mail_leaf);
    assert_eq!(leaf(t.addr("pop3s"), "mail.acme.example", pebble.roots(), Way::Implicit).await, mail_leaf);
    t.server.shutdown().await;
}

#[tokio::test]
async fn http_01_certifies_the_hostname_and_a_near_expiry_renews_without_restart() {
    http_01_and_renewal(None).await;
}

#[tokio::test]
async fn http_01_and_renewal_on_postgresql() {
    http_01_and_renewal(Some(common::postgres_database().await)).await;
}

/// `database`: PostgreSQL's URL, or `None` for SQLite.
async fn http_01_and_renewal(database: Option<String>) {
    let dns = dns_for(&[HOSTNAME]);
    let (pebble, http, https) = pebble_and_ports(&dns);
    let data = tempfile::tempdir().expect("data dir");
    let adjust = |c: &mut Config| acme_config(c, &pebble, AcmeChallenge::Http01, &dns, http, https);
    let t = match &database {
        Some(url) => TestServer::start_node(url, data.path(), adjust).await,
        None => TestServer::start_with(adjust).await,
    };
    let stored = wait_for(&t, &pebble, "the hostname's certificate", |s| issued_for(s, HOSTNAME)).await;
    let first = stored[0].issued.clone().expect("issued");
    wait_loaded(&t, HOSTNAME, &first.chain_pem).await;
    let first_leaf = leaf(t.addr("imaps"), HOSTNAME, pebble.roots(), Way::Implicit).await;

    // Make the stored certificate look as if it expired in ten days: the leader renews it
    // and every listener serves the new one, without a restart.
    let soon = UnixTime(UnixTime::now().0 + 10 * 86_400);
    let near = postfach_store::certificates::Issued { not_after: soon, ..first.clone() };
    let names = stored[0].names.clone();
    let next = stored[0].next_key_pem.clone().expect("the next key is kept with the certificate");
    t.server.store().save_certificate(&stored[0].subject, &names, &near, &next).await.expect("age the certificate");
    let renewed = wait_for(&t, &pebble, "the renewed certificate", |s| {
        s.iter().any(|c| c.issued.as_ref().is_some_and(|i| i.chain_pem != first.chain_pem))
    })
    .await;
    wait_loaded(&t, HOSTNAME, &renewed[0].issued.as_ref().expect("issued").chain_pem).await;
    // The renewal used the key kept for it (its TLSA record could be published in
    // advance), and a new next key was made.
    assert_eq!(renewed[0].issued.as_ref().expect("issued").key_pem.expose(), next.expose());
    assert_ne!(renewed[0].next_key_pem.as_ref().expect("a new next key").expose(), next.expose());
    let seen = leaf(t.addr("https"), HOSTNAME, pebble.roots(), Way::Implicit).await;
    assert_ne!(seen, first_leaf, "the renewed certificate is served");
    assert_eq!(leaf(t.addr("imaps"), HOSTNAME, pebble.roots(), Way::Implicit).await, seen);
    t.server.shutdown().await;
}

#[tokio::test]
async fn a_failed_order_is_recorded_and_backed_off_while_the_default_certificate_serves() {
    // The hostname does not resolve: Pebble cannot validate it.
    let dns = dns_for(&["unrelated.postfach.test"]);
    let (pebble, http, https) = pebble_and_ports(&dns);
    let t = TestServer::start_with(|c| acme_config(c, &pebble, AcmeChallenge::Http01, &dns, http, https)).await;
    let stored = wait_for(&t, &pebble, "the failure", |s| s.iter().any(|c| c.last_error.is_some())).await;
    let failed = &stored[0];
    assert_eq!((failed.subject.as_str(), failed.failures), (HOSTNAME, 1));
    assert!(failed.issued.is_none());
    let error = failed.last_error.as_deref().expect("error");
    assert!(!error.is_empty() && !error.contains("PRIVATE KEY"), "{error}");
    // Ten minutes at the first failure (a little less: seconds passed since).
    assert!(failed.next_attempt.0 >= UnixTime::now().0 + 500, "{failed:?}");
    // Clients still get the self-signed default.
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(t.cert()).expect("cert.pem") {
        roots.add(cert.expect("cert")).expect("root");
    }
    leaf(t.addr("imaps"), HOSTNAME, roots, Way::Implicit).await;
    t.server.shutdown().await;
}

/// Two nodes on one PostgreSQL database: the leader orders, the CA's validation reaches
/// the other node (its own address), which answers the challenge from the database and
/// then serves the new certificate too.
#[tokio::test]
async fn in_a_cluster_the_other_node_answers_the_challenge_and_serves_the_certificate() {
    let second = Ipv4Addr::new(127, 0, 0, 2);
    let dns = dns_for(&[HOSTNAME]);
    dns.add(Rr::new("mail.acme.example", Data::A(second)));
    let (pebble, http, https) = pebble_and_ports(&dns);
    let database = common::postgres_database().await;
    let data = tempfile::tempdir().expect("data dir");
    let node = |name: &'static str, ip: Ipv4Addr| {
        let (pebble, dns) = (&pebble, &dns);
        move |c: &mut Config| {
            acme_config(c, pebble, AcmeChallenge::TlsAlpn01, dns, http, https);
            c.cluster.node = postfach_types::NodeName::parse(name).expect("node");
            // The second node's address counts as this cluster's.
            c.outbound.ips = vec![second.into()];
            let local = SocketAddr::from((ip, 0));
            for list in [&mut c.listen.smtp, &mut c.listen.submission, &mut c.listen.imap, &mut c.listen.pop3] {
                *list = vec![local];
            }
            for list in [&mut c.listen.submissions, &mut c.listen.imaps, &mut c.listen.pop3s] {
                *list = vec![local];
            }
            c.listen.http = vec![SocketAddr::from((ip, http))];
            c.listen.https = vec![SocketAddr::from((ip, https))];
        }
    };
    // The first node leads and certifies the hostname (which points at it).
    let first = TestServer::start_node(&database, data.path(), node("node-1", Ipv4Addr::LOCALHOST)).await;
    let stored = wait_for(&first, &pebble, "the hostname's certificate", |s| issued_for(s, HOSTNAME)).await;
    let host_chain = stored[0].issued.as_ref().expect("issued").chain_pem.clone();
    let other = TestServer::start_node(&database, data.path(), node("node-2", second)).await;
    wait_loaded(&other, HOSTNAME, &host_chain).await;

    // mail.acme.example points at the second node only: the CA validates there.
    first.customer().await;
    let domain = DomainName::parse("acme.example").expect("domain");
    first.server.store().set_domain_certificates(Scope::Platform, &domain, true).await.expect("opt in");
    let stored = wait_for(&first, &pebble, "the domain's certificate", |s| issued_for(s, "acme.example")).await;
    let c = stored.iter().find(|c| c.subject == domain).expect("stored");
    assert_eq!(c.names.iter().map(DomainName::as_str).collect::<Vec<_>>(), ["mail.acme.example"]);
    for node in [&other, &first] {
        wait_loaded(node, "mail.acme.example", &c.issued.as_ref().expect("issued").chain_pem).await;
    }
    let served = leaf(other.addr("imaps"), "mail.acme.example", pebble.roots(), Way::Implicit).await;
    assert_eq!(leaf(first.addr("imaps"), "mail.acme.example", pebble.roots(), Way::Implicit).await, served);
    other.server.shutdown().await;
    first.server.shutdown().await;
}
