//! Issue 15, metrics and logs, as an operator meets them: the real `postfach serve` with
//! `[metrics]` on and its log going to a file, real traffic (MX transactions, Python's
//! imaplib, poplib and smtplib over TLS, good and bad logins, logins built to fool a log
//! reader), then what an operator's tools make of it: `curl` fetches `/metrics`, Debian's
//! `promtool` checks it, the shipped Grafana dashboard uses only metrics that exist,
//! Debian's `fail2ban-regex` finds exactly the refused logins with the right address in
//! the log, the log has no colour codes, and IPv4 clients of a dual-stack `[::]` listener
//! appear as IPv4 in the login list, the log and the `Received:` header.

mod common;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use postfach_testdns::{Data, Rr, TestDns};

const PASSWORD: &str = "violet mango tractor whisper";
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Whether a `[::]` listener here also takes IPv4 connections (as IPv4-mapped addresses).
fn dual_stack() -> bool {
    let Ok(listener) = TcpListener::bind("[::]:0") else { return false };
    let Ok(addr) = listener.local_addr() else { return false };
    TcpStream::connect(("127.0.0.1", addr.port())).is_ok()
}

struct Ports {
    smtp: u16,
    submissions: u16,
    imaps: u16,
    pop3s: u16,
    metrics: u16,
}

struct Server {
    dir: tempfile::TempDir,
    ports: Ports,
    child: Child,
}

impl Server {
    /// Writes the configuration, creates the mailbox and starts `postfach serve` with its
    /// stderr in `postfach.log`. The MX and IMAPS listeners are on `[::]` when the machine
    /// is dual-stack.
    fn start(dns: SocketAddr, dual: bool) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports = Ports {
            smtp: free_port(),
            submissions: free_port(),
            imaps: free_port(),
            pop3s: free_port(),
            metrics: free_port(),
        };
        let wide = if dual { "[::]" } else { "127.0.0.1" };
        let config = format!(
            "hostname = \"mail.postfach.test\"\ndata_dir = \"data\"\n\
             [listen]\nsmtp = [\"{wide}:{}\"]\nsubmission = []\nsubmissions = [\"127.0.0.1:{}\"]\nimap = []\n\
             imaps = [\"{wide}:{}\"]\npop3 = []\npop3s = [\"127.0.0.1:{}\"]\nmanagesieve = []\nhttps = []\nhttp = []\n\
             [metrics]\nlisten = [\"127.0.0.1:{}\"]\n\
             [dns]\nresolver = \"{dns}\"\n\
             [security]\nwarning_mails = false\n\
             [log]\nlevel = \"info\"\n",
            ports.smtp, ports.submissions, ports.imaps, ports.pop3s, ports.metrics
        );
        let config_path = dir.path().join("postfach.toml");
        std::fs::write(&config_path, config).expect("config");
        common::postfach_ok(
            &config_path,
            &["customer", "add", "acme", "--password-stdin"],
            "acme panel passphrase 42\n",
        );
        common::postfach_ok(&config_path, &["domain", "add", "acme.example", "--customer", "acme", "--verified"], "");
        common::postfach_ok(
            &config_path,
            &["mailbox", "add", "max@acme.example", "--password-stdin"],
            &format!("{PASSWORD}\n"),
        );
        let pop = ["mailbox", "add", "pop@acme.example", "--access", "pop3", "--password-stdin"];
        common::postfach_ok(&config_path, &pop, &format!("{PASSWORD}\n"));
        let log = std::fs::File::create(dir.path().join("postfach.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_postfach"))
            .arg("--config")
            .arg(&config_path)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start postfach serve");
        let server = Server { dir, ports, child };
        wait_until("postfach serve listens", || TcpStream::connect(("127.0.0.1", server.ports.metrics)).is_ok());
        server
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("postfach.toml")
    }

    fn log(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("postfach.log")).expect("log")
    }

    fn metrics_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ports.metrics)
    }

    /// `/metrics` fetched with curl.
    fn scrape(&self) -> String {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20", &self.metrics_url("/metrics")])
            .output()
            .expect("curl");
        assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of one series, by its exact name and labels.
fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in:\n{metrics}"))
}

