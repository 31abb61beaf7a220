//! A real HAProxy (Debian's `haproxy`) in front of the servers a test started: TCP mode,
//! round-robin over each frontend's backends, the PROXY protocol towards them (v2 unless
//! asked otherwise), optionally with health checks.
//!
//! HAProxy connects to the backends from one `source` address, so a test can tell the
//! balancer from the clients on loopback: clients bind `127.0.0.2` before they connect,
//! HAProxy connects from `127.0.0.3`, and the servers trust `127.0.0.3/32` alone
//! (`[proxy] trusted_networks`). Every address in `127.0.0.0/8` is local on Linux.
//!
//! ```no_run
//! use postfach_testproxy::{Frontend, HaProxy};
//!
//! let node_a = "127.0.0.1:2525".parse().unwrap();
//! let node_b = "127.0.0.1:2526".parse().unwrap();
//! // Port 0: a free port is chosen; `addr(0)` tells which.
//! let haproxy = HaProxy::start(
//!     &[Frontend { listen: "127.0.0.1:0".parse().unwrap(), backends: vec![node_a, node_b] }],
//!     "127.0.0.3".parse().unwrap(),
//! );
//! let smtp = haproxy.addr(0);
//! // … connect to `smtp` from 127.0.0.2; the nodes see 127.0.0.2 as the client.
//! drop(haproxy); // kills HAProxy
//! ```
//!
//! [`HaProxy::start`] writes the configuration into a temporary folder, runs
//! `haproxy -db -f FILE` (in the foreground, logging to its standard error, which
//! [`HaProxy::log`] reads), and returns once every frontend accepts connections. It panics
//! (with HAProxy's own words) when HAProxy is missing or does not start: this is test
//! support. Dropping the [`HaProxy`] kills the process. The API is synchronous, so it
//! serves synchronous and asynchronous tests alike; readiness is probed from
//! `127.0.0.254` (and `::1` for IPv6 frontends), connections HAProxy refuses at once, so
//! the probes never reach a backend.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One listening address and the servers its connections are spread over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontend {
    /// Where HAProxy listens; port 0 picks a free port ([`HaProxy::addr`] tells which).
    pub listen: SocketAddr,
    /// The servers, taken in turn (round-robin).
    pub backends: Vec<SocketAddr>,
}

/// Which PROXY protocol header HAProxy sends to the backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyVersion {
    /// The text line (`send-proxy`).
    V1,
    /// The binary header (`send-proxy-v2`).
    V2,
}

/// How HAProxy talks to the backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The address HAProxy connects to the backends from.
    pub source: IpAddr,
    pub version: ProxyVersion,
    /// Health checks every this often: a TCP connection with a PROXY header of its own
    /// (v2: the `LOCAL` command), closed at once. `None`: no checks.
    pub health_checks: Option<Duration>,
}

impl Options {
    /// PROXY v2 from `source`, no health checks.
    pub fn new(source: IpAddr) -> Self {
        Options { source, version: ProxyVersion::V2, health_checks: None }
    }
}

/// A running HAProxy; dropping it kills the process.
#[derive(Debug)]
pub struct HaProxy {
    child: Child,
    listening: Vec<SocketAddr>,
    log: PathBuf,
    config: PathBuf,
    stats: PathBuf,
    _dir: tempfile::TempDir,
}

/// One backend server as HAProxy's statistics show it (`show stat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStat {
    /// The frontend's index, as given to [`HaProxy::start`].
    pub frontend: usize,
    /// The server's index in the frontend's `backends`.
    pub backend: usize,
    /// `UP`, `DOWN`, `no check`, …
    pub status: String,
    /// The last health check: `L4OK`, `L4CON` (refused), `L4TOUT`, … (empty without checks).
    pub check_status: String,
    /// Connections HAProxy made to this server so far (health checks not counted).
    pub connections: u64,
}

/// Where readiness probes come from; HAProxy refuses them before choosing a backend.
const PROBE_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 254);
/// How long HAProxy may take until every frontend accepts.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Starts tried when a chosen free port was taken by someone else in the meantime.
const START_ATTEMPTS: usize = 3;

impl HaProxy {
    /// HAProxy with `send-proxy-v2` from `source`, without health checks.
    pub fn start(frontends: &[Frontend], source: IpAddr) -> HaProxy {
        HaProxy::start_with(frontends, &Options::new(source))
    }

