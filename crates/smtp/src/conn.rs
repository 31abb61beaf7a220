//! The connection under a session: a read buffer for pipelined commands (RFC 2920), an
//! output buffer that is flushed before the session waits for the client, line and
//! message reading with limits and timeouts, and the STARTTLS upgrade that throws away
//! whatever plaintext was buffered (RFC 3207 §4.2).

use std::time::Duration;

use postfach_net::{MaybeTls, TlsAcceptor};
use smtp_proto::request::receiver::DataReceiver;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How a read ended without data.
#[derive(Debug)]
pub enum Ended {
    /// The client closed the connection (or it broke).
    Closed,
    /// Nothing arrived within the timeout.
    Timeout,
}

/// A line from the client, or the news that it was too long (and has been skipped).
#[derive(Debug)]
pub enum Line {
    Text(Vec<u8>),
    TooLong,
}

/// A message read after DATA.
#[derive(Debug)]
pub struct Data {
    pub bytes: Vec<u8>,
    /// More than the limit arrived; `bytes` is empty then.
    pub too_big: bool,
}

const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug)]
pub struct Conn {
    stream: Option<MaybeTls>,
    buf: Vec<u8>,
    pos: usize,
    out: Vec<u8>,
}

impl Conn {
    pub fn new(stream: MaybeTls) -> Self {
        Self { stream: Some(stream), buf: Vec::with_capacity(4096), pos: 0, out: Vec::with_capacity(1024) }
    }

    pub fn is_tls(&self) -> bool {
        self.stream.as_ref().is_some_and(MaybeTls::is_tls)
    }

    pub fn tls_info(&self) -> Option<postfach_types::TlsInfo> {
        self.stream.as_ref().and_then(MaybeTls::tls_info)
    }

    /// Queues a reply; it is sent before the session next waits for input.
    pub fn queue(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    pub async fn flush(&mut self) -> Result<(), Ended> {
        if self.out.is_empty() {
            return Ok(());
        }
        let stream = self.stream.as_mut().ok_or(Ended::Closed)?;
        stream.write_all(&self.out).await.map_err(|_| Ended::Closed)?;
        stream.flush().await.map_err(|_| Ended::Closed)?;
        self.out.clear();
        Ok(())
    }

    /// Reads more input; flushes pending replies first, because the client may be
    /// waiting for them.
    async fn fill(&mut self, timeout: Duration) -> Result<(), Ended> {
        self.flush().await?;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.reserve(READ_CHUNK);
        let stream = self.stream.as_mut().ok_or(Ended::Closed)?;
        match tokio::time::timeout(timeout, stream.read_buf(&mut self.buf)).await {
            Err(_) => Err(Ended::Timeout),
            Ok(Ok(0)) | Ok(Err(_)) => Err(Ended::Closed),
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// The next line including its LF. A line longer than `max` is skipped up to its end
    /// and reported as [`Line::TooLong`] (RFC 5321 §4.5.3.1.4, §4.2.2 reply 500).
    pub async fn read_line(&mut self, max: usize, timeout: Duration) -> Result<Line, Ended> {
        let mut skipping = false;
        loop {
            let pending = &self.buf[self.pos..];
            if let Some(i) = pending.iter().position(|&b| b == b'\n') {
                let line = pending[..=i].to_vec();
                self.pos += i + 1;
                return Ok(if skipping || line.len() > max { Line::TooLong } else { Line::Text(line) });
            }
            if pending.len() > max {
                skipping = true;
                self.pos = self.buf.len();
            }
            self.fill(timeout).await?;
        }
    }

    /// The message after `354`, dot-unstuffed, up to the line with a single dot
    /// (RFC 5321 §4.1.1.4, §4.5.2). Input after the dot stays buffered for the next
    /// command. More than `max` bytes are read to the end but not kept.
    pub async fn read_data(&mut self, max: usize, timeout: Duration) -> Result<Data, Ended> {
        let mut receiver = DataReceiver::new();
        // The receiver only recognises the final dot after a CRLF: start it as if one had
        // just been seen, so an empty message (a dot right away) ends too.
        let mut primer = Vec::new();
        receiver.ingest(&mut b"\r\n".iter(), &mut primer);
        let mut bytes = Vec::new();
        let mut too_big = false;
        loop {
            let pending = &self.buf[self.pos..];
            let mut iter = pending.iter();
            let done = receiver.ingest(&mut iter, &mut bytes);
            self.pos += pending.len() - iter.as_slice().len();
            if bytes.len() > max {
                too_big = true;
                bytes.clear();
            }
            if done {
                if too_big {
                    bytes.clear();
                }
                return Ok(Data { bytes, too_big });
            }
            self.fill(timeout).await?;
        }
    }

    /// STARTTLS: drops everything buffered and runs the handshake on the raw socket.
    pub async fn upgrade(&mut self, tls: &TlsAcceptor) -> Result<(), Ended> {
        self.flush().await?;
        self.buf.clear();
        self.pos = 0;
        let stream = self.stream.take().ok_or(Ended::Closed)?;
        let upgraded = tls.upgrade(stream).await.map_err(|_| Ended::Closed)?;
        self.stream = Some(upgraded);
        Ok(())
    }

    /// Sends what is pending and closes the connection.
    pub async fn close(&mut self) {
        let _ = self.flush().await;
        if let Some(stream) = self.stream.as_mut() {
            let _ = stream.shutdown().await;
        }
    }
}
