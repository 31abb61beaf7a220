//! `postfach import`: a Maildir written by a real Dovecot (Debian's dovecot-lda delivering,
//! doveadm setting flags and keywords) and an mbox file with escaped `From ` lines and
//! Status flags, imported with the real binary while the server runs, and read back over
//! IMAPS with Python's imaplib: folders, flags, keywords, internal dates and bytes.

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

const ADDRESS: &str = "max@acme.example";
const PASSWORD: &str = "violet mango tractor whisper";

struct Env {
    dir: tempfile::TempDir,
    imaps: u16,
}

impl Env {
    /// A configuration with only IMAPS, and a mailbox.
    fn new(max_message_size: u64) -> Env {
        let imaps = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let env = Env { dir: tempfile::tempdir().expect("temp dir"), imaps };
        let config = format!(
            "hostname = \"mail.postfach.test\"\ndata_dir = \"data\"\n\
             [listen]\nsmtp = []\nsubmission = []\nsubmissions = []\nimap = []\n\
             imaps = [\"127.0.0.1:{imaps}\"]\npop3 = []\npop3s = []\nmanagesieve = []\nhttps = []\nhttp = []\n\
             [limits]\nmax_message_size = {max_message_size}\nmessage_memory = {}\n[security]\nwarning_mails = false\n[log]\nlevel = \"warn\"\n",
            max_message_size * 8
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

    fn serve(&self) -> Child {
        common::serve(&self.config(), Stdio::null(), &[self.imaps])
    }

    /// Every message of every folder, read over IMAPS.
    fn read_back(&self) -> BTreeMap<String, Vec<Stored>> {
        let script = r#"
import imaplib, ssl, os, re, json, base64, datetime
ctx = ssl.create_default_context(cafile=os.environ['CERT'])
c = imaplib.IMAP4_SSL('localhost', int(os.environ['PORT']), ssl_context=ctx)
c.login(os.environ['USER'], os.environ['PASS'])
out = {}
for line in c.list()[1]:
    name = re.match(rb'\(.*?\) "." (.*)', line).group(1).decode()
    name = name[1:-1] if name.startswith('"') else name
    if c.select('"%s"' % name, readonly=True)[0] != 'OK':
        continue
    messages = []
    typ, data = c.uid('FETCH', '1:*', '(FLAGS INTERNALDATE BODY.PEEK[])')
    for item in data:
        if not isinstance(item, tuple):
            continue
        head = item[0].decode()
        date = re.search(r'INTERNALDATE "([^"]*)"', head).group(1)
        messages.append({
            'uid': int(re.search(r'UID (\d+)', head).group(1)),
            'flags': sorted(f for f in re.search(r'FLAGS \(([^)]*)\)', head).group(1).split() if f != '\\Recent'),
            'date': int(datetime.datetime.strptime(date, '%d-%b-%Y %H:%M:%S %z').timestamp()),
            'body': base64.b64encode(item[1]).decode(),
        })
    out[name] = messages
c.logout()
print(json.dumps(out))
"#;
        let out = Command::new("python3")
            .arg("-c")
            .arg(script)
            .env("PORT", self.imaps.to_string())
            .env("CERT", self.dir.path().join("data/tls/cert.pem"))
            .env("USER", ADDRESS)
            .env("PASS", PASSWORD)
            .output()
            .expect("python3");
        assert!(out.status.success(), "imaplib: {}", String::from_utf8_lossy(&out.stderr));
        let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let mut folders = BTreeMap::new();
        for (name, messages) in parsed.as_object().expect("object") {
            let messages = messages
                .as_array()
                .expect("array")
                .iter()
                .map(|m| Stored {
                    flags: m["flags"]
                        .as_array()
                        .expect("flags")
                        .iter()
                        .map(|f| f.as_str().expect("str").into())
                        .collect(),
                    date: m["date"].as_i64().expect("date"),
                    body: base64_decode(m["body"].as_str().expect("body")),
                })
                .collect();
            folders.insert(name.clone(), messages);
        }
        folders
    }

    fn import(&self, args: &[&str]) -> (bool, String) {
        let mut all = vec!["import"];
        all.extend_from_slice(args);
        let out = common::postfach(&self.config(), &all, "");
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stored {
    flags: Vec<String>,
    date: i64,
    body: Vec<u8>,
}

fn base64_decode(text: &str) -> Vec<u8> {
    let out =
        Command::new("base64").arg("-d").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(text.as_bytes())?;
            c.wait_with_output()
        });
    out.expect("base64").stdout
}

fn crlf(text: &str) -> Vec<u8> {
    text.replace("\r\n", "\n").replace('\n', "\r\n").into_bytes()
}

/// A real Dovecot with a Maildir++ mail location in `dir`, used through dovecot-lda and
/// doveadm without its daemons (as the unprivileged user `nobody` when the test runs as root).
struct Dovecot {
    dir: PathBuf,
    as_nobody: bool,
}

impl Dovecot {
    fn new(dir: &Path) -> Dovecot {
        let as_nobody = rustix_uid_is_root();
        let home = dir.join("home");
        std::fs::create_dir_all(&home).expect("home");
        std::fs::create_dir_all(dir.join("run")).expect("run");
        let conf = format!(
            "protocols =\nssl = no\nlog_path = {d}/dovecot.log\nbase_dir = {d}/run\nstate_dir = {d}/run\n\
             mail_location = maildir:~/Maildir\nfirst_valid_uid = 1\n\
             namespace inbox {{\n  inbox = yes\n  separator = /\n}}\nlda_mailbox_autocreate = yes\n",
            d = dir.display()
        );
        std::fs::write(dir.join("dovecot.conf"), conf).expect("dovecot.conf");
        if as_nobody {
            let status = Command::new("chown").arg("-R").arg("65534:65534").arg(dir).status().expect("chown");
            assert!(status.success());
        }
        Dovecot { dir: dir.to_path_buf(), as_nobody }
    }

    fn command(&self, program: &str) -> Command {
        let mut command = if self.as_nobody {
            let mut c = Command::new("setpriv");
            c.args(["--reuid", "65534", "--regid", "65534", "--clear-groups", program]);
            c
        } else {
            Command::new(program)
        };
        command.env("HOME", self.dir.join("home")).env("USER", "max").arg("-c").arg(self.dir.join("dovecot.conf"));
        command
    }

    fn deliver(&self, folder: &str, message: &str) {
        let mut child = self
            .command("/usr/lib/dovecot/dovecot-lda")
            .args(["-m", folder])
            .stdin(Stdio::piped())
            .spawn()
            .expect("dovecot-lda");
        use std::io::Write;
        child.stdin.take().expect("stdin").write_all(message.as_bytes()).expect("write");
        let status = child.wait().expect("dovecot-lda ran");
        assert!(status.success(), "dovecot-lda: {:?}", std::fs::read_to_string(self.dir.join("dovecot.log")));
    }

    fn flags(&self, folder: &str, uid: u32, flags: &str) {
        let out = self
            .command("doveadm")
            .args(["flags", "add", flags, "mailbox", folder, "uid", &uid.to_string()])
            .output()
            .expect("doveadm");
        assert!(out.status.success(), "doveadm: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn maildir(&self) -> PathBuf {
        self.dir.join("home/Maildir")
    }

    /// The file of the message whose Message-ID is `id`.
    fn file_of(&self, id: &str) -> PathBuf {
        let mut pending = vec![self.maildir()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                } else if std::fs::read_to_string(&path).is_ok_and(|t| t.contains(&format!("Message-ID: {id}\n"))) {
                    return path;
                }
            }
        }
        panic!("no file holds {id}");
    }
}

fn rustix_uid_is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

fn message(id: &str, subject: &str, body: &str) -> String {
    format!("From: Sender <sender@example.org>\nTo: {ADDRESS}\nSubject: {subject}\nMessage-ID: {id}\n\n{body}\n")
}

#[test]
fn maildir_written_by_dovecot_imports_with_folders_flags_and_dates() {
    let dovecot_dir = tempfile::tempdir().expect("tmp");
    let dovecot = Dovecot::new(dovecot_dir.path());
    // (Message-ID, Dovecot folder, our folder, flags given to Dovecot, flags expected over IMAP)
    let cases: &[(&str, &str, &str, &str, &[&str])] = &[
        ("<1@dovecot.test>", "INBOX", "INBOX", "\\Seen $Label1 Work", &["$Label1", "Work", "\\Seen"]),
        ("<2@dovecot.test>", "INBOX", "INBOX", "\\Deleted \\Draft", &["\\Deleted", "\\Draft"]),
        ("<3@dovecot.test>", "INBOX", "INBOX", "", &[]),
        ("<4@dovecot.test>", "Work/Projects", "Work/Projects", "\\Flagged \\Answered", &["\\Answered", "\\Flagged"]),
        ("<5@dovecot.test>", "Work/Projects", "Work/Projects", "Work", &["Work"]),
        ("<6@dovecot.test>", "Sent Items", "Sent", "\\Seen", &["\\Seen"]),
        ("<7@dovecot.test>", "Köln", "K&APY-ln", "", &[]),
    ];
    for (i, (id, folder, _, flags, _)) in cases.iter().enumerate() {
        let body = format!("Body of message {i}.\n\nFrom here on, a line that mbox would escape.\nBye.");
        dovecot.deliver(folder, &message(id, &format!("message {i}"), &body));
        if !flags.is_empty() {
            let uid = cases[..i].iter().filter(|c| c.1 == *folder).count() as u32 + 1;
            dovecot.flags(folder, uid, flags);
        }
    }
    // Internal dates: Dovecot keeps them as the files' modification times.
    let mut dates = BTreeMap::new();
    for (i, (id, ..)) in cases.iter().enumerate() {
        let date = 1_600_000_000 + i as i64 * 86_400 + 17;
        let file = std::fs::File::options().write(true).open(dovecot.file_of(id)).expect("open");
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(date as u64)).expect("mtime");
        dates.insert(*id, date);
    }
    assert!(dovecot.maildir().join(".Work.Projects").is_dir(), "Dovecot's Maildir++ layout");
    assert!(dovecot.maildir().join(".K&APY-ln").is_dir(), "Dovecot's modified UTF-7 names");

