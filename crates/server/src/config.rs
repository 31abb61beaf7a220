//! The typed configuration, read from one TOML file.
//!
//! The file is parsed into a `toml::Table` and walked by hand in one pass that collects
//! every problem (unknown keys, wrong types, invalid values) with its dotted key path, so an
//! operator sees all mistakes at once instead of fixing them one start at a time. Every
//! key is optional; a missing key keeps its built-in default. Relative paths resolve
//! against the folder of the config file. The operator reference is `docs/configuration.md`.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use postfach_types::DomainName;
use toml::{Table, Value};

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
    /// Log output.
    pub log: Log,
    /// The file this configuration was read from; `None` for built-in defaults or a string.
    pub config_file: Option<PathBuf>,
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
    /// Panel, API and autoconfig over HTTPS. Default `[::]:443`.
    pub https: Vec<SocketAddr>,
    /// Plain HTTP (redirects and ACME challenges). Default `[::]:80`.
    pub http: Vec<SocketAddr>,
}

/// The `[listen]` keys in order, with the port of their default address.
const SERVICES: [(&str, u16); 9] = [
    ("smtp", 25),
    ("submission", 587),
    ("submissions", 465),
    ("imap", 143),
    ("imaps", 993),
    ("pop3", 110),
    ("pop3s", 995),
    ("https", 443),
    ("http", 80),
];

impl Listen {
    /// Every service as `(key, addresses)`, in the order of [`Listen`]'s fields.
    pub fn services(&self) -> [(&'static str, &[SocketAddr]); 9] {
        let Listen { smtp, submission, submissions, imap, imaps, pop3, pop3s, https, http } = self;
        let lists = [smtp, submission, submissions, imap, imaps, pop3, pop3s, https, http];
        std::array::from_fn(|i| (SERVICES[i].0, lists[i].as_slice()))
    }

    fn lists_mut(&mut self) -> [&mut Vec<SocketAddr>; 9] {
        let Listen { smtp, submission, submissions, imap, imaps, pop3, pop3s, https, http } = self;
        [smtp, submission, submissions, imap, imaps, pop3, pop3s, https, http]
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dns {
    /// A recursive resolver to ask, like `127.0.0.1:53`. Default: none, which means the
    /// system's resolvers from `/etc/resolv.conf`. Tests point this at their own server.
    pub resolver: Option<SocketAddr>,
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
        }
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
            log: Log::default(),
            config_file: None,
        }
    }

    /// The name of the platform's SPF record: `[outbound] spf_name`, or `_spf.<hostname>`.
    pub fn spf_name(&self) -> String {
        self.outbound.spf_name.clone().unwrap_or_else(|| format!("_spf.{}", self.hostname))
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
            .field("log", &self.log)
            .field("config_file", &self.config_file)
            .finish()
    }
}

fn default_database(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("postfach.sqlite").display())
}

