//! The real `postfach` binary, run as an operator would, against a fresh data folder.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const STRONG: &str = "violet mango tractor whisper";

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("postfach.toml"), CONFIG).expect("config");
        Env { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("postfach.toml")
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs `postfach --config ... ARGS`, feeding `stdin`.
    fn run(&self, args: &[&str], stdin: &str) -> Output {
        common::postfach(&self.config(), args, stdin)
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str], stdin: &str) -> String {
        common::postfach_ok(&self.config(), args, stdin)
    }

    /// Runs a command that must fail; returns its stderr.
    fn fails(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        assert!(
            !out.status.success(),
            "postfach {args:?} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).expect("utf-8")
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args, "")).expect("valid JSON")
    }

    /// Customer `acme` with verified `acme.example` and mailbox `max@acme.example`.
    fn acme(&self) {
        self.ok(&["customer", "add", "acme", "--password-stdin"], "acme panel passphrase 42\n");
        self.ok(&["domain", "add", "acme.example", "--customer", "acme", "--verified"], "");
        self.ok(&["mailbox", "add", "max@acme.example", "--password-stdin"], &format!("{STRONG}\n"));
    }
}

const CONFIG: &str = r#"
hostname = "mail.postfach.test"
data_dir = "data"
[listen]
smtp = []
submission = []
submissions = []
imap = []
imaps = []
pop3 = []
pop3s = []
managesieve = []
https = []
http = []
"#;

fn addresses(value: &serde_json::Value, key: &str) -> Vec<String> {
    value.as_array().expect("array").iter().map(|v| v[key].as_str().expect("string").to_string()).collect()
}