/// The clients: good logins on IMAP (reading the first message's header), POP3 and SMTP
/// AUTH, then bad ones, then logins that try to plant a different address in the log.
/// Prints the header it read.
const CLIENTS: &str = r#"
import base64, imaplib, os, poplib, smtplib, ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
H = '127.0.0.1'
USER, GOOD = 'max@acme.example', os.environ['PASSWORD']

def imap(user, password, fetch=False):
    m = imaplib.IMAP4_SSL(H, int(os.environ['IMAPS']), ssl_context=ctx)
    try:
        # imaplib sends the user as it is: quote it, as clients do.
        m.login('"%s"' % user.replace('\\', '\\\\').replace('"', '\\"'), password)
    except imaplib.IMAP4.error:
        m.logout()
        return False
    if fetch:
        m.select('INBOX')
        typ, data = m.fetch('1', '(BODY.PEEK[HEADER])')
        print(data[0][1].decode())
    m.logout()
    return True

def pop(user, password):
    p = poplib.POP3_SSL(H, int(os.environ['POP3S']), context=ctx)
    try:
        p.user(user)
        p.pass_(password)
        ok = True
    except poplib.error_proto:
        ok = False
    p.quit()
    return ok

def smtp(user, password):
    s = smtplib.SMTP_SSL(H, int(os.environ['SUBMISSIONS']), context=ctx)
    s.ehlo('client.monitor.test')
    try:
        s.login(user, password)
        ok = True
    except smtplib.SMTPAuthenticationError:
        ok = False
    s.quit()
    return ok

def smtp_plain(login, password):
    s = smtplib.SMTP_SSL(H, int(os.environ['SUBMISSIONS']), context=ctx)
    s.ehlo('client.monitor.test')
    blob = base64.b64encode(b'\0' + login.encode() + b'\0' + password.encode()).decode()
    code, _ = s.docmd('AUTH', 'PLAIN ' + blob)
    s.quit()
    return code == 235

assert imap(USER, GOOD, fetch=True)
assert pop('pop@acme.example', GOOD)
assert smtp(USER, GOOD)
assert not imap(USER, 'wrong password one')
assert not pop('pop@acme.example', 'wrong password two')
assert not smtp(USER, 'wrong password three')
# Logins that look like the rest of a log line naming another client.
assert not imap('evil" client=203.0.113.66 service=imap x', 'whatever')
assert not smtp_plain('evil" client=203.0.113.88 service=imap tls=no reason=bad_credentials x', 'whatever')
fake = 'x\n2026-11-28T00:00:00.000000Z node=evil  INFO postfach::login: login refused client=203.0.113.77 service=imap tls=no reason=bad_credentials mechanism=plain login="y"'
assert not smtp_plain(fake, 'whatever')
"#;
/// The refused logins [`CLIENTS`] makes (smtplib tries PLAIN, then LOGIN).
const REFUSED: usize = 7;

