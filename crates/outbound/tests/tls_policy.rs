//! Outbound TLS policy against real sockets: a receiving SMTP server on 127.0.0.1 that
//! offers STARTTLS with a certificate from a test CA (matching the MX name or not), or
//! that does not offer STARTTLS at all (an attacker removed it); the destination's MTA-STS
//! policy served by a small HTTPS server in the test with a certificate from the same CA;
//! the test DNS server for MX, `_mta-sts` TXT and addresses. Where MTA-STS enforce, the
//! sender's REQUIRETLS or "always require TLS" say so, nothing goes out in plaintext.

#[path = "support/sink.rs"]
mod sink;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use postfach_blob::{Backend, BlobStore, Namespace};
use postfach_outbound::{Outbound, OutboundSettings, Submission};
use postfach_store::delivery::DeliveryBatcher;
use postfach_store::mailboxes::MailboxSettings;
use postfach_store::queue::{QueuedRecipient, RecipientState};
use postfach_store::{Scope, Store};
use postfach_testdns::{Data, Rr, TestDns};
use postfach_types::{CustomerName, DomainName, EmailAddress, MailboxId, Role};
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::CertificateDer;
use sink::{Behaviour, Offer, Sink};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA";
const WAIT: Duration = Duration::from_secs(30);

/// A test CA that issues certificates for any name.
struct Ca {
    der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("CA certificate");
        Ca { der: cert.der().clone(), issuer: Issuer::new(params, key) }
    }

    /// A certificate for `name` and its PKCS#8 key.
    fn issue(&self, name: &str) -> (Vec<CertificateDer<'static>>, Vec<u8>) {
        let mut params = CertificateParams::new(vec![name.to_string()]).expect("params");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("certificate");
        (vec![cert.der().clone(), self.der.clone()], key.serialize_der())
    }
}

/// The MTA-STS policy server: HTTPS on 127.0.0.1 with a certificate for
/// `mta-sts.outside.test`, answering every request with `policy`; counts the fetches.
struct PolicyServer {
    port: u16,
    fetches: Arc<AtomicUsize>,
}

async fn policy_server(ca: &Ca, policy: &'static str) -> PolicyServer {
    let (chain, key) = ca.issue("mta-sts.outside.test");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()))
        .expect("TLS config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let fetches = Arc::new(AtomicUsize::new(0));
    let counted = fetches.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, counted) = (acceptor.clone(), counted.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&request);
                assert!(request.starts_with("GET /.well-known/mta-sts.txt HTTP/1.1\r\n"), "{request}");
                assert!(request.to_ascii_lowercase().contains("host: mta-sts.outside.test"), "{request}");
                counted.fetch_add(1, Ordering::SeqCst);
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{policy}",
                    policy.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    PolicyServer { port, fetches }
}

const ENFORCE: &str = "version: STSv1\r\nmode: enforce\r\nmx: mx.outside.test\r\nmax_age: 86400\r\n";
const TESTING: &str = "version: STSv1\r\nmode: testing\r\nmx: mx.outside.test\r\nmax_age: 86400\r\n";

