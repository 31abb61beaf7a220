//! Opens a fresh, empty store on each backend for the shared suite.
//!
//! PostgreSQL tests need `POSTFACH_TEST_POSTGRES_URL` (a role allowed to create
//! databases); `scripts/test` starts a server and sets it. Each test gets a database of
//! its own. Without the variable the PostgreSQL tests fail with a message that says so.

use postfach_store::mailboxes::MailboxSettings;
use postfach_store::{Scope, Store};
use postfach_types::{CustomerId, CustomerName, DomainName, EmailAddress, MailboxId, Role};

pub async fn sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/postfach.sqlite", dir.path().display());
    (Store::open(&url).await.expect("open sqlite store"), dir)
}

pub async fn postgres() -> (Store, String) {
    let url = postfach_testpg::fresh_database().await;
    (Store::open(&url).await.expect("open postgres store"), url)
}

/// A well-formed argon2id hash for rows whose password is never checked.
#[allow(dead_code)]
pub const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA";

/// The mailbox `local@customer.example`, with the customer `customer` and its verified
/// domain `customer.example` made on first use.
#[allow(dead_code)]
pub async fn mailbox(store: &Store, customer: &str, local: &str) -> (CustomerId, MailboxId) {
    let name = CustomerName::parse(customer).expect("name");
    let c = match store.customer(&name).await {
        Ok(c) => c,
        Err(_) => {
            let c = store.add_customer(&name, HASH, Role::Customer).await.expect("customer");
            let domain = DomainName::parse(&format!("{customer}.example")).expect("domain");
            store.add_domain(c.id, &domain, true).await.expect("domain");
            c
        }
    };
    let address = EmailAddress::parse(&format!("{local}@{customer}.example")).expect("address");
    let m = store.add_mailbox(Scope::Platform, &address, HASH, MailboxSettings::default()).await.expect("mailbox");
    (c.id, m.id)
}

/// Defines `mod $name { sqlite(), postgres() }`, each running `$name(store)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let (store, _dir) = $crate::backends::sqlite().await;
                super::$name(store).await;
            }
            #[tokio::test]
            async fn postgres() {
                let (store, _url) = $crate::backends::postgres().await;
                super::$name(store).await;
            }
        }
    )+};
}
