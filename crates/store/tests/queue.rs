//! The outbound queue suite, run against SQLite and PostgreSQL alike.

mod backends;

use postfach_store::queue::{AttemptTls, NewQueuedMessage, Notice, Outcome, RecipientState};
use postfach_store::{Scope, Store, StoreError};
use postfach_types::{BlobId, CustomerId, CustomerName, DomainName, EmailAddress, NodeName, Role, UnixTime};

on_both_backends!(
    queued_mail_is_claimed_once_and_its_outcomes_recorded,
    notices_are_owed_until_sent_and_finished_messages_are_found,
    operators_list_retry_and_remove_within_their_scope,
    spool_blobs_in_use_are_not_orphans,
    a_claim_is_a_lease_held_by_one_node,
    concurrent_claimers_never_share_a_recipient,
    backups_page_through_queue_blobs_and_forget_delivered_ones,
);

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA";

fn node(name: &str) -> NodeName {
    NodeName::parse(name).expect("node name")
}

fn address(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("address")
}

async fn customer(store: &Store, name: &str) -> CustomerId {
    let c = store.add_customer(&CustomerName::parse(name).expect("name"), HASH, Role::Customer).await.expect("c");
    store.add_domain(c.id, &DomainName::parse(&format!("{name}.example")).expect("d"), true).await.expect("d");
    c.id
}

fn message(queue_id: &str, customer_id: Option<CustomerId>, recipients: &[&str], at: i64) -> NewQueuedMessage {
    NewQueuedMessage {
        queue_id: queue_id.into(),
        customer_id,
        mailbox_id: None,
        return_path: Some(address("max@acme.example")),
        blob: BlobId::parse(&format!("{:032x}", at)).expect("blob id"),
        size: 1234,
        created_at: UnixTime(at),
        expires_at: UnixTime(at + 432_000),
        recipients: recipients.iter().map(|r| address(r)).collect(),
        tls_demand: None,
    }
}

async fn queued_mail_is_claimed_once_and_its_outcomes_recorded(store: Store) {
    let now = UnixTime::now();
    let id = store
        .enqueue(&message("A1", None, &["a@one.example", "b@one.example", "c@two.example"], now.0))
        .await
        .expect("enqueue");
    let groups = store.queue_claim_due(&node("a"), now, UnixTime(now.0 + 60), 100).await.expect("claim");
    assert_eq!(groups.len(), 2, "one group per domain: {groups:?}");
    assert_eq!(groups[0].domain, "one.example");
    assert_eq!(groups[0].recipients.len(), 2);
    assert!(groups.iter().all(|g| g.message_id == id));
    assert!(
        store.queue_claim_due(&node("a"), now, UnixTime(now.0 + 60), 100).await.expect("claim").is_empty(),
        "claimed once"
    );

    let m = store.queue_message(id).await.expect("read").expect("there");
    assert_eq!(m.recipients.len(), 3);
    assert_eq!(m.return_path, Some(address("max@acme.example")));
    let [a, b, c] = [m.recipients[0].id, m.recipients[1].id, m.recipients[2].id];
    store
        .queue_record(
            &node("a"),
            now,
            &[
                (
                    a,
                    Outcome::Delivered {
                        remote_mta: Some("mx.one.example".into()),
                        tls: Some(AttemptTls { policy: "opportunistic".into(), detail: Some("TLSv1.3 X".into()) }),
                    },
                ),
                (
                    b,
                    Outcome::Failed {
                        status: "5.1.1".into(),
                        diagnostic: "550 5.1.1 no such user".into(),
                        remote_mta: Some("mx.one.example".into()),
                        tls: None,
                        notify: true,
                    },
                ),
                (
                    c,
                    Outcome::Deferred {
                        next_attempt_at: UnixTime(now.0 + 300),
                        status: "4.4.1".into(),
                        diagnostic: "connection refused".into(),
                        remote_mta: None,
                        tls: None,
                        warn_delay: false,
                    },
                ),
            ],
            None,
        )
        .await
        .expect("record");
    let m = store.queue_message(id).await.expect("read").expect("there");
    let states: Vec<_> = m.recipients.iter().map(|r| (r.state, r.attempts, r.notify)).collect();
    assert_eq!(
        states,
        [
            (RecipientState::Delivered, 1, None),
            (RecipientState::Failed, 1, Some(Notice::Failed)),
            (RecipientState::Queued, 1, None)
        ]
    );
    assert_eq!(m.recipients[0].tls.as_deref(), Some("TLSv1.3 X"));
    assert_eq!(m.recipients[0].tls_policy.as_deref(), Some("opportunistic"));
    assert_eq!(m.recipients[2].diagnostic.as_deref(), Some("connection refused"));
    assert!(
        store.queue_claim_due(&node("a"), now, UnixTime(now.0 + 60), 100).await.expect("claim").is_empty(),
        "not due yet"
    );
    let later = UnixTime(now.0 + 301);
    let groups = store.queue_claim_due(&node("a"), later, UnixTime(later.0 + 60), 100).await.expect("claim");
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].recipients, [c]);

    // A claim left by a crash is released at the node's next start.
    assert_eq!(store.queue_release_claims(&node("a")).await.expect("release"), 1);
    assert_eq!(store.queue_claim_due(&node("a"), later, UnixTime(later.0 + 60), 100).await.expect("claim").len(), 1);
}

