//! Quotas in the store, on SQLite and PostgreSQL: the use counters follow every way a
//! message comes and goes, APPEND and COPY are refused over quota with nothing stored,
//! warning levels are reported once per crossing, and the customer's total bounds its
//! mailboxes.

mod backends;

use postfach_store::mailboxes::MailboxSettings;
use postfach_store::messages::{Delivery, DeliveryFolder, FlagChange, Flags, NewMessage};
use postfach_store::quota::MailboxQuota;
use postfach_store::resolve::Resolution;
use postfach_store::{Conflict, Scope, Store, StoreError};
use postfach_types::{BlobId, CustomerName, DomainName, EmailAddress, MailboxId, Role, Room, UnixTime};

on_both_backends!(
    use_follows_deliveries_appends_copies_moves_and_expunges,
    append_and_copy_over_quota_store_nothing,
    warnings_are_reported_once_per_crossing,
    the_customer_total_bounds_its_mailboxes,
);

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA";

fn address(local: &str) -> EmailAddress {
    EmailAddress::parse(&format!("{local}@acme.example")).expect("address")
}

async fn setup(store: &Store) -> CustomerName {
    let name = CustomerName::parse("acme").expect("name");
    let c = store.add_customer(&name, HASH, Role::Customer).await.expect("customer");
    store.add_domain(c.id, &DomainName::parse("acme.example").expect("d"), true).await.expect("domain");
    name
}

async fn mailbox(store: &Store, local: &str) -> MailboxId {
    store.add_mailbox(Scope::Platform, &address(local), HASH, MailboxSettings::default()).await.expect("mailbox").id
}

fn msg(n: u32, size: u64) -> NewMessage {
    NewMessage {
        blob: BlobId::parse(&format!("{n:0>32}")).expect("blob id"),
        size,
        internal_date: UnixTime(1_700_000_000),
        flags: Flags::default(),
        keywords: Vec::new(),
    }
}

async fn deliver(store: &Store, mb: MailboxId, n: u32, size: u64) -> Option<u8> {
    let d = Delivery { mailbox_id: mb, folder: DeliveryFolder::Inbox, message: msg(n, size) };
    store.deliver(&[d]).await.expect("deliver")[0].quota_warning
}

/// The counters against the messages themselves.
async fn assert_use(store: &Store, mb: MailboxId, bytes: u64, messages: u64) {
    let space = store.mailbox_space(mb).await.expect("space");
    assert_eq!((space.used_bytes, space.used_messages), (bytes, messages));
    let mut summed = (0, 0);
    for folder in store.folders(mb).await.expect("folders") {
        for m in store.messages(mb, folder.id).await.expect("messages") {
            summed.0 += m.size;
            summed.1 += 1;
        }
    }
    assert_eq!(summed, (bytes, messages), "the counters match the messages");
}

async fn use_follows_deliveries_appends_copies_moves_and_expunges(store: Store) {
    setup(&store).await;
    let mb = mailbox(&store, "max").await;
    let inbox = store.folder(mb, "INBOX").await.expect("lookup").expect("inbox").id;
    let archive = store.folder(mb, "Archive").await.expect("lookup").expect("archive").id;
    deliver(&store, mb, 1, 100).await;
    store.append(mb, inbox, &msg(2, 50)).await.expect("append");
    assert_use(&store, mb, 150, 2).await;
    let copied = store.copy_messages(mb, inbox, &[1, 2], archive).await.expect("copy");
    assert_eq!(copied.len(), 2);
    assert_use(&store, mb, 300, 4).await;
    store.move_messages(mb, archive, &[1], inbox).await.expect("move");
    assert_use(&store, mb, 300, 4).await;
    store.store_flags(mb, inbox, &[1, 2], FlagChange::Add, Flags::DELETED, &[], None).await.expect("flag");
    store.expunge(mb, inbox, None).await.expect("expunge");
    assert_use(&store, mb, 150, 2).await;
    store.remove_messages(mb, archive, &[2]).await.expect("remove");
    // Deleting a folder takes its messages off the use.
    let projects = store.create_folder(mb, "Projects", None).await.expect("folder");
    store.append(mb, projects.id, &msg(8, 70)).await.expect("append");
    store.append(mb, projects.id, &msg(9, 30)).await.expect("append");
    assert_use(&store, mb, 200, 3).await;
    store.delete_folder(mb, "Projects").await.expect("delete folder");
    // Left: the moved copy of the first message in INBOX.
    assert_use(&store, mb, 100, 1).await;
    assert_eq!(store.mailbox_usage(mb).await.expect("usage"), 100);
    let listed = store.mailbox(Scope::Platform, &address("max")).await.expect("mailbox");
    assert_eq!((listed.used_bytes, listed.used_messages), (100, 1));
}

