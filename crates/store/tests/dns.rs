//! DKIM keys and cached DNS checks, run against SQLite and PostgreSQL alike.

mod backends;

use postfach_store::dkim::{DkimKeyState, NewDkimKey};
use postfach_store::dns_checks::{Check, DomainReport, Level, Text, Verdict};
use postfach_store::stats::DnsLevel;
use postfach_store::{Scope, Store, StoreError};
use postfach_types::{BlobId, CustomerId, CustomerName, DomainName, EmailAddress, Role, Secret, UnixTime};

on_both_backends!(
    dkim_keys_rotate_through_pending_active_retired,
    dkim_keys_are_scoped_and_go_with_their_domain,
    dns_reports_are_cached_and_changes_recorded,
    monitoring_stats_count_the_queue_and_the_dns_states,
);

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA";

fn dom(s: &str) -> DomainName {
    DomainName::parse(s).expect("valid domain")
}

async fn customer(store: &Store, name: &str, domain: &str) -> CustomerId {
    let c =
        store.add_customer(&CustomerName::parse(name).expect("name"), HASH, Role::Customer).await.expect("customer");
    store.add_domain(c.id, &dom(domain), false).await.expect("domain");
    c.id
}

fn key(selector: &str) -> NewDkimKey {
    NewDkimKey {
        selector: selector.into(),
        private_key_pem: Secret::new(format!("-----BEGIN PRIVATE KEY-----\n{selector}\n-----END PRIVATE KEY-----\n")),
        public_key: format!("PUB{selector}"),
    }
}

async fn dkim_keys_rotate_through_pending_active_retired(store: Store) {
    customer(&store, "acme", "acme.example").await;
    let d = dom("acme.example");
    assert!(store.active_dkim_key(&d).await.expect("none").is_none());
    let first = store.add_dkim_key(Scope::Platform, &d, &key("pf2026a"), DkimKeyState::Active).await.expect("first");
    assert_eq!(first.state, DkimKeyState::Active);
    assert!(first.activated_at.is_some());
    let debug = format!("{first:?}");
    assert!(!debug.contains("BEGIN PRIVATE KEY"), "the private key never shows in Debug: {debug}");

    let pending = store.add_dkim_key(Scope::Platform, &d, &key("pf2026b"), DkimKeyState::Pending).await.expect("next");
    assert_eq!(pending.state, DkimKeyState::Pending);
    // Signing still uses the first key, and a second pending key is refused.
    assert_eq!(store.active_dkim_key(&d).await.expect("get").expect("active").selector, "pf2026a");
    let again = store.add_dkim_key(Scope::Platform, &d, &key("pf2026c"), DkimKeyState::Pending).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let dup = store.add_dkim_key(Scope::Platform, &d, &key("pf2026a"), DkimKeyState::Active).await;
    assert!(matches!(dup, Err(StoreError::Conflict(ref t)) if t.contains("pf2026a")), "{dup:?}");

    store.activate_dkim_key(Scope::Platform, &d, "pf2026b").await.expect("activate");
    let active = store.active_dkim_key(&d).await.expect("get").expect("active");
    assert_eq!(active.selector, "pf2026b");
    assert_eq!(active.private_key_pem.expose(), key("pf2026b").private_key_pem.expose());
    let states: Vec<_> = store
        .dkim_keys(Scope::Platform, &d)
        .await
        .expect("list")
        .into_iter()
        .map(|k| (k.selector, k.state, k.retired_at.is_some()))
        .collect();
    assert!(states.contains(&("pf2026a".into(), DkimKeyState::Retired, true)), "{states:?}");
    assert!(states.contains(&("pf2026b".into(), DkimKeyState::Active, false)), "{states:?}");
    let retired = store.activate_dkim_key(Scope::Platform, &d, "pf2026a").await;
    assert!(matches!(retired, Err(StoreError::Conflict(_))), "{retired:?}");
}

async fn dkim_keys_are_scoped_and_go_with_their_domain(store: Store) {
    let acme = customer(&store, "acme", "acme.example").await;
    let other = customer(&store, "other", "other.example").await;
    let d = dom("acme.example");
    store.add_dkim_key(Scope::Customer(acme), &d, &key("pf2026a"), DkimKeyState::Active).await.expect("own domain");
    let foreign = store.add_dkim_key(Scope::Customer(other), &d, &key("pf2026b"), DkimKeyState::Active).await;
    assert!(matches!(foreign, Err(StoreError::NotFound(_))), "{foreign:?}");
    assert!(matches!(store.dkim_keys(Scope::Customer(other), &d).await, Err(StoreError::NotFound(_))));
    assert_eq!(store.dkim_keys(Scope::Customer(acme), &d).await.expect("own").len(), 1);
    store.remove_domain(Scope::Platform, &d, false).await.expect("a domain with keys can be removed");
    assert!(store.active_dkim_key(&d).await.expect("get").is_none());
}

fn verdict(check: Check, code: &str, level: Level) -> Verdict {
    Verdict {
        check,
        code: code.into(),
        level,
        message: Text { de: format!("{code} (de)"), en: format!("{code} (en)") },
    }
}

