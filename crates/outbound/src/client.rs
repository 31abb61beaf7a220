//! A small SMTP client for delivery to other mail servers (RFC 5321) with STARTTLS
//! (RFC 3207) as [`crate::tls_policy`] decides per host: opportunistic (RFC 7435: TLS
//! whenever the server offers it, any certificate, and after a failed handshake a new
//! plaintext connection) or required (STARTTLS must be offered and succeed, the certificate
//! must pass the requirement's check; there is no plaintext fallback, so a stripped
//! STARTTLS means the host does not get the message). The TLS used by each delivery
//! ([`Used`]) is reported for the log, the queue and the metrics.
//!
//! One connection carries one message to the recipients at one domain; every recipient
//! gets its own result.
//!
//! The remote server may be hostile: every read and write has the RFC 5321 §4.5.3.2
//! timeout of its phase, a reply (all its lines together) is at most [`MAX_REPLY`] bytes,
//! reply text is stripped of control characters before it reaches logs, the queue and
//! DSNs, the answer to QUIT is waited for only briefly, and one delivery attempt over all
//! of a domain's hosts ends after [`Timeouts::attempt`], so a server that answers each
//! command just in time cannot hold one of the few delivery slots for hours.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use postfach_types::EmailAddress;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::cert_check::{AnyCertificate, CertCheck, NoRoots, Presented, Verifier};
use crate::mx::Host;
use crate::tls_policy::{self, PolicySource, Requirement, Tls, Used, Verify};

/// How long each phase of a delivery may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing the TCP connection.
    pub connect: Duration,
    /// The greeting (RFC 5321 §4.5.3.2.1: 5 minutes).
    pub greeting: Duration,
    /// Each command's reply, and the TLS handshake (§4.5.3.2.2-3: 5 minutes).
    pub command: Duration,
    /// The reply to DATA (§4.5.3.2.4: 2 minutes).
    pub data_init: Duration,
    /// Sending the message (§4.5.3.2.5: 3 minutes; here for the whole message).
    pub data_block: Duration,
    /// The reply after the final dot (§4.5.3.2.6: 10 minutes).
    pub data_end: Duration,
    /// The reply to QUIT: the outcome is known by then, so it is not waited for long.
    pub quit: Duration,
    /// One whole delivery attempt, over every host and address of the domain.
    pub attempt: Duration,
}

impl Timeouts {
    /// The RFC 5321 §4.5.3.2 values, and a 30-minute bound on one attempt (which a
    /// well-behaved server never comes near: the sum of one session's waits is larger
    /// only when a server answers every command at the last moment).
    pub const RFC_5321: Timeouts = Timeouts {
        connect: Duration::from_secs(30),
        greeting: Duration::from_secs(300),
        command: Duration::from_secs(300),
        data_init: Duration::from_secs(120),
        data_block: Duration::from_secs(180),
        data_end: Duration::from_secs(600),
        quit: Duration::from_secs(10),
        attempt: Duration::from_secs(30 * 60),
    };
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::RFC_5321
    }
}

/// The longest reply accepted (all lines together, line endings included).
pub const MAX_REPLY: usize = 64 * 1024;

/// A server's reply: code, enhanced status code (RFC 2034) if given, and the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// The enhanced status code, from the reply or derived from the code (RFC 3463).
    pub fn status(&self) -> String {
        let first = self.text.split_whitespace().next().unwrap_or("");
        let parts: Vec<&str> = first.split('.').collect();
        if parts.len() == 3
            && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            && parts[0].len() == 1
            && u16::from(parts[0].as_bytes()[0] - b'0') == self.code / 100
        {
            return first.to_string();
        }
        match self.code / 100 {
            2 => "2.0.0".into(),
            4 => "4.0.0".into(),
            _ => "5.0.0".into(),
        }
    }

    /// The reply on one line, like `550 5.1.1 No such user`.
    pub fn line(&self) -> String {
        format!("{} {}", self.code, self.text.split(['\r', '\n']).collect::<Vec<_>>().join(" "))
    }
}

