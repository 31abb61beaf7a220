//! Sieve scripts and vacation memory on SQLite and PostgreSQL: names unique per mailbox,
//! the count limit, at most one active script mirrored for delivery, the active script
//! not removable, other customers see nothing, removal with the mailbox, one vacation
//! reply per sender and handle within the days.

mod backends;

use postfach_store::sieve::Put;
use postfach_store::{Conflict, Scope, Store, StoreError};

on_both_backends!(scripts_by_name_with_one_active, other_customers_see_nothing, vacation_once_per_days);

use backends::mailbox;

const KEEP: &str = "keep;\n";

async fn scripts_by_name_with_one_active(store: Store) {
    let (customer, max) = mailbox(&store, "acme", "max").await;
    let scope = Scope::Customer(customer);
    assert_eq!(store.put_sieve_script(scope, max, "b", KEEP, 3).await.expect("put"), Put::Created);
    assert_eq!(store.put_sieve_script(scope, max, "a", KEEP, 3).await.expect("put"), Put::Created);
    assert_eq!(store.put_sieve_script(scope, max, "a", "discard;\n", 3).await.expect("put"), Put::Replaced);
    store.put_sieve_script(scope, max, "c", KEEP, 3).await.expect("third");
    let err = store.put_sieve_script(scope, max, "d", KEEP, 3).await.expect_err("fourth");
    assert!(matches!(err, StoreError::Refused(Conflict::TooManySieveScripts { limit: 3 })), "{err:?}");
    // Replacing at the limit still works.
    store.put_sieve_script(scope, max, "c", "stop;\n", 3).await.expect("replace at limit");

    let names: Vec<_> = store.sieve_scripts(scope, max).await.expect("list").into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(store.sieve_script(scope, max, "a").await.expect("a").text, "discard;\n");
    assert!(store.active_sieve_script(scope, max).await.expect("active").is_none());
    assert_eq!(active_at(&store, &max).await, None);

    store.activate_sieve_script(scope, max, Some("a")).await.expect("activate a");
    store.activate_sieve_script(scope, max, Some("b")).await.expect("activate b");
    let listed = store.sieve_scripts(scope, max).await.expect("list");
    let active: Vec<_> = listed.iter().filter(|s| s.active).map(|s| s.name.as_str()).collect();
    assert_eq!(active, ["b"]);
    let b = store.active_sieve_script(scope, max).await.expect("active").expect("b active");
    assert_eq!(b.name, "b");
    assert_eq!(active_at(&store, &max).await, Some(b.updated_at.0));

    let err = store.delete_sieve_script(scope, max, "b").await.expect_err("active");
    assert!(matches!(err, StoreError::Refused(Conflict::SieveScriptActive { .. })), "{err:?}");
    let err = store.rename_sieve_script(scope, max, "b", "a").await.expect_err("taken");
    assert!(matches!(err, StoreError::Refused(Conflict::SieveScriptNameTaken { .. })), "{err:?}");
    store.rename_sieve_script(scope, max, "b", "vacation").await.expect("rename");
    assert_eq!(store.active_sieve_script(scope, max).await.expect("active").expect("still").name, "vacation");
    assert!(matches!(store.sieve_script(scope, max, "b").await, Err(StoreError::NotFound(_))));

    store.activate_sieve_script(scope, max, None).await.expect("off");
    assert!(store.active_sieve_script(scope, max).await.expect("active").is_none());
    assert_eq!(active_at(&store, &max).await, None);
    store.delete_sieve_script(scope, max, "vacation").await.expect("delete");
    assert!(matches!(store.delete_sieve_script(scope, max, "vacation").await, Err(StoreError::NotFound(_))));

    // Scripts go with their mailbox.
    store.activate_sieve_script(scope, max, Some("a")).await.expect("activate");
    let address = postfach_types::EmailAddress::parse("max@acme.example").expect("address");
    store.remove_mailbox(Scope::Platform, &address).await.expect("remove mailbox");
    let (_, again) = mailbox(&store, "acme", "max").await;
    assert!(store.sieve_scripts(scope, again).await.expect("list").is_empty());
}

/// `mailboxes.sieve_active_at` as delivery reads it.
async fn active_at(store: &Store, mailbox: &postfach_types::MailboxId) -> Option<i64> {
    store.sieve_active_at(*mailbox).await.expect("active at")
}

async fn other_customers_see_nothing(store: Store) {
    let (acme, max) = mailbox(&store, "acme", "max").await;
    let (other, _) = mailbox(&store, "other", "olga").await;
    store.put_sieve_script(Scope::Customer(acme), max, "mine", KEEP, 8).await.expect("put");
    store.activate_sieve_script(Scope::Platform, max, Some("mine")).await.expect("activate");
    let theirs = Scope::Customer(other);
    assert!(matches!(store.put_sieve_script(theirs, max, "x", KEEP, 8).await, Err(StoreError::NotFound(_))));
    assert!(store.sieve_scripts(theirs, max).await.expect("list").is_empty());
    assert!(matches!(store.sieve_script(theirs, max, "mine").await, Err(StoreError::NotFound(_))));
    assert!(store.active_sieve_script(theirs, max).await.expect("active").is_none());
    assert!(matches!(store.rename_sieve_script(theirs, max, "mine", "x").await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.delete_sieve_script(theirs, max, "mine").await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.activate_sieve_script(theirs, max, None).await, Err(StoreError::NotFound(_))));
    assert_eq!(store.sieve_script(Scope::Customer(acme), max, "mine").await.expect("kept").text, KEEP);
    assert!(store.active_sieve_script(Scope::Customer(acme), max).await.expect("active").is_some());
}

async fn vacation_once_per_days(store: Store) {
    let (_, max) = mailbox(&store, "acme", "max").await;
    let (_, erika) = mailbox(&store, "acme", "erika").await;
    assert!(store.vacation_reply_due(max, "a@example.org", "", 7).await.expect("first"));
    assert!(!store.vacation_reply_due(max, "a@example.org", "", 7).await.expect("again"));
    // Another sender, handle or mailbox is remembered apart.
    assert!(store.vacation_reply_due(max, "b@example.org", "", 7).await.expect("other sender"));
    assert!(store.vacation_reply_due(max, "a@example.org", "trip", 7).await.expect("other handle"));
    assert!(store.vacation_reply_due(erika, "a@example.org", "", 7).await.expect("other mailbox"));
    // Zero days: the last reply is old enough already.
    assert!(store.vacation_reply_due(max, "a@example.org", "", 0).await.expect("zero days"));
    assert_eq!(store.forget_vacation_replies(1).await.expect("forget"), 0);
    assert!(!store.vacation_reply_due(max, "b@example.org", "", 7).await.expect("still remembered"));
}
