//! The Debian package, built with `cargo deb` from the binary under test and installed
//! with `dpkg -i` as an operator would: the unit passes `systemd-analyze verify`, the
//! `postfach` system user, the files and their permissions are there, the installed
//! binary runs as `postfach` with the installed configuration (its `[listen]` moved to
//! test ports on 127.0.0.1: CI has no systemd as PID 1 to start the unit) and answers,
//! and `dpkg --purge` leaves nothing behind.
//!
//! The package is built with `cargo deb --no-build --profile dev`: it packs the binary
//! `cargo test` has just built (the same file, checked below), so no release build runs
//! and no nested `cargo build` waits for the build directory's lock. Needs root (CI runs
//! as root); skipped with a message otherwise.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program} {args:?}: {e}"))
}

fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn is_root() -> bool {
    run("id", &["-u"]).stdout.trim_ascii() == b"0"
}

fn installed() -> bool {
    run("dpkg-query", &["-W", "-f=${Status}", "postfach"]).stdout.ends_with(b"installed")
}

/// Purges the package when the test ends, however it ends.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = run("dpkg", &["--purge", "postfach"]);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// The installed configuration with its `[listen]` section replaced by test ports.
fn with_test_ports(installed: &str, smtp: u16, https: u16) -> String {
    let start = installed.find("\n[listen]").expect("the installed config has [listen]");
    let end = installed[start + 1..].find("\n[").map_or(installed.len(), |i| start + 1 + i);
    let listen = format!(
        "\n[listen]\nsmtp = [\"127.0.0.1:{smtp}\"]\nsubmission = []\nsubmissions = []\nimap = []\nimaps = []\n\
         pop3 = []\npop3s = []\nmanagesieve = []\nhttps = [\"127.0.0.1:{https}\"]\nhttp = []\n"
    );
    format!("{}{listen}{}", &installed[..start], &installed[end..])
}