/// The one validation pass: start from the defaults and overwrite what the file sets.
fn parse(text: &str, base_dir: &Path, label: &str) -> Result<Config, ConfigError> {
    let mut root: Table = text.parse().map_err(|e: toml::de::Error| ConfigError::Syntax {
        path: label.to_string(),
        message: syntax_message(text, &e),
    })?;
    let mut walk = Walk { base_dir, problems: Vec::new() };
    let mut config = Config::defaults();

    if let Some(hostname) = walk.parsed(&mut root, "", "hostname", |s| DomainName::parse(s).map_err(|e| e.to_string()))
    {
        config.hostname = hostname;
    }
    if let Some(data_dir) = walk.path(&mut root, "", "data_dir") {
        config.data_dir = data_dir;
    }
    config.database = walk
        .parsed(&mut root, "", "database", |url| parse_database(url, base_dir))
        .unwrap_or_else(|| default_database(&config.data_dir));

    let mut tls = walk.section(&mut root, "tls");
    let (has_cert, has_key) = (tls.contains_key("cert"), tls.contains_key("key"));
    let cert = walk.path(&mut tls, "tls", "cert");
    let key = walk.path(&mut tls, "tls", "key");
    if let (Some(cert), Some(key)) = (cert, key) {
        config.tls = TlsSource::Files { cert, key };
    } else if has_cert && !has_key {
        walk.problem(
            "tls.key",
            "missing: set it to the private key of tls.cert, or remove tls.cert to use a self-signed certificate",
        );
    } else if has_key && !has_cert {
        walk.problem(
            "tls.cert",
            "missing: set it to the certificate of tls.key, or remove tls.key to use a self-signed certificate",
        );
    }
    walk.unknown_keys(tls, "tls");

    let mut listen = walk.section(&mut root, "listen");
    for (list, (key, port)) in config.listen.lists_mut().into_iter().zip(SERVICES) {
        if let Some(addresses) = walk.addresses(&mut listen, key, port) {
            *list = addresses;
        }
    }
    walk.unknown_keys(listen, "listen");
    walk.check_shared_addresses(&config.listen);

    let mut security = walk.section(&mut root, "security");
    let s = &mut config.security;
    if let Some(allow) = walk.boolean(&mut security, "security", "allow_plaintext_auth") {
        s.allow_plaintext_auth = allow;
    }
    if let Some(n) = walk.number(&mut security, "security", "max_failures_per_ip", 1) {
        s.max_failures_per_ip = n;
    }
    if let Some(n) = walk.number(&mut security, "security", "max_failures_per_login", 1) {
        s.max_failures_per_login = n;
    }
    if let Some(n) = walk.number(&mut security, "security", "failure_window_secs", 1) {
        s.failure_window_secs = n;
    }
    if let Some(n) = walk.number(&mut security, "security", "login_log_retention_days", 1) {
        s.login_log_retention_days = n;
    }
    walk.unknown_keys(security, "security");

    let mut limits = walk.section(&mut root, "limits");
    let l = &mut config.limits;
    if let Some(n) = walk.number(&mut limits, "limits", "max_message_size", 1024) {
        l.max_message_size = n;
    }
    if let Some(n) = walk.number(&mut limits, "limits", "max_connections_per_ip", 1) {
        l.max_connections_per_ip = n;
    }
    if let Some(n) = walk.number(&mut limits, "limits", "max_recipients", 1) {
        l.max_recipients = n;
    }
    if let Some(n) = walk.number(&mut limits, "limits", "max_connections_per_service", 1) {
        l.max_connections_per_service = n;
    }
    if let Some(n) = walk.number(&mut limits, "limits", "handshake_timeout", 1) {
        l.handshake_timeout_secs = n;
    }
    if let Some(n) = walk.number(&mut limits, "limits", "login_timeout", 5) {
        l.login_timeout_secs = n;
    }
    if let Some(n) = walk.number(&mut limits, "limits", "message_memory", 1024) {
        l.message_memory = n;
    }
    // A message being checked holds up to four times its size (postfach_smtp::intake).
    let least = l.max_message_size.saturating_mul(postfach_smtp::RESERVE_FACTOR);
    if l.message_memory < least {
        walk.problem(
            "limits.message_memory".to_string(),
            format!("must be at least four times limits.max_message_size ({least} bytes)"),
        );
    }
    walk.unknown_keys(limits, "limits");

    let mut dns = walk.section(&mut root, "dns");
    if let Some(resolver) = walk.parsed(&mut dns, "dns", "resolver", |s| {
        s.parse::<SocketAddr>()
            .map_err(|_| format!("'{s}' is not a socket address like 127.0.0.1:53 or [2001:db8::53]:53"))
    }) {
        config.dns.resolver = Some(resolver);
    }
    walk.unknown_keys(dns, "dns");

    let mut outbound = walk.section(&mut root, "outbound");
    if let Some(items) =
        walk.take(&mut outbound, "outbound", "ips", "a list like [\"192.0.2.25\", \"2001:db8::25\"]", |v| match v {
            Value::Array(items) => Ok(items),
            other => Err(other),
        })
    {
        for (i, item) in items.into_iter().enumerate() {
            let path = format!("outbound.ips[{i}]");
            match item {
                Value::String(s) => match s.parse::<IpAddr>() {
                    Ok(ip) => config.outbound.ips.push(ip),
                    Err(_) => walk.problem(path, format!("'{s}' is not an IP address like 192.0.2.25 or 2001:db8::25")),
                },
                other => walk.problem(path, format!("expected a string, found {}", kind(&other))),
            }
        }
    }
    if let Some(name) = walk.parsed(&mut outbound, "outbound", "spf_name", parse_spf_name) {
        config.outbound.spf_name = Some(name);
    }

    let o = &mut config.outbound;
    if let Some(n) = walk.number(&mut outbound, "outbound", "queue_lifetime_secs", 60) {
        o.queue_lifetime_secs = n;
    }
    if let Some(n) = walk.number(&mut outbound, "outbound", "rate_limit_per_hour", 1) {
        o.rate_limit_per_hour = n;
    }
    if let Some(n) = walk.number(&mut outbound, "outbound", "delay_warning_secs", 60) {
        o.delay_warning_secs = Some(n);
    }
    if let Some(n) = walk.number(&mut outbound, "outbound", "smtp_port", 1) {
        o.smtp_port = n;
    }
    walk.unknown_keys(outbound, "outbound");

    let mut smtp = walk.section(&mut root, "smtp");
    if let Some(action) = walk.parsed(&mut smtp, "smtp", "spf_fail", |s| match s {
        "tag" => Ok(SpfFail::Tag),
        "reject" => Ok(SpfFail::Reject),
        other => Err(format!("'{other}' is not an SPF action: use \"tag\" or \"reject\"")),
    }) {
        config.smtp.spf_fail = action;
    }
    walk.unknown_keys(smtp, "smtp");

    let mut log = walk.section(&mut root, "log");
    if let Some(format) = walk.parsed(&mut log, "log", "format", |s| match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("'{other}' is not a log format: use \"text\" or \"json\"")),
    }) {
        config.log.format = format;
    }
    if let Some(level) = walk.parsed(&mut log, "log", "level", |s| match s.trim() {
        "" => Err("must not be empty: use a filter like \"info\" or \"info,postfach_smtp=debug\"".to_string()),
        level => Ok(level.to_string()),
    }) {
        config.log.level = level;
    }
    walk.unknown_keys(log, "log");

    walk.unknown_keys(root, "");
    if walk.problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid { path: label.to_string(), problems: walk.problems })
    }
}