async fn notices_are_owed_until_sent_and_finished_messages_are_found(store: Store) {
    let now = UnixTime::now();
    let id = store.enqueue(&message("B1", None, &["a@one.example", "b@one.example"], now.0)).await.expect("q");
    let other = store.enqueue(&message("B2", None, &["z@one.example"], now.0)).await.expect("q");
    let m = store.queue_message(id).await.expect("read").expect("there");
    let (a, b) = (m.recipients[0].id, m.recipients[1].id);
    let deferred = |warn| Outcome::Deferred {
        next_attempt_at: UnixTime(now.0 + 300),
        status: "4.4.1".into(),
        diagnostic: "timeout".into(),
        remote_mta: None,
        tls: None,
        warn_delay: warn,
    };
    store
        .queue_record(
            &node("a"),
            now,
            &[(a, Outcome::Delivered { remote_mta: None, tls: None }), (b, deferred(true))],
            None,
        )
        .await
        .expect("r");
    let owed = store.queue_notices(10).await.expect("notices");
    assert_eq!(owed.len(), 1);
    assert_eq!(owed[0].id, id);
    let warned = owed[0].recipients.iter().find(|r| r.id == b).expect("b");
    assert_eq!((warned.notify, warned.delay_warned), (Some(Notice::Delayed), true));
    store.queue_notices_sent(&[b]).await.expect("sent");
    assert!(store.queue_notices(10).await.expect("notices").is_empty());
    // Another deferral does not warn twice (the worker asks only once), and keeps the mark.
    store.queue_record(&node("a"), now, &[(b, deferred(false))], None).await.expect("r");
    let m = store.queue_message(id).await.expect("read").expect("there");
    assert_eq!((m.recipients[1].notify, m.recipients[1].delay_warned), (None, true));
    assert!(store.queue_finished(10).await.expect("finished").is_empty(), "b is still queued");

    store
        .queue_record(
            &node("a"),
            now,
            &[(
                b,
                Outcome::Failed {
                    status: "4.4.7".into(),
                    diagnostic: "expired".into(),
                    remote_mta: None,
                    tls: None,
                    notify: true,
                },
            )],
            None,
        )
        .await
        .expect("r");
    assert!(store.queue_finished(10).await.expect("finished").is_empty(), "a notice is still owed");
    store.queue_notices_sent(&[b]).await.expect("sent");
    let finished = store.queue_finished(10).await.expect("finished");
    assert_eq!(finished, [(id, BlobId::parse(&format!("{:032x}", now.0)).expect("blob id"))]);
    store.queue_delete(id).await.expect("delete");
    assert_eq!(store.queue_message(id).await.expect("read"), None);
    assert!(store.queue_message(other).await.expect("read").is_some(), "other messages stay");
}

