//! ACME state (certificates, failures, challenges, the account, domains opting in), run
//! against SQLite and PostgreSQL alike.

mod backends;

use postfach_store::certificates::{Challenge, Issued};
use postfach_store::domains::MtaStsMode;
use postfach_store::{Scope, Store};
use postfach_types::{CustomerName, DomainName, Role, Secret, UnixTime};

on_both_backends!(
    certificates_are_saved_failures_recorded_and_unwanted_ones_forgotten,
    challenges_and_the_account_are_shared_and_every_change_is_announced,
    domains_opt_in_to_certificates_once_verified,
    the_mta_sts_mode_is_kept_per_domain_and_asks_for_a_certificate,
);

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA";

fn dom(s: &str) -> DomainName {
    DomainName::parse(s).expect("valid domain")
}

fn issued(serial: &str, not_after: i64) -> Issued {
    Issued {
        chain_pem: format!("-----BEGIN CERTIFICATE-----\n{serial}\n-----END CERTIFICATE-----\n"),
        key_pem: Secret::new(format!("-----BEGIN PRIVATE KEY-----\n{serial}\n-----END PRIVATE KEY-----\n")),
        not_before: UnixTime(1000),
        not_after: UnixTime(not_after),
        issuer: "CN=Test CA".into(),
        issued_at: UnixTime(1000),
    }
}

fn next_key(serial: &str) -> Secret<String> {
    Secret::new(format!("-----BEGIN PRIVATE KEY-----\nnext-{serial}\n-----END PRIVATE KEY-----\n"))
}

async fn certificates_are_saved_failures_recorded_and_unwanted_ones_forgotten(store: Store) {
    let host = dom("mail.example.net");
    let names = vec![host.clone()];
    // A first failure creates the row without a certificate.
    store.record_certificate_failure(&host, &names, "the CA said no", UnixTime(5000)).await.expect("failure");
    store.record_certificate_failure(&host, &names, "still no", UnixTime(9000)).await.expect("failure");
    let stored = store.certificates().await.expect("list");
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].failures, stored[0].next_attempt, stored[0].last_error.as_deref()),
        (2, UnixTime(9000), Some("still no"))
    );
    assert!(stored[0].issued.is_none());

    // Success clears the failure record; a failure after it keeps the certificate.
    store.save_certificate(&host, &names, &issued("one", 50_000), &next_key("n1")).await.expect("save");
    let stored = store.certificates().await.expect("list");
    assert_eq!((stored[0].failures, stored[0].last_error.clone()), (0, None));
    assert_eq!(stored[0].issued.as_ref().expect("issued").not_after, UnixTime(50_000));
    assert_eq!(stored[0].next_key_pem.as_ref().expect("next key").expose(), next_key("n1").expose());
    assert!(!format!("{stored:?}").contains("PRIVATE KEY"), "keys never show in Debug");
    store.record_certificate_failure(&host, &names, "renewal failed", UnixTime(7000)).await.expect("failure");
    let stored = store.certificates().await.expect("list");
    assert_eq!(stored[0].issued.as_ref().expect("kept").chain_pem, issued("one", 0).chain_pem);
    assert_eq!(stored[0].issued.as_ref().expect("kept").key_pem.expose(), issued("one", 0).key_pem.expose());
    assert_eq!(stored[0].next_key_pem.as_ref().expect("kept").expose(), next_key("n1").expose(), "a failure keeps it");
    // A renewal replaces the next key with the one made for the order after it.
    store.save_certificate(&host, &names, &issued("one-b", 90_000), &next_key("n2")).await.expect("save");
    let stored = store.certificates().await.expect("list");
    assert_eq!(stored[0].next_key_pem.as_ref().expect("next key").expose(), next_key("n2").expose());

    let customer = dom("acme.example");
    let customer_names = vec![dom("mail.acme.example"), dom("autoconfig.acme.example")];
    store.save_certificate(&customer, &customer_names, &issued("two", 60_000), &next_key("n3")).await.expect("save");
    let stored = store.certificates().await.expect("list");
    assert_eq!(stored.iter().find(|c| c.subject == customer).expect("there").names, customer_names);
    assert_eq!(store.retain_certificates(std::slice::from_ref(&host)).await.expect("retain"), 1);
    let subjects: Vec<_> = store.certificates().await.expect("list").into_iter().map(|c| c.subject).collect();
    assert_eq!(subjects, [host]);
}