struct World {
    store: Store,
    outbound: Outbound,
    dns: TestDns,
    sink: Sink,
    policy: Option<PolicyServer>,
    max: MailboxId,
    stop: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

/// acme.example with the mailbox max; outside.test with its MX at the sink (which offers
/// what `offer` says), and, when `policy` is given, an MTA-STS policy served over HTTPS.
async fn world(offer: Offer, policy: Option<&'static str>, adjust: impl FnOnce(&mut OutboundSettings)) -> World {
    let ca = Ca::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&format!("sqlite://{}/postfach.sqlite", dir.path().display())).await.expect("store");
    let customer = store.add_customer(&CustomerName::parse("acme").expect("n"), HASH, Role::Customer).await.expect("c");
    store.add_domain(customer.id, &DomainName::parse("acme.example").expect("d"), true).await.expect("domain");
    let max = store
        .add_mailbox(Scope::Platform, &address("max@acme.example"), HASH, MailboxSettings::default())
        .await
        .expect("mailbox")
        .id;
    let offer = match offer.certificate {
        Some(_) => offer,
        None => Offer { certificate: Some(ca.issue("mx.outside.test")), ..offer },
    };
    let sink = Sink::start_with(Behaviour::Accept, offer);
    let dns = TestDns::start([
        Rr::new("outside.test", Data::Mx(10, "mx.outside.test".into())),
        Rr::new("mx.outside.test", Data::A("127.0.0.1".parse().expect("ip"))),
        Rr::new("mta-sts.outside.test", Data::A("127.0.0.1".parse().expect("ip"))),
    ]);
    let policy = match policy {
        Some(text) => {
            dns.add(Rr::new("_mta-sts.outside.test", Data::txt("v=STSv1; id=20261129T000000;")));
            Some(policy_server(&ca, text).await)
        }
        None => None,
    };
    let mut settings = OutboundSettings {
        hostname: DomainName::parse("mail.postfach.test").expect("host"),
        resolver: Some(dns.addr()),
        smtp_port: sink.port(),
        source_ips: Vec::new(),
        queue_lifetime: Duration::from_secs(432_000),
        rate_limit_per_hour: 500,
        delay_warning: None,
        node: postfach_types::NodeName::parse("node-a").expect("node"),
        claims: postfach_outbound::ClaimTiming::default(),
        tls_roots: vec![ca.der.clone()],
        mta_sts_port: policy.as_ref().map_or(1, |p| p.port),
        tls_reports: true,
        sieve_redirect: Default::default(),
        dnssec_trust_anchor: None,
    };
    adjust(&mut settings);
    let blobs = BlobStore::open(&Backend::Fs, dir.path(), Namespace::Mailboxes).expect("blobs");
    let spool = BlobStore::open(&Backend::Fs, dir.path(), Namespace::Queue).expect("spool");
    let outbound = Outbound::new(store.clone(), blobs, spool, DeliveryBatcher::start(store.clone()), settings);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(outbound.clone().run(postfach_store::leader::Leader::always(), stopped));
    World { store, outbound, dns, sink, policy, max, stop, _dir: dir }
}

fn address(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("address")
}

fn submission(w: &World, subject: &str, require_tls: bool) -> Submission {
    Submission {
        mailbox_id: w.max,
        client: None,
        return_path: Some(address("max@acme.example")),
        recipients: vec![address("anna@outside.test")],
        message: format!("From: <max@acme.example>\r\nTo: <anna@outside.test>\r\nSubject: {subject}\r\n\r\nHallo\r\n")
            .into_bytes(),
        require_tls,
    }
}

