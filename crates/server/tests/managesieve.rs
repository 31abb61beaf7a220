//! ManageSieve (RFC 5804) end to end: the real server on 127.0.0.1, Debian's
//! `sieve-connect` managing a script over STARTTLS, and a raw Python client
//! (`data/managesieve_client.py`) for every command, the response codes, the limits and
//! every way a login is refused, checked in the login log.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use common::clients::run_ok;
use common::{PASSWORD, TestServer};
use postfach_store::Scope;
use postfach_store::logins::{LoginFilter, LoginRecord};
use postfach_store::mailboxes::{Mailbox, MailboxSettings};
use postfach_types::{LoginResult, Service};

const ADDRESS: &str = "max@acme.example";
const OTHER: &str = "eva@acme.example";
const CLIENT: &str = include_str!("data/managesieve_client.py");

const INVOICES: &str =
    "require [\"fileinto\"];\r\nif header :contains \"subject\" \"invoice\" {\r\n  fileinto \"Invoices\";\r\n}\r\n";

async fn logins(t: &TestServer, mailbox: &Mailbox) -> Vec<LoginRecord> {
    let filter = LoginFilter { mailbox: Some(mailbox.id), ..Default::default() };
    t.server.store().logins(Scope::Platform, filter).await.expect("logins")
}

/// Runs `script` after the client module with PORT, CERT, USER, PASS and OTHER set;
/// returns its stdout, failing the test when it fails.
async fn python(t: &TestServer, script: &str) -> String {
    run_ok(
        Command::new("python3")
            .arg("-c")
            .arg(format!("{CLIENT}\n{script}"))
            .env("PORT", t.port("managesieve").to_string())
            .env("CERT", t.cert())
            .env("USER", ADDRESS)
            .env("OTHER", OTHER)
            .env("PASS", PASSWORD),
    )
    .await
}

/// Names of the mailbox's scripts and whether each is active, as the store has them.
async fn stored(t: &TestServer, mailbox: &Mailbox) -> Vec<(String, bool)> {
    let scripts = t.server.store().sieve_scripts(Scope::Platform, mailbox.id).await.expect("scripts");
    scripts.into_iter().map(|s| (s.name, s.active)).collect()
}

/// Debian's `sieve-connect` against the test server: STARTTLS trusting the server's
/// certificate (`--tlscafile`, no verification switched off), SASL PLAIN, the password
/// on standard input (`--passwordfd 0`), never over plaintext (`--noclearauth`).
struct SieveConnect {
    port: u16,
    cert: PathBuf,
}

impl SieveConnect {
    fn new(t: &TestServer) -> Self {
        SieveConnect { port: t.port("managesieve"), cert: t.cert() }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut child = Command::new("sieve-connect")
            .args(["--4", "--server", "localhost", "--port", &self.port.to_string()])
            .args(["--user", ADDRESS, "--passwordfd", "0", "--authmech", "PLAIN", "--noclearauth"])
            .arg("--tlscafile")
            .arg(&self.cert)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sieve-connect runs");
        child.stdin.take().expect("stdin").write_all(format!("{PASSWORD}\n").as_bytes()).expect("password");
        child.wait_with_output().expect("sieve-connect ends")
    }

    /// Runs it on the blocking pool; fails the test when it fails. Returns what it wrote
    /// (stdout, then stderr).
    async fn ok(&self, args: &[&str]) -> String {
        let (port, cert) = (self.port, self.cert.clone());
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let output = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            SieveConnect { port, cert }.run(&args)
        })
        .await
        .expect("sieve-connect task");
        assert!(
            output.status.success(),
            "sieve-connect failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
    }
}