async fn challenges_and_the_account_are_shared_and_every_change_is_announced(store: Store) {
    let start = store.tls_generation().await.expect("generation");
    let http = Challenge {
        token: "tok1".into(),
        kind: "http-01".into(),
        name: dom("mail.example.net"),
        value: "tok1.thumb".into(),
    };
    store.put_challenge(&http).await.expect("put");
    let after_put = store.tls_generation().await.expect("generation");
    assert!(after_put > start);
    let tls =
        Challenge { token: "tok2".into(), kind: "tls-alpn-01".into(), value: "tok2.thumb".into(), ..http.clone() };
    store.put_challenge(&tls).await.expect("put");
    assert_eq!(store.http_challenge("tok1").await.expect("get"), Some("tok1.thumb".into()));
    assert_eq!(store.http_challenge("tok2").await.expect("get"), None, "not an http-01 answer");
    assert_eq!(store.challenges().await.expect("all"), [http.clone(), tls.clone()]);
    store.remove_challenge("tok1").await.expect("remove");
    assert_eq!(store.http_challenge("tok1").await.expect("get"), None);
    assert!(store.tls_generation().await.expect("generation") > after_put);
    store.prune_challenges(UnixTime(UnixTime::now().0 + 10)).await.expect("prune");
    assert!(store.challenges().await.expect("all").is_empty());

    let directory = "https://acme.example/dir";
    assert!(store.acme_account(directory).await.expect("get").is_none());
    store.save_acme_account(directory, &Secret::new("{\"id\":\"1\"}".into())).await.expect("save");
    store.save_acme_account(directory, &Secret::new("{\"id\":\"2\"}".into())).await.expect("replace");
    assert_eq!(store.acme_account(directory).await.expect("get").expect("there").expose(), "{\"id\":\"2\"}");
    assert!(store.acme_account("https://other.example/dir").await.expect("get").is_none());
}

async fn domains_opt_in_to_certificates_once_verified(store: Store) {
    let acme = store.add_customer(&CustomerName::parse("acme").expect("n"), HASH, Role::Customer).await.expect("c");
    let globex = store.add_customer(&CustomerName::parse("globex").expect("n"), HASH, Role::Customer).await.expect("c");
    store.add_domain(acme.id, &dom("acme.example"), true).await.expect("domain");
    store.add_domain(acme.id, &dom("pending.example"), false).await.expect("domain");
    store.add_domain(globex.id, &dom("globex.example"), true).await.expect("domain");
    let before = store.tls_generation().await.expect("generation");
    for name in ["acme.example", "pending.example"] {
        store.set_domain_certificates(Scope::Customer(acme.id), &dom(name), true).await.expect("opt in");
    }
    assert!(store.tls_generation().await.expect("generation") > before, "the leader is told");
    let other = store.set_domain_certificates(Scope::Customer(acme.id), &dom("globex.example"), true).await;
    assert!(other.is_err(), "another customer's domain does not exist for acme");
    assert!(store.domain(Scope::Platform, &dom("acme.example")).await.expect("d").certificates);
    assert!(!store.domain(Scope::Platform, &dom("globex.example")).await.expect("d").certificates);
    assert_eq!(store.domains_with_certificates().await.expect("list"), [dom("acme.example")], "verified only");
    store.set_domain_certificates(Scope::Platform, &dom("acme.example"), false).await.expect("opt out");
    assert!(store.domains_with_certificates().await.expect("list").is_empty());
}

async fn the_mta_sts_mode_is_kept_per_domain_and_asks_for_a_certificate(store: Store) {
    let acme = store.add_customer(&CustomerName::parse("acme").expect("n"), HASH, Role::Customer).await.expect("c");
    let globex = store.add_customer(&CustomerName::parse("globex").expect("n"), HASH, Role::Customer).await.expect("c");
    store.add_domain(acme.id, &dom("acme.example"), true).await.expect("domain");
    store.add_domain(acme.id, &dom("pending.example"), false).await.expect("domain");
    store.add_domain(globex.id, &dom("globex.example"), true).await.expect("domain");
    let mode = |name: &'static str| {
        let store = store.clone();
        async move { store.domain(Scope::Platform, &dom(name)).await.expect("d").mta_sts }
    };
    assert_eq!(mode("acme.example").await, MtaStsMode::Off, "off until switched on");
    let before = store.tls_generation().await.expect("generation");
    let acme_scope = Scope::Customer(acme.id);
    store.set_domain_mta_sts(acme_scope, &dom("acme.example"), MtaStsMode::Enforce).await.expect("enforce");
    store.set_domain_mta_sts(acme_scope, &dom("pending.example"), MtaStsMode::Testing).await.expect("testing");
    assert!(store.tls_generation().await.expect("generation") > before, "the leader plans certificates again");
    let other = store.set_domain_mta_sts(acme_scope, &dom("globex.example"), MtaStsMode::Enforce).await;
    assert!(other.is_err(), "another customer's domain does not exist for acme");
    assert_eq!(mode("acme.example").await, MtaStsMode::Enforce);
    assert_eq!(mode("pending.example").await, MtaStsMode::Testing);
    assert_eq!(mode("globex.example").await, MtaStsMode::Off);
    assert_eq!(store.domains_with_mta_sts().await.expect("list"), [dom("acme.example")], "verified only");
    store.set_domain_mta_sts(Scope::Platform, &dom("acme.example"), MtaStsMode::Off).await.expect("off");
    assert!(store.domains_with_mta_sts().await.expect("list").is_empty());
}
