//! `postfach serve` as systemd and the operator see it: the sd_notify states on a socket
//! the test binds (READY=1 when the ports accept, WATCHDOG=1, STOPPING=1 on SIGTERM), the
//! warning about a hostname other servers cannot reach, and the panel URL of `--demo`.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A configuration with SMTP, IMAPS and HTTPS on 127.0.0.1 and every other service off.
fn config(dir: &Path, hostname: &str, smtp: u16, imaps: u16, https: u16) -> std::path::PathBuf {
    let path = dir.join("postfach.toml");
    std::fs::write(
        &path,
        format!(
            r#"hostname = "{hostname}"
data_dir = "data"
[listen]
smtp = ["127.0.0.1:{smtp}"]
submission = []
submissions = []
imap = []
imaps = ["127.0.0.1:{imaps}"]
pop3 = []
pop3s = []
managesieve = []
https = ["127.0.0.1:{https}"]
http = []
"#
        ),
    )
    .expect("config");
    path
}

/// The next state datagram, at most `limit` away.
fn next_state(socket: &UnixDatagram, limit: Duration) -> String {
    socket.set_read_timeout(Some(limit)).expect("timeout");
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).unwrap_or_else(|e| panic!("no sd_notify state within {limit:?}: {e}"));
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Waits for a state, skipping others (watchdog pings); fails after `limit`.
fn wait_for_state(socket: &UnixDatagram, wanted: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        if next_state(socket, left).lines().any(|l| l == wanted) {
            return;
        }
        assert!(Instant::now() < deadline, "no {wanted} within {limit:?}");
    }
}

fn terminate(child: &mut Child) -> Option<i32> {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}

fn smtp_greeting(port: u16) -> String {
    let stream = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).expect("the SMTP port accepts");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).expect("greeting");
    line
}

#[test]
fn systemd_hears_ready_when_the_ports_accept_then_watchdog_and_stopping() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (smtp, imaps, https) = (free_port(), free_port(), free_port());
    let config = config(dir.path(), "mail.postfach.test", smtp, imaps, https);
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("notify socket");
    let mut child = Command::new(env!("CARGO_BIN_EXE_postfach"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");

    // The first state is READY=1, and at that moment every port accepts.
    assert_eq!(next_state(&socket, Duration::from_secs(60)), "READY=1");
    assert!(smtp_greeting(smtp).starts_with("220 mail.postfach.test"), "the MX greets");
    for port in [imaps, https] {
        TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).expect("the port accepts");
    }
    // The watchdog pings, twice (every 0.2 s for WATCHDOG_USEC 0.4 s).
    for _ in 0..2 {
        assert_eq!(next_state(&socket, Duration::from_secs(30)), "WATCHDOG=1");
    }
    assert_eq!(terminate(&mut child), Some(0), "clean exit on SIGTERM");
    wait_for_state(&socket, "STOPPING=1", Duration::from_secs(5));
}

#[test]
fn without_notify_socket_serve_runs_as_before() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (smtp, imaps, https) = (free_port(), free_port(), free_port());
    let config = config(dir.path(), "mail.postfach.test", smtp, imaps, https);
    let (greeting, log) = serve_until_the_mx_greets(&config, smtp, &[("WATCHDOG_USEC", "400000")]);
    assert!(greeting.starts_with("220 "), "{greeting}");
    assert!(!log.contains("NOTIFY_SOCKET") && !log.contains("notify systemd"), "{log}");
}

#[test]
fn serve_warns_about_localhost_and_demo_prints_the_panel_url() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (smtp, imaps, https) = (free_port(), free_port(), free_port());
    let config = config(dir.path(), "localhost", smtp, imaps, https);
    let mut child = Command::new(env!("CARGO_BIN_EXE_postfach"))
        .arg("--config")
        .arg(&config)
        .args(["serve", "--demo"])
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut printed = Vec::new();
    let url = loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).expect("stdout") > 0, "no panel URL printed: {printed:?}");
        if let Some(url) = line.trim().strip_prefix("panel: ") {
            break url.split_whitespace().next().expect("url").to_string();
        }
        printed.push(line);
    };
    assert_eq!(url, format!("https://127.0.0.1:{https}/"), "{printed:?}");
    assert!(printed.iter().any(|l| l.starts_with("demo login: demo ")), "{printed:?}");
    // The URL leads to the panel's sign-in page.
    let page = Command::new("curl").args(["-sk", "-L", "--max-time", "30", &url]).output().expect("curl");
    let page = String::from_utf8_lossy(&page.stdout);
    assert!(page.contains("name=\"password\""), "{page}");
    assert_eq!(terminate(&mut child), Some(0));
    let mut log = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut log).expect("log");
    let warning = log.lines().find(|l| l.contains("WARN") && l.contains("hostname")).unwrap_or_else(|| panic!("{log}"));
    assert!(warning.contains("Set hostname to this server's fully qualified name"), "{warning}");
}

#[test]
fn serve_does_not_warn_about_a_fully_qualified_hostname() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (smtp, imaps, https) = (free_port(), free_port(), free_port());
    let config = config(dir.path(), "mail.postfach.test", smtp, imaps, https);
    let (_, log) = serve_until_the_mx_greets(&config, smtp, &[]);
    assert!(log.contains("postfach started") && !log.contains("Set hostname"), "{log}");
}

/// Runs `postfach serve` with `config` (no NOTIFY_SOCKET, `env` added) until its MX on
/// `smtp` greets, then stops it with SIGTERM, which must end it cleanly; the greeting and the log.
fn serve_until_the_mx_greets(config: &Path, smtp: u16, env: &[(&str, &str)]) -> (String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_postfach"))
        .arg("--config")
        .arg(config)
        .arg("serve")
        .env_remove("NOTIFY_SOCKET")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], smtp))).is_err() {
        assert!(Instant::now() < deadline, "the MX did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    let greeting = smtp_greeting(smtp);
    assert_eq!(terminate(&mut child), Some(0), "clean exit on SIGTERM");
    let mut log = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut log).expect("log");
    (greeting, log)
}
