//! TLS material: the one place the server's TLS configuration is built, with the one
//! certificate resolver ([`Certificates`]) every TLS listener uses.
//!
//! With `[tls] cert` and `key` configured, those PEM files are loaded. Without them, a
//! self-signed certificate for the hostname is kept in `data_dir/tls` (key mode 0600,
//! each file written to a temporary name and renamed, key before certificate), valid for
//! [`SELF_SIGNED_VALIDITY_DAYS`] and replaced before it expires. ACME certificates
//! (`crate::acme`) are installed into the resolver as they are issued; SNI picks them. Only the aws-lc-rs crypto provider is used. Errors name the
//! file and say what to do; key material never appears in errors or logs.

use std::collections::HashMap;
use std::fs::{DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use postfach_types::UnixTime;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use crate::config::{Config, TlsSource};

/// Why no TLS configuration could be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS {what} {}: {source}. {hint}", path.display())]
    Read { what: &'static str, path: PathBuf, source: io::Error, hint: &'static str },
    #[error("the TLS {what} {} is not valid PEM: {source}. {hint}", path.display())]
    Pem { what: &'static str, path: PathBuf, source: pem::Error, hint: &'static str },
    #[error("the TLS {what} {} holds no {what} in PEM form. {hint}", path.display())]
    Empty { what: &'static str, path: PathBuf, hint: &'static str },
    #[error("the TLS certificate {} and key {} cannot be used together: {source}. {hint}", cert.display(), key.display())]
    Unusable { cert: PathBuf, key: PathBuf, source: Box<rustls::Error>, hint: &'static str },
    #[error("cannot create a self-signed TLS certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write {}: {source}. The data directory must be writable by the user postfach runs as", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
}

const FILES_HINT: &str = "Check [tls] cert and key in the configuration file";
const SELF_SIGNED_HINT: &str =
    "Delete cert.pem and key.pem in that folder to have a new self-signed certificate created";

/// Largest validity of the self-signed certificate: Apple's clients refuse server
/// certificates valid for more than 398 days; 90 days like the public CAs.
pub const SELF_SIGNED_VALIDITY_DAYS: i64 = 90;
/// A self-signed certificate is replaced when it expires within this many days.
pub const SELF_SIGNED_RENEW_DAYS: i64 = 30;

/// The server's TLS: one certificate resolver ([`Certificates`]) shared by two
/// configurations, one for the mail listeners and one for HTTPS (which also offers ALPN
/// `acme-tls/1` for ACME's tls-alpn-01 challenge). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Tls {
    pub certificates: Arc<Certificates>,
    /// SMTP STARTTLS, 465, IMAP(S), POP3(S).
    pub mail: Arc<rustls::ServerConfig>,
    /// The panel, API and autoconfig; tls-alpn-01 validation.
    pub https: Arc<rustls::ServerConfig>,
}

/// Loads the configured certificate, or creates (or renews) the self-signed one for the
/// hostname, and builds the server side of TLS with the aws-lc-rs provider.
pub fn server_tls(config: &Config) -> Result<Tls, TlsError> {
    let base = load_base(config)?;
    let certificates = Arc::new(Certificates::new(base));
    let mail = build_config(&certificates, Vec::new())?;
    let https = build_config(&certificates, vec![b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()])?;
    Ok(Tls { certificates, mail, https })
}

/// The mail listeners' configuration alone (tests, and callers that need no HTTPS).
pub fn server_config(config: &Config) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    Ok(server_tls(config)?.mail)
}

fn build_config(certificates: &Arc<Certificates>, alpn: Vec<Vec<u8>>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(certificates.clone());
    server_config.alpn_protocols = alpn;
    Ok(Arc::new(server_config))
}

/// The certificate used when no ACME certificate matches: the configured files, or the
/// self-signed one (created, or renewed when it expires within
/// [`SELF_SIGNED_RENEW_DAYS`] or is valid longer than Apple accepts).
fn load_base(config: &Config) -> Result<Arc<CertifiedKey>, TlsError> {
    let (cert, key, hint) = match &config.tls {
        TlsSource::Files { cert, key } => (cert.clone(), key.clone(), FILES_HINT),
        TlsSource::SelfSigned => {
            let (cert, key) = self_signed_paths(&config.data_dir);
            if self_signed_needs_renewal(&cert) {
                create_self_signed(config.hostname.as_str(), &cert, &key)?;
            }
            (cert, key, SELF_SIGNED_HINT)
        }
    };
    let chain = load_certificates(&cert, hint)?;
    let private_key = load_private_key(&key, hint)?;
    certified_key(chain, private_key).map_err(|source| TlsError::Unusable { cert, key, source: Box::new(source), hint })
}