#[test]
fn an_operator_sets_up_a_customer_end_to_end() {
    let env = Env::new();
    env.acme();
    env.ok(&["customer", "add", "root", "--admin", "--password-stdin"], "root panel passphrase 99\n");
    let customers = env.json(&["customer", "list", "--json"]);
    assert_eq!(addresses(&customers, "name"), ["acme", "root"]);
    assert_eq!(customers[1]["role"], "admin");

    env.ok(&["domain", "add", "Bücher.Example", "--customer", "acme", "--verified"], "");
    env.ok(&["mailbox", "add", "jörg@bücher.example", "--password-stdin", "--access", "pop3"], &format!("{STRONG}\n"));
    let out = env.ok(&["alias", "add", "info@acme.example", "--to", "max@acme.example"], "");
    assert!(out.contains("info@acme.example now delivers to max@acme.example"), "{out}");
    env.ok(&["alias", "add", "buch@xn--bcher-kva.example", "--to", "MAX@acme.example"], "");
    env.ok(&["domain-alias", "add", "acme.example.org", "--to", "acme.example", "--verified"], "");

    let domains = env.json(&["domain", "list", "--json"]);
    assert_eq!(addresses(&domains, "name"), ["acme.example", "acme.example.org", "xn--bcher-kva.example"]);
    assert_eq!(domains[1]["alias_of"], "acme.example");
    let table = env.ok(&["domain", "list"], "");
    assert!(table.contains("bücher.example") && table.contains("alias of acme.example"), "{table}");

    let mailboxes = env.json(&["mailbox", "list", "--json"]);
    assert_eq!(addresses(&mailboxes, "address"), ["jörg@xn--bcher-kva.example", "max@acme.example"]);
    assert_eq!(mailboxes[0]["access"], "pop3");
    assert_eq!(mailboxes[1]["access"], "imap");
    assert_eq!(mailboxes[1]["tls_required"], true);
    assert_eq!(mailboxes[1]["submission"], true);
    let only = env.json(&["mailbox", "list", "--domain", "acme.example", "--json"]);
    assert_eq!(addresses(&only, "address"), ["max@acme.example"]);

    let aliases = env.json(&["alias", "list", "--json"]);
    assert_eq!(addresses(&aliases, "address"), ["buch@xn--bcher-kva.example", "info@acme.example"]);
    assert_eq!(addresses(&aliases, "mailbox"), ["max@acme.example", "max@acme.example"]);

    let out = env.ok(&["mailbox", "set", "max@acme.example", "--access", "none", "--submission", "off"], "");
    assert!(out.contains("access none, submission off, TLS only on"), "{out}");
    let mailboxes = env.json(&["mailbox", "list", "--domain", "acme.example", "--json"]);
    assert_eq!((mailboxes[0]["access"].as_str(), mailboxes[0]["submission"].as_bool()), (Some("none"), Some(false)));

    env.ok(&["mailbox", "password", "max@acme.example", "--password-stdin"], "a brand new long passphrase\n");

    let out = env.ok(&["mailbox", "remove", "max@acme.example"], "");
    assert!(out.contains("removed its alias buch@xn--bcher-kva.example"), "{out}");
    assert!(env.json(&["alias", "list", "--json"]).as_array().expect("array").is_empty());
    env.ok(&["domain-alias", "remove", "acme.example.org"], "");
    env.ok(&["domain", "remove", "acme.example"], "");
    env.ok(&["domain", "remove", "bücher.example", "--cascade"], "");
    env.ok(&["customer", "remove", "acme"], "");
    assert_eq!(addresses(&env.json(&["customer", "list", "--json"]), "name"), ["root"]);
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let env = Env::new();
    env.acme();
    env.ok(&["customer", "add", "globex", "--password-stdin"], "globex panel passphrase 7\n");
    env.ok(&["domain", "add", "globex.example", "--customer", "globex", "--verified"], "");
    env.ok(&["mailbox", "add", "hank@globex.example", "--password-stdin"], &format!("{STRONG}\n"));
    let before = env.json(&["mailbox", "list", "--json"]);

    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["mailbox", "add", "x@unknown.example", "--password-stdin"],
            STRONG,
            "the domain unknown.example is not set up here",
        ),
        (&["mailbox", "add", "max@acme.example", "--password-stdin"], STRONG, "already in use"),
        (&["mailbox", "add", "erika@acme.example", "--password-stdin"], "Sommer2024!!", "too easy to guess"),
        (&["mailbox", "add", "erika@acme.example", "--password-stdin"], "erika@acme.example", "too easy to guess"),
        (&["mailbox", "add", "erika@acme.example", "--password-stdin"], "kurz", "has 4 characters; use at least 12"),
        (&["mailbox", "add", "erika@acme.example"], "", "--password-stdin"),
        (&["alias", "add", "steal@acme.example", "--to", "hank@globex.example"], "", "same customer"),
        (&["alias", "add", "max@acme.example", "--to", "max@acme.example"], "", "already in use"),
        (&["domain", "add", "acme.example", "--customer", "globex"], "", "already set up"),
        (&["domain", "add", "new.example", "--customer", "nobody"], "", "no customer named nobody"),
        (&["domain", "remove", "acme.example"], "", "--cascade"),
        (&["customer", "remove", "acme"], "", "still owns 1 domain"),
        (&["customer", "add", "acme", "--password-stdin"], "another panel passphrase", "already exists"),
        (&["mailbox", "set", "max@acme.example"], "", "nothing to change"),
        (&["mailbox", "remove", "nobody@acme.example"], "", "no mailbox nobody@acme.example"),
        (&["domain-alias", "remove", "acme.example"], "", "not an alias domain"),
    ];
    for (args, stdin, needle) in cases {
        let err = env.fails(args, &format!("{stdin}\n"));
        assert!(err.contains(needle), "postfach {args:?}: {err:?} should mention {needle:?}");
        assert!(!err.contains(STRONG), "a password leaked into an error: {err}");
    }
    // Argument syntax errors come from the parser, with usage exit status 2.
    for (args, needle) in [
        (&["mailbox", "add", "not-an-address"][..], "has no @"),
        (&["mailbox", "add", "u%host@acme.example", "--access", "smtp"], "is not one of: imap, pop3, none"),
        (&["mailbox", "set", "max@acme.example", "--submission", "maybe"], "is not one of: on, off"),
        (&["domain", "add", "bad_domain.example", "--customer", "acme"], "not a valid domain name"),
    ] {
        let out = env.run(args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert_eq!(env.json(&["mailbox", "list", "--json"]), before, "nothing changed");
}

#[test]
fn a_domain_opts_in_to_certificates_and_certificates_lists_what_is_stored() {
    let env = Env::new();
    env.acme();
    let out = env.ok(&["domain", "set", "acme.example", "--certificates", "on"], "");
    assert!(out.contains("certificates for acme.example: on"), "{out}");
    let domains = env.json(&["domain", "list", "--json"]);
    assert_eq!(domains[0]["certificates"], serde_json::json!(true));
    let err = env.fails(&["domain", "set", "acme.example", "--certificates", "maybe"], "");
    assert!(err.contains("'maybe' is not one of: on, off"), "{err}");
    let err = env.fails(&["domain", "set", "nowhere.example", "--certificates", "on"], "");
    assert!(err.contains("nowhere.example"), "{err}");
    env.ok(&["domain", "set", "acme.example", "--certificates", "off"], "");
    assert_eq!(env.json(&["domain", "list", "--json"])[0]["certificates"], serde_json::json!(false));
    // Nothing ordered without [acme]: an empty list with its header.
    assert!(env.ok(&["certificates"], "").contains("SUBJECT"));
    assert_eq!(env.json(&["certificates", "--json"]), serde_json::json!([]));
}

#[test]
fn password_check_scores_and_explains() {
    let env = Env::new();
    let out = env.run(&["password-check", "--password-stdin"], "Passwort123!\n");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("refused: The password is too easy to guess"), "{text}");

    let out = env.ok(&["password-check", "--password-stdin", "--json"], &format!("{STRONG}\n"));
    let verdict: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(verdict["accepted"], true);
    assert!(verdict["score"].as_u64().expect("score") >= 3);

    // With --address the mailbox's own words count against it.
    env.acme();
    let out = env
        .run(&["password-check", "--password-stdin", "--address", "max@acme.example", "--json"], "acme.example.max\n");
    assert_eq!(out.status.code(), Some(1));
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(verdict["accepted"], false);
}

