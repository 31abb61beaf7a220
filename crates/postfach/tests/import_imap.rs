//! `postfach import imap`: moving in from a real Dovecot (Debian's dovecot-imapd) on
//! loopback with a test certificate and a passwd-file user, filled over IMAP with a few
//! hundred messages in several folders (INBOX, Sent marked `\Sent`, a `\Trash` folder
//! with another name, a nested folder, a folder with a non-ASCII name), flags, keywords
//! and internal dates. The real binary copies them; Python's imaplib reads both servers
//! back. A run killed midway and resumed ends with nothing missing and nothing twice; a
//! second run copies nothing; a folder re-created on the old server (new UIDVALIDITY)
//! is read again without duplicates; the certificate is verified.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use postfach_testdovecot::{
    Dovecot, Folders, OLD_LOGIN, OLD_PASSWORD, READ_ALL, fill, free_port, parse_folders, python_imap,
};

const ADDRESS: &str = "max@acme.example";
const PASSWORD: &str = "violet mango tractor whisper";

struct Env {
    dir: tempfile::TempDir,
    imaps: u16,
}

impl Env {
    fn new() -> Env {
        let imaps = free_port();
        let env = Env { dir: tempfile::tempdir().expect("temp dir"), imaps };
        let config = format!(
            "hostname = \"mail.postfach.test\"\ndata_dir = \"data\"\n\
             [listen]\nsmtp = []\nsubmission = []\nsubmissions = []\nimap = []\n\
             imaps = [\"127.0.0.1:{imaps}\"]\npop3 = []\npop3s = []\nhttps = []\nhttp = []\n\
             [security]\nwarning_mails = false\n[log]\nlevel = \"warn\"\n"
        );
        std::fs::write(env.config(), config).expect("config");
        common::postfach_ok(
            &env.config(),
            &["customer", "add", "acme", "--password-stdin"],
            "acme panel passphrase 42\n",
        );
        common::postfach_ok(&env.config(), &["domain", "add", "acme.example", "--customer", "acme", "--verified"], "");
        common::postfach_ok(&env.config(), &["mailbox", "add", ADDRESS, "--password-stdin"], &format!("{PASSWORD}\n"));
        env
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("postfach.toml")
    }

    fn import_args(from: &str, ca: Option<&Path>) -> Vec<String> {
        let mut args: Vec<String> =
            ["import", "imap", "--from", from, "--login", OLD_LOGIN, "--password-stdin", "--into", ADDRESS]
                .iter()
                .map(|s| s.to_string())
                .collect();
        if let Some(ca) = ca {
            args.push("--ca-file".into());
            args.push(ca.display().to_string());
        }
        args
    }

    fn import(&self, from: &str, ca: Option<&Path>, password: &str) -> (bool, String) {
        self.import_into(ADDRESS, from, ca, password)
    }

    fn import_into(&self, mailbox: &str, from: &str, ca: Option<&Path>, password: &str) -> (bool, String) {
        let mut args = Env::import_args(from, ca);
        args[8] = mailbox.to_string();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = common::postfach(&self.config(), &args, &format!("{password}\n"));
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// Every message of every folder in Postfach, read over IMAPS (the server runs only for it).
    fn read_back(&self) -> Folders {
        let mut server = common::serve(&self.config(), Stdio::null(), &[self.imaps]);
        let json = python_imap(self.imaps, &self.dir.path().join("data/tls/cert.pem"), ADDRESS, PASSWORD, READ_ALL);
        let _ = server.kill();
        let _ = server.wait();
        parse_folders(&json)
    }
}

/// The old server's folders under the names they get here (\Trash by its attribute).
fn expected(old: &Folders) -> Folders {
    old.iter()
        .map(|(name, messages)| {
            let ours = match name.as_str() {
                "Deleted Messages" => "Trash",
                other => other,
            };
            (ours.to_string(), messages.clone())
        })
        .collect()
}

fn assert_same(old: &Folders, ours: &Folders) {
    let expected = expected(old);
    for (name, messages) in &expected {
        let got = ours.get(name).unwrap_or_else(|| panic!("folder {name} missing here; have {:?}", ours.keys()));
        assert_eq!(got.len(), messages.len(), "{name}: message count");
        assert_eq!(got, messages, "{name}: dates, flags and bytes");
    }
    for (name, messages) in ours {
        if !expected.contains_key(name) {
            assert!(messages.is_empty(), "{name} should be empty, holds {}", messages.len());
        }
    }
}

fn copied(stderr: &str) -> u64 {
    let line = stderr.lines().find(|l| l.starts_with("imported ")).unwrap_or_else(|| panic!("no summary: {stderr}"));
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("count")
}

#[test]
fn moves_in_from_dovecot_resumes_and_copies_only_what_is_new() {
    let old_dir = tempfile::tempdir().expect("temp dir");
    let dovecot = Dovecot::start(old_dir.path());
    let folders = [("INBOX", 160), ("Sent", 60), ("Projects/2024", 40), ("K&APY-ln", 30), ("Deleted Messages", 8)];
    fill(&dovecot, &folders, 1);
    let old = parse_folders(&dovecot.python(READ_ALL));
    assert_eq!(old.values().map(Vec::len).sum::<usize>(), 298, "the old server holds the test's messages");
    assert!(old["INBOX"].iter().any(|m| m.1.contains("$Work")), "keywords are set on the old server");
    let env = Env::new();
    let imaps = format!("imaps://localhost:{}", dovecot.imaps);

    // Without the test CA the certificate cannot be verified: nothing is copied.
    let (ok, stderr) = env.import(&imaps, None, OLD_PASSWORD);
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("certificate"), "{stderr}");
    // A wrong password is the old server's refusal, said as such.
    let (ok, stderr) = env.import(&imaps, Some(&dovecot.ca()), "wrong");
    assert!(!ok);
    assert!(stderr.contains("refused the login"), "{stderr}");
    assert!(!stderr.contains("wrong"), "the password is never shown: {stderr}");

