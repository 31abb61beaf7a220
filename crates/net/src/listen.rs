//! Accepting connections on a bound listener and handing them to a protocol: the one
//! place where admission, the PROXY header of a trusted load balancer, the implicit-TLS
//! handshake and the refusal of busy clients happen, for every service (SMTP,
//! submission, IMAP, POP3, the panel).
//!
//! Order for each accepted TCP connection: take a slot ([`Admission`]) *before* any
//! TLS work, so one address cannot hold more than its share of descriptors with silent
//! handshakes; on implicit-TLS listeners run the handshake under the handshake timeout;
//! then [`Protocol::serve`]. A client over a limit reads the protocol's busy reply and is
//! disconnected; on implicit-TLS listeners that reply needs a handshake, which only a
//! few busy clients at a time get (the rest are closed at once).
//!
//! A connection from a trusted load balancer ([`Endpoint::proxies`]) takes a slot of the
//! service's total at once; then its PROXY header is read, before anything is sent and
//! before TLS, under the handshake timeout, and the client it names is the connection's
//! peer from then on: the slot is charged to that client's address, and the protocol,
//! the throttle and the login log see only it. Without a valid header the connection is
//! closed without a byte sent (the reason is logged). No other peer's connection is ever
//! read for a header.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::admission::{Admission, Busy, Slot};
use crate::conn::{Conn, Timeouts};
use crate::proxy::{self, TrustedProxies};
use crate::stream::{MaybeTls, TlsAcceptor};

/// A protocol server as the listeners see it.
pub trait Protocol: Send + Sync + 'static {
    /// What a client over a connection limit reads before it is disconnected: a
    /// complete reply in the protocol's words (`421 …\r\n`, `* BYE …\r\n`, `-ERR …\r\n`).
    fn busy_reply(&self, why: Busy) -> Vec<u8>;

    /// Serves one admitted connection until it ends.
    fn serve(self: Arc<Self>, conn: Conn) -> BoxFuture<'static, ()>;
}

/// How a listener's connections start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plaintext; the protocol may offer STARTTLS (when TLS material is there).
    Plain,
    /// TLS from the first byte (RFC 8314).
    ImplicitTls,
}

/// One listener's settings.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The service name for logs (`imaps`, `submission`, …).
    pub service: &'static str,
    pub security: Security,
    /// The certificate for implicit TLS and STARTTLS; `None`: neither (tests only).
    pub tls: Option<TlsAcceptor>,
    /// Shared with the other listeners of the same service.
    pub admission: Admission,
    pub timeouts: Timeouts,
    /// The load balancers whose connections begin with a PROXY header naming the client;
    /// empty: none, every peer is the client itself.
    pub proxies: TrustedProxies,
}

/// Busy clients on implicit-TLS listeners that get a handshake to read why at once.
const BUSY_HANDSHAKES: usize = 16;

/// Accepts connections on `listener` until `stopped` changes; dropping out of the loop
/// ends every session it started.
pub async fn accept_loop(
    listener: TcpListener,
    endpoint: Endpoint,
    protocol: Arc<dyn Protocol>,
    mut stopped: watch::Receiver<bool>,
) {
    let endpoint = Arc::new(endpoint);
    let busy_handshakes = Arc::new(Semaphore::new(BUSY_HANDSHAKES));
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    postfach_metrics::connection(endpoint.service);
                    let peer = crate::peer::canonical(peer);
                    let proxied = endpoint.proxies.trusts(peer.ip());
                    let admitted = if proxied {
                        endpoint.admission.admit_unattributed()
                    } else {
                        endpoint.admission.admit(peer.ip())
                    };
                    let arrival = Arrival { tcp, peer, proxied };
                    match admitted {
                        Ok(slot) => {
                            let busy = busy_handshakes.clone();
                            sessions.spawn(start(endpoint.clone(), protocol.clone(), arrival, slot, busy));
                        }
                        Err(why) => {
                            tracing::info!(service = endpoint.service, remote = %peer, ?why, "connection limit reached");
                            if let Ok(permit) = busy_handshakes.clone().try_acquire_owned() {
                                let (endpoint, protocol) = (endpoint.clone(), protocol.clone());
                                sessions.spawn(async move {
                                    let Some((tcp, peer)) = arrival.client(&endpoint).await else { return };
                                    refuse(&endpoint, protocol.as_ref(), tcp, peer, why).await;
                                    drop(permit);
                                });
                            } else if endpoint.security == Security::Plain && !proxied {
                                // Say it without waiting for the client at all.
                                let _ = arrival.tcp.try_write(&protocol.busy_reply(why));
                            }
                        }
                    }
                }
                Err(e) => {
                    // Typically EMFILE: back off briefly instead of spinning.
                    tracing::warn!(service = endpoint.service, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            _ = stopped.changed() => return,
        }
    }
}