#[test]
fn invalid_config_reports_every_problem_at_once() {
    let env = Env::new();
    std::fs::write(
        env.config(),
        "hostname = 5\ndata_dir = \"data\"\n[listen]\nimap = [\"nowhere\"]\nimapp = []\n[security]\nmax_failures_per_ip = 0\n",
    )
    .expect("config");
    let err = env.fails(&["customer", "list"], "");
    for needle in ["hostname", "listen.imap[0]", "listen.imapp", "security.max_failures_per_ip"] {
        assert!(err.contains(needle), "{err} should mention {needle}");
    }
    let missing = Command::new(env!("CARGO_BIN_EXE_postfach"))
        .args(["--config", "/nonexistent/postfach.toml", "customer", "list"])
        .output()
        .expect("run");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/postfach.toml"));
}

#[test]
fn logins_lists_the_log_with_encryption_state() {
    let env = Env::new();
    env.acme();
    // Record two attempts the way the servers do, through the store.
    let db = format!("sqlite://{}/postfach.sqlite", env.data().display());
    tokio::runtime::Runtime::new().expect("runtime").block_on(async {
        use postfach_store::logins::LoginRecord;
        use postfach_store::{Scope, Store};
        use postfach_types::{EmailAddress, LoginResult, Mechanism, Service, TlsInfo, UnixTime};
        let store = Store::open(&db).await.expect("store");
        let max =
            store.mailbox(Scope::Platform, &EmailAddress::parse("max@acme.example").expect("a")).await.expect("mb");
        for (tls, result, at) in [(true, LoginResult::Ok, 100), (false, LoginResult::TlsRequired, 200)] {
            store
                .record_login(&LoginRecord {
                    at: UnixTime(UnixTime::now().0 - at),
                    customer_id: Some(max.customer_id),
                    mailbox_id: Some(max.id),
                    login: "max@acme.example".into(),
                    service: Service::Pop3,
                    remote_ip: "192.0.2.7".parse().expect("ip"),
                    tls: tls.then(|| TlsInfo { version: "TLSv1.3".into(), cipher: "TLS13_AES_256_GCM_SHA384".into() }),
                    mechanism: Mechanism::UserPass,
                    result,
                    credential: None,
                })
                .await
                .expect("record");
        }
        store.close().await;
    });
    let all = env.json(&["logins", "max@acme.example", "--json"]);
    assert_eq!(all.as_array().expect("array").len(), 2);
    assert_eq!(all[0]["result"], "ok");
    assert_eq!(all[1]["tls"], serde_json::Value::Null);
    let table = env.ok(&["logins", "--unencrypted"], "");
    assert!(table.contains("UNENCRYPTED") && table.contains("tls_required"), "{table}");
    assert!(!table.contains("TLSv1.3"), "{table}");
    assert_eq!(env.json(&["logins", "--failed", "--limit", "5", "--json"]).as_array().expect("array").len(), 1);
    let err = env.fails(&["logins", "nobody@acme.example"], "");
    assert!(err.contains("no mailbox"), "{err}");
}