async fn operators_list_retry_and_remove_within_their_scope(store: Store) {
    let acme = customer(&store, "acme").await;
    let globex = customer(&store, "globex").await;
    let now = UnixTime::now();
    store.enqueue(&message("C1", Some(acme), &["a@one.example"], now.0)).await.expect("q");
    store.enqueue(&message("C2", Some(globex), &["b@two.example"], now.0 + 1)).await.expect("q");
    let all = store.queue_list(Scope::Platform).await.expect("list");
    assert_eq!(all.iter().map(|m| m.queue_id.as_str()).collect::<Vec<_>>(), ["C1", "C2"]);
    assert_eq!(all[1].recipients[0].address, address("b@two.example"));
    let mine = store.queue_list(Scope::Customer(acme)).await.expect("list");
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].queue_id, "C1");

    // Push C1 into the future, then retry it.
    let groups =
        store.queue_claim_due(&node("a"), UnixTime(now.0 + 10), UnixTime(now.0 + 60), 100).await.expect("claim");
    let c1 = groups.iter().find(|g| g.domain == "one.example").expect("c1").recipients[0];
    store
        .queue_record(
            &node("a"),
            now,
            &[(
                c1,
                Outcome::Deferred {
                    next_attempt_at: UnixTime(now.0 + 9999),
                    status: "4.0.0".into(),
                    diagnostic: "later".into(),
                    remote_mta: None,
                    tls: None,
                    warn_delay: false,
                },
            )],
            None,
        )
        .await
        .expect("record");
    assert!(matches!(store.queue_retry(Scope::Customer(globex), "C1").await, Err(StoreError::NotFound(_))));
    assert_eq!(store.queue_retry(Scope::Customer(acme), "C1").await.expect("retry"), 1);
    let due = store.queue_claim_due(&node("a"), UnixTime::now(), UnixTime(now.0 + 60), 100).await.expect("claim");
    assert_eq!(due.len(), 1, "due again: {due:?}");

    assert!(matches!(store.queue_remove(Scope::Customer(acme), "C2").await, Err(StoreError::NotFound(_))));
    let blob = store.queue_remove(Scope::Platform, "C2").await.expect("remove");
    assert_eq!(blob, format!("{:032x}", now.0 + 1));
    let err = store.queue_remove(Scope::Platform, "C2").await.expect_err("gone");
    assert!(err.to_string().contains("postfach queue list"), "{err}");
    assert_eq!(store.queue_list(Scope::Platform).await.expect("list").len(), 1);
}

async fn spool_blobs_in_use_are_not_orphans(store: Store) {
    store.enqueue(&message("D1", None, &["a@one.example"], 7)).await.expect("q");
    let used = BlobId::parse(&format!("{:032x}", 7)).expect("blob id");
    let unused = BlobId::parse(&format!("{:032x}", 8)).expect("blob id");
    assert_eq!(store.queue_unreferenced_blobs(vec![used, unused.clone()]).await.expect("check"), [unused]);
}

/// Two nodes on one queue: a claim is a lease that only its node renews, records and
/// releases; another node takes the recipient only when the lease has run out.
async fn a_claim_is_a_lease_held_by_one_node(store: Store) {
    let (a, b) = (node("node-a"), node("node-b"));
    let now = UnixTime::now();
    let id = store.enqueue(&message("E1", None, &["x@one.example", "y@one.example"], now.0 - 2)).await.expect("q");
    store.enqueue(&message("E2", None, &["z@two.example"], now.0 - 1)).await.expect("q");
    let lease = UnixTime(now.0 + 60);
    let claimed = store.queue_claim_due(&a, now, lease, 1).await.expect("claim");
    assert_eq!(claimed.len(), 1, "one message, one domain: {claimed:?}");
    assert_eq!((claimed[0].message_id, claimed[0].recipients.len()), (id, 2), "all of the message's recipients");
    let held = claimed[0].recipients.clone();

    // Node b passes a's claims by and takes the other message; starting up, b releases
    // only its own claims.
    let others = store.queue_claim_due(&b, now, lease, 10).await.expect("claim");
    assert_eq!(others.iter().map(|g| g.domain.as_str()).collect::<Vec<_>>(), ["two.example"]);
    assert_eq!(store.queue_release_claims(&b).await.expect("release"), 1, "b's own claim only");
    let listed = store.queue_message(id).await.expect("read").expect("there");
    for r in &listed.recipients {
        let claim = r.claim.as_ref().expect("still claimed");
        assert_eq!((&claim.node, claim.until), (&a, lease));
        assert!(claim.holds_at(now) && !claim.holds_at(lease));
    }

    // a's heartbeat extends its lease; b cannot renew what it does not hold.
    let renewed = UnixTime(now.0 + 120);
    assert_eq!(store.queue_renew_claims(&a, &held, renewed).await.expect("renew"), 2);
    assert_eq!(store.queue_renew_claims(&b, &held, UnixTime(now.0 + 999)).await.expect("renew"), 0);
    let after_first_lease = UnixTime(lease.0 + 1);
    assert!(
        store
            .queue_claim_due(&b, after_first_lease, UnixTime(after_first_lease.0 + 60), 10)
            .await
            .expect("c")
            .iter()
            .all(|g| g.message_id != id),
        "a renewed lease is not taken"
    );

    // a stops renewing (it died): once the lease has run out, b takes the recipients, and
    // whatever a still tries to record or renew changes nothing.
    let expired = UnixTime(renewed.0 + 1);
    let taken = store.queue_claim_due(&b, expired, UnixTime(expired.0 + 60), 10).await.expect("claim");
    assert_eq!(taken.iter().find(|g| g.message_id == id).map(|g| g.recipients.clone()), Some(held.clone()));
    let outcomes: Vec<_> = held.iter().map(|r| (*r, Outcome::Delivered { remote_mta: None, tls: None })).collect();
    assert_eq!(store.queue_renew_claims(&a, &held, UnixTime(expired.0 + 120)).await.expect("renew"), 0);
    assert_eq!(store.queue_record(&a, expired, &outcomes, None).await.expect("record"), 0, "a's claim is gone");
    let listed = store.queue_message(id).await.expect("read").expect("there");
    assert!(
        listed
            .recipients
            .iter()
            .all(|r| r.state == RecipientState::Queued && r.claim.as_ref().is_some_and(|c| c.node == b))
    );
    assert_eq!(store.queue_record(&b, expired, &outcomes, None).await.expect("record"), 2);
    let listed = store.queue_message(id).await.expect("read").expect("there");
    assert!(listed.recipients.iter().all(|r| r.state == RecipientState::Delivered && r.claim.is_none()));
    assert_eq!(store.queue_record(&b, expired, &outcomes, None).await.expect("record"), 0, "recorded once");
}

