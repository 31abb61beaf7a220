//! The directory suite, run against SQLite and PostgreSQL alike.

mod backends;

use std::net::IpAddr;

use postfach_store::logins::{LoginFilter, LoginRecord};
use postfach_store::mailboxes::{MailboxSettings, SettingsChange};
use postfach_store::resolve::Resolution;
use postfach_store::{Conflict, Scope, Store, StoreError};
use postfach_types::{
    AccessMode, AliasId, CustomerId, CustomerName, DomainId, DomainName, EmailAddress, LoginResult, MailboxId,
    Mechanism, Role, Service, TlsInfo, UnixTime,
};

on_both_backends!(
    customers_are_unique_and_removable_only_without_domains,
    domains_are_unique_across_domains_and_alias_domains,
    domain_aliases_follow_their_rules,
    mailboxes_and_aliases_share_one_address_space,
    addresses_cannot_live_in_alias_domains_or_foreign_domains,
    mailbox_settings_and_password_change,
    resolution_through_every_path,
    unverified_domains_are_not_hosted,
    allowed_senders_cover_aliases_and_alias_domains,
    removing_a_domain_needs_cascade,
    customers_cannot_reach_each_other,
    login_log_records_filters_and_prunes,
    concurrent_claims_of_one_address_let_exactly_one_win,
    lookups_by_id_are_scoped,
    app_passwords_are_scoped_named_once_and_revoked_with_the_counter,
);

fn addr(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("valid address")
}

fn dom(s: &str) -> DomainName {
    DomainName::parse(s).expect("valid domain")
}

fn name(s: &str) -> CustomerName {
    CustomerName::parse(s).expect("valid name")
}

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA";

/// Customer `acme` with verified `acme.example` and mailbox `max@acme.example`.
async fn acme(store: &Store) -> CustomerId {
    let c = store.add_customer(&name("acme"), HASH, Role::Customer).await.expect("customer");
    store.add_domain(c.id, &dom("acme.example"), true).await.expect("domain");
    store.add_mailbox(Scope::Platform, &addr("max@acme.example"), HASH, MailboxSettings::default()).await.expect("mb");
    c.id
}

fn conflict(result: Result<impl std::fmt::Debug, StoreError>, needle: &str) {
    match result {
        Err(StoreError::Refused(rule)) => {
            let text = rule.to_string();
            assert!(text.contains(needle), "{text:?} should mention {needle:?}")
        }
        other => panic!("expected a conflict mentioning {needle:?}, got {other:?}"),
    }
}

fn not_found(result: Result<impl std::fmt::Debug, StoreError>) {
    assert!(matches!(result, Err(StoreError::NotFound(_))), "expected NotFound, got {result:?}");
}

async fn customers_are_unique_and_removable_only_without_domains(store: Store) {
    let c = store.add_customer(&name("Acme"), HASH, Role::Customer).await.expect("add");
    assert_eq!(c.name.as_str(), "acme");
    conflict(store.add_customer(&name("ACME"), HASH, Role::Admin).await, "already exists");
    store.add_customer(&name("root"), HASH, Role::Admin).await.expect("admin");
    let all = store.customers().await.expect("list");
    assert_eq!(
        all.iter().map(|c| (c.name.as_str(), c.role)).collect::<Vec<_>>(),
        [("acme", Role::Customer), ("root", Role::Admin)]
    );
    store.add_domain(c.id, &dom("acme.example"), false).await.expect("domain");
    conflict(store.remove_customer(&name("acme")).await, "still owns 1 domain");
    store.set_customer_disabled(&name("acme"), true).await.expect("disable");
    assert!(store.customer(&name("acme")).await.expect("get").disabled);
    store.remove_domain(Scope::Platform, &dom("acme.example"), false).await.expect("remove domain");
    store.remove_customer(&name("acme")).await.expect("remove");
    not_found(store.customer(&name("acme")).await);
    not_found(store.remove_customer(&name("acme")).await);
}

