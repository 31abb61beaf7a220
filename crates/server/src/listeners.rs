//! Binding the configured addresses and accepting connections: the only place that
//! opens sockets.
//!
//! Each service gets its listeners, one shared per-address connection limit, and a
//! handler from its protocol crate. The handler is also called for connections over the
//! limit (with no slot), so the protocol can refuse them in its own words.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use postfach_net::{ConnectionGuard, ConnectionLimiter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Serves one accepted connection. `slot` is `None` when the remote address already has
/// the maximum number of connections open: the protocol should say so and close.
pub type Handler = Arc<dyn Fn(TcpStream, SocketAddr, Option<ConnectionGuard>) -> BoxFuture<'static, ()> + Send + Sync>;

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} for {service}: {source}")]
pub struct BindError {
    pub service: &'static str,
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

/// The addresses each service actually listens on (port 0 in the config becomes the port
/// the system chose).
#[derive(Debug, Clone, Default)]
pub struct BoundAddresses(BTreeMap<&'static str, Vec<SocketAddr>>);

impl BoundAddresses {
    pub fn get(&self, service: &str) -> &[SocketAddr] {
        self.0.get(service).map_or(&[], Vec::as_slice)
    }

    /// The first address of a service; panics-free `None` when it is switched off.
    pub fn first(&self, service: &str) -> Option<SocketAddr> {
        self.get(service).first().copied()
    }
}

/// Binds every address of `service` and spawns its accept loops into `tasks`.
pub async fn serve(
    service: &'static str,
    addrs: &[SocketAddr],
    limiter: ConnectionLimiter,
    handler: Handler,
    tasks: &mut JoinSet<()>,
    stopped: &watch::Receiver<bool>,
    bound: &mut BoundAddresses,
) -> Result<(), BindError> {
    for &addr in addrs {
        let listener = TcpListener::bind(addr).await.map_err(|source| BindError { service, addr, source })?;
        let local = listener.local_addr().map_err(|source| BindError { service, addr, source })?;
        bound.0.entry(service).or_default().push(local);
        tracing::info!(service, addr = %local, "listening");
        tasks.spawn(accept_loop(service, listener, limiter.clone(), handler.clone(), stopped.clone()));
    }
    Ok(())
}

async fn accept_loop(
    service: &'static str,
    listener: TcpListener,
    limiter: ConnectionLimiter,
    handler: Handler,
    mut stopped: watch::Receiver<bool>,
) {
    // Sessions live in this set: when the server stops, dropping it ends them all.
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let slot = limiter.try_acquire(peer.ip());
                    if slot.is_none() {
                        tracing::info!(service, remote = %peer, "connection limit reached for this address");
                    }
                    sessions.spawn(handler(stream, peer, slot));
                }
                Err(e) => {
                    // Typically EMFILE: back off briefly instead of spinning.
                    tracing::warn!(service, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            _ = stopped.changed() => return,
        }
    }
}