/// Replaces the self-signed certificate when it is due (see [`load_base`]) and installs
/// it; does nothing for configured files. Run now and then by the server.
pub fn renew_self_signed(config: &Config, certificates: &Certificates) -> Result<bool, TlsError> {
    if config.tls != TlsSource::SelfSigned {
        return Ok(false);
    }
    let (cert, _) = self_signed_paths(&config.data_dir);
    if !self_signed_needs_renewal(&cert) {
        return Ok(false);
    }
    certificates.set_base(load_base(config)?);
    Ok(true)
}

fn self_signed_needs_renewal(cert: &Path) -> bool {
    let Ok(chain) = load_certificates(cert, SELF_SIGNED_HINT) else { return true };
    let Some((not_before, not_after)) = chain.first().and_then(|c| validity(c)) else { return true };
    let now = UnixTime::now().0;
    not_after - now < SELF_SIGNED_RENEW_DAYS * DAY || not_after - not_before > 398 * DAY
}

const DAY: i64 = 86_400;

/// A certificate's notBefore and notAfter as Unix times.
pub fn validity(cert: &CertificateDer<'_>) -> Option<(i64, i64)> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let v = parsed.validity();
    Some((v.not_before.timestamp(), v.not_after.timestamp()))
}

/// A certificate's issuer, as operators read it.
pub fn issuer(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    Some(parsed.issuer().to_string())
}

/// A chain and key made usable by rustls (the key is checked against the leaf).
pub fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<CertifiedKey>, rustls::Error> {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    Ok(Arc::new(CertifiedKey::from_der(chain, key, &provider)?))
}

/// A tls-alpn-01 challenge certificate and its key. Not checked like [`certified_key`]:
/// webpki refuses the critical acmeIdentifier extension the challenge needs.
pub fn challenge_key(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<CertifiedKey>, rustls::Error> {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let signing = provider.key_provider.load_private_key(key)?;
    Ok(Arc::new(CertifiedKey::new(vec![cert], signing)))
}

/// ALPN protocol of ACME's tls-alpn-01 challenge (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Which certificate a handshake gets: the one whose names include the client's SNI
/// (ACME certificates), else the hostname's. A handshake offering ALPN `acme-tls/1` gets
/// the challenge certificate for its SNI, or none. Swapped whole, without a restart.
#[derive(Debug)]
pub struct Certificates {
    table: RwLock<Arc<Table>>,
}

#[derive(Debug, Default, Clone)]
struct Table {
    base: Option<Arc<CertifiedKey>>,
    /// The ACME certificate for the hostname, which then replaces `base` as the default.
    hostname: Option<Arc<CertifiedKey>>,
    by_name: HashMap<String, Arc<CertifiedKey>>,
    challenges: HashMap<String, Arc<CertifiedKey>>,
}

impl Certificates {
    pub fn new(base: Arc<CertifiedKey>) -> Certificates {
        Certificates { table: RwLock::new(Arc::new(Table { base: Some(base), ..Table::default() })) }
    }

    fn current(&self) -> Arc<Table> {
        match self.table.read() {
            Ok(table) => table.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn update(&self, change: impl FnOnce(&mut Table)) {
        let mut guard = match self.table.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut table = (**guard).clone();
        change(&mut table);
        *guard = Arc::new(table);
    }

    fn set_base(&self, base: Arc<CertifiedKey>) {
        self.update(|t| t.base = Some(base));
    }

    /// Installs the ACME certificates: `(names, key)` per certificate; the one covering
    /// `hostname` becomes the default.
    pub fn set_issued(&self, hostname: &str, issued: Vec<(Vec<String>, Arc<CertifiedKey>)>) {
        let mut by_name = HashMap::new();
        let mut default = None;
        for (names, key) in issued {
            for name in names {
                if name == hostname {
                    default = Some(key.clone());
                }
                by_name.insert(name, key.clone());
            }
        }
        self.update(|t| {
            t.by_name = by_name;
            t.hostname = default;
        });
    }

    /// Installs the tls-alpn-01 challenge certificates, by DNS name.
    pub fn set_challenges(&self, challenges: HashMap<String, Arc<CertifiedKey>>) {
        self.update(|t| t.challenges = challenges);
    }

    /// The certificate a client asking for `name` (SNI) gets outside a challenge.
    pub fn for_name(&self, name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let table = self.current();
        let exact = name.and_then(|n| table.by_name.get(&n.trim_end_matches('.').to_ascii_lowercase()).cloned());
        exact.or_else(|| table.hostname.clone()).or_else(|| table.base.clone())
    }
}

impl rustls::server::ResolvesServerCert for Certificates {
    fn resolve(&self, hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let acme = hello.alpn().is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN));
        if acme {
            let name = hello.server_name()?.to_ascii_lowercase();
            return self.current().challenges.get(&name).cloned();
        }
        self.for_name(hello.server_name())
    }
}

/// Where the self-signed certificate and its key live: `data_dir/tls/cert.pem` and
/// `data_dir/tls/key.pem`.
pub fn self_signed_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// Creates a certificate for the hostname, `localhost`, 127.0.0.1 and ::1. The key is
/// written first, so a present `cert.pem` means both files are complete.
fn create_self_signed(hostname: &str, cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    let mut names = vec![hostname.to_string()];
    for name in ["localhost", "127.0.0.1", "::1"] {
        if name != hostname {
            names.push(name.to_string());
        }
    }
    let mut params = rcgen::CertificateParams::new(names)?;
    params.distinguished_name.push(rcgen::DnType::CommonName, hostname);
    // From yesterday (clocks differ) for SELF_SIGNED_VALIDITY_DAYS.
    let yesterday = UnixTime::now().0.div_euclid(DAY) - 1;
    let (y, m, d) = civil_date(yesterday);
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = civil_date(yesterday + SELF_SIGNED_VALIDITY_DAYS);
    params.not_after = rcgen::date_time_ymd(y, m, d);
    let key_pair = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key_pair)?;

    if let Some(dir) = cert_path.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| TlsError::Write { path: dir.to_path_buf(), source })?;
    }
    write_atomically(key_path, key_pair.serialize_pem().as_bytes(), 0o600)?;
    write_atomically(cert_path, cert.pem().as_bytes(), 0o644)?;
    tracing::info!(cert = %cert_path.display(), key = %key_path.display(), "created a self-signed TLS certificate");
    Ok(())
}

