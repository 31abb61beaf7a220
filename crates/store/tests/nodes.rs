//! Several `Store` handles on one PostgreSQL database, as several nodes hold them: each
//! hears the others' message changes, UIDs and modseqs only grow under concurrent
//! deliveries from every handle, and the shared counters count for all.

#[allow(dead_code)] // The PostgreSQL half only.
mod backends;

use std::collections::BTreeSet;
use std::time::Duration;

use postfach_store::mailboxes::MailboxSettings;
use postfach_store::messages::{Delivery, DeliveryFolder, Flags, MailboxChange, NewMessage};
use postfach_store::{Scope, Store};
use postfach_types::{BlobId, CustomerName, DomainName, EmailAddress, FolderId, MailboxId, Role, UnixTime};
use tokio::sync::{broadcast, watch};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA";

async fn mailbox(store: &Store) -> (MailboxId, FolderId) {
    let c = store.add_customer(&CustomerName::parse("acme").expect("name"), HASH, Role::Customer).await.expect("c");
    store.add_domain(c.id, &DomainName::parse("acme.example").expect("d"), true).await.expect("d");
    let address = EmailAddress::parse("max@acme.example").expect("address");
    let id = store.add_mailbox(Scope::Platform, &address, HASH, MailboxSettings::default()).await.expect("mb").id;
    let inbox = store.folder(id, "INBOX").await.expect("folder").expect("inbox").id;
    (id, inbox)
}

fn delivery(mailbox: MailboxId, n: u64) -> Delivery {
    let message = NewMessage {
        blob: BlobId::parse(&format!("{n:032x}")).expect("blob id"),
        size: 10,
        internal_date: UnixTime::now(),
        flags: Flags::default(),
        keywords: Vec::new(),
    };
    Delivery { mailbox_id: mailbox, folder: DeliveryFolder::Inbox, message }
}

/// The next announcement, waiting at most 10 s.
async fn next(changes: &mut broadcast::Receiver<MailboxChange>) -> MailboxChange {
    tokio::time::timeout(Duration::from_secs(10), changes.recv()).await.expect("an announcement in time").expect("recv")
}