async fn domains_are_unique_across_domains_and_alias_domains(store: Store) {
    let id = acme(&store).await;
    conflict(store.add_domain(id, &dom("ACME.example"), false).await, "already set up");
    let idn = store.add_domain(id, &dom("bücher.example"), false).await.expect("idn");
    assert_eq!(idn.name.as_str(), "xn--bcher-kva.example");
    assert!(!idn.verified);
    assert_eq!(idn.verify_token.len(), 32);
    conflict(store.add_domain(id, &dom("xn--bcher-kva.example"), false).await, "already set up");
    store.add_domain_alias(Scope::Platform, &dom("acme.example.org"), &dom("acme.example"), true).await.expect("alias");
    conflict(store.add_domain(id, &dom("acme.example.org"), false).await, "already set up");
    conflict(store.add_domain(id, &dom("localhost"), false).await, "not a full domain name");
    let names: Vec<_> =
        store.domains(Scope::Platform).await.expect("list").into_iter().map(|d| d.name.to_string()).collect();
    assert_eq!(names, ["acme.example", "acme.example.org", "xn--bcher-kva.example"]);
}

async fn domain_aliases_follow_their_rules(store: Store) {
    acme(&store).await;
    let alias = store
        .add_domain_alias(Scope::Platform, &dom("acme.example.org"), &dom("acme.example"), false)
        .await
        .expect("alias domain");
    assert_eq!(alias.alias_of, Some(dom("acme.example")));
    assert_eq!(alias.customer.as_str(), "acme");
    conflict(
        store.add_domain_alias(Scope::Platform, &dom("acme.example.net"), &dom("acme.example.org"), true).await,
        "itself an alias domain of acme.example",
    );
    conflict(
        store.add_domain_alias(Scope::Platform, &dom("acme.example"), &dom("acme.example"), true).await,
        "already",
    );
    not_found(store.add_domain_alias(Scope::Platform, &dom("x.example"), &dom("missing.example"), true).await);
}

async fn mailboxes_and_aliases_share_one_address_space(store: Store) {
    acme(&store).await;
    conflict(
        store.add_mailbox(Scope::Platform, &addr("MAX@Acme.Example"), HASH, MailboxSettings::default()).await,
        "already in use",
    );
    conflict(
        store.add_alias(Scope::Platform, &addr("max@acme.example"), &addr("max@acme.example")).await,
        "already in use",
    );
    store.add_alias(Scope::Platform, &addr("info@acme.example"), &addr("max@acme.example")).await.expect("alias");
    conflict(
        store.add_mailbox(Scope::Platform, &addr("Info@acme.example"), HASH, MailboxSettings::default()).await,
        "already in use",
    );
    conflict(
        store.add_alias(Scope::Platform, &addr("info@acme.example"), &addr("max@acme.example")).await,
        "already in use",
    );
    not_found(store.add_alias(Scope::Platform, &addr("sales@acme.example"), &addr("nobody@acme.example")).await);
    conflict(
        store.add_alias(Scope::Platform, &addr("a%b@acme.example"), &addr("max@acme.example")).await,
        "cannot be created",
    );
    let aliases = store.aliases(Scope::Platform, None).await.expect("list");
    assert_eq!(aliases.len(), 1);
    assert_eq!(
        (aliases[0].address.to_string(), aliases[0].mailbox.to_string()),
        ("info@acme.example".into(), "max@acme.example".into())
    );
    let removed = store.remove_mailbox(Scope::Platform, &addr("max@acme.example")).await.expect("remove");
    assert_eq!(removed, [addr("info@acme.example")]);
    assert!(store.aliases(Scope::Platform, None).await.expect("list").is_empty());
    not_found(store.remove_alias(Scope::Platform, &addr("info@acme.example")).await);
}

async fn addresses_cannot_live_in_alias_domains_or_foreign_domains(store: Store) {
    acme(&store).await;
    store.add_domain_alias(Scope::Platform, &dom("acme.example.org"), &dom("acme.example"), true).await.expect("alias");
    let in_alias_domain =
        store.add_mailbox(Scope::Platform, &addr("erika@acme.example.org"), HASH, MailboxSettings::default()).await;
    conflict(in_alias_domain, "create erika@acme.example instead");
    conflict(
        store.add_alias(Scope::Platform, &addr("sales@acme.example.org"), &addr("max@acme.example")).await,
        "alias domain of acme.example",
    );
    not_found(store.add_mailbox(Scope::Platform, &addr("x@unknown.example"), HASH, MailboxSettings::default()).await);
    // An alias to another customer's mailbox is refused.
    let other = store.add_customer(&name("globex"), HASH, Role::Customer).await.expect("customer");
    store.add_domain(other.id, &dom("globex.example"), true).await.expect("domain");
    conflict(
        store.add_alias(Scope::Platform, &addr("max@globex.example"), &addr("max@acme.example")).await,
        "same customer",
    );
}

