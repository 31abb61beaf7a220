//! The one validating pass over the configuration file: the TOML table is taken apart
//! key by key, starting from the defaults, and every problem is collected with its dotted
//! key path before anything is reported.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use postfach_blob::{Backend, S3Settings};
use postfach_types::{DomainName, NodeName, Secret};
use toml::{Table, Value};

use super::{
    Config, ConfigError, Listen, LogFormat, Problem, SERVICES, SieveRedirect, SpfFail, TlsSource, default_database,
};

/// The one validation pass: start from the defaults and overwrite what the file sets.
pub(super) fn parse(text: &str, base_dir: &Path, label: &str) -> Result<Config, ConfigError> {
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
    set(&mut config.data_dir, walk.path(&mut root, "", "data_dir"));
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
        if let Some(addresses) = walk.addresses(&mut listen, "listen", key, port) {
            *list = addresses;
        }
    }
    walk.unknown_keys(listen, "listen");
    walk.check_shared_addresses(&config.listen);

    let mut security = walk.section(&mut root, "security");
    let s = &mut config.security;
    set(&mut s.allow_plaintext_auth, walk.boolean(&mut security, "security", "allow_plaintext_auth"));
    set(&mut s.warning_mails, walk.boolean(&mut security, "security", "warning_mails"));
    set(&mut s.max_failures_per_ip, walk.number(&mut security, "security", "max_failures_per_ip", 1));
    set(&mut s.max_failures_per_login, walk.number(&mut security, "security", "max_failures_per_login", 1));
    set(&mut s.failure_window_secs, walk.number(&mut security, "security", "failure_window_secs", 1));
    set(&mut s.login_log_retention_days, walk.number(&mut security, "security", "login_log_retention_days", 1));
    walk.unknown_keys(security, "security");

    let mut limits = walk.section(&mut root, "limits");
    let l = &mut config.limits;
    set(&mut l.max_message_size, walk.number(&mut limits, "limits", "max_message_size", 1024));
    set(&mut l.max_connections_per_ip, walk.number(&mut limits, "limits", "max_connections_per_ip", 1));
    set(&mut l.max_recipients, walk.number(&mut limits, "limits", "max_recipients", 1));
    set(&mut l.max_connections_per_service, walk.number(&mut limits, "limits", "max_connections_per_service", 1));
    set(&mut l.handshake_timeout_secs, walk.number(&mut limits, "limits", "handshake_timeout", 1));
    set(&mut l.login_timeout_secs, walk.number(&mut limits, "limits", "login_timeout", 5));
    set(&mut l.message_memory, walk.number(&mut limits, "limits", "message_memory", 1024));
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
    if let Some(anchor) = walk.path(&mut dns, "dns", "trust_anchor") {
        match postfach_outbound::dane::read_trust_anchor(&anchor) {
            Ok(_) => config.dns.trust_anchor = Some(anchor),
            Err(e) => walk.problem("dns.trust_anchor", e),
        }
    }
    if let Some(port) = walk.number(&mut dns, "dns", "https_port", 1u16) {
        config.dns.https_port = port;
    }
    config.dns.ca_file = walk.path(&mut dns, "dns", "ca_file");
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
    set(&mut o.queue_lifetime_secs, walk.number(&mut outbound, "outbound", "queue_lifetime_secs", 60));
    set(&mut o.rate_limit_per_hour, walk.number(&mut outbound, "outbound", "rate_limit_per_hour", 1));
    if let Some(n) = walk.number(&mut outbound, "outbound", "delay_warning_secs", 60) {
        o.delay_warning_secs = Some(n);
    }
    set(&mut o.smtp_port, walk.number(&mut outbound, "outbound", "smtp_port", 1));
    set(&mut o.mta_sts_port, walk.number(&mut outbound, "outbound", "mta_sts_port", 1));
    if let Some(path) = walk.path(&mut outbound, "outbound", "tls_ca_file") {
        match crate::outbound_tls_roots(&path) {
            Ok(_) => config.outbound.tls_ca_file = Some(path),
            Err(e) => walk.problem("outbound.tls_ca_file", e),
        }
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

    let spam = walk.take(&mut root, "", "spam", "a section [spam]", |v| match v {
        Value::Table(t) => Ok(t),
        other => Err(other),
    });
    if let Some(spam) = spam {
        config.spam = walk.spam(spam);
    }

    let mut proxy = walk.section(&mut root, "proxy");
    if let Some(networks) = walk.networks(&mut proxy, "proxy", "trusted_networks") {
        config.proxy.trusted_networks = networks;
    }
    walk.unknown_keys(proxy, "proxy");

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

    let mut metrics = walk.section(&mut root, "metrics");
    if let Some(addresses) = walk.addresses(&mut metrics, "metrics", "listen", 9187) {
        config.metrics.listen = addresses;
    }
    walk.unknown_keys(metrics, "metrics");

    let mut cluster = walk.section(&mut root, "cluster");
    if let Some(node) = walk.parsed(&mut cluster, "cluster", "node", |s| {
        NodeName::parse(s).map_err(|e| format!("{e}; like \"mail-1\" (unique within the cluster)"))
    }) {
        config.cluster.node = node;
    }
    walk.unknown_keys(cluster, "cluster");

    let mut sieve = walk.section(&mut root, "sieve");
    set(&mut config.sieve.max_scripts, walk.number(&mut sieve, "sieve", "max_scripts", 1));
    set(&mut config.sieve.max_script_bytes, walk.number(&mut sieve, "sieve", "max_script_bytes", 256));
    let redirect = walk.parsed(&mut sieve, "sieve", "redirect", |s| match s {
        "customer" => Ok(SieveRedirect::Customer),
        "any" => Ok(SieveRedirect::Any),
        other => Err(format!("'{other}' is not a redirect policy: use \"customer\" or \"any\"")),
    });
    set(&mut config.sieve.redirect, redirect);
    walk.unknown_keys(sieve, "sieve");

    let mut import = walk.section(&mut root, "import");
    set(&mut config.import.allow_private_targets, walk.boolean(&mut import, "import", "allow_private_targets"));
    if let Some(ca_file) = walk.path(&mut import, "import", "ca_file") {
        config.import.ca_file = Some(ca_file);
    }
    walk.unknown_keys(import, "import");
    let mut tls_reports = walk.section(&mut root, "tls_reports");
    if let Some(address) = walk.parsed(&mut tls_reports, "tls_reports", "address", |s| {
        postfach_types::EmailAddress::parse(s)
            .map_err(|e| format!("{e}; like \"tls-reports@mail.example.net\" (mail to it must reach this server)"))
    }) {
        config.tls_reports.address = Some(address);
    }
    set(&mut config.tls_reports.send, walk.boolean(&mut tls_reports, "tls_reports", "send"));
    walk.unknown_keys(tls_reports, "tls_reports");
    let blobs = walk.section(&mut root, "blobs");
    if let Some(backend) = walk.blobs(blobs) {
        config.blobs = backend;
    }

    let acme = walk.take(&mut root, "", "acme", "a section [acme]", |v| match v {
        Value::Table(t) => Ok(t),
        other => Err(other),
    });
    if let Some(acme) = acme {
        config.acme = walk.acme(acme, &config.listen);
    }

    walk.unknown_keys(root, "");
    if walk.problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid { path: label.to_string(), problems: walk.problems })
    }
}

