//! Configuration, TLS material, listeners and the start/shutdown of a Postfach server.
//!
//! [`Server::start`] is what `postfach serve` runs and what end-to-end tests start
//! in-process: it prepares the data folder, the database and the TLS material, builds the
//! one [`Authenticator`], and runs the background upkeep. Protocol listeners are added here
//! as the protocol crates arrive; only this crate binds sockets.

mod acme;
pub mod config;
mod demo;
pub mod dns;
mod imap;
pub mod listeners;
pub mod logging;
mod managesieve;
mod metrics;
pub mod notify;
mod pop3;
mod smtp;
mod spam;
pub mod tls;
mod warnings;
mod web;

use std::sync::Arc;
use std::time::Duration;

use postfach_auth::{AuthSettings, Authenticator, PasswordHasher};
use postfach_blob::{BlobStore, Namespace};
use postfach_store::Store;
use postfach_store::delivery::DeliveryBatcher;
use postfach_types::UnixTime;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::listeners::{BindError, BoundAddresses};

pub use demo::{DemoAccount, create_demo, panel_url};

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

/// How often the upkeep task prunes the login log, the throttle state and the sending
/// allowances.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(600);

/// A running server.
#[derive(Debug)]
pub struct Server {
    store: Store,
    blobs: BlobStore,
    deliveries: DeliveryBatcher,
    outbound: postfach_outbound::Outbound,
    auth: Arc<Authenticator>,
    tls: tls::Tls,
    bound: BoundAddresses,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Server {
    pub async fn start(config: &Config) -> Result<Server, ServerError> {
        create_data_dir(config)?;
        let store = Store::open(&config.database).await?;
        let blobs = BlobStore::open(&config.blobs, &config.data_dir, Namespace::Mailboxes)?;
        let queue_spool = BlobStore::open(&config.blobs, &config.data_dir, Namespace::Queue)?;
        blobs.check().await?;
        let deliveries = DeliveryBatcher::start(store.clone());
        let budget = postfach_net::MemoryBudget::new(config.limits.message_memory);
        let tls = tls::server_tls(config)?;
        let auth =
            Arc::new(Authenticator::new(store.clone(), auth_settings(config), PasswordHasher::per_core()).await?);
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let (leader, election) = postfach_store::leader::elect(&store, stopped.clone());
        tasks.spawn(election);
        // Other nodes' message changes, for this node's IDLE sessions (PostgreSQL only).
        tasks.spawn(store.clone().relay_changes(stopped.clone()));
        let outbound = postfach_outbound::Outbound::new(
            store.clone(),
            blobs.clone(),
            queue_spool,
            deliveries.clone(),
            outbound_settings(config),
        );
        let upkeep = Upkeep {
            store: store.clone(),
            blobs: blobs.clone(),
            auth: auth.clone(),
            outbound: outbound.clone(),
            retention_days: config.security.login_log_retention_days,
        };
        tasks.spawn(upkeep.run(leader.clone(), stopped.clone()));
        tasks.spawn(outbound.clone().run(leader.clone(), stopped.clone()));
        match dns::checker(config) {
            Ok(checker) => {
                tasks.spawn(dns::periodic_checks(store.clone(), checker, leader.clone(), stopped.clone()));
            }
            Err(e) => tracing::warn!(error = %e, "the periodic DNS checks of the domains are off"),
        }
        // Each service registers its listeners with its protocol crate's handler.
        let shared = Shared {
            config,
            store: &store,
            blobs: &blobs,
            deliveries: &deliveries,
            auth: &auth,
            tls: &tls,
            outbound: &outbound,
            budget: &budget,
        };
        let mut bound = BoundAddresses::default();
        let mut reg = Registrar { tasks: &mut tasks, stopped: &stopped, bound: &mut bound };
        imap::serve(&shared, &mut reg).await?;
        pop3::serve(&shared, &mut reg).await?;
        managesieve::serve(&shared, &mut reg).await?;
        smtp::serve(&shared, &mut reg).await?;
        // The panel goes last: its autoconfiguration names the ports bound above.
        web::serve(&shared, &mut reg).await?;
        metrics::serve(&shared, &mut reg).await?;
        // Warning mails link to the panel at the port bound above.
        if config.security.warning_mails
            && let Some(events) = store.warnings().subscribe(warnings::CHANNEL_CAPACITY)
        {
            let mailer = warnings::Mailer {
                store: store.clone(),
                blobs: blobs.clone(),
                outbound: outbound.clone(),
                panel: warning_link_base(config, bound.first("https")),
                login_log_retention_days: config.security.login_log_retention_days,
            };
            tasks.spawn(warnings::run(mailer, events, stopped.clone()));
        }
        // Certificates last: ACME validation reaches the listeners bound above.
        tasks.spawn(acme::maintain(
            store.clone(),
            config.clone(),
            tls.certificates.clone(),
            dns::checker(config).ok(),
            leader.clone(),
            stopped.clone(),
        ));
        tracing::info!(
            hostname = %config.hostname,
            node = %config.cluster.node,
            data_dir = %config.data_dir.display(),
            "postfach started"
        );
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

    /// The mail listeners' TLS configuration.
    pub fn tls_config(&self) -> &Arc<rustls::ServerConfig> {
        &self.tls.mail
    }

    /// The certificate resolver every TLS listener uses.
    pub fn certificates(&self) -> &Arc<tls::Certificates> {
        &self.tls.certificates
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
    raise_open_file_limit();
    if let Some(problem) = postfach_dns::hostname_problem(&config.hostname) {
        tracing::warn!(hostname = %config.hostname, "{}", problem.en);
    }
    let notifier = Arc::new(notify::Notifier::from_env());
    // Caught from here on: a stop asked for while starting ends the server once started
    // (never a kill halfway, and never after READY=1 went out but before it is caught).
    let stop = StopSignals::install()?;
    let server = Server::start(config).await?;
    if demo {
        for account in create_demo(server.store(), server.authenticator().hasher()).await? {
            // Printed once on stdout, for the operator at the terminal; never logged.
            println!("{account}");
        }
        match panel_url(&config.hostname, server.addresses().first("https")) {
            Some(url) => println!("panel: {url}  (sign in with a demo login above)"),
            None => println!("panel: off ([listen] https is empty)"),
        }
    }
    notifier.ready();
    let (watchdog_stop, watchdog_stopped) = watch::channel(false);
    if let Some(every) = notifier.watchdog_interval() {
        tokio::spawn(watchdog(notifier.clone(), every, watchdog_stopped));
    }
    stop.wait().await;
    notifier.stopping();
    let _ = watchdog_stop.send(true);
    tracing::info!("stop signal received, shutting down");
    server.shutdown().await;
    Ok(())
}

/// Tells systemd every `every` that the runtime is alive: from a task on the server's
/// runtime, so a runtime that no longer runs tasks stops the pings.
async fn watchdog(notifier: Arc<notify::Notifier>, every: Duration, mut stopped: watch::Receiver<bool>) {
    loop {
        notifier.watchdog();
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// What the services are built from, made once in [`Server::start`].
#[derive(Clone, Copy)]
pub(crate) struct Shared<'a> {
    pub config: &'a Config,
    pub store: &'a Store,
    pub blobs: &'a BlobStore,
    pub deliveries: &'a DeliveryBatcher,
    pub auth: &'a Arc<Authenticator>,
    pub tls: &'a tls::Tls,
    pub outbound: &'a postfach_outbound::Outbound,
    pub budget: &'a postfach_net::MemoryBudget,
}

impl Shared<'_> {
    /// The connection counts one service's listeners share (`[limits]`).
    pub fn admission(&self) -> postfach_net::Admission {
        let l = &self.config.limits;
        postfach_net::Admission::new(l.max_connections_per_ip as usize, l.max_connections_per_service as usize)
    }

    /// A listener of `service` with the server's certificates and the `[limits]` timeouts.
    pub fn endpoint(
        &self,
        service: &'static str,
        security: postfach_net::Security,
        admission: &postfach_net::Admission,
    ) -> postfach_net::Endpoint {
        let tls = if service == "https" { &self.tls.https } else { &self.tls.mail };
        postfach_net::Endpoint {
            service,
            security,
            tls: Some(postfach_net::TlsAcceptor::new(tls.clone()).for_service(service)),
            admission: admission.clone(),
            timeouts: postfach_net::Timeouts {
                handshake: Duration::from_secs(self.config.limits.handshake_timeout_secs),
                ..postfach_net::Timeouts::default()
            },
            proxies: postfach_net::TrustedProxies::new(&self.config.proxy.trusted_networks),
        }
    }
}

/// Where services register their listeners: accept loops run in `tasks` until `stopped`.
pub(crate) struct Registrar<'a> {
    tasks: &'a mut JoinSet<()>,
    stopped: &'a watch::Receiver<bool>,
    bound: &'a mut BoundAddresses,
}

impl Registrar<'_> {
    /// Binds `addrs` for the endpoint's service and serves each connection with `protocol`.
    pub async fn listen(
        &mut self,
        addrs: &[std::net::SocketAddr],
        endpoint: postfach_net::Endpoint,
        protocol: Arc<dyn postfach_net::Protocol>,
    ) -> Result<(), BindError> {
        listeners::serve(addrs, endpoint, protocol, self.tasks, self.stopped, self.bound).await
    }

    /// The addresses bound so far.
    pub fn bound(&self) -> &BoundAddresses {
        self.bound
    }
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
        node: config.cluster.node.clone(),
        claims: postfach_outbound::ClaimTiming::default(),
        sieve_redirect: match config.sieve.redirect {
            config::SieveRedirect::Customer => postfach_filter::Redirect::Customer,
            config::SieveRedirect::Any => postfach_filter::Redirect::Any,
        },
        dnssec_trust_anchor: config.dns.trust_anchor.clone(),
        tls_roots: o.tls_ca_file.as_deref().map(outbound_tls_roots).transpose().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read [outbound] tls_ca_file; only the system's CA certificates are trusted");
            None
        }).unwrap_or_default(),
        mta_sts_port: o.mta_sts_port,
        tls_reports: config.tls_reports.send,
    }
}

