//! The test DNS server answers real queries over UDP and TCP, through hickory-resolver and
//! through raw sockets, and tells NXDOMAIN from NODATA.

use std::net::{IpAddr, SocketAddr};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};
use postfach_testdns::{Data, Rr, TestDns, Type};

fn resolver(addr: SocketAddr, tcp_only: bool) -> TokioResolver {
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    let connections = if tcp_only { vec![tcp] } else { vec![udp, tcp] };
    let config = ResolverConfig::from_parts(None, vec![], vec![NameServerConfig::new(addr.ip(), true, connections)]);
    let mut opts = ResolverOpts::default();
    opts.cache_size = 0;
    Resolver::builder_with_config(config, TokioRuntimeProvider::default()).with_options(opts).build().expect("resolver")
}

fn zone() -> Vec<Rr> {
    vec![
        Rr::new(
            "example.org",
            Data::Soa { mname: "ns.example.org".into(), rname: "hostmaster.example.org".into(), serial: 7, minimum: 0 },
        ),
        Rr::new("example.org", Data::Mx(10, "mail.example.net".into())),
        Rr::new("example.org", Data::txt("v=spf1 include:_spf.example.net -all")),
        Rr::new("example.org", Data::txt("something-else=1")),
        Rr::new("Mail.Example.NET.", Data::A("192.0.2.25".parse().expect("IPv4"))),
        Rr::new("mail.example.net", Data::Aaaa("2001:db8::25".parse().expect("IPv6"))),
        Rr::new("autoconfig.example.org", Data::Cname("mail.example.net".into())),
        Rr::new("sel._domainkey.example.org", Data::txt(&format!("v=DKIM1; k=rsa; p={}", "A".repeat(600)))),
        Rr::new("25.2.0.192.in-addr.arpa", Data::Ptr("mail.example.net".into())),
        Rr::new(
            "_imaps._tcp.example.org",
            Data::Srv { priority: 0, weight: 1, port: 993, target: "mail.example.net".into() },
        ),
        Rr::new("example.org", Data::Ns("ns.example.org".into())),
    ]
}

fn texts(lookup: &hickory_resolver::lookup::Lookup) -> Vec<String> {
    let mut texts: Vec<String> = lookup
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(txt.txt_data.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect()),
            _ => None,
        })
        .collect();
    texts.sort();
    texts
}

#[tokio::test]
async fn resolves_through_hickory_over_udp_and_tcp() {
    let dns = TestDns::start(zone());
    assert!(dns.addr().ip().is_loopback());
    for tcp_only in [false, true] {
        let r = resolver(dns.addr(), tcp_only);
        let mx = r.mx_lookup("example.org.").await.expect("mx");
        let mx: Vec<_> = mx
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
                _ => None,
            })
            .collect();
        assert_eq!(mx, [(10, "mail.example.net.".to_string())]);

        let txt = r.txt_lookup("EXAMPLE.org.").await.expect("txt");
        assert_eq!(texts(&txt), ["something-else=1", "v=spf1 include:_spf.example.net -all"]);

        let ips: Vec<IpAddr> = r.lookup_ip("mail.example.net.").await.expect("ip").iter().collect();
        assert!(ips.contains(&ip("192.0.2.25")) && ips.contains(&ip("2001:db8::25")), "{ips:?}");

        // A CNAME is followed inside the server's data.
        let via_cname: Vec<IpAddr> = r.lookup_ip("autoconfig.example.org.").await.expect("cname").iter().collect();
        assert!(via_cname.contains(&ip("192.0.2.25")), "{via_cname:?}");

        let ptr = r.reverse_lookup(ip("192.0.2.25")).await.expect("ptr");
        assert!(
            ptr.answers().iter().any(|r| matches!(&r.data, RData::PTR(p) if p.0.to_ascii() == "mail.example.net."))
        );

        let srv = r.srv_lookup("_imaps._tcp.example.org.").await.expect("srv");
        assert!(srv.answers().iter().any(|r| matches!(&r.data, RData::SRV(s) if s.port == 993)));

        // A long TXT record arrives whole, in 255-byte strings.
        let dkim = r.txt_lookup("sel._domainkey.example.org.").await.expect("dkim");
        let RData::TXT(txt) = &dkim.answers()[0].data else { panic!("not TXT") };
        assert_eq!(txt.txt_data.iter().map(|s| s.len()).collect::<Vec<_>>(), [255, 255, 108]);

        let nx = r.txt_lookup("nothing.example.org.").await.expect_err("nxdomain");
        assert!(nx.is_nx_domain(), "{nx:?}");
        let nodata = r.mx_lookup("mail.example.net.").await.expect_err("nodata");
        assert!(nodata.is_no_records_found() && !nodata.is_nx_domain(), "{nodata:?}");
        // An empty non-terminal exists (RFC 8020).
        let ent = r.txt_lookup("_domainkey.example.org.").await.expect_err("nodata");
        assert!(!ent.is_nx_domain(), "{ent:?}");
    }
    let (udp, tcp) = dns.queries();
    assert!(udp > 0 && tcp > 0, "udp {udp}, tcp {tcp}");
}

