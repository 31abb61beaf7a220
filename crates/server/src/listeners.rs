//! Binding the configured addresses: the only place that opens sockets. Each listener's
//! accept loop is `postfach_net::accept_loop`, the one connection layer (admission before
//! TLS, timed handshakes, refusal of busy clients).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use postfach_net::{Endpoint, Protocol};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

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

    /// The first address of a service; `None` when it is switched off.
    pub fn first(&self, service: &str) -> Option<SocketAddr> {
        self.get(service).first().copied()
    }
}

/// Binds every address of the endpoint's service and spawns its accept loops into `tasks`.
pub async fn serve(
    addrs: &[SocketAddr],
    endpoint: Endpoint,
    protocol: Arc<dyn Protocol>,
    tasks: &mut JoinSet<()>,
    stopped: &watch::Receiver<bool>,
    bound: &mut BoundAddresses,
) -> Result<(), BindError> {
    let service = endpoint.service;
    for &addr in addrs {
        let listener = TcpListener::bind(addr).await.map_err(|source| BindError { service, addr, source })?;
        let local = listener.local_addr().map_err(|source| BindError { service, addr, source })?;
        bound.0.entry(service).or_default().push(local);
        tracing::info!(service, addr = %local, "listening");
        tasks.spawn(postfach_net::accept_loop(listener, endpoint.clone(), protocol.clone(), stopped.clone()));
    }
    Ok(())
}
