//! The message store suite, run against SQLite and PostgreSQL alike.

mod backends;

use postfach_store::delivery::DeliveryBatcher;
use postfach_store::folders::SpecialUse;
use postfach_store::mailboxes::MailboxSettings;
use postfach_store::messages::{Delivery, DeliveryFolder, FlagChange, Flags, MailboxChange, NewMessage};
use postfach_store::{Scope, Store, StoreError};
use postfach_types::{BlobId, CustomerName, DomainName, EmailAddress, FolderId, MailboxId, Role, UnixTime};

on_both_backends!(
    new_mailboxes_have_the_default_folders,
    uids_increase_and_are_never_reused,
    deliveries_land_in_inbox_or_junk_in_one_transaction,
    flags_keywords_and_condstore,
    expunge_copy_move_and_vanished,
    pruning_expunges_raises_the_floor,
    folders_create_rename_delete,
    a_mailbox_cannot_touch_another_mailboxs_folders,
    changes_are_announced,
    the_batcher_commits_concurrent_deliveries_together,
);

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA";

async fn mailbox(store: &Store, local: &str) -> MailboxId {
    let customer = match store.customer(&CustomerName::parse("acme").expect("name")).await {
        Ok(c) => c,
        Err(_) => {
            let c =
                store.add_customer(&CustomerName::parse("acme").expect("name"), HASH, Role::Customer).await.expect("c");
            store.add_domain(c.id, &DomainName::parse("acme.example").expect("d"), true).await.expect("d");
            c
        }
    };
    let _ = customer;
    let address = EmailAddress::parse(&format!("{local}@acme.example")).expect("address");
    store.add_mailbox(Scope::Platform, &address, HASH, MailboxSettings::default()).await.expect("mailbox").id
}

fn msg(blob: &str, size: u64) -> NewMessage {
    NewMessage {
        blob: BlobId::parse(&format!("{blob:0>32}")).expect("blob id"),
        size,
        internal_date: UnixTime(1_700_000_000),
        flags: Flags::default(),
        keywords: Vec::new(),
    }
}

async fn inbox(store: &Store, mb: MailboxId) -> FolderId {
    store.folder(mb, "inbox").await.expect("lookup").expect("INBOX exists").id
}

async fn new_mailboxes_have_the_default_folders(store: Store) {
    let mb = mailbox(&store, "max").await;
    let folders = store.folders(mb).await.expect("folders");
    let names: Vec<_> = folders.iter().map(|f| (f.name.as_str(), f.special_use)).collect();
    assert_eq!(
        names,
        [
            ("INBOX", None),
            ("Archive", Some(SpecialUse::Archive)),
            ("Drafts", Some(SpecialUse::Drafts)),
            ("Junk", Some(SpecialUse::Junk)),
            ("Sent", Some(SpecialUse::Sent)),
            ("Trash", Some(SpecialUse::Trash)),
        ]
    );
    assert!(folders.iter().all(|f| f.uidnext == 1 && f.uidvalidity > 0 && f.subscribed));
    let mut validities: Vec<_> = folders.iter().map(|f| f.uidvalidity).collect();
    validities.sort_unstable();
    validities.dedup();
    assert_eq!(validities.len(), 6, "each folder has its own UIDVALIDITY");
}

async fn uids_increase_and_are_never_reused(store: Store) {
    let mb = mailbox(&store, "max").await;
    let inbox = inbox(&store, mb).await;
    let (a, m1) = store.append(mb, inbox, &msg("a", 10)).await.expect("append");
    let (b, m2) = store.append(mb, inbox, &msg("b", 20)).await.expect("append");
    assert_eq!((a, b), (1, 2));
    assert!(m2 > m1);
    store.store_flags(mb, inbox, &[2], FlagChange::Add, Flags::DELETED, &[], None).await.expect("flag");
    let gone = store.expunge(mb, inbox, None).await.expect("expunge");
    assert_eq!(gone.uids, [2]);
    let (c, _) = store.append(mb, inbox, &msg("c", 30)).await.expect("append");
    assert_eq!(c, 3, "UID 2 is not reused");
    assert_eq!(store.uids(mb, inbox).await.expect("uids"), [1, 3]);
    let folder = store.folder(mb, "INBOX").await.expect("f").expect("f");
    assert_eq!(folder.uidnext, 4);

    // A folder deleted and created again gets a new UIDVALIDITY.
    let old = store.create_folder(mb, "Projects", None).await.expect("create");
    store.append(mb, old.id, &msg("d", 1)).await.expect("append");
    store.delete_folder(mb, "Projects").await.expect("delete");
    let new = store.create_folder(mb, "Projects", None).await.expect("create again");
    assert!(new.uidvalidity > old.uidvalidity, "{} > {}", new.uidvalidity, old.uidvalidity);
}

