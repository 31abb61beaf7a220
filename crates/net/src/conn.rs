//! The connection every protocol session talks over: plaintext or TLS, with a read
//! buffer for pipelined commands, an output buffer flushed before the session waits,
//! reads and writes that time out, lines with a length limit, and the STARTTLS upgrade.
//!
//! STARTTLS (RFC 3207 §4.2, RFC 2595 §3.1, RFC 3501 §6.2.1) discards whatever plaintext
//! the client sent after the command, here and nowhere else, and runs the handshake
//! under the same timeout as implicit TLS. Buffers shrink back when they are empty, so
//! an idle session holds a few bytes, not the largest thing it ever read.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use postfach_types::TlsInfo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::admission::Slot;
use crate::stream::{MaybeTls, TlsAcceptor};

/// How a read or write ended without data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Ended {
    /// The client closed the connection, it broke, or a TLS handshake failed.
    #[error("the connection was closed")]
    Closed,
    /// Nothing arrived (or nothing could be sent) within the timeout.
    #[error("the connection timed out")]
    Timeout,
    /// The client did not log in before the login deadline
    /// ([`Conn::set_login_deadline`]), however busy it kept the connection.
    #[error("the client did not log in in time")]
    LoginTimeout,
}

/// A line from the client, or the news that it was longer than allowed (it has been
/// skipped up to its end).
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The line including its LF.
    Text(Vec<u8>),
    TooLong,
}

/// Timeouts that apply to every connection (`[limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A TLS handshake (implicit TLS or after STARTTLS) must finish within this.
    pub handshake: Duration,
    /// Sending a reply must make progress within this.
    pub write: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { handshake: Duration::from_secs(10), write: Duration::from_secs(60) }
    }
}

/// Bytes read at once when nothing is buffered (a command is usually short).
const SMALL_READ: usize = 2 * 1024;
/// Bytes read at once in the middle of something larger (a message, a literal).
const LARGE_READ: usize = 64 * 1024;
/// Empty buffers larger than this are given back.
const KEEP_CAPACITY: usize = 16 * 1024;

/// One client connection.
#[derive(Debug)]
pub struct Conn {
    stream: Option<MaybeTls>,
    peer: SocketAddr,
    starttls: Option<TlsAcceptor>,
    timeouts: Timeouts,
    tls: Option<TlsInfo>,
    input: Vec<u8>,
    pos: usize,
    out: Vec<u8>,
    /// When the client must have logged in: no read waits past it (see
    /// [`Conn::set_login_deadline`]).
    login_deadline: Option<Instant>,
    _slot: Option<Slot>,
}

impl Conn {
    /// A connection from `peer` (canonical address: IPv4 never as `::ffff:a.b.c.d`).
    /// `starttls` is the acceptor for an upgrade, `None` where none is possible.
    pub fn new(
        stream: MaybeTls,
        peer: SocketAddr,
        starttls: Option<TlsAcceptor>,
        timeouts: Timeouts,
        slot: Option<Slot>,
    ) -> Self {
        let peer = crate::peer::canonical(peer);
        let tls = stream.tls_info();
        Self {
            stream: Some(stream),
            peer,
            starttls,
            timeouts,
            tls,
            input: Vec::new(),
            pos: 0,
            out: Vec::new(),
            login_deadline: None,
            _slot: slot,
        }
    }

