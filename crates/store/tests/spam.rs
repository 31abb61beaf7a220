//! A customer's spam thresholds in the store, on SQLite and PostgreSQL: the default until
//! set, `none` and scores kept exactly, and the recipient's thresholds read with the
//! address at RCPT (`resolve`).

mod backends;

use backends::mailbox;
use postfach_store::Store;
use postfach_store::customers::SpamThresholds;
use postfach_store::resolve::Resolution;
use postfach_types::{EmailAddress, SpamScore, SpamThreshold};

on_both_backends!(thresholds_are_kept_and_resolved);

async fn thresholds_are_kept_and_resolved(store: Store) {
    let (acme, _) = mailbox(&store, "acme", "max").await;
    let (other, _) = mailbox(&store, "other", "anna").await;
    assert_eq!(store.customer_by_id(acme).await.expect("customer").spam, SpamThresholds::default());

    let set =
        SpamThresholds { reject: SpamThreshold::Never, junk: SpamThreshold::At(SpamScore::from_hundredths(-125)) };
    store.set_customer_spam(acme, set).await.expect("set");
    assert_eq!(store.customer_by_id(acme).await.expect("customer").spam, set);
    assert_eq!(store.customer_by_id(other).await.expect("customer").spam, SpamThresholds::default());

    let recipient = |a: &str| EmailAddress::parse(a).expect("address");
    let Resolution::Mailbox(max) = store.resolve(&recipient("max@acme.example")).await.expect("resolve") else {
        panic!("max is hosted")
    };
    assert_eq!(max.spam, set);
    let Resolution::Mailbox(anna) = store.resolve(&recipient("anna@other.example")).await.expect("resolve") else {
        panic!("anna is hosted")
    };
    assert_eq!(anna.spam, SpamThresholds::default());

    store.set_customer_spam(acme, SpamThresholds::default()).await.expect("back to the default");
    assert_eq!(store.customer_by_id(acme).await.expect("customer").spam, SpamThresholds::default());
}