async fn deliveries_land_in_inbox_or_junk_in_one_transaction(store: Store) {
    let max = mailbox(&store, "max").await;
    let erika = mailbox(&store, "erika").await;
    let placed = store
        .deliver(&[
            Delivery { mailbox_id: max, folder: DeliveryFolder::Inbox, message: msg("1", 100) },
            Delivery { mailbox_id: erika, folder: DeliveryFolder::Inbox, message: msg("1", 100) },
            Delivery { mailbox_id: max, folder: DeliveryFolder::Junk, message: msg("2", 50) },
        ])
        .await
        .expect("deliver");
    assert_eq!(placed.len(), 3);
    let max_inbox = inbox(&store, max).await;
    let junk = store.folder(max, "Junk").await.expect("junk").expect("exists");
    assert_eq!((placed[0].folder_id, placed[0].uid), (max_inbox, 1));
    assert_eq!((placed[2].folder_id, placed[2].uid), (junk.id, 1));
    let stored = store.messages(max, max_inbox).await.expect("list");
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0].size, stored[0].blob.as_str()), (100, "00000000000000000000000000000001"));
    assert_eq!(store.mailbox_usage(max).await.expect("usage"), 150);
    // The monitoring total counts the file shared by max and erika once.
    assert_eq!(store.stats(10).await.expect("stats").mailbox_bytes, 150);
    // A delivery to a mailbox that does not exist fails as a whole: nothing is stored.
    let bad = store
        .deliver(&[
            Delivery { mailbox_id: erika, folder: DeliveryFolder::Inbox, message: msg("3", 1) },
            Delivery { mailbox_id: MailboxId::new(999_999), folder: DeliveryFolder::Inbox, message: msg("3", 1) },
        ])
        .await;
    assert!(bad.is_err());
    assert_eq!(store.uids(erika, inbox(&store, erika).await).await.expect("uids"), [1]);
}

async fn flags_keywords_and_condstore(store: Store) {
    let mb = mailbox(&store, "max").await;
    let inbox = inbox(&store, mb).await;
    for b in ["a", "b", "c"] {
        store.append(mb, inbox, &msg(b, 1)).await.expect("append");
    }
    let before = store.folder(mb, "INBOX").await.expect("f").expect("f").highest_modseq;
    let out = store
        .store_flags(mb, inbox, &[1, 2], FlagChange::Add, Flags::SEEN.union(Flags::FLAGGED), &["$Work".into()], None)
        .await
        .expect("store");
    assert_eq!(out.changed.len(), 2);
    assert!(out.changed.iter().all(|m| m.flags.contains(Flags::SEEN) && m.keywords == ["$Work"]));
    let after = store.folder(mb, "INBOX").await.expect("f").expect("f").highest_modseq;
    assert!(after > before);
    // Setting what is already set changes nothing and bumps nothing.
    let again = store.store_flags(mb, inbox, &[1], FlagChange::Add, Flags::SEEN, &[], None).await.expect("store");
    assert!(again.changed.is_empty());
    let out = store
        .store_flags(mb, inbox, &[1], FlagChange::Remove, Flags::FLAGGED, &["$Work".into()], None)
        .await
        .expect("s");
    assert_eq!((out.changed[0].flags, out.changed[0].keywords.len()), (Flags::SEEN, 0));
    let out =
        store.store_flags(mb, inbox, &[3], FlagChange::Replace, Flags::ANSWERED, &["b".into(), "a".into()], None).await;
    assert_eq!(out.expect("s").changed[0].keywords, ["a", "b"]);
    // CONDSTORE: message 2 changed after `before`, so an UNCHANGEDSINCE before refuses it.
    let cond =
        store.store_flags(mb, inbox, &[2, 3], FlagChange::Add, Flags::DRAFT, &[], Some(before)).await.expect("store");
    assert_eq!(cond.modified, [2, 3]);
    assert!(cond.changed.is_empty());
    let changed = store.messages_changed_since(mb, inbox, after).await.expect("since");
    assert_eq!(changed.iter().map(|m| m.uid).collect::<Vec<_>>(), [1, 3]);
    // A range read gives what the whole-folder read gives: every field, keywords with
    // IMAP's odd atom characters intact, nothing outside the range. Keywords no IMAP
    // client can send (space, line break) are not stored.
    let keywords = ["a,b;c".into(), "$Ärger".into(), "two\nlines".into(), "a space".into()];
    store.store_flags(mb, inbox, &[2], FlagChange::Add, Flags::default(), &keywords, None).await.expect("store");
    let all = store.messages(mb, inbox).await.expect("messages");
    assert_eq!(store.messages_between(mb, inbox, 1, 3).await.expect("between"), all);
    assert_eq!(store.messages_between(mb, inbox, 2, 2).await.expect("between"), all[1..2]);
    assert_eq!(all[1].keywords, ["$Work", "$Ärger", "a,b;c"]);
    assert!(store.messages_between(mb, inbox, 4, 100).await.expect("between").is_empty());
}

