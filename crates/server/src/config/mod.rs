//! The typed configuration, read from one TOML file.
//!
//! The file is parsed into a `toml::Table` and walked by hand in one pass that collects
//! every problem (unknown keys, wrong types, invalid values) with its dotted key path, so an
//! operator sees all mistakes at once instead of fixing them one start at a time. Every
//! key is optional; a missing key keeps its built-in default. Relative paths resolve
//! against the folder of the config file. The operator reference is `docs/configuration.md`.
//!
//! This module holds the types, their defaults and the entry points; `read.rs` is the
//! validating pass over the TOML table.

mod read;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use postfach_types::{DomainName, NodeName};

use read::{parse, redact_url};

/// Where `postfach` looks for its configuration when no `--config` is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/postfach/postfach.toml";

/// The whole configuration of one Postfach server.
///
/// `Debug` redacts the password in [`Config::database`].
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// The name this server uses for itself (SMTP greeting, certificate). Default `localhost`.
    pub hostname: DomainName,
    /// Absolute folder for mail data, the self-signed certificate and the SQLite database.
    /// Default `/var/lib/postfach`.
    pub data_dir: PathBuf,
    /// Database URL: `sqlite:///absolute/path.sqlite` or `postgres://…` / `postgresql://…`.
    /// Default: the SQLite file `postfach.sqlite` in `data_dir`. May hold a password: log it
    /// only through [`Config::database_redacted`].
    pub database: String,
    /// Where the TLS certificate comes from.
    pub tls: TlsSource,
    /// The addresses each service listens on.
    pub listen: Listen,
    /// Login policy and throttling.
    pub security: Security,
    /// Size and count limits of the protocol servers.
    pub limits: Limits,
    /// How Postfach looks up DNS records (SPF, DKIM, DMARC, MX, ownership checks).
    pub dns: Dns,
    /// Outbound mail: the queue and delivery to other servers.
    pub outbound: Outbound,
    /// The SMTP servers' sender checks.
    pub smtp: Smtp,
    /// Spam filtering with rspamd (`[spam]`, `docs/spam.md`); `None`: off.
    pub spam: Option<Spam>,
    /// Load balancers in front of the listeners (the PROXY protocol).
    pub proxy: Proxy,
    /// Log output.
    pub log: Log,
    /// The Prometheus endpoint (`[metrics]`).
    pub metrics: Metrics,
    /// This node among several on one database (`[cluster]`).
    pub cluster: Cluster,
    /// Sieve filters of mailboxes (`[sieve]`).
    pub sieve: Sieve,
    /// Moving in from another IMAP server through the panel (`[import]`).
    pub import: Import,
    /// Where other servers send TLS reports about mail to hosted domains (`[tls_reports]`).
    pub tls_reports: TlsReports,
    /// Where message bytes are kept (`[blobs]`): files under `data_dir` (default) or an S3
    /// bucket shared by every node. `Debug` redacts the S3 secret.
    pub blobs: postfach_blob::Backend,
    /// Certificates from an ACME CA (`[acme]`); `None`: off.
    pub acme: Option<Acme>,
    /// The file this configuration was read from; `None` for built-in defaults or a string.
    pub config_file: Option<PathBuf>,
}

/// Certificates from an ACME certificate authority (`[acme]`, RFC 8555).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acme {
    /// The CA's directory URL (https).
    pub directory: String,
    /// The account's contact, a `mailto:` URL.
    pub contact: String,
    /// How the CA checks that a name points here.
    pub challenge: AcmeChallenge,
    /// A PEM certificate to trust for the CA's HTTPS (a private CA); `None`: the system's roots.
    pub ca_file: Option<PathBuf>,
}

/// The ACME challenge type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcmeChallenge {
    /// RFC 8737: answered on the HTTPS listener (port 443) with ALPN `acme-tls/1`.
    TlsAlpn01,
    /// RFC 8555 §8.3: answered on the plain HTTP listener (port 80).
    Http01,
}

/// The source of the server's TLS certificate (`[tls]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// No `[tls]` files: a self-signed certificate is created in `data_dir/tls` on first start.
    SelfSigned,
    /// PEM files: the certificate chain (leaf first) and its private key.
    Files { cert: PathBuf, key: PathBuf },
}

