//! Configuration, TLS material, listeners and the start/shutdown of a Postfach server.
//!
//! [`Server::start`] is what `postfach serve` runs and what end-to-end tests start
//! in-process: it prepares the data folder, the database and the TLS material, builds the
//! one [`Authenticator`], and runs the background upkeep. Protocol listeners are added here
//! as the protocol crates arrive; only this crate binds sockets.

pub mod config;
mod demo;
pub mod dns;
pub mod listeners;
pub mod logging;
mod smtp;
pub mod tls;
mod web;

use std::sync::Arc;
use std::time::Duration;

use postfach_auth::{AuthSettings, Authenticator, PasswordHasher};
use postfach_blob::BlobStore;
use postfach_store::Store;
use postfach_store::delivery::DeliveryBatcher;
use postfach_types::UnixTime;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::listeners::{BindError, BoundAddresses};

pub use demo::{DemoAccount, create_demo};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot create the data folder {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("cannot open the database: {0}")]
    Store(#[from] postfach_store::StoreError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot start the authentication service: {0}")]
    Auth(#[from] postfach_auth::AuthError),
    #[error("cannot set up the demo accounts: {0}")]
    Demo(#[from] postfach_auth::accounts::AccountError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("cannot open the message storage: {0}")]
    Blob(#[from] postfach_blob::BlobError),
    #[error(transparent)]
    Smtp(#[from] postfach_smtp::SmtpError),
    #[error("cannot wait for signals: {0}")]
    Signal(std::io::Error),
}

/// How often the upkeep task prunes the login log and the throttle state.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(600);

/// A running server.
#[derive(Debug)]
pub struct Server {
    store: Store,
    blobs: BlobStore,
    deliveries: DeliveryBatcher,
    outbound: postfach_outbound::Outbound,
    auth: Arc<Authenticator>,
    tls: Arc<rustls::ServerConfig>,
    bound: BoundAddresses,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Server {
    pub async fn start(config: &Config) -> Result<Server, ServerError> {
        create_data_dir(config)?;
        let store = Store::open(&config.database).await?;
        let blobs = BlobStore::open(&config.data_dir.join("blobs"))?;
        let deliveries = DeliveryBatcher::start(store.clone());
        let tls = tls::server_config(config)?;
        let auth =
            Arc::new(Authenticator::new(store.clone(), auth_settings(config), PasswordHasher::per_core()).await?);
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tasks.spawn(upkeep(
            store.clone(),
            blobs.clone(),
            auth.clone(),
            config.security.login_log_retention_days,
            stopped.clone(),
        ));
        let outbound = postfach_outbound::Outbound::new(
            store.clone(),
            blobs.clone(),
            BlobStore::open(&postfach_outbound::spool_dir(&config.data_dir))?,
            deliveries.clone(),
            outbound_settings(config),
        );
        tasks.spawn(outbound.clone().run(stopped.clone()));
        match dns::checker(config) {
            Ok(checker) => {
                tasks.spawn(dns::periodic_checks(store.clone(), checker, stopped.clone()));
            }
            Err(e) => tracing::warn!(error = %e, "the periodic DNS checks of the domains are off"),
        }
        let mut bound = BoundAddresses::default();
        // Protocol services register here, each with its handler from its protocol crate:
        // listeners::serve("imap", &config.listen.imap, limiter, handler, &mut tasks, &stopped, &mut bound).await?;
        serve_imap(config, &auth, &store, &blobs, &tls, &mut tasks, &stopped, &mut bound).await?;
        serve_pop3(config, &auth, &store, &blobs, &tls, &mut tasks, &stopped, &mut bound).await?;
        smtp::serve(config, &store, &blobs, &deliveries, &auth, &tls, &outbound, &mut tasks, &stopped, &mut bound)
            .await?;
        // The panel goes last: its autoconfiguration names the ports bound above.
        web::serve(config, &store, &auth, &tls, &mut tasks, &stopped, &mut bound).await?;
        tracing::info!(hostname = %config.hostname, data_dir = %config.data_dir.display(), "postfach started");
        Ok(Server { store, blobs, deliveries, outbound, auth, tls, bound, stop, tasks })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// Stores deliveries with group commit.
    pub fn deliveries(&self) -> &DeliveryBatcher {
        &self.deliveries
    }

    /// The outbound queue: submission hands accepted messages to it.
    pub fn outbound(&self) -> &postfach_outbound::Outbound {
        &self.outbound
    }

    pub fn authenticator(&self) -> &Arc<Authenticator> {
        &self.auth
    }

    pub fn tls_config(&self) -> &Arc<rustls::ServerConfig> {
        &self.tls
    }

    /// The addresses each service listens on, with the ports actually bound.
    pub fn addresses(&self) -> &BoundAddresses {
        &self.bound
    }

    /// Stops every task and closes the database.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
        self.store.close().await;
        tracing::info!("postfach stopped");
    }
}

/// `postfach serve`: start, optionally create the demo accounts, run until SIGTERM or
/// SIGINT, then shut down cleanly.
pub async fn run(config: &Config, demo: bool) -> Result<(), ServerError> {
    let server = Server::start(config).await?;
    if demo {
        for account in create_demo(server.store(), server.authenticator().hasher()).await? {
            // Printed once on stdout, for the operator at the terminal; never logged.
            println!("{account}");
        }
    }
    wait_for_stop_signal().await?;
    tracing::info!("stop signal received, shutting down");
    server.shutdown().await;
    Ok(())
}

/// The IMAP service (crate `postfach-imap`) on the `imap` (STARTTLS) and `imaps`
/// (implicit TLS) listeners, which share one per-address connection limit.
#[allow(clippy::too_many_arguments)]
async fn serve_imap(
    config: &Config,
    auth: &Arc<Authenticator>,
    store: &Store,
    blobs: &BlobStore,
    tls: &Arc<rustls::ServerConfig>,
    tasks: &mut JoinSet<()>,
    stopped: &watch::Receiver<bool>,
    bound: &mut BoundAddresses,
) -> Result<(), ServerError> {
    let imap = postfach_imap::ImapServer::new(
        store.clone(),
        blobs.clone(),
        auth.clone(),
        Some(tls.clone()),
        config.limits.max_message_size,
    );
    let limiter = postfach_net::ConnectionLimiter::new(config.limits.max_connections_per_ip as usize);
    for (service, addrs, implicit_tls) in [("imap", &config.listen.imap, false), ("imaps", &config.listen.imaps, true)]
    {
        let imap = imap.clone();
        let handler: listeners::Handler =
            Arc::new(move |tcp, peer, slot| Box::pin(imap.clone().serve(tcp, peer, slot, implicit_tls)));
        listeners::serve(service, addrs, limiter.clone(), handler, tasks, stopped, bound).await?;
    }
    Ok(())
}

/// The POP3 service (crate `postfach-pop3`) on the `pop3` (STLS) and `pop3s` (implicit
/// TLS) listeners, which share one per-address connection limit and one IN-USE lock.
#[allow(clippy::too_many_arguments)]
async fn serve_pop3(
    config: &Config,
    auth: &Arc<Authenticator>,
    store: &Store,
    blobs: &BlobStore,
    tls: &Arc<rustls::ServerConfig>,
    tasks: &mut JoinSet<()>,
    stopped: &watch::Receiver<bool>,
    bound: &mut BoundAddresses,
) -> Result<(), ServerError> {
    use postfach_pop3::{Pop3Server, Transport};
    let pop3 = Pop3Server::new(
        auth.clone(),
        store.clone(),
        blobs.clone(),
        postfach_net::TlsAcceptor::new(tls.clone()),
        config.hostname.to_string(),
        postfach_pop3::Limits::default(),
    );
    let limiter = postfach_net::ConnectionLimiter::new(config.limits.max_connections_per_ip as usize);
    let plain: listeners::Handler = Arc::new(pop3.handler(Transport::Starttls));
    listeners::serve("pop3", &config.listen.pop3, limiter.clone(), plain, tasks, stopped, bound).await?;
    let implicit: listeners::Handler = Arc::new(pop3.handler(Transport::ImplicitTls));
    listeners::serve("pop3s", &config.listen.pop3s, limiter, implicit, tasks, stopped, bound).await?;
    Ok(())
}

pub fn auth_settings(config: &Config) -> AuthSettings {
    AuthSettings {
        allow_plaintext_auth: config.security.allow_plaintext_auth,
        max_failures_per_ip: config.security.max_failures_per_ip,
        max_failures_per_login: config.security.max_failures_per_login,
        failure_window: Duration::from_secs(config.security.failure_window_secs),
    }
}

/// The outbound queue's settings from `[outbound]`, `[dns]` and `hostname`.
pub fn outbound_settings(config: &Config) -> postfach_outbound::OutboundSettings {
    let o = &config.outbound;
    postfach_outbound::OutboundSettings {
        hostname: config.hostname.clone(),
        resolver: config.dns.resolver,
        smtp_port: o.smtp_port,
        source_ips: o.ips.clone(),
        queue_lifetime: Duration::from_secs(o.queue_lifetime_secs),
        rate_limit_per_hour: o.rate_limit_per_hour,
        delay_warning: o.delay_warning_secs.map(Duration::from_secs),
    }
}

fn create_data_dir(config: &Config) -> Result<(), ServerError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = &config.data_dir;
    let err = |source| ServerError::DataDir { path: dir.display().to_string(), source };
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(err)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

async fn upkeep(
    store: Store,
    blobs: BlobStore,
    auth: Arc<Authenticator>,
    retention_days: u32,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        sweep_orphaned_blobs(&store, &blobs).await;
        let cutoff = UnixTime(UnixTime::now().0 - i64::from(retention_days) * 86_400);
        match store.prune_logins(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "pruned old login log entries"),
            Err(e) => tracing::warn!(error = %e, "pruning the login log failed"),
        }
        auth.sweep();
        tokio::select! {
            _ = tokio::time::sleep(UPKEEP_INTERVAL) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// Removes blobs that no message refers to: left by a commit that failed after the blob
/// was written, or by a removal whose file deletion did not happen. Only blobs older than
/// an hour are considered, so a delivery between blob write and commit is never touched.
async fn sweep_orphaned_blobs(store: &Store, blobs: &BlobStore) {
    let candidates = match blobs.older_than(Duration::from_secs(3600)).await {
        Ok(c) => c,
        Err(e) => return tracing::warn!(error = %e, "listing blobs for the sweep failed"),
    };
    let names = candidates.iter().map(|b| b.to_string()).collect();
    match store.unreferenced_blobs(names).await {
        Ok(orphans) => {
            for orphan in orphans.iter().filter_map(|o| postfach_blob::BlobId::parse(o).ok()) {
                if let Err(e) = blobs.delete(&orphan).await {
                    tracing::warn!(error = %e, "removing an orphaned blob failed");
                }
            }
            if !orphans.is_empty() {
                tracing::info!(removed = orphans.len(), "removed orphaned message files");
            }
        }
        Err(e) => tracing::warn!(error = %e, "checking blobs for the sweep failed"),
    }
}

async fn wait_for_stop_signal() -> Result<(), ServerError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(ServerError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServerError::Signal)?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