async fn mailbox_settings_and_password_change(store: Store) {
    acme(&store).await;
    let max = addr("max@acme.example");
    let m = store.mailbox(Scope::Platform, &max).await.expect("get");
    assert_eq!(m.settings, MailboxSettings { access: AccessMode::Imap, submission: true, tls_required: true });
    assert!(!m.password_exposed);
    let changed = store
        .set_mailbox_settings(
            Scope::Platform,
            &max,
            SettingsChange { access: Some(AccessMode::Pop3), ..Default::default() },
        )
        .await
        .expect("set");
    assert_eq!(changed.settings, MailboxSettings { access: AccessMode::Pop3, submission: true, tls_required: true });
    let changed = store
        .set_mailbox_settings(
            Scope::Platform,
            &max,
            SettingsChange { submission: Some(false), tls_required: Some(false), ..Default::default() },
        )
        .await
        .expect("set");
    assert_eq!(changed.settings, MailboxSettings { access: AccessMode::Pop3, submission: false, tls_required: false });
    store.mark_password_exposed(m.id).await.expect("expose");
    assert!(store.mailbox(Scope::Platform, &max).await.expect("get").password_exposed);
    store.set_mailbox_password(Scope::Platform, &max, "$argon2id$new").await.expect("password");
    assert!(!store.mailbox(Scope::Platform, &max).await.expect("get").password_exposed);
    let account = store.mailbox_login(&max).await.expect("login").expect("exists");
    assert_eq!(account.password_hash, "$argon2id$new");
    not_found(store.set_mailbox_password(Scope::Platform, &addr("nobody@acme.example"), "x").await);
}

async fn resolution_through_every_path(store: Store) {
    let id = acme(&store).await;
    store.add_domain(id, &dom("acme-shop.example"), true).await.expect("second domain");
    store.add_domain(id, &dom("bücher.example"), true).await.expect("idn domain");
    store
        .add_mailbox(Scope::Platform, &addr("jörg@bücher.example"), HASH, MailboxSettings::default())
        .await
        .expect("mb");
    store.add_alias(Scope::Platform, &addr("info@acme.example"), &addr("max@acme.example")).await.expect("alias");
    store.add_alias(Scope::Platform, &addr("shop@acme-shop.example"), &addr("max@acme.example")).await.expect("alias");
    store
        .add_domain_alias(Scope::Platform, &dom("acme.example.org"), &dom("acme.example"), true)
        .await
        .expect("alias dom");
    let max = addr("max@acme.example");
    for input in [
        "max@acme.example",
        "MAX@ACME.EXAMPLE",
        "info@acme.example",
        "shop@acme-shop.example",
        "max@acme.example.org",
        "Info@acme.example.org",
        "max+newsletter@acme.example",
        "info+x@acme.example.org",
    ] {
        match store.resolve(&addr(input)).await.expect("resolve") {
            Resolution::Mailbox(r) => assert_eq!(r.mailbox, max, "{input}"),
            other => panic!("{input} should reach max, got {other:?}"),
        }
    }
    match store.resolve(&addr("JÖRG@BÜCHER.example")).await.expect("resolve") {
        Resolution::Mailbox(r) => assert_eq!(r.mailbox.to_string(), "jörg@xn--bcher-kva.example"),
        other => panic!("IDN address should resolve, got {other:?}"),
    }
    for unknown in ["nobody@acme.example", "nobody+max@acme.example", "shop@acme.example", "max@acme-shop.example"] {
        assert_eq!(store.resolve(&addr(unknown)).await.expect("resolve"), Resolution::UnknownAddress, "{unknown}");
    }
    for foreign in ["max@elsewhere.example", "max@sub.acme.example", "max@example.acme"] {
        assert_eq!(store.resolve(&addr(foreign)).await.expect("resolve"), Resolution::NotHosted, "{foreign}");
    }
}

