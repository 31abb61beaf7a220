//! A real Pebble (Let's Encrypt's ACME test server, Debian's `pebble`) on 127.0.0.1.
//!
//! [`Pebble::start`] writes Pebble's HTTPS certificate (made here: Debian ships none) and
//! its configuration into a temporary folder, points its validation at the given HTTP and
//! TLS ports and its DNS at a local resolver, runs it with `PEBBLE_VA_NOSLEEP=1` (no
//! random validation delay; `PEBBLE_VA_ALWAYS_VALID` is never set, every challenge is
//! really checked), waits (bounded) until it answers, and fetches the root it issues
//! under. Dropping it kills the process.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// How long Pebble may take to answer after it was started.
const READY_WITHIN: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Pebble {
    /// The ACME directory URL.
    pub directory: String,
    /// The certificate Pebble's HTTPS uses: `[acme] ca_file`.
    pub ca_file: PathBuf,
    /// The root Pebble issues under (PEM), for clients checking issued certificates.
    pub root_pem: String,
    process: Child,
    _dir: tempfile::TempDir,
}

impl Pebble {
    /// Starts Pebble validating http-01 on `http_port` and tls-alpn-01 on `tls_port` of
    /// whatever address `dns` gives for a name.
    pub fn start(http_port: u16, tls_port: u16, dns: SocketAddr) -> Pebble {
        let dir = tempfile::Builder::new().prefix("pebble-").tempdir().expect("a temporary folder for Pebble");
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).expect("params");
        params.distinguished_name.push(rcgen::DnType::CommonName, "pebble test listener");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("certificate");
        let ca_file = dir.path().join("cert.pem");
        let key_file = dir.path().join("key.pem");
        std::fs::write(&ca_file, cert.pem()).expect("write cert.pem");
        std::fs::write(&key_file, key.serialize_pem()).expect("write key.pem");
        let (acme, management) = (free_port(), free_port());
        let config = serde_json::json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{acme}"),
                "managementListenAddress": format!("127.0.0.1:{management}"),
                "certificate": ca_file,
                "privateKey": key_file,
                "httpPort": http_port,
                "tlsPort": tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false
            }
        });
        let config_file = dir.path().join("pebble.json");
        std::fs::write(&config_file, config.to_string()).expect("write pebble.json");
        let log = std::fs::File::create(dir.path().join("pebble.log")).expect("pebble.log");
        let process = Command::new("/usr/bin/pebble")
            .arg("-config")
            .arg(&config_file)
            .arg("-dnsserver")
            .arg(dns.to_string())
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .env_remove("PEBBLE_VA_ALWAYS_VALID")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("pebble runs (Debian package pebble)");
        let mut pebble = Pebble {
            directory: format!("https://127.0.0.1:{acme}/dir"),
            ca_file,
            root_pem: String::new(),
            process,
            _dir: dir,
        };
        let deadline = Instant::now() + READY_WITHIN;
        while TcpStream::connect(("127.0.0.1", acme)).is_err() || TcpStream::connect(("127.0.0.1", management)).is_err()
        {
            assert!(Instant::now() < deadline, "pebble did not start: {}", pebble.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        let root = Command::new("curl")
            .args(["-sSf", "--max-time", "10", "--cacert"])
            .arg(&pebble.ca_file)
            .arg(format!("https://127.0.0.1:{management}/roots/0"))
            .output()
            .expect("curl runs");
        assert!(root.status.success(), "fetching pebble's root: {}", String::from_utf8_lossy(&root.stderr));
        pebble.root_pem = String::from_utf8(root.stdout).expect("PEM");
        pebble
    }

    /// Pebble's root as a trust store for rustls clients.
    pub fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.root_pem.as_bytes()) {
            roots.add(cert.expect("root certificate")).expect("add root");
        }
        roots
    }

    /// What Pebble logged so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("pebble.log")).unwrap_or_default()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}