    /// Until the client logs in, no read waits past `after` from now, however often the
    /// client sends something (a NOOP every minute keeps no unauthenticated connection
    /// open). `None` (after a login) lifts it.
    pub fn set_login_deadline(&mut self, after: Option<Duration>) {
        self.login_deadline = after.map(|d| Instant::now() + d);
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// What TLS negotiated, `None` for plaintext.
    pub fn tls_info(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether STARTTLS can be offered now.
    pub fn can_start_tls(&self) -> bool {
        !self.is_tls() && self.starttls.is_some()
    }

    /// Queues bytes to send; they go out with the next flush, at the latest before the
    /// session waits for input.
    pub fn queue(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Bytes queued and not yet sent.
    pub fn queued(&self) -> usize {
        self.out.len()
    }

    /// The output buffer, for writers that render straight into it.
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    pub async fn flush(&mut self) -> Result<(), Ended> {
        if self.out.is_empty() {
            return Ok(());
        }
        let stream = self.stream.as_mut().ok_or(Ended::Closed)?;
        // Each write must make progress within the timeout; a slow client downloading a
        // large message is not cut off, one that stopped reading is.
        let limit = self.timeouts.write;
        let mut sent = 0;
        while sent < self.out.len() {
            match tokio::time::timeout(limit, stream.write(&self.out[sent..])).await {
                Err(_) => return Err(Ended::Timeout),
                Ok(Err(_)) | Ok(Ok(0)) => return Err(Ended::Closed),
                Ok(Ok(n)) => sent += n,
            }
        }
        match tokio::time::timeout(limit, stream.flush()).await {
            Err(_) => return Err(Ended::Timeout),
            Ok(Err(_)) => return Err(Ended::Closed),
            Ok(Ok(())) => {}
        }
        self.out.clear();
        if self.out.capacity() > KEEP_CAPACITY * 4 {
            self.out = Vec::new();
        }
        Ok(())
    }

    /// What has been read and not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.input[self.pos..]
    }

    /// Marks `n` buffered bytes as used.
    pub fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.input.len());
        if self.pos == self.input.len() {
            self.input.clear();
            self.pos = 0;
            if self.input.capacity() > KEEP_CAPACITY {
                self.input = Vec::new();
            }
        }
    }

    /// Reads more input (after sending what is queued: the client may be waiting for
    /// it). Returns how many bytes arrived.
    pub async fn fill(&mut self, timeout: Duration) -> Result<usize, Ended> {
        self.flush().await?;
        if self.pos > 0 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        let want = if self.input.is_empty() { SMALL_READ } else { LARGE_READ };
        self.input.reserve(want);
        let stream = self.stream.as_mut().ok_or(Ended::Closed)?;
        let idle_until = Instant::now() + timeout;
        let (until, ended) = match self.login_deadline {
            Some(deadline) if deadline < idle_until => (deadline, Ended::LoginTimeout),
            _ => (idle_until, Ended::Timeout),
        };
        match tokio::time::timeout_at(until, stream.read_buf(&mut self.input)).await {
            Err(_) => Err(ended),
            Ok(Ok(0)) | Ok(Err(_)) => Err(Ended::Closed),
            Ok(Ok(n)) => Ok(n),
        }
    }

    /// The next line including its LF. A line longer than `max` bytes is skipped up to
    /// its end and reported as [`Line::TooLong`]; it is never held in memory whole.
    pub async fn read_line(&mut self, max: usize, timeout: Duration) -> Result<Line, Ended> {
        let mut skipping = false;
        loop {
            let pending = self.buffered();
            if let Some(i) = pending.iter().position(|&b| b == b'\n') {
                let line = (!skipping && i < max).then(|| pending[..=i].to_vec());
                self.consume(i + 1);
                return Ok(line.map_or(Line::TooLong, Line::Text));
            }
            if pending.len() > max {
                skipping = true;
                let n = pending.len();
                self.consume(n);
            }
            self.fill(timeout).await?;
        }
    }

    /// STARTTLS: sends what is queued (the "go ahead" reply), throws away everything the
    /// client sent after the command, and runs the TLS handshake under the handshake
    /// timeout. On failure the connection is unusable.
    pub async fn start_tls(&mut self) -> Result<(), Ended> {
        self.flush().await?;
        self.input = Vec::new();
        self.pos = 0;
        let acceptor = self.starttls.clone().ok_or(Ended::Closed)?;
        let stream = self.stream.take().ok_or(Ended::Closed)?;
        let MaybeTls::Plain(tcp) = stream else { return Err(Ended::Closed) };
        let tls = acceptor.accept(tcp, self.timeouts.handshake).await?;
        self.tls = tls.tls_info();
        self.stream = Some(tls);
        Ok(())
    }

    /// Sends what is queued (briefly: the client may not be reading) and closes.
    pub async fn close(&mut self) {
        let timeouts = self.timeouts;
        self.timeouts.write = timeouts.write.min(Duration::from_secs(5));
        let _ = self.flush().await;
        if let Some(stream) = self.stream.as_mut() {
            let _ = tokio::time::timeout(Duration::from_secs(5), stream.shutdown()).await;
        }
        self.stream = None;
    }

    /// The raw stream, for protocols that bring their own framing (HTTP). Nothing may
    /// have been read through this connection yet.
    pub fn into_stream(mut self) -> Option<(MaybeTls, Option<Slot>)> {
        if !self.buffered().is_empty() {
            return None;
        }
        let slot = self._slot.take();
        self.stream.take().map(|s| (s, slot))
    }
}
