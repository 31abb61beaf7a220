//! The harness the session targets share: a real store (SQLite in a temporary folder), a
//! customer with one mailbox, and a loopback listener. [`Harness::drive`] connects a
//! client, lets the protocol serve that connection, writes the input and closes its side,
//! then requires that the server closes too within a bound and that the session task
//! ended without a panic (a panic is re-raised, so libFuzzer records the input).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use postfach_auth::{AuthSettings, Authenticator, PasswordHasher};
use postfach_blob::{Backend, BlobStore, Namespace};
use postfach_net::{Conn, MaybeTls, Protocol, Timeouts};
use postfach_store::mailboxes::MailboxSettings;
use postfach_store::{Scope, Store};
use postfach_types::{CustomerName, DomainName, EmailAddress, MailboxId, Role, Secret};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

pub const ADDRESS: &str = "max@acme.example";
pub const PASSWORD: &str = "violet mango tractor whisper";
/// How long the server may take to close after the client's input ended.
const CLOSE_WITHIN: Duration = Duration::from_secs(10);

pub struct Harness {
    pub rt: Runtime,
    pub store: Store,
    pub blobs: BlobStore,
    pub auth: Arc<Authenticator>,
    pub mailbox: MailboxId,
    pub dir: PathBuf,
    listener: TcpListener,
}

