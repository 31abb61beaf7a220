//! Inbound MTA-STS end to end: the policy file fetched by curl from the real server's
//! HTTPS listener with SNI `mta-sts.DOMAIN`, and the domain checks (the `_mta-sts` TXT
//! record, the policy fetched over HTTPS with the certificate verified, the MX hosts)
//! against the test DNS server.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::TestServer;
use postfach_dns::checks::{self, Check, Checker, Level};
use postfach_dns::{Platform, ServicePorts, mta_sts};
use postfach_store::Scope;
use postfach_store::certificates::Issued;
use postfach_store::domains::MtaStsMode;
use postfach_testdns::{Data, Rr, TestDns, Type};
use postfach_types::{DomainName, Secret, UnixTime};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

const DOMAIN: &str = "acme.example";
const POLICY_HOST: &str = "mta-sts.acme.example";
const HOST: &str = "mail.postfach.test";

fn dom(s: &str) -> DomainName {
    DomainName::parse(s).expect("domain")
}

fn zone() -> Vec<Rr> {
    vec![
        Rr::new(HOST, Data::A("127.0.0.1".parse().expect("ip"))),
        Rr::new(DOMAIN, Data::Mx(10, HOST.into())),
        Rr::new(POLICY_HOST, Data::Cname(HOST.into())),
        // Points here, but no certificate is issued for it.
        Rr::new("mta-sts.nocert.example", Data::A("127.0.0.1".parse().expect("ip"))),
        Rr::new("nocert.example", Data::Mx(10, HOST.into())),
    ]
}

