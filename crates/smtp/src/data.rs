//! Receiving a message after `354`: dot-unstuffed (RFC 5321 §4.5.2) and written to a
//! spool file as it arrives, so a client sending 50 MB costs the session a read buffer,
//! not 50 MB. The message ends at the line holding a single dot (RFC 5321 §4.1.1.4);
//! input after it stays buffered for the next command (RFC 2920 pipelining).

use std::time::Duration;

use postfach_blob::{BlobError, Spool, SpoolFile};
use postfach_net::{Conn, Ended};
use smtp_proto::request::receiver::DataReceiver;

/// What arrived.
#[derive(Debug)]
pub enum Received {
    Message(SpoolFile),
    /// More than the limit arrived; it was read to the end and thrown away.
    TooBig,
    /// More than twice the limit arrived: the rest is not read, the connection ends.
    FarTooBig,
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(transparent)]
    Ended(#[from] Ended),
    #[error("cannot spool the message: {0}")]
    Spool(#[from] BlobError),
}

/// Reads the message into `spool`; more than `max` bytes are read but not kept, and at
/// twice `max` reading stops (a client that sends without end is not read forever).
pub async fn receive(conn: &mut Conn, mut spool: Spool, max: u64, timeout: Duration) -> Result<Received, DataError> {
    let mut receiver = DataReceiver::new();
    // The receiver only recognises the final dot after a CRLF: start it as if one had just
    // been seen, so an empty message (a dot right away) ends too.
    let mut primer = Vec::new();
    receiver.ingest(&mut b"\r\n".iter(), &mut primer);
    let mut chunk = Vec::new();
    let mut too_big = false;
    let mut seen: u64 = 0;
    loop {
        let pending = conn.buffered();
        let mut iter = pending.iter();
        let done = receiver.ingest(&mut iter, &mut chunk);
        let used = pending.len() - iter.as_slice().len();
        conn.consume(used);
        seen += chunk.len() as u64;
        if !too_big {
            if seen > max {
                too_big = true;
            } else {
                spool.write(&chunk).await?;
            }
        } else if seen > max.saturating_mul(2) {
            return Ok(Received::FarTooBig);
        }
        chunk.clear();
        if done {
            return Ok(if too_big { Received::TooBig } else { Received::Message(spool.finish().await?) });
        }
        conn.fill(timeout).await?;
    }
}
