//! Where an IMAP import stands, on SQLite and PostgreSQL: one position per target
//! mailbox, source (host, login) and folder; updated in place; gone with the mailbox and
//! with its domain.

mod backends;

use postfach_store::imports::{ImportPosition, ImportSource};
use postfach_store::{Scope, Store};
use postfach_types::{DomainName, EmailAddress};

on_both_backends!(positions_per_mailbox_source_and_folder);

use backends::mailbox;

async fn positions_per_mailbox_source_and_folder(store: Store) {
    let (_, max) = mailbox(&store, "acme", "max").await;
    let (_, erika) = mailbox(&store, "acme", "erika").await;
    let old = ImportSource { host: "imap.old.example", login: "max" };
    let other_login = ImportSource { host: "imap.old.example", login: "erika" };
    assert_eq!(store.import_position(max, &old, "INBOX").await.expect("read"), None);

    let first = ImportPosition { uidvalidity: 7, last_uid: 120 };
    store.set_import_position(max, &old, "INBOX", first).await.expect("set");
    assert_eq!(store.import_position(max, &old, "INBOX").await.expect("read"), Some(first));
    assert_eq!(store.import_position(max, &old, "Sent").await.expect("read"), None, "per folder");
    assert_eq!(store.import_position(max, &other_login, "INBOX").await.expect("read"), None, "per login");
    assert_eq!(store.import_position(erika, &old, "INBOX").await.expect("read"), None, "per mailbox");

    let later = ImportPosition { uidvalidity: u32::MAX, last_uid: u32::MAX };
    store.set_import_position(max, &old, "INBOX", later).await.expect("update");
    assert_eq!(store.import_position(max, &old, "INBOX").await.expect("read"), Some(later), "the full u32 range");

    let address = EmailAddress::parse("max@acme.example").expect("address");
    store.remove_mailbox(Scope::Platform, &address).await.expect("remove");
    let (_, again) = mailbox(&store, "acme", "max").await;
    assert_eq!(store.import_position(again, &old, "INBOX").await.expect("read"), None, "gone with the mailbox");

    store.set_import_position(again, &old, "INBOX", first).await.expect("set");
    let domain = DomainName::parse("acme.example").expect("domain");
    store.remove_domain(Scope::Platform, &domain, true).await.expect("the domain goes with its mailboxes");
    assert_eq!(store.import_position(again, &old, "INBOX").await.expect("read"), None, "gone with the domain");
}