#[test]
fn serve_demo_creates_everything_and_stops_on_sigterm() {
    let env = Env::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_postfach"))
        .args(["--config".as_ref(), env.config().as_os_str(), "serve".as_ref(), "--demo".as_ref()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let printed = Printed::of(&mut child).demo_logins(Duration::from_secs(60));
    let demo: Vec<&String> = printed.iter().filter(|l| l.starts_with("demo login:")).collect();
    wait_for_stop_handler(&child, Duration::from_secs(10));
    assert!(demo.iter().all(|l| l.contains("password: ")), "{demo:?}");
    assert!(demo[1].starts_with("demo login: alice@example.test"), "{demo:?}");
    assert!(env.data().join("tls/cert.pem").exists() && env.data().join("tls/key.pem").exists());
    assert!(env.data().join("postfach.sqlite").exists());

    // A change made with the CLI while the server runs.
    env.ok(&["mailbox", "set", "bob@example.test", "--access", "pop3"], "");

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let exit = wait_with_timeout(&mut child, Duration::from_secs(30));
    assert_eq!(exit.and_then(|s| s.code()), Some(0), "clean exit on SIGTERM");

    // A second --demo run creates nothing new and prints no passwords.
    let mut again = Command::new(env!("CARGO_BIN_EXE_postfach"))
        .args(["--config".as_ref(), env.config().as_os_str(), "serve".as_ref(), "--demo".as_ref()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start again");
    // The demo objects are there once it says so; then stop it and read the rest.
    let output = Printed::of(&mut again);
    let mut printed = output.demo_logins(Duration::from_secs(60));
    wait_for_stop_handler(&again, Duration::from_secs(10));
    let status = Command::new("kill").args(["-TERM", &again.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let exit = wait_with_timeout(&mut again, Duration::from_secs(30));
    assert_eq!(exit.and_then(|s| s.code()), Some(0), "clean exit on SIGTERM");
    printed.extend(output.rest(Duration::from_secs(10)));
    let (demo, rest): (Vec<String>, Vec<String>) = printed.into_iter().partition(|l| l.starts_with("demo login:"));
    assert_eq!(demo.len(), 3, "{demo:?}");
    assert!(demo.iter().all(|l| l.contains("exists already") && !l.contains("password: ")), "{demo:?}");
    assert_eq!(rest, ["panel: off ([listen] https is empty)"], "the panel's address, or why there is none");
    let domains = env.json(&["domain", "list", "--json"]);
    assert_eq!(addresses(&domains, "name"), ["example.test"]);
    assert_eq!(domains[0]["verified"], true);
    let mailboxes = env.json(&["mailbox", "list", "--json"]);
    assert_eq!(addresses(&mailboxes, "address"), ["alice@example.test", "bob@example.test"]);
    assert_eq!(mailboxes[1]["access"], "pop3");
    assert_key_is_private(&env.data().join("tls/key.pem"));
}

/// A child's stdout, read line by line on a thread of its own so that waits can time out.
struct Printed(std::sync::mpsc::Receiver<String>);

impl Printed {
    fn of(child: &mut std::process::Child) -> Self {
        let stdout = child.stdout.take().expect("stdout");
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Printed(receive)
    }

    /// The lines up to the third `demo login:` one (printed once the demo objects exist);
    /// fails the test after `limit` or when the output ends first.
    fn demo_logins(&self, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut lines = Vec::new();
        while lines.iter().filter(|l: &&String| l.starts_with("demo login:")).count() < 3 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(e) => panic!("three demo logins within {limit:?} ({e}); printed: {lines:?}"),
            }
        }
        lines
    }

    /// Whatever else is printed until the output ends, which must be within `limit`.
    fn rest(&self, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut lines = Vec::new();
        loop {
            match self.0.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => lines.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return lines,
                Err(e) => panic!("the output did not end within {limit:?} ({e}); printed: {lines:?}"),
            }
        }
    }
}

/// Waits until the process catches SIGTERM (the server sets up its handler right after
/// printing the demo logins; a signal before that would kill it uncleanly).
fn wait_for_stop_handler(child: &std::process::Child, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        let caught = status.lines().find_map(|l| l.strip_prefix("SigCgt:")).map(str::trim).unwrap_or("0");
        if u64::from_str_radix(caught, 16).is_ok_and(|mask| mask & (1 << (15 - 1)) != 0) {
            return;
        }
        assert!(Instant::now() < deadline, "no SIGTERM handler within {limit:?}: {status}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_key_is_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).expect("key").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", path.display());
}

fn wait_with_timeout(child: &mut std::process::Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}

#[test]
fn quotas_are_set_with_sizes_and_shown_with_usage() {
    let env = Env::new();
    env.acme();
    let out = env.ok(&["customer", "set", "acme", "--quota", "50G"], "");
    assert!(out.contains("acme: quota 50 GiB (0 bytes in use)"), "{out}");
    let out = env.ok(
        &["mailbox", "set", "max@acme.example", "--quota", "2G", "--quota-messages", "1000", "--language", "de"],
        "",
    );
    assert!(out.contains("0 bytes of 2 GiB (0 %), 0 of 1000 messages, language de"), "{out}");
    let listed = env.json(&["mailbox", "list", "--json"]);
    let max = &listed[0];
    assert_eq!(max["quota_bytes"], 2u64 << 30);
    assert_eq!(max["quota_messages"], 1000);
    assert_eq!((max["used_bytes"].as_u64(), max["language"].as_str()), (Some(0), Some("de")));
    let table = env.ok(&["mailbox", "list"], "");
    assert!(table.contains("USAGE") && table.contains("0 bytes of 2 GiB (0 %), 0 of 1000 messages"), "{table}");
    assert!(env.ok(&["customer", "list"], "").contains("50 GiB"));

    let before = env.json(&["mailbox", "list", "--json"]);
    let size_error = "a storage limit is a whole number of bytes or of K, M, G or T";
    for (args, needle) in [
        (&["mailbox", "set", "max@acme.example", "--quota", "2X"][..], size_error),
        (&["mailbox", "set", "max@acme.example", "--quota", "1.5G"], size_error),
        (&["mailbox", "set", "max@acme.example", "--quota", "0"], size_error),
        (&["mailbox", "set", "max@acme.example", "--quota", "99999999T"], size_error),
        (&["customer", "set", "acme", "--quota", "lots"], size_error),
        (&["mailbox", "set", "max@acme.example", "--quota-messages", "many"], "a message limit is a whole number"),
        (&["mailbox", "set", "max@acme.example", "--language", "fr"], "the language must be de or en"),
        // Parsed before anything changes: the good --quota is not applied either.
        (&["mailbox", "set", "max@acme.example", "--quota", "1G", "--language", "fr"], "de or en"),
        (
            &["mailbox", "set", "max@acme.example", "--quota", "60G"],
            "cannot be larger than its customer's total of 50 GiB",
        ),
        (&["customer", "set", "acme", "--quota", "1G"], "has a storage limit of 2 GiB of its own"),
    ] {
        let err = env.fails(args, "");
        assert!(err.contains(needle), "postfach {args:?}: {err:?} should mention {needle:?}");
    }
    assert_eq!(env.json(&["mailbox", "list", "--json"]), before, "nothing changed");

    env.ok(&["mailbox", "set", "max@acme.example", "--quota", "none", "--quota-messages", "none"], "");
    let max = &env.json(&["mailbox", "list", "--json"])[0];
    assert!(max["quota_bytes"].is_null() && max["quota_messages"].is_null(), "{max}");
    let out = env.ok(&["customer", "set", "acme", "--quota", "none"], "");
    assert!(out.contains("acme: no quota"), "{out}");
}

#[test]
fn warning_switches_and_the_contact_address() {
    let env = Env::new();
    env.acme();
    let out = env.ok(&["mailbox", "set", "max@acme.example", "--warn", "locked=off", "--warn", "exposed=off"], "");
    assert!(out.contains("warnings off: exposed, locked"), "{out}");
    let out = env.ok(&["mailbox", "set", "max@acme.example", "--warn", "exposed=on"], "");
    assert!(out.contains("warnings off: locked"), "{out}");
    for (args, needle) in [
        (&["mailbox", "set", "max@acme.example", "--warn", "spam=off"][..], "KIND=on or KIND=off"),
        (&["mailbox", "set", "max@acme.example", "--warn", "locked"], "KIND=on or KIND=off"),
        (&["mailbox", "set", "max@acme.example", "--warn", "locked=maybe"], "KIND=on or KIND=off"),
        // Parsed before anything changes.
        (&["mailbox", "set", "max@acme.example", "--warn", "locked=on", "--language", "fr"], "de or en"),
        (&["customer", "set", "acme", "--contact", "not an address"], "address"),
    ] {
        let err = env.fails(args, "");
        assert!(err.contains(needle), "postfach {args:?}: {err:?} should mention {needle:?}");
    }
    let out = env.ok(&["mailbox", "set", "max@acme.example", "--warn", "unencrypted=on"], "");
    assert!(out.contains("warnings off: locked"), "still off: {out}");

    let out = env.ok(&["customer", "set", "acme", "--contact", "office@acme.example"], "");
    assert!(out.contains("acme: warning mails are copied to office@acme.example"), "{out}");
    let listed = env.json(&["customer", "list", "--json"]);
    let acme = listed.as_array().and_then(|a| a.iter().find(|c| c["name"] == "acme")).expect("acme");
    assert_eq!(acme["contact_address"], "office@acme.example");
    let out = env.ok(&["customer", "set", "acme", "--contact", "none"], "");
    assert!(out.contains("acme: no contact address"), "{out}");

    // Spam thresholds (docs/spam.md): scores, `none`, `default`; a Junk threshold at or
    // above the refuse threshold is refused.
    let out = env.ok(&["customer", "set", "acme", "--spam-reject", "12", "--spam-junk", "5.5"], "");
    assert!(out.contains("acme: spam refused from 12.00, to Junk from 5.50"), "{out}");
    let out = env.ok(&["customer", "set", "acme", "--spam-reject", "none"], "");
    assert!(out.contains("acme: spam refused from none, to Junk from 5.50"), "{out}");
    let err = env.fails(&["customer", "set", "acme", "--spam-reject", "4"], "");
    assert!(err.contains("Junk threshold must be below"), "{err}");
    let err = env.fails(&["customer", "set", "acme", "--spam-junk", "lots"], "");
    assert!(err.contains("spam threshold is a score"), "{err}");
    let listed = env.json(&["customer", "list", "--json"]);
    let acme = listed.as_array().and_then(|a| a.iter().find(|c| c["name"] == "acme")).expect("acme");
    assert_eq!((&acme["spam_reject"], &acme["spam_junk"]), (&"none".into(), &"5.50".into()));
    env.ok(&["customer", "set", "acme", "--spam-reject", "default", "--spam-junk", "default"], "");
}

/// Logs in to `service` as `login` through the gate, over TLS.
fn logs_in(env: &Env, service: postfach_types::Service, login: &str, password: &str) -> bool {
    let db = format!("sqlite://{}/postfach.sqlite", env.data().display());
    tokio::runtime::Runtime::new().expect("runtime").block_on(async {
        use postfach_auth::{Attempt, AuthSettings, Authenticator, Connection, PasswordHasher};
        let store = postfach_store::Store::open(&db).await.expect("store");
        let auth =
            Authenticator::new(store.clone(), AuthSettings::default(), PasswordHasher::new(1)).await.expect("auth");
        let connection = Connection {
            remote_ip: "127.0.0.1".parse().expect("ip"),
            tls: Some(postfach_types::TlsInfo { version: "TLSv1.3".into(), cipher: "TLS13_AES_128_GCM_SHA256".into() }),
        };
        let secret = postfach_types::Secret::new(password.to_string());
        let attempt = Attempt {
            service,
            mechanism: postfach_types::Mechanism::ImapLogin,
            login,
            secret: &secret,
            connection: &connection,
        };
        let ok = auth.authenticate(attempt).await.is_ok();
        store.close().await;
        ok
    })
}

#[test]
fn app_passwords_from_the_command_line() {
    use postfach_types::Service;
    let env = Env::new();
    env.acme();
    // Only the password, on one line.
    let out = env.ok(
        &["mailbox", "app-password", "add", "max@acme.example", "--name", "Phone", "--service", "imap,submission"],
        "",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    let phone = lines[0].to_string();
    assert!(logs_in(&env, Service::Imap, "max@acme.example", &phone));
    assert!(!logs_in(&env, Service::Pop3, "max@acme.example", &phone));
    // --json: name, services, password.
    let created = env.json(&[
        "mailbox",
        "app-password",
        "add",
        "max@acme.example",
        "--name",
        "Laptop",
        "--service",
        "submission",
        "--json",
    ]);
    assert_eq!(created["name"], "Laptop");
    assert_eq!(created["services"], serde_json::json!(["submission"]));
    let laptop = created["password"].as_str().expect("password").to_string();
    assert!(logs_in(&env, Service::Submission, "max@acme.example", &laptop));
    // Refusals say what to do.
    let err =
        env.fails(&["mailbox", "app-password", "add", "max@acme.example", "--name", "Old", "--service", "pop3"], "");
    assert!(err.contains("does not allow pop3"), "{err}");
    let err =
        env.fails(&["mailbox", "app-password", "add", "max@acme.example", "--name", "Phone", "--service", "imap"], "");
    assert!(err.contains("already has an app password named 'Phone'"), "{err}");
    let err = env.fails(&["mailbox", "app-password", "add", "max@acme.example", "--name", "X", "--service", "ftp"], "");
    assert!(err.contains("imap, pop3, submission and sieve"), "{err}");
    // The list: names and services, never a password.
    let listed = env.json(&["mailbox", "app-password", "list", "max@acme.example", "--json"]);
    assert_eq!(addresses(&listed, "name"), ["Laptop", "Phone"]);
    assert_eq!(listed[1]["services"], serde_json::json!(["imap", "submission"]));
    assert_eq!(listed[1]["last_service"], "imap");
    let table = env.ok(&["mailbox", "app-password", "list", "max@acme.example"], "");
    assert!(table.contains("Phone") && table.contains("imap,submission") && !table.contains(&phone), "{table}");
    // The login list names the credential.
    let logins = env.ok(&["logins", "max@acme.example"], "");
    assert!(logins.contains("app password Phone"), "{logins}");
    // Devices must use app passwords: the main password opens only the panel.
    let set = env.ok(&["mailbox", "set", "max@acme.example", "--app-passwords-only", "on"], "");
    assert!(set.contains("app passwords only on"), "{set}");
    assert!(!logs_in(&env, Service::Imap, "max@acme.example", STRONG));
    assert!(logs_in(&env, Service::Panel, "max@acme.example", STRONG));
    // Revoked.
    let out = env.ok(&["mailbox", "app-password", "remove", "max@acme.example", "Phone"], "");
    assert!(out.contains("revoked app password Phone"), "{out}");
    assert!(!logs_in(&env, Service::Imap, "max@acme.example", &phone));
    let err = env.fails(&["mailbox", "app-password", "remove", "max@acme.example", "Phone"], "");
    assert!(err.contains("no app password named 'Phone'"), "{err}");
}

#[test]
fn generated_passwords_are_printed_once() {
    use postfach_types::Service;
    let env = Env::new();
    env.acme();
    let out = env.run(&["mailbox", "add", "anna@acme.example", "--generate"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with("created mailbox anna@acme.example"), "{stdout}");
    let generated = lines[1];
    assert!(generated.len() >= 24 && !generated.contains(' '), "{generated}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("password manager"));
    assert!(logs_in(&env, Service::Imap, "anna@acme.example", generated));

    let out = env.ok(&["mailbox", "password", "anna@acme.example", "--generate"], "");
    let new = out.lines().nth(1).expect("the new password").to_string();
    assert_ne!(new, generated);
    assert!(logs_in(&env, Service::Imap, "anna@acme.example", &new));
    assert!(!logs_in(&env, Service::Imap, "anna@acme.example", generated));
    let err = env.fails(&["mailbox", "password", "anna@acme.example", "--generate", "--password-stdin"], "x\n");
    assert!(err.contains("cannot be used with"), "{err}");
}

#[test]
fn sieve_scripts_from_the_command_line() {
    let env = Env::new();
    env.acme();
    let mailbox = "max@acme.example";
    let script = "require [\"fileinto\", \"mailbox\"];\nif header :contains \"subject\" \"invoice\" {\n  fileinto :create \"Invoices\";\n}\n";
    let file = env.dir.path().join("filters.sieve");
    std::fs::write(&file, script).expect("script file");
    let file = file.to_str().expect("path");
    env.ok(&["mailbox", "sieve", "put", mailbox, "filters", file], "");
    env.ok(&["mailbox", "sieve", "put", mailbox, "spare", "-"], "keep;\n");
    assert_eq!(env.ok(&["mailbox", "sieve", "get", mailbox, "filters"], ""), script);

    // A script with an error is refused with its line and column, and not stored.
    let err = env.fails(&["mailbox", "sieve", "put", mailbox, "broken", "-"], "keep;\nfileinto \"Trash\";\n");
    assert!(err.contains("line 2, column"), "{err}");
    assert!(err.contains("require \"fileinto\""), "{err}");
    let err = env.fails(&["mailbox", "sieve", "put", mailbox, "notify", "-"], "require \"enotify\";\nkeep;\n");
    assert!(err.contains("line 1, column 9") && err.contains("not supported"), "{err}");

    env.ok(&["mailbox", "sieve", "activate", mailbox, "filters"], "");
    let listed = env.json(&["mailbox", "sieve", "list", mailbox, "--json"]);
    let rows: Vec<(String, bool)> = listed
        .as_array()
        .expect("array")
        .iter()
        .map(|s| (s["name"].as_str().expect("name").to_string(), s["active"].as_bool().expect("active")))
        .collect();
    assert_eq!(rows, [("filters".to_string(), true), ("spare".to_string(), false)]);
    let err = env.fails(&["mailbox", "sieve", "remove", mailbox, "filters"], "");
    assert!(err.contains("active"), "{err}");
    env.ok(&["mailbox", "sieve", "activate", mailbox, "--none"], "");
    env.ok(&["mailbox", "sieve", "remove", mailbox, "filters"], "");
    let err = env.fails(&["mailbox", "sieve", "get", mailbox, "filters"], "");
    assert!(err.contains("no filter script named 'filters'"), "{err}");
}
