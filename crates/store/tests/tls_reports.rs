//! Received TLS reports (RFC 8460), run against SQLite and PostgreSQL alike.

mod backends;

use postfach_store::tls_reports::{Added, MAX_TLS_REPORTS_PER_DOMAIN, TlsFailure, TlsReportSummary};
use postfach_store::{Scope, Store};
use postfach_types::{CustomerId, CustomerName, DomainId, DomainName, Role, UnixTime};

on_both_backends!(
    reports_are_stored_once_per_domain_and_scoped,
    only_verified_hosted_domains_take_reports,
    reports_are_bounded_per_domain_and_forgotten,
    reports_go_with_their_domain,
);

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA";

fn dom(s: &str) -> DomainName {
    DomainName::parse(s).expect("valid domain")
}

async fn customer(store: &Store, name: &str, domain: &str, verified: bool) -> (CustomerId, DomainId) {
    let c =
        store.add_customer(&CustomerName::parse(name).expect("name"), HASH, Role::Customer).await.expect("customer");
    let d = store.add_domain(c.id, &dom(domain), verified).await.expect("domain");
    (c.id, d.id)
}

fn report(id: &str) -> TlsReportSummary {
    TlsReportSummary {
        organization: "Company-X".into(),
        contact: "sts-reporting@company-x.example".into(),
        report_id: id.into(),
        start: UnixTime(1_459_468_800),
        end: UnixTime(1_459_555_199),
        successful: 5326,
        failed: 303,
        failures: vec![
            TlsFailure {
                result_type: "starttls-not-supported".into(),
                sending_mta_ip: "2001:db8:abcd:13::1".into(),
                receiving_mx: "mx2.acme.example".into(),
                failed: 200,
            },
            TlsFailure {
                result_type: "certificate-expired".into(),
                sending_mta_ip: String::new(),
                receiving_mx: String::new(),
                failed: 100,
            },
        ],
    }
}

async fn reports_are_stored_once_per_domain_and_scoped(store: Store) {
    let (acme, acme_domain) = customer(&store, "acme", "acme.example", true).await;
    let (other, _) = customer(&store, "other", "other.example", true).await;
    assert_eq!(store.add_tls_report(acme_domain, &report("r1")).await.expect("add"), Added::Stored);
    assert_eq!(store.add_tls_report(acme_domain, &report("r1")).await.expect("again"), Added::Duplicate);

    let seen = store.tls_reports(Scope::Customer(acme), acme_domain, 50).await.expect("list");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].summary, report("r1"), "stored as given, failures largest first");
    assert!(seen[0].received_at.0 > 0);
    assert_eq!(store.tls_reports(Scope::Platform, acme_domain, 50).await.expect("operator").len(), 1);
    let foreign = store.tls_reports(Scope::Customer(other), acme_domain, 50).await.expect("other customer");
    assert!(foreign.is_empty(), "another customer sees nothing of acme's reports");
}

async fn only_verified_hosted_domains_take_reports(store: Store) {
    let (_, verified) = customer(&store, "acme", "acme.example", true).await;
    customer(&store, "beta", "beta.example", false).await;
    assert_eq!(store.tls_report_domain(&dom("acme.example")).await.expect("lookup"), Some(verified));
    assert_eq!(store.tls_report_domain(&dom("beta.example")).await.expect("lookup"), None, "not verified");
    assert_eq!(store.tls_report_domain(&dom("elsewhere.example")).await.expect("lookup"), None, "not hosted");
}

async fn reports_are_bounded_per_domain_and_forgotten(store: Store) {
    let (acme, domain) = customer(&store, "acme", "acme.example", true).await;
    let (_, other_domain) = customer(&store, "other", "other.example", true).await;
    store.add_tls_report(other_domain, &report("kept")).await.expect("other domain");
    for n in 0..MAX_TLS_REPORTS_PER_DOMAIN + 3 {
        store.add_tls_report(domain, &report(&format!("r{n}"))).await.expect("add");
    }
    let limit = u32::try_from(MAX_TLS_REPORTS_PER_DOMAIN).expect("fits") + 10;
    let kept = store.tls_reports(Scope::Customer(acme), domain, limit).await.expect("list");
    assert_eq!(kept.len() as i64, MAX_TLS_REPORTS_PER_DOMAIN);
    let ids: Vec<&str> = kept.iter().map(|r| r.summary.report_id.as_str()).collect();
    for oldest in ["r0", "r1", "r2"] {
        assert!(!ids.contains(&oldest), "{oldest} was dropped first");
    }
    assert!(ids.contains(&"r3"));
    assert_eq!(store.tls_reports(Scope::Platform, other_domain, 10).await.expect("other").len(), 1);

    assert_eq!(store.forget_tls_reports_before(UnixTime(1)).await.expect("nothing that old"), 0);
    let forgotten = store.forget_tls_reports_before(UnixTime(UnixTime::now().0 + 10)).await.expect("forget");
    assert_eq!(forgotten as i64, MAX_TLS_REPORTS_PER_DOMAIN + 1);
    assert!(store.tls_reports(Scope::Platform, domain, 10).await.expect("list").is_empty());
}

async fn reports_go_with_their_domain(store: Store) {
    let (acme, domain) = customer(&store, "acme", "acme.example", true).await;
    store.add_tls_report(domain, &report("r1")).await.expect("add");
    store.remove_domain(Scope::Customer(acme), &dom("acme.example"), true).await.expect("remove");
    // Gone with the domain (on either backend; ids are reused only by SQLite), …
    let later = postfach_types::UnixTime(postfach_types::UnixTime::now().0 + 10);
    assert_eq!(store.forget_tls_reports_before(later).await.expect("forget"), 0, "nothing was left");
    // … so a domain added later under the same name (and maybe id) starts empty.
    let (_, again) = customer(&store, "beta", "acme.example", true).await;
    assert!(store.tls_reports(Scope::Platform, again, 10).await.expect("list").is_empty());
}
