//! Behind a load balancer (issue 14, point 4): a real HAProxy (`postfach_testproxy`) in
//! TCP mode with `send-proxy-v2` in front of every listener, and PROXY headers sent by
//! hand.
//!
//! The loopback trick: clients bind 127.0.0.2 (or .5) before they connect, HAProxy
//! connects to the server from 127.0.0.3, and the server trusts `127.0.0.3/32` alone. A
//! stranger (127.0.0.4) talks to the server directly. The server listens on 127.0.0.1.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::clients::{run, run_ok};
use common::{PASSWORD, TestServer};
use postfach_store::Scope;
use postfach_store::logins::{LoginFilter, LoginRecord};
use postfach_store::mailboxes::MailboxSettings;
use postfach_testdns::{Data, Rr, TestDns};
use postfach_testproxy::{Frontend, HaProxy, Options};
use postfach_types::{AccessMode, LoginResult, Service};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

const CLIENT: &str = "127.0.0.2";
const BALANCER: &str = "127.0.0.3";
const STRANGER: &str = "127.0.0.4";
const OTHER_CLIENT: &str = "127.0.0.5";

const ALICE: &str = "alice@acme.example";
const PAUL: &str = "paul@acme.example";

/// The services HAProxy fronts, in the order of its frontends.
const SERVICES: [&str; 7] = ["imaps", "imap", "pop3s", "pop3", "submission", "smtp", "https"];

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// A server that trusts the balancer, with alice (IMAP) and paul (POP3), and HAProxy in
/// front of every service in [`SERVICES`].
struct Setup {
    t: TestServer,
    haproxy: HaProxy,
    _dns: TestDns,
}

impl Setup {
    async fn start(adjust: impl FnOnce(&mut postfach_server::config::Config), options: Options) -> Setup {
        // SPF for client.test allows the client alone: the MX must see 127.0.0.2.
        let dns = TestDns::start([Rr::new("client.test", Data::txt("v=spf1 ip4:127.0.0.2 -all"))]);
        let resolver = dns.addr();
        let t = TestServer::start_with(|c| {
            c.proxy.trusted_networks = vec!["127.0.0.3/32".parse().expect("network")];
            c.dns.resolver = Some(resolver);
            adjust(c);
        })
        .await;
        t.mailbox(ALICE, MailboxSettings::default()).await;
        t.mailbox(PAUL, MailboxSettings { access: AccessMode::Pop3, ..MailboxSettings::default() }).await;
        let frontends: Vec<Frontend> = SERVICES
            .iter()
            .map(|s| Frontend { listen: "127.0.0.1:0".parse().expect("addr"), backends: vec![t.addr(s)] })
            .collect();
        let haproxy = tokio::task::spawn_blocking(move || HaProxy::start_with(&frontends, &options))
            .await
            .expect("HAProxy starts");
        Setup { t, haproxy, _dns: dns }
    }

    /// HAProxy's port for `service`.
    fn port(&self, service: &str) -> u16 {
        let index = SERVICES.iter().position(|s| *s == service).expect("a fronted service");
        self.haproxy.addr(index).port()
    }

    async fn logins(&self) -> Vec<LoginRecord> {
        self.t.server.store().logins(Scope::Platform, LoginFilter::default()).await.expect("login log")
    }
}

/// curl from the address `from`, trusting the server's certificate.
fn curl(t: &TestServer, from: &str) -> Command {
    let mut command = Command::new("curl");
    command.args(["-sS", "-4", "--max-time", "60", "--interface", from, "--cacert"]).arg(t.cert());
    command
}

/// A TCP connection to `to` from the local address `from`.
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(ip(from), 0)).expect("bind the client's address");
    socket.connect(to).await.expect("connect")
}