    /// HAProxy as `options` say.
    pub fn start_with(frontends: &[Frontend], options: &Options) -> HaProxy {
        assert!(!frontends.is_empty(), "HAProxy needs at least one frontend");
        assert!(frontends.iter().all(|f| !f.backends.is_empty()), "every frontend needs a backend");
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            match HaProxy::try_start(frontends, options) {
                Ok(haproxy) => return haproxy,
                Err(log) => last_log = log,
            }
        }
        panic!("HAProxy did not start:\n{last_log}");
    }

    /// One start; `Err` with HAProxy's log when the process ended before it listened.
    fn try_start(frontends: &[Frontend], options: &Options) -> Result<HaProxy, String> {
        let dir = tempfile::tempdir().expect("a temporary folder for HAProxy");
        let listening: Vec<SocketAddr> = frontends.iter().map(|f| with_free_port(f.listen)).collect();
        let config = dir.path().join("haproxy.cfg");
        let stats = dir.path().join("stats.sock");
        std::fs::write(&config, config_text(frontends, &listening, options, &stats)).expect("write the HAProxy config");
        let log = dir.path().join("haproxy.log");
        let stderr = std::fs::File::create(&log).expect("HAProxy's log file");
        let child = Command::new(binary())
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run haproxy ({e}): install Debian's haproxy package"));
        let mut haproxy = HaProxy { child, listening, log, config, stats, _dir: dir };
        haproxy.wait_until_listening()?;
        Ok(haproxy)
    }

    /// Polls every frontend until it accepts; `Err` with the log when HAProxy exited.
    fn wait_until_listening(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        for &addr in &self.listening.clone() {
            loop {
                if let Ok(Some(status)) = self.child.try_wait() {
                    return Err(format!("haproxy exited with {status}:\n{}", self.log()));
                }
                if probe(addr) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "HAProxy did not listen on {addr} within {START_TIMEOUT:?}:\n{}",
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// Where frontend `index` (in the order given to [`HaProxy::start`]) listens.
    pub fn addr(&self, index: usize) -> SocketAddr {
        self.listening[index]
    }

    /// What HAProxy wrote so far (its start-up messages and one line per connection).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every backend server's state, from HAProxy's statistics socket: whether health
    /// checks find it up, how many connections it got.
    pub fn servers(&self) -> Vec<ServerStat> {
        let mut socket = std::os::unix::net::UnixStream::connect(&self.stats)
            .unwrap_or_else(|e| panic!("HAProxy's statistics socket: {e}\n{}", self.log()));
        let _ = socket.set_read_timeout(Some(Duration::from_secs(10)));
        socket.write_all(b"show stat\n").expect("ask HAProxy for its statistics");
        let mut csv = String::new();
        socket.read_to_string(&mut csv).expect("HAProxy's statistics");
        parse_stats(&csv)
    }

    /// The configuration file HAProxy runs with.
    pub fn config_file(&self) -> &Path {
        &self.config
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `haproxy` from the `PATH`, else Debian's place for it (not on every user's `PATH`).
fn binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("haproxy"))
        .find(|candidate| candidate.is_file());
    on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/haproxy"))
}

/// `addr`, with port 0 replaced by one that is free now.
fn with_free_port(addr: SocketAddr) -> SocketAddr {
    if addr.port() != 0 {
        return addr;
    }
    let listener = TcpListener::bind(addr).unwrap_or_else(|e| panic!("cannot find a free port on {}: {e}", addr.ip()));
    listener.local_addr().expect("the probe listener's address")
}

/// Whether `addr` accepts a connection (from [`PROBE_SOURCE`] for IPv4).
fn probe(addr: SocketAddr) -> bool {
    match addr {
        SocketAddr::V4(_) => connect_from(PROBE_SOURCE.into(), addr).is_ok(),
        SocketAddr::V6(_) => TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok(),
    }
}

/// A TCP connection to `to` from the local address `from` (any port): how a test's
/// client poses as another host on loopback (`127.0.0.2`). Async tests can do the same
/// with `tokio::net::TcpSocket::bind` before `connect`.
pub fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(to), socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(from, 0).into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(5))?;
    Ok(socket.into())
}

/// The HAProxy configuration for `frontends` listening on `listening`.
fn config_text(frontends: &[Frontend], listening: &[SocketAddr], options: &Options, stats: &Path) -> String {
    let send_proxy = match options.version {
        ProxyVersion::V1 => "send-proxy",
        ProxyVersion::V2 => "send-proxy-v2",
    };
    let check = match options.health_checks {
        Some(every) => format!(" check inter {}ms", every.as_millis().max(100)),
        None => String::new(),
    };
    let mut text = format!(
        "global\n    log stderr format short local0 info\n    maxconn 4000\n    stats socket {} level admin\n\n\
         defaults\n    mode tcp\n    log global\n    option tcplog\n    timeout connect 5s\n    \
         timeout client 10m\n    timeout server 10m\n",
        stats.display()
    );
    for (i, (frontend, listen)) in frontends.iter().zip(listening).enumerate() {
        let _ = write!(
            text,
            "\nfrontend f{i}\n    bind {listen}\n    tcp-request connection reject if {{ src {PROBE_SOURCE} }}\n    \
             default_backend b{i}\n\nbackend b{i}\n    balance roundrobin\n    source {}\n",
            options.source
        );
        for (j, backend) in frontend.backends.iter().enumerate() {
            let _ = writeln!(text, "    server s{j} {backend} {send_proxy}{check}");
        }
    }
    text
}

/// The server rows (`bNAME,sNAME`) of `show stat`'s CSV, columns found by their names.
fn parse_stats(csv: &str) -> Vec<ServerStat> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().trim_start_matches("# ").split(',').collect();
    let column = |name: &str| header.iter().position(|c| *c == name);
    let (Some(px), Some(sv), Some(status), Some(check), Some(total)) =
        (column("pxname"), column("svname"), column("status"), column("check_status"), column("stot"))
    else {
        panic!("unexpected HAProxy statistics:\n{csv}");
    };
    lines
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let frontend = fields.get(px)?.strip_prefix('b')?.parse().ok()?;
            let backend = fields.get(sv)?.strip_prefix('s')?.parse().ok()?;
            Some(ServerStat {
                frontend,
                backend,
                status: fields.get(status)?.to_string(),
                check_status: fields.get(check)?.to_string(),
                connections: fields.get(total)?.parse().unwrap_or(0),
            })
        })
        .collect()
}