/// An accepted connection, before anything was read from it.
struct Arrival {
    tcp: TcpStream,
    /// The socket's peer (canonical).
    peer: SocketAddr,
    /// The peer is a trusted load balancer: a PROXY header comes first.
    proxied: bool,
}

impl Arrival {
    /// The connection and its client: the socket's peer, or the client a balancer's PROXY
    /// header names. `None` (logged) when a balancer sent no valid header in time: the
    /// connection is then closed without a byte sent that the balancer could pass on.
    async fn client(mut self, endpoint: &Endpoint) -> Option<(TcpStream, SocketAddr)> {
        if !self.proxied {
            return Some((self.tcp, self.peer));
        }
        match proxy::read_header(&mut self.tcp, endpoint.timeouts.handshake).await {
            Ok(header) => {
                let client = header.client(self.peer);
                tracing::debug!(service = endpoint.service, remote = %client, proxy = %self.peer, "PROXY header read");
                Some((self.tcp, client))
            }
            Err(error) => {
                tracing::info!(service = endpoint.service, proxy = %self.peer, %error, "connection from a trusted proxy closed");
                None
            }
        }
    }
}

async fn start(
    endpoint: Arc<Endpoint>,
    protocol: Arc<dyn Protocol>,
    arrival: Arrival,
    slot: Slot,
    busy_handshakes: Arc<Semaphore>,
) {
    let proxy = arrival.proxied.then_some(arrival.peer);
    let Some((tcp, peer)) = arrival.client(&endpoint).await else { return };
    let slot = match endpoint.admission.attribute(slot, peer.ip()) {
        Ok(slot) => slot,
        Err(why) => {
            tracing::info!(service = endpoint.service, remote = %peer, proxy = ?proxy, ?why, "connection limit reached");
            if let Ok(_permit) = busy_handshakes.try_acquire_owned() {
                refuse(&endpoint, protocol.as_ref(), tcp, peer, why).await;
            } else if endpoint.security == Security::Plain {
                let _ = tcp.try_write(&protocol.busy_reply(why));
            }
            return;
        }
    };
    let Some(stream) = open(&endpoint, tcp).await else { return };
    let starttls = match endpoint.security {
        Security::Plain => endpoint.tls.clone(),
        Security::ImplicitTls => None,
    };
    let conn = Conn::new(stream, peer, starttls, endpoint.timeouts, Some(slot));
    protocol.serve(conn).await;
}

/// The stream after the implicit-TLS handshake, if the listener has one.
async fn open(endpoint: &Endpoint, tcp: TcpStream) -> Option<MaybeTls> {
    match endpoint.security {
        Security::Plain => Some(MaybeTls::Plain(tcp)),
        Security::ImplicitTls => endpoint.tls.as_ref()?.accept(tcp, endpoint.timeouts.handshake).await.ok(),
    }
}

async fn refuse(endpoint: &Endpoint, protocol: &dyn Protocol, tcp: TcpStream, peer: SocketAddr, why: Busy) {
    let Some(stream) = open(endpoint, tcp).await else { return };
    let mut conn = Conn::new(stream, peer, None, endpoint.timeouts, None);
    conn.queue(&protocol.busy_reply(why));
    conn.close().await;
}
