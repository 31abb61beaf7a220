//! The PROXY header parser against valid, truncated and hostile input, and the reader
//! against a stream that holds more than the header.

use super::*;

fn v2(command: u8, family: u8, block: &[u8]) -> Vec<u8> {
    let mut header = V2_SIGNATURE.to_vec();
    header.push(command);
    header.push(family);
    header.extend_from_slice(&u16::try_from(block.len()).expect("short block").to_be_bytes());
    header.extend_from_slice(block);
    header
}

fn tcp4_block() -> Vec<u8> {
    let mut block = vec![203, 0, 113, 9, 192, 0, 2, 1];
    block.extend_from_slice(&54321u16.to_be_bytes());
    block.extend_from_slice(&993u16.to_be_bytes());
    block
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

/// Feeds `input` to the parser the way [`read_header`] reads: exactly `need` more bytes
/// each time. Returns the result and how many bytes were taken.
fn drive(input: &[u8]) -> (Result<Header, Invalid>, usize) {
    let mut taken = 0;
    loop {
        match parse(&input[..taken]) {
            Ok(Parse::Complete { header, len }) => {
                assert_eq!(len, taken, "a complete header is exactly what was read");
                return (Ok(header), taken);
            }
            Ok(Parse::Incomplete { need }) => {
                assert!(need >= 1);
                assert!(taken + need <= input.len(), "{input:x?} ended before the parser decided");
                taken += need;
            }
            Err(e) => return (Err(e), taken),
        }
    }
}

/// The header in `input` (followed by `rest`), read exactly, with nothing after it taken.
fn header_of(input: &[u8]) -> Header {
    let rest = b"A001 CAPABILITY\r\n\x16\x03\x01";
    let whole = [input, rest].concat();
    let (header, taken) = drive(&whole);
    assert_eq!(taken, input.len(), "the reader stops at the header's end");
    assert_eq!(parse(&whole), Ok(Parse::Complete { header: header.expect("valid"), len: input.len() }));
    header.expect("valid")
}

fn invalid(input: &[u8]) -> Invalid {
    let (result, _) = drive(input);
    match result {
        Err(e) => {
            assert_eq!(parse(input), Err(e), "the whole input is refused the same way");
            e
        }
        Ok(h) => panic!("{:?} was taken as {h:?}", String::from_utf8_lossy(input)),
    }
}

#[test]
fn v1_headers_give_the_client() {
    let header = header_of(b"PROXY TCP4 203.0.113.9 192.0.2.1 54321 993\r\n");
    assert_eq!(header, Header::Proxied { source: addr("203.0.113.9:54321"), destination: addr("192.0.2.1:993") });
    assert_eq!(header.client(addr("127.0.0.3:40000")), addr("203.0.113.9:54321"));
    let header = header_of(b"PROXY TCP6 2001:db8::9 2001:db8::1 0 65535\r\n");
    assert_eq!(header, Header::Proxied { source: addr("[2001:db8::9]:0"), destination: addr("[2001:db8::1]:65535") });
    let mapped = header_of(b"PROXY TCP6 ::ffff:203.0.113.9 ::1 1 2\r\n");
    assert_eq!(mapped.client(addr("127.0.0.3:1")), addr("203.0.113.9:1"), "canonical: the mapped form is IPv4");
    assert_eq!(header_of(b"PROXY UNKNOWN\r\n"), Header::Unknown);
    assert_eq!(header_of(b"PROXY UNKNOWN ffff:: ffff:: 1 2 whatever\r\n"), Header::Unknown);
    assert_eq!(Header::Unknown.client(addr("127.0.0.3:1")), addr("127.0.0.3:1"));
}

#[test]
fn v1_longest_line_is_107_bytes() {
    let longest = format!("PROXY TCP6 {0} {0} 65535 65535\r\n", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
    assert_eq!(longest.len(), 104);
    header_of(longest.as_bytes());
    let padded = format!("PROXY UNKNOWN {}\r\n", "x".repeat(V1_MAX - 16));
    assert_eq!(padded.len(), V1_MAX);
    assert_eq!(header_of(padded.as_bytes()), Header::Unknown);
    let over = format!("PROXY UNKNOWN {}\r\n", "x".repeat(V1_MAX - 15));
    assert_eq!(invalid(over.as_bytes()), Invalid::V1TooLong);
    assert_eq!(invalid(&[b"PROXY ".as_slice(), &[b'A'; 500]].concat()), Invalid::V1TooLong);
}

#[test]
fn v1_hostile_lines_are_refused() {
    let cases: &[(&[u8], Invalid)] = &[
        (b"proxy TCP4 203.0.113.9 192.0.2.1 1 2\r\n", Invalid::Signature),
        (b"PROXYTCP4 203.0.113.9 192.0.2.1 1 2\r\n", Invalid::Signature),
        (b"HELO PROXY TCP4 203.0.113.9 192.0.2.1 1 2\r\n", Invalid::Signature),
        (b"A001 LOGIN x y\r\n", Invalid::Signature),
        (b"PROXY TCP4 203.0.113.9 192.0.2.1 1 2\n", Invalid::V1Syntax),
        (b"PROXY TCP4 203.0.113.9 192.0.2.1 1 2\r\r\n", Invalid::V1Port),
        (b"PROXY  TCP4 203.0.113.9 192.0.2.1 1 2\r\n", Invalid::V1Syntax),
        (b"PROXY TCP4  203.0.113.9 192.0.2.1 1 2\r\n", Invalid::V1Syntax),
        (b"PROXY TCP4 203.0.113.9 192.0.2.1 1 2 \r\n", Invalid::V1Syntax),
        (b"PROXY TCP4 203.0.113.9 192.0.2.1 1\r\n", Invalid::V1Syntax),
        (b"PROXY TCP4 203.0.113.9 192.0.2.1 1 2 3\r\n", Invalid::V1Syntax),
        (b"PROXY TCP4\r\nEHLO x\r\n", Invalid::V1Syntax),
        (b"PROXY UDP4 203.0.113.9 192.0.2.1 1 2\r\n", Invalid::V1Syntax),
        (b"PROXY tcp4 203.0.113.9 192.0.2.1 1 2\r\n", Invalid::V1Syntax),
        (b"PROXY TCP4\t203.0.113.9 192.0.2.1 1 2\r\n", Invalid::V1Syntax),
        (b"PROXY \r\n\r\n\r\n\r\n\r\n", Invalid::V1Syntax),
        (b"PROXY TCP4 2001:db8::9 192.0.2.1 1 2\r\n", Invalid::V1Address),
        (b"PROXY TCP6 203.0.113.9 2001:db8::1 1 2\r\n", Invalid::V1Address),
        (b"PROXY TCP4 203.0.113 192.0.2.1 1 2\r\n", Invalid::V1Address),
        (b"PROXY TCP4 203.0.113.09 192.0.2.1 1 2\r\n", Invalid::V1Address),
        (b"PROXY TCP4 203.0.113.256 192.0.2.1 1 2\r\n", Invalid::V1Address),
        (b"PROXY TCP4 0xcb.0.113.9 192.0.2.1 1 2\r\n", Invalid::V1Address),
        (b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", Invalid::V1Address),
        (b"PROXY TCP6 [2001:db8::9] ::1 1 2\r\n", Invalid::V1Address),
        (b"PROXY TCP4 203.0.113.9\xff 192.0.2.1 1 2\r\n", Invalid::V1Address),
        (b"PROXY TCP4 203.0.113.9 192.0.2.1 65536 2\r\n", Invalid::V1Port),
        (b"PROXY TCP4 203.0.113.9 192.0.2.1 99999 2\r\n", Invalid::V1Port),
        (b"PROXY TCP4 203.0.113.9 192.0.2.1 100000 2\r\n", Invalid::V1Port),
        (b"PROXY TCP4 203.0.113.9 192.0.2.1 01 2\r\n", Invalid::V1Port),
        (b"PROXY TCP4 203.0.113.9 192.0.2.1 -1 2\r\n", Invalid::V1Port),
        (b"PROXY TCP4 203.0.113.9 192.0.2.1 +1 2\r\n", Invalid::V1Port),
        (b"PROXY TCP4 203.0.113.9 192.0.2.1 0x10 2\r\n", Invalid::V1Port),
        (b"PROXY TCP4 203.0.113.9 192.0.2.1 1 2x\r\n", Invalid::V1Port),
    ];
    for (input, expected) in cases {
        assert_eq!(invalid(input), *expected, "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn v2_headers_give_the_client() {
    let header = header_of(&v2(0x21, 0x11, &tcp4_block()));
    assert_eq!(header, Header::Proxied { source: addr("203.0.113.9:54321"), destination: addr("192.0.2.1:993") });
    let mut block = Vec::new();
    block.extend_from_slice(&"2001:db8::9".parse::<Ipv6Addr>().expect("ip").octets());
    block.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().expect("ip").octets());
    block.extend_from_slice(&[0xff, 0xff, 0x01, 0xbb]);
    let header = header_of(&v2(0x21, 0x21, &block));
    assert_eq!(header, Header::Proxied { source: addr("[2001:db8::9]:65535"), destination: addr("[2001:db8::1]:443") });
}

#[test]
fn v2_local_and_unspec_are_the_socket_peer() {
    assert_eq!(header_of(&v2(0x20, 0x00, &[])), Header::Unknown, "HAProxy's health check");
    assert_eq!(header_of(&v2(0x20, 0x11, &tcp4_block())), Header::Unknown, "LOCAL ignores its addresses");
    assert_eq!(header_of(&v2(0x20, 0x31, &[0; 216])), Header::Unknown, "LOCAL ignores its family");
    assert_eq!(header_of(&v2(0x21, 0x00, &[])), Header::Unknown);
    assert_eq!(header_of(&v2(0x21, 0x00, &[1, 2, 3])), Header::Unknown);
}

#[test]
fn v2_tlvs_are_skipped_and_counted() {
    let mut block = tcp4_block();
    // PP2_TYPE_ALPN "imap", PP2_TYPE_AUTHORITY "mail.example", a NOOP with padding.
    block.extend_from_slice(&[0x01, 0x00, 0x04]);
    block.extend_from_slice(b"imap");
    block.extend_from_slice(&[0x02, 0x00, 0x0c]);
    block.extend_from_slice(b"mail.example");
    block.extend_from_slice(&[0x04, 0x00, 0x05, 0, 0, 0, 0, 0]);
    let header = header_of(&v2(0x21, 0x11, &block));
    assert_eq!(header.client(addr("127.0.0.3:1")), addr("203.0.113.9:54321"));
    // TLV framing is not checked: garbage after the addresses is skipped as well.
    header_of(&v2(0x21, 0x11, &[tcp4_block(), vec![0xff; 300]].concat()));
    let largest = [tcp4_block(), vec![0; V2_MAX_PAYLOAD - 12]].concat();
    header_of(&v2(0x21, 0x11, &largest));
}

#[test]
fn v2_hostile_headers_are_refused() {
    let oversize = [tcp4_block(), vec![0; V2_MAX_PAYLOAD - 11]].concat();
    assert_eq!(invalid(&v2(0x21, 0x11, &oversize)), Invalid::V2TooLong);
    // An announced length over the limit is refused from the fixed part alone.
    let mut announced = v2(0x21, 0x11, &[]);
    announced[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
    assert_eq!(parse(&announced), Err(Invalid::V2TooLong));
    let cases: &[(Vec<u8>, Invalid)] = &[
        (v2(0x11, 0x11, &tcp4_block()), Invalid::V2Version),
        (v2(0x31, 0x11, &tcp4_block()), Invalid::V2Version),
        (v2(0x01, 0x11, &tcp4_block()), Invalid::V2Version),
        (v2(0x22, 0x11, &tcp4_block()), Invalid::V2Command),
        (v2(0x2f, 0x11, &tcp4_block()), Invalid::V2Command),
        (v2(0x21, 0x12, &tcp4_block()), Invalid::V2Family),
        (v2(0x21, 0x22, &[0; 36]), Invalid::V2Family),
        (v2(0x21, 0x31, &[0; 216]), Invalid::V2Family),
        (v2(0x21, 0x32, &[0; 216]), Invalid::V2Family),
        (v2(0x21, 0x10, &tcp4_block()), Invalid::V2Family),
        (v2(0x21, 0x41, &tcp4_block()), Invalid::V2Family),
        (v2(0x21, 0x11, &tcp4_block()[..11]), Invalid::V2Short),
        (v2(0x21, 0x11, &[]), Invalid::V2Short),
        (v2(0x21, 0x21, &[0; 35]), Invalid::V2Short),
        (v2(0x21, 0x21, &tcp4_block()), Invalid::V2Short),
    ];
    for (input, expected) in cases {
        assert_eq!(invalid(input), *expected, "{input:x?}");
    }
    for at in 0..12 {
        let mut bad = v2(0x21, 0x11, &tcp4_block());
        bad[at] ^= 0x20;
        assert_eq!(invalid(&bad), Invalid::Signature, "signature byte {at} changed");
    }
    assert_eq!(
        invalid(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x01\x02\x03\x04\x05"),
        Invalid::Signature,
        "a TLS ClientHello"
    );
    assert_eq!(invalid(b"\r\nA001 NOOP\r\n\r\n\r\n"), Invalid::Signature);
}

#[test]
fn truncated_headers_wait_for_more_and_never_read_past_their_end() {
    let headers = [
        b"PROXY TCP4 203.0.113.9 192.0.2.1 54321 993\r\n".to_vec(),
        b"PROXY UNKNOWN\r\n".to_vec(),
        v2(0x20, 0x00, &[]),
        v2(0x21, 0x11, &tcp4_block()),
        v2(0x21, 0x11, &[tcp4_block(), vec![7; 100]].concat()),
    ];
    for header in headers {
        for cut in 0..header.len() {
            match parse(&header[..cut]) {
                Ok(Parse::Incomplete { need }) => assert!(cut + need <= header.len(), "{header:x?} cut at {cut}"),
                other => panic!("{header:x?} cut at {cut}: {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn the_reader_leaves_what_follows_the_header() {
    let (mut client, mut server) = tokio::io::duplex(4096);
    let header = v2(0x21, 0x11, &tcp4_block());
    tokio::io::AsyncWriteExt::write_all(&mut client, &[header.as_slice(), b"\x16\x03\x01hello"].concat())
        .await
        .expect("write");
    let read = read_header(&mut server, Duration::from_secs(5)).await.expect("header");
    assert_eq!(read.client(addr("127.0.0.3:1")), addr("203.0.113.9:54321"));
    let mut rest = [0u8; 8];
    server.read_exact(&mut rest).await.expect("rest");
    assert_eq!(&rest, b"\x16\x03\x01hello");

    let (mut client, mut server) = tokio::io::duplex(4096);
    tokio::io::AsyncWriteExt::write_all(&mut client, b"PROXY TCP4 203.0.113.9 192.0.2.1 1 2\r\nEHLO x\r\n")
        .await
        .expect("write");
    read_header(&mut server, Duration::from_secs(5)).await.expect("header");
    let mut rest = [0u8; 8];
    server.read_exact(&mut rest).await.expect("rest");
    assert_eq!(&rest, b"EHLO x\r\n");
}

#[tokio::test]
async fn the_reader_gives_up_on_silence_closing_and_garbage() {
    let (mut client, mut server) = tokio::io::duplex(4096);
    tokio::io::AsyncWriteExt::write_all(&mut client, b"PROXY TCP4 203.0.113.9").await.expect("write");
    assert_eq!(read_header(&mut server, Duration::from_millis(100)).await, Err(HeaderError::Timeout));
    drop(client);
    let (mut client, mut server) = tokio::io::duplex(4096);
    tokio::io::AsyncWriteExt::write_all(&mut client, b"PROXY TCP4").await.expect("write");
    drop(client);
    assert_eq!(read_header(&mut server, Duration::from_secs(5)).await, Err(HeaderError::Closed));
    let (mut client, mut server) = tokio::io::duplex(4096);
    tokio::io::AsyncWriteExt::write_all(&mut client, b"EHLO client.example\r\n").await.expect("write");
    assert_eq!(read_header(&mut server, Duration::from_secs(5)).await, Err(HeaderError::Invalid(Invalid::Signature)));
}

#[test]
fn only_trusted_networks_are_trusted() {
    let none = TrustedProxies::default();
    assert!(!none.trusts("127.0.0.3".parse().expect("ip")));
    let networks: Vec<Network> =
        ["127.0.0.3/32", "2001:db8:5::/48"].iter().map(|s| s.parse().expect("network")).collect();
    let trusted = TrustedProxies::new(&networks);
    assert!(trusted.trusts("127.0.0.3".parse().expect("ip")));
    assert!(trusted.trusts("::ffff:127.0.0.3".parse().expect("ip")));
    assert!(trusted.trusts("2001:db8:5:1::2".parse().expect("ip")));
    assert!(!trusted.trusts("127.0.0.2".parse().expect("ip")));
    assert!(!trusted.trusts("2001:db8:6::2".parse().expect("ip")));
}
