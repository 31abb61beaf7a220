//! A small receiving SMTP server for tests: the "outside" mail server that outbound mail
//! is delivered to. It listens on 127.0.0.1 (a port of the system's choosing), offers
//! STARTTLS with a self-signed certificate, 8BITMIME, SIZE and SMTPUTF8, and records every
//! message it accepts with its envelope and whether the session was encrypted.
//!
//! It runs on plain threads, so it serves synchronous tests (which block on a child
//! process) and asynchronous ones alike. What it answers to `RCPT TO` is switchable while
//! it runs ([`Behaviour`]). Shared by the tests of several crates through `#[path]`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the sink answers to recipients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// `250`: accept every recipient.
    Accept,
    /// `550 5.1.1`: no such user (a permanent failure).
    Reject,
    /// `451 4.3.0`: try again later (a temporary failure).
    Defer,
}

/// What the sink offers for encryption (see [`Sink::start_with`]).
#[derive(Debug, Clone)]
pub struct Offer {
    /// Offer STARTTLS at all (an attacker in the path removes it).
    pub starttls: bool,
    /// The certificate chain and key; `None`: a self-signed one for mx.outside.test.
    pub certificate: Option<(Vec<rustls::pki_types::CertificateDer<'static>>, Vec<u8>)>,
    /// Advertise REQUIRETLS after STARTTLS (RFC 8689).
    pub requiretls: bool,
}

impl Default for Offer {
    fn default() -> Self {
        Offer { starttls: true, certificate: None, requiretls: false }
    }
}

/// One accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub helo: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message with dot-stuffing undone, CRLF line endings.
    pub data: Vec<u8>,
    /// The MAIL FROM line's parameters, like `SIZE=100 REQUIRETLS`.
    pub mail_params: String,
    /// Whether the message came over STARTTLS.
    pub tls: bool,
    /// The address the sending server connected from.
    pub peer: std::net::IpAddr,
    /// When the sink accepted it (after the end of DATA).
    pub at: std::time::SystemTime,
}

impl Received {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

#[derive(Debug)]
struct Shared {
    behaviour: Mutex<Behaviour>,
    received: Mutex<Vec<Received>>,
    /// Every RCPT TO the sink was asked, accepted or not.
    attempts: Mutex<Vec<String>>,
    /// While set, messages are read but the reply after DATA waits (a delivery in progress).
    hold: AtomicBool,
    stop: AtomicBool,
    /// While set, STARTTLS is neither advertised nor accepted (an attacker in the path).
    strip_starttls: AtomicBool,
    tls: Arc<rustls::ServerConfig>,
    offer: Offer,
}

#[derive(Debug)]
pub struct Sink {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Sink {
    pub fn start(behaviour: Behaviour) -> Sink {
        Sink::start_with(behaviour, Offer::default())
    }

    /// A sink that offers encryption as `offer` says.
    pub fn start_with(behaviour: Behaviour, offer: Offer) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the sink");
        let addr = listener.local_addr().expect("sink address");
        let shared = Arc::new(Shared {
            behaviour: Mutex::new(behaviour),
            received: Mutex::new(Vec::new()),
            attempts: Mutex::new(Vec::new()),
            hold: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            strip_starttls: AtomicBool::new(false),
            tls: tls_config(offer.certificate.clone()),
            offer,
        });
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let shared = accepting.clone();
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        Sink { addr, shared }
    }

    /// A sink presenting this certificate chain (server certificate first) over STARTTLS.
    pub fn start_with_certificate(
        behaviour: Behaviour,
        chain: Vec<rustls::pki_types::CertificateDer<'static>>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
    ) -> Sink {
        let certificate = Some((chain, key.secret_der().to_vec()));
        Sink::start_with(behaviour, Offer { certificate, ..Offer::default() })
    }

    /// From now on, STARTTLS is stripped from the EHLO reply and refused, as an attacker in
    /// the path would.
    pub fn strip_starttls(&self) {
        self.shared.strip_starttls.store(true, Ordering::SeqCst);
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().expect("lock") = behaviour;
    }

    /// Holds every message at the end of DATA, unanswered and unrecorded, until
    /// [`Sink::release`]: deliveries stay in progress.
    pub fn hold(&self) {
        self.shared.hold.store(true, Ordering::SeqCst);
    }