/// What happened to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptResult {
    Delivered,
    /// Refused for good by the server.
    Refused(Reply),
    /// Refused for now by the server.
    Deferred(Reply),
    /// No server could be asked (connection or protocol trouble); try again later.
    Unreachable(String),
    /// Postfach itself cannot deliver it this way, for good (like an internationalised
    /// address to a server without SMTPUTF8).
    Impossible {
        status: &'static str,
        text: String,
    },
    /// No host could be given the message with the TLS its requirement asks for: try again
    /// later (a 4.x.x status) or give up (5.x.x).
    Unprotected(tls_policy::Failure),
}

/// The results of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The server that was talked to last (`name[ip]`), if any.
    pub remote_mta: Option<String>,
    /// The policy followed and the TLS used by the session that gave the results.
    pub used: Used,
    /// One per recipient, in the order given.
    pub results: Vec<RcptResult>,
}

/// The envelope and message of one delivery.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// The name this server greets with (EHLO).
    pub helo: &'a str,
    pub from: Option<&'a EmailAddress>,
    pub recipients: &'a [EmailAddress],
    /// The message, CRLF line endings.
    pub message: &'a [u8],
}

/// One MX host and what its TLS must be ([`tls_policy::Destination::for_host`]).
#[derive(Debug, Clone)]
pub struct Target {
    pub host: Host,
    pub requirement: Requirement,
}

impl Target {
    /// A host with opportunistic TLS and nothing else asked for.
    pub fn opportunistic(host: Host) -> Target {
        let requirement = tls_policy::Destination { domain: &host.name, mta_sts: None, demand: Default::default() }
            .for_host(&host.name, &tls_policy::DaneAnswer::NotApplicable);
        Target { host, requirement }
    }
}

/// Delivers to the first host that takes the message (hosts and their addresses in order).
/// `sources` are the addresses to send from (`[outbound] ips`): the first of the
/// destination's family is used, so receivers see an address the SPF record names.
pub async fn deliver(
    targets: &[Target],
    port: u16,
    sources: &[IpAddr],
    envelope: Envelope<'_>,
    tls: &TlsClients,
) -> Attempt {
    deliver_within(targets, port, sources, envelope, tls, &Timeouts::RFC_5321).await
}

