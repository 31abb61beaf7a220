//! A real DNS server for tests: it listens on 127.0.0.1, on one random port over UDP and
//! TCP, and answers from records given as plain data that a test may change while the
//! server runs.
//!
//! It is a tiny authoritative responder, not a recursive resolver: it answers every name it
//! holds, follows CNAMEs inside its own data, and tells "this name does not exist"
//! (NXDOMAIN) apart from "this name exists but has no record of this type" (NOERROR with an
//! empty answer, "NODATA"), both with an SOA in the authority section (RFC 1034 §4.3.2,
//! RFC 2308 §2). A name that only has records below it (like `_domainkey.example.org` when
//! `sel._domainkey.example.org` exists) exists (RFC 8020). UDP answers larger than the
//! client's EDNS buffer (512 bytes without EDNS) are sent truncated with the TC bit, so the
//! client retries over TCP like it would against a real server (RFC 1035 §4.2.1, RFC 7766).
//!
//! The server runs on a thread of its own with its own Tokio runtime, so it keeps answering
//! while a test blocks (for example on a child process such as the `postfach` binary), and
//! it works from synchronous and asynchronous tests alike. It stops when the [`TestDns`] is
//! dropped.
//!
//! ```no_run
//! use postfach_testdns::{Data, Rr, TestDns, Type};
//!
//! let dns = TestDns::start([
//!     Rr::new("example.org", Data::Mx(10, "mail.example.net".into())),
//!     Rr::new("example.org", Data::txt("v=spf1 include:_spf.example.net -all")),
//!     Rr::new("mail.example.net", Data::A("192.0.2.25".parse().unwrap())),
//! ]);
//! // Point the code under test at dns.addr(), e.g. `[dns] resolver = "127.0.0.1:PORT"`.
//! dns.set("example.org", Type::Txt, vec![Data::txt("v=spf1 -all")]);
//! dns.set("example.org", Type::Mx, vec![]); // removes the MX records
//! ```
//!
//! Every record has a TTL of 0 unless given, so resolvers do not cache answers across a
//! change made with [`TestDns::set`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
use hickory_proto::rr::rdata::{self, CNAME, MX, NS, PTR, SOA, SRV, TLSA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;

mod dnssec;

use dnssec::Signing;

/// The signing state of a DNSSEC server, shared with its thread.
type SharedSigning = Option<Arc<Mutex<Signing>>>;

/// The record types the server holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Type {
    A,
    Aaaa,
    Mx,
    Txt,
    Cname,
    Ptr,
    Ns,
    Soa,
    Srv,
    Tlsa,
}

impl Type {
    fn from_wire(t: RecordType) -> Option<Type> {
        Some(match t {
            RecordType::A => Type::A,
            RecordType::AAAA => Type::Aaaa,
            RecordType::MX => Type::Mx,
            RecordType::TXT => Type::Txt,
            RecordType::CNAME => Type::Cname,
            RecordType::PTR => Type::Ptr,
            RecordType::NS => Type::Ns,
            RecordType::SOA => Type::Soa,
            RecordType::SRV => Type::Srv,
            RecordType::TLSA => Type::Tlsa,
            _ => return None,
        })
    }

    fn to_wire(self) -> RecordType {
        match self {
            Type::A => RecordType::A,
            Type::Aaaa => RecordType::AAAA,
            Type::Mx => RecordType::MX,
            Type::Txt => RecordType::TXT,
            Type::Cname => RecordType::CNAME,
            Type::Ptr => RecordType::PTR,
            Type::Ns => RecordType::NS,
            Type::Soa => RecordType::SOA,
            Type::Srv => RecordType::SRV,
            Type::Tlsa => RecordType::TLSA,
        }
    }
}

/// The data of one record. Names are written without or with the final dot, in any case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// Preference and exchange host.
    Mx(u16, String),
    /// One record made of one or more character-strings, each at most 255 bytes. A
    /// resolver joins them into one text (RFC 7208 §3.3, RFC 6376 §3.6.2.2).
    Txt(Vec<String>),
    Cname(String),
    Ptr(String),
    Ns(String),
    Soa {
        mname: String,
        rname: String,
        serial: u32,
        minimum: u32,
    },
    /// Priority, weight, port and target (RFC 2782).
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    /// A TLSA record (RFC 6698 §2.1): certificate usage, selector, matching type and the
    /// certificate association data.
    Tlsa {
        usage: u8,
        selector: u8,
        matching: u8,
        data: Vec<u8>,
    },
}