/// (year, month, day) of the `days`-th day after 1970-01-01, as rcgen takes it.
fn civil_date(days: i64) -> (i32, u8, u8) {
    let (year, month, day) = UnixTime(days.saturating_mul(DAY)).date();
    let narrow = |v: i64| u8::try_from(v).unwrap_or(1);
    (i32::try_from(year).unwrap_or(9999), narrow(month), narrow(day))
}

/// Writes `bytes` to a temporary file created with `mode`, syncs it and renames it to `path`.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let tmp = path.with_extension("pem.tmp");
    let write = || -> io::Result<()> {
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|source| TlsError::Write { path: path.to_path_buf(), source })
}

fn load_certificates(path: &Path, hint: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let what = "certificate";
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(e, what, path, hint))?;
    if chain.is_empty() {
        return Err(TlsError::Empty { what, path: path.to_path_buf(), hint });
    }
    Ok(chain)
}

fn load_private_key(path: &Path, hint: &'static str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(e, "private key", path, hint))
}

fn pem_error(error: pem::Error, what: &'static str, path: &Path, hint: &'static str) -> TlsError {
    let path = path.to_path_buf();
    match error {
        pem::Error::Io(source) => TlsError::Read { what, path, source, hint },
        pem::Error::NoItemsFound => TlsError::Empty { what, path, hint },
        source => TlsError::Pem { what, path, source, hint },
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use postfach_types::DomainName;
    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    fn config_in(data_dir: &Path) -> Config {
        Config {
            hostname: DomainName::parse("mail.example.test").expect("valid hostname"),
            data_dir: data_dir.to_path_buf(),
            ..Config::defaults()
        }
    }

    /// Connects a client that trusts only `cert_pem` and returns the negotiated version.
    async fn handshake(
        server: Arc<rustls::ServerConfig>,
        cert_pem: &Path,
        name: &str,
    ) -> Option<rustls::ProtocolVersion> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("local address");
        let acceptor = tokio_rustls::TlsAcceptor::from(server);
        let server_side = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.expect("accept");
            let mut tls = acceptor.accept(tcp).await.expect("server handshake");
            tls.write_all(b"hello\n").await.expect("server write");
            tls.shutdown().await.expect("server shutdown");
        });

        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(cert_pem).expect("open cert.pem") {
            roots.add(cert.expect("certificate")).expect("add root");
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let tcp = TcpStream::connect(address).await.expect("connect");
        let name = ServerName::try_from(name.to_string()).expect("server name");
        let mut tls = connector.connect(name, tcp).await.expect("client handshake");
        let mut greeting = String::new();
        tls.read_to_string(&mut greeting).await.expect("client read");
        assert_eq!(greeting, "hello\n");
        server_side.await.expect("server task");
        tls.get_ref().1.protocol_version()
    }

    #[test]
    fn first_start_creates_the_files_and_later_starts_reuse_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = config_in(dir.path());
        let (cert, key) = self_signed_paths(dir.path());
        assert_eq!(cert, dir.path().join("tls/cert.pem"));
        assert_eq!(key, dir.path().join("tls/key.pem"));

        server_config(&config).expect("first start");
        let first = std::fs::read(&cert).expect("cert.pem was created");
        let first_key = std::fs::read(&key).expect("key.pem was created");
        server_config(&config).expect("second start");
        assert_eq!(std::fs::read(&cert).expect("cert.pem"), first, "the certificate is reused");
        assert_eq!(std::fs::read(&key).expect("key.pem"), first_key, "the key is reused");

        let mode = std::fs::metadata(&key).expect("key metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("tls")).expect("tls dir").collect();
        assert_eq!(leftovers.len(), 2, "no temporary files are left behind");
    }

    #[tokio::test]
    async fn self_signed_certificate_completes_a_tls13_handshake() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = config_in(dir.path());
        let (cert, _) = self_signed_paths(dir.path());
        for name in ["localhost", "mail.example.test", "127.0.0.1", "::1"] {
            if name == "::1" && TcpListener::bind("[::1]:0").await.is_err() {
                continue;
            }
            let server = server_config(&config).expect("server config");
            let version = handshake(server, &cert, name).await;
            assert_eq!(version, Some(rustls::ProtocolVersion::TLSv1_3), "{name}");
        }
    }

    #[tokio::test]
    async fn configured_files_are_loaded() {
        let generated = tempfile::tempdir().expect("temp dir");
        server_config(&config_in(generated.path())).expect("create a pair to configure");
        let (cert, key) = self_signed_paths(generated.path());
        let empty = tempfile::tempdir().expect("temp dir");
        let config = Config { tls: TlsSource::Files { cert: cert.clone(), key }, ..config_in(empty.path()) };
        let server = server_config(&config).expect("configured files");
        assert_eq!(handshake(server, &cert, "localhost").await, Some(rustls::ProtocolVersion::TLSv1_3));
        assert!(!empty.path().join("tls").exists(), "nothing is created when files are configured");
    }

    #[test]
    fn missing_configured_files_name_the_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cert = dir.path().join("missing-cert.pem");
        let key = dir.path().join("missing-key.pem");
        let config = Config { tls: TlsSource::Files { cert: cert.clone(), key }, ..config_in(dir.path()) };
        let error = server_config(&config).expect_err("missing files");
        assert!(matches!(error, TlsError::Read { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains(&cert.display().to_string()), "{message}");
        assert!(message.contains("[tls] cert and key"), "{message}");
    }

    #[test]
    fn a_key_that_does_not_match_the_certificate_is_refused() {
        let (a, b) = (tempfile::tempdir().expect("temp dir"), tempfile::tempdir().expect("temp dir"));
        server_config(&config_in(a.path())).expect("pair a");
        server_config(&config_in(b.path())).expect("pair b");
        let (cert, _) = self_signed_paths(a.path());
        let (_, key) = self_signed_paths(b.path());
        let config = Config { tls: TlsSource::Files { cert, key }, ..config_in(a.path()) };
        let error = server_config(&config).expect_err("mismatched pair");
        assert!(matches!(error, TlsError::Unusable { .. }), "{error:?}");
    }

    #[test]
    fn a_file_without_pem_blocks_is_reported() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, "not a certificate\n").expect("write");
        let config =
            Config { tls: TlsSource::Files { cert: cert.clone(), key: cert.clone() }, ..config_in(dir.path()) };
        let error = server_config(&config).expect_err("no PEM");
        assert!(matches!(error, TlsError::Empty { what: "certificate", .. }), "{error:?}");
        assert!(error.to_string().contains(&cert.display().to_string()));
    }

    fn leaf_validity(cert: &Path) -> (i64, i64) {
        let chain = load_certificates(cert, SELF_SIGNED_HINT).expect("certificate");
        validity(&chain[0]).expect("validity")
    }

    #[test]
    fn the_self_signed_certificate_is_valid_for_what_apple_accepts_from_about_now() {
        let dir = tempfile::tempdir().expect("temp dir");
        server_tls(&config_in(dir.path())).expect("first start");
        let (not_before, not_after) = leaf_validity(&self_signed_paths(dir.path()).0);
        assert!(not_after - not_before <= 398 * DAY, "valid for {} days", (not_after - not_before) / DAY);
        let now = UnixTime::now().0;
        assert!(now - 2 * DAY <= not_before && not_before <= now, "notBefore {not_before} is not recent");
        assert!(not_after - now > SELF_SIGNED_RENEW_DAYS * DAY, "not due for renewal at once");
    }

    #[test]
    fn a_long_lived_self_signed_certificate_from_an_older_version_is_replaced() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key) = self_signed_paths(dir.path());
        // What older versions made: rcgen's default validity, 1975 to 4096.
        let params = rcgen::CertificateParams::new(vec!["mail.example.test".to_string()]).expect("params");
        let pair = rcgen::KeyPair::generate().expect("key");
        let old = params.self_signed(&pair).expect("certificate");
        std::fs::create_dir_all(dir.path().join("tls")).expect("tls dir");
        write_atomically(&key, pair.serialize_pem().as_bytes(), 0o600).expect("key");
        write_atomically(&cert, old.pem().as_bytes(), 0o644).expect("cert");
        assert!(leaf_validity(&cert).1 - leaf_validity(&cert).0 > 398 * DAY);

        let tls = server_tls(&config_in(dir.path())).expect("start");
        let (not_before, not_after) = leaf_validity(&cert);
        assert!(not_after - not_before <= 398 * DAY);
        let served = tls.certificates.for_name(Some("mail.example.test")).expect("a certificate");
        assert_eq!(served.cert[0], load_certificates(&cert, SELF_SIGNED_HINT).expect("cert")[0]);
    }

    #[test]
    fn a_self_signed_certificate_near_expiry_is_renewed_in_place() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = config_in(dir.path());
        let tls = server_tls(&config).expect("start");
        assert!(!renew_self_signed(&config, &tls.certificates).expect("check"), "a fresh certificate stays");
        // One that expires in ten days.
        let (cert, key) = self_signed_paths(dir.path());
        let mut params = rcgen::CertificateParams::new(vec!["mail.example.test".to_string()]).expect("params");
        let today = UnixTime::now().0.div_euclid(DAY);
        let (y, m, d) = civil_date(today - 80);
        params.not_before = rcgen::date_time_ymd(y, m, d);
        let (y, m, d) = civil_date(today + 10);
        params.not_after = rcgen::date_time_ymd(y, m, d);
        let pair = rcgen::KeyPair::generate().expect("key");
        write_atomically(&key, pair.serialize_pem().as_bytes(), 0o600).expect("key");
        write_atomically(&cert, params.self_signed(&pair).expect("cert").pem().as_bytes(), 0o644).expect("cert");

        assert!(renew_self_signed(&config, &tls.certificates).expect("renew"), "renewed");
        let (_, not_after) = leaf_validity(&cert);
        assert!(not_after - UnixTime::now().0 > 80 * DAY);
        let served = tls.certificates.for_name(None).expect("a certificate");
        assert_eq!(validity(&served.cert[0]).expect("validity").1, not_after, "the running resolver serves it");
    }

    #[test]
    fn sni_picks_the_certificate_and_unknown_names_get_the_hostnames() {
        let dir = tempfile::tempdir().expect("temp dir");
        let tls = server_tls(&config_in(dir.path())).expect("start");
        let base = tls.certificates.for_name(None).expect("base");
        let issue = |name: &str| {
            let pair = rcgen::KeyPair::generate().expect("key");
            let cert = rcgen::CertificateParams::new(vec![name.to_string()])
                .expect("params")
                .self_signed(&pair)
                .expect("cert");
            certified_key(vec![cert.der().clone()], PrivateKeyDer::Pkcs8(pair.serialize_der().into())).expect("key")
        };
        let (host, mail) = (issue("mail.example.test"), issue("mail.customer.test"));
        assert!(Arc::ptr_eq(&tls.certificates.for_name(Some("unknown.test")).expect("cert"), &base));
        tls.certificates.set_issued(
            "mail.example.test",
            vec![
                (vec!["mail.example.test".to_string()], host.clone()),
                (vec!["mail.customer.test".to_string(), "autoconfig.customer.test".to_string()], mail.clone()),
            ],
        );
        let pick = |name: Option<&str>| tls.certificates.for_name(name).expect("a certificate");
        assert!(Arc::ptr_eq(&pick(Some("MAIL.customer.test.")), &mail));
        assert!(Arc::ptr_eq(&pick(Some("autoconfig.customer.test")), &mail));
        assert!(Arc::ptr_eq(&pick(Some("mail.example.test")), &host));
        assert!(Arc::ptr_eq(&pick(Some("unknown.test")), &host), "unknown SNI: the hostname's certificate");
        assert!(Arc::ptr_eq(&pick(None), &host), "no SNI: the hostname's certificate");
    }
}