async fn expunge_copy_move_and_vanished(store: Store) {
    let mb = mailbox(&store, "max").await;
    let inbox = inbox(&store, mb).await;
    let archive = store.folder(mb, "Archive").await.expect("f").expect("f").id;
    for b in ["a", "b", "c", "d"] {
        store.append(mb, inbox, &msg(b, 1)).await.expect("append");
    }
    let copied = store.copy_messages(mb, inbox, &[1, 2], archive).await.expect("copy");
    assert_eq!(copied, [(1, 1), (2, 2)]);
    let moved = store.move_messages(mb, inbox, &[3], archive).await.expect("move");
    assert_eq!(moved, [(3, 3)]);
    assert_eq!(store.uids(mb, inbox).await.expect("uids"), [1, 2, 4]);
    // All or nothing: 3 is gone from INBOX, so neither copies nor moves 4 along with it.
    assert!(store.copy_messages(mb, inbox, &[3, 4], archive).await.expect("copy").is_empty());
    assert!(store.move_messages(mb, inbox, &[3, 4], archive).await.expect("move").is_empty());
    assert_eq!(store.uids(mb, inbox).await.expect("uids"), [1, 2, 4]);
    assert_eq!(store.uids(mb, archive).await.expect("uids"), [1, 2, 3]);
    let modseq = store.folder(mb, "INBOX").await.expect("f").expect("f").highest_modseq;
    store.store_flags(mb, inbox, &[1, 4], FlagChange::Add, Flags::DELETED, &[], None).await.expect("flag");
    // UID EXPUNGE of 4 only.
    let gone = store.expunge(mb, inbox, Some(&[4, 2])).await.expect("expunge");
    assert_eq!(gone.uids, [4]);
    assert_eq!(gone.orphaned_blobs, ["0000000000000000000000000000000d"], "d was only in INBOX");
    let gone = store.expunge(mb, inbox, None).await.expect("expunge");
    assert_eq!(gone.uids, [1]);
    assert!(gone.orphaned_blobs.is_empty(), "the copy in Archive still uses blob a");
    assert_eq!(store.expunged_since(mb, inbox, modseq).await.expect("vanished"), [1, 4]);
    assert_eq!(store.expunged_since(mb, inbox, 0).await.expect("vanished"), [1, 3, 4]);
    // POP3-style removal ignores flags.
    let gone = store.remove_messages(mb, inbox, &[2, 99]).await.expect("remove");
    assert_eq!(gone.uids, [2]);
    assert!(store.uids(mb, inbox).await.expect("uids").is_empty());
    let orphans = store
        .unreferenced_blobs(
            ["0000000000000000000000000000000a", "0000000000000000000000000000000d"]
                .map(|b| BlobId::parse(b).expect("blob id"))
                .to_vec(),
        )
        .await
        .expect("orphans");
    assert_eq!(orphans, ["0000000000000000000000000000000d"]);
}

async fn floor(store: &Store, mb: MailboxId) -> u64 {
    store.folder(mb, "INBOX").await.expect("f").expect("f").expunged_floor
}