async fn unverified_domains_are_not_hosted(store: Store) {
    let c = store.add_customer(&name("acme"), HASH, Role::Customer).await.expect("customer");
    store.add_domain(c.id, &dom("acme.example"), false).await.expect("domain");
    store.add_mailbox(Scope::Platform, &addr("max@acme.example"), HASH, MailboxSettings::default()).await.expect("mb");
    store.add_domain_alias(Scope::Platform, &dom("acme.example.org"), &dom("acme.example"), true).await.expect("alias");
    assert_eq!(store.resolve(&addr("max@acme.example")).await.expect("resolve"), Resolution::NotHosted);
    // A verified alias domain of an unverified domain is not live either.
    assert_eq!(store.resolve(&addr("max@acme.example.org")).await.expect("resolve"), Resolution::NotHosted);
    store.set_domain_verified(Scope::Platform, &dom("acme.example"), true).await.expect("verify");
    assert!(matches!(store.resolve(&addr("max@acme.example.org")).await.expect("resolve"), Resolution::Mailbox(_)));
    store.set_domain_verified(Scope::Platform, &dom("acme.example.org"), false).await.expect("unverify");
    assert_eq!(store.resolve(&addr("max@acme.example.org")).await.expect("resolve"), Resolution::NotHosted);
}

async fn allowed_senders_cover_aliases_and_alias_domains(store: Store) {
    let id = acme(&store).await;
    store.add_domain(id, &dom("acme-shop.example"), true).await.expect("domain");
    store.add_alias(Scope::Platform, &addr("info@acme.example"), &addr("max@acme.example")).await.expect("alias");
    store.add_alias(Scope::Platform, &addr("shop@acme-shop.example"), &addr("max@acme.example")).await.expect("alias");
    store
        .add_domain_alias(Scope::Platform, &dom("acme.example.org"), &dom("acme.example"), true)
        .await
        .expect("alias dom");
    store
        .add_domain_alias(Scope::Platform, &dom("acme.example.net"), &dom("acme.example"), false)
        .await
        .expect("alias dom");
    store
        .add_mailbox(Scope::Platform, &addr("erika@acme.example"), HASH, MailboxSettings::default())
        .await
        .expect("mb");
    let max = store.mailbox(Scope::Platform, &addr("max@acme.example")).await.expect("max");
    let senders: Vec<String> =
        store.allowed_senders(max.id).await.expect("senders").iter().map(ToString::to_string).collect();
    // Own address first; unverified acme.example.net is left out; erika is not max's.
    assert_eq!(
        senders,
        [
            "max@acme.example",
            "info@acme.example",
            "info@acme.example.org",
            "max@acme.example.org",
            "shop@acme-shop.example"
        ]
    );
}

async fn removing_a_domain_needs_cascade(store: Store) {
    let id = acme(&store).await;
    store.add_domain(id, &dom("acme-shop.example"), true).await.expect("domain");
    store.add_alias(Scope::Platform, &addr("info@acme.example"), &addr("max@acme.example")).await.expect("alias");
    // An alias in another domain pointing into acme.example goes with it too.
    store.add_alias(Scope::Platform, &addr("shop@acme-shop.example"), &addr("max@acme.example")).await.expect("alias");
    store
        .add_domain_alias(Scope::Platform, &dom("acme.example.org"), &dom("acme.example"), true)
        .await
        .expect("alias dom");
    conflict(
        store.remove_domain(Scope::Platform, &dom("acme.example"), false).await,
        "1 mailbox(es), 2 alias(es) and 1 alias domain(s)",
    );
    assert_eq!(store.mailboxes(Scope::Platform, None).await.expect("list").len(), 1, "nothing removed");
    let removed = store.remove_domain(Scope::Platform, &dom("acme.example"), true).await.expect("cascade");
    assert_eq!((removed.mailboxes, removed.aliases, removed.alias_domains), (1, 2, 1));
    assert!(store.mailboxes(Scope::Platform, None).await.expect("list").is_empty());
    assert!(store.aliases(Scope::Platform, None).await.expect("list").is_empty());
    let names: Vec<_> =
        store.domains(Scope::Platform).await.expect("list").into_iter().map(|d| d.name.to_string()).collect();
    assert_eq!(names, ["acme-shop.example"]);
    // An empty domain goes without --cascade.
    store.remove_domain(Scope::Platform, &dom("acme-shop.example"), false).await.expect("remove");
}