/// Collects problems while the table is taken apart. Every `take`-like method removes its
/// key, so whatever is left in a table afterwards is unknown.
struct Walk<'a> {
    base_dir: &'a Path,
    problems: Vec<Problem>,
}

impl Walk<'_> {
    fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem { key: key.into(), message: message.into() });
    }

    /// Removes `key` from `table`; reports it if it is there but not of the expected type.
    fn take<T>(
        &mut self,
        table: &mut Table,
        prefix: &str,
        key: &str,
        expected: &str,
        convert: impl FnOnce(Value) -> Result<T, Value>,
    ) -> Option<T> {
        let value = table.remove(key)?;
        convert(value)
            .map_err(|other| self.problem(join(prefix, key), format!("expected {expected}, found {}", kind(&other))))
            .ok()
    }

    fn string(&mut self, table: &mut Table, prefix: &str, key: &str) -> Option<String> {
        self.take(table, prefix, key, "a string", |v| match v {
            Value::String(s) => Ok(s),
            other => Err(other),
        })
    }

    /// A string checked by `parse`; its error message is reported under the key.
    fn parsed<T>(
        &mut self,
        table: &mut Table,
        prefix: &str,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let text = self.string(table, prefix, key)?;
        parse(&text).map_err(|message| self.problem(join(prefix, key), message)).ok()
    }

    /// A non-empty path, made absolute against the config file's folder.
    fn path(&mut self, table: &mut Table, prefix: &str, key: &str) -> Option<PathBuf> {
        let base_dir = self.base_dir;
        self.parsed(table, prefix, key, |s| match s {
            "" => Err("must not be empty: name a file or folder".to_string()),
            s => Ok(resolve(base_dir, s)),
        })
    }

    fn boolean(&mut self, table: &mut Table, prefix: &str, key: &str) -> Option<bool> {
        self.take(table, prefix, key, "true or false", |v| match v {
            Value::Boolean(b) => Ok(b),
            other => Err(other),
        })
    }

    /// A whole number of at least `min` that fits `T`.
    fn number<T: TryFrom<i64> + PartialOrd + fmt::Display>(
        &mut self,
        table: &mut Table,
        prefix: &str,
        key: &str,
        min: T,
    ) -> Option<T> {
        let n = self.take(table, prefix, key, "a whole number", |v| match v {
            Value::Integer(n) => Ok(n),
            other => Err(other),
        })?;
        match T::try_from(n) {
            Ok(value) if value >= min => Some(value),
            Err(_) if n > 0 => {
                self.problem(join(prefix, key), format!("{n} is too large"));
                None
            }
            _ => {
                self.problem(join(prefix, key), format!("must be at least {min}, found {n}"));
                None
            }
        }
    }

    /// A top-level section; missing is an empty section.
    fn section(&mut self, root: &mut Table, key: &str) -> Table {
        self.take(root, "", key, &format!("a section [{key}]"), |v| match v {
            Value::Table(t) => Ok(t),
            other => Err(other),
        })
        .unwrap_or_default()
    }

    /// A `[listen]` list of socket addresses; every bad element is reported by its index.
    fn addresses(&mut self, listen: &mut Table, key: &str, port: u16) -> Option<Vec<SocketAddr>> {
        let expected = format!("a list like [\"[::]:{port}\"]");
        let items = self.take(listen, "listen", key, &expected, |v| match v {
            Value::Array(items) => Ok(items),
            other => Err(other),
        })?;
        let before = self.problems.len();
        let mut addresses = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let path = format!("listen.{key}[{i}]");
            match item {
                Value::String(s) => match s.parse() {
                    Ok(address) => addresses.push(address),
                    Err(_) => self
                        .problem(path, format!("'{s}' is not a socket address like [::]:{port} or 127.0.0.1:{port}")),
                },
                other => self.problem(path, format!("expected a string, found {}", kind(&other))),
            }
        }
        (self.problems.len() == before).then_some(addresses)
    }

    /// Two services cannot listen on the same address.
    fn check_shared_addresses(&mut self, listen: &Listen) {
        let mut seen: HashMap<SocketAddr, String> = HashMap::new();
        for (key, addresses) in listen.services() {
            // Port 0 lets the system pick a free port each time: never shared.
            for (i, address) in addresses.iter().enumerate().filter(|(_, a)| a.port() != 0) {
                let path = format!("listen.{key}[{i}]");
                if let Some(first) = seen.get(address) {
                    self.problem(path, format!("{address} is already used by {first}"));
                } else {
                    seen.insert(*address, path);
                }
            }
        }
    }

    /// Reports every key left in `table`.
    fn unknown_keys(&mut self, table: Table, prefix: &str) {
        for (key, value) in table {
            let what = if prefix.is_empty() && value.is_table() { "unknown section" } else { "unknown key" };
            self.problem(join(prefix, &key), what);
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") }
}

/// A value's type for messages: "found an integer".
fn kind(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a decimal number",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "a list",
        Value::Table(_) => "a table",
    }
}

