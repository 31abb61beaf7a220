//! `postfach backup` while mail arrives, and `postfach restore` into a fresh data_dir: the
//! real binary, real SMTP deliveries, IMAP read back with Python's imaplib, and mbsync
//! resynchronising against the restored server without downloading again.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postfach_testdns::{Data, Rr, TestDns};

const ADDRESS: &str = "max@acme.example";
const PASSWORD: &str = "violet mango tractor whisper";

struct Env {
    dir: tempfile::TempDir,
    smtp: u16,
    imaps: u16,
}

impl Env {
    fn new(dns: SocketAddr) -> Env {
        let free = || TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let env = Env { dir: tempfile::tempdir().expect("temp dir"), smtp: free(), imaps: free() };
        for (name, data) in [("original.toml", "data"), ("restored.toml", "restored")] {
            let config = format!(
                "hostname = \"mail.postfach.test\"\ndata_dir = \"{data}\"\n\
                 [listen]\nsmtp = [\"127.0.0.1:{}\"]\nsubmission = []\nsubmissions = []\nimap = []\n\
                 imaps = [\"127.0.0.1:{}\"]\npop3 = []\npop3s = []\nmanagesieve = []\nhttps = []\nhttp = []\n\
                 [dns]\nresolver = \"{dns}\"\n[security]\nwarning_mails = false\n[log]\nlevel = \"warn\"\n",
                env.smtp, env.imaps
            );
            std::fs::write(env.dir.path().join(name), config).expect("config");
        }
        env
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts `postfach serve` with `config` and waits until both listeners accept.
    fn serve(&self, config: &str) -> Child {
        common::serve(&self.path(config), Stdio::null(), &[self.smtp, self.imaps])
    }

    /// INBOX's UIDVALIDITY and its messages' Message-IDs by UID, over IMAPS (imaplib).
    fn inbox(&self, cert: &Path) -> (u32, BTreeMap<u32, String>) {
        let script = "import imaplib, ssl, os\n\
            ctx = ssl.create_default_context(cafile=os.environ['CERT'])\n\
            c = imaplib.IMAP4_SSL('localhost', int(os.environ['PORT']), ssl_context=ctx)\n\
            c.login(os.environ['USER'], os.environ['PASS'])\n\
            c.select('INBOX', readonly=True)\n\
            print('UIDVALIDITY', c.response('UIDVALIDITY')[1][0].decode())\n\
            typ, data = c.uid('FETCH', '1:*', '(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])')\n\
            for item in data:\n\
            \x20   if isinstance(item, tuple):\n\
            \x20       uid = item[0].decode().split('UID ')[1].split(' ')[0]\n\
            \x20       print(uid, item[1].decode().split(':', 1)[1].strip())\n\
            c.logout()\n";
        let out = Command::new("python3")
            .arg("-c")
            .arg(script)
            .env("PORT", self.imaps.to_string())
            .env("CERT", cert)
            .env("USER", ADDRESS)
            .env("PASS", PASSWORD)
            .output()
            .expect("python3");
        assert!(out.status.success(), "imaplib: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).expect("utf-8");
        let mut uidvalidity = 0;
        let mut messages = BTreeMap::new();
        for line in text.lines() {
            let (first, rest) = line.split_once(' ').expect("two fields");
            if first == "UIDVALIDITY" {
                uidvalidity = rest.parse().expect("number");
            } else {
                messages.insert(first.parse().expect("uid"), rest.to_string());
            }
        }
        (uidvalidity, messages)
    }
}

fn message(seq: usize) -> Vec<u8> {
    format!(
        "From: load@backup.test\r\nTo: {ADDRESS}\r\nMessage-ID: <backup-{seq}@backup.test>\r\nSubject: backup {seq}\r\n\r\n\
         Message number {seq}.\r\n"
    )
    .into_bytes()
}

fn deliver(port: u16, seq: usize) -> bool {
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    common::deliver(to, "client.backup.test", "load@backup.test", ADDRESS, &message(seq)) == Some(true)
}

/// Runs mbsync (pull INBOX into `maildir`) and returns the local files by name.
fn mbsync(env: &Env, cert: &Path, maildir: &Path) -> BTreeSet<String> {
    let rc = env.path("mbsyncrc");
    std::fs::create_dir_all(maildir).expect("maildir");
    std::fs::write(
        &rc,
        format!(
            "IMAPAccount acct\nHost localhost\nPort {}\nUser {ADDRESS}\nPass \"{PASSWORD}\"\nSSLType IMAPS\nCertificateFile {}\n\n\
             IMAPStore remote\nAccount acct\n\n\
             MaildirStore local\nPath {}/\nInbox {}/INBOX\n\n\
             Channel ch\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Near\nSync Pull\nSyncState *\n",
            env.imaps,
            cert.display(),
            maildir.display(),
            maildir.display()
        ),
    )
    .expect("rc");
    let out = Command::new("mbsync").arg("-c").arg(&rc).arg("-a").output().expect("mbsync");
    assert!(
        out.status.success(),
        "mbsync: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut files = BTreeSet::new();
    for sub in ["new", "cur"] {
        for entry in std::fs::read_dir(maildir.join("INBOX").join(sub)).into_iter().flatten().flatten() {
            files.insert(format!("{sub}/{}", entry.file_name().to_string_lossy()));
        }
    }
    files
}

/// The Message-IDs of the local files (each file read once).
fn local_message_ids(maildir: &Path, files: &BTreeSet<String>) -> Vec<String> {
    files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(maildir.join("INBOX").join(f)).expect("local file");
            text.lines().find_map(|l| l.strip_prefix("Message-ID: ")).expect("Message-ID").trim().to_string()
        })
        .collect()
}

#[test]
fn backup_while_mail_arrives_restores_with_the_same_uids() {
    let dns = TestDns::start([
        Rr::new("backup.test", Data::txt("v=spf1 ip4:127.0.0.1 -all")),
        Rr::new("client.backup.test", Data::A("127.0.0.1".parse().expect("ip"))),
    ]);
    let env = Env::new(dns.addr());
    let original = env.path("original.toml");
    common::postfach_ok(&original, &["customer", "add", "acme", "--password-stdin"], "acme panel passphrase 42\n");
    common::postfach_ok(&original, &["domain", "add", "acme.example", "--customer", "acme", "--verified"], "");
    common::postfach_ok(&original, &["mailbox", "add", ADDRESS, "--password-stdin"], &format!("{PASSWORD}\n"));
    let mut server = env.serve("original.toml");
    let cert = env.path("data/tls/cert.pem");

    // A client that synced before the backup.
    for seq in 1..=5 {
        assert!(deliver(env.smtp, seq), "delivery {seq}");
    }
    let maildir = env.path("mail");
    let synced = mbsync(&env, &cert, &maildir);
    assert_eq!(synced.len(), 5, "{synced:?}");

    // Deliveries go on while the backup runs.
    let acknowledged: Arc<Mutex<Vec<usize>>> = Arc::new(Mutex::new((1..=5).collect()));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (acknowledged, stop, port) = (acknowledged.clone(), stop.clone(), env.smtp);
        std::thread::spawn(move || {
            let mut seq = 5;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                if deliver(port, seq) {
                    acknowledged.lock().expect("lock").push(seq);
                }
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().expect("lock").len() < 15 {
        assert!(Instant::now() < deadline, "deliveries did not go on");
        std::thread::sleep(Duration::from_millis(10));
    }
    let before_backup: Vec<usize> = acknowledged.lock().expect("lock").clone();
    let backup_dir = env.path("backup");
    let out = common::postfach(&original, &["backup", backup_dir.to_str().expect("utf-8")], "");
    assert!(out.status.success(), "backup: {}", String::from_utf8_lossy(&out.stderr));
    eprintln!("{} acknowledged before the backup; {}", before_backup.len(), String::from_utf8_lossy(&out.stderr));
    // Some mail arrives after the backup too.
    let count = acknowledged.lock().expect("lock").len();
    while acknowledged.lock().expect("lock").len() < count + 3 {
        assert!(Instant::now() < deadline + Duration::from_secs(60), "deliveries stopped");
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    sender.join().expect("sender");
    assert!(backup_dir.join("manifest.json").exists());

    let (uidvalidity, on_original) = env.inbox(&cert);
    server.kill().expect("stop");
    server.wait().expect("reaped");

    // A data_dir that holds something is not overwritten.
    let refused = common::postfach(&original, &["restore", backup_dir.to_str().expect("utf-8")], "");
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("is not empty") && said.contains("empty data_dir"), "{said}");

    let restored = env.path("restored.toml");
    let out = common::postfach(&restored, &["restore", backup_dir.to_str().expect("utf-8")], "");
    assert!(out.status.success(), "restore: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        std::fs::read(env.path("restored/tls/cert.pem")).expect("restored certificate"),
        std::fs::read(&cert).expect("certificate"),
        "the certificate comes back"
    );
    let mut server = env.serve("restored.toml");
    let (restored_uidvalidity, on_restored) = env.inbox(&cert);
    assert_eq!(restored_uidvalidity, uidvalidity);
    eprintln!("{} messages on the original, {} restored", on_original.len(), on_restored.len());
    let uid_of = |messages: &BTreeMap<u32, String>, seq: usize| {
        let id = format!("<backup-{seq}@backup.test>");
        messages.iter().find(|(_, m)| **m == id).map(|(uid, _)| *uid)
    };
    for seq in &before_backup {
        let uid = uid_of(&on_original, *seq).expect("on the original");
        assert_eq!(uid_of(&on_restored, *seq), Some(uid), "message {seq} acknowledged before the backup");
    }
    // The restored server holds a prefix of what the original got: nothing else.
    for (uid, id) in &on_restored {
        assert_eq!(on_original.get(uid), Some(id), "UID {uid}");
    }

    // mbsync keeps what it has and fetches only what it has not seen.
    let resynced = mbsync(&env, &cert, &maildir);
    assert!(synced.is_subset(&resynced), "local files were replaced: {synced:?} -> {resynced:?}");
    let ids = local_message_ids(&maildir, &resynced);
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "a message was downloaded twice: {ids:?}");
    assert_eq!(ids.len(), on_restored.len());

    server.kill().expect("stop");
    server.wait().expect("reaped");

    // A damaged message file in a backup is found by the restore.
    let damaged = env.path("damaged-backup");
    let status = Command::new("cp").arg("-a").arg(&backup_dir).arg(&damaged).status().expect("cp");
    assert!(status.success());
    let some_blob = walk(&damaged.join("blobs/objects")).into_iter().next().expect("a message file");
    let mut bytes = std::fs::read(&some_blob).expect("read");
    bytes[0] ^= 1;
    std::fs::write(&some_blob, bytes).expect("damage");
    let config = env.path("damaged.toml");
    std::fs::write(&config, "data_dir = \"damaged-data\"\n").expect("config");
    let out = common::postfach(&config, &["restore", damaged.to_str().expect("utf-8")], "");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("damaged") && said.contains("empty it before trying again"), "{said}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            if entry.path().is_dir() {
                pending.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    files
}

#[test]
fn postgres_is_explained_and_unfinished_backups_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("pg.toml");
    std::fs::write(&config, "data_dir = \"data\"\ndatabase = \"postgres://postfach@127.0.0.1:1/postfach\"\n")
        .expect("config");
    let out = common::postfach(&config, &["backup", dir.path().join("b").to_str().expect("utf-8")], "");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("pg_dump") && said.contains("pg_restore"), "{said}");
    assert!(!dir.path().join("b").exists(), "nothing was written");

    // A folder without a manifest is a backup that did not finish.
    let config = dir.path().join("sqlite.toml");
    std::fs::write(&config, "data_dir = \"data\"\n").expect("config");
    let unfinished = dir.path().join("unfinished");
    std::fs::create_dir_all(&unfinished).expect("dir");
    std::fs::write(unfinished.join("postfach.sqlite"), b"half").expect("file");
    let out = common::postfach(&config, &["restore", unfinished.to_str().expect("utf-8")], "");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("holds no manifest.json"), "{said}");
    assert!(!dir.path().join("data").exists(), "data_dir untouched");
}