/// A TLS client for `localhost` that trusts the server's self-signed certificate.
fn tls_connector(t: &TestServer) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(t.cert()).expect("cert.pem") {
        roots.add(cert.expect("certificate")).expect("root");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn tls<S: AsyncRead + AsyncWrite + Unpin>(t: &TestServer, stream: S) -> tokio_rustls::client::TlsStream<S> {
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    tls_connector(t).connect(name, stream).await.expect("TLS handshake")
}

/// One line, failing the test when none comes within 30 s; "" when the connection closed.
async fn line<S: AsyncRead + Unpin>(reader: &mut BufReader<S>) -> String {
    let mut line = String::new();
    let read = tokio::time::timeout(Duration::from_secs(30), reader.read_line(&mut line)).await;
    read.expect("a line in time").unwrap_or(0);
    line
}

/// Lines until one starts with `prefix`; all of them.
async fn until<S: AsyncRead + Unpin>(reader: &mut BufReader<S>, prefix: &str) -> String {
    let mut all = String::new();
    loop {
        let next = line(reader).await;
        assert!(!next.is_empty(), "closed; got so far:\n{all}");
        all.push_str(&next);
        if next.starts_with(prefix) {
            return all;
        }
    }
}

/// Everything the server sends until it closes (a reset counts as closed), within 30 s.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut got)).await;
    read.expect("the server closes the connection in time").ok();
    got
}

/// A PROXY v2 header (TCP over IPv4) naming `source` as the client.
fn v2_header(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let (SocketAddr::V4(source), SocketAddr::V4(destination)) = (source, destination) else { panic!("IPv4 only here") };
    let mut header = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    header.extend_from_slice(&source.ip().octets());
    header.extend_from_slice(&destination.ip().octets());
    header.extend_from_slice(&source.port().to_be_bytes());
    header.extend_from_slice(&destination.port().to_be_bytes());
    header
}

const V2_LOCAL: &[u8] = b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00";