async fn customers_cannot_reach_each_other(store: Store) {
    let acme_id = acme(&store).await;
    let globex = store.add_customer(&name("globex"), HASH, Role::Customer).await.expect("customer");
    store.add_domain(globex.id, &dom("globex.example"), true).await.expect("domain");
    store
        .add_mailbox(Scope::Platform, &addr("hank@globex.example"), HASH, MailboxSettings::default())
        .await
        .expect("mb");
    let hank = addr("hank@globex.example");
    let as_acme = Scope::Customer(acme_id);

    let domains: Vec<_> = store.domains(as_acme).await.expect("list").into_iter().map(|d| d.name.to_string()).collect();
    assert_eq!(domains, ["acme.example"]);
    let mailboxes: Vec<_> =
        store.mailboxes(as_acme, None).await.expect("list").into_iter().map(|m| m.address.to_string()).collect();
    assert_eq!(mailboxes, ["max@acme.example"]);
    assert!(store.mailboxes(as_acme, Some(&dom("globex.example"))).await.expect("list").is_empty());
    not_found(store.domain(as_acme, &dom("globex.example")).await);
    not_found(store.mailbox(as_acme, &hank).await);
    let globex_mailbox = store.mailbox(Scope::Platform, &hank).await.expect("exists");
    not_found(store.mailbox_by_id(as_acme, globex_mailbox.id).await);
    not_found(
        store
            .set_mailbox_settings(
                as_acme,
                &hank,
                SettingsChange { access: Some(AccessMode::None), ..Default::default() },
            )
            .await,
    );
    not_found(store.set_mailbox_password(as_acme, &hank, "x").await);
    not_found(store.remove_mailbox(as_acme, &hank).await);
    not_found(store.add_mailbox(as_acme, &addr("evil@globex.example"), HASH, MailboxSettings::default()).await);
    not_found(store.add_alias(as_acme, &addr("steal@acme.example"), &hank).await);
    not_found(store.add_alias(as_acme, &addr("x@globex.example"), &addr("max@acme.example")).await);
    not_found(store.add_domain_alias(as_acme, &dom("globex.example.org"), &dom("globex.example"), true).await);
    not_found(store.remove_domain(as_acme, &dom("globex.example"), true).await);
    not_found(store.set_domain_verified(as_acme, &dom("globex.example"), false).await);
    store.add_alias(Scope::Customer(globex.id), &addr("info@globex.example"), &hank).await.expect("own alias");
    assert!(store.aliases(as_acme, None).await.expect("list").is_empty());
    assert!(store.aliases_of(as_acme, &hank).await.expect("list").is_empty());
    not_found(store.remove_alias(as_acme, &addr("info@globex.example")).await);
    // Nothing of globex changed.
    let after = store.mailbox(Scope::Platform, &hank).await.expect("exists");
    assert_eq!(after.settings, MailboxSettings::default());
    assert_eq!(store.aliases(Scope::Platform, Some(&dom("globex.example"))).await.expect("list").len(), 1);
}

fn record(
    at: i64,
    customer: Option<CustomerId>,
    mailbox: Option<MailboxId>,
    tls: bool,
    result: LoginResult,
) -> LoginRecord {
    LoginRecord {
        at: UnixTime(at),
        customer_id: customer,
        mailbox_id: mailbox,
        login: "max@acme.example\u{7}".into(),
        service: Service::Imap,
        remote_ip: "2001:db8::1".parse::<IpAddr>().expect("ip"),
        tls: tls.then(|| TlsInfo { version: "TLSv1.3".into(), cipher: "TLS13_AES_256_GCM_SHA384".into() }),
        mechanism: Mechanism::ImapLogin,
        result,
        credential: None,
    }
}