impl Harness {
    pub fn new(name: &str) -> Harness {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let dir = std::env::temp_dir().join(format!("postfach-fuzz-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp folder");
        let (store, blobs, auth, mailbox, listener) = rt.block_on(async {
            let store = Store::open(&format!("sqlite://{}", dir.join("db.sqlite").display())).await.expect("store");
            let blobs = BlobStore::open(&Backend::Fs, &dir, Namespace::Mailboxes).expect("blobs");
            let hasher = PasswordHasher::new(1);
            // Wrong passwords in the inputs must not lock out the logins of later ones.
            let settings = AuthSettings {
                allow_plaintext_auth: true,
                max_failures_per_ip: u32::MAX,
                max_failures_per_login: u32::MAX,
                ..AuthSettings::default()
            };
            let auth = Arc::new(Authenticator::new(store.clone(), settings, hasher.clone()).await.expect("auth"));
            let customer = postfach_auth::accounts::create_customer(
                &store,
                &hasher,
                &CustomerName::parse("acme").expect("name"),
                &Secret::new("acme panel passphrase 42".into()),
                Role::Customer,
            )
            .await
            .expect("customer");
            store.add_domain(customer.id, &DomainName::parse("acme.example").expect("domain"), true).await.expect("domain");
            let mailbox = postfach_auth::accounts::create_mailbox(
                &store,
                &hasher,
                Scope::Platform,
                &EmailAddress::parse(ADDRESS).expect("address"),
                &Secret::new(PASSWORD.into()),
                MailboxSettings { tls_required: false, ..MailboxSettings::default() },
            )
            .await
            .expect("mailbox")
            .id;
            // The stored hash carries its parameters: a cheap one makes each wrong password
            // an input tries cost microseconds instead of a production argon2id run, which
            // coverage instrumentation slows to seconds.
            let cheap = cheap_hash(PASSWORD);
            let address = EmailAddress::parse(ADDRESS).expect("address");
            store.set_mailbox_password(Scope::Platform, &address, &cheap).await.expect("cheap hash");
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            (store, blobs, auth, mailbox, listener)
        });
        Harness { rt, store, blobs, auth, mailbox, dir, listener }
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("addr")
    }

    /// One connection served by `protocol`: `input` is written, the client's side closed,
    /// and the server must close its side within [`CLOSE_WITHIN`] without panicking.
    pub fn drive(&self, protocol: &Arc<dyn Protocol>, input: &[u8]) {
        let panic = self.rt.block_on(async {
            let client = TcpStream::connect(self.addr()).await.expect("connect");
            let (tcp, peer) = self.listener.accept().await.expect("accept");
            let conn = Conn::new(MaybeTls::Plain(tcp), peer, None, Timeouts::default(), None);
            let session = tokio::spawn(protocol.clone().serve(conn));
            let (mut read, mut write) = client.into_split();
            let input = input.to_vec();
            // Written beside the reading, so a server answering a lot never blocks on a
            // client that is not reading yet.
            let writer = tokio::spawn(async move {
                let _ = write.write_all(&input).await;
                let _ = write.shutdown().await;
            });
            let mut sink = Vec::new();
            let closed = tokio::time::timeout(CLOSE_WITHIN, async {
                let mut chunk = [0u8; 16384];
                loop {
                    match read.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        // Keep the last bytes only: enough to show what the server said last.
                        Ok(n) => {
                            sink.extend_from_slice(&chunk[..n]);
                            if sink.len() > 4096 {
                                sink.drain(..sink.len() - 4096);
                            }
                        }
                    }
                }
            })
            .await;
            let _ = writer.await;
            assert!(
                closed.is_ok(),
                "the server did not close within {CLOSE_WITHIN:?} after the input ended; it last said: {}",
                String::from_utf8_lossy(&sink)
            );
            match tokio::time::timeout(CLOSE_WITHIN, session).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) if e.is_panic() => Some(e.into_panic()),
                Ok(Err(e)) => panic!("session task failed: {e}"),
                Err(_) => panic!("the session task did not end after its connection closed"),
            }
        });
        if let Some(payload) = panic {
            std::panic::resume_unwind(payload);
        }
    }

    /// Keeps the mailbox small: inputs that append would otherwise make every later
    /// FETCH slower. Expunges everything beyond the first `keep` messages of each folder.
    pub fn trim(&self, keep: usize) {
        self.rt.block_on(async {
            let Ok(folders) = self.store.folders(self.mailbox).await else { return };
            for folder in folders {
                let Ok(messages) = self.store.messages(self.mailbox, folder.id).await else { continue };
                if messages.len() > keep {
                    use postfach_store::messages::{FlagChange, Flags};
                    let uids: Vec<u32> = messages[keep..].iter().map(|m| m.uid).collect();
                    let (mailbox, store) = (self.mailbox, &self.store);
                    let _ = store.store_flags(mailbox, folder.id, &uids, FlagChange::Add, Flags::DELETED, &[], None).await;
                    let _ = store.expunge(mailbox, folder.id, Some(&uids)).await;
                }
            }
        });
    }

    /// Stores a message in the INBOX, as the MX would.
    pub fn deliver(&self, bytes: &[u8]) {
        use postfach_store::messages::{Delivery, DeliveryFolder, Flags, NewMessage};
        self.rt.block_on(async {
            let blob = self.blobs.put(bytes.to_vec()).await.expect("blob");
            let message = NewMessage {
                blob,
                size: bytes.len() as u64,
                internal_date: postfach_types::UnixTime::now(),
                flags: Flags::default(),
                keywords: Vec::new(),
            };
            let delivery = Delivery { mailbox_id: self.mailbox, folder: DeliveryFolder::Inbox, message };
            self.store.deliver(&[delivery]).await.expect("deliver");
        });
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An argon2id PHC string with the smallest parameters argon2 allows.
fn cheap_hash(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher as _, SaltString};
    let params = argon2::Params::new(8, 1, 1, None).expect("params");
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"fuzzing salt 16b").expect("salt");
    argon.hash_password(password.as_bytes(), &salt).expect("hash").to_string()
}

/// Messages the session targets start with: plain, multipart with an attached message,
/// and one nested 200 levels deep (past the intake limit, as if stored before it).
pub fn sample_messages() -> Vec<Vec<u8>> {
    let plain = b"From: Ann <ann@example.org>\r\nTo: max@acme.example\r\nSubject: hello\r\n\
Date: Mon, 2 Nov 2026 10:00:00 +0100\r\nMessage-ID: <1@example.org>\r\n\r\nHello Max.\r\n"
        .to_vec();
    let multipart = b"From: Bob <bob@example.org>\r\nTo: group: a@b.example, c@d.example;\r\n\
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe\r\n\
--b1\r\nContent-Type: message/rfc822\r\n\r\nFrom: c@d.example\r\nSubject: inner\r\n\r\ninner body\r\n\
--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwQF\r\n--b1--\r\n"
        .to_vec();
    let mut nested = Vec::new();
    for _ in 0..200 {
        nested.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
    }
    nested.extend_from_slice(b"Subject: deepest\r\n\r\nbottom\r\n");
    vec![plain, multipart, nested]
}