#[tokio::test]
async fn sieve_connect_uploads_lists_activates_downloads_and_deletes_over_starttls() {
    let t = TestServer::start().await;
    let mailbox = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let local = dir.path().join("invoices.sieve");
    std::fs::write(&local, INVOICES).expect("script file");
    let local = local.to_str().expect("path");
    let client = SieveConnect::new(&t);

    let out = client.ok(&["--localsieve", local, "--remotesieve", "invoices", "--upload"]).await;
    assert_eq!(stored(&t, &mailbox).await, [("invoices".to_string(), false)], "{out}");
    let list = client.ok(&["--list"]).await;
    // sieve-connect prints the server's lines as they are.
    assert!(list.lines().any(|l| l.trim() == "\"invoices\""), "{list}");

    client.ok(&["--remotesieve", "invoices", "--activate"]).await;
    assert_eq!(stored(&t, &mailbox).await, [("invoices".to_string(), true)]);
    let list = client.ok(&["--list"]).await;
    assert!(list.lines().any(|l| l.trim() == "\"invoices\" ACTIVE"), "{list}");

    let copy = dir.path().join("copy.sieve");
    let copy_arg = copy.to_str().expect("path");
    client.ok(&["--remotesieve", "invoices", "--localsieve", copy_arg, "--download"]).await;
    assert_eq!(std::fs::read_to_string(&copy).expect("downloaded"), INVOICES);

    client.ok(&["--deactivate"]).await;
    client.ok(&["--remotesieve", "invoices", "--delete"]).await;
    assert!(stored(&t, &mailbox).await.is_empty());
    let list = client.ok(&["--list"]).await;
    assert!(!list.contains("invoices"), "{list}");

    // Every login went through the gate, encrypted, for the sieve service.
    let log = logins(&t, &mailbox).await;
    assert!(log.len() >= 6, "{log:?}");
    for record in &log {
        assert_eq!((record.service, record.result), (Service::ManageSieve, LoginResult::Ok));
        assert!(record.tls.is_some(), "{record:?}");
    }
    t.server.shutdown().await;
}

#[tokio::test]
async fn every_command_answers_as_rfc_5804_says() {
    let t = TestServer::start().await;
    let mailbox = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    let out = python(
        &t,
        r#"
s = Sieve()
caps = capabilities(s.greeting)
print("greeting", s.greeting[-1])
print("plain caps", sorted(caps))
print("plain sasl", repr(caps["SASL"]))
caps = capabilities(s.starttls())
print("tls caps", sorted(caps))
print("tls sasl", caps["SASL"])
print("sieve", caps["SIEVE"])
print("before login", s.last('LISTSCRIPTS'))
# AUTHENTICATE with a continuation: the empty challenge, then the response as a literal.
s.send('AUTHENTICATE "PLAIN"\r\n')
print("auth", s.line())
plain = base64.b64encode(f"\0{USER}\0{PASS}".encode())
s.send(b"{%d+}\r\n" % len(plain) + plain + b"\r\n")
print("auth done", s.response()[-1])
print("owner", capabilities(s.cmd("CAPABILITY")).get("OWNER"))
print("noop", s.last('NOOP "abc"'))
print("havespace", s.last('HAVESPACE "invoices" 500'))
print("list empty", s.cmd("LISTSCRIPTS"))
print("put", s.put("invoices", 'require ["fileinto"];\r\nfileinto "Invoices";\r\n'))
print("put other", s.put("other", "keep;\r\n"))
print("list", s.cmd("LISTSCRIPTS"))
print("setactive", s.last('SETACTIVE "invoices"'))
print("list active", s.cmd("LISTSCRIPTS"))
print("get", s.cmd('GETSCRIPT "invoices"'))
print("get missing", s.last('GETSCRIPT "nope"'))
print("delete active", s.last('DELETESCRIPT "invoices"'))
print("rename taken", s.last('RENAMESCRIPT "other" "invoices"'))
print("rename missing", s.last('RENAMESCRIPT "nope" "new"'))
print("rename", s.last('RENAMESCRIPT "other" "spare"'))
print("delete", s.last('DELETESCRIPT "spare"'))
print("delete missing", s.last('DELETESCRIPT "spare"'))
print("setactive missing", s.last('SETACTIVE "nope"'))
print("deactivate", s.last('SETACTIVE ""'))
print("check", s.last('CHECKSCRIPT {7+}\r\nkeep;\r\n'))
print("unknown", s.last('FROB'))
print("syntax", s.last('GETSCRIPT'))
print("unauthenticate", s.last("UNAUTHENTICATE"))
print("after unauthenticate", s.last("LISTSCRIPTS"))
print("login again", s.login())
print("logout", s.last("LOGOUT"))
print("closed", s.closed())
"#,
    )
    .await;
    let has = |line: &str| assert!(out.lines().any(|l| l.starts_with(line)), "missing {line:?} in:\n{out}");
    has("greeting OK \"mail.postfach.test ManageSieve server ready.\"");
    has("plain caps ['IMPLEMENTATION', 'SASL', 'SIEVE', 'STARTTLS', 'UNAUTHENTICATE', 'VERSION']");
    // No password is asked for before STARTTLS (plaintext logins are off by default).
    has("plain sasl ''");
    has("tls caps ['IMPLEMENTATION', 'SASL', 'SIEVE', 'UNAUTHENTICATE', 'VERSION']");
    has("tls sasl PLAIN LOGIN");
    has("sieve ");
    assert!(out.contains("fileinto") && out.contains("vacation"), "{out}");
    has("before login NO \"Log in first (AUTHENTICATE).\"");
    has("auth \"\"");
    has("auth done OK");
    has("owner max@acme.example");
    has("noop OK (TAG \"abc\")");
    has("havespace OK");
    has("list empty ['OK");
    has("put OK");
    has("put other OK");
    has("list ['\"invoices\"', '\"other\"', 'OK");
    has("setactive OK");
    has("list active ['\"invoices\" ACTIVE', '\"other\"', 'OK");
    has("get ['require [\"fileinto\"];\\r\\nfileinto \"Invoices\";\\r\\n', '', 'OK");
    has("get missing NO (NONEXISTENT)");
    has("delete active NO (ACTIVE)");
    has("rename taken NO (ALREADYEXISTS)");
    has("rename missing NO (NONEXISTENT)");
    has("rename OK");
    has("delete OK");
    has("delete missing NO (NONEXISTENT)");
    has("setactive missing NO (NONEXISTENT)");
    has("deactivate OK");
    has("check OK");
    has("unknown NO \"Unknown command.\"");
    has("syntax NO \"Syntax error:");
    has("unauthenticate OK");
    has("after unauthenticate NO \"Log in first");
    has("login again OK");
    has("logout OK");
    has("closed True");
    assert_eq!(stored(&t, &mailbox).await, [("invoices".to_string(), false)]);
    t.server.shutdown().await;
}