/// Overwrites a default with the value read, when there is one.
fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
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

    /// `[spam]`: on only when `rspamd` is set; every other key needs it.
    fn spam(&mut self, mut spam: Table) -> Option<super::Spam> {
        let endpoint = |s: &str| postfach_spam::Endpoint::parse(s);
        let has_rspamd = spam.contains_key("rspamd");
        let rspamd = self.parsed(&mut spam, "spam", "rspamd", endpoint);
        let controller = self.parsed(&mut spam, "spam", "controller", endpoint);
        let password = self.string(&mut spam, "spam", "password").map(Secret::new);
        let failure = self.parsed(&mut spam, "spam", "failure", |s| match s {
            "accept" => Ok(super::SpamFailure::Accept),
            "defer" => Ok(super::SpamFailure::Defer),
            other => Err(format!("'{other}' is not a failure mode: use \"accept\" or \"defer\"")),
        });
        let timeout_secs = self.number(&mut spam, "spam", "timeout_secs", 1u64);
        if timeout_secs.is_some_and(|t| t > 60) {
            self.problem(
                "spam.timeout_secs",
                "must be at most 60: a message waits for rspamd while the sender waits for us",
            );
        }
        let reject_score = self.score(&mut spam, "reject_score");
        let junk_score = self.score(&mut spam, "junk_score");
        self.unknown_keys(spam, "spam");
        if !has_rspamd {
            self.problem(
                "spam.rspamd",
                "missing: set it to rspamd's address, like \"http://127.0.0.1:11333\", or remove [spam]",
            );
        }
        let config = super::Spam {
            rspamd: rspamd?,
            controller,
            password,
            failure: failure.unwrap_or_default(),
            timeout_secs: timeout_secs.unwrap_or(10).min(60),
            reject_score: reject_score.unwrap_or(Some(postfach_types::SpamScore::from_hundredths(1500))),
            junk_score: junk_score.unwrap_or(Some(postfach_types::SpamScore::from_hundredths(600))),
        };
        if let (Some(reject), Some(junk)) = (config.reject_score, config.junk_score)
            && junk >= reject
        {
            self.problem(
                "spam.junk_score",
                "must be below spam.reject_score, or mail is refused before it could go to Junk",
            );
        }
        Some(config)
    }

    /// A spam score (a number) or `"none"` (never).
    fn score(&mut self, table: &mut Table, key: &str) -> Option<Option<postfach_types::SpamScore>> {
        let value = table.remove(key)?;
        let score = match &value {
            Value::Integer(n) => postfach_types::SpamScore::from_f64(*n as f64).map(Some),
            Value::Float(f) => postfach_types::SpamScore::from_f64(*f).map(Some),
            Value::String(s) if s == "none" => Some(None),
            _ => None,
        };
        if score.is_none() {
            self.problem(join("spam", key), format!("expected a score like 6.5 or \"none\", found {}", kind(&value)));
        }
        score
    }

    /// `[acme]`: `directory` and `contact` are required; the challenge's listener must be on.
    fn acme(&mut self, mut acme: Table, listen: &Listen) -> Option<super::Acme> {
        let directory = self.parsed(&mut acme, "acme", "directory", |s| {
            if s.starts_with("https://") && s.len() > "https://".len() {
                Ok(s.to_string())
            } else {
                Err(format!("'{s}' is not an https:// URL: use the CA's directory URL"))
            }
        });
        let contact = self.parsed(&mut acme, "acme", "contact", |s| match s.strip_prefix("mailto:") {
            Some(address) if address.contains('@') && !address.contains(char::is_whitespace) => Ok(s.to_string()),
            _ => Err(format!("'{s}' is not a contact like \"mailto:postmaster@example.com\"")),
        });
        let challenge = self
            .parsed(&mut acme, "acme", "challenge", |s| match s {
                "tls-alpn-01" => Ok(super::AcmeChallenge::TlsAlpn01),
                "http-01" => Ok(super::AcmeChallenge::Http01),
                other => Err(format!("'{other}' is not a challenge: use \"tls-alpn-01\" or \"http-01\"")),
            })
            .unwrap_or(super::AcmeChallenge::TlsAlpn01);
        let ca_file = self.path(&mut acme, "acme", "ca_file");
        self.unknown_keys(acme, "acme");
        let (needed, listener) = match challenge {
            super::AcmeChallenge::TlsAlpn01 => (&listen.https, "https"),
            super::AcmeChallenge::Http01 => (&listen.http, "http"),
        };
        if needed.is_empty() {
            self.problem(
                "acme.challenge",
                format!("needs the {listener} listener: set [listen] {listener} or choose the other challenge"),
            );
        }
        for (key, found) in [("acme.directory", directory.is_some()), ("acme.contact", contact.is_some())] {
            if !found && !self.problems.iter().any(|p| p.key == key) {
                self.problem(key, "missing: [acme] needs directory and contact");
            }
        }
        Some(super::Acme { directory: directory?, contact: contact?, challenge, ca_file })
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
    fn addresses(&mut self, listen: &mut Table, prefix: &str, key: &str, port: u16) -> Option<Vec<SocketAddr>> {
        let expected = format!("a list like [\"[::]:{port}\"]");
        let items = self.take(listen, prefix, key, &expected, |v| match v {
            Value::Array(items) => Ok(items),
            other => Err(other),
        })?;
        let before = self.problems.len();
        let mut addresses = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let path = format!("{prefix}.{key}[{i}]");
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

    /// A list of IP networks (`"192.0.2.0/24"`, `"2001:db8::/48"`, or a single address);
    /// every bad element is reported by its index.
    fn networks(&mut self, table: &mut Table, prefix: &str, key: &str) -> Option<Vec<postfach_net::Network>> {
        let items =
            self.take(table, prefix, key, "a list like [\"192.0.2.0/24\", \"2001:db8::/48\"]", |v| match v {
                Value::Array(items) => Ok(items),
                other => Err(other),
            })?;
        let before = self.problems.len();
        let mut networks = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let path = format!("{}[{i}]", join(prefix, key));
            match item {
                Value::String(s) => match s.parse::<postfach_net::Network>() {
                    Ok(network) => networks.push(network),
                    Err(e) => self.problem(path, e.to_string()),
                },
                other => self.problem(path, format!("expected a string, found {}", kind(&other))),
            }
        }
        (self.problems.len() == before).then_some(networks)
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

    /// `[blobs]`: `backend = "fs"` (the default) or `"s3"` with its bucket and key.
    fn blobs(&mut self, mut blobs: Table) -> Option<Backend> {
        const S3_KEYS: [&str; 6] =
            ["endpoint", "bucket", "region", "access_key_id", "secret_access_key", "secret_access_key_file"];
        let backend = self.parsed(&mut blobs, "blobs", "backend", |s| match s {
            "fs" | "s3" => Ok(s.to_string()),
            other => Err(format!("'{other}' is not a storage backend: use \"fs\" or \"s3\"")),
        });
        let backend = match backend.as_deref() {
            Some("s3") => self.s3(&mut blobs).map(Backend::S3),
            Some(_) | None => {
                for key in S3_KEYS {
                    if blobs.remove(key).is_some() {
                        self.problem(join("blobs", key), "only used with backend = \"s3\"");
                    }
                }
                Some(Backend::Fs)
            }
        };
        self.unknown_keys(blobs, "blobs");
        backend
    }

    /// The S3 keys of `[blobs]`: every one required, the secret given once, inline or as a
    /// file whose content (trimmed) is the secret.
    fn s3(&mut self, blobs: &mut Table) -> Option<S3Settings> {
        let mut required = |walk: &mut Self, key: &str, example: &str| {
            let value = walk.parsed(blobs, "blobs", key, |s| match s.trim() {
                "" => Err(format!("must not be empty: {example}")),
                s => Ok(s.to_string()),
            });
            if value.is_none() && !walk.problems.iter().any(|p| p.key == join("blobs", key)) {
                walk.problem(join("blobs", key), format!("missing: with backend = \"s3\" set it, {example}"));
            }
            value
        };
        let endpoint = required(self, "endpoint", "like \"https://s3.example.net\" or \"http://127.0.0.1:3900\"");
        let endpoint = endpoint.filter(|e| {
            let ok = (e.starts_with("https://") || e.starts_with("http://")) && !e.contains('@');
            if !ok {
                self.problem(
                    "blobs.endpoint",
                    "must be a URL like \"https://s3.example.net\" (http:// only for a store on this host or network), without credentials",
                );
            }
            ok
        });
        let bucket = required(self, "bucket", "the bucket's name, like \"postfach\"");
        let region = required(self, "region", "like \"garage\" or \"eu-central-1\"");
        let access_key_id = required(self, "access_key_id", "the key's id, like \"GK31c2f218a2e44f485b94239e\"");
        let inline = self.string(blobs, "blobs", "secret_access_key");
        let file = self.path(blobs, "blobs", "secret_access_key_file");
        let secret = match (inline, file) {
            (Some(_), Some(_)) => {
                self.problem(
                    "blobs.secret_access_key",
                    "set either secret_access_key or secret_access_key_file, not both",
                );
                None
            }
            (Some(secret), None) if secret.trim().is_empty() => {
                self.problem("blobs.secret_access_key", "must not be empty");
                None
            }
            (Some(secret), None) => Some(secret.trim().to_string()),
            (None, Some(file)) => match std::fs::read_to_string(&file) {
                Ok(secret) if !secret.trim().is_empty() => Some(secret.trim().to_string()),
                Ok(_) => {
                    self.problem("blobs.secret_access_key_file", format!("{} is empty", file.display()));
                    None
                }
                Err(e) => {
                    self.problem("blobs.secret_access_key_file", format!("cannot read {}: {e}", file.display()));
                    None
                }
            },
            (None, None) if self.problems.iter().any(|p| p.key.starts_with("blobs.secret_access_key")) => None,
            (None, None) => {
                self.problem(
                    "blobs.secret_access_key",
                    "missing: with backend = \"s3\" set secret_access_key, or secret_access_key_file naming a file that holds it",
                );
                None
            }
        };
        Some(S3Settings {
            endpoint: endpoint?,
            bucket: bucket?,
            region: region?,
            access_key_id: access_key_id?,
            secret_access_key: Secret::new(secret?),
        })
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
pub(super) fn redact_url(url: &str) -> String {
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