/// Listening addresses per service (`[listen]`). An empty list switches a service off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// Inbound MX, SMTP (RFC 5321). Default `[::]:25`.
    pub smtp: Vec<SocketAddr>,
    /// Submission with STARTTLS (RFC 6409). Default `[::]:587`.
    pub submission: Vec<SocketAddr>,
    /// Submission over implicit TLS (RFC 8314). Default `[::]:465`.
    pub submissions: Vec<SocketAddr>,
    /// IMAP with STARTTLS (RFC 9051). Default `[::]:143`.
    pub imap: Vec<SocketAddr>,
    /// IMAP over implicit TLS (RFC 8314). Default `[::]:993`.
    pub imaps: Vec<SocketAddr>,
    /// POP3 with STLS (RFC 1939, RFC 2595). Default `[::]:110`.
    pub pop3: Vec<SocketAddr>,
    /// POP3 over implicit TLS (RFC 8314). Default `[::]:995`.
    pub pop3s: Vec<SocketAddr>,
    /// ManageSieve with STARTTLS (RFC 5804): mail programs manage the mailbox's Sieve
    /// filters. Default `[::]:4190`.
    pub managesieve: Vec<SocketAddr>,
    /// Panel, API and autoconfig over HTTPS. Default `[::]:443`.
    pub https: Vec<SocketAddr>,
    /// Plain HTTP (redirects and ACME challenges). Default `[::]:80`.
    pub http: Vec<SocketAddr>,
}

/// The `[listen]` keys in order, with the port of their default address.
const SERVICES: [(&str, u16); 10] = [
    ("smtp", 25),
    ("submission", 587),
    ("submissions", 465),
    ("imap", 143),
    ("imaps", 993),
    ("pop3", 110),
    ("pop3s", 995),
    ("managesieve", 4190),
    ("https", 443),
    ("http", 80),
];

impl Listen {
    /// Every service as `(key, addresses)`, in the order of [`Listen`]'s fields.
    pub fn services(&self) -> [(&'static str, &[SocketAddr]); 10] {
        let Listen { smtp, submission, submissions, imap, imaps, pop3, pop3s, managesieve, https, http } = self;
        let lists = [smtp, submission, submissions, imap, imaps, pop3, pop3s, managesieve, https, http];
        std::array::from_fn(|i| (SERVICES[i].0, lists[i].as_slice()))
    }

    fn lists_mut(&mut self) -> [&mut Vec<SocketAddr>; 10] {
        let Listen { smtp, submission, submissions, imap, imaps, pop3, pop3s, managesieve, https, http } = self;
        [smtp, submission, submissions, imap, imaps, pop3, pop3s, managesieve, https, http]
    }
}

impl Default for Listen {
    fn default() -> Self {
        let mut listen = Listen {
            smtp: Vec::new(),
            submission: Vec::new(),
            submissions: Vec::new(),
            imap: Vec::new(),
            imaps: Vec::new(),
            pop3: Vec::new(),
            pop3s: Vec::new(),
            managesieve: Vec::new(),
            https: Vec::new(),
            http: Vec::new(),
        };
        for (list, (_, port)) in listen.lists_mut().into_iter().zip(SERVICES) {
            *list = vec![SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port)];
        }
        listen
    }
}

/// Login policy and throttling (`[security]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Security {
    /// Whether a password may be sent over an unencrypted connection at all. Default false.
    pub allow_plaintext_auth: bool,
    /// Whether Postfach writes warning mails (unencrypted or wrong-protocol logins, an
    /// exposed password, a locked login, the sending limit, broken DNS records) into the
    /// mailboxes and to the customers' contacts. Default true; each mailbox switches kinds.
    pub warning_mails: bool,
    /// Failed logins from one IP address within the window before further attempts from it
    /// are refused without checking the password. Default 10, at least 1.
    pub max_failures_per_ip: u32,
    /// Failed logins for one login name within the window before further attempts for it
    /// are refused without checking the password. Default 5, at least 1.
    pub max_failures_per_login: u32,
    /// Length of the sliding window that failures are counted in, in seconds. Default 900.
    pub failure_window_secs: u64,
    /// Days that the login log keeps each entry. Default 90.
    pub login_log_retention_days: u32,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            allow_plaintext_auth: false,
            warning_mails: true,
            max_failures_per_ip: 10,
            max_failures_per_login: 5,
            failure_window_secs: 900,
            login_log_retention_days: 90,
        }
    }
}