/// `path` made absolute: relative paths are taken from `base_dir` (itself made absolute
/// against the working directory if needed).
fn resolve(base_dir: &Path, path: &str) -> PathBuf {
    let joined = base_dir.join(path);
    std::path::absolute(&joined).unwrap_or(joined)
}

/// A DNS name that may hold underscore labels (`_spf.mail.example.net`), lower-cased.
fn parse_spf_name(name: &str) -> Result<String, String> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let labels_ok = name.split('.').all(|l| {
        !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    });
    if labels_ok && name.len() <= 253 && name.contains('.') {
        Ok(name)
    } else {
        Err(format!("'{name}' is not a DNS name like _spf.mail.example.net"))
    }
}

/// Checks the database URL; a relative SQLite path is made absolute.
fn parse_database(url: &str, base_dir: &Path) -> Result<String, String> {
    if let Some(rest) = url.strip_prefix("sqlite://") {
        let (file, query) = match rest.split_once('?') {
            Some((file, query)) => (file, Some(query)),
            None => (rest, None),
        };
        if file.is_empty() {
            return Err(format!("'{url}' names no database file: use sqlite:///var/lib/postfach/postfach.sqlite"));
        }
        let mut absolute = format!("sqlite://{}", resolve(base_dir, file).display());
        if let Some(query) = query {
            absolute.push('?');
            absolute.push_str(query);
        }
        Ok(absolute)
    } else if ["postgres://", "postgresql://"].iter().any(|scheme| url.len() > scheme.len() && url.starts_with(scheme))
    {
        Ok(url.to_string())
    } else {
        Err(format!(
            "'{}' is not a supported database URL: use sqlite:///path/to/postfach.sqlite or postgres://user:password@host/database",
            redact_url(url)
        ))
    }
}