/// The certificates of `[outbound] tls_ca_file` (PEM); at least one.
pub(crate) fn outbound_tls_roots(
    path: &std::path::Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let certificates = rustls::pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not a PEM certificate file: {e}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!("{} holds no certificate", path.display()));
    }
    Ok(certificates)
}

/// The panel's address in warning mails: the server's name and the first `https`
/// listener's port; `None` when the panel is off.
fn warning_link_base(config: &Config, https: Option<std::net::SocketAddr>) -> Option<String> {
    let port = https?.port();
    Some(match port {
        443 => format!("https://{}/", config.hostname),
        port => format!("https://{}:{port}/", config.hostname),
    })
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

/// The upkeep every [`UPKEEP_INTERVAL`]: what lives in the database once per cluster, on
/// the leader (message files nothing refers to, the login log's, the sent-mail list's and
/// the TLS reports' retention, the vacation replies older than any `:days` still asks about, once a day
/// the app passwords unused for long, yesterday's TLS reports to other domains, import
/// jobs whose node is gone); what lives in
/// this node's memory (the throttle's counters) on every node.
struct Upkeep {
    store: Store,
    blobs: BlobStore,
    auth: Arc<Authenticator>,
    outbound: postfach_outbound::Outbound,
    /// How long the login log is kept (`[security] login_log_retention_days`).
    retention_days: u32,
}

impl Upkeep {
    async fn run(self, mut leader: postfach_store::leader::Leader, mut stopped: watch::Receiver<bool>) {
        let Upkeep { store, blobs, auth, outbound, retention_days } = self;
        let mut unused_checked: Option<UnixTime> = None;
        loop {
            let leading = leader.is_leader();
            if leading {
                sweep_orphaned_blobs(&store, &blobs).await;
                // App passwords unused for long: once a day is enough (each is told once).
                let now = UnixTime::now();
                if unused_checked.is_none_or(|at| now.0 - at.0 >= 86_400) {
                    unused_checked = Some(now);
                    match store.tell_unused_app_passwords(now).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(mailboxes = n, "unused app passwords told"),
                        Err(e) => tracing::warn!(error = %e, "looking for unused app passwords failed"),
                    }
                }
                let cutoff = UnixTime(UnixTime::now().0 - i64::from(retention_days) * 86_400);
                match store.prune_logins(cutoff).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "pruned old login log entries"),
                    Err(e) => tracing::warn!(error = %e, "pruning the login log failed"),
                }
                // The sent-mail list is kept as long as the login list.
                match store.prune_sent_log(cutoff).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "pruned old sent-mail entries"),
                    Err(e) => tracing::warn!(error = %e, "pruning the sent-mail list failed"),
                }
                match store.forget_vacation_replies(postfach_filter::VACATION_MEMORY_DAYS).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(forgotten = n, "forgot old vacation replies"),
                    Err(e) => tracing::warn!(error = %e, "forgetting old vacation replies failed"),
                }
                // Yesterday's TLS reports about this platform's deliveries (RFC 8460, unless
                // `[tls_reports] send` is off): sent reports' counts are forgotten, so each
                // run sends only what is still due.
                let yesterday = postfach_store::tls_rpt_out::day_of(UnixTime::now().0) - 1;
                match outbound.send_tls_reports(yesterday).await {
                    0 => {}
                    n => tracing::info!(reports = n, "TLS reports sent"),
                }
                // Import jobs of a node that is gone (its lease ran out) stop blocking their mailboxes.
                match store.interrupt_abandoned_import_jobs(UnixTime::now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(jobs = n, "import jobs of a node that is gone marked interrupted"),
                    Err(e) => tracing::warn!(error = %e, "looking for abandoned import jobs failed"),
                }
                let retention = postfach_store::tls_reports::TLS_REPORT_RETENTION_SECS;
                match store.forget_tls_reports_before(UnixTime(UnixTime::now().0 - retention)).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "forgot old TLS reports"),
                    Err(e) => tracing::warn!(error = %e, "forgetting old TLS reports failed"),
                }
            }
            auth.sweep().await;
            outbound.sweep().await;
            // A node that becomes leader does the leader's part at once.
            tokio::select! {
                _ = tokio::time::sleep(UPKEEP_INTERVAL) => {}
                _ = leader.acquired(), if !leading => {}
                _ = stopped.changed() => return,
            }
        }
    }
}

