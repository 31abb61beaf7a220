//! The crash test of issue 3: concurrent deliveries to the real `postfach serve` while it
//! is killed with SIGKILL several times and restarted. Every message that got `250` must
//! be in the mailbox afterwards, byte for byte, exactly once (invariant 4).

mod common;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postfach_store::{Scope, Store};
use postfach_testdns::{Data, Rr, TestDns};
use postfach_types::EmailAddress;

const PASSWORD: &str = "violet mango tractor whisper";
const CLIENTS: usize = 4;
const KILLS: usize = 4;

struct Env {
    dir: tempfile::TempDir,
    port: u16,
}

impl Env {
    fn new(dns: SocketAddr) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        // A free loopback port, chosen now and used by every run of the server.
        let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let config = format!(
            "hostname = \"mail.postfach.test\"\ndata_dir = \"data\"\n\
             [listen]\nsmtp = [\"127.0.0.1:{port}\"]\nsubmission = []\nsubmissions = []\nimap = []\nimaps = []\n\
             pop3 = []\npop3s = []\nmanagesieve = []\nhttps = []\nhttp = []\n\
             [dns]\nresolver = \"{dns}\"\n\
             [log]\nlevel = \"warn\"\n"
        );
        std::fs::write(dir.path().join("postfach.toml"), config).expect("config");
        Env { dir, port }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("postfach.toml")
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn cli(&self, args: &[&str], stdin: &str) {
        common::postfach_ok(&self.config(), args, stdin);
    }

    /// Starts `postfach serve` and waits until it accepts connections.
    fn serve(&self) -> Child {
        common::serve(&self.config(), Stdio::null(), &[self.port])
    }
}

/// One delivery attempt: `Some(true)` when the message got 250.
fn deliver(port: u16, message: &[u8]) -> Option<bool> {
    let to = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    common::deliver(to, "client.crash.test", "load@crash.test", "max@acme.example", message)
}

fn message(client: usize, seq: usize) -> Vec<u8> {
    let id = format!("<crash-{client}-{seq}@crash.test>");
    let filler: String =
        (0..40).map(|i| format!("line {i} of message {client}/{seq}: {}\r\n", "z".repeat(i))).collect();
    format!("From: load@crash.test\r\nTo: max@acme.example\r\nMessage-ID: {id}\r\nSubject: crash {client}/{seq}\r\n\r\n{filler}")
        .into_bytes()
}

fn message_id(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    text.lines().find_map(|l| l.strip_prefix("Message-ID: ").map(str::to_string))
}

fn blob_path(data: &Path, blob: &str) -> PathBuf {
    data.join("blobs").join("objects").join(&blob[..2]).join(blob)
}

#[test]
fn acknowledged_messages_survive_sigkill_exactly_once() {
    let dns = TestDns::start([
        Rr::new("crash.test", Data::txt("v=spf1 ip4:127.0.0.1 -all")),
        Rr::new("client.crash.test", Data::A("127.0.0.1".parse().expect("ip"))),
    ]);
    let env = Env::new(dns.addr());
    env.cli(&["customer", "add", "acme", "--password-stdin"], "acme panel passphrase 42\n");
    env.cli(&["domain", "add", "acme.example", "--customer", "acme", "--verified"], "");
    env.cli(&["mailbox", "add", "max@acme.example", "--password-stdin"], &format!("{PASSWORD}\n"));

    let acknowledged: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut server = env.serve();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (acknowledged, stop, port) = (acknowledged.clone(), stop.clone(), env.port);
            std::thread::spawn(move || {
                let mut seq = 0;
                while !stop.load(Ordering::Relaxed) {
                    seq += 1;
                    let bytes = message(client, seq);
                    match deliver(port, &bytes) {
                        Some(true) => acknowledged.lock().expect("lock").push(bytes),
                        Some(false) => panic!("a delivery was refused"),
                        None => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        })
        .collect();

    for round in 0..KILLS {
        // Let deliveries run, then kill the server in the middle of them.
        std::thread::sleep(Duration::from_millis(400 + 150 * round as u64));
        server.kill().expect("SIGKILL");
        server.wait().expect("reaped");
        std::thread::sleep(Duration::from_millis(100));
        server = env.serve();
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("client thread");
    }
    server.kill().expect("SIGKILL");
    server.wait().expect("reaped");

    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(acknowledged.len() > 10, "the clients got some messages through: {}", acknowledged.len());

    // Read what the store holds.
    let data = env.data();
    let stored: Vec<Vec<u8>> = tokio::runtime::Runtime::new().expect("runtime").block_on(async {
        let store = Store::open(&format!("sqlite://{}", data.join("postfach.sqlite").display())).await.expect("open");
        let mailbox = store
            .mailbox(Scope::Platform, &EmailAddress::parse("max@acme.example").expect("address"))
            .await
            .expect("mailbox");
        let inbox = store.folder(mailbox.id, "INBOX").await.expect("folder").expect("INBOX");
        let messages = store.messages(mailbox.id, inbox.id).await.expect("messages");
        store.close().await;
        messages
            .iter()
            .map(|m| std::fs::read(blob_path(&data, m.blob.as_str())).expect("blob of a stored message"))
            .collect()
    });

    eprintln!("{} messages acknowledged, {} stored", acknowledged.len(), stored.len());
    for sent in &acknowledged {
        let id = message_id(sent).expect("id");
        let copies: Vec<&Vec<u8>> = stored.iter().filter(|s| message_id(s).as_deref() == Some(id.as_str())).collect();
        assert_eq!(copies.len(), 1, "{id} was acknowledged and must be stored exactly once");
        assert!(copies[0].ends_with(sent), "{id} is stored intact");
    }
    // Nothing is stored twice, acknowledged or not.
    let mut ids: Vec<String> = stored.iter().filter_map(|s| message_id(s)).collect();
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total, "no message is stored twice");
}