async fn pruning_expunges_raises_the_floor(store: Store) {
    let mb = mailbox(&store, "max").await;
    let inbox = inbox(&store, mb).await;
    for b in ["a", "b", "c", "d"] {
        store.append(mb, inbox, &msg(b, 1)).await.expect("append");
    }
    store.remove_messages(mb, inbox, &[1, 2]).await.expect("remove");
    let first = store.folder(mb, "INBOX").await.expect("f").expect("f").highest_modseq;
    // Nothing is old enough yet.
    assert_eq!(store.prune_expunged(UnixTime(UnixTime::now().0 - 3600)).await.expect("prune"), 0);
    assert_eq!(floor(&store, mb).await, 0);
    // Everything so far is: forgotten, and the floor rises to its modseq.
    let soon = || UnixTime(UnixTime::now().0 + 10);
    assert_eq!(store.prune_expunged(soon()).await.expect("prune"), 2);
    assert_eq!(floor(&store, mb).await, first);
    assert!(store.expunged_since(mb, inbox, 0).await.expect("vanished").is_empty());
    store.remove_messages(mb, inbox, &[3]).await.expect("remove");
    assert_eq!(store.expunged_since(mb, inbox, 0).await.expect("vanished"), [3]);
    // A prune with nothing to forget leaves the floor; the next one raises it again.
    assert_eq!(store.prune_expunged(UnixTime(0)).await.expect("prune"), 0);
    assert_eq!(floor(&store, mb).await, first);
    assert_eq!(store.prune_expunged(soon()).await.expect("prune"), 1);
    let second = store.folder(mb, "INBOX").await.expect("f").expect("f");
    assert!(second.expunged_floor > first && second.expunged_floor == second.highest_modseq);
    assert!(store.expunged_since(mb, inbox, 0).await.expect("vanished").is_empty());
}

/// After the clock went back, a later prune can forget only expunges with lower modseqs
/// than an earlier one did; the floor stays. Dating an expunge back needs a connection of
/// its own (the store has no call for it), so this runs outside `on_both_backends!`.
async fn the_floor_never_falls(store: Store, url: &str) {
    let mb = mailbox(&store, "max").await;
    let inbox = inbox(&store, mb).await;
    for b in ["a", "b"] {
        store.append(mb, inbox, &msg(b, 1)).await.expect("append");
    }
    store.remove_messages(mb, inbox, &[1]).await.expect("remove");
    store.remove_messages(mb, inbox, &[2]).await.expect("remove");
    let high = store.folder(mb, "INBOX").await.expect("f").expect("f").highest_modseq;
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(url).await.expect("connect");
    sqlx::query("UPDATE expunged SET expunged_at = 100 WHERE uid = 2").execute(&mut conn).await.expect("backdate");
    assert_eq!(store.prune_expunged(UnixTime(1000)).await.expect("prune"), 1);
    assert_eq!(floor(&store, mb).await, high);
    assert_eq!(store.expunged_since(mb, inbox, 0).await.expect("vanished"), [1]);
    assert_eq!(store.prune_expunged(UnixTime(UnixTime::now().0 + 10)).await.expect("prune"), 1);
    assert_eq!(floor(&store, mb).await, high, "the floor does not fall to the lower modseq of UID 1");
    assert!(store.expunged_since(mb, inbox, 0).await.expect("vanished").is_empty());
}

#[tokio::test]
async fn the_floor_never_falls_sqlite() {
    let (store, dir) = backends::sqlite().await;
    the_floor_never_falls(store, &format!("sqlite://{}/postfach.sqlite", dir.path().display())).await;
}

#[tokio::test]
async fn the_floor_never_falls_postgres() {
    let (store, url) = backends::postgres().await;
    the_floor_never_falls(store, &url).await;
}

