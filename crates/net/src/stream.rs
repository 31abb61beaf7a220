//! A connection that is plaintext or TLS, so one session type serves both `imap` and
//! `imaps` (and STARTTLS in between), and the one timed TLS handshake.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use postfach_types::TlsInfo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::conn::Ended;

/// Accepts TLS with the server's certificate. Cheap to clone.
#[derive(Clone)]
pub struct TlsAcceptor {
    inner: tokio_rustls::TlsAcceptor,
    /// The listener's service, for the handshake metrics.
    service: &'static str,
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsAcceptor")
    }
}

impl TlsAcceptor {
    pub fn new(config: Arc<rustls::ServerConfig>) -> Self {
        Self { inner: tokio_rustls::TlsAcceptor::from(config), service: "other" }
    }

    /// The same acceptor, counting its handshakes for the listener `service`.
    pub fn for_service(self, service: &'static str) -> Self {
        Self { service, ..self }
    }

    /// Runs the TLS handshake on a TCP connection (implicit TLS, RFC 8314, or after
    /// STARTTLS); a handshake that does not finish within `timeout` ends the connection.
    pub async fn accept(&self, tcp: TcpStream, timeout: Duration) -> Result<MaybeTls, Ended> {
        let result = tokio::time::timeout(timeout, self.inner.accept(tcp)).await;
        postfach_metrics::tls_handshake(self.service, matches!(result, Ok(Ok(_))));
        match result {
            Ok(Ok(tls)) => Ok(MaybeTls::Tls(Box::new(tls))),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                Err(Ended::Closed)
            }
            Err(_) => {
                tracing::debug!("TLS handshake timed out");
                Err(Ended::Timeout)
            }
        }
    }
}

/// A server-side connection, plaintext or TLS.
#[derive(Debug)]
pub enum MaybeTls {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl MaybeTls {
    /// What TLS negotiated, or `None` for plaintext.
    pub fn tls_info(&self) -> Option<TlsInfo> {
        match self {
            MaybeTls::Plain(_) => None,
            MaybeTls::Tls(tls) => Some(tls_info(tls.get_ref().1)),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, MaybeTls::Tls(_))
    }
}

/// The protocol version and cipher suite of an established TLS connection, spelled as
/// people know them (`TLSv1.3`, `TLS13_AES_256_GCM_SHA384`).
pub fn tls_info(conn: &rustls::ServerConnection) -> TlsInfo {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(other) => format!("{other:?}"),
        None => "TLS".to_string(),
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .and_then(|s| s.suite().as_str())
        .map_or_else(|| "unknown".to_string(), str::to_string);
    TlsInfo { version, cipher }
}

impl AsyncRead for MaybeTls {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTls {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTls::Plain(s) => s.is_write_vectored(),
            MaybeTls::Tls(s) => s.is_write_vectored(),
        }
    }
}