/// The recipient once its first attempt is recorded.
async fn after_first_attempt(w: &World) -> QueuedRecipient {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let queue = w.store.queue_list(Scope::Platform).await.expect("list");
        if let Some(r) = queue.first().and_then(|m| m.recipients.first()).filter(|r| r.attempts >= 1) {
            return r.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no attempt was recorded: {queue:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The texts of max's INBOX (where notices arrive).
async fn notices(w: &World, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + WAIT;
    let blobs = BlobStore::open(&Backend::Fs, w._dir.path(), Namespace::Mailboxes).expect("blobs");
    loop {
        let folders = w.store.folders(w.max).await.expect("folders");
        let inbox = folders.iter().find(|f| f.name == "INBOX").expect("INBOX");
        let mut texts = Vec::new();
        for m in w.store.messages(w.max, inbox.id).await.expect("messages") {
            texts.push(String::from_utf8_lossy(&blobs.get(&m.blob).await.expect("blob")).into_owned());
        }
        if texts.len() >= n {
            return texts;
        }
        assert!(std::time::Instant::now() < deadline, "{} of {n} notices arrived", texts.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn stripped() -> Offer {
    Offer { starttls: false, ..Offer::default() }
}

#[tokio::test(flavor = "multi_thread")]
async fn mta_sts_enforce_delivers_over_verified_tls_and_caches_the_policy() {
    let w = world(Offer::default(), Some(ENFORCE), |_| {}).await;
    w.outbound.submit(submission(&w, "first", false)).await.expect("queued");
    let mail = w.sink.arrived(1, WAIT).await.remove(0);
    assert!(mail.tls, "delivered over TLS");
    let cached = w.store.mta_sts_cached("outside.test").await.expect("read").expect("the policy is cached");
    assert_eq!((cached.mode.as_str(), cached.mx.as_slice()), ("enforce", ["mx.outside.test".to_string()].as_slice()));
    // Counted by the rule followed and the TLS version (other tests count as well: at least one).
    let metrics = postfach_metrics::render(None);
    let line = metrics
        .lines()
        .find(|l| l.starts_with("postfach_outbound_tls_total{policy=\"mta-sts\",version=\"TLSv1.3\"}"))
        .expect("the counter is rendered");
    assert_ne!(line.rsplit(' ').next(), Some("0"), "{line}");
    // The second message uses the cached policy: no second fetch while the TXT id stays.
    w.outbound.submit(submission(&w, "second", false)).await.expect("queued");
    w.sink.arrived(2, WAIT).await;
    let policy = w.policy.as_ref().expect("policy server");
    assert_eq!(policy.fetches.load(Ordering::SeqCst), 1, "fetched once, then cached");
    // A new id in the TXT record means a new policy: fetched again.
    w.dns.set("_mta-sts.outside.test", postfach_testdns::Type::Txt, vec![Data::txt("v=STSv1; id=2;")]);
    w.outbound.submit(submission(&w, "third", false)).await.expect("queued");
    w.sink.arrived(3, WAIT).await;
    assert_eq!(policy.fetches.load(Ordering::SeqCst), 2, "fetched again after the id changed");
    let _ = w.stop.send(true);
}

#[tokio::test(flavor = "multi_thread")]
async fn mta_sts_enforce_defers_when_starttls_is_stripped() {
    let w = world(stripped(), Some(ENFORCE), |_| {}).await;
    w.outbound.submit(submission(&w, "secret", false)).await.expect("queued");
    let r = after_first_attempt(&w).await;
    assert_eq!(r.state, RecipientState::Queued, "deferred, not given up: {r:?}");
    assert_eq!(r.status.as_deref(), Some("4.7.5"), "{r:?}");
    let diagnostic = r.diagnostic.clone().unwrap_or_default();
    assert!(diagnostic.contains("did not offer STARTTLS") && diagnostic.contains("MTA-STS"), "{diagnostic}");
    assert_eq!(r.tls_policy.as_deref(), Some("mta-sts"), "{r:?}");
    assert!(w.sink.received().is_empty(), "nothing was sent in plaintext");
    let _ = w.stop.send(true);
}

#[tokio::test(flavor = "multi_thread")]
async fn mta_sts_enforce_defers_when_the_certificate_does_not_match() {
    let other = Ca::new().issue("mx.outside.test");
    let w = world(Offer { certificate: Some(other), ..Offer::default() }, Some(ENFORCE), |_| {}).await;
    w.outbound.submit(submission(&w, "secret", false)).await.expect("queued");
    let r = after_first_attempt(&w).await;
    assert_eq!(r.state, RecipientState::Queued, "{r:?}");
    assert!(r.diagnostic.as_deref().is_some_and(|d| d.contains("TLS handshake failed")), "{r:?}");
    assert!(w.sink.received().is_empty(), "no message to a server with an untrusted certificate");
    let _ = w.stop.send(true);
}

#[tokio::test(flavor = "multi_thread")]
async fn mta_sts_testing_and_no_policy_still_deliver_when_starttls_is_stripped() {
    for policy in [Some(TESTING), None] {
        let w = world(stripped(), policy, |_| {}).await;
        w.outbound.submit(submission(&w, "hello", false)).await.expect("queued");
        let mail = w.sink.arrived(1, WAIT).await.remove(0);
        assert!(!mail.tls, "{policy:?}: delivered, in plaintext");
        let _ = w.stop.send(true);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn requiretls_without_a_policy_is_returned_to_the_sender() {
    let w = world(Offer { requiretls: true, ..Offer::default() }, None, |_| {}).await;
    w.outbound.submit(submission(&w, "confidential", true)).await.expect("queued");
    let texts = notices(&w, 1).await;
    let dsn = &texts[0];
    assert!(dsn.contains("Status: 5.7.10"), "{dsn}");
    assert!(dsn.contains("REQUIRETLS") && dsn.contains("neither MTA-STS nor DANE"), "{dsn}");
    assert!(w.sink.received().is_empty());
    let _ = w.stop.send(true);
}

#[tokio::test(flavor = "multi_thread")]
async fn requiretls_with_mta_sts_goes_out_with_the_parameter() {
    let w = world(Offer { requiretls: true, ..Offer::default() }, Some(TESTING), |_| {}).await;
    w.outbound.submit(submission(&w, "confidential", true)).await.expect("queued");
    let mail = w.sink.arrived(1, WAIT).await.remove(0);
    assert!(mail.tls);
    assert!(mail.mail_params.split_whitespace().any(|p| p == "REQUIRETLS"), "{}", mail.mail_params);
    let _ = w.stop.send(true);
}

#[tokio::test(flavor = "multi_thread")]
async fn requiretls_is_not_handed_to_a_server_that_does_not_support_it() {
    let w = world(Offer::default(), Some(ENFORCE), |_| {}).await;
    w.outbound.submit(submission(&w, "confidential", true)).await.expect("queued");
    let texts = notices(&w, 1).await;
    assert!(texts[0].contains("Status: 5.7.30") && texts[0].contains("does not support REQUIRETLS"), "{}", texts[0]);
    assert!(w.sink.received().is_empty());
    let _ = w.stop.send(true);
}

#[tokio::test(flavor = "multi_thread")]
async fn always_require_tls_never_sends_in_plaintext_and_tells_the_sender() {
    // A queue lifetime of one second: the first deferral is the last, and the notice comes.
    let w = world(stripped(), None, |s| s.queue_lifetime = Duration::from_secs(1)).await;
    w.store.set_mailbox_outbound_tls(Scope::Platform, w.max, true).await.expect("switch on");
    w.outbound.submit(submission(&w, "private", false)).await.expect("queued");
    let texts = notices(&w, 1).await;
    let dsn = &texts[0];
    assert!(dsn.contains("did not offer STARTTLS") && dsn.contains("only sent encrypted"), "{dsn}");
    assert!(w.sink.received().is_empty(), "nothing was sent in plaintext");
    let _ = w.stop.send(true);
}

#[tokio::test(flavor = "multi_thread")]
async fn always_require_tls_of_the_customer_still_delivers_over_tls() {
    let w = world(Offer::default(), None, |_| {}).await;
    let customer = w.store.mailbox_by_id(Scope::Platform, w.max).await.expect("mailbox").customer_id;
    w.store.set_customer_outbound_tls(customer, true).await.expect("switch on");
    w.outbound.submit(submission(&w, "private", false)).await.expect("queued");
    let mail = w.sink.arrived(1, WAIT).await.remove(0);
    assert!(mail.tls, "encrypted (any certificate will do without a published policy)");
    let _ = w.stop.send(true);
}

/// Waits until `to`'s first attempt is recorded and it is still queued (deferred).
async fn deferred(w: &World, to: &str) -> QueuedRecipient {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let queue = w.store.queue_list(Scope::Platform).await.expect("list");
        let found =
            queue.iter().flat_map(|m| m.recipients.iter()).find(|r| r.address.to_string() == to && r.attempts >= 1);
        if let Some(r) = found {
            assert_eq!(r.state, RecipientState::Queued, "deferred: {r:?}");
            return r.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no attempt to {to} was recorded: {queue:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn to(w: &World, recipient: &str, subject: &str) -> Submission {
    let mut s = submission(w, subject, false);
    s.recipients = vec![address(recipient)];
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daily_tls_report_goes_once_to_the_domain_that_asks_for_it() {
    let w = world(Offer::default(), Some(ENFORCE), |_| {}).await;
    // outside.test asks for reports at reports.test (no policy there: delivered as offered);
    // quiet.test (same server, no MTA-STS) publishes no `_smtp._tls` record, twice.test two
    // (RFC 8460 §3: then it asks for none).
    w.dns.add(Rr::new("_smtp._tls.outside.test", Data::txt("v=TLSRPTv1; rua=mailto:tls@reports.test")));
    w.dns.add(Rr::new("reports.test", Data::Mx(10, "mx.outside.test".into())));
    w.dns.add(Rr::new("quiet.test", Data::Mx(10, "mx.outside.test".into())));
    w.dns.add(Rr::new("twice.test", Data::Mx(10, "mx.outside.test".into())));
    for n in 1..=2 {
        w.dns.add(Rr::new("_smtp._tls.twice.test", Data::txt(&format!("v=TLSRPTv1; rua=mailto:tls{n}@reports.test"))));
    }
    let today = postfach_store::tls_rpt_out::day_of(postfach_types::UnixTime::now().0);

    // One success under the enforced policy, one plain delivery without one…
    w.outbound.submit(to(&w, "anna@outside.test", "first")).await.expect("queued");
    w.sink.arrived(1, WAIT).await;
    w.outbound.submit(to(&w, "bob@quiet.test", "second")).await.expect("queued");
    w.sink.arrived(2, WAIT).await;
    w.outbound.submit(to(&w, "eve@twice.test", "second")).await.expect("queued");
    w.sink.arrived(3, WAIT).await;
    // …and one failure: STARTTLS stripped where MTA-STS enforce requires it.
    w.sink.strip_starttls();
    w.outbound.submit(to(&w, "anna@outside.test", "third")).await.expect("queued");
    deferred(&w, "anna@outside.test").await;
    let counted: Vec<(String, String, String, u64)> = w
        .store
        .tls_outcomes(today)
        .await
        .expect("counts")
        .into_iter()
        .map(|(o, n)| (o.domain, o.policy_type, o.result, n))
        .collect();
    let row = |d: &str, p: &str, r: &str| (d.to_string(), p.to_string(), r.to_string(), 1);
    assert_eq!(
        counted,
        [
            row("outside.test", "sts", "starttls-not-supported"),
            row("outside.test", "sts", "success"),
            row("quiet.test", "no-policy-found", "success"),
            row("twice.test", "no-policy-found", "success"),
        ]
    );

    // The leader's daily job: one report, to the address outside.test names.
    assert_eq!(w.outbound.send_tls_reports(today).await, 1);
    let received = w.sink.arrived(4, WAIT).await;
    let report = &received[3];
    assert_eq!(
        (report.mail_from.as_str(), report.rcpt_to.as_slice()),
        ("", ["tls@reports.test".to_string()].as_slice())
    );
    let text = report.text();
    assert!(text.contains("Subject: Report Domain: outside.test Submitter: mail.postfach.test"), "{text}");
    // What a receiving platform makes of it: our own reader of received reports.
    let read = postfach_smtp::tls_report::read(&postfach_message::Message::parse(&report.data)).expect("readable");
    let outside = DomainName::parse("outside.test").expect("domain");
    assert_eq!(read.domains.keys().collect::<Vec<_>>(), [&outside], "only the domain asked about");
    let summary = &read.domains[&outside];
    assert_eq!((summary.organization.as_str(), summary.successful, summary.failed), ("mail.postfach.test", 1, 1));
    assert_eq!(summary.start.0, today * 86_400);
    // One id per domain and day: a report sent twice is counted once by its receiver.
    assert_eq!(summary.report_id, format!("{today}.outside.test@mail.postfach.test"));
    let failure = &summary.failures[0];
    assert_eq!(
        (failure.result_type.as_str(), failure.receiving_mx.as_str()),
        ("starttls-not-supported", "mx.outside.test")
    );

    // Sent once: the day's counts are gone (quiet.test's and twice.test's too), the report's
    // own delivery was not counted (time for the worker to count it if it did), and a
    // second run sends nothing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w.store.tls_outcomes(today).await.expect("counts"), []);
    assert_eq!(w.outbound.send_tls_reports(today).await, 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w.sink.received().len(), 4, "no second report, none for quiet.test or twice.test");
    let _ = w.stop.send(true);
}

#[tokio::test(flavor = "multi_thread")]
async fn mta_sts_testing_delivers_despite_a_bad_certificate_and_reports_it() {
    let other = Ca::new().issue("mx.outside.test");
    let w = world(Offer { certificate: Some(other), ..Offer::default() }, Some(TESTING), |_| {}).await;
    let today = postfach_store::tls_rpt_out::day_of(postfach_types::UnixTime::now().0);
    w.outbound.submit(submission(&w, "hello", false)).await.expect("queued");
    let mail = w.sink.arrived(1, WAIT).await.remove(0);
    assert!(mail.tls, "delivered, encrypted, although the certificate is not trusted");
    // The finding goes into the domain's TLS report (counted right after the attempt).
    let deadline = std::time::Instant::now() + WAIT;
    let counted = loop {
        let counted = w.store.tls_outcomes(today).await.expect("counts");
        if !counted.is_empty() || std::time::Instant::now() > deadline {
            break counted;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let found: Vec<(&str, &str, u64)> =
        counted.iter().map(|(o, n)| (o.policy_type.as_str(), o.result.as_str(), *n)).collect();
    assert_eq!(found, [("sts", "validation-failure", 1)]);
    assert!(counted[0].0.policy.contains("mode: testing"), "{:?}", counted[0].0);
    let _ = w.stop.send(true);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_tls_reports_off_nothing_is_counted_or_sent() {
    let w = world(Offer::default(), Some(ENFORCE), |s| s.tls_reports = false).await;
    w.dns.add(Rr::new("_smtp._tls.outside.test", Data::txt("v=TLSRPTv1; rua=mailto:tls@outside.test")));
    let today = postfach_store::tls_rpt_out::day_of(postfach_types::UnixTime::now().0);
    // Counted while the setting was still on.
    let before = postfach_store::tls_rpt_out::TlsOutcome {
        domain: "outside.test".into(),
        policy_type: "no-policy-found".into(),
        policy: String::new(),
        result: "success".into(),
        mx_host: "mx.outside.test".into(),
        mx_ip: "127.0.0.1".into(),
    };
    w.store.count_tls_outcome(today, &before).await.expect("count");
    w.outbound.submit(submission(&w, "hello", false)).await.expect("queued");
    w.sink.arrived(1, WAIT).await.remove(0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w.store.tls_outcomes(today).await.expect("counts"), [(before, 1)], "the delivery was not counted");
    assert_eq!(w.outbound.send_tls_reports(today).await, 0);
    assert_eq!(w.store.tls_outcomes(today).await.expect("counts"), [], "what was counted before is forgotten");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w.sink.received().len(), 1, "no report");
    let _ = w.stop.send(true);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_not_sent_on_its_day_goes_out_later_within_the_days_kept() {
    let w = world(Offer::default(), None, |_| {}).await;
    let today = postfach_store::tls_rpt_out::day_of(postfach_types::UnixTime::now().0);
    let keep = postfach_outbound::tls_rpt::KEEP_DAYS;
    let counted = postfach_store::tls_rpt_out::TlsOutcome {
        domain: "outside.test".into(),
        policy_type: "no-policy-found".into(),
        policy: String::new(),
        result: "success".into(),
        mx_host: "mx.outside.test".into(),
        mx_ip: "127.0.0.1".into(),
    };
    // Counted on a day whose report could not go (its DNS did not answer then), and on a
    // day too long ago.
    w.store.count_tls_outcome(today - (keep - 1), &counted).await.expect("count");
    w.store.count_tls_outcome(today - keep, &counted).await.expect("count");
    w.dns.add(Rr::new("_smtp._tls.outside.test", Data::txt("v=TLSRPTv1; rua=mailto:tls@outside.test")));
    assert_eq!(w.outbound.send_tls_reports(today).await, 1, "the kept day's report, not the old one");
    let report = w.sink.arrived(1, WAIT).await.remove(0);
    let read = postfach_smtp::tls_report::read(&postfach_message::Message::parse(&report.data)).expect("readable");
    let summary = &read.domains[&DomainName::parse("outside.test").expect("domain")];
    assert_eq!((summary.start.0, summary.successful), ((today - (keep - 1)) * 86_400, 1));
    assert_eq!(w.store.tls_outcomes(today - keep).await.expect("counts"), [], "too old: forgotten");
    let _ = w.stop.send(true);
}