async fn folders_create_rename_delete(store: Store) {
    let mb = mailbox(&store, "max").await;
    store.create_folder(mb, "Work", None).await.expect("create");
    store.create_folder(mb, "Work/2026", None).await.expect("create");
    assert!(matches!(store.create_folder(mb, "Work", None).await, Err(StoreError::Conflict(_))));
    assert!(matches!(store.create_folder(mb, "inbox", None).await, Err(StoreError::Conflict(_))));
    for bad in ["", "/x", "x/", "a//b", "a*b"] {
        assert!(matches!(store.create_folder(mb, bad, None).await, Err(StoreError::Conflict(_))), "{bad:?}");
    }
    let w = store.folder(mb, "Work/2026").await.expect("f").expect("f");
    store.append(mb, w.id, &msg("e", 1)).await.expect("append");
    store.rename_folder(mb, "Work", "Jobs").await.expect("rename");
    let renamed = store.folder(mb, "Jobs/2026").await.expect("f").expect("child renamed too");
    assert_eq!((renamed.id, renamed.uidvalidity), (w.id, w.uidvalidity), "same folder, same UIDVALIDITY");
    assert!(store.folder(mb, "Work").await.expect("f").is_none());
    assert!(matches!(store.rename_folder(mb, "Nope", "X").await, Err(StoreError::NotFound(_))));
    // Renaming INBOX moves its messages and leaves it empty.
    let inbox = inbox(&store, mb).await;
    store.append(mb, inbox, &msg("f", 1)).await.expect("append");
    store.rename_folder(mb, "INBOX", "Old").await.expect("rename inbox");
    let old = store.folder(mb, "Old").await.expect("f").expect("f");
    assert_eq!(store.uids(mb, old.id).await.expect("uids"), [1]);
    assert!(store.uids(mb, inbox).await.expect("uids").is_empty());
    store.set_subscribed(mb, "Old", false).await.expect("unsubscribe");
    assert!(!store.folder(mb, "Old").await.expect("f").expect("f").subscribed);
    assert!(matches!(store.delete_folder(mb, "INBOX").await, Err(StoreError::Conflict(_))));
    let orphans = store.delete_folder(mb, "Jobs/2026").await.expect("delete");
    assert_eq!(orphans, ["0000000000000000000000000000000e"]);
}

async fn a_mailbox_cannot_touch_another_mailboxs_folders(store: Store) {
    let max = mailbox(&store, "max").await;
    let erika = mailbox(&store, "erika").await;
    let erika_inbox = inbox(&store, erika).await;
    store.append(erika, erika_inbox, &msg("a", 1)).await.expect("append");
    assert!(store.append(max, erika_inbox, &msg("e", 1)).await.is_err());
    assert!(store.messages(max, erika_inbox).await.expect("query").is_empty());
    assert!(store.uids(max, erika_inbox).await.expect("query").is_empty());
    assert!(store.store_flags(max, erika_inbox, &[1], FlagChange::Add, Flags::DELETED, &[], None).await.is_err());
    assert!(store.expunge(max, erika_inbox, None).await.is_err());
    assert!(store.remove_messages(max, erika_inbox, &[1]).await.is_err());
    let max_inbox = inbox(&store, max).await;
    assert!(store.copy_messages(max, erika_inbox, &[1], max_inbox).await.is_err());
    assert!(store.move_messages(max, erika_inbox, &[1], max_inbox).await.is_err());
    assert!(store.folder_by_id(max, erika_inbox).await.expect("query").is_none());
    assert_eq!(store.uids(erika, erika_inbox).await.expect("uids"), [1], "untouched");
}

async fn changes_are_announced(store: Store) {
    let mb = mailbox(&store, "max").await;
    let inbox = inbox(&store, mb).await;
    let mut changes = store.subscribe();
    store
        .deliver(&[Delivery { mailbox_id: mb, folder: DeliveryFolder::Inbox, message: msg("a", 1) }])
        .await
        .expect("d");
    let change = changes.recv().await.expect("announced");
    assert_eq!(change, MailboxChange::Folder { mailbox_id: mb, folder_id: inbox });
    store.store_flags(mb, inbox, &[1], FlagChange::Add, Flags::SEEN, &[], None).await.expect("flag");
    assert_eq!(changes.recv().await.expect("announced"), MailboxChange::Folder { mailbox_id: mb, folder_id: inbox });
}

async fn the_batcher_commits_concurrent_deliveries_together(store: Store) {
    let mb = mailbox(&store, "max").await;
    let batcher = DeliveryBatcher::start(store.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40u32 {
        let batcher = batcher.clone();
        tasks.spawn(async move {
            let d = Delivery { mailbox_id: mb, folder: DeliveryFolder::Inbox, message: msg(&format!("{i:x}"), 1) };
            batcher.deliver(vec![d]).await
        });
    }
    // One request for a missing mailbox fails alone.
    let bad = batcher
        .deliver(vec![Delivery {
            mailbox_id: MailboxId::new(999_999),
            folder: DeliveryFolder::Inbox,
            message: msg("ff", 1),
        }])
        .await;
    assert!(bad.is_err());
    let mut uids = Vec::new();
    while let Some(result) = tasks.join_next().await {
        let placed = result.expect("task").expect("delivered");
        uids.push(placed[0].uid);
    }
    uids.sort_unstable();
    assert_eq!(uids, (1..=40).collect::<Vec<_>>(), "every delivery got its own UID");
    assert_eq!(store.uids(mb, inbox(&store, mb).await).await.expect("uids").len(), 40);
}