/// The URL with the password of its user info (`user:****@`) and any `password=` query
/// parameter replaced. When in doubt it hides too much rather than too little.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let mut rest = match rest.rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _password)) => format!("{user}:****{}", &rest[at..]),
            None => rest.to_string(),
        },
        None => rest.to_string(),
    };
    if let Some((head, query)) = rest.split_once('?') {
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if name.eq_ignore_ascii_case("password") => format!("{name}=****"),
                _ => pair.to_string(),
            })
            .collect();
        rest = format!("{head}?{}", query.join("&"));
    }
    format!("{scheme}://{rest}")
}

/// toml's message with the line and column, but without the source line it would quote:
/// that line could hold a database password.
fn syntax_message(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end();
    let Some(before) = error.span().and_then(|span| text.get(..span.start)) else {
        return message.to_string();
    };
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |s| s.chars().count()) + 1;
    format!("line {line}, column {column}: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Config {
        Config::from_toml_str(text, Path::new("/etc/postfach")).expect("valid configuration")
    }

    fn problems(text: &str) -> Vec<(String, String)> {
        match Config::from_toml_str(text, Path::new("/etc/postfach")) {
            Err(ConfigError::Invalid { problems, .. }) => problems.into_iter().map(|p| (p.key, p.message)).collect(),
            other => panic!("expected problems, got {other:?}"),
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }

    #[test]
    fn empty_text_gives_the_defaults() {
        let config = parse_ok("");
        assert_eq!(config, Config::defaults());
        assert_eq!(config.hostname.as_str(), "localhost");
        assert_eq!(config.data_dir, Path::new("/var/lib/postfach"));
        assert_eq!(config.database, "sqlite:///var/lib/postfach/postfach.sqlite");
        assert_eq!(config.tls, TlsSource::SelfSigned);
        assert_eq!(config.listen.smtp, [addr("[::]:25")]);
        assert_eq!(config.listen.submission, [addr("[::]:587")]);
        assert_eq!(config.listen.submissions, [addr("[::]:465")]);
        assert_eq!(config.listen.imap, [addr("[::]:143")]);
        assert_eq!(config.listen.imaps, [addr("[::]:993")]);
        assert_eq!(config.listen.pop3, [addr("[::]:110")]);
        assert_eq!(config.listen.pop3s, [addr("[::]:995")]);
        assert_eq!(config.listen.https, [addr("[::]:443")]);
        assert_eq!(config.listen.http, [addr("[::]:80")]);
        assert_eq!(config.security, Security::default());
        assert!(!config.security.allow_plaintext_auth);
        assert_eq!(config.log, Log { format: LogFormat::Text, level: "info".into() });
        assert_eq!(config.config_file, None);
    }

    #[test]
    fn every_key_is_read() {
        let config = parse_ok(
            r#"
            hostname = "Mail.Example.NET"
            data_dir = "/srv/postfach"
            database = "postgresql://postfach@db.internal/postfach"

            [tls]
            cert = "/etc/ssl/mail.pem"
            key = "/etc/ssl/mail.key"

            [listen]
            smtp = ["0.0.0.0:2525", "[::1]:2525"]
            submission = ["127.0.0.1:1587"]
            submissions = []
            imap = ["127.0.0.1:1143"]
            imaps = ["127.0.0.1:1993"]
            pop3 = ["127.0.0.1:1110"]
            pop3s = ["127.0.0.1:1995"]
            https = ["127.0.0.1:8443"]
            http = ["127.0.0.1:8080"]

            [security]
            allow_plaintext_auth = true
            max_failures_per_ip = 20
            max_failures_per_login = 3
            failure_window_secs = 600
            login_log_retention_days = 30

            [log]
            format = "json"
            level = "info,postfach_smtp=debug"
            "#,
        );
        assert_eq!(config.hostname.as_str(), "mail.example.net");
        assert_eq!(config.data_dir, Path::new("/srv/postfach"));
        assert_eq!(config.database, "postgresql://postfach@db.internal/postfach");
        assert_eq!(config.tls, TlsSource::Files { cert: "/etc/ssl/mail.pem".into(), key: "/etc/ssl/mail.key".into() });
        assert_eq!(config.listen.smtp, [addr("0.0.0.0:2525"), addr("[::1]:2525")]);
        assert_eq!(config.listen.submission, [addr("127.0.0.1:1587")]);
        assert!(config.listen.submissions.is_empty(), "an empty list switches the service off");
        assert_eq!(config.listen.imap, [addr("127.0.0.1:1143")]);
        assert_eq!(config.listen.imaps, [addr("127.0.0.1:1993")]);
        assert_eq!(config.listen.pop3, [addr("127.0.0.1:1110")]);
        assert_eq!(config.listen.pop3s, [addr("127.0.0.1:1995")]);
        assert_eq!(config.listen.https, [addr("127.0.0.1:8443")]);
        assert_eq!(config.listen.http, [addr("127.0.0.1:8080")]);
        assert_eq!(
            config.security,
            Security {
                allow_plaintext_auth: true,
                max_failures_per_ip: 20,
                max_failures_per_login: 3,
                failure_window_secs: 600,
                login_log_retention_days: 30,
            }
        );
        assert_eq!(config.log, Log { format: LogFormat::Json, level: "info,postfach_smtp=debug".into() });
    }

    #[test]
    fn relative_paths_resolve_against_the_config_folder() {
        let config = parse_ok(
            r#"
            data_dir = "data"
            [tls]
            cert = "tls/cert.pem"
            key = "./tls/key.pem"
            "#,
        );
        assert_eq!(config.data_dir, Path::new("/etc/postfach/data"));
        assert_eq!(config.database, "sqlite:///etc/postfach/data/postfach.sqlite", "default follows data_dir");
        assert_eq!(
            config.tls,
            TlsSource::Files { cert: "/etc/postfach/tls/cert.pem".into(), key: "/etc/postfach/tls/key.pem".into() }
        );
    }

    #[test]
    fn the_message_memory_holds_four_messages_being_checked() {
        let found = problems("[limits]\nmax_message_size = 10485760\nmessage_memory = 41943039\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "limits.message_memory");
        assert!(found[0].1.contains("four times"), "{found:?}");
        let ok = parse_ok("[limits]\nmax_message_size = 10485760\nmessage_memory = 41943040\n");
        assert_eq!(ok.limits.message_memory, 41_943_040);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let found = problems(
            r#"
            hostname = 42
            database = "mysql://root:hunter2@db/mail"
            colour = "blue"

            [listen]
            imap = ["[::]:143", "1.2.3.4", 7]
            imapp = ["[::]:1143"]
            pop3 = "[::]:110"

            [security]
            max_failures_per_ip = 0
            failure_window_secs = -5
            login_log_retention_days = 99999999999
            allow_plaintext_auth = "yes"

            [log]
            format = "xml"
            level = ""

            [metrics]
            port = 9100
            "#,
        );
        let expected = [
            ("hostname", "expected a string, found an integer"),
            (
                "database",
                "'mysql://root:****@db/mail' is not a supported database URL: use sqlite:///path/to/postfach.sqlite or postgres://user:password@host/database",
            ),
            ("listen.imap[1]", "'1.2.3.4' is not a socket address like [::]:143 or 127.0.0.1:143"),
            ("listen.imap[2]", "expected a string, found an integer"),
            ("listen.pop3", "expected a list like [\"[::]:110\"], found a string"),
            ("listen.imapp", "unknown key"),
            ("security.allow_plaintext_auth", "expected true or false, found a string"),
            ("security.max_failures_per_ip", "must be at least 1, found 0"),
            ("security.failure_window_secs", "must be at least 1, found -5"),
            ("security.login_log_retention_days", "99999999999 is too large"),
            ("log.format", "'xml' is not a log format: use \"text\" or \"json\""),
            ("log.level", "must not be empty: use a filter like \"info\" or \"info,postfach_smtp=debug\""),
            ("colour", "unknown key"),
            ("metrics", "unknown section"),
        ];
        let expected: Vec<(String, String)> = expected.iter().map(|(k, m)| (k.to_string(), m.to_string())).collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn invalid_display_lists_every_problem() {
        let error = Config::from_toml_str("hostname = \"a_b\"\n[listen]\nimapp = []\n", Path::new("/"))
            .expect_err("two problems");
        assert_eq!(
            error.to_string(),
            "configuration: 2 problems:\n  \
             hostname: 'a_b' is not a valid domain name: only letters, digits, hyphens and dots are allowed\n  \
             listen.imapp: unknown key"
        );
    }

    #[test]
    fn wrong_section_type_and_shared_addresses_are_reported() {
        assert_eq!(
            problems("tls = \"self-signed\"\n[listen]\nimap = [\"[::]:993\"]\n"),
            [
                ("tls".to_string(), "expected a section [tls], found a string".to_string()),
                ("listen.imaps[0]".to_string(), "[::]:993 is already used by listen.imap[0]".to_string()),
            ]
        );
    }

    #[test]
    fn tls_with_only_one_file_is_refused() {
        assert_eq!(
            problems("[tls]\ncert = \"cert.pem\"\n"),
            [(
                "tls.key".to_string(),
                "missing: set it to the private key of tls.cert, or remove tls.cert to use a self-signed certificate"
                    .to_string()
            )]
        );
        assert_eq!(problems("[tls]\nkey = \"key.pem\"\n")[0].0, "tls.cert");
    }

    #[test]
    fn relative_sqlite_url_is_made_absolute() {
        let config = parse_ok("database = \"sqlite://db/postfach.sqlite?mode=rwc\"");
        assert_eq!(config.database, "sqlite:///etc/postfach/db/postfach.sqlite?mode=rwc");
        let config = parse_ok("database = \"sqlite:///srv/mail.sqlite\"");
        assert_eq!(config.database, "sqlite:///srv/mail.sqlite");
        assert_eq!(problems("database = \"sqlite://\"")[0].0, "database");
    }

    #[test]
    fn postgres_url_passes_through_and_debug_hides_its_password() {
        let url = "postgres://postfach:s3cr3t-pw@db.example.net:5432/postfach?sslmode=require&password=other-pw";
        let config = parse_ok(&format!("database = \"{url}\""));
        assert_eq!(config.database, url);
        let debug = format!("{config:?}");
        assert!(!debug.contains("s3cr3t-pw") && !debug.contains("other-pw"), "{debug}");
        assert!(debug.contains("postgres://postfach:****@db.example.net:5432/postfach?sslmode=require&password=****"));
    }

    #[test]
    fn syntax_errors_name_line_and_column_without_quoting_the_line() {
        let error = Config::from_toml_str("hostname = \"a\"\ndatabase = \"postgres://u:pw@h/db\" x\n", Path::new("/"))
            .expect_err("syntax error");
        let ConfigError::Syntax { message, .. } = &error else { panic!("expected a syntax error: {error:?}") };
        assert!(message.starts_with("line 2, column "), "{message}");
        assert!(!error.to_string().contains("pw@"), "{error}");
    }

    #[test]
    fn the_documented_example_is_the_defaults() {
        let doc = include_str!("../../../docs/configuration.md");
        let example = doc
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("docs/configuration.md has a TOML example");
        assert_eq!(parse_ok(example), Config::defaults());
    }

    #[test]
    fn outbound_keys_are_read_and_checked() {
        let config = parse_ok(
            "[outbound]\nqueue_lifetime_secs = 3600\nrate_limit_per_hour = 20\ndelay_warning_secs = 600\nsmtp_port = 2525\n",
        );
        assert_eq!(
            config.outbound,
            Outbound {
                queue_lifetime_secs: 3600,
                rate_limit_per_hour: 20,
                delay_warning_secs: Some(600),
                smtp_port: 2525,
                ..Outbound::default()
            }
        );
        assert_eq!(Config::defaults().outbound.delay_warning_secs, None, "no delay warning unless asked for");
        assert_eq!(
            problems("[outbound]\nqueue_lifetime_secs = 5\nsmtp_port = 70000\nrate_limit_per_hour = 0\n"),
            [
                ("outbound.queue_lifetime_secs".to_string(), "must be at least 60, found 5".to_string()),
                ("outbound.rate_limit_per_hour".to_string(), "must be at least 1, found 0".to_string()),
                ("outbound.smtp_port".to_string(), "70000 is too large".to_string()),
            ]
        );
    }

    #[test]
    fn smtp_keys_are_read_and_checked() {
        assert_eq!(Config::defaults().smtp.spf_fail, SpfFail::Tag);
        assert_eq!(parse_ok("[smtp]\nspf_fail = \"reject\"\n").smtp.spf_fail, SpfFail::Reject);
        assert_eq!(
            problems("[smtp]\nspf_fail = \"drop\"\n"),
            [("smtp.spf_fail".to_string(), "'drop' is not an SPF action: use \"tag\" or \"reject\"".to_string())]
        );
    }

    #[test]
    fn load_reads_a_file_and_reports_a_missing_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("postfach.toml");
        std::fs::write(&file, "data_dir = \"data\"\n").expect("write config");
        let config = Config::load(Some(&file)).expect("valid file");
        assert_eq!(config.data_dir, dir.path().join("data"));
        assert_eq!(config.config_file.as_deref(), Some(file.as_path()));

        let missing = dir.path().join("missing.toml");
        let error = Config::load(Some(&missing)).expect_err("missing file");
        assert!(matches!(error, ConfigError::Io { .. }));
        assert!(error.to_string().contains(&missing.display().to_string()), "{error}");
    }

    #[test]
    fn outbound_ips_and_spf_name() {
        let config =
            parse_ok("hostname = \"mail.example.net\"\n[outbound]\nips = [\"192.0.2.25\", \"2001:db8::25\"]\n");
        assert_eq!(
            config.outbound.ips,
            ["192.0.2.25".parse::<IpAddr>().expect("ip"), "2001:db8::25".parse().expect("ip")]
        );
        assert_eq!(config.spf_name(), "_spf.mail.example.net", "the default follows the hostname");
        let config = parse_ok("[outbound]\nspf_name = \"_SPF.Example.NET.\"\n");
        assert_eq!(config.spf_name(), "_spf.example.net");
        assert_eq!(
            problems("[outbound]\nips = [\"192.0.2.300\", 7]\nspf_name = \"no spaces.example\"\nport = 1\n"),
            [
                (
                    "outbound.ips[0]".to_string(),
                    "'192.0.2.300' is not an IP address like 192.0.2.25 or 2001:db8::25".to_string()
                ),
                ("outbound.ips[1]".to_string(), "expected a string, found an integer".to_string()),
                (
                    "outbound.spf_name".to_string(),
                    "'no spaces.example' is not a DNS name like _spf.mail.example.net".to_string()
                ),
                ("outbound.port".to_string(), "unknown key".to_string()),
            ]
        );
    }
}