#[tokio::test]
async fn records_change_while_running() {
    let dns = TestDns::start(zone());
    let r = resolver(dns.addr(), false);
    dns.set("example.org", Type::Txt, vec![Data::txt("v=spf1 -all")]);
    assert_eq!(texts(&r.txt_lookup("example.org.").await.expect("txt")), ["v=spf1 -all"]);
    dns.set("example.org", Type::Txt, vec![]);
    let gone = r.txt_lookup("example.org.").await.expect_err("no TXT left");
    assert!(gone.is_no_records_found() && !gone.is_nx_domain());
    dns.add(Rr::new("new.example.org", Data::txt_strings(["a", "b"])));
    assert_eq!(texts(&r.txt_lookup("new.example.org.").await.expect("txt")), ["ab"]);
    dns.remove_name("new.example.org");
    assert!(r.txt_lookup("new.example.org.").await.expect_err("gone").is_nx_domain());
}

/// Sends one query over raw UDP and raw TCP and returns both replies.
async fn raw(addr: SocketAddr, name: &str, rtype: RecordType) -> (Message, Message) {
    let mut query = Message::query();
    query.metadata.recursion_desired = true;
    query.add_query(hickory_proto::op::Query::query(Name::from_ascii(name).expect("raw DNS exchange"), rtype));
    let bytes = query.to_vec().expect("raw DNS exchange");

    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("raw DNS exchange");
    udp.send_to(&bytes, addr).await.expect("raw DNS exchange");
    let mut buf = vec![0; 65535];
    let (n, _) = udp.recv_from(&mut buf).await.expect("raw DNS exchange");
    let over_udp = Message::from_vec(&buf[..n]).expect("raw DNS exchange");

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("raw DNS exchange");
    tcp.write_all(&(bytes.len() as u16).to_be_bytes()).await.expect("raw DNS exchange");
    tcp.write_all(&bytes).await.expect("raw DNS exchange");
    let mut len = [0; 2];
    tcp.read_exact(&mut len).await.expect("raw DNS exchange");
    let mut reply = vec![0; u16::from_be_bytes(len) as usize];
    tcp.read_exact(&mut reply).await.expect("raw DNS exchange");
    (over_udp, Message::from_vec(&reply).expect("raw DNS exchange"))
}

#[tokio::test]
async fn raw_replies_carry_the_right_codes_and_truncate_large_udp_answers() {
    let dns = TestDns::start(zone());
    for (name, rtype, code, answers) in [
        ("example.org.", RecordType::MX, ResponseCode::NoError, 1),
        ("nothing.example.org.", RecordType::TXT, ResponseCode::NXDomain, 0),
        ("mail.example.net.", RecordType::TXT, ResponseCode::NoError, 0),
    ] {
        let (udp, tcp) = raw(dns.addr(), name, rtype).await;
        for reply in [&udp, &tcp] {
            assert_eq!(reply.metadata.response_code, code, "{name} {rtype}");
            assert_eq!(reply.answers.len(), answers, "{name} {rtype}");
            assert!(reply.metadata.authoritative);
            if answers == 0 {
                let soa = reply.authorities.iter().find(|r| r.record_type() == RecordType::SOA);
                assert!(soa.is_some(), "negative answers carry an SOA: {reply:?}");
            }
        }
        // The zone's own SOA is used for names inside it.
        if name == "nothing.example.org." {
            assert_eq!(tcp.authorities[0].name.to_ascii(), "example.org.");
        }
    }
    // Without EDNS a UDP reply holds 512 bytes; the DKIM record needs more.
    let (udp, tcp) = raw(dns.addr(), "sel._domainkey.example.org.", RecordType::TXT).await;
    assert!(udp.metadata.truncation && udp.answers.is_empty());
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 1);
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("IP address")
}