#[tokio::test]
async fn a_bad_script_is_refused_with_its_line_and_column() {
    let t = TestServer::start().await;
    let mailbox = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    let out = python(
        &t,
        r#"
s = logged_in()
bad = 'require ["fileinto"];\r\nif header :contains "subject" "x" {\r\n  fileinto "A"\r\n}\r\n'
print("check", s.last('CHECKSCRIPT {%d+}\r\n%s' % (len(bad), bad)))
print("put", s.put("bad", bad))
unsupported = 'require ["enotify"];\r\nkeep;\r\n'
print("unsupported", s.put("unsupported", unsupported))
print("list", s.cmd("LISTSCRIPTS"))
"#,
    )
    .await;
    let line = |prefix: &str| out.lines().find(|l| l.starts_with(prefix)).unwrap_or_default().to_string();
    for prefix in ["check NO", "put NO", "unsupported NO"] {
        assert!(line(prefix).contains("line "), "{prefix}: {out}");
        assert!(line(prefix).contains("column "), "{prefix}: {out}");
    }
    assert!(line("check NO").contains("line 4"), "the missing semicolon is found at line 4: {out}");
    assert!(line("unsupported NO").contains("enotify"), "{out}");
    assert!(out.contains("list ['OK"), "nothing was stored: {out}");
    assert!(stored(&t, &mailbox).await.is_empty());
    t.server.shutdown().await;
}

#[tokio::test]
async fn the_script_count_and_size_limits_are_told_with_their_codes() {
    let t = TestServer::start().await;
    let mailbox = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    let limits = postfach_admin::SieveLimits::default();
    let script = |i: usize| format!("# script {i}\r\nkeep;\r\n");
    let out = python(
        &t,
        &format!(
            r##"
MAX_SCRIPTS, MAX_BYTES = {}, {}
s = logged_in()
print("room", s.last('HAVESPACE "s0" %d' % MAX_BYTES))
print("too big", s.last('HAVESPACE "s0" %d' % (MAX_BYTES + 1)))
for i in range(MAX_SCRIPTS):
    print("put", i, s.put("s%d" % i, "# script %d\r\nkeep;\r\n" % i))
print("room for one more", s.last('HAVESPACE "more" 10'))
print("put one more", s.put("more", "keep;\r\n"))
print("replace", s.put("s1", "discard;\r\n"))
print("room to replace", s.last('HAVESPACE "s1" 10'))
big = "keep;\r\n" + "#" * MAX_BYTES
print("check big", s.last('CHECKSCRIPT {{%d+}}' % len(big)))
print("closed", s.closed())
"##,
            limits.max_scripts, limits.max_script_bytes
        ),
    )
    .await;
    let has = |line: &str| assert!(out.lines().any(|l| l.starts_with(line)), "missing {line:?} in:\n{out}");
    has("room OK");
    has("too big NO (QUOTA/MAXSIZE)");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("put ") && l.ends_with("\"Script stored.\"")).count(),
        limits.max_scripts as usize,
        "{out}"
    );
    has("room for one more NO (QUOTA/MAXSCRIPTS)");
    has("put one more NO (QUOTA/MAXSCRIPTS)");
    has("replace OK");
    has("room to replace OK");
    has("check big BYE (QUOTA/MAXSIZE)");
    has("closed True");
    let names: Vec<String> = stored(&t, &mailbox).await.into_iter().map(|(name, _)| name).collect();
    let expected: Vec<String> = (0..limits.max_scripts).map(|i| format!("s{i}")).collect();
    assert_eq!(names, expected);
    let s0 = t.server.store().sieve_script(Scope::Platform, mailbox.id, "s0").await.expect("s0");
    assert_eq!(s0.text, script(0));
    let s1 = t.server.store().sieve_script(Scope::Platform, mailbox.id, "s1").await.expect("s1");
    assert_eq!(s1.text, "discard;\r\n");
    t.server.shutdown().await;
}