fn run_clients(server: &Server) -> String {
    let out = Command::new("python3")
        .args(["-c", CLIENTS])
        .env("PASSWORD", PASSWORD)
        .env("IMAPS", server.ports.imaps.to_string())
        .env("POP3S", server.ports.pop3s.to_string())
        .env("SUBMISSIONS", server.ports.submissions.to_string())
        .output()
        .expect("python3");
    assert!(out.status.success(), "clients failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Every `postfach_…` name the dashboard's queries use.
fn dashboard_metrics() -> BTreeSet<String> {
    let text = std::fs::read_to_string(Path::new(ROOT).join("docs/grafana-dashboard.json")).expect("dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is valid JSON");
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 8, "the dashboard has queries: {exprs:?}");
    let mut names = BTreeSet::new();
    for expr in exprs {
        let mut rest = expr.as_str();
        while let Some(at) = rest.find("postfach_") {
            let name: String = rest[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            rest = &rest[at + name.len()..];
            names.insert(name);
        }
    }
    names
}

fn collect_exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", serde_json::Value::String(expr)) => out.push(expr.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

#[test]
fn metrics_and_logs_after_real_traffic() {
    let dns = TestDns::start([
        Rr::new("monitor.test", Data::txt("v=spf1 ip4:127.0.0.1 -all")),
        Rr::new("client.monitor.test", Data::A("127.0.0.1".parse().expect("ip"))),
    ]);
    let dual = dual_stack();
    if !dual {
        eprintln!(
            "SKIPPED (part): this machine has no dual-stack [::] listener; IPv4-mapped addresses are not exercised"
        );
    }
    let server = Server::start(dns.addr(), dual);

    // Two MX deliveries from 127.0.0.1, which SPF allows for monitor.test.
    let mx = SocketAddr::from(([127, 0, 0, 1], server.ports.smtp));
    for n in 0..2 {
        let message = format!("From: a@monitor.test\r\nTo: max@acme.example\r\nSubject: hello {n}\r\n\r\nhi\r\n");
        let stored =
            common::deliver(mx, "client.monitor.test", "a@monitor.test", "max@acme.example", message.as_bytes());
        assert_eq!(stored, Some(true), "MX delivery {n}");
    }
    let header = run_clients(&server);

    // IPv4 clients are IPv4 wherever they are shown.
    assert!(header.contains("Received: from client.monitor.test ([127.0.0.1])"), "{header}");
    assert!(header.contains("Received-SPF: pass"), "SPF judged the IPv4 address: {header}");
    assert!(!header.contains("ffff"), "{header}");
    let logins = common::postfach_ok(&server.config(), &["logins", "--json"], "");
    let logins: Vec<serde_json::Value> = serde_json::from_str(&logins).expect("login list JSON");
    assert_eq!(logins.len(), 3 + REFUSED, "{logins:?}");
    assert!(logins.iter().all(|l| l["remote_ip"] == "127.0.0.1"), "{logins:?}");

    // /metrics: valid for promtool, and the traffic counted.
    let metrics = server.scrape();
    let promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(metrics.as_bytes())?;
            child.wait_with_output()
        })
        .expect("promtool");
    assert!(
        promtool.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&promtool.stdout),
        String::from_utf8_lossy(&promtool.stderr)
    );
    assert_eq!(value(&metrics, r#"postfach_connections_total{service="smtp"}"#), 2.0);
    assert_eq!(value(&metrics, r#"postfach_messages_in_total{via="mx",result="accepted"}"#), 2.0);
    assert_eq!(value(&metrics, r#"postfach_messages_in_total{via="mx",result="refused"}"#), 0.0);
    assert_eq!(value(&metrics, r#"postfach_command_duration_seconds_count{protocol="smtp",command="DATA"}"#), 2.0);
    assert_eq!(value(&metrics, r#"postfach_command_duration_seconds_count{protocol="smtp",command="EHLO"}"#), 6.0);
    assert_eq!(value(&metrics, r#"postfach_command_duration_seconds_count{protocol="imap",command="LOGIN"}"#), 3.0);
    assert_eq!(value(&metrics, r#"postfach_command_duration_seconds_count{protocol="pop3",command="PASS"}"#), 2.0);
    assert_eq!(value(&metrics, r#"postfach_logins_total{service="imap",result="ok",tls="yes"}"#), 1.0);
    assert_eq!(value(&metrics, r#"postfach_logins_total{service="imap",result="bad_credentials",tls="yes"}"#), 2.0);
    assert_eq!(value(&metrics, r#"postfach_logins_total{service="pop3",result="ok",tls="yes"}"#), 1.0);
    assert_eq!(value(&metrics, r#"postfach_logins_total{service="pop3",result="bad_credentials",tls="yes"}"#), 1.0);
    assert_eq!(value(&metrics, r#"postfach_logins_total{service="submission",result="ok",tls="yes"}"#), 1.0);
    assert_eq!(
        value(&metrics, r#"postfach_logins_total{service="submission",result="bad_credentials",tls="yes"}"#),
        4.0
    );
    assert_eq!(value(&metrics, r#"postfach_logins_total{service="imap",result="ok",tls="no"}"#), 0.0);
    assert_eq!(value(&metrics, r#"postfach_tls_handshakes_total{service="imaps",result="ok"}"#), 3.0);
    assert_eq!(value(&metrics, r#"postfach_tls_handshakes_total{service="pop3s",result="ok"}"#), 2.0);
    assert_eq!(value(&metrics, r#"postfach_tls_handshakes_total{service="submissions",result="ok"}"#), 4.0);
    assert_eq!(value(&metrics, "postfach_database_gauges_ok"), 1.0);
    assert_eq!(value(&metrics, "postfach_queue_messages"), 0.0);
    assert!(value(&metrics, r#"postfach_blob_bytes{store="mailboxes"}"#) > 200.0, "two messages stored");

    // Only /metrics is served.
    let other = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &server.metrics_url("/")])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&other.stdout), "404");

    // The dashboard asks only for metrics that exist (a family whose series depend on
    // the data, such as the per-domain DNS problems, may have no series yet).
    let series: BTreeSet<&str> = metrics
        .lines()
        .filter_map(|l| match l.strip_prefix("# TYPE ") {
            Some(typed) => typed.split(' ').next(),
            None if l.starts_with('#') => None,
            None => l.split(['{', ' ']).next(),
        })
        .collect();
    for name in dashboard_metrics() {
        assert!(series.contains(name.as_str()), "the dashboard uses {name}, which /metrics does not have");
    }

    // The log: no colour codes in a file, one line per refused login, and fail2ban's
    // filter finds exactly those, each with the client's real address.
    let log = server.log();
    assert!(!log.contains(&0x1b), "colour codes in the log file");
    let text = String::from_utf8_lossy(&log);
    let refused: Vec<&str> = text.lines().filter(|l| l.contains("login refused")).collect();
    assert_eq!(refused.len(), REFUSED, "{refused:#?}");
    assert!(refused.iter().all(|l| l.contains(" client=127.0.0.1 ") && l.contains("tls=TLSv1.")), "{refused:#?}");
    assert!(!text.contains(PASSWORD) && !text.contains("wrong password"), "a password in the log");
    assert!(!text.contains("ffff:"), "an IPv4-mapped address in the log");

    let filter = Path::new(ROOT).join("contrib/fail2ban/filter.d/postfach.conf");
    // The filter operators copy from the documentation is the one tested here.
    let operations = std::fs::read_to_string(Path::new(ROOT).join("docs/operations.md")).expect("docs");
    let shipped = std::fs::read_to_string(&filter).expect("filter");
    for line in shipped.lines().filter(|l| l.starts_with("failregex") || l.starts_with("datepattern")) {
        assert!(operations.contains(line), "docs/operations.md lacks the filter's line {line}");
    }
    let log_path = server.dir.path().join("postfach.log");
    let out = Command::new("fail2ban-regex")
        .args(["--out", "ip"])
        .arg(&log_path)
        .arg(&filter)
        .output()
        .expect("fail2ban-regex");
    assert!(out.status.success(), "fail2ban-regex: {}", String::from_utf8_lossy(&out.stderr));
    let ips: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().to_string()).collect();
    assert_eq!(ips, vec!["127.0.0.1".to_string(); REFUSED], "fail2ban matched: {ips:?}");
}

#[test]
fn errors_are_told_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such.toml");
    let out = common::postfach(&missing, &["logins"], "");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot read config file"), "{stderr}");
    assert_eq!(stderr.matches("No such file or directory").count(), 1, "{stderr}");

    // A data folder that cannot be created (its parent is a file).
    std::fs::write(dir.path().join("file"), "").expect("file");
    let config = dir.path().join("postfach.toml");
    std::fs::write(&config, "data_dir = \"file/data\"\n").expect("config");
    let out = common::postfach(&config, &["logins"], "");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(stderr.matches("Not a directory").count(), 1, "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
}