/// Size and count limits shared by the protocol servers (`[limits]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest message accepted by SMTP, submission and IMAP APPEND, in bytes.
    /// Default 52428800 (50 MiB), at least 1024.
    pub max_message_size: u64,
    /// Open connections per remote IP address and service. Default 20, at least 1.
    pub max_connections_per_ip: u32,
    /// Recipients per SMTP transaction. Default 100, at least 1.
    pub max_recipients: u32,
    /// Open connections per service (`imap` and `imaps` together, and so on). Default
    /// 2000, at least 1.
    pub max_connections_per_service: u32,
    /// Seconds a TLS handshake (implicit TLS or after STARTTLS) may take. Default 10, at
    /// least 1.
    pub handshake_timeout_secs: u64,
    /// Seconds an IMAP, POP3 or submission connection may wait before logging in. Default
    /// 60, at least 5. (The MX waits the 5 minutes RFC 5321 §4.5.3.2 asks for.)
    pub login_timeout_secs: u64,
    /// Bytes of message data all sessions together may hold in memory while checking and
    /// storing messages; messages arrive into spool files first. Default 268435456
    /// (256 MiB), at least four times `max_message_size`.
    pub message_memory: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 50 * 1024 * 1024,
            max_connections_per_ip: 20,
            max_recipients: 100,
            max_connections_per_service: 2000,
            handshake_timeout_secs: 10,
            login_timeout_secs: 60,
            message_memory: 256 * 1024 * 1024,
        }
    }
}

/// DNS lookups (`[dns]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dns {
    /// A recursive resolver to ask, like `127.0.0.1:53`. Default: none, which means the
    /// system's resolvers from `/etc/resolv.conf`. Tests point this at their own server.
    pub resolver: Option<SocketAddr>,
    /// The DNSSEC trust anchor for DANE (a file of root-zone DNSKEY records). Default:
    /// none, which means the IANA root keys built in. Tests point this at their own key.
    pub trust_anchor: Option<std::path::PathBuf>,
    /// The port the domain check fetches MTA-STS policy files from. Default 443; tests
    /// point it at their server's HTTPS listener.
    pub https_port: u16,
    /// Certificates (PEM) the domain check trusts when it fetches over HTTPS, instead of
    /// the system's roots. Default: none (the system's roots). For tests and private CAs.
    pub ca_file: Option<PathBuf>,
}

impl Default for Dns {
    fn default() -> Self {
        Dns { resolver: None, trust_anchor: None, https_port: 443, ca_file: None }
    }
}

/// The SMTP servers (`[smtp]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Smtp {
    /// What the inbound server does with mail whose MAIL FROM fails SPF, when DMARC and the
    /// anti-spoofing rule for hosted domains do not already decide. Default `tag`.
    pub spf_fail: SpfFail,
}

/// `[smtp] spf_fail`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SpfFail {
    /// Deliver it; `Authentication-Results:` records the failure.
    #[default]
    Tag,
    /// Refuse it at MAIL FROM (`550 5.7.23`).
    Reject,
}

/// Spam filtering with rspamd (`[spam]`): on when `rspamd` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spam {
    /// rspamd's normal worker, asked about every inbound MX message (`/checkv2`).
    pub rspamd: postfach_spam::Endpoint,
    /// rspamd's controller, taught from moves into and out of Junk; `None`: no learning.
    pub controller: Option<postfach_spam::Endpoint>,
    /// The controller's password, sent as its `Password:` header; `None`: none.
    pub password: Option<postfach_types::Secret<String>>,
    /// When rspamd cannot be asked: accept the message unchecked (default) or defer it.
    pub failure: SpamFailure,
    /// The whole exchange with rspamd, in seconds. Default 10, between 1 and 60.
    pub timeout_secs: u64,
    /// The score from which mail is refused, for customers who set none; `None`: never.
    /// Default 15 (rspamd's own reject score).
    pub reject_score: Option<postfach_types::SpamScore>,
    /// The score from which mail goes to Junk, for customers who set none; `None`:
    /// never. Default 6 (rspamd's own add-header score).
    pub junk_score: Option<postfach_types::SpamScore>,
}

/// `[spam] failure`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SpamFailure {
    /// Accept the message with `X-Spam-Status: unchecked` (fail open).
    #[default]
    Accept,
    /// Refuse it for now with `451 4.7.1`: the sender tries again later.
    Defer,
}

/// Load balancers in front of the listeners (`[proxy]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxy {
    /// The networks of the load balancers. A connection from one of them, on every
    /// listener, must begin with a PROXY protocol header (v1 or v2), and the client it
    /// names is the connection's client; no one else's header is believed. Default: none
    /// (every connection's peer is its client).
    pub trusted_networks: Vec<postfach_net::Network>,
}

