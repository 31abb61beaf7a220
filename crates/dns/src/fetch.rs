//! The one HTTPS GET of an MTA-STS policy file, for the domain checks and for outbound
//! delivery: the name resolved through the caller's resolver, the certificate verified
//! for the name, no redirects followed (RFC 8461 §3.3), the answer bounded in size and
//! time.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use postfach_store::dns_checks::Text;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest one fetch may take, connection and answer together.
const FETCH_TIMEOUT: Duration = Duration::from_secs(15);
/// Room for the status line and headers on top of the body's limit.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Where HTTPS fetches go: the port, and the trusted roots (`None`: the system's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpsTarget {
    pub port: u16,
    pub ca_file: Option<PathBuf>,
}

impl Default for HttpsTarget {
    fn default() -> Self {
        HttpsTarget { port: 443, ca_file: None }
    }
}

fn text(de: impl Into<String>, en: impl Into<String>) -> Text {
    Text { de: de.into(), en: en.into() }
}

/// Fetches `https://HOST/PATH` and returns its body, which must be `text/plain` with
/// status 200 and at most `max_bytes` long. The error says why, in German and English.
pub(crate) async fn get_text(
    resolver: &TokioResolver,
    target: &HttpsTarget,
    host: &str,
    path: &str,
    max_bytes: usize,
) -> Result<String, Text> {
    let connector = connector(target)?;
    get_text_with(resolver, &connector, target.port, host, path, max_bytes).await
}

/// [`get_text`] with the caller's TLS connector (its trusted roots) and port.
pub async fn get_text_with(
    resolver: &TokioResolver,
    connector: &tokio_rustls::TlsConnector,
    port: u16,
    host: &str,
    path: &str,
    max_bytes: usize,
) -> Result<String, Text> {
    tokio::time::timeout(FETCH_TIMEOUT, fetch(resolver, connector, port, host, path, max_bytes))
        .await
        .unwrap_or_else(|_| Err(text("keine Antwort in der Zeit", "no answer in time")))
}

async fn fetch(
    resolver: &TokioResolver,
    connector: &tokio_rustls::TlsConnector,
    port: u16,
    host: &str,
    path: &str,
    max_bytes: usize,
) -> Result<String, Text> {
    let no_address = || text(format!("{host} hat keine Adresse"), format!("{host} has no address"));
    let ips: Vec<std::net::IpAddr> = match resolver.lookup_ip(format!("{host}.")).await {
        Ok(found) => found.iter().collect(),
        Err(_) => return Err(no_address()),
    };
    // Each address in turn, as a browser would: one unreachable address is not the end.
    let mut refused = no_address();
    let mut connected = None;
    for ip in &ips {
        match TcpStream::connect((*ip, port)).await {
            Ok(tcp) => {
                connected = Some(tcp);
                break;
            }
            Err(_) => {
                refused = text(
                    format!("{host} ({ip}) nimmt keine Verbindung an Port {port} an"),
                    format!("{host} ({ip}) accepts no connection on port {port}"),
                );
            }
        }
    }
    let tcp = connected.ok_or(refused)?;
    let name = ServerName::try_from(host.to_string()).map_err(|_| no_address())?;
    let mut tls = connector.connect(name, tcp).await.map_err(|e| {
        text(
            format!("das Zertifikat von {host} ist für diesen Namen nicht gültig: {e}"),
            format!("the certificate of {host} is not valid for that name: {e}"),
        )
    })?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Postfach\r\nConnection: close\r\n\r\n");
    let broken = || text("die Verbindung brach ab", "the connection broke off");
    tls.write_all(request.as_bytes()).await.map_err(|_| broken())?;
    let mut raw = Vec::new();
    let limit = u64::try_from(max_bytes + MAX_HEADER_BYTES + 1).unwrap_or(u64::MAX);
    // A server may close without close_notify: then only Content-Length or chunked framing
    // proves the file arrived whole (a connection cut by an attacker must not shorten it).
    let ended_cleanly = (&mut tls).take(limit).read_to_end(&mut raw).await.is_ok();
    parse_response(&raw, max_bytes, ended_cleanly)
}