async fn login_log_records_filters_and_prunes(store: Store) {
    let acme_id = acme(&store).await;
    let max = store.mailbox(Scope::Platform, &addr("max@acme.example")).await.expect("max");
    let now = UnixTime::now().0;
    store.record_login(&record(now - 100, Some(acme_id), Some(max.id), true, LoginResult::Ok)).await.expect("log");
    store
        .record_login(&record(now - 50, Some(acme_id), Some(max.id), false, LoginResult::TlsRequired))
        .await
        .expect("log");
    store.record_login(&record(now - 10, None, None, true, LoginResult::BadCredentials)).await.expect("log");
    store
        .record_login(&record(now - 200 * 86_400, Some(acme_id), Some(max.id), true, LoginResult::Ok))
        .await
        .expect("log");

    let all = store.logins(Scope::Platform, LoginFilter::default()).await.expect("list");
    assert_eq!(all.len(), 4);
    assert_eq!(all[0].at, UnixTime(now - 10), "newest first");
    assert_eq!(all[1].login, "max@acme.example\u{FFFD}", "control characters are replaced");
    assert_eq!(all[1].tls, None);
    assert_eq!(all[2].tls.as_ref().map(|t| t.version.as_str()), Some("TLSv1.3"));

    let mine = store.logins(Scope::Customer(acme_id), LoginFilter::default()).await.expect("list");
    assert_eq!(mine.len(), 3, "a customer does not see attempts on unknown names");
    let other = store
        .logins(Scope::Customer(CustomerId::new(acme_id.get() + 1000)), LoginFilter::default())
        .await
        .expect("list");
    assert!(other.is_empty());
    let unencrypted = LoginFilter { only_unencrypted: true, ..LoginFilter::default() };
    let rows = store.logins(Scope::Customer(acme_id), unencrypted).await.expect("list");
    assert_eq!(rows.iter().map(|r| r.result).collect::<Vec<_>>(), [LoginResult::TlsRequired]);
    let failed = LoginFilter { only_failed: true, ..LoginFilter::default() };
    assert_eq!(store.logins(Scope::Platform, failed).await.expect("list").len(), 2);
    let by_mailbox = LoginFilter { mailbox: Some(max.id), limit: 2, ..LoginFilter::default() };
    assert_eq!(store.logins(Scope::Platform, by_mailbox).await.expect("list").len(), 2);

    let pruned = store.prune_logins(UnixTime(now - 90 * 86_400)).await.expect("prune");
    assert_eq!(pruned, 1);
    assert_eq!(store.logins(Scope::Platform, LoginFilter::default()).await.expect("list").len(), 3);
}

async fn concurrent_claims_of_one_address_let_exactly_one_win(store: Store) {
    acme(&store).await;
    for round in 0..5 {
        let claimed = addr(&format!("claim{round}@acme.example"));
        let max = addr("max@acme.example");
        let (a, b, c) = tokio::join!(
            store.add_mailbox(Scope::Platform, &claimed, HASH, MailboxSettings::default()),
            store.add_alias(Scope::Platform, &claimed, &max),
            store.add_mailbox(Scope::Platform, &claimed, HASH, MailboxSettings::default()),
        );
        let wins = [a.is_ok(), b.is_ok(), c.is_ok()].iter().filter(|ok| **ok).count();
        assert_eq!(wins, 1, "round {round}: {a:?} {b:?} {c:?}");
        for loser in [a.err(), b.err(), c.err()].into_iter().flatten() {
            assert!(matches!(&loser, StoreError::Refused(Conflict::AddressTaken { .. })), "{loser:?}");
        }
    }
}

async fn reopen_keeps_data_and_migrates_nothing(url: &str, store: Store) {
    acme(&store).await;
    let before = store.applied_migrations().await.expect("migrations");
    assert!(!before.is_empty());
    store.close().await;
    let again = Store::open(url).await.expect("reopen");
    let m = again.mailbox(Scope::Platform, &addr("max@acme.example")).await.expect("data kept");
    assert_eq!(m.address.to_string(), "max@acme.example");
    // The same migrations, applied at the same time: reopening applied none again.
    assert_eq!(again.applied_migrations().await.expect("migrations"), before);
}

#[tokio::test]
async fn reopen_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/postfach.sqlite", dir.path().display());
    reopen_keeps_data_and_migrates_nothing(&url, Store::open(&url).await.expect("open")).await;
}

#[tokio::test]
async fn reopen_postgres() {
    let (store, url) = backends::postgres().await;
    reopen_keeps_data_and_migrates_nothing(&url, store).await;
}