async fn dns_reports_are_cached_and_changes_recorded(store: Store) {
    let acme = customer(&store, "acme", "acme.example").await;
    let other = customer(&store, "other", "other.example").await;
    let d = dom("acme.example");
    assert_eq!(store.dns_report(Scope::Platform, &d).await.expect("none"), None);

    let first = DomainReport {
        domain: d.clone(),
        checked_at: UnixTime(1_000),
        verdicts: vec![
            verdict(Check::Mx, "mx.ok", Level::Ok),
            verdict(Check::Spf, "spf.pass", Level::Ok),
            verdict(Check::Spf, "spf.softfail_all", Level::Warning),
            verdict(Check::Dmarc, "dmarc.missing", Level::Error),
        ],
    };
    let changes = store.save_dns_report(Scope::Customer(acme), &first).await.expect("save");
    assert!(changes.is_empty(), "the first report has nothing to compare with");
    assert_eq!(store.dns_report(Scope::Customer(acme), &d).await.expect("get"), Some(first.clone()));
    assert_eq!(first.level(), Level::Error);
    assert_eq!(first.level_of(Check::Spf), Some(Level::Warning));

    let second = DomainReport {
        domain: d.clone(),
        checked_at: UnixTime(2_000),
        verdicts: vec![
            verdict(Check::Mx, "mx.foreign", Level::Error),
            verdict(Check::Spf, "spf.pass", Level::Ok),
            verdict(Check::Spf, "spf.softfail_all", Level::Warning),
            verdict(Check::Dmarc, "dmarc.ok", Level::Ok),
        ],
    };
    let changes = store.save_dns_report(Scope::Platform, &second).await.expect("save");
    let summary: Vec<_> = changes.iter().map(|c| (c.check, c.from, c.to)).collect();
    assert_eq!(summary, [(Check::Mx, Level::Ok, Level::Error), (Check::Dmarc, Level::Error, Level::Ok)]);
    assert_eq!(changes[0].message.en, "mx.foreign (en)");
    assert_eq!(store.dns_report(Scope::Platform, &d).await.expect("get"), Some(second));

    let recorded = store.dns_check_changes(Scope::Customer(acme), &d, 10).await.expect("changes");
    // Newest first; both changes of one run share its time, the later-recorded comes first.
    assert_eq!(recorded, changes.into_iter().rev().collect::<Vec<_>>());
    assert_eq!(recorded[0].at, UnixTime(2_000));

    // Another customer sees none of it.
    assert!(matches!(store.dns_report(Scope::Customer(other), &d).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.dns_check_changes(Scope::Customer(other), &d, 10).await, Err(StoreError::NotFound(_))));
    // Removing the domain takes its checks with it.
    store.remove_domain(Scope::Platform, &d, false).await.expect("remove");
    store.add_domain(acme, &d, false).await.expect("again");
    assert_eq!(store.dns_report(Scope::Platform, &d).await.expect("fresh"), None);
}

async fn monitoring_stats_count_the_queue_and_the_dns_states(store: Store) {
    let empty = store.stats(10).await.expect("stats");
    assert_eq!((empty.queue_messages, empty.queue_oldest, empty.queue_bytes, empty.mailbox_bytes), (0, None, 0, 0));
    assert!(empty.dns_levels.is_empty() && empty.dns_problems.is_empty());

    let acme = customer(&store, "acme", "acme.example").await;
    customer(&store, "other", "other.example").await;
    customer(&store, "third", "third.example").await;
    for (domain, spf) in
        [("acme.example", Level::Error), ("other.example", Level::Warning), ("third.example", Level::Ok)]
    {
        let report = DomainReport {
            domain: dom(domain),
            checked_at: UnixTime(1_000),
            verdicts: vec![
                verdict(Check::Mx, "mx.ok", Level::Ok),
                verdict(Check::Spf, "spf.pass", Level::Ok),
                verdict(Check::Spf, "spf.other", spf),
            ],
        };
        store.save_dns_report(Scope::Platform, &report).await.expect("save");
    }
    for (n, at) in [(1, 5_000), (2, 4_000)] {
        let message = postfach_store::queue::NewQueuedMessage {
            queue_id: format!("Q{n}"),
            customer_id: Some(acme),
            mailbox_id: None,
            return_path: None,
            blob: BlobId::parse(&format!("{n:032x}")).expect("blob id"),
            size: 1000,
            created_at: UnixTime(at),
            expires_at: UnixTime(at + 432_000),
            recipients: vec![EmailAddress::parse("a@far.example").expect("address")],
            tls_demand: None,
        };
        store.enqueue(&message).await.expect("enqueue");
    }

    let stats = store.stats(1).await.expect("stats");
    assert_eq!((stats.queue_messages, stats.queue_oldest, stats.queue_bytes), (2, Some(UnixTime(4_000)), 2000));
    let levels: Vec<(&str, DnsLevel, u64)> = stats.dns_levels.iter().map(|(c, l, n)| (c.as_str(), *l, *n)).collect();
    assert_eq!(
        levels,
        [("mx", DnsLevel::Ok, 3), ("spf", DnsLevel::Ok, 1), ("spf", DnsLevel::Warning, 1), ("spf", DnsLevel::Error, 1)]
    );
    // Errors first, and no more than asked for.
    assert_eq!(stats.dns_problems, [("acme.example".to_string(), "spf".to_string(), DnsLevel::Error)]);
    assert_eq!(store.stats(10).await.expect("stats").dns_problems.len(), 2);
}
