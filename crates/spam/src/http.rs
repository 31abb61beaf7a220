//! A small HTTP/1.1 client for rspamd on loopback: one `POST` per connection
//! (`Connection: close`), plain TCP, the whole exchange under one deadline, the answer
//! bounded to [`MAX_REPLY`] bytes. Only `Content-Length` bodies or bodies ended by the
//! close are read; rspamd sends nothing else.

use std::fmt;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{MAX_REPLY, SpamError};

/// Where rspamd listens: `http://HOST:PORT` (plain HTTP; rspamd's workers speak no TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    host: String,
    port: u16,
}

impl Endpoint {
    /// `http://127.0.0.1:11333`, `http://[::1]:11333` or `http://localhost:11333`; a
    /// trailing `/` is allowed, nothing else after the port.
    pub fn parse(url: &str) -> Result<Self, String> {
        let example = "a URL like http://127.0.0.1:11333";
        let rest = url.strip_prefix("http://").ok_or_else(|| format!("'{url}' is not {example}"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| format!("'{url}' names no port: use {example}"))?;
        let port: u16 = port.parse().map_err(|_| format!("'{url}' has no valid port: use {example}"))?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let valid = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b));
        if !valid || port == 0 {
            return Err(format!("'{url}' is not {example}"));
        }
        Ok(Endpoint { host: host.to_string(), port })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "http://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "http://{}:{}", self.host, self.port)
        }
    }
}

/// Posts `body` to `path` and returns the answer's body when the status is 200; any other
/// status is [`SpamError::Status`] with rspamd's error text.
pub(crate) async fn post(
    endpoint: &Endpoint,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, SpamError> {
    let exchange = async {
        let mut stream =
            TcpStream::connect((endpoint.host.as_str(), endpoint.port)).await.map_err(SpamError::Connect)?;
        let mut head = format!("POST {path} HTTP/1.1\r\nHost: {}:{}\r\n", endpoint.host, endpoint.port);
        for (name, value) in headers {
            // Values come from the envelope; a line break would start a header of its own.
            let value: String = value.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()));
        stream.write_all(head.as_bytes()).await.map_err(SpamError::Io)?;
        stream.write_all(body).await.map_err(SpamError::Io)?;
        stream.flush().await.map_err(SpamError::Io)?;
        read_reply(&mut stream).await
    };
    let (status, body) = tokio::time::timeout(timeout, exchange).await.map_err(|_| SpamError::Timeout(timeout))??;
    if status == 200 {
        return Ok(body);
    }
    let text = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_default();
    let text: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    Err(SpamError::Status { status, text })
}

/// Reads the status and body of one answer.
async fn read_reply(stream: &mut TcpStream) -> Result<(u16, Vec<u8>), SpamError> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if buf.len() > 16 * 1024 {
            return Err(SpamError::Protocol("the header is too long"));
        }
        let n = stream.read(&mut chunk).await.map_err(SpamError::Io)?;
        if n == 0 {
            return Err(SpamError::Protocol("the connection closed before the header ended"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..header_end]).map_err(|_| SpamError::Protocol("the header is not text"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(SpamError::Protocol("no HTTP/1.x status line"));
    }
    let status: u16 =
        parts.next().and_then(|s| s.parse().ok()).ok_or(SpamError::Protocol("the status is not a number"))?;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.trim().parse::<usize>().map_err(|_| SpamError::Protocol("a bad Content-Length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(SpamError::Protocol("a transfer encoding (chunked) is not expected"));
        }
    }
    if length.is_some_and(|n| n > MAX_REPLY) {
        return Err(SpamError::TooLarge);
    }
    let mut body = buf.split_off(header_end);
    loop {
        if length.is_some_and(|n| body.len() >= n) {
            break;
        }
        if body.len() > MAX_REPLY {
            return Err(SpamError::TooLarge);
        }
        let n = stream.read(&mut chunk).await.map_err(SpamError::Io)?;
        if n == 0 {
            if length.is_some() {
                return Err(SpamError::Protocol("the connection closed before the body ended"));
            }
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    if let Some(n) = length {
        body.truncate(n);
    }
    Ok((status, body))
}