fn connector(target: &HttpsTarget) -> Result<tokio_rustls::TlsConnector, Text> {
    let unusable = || text("die vertrauenswürdigen Zertifikate fehlen", "the trusted certificates are missing");
    let mut roots = rustls::RootCertStore::empty();
    match &target.ca_file {
        Some(path) => {
            let found = CertificateDer::pem_file_iter(path)
                .map_err(|_| unusable())?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| unusable())?;
            roots.add_parsable_certificates(found);
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    if roots.is_empty() {
        return Err(unusable());
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| unusable())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Reads an HTTP/1.1 answer: status 200, `Content-Type: text/plain`, a body of at most
/// `max_bytes` (by Content-Length, chunked, or up to the end of the connection).
/// Reads an HTTP/1.1 answer. `ended_cleanly`: the connection ended with TLS close_notify,
/// so a body without Content-Length or chunked framing is complete.
fn parse_response(raw: &[u8], max_bytes: usize, ended_cleanly: bool) -> Result<String, Text> {
    let malformed = || text("die Antwort ist kein gültiges HTTP", "the answer is not valid HTTP");
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(malformed)?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| malformed())?;
    let mut body = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).ok_or_else(malformed)?;
    if status != "200" {
        return Err(text(
            format!("der Server antwortet mit HTTP {status}"),
            format!("the server answers HTTP {status}"),
        ));
    }
    let header = |name: &str| {
        head.split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_ascii_lowercase())
    };
    if !header("content-type").is_some_and(|t| t.starts_with("text/plain")) {
        return Err(text("die Datei wird nicht als text/plain ausgeliefert", "the file is not served as text/plain"));
    }
    let too_large = || text("die Datei ist zu groß", "the file is too large");
    let decoded;
    if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        decoded = dechunk(body, max_bytes).ok_or_else(malformed)?;
        body = &decoded;
    } else if let Some(length) = header("content-length") {
        let length: usize = length.parse().map_err(|_| malformed())?;
        if length > max_bytes {
            return Err(too_large());
        }
        body = body.get(..length).ok_or_else(malformed)?;
    } else if !ended_cleanly {
        return Err(text(
            "die Verbindung brach vor dem Ende der Datei ab",
            "the connection broke off before the end of the file",
        ));
    }
    if body.len() > max_bytes {
        return Err(too_large());
    }
    String::from_utf8(body.to_vec()).map_err(|_| malformed())
}

/// Decodes a chunked body (RFC 9112 §7.1); `None` if malformed or over `max_bytes`.
fn dechunk(mut rest: &[u8], max_bytes: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if size > max_bytes.saturating_sub(out.len()) {
            return None;
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_within_their_limits() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(parse_response(ok, 100, false).expect("ok"), "hello");
        let chunked = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked, 100, false).expect("chunked"), "hello");
        let missing = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\n";
        assert!(parse_response(missing, 100, true).expect_err("404").en.contains("404"));
        let html = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\nhello";
        assert!(parse_response(html, 100, true).expect_err("html").en.contains("text/plain"));
        let big = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 500\r\n\r\n";
        assert!(parse_response(big, 100, true).expect_err("big").en.contains("too large"));
        assert!(parse_response(chunked, 3, true).is_err());
        // A hostile chunk size near usize::MAX is refused, not added up.
        let huge = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\nffffffffffffffff\r\nx\r\n";
        assert!(parse_response(huge, 100, true).is_err());
        // Without framing, only a connection that ended with close_notify delivers the file:
        // a cut one could have shortened `mx: mx.example.net` to `mx: mx`.
        let unframed = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nversion: STSv1\r\nmx: mx";
        assert!(parse_response(unframed, 100, true).is_ok());
        assert!(parse_response(unframed, 100, false).expect_err("cut").en.contains("broke off"));
    }
}