/// [`deliver`] with other timeouts (tests shorten them).
pub async fn deliver_within(
    targets: &[Target],
    port: u16,
    sources: &[IpAddr],
    envelope: Envelope<'_>,
    tls: &TlsClients,
    timeouts: &Timeouts,
) -> Attempt {
    let deadline = tokio::time::Instant::now() + timeouts.attempt;
    let unused = Used { source: PolicySource::None, version: None, detail: None, report: None };
    let mut last = Attempt {
        remote_mta: None,
        used: unused.clone(),
        results: vec![RcptResult::Unreachable("no mail server could be reached".into()); envelope.recipients.len()],
    };
    for Target { host, requirement } in targets {
        if let Tls::Refused = requirement.tls {
            tracing::info!(server = %host.name, reason = %requirement.failure.text, "mail server not used");
            last = Attempt {
                remote_mta: Some(host.name.clone()),
                used: Used { source: requirement.source, ..unused.clone() },
                results: vec![RcptResult::Unprotected(requirement.failure.clone()); envelope.recipients.len()],
            };
            continue;
        }
        for ip in &host.addresses {
            let remote = format!("{}[{}]", host.name, ip);
            let within = |use_tls: bool| async move {
                let session =
                    session(host, *ip, port, sources, envelope, requirement, use_tls.then_some(tls), timeouts);
                tokio::time::timeout_at(deadline, session)
                    .await
                    .unwrap_or(Err(Failure::Io("the delivery attempt took too long".into())))
            };
            let mut outcome = within(true).await;
            if let Err(Failure::Tls(e)) = &outcome {
                tracing::info!(server = %remote, error = %e, "TLS handshake failed; delivering without TLS");
                outcome = within(false).await;
            }
            match outcome {
                Ok(attempt) => return attempt,
                Err(Failure::Policy(failure)) => {
                    tracing::info!(server = %remote, problem = %failure.text, "mail server not used: its TLS falls short");
                    last = Attempt {
                        remote_mta: Some(remote),
                        used: Used { source: requirement.source, ..unused.clone() },
                        results: vec![RcptResult::Unprotected(failure); envelope.recipients.len()],
                    };
                }
                Err(Failure::Refused(reply)) => {
                    // The server refused the session or the sender: the next host may differ.
                    let result = if reply.is_permanent() {
                        RcptResult::Refused(reply.clone())
                    } else {
                        RcptResult::Deferred(reply.clone())
                    };
                    tracing::info!(server = %remote, reply = %reply.line(), "server refused the session");
                    last = Attempt {
                        remote_mta: Some(remote),
                        used: unused.clone(),
                        results: vec![result; envelope.recipients.len()],
                    };
                }
                Err(Failure::Io(e) | Failure::Tls(e)) => {
                    tracing::info!(server = %remote, error = %e, "delivery attempt failed");
                    last = Attempt {
                        remote_mta: Some(remote.clone()),
                        used: unused.clone(),
                        results: vec![RcptResult::Unreachable(format!("{remote}: {e}")); envelope.recipients.len()],
                    };
                }
                Err(Failure::Impossible { status, text }) => {
                    return Attempt {
                        remote_mta: Some(remote),
                        used: unused.clone(),
                        results: vec![RcptResult::Impossible { status, text }; envelope.recipients.len()],
                    };
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return last;
            }
        }
    }
    last
}

#[derive(Debug)]
enum Failure {
    /// Connection, timeout or protocol trouble.
    Io(String),
    /// The TLS handshake failed: retry in plaintext.
    Tls(String),
    /// The host cannot meet the TLS requirement: no plaintext retry.
    Policy(tls_policy::Failure),
    /// A negative reply before any recipient was given.
    Refused(Reply),
    Impossible {
        status: &'static str,
        text: String,
    },
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

struct Connection {
    stream: Option<Stream>,
    buffer: Vec<u8>,
}

impl Connection {
    async fn write(&mut self, bytes: &[u8], limit: Duration) -> Result<(), Failure> {
        let io = async {
            match &mut self.stream {
                Some(Stream::Plain(s)) => s.write_all(bytes).await?,
                Some(Stream::Tls(s)) => {
                    s.write_all(bytes).await?;
                    s.flush().await?;
                }
                None => return Err(std::io::Error::other("not connected")),
            }
            Ok(())
        };
        match tokio::time::timeout(limit, io).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Failure::Io(format!("sending failed: {e}"))),
            Err(_) => Err(Failure::Io("the server did not take the data in time".into())),
        }
    }

    async fn command(&mut self, line: &str, limit: Duration) -> Result<Reply, Failure> {
        self.write(format!("{line}\r\n").as_bytes(), limit).await?;
        self.reply(limit).await
    }

    /// Reads one (possibly multi-line) reply (RFC 5321 §4.2.1).
    async fn reply(&mut self, limit: Duration) -> Result<Reply, Failure> {
        match tokio::time::timeout(limit, self.read_reply()).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Io("the server did not answer in time".into())),
        }
    }

    /// At most [`MAX_REPLY`] bytes over all lines; the text keeps no control characters.
    async fn read_reply(&mut self) -> Result<Reply, Failure> {
        let mut left = MAX_REPLY;
        let mut lines: Vec<String> = Vec::new();
        let code = loop {
            let (line, used) = self.read_line(left).await?;
            left -= used;
            if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
                let start = printable(&line[..line.len().min(80)]);
                return Err(Failure::Io(format!("the server sent something that is not an SMTP reply: {start:?}")));
            }
            let code = line[..3].iter().fold(0u16, |code, digit| code * 10 + u16::from(digit - b'0'));
            let last = line.get(3) != Some(&b'-');
            lines.push(printable(line.get(4..).unwrap_or_default()));
            if last {
                break code;
            }
        };
        Ok(Reply { code, text: lines.join("\n") })
    }

    /// One line without its line ending, and the bytes it took from the stream (at most
    /// `max`, its line ending included).
    async fn read_line(&mut self, max: usize) -> Result<(Vec<u8>, usize), Failure> {
        let too_long = || Failure::Io("the server's reply is too long".into());
        loop {
            if let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                if end >= max {
                    return Err(too_long());
                }
                let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
                let used = line.len();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok((line, used));
            }
            if self.buffer.len() >= max {
                return Err(too_long());
            }
            let mut chunk = [0u8; 4096];
            let n = match &mut self.stream {
                Some(Stream::Plain(s)) => s.read(&mut chunk).await,
                Some(Stream::Tls(s)) => s.read(&mut chunk).await,
                None => return Err(Failure::Io("not connected".into())),
            }
            .map_err(|e| Failure::Io(format!("reading failed: {e}")))?;
            if n == 0 {
                return Err(Failure::Io("the server closed the connection".into()));
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    /// The TLS version (`TLSv1.3`, `TLSv1.2`) and `version cipher`, or `None` in plaintext.
    fn tls_state(&self) -> Option<(&'static str, String)> {
        match &self.stream {
            Some(Stream::Tls(s)) => {
                let (_, conn) = s.get_ref();
                let version = match conn.protocol_version() {
                    Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
                    Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
                    _ => "TLS",
                };
                let cipher = conn.negotiated_cipher_suite().and_then(|c| c.suite().as_str()).unwrap_or("unknown");
                Some((version, format!("{version} {cipher}")))
            }
            _ => None,
        }
    }
}

/// Reply text as it may go into logs, the queue and DSNs: valid UTF-8 (invalid bytes
/// replaced), every control character (CR, NUL, ESC, ...) written as `?`.
fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// The EHLO keywords that matter here (RFC 5321 §4.1.1.1).
#[derive(Debug, Default)]
struct Extensions {
    starttls: bool,
    requiretls: bool,
    eightbitmime: bool,
    smtputf8: bool,
    size: Option<u64>,
}

fn extensions(reply: &Reply) -> Extensions {
    let mut ext = Extensions::default();
    for line in reply.text.lines().skip(1) {
        let mut words = line.split_whitespace();
        let keyword = words.next().unwrap_or("").to_ascii_uppercase();
        match keyword.as_str() {
            "STARTTLS" => ext.starttls = true,
            "REQUIRETLS" => ext.requiretls = true,
            "8BITMIME" => ext.eightbitmime = true,
            "SMTPUTF8" => ext.smtputf8 = true,
            "SIZE" => ext.size = words.next().and_then(|n| n.parse().ok()).filter(|n| *n > 0),
            _ => {}
        }
    }
    ext
}

#[allow(clippy::too_many_arguments)]
async fn session(
    host: &Host,
    ip: IpAddr,
    port: u16,
    sources: &[IpAddr],
    envelope: Envelope<'_>,
    requirement: &Requirement,
    tls: Option<&TlsClients>,
    t: &Timeouts,
) -> Result<Attempt, Failure> {
    let remote = format!("{}[{}]", host.name, ip);
    let required = matches!(requirement.tls, Tls::Required(_));
    let short = |result_type: &'static str, why: String| {
        Failure::Policy(tls_policy::Failure {
            status: requirement.failure.status,
            text: format!("{}: {why}", requirement.failure.text),
            result_type,
        })
    };
    let tcp = match tokio::time::timeout(t.connect, connect(SocketAddr::new(ip, port), sources)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => return Err(Failure::Io(format!("cannot connect: {e}"))),
        Err(_) => return Err(Failure::Io("connecting timed out".into())),
    };
    let mut conn = Connection { stream: Some(Stream::Plain(tcp)), buffer: Vec::new() };
    let greeting = conn.reply(t.greeting).await?;
    if greeting.code != 220 {
        return Err(Failure::Refused(greeting));
    }
    let mut ehlo = hello(&mut conn, envelope.helo, t.command).await?;
    let mut ext = extensions(&ehlo);
    let mut report = None;
    match (ext.starttls, tls) {
        (true, Some(clients)) => {
            // RFC 3207 §4.
            let reply = conn.command("STARTTLS", t.command).await?;
            if reply.code == 220 {
                if !conn.buffer.is_empty() {
                    return Err(Failure::Io("the server sent data before the TLS handshake".into()));
                }
                let Some(Stream::Plain(tcp)) = conn.stream.take() else {
                    return Err(Failure::Io("not connected".into()));
                };
                let (connector, found) = clients.connector(&requirement.tls);
                let name = ServerName::try_from(host.name.clone()).unwrap_or(ServerName::IpAddress(ip.into()));
                let tls_stream = match tokio::time::timeout(t.command, connector.connect(name, tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) if required => {
                        return Err(short(requirement.failure.result_type, format!("the TLS handshake failed ({e})")));
                    }
                    Ok(Err(e)) => return Err(Failure::Tls(e.to_string())),
                    Err(_) if required => {
                        return Err(short(requirement.failure.result_type, "the TLS handshake timed out".into()));
                    }
                    Err(_) => return Err(Failure::Tls("the TLS handshake timed out".into())),
                };
                report = found.and_then(|f| lock(&f).take());
                conn.stream = Some(Stream::Tls(Box::new(tls_stream)));
                // RFC 3207 §4.2: forget everything learnt before TLS and greet again.
                ehlo = hello(&mut conn, envelope.helo, t.command).await?;
                ext = extensions(&ehlo);
            } else if required {
                let _ = conn.command("QUIT", t.quit).await;
                return Err(short("starttls-not-supported", format!("it refused STARTTLS ({})", reply.line())));
            }
        }
        _ if required => {
            let _ = conn.command("QUIT", t.quit).await;
            return Err(short("starttls-not-supported", "it did not offer STARTTLS".into()));
        }
        _ => {}
    }
    let tls_state = conn.tls_state();
    if requirement.requiretls && !ext.requiretls {
        // RFC 8689 §4.2.1: the next server must support REQUIRETLS.
        let _ = conn.command("QUIT", t.quit).await;
        return Err(Failure::Policy(tls_policy::Failure {
            status: "5.7.30",
            result_type: "starttls-not-supported",
            text: format!(
                "the message was sent with REQUIRETLS, but the mail server {} does not support REQUIRETLS",
                host.name
            ),
        }));
    }
    let used = match tls_state {
        Some((version, detail)) => {
            Used { source: requirement.source, version: Some(version), detail: Some(detail), report }
        }
        None => Used { source: PolicySource::None, version: None, detail: None, report: None },
    };

    let needs_utf8 = envelope.from.is_some_and(|a| !a.to_string().is_ascii())
        || envelope.recipients.iter().any(|a| !a.to_string().is_ascii());
    if needs_utf8 && !ext.smtputf8 {
        // RFC 6531 §3.2: without SMTPUTF8 the addresses cannot be given.
        let _ = conn.command("QUIT", t.quit).await;
        return Err(Failure::Impossible {
            status: "5.6.7",
            text: format!("{remote} does not accept internationalised addresses (no SMTPUTF8)"),
        });
    }
    let size = u64::try_from(envelope.message.len()).unwrap_or(u64::MAX);
    if ext.size.is_some_and(|limit| size > limit) {
        let _ = conn.command("QUIT", t.quit).await;
        return Err(Failure::Impossible {
            status: "5.3.4",
            text: format!("the message is larger than {remote} accepts ({size} bytes)"),
        });
    }
    let mut mail = format!("MAIL FROM:<{}>", envelope.from.map(ToString::to_string).unwrap_or_default());
    if ext.size.is_some() {
        mail.push_str(&format!(" SIZE={size}"));
    }
    if ext.eightbitmime && !envelope.message.is_ascii() {
        mail.push_str(" BODY=8BITMIME"); // RFC 6152
    }
    if needs_utf8 {
        mail.push_str(" SMTPUTF8"); // RFC 6531 §3.4
    }
    if requirement.requiretls {
        mail.push_str(" REQUIRETLS"); // RFC 8689 §4.2.1
    }
    let reply = conn.command(&mail, t.command).await?;
    if !reply.is_positive() {
        let _ = conn.command("QUIT", t.quit).await;
        return Err(Failure::Refused(reply));
    }
    let mut results = Vec::with_capacity(envelope.recipients.len());
    let mut accepted = Vec::new();
    for (i, rcpt) in envelope.recipients.iter().enumerate() {
        let reply = conn.command(&format!("RCPT TO:<{rcpt}>"), t.command).await?;
        results.push(classify(reply.clone()));
        if reply.is_positive() {
            accepted.push(i);
        }
    }
    if accepted.is_empty() {
        let _ = conn.command("QUIT", t.quit).await;
        return Ok(Attempt { remote_mta: Some(remote), used: used.clone(), results });
    }
    let reply = conn.command("DATA", t.data_init).await?;
    if reply.code != 354 {
        for &i in &accepted {
            results[i] = classify(reply.clone());
        }
        let _ = conn.command("QUIT", t.quit).await;
        return Ok(Attempt { remote_mta: Some(remote), used: used.clone(), results });
    }
    conn.write(&dot_stuff(envelope.message), t.data_block).await?;
    let reply = conn.reply(t.data_end).await?;
    for &i in &accepted {
        results[i] = if reply.is_positive() { RcptResult::Delivered } else { classify(reply.clone()) };
    }
    let _ = conn.command("QUIT", t.quit).await;
    Ok(Attempt { remote_mta: Some(remote), used: used.clone(), results })
}

