//! The PROXY protocol, versions 1 and 2 (HAProxy's `proxy-protocol.txt`): how a load
//! balancer in front of Postfach tells it the real client's address.
//!
//! A peer in the trusted networks (`[proxy] trusted_networks`, [`TrustedProxies`]) must
//! begin every connection with a header, and only such a peer is ever read for one:
//! anyone else's `PROXY …` line reaches the protocol, which refuses it as an unknown
//! command. The header is read exactly ([`read_header`]): the bytes after it (a pipelined
//! command, the TLS ClientHello of an implicit-TLS port) stay in the socket for the
//! session.
//!
//! [`parse`] is the pure part, fed what has arrived so far; it answers with the header,
//! or with how many more bytes can be read without passing its end, or why the input is
//! not a header. Its sizes are bounded: a v1 line is at most 107 bytes (spec §2.1), a v2
//! header at most 16 + [`V2_MAX_PAYLOAD`] bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::network::Network;

/// What a PROXY header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// The balancer relays a client: where it came from and the address it reached.
    Proxied { source: SocketAddr, destination: SocketAddr },
    /// No client address: the balancer's own connection (v2 `LOCAL`, such as a health
    /// check), or one it cannot describe (v1 `UNKNOWN`, v2 `AF_UNSPEC`). The connection
    /// counts as the socket's peer, the balancer.
    Unknown,
}

impl Header {
    /// The connection's client: the header's source (canonical), else `socket_peer`.
    pub fn client(&self, socket_peer: SocketAddr) -> SocketAddr {
        match self {
            Header::Proxied { source, .. } => crate::peer::canonical(*source),
            Header::Unknown => socket_peer,
        }
    }
}

/// How far [`parse`] got with the bytes it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse {
    /// A whole header, `len` bytes long; what follows belongs to the protocol.
    Complete { header: Header, len: usize },
    /// More is needed: reading exactly `need` more bytes (at least 1) never reads past the
    /// end of a valid header.
    Incomplete { need: usize },
}

/// Why bytes are not a PROXY header. Each names the rule broken, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("no PROXY signature (v1 \"PROXY \" or the v2 binary signature)")]
    Signature,
    #[error("v1 line without CRLF within 107 bytes")]
    V1TooLong,
    #[error("v1 line is not PROXY TCP4|TCP6|UNKNOWN with single spaces, ending in CRLF")]
    V1Syntax,
    #[error("v1 address is not an address of the named family")]
    V1Address,
    #[error("v1 port is not a decimal number from 0 to 65535 without leading zeros")]
    V1Port,
    #[error("v2 version is not 2")]
    V2Version,
    #[error("v2 command is neither LOCAL nor PROXY")]
    V2Command,
    #[error("v2 address family is not TCP over IPv4 or IPv6, or unspecified")]
    V2Family,
    #[error("v2 addresses and TLVs are longer than 1024 bytes")]
    V2TooLong,
    #[error("v2 length is shorter than the addresses of its family")]
    V2Short,
}

/// Why no header could be read from a trusted peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("invalid PROXY header: {0}")]
    Invalid(#[from] Invalid),
    #[error("the connection closed before a whole PROXY header arrived")]
    Closed,
    #[error("no whole PROXY header within the handshake timeout")]
    Timeout,
}

/// The longest v1 header, CRLF included (spec §2.1).
pub const V1_MAX: usize = 107;
/// The most bytes of addresses and TLVs a v2 header may announce. HAProxy sends far
/// fewer; the spec's largest address block (AF_UNIX) is 216.
pub const V2_MAX_PAYLOAD: usize = 1024;

const V1_PREFIX: &[u8] = b"PROXY ";
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The fixed part of a v2 header: signature, version and command, family, length.
const V2_FIXED: usize = 16;
/// The shortest header of either version: `PROXY UNKNOWN\r\n` (v2's fixed part is 16).
const SHORTEST: usize = 15;

/// Reads `input` as the start of a connection from a trusted peer.
pub fn parse(input: &[u8]) -> Result<Parse, Invalid> {
    match input.first() {
        None => Ok(Parse::Incomplete { need: SHORTEST }),
        Some(b'P') => parse_v1(input),
        Some(b'\r') => parse_v2(input),
        Some(_) => Err(Invalid::Signature),
    }
}

/// Version 1: `PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n` (spec §2.1).
fn parse_v1(input: &[u8]) -> Result<Parse, Invalid> {
    let known = input.len().min(V1_PREFIX.len());
    if input[..known] != V1_PREFIX[..known] {
        return Err(Invalid::Signature);
    }
    let window = &input[..input.len().min(V1_MAX)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        if input.len() >= V1_MAX {
            return Err(Invalid::V1TooLong);
        }
        return Ok(Parse::Incomplete { need: SHORTEST.saturating_sub(input.len()).max(1) });
    };
    let line = window[..lf].strip_suffix(b"\r").ok_or(Invalid::V1Syntax)?;
    let words = line.get(V1_PREFIX.len()..).ok_or(Invalid::V1Syntax)?;
    let header = v1_words(words)?;
    Ok(Parse::Complete { header, len: lf + 1 })
}

