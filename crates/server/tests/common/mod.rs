//! Shared by the end-to-end tests: a real server started in-process on 127.0.0.1 with a
//! fresh data folder, SQLite, the self-signed certificate, and helpers to create accounts.
//! Several nodes: [`postgres_database`] and [`TestServer::start_node`] start servers that
//! share one PostgreSQL database and one data folder.
//!
//! Every test file that uses it starts with `mod common;`. Not every test uses every
//! helper, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod clients;
pub mod pebble;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use postfach_auth::accounts::{create_customer, create_mailbox};
use postfach_server::Server;
use postfach_server::config::Config;
use postfach_store::Scope;
use postfach_store::mailboxes::{Mailbox, MailboxSettings};
use postfach_store::messages::{Delivery, DeliveryFolder, Flags, NewMessage};
use postfach_types::{CustomerId, CustomerName, DomainName, EmailAddress, Role, Secret, UnixTime};

/// A fresh, empty PostgreSQL database for one test; returns its URL.
pub async fn postgres_database() -> String {
    postfach_testpg::fresh_database().await
}

/// The password of every mailbox the helpers create.
pub const PASSWORD: &str = "violet mango tractor whisper";

pub struct TestServer {
    pub server: Server,
    pub config: Config,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// Every service on 127.0.0.1 with a port of the system's choosing.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Like [`TestServer::start`], after `adjust` had its say on the configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = format!("sqlite://{}", dir.path().join("data/postfach.sqlite").display());
        let data_dir = dir.path().join("data");
        Self::start_in(dir, &database, &data_dir, adjust).await
    }

    /// One node of several: a server on `database` (PostgreSQL) with `data_dir` shared
    /// with the other nodes (start them one after the other: the first writes the TLS
    /// material the others read).
    pub async fn start_node(database: &str, data_dir: &Path, adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, database, data_dir, adjust).await
    }

    async fn start_in(
        dir: tempfile::TempDir,
        database: &str,
        data_dir: &Path,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = test_config(database, data_dir);
        adjust(&mut config);
        let server = Server::start(&config).await.expect("server starts");
        TestServer { server, config, dir }
    }

    /// Where a service listens (`"imap"`, `"pop3s"`, `"smtp"`, ...).
    pub fn addr(&self, service: &str) -> SocketAddr {
        self.server.addresses().first(service).unwrap_or_else(|| panic!("{service} is not listening"))
    }

    pub fn port(&self, service: &str) -> u16 {
        self.addr(service).port()
    }

    /// The server's self-signed certificate: clients trust it to reach `localhost`.
    pub fn cert(&self) -> PathBuf {
        self.config.data_dir.join("tls/cert.pem")
    }

    /// Customer `acme` with the verified domain `acme.example` (created once).
    pub async fn customer(&self) -> CustomerId {
        let store = self.server.store();
        let name = CustomerName::parse("acme").expect("name");
        if let Ok(c) = store.customer(&name).await {
            return c.id;
        }
        let hasher = self.server.authenticator().hasher();
        let c = create_customer(store, hasher, &name, &Secret::new("acme panel passphrase 42".into()), Role::Customer)
            .await
            .expect("customer");
        store.add_domain(c.id, &DomainName::parse("acme.example").expect("domain"), true).await.expect("domain");
        c.id
    }

    /// A mailbox `address` (in acme.example) with [`PASSWORD`] and the given settings.
    pub async fn mailbox(&self, address: &str, settings: MailboxSettings) -> Mailbox {
        self.customer().await;
        let address = EmailAddress::parse(address).expect("address");
        let hasher = self.server.authenticator().hasher();
        create_mailbox(self.server.store(), hasher, Scope::Platform, &address, &Secret::new(PASSWORD.into()), settings)
            .await
            .expect("mailbox")
    }

    /// Puts `bytes` into the mailbox's INBOX the way the MX does (durable blob, then the
    /// metadata commit), without going through SMTP.
    pub async fn put_in_inbox(&self, mailbox: &Mailbox, bytes: Vec<u8>) {
        let blob = self.server.blobs().put(bytes.clone()).await.expect("blob");
        let message = NewMessage {
            blob,
            size: bytes.len() as u64,
            internal_date: UnixTime::now(),
            flags: Flags::default(),
            keywords: Vec::new(),
        };
        self.server
            .store()
            .deliver(&[Delivery { mailbox_id: mailbox.id, folder: DeliveryFolder::Inbox, message }])
            .await
            .expect("deliver");
    }
}

/// The configuration tests start servers with: `database`, `data_dir`, the test host
/// name, and every service on 127.0.0.1 with a port the system picks.
pub fn test_config(database: &str, data_dir: &Path) -> Config {
    let mut config = Config::defaults();
    config.hostname = DomainName::parse("mail.postfach.test").expect("hostname");
    config.data_dir = data_dir.to_path_buf();
    config.database = database.to_string();
    // Warning mails would add messages to the INBOXes the tests count; `warnings.rs`
    // switches them on.
    config.security.warning_mails = false;
    let local: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let listen = &mut config.listen;
    for list in [
        &mut listen.smtp,
        &mut listen.submission,
        &mut listen.submissions,
        &mut listen.imap,
        &mut listen.imaps,
        &mut listen.pop3,
        &mut listen.pop3s,
        &mut listen.managesieve,
        &mut listen.https,
        &mut listen.http,
    ] {
        *list = vec![local];
    }
    config
}
