//! A real Garage (the S3-compatible object store Postfach uses for shared blobs) for
//! tests: one node on free 127.0.0.1 ports, with a bucket and a key that may use it.
//!
//! [`Garage::start`] writes a `garage.toml` into a temporary folder (replication factor 1,
//! SQLite metadata, a random RPC secret), runs `garage -c FILE server`, waits (bounded)
//! until the node answers, assigns and applies the one-node layout, and creates the key and
//! the bucket with Garage's own CLI. Dropping the [`Garage`] kills the process and removes
//! the folder. [`Garage::stop`] and [`Garage::restart`] let a test take the store away and
//! bring it back with its data.
//!
//! The binary is `$GARAGE_BIN`, else `~/.cargo/bin/garage`, else `garage` on `PATH`;
//! `scripts/test` installs it (`cargo install --locked garage`).
//!
//! ```no_run
//! let garage = postfach_testgarage::Garage::start();
//! // Point the code under test at it:
//! // [blobs] backend = "s3", endpoint = garage.endpoint, bucket = garage.bucket, region =
//! // garage.region, access_key_id = garage.access_key_id, secret_access_key = garage.secret_access_key
//! ```

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long Garage may take to answer after it was started.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// A running single-node Garage with one bucket and one key allowed on it.
#[derive(Debug)]
pub struct Garage {
    /// The S3 endpoint, like `http://127.0.0.1:39123`.
    pub endpoint: String,
    /// The S3 region Garage answers for.
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    binary: PathBuf,
    config: PathBuf,
    s3: SocketAddr,
    process: Option<Child>,
    dir: tempfile::TempDir,
}

impl Garage {
    /// Starts Garage and sets it up (module documentation). Panics when it cannot.
    pub fn start() -> Garage {
        let binary = binary();
        let dir = tempfile::Builder::new().prefix("garage-").tempdir().expect("a temporary folder for Garage");
        let (s3, rpc) = (free_port(), free_port());
        let config = dir.path().join("garage.toml");
        let secret: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
        let toml = format!(
            "metadata_dir = \"{meta}\"\n\
             data_dir = \"{data}\"\n\
             db_engine = \"sqlite\"\n\
             replication_factor = 1\n\
             rpc_bind_addr = \"{rpc}\"\n\
             rpc_public_addr = \"{rpc}\"\n\
             rpc_secret = \"{secret}\"\n\
             \n\
             [s3_api]\n\
             s3_region = \"garage\"\n\
             api_bind_addr = \"{s3}\"\n\
             root_domain = \".s3.garage.localhost\"\n",
            meta = dir.path().join("meta").display(),
            data = dir.path().join("data").display(),
        );
        std::fs::write(&config, toml).expect("writing garage.toml");
        let mut garage = Garage {
            endpoint: format!("http://{s3}"),
            region: "garage".to_string(),
            bucket: "postfach".to_string(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            binary,
            config,
            s3,
            process: None,
            dir,
        };
        garage.spawn();
        let node = garage.cli(&["node", "id", "-q"]);
        let node = node.trim().split('@').next().unwrap_or_default().to_string();
        garage.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]);
        garage.cli(&["layout", "apply", "--version", "1"]);
        let key = garage.cli(&["key", "create", "postfach-test"]);
        garage.access_key_id = field(&key, "Key ID");
        garage.secret_access_key = field(&key, "Secret key");
        garage.cli(&["bucket", "create", &garage.bucket.clone()]);
        let (bucket, key) = (garage.bucket.clone(), garage.access_key_id.clone());
        garage.cli(&["bucket", "allow", "--read", "--write", "--owner", &bucket, "--key", &key]);
        garage
    }

    /// Kills the server (like a crash or a lost network); its data stays.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Starts the stopped server again on the same ports with the same data and waits
    /// until it answers.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("garage.log")).expect("garage.log");
        let process = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("garage.log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.process = Some(process);
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let listening = TcpStream::connect_timeout(&self.s3, Duration::from_millis(200)).is_ok();
            if listening && self.run(&["status"]).status.success() {
                return;
            }
            if let Some(Ok(Some(status))) = self.process.as_mut().map(Child::try_wait) {
                panic!("garage exited with {status}; its log: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "garage did not answer within {READY_WITHIN:?}; its log: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `garage -c FILE ARGS…`; panics with its output when it fails.
    fn cli(&self, args: &[&str]) -> String {
        let output = self.run(args);
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        assert!(
            output.status.success(),
            "garage {} failed: {}{}",
            args.join(" "),
            text(&output.stdout),
            text(&output.stderr)
        );
        text(&output.stdout)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.binary.display()))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The Garage binary (module documentation).
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("GARAGE_BIN") {
        return PathBuf::from(path);
    }
    if let Some(home) = std::env::var_os("HOME") {
        let installed = Path::new(&home).join(".cargo/bin/garage");
        if installed.is_file() {
            return installed;
        }
    }
    let on_path = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join("garage")).find(|p| p.is_file()));
    on_path.unwrap_or_else(|| {
        panic!("the garage binary was not found (GARAGE_BIN, ~/.cargo/bin, PATH): scripts/test installs it")
    })
}

fn free_port() -> SocketAddr {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()).expect("a free port on 127.0.0.1")
}

/// The value after `NAME:` in Garage's key listing.
fn field(output: &str, name: &str) -> String {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix(name)?.trim_start().strip_prefix(':').map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("garage printed no '{name}': {output}"))
}