async fn append_and_copy_over_quota_store_nothing(store: Store) {
    setup(&store).await;
    let mb = mailbox(&store, "max").await;
    let inbox = store.folder(mb, "INBOX").await.expect("lookup").expect("inbox").id;
    let archive = store.folder(mb, "Archive").await.expect("lookup").expect("archive").id;
    let quota = MailboxQuota { bytes: Some(1000), messages: Some(3) };
    store.set_mailbox_quota(Scope::Platform, &address("max"), quota).await.expect("quota");
    store.append(mb, inbox, &msg(1, 600)).await.expect("fits");
    match store.append(mb, inbox, &msg(2, 500)).await {
        Err(StoreError::OverQuota(Room::Full)) => {}
        other => panic!("expected a full mailbox, got {other:?}"),
    }
    match store.append(mb, inbox, &msg(3, 1001)).await {
        Err(StoreError::OverQuota(Room::TooBig)) => {}
        other => panic!("expected a message too big, got {other:?}"),
    }
    assert_use(&store, mb, 600, 1).await;
    match store.copy_messages(mb, inbox, &[1], archive).await {
        Err(StoreError::OverQuota(Room::Full)) => {}
        other => panic!("expected a full mailbox, got {other:?}"),
    }
    assert!(store.messages(mb, archive).await.expect("archive").is_empty(), "nothing copied");
    // A move does not add to the use: it works even when a copy would not fit.
    store.move_messages(mb, inbox, &[1], archive).await.expect("move");
    assert_use(&store, mb, 600, 1).await;
    // The message count limit.
    store.append(mb, inbox, &msg(4, 10)).await.expect("fits");
    store.append(mb, inbox, &msg(5, 10)).await.expect("fits");
    assert!(matches!(store.append(mb, inbox, &msg(6, 10)).await, Err(StoreError::OverQuota(Room::Full))));
    // RCPT reads the same space with the address.
    let Resolution::Mailbox(found) = store.resolve(&address("max")).await.expect("resolve") else { panic!("mailbox") };
    assert_eq!(found.space.room(1, 1), Room::Full);
    // No limit: anything fits again.
    store.set_mailbox_quota(Scope::Platform, &address("max"), MailboxQuota::default()).await.expect("none");
    store.append(mb, inbox, &msg(7, 5000)).await.expect("no limit");
}

async fn warnings_are_reported_once_per_crossing(store: Store) {
    setup(&store).await;
    let mb = mailbox(&store, "max").await;
    let inbox = store.folder(mb, "INBOX").await.expect("lookup").expect("inbox").id;
    let quota = MailboxQuota { bytes: Some(1000), messages: None };
    store.set_mailbox_quota(Scope::Platform, &address("max"), quota).await.expect("quota");
    assert_eq!(deliver(&store, mb, 1, 700).await, None);
    assert_eq!(deliver(&store, mb, 2, 100).await, Some(80), "80 % crossed");
    assert_eq!(deliver(&store, mb, 3, 100).await, None, "told once");
    assert_eq!(deliver(&store, mb, 4, 60).await, Some(95), "95 % crossed");
    // Deliveries past the limit (the grace of SMTP's end of DATA) warn no more.
    assert_eq!(deliver(&store, mb, 5, 100).await, None);
    // Below 80 % again, then over it: told again.
    store.store_flags(mb, inbox, &[2, 3, 4, 5], FlagChange::Add, Flags::DELETED, &[], None).await.expect("flag");
    store.expunge(mb, inbox, None).await.expect("expunge");
    assert_eq!(store.append_placed(mb, inbox, &msg(6, 150)).await.expect("append").quota_warning, Some(80));
}

async fn the_customer_total_bounds_its_mailboxes(store: Store) {
    let customer = setup(&store).await;
    let max = mailbox(&store, "max").await;
    let erika = mailbox(&store, "erika").await;
    store.set_customer_quota(&customer, Some(1000)).await.expect("customer quota");
    let too_large = MailboxQuota { bytes: Some(2000), messages: None };
    match store.set_mailbox_quota(Scope::Platform, &address("max"), too_large).await {
        Err(StoreError::Refused(Conflict::QuotaAboveCustomer { customer_quota: 1000, .. })) => {}
        other => panic!("expected the customer's limit, got {other:?}"),
    }
    let fits = MailboxQuota { bytes: Some(800), messages: None };
    store.set_mailbox_quota(Scope::Platform, &address("max"), fits).await.expect("within the total");
    match store.set_customer_quota(&customer, Some(500)).await {
        Err(StoreError::Refused(Conflict::MailboxQuotaAbove { mailbox_quota: 800, .. })) => {}
        other => panic!("expected the mailbox's own limit, got {other:?}"),
    }
    deliver(&store, erika, 1, 600).await;
    let inbox = store.folder(max, "INBOX").await.expect("lookup").expect("inbox").id;
    // max's own limit leaves room, the customer's total does not.
    assert!(matches!(store.append(max, inbox, &msg(2, 500)).await, Err(StoreError::OverQuota(Room::Full))));
    store.append(max, inbox, &msg(3, 400)).await.expect("fits the total");
    assert_eq!(store.customer_usage(store.customer(&customer).await.expect("c").id).await.expect("usage"), 1000);
    let space = store.mailbox_space(max).await.expect("space");
    assert_eq!((space.customer_used_bytes, space.customer_quota_bytes), (1000, Some(1000)));
    store.set_customer_quota(&customer, None).await.expect("no limit");
    assert_eq!(store.customer(&customer).await.expect("c").quota_bytes, None);
}