#[tokio::test]
async fn authenticate_before_starttls_is_refused_and_written_down() {
    let t = TestServer::start().await;
    let mailbox = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    let out = python(
        &t,
        r#"
s = Sieve()
print("with password", s.login())
# Without an initial response no password is asked for at all.
print("without", s.cmd('AUTHENTICATE "PLAIN"'))
s.starttls()
print("after starttls", s.login())
"#,
    )
    .await;
    let has = |line: &str| assert!(out.lines().any(|l| l.starts_with(line)), "missing {line:?} in:\n{out}");
    has("with password NO (ENCRYPT-NEEDED) \"This server accepts encrypted logins only: turn on STARTTLS");
    has("without ['NO (ENCRYPT-NEEDED)");
    has("after starttls OK");
    let log = logins(&t, &mailbox).await;
    let seen: Vec<(LoginResult, bool)> = log.iter().rev().map(|l| (l.result, l.tls.is_some())).collect();
    assert_eq!(seen[0], (LoginResult::TlsRequired, false), "{log:?}");
    assert_eq!(seen.last(), Some(&(LoginResult::Ok, true)), "{log:?}");
    assert!(log.iter().all(|l| l.service == Service::ManageSieve));
    t.server.shutdown().await;
}

#[tokio::test]
async fn wrong_passwords_are_throttled_and_written_down() {
    let t = TestServer::start_with(|c| c.security.max_failures_per_login = 2).await;
    let mailbox = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    let out = python(
        &t,
        r#"
s = Sieve()
s.starttls()
for password in ("wrong one", "wrong two", PASS):
    print("answer", s.login(password=password))
print("closed", s.closed())
"#,
    )
    .await;
    let answers: Vec<&str> = out.lines().filter(|l| l.starts_with("answer")).collect();
    assert_eq!(answers.len(), 3, "{out}");
    assert_eq!(answers[0], "answer NO \"Wrong address or password.\"", "{out}");
    assert!(answers[2].starts_with("answer NO (TRYLATER) \"Too many failed logins"), "{out}");
    assert!(out.contains("closed True"), "three failures end the session: {out}");
    let log = logins(&t, &mailbox).await;
    let results: Vec<LoginResult> = log.iter().rev().map(|l| l.result).collect();
    assert_eq!(results, [LoginResult::BadCredentials, LoginResult::BadCredentials, LoginResult::Throttled]);
    assert!(log.iter().all(|l| l.service == Service::ManageSieve && l.tls.is_some()));
    t.server.shutdown().await;
}

#[tokio::test]
async fn oversized_literals_are_refused_before_they_are_read() {
    let t = TestServer::start().await;
    let mailbox = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    let out = python(
        &t,
        r#"
# Before login: a login literal of a megabyte. Not a byte of it is sent: the server
# answers from the announcement alone.
s = Sieve()
s.send('AUTHENTICATE "PLAIN" {1000000+}\r\n')
print("before login", s.response()[-1])
print("closed", s.closed())
# After login: a script literal far above the script size limit.
s = logged_in()
s.send('PUTSCRIPT "huge" {50000000+}\r\n')
print("after login", s.response()[-1])
print("closed", s.closed())
# A line longer than the line limit.
s = Sieve()
s.send('NOOP "' + "x" * 20000 + '"\r\n')
print("long line", s.response()[-1])
"#,
    )
    .await;
    let has = |line: &str| assert!(out.lines().any(|l| l.starts_with(line)), "missing {line:?} in:\n{out}");
    has("before login BYE \"That is too long for a login.");
    has("after login BYE (QUOTA/MAXSIZE) \"That is 50000000 bytes; a script may have at most");
    has("long line BYE \"That command line is too long.");
    assert_eq!(out.matches("closed True").count(), 2, "{out}");
    assert!(stored(&t, &mailbox).await.is_empty());
    t.server.shutdown().await;
}