/// A certificate for `mta-sts.acme.example` stored the way ACME stores one, and loaded
/// by the server; returns the PEM file clients trust it by.
async fn install_policy_certificate(t: &TestServer) -> std::path::PathBuf {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec![POLICY_HOST.to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    let now = UnixTime::now().0;
    let issued = Issued {
        chain_pem: cert.pem(),
        key_pem: Secret::new(key.serialize_pem()),
        not_before: UnixTime(now - 60),
        not_after: UnixTime(now + 86_400 * 60),
        issuer: "CN=test".into(),
        issued_at: UnixTime(now),
    };
    let store = t.server.store();
    let next = Secret::new(rcgen::KeyPair::generate().expect("key").serialize_pem());
    store.save_certificate(&dom(DOMAIN), &[dom(POLICY_HOST)], &issued, &next).await.expect("save");
    let leaf = CertificateDer::pem_slice_iter(issued.chain_pem.as_bytes()).next().expect("leaf").expect("PEM");
    let deadline = Instant::now() + Duration::from_secs(30);
    while t.server.certificates().for_name(Some(POLICY_HOST)).is_none_or(|k| k.cert[0] != leaf) {
        assert!(Instant::now() < deadline, "the certificate for {POLICY_HOST} was not loaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let path = t.dir.path().join("mta-sts-ca.pem");
    std::fs::write(&path, issued.chain_pem).expect("write");
    path
}

/// curl's answer for the policy at `host`: (HTTP status, Content-Type, body); it blocks
/// a worker, hence the multi-threaded runtime of the tests. Without
/// `ca`, the certificate is not checked (for names no certificate is issued for).
fn curl_policy(t: &TestServer, host: &str, ca: Option<&Path>) -> (String, String, String) {
    let port = t.port("https");
    let mut curl = Command::new("curl");
    curl.args(["--silent", "--show-error", "--max-time", "20", "--resolve"]).arg(format!("{host}:{port}:127.0.0.1"));
    match ca {
        Some(ca) => curl.arg("--cacert").arg(ca),
        None => curl.arg("--insecure"),
    };
    let output = curl
        .args(["--write-out", "\n%{http_code} %{content_type}"])
        .arg(format!("https://{host}:{port}/.well-known/mta-sts.txt"))
        .output()
        .expect("curl runs");
    assert!(output.status.success(), "curl: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let (body, last) = text.rsplit_once('\n').expect("status line");
    let (status, content_type) = last.split_once(' ').unwrap_or((last, ""));
    (status.to_string(), content_type.to_string(), body.to_string())
}

fn checker(t: &TestServer, dns: &TestDns, ca: &Path) -> Checker {
    let platform = Platform {
        hostname: dom(HOST),
        spf_name: "_spf.mail.postfach.test".into(),
        outbound_ips: Vec::new(),
        ports: ServicePorts::standard(),
        tls_reports: None,
    };
    Checker::new(platform, Some(dns.addr()))
        .expect("checker")
        .with_policy_fetch(t.port("https"), Some(ca.to_path_buf()))
}

/// The MTA-STS verdicts of the domain's checks, as (code, level).
async fn mta_sts_verdicts(t: &TestServer, checker: &Checker, name: &str) -> Vec<(String, Level)> {
    let domain = t.server.store().domain(Scope::Platform, &dom(name)).await.expect("domain");
    let report = checks::run(checker, &domain, &[]).await;
    report.verdicts.iter().filter(|v| v.check == Check::MtaSts).map(|v| (v.code.clone(), v.level)).collect()
}

fn has(verdicts: &[(String, Level)], code: &str, level: Level) -> bool {
    verdicts.iter().any(|(c, l)| c == code && *l == level)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_is_served_over_https_and_the_checks_follow_it() {
    let dns = TestDns::start(zone());
    let t = TestServer::start_with(|c| c.dns.resolver = Some(dns.addr())).await;
    t.customer().await;
    let store = t.server.store();
    let ca = install_policy_certificate(&t).await;
    let checker = checker(&t, &dns, &ca);

    // Off: no policy, no verdicts, and no records to publish.
    assert_eq!(curl_policy(&t, POLICY_HOST, Some(&ca)).0, "404");
    assert!(mta_sts_verdicts(&t, &checker, DOMAIN).await.is_empty());

    // Testing: served as text/plain with the mode and the platform's MX host.
    store.set_domain_mta_sts(Scope::Platform, &dom(DOMAIN), MtaStsMode::Testing).await.expect("testing");
    let (status, content_type, body) = curl_policy(&t, POLICY_HOST, Some(&ca));
    assert_eq!(status, "200", "{body}");
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines, ["version: STSv1", "mode: testing", "mx: mail.postfach.test", "max_age: 86400"]);
    let testing_txt = mta_sts::txt_value(&body);

    // No TXT record yet: said so, with the record to publish; the policy and MX are fine.
    let found = mta_sts_verdicts(&t, &checker, DOMAIN).await;
    assert!(has(&found, "mta_sts.txt_missing", Level::Error), "{found:?}");
    assert!(has(&found, "mta_sts.policy_ok", Level::Ok), "{found:?}");
    assert!(has(&found, "mta_sts.mx_ok", Level::Ok), "{found:?}");

    dns.set("_mta-sts.acme.example", Type::Txt, vec![Data::txt(&testing_txt)]);
    let found = mta_sts_verdicts(&t, &checker, DOMAIN).await;
    assert!(has(&found, "mta_sts.txt_ok", Level::Ok), "{found:?}");

    // Enforce: a new policy, so a new id; the published record is now outdated.
    store.set_domain_mta_sts(Scope::Platform, &dom(DOMAIN), MtaStsMode::Enforce).await.expect("enforce");
    let (_, _, body) = curl_policy(&t, POLICY_HOST, Some(&ca));
    assert!(body.contains("mode: enforce\r\n") && body.contains("max_age: 604800"), "{body}");
    let enforce_txt = mta_sts::txt_value(&body);
    assert_ne!(enforce_txt, testing_txt, "the id changes with the mode");
    let found = mta_sts_verdicts(&t, &checker, DOMAIN).await;
    assert!(has(&found, "mta_sts.txt_outdated", Level::Error), "{found:?}");
    dns.set("_mta-sts.acme.example", Type::Txt, vec![Data::txt(&enforce_txt), Data::txt("v=STSv1; id=old")]);
    let found = mta_sts_verdicts(&t, &checker, DOMAIN).await;
    assert!(has(&found, "mta_sts.txt_multiple", Level::Error), "{found:?}");
    dns.set("_mta-sts.acme.example", Type::Txt, vec![Data::txt(&enforce_txt)]);
    assert!(has(&mta_sts_verdicts(&t, &checker, DOMAIN).await, "mta_sts.txt_ok", Level::Ok));

    // An MX host the policy does not list: senders that enforce would not deliver.
    dns.set(DOMAIN, Type::Mx, vec![Data::Mx(10, HOST.into()), Data::Mx(20, "mx.elsewhere.test".into())]);
    let found = mta_sts_verdicts(&t, &checker, DOMAIN).await;
    assert!(has(&found, "mta_sts.mx_mismatch", Level::Error), "{found:?}");
    dns.set(DOMAIN, Type::Mx, vec![Data::Mx(10, HOST.into())]);

    // Unknown domains and other names get 404.
    let (status, _, _) = curl_policy(&t, "mta-sts.unknown.example", None);
    assert_eq!(status, "404");

    // Off again: the policy is gone.
    store.set_domain_mta_sts(Scope::Platform, &dom(DOMAIN), MtaStsMode::Off).await.expect("off");
    assert_eq!(curl_policy(&t, POLICY_HOST, Some(&ca)).0, "404");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_host_without_a_valid_certificate_is_reported() {
    let dns = TestDns::start(zone());
    let t = TestServer::start_with(|c| c.dns.resolver = Some(dns.addr())).await;
    let customer = t.customer().await;
    let store = t.server.store();
    store.add_domain(customer, &dom("nocert.example"), true).await.expect("domain");
    store.set_domain_mta_sts(Scope::Platform, &dom("nocert.example"), MtaStsMode::Testing).await.expect("on");
    // The server answers with its own certificate, which is not valid for the name.
    let checker = checker(&t, &dns, &t.cert());
    let found = mta_sts_verdicts(&t, &checker, "nocert.example").await;
    assert!(has(&found, "mta_sts.policy_unreachable", Level::Error), "{found:?}");
    let domain = store.domain(Scope::Platform, &dom("nocert.example")).await.expect("domain");
    let report = checks::run(&checker, &domain, &[]).await;
    let message = &report.verdicts.iter().find(|v| v.code == "mta_sts.policy_unreachable").expect("verdict").message;
    assert!(message.en.contains("certificate") && message.de.contains("Zertifikat"), "{message:?}");
}