/// Connects from the first source address of the target's family, if there is one (a
/// loopback target only from a loopback source). A source address this host does not have is logged and the
/// system's choice used instead: mail still goes out.
async fn connect(target: SocketAddr, sources: &[IpAddr]) -> std::io::Result<TcpStream> {
    if let Some(source) = sources.iter().find(|s| s.is_ipv4() == target.is_ipv4())
        && (source.is_loopback() || !target.ip().is_loopback())
    {
        let socket = if target.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        match socket.bind(SocketAddr::new(*source, 0)) {
            Ok(()) => return socket.connect(target).await,
            Err(e) => tracing::warn!(
                source = %source,
                error = %e,
                "cannot send from the configured outbound address (is it on this host?); using the system's choice"
            ),
        }
    }
    TcpStream::connect(target).await
}

/// EHLO, or HELO for a server that does not know EHLO (RFC 5321 §4.1.4).
async fn hello(conn: &mut Connection, helo: &str, limit: Duration) -> Result<Reply, Failure> {
    let reply = conn.command(&format!("EHLO {helo}"), limit).await?;
    if reply.code == 250 {
        return Ok(reply);
    }
    let reply = conn.command(&format!("HELO {helo}"), limit).await?;
    if reply.code == 250 { Ok(Reply { code: 250, text: String::new() }) } else { Err(Failure::Refused(reply)) }
}