    // A run killed midway (after 50 INBOX messages are copied).
    let args = Env::import_args(&imaps, Some(&dovecot.ca()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_postfach"))
        .arg("--config")
        .arg(env.config())
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("postfach");
    child.stdin.take().expect("stdin").write_all(format!("{OLD_PASSWORD}\n").as_bytes()).expect("password");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    loop {
        let line = lines.next().expect("progress line before the end").expect("read");
        seen.push(line.clone());
        if line == "INBOX: 50 of 160" {
            break;
        }
        assert!(!line.starts_with("imported"), "the run ended before it could be killed: {seen:?}");
    }
    assert_eq!(seen.first().map(String::as_str), Some("INBOX: 0 of 160"), "progress per folder, n of m");
    child.kill().expect("kill");
    child.wait().expect("killed");

    // Resumed: it finishes, and in the end every message is here exactly once.
    let (ok, stderr) = env.import(&imaps, Some(&dovecot.ca()), OLD_PASSWORD);
    assert!(ok, "{stderr}");
    let resumed = copied(&stderr);
    assert!(resumed > 0 && resumed <= 298 - 50, "the resumed run copies only the rest: {resumed}\n{stderr}");
    assert!(stderr.contains("Deleted Messages -> Trash"), "the \\Trash folder goes to ours: {stderr}");
    assert!(stderr.contains("Köln -> Köln"), "modified UTF-7 decoded: {stderr}");
    assert_same(&old, &env.read_back());

    // A second run (over STARTTLS this time) copies nothing.
    let imap = format!("imap://localhost:{}", dovecot.imap);
    let (ok, stderr) = env.import(&imap, Some(&dovecot.ca()), OLD_PASSWORD);
    assert!(ok, "{stderr}");
    assert_eq!(copied(&stderr), 0, "{stderr}");

    // New mail on the old server, and a folder deleted and filled again with the same
    // messages (a new UIDVALIDITY): the new ones are copied, the re-created ones not twice.
    dovecot.python("c.delete('\"Projects/2024\"')");
    fill(&dovecot, &[("Projects/2024", 40)], 1);
    fill(&dovecot, &[("INBOX", 5)], 1000);
    let old = parse_folders(&dovecot.python(READ_ALL));
    let (ok, stderr) = env.import(&imaps, Some(&dovecot.ca()), OLD_PASSWORD);
    assert!(ok, "{stderr}");
    assert_eq!(copied(&stderr), 5, "{stderr}");
    assert!(stderr.contains("Projects/2024 -> Projects/2024: 0 copied, 40 already here"), "{stderr}");
    assert_same(&old, &env.read_back());

    // The quota applies: a full mailbox stops the import with a clear word; with room
    // again the next run goes on, and in the end every message is there once.
    let erika = "erika@acme.example";
    common::postfach_ok(&env.config(), &["mailbox", "add", erika, "--password-stdin"], &format!("{PASSWORD}\n"));
    common::postfach_ok(&env.config(), &["mailbox", "set", erika, "--quota-messages", "100"], "");
    let (ok, stderr) = env.import_into(erika, &imaps, Some(&dovecot.ca()), OLD_PASSWORD);
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("the mailbox is full"), "{stderr}");
    let first = copied(&stderr);
    assert!(first > 0 && first <= 100, "{stderr}");
    common::postfach_ok(&env.config(), &["mailbox", "set", erika, "--quota-messages", "1000"], "");
    let (ok, stderr) = env.import_into(erika, &imaps, Some(&dovecot.ca()), OLD_PASSWORD);
    assert!(ok, "{stderr}");
    assert_eq!(first + copied(&stderr), 303, "{stderr}");
}
