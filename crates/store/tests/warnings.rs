//! Warning mails' state in the store, on SQLite and PostgreSQL: one mail per kind and
//! target a day, the events in between counted for the next mail, kinds and targets apart;
//! switches per mailbox within its customer's scope; the customer's contact address; the
//! bounded hand-over that drops (and counts) what does not fit.

mod backends;

use postfach_store::warnings::{
    Untold, WARNING_INTERVAL_SECS, WarningEvent, WarningFacts, WarningKind, WarningTarget, Warnings,
};
use postfach_store::{Scope, Store, StoreError};
use postfach_types::{EmailAddress, MailboxId, UnixTime};

on_both_backends!(one_mail_a_day_and_the_rest_counted, switches_and_contact);

use backends::mailbox;

async fn one_mail_a_day_and_the_rest_counted(store: Store) {
    let (_, max) = mailbox(&store, "acme", "max").await;
    let (_, erika) = mailbox(&store, "acme", "erika").await;
    let t0 = UnixTime(1_800_000_000);
    let at = |secs: i64| UnixTime(t0.0 + secs);
    let target = WarningTarget::Mailbox(max);
    let due = |kind, target, now| {
        let store = store.clone();
        async move { store.warning_due(kind, target, now).await.expect("due") }
    };

    assert_eq!(due(WarningKind::Unencrypted, target, t0).await, Some(Untold { count: 0, since: None }));
    assert_eq!(due(WarningKind::Unencrypted, target, at(10)).await, None);
    assert_eq!(due(WarningKind::Unencrypted, target, at(20)).await, None);
    // Another kind and another mailbox have their own day.
    assert!(due(WarningKind::Locked, target, at(30)).await.is_some());
    assert!(due(WarningKind::Unencrypted, WarningTarget::Mailbox(erika), at(30)).await.is_some());
    // Still within the day: counted.
    assert_eq!(due(WarningKind::Unencrypted, target, at(WARNING_INTERVAL_SECS - 1)).await, None);
    // A day after the mail: the next one tells the three events in between.
    assert_eq!(
        due(WarningKind::Unencrypted, target, at(WARNING_INTERVAL_SECS)).await,
        Some(Untold { count: 3, since: Some(at(10)) })
    );
    assert_eq!(due(WarningKind::Unencrypted, target, at(WARNING_INTERVAL_SECS + 5)).await, None);
    assert_eq!(
        due(WarningKind::Unencrypted, target, at(3 * WARNING_INTERVAL_SECS)).await,
        Some(Untold { count: 1, since: Some(at(WARNING_INTERVAL_SECS + 5)) })
    );
    // A removed mailbox takes its state with it.
    store.remove_mailbox(Scope::Platform, &EmailAddress::parse("max@acme.example").expect("a")).await.expect("rm");
    assert!(store.mailbox_warning_facts(max).await.expect("facts").is_none());
    let (_, again) = mailbox(&store, "acme", "max").await;
    assert!(due(WarningKind::Unencrypted, WarningTarget::Mailbox(again), at(40)).await.is_some());
}

async fn switches_and_contact(store: Store) {
    let (acme, max) = mailbox(&store, "acme", "max").await;
    let (_, other) = mailbox(&store, "other", "anna").await;
    let all_on = store.mailbox_warnings_off(Scope::Platform, max).await.expect("off");
    assert!(all_on.is_empty(), "every kind is on by default");
    store.set_mailbox_warning(Scope::Customer(acme), max, WarningKind::Locked, false).await.expect("switch");
    store.set_mailbox_warning(Scope::Customer(acme), max, WarningKind::Exposed, false).await.expect("switch");
    store.set_mailbox_warning(Scope::Customer(acme), max, WarningKind::Exposed, true).await.expect("switch");
    assert_eq!(store.mailbox_warnings_off(Scope::Customer(acme), max).await.expect("off"), vec![WarningKind::Locked]);
    // Another customer's mailbox does not exist for acme.
    let refused = store.set_mailbox_warning(Scope::Customer(acme), other, WarningKind::Locked, false).await;
    assert!(matches!(refused, Err(StoreError::NotFound(_))), "{refused:?}");
    assert!(matches!(store.mailbox_warnings_off(Scope::Customer(acme), other).await, Err(StoreError::NotFound(_))));

    let contact = EmailAddress::parse("office@elsewhere.test").expect("address");
    store.set_customer_contact(acme, Some(&contact)).await.expect("contact");
    let facts = store.mailbox_warning_facts(max).await.expect("facts").expect("mailbox");
    assert_eq!(facts.contact, Some(contact.clone()));
    assert_eq!(facts.off, vec![WarningKind::Locked]);
    assert_eq!(store.customer_by_id(acme).await.expect("customer").contact_address, Some(contact));
    store.set_customer_contact(acme, None).await.expect("none");
    assert_eq!(store.customer_contact(acme).await.expect("contact"), None);
}

#[test]
fn the_hand_over_drops_and_counts_what_does_not_fit() {
    let warnings = Warnings::default();
    let event =
        WarningEvent::new(WarningKind::Locked, WarningTarget::Mailbox(MailboxId::new(1)), WarningFacts::default());
    warnings.tell(event.clone());
    assert_eq!(warnings.dropped(), 0, "nobody listens: nothing to count");
    let mut receiver = warnings.subscribe(2).expect("first subscriber");
    assert!(warnings.subscribe(2).is_none(), "one task only");
    for _ in 0..5 {
        warnings.tell(event.clone());
    }
    assert_eq!(warnings.dropped(), 3);
    assert_eq!(receiver.try_recv().ok(), Some(event.clone()));
    assert_eq!(receiver.try_recv().ok(), Some(event));
    assert!(receiver.try_recv().is_err());
}