impl Data {
    /// A TXT record of one string. Longer texts are split into strings of 255 bytes, the
    /// way a zone file would hold them.
    pub fn txt(text: &str) -> Data {
        let bytes = text.as_bytes();
        if bytes.is_empty() {
            return Data::Txt(vec![String::new()]);
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let mut cut = rest.len().min(255);
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            parts.push(rest[..cut].to_string());
            rest = &rest[cut..];
        }
        Data::Txt(parts)
    }

    /// A TXT record made of exactly these character-strings.
    pub fn txt_strings<S: Into<String>>(strings: impl IntoIterator<Item = S>) -> Data {
        Data::Txt(strings.into_iter().map(Into::into).collect())
    }

    pub fn record_type(&self) -> Type {
        match self {
            Data::A(_) => Type::A,
            Data::Aaaa(_) => Type::Aaaa,
            Data::Mx(..) => Type::Mx,
            Data::Txt(_) => Type::Txt,
            Data::Cname(_) => Type::Cname,
            Data::Ptr(_) => Type::Ptr,
            Data::Ns(_) => Type::Ns,
            Data::Soa { .. } => Type::Soa,
            Data::Srv { .. } => Type::Srv,
            Data::Tlsa { .. } => Type::Tlsa,
        }
    }

    fn to_rdata(&self) -> Result<RData, TestDnsError> {
        Ok(match self {
            Data::A(ip) => RData::A(rdata::A(*ip)),
            Data::Aaaa(ip) => RData::AAAA(rdata::AAAA(*ip)),
            Data::Mx(preference, exchange) => RData::MX(MX::new(*preference, fqdn(exchange)?)),
            Data::Txt(strings) => {
                if let Some(long) = strings.iter().find(|s| s.len() > 255) {
                    return Err(TestDnsError(format!(
                        "a TXT character-string has {} bytes, at most 255 fit",
                        long.len()
                    )));
                }
                RData::TXT(TXT::new(strings.clone()))
            }
            Data::Cname(target) => RData::CNAME(CNAME(fqdn(target)?)),
            Data::Ptr(target) => RData::PTR(PTR(fqdn(target)?)),
            Data::Ns(target) => RData::NS(NS(fqdn(target)?)),
            Data::Soa { mname, rname, serial, minimum } => {
                RData::SOA(SOA::new(fqdn(mname)?, fqdn(rname)?, *serial, 3600, 600, 86_400, *minimum))
            }
            Data::Srv { priority, weight, port, target } => {
                RData::SRV(SRV::new(*priority, *weight, *port, fqdn(target)?))
            }
            Data::Tlsa { usage, selector, matching, data } => RData::TLSA(TLSA::new(
                CertUsage::from(*usage),
                Selector::from(*selector),
                Matching::from(*matching),
                data.clone(),
            )),
        })
    }
}

/// One resource record: owner name, TTL and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rr {
    pub name: String,
    pub ttl: u32,
    pub data: Data,
}

impl Rr {
    /// A record with TTL 0 (never cached).
    pub fn new(name: &str, data: Data) -> Rr {
        Rr { name: name.to_string(), ttl: 0, data }
    }

    pub fn with_ttl(mut self, ttl: u32) -> Rr {
        self.ttl = ttl;
        self
    }
}

/// A name or record the server cannot hold (a test's mistake).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestDnsError(pub String);

impl fmt::Display for TestDnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TestDnsError {}

/// The name in the canonical form the zone is keyed by: lower case, no final dot.
fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn fqdn(name: &str) -> Result<Name, TestDnsError> {
    let name = format!("{}.", name.trim_end_matches('.'));
    Name::from_ascii(&name).map_err(|e| TestDnsError(format!("'{name}' is not a DNS name: {e}")))
}

/// (TTL, data) per name and type.
type Zone = BTreeMap<String, BTreeMap<Type, Vec<(u32, Data)>>>;

/// A running test DNS server. Stops when dropped.
#[derive(Debug)]
pub struct TestDns {
    addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    counts: Arc<Counts>,
    signing: SharedSigning,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Counts {
    udp: AtomicU64,
    tcp: AtomicU64,
}

impl TestDns {
    /// Starts a server holding `records`. Panics when the records are invalid or no port
    /// can be bound: both are mistakes in the test or its machine.
    pub fn start(records: impl IntoIterator<Item = Rr>) -> TestDns {
        match TestDns::try_start(records) {
            Ok(dns) => dns,
            Err(e) => panic!("cannot start the test DNS server: {e}"),
        }
    }

