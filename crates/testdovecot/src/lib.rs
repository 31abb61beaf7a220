//! A private Dovecot (Debian's `dovecot-imapd`) for the IMAP import tests: IMAPS and
//! IMAP (STARTTLS) on loopback with a self-signed certificate for `localhost`, one
//! passwd-file user ([`OLD_LOGIN`]), `Sent` marked `\Sent` and `Deleted Messages` marked
//! `\Trash`. Filled and read back with Python's imaplib ([`fill`], [`READ_ALL`]).
//! Shared by the command-line import test (`postfach`) and the panel's (`server`).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const OLD_LOGIN: &str = "max@old.example";
pub const OLD_PASSWORD: &str = "old \"secret\" pass";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// A private Dovecot: IMAPS and IMAP (STARTTLS) on loopback, one passwd-file user.
#[derive(Debug)]
pub struct Dovecot {
    dir: PathBuf,
    pub imaps: u16,
    pub imap: u16,
    master: Child,
}

impl Dovecot {
    pub fn start(dir: &Path) -> Dovecot {
        std::fs::create_dir_all(dir.join("run")).expect("run");
        std::fs::create_dir_all(dir.join("home")).expect("home");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        std::fs::write(dir.join("cert.pem"), cert.pem()).expect("cert.pem");
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("key.pem");
        let (uid, user_lines) = if is_root() {
            ("65534".to_string(), String::new())
        } else {
            let id = |flag: &str| {
                String::from_utf8_lossy(&Command::new("id").arg(flag).output().expect("id").stdout).trim().to_string()
            };
            let user = id("-un");
            (
                id("-u"),
                format!(
                    "default_internal_user = {user}\ndefault_login_user = {user}\ndefault_internal_group = {}\n",
                    id("-gn")
                ),
            )
        };
        std::fs::write(
            dir.join("passwd"),
            format!("{OLD_LOGIN}:{{PLAIN}}{OLD_PASSWORD}:{uid}:{uid}::{}\n", dir.join("home").display()),
        )
        .expect("passwd");
        let (imaps, imap) = (free_port(), free_port());
        let d = dir.display();
        let conf = format!(
            "protocols = imap\nlisten = 127.0.0.1\nbase_dir = {d}/run\nstate_dir = {d}/run\nlog_path = {d}/dovecot.log\n\
             {user_lines}ssl = required\nssl_cert = <{d}/cert.pem\nssl_key = <{d}/key.pem\n\
             disable_plaintext_auth = yes\nauth_mechanisms = plain\n\
             passdb {{\n  driver = passwd-file\n  args = {d}/passwd\n}}\n\
             userdb {{\n  driver = passwd-file\n  args = {d}/passwd\n}}\n\
             mail_location = maildir:~/Maildir\nfirst_valid_uid = 1\n\
             service imap-login {{\n  inet_listener imap {{\n    port = {imap}\n  }}\n  inet_listener imaps {{\n    port = {imaps}\n    ssl = yes\n  }}\n}}\n\
             service anvil {{\n  chroot =\n}}\n\
             namespace inbox {{\n  inbox = yes\n  separator = /\n\
               mailbox Sent {{\n    special_use = \\Sent\n    auto = create\n  }}\n\
               mailbox \"Deleted Messages\" {{\n    special_use = \\Trash\n    auto = create\n  }}\n}}\n"
        );
        std::fs::write(dir.join("dovecot.conf"), conf).expect("dovecot.conf");
        if is_root() {
            let status =
                Command::new("chown").arg("-R").arg("65534:65534").arg(dir.join("home")).status().expect("chown");
            assert!(status.success());
        }
        let master = Command::new("dovecot")
            .arg("-F")
            .arg("-c")
            .arg(dir.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dovecot");
        let dovecot = Dovecot { dir: dir.to_path_buf(), imaps, imap, master };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", imaps)).is_err() {
            assert!(Instant::now() < deadline, "dovecot did not start: {}", dovecot.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        dovecot
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default()
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    /// Runs a Python snippet with an imaplib connection `c` logged in to this Dovecot.
    pub fn python(&self, body: &str) -> String {
        python_imap(self.imaps, &self.ca(), OLD_LOGIN, OLD_PASSWORD, body)
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.master.kill();
        let _ = self.master.wait();
    }
}

pub fn python_imap(port: u16, ca: &Path, user: &str, password: &str, body: &str) -> String {
    let script = format!(
        "import imaplib, ssl, os, re, json, hashlib, datetime\n\
         ctx = ssl.create_default_context(cafile=os.environ['CA'])\n\
         c = imaplib.IMAP4_SSL('localhost', int(os.environ['PORT']), ssl_context=ctx)\n\
         c.login(os.environ['USER'], os.environ['PASS'])\n{body}\nc.logout()\n"
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .env("PORT", port.to_string())
        .env("CA", ca)
        .env("USER", user)
        .env("PASS", password)
        .output()
        .expect("python3");
    assert!(out.status.success(), "imaplib: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The Python that prints every selectable folder's messages as JSON: name → sorted list
/// of [internal date, flags without \Recent, sha256 of the bytes].
pub const READ_ALL: &str = r#"
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
        flags = sorted(f for f in re.search(r'FLAGS \(([^)]*)\)', head).group(1).split() if f != '\\Recent')
        stamp = int(datetime.datetime.strptime(date, '%d-%b-%Y %H:%M:%S %z').timestamp())
        messages.append([stamp, ' '.join(flags), hashlib.sha256(item[1]).hexdigest()])
    out[name] = sorted(messages)
print(json.dumps(out))
"#;

pub type Folders = BTreeMap<String, Vec<(i64, String, String)>>;

pub fn parse_folders(json: &str) -> Folders {
    let value: serde_json::Value = serde_json::from_str(json.trim()).expect("json");
    value
        .as_object()
        .expect("object")
        .iter()
        .map(|(name, messages)| {
            let messages = messages
                .as_array()
                .expect("array")
                .iter()
                .map(|m| {
                    (
                        m[0].as_i64().expect("date"),
                        m[1].as_str().expect("flags").to_string(),
                        m[2].as_str().expect("hash").to_string(),
                    )
                })
                .collect();
            (name.clone(), messages)
        })
        .collect()
}

/// Fills the old server: (folder, count) with distinct messages, flags, keywords, dates.
pub fn fill(dovecot: &Dovecot, folders: &[(&str, usize)], seed: usize) {
    let list: Vec<String> = folders.iter().map(|(f, n)| format!("('{f}', {n})")).collect();
    dovecot.python(&format!(
        r#"
for folder, count in [{}]:
    c.create('"%s"' % folder)
    for i in range(count):
        n = {seed} + i
        flags = []
        if n % 3 == 0: flags.append('\\Seen')
        if n % 5 == 0: flags.append('\\Flagged')
        if n % 7 == 0: flags.append('\\Answered')
        if n % 4 == 0: flags.append('$Work')
        if n % 11 == 0: flags.append('Projekt_X')
        body = ('From: Alte Adresse <old@old.example>\r\nTo: max@old.example\r\nSubject: %s %d\r\n'
                'Message-ID: <%d.%s@old.example>\r\n\r\nMessage %d in %s.\r\n' % (folder, n, n, folder.replace('/', '.'), n, folder)) + 'x' * (n % 50)
        c.append('"%s"' % folder, '(%s)' % ' '.join(flags), imaplib.Time2Internaldate(1500000000 + n * 3607), body.encode())
"#,
        list.join(", ")
    ));
}