/// How long the bytes of an expunged message stay readable: longer than an IMAP session
/// may sit without being told about the expunge (RFC 9051 §5.4 autologout: 30 minutes).
pub const EXPUNGE_GRACE: Duration = Duration::from_secs(3600);
/// How long expunged UIDs are remembered for QRESYNC (RFC 7162 §3.2.5).
pub const EXPUNGED_RETENTION: Duration = Duration::from_secs(90 * 86_400);

/// Removes message files nothing refers to: blobs whose last message went away more than
/// [`EXPUNGE_GRACE`] ago, and blob files older than an hour that no message ever took
/// (a commit that failed after the blob was written). Forgets old expunges.
async fn sweep_orphaned_blobs(store: &Store, blobs: &BlobStore) {
    let grace = i64::try_from(EXPUNGE_GRACE.as_secs()).unwrap_or(i64::MAX);
    let mut removed = 0;
    loop {
        let due = match store.due_orphans(UnixTime(UnixTime::now().0 - grace), 1000).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "listing orphaned blobs failed");
                break;
            }
        };
        if due.is_empty() {
            break;
        }
        for blob in &due {
            if let Err(e) = blobs.delete(blob).await {
                tracing::warn!(error = %e, "removing an orphaned blob failed");
            }
        }
        removed += due.len();
        if let Err(e) = store.forget_orphans(&due).await {
            tracing::warn!(error = %e, "forgetting removed orphans failed");
            break;
        }
    }
    match blobs.older_than(Duration::from_secs(3600)).await {
        Ok(candidates) => match store.sweepable_blobs(candidates).await {
            Ok(strays) => {
                for stray in &strays {
                    if let Err(e) = blobs.delete(stray).await {
                        tracing::warn!(error = %e, "removing a stray blob failed");
                    }
                }
                removed += strays.len();
            }
            Err(e) => tracing::warn!(error = %e, "checking blobs for the sweep failed"),
        },
        Err(e) => tracing::warn!(error = %e, "listing blobs for the sweep failed"),
    }
    if removed > 0 {
        tracing::info!(removed, "removed message files nothing refers to");
    }
    let retention = i64::try_from(EXPUNGED_RETENTION.as_secs()).unwrap_or(i64::MAX);
    if let Err(e) = store.prune_expunged(UnixTime(UnixTime::now().0 - retention)).await {
        tracing::warn!(error = %e, "pruning expunged UIDs failed");
    }
}

/// Raises the soft limit on open files to the hard limit: every connection holds a
/// descriptor, and the common default soft limit (1024) would let a few hundred idle
/// clients stop every service from accepting.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            tracing::info!(soft = ?limit.maximum, was = ?limit.current, "open-file limit raised to the hard limit")
        }
        Err(e) => tracing::warn!(error = %e, soft = ?limit.current, "cannot raise the open-file limit"),
    }
}

/// SIGTERM and SIGINT, caught from [`StopSignals::install`] on.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> Result<StopSignals, ServerError> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            term: signal(SignalKind::terminate()).map_err(ServerError::Signal)?,
            int: signal(SignalKind::interrupt()).map_err(ServerError::Signal)?,
        })
    }

    /// Returns at the first of them, also one that arrived before this call.
    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