    /// Answers and records the held messages and every later one.
    pub fn release(&self) {
        self.shared.hold.store(false, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().expect("lock").clone()
    }

    /// The recipients asked for so far (one entry per RCPT TO).
    pub fn attempts(&self) -> Vec<String> {
        self.shared.attempts.lock().expect("lock").clone()
    }

    /// Waits until `n` messages have arrived (or panics after `limit`).
    pub fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        loop {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            assert!(Instant::now() < deadline, "the sink got {} of {n} messages in {limit:?}", received.len());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The same, for async tests: waits without blocking the runtime.
    pub async fn arrived(&self, n: usize, limit: Duration) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        loop {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            assert!(Instant::now() < deadline, "the sink got {} of {n} messages in {limit:?}", received.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the sink has been asked for at least `n` recipients.
    pub fn wait_for_attempts(&self, n: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.attempts().len() < n {
            assert!(
                Instant::now() < deadline,
                "the sink was asked {} of {n} times in {limit:?}",
                self.attempts().len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

type Chain = (Vec<rustls::pki_types::CertificateDer<'static>>, Vec<u8>);

fn tls_config(certificate: Option<Chain>) -> Arc<rustls::ServerConfig> {
    let (chain, key) = certificate.unwrap_or_else(|| {
        let certified = rcgen::generate_simple_self_signed(vec!["mx.outside.test".to_string()]).expect("certificate");
        (vec![certified.cert.der().clone()], certified.signing_key.serialize_der())
    });
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("TLS config");
    Arc::new(config)
}

fn serve(mut tcp: TcpStream, shared: &Shared) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(peer) = tcp.peer_addr() else { return };
    let peer = peer.ip();
    if tcp.write_all(b"220 mx.outside.test ESMTP test sink\r\n").is_err() {
        return;
    }
    if session(&mut tcp, false, peer, shared) == Some(Next::StartTls) {
        let Ok(conn) = rustls::ServerConnection::new(shared.tls.clone()) else { return };
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        session(&mut tls, true, peer, shared);
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Next {
    StartTls,
}

fn read_line(stream: &mut impl Read) -> Option<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        line.push(byte[0]);
        if line.ends_with(b"\r\n") || line.len() > 100_000 {
            return Some(String::from_utf8_lossy(&line).into_owned());
        }
    }
}

fn address(arg: &str) -> String {
    let start = arg.find('<').map_or(0, |i| i + 1);
    let end = arg[start..].find('>').map_or(arg.len(), |i| start + i);
    arg[start..end].to_string()
}

fn session(stream: &mut (impl Read + Write), tls: bool, peer: std::net::IpAddr, shared: &Shared) -> Option<Next> {
    let mut helo = String::new();
    let mut mail_from: Option<String> = None;
    let mut mail_params = String::new();
    let mut rcpt_to: Vec<String> = Vec::new();
    loop {
        let line = read_line(stream)?;
        let line = line.trim_end();
        let upper = line.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO ") {
            helo = line[5..].to_string();
            let offered = shared.offer.starttls && !shared.strip_starttls.load(Ordering::SeqCst);
            let starttls = if tls || !offered { "" } else { "250-STARTTLS\r\n" };
            let requiretls = if tls && shared.offer.requiretls { "250-REQUIRETLS\r\n" } else { "" };
            format!(
                "250-mx.outside.test\r\n250-8BITMIME\r\n250-SIZE 10000000\r\n{starttls}{requiretls}250 SMTPUTF8\r\n"
            )
        } else if upper.starts_with("HELO ") {
            helo = line[5..].to_string();
            "250 mx.outside.test\r\n".into()
        } else if upper == "STARTTLS" && !tls && shared.offer.starttls && !shared.strip_starttls.load(Ordering::SeqCst)
        {
            stream.write_all(b"220 2.0.0 go ahead\r\n").ok()?;
            return Some(Next::StartTls);
        } else if upper.starts_with("MAIL FROM:") {
            mail_from = Some(address(&line[10..]));
            mail_params = line[10..].rsplit_once('>').map_or(String::new(), |(_, p)| p.trim().to_string());
            rcpt_to.clear();
            "250 2.1.0 ok\r\n".into()
        } else if upper.starts_with("RCPT TO:") {
            let rcpt = address(&line[8..]);
            shared.attempts.lock().expect("lock").push(rcpt.clone());
            match *shared.behaviour.lock().expect("lock") {
                Behaviour::Accept => {
                    rcpt_to.push(rcpt);
                    "250 2.1.5 ok\r\n".into()
                }
                Behaviour::Reject => "550 5.1.1 no such user here\r\n".into(),
                Behaviour::Defer => "451 4.3.0 try again later\r\n".into(),
            }
        } else if upper == "DATA" {
            if mail_from.is_none() || rcpt_to.is_empty() {
                "503 5.5.1 no valid recipients\r\n".into()
            } else {
                stream.write_all(b"354 go ahead\r\n").ok()?;
                let mut data = Vec::new();
                loop {
                    let line = read_line(stream)?;
                    if line == ".\r\n" {
                        break;
                    }
                    let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                    data.extend_from_slice(unstuffed.as_bytes());
                }
                while shared.hold.load(Ordering::SeqCst) && !shared.stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                shared.received.lock().expect("lock").push(Received {
                    helo: helo.clone(),
                    mail_from: mail_from.take().unwrap_or_default(),
                    rcpt_to: std::mem::take(&mut rcpt_to),
                    data,
                    mail_params: std::mem::take(&mut mail_params),
                    tls,
                    peer,
                    at: std::time::SystemTime::now(),
                });
                "250 2.0.0 accepted\r\n".into()
            }
        } else if upper == "RSET" || upper == "NOOP" {
            mail_from = None;
            rcpt_to.clear();
            "250 2.0.0 ok\r\n".into()
        } else if upper == "QUIT" {
            let _ = stream.write_all(b"221 2.0.0 bye\r\n");
            return None;
        } else {
            "500 5.5.2 unknown command\r\n".into()
        };
        stream.write_all(reply.as_bytes()).ok()?;
        stream.flush().ok()?;
    }
}