/// An API token of customer acme.
async fn api_token(t: &TestServer) -> String {
    let customer = t.customer().await;
    let token = postfach_auth::tokens::new_api_token();
    let hash = postfach_auth::tokens::token_hash(token.expose());
    t.server.store().create_api_token(customer, "script", &hash).await.expect("token");
    token.expose().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_service_behind_haproxy_sees_the_real_client() {
    let s = Setup::start(|_| {}, Options::new(ip(BALANCER))).await;
    let t = &s.t;
    let alice = format!("{ALICE}:{PASSWORD}");
    let paul = format!("{PAUL}:{PASSWORD}");
    for url in
        [format!("imaps://localhost:{}/INBOX", s.port("imaps")), format!("imap://localhost:{}/INBOX", s.port("imap"))]
    {
        let out =
            run_ok(curl(t, CLIENT).args(["--ssl-reqd", "-u", &alice, &url, "-X", "STATUS INBOX (MESSAGES)"])).await;
        assert!(out.contains("STATUS INBOX (MESSAGES 0)"), "{url}: {out}");
    }
    for url in [format!("pop3s://localhost:{}/", s.port("pop3s")), format!("pop3://localhost:{}/", s.port("pop3"))] {
        run_ok(curl(t, CLIENT).args(["--ssl-reqd", "-u", &paul, &url])).await;
    }
    let swaks = |port: u16, extra: &[&str]| {
        let mut command = Command::new("swaks");
        command
            .args(["--local-interface", CLIENT, "--server", &format!("127.0.0.1:{port}"), "--ehlo", "client.test"])
            .args(extra);
        command
    };
    run_ok(&mut swaks(
        s.port("submission"),
        &["-tls", "--auth", "PLAIN", "--auth-user", ALICE, "--auth-password", PASSWORD, "--from", ALICE, "--to", PAUL],
    ))
    .await;
    run_ok(&mut swaks(s.port("smtp"), &["--from", "news@client.test", "--to", ALICE, "--header", "Subject: via MX"]))
        .await;
    let token = api_token(t).await;
    let url = format!("https://localhost:{}/api/v1/logins", s.port("https"));
    let api = run_ok(curl(t, CLIENT).args(["-f", "-H", &format!("Authorization: Bearer {token}"), &url])).await;

    // The login list, in the store and as the API shows it: the client, never the balancer.
    let log = s.logins().await;
    for service in [Service::Imap, Service::Pop3, Service::Submission, Service::Api] {
        assert!(log.iter().any(|r| r.service == service), "a {service:?} login: {log:#?}");
    }
    assert!(log.iter().all(|r| r.remote_ip == ip(CLIENT) && r.result == LoginResult::Ok), "{log:#?}");
    assert!(api.contains("\"remote_ip\":\"127.0.0.2\"") && !api.contains("127.0.0.3"), "{api}");

    // The MX: `Received:` names the client, and SPF judged the client's address.
    let store = t.server.store();
    let mailbox = store
        .mailbox(Scope::Platform, &postfach_types::EmailAddress::parse(ALICE).expect("address"))
        .await
        .expect("alice");
    let inbox = store.folder(mailbox.id, "INBOX").await.expect("folder").expect("INBOX");
    let messages = store.messages(mailbox.id, inbox.id).await.expect("messages");
    let mx = messages.last().expect("the MX delivered");
    let text = String::from_utf8_lossy(&t.server.blobs().get(&mx.blob).await.expect("blob")).into_owned();
    assert!(text.contains("Subject: via MX"), "{text}");
    assert!(text.contains("Received: from client.test ([127.0.0.2])"), "{text}");
    assert!(!text.contains("127.0.0.3"), "{text}");
    assert!(text.contains("spf=pass"), "SPF saw 127.0.0.2, which client.test allows:\n{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_throttle_counts_the_client_not_the_balancer() {
    let s = Setup::start(|c| c.security.max_failures_per_ip = 3, Options::new(ip(BALANCER))).await;
    let t = &s.t;
    let url = format!("imaps://localhost:{}/INBOX", s.port("imaps"));
    let status = |from: &'static str, password: &str| {
        let mut command = curl(t, from);
        command.args(["-u", &format!("{ALICE}:{password}"), &url, "-X", "STATUS INBOX (MESSAGES)"]);
        command
    };
    for _ in 0..3 {
        assert!(!run(&mut status(CLIENT, "not the password")).await.status.success());
    }
    let throttled = run(&mut status(CLIENT, PASSWORD)).await;
    assert!(!throttled.status.success(), "the client is throttled, even with the right password");
    let other = run(&mut status(OTHER_CLIENT, PASSWORD)).await;
    assert!(other.status.success(), "another client behind the same balancer is not: {other:?}");
    let log = s.logins().await;
    let seen: Vec<(IpAddr, LoginResult)> = log.iter().rev().map(|r| (r.remote_ip, r.result)).collect();
    assert_eq!(
        seen,
        [
            (ip(CLIENT), LoginResult::BadCredentials),
            (ip(CLIENT), LoginResult::BadCredentials),
            (ip(CLIENT), LoginResult::BadCredentials),
            (ip(CLIENT), LoginResult::Throttled),
            (ip(OTHER_CLIENT), LoginResult::Ok),
        ],
        "{log:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_sent_by_hand_from_the_balancer_name_the_client() {
    let s = Setup::start(|_| {}, Options::new(ip(BALANCER))).await;
    let t = &s.t;
    // v1 on the implicit-TLS port: the ClientHello follows the header.
    let mut tcp = connect_from(BALANCER, t.addr("imaps")).await;
    tcp.write_all(b"PROXY TCP6 2001:db8::7 ::1 40000 993\r\n").await.expect("header");
    let mut imap = BufReader::new(tls(t, tcp).await);
    assert!(line(&mut imap).await.starts_with("* OK"));
    imap.get_mut().write_all(format!("a LOGIN {ALICE} \"{PASSWORD}\"\r\n").as_bytes()).await.expect("login");
    assert!(until(&mut imap, "a ").await.contains("a OK"));
    let log = s.logins().await;
    assert_eq!(log[0].remote_ip, ip("2001:db8::7"), "{log:#?}");

    // v1 on a plaintext port with a command pipelined behind it in the same write.
    let mut tcp = connect_from(BALANCER, t.addr("smtp")).await;
    tcp.write_all(b"PROXY TCP4 198.51.100.7 127.0.0.1 40000 25\r\nEHLO client.test\r\n").await.expect("write");
    let mut smtp = BufReader::new(tcp);
    assert!(line(&mut smtp).await.starts_with("220 "));
    assert!(until(&mut smtp, "250 ").await.starts_with("250-"), "the pipelined EHLO was answered");

    // v2 with STARTTLS after it: the client named is the one logged.
    let mut tcp = connect_from(BALANCER, t.addr("imap")).await;
    let header = v2_header("198.51.100.8:4242".parse().expect("addr"), t.addr("imap"));
    tcp.write_all(&[header.as_slice(), b"s STARTTLS\r\n"].concat()).await.expect("write");
    let mut plain = BufReader::new(tcp);
    assert!(line(&mut plain).await.starts_with("* OK"));
    assert!(until(&mut plain, "s ").await.starts_with("s OK"));
    let mut imap = BufReader::new(tls(t, plain.into_inner()).await);
    imap.get_mut().write_all(format!("b LOGIN {ALICE} \"{PASSWORD}\"\r\n").as_bytes()).await.expect("login");
    assert!(until(&mut imap, "b ").await.contains("b OK"));
    assert_eq!(s.logins().await[0].remote_ip, ip("198.51.100.8"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_header_from_an_untrusted_client_is_not_believed() {
    let s = Setup::start(|_| {}, Options::new(ip(BALANCER))).await;
    let t = &s.t;
    let forged = |port: u16| format!("PROXY TCP4 203.0.113.9 127.0.0.1 1234 {port}\r\n");

    let mut imap = BufReader::new(connect_from(STRANGER, t.addr("imap")).await);
    assert!(line(&mut imap).await.starts_with("* OK"), "greeted at once: nothing waits for a header");
    imap.get_mut().write_all(forged(t.port("imap")).as_bytes()).await.expect("forged");
    let answer = line(&mut imap).await;
    assert!(answer.starts_with("PROXY BAD") || answer.starts_with("* BAD"), "{answer}");
    imap.get_mut().write_all(b"s STARTTLS\r\n").await.expect("starttls");
    assert!(until(&mut imap, "s ").await.starts_with("s OK"));
    let mut imap = BufReader::new(tls(t, imap.into_inner()).await);
    imap.get_mut().write_all(format!("a LOGIN {ALICE} \"{PASSWORD}\"\r\n").as_bytes()).await.expect("login");
    assert!(until(&mut imap, "a ").await.contains("a OK"));
    let log = s.logins().await;
    assert_eq!(log[0].remote_ip, ip(STRANGER), "{log:#?}");

    let mut smtp = BufReader::new(connect_from(STRANGER, t.addr("smtp")).await);
    assert!(line(&mut smtp).await.starts_with("220 "));
    smtp.get_mut().write_all(forged(t.port("smtp")).as_bytes()).await.expect("forged");
    let answer = line(&mut smtp).await;
    assert!(answer.starts_with("500 ") || answer.starts_with("502 "), "an unknown command: {answer}");

    let mut pop3 = BufReader::new(connect_from(STRANGER, t.addr("pop3")).await);
    assert!(line(&mut pop3).await.starts_with("+OK"));
    pop3.get_mut().write_all(forged(t.port("pop3")).as_bytes()).await.expect("forged");
    assert!(line(&mut pop3).await.starts_with("-ERR"));

    let mut http = connect_from(STRANGER, t.addr("http")).await;
    http.write_all(forged(t.port("http")).as_bytes()).await.expect("forged");
    http.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await.expect("request");
    let reply = String::from_utf8_lossy(&until_closed(&mut http).await).into_owned();
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trusted_peer_without_a_valid_header_is_closed_without_a_word() {
    let s = Setup::start(
        |c| {
            c.limits.handshake_timeout_secs = 1;
            c.limits.max_connections_per_service = 3;
        },
        Options::new(ip(BALANCER)),
    )
    .await;
    let t = &s.t;
    let attempts: [(&str, &[u8]); 6] = [
        ("smtp", b"EHLO client.test\r\n"),
        ("imap", b""),
        ("pop3", b"PROXY TCP4 198.51.100.7 127.0.0.1 1 2\n"),
        ("imaps", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\x00\x00\x00\x00\x00"),
        ("https", b"\r\n\r\n\0\r\nQUIT\n\x11\x11\x00\x0c\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01\x00\x02"),
        ("submission", b"PROXY TCP4 203.0.113.9 127.0.0.1 70000 587\r\n"),
    ];
    for round in 0..2 {
        for (service, bytes) in attempts {
            let mut tcp = connect_from(BALANCER, t.addr(service)).await;
            if !bytes.is_empty() {
                tcp.write_all(bytes).await.expect("write");
            }
            let got = until_closed(&mut tcp).await;
            assert!(got.is_empty(), "{service} (round {round}) closed without a reply, not {got:?}");
        }
    }
    // Six refused connections per service did not use up its three slots.
    let out = run_ok(curl(t, CLIENT).args([
        "-u",
        &format!("{ALICE}:{PASSWORD}"),
        &format!("imaps://localhost:{}/INBOX", s.port("imaps")),
        "-X",
        "NOOP",
    ]))
    .await;
    let _ = out;
    assert_eq!(s.logins().await.iter().map(|r| r.remote_ip).collect::<Vec<_>>(), [ip(CLIENT)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn health_checks_disturb_nothing() {
    let options = Options { health_checks: Some(Duration::from_millis(300)), ..Options::new(ip(BALANCER)) };
    let s = Setup::start(|c| c.limits.max_connections_per_ip = 3, options).await;
    let t = &s.t;
    // A check by hand: the connection is the balancer's own, served as such.
    let mut tcp = connect_from(BALANCER, t.addr("imap")).await;
    tcp.write_all(&[V2_LOCAL, b"c CAPABILITY\r\n"].concat()).await.expect("write");
    let mut imap = BufReader::new(tcp);
    assert!(line(&mut imap).await.starts_with("* OK"));
    assert!(until(&mut imap, "c ").await.contains("c OK"));
    drop(imap);
    // HAProxy's own checks (v2 LOCAL every 300 ms) find every server up, again and again.
    let haproxy = &s.haproxy;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let servers = haproxy.servers();
        if servers.len() == SERVICES.len() && servers.iter().all(|s| s.check_status.starts_with("L4OK")) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "checks did not pass: {servers:#?}\n{}", haproxy.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Meanwhile clients come through as themselves, more of them at once than one address
    // may hold: the checks are counted for the balancer, the clients for themselves.
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut client = BufReader::new(connect_from(CLIENT, haproxy.addr(1)).await);
        assert!(line(&mut client).await.starts_with("* OK"));
        clients.push(client);
    }
    let mut over = BufReader::new(connect_from(CLIENT, haproxy.addr(1)).await);
    assert!(line(&mut over).await.starts_with("* BYE"), "the client's own limit (3) applies");
    drop(clients);
    let out = run_ok(curl(t, CLIENT).args([
        "--ssl-reqd",
        "-u",
        &format!("{ALICE}:{PASSWORD}"),
        &format!("imap://localhost:{}/INBOX", s.port("imap")),
        "-X",
        "NOOP",
    ]))
    .await;
    let _ = out;
    let servers = haproxy.servers();
    assert!(servers.iter().all(|s| s.status.starts_with("UP")), "{servers:#?}");
    assert_eq!(s.logins().await.iter().map(|r| r.remote_ip).collect::<Vec<_>>(), [ip(CLIENT)]);
}
