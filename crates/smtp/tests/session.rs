//! Session behaviour that needs settings the configuration file does not expose: idle
//! timeouts (RFC 5321 §4.5.3.2) with short values, and the refusal of connections over
//! the per-address limit. Real sockets on 127.0.0.1, a real store in a temp folder.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use postfach_auth::{AuthSettings, Authenticator, PasswordHasher};
use postfach_blob::{Backend, BlobStore, Namespace};
use postfach_net::{Admission, Endpoint, Security, Timeouts, TlsAcceptor};
use postfach_smtp::{Kind, LocalDelivery, Services, Settings, Smtp, SpfFailAction};
use postfach_store::Store;
use postfach_store::delivery::DeliveryBatcher;
use postfach_types::DomainName;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

fn tls() -> TlsAcceptor {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert =
        rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params").self_signed(&key).expect("cert");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()))
        .expect("config");
    TlsAcceptor::new(Arc::new(config))
}

/// An MX with 1-second timeouts on its own listener, through the one connection layer;
/// with `refuse`, the per-address limit is already used up by a connection the test
/// holds open.
async fn server(dir: &std::path::Path, dns: SocketAddr, refuse: bool) -> (SocketAddr, Option<TcpStream>) {
    let store = Store::open(&format!("sqlite://{}", dir.join("db.sqlite").display())).await.expect("store");
    let blobs = BlobStore::open(&Backend::Fs, dir, Namespace::Mailboxes).expect("blobs");
    let deliveries = DeliveryBatcher::start(store.clone());
    let auth = Arc::new(
        Authenticator::new(store.clone(), AuthSettings::default(), PasswordHasher::per_core()).await.expect("auth"),
    );
    let mut settings =
        Settings::new(DomainName::parse("mx.postfach.test").expect("name"), 1 << 20, 10, SpfFailAction::Tag);
    settings.command_timeout = Duration::from_secs(1);
    settings.data_timeout = Duration::from_secs(1);
    let sink = Arc::new(LocalDelivery { store: store.clone(), blobs: blobs.clone(), deliveries: deliveries.clone() });
    let budget = postfach_net::MemoryBudget::new(1 << 24);
    let filter = postfach_filter::Filter::new(store.clone(), blobs.clone(), deliveries.clone(), Default::default());
    let services =
        Services { store, blobs, deliveries, auth, budget, dns_resolver: Some(dns), submissions: sink, filter };
    let smtp = Smtp::new(settings, services).expect("smtp");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let endpoint = Endpoint {
        service: "smtp",
        security: Security::Plain,
        tls: Some(tls()),
        admission: Admission::new(1, 100),
        timeouts: Timeouts::default(),
        proxies: postfach_net::TrustedProxies::default(),
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        postfach_net::accept_loop(listener, endpoint, smtp.protocol(Kind::Mx), stopped).await;
        drop(stop);
    });
    let holder = if refuse {
        let mut first = BufReader::new(TcpStream::connect(addr).await.expect("connect"));
        assert!(line(&mut first).await.starts_with("220"));
        Some(first.into_inner())
    } else {
        None
    };
    (addr, holder)
}

async fn line(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).await.expect("read");
    line
}

#[tokio::test]
async fn an_idle_client_is_told_and_disconnected() {
    let dir = tempfile::tempdir().expect("dir");
    let dns = postfach_testdns::TestDns::start([]);
    let (addr, _) = server(dir.path(), dns.addr(), false).await;
    let mut client = BufReader::new(TcpStream::connect(addr).await.expect("connect"));
    assert!(line(&mut client).await.starts_with("220 mx.postfach.test"));
    // Say nothing: after the timeout the server says why and closes.
    let reply = line(&mut client).await;
    assert!(reply.starts_with("421 4.4.2") && reply.contains("Timeout"), "{reply}");
    assert_eq!(line(&mut client).await, "", "closed");

    // The same while a message is being sent.
    let mut client = BufReader::new(TcpStream::connect(addr).await.expect("connect"));
    line(&mut client).await;
    client.get_mut().write_all(b"HELO client.example\r\nMAIL FROM:<>\r\n").await.expect("write");
    assert!(line(&mut client).await.starts_with("250"));
    assert!(line(&mut client).await.starts_with("250 2.1.0"), "the null sender of bounces is accepted");
    client.get_mut().write_all(b"RCPT TO:<someone@elsewhere.example>\r\n").await.expect("write");
    assert!(line(&mut client).await.starts_with("554 5.7.1"), "nothing is hosted here");
}

#[tokio::test]
async fn a_connection_over_the_limit_is_refused_with_421() {
    let dir = tempfile::tempdir().expect("dir");
    let dns = postfach_testdns::TestDns::start([]);
    let (addr, _holder) = server(dir.path(), dns.addr(), true).await;
    let mut client = BufReader::new(TcpStream::connect(addr).await.expect("connect"));
    let reply = line(&mut client).await;
    assert!(reply.starts_with("421 4.7.0") && reply.contains("Too many connections"), "{reply}");
    assert_eq!(line(&mut client).await, "", "closed");
}