/// Eight claimers at once on one queue of 60 messages: every recipient is claimed by
/// exactly one of them.
async fn concurrent_claimers_never_share_a_recipient(store: Store) {
    let now = UnixTime::now();
    let mut expected = Vec::new();
    for i in 0..60 {
        let id = store
            .enqueue(&message(&format!("F{i}"), None, &["p@one.example", "q@two.example"], now.0 - 100 + i))
            .await
            .expect("q");
        let m = store.queue_message(id).await.expect("read").expect("there");
        expected.extend(m.recipients.iter().map(|r| r.id));
    }
    let mut claimers = tokio::task::JoinSet::new();
    for n in 0..8 {
        let store = store.clone();
        claimers.spawn(async move {
            let me = node(&format!("node-{n}"));
            let mut mine = Vec::new();
            loop {
                let groups = store.queue_claim_due(&me, now, UnixTime(now.0 + 60), 3).await.expect("claim");
                if groups.is_empty() {
                    return mine;
                }
                mine.extend(groups.into_iter().flat_map(|g| g.recipients));
            }
        });
    }
    let mut claimed = Vec::new();
    while let Some(mine) = claimers.join_next().await {
        claimed.extend(mine.expect("claimer"));
    }
    claimed.sort();
    expected.sort();
    assert_eq!(claimed, expected, "each recipient claimed exactly once");
}

/// What `postfach backup` asks of a copy: the queued blobs in pages, and forgetting a
/// queued message whose file went (it was delivered after the snapshot).
async fn backups_page_through_queue_blobs_and_forget_delivered_ones(store: Store) {
    use postfach_store::backup::BlobSet;
    for (queue_id, at) in [("B3", 3), ("B1", 1), ("B2", 2)] {
        store.enqueue(&message(queue_id, None, &["a@one.example"], at)).await.expect("enqueue");
    }
    let first = store.referenced_blobs(BlobSet::Queue, None, 2).await.expect("page");
    let ids: Vec<&str> = first.iter().map(|(b, _)| b.as_str()).collect();
    assert_eq!(ids, [format!("{:032x}", 1), format!("{:032x}", 2)]);
    assert!(first.iter().all(|(_, size)| *size == 1234));
    let rest = store.referenced_blobs(BlobSet::Queue, Some(&first[1].0), 2).await.expect("page");
    assert_eq!(rest.len(), 1);
    assert!(store.referenced_blobs(BlobSet::Queue, Some(&rest[0].0), 2).await.expect("page").is_empty());
    assert!(store.referenced_blobs(BlobSet::Mailboxes, None, 2).await.expect("page").is_empty());

    let gone = &rest[0].0;
    assert!(store.blob_referenced(BlobSet::Queue, gone).await.expect("referenced"));
    assert_eq!(store.forget_vanished_blob(BlobSet::Queue, gone).await.expect("forget"), 1);
    assert!(!store.blob_referenced(BlobSet::Queue, gone).await.expect("referenced"));
    assert_eq!(store.queue_list(Scope::Platform).await.expect("list").len(), 2);
}