#[test]
fn the_debian_package_installs_runs_as_postfach_and_purges_cleanly() {
    if !is_root() {
        eprintln!("SKIPPED: the Debian package test installs a package with dpkg and needs root (CI runs as root)");
        return;
    }
    if run("sh", &["-c", "command -v dpkg && command -v systemd-analyze"]).stdout.is_empty() {
        eprintln!("SKIPPED: dpkg or systemd-analyze is missing: this is not a Debian system with systemd installed");
        return;
    }
    assert!(!installed(), "a postfach package is installed already; remove it before running this test");
    let binary = Path::new(env!("CARGO_BIN_EXE_postfach"));
    let profile = match binary.parent().and_then(Path::file_name).and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => panic!("unexpected binary path {}", binary.display()),
    };

    // Build the package from the binary under test.
    let out_dir = tempfile::tempdir().expect("temp dir");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let out_path = out_dir.path().to_str().expect("utf-8 path");
    let built = Command::new(&cargo)
        .args(["deb", "--manifest-path", manifest, "--no-build", "--profile", profile, "--no-strip", "--fast"])
        .args(["--quiet", "--output", out_path])
        .output()
        .expect("run cargo deb");
    assert!(
        built.status.success(),
        "cargo deb failed (install it with: cargo install --locked cargo-deb --version 3.8.0): {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let deb = String::from_utf8_lossy(&built.stdout).trim().lines().last().expect("the .deb's path").to_string();
    assert!(deb.ends_with(".deb") && Path::new(&deb).exists(), "{deb}");
    let fields = ok("dpkg-deb", &["--field", &deb, "Package", "Section", "Depends"]);
    assert!(fields.contains("Package: postfach") && fields.contains("Section: mail"), "{fields}");
    let control = tempfile::tempdir().expect("temp dir");
    ok("dpkg-deb", &["--control", &deb, control.path().to_str().expect("utf-8")]);
    let conffiles = std::fs::read_to_string(control.path().join("conffiles")).expect("conffiles");
    assert_eq!(conffiles.trim(), "/etc/postfach/postfach.toml");

    // Install it.
    let _purge = Purge;
    ok("dpkg", &["-i", &deb]);
    assert!(installed());
    // Installing again (the maintainer scripts run twice) changes nothing.
    ok("dpkg", &["-i", &deb]);

    // The unit, as installed.
    let unit = "/usr/lib/systemd/system/postfach.service";
    let verify = run("systemd-analyze", &["verify", unit]);
    assert!(verify.status.success(), "systemd-analyze verify: {}", String::from_utf8_lossy(&verify.stderr));
    let unit_text = std::fs::read_to_string(unit).expect("unit");
    for line in [
        "Type=notify",
        "User=postfach",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/postfach",
        "WatchdogSec=60s",
        "ExecStart=/usr/bin/postfach --config /etc/postfach/postfach.toml serve",
    ] {
        assert!(unit_text.lines().any(|l| l == line), "the unit lacks {line}");
    }

    // The system user: no login shell, home in the data folder, a system id.
    let passwd = ok("getent", &["passwd", "postfach"]);
    let fields: Vec<&str> = passwd.trim().split(':').collect();
    let uid: u32 = fields[2].parse().expect("uid");
    let gid: u32 = fields[3].parse().expect("gid");
    assert!(uid < 1000, "a system user: {passwd}");
    assert_eq!((fields[5], fields[6]), ("/var/lib/postfach", "/usr/sbin/nologin"), "{passwd}");

    // Files and permissions.
    let meta = |p: &str| std::fs::metadata(p).unwrap_or_else(|e| panic!("{p}: {e}"));
    let data = meta("/var/lib/postfach");
    assert_eq!((data.uid(), data.gid(), data.permissions().mode() & 0o777), (uid, gid, 0o700));
    let conf = meta("/etc/postfach/postfach.toml");
    assert_eq!((conf.uid(), conf.gid(), conf.permissions().mode() & 0o777), (0, gid, 0o640));
    let bin = meta("/usr/bin/postfach");
    assert_eq!((bin.uid(), bin.permissions().mode() & 0o777), (0, 0o755));
    assert_eq!(std::fs::read("/usr/bin/postfach").ok(), std::fs::read(binary).ok(), "the binary under test");
    let installed_config = std::fs::read_to_string("/etc/postfach/postfach.toml").expect("config");
    assert!(installed_config.contains("data_dir = \"/var/lib/postfach\""), "{installed_config}");

    // The installed binary reads the installed configuration as the postfach user.
    let as_postfach = ["--reuid=postfach", "--regid=postfach", "--init-groups", "/usr/bin/postfach"];
    ok("setpriv", &[&as_postfach[..], &["domain", "list"]].concat());

    // It serves as postfach: the installed configuration with test ports.
    let (smtp, https) = (free_port(), free_port());
    let test_dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(test_dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let test_config = test_dir.path().join("postfach.toml");
    std::fs::write(&test_config, with_test_ports(&installed_config, smtp, https)).expect("config");
    let notify_name = format!("postfach-deb-test-{}", std::process::id());
    let notify = {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(notify_name.as_bytes()).expect("name");
        UnixDatagram::bind_addr(&addr).expect("notify socket")
    };
    notify.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let mut child = Command::new("setpriv")
        .args(&as_postfach[..3])
        .arg("/usr/bin/postfach")
        .arg("--config")
        .arg(&test_config)
        .arg("serve")
        .env("NOTIFY_SOCKET", format!("@{notify_name}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the installed binary");
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).expect("READY=1 from the installed binary");
    assert_eq!(&buf[..n], b"READY=1");
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).expect("status");
    let uids = status.lines().find_map(|l| l.strip_prefix("Uid:")).expect("Uid line");
    assert!(uids.split_whitespace().all(|u| u == uid.to_string()), "runs as postfach: {uids}");
    let stream = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], smtp))).expect("SMTP accepts");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut greeting = String::new();
    BufReader::new(stream).read_line(&mut greeting).expect("greeting");
    assert!(greeting.starts_with("220 localhost"), "{greeting}");
    let page = ok("curl", &["-sk", "-L", "--max-time", "30", &format!("https://127.0.0.1:{https}/")]);
    assert!(page.contains("name=\"password\""), "the panel answers: {page}");
    assert!(ok("kill", &["-TERM", &child.id().to_string()]).is_empty());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit within 30 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(exit.code(), Some(0));
    let sqlite = meta("/var/lib/postfach/postfach.sqlite");
    assert_eq!(sqlite.uid(), uid, "the data belongs to postfach");
    assert_eq!(meta("/var/lib/postfach/tls/key.pem").uid(), uid);

    // Removing keeps the data, the configuration and the user; purging removes them.
    ok("dpkg", &["--remove", "postfach"]);
    assert!(!Path::new("/usr/bin/postfach").exists(), "the binary goes on remove");
    for kept in ["/var/lib/postfach/postfach.sqlite", "/etc/postfach/postfach.toml"] {
        assert!(Path::new(kept).exists(), "{kept} must stay until purge");
    }
    assert!(run("getent", &["passwd", "postfach"]).status.success(), "the user stays until purge");
    ok("dpkg", &["--purge", "postfach"]);
    assert!(!installed());
    for gone in ["/usr/bin/postfach", "/etc/postfach", "/var/lib/postfach", unit] {
        assert!(!Path::new(gone).exists(), "{gone} is still there after purge");
    }
    assert!(!run("getent", &["passwd", "postfach"]).status.success(), "the postfach user is gone");
    assert!(!run("getent", &["group", "postfach"]).status.success(), "the postfach group is gone");
}