async fn lookups_by_id_are_scoped(store: Store) {
    let acme_id = acme(&store).await;
    let globex = store.add_customer(&name("globex"), HASH, Role::Customer).await.expect("customer");
    let g = store.add_domain(globex.id, &dom("globex.example"), true).await.expect("domain");
    let a = store.domain(Scope::Platform, &dom("acme.example")).await.expect("acme");
    let alias_domain =
        store.add_domain_alias(Scope::Platform, &dom("acme.net"), &dom("acme.example"), true).await.expect("alias");
    let alias =
        store.add_alias(Scope::Platform, &addr("info@acme.example"), &addr("max@acme.example")).await.expect("a");

    // The owner and the platform see the object; another customer sees nothing.
    for scope in [Scope::Platform, Scope::Customer(acme_id)] {
        assert_eq!(store.domain_by_id(scope, a.id).await.expect("domain").name, a.name);
        assert_eq!(store.alias_by_id(scope, alias.id).await.expect("alias").address, alias.address);
        let mirrors = store.alias_domains_of(scope, &a.name).await.expect("alias domains");
        assert_eq!(mirrors.iter().map(|d| d.id).collect::<Vec<_>>(), [alias_domain.id]);
    }
    not_found(store.domain_by_id(Scope::Customer(globex.id), a.id).await);
    not_found(store.alias_by_id(Scope::Customer(globex.id), alias.id).await);
    assert!(store.alias_domains_of(Scope::Customer(globex.id), &a.name).await.expect("none").is_empty());
    assert_eq!(store.domain_by_id(Scope::Customer(globex.id), g.id).await.expect("own").name, g.name);
    // Unknown ids, and a mailbox's own address row, are not aliases or domains.
    not_found(store.domain_by_id(Scope::Platform, DomainId::new(i64::MAX)).await);
    not_found(store.alias_by_id(Scope::Platform, AliasId::new(i64::MAX)).await);
    let max = store.mailbox(Scope::Platform, &addr("max@acme.example")).await.expect("max");
    let own_row = store.aliases(Scope::Platform, None).await.expect("aliases");
    assert!(own_row.iter().all(|x| x.address != max.address));
}

async fn app_passwords_are_scoped_named_once_and_revoked_with_the_counter(store: Store) {
    use postfach_store::app_passwords::{LastUse, NewAppPassword};
    let acme_id = acme(&store).await;
    let max = store.mailbox(Scope::Platform, &addr("max@acme.example")).await.expect("max");
    let other = store.add_customer(&name("globex"), HASH, Role::Customer).await.expect("other").id;
    let new = |name: &'static str, lookup: &'static str| NewAppPassword {
        name,
        services: &[Service::Imap, Service::Submission],
        lookup,
        hash: HASH,
    };
    let phone = store.add_app_password(Scope::Customer(acme_id), max.id, new("Phone", "aaaaaaaa")).await.expect("add");
    assert_eq!(phone.services, [Service::Imap, Service::Submission]);
    assert_eq!(phone.customer_id, acme_id);
    conflict(store.add_app_password(Scope::Platform, max.id, new("Phone", "bbbbbbbb")).await, "already has");
    assert!(matches!(
        store.add_app_password(Scope::Customer(other), max.id, new("Spy", "cccccccc")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.app_passwords(Scope::Customer(other), max.id).await.expect("list").is_empty());
    let found = store.app_password_login(max.id, "aaaaaaaa").await.expect("lookup").expect("found");
    assert_eq!((found.name.as_str(), found.hash.as_str()), ("Phone", HASH));
    assert!(store.app_password_login(max.id, "zzzzzzzz").await.expect("lookup").is_none());
    let last = LastUse {
        at: UnixTime(1_800_000_000),
        service: Service::Imap,
        remote_ip: "2001:db8::7".parse().expect("ip"),
        tls_version: Some("TLSv1.3".into()),
        client: None,
    };
    store.record_app_password_use(phone.id, &last).await.expect("use");
    store.record_app_password_client(phone.id, "K-9 Mail 6.8").await.expect("client");
    let listed = store.app_passwords(Scope::Platform, max.id).await.expect("list");
    assert_eq!(listed[0].last_use.as_ref().and_then(|l| l.client.as_deref()), Some("K-9 Mail 6.8"));
    assert_eq!(listed[0].last_use.as_ref().map(|l| l.at), Some(UnixTime(1_800_000_000)));
    // Revocation: only in scope, and it moves the counter sessions compare.
    let before = store.revocations().current();
    assert!(store.remove_app_password(Scope::Customer(other), max.id, "Phone").await.is_err());
    assert_eq!(store.revocations().current(), before);
    store.remove_app_password(Scope::Customer(acme_id), max.id, "Phone").await.expect("revoke");
    assert!(store.revocations().current() > before);
    assert!(!store.app_password_exists(phone.id).await.expect("exists"));
    // The switch, and the mailbox's removal takes its app passwords along.
    store.set_app_passwords_only(Scope::Customer(acme_id), max.id, true).await.expect("switch");
    assert!(store.mailbox(Scope::Platform, &addr("max@acme.example")).await.expect("max").app_passwords_only);
    store.add_app_password(Scope::Platform, max.id, new("Laptop", "dddddddd")).await.expect("add");
    store.remove_mailbox(Scope::Platform, &addr("max@acme.example")).await.expect("remove");
    assert!(store.app_password_login(max.id, "dddddddd").await.expect("lookup").is_none());
}