    let env = Env::new(1 << 20);
    let mut server = env.serve();
    let maildir = dovecot.maildir();
    let (ok, said) = env.import(&["maildir", maildir.to_str().expect("utf-8"), "--into", ADDRESS]);
    assert!(ok, "import: {said}");
    assert!(said.contains("imported 7 messages"), "{said}");

    let folders = env.read_back();
    for (i, (id, _, ours, _, flags)) in cases.iter().enumerate() {
        let original = std::fs::read_to_string(dovecot.file_of(id)).expect("file");
        let stored = folders
            .get(*ours)
            .and_then(|messages| messages.iter().find(|m| m.body == crlf(&original)))
            .unwrap_or_else(|| panic!("message {i} not in {ours} byte for byte: {:?}", folders.keys()));
        assert_eq!(stored.flags, *flags, "flags of message {i}");
        assert_eq!(stored.date, dates[id], "internal date of message {i}");
    }
    assert_eq!(folders["INBOX"].len(), 3);
    // Imported in Dovecot's order.
    let subjects: Vec<bool> = (0..3)
        .map(|i| String::from_utf8_lossy(&folders["INBOX"][i].body).contains(&format!("Subject: message {i}\r\n")))
        .collect();
    assert_eq!(subjects, [true, true, true]);

    server.kill().expect("stop");
    server.wait().expect("reaped");
}

