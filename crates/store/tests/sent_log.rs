//! The sent-mail list (`sent_log.rs`), on SQLite and PostgreSQL alike: what the queue
//! records for a mailbox's mail once each recipient's delivery ended, within the caller's
//! scope, pruned by age, gone with its mailbox.

mod backends;

use postfach_store::queue::{AttemptTls, NewQueuedMessage, Outcome};
use postfach_store::{Scope, Store};
use postfach_types::{BlobId, EmailAddress, NodeName, UnixTime};

on_both_backends!(ended_deliveries_are_listed_for_the_sending_mailbox);

fn address(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("address")
}

async fn ended_deliveries_are_listed_for_the_sending_mailbox(store: Store) {
    let (acme, max) = backends::mailbox(&store, "acme", "max").await;
    let (_, eva) = backends::mailbox(&store, "globex", "eva").await;
    let now = UnixTime::now();
    let message = |queue_id: &str, mailbox| NewQueuedMessage {
        queue_id: queue_id.into(),
        customer_id: Some(acme),
        mailbox_id: mailbox,
        return_path: Some(address("max@acme.example")),
        blob: BlobId::parse(&format!("{:032x}", now.0)).expect("blob id"),
        size: 100,
        created_at: now,
        expires_at: UnixTime(now.0 + 432_000),
        recipients: ["a@one.example", "b@two.example", "c@three.example"].iter().map(|r| address(r)).collect(),
        tls_demand: None,
    };
    let id = store.enqueue(&message("S1", Some(max))).await.expect("enqueue");
    // The platform's own mail (a notice) has no mailbox and is not listed.
    let notice = store.enqueue(&message("S2", None)).await.expect("enqueue");
    let node = NodeName::parse("a").expect("node");
    let tls =
        |detail: Option<&str>| Some(AttemptTls { policy: "opportunistic".into(), detail: detail.map(Into::into) });
    for queued in [id, notice] {
        let m = store.queue_message(queued).await.expect("read").expect("there");
        let [a, b, c] = [m.recipients[0].id, m.recipients[1].id, m.recipients[2].id];
        let outcomes = [
            (a, Outcome::Delivered { remote_mta: Some("mx.one.example[192.0.2.1]".into()), tls: tls(Some("TLSv1.3")) }),
            (b, Outcome::Delivered { remote_mta: Some("mx.two.example[192.0.2.2]".into()), tls: tls(None) }),
            (
                c,
                Outcome::Deferred {
                    next_attempt_at: UnixTime(now.0 + 600),
                    status: "4.4.1".into(),
                    diagnostic: "no answer".into(),
                    remote_mta: None,
                    tls: None,
                    warn_delay: false,
                },
            ),
        ];
        store.queue_record(&node, now, &outcomes, None).await.expect("record");
    }
    let listed = store.sent_mail(Scope::Customer(acme), max).await.expect("list");
    let seen: Vec<(&str, bool, bool)> =
        listed.iter().map(|e| (e.recipient.as_str(), e.delivered, e.unencrypted())).collect();
    assert_eq!(seen, [("b@two.example", true, true), ("a@one.example", true, false)], "newest first; deferred not yet");
    assert_eq!(listed[1].tls.as_deref(), Some("TLSv1.3"));

    // Given up later: listed as not delivered, with the reason.
    let m = store.queue_message(id).await.expect("read").expect("there");
    let failed = Outcome::Failed {
        status: "5.1.1".into(),
        diagnostic: "550 5.1.1 no such user".into(),
        remote_mta: Some("mx.three.example".into()),
        tls: tls(Some("TLSv1.2")),
        notify: true,
    };
    store.queue_record(&node, UnixTime(now.0 + 700), &[(m.recipients[2].id, failed)], None).await.expect("record");
    let listed = store.sent_mail(Scope::Platform, max).await.expect("list");
    assert_eq!((listed[0].recipient.as_str(), listed[0].delivered), ("c@three.example", false));
    assert_eq!(listed[0].diagnostic.as_deref(), Some("550 5.1.1 no such user"));

    // Another customer sees nothing of it, and another mailbox has its own list.
    let globex = store.mailbox_by_id(Scope::Platform, eva).await.expect("eva").customer_id;
    assert!(store.sent_mail(Scope::Customer(globex), max).await.expect("list").is_empty());
    assert!(store.sent_mail(Scope::Platform, eva).await.expect("list").is_empty());

    // Pruned by age; gone with the mailbox.
    assert_eq!(store.prune_sent_log(UnixTime(now.0 + 1)).await.expect("prune"), 2);
    assert_eq!(store.sent_mail(Scope::Platform, max).await.expect("list").len(), 1);
    // Mail still in the queue when its mailbox goes is not listed when it ends (a later
    // mailbox may get the same id).
    let late = store.enqueue(&message("S3", Some(max))).await.expect("enqueue");
    let late = store.queue_message(late).await.expect("read").expect("there").recipients[0].id;
    let max_mailbox = store.mailbox_by_id(Scope::Platform, max).await.expect("max");
    store.remove_mailbox(Scope::Platform, &max_mailbox.address).await.expect("remove");
    let delivered = Outcome::Delivered { remote_mta: Some("mx.one.example".into()), tls: tls(Some("TLSv1.3")) };
    store.queue_record(&node, UnixTime(now.0 + 800), &[(late, delivered)], None).await.expect("record");
    assert_eq!(store.prune_sent_log(UnixTime(now.0 + 10_000)).await.expect("prune"), 0, "removed with the mailbox");
}