    /// Like [`TestDns::start`], with the error returned.
    pub fn try_start(records: impl IntoIterator<Item = Rr>) -> Result<TestDns, Box<dyn std::error::Error>> {
        TestDns::launch(records, None)
    }

    /// Starts a DNSSEC server holding `records`: all of them form one root zone `.`, signed
    /// with a key made for this server; [`TestDns::trust_anchor`] is the key a validating
    /// resolver must trust. Clients that set the DO bit get RRSIGs and NSEC records (see
    /// the `dnssec` module for how denial of existence and unsigned zones look). Panics like
    /// [`TestDns::start`].
    pub fn start_signed(records: impl IntoIterator<Item = Rr>) -> TestDns {
        let started = Signing::generate()
            .map_err(|e| -> Box<dyn std::error::Error> { Box::new(e) })
            .and_then(|signing| TestDns::launch(records, Some(Arc::new(Mutex::new(signing)))));
        match started {
            Ok(dns) => dns,
            Err(e) => panic!("cannot start the test DNS server: {e}"),
        }
    }

    fn launch(
        records: impl IntoIterator<Item = Rr>,
        signing: SharedSigning,
    ) -> Result<TestDns, Box<dyn std::error::Error>> {
        let mut zone = Zone::new();
        for rr in records {
            rr.data.to_rdata()?;
            fqdn(&rr.name)?;
            zone.entry(key(&rr.name)).or_default().entry(rr.data.record_type()).or_default().push((rr.ttl, rr.data));
        }
        let zone = Arc::new(Mutex::new(zone));
        let counts = Arc::new(Counts::default());
        let (udp, tcp) = bind()?;
        let addr = udp.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let (server_zone, server_counts, server_signing) = (zone.clone(), counts.clone(), signing.clone());
        let thread = std::thread::Builder::new().name(format!("testdns-{}", addr.port())).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(e) => {
                    tracing::error!(error = %e, "test DNS server cannot start its runtime");
                    return;
                }
            };
            runtime.block_on(serve(udp, tcp, server_zone, server_counts, server_signing, stopped));
        })?;
        Ok(TestDns { addr, zone, counts, signing, stop, thread: Some(thread) })
    }

    /// The DNSKEY a validating resolver must trust, as a zone-file line
    /// (`. 3600 IN DNSKEY 257 3 13 BASE64`); `None` for a server that does not sign.
    pub fn trust_anchor(&self) -> Option<String> {
        self.signing.as_ref().map(|s| lock_signing(s).trust_anchor())
    }

    /// Makes `apex` and the names below it an unsigned zone, delegated insecurely from the
    /// signed root: a validator sees its records as insecure, not bogus. Panics on a server
    /// that does not sign.
    pub fn set_unsigned_zone(&self, apex: &str) {
        let signing = self.signing.as_ref().expect("set_unsigned_zone needs TestDns::start_signed");
        lock_signing(signing).unsigned.insert(key(apex));
    }

    /// Makes the signatures of the records at `name` invalid, so a validator calls them
    /// bogus (as when an attacker forges an answer). Panics on a server that does not sign.
    pub fn set_bogus(&self, name: &str) {
        let signing = self.signing.as_ref().expect("set_bogus needs TestDns::start_signed");
        lock_signing(signing).bogus.insert(key(name));
    }

    /// The address to send queries to (UDP and TCP): `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the records of one type at `name`; an empty list removes them. Every
    /// record gets TTL 0. Panics if a record's type is not `rtype`.
    pub fn set(&self, name: &str, rtype: Type, records: Vec<Data>) {
        self.set_with_ttl(name, rtype, 0, records);
    }

    /// Like [`TestDns::set`], with a TTL for the records.
    pub fn set_with_ttl(&self, name: &str, rtype: Type, ttl: u32, records: Vec<Data>) {
        for data in &records {
            assert_eq!(data.record_type(), rtype, "record {data:?} given for type {rtype:?} at {name}");
            if let Err(e) = data.to_rdata().and_then(|_| fqdn(name).map(|_| ())) {
                panic!("{e}");
            }
        }
        let mut zone = lock(&self.zone);
        let types = zone.entry(key(name)).or_default();
        if records.is_empty() {
            types.remove(&rtype);
        } else {
            types.insert(rtype, records.into_iter().map(|d| (ttl, d)).collect());
        }
        if types.is_empty() {
            zone.remove(&key(name));
        }
    }

    /// Adds one record beside those already there.
    pub fn add(&self, rr: Rr) {
        if let Err(e) = rr.data.to_rdata().and_then(|_| fqdn(&rr.name).map(|_| ())) {
            panic!("{e}");
        }
        lock(&self.zone)
            .entry(key(&rr.name))
            .or_default()
            .entry(rr.data.record_type())
            .or_default()
            .push((rr.ttl, rr.data));
    }

    /// Removes every record at `name` (names below it stay).
    pub fn remove_name(&self, name: &str) {
        lock(&self.zone).remove(&key(name));
    }

    /// Queries answered so far over UDP and over TCP.
    pub fn queries(&self) -> (u64, u64) {
        (self.counts.udp.load(Ordering::Relaxed), self.counts.tcp.load(Ordering::Relaxed))
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(zone: &Mutex<Zone>) -> MutexGuard<'_, Zone> {
    // A panic while holding the lock cannot leave the map half-changed: keep serving.
    zone.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lock_signing(signing: &Mutex<Signing>) -> MutexGuard<'_, Signing> {
    signing.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Binds UDP and TCP on the same random port of 127.0.0.1.
fn bind() -> std::io::Result<(std::net::UdpSocket, std::net::TcpListener)> {
    let mut last = None;
    for _ in 0..20 {
        let udp = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        match std::net::TcpListener::bind(udp.local_addr()?) {
            Ok(tcp) => {
                udp.set_nonblocking(true)?;
                tcp.set_nonblocking(true)?;
                return Ok((udp, tcp));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port")))
}

async fn serve(
    udp: std::net::UdpSocket,
    tcp: std::net::TcpListener,
    zone: Arc<Mutex<Zone>>,
    counts: Arc<Counts>,
    signing: SharedSigning,
    mut stopped: watch::Receiver<bool>,
) {
    let (udp, tcp) = match (UdpSocket::from_std(udp), TcpListener::from_std(tcp)) {
        (Ok(udp), Ok(tcp)) => (udp, tcp),
        _ => {
            tracing::error!("test DNS server cannot register its sockets");
            return;
        }
    };
    let mut buf = vec![0u8; 65_535];
    loop {
        tokio::select! {
            received = udp.recv_from(&mut buf) => {
                let Ok((len, peer)) = received else { continue };
                counts.udp.fetch_add(1, Ordering::Relaxed);
                if let Some(reply) = answer(&buf[..len], &zone, signing.as_deref(), true) {
                    let _ = udp.send_to(&reply, peer).await;
                }
            }
            accepted = tcp.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                tokio::spawn(serve_tcp(stream, zone.clone(), counts.clone(), signing.clone()));
            }
            _ = stopped.changed() => return,
        }
    }
}

/// RFC 1035 §4.2.2 / RFC 7766 §8: each message is preceded by its two-byte length; a
/// connection may carry several queries.
async fn serve_tcp(mut stream: TcpStream, zone: Arc<Mutex<Zone>>, counts: Arc<Counts>, signing: SharedSigning) {
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut query).await.is_err() {
            return;
        }
        counts.tcp.fetch_add(1, Ordering::Relaxed);
        let Some(reply) = answer(&query, &zone, signing.as_deref(), false) else { return };
        let Ok(reply_len) = u16::try_from(reply.len()) else { return };
        if stream.write_all(&reply_len.to_be_bytes()).await.is_err() || stream.write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// The encoded reply to one query, or `None` when the bytes are not a DNS query at all.
fn answer(query: &[u8], zone: &Mutex<Zone>, signing: Option<&Mutex<Signing>>, over_udp: bool) -> Option<Vec<u8>> {
    let request = match Message::from_vec(query) {
        Ok(request) => request,
        Err(_) if query.len() >= 2 => {
            let id = u16::from_be_bytes([query[0], query[1]]);
            return Message::error_msg(id, OpCode::Query, ResponseCode::FormErr).to_vec().ok();
        }
        Err(_) => return None,
    };
    if request.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut reply = Message::response(request.metadata.id, request.metadata.op_code);
    reply.metadata.recursion_desired = request.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_queries(request.queries.iter().cloned());
    // RFC 3225 §3: DNSSEC records only for a client that asks for them with the DO bit.
    let signing = signing.filter(|_| request.edns.as_ref().is_some_and(|edns| edns.flags().dnssec_ok));
    let limit = match &request.edns {
        Some(edns) => {
            let mut ours = Edns::new();
            ours.set_max_payload(1232);
            ours.set_dnssec_ok(signing.is_some());
            reply.set_edns(ours);
            usize::from(edns.max_payload().clamp(512, 1232))
        }
        None => 512,
    };
    if request.metadata.op_code != OpCode::Query || request.queries.len() != 1 {
        reply.metadata.response_code =
            if request.metadata.op_code != OpCode::Query { ResponseCode::NotImp } else { ResponseCode::FormErr };
        return reply.to_vec().ok();
    }
    reply.metadata.authoritative = true;
    let question = &request.queries[0];
    {
        let zone = lock(zone);
        match signing.map(lock_signing) {
            Some(signing) => {
                if signing.special(question.name(), question.query_type(), &mut reply).is_none() {
                    resolve(&zone, question.name(), question.query_type(), &mut reply);
                    signing.deny(&zone, question.name(), question.query_type(), &mut reply);
                }
                signing.sign_sections(&mut reply);
            }
            None => resolve(&zone, question.name(), question.query_type(), &mut reply),
        }
    }
    let bytes = reply.to_vec().ok()?;
    if over_udp && bytes.len() > limit {
        // RFC 2181 §9: a truncated reply; the client asks again over TCP.
        return reply.truncate().to_vec().ok();
    }
    Some(bytes)
}

/// Fills the answer of `reply` (RFC 1034 §4.3.2, for a server authoritative for all of
/// its data).
fn resolve(zone: &Zone, qname: &Name, qtype: RecordType, reply: &mut Message) {
    let mut owner = qname.clone();
    for _ in 0..8 {
        let name = key(&owner.to_ascii());
        let types = zone.get(&name);
        let wanted = Type::from_wire(qtype);
        if let Some(records) = types.and_then(|t| wanted.and_then(|w| t.get(&w))) {
            for (ttl, data) in records {
                if let Ok(rdata) = data.to_rdata() {
                    reply.add_answer(Record::from_rdata(owner.clone(), *ttl, rdata));
                }
            }
            return;
        }
        if qtype == RecordType::ANY
            && let Some(types) = types
        {
            for (ttl, data) in types.values().flatten() {
                if let Ok(rdata) = data.to_rdata() {
                    reply.add_answer(Record::from_rdata(owner.clone(), *ttl, rdata));
                }
            }
            return;
        }
        if let Some((ttl, Data::Cname(target))) = types.and_then(|t| t.get(&Type::Cname)).and_then(|c| c.first()) {
            let Ok(target_name) = fqdn(target) else { return };
            reply.add_answer(Record::from_rdata(owner.clone(), *ttl, RData::CNAME(CNAME(target_name.clone()))));
            owner = target_name;
            continue;
        }
        let exists = types.is_some() || zone.keys().any(|k| k.ends_with(&format!(".{name}")) || name.is_empty());
        if !exists {
            reply.metadata.response_code = ResponseCode::NXDomain;
        }
        // RFC 2308 §3: the SOA of the zone goes into the authority section, its minimum
        // giving the time the negative answer may be cached.
        reply.add_authority(soa_for(zone, &name));
        return;
    }
}

/// The SOA record of the closest enclosing name that has one, or a made-up SOA with a
/// negative-caching time of 0 at the name's parent domain.
fn soa_for(zone: &Zone, name: &str) -> Record {
    let mut candidate = name;
    loop {
        if let Some((ttl, data)) = zone.get(candidate).and_then(|t| t.get(&Type::Soa)).and_then(|s| s.first())
            && let (Ok(rdata), Ok(owner)) = (data.to_rdata(), fqdn(candidate))
        {
            return Record::from_rdata(owner, *ttl, rdata);
        }
        match candidate.split_once('.') {
            Some((_, parent)) => candidate = parent,
            None => break,
        }
    }
    let labels: Vec<&str> = name.split('.').collect();
    let apex = labels[labels.len().saturating_sub(2)..].join(".");
    let owner = fqdn(&apex).unwrap_or_else(|_| Name::root());
    let soa = SOA::new(
        Name::from_ascii("ns.testdns.invalid.").unwrap_or_else(|_| Name::root()),
        Name::from_ascii("hostmaster.testdns.invalid.").unwrap_or_else(|_| Name::root()),
        1,
        3600,
        600,
        86_400,
        0,
    );
    Record::from_rdata(owner, 0, RData::SOA(soa))
}
