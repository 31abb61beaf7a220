//! The helper against a real HAProxy: backends that record what arrives see a PROXY v2
//! header naming the client (127.0.0.2) on a connection from the configured source
//! (127.0.0.3), turn by turn; health checks arrive as `LOCAL`.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::mpsc;
use std::time::Duration;

use postfach_net::proxy::{Header, Parse, parse};
use postfach_testproxy::{Frontend, HaProxy, Options, ProxyVersion, connect_from};

const CLIENT: &str = "127.0.0.2";
const SOURCE: &str = "127.0.0.3";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// What one backend connection brought: the socket's peer, the header, the bytes after it.
#[derive(Debug)]
struct Arrival {
    backend: usize,
    peer: SocketAddr,
    header: Header,
    rest: Vec<u8>,
}

/// Backends that read a header and up to 5 bytes after it, answer "ok\n" and report.
fn backends(count: usize) -> (Vec<SocketAddr>, mpsc::Receiver<Arrival>) {
    let (tx, rx) = mpsc::channel();
    let mut addrs = Vec::new();
    for backend in 0..count {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        addrs.push(listener.local_addr().expect("addr"));
        let tx = tx.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                // A health check may be gone (reset) by now.
                let Ok(peer) = stream.peer_addr() else { continue };
                let mut input = Vec::new();
                let (header, len) = loop {
                    match parse(&input) {
                        Ok(Parse::Complete { header, len }) => break (Some(header), len),
                        Ok(Parse::Incomplete { need }) => {
                            let mut more = vec![0; need];
                            if stream.read_exact(&mut more).is_err() {
                                break (None, 0);
                            }
                            input.extend_from_slice(&more);
                        }
                        Err(e) => panic!("not a PROXY header ({e}): {input:x?}"),
                    }
                };
                let Some(header) = header else {
                    eprintln!("backend {backend}: {peer} closed after {input:x?}");
                    continue;
                };
                assert_eq!(len, input.len());
                let mut rest = [0u8; 5];
                let n = stream.read(&mut rest).unwrap_or(0);
                let _ = stream.write_all(b"ok\n");
                let _ = tx.send(Arrival { backend, peer, header, rest: rest[..n].to_vec() });
            }
        });
    }
    (addrs, rx)
}

#[test]
fn clients_arrive_with_their_address_from_the_source_in_turn() {
    let (addrs, arrivals) = backends(2);
    let haproxy =
        HaProxy::start(&[Frontend { listen: "127.0.0.1:0".parse().expect("addr"), backends: addrs }], ip(SOURCE));
    let mut seen = Vec::new();
    for _ in 0..4 {
        let mut client = connect_from(ip(CLIENT), haproxy.addr(0)).expect("connect through HAProxy");
        let local = client.local_addr().expect("local");
        client.write_all(b"hello").expect("write");
        let mut reply = String::new();
        client.read_to_string(&mut reply).ok();
        let arrival = arrivals.recv_timeout(Duration::from_secs(10)).expect("the backend saw the connection");
        assert_eq!(arrival.peer.ip(), ip(SOURCE), "HAProxy connects from its source");
        match arrival.header {
            Header::Proxied { source, .. } => assert_eq!(source, local, "the header names the client"),
            Header::Unknown => panic!("a relayed client is named: {arrival:?}"),
        }
        assert_eq!(arrival.rest, b"hello", "the client's bytes follow the header");
        seen.push(arrival.backend);
    }
    assert_eq!(seen, [0, 1, 0, 1], "round-robin\n{}", haproxy.log());
    let connections: Vec<u64> = haproxy.servers().iter().map(|s| s.connections).collect();
    assert_eq!(connections, [2, 2], "the readiness probe reached no backend");
    let config = std::fs::read_to_string(haproxy.config_file()).expect("config");
    assert!(config.contains("send-proxy-v2") && config.contains("source 127.0.0.3"), "{config}");
}

#[test]
fn health_checks_send_local_and_v1_is_a_line() {
    let (addrs, arrivals) = backends(1);
    let options = Options { health_checks: Some(Duration::from_millis(200)), ..Options::new(ip(SOURCE)) };
    let haproxy =
        HaProxy::start_with(&[Frontend { listen: "127.0.0.1:0".parse().expect("addr"), backends: addrs }], &options);
    let check = arrivals.recv_timeout(Duration::from_secs(10)).expect("a health check arrives");
    assert_eq!(check.header, Header::Unknown, "{check:?}");
    assert_eq!(check.peer.ip(), ip(SOURCE));
    let servers = haproxy.servers();
    assert_eq!(servers.len(), 1, "{servers:?}");
    assert_eq!((servers[0].frontend, servers[0].backend), (0, 0));
    assert!(servers[0].status.starts_with("UP"), "{servers:?}");
    assert!(servers[0].check_status.starts_with("L4OK"), "{servers:?}");
    assert_eq!(servers[0].connections, 0, "checks are not connections");

    let (addrs, arrivals) = backends(1);
    let options = Options { version: ProxyVersion::V1, ..Options::new(ip(SOURCE)) };
    let haproxy =
        HaProxy::start_with(&[Frontend { listen: "127.0.0.1:0".parse().expect("addr"), backends: addrs }], &options);
    let mut client = connect_from(ip(CLIENT), haproxy.addr(0)).expect("connect");
    client.write_all(b"hi").expect("write");
    let arrival = arrivals.recv_timeout(Duration::from_secs(10)).expect("arrival");
    assert!(matches!(arrival.header, Header::Proxied { source, .. } if source.ip() == ip(CLIENT)), "{arrival:?}");
}

#[test]
fn a_dropped_haproxy_stops_listening() {
    let (addrs, _arrivals) = backends(1);
    let haproxy =
        HaProxy::start(&[Frontend { listen: "127.0.0.1:0".parse().expect("addr"), backends: addrs }], ip(SOURCE));
    let addr = haproxy.addr(0);
    drop(haproxy);
    assert!(connect_from(ip(CLIENT), addr).is_err(), "nothing listens after the drop");
}