#[tokio::test]
async fn one_mailbox_cannot_see_or_touch_anothers_scripts() {
    let t = TestServer::start().await;
    let max = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    let eva = t.mailbox(OTHER, MailboxSettings::default()).await;
    let out = python(
        &t,
        r#"
s = logged_in()
print("put", s.put("private", "keep;\r\n"))
print("activate", s.last('SETACTIVE "private"'))
o = Sieve()
o.starttls()
print("login other", o.login(user=os.environ["OTHER"]))
print("other list", o.cmd("LISTSCRIPTS"))
print("other get", o.last('GETSCRIPT "private"'))
print("other delete", o.last('DELETESCRIPT "private"'))
print("other rename", o.last('RENAMESCRIPT "private" "mine"'))
print("other activate", o.last('SETACTIVE "private"'))
print("other put", o.put("private", "discard;\r\n"))
"#,
    )
    .await;
    let has = |line: &str| assert!(out.lines().any(|l| l.starts_with(line)), "missing {line:?} in:\n{out}");
    has("put OK");
    has("login other OK");
    has("other list ['OK");
    has("other get NO (NONEXISTENT)");
    has("other delete NO (NONEXISTENT)");
    has("other rename NO (NONEXISTENT)");
    has("other activate NO (NONEXISTENT)");
    has("other put OK");
    // Eva's own script of the same name is hers; Max's is untouched and still active.
    assert_eq!(stored(&t, &max).await, [("private".to_string(), true)]);
    let mine = t.server.store().sieve_script(Scope::Platform, max.id, "private").await.expect("max's script");
    assert_eq!(mine.text, "keep;\r\n");
    assert_eq!(stored(&t, &eva).await, [("private".to_string(), false)]);
    t.server.shutdown().await;
}

#[tokio::test]
async fn app_passwords_work_when_made_for_sieve_and_a_revoked_one_ends_the_session() {
    let t = TestServer::start().await;
    let mailbox = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    let admin = postfach_admin::Admin::new(t.server.store().clone(), t.server.authenticator().clone(), None);
    let operator = postfach_admin::Who::Operator;
    let filters = admin.add_app_password(&operator, mailbox.id, "Filters", &[Service::ManageSieve]).await.expect("add");
    let mail = admin.add_app_password(&operator, mailbox.id, "Mail", &[Service::Imap]).await.expect("add");
    admin.set_app_passwords_only(&operator, mailbox.id, true).await.expect("switch");
    let script = format!(
        r#"
s = Sieve()
s.starttls()
print("main password", s.login())
print("imap app password", s.login(password="{}"))
print("sieve app password", s.login(password="{}"))
print("list", s.last("LISTSCRIPTS"))
input()
s.send("NOOP\r\n")
print("after revocation", s.line())
"#,
        mail.password.expose(),
        filters.password.expose()
    );
    let mut child = Command::new("python3")
        .args(["-u", "-c"])
        .arg(format!("{CLIENT}\n{script}"))
        .env("PORT", t.port("managesieve").to_string())
        .env("CERT", t.cert())
        .env("USER", ADDRESS)
        .env("PASS", PASSWORD)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    // Wait until the session is logged in with the app password, then revoke it.
    let mut lines = std::io::BufReader::new(stdout);
    let mut out = String::new();
    let seen = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        while !out.contains("list OK") {
            if lines.read_line(&mut out).expect("read") == 0 {
                break;
            }
        }
        (out, lines)
    })
    .await
    .expect("reader");
    let (mut out, mut lines) = seen;
    assert!(out.contains("main password NO \"This mailbox's password works only in the customer panel."), "{out}");
    assert!(out.contains("imap app password NO \"This app password is not for filters."), "{out}");
    assert!(out.contains("sieve app password OK"), "{out}");
    admin.remove_app_password(&operator, mailbox.id, "Filters").await.expect("revoke");
    // The next command (NOOP) is refused with BYE.
    stdin.write_all(b"\n").expect("go on");
    let rest = tokio::task::spawn_blocking(move || {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut lines, &mut rest).expect("read");
        let status = child.wait().expect("python ends");
        (rest, status)
    })
    .await
    .expect("reader");
    out.push_str(&rest.0);
    assert!(rest.1.success(), "{out}");
    assert!(out.contains("after revocation BYE \"The app password of this connection was revoked."), "{out}");
    let log = logins(&t, &mailbox).await;
    let results: Vec<LoginResult> = log.iter().rev().map(|l| l.result).collect();
    assert_eq!(
        results,
        [LoginResult::AppPasswordRequired, LoginResult::NotForThisAppPassword, LoginResult::Ok],
        "{log:?}"
    );
    t.server.shutdown().await;
}