fn classify(reply: Reply) -> RcptResult {
    if reply.is_positive() {
        RcptResult::Delivered
    } else if reply.is_permanent() {
        RcptResult::Refused(reply)
    } else {
        RcptResult::Deferred(reply)
    }
}

/// The DATA payload: lines starting with `.` get another `.` (RFC 5321 §4.5.2), then the
/// terminating `.` line.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    let mut at_line_start = true;
    for &b in message {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// The TLS clients of every kind of requirement, built once (loading the trusted roots).
#[derive(Debug, Clone)]
pub struct TlsClients {
    provider: Arc<rustls::crypto::CryptoProvider>,
    any: Arc<dyn ServerCertVerifier>,
    /// `None` when there is no trusted root at all: every verified handshake fails.
    webpki: Option<Arc<dyn ServerCertVerifier>>,
}

/// Where a [`Tls::Report`] check writes what it found wrong.
type Found = Arc<std::sync::Mutex<Option<String>>>;

fn lock(found: &Found) -> std::sync::MutexGuard<'_, Option<String>> {
    found.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl TlsClients {
    /// Certificates are verified against the system's roots and `extra_roots` (`[outbound]
    /// tls_ca_file`: a private CA; the tests' own).
    pub fn new(extra_roots: &[CertificateDer<'static>]) -> TlsClients {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        roots.add_parsable_certificates(extra_roots.iter().cloned());
        let webpki = match WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build() {
            Ok(verifier) => Some(verifier as Arc<dyn ServerCertVerifier>),
            Err(e) => {
                tracing::error!(error = %e, "no trusted CA certificates (install ca-certificates): deliveries that need a verified certificate will be deferred");
                None
            }
        };
        let any = Arc::new(Verifier::with_provider(AnyCertificate, provider.clone()));
        TlsClients { any, provider, webpki }
    }

    /// A connector that verifies certificates against the trusted roots (the MTA-STS
    /// policy fetch).
    pub fn verified(&self) -> TlsConnector {
        self.connector(&Tls::Required(Verify::WebPki)).0
    }

    /// The connector for `tls`, and for a [`Tls::Report`] check where its finding goes.
    fn connector(&self, tls: &Tls) -> (TlsConnector, Option<Found>) {
        let verify = match tls {
            Tls::Opportunistic | Tls::Refused => None,
            Tls::Required(verify) | Tls::Report(verify) => Some(verify),
        };
        let checked = match verify {
            None | Some(Verify::Any) => self.any.clone(),
            Some(Verify::WebPki) => {
                self.webpki.clone().unwrap_or_else(|| Arc::new(Verifier::with_provider(NoRoots, self.provider.clone())))
            }
            Some(Verify::Dane(verifier)) => verifier.clone(),
        };
        let (verifier, found) = match tls {
            Tls::Report(_) => {
                let found = Found::default();
                let reporting =
                    Verifier::with_provider(Reporting { checked, found: found.clone() }, self.provider.clone());
                (Arc::new(reporting) as Arc<dyn ServerCertVerifier>, Some(found))
            }
            _ => (checked, None),
        };
        (connector_with(self.provider.clone(), verifier), found)
    }
}

fn connector_with(
    provider: Arc<rustls::crypto::CryptoProvider>,
    verifier: Arc<dyn ServerCertVerifier>,
) -> TlsConnector {
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|builder| builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth());
    match config {
        Ok(config) => TlsConnector::from(Arc::new(config)),
        // The provider's defaults always fit; fall back to a config that fails handshakes.
        Err(e) => {
            tracing::error!(error = %e, "cannot build the outbound TLS configuration; STARTTLS will fail");
            TlsConnector::from(Arc::new(
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            ))
        }
    }
}

/// Checks the certificate with another verifier, writes down what it found wrong and
/// accepts it anyway (MTA-STS `testing`).
#[derive(Debug)]
struct Reporting {
    checked: Arc<dyn ServerCertVerifier>,
    found: Found,
}

impl CertCheck for Reporting {
    fn check(
        &self,
        presented: &Presented<'_>,
        _provider: &Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<(), rustls::Error> {
        if let Err(e) = presented.verify_with(self.checked.as_ref()) {
            *lock(&self.found) = Some(format!("the certificate is not valid: {e}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_doubles_leading_dots_and_terminates() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n..c\r\n"), b"a\r\n..b\r\n...c\r\n.\r\n");
        assert_eq!(dot_stuff(b".\r\n"), b"..\r\n.\r\n");
        assert_eq!(dot_stuff(b"x"), b"x\r\n.\r\n");
    }

    #[test]
    fn status_codes_come_from_the_reply_or_its_class() {
        let reply = |code, text: &str| Reply { code, text: text.into() };
        assert_eq!(reply(550, "5.1.1 No such user").status(), "5.1.1");
        assert_eq!(reply(550, "No such user").status(), "5.0.0");
        assert_eq!(reply(451, "4.7.1 Greylisted").status(), "4.7.1");
        assert_eq!(reply(451, "5.7.1 mismatched class").status(), "4.0.0");
        assert_eq!(reply(550, "5.1.1 a\nsecond line").line(), "550 5.1.1 a second line");
    }

    #[test]
    fn ehlo_keywords_are_read() {
        let ext = extensions(&Reply {
            code: 250,
            text: "mx.example greets you\nPIPELINING\nSIZE 1000\nstarttls\n8BITMIME\nSMTPUTF8".into(),
        });
        assert!(ext.starttls && ext.eightbitmime && ext.smtputf8);
        assert_eq!(ext.size, Some(1000));
        assert!(!extensions(&Reply { code: 250, text: "STARTTLS only on the first line".into() }).starttls);
    }
}