/// The Prometheus endpoint (`[metrics]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Where `GET /metrics` is served, over plain HTTP and without authentication: a
    /// loopback or private address only. Default: none (off).
    pub listen: Vec<SocketAddr>,
}

/// Outbound mail (`[outbound]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// How long delivery of a message is retried before it is returned to its sender, in
    /// seconds. Default 432000 (5 days), at least 60.
    pub queue_lifetime_secs: u64,
    /// Messages each mailbox may send per hour (a burst of this many, refilled evenly).
    /// Default 500, at least 1.
    pub rate_limit_per_hour: u32,
    /// After how many seconds a message that is still not delivered gets the sender a
    /// delay warning. Default: none (no warning), at least 60.
    pub delay_warning_secs: Option<u64>,
    /// The port other mail servers are reached on. Default 25; tests point it at their own
    /// receiving server.
    pub smtp_port: u16,
    /// The addresses outbound mail leaves from. They make up the platform's SPF record, and
    /// each customer domain's published SPF is checked against every one. Default: none.
    pub ips: Vec<IpAddr>,
    /// Where the platform's SPF record is published; customer domains include it. `None`
    /// means `_spf.<hostname>` (see [`Config::spf_name`]).
    pub spf_name: Option<String>,
    /// CA certificates (PEM) trusted beside the system's where an outbound certificate is
    /// verified (MTA-STS policy fetches and hosts, REQUIRETLS): a private CA. Default: none.
    pub tls_ca_file: Option<PathBuf>,
    /// The port MTA-STS policies are fetched from. Default 443; tests use their own.
    pub mta_sts_port: u16,
}

impl Default for Outbound {
    fn default() -> Self {
        Outbound {
            queue_lifetime_secs: 432_000,
            rate_limit_per_hour: 500,
            delay_warning_secs: None,
            smtp_port: 25,
            ips: Vec::new(),
            spf_name: None,
            tls_ca_file: None,
            mta_sts_port: 443,
        }
    }
}

/// TLS reports received and sent (`[tls_reports]`, RFC 8460, docs/dns.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsReports {
    /// The platform's reporting address, named by every domain's `_smtp._tls` record.
    /// `None` means `tls-reports@<hostname>` (see [`Config::tls_report_address`]).
    pub address: Option<postfach_types::EmailAddress>,
    /// Send daily reports about this platform's deliveries to domains that ask for them
    /// (their `_smtp._tls` record). Default `true`.
    pub send: bool,
}

impl Default for TlsReports {
    fn default() -> Self {
        Self { address: None, send: true }
    }
}

/// Sieve filters (`[sieve]`, docs/sieve.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sieve {
    /// The most scripts one mailbox may have. Default 8.
    pub max_scripts: u32,
    /// The longest script, in bytes. Default 65536.
    pub max_script_bytes: usize,
    /// Where `redirect` may forward to. Default: the same customer's addresses only.
    pub redirect: SieveRedirect,
}

impl Default for Sieve {
    fn default() -> Self {
        let limits = postfach_admin::SieveLimits::default();
        Sieve {
            max_scripts: limits.max_scripts,
            max_script_bytes: limits.max_script_bytes,
            redirect: SieveRedirect::Customer,
        }
    }
}

impl Sieve {
    /// The limits every way of storing a script applies (panel, API, CLI, ManageSieve).
    pub fn limits(&self) -> postfach_admin::SieveLimits {
        postfach_admin::SieveLimits { max_scripts: self.max_scripts, max_script_bytes: self.max_script_bytes }
    }
}

/// Where a script's `redirect` may send a message (`[sieve] redirect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SieveRedirect {
    /// Only to addresses hosted here for the mailbox's own customer (`"customer"`): the
    /// product prefers aliases to forwarding.
    Customer,
    /// To any address (`"any"`).
    Any,
}

/// The panel's and the API's IMAP import jobs (`[import]`, docs/configuration.md).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Import {
    /// Whether customers may name old servers that resolve to loopback or private
    /// addresses (the server's own network). Default false.
    pub allow_private_targets: bool,
    /// Certificates trusted for old servers instead of the system's roots (a private CA,
    /// or a test's). Default: the system's roots.
    pub ca_file: Option<PathBuf>,
}

/// This node in a cluster of nodes sharing one database (`[cluster]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// The node's name: in every log line, the `Received:` fields it writes and its queue
    /// claims. Unique within the cluster. Default: the machine's host name (characters a
    /// node name cannot hold become `-`, cut to 63).
    pub node: NodeName,
}