#[test]
fn mbox_with_escaped_from_lines_and_status_flags() {
    let env = Env::new(4096);
    let big = "x".repeat(100);
    let mut mbox = String::from(
        "From alice@example.org Thu Nov  5 09:08:07 2020\n\
         From: Alice <alice@example.org>\nSubject: first\nMessage-ID: <m1@mbox.test>\nStatus: RO\nX-Status: AF\n\n\
         Hello.\n>From the start of a line.\n>>From a quoted one.\n\n\
         From bob@example.org Fri Nov  6 10:00:00 2020\n\
         From: Bob <bob@example.org>\nSubject: second\nMessage-ID: <m2@mbox.test>\nStatus: O\n\nSecond body.\n\n\
         From carol@example.org Sat Nov  7 11:00:00 2020\n\
         From: Carol <carol@example.org>\nSubject: too large\nMessage-ID: <m3@mbox.test>\n\n",
    );
    for _ in 0..60 {
        mbox.push_str(&big);
        mbox.push('\n');
    }
    mbox.push_str(
        "\nFrom dave@example.org Sun Nov  8 12:00:00 2020\n\
         From: Dave <dave@example.org>\nSubject: draft\nMessage-ID: <m4@mbox.test>\nX-Status: T\n\nLast.\n",
    );
    let file = env.dir.path().join("old.mbox");
    std::fs::write(&file, &mbox).expect("mbox");

    let mut server = env.serve();
    let (ok, said) =
        env.import(&["mbox", file.to_str().expect("utf-8"), "--into", ADDRESS, "--folder", "Archive/2020"]);
    assert!(!ok, "a skipped message makes the exit status 1: {said}");
    assert!(said.contains("imported 3 messages") && said.contains("skipped 1"), "{said}");
    assert!(said.contains("skipped message 3") && said.contains("larger than the maximum message size"), "{said}");

    let folders = env.read_back();
    let archive = &folders["Archive/2020"];
    assert_eq!(archive.len(), 3);
    assert_eq!(
        archive[0].body,
        crlf(
            "From: Alice <alice@example.org>\nSubject: first\nMessage-ID: <m1@mbox.test>\n\n\
             Hello.\nFrom the start of a line.\n>From a quoted one.\n"
        )
    );
    assert_eq!(archive[0].flags, ["\\Answered", "\\Flagged", "\\Seen"]);
    assert_eq!(archive[0].date, 1_604_567_287);
    assert_eq!(
        archive[1].body,
        crlf("From: Bob <bob@example.org>\nSubject: second\nMessage-ID: <m2@mbox.test>\n\nSecond body.\n")
    );
    assert!(archive[1].flags.is_empty(), "{:?}", archive[1].flags);
    assert_eq!(archive[1].date, 1_604_656_800);
    assert_eq!(archive[2].flags, ["\\Draft"]);
    assert!(String::from_utf8_lossy(&archive[2].body).ends_with("Last.\r\n"));

    server.kill().expect("stop");
    server.wait().expect("reaped");
}