#[tokio::test]
async fn each_handle_hears_what_the_others_change() {
    let (a, url) = backends::postgres().await;
    let b = Store::open(&url).await.expect("second handle");
    let (mb, inbox) = mailbox(&a).await;
    let (stop, stopped) = watch::channel(false);
    let mut heard_on_a = a.subscribe();
    let mut heard_on_b = b.subscribe();
    let relay = tokio::spawn(b.clone().relay_changes(stopped));
    // The relay says it may have missed something once it listens.
    assert_eq!(next(&mut heard_on_b).await, MailboxChange::Missed);

    a.deliver(&[delivery(mb, 1)]).await.expect("deliver");
    let expected = MailboxChange::Folder { mailbox_id: mb, folder_id: inbox };
    assert_eq!(next(&mut heard_on_a).await, expected, "at once on the delivering node");
    assert_eq!(next(&mut heard_on_b).await, expected, "through the database on the other");
    // Flags, copies and expunges are announced the same way; B's own changes are not
    // relayed back to B (it heard them locally, once).
    let drafts = a.folder(mb, "Drafts").await.expect("folder").expect("drafts").id;
    a.copy_messages(mb, inbox, &[1], drafts).await.expect("copy");
    assert_eq!(next(&mut heard_on_b).await, MailboxChange::Folder { mailbox_id: mb, folder_id: drafts });
    b.remove_messages(mb, drafts, &[1]).await.expect("remove");
    assert_eq!(next(&mut heard_on_b).await, MailboxChange::Folder { mailbox_id: mb, folder_id: drafts });
    a.deliver(&[delivery(mb, 2)]).await.expect("deliver");
    assert_eq!(next(&mut heard_on_b).await, expected, "nothing in between: B's removal came once");

    // A lost listening connection: everyone is woken once it listens again.
    let pool = sqlx::AnyPool::connect(&url).await.expect("pool");
    sqlx::query(
        "SELECT CAST(pg_terminate_backend(pid) AS INTEGER) AS ended FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(&pool)
    .await
    .expect("terminate the listener");
    assert_eq!(next(&mut heard_on_b).await, MailboxChange::Missed);
    a.deliver(&[delivery(mb, 3)]).await.expect("deliver");
    assert_eq!(next(&mut heard_on_b).await, expected, "and it hears again");

    stop.send(true).expect("stop");
    relay.await.expect("relay ends");
    pool.close().await;
}

#[tokio::test]
async fn uids_and_modseqs_only_grow_under_deliveries_from_three_nodes() {
    const PER_NODE: u64 = 120;
    let (first, url) = backends::postgres().await;
    let (mb, inbox) = mailbox(&first).await;
    let nodes = [first, Store::open(&url).await.expect("second"), Store::open(&url).await.expect("third")];
    let reader = Store::open(&url).await.expect("reader");
    let (done, mut finished) = watch::channel(false);

    // The reader polls the folder while the nodes deliver; a UID (or modseq) that shows up
    // below one already seen would be a gap filled later.
    let watcher = tokio::spawn(async move {
        let (mut seen, mut max_uid, mut max_modseq, mut polls) = (BTreeSet::new(), 0u32, 0u64, 0u32);
        loop {
            let last = *finished.borrow_and_update();
            let messages = reader.messages(mb, inbox).await.expect("messages");
            for m in &messages {
                if seen.insert(m.uid) {
                    assert!(m.uid > max_uid, "UID {} appeared after {max_uid} was seen", m.uid);
                    assert!(m.modseq > max_modseq, "modseq {} appeared after {max_modseq} was seen", m.modseq);
                }
            }
            if let Some(top) = messages.last() {
                max_uid = max_uid.max(top.uid);
            }
            max_modseq = max_modseq.max(messages.iter().map(|m| m.modseq).max().unwrap_or(0));
            polls += 1;
            if last {
                return (seen, polls);
            }
        }
    });

    let mut tasks = tokio::task::JoinSet::new();
    for (n, node) in nodes.iter().enumerate() {
        // Four concurrent writers per node, some delivering two messages at once.
        for writer in 0..4u64 {
            let node = node.clone();
            let base = (n as u64) * 1_000_000 + writer * 10_000;
            tasks.spawn(async move {
                let mut placed = Vec::new();
                let mut i = 0;
                while i < PER_NODE / 4 {
                    let batch: Vec<Delivery> =
                        (0..1 + i % 2).map(|k| delivery(mb, base + i + k)).take((PER_NODE / 4 - i) as usize).collect();
                    i += batch.len() as u64;
                    for p in node.deliver(&batch).await.expect("deliver") {
                        placed.push((p.uid, p.modseq));
                    }
                }
                placed
            });
        }
    }
    let mut placed = Vec::new();
    while let Some(result) = tasks.join_next().await {
        placed.extend(result.expect("writer"));
    }
    done.send(true).expect("done");
    let (seen, polls) = watcher.await.expect("watcher");

    let total = 3 * PER_NODE as usize;
    let uids: BTreeSet<u32> = placed.iter().map(|(uid, _)| *uid).collect();
    let modseqs: BTreeSet<u64> = placed.iter().map(|(_, m)| *m).collect();
    assert_eq!((uids.len(), modseqs.len()), (total, total), "all distinct");
    assert_eq!(uids, (1..=total as u32).collect(), "no UID skipped or reused");
    assert_eq!(seen, uids, "the reader saw every message");
    assert!(polls > 1, "the reader polled during the deliveries");
    let folder = nodes[0].folder(mb, "INBOX").await.expect("folder").expect("inbox");
    assert_eq!(folder.uidnext, total as u32 + 1);
    assert_eq!(folder.highest_modseq, *modseqs.last().expect("some"));
}

#[tokio::test]
async fn throttle_events_count_for_every_handle() {
    let (a, url) = backends::postgres().await;
    let b = Store::open(&url).await.expect("second handle");
    let keys = ["login max@acme.example", "ip 192.0.2.1"];
    a.record_throttle_events(&keys, 1_000).await.expect("record");
    b.record_throttle_events(&keys[..1], 2_000).await.expect("record");
    assert_eq!(a.count_throttle_events(&keys, 0).await.expect("count"), [2, 1]);
    assert_eq!(b.count_throttle_events(&keys, 1_000).await.expect("count"), [1, 0], "only after the window start");
    assert!(b.take_throttle_event("exposure max", 3_000, 0, 1).await.expect("take"));
    assert!(!a.take_throttle_event("exposure max", 3_000, 0, 1).await.expect("take"), "the budget is shared");
    a.forget_throttle_events(keys[0]).await.expect("forget");
    assert_eq!(b.count_throttle_events(&keys, 0).await.expect("count"), [0, 1]);
    assert_eq!(b.prune_throttle_events(1_000).await.expect("prune"), 1);
    assert_eq!(a.count_throttle_events(&keys, 0).await.expect("count"), [0, 0]);
}