fn v1_words(words: &[u8]) -> Result<Header, Invalid> {
    let mut fields = words.split(|&b| b == b' ');
    let family = fields.next().ok_or(Invalid::V1Syntax)?;
    let v6 = match family {
        // The receiver ignores whatever follows UNKNOWN up to the CRLF (spec §2.1).
        b"UNKNOWN" => return Ok(Header::Unknown),
        b"TCP4" => false,
        b"TCP6" => true,
        _ => return Err(Invalid::V1Syntax),
    };
    let rest: Vec<&[u8]> = fields.collect();
    let [source, destination, source_port, destination_port] = rest[..] else { return Err(Invalid::V1Syntax) };
    let source = SocketAddr::new(v1_address(source, v6)?, v1_port(source_port)?);
    let destination = SocketAddr::new(v1_address(destination, v6)?, v1_port(destination_port)?);
    Ok(Header::Proxied { source, destination })
}

fn v1_address(text: &[u8], v6: bool) -> Result<IpAddr, Invalid> {
    let text = std::str::from_utf8(text).map_err(|_| Invalid::V1Address)?;
    // The standard parsers take only the plain forms: no leading zeros in IPv4, no zone.
    let ip = if v6 { text.parse::<Ipv6Addr>().map(IpAddr::V6) } else { text.parse::<Ipv4Addr>().map(IpAddr::V4) };
    ip.map_err(|_| Invalid::V1Address)
}

fn v1_port(text: &[u8]) -> Result<u16, Invalid> {
    let digits_ok =
        !text.is_empty() && text.len() <= 5 && text.iter().all(u8::is_ascii_digit) && (text == b"0" || text[0] != b'0');
    if !digits_ok {
        return Err(Invalid::V1Port);
    }
    text.iter().try_fold(0u16, |n, &d| n.checked_mul(10)?.checked_add(u16::from(d - b'0'))).ok_or(Invalid::V1Port)
}

/// Version 2: the binary header (spec §2.2).
fn parse_v2(input: &[u8]) -> Result<Parse, Invalid> {
    let known = input.len().min(V2_SIGNATURE.len());
    if input[..known] != V2_SIGNATURE[..known] {
        return Err(Invalid::Signature);
    }
    if input.len() < V2_FIXED {
        return Ok(Parse::Incomplete { need: V2_FIXED - input.len() });
    }
    let (version, command) = (input[12] >> 4, input[12] & 0x0f);
    if version != 2 {
        return Err(Invalid::V2Version);
    }
    let payload = usize::from(u16::from_be_bytes([input[14], input[15]]));
    if payload > V2_MAX_PAYLOAD {
        return Err(Invalid::V2TooLong);
    }
    let len = V2_FIXED + payload;
    if input.len() < len {
        return Ok(Parse::Incomplete { need: len - input.len() });
    }
    let addresses = &input[V2_FIXED..len];
    let header = match command {
        // LOCAL: the balancer's own connection; its address block is ignored.
        0x0 => Header::Unknown,
        0x1 => v2_addresses(input[13], addresses)?,
        _ => return Err(Invalid::V2Command),
    };
    // What follows the addresses are TLVs (spec §2.2.7); nothing here needs them.
    Ok(Parse::Complete { header, len })
}

/// The address block of a v2 PROXY command, by its family and transport byte.
fn v2_addresses(family: u8, block: &[u8]) -> Result<Header, Invalid> {
    let (source, destination, ports) = match family {
        // AF_UNSPEC: unknown to the sender; the receiver uses the socket's addresses.
        0x00 => return Ok(Header::Unknown),
        // TCP over IPv4: 4 + 4 address bytes, then 2 + 2 port bytes.
        0x11 => {
            let block = block.get(..12).ok_or(Invalid::V2Short)?;
            let address = |at: usize| IpAddr::from(<[u8; 4]>::try_from(&block[at..at + 4]).unwrap_or_default());
            (address(0), address(4), &block[8..12])
        }
        // TCP over IPv6: 16 + 16 address bytes, then the ports.
        0x21 => {
            let block = block.get(..36).ok_or(Invalid::V2Short)?;
            let address = |at: usize| IpAddr::from(<[u8; 16]>::try_from(&block[at..at + 16]).unwrap_or_default());
            (address(0), address(16), &block[32..36])
        }
        // UDP, AF_UNIX and anything unassigned: not what reaches a TCP listener.
        _ => return Err(Invalid::V2Family),
    };
    let port = |at: usize| u16::from_be_bytes([ports[at], ports[at + 1]]);
    Ok(Header::Proxied { source: SocketAddr::new(source, port(0)), destination: SocketAddr::new(destination, port(2)) })
}

/// Reads one PROXY header from the start of `stream`, not a byte beyond it, within
/// `timeout`.
pub async fn read_header<S: AsyncRead + Unpin>(stream: &mut S, timeout: Duration) -> Result<Header, HeaderError> {
    let read = async {
        let mut input = Vec::with_capacity(V1_MAX);
        loop {
            match parse(&input)? {
                Parse::Complete { header, .. } => return Ok(header),
                Parse::Incomplete { need } => {
                    let start = input.len();
                    input.resize(start + need, 0);
                    stream.read_exact(&mut input[start..]).await.map_err(|_| HeaderError::Closed)?;
                }
            }
        }
    };
    tokio::time::timeout(timeout, read).await.map_err(|_| HeaderError::Timeout)?
}

/// The peers whose connections must begin with a PROXY header, and whose headers alone
/// are believed: the load balancers. Empty (the default): no connection is read for one.
/// Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<[Network]>);

impl TrustedProxies {
    pub fn new(networks: &[Network]) -> Self {
        Self(networks.into())
    }

    /// Whether a connection from `ip` (the socket's peer) must send a header.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(ip))
    }
}

#[cfg(test)]
mod tests;