impl Default for Cluster {
    fn default() -> Self {
        let host = rustix::system::uname();
        Cluster { node: NodeName::from_host_name(&host.nodename().to_string_lossy()) }
    }
}

/// Log output (`[log]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    /// Text for people or JSON lines for a log collector. Default text.
    pub format: LogFormat,
    /// A `tracing` filter directive such as `info` or `info,postfach_smtp=debug`. Default `info`.
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Log { format: LogFormat::Text, level: "info".to_string() }
    }
}

/// The format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: syntax error: {message}")]
    Syntax { path: String, message: String },
    #[error("{}", list_problems(path, problems))]
    Invalid { path: String, problems: Vec<Problem> },
}

/// One mistake in the configuration: the dotted key path and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Like `listen.imap[1]` or `security.max_failures_per_ip`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

fn list_problems(path: &str, problems: &[Problem]) -> String {
    let plural = if problems.len() == 1 { "" } else { "s" };
    let mut text = format!("{path}: {} problem{plural}:", problems.len());
    for problem in problems {
        text.push_str("\n  ");
        text.push_str(&problem.to_string());
    }
    text
}

impl Config {
    /// Reads the configuration. `Some(path)`: that file, which must exist. `None`:
    /// [`DEFAULT_CONFIG_PATH`] if it exists, else the built-in defaults.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let (path, required) = match path {
            Some(path) => (path, true),
            None => (Path::new(DEFAULT_CONFIG_PATH), false),
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::defaults()),
            Err(source) => return Err(ConfigError::Io { path: path.to_path_buf(), source }),
        };
        let file = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let base_dir = file.parent().unwrap_or(Path::new("/"));
        let mut config = parse(&text, base_dir, &path.display().to_string())?;
        config.config_file = Some(file);
        Ok(config)
    }

    /// Parses TOML text; relative paths resolve against `base_dir`. `config_file` is `None`.
    pub fn from_toml_str(text: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        parse(text, base_dir, "configuration")
    }

    /// The built-in defaults, used when there is no config file.
    pub fn defaults() -> Config {
        let data_dir = PathBuf::from("/var/lib/postfach");
        Config {
            hostname: DomainName::parse("localhost").expect("'localhost' is a valid domain name"),
            database: default_database(&data_dir),
            data_dir,
            tls: TlsSource::SelfSigned,
            listen: Listen::default(),
            security: Security::default(),
            limits: Limits::default(),
            dns: Dns::default(),
            outbound: Outbound::default(),
            smtp: Smtp::default(),
            spam: None,
            proxy: Proxy::default(),
            log: Log::default(),
            metrics: Metrics::default(),
            cluster: Cluster::default(),
            sieve: Sieve::default(),
            import: Import::default(),
            tls_reports: TlsReports::default(),
            blobs: postfach_blob::Backend::Fs,
            acme: None,
            config_file: None,
        }
    }

    /// The name of the platform's SPF record: `[outbound] spf_name`, or `_spf.<hostname>`.
    pub fn spf_name(&self) -> String {
        self.outbound.spf_name.clone().unwrap_or_else(|| format!("_spf.{}", self.hostname))
    }

    /// The platform's TLS reporting address: `[tls_reports] address`, or
    /// `tls-reports@<hostname>`; `None` when the hostname makes no address (`localhost`).
    pub fn tls_report_address(&self) -> Option<postfach_types::EmailAddress> {
        let default = || postfach_types::EmailAddress::parse(&format!("tls-reports@{}", self.hostname)).ok();
        self.tls_reports.address.clone().or_else(default)
    }

    /// The database URL with any password replaced by `****`, for logs and messages.
    pub fn database_redacted(&self) -> String {
        redact_url(&self.database)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::defaults()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("hostname", &self.hostname)
            .field("data_dir", &self.data_dir)
            .field("database", &self.database_redacted())
            .field("tls", &self.tls)
            .field("listen", &self.listen)
            .field("security", &self.security)
            .field("limits", &self.limits)
            .field("dns", &self.dns)
            .field("outbound", &self.outbound)
            .field("smtp", &self.smtp)
            .field("spam", &self.spam)
            .field("proxy", &self.proxy)
            .field("log", &self.log)
            .field("cluster", &self.cluster)
            .field("blobs", &self.blobs)
            .field("acme", &self.acme)
            .field("config_file", &self.config_file)
            .finish()
    }
}

fn default_database(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("postfach.sqlite").display())
}
