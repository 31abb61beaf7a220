//! The checks against a real DNS server (postfach-testdns) serving correct and broken
//! zones: every check's verdict is asserted, as is the merged SPF suggestion, the
//! ownership verification, the cached report with its changes, and the DKIM rotation.

use postfach_dns::checks::{self, Check, Checker, Level, Ownership};
use postfach_dns::dkim::{self, Rotation};
use postfach_dns::records::{self, Purpose, RecordType};
use postfach_dns::{Platform, ServicePorts};
use postfach_store::dkim::DkimKeyState;
use postfach_store::{Scope, Store};
use postfach_testdns::{Data, Rr, TestDns, Type};
use postfach_types::{CustomerName, DomainName, Role};

const HOST: &str = "mail.platform.test";
const SPF_NAME: &str = "_spf.mail.platform.test";

fn dom(s: &str) -> DomainName {
    DomainName::parse(s).expect("domain")
}

fn platform() -> Platform {
    Platform {
        hostname: dom(HOST),
        spf_name: SPF_NAME.to_string(),
        outbound_ips: vec!["192.0.2.25".parse().expect("ip"), "2001:db8::25".parse().expect("ip")],
        ports: ServicePorts { pop3: None, ..ServicePorts::standard() },
        tls_reports: None,
    }
}

fn txt(name: &str, text: &str) -> Rr {
    Rr::new(name, Data::txt(text))
}

fn srv(name: &str, priority: u16, port: u16, target: &str) -> Rr {
    Rr::new(name, Data::Srv { priority, weight: u16::from(port != 0), port, target: target.into() })
}

fn mx(name: &str, host: &str) -> Rr {
    Rr::new(name, Data::Mx(10, host.into()))
}

/// The zone: the platform's own records, other parties' SPF records, and the customer
/// domains' records (DKIM records are added once the keys exist).
fn zone() -> Vec<Rr> {
    vec![
        Rr::new(
            "platform.test",
            Data::Soa {
                mname: "ns.platform.test".into(),
                rname: "hostmaster.platform.test".into(),
                serial: 1,
                minimum: 0,
            },
        ),
        Rr::new(HOST, Data::A("192.0.2.25".parse().expect("ip"))),
        txt(SPF_NAME, "v=spf1 ip4:192.0.2.25 ip6:2001:db8::25 -all"),
        txt("_spf.other.test", "v=spf1 ip4:198.51.100.0/24 -all"),
        txt("l1.test", "v=spf1 a mx a:x.test mx:y.test -all"),
        txt("l2.test", "v=spf1 a mx exists:%{i}.e.test ptr -all"),
        // good.test: everything right (DKIM added later).
        mx("good.test", HOST),
        txt("good.test", "v=spf1 include:_spf.mail.platform.test -all"),
        txt("good.test", "google-site-verification=abc"),
        txt("_dmarc.good.test", "v=DMARC1; p=quarantine; rua=mailto:reports@good.test"),
        srv("_submissions._tcp.good.test", 0, 465, HOST),
        srv("_submission._tcp.good.test", 10, 587, HOST),
        srv("_imaps._tcp.good.test", 0, 993, HOST),
        srv("_imap._tcp.good.test", 10, 143, HOST),
        srv("_pop3s._tcp.good.test", 0, 995, HOST),
        srv("_pop3._tcp.good.test", 0, 0, "."),
        Rr::new("autoconfig.good.test", Data::Cname(HOST.into())),
        // Address records instead of a CNAME: fine when they are the server's.
        Rr::new("autodiscover.good.test", Data::A("192.0.2.25".parse().expect("ip"))),
        // broken.test: foreign MX, two SPF records, wrong DKIM key, bad DMARC.
        mx("broken.test", "mx.elsewhere.test"),
        txt("broken.test", "v=spf1 mx ~all"),
        txt("broken.test", "v=spf1 +all"),
        txt("_dmarc.broken.test", "v=DMARC1; p=quarantine"),
        txt("_dmarc.broken.test", "v=DMARC1; p=reject"),
        // ... an IMAP SRV record and autoconfig at the old provider, the rest missing.
        srv("_imaps._tcp.broken.test", 0, 993, "imap.elsewhere.test"),
        Rr::new("autoconfig.broken.test", Data::Cname("autoconfig.elsewhere.test".into())),
        // legacy.test: an existing SPF record without our include; no MX; DMARC p=none.
        txt("legacy.test", "v=spf1 mx include:_spf.other.test ~all"),
        txt("_dmarc.legacy.test", "v=DMARC1; p=none"),
        // lookups.test: too many lookups, ?all, MX to us and elsewhere.
        mx("lookups.test", HOST),
        mx("lookups.test", "backup.elsewhere.test"),
        txt("lookups.test", "v=spf1 include:_spf.mail.platform.test include:l1.test include:l2.test ?all"),
        txt("_dmarc.lookups.test", "v=DMARC1; p=reject; rua=mailto:dmarc@lookups.test"),
        // syntax.test: null MX, an SPF syntax error, an unreadable DMARC record.
        Rr::new("syntax.test", Data::Mx(0, ".".into())),
        txt("syntax.test", "v=spf1 ip4:192.0.2.300 -all"),
        txt("_dmarc.syntax.test", "v=DMARC1; p=everything"),
        // dangling.test: includes a name without SPF.
        mx("dangling.test", HOST),
        txt("dangling.test", "v=spf1 include:nothing.test include:_spf.mail.platform.test -all"),
        txt("_dmarc.dangling.test", "v=DMARC1; p=quarantine"),
    ]
}

async fn store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&format!("sqlite://{}/postfach.sqlite", dir.path().display())).await.expect("store");
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaA";
    let c = store.add_customer(&CustomerName::parse("acme").expect("name"), hash, Role::Customer).await.expect("c");
    for (domain, verified) in [
        ("good.test", false),
        ("broken.test", true),
        ("legacy.test", true),
        ("lookups.test", true),
        ("syntax.test", true),
        ("dangling.test", true),
        ("unverified.test", false),
    ] {
        store.add_domain(c.id, &dom(domain), verified).await.expect("domain");
        dkim::ensure_key(&store, Scope::Platform, &dom(domain)).await.expect("dkim key");
    }
    (store, dir)
}

/// Publishes the domain's active DKIM key as it should be.
async fn publish_dkim(dns: &TestDns, store: &Store, domain: &str, state: DkimKeyState) {
    let keys = store.dkim_keys(Scope::Platform, &dom(domain)).await.expect("keys");
    let key = keys.iter().find(|k| k.state == state).expect("key in that state");
    dns.set(
        &dkim::record_name(&key.selector, &dom(domain)),
        Type::Txt,
        vec![Data::txt(&dkim::record_value(&key.public_key))],
    );
}

type Summary = Vec<(Check, String, Level)>;

fn summary(report: &checks::DomainReport) -> Summary {
    for v in &report.verdicts {
        assert!(!v.message.de.is_empty() && !v.message.en.is_empty(), "{v:?}");
        assert_ne!(v.message.de, v.message.en, "{v:?}");
    }
    report.verdicts.iter().map(|v| (v.check, v.code.clone(), v.level)).collect()
}

fn s(items: &[(Check, &str, Level)]) -> Summary {
    items.iter().map(|(c, code, l)| (*c, code.to_string(), *l)).collect()
}

fn message<'a>(report: &'a checks::DomainReport, code: &str) -> &'a str {
    &report
        .verdicts
        .iter()
        .find(|v| v.code == code)
        .unwrap_or_else(|| panic!("no verdict {code}: {report:?}"))
        .message
        .en
}

#[tokio::test]
async fn every_check_on_correct_and_broken_zones() {
    let dns = TestDns::start(zone());
    let (store, _dir) = store().await;
    let checker = Checker::new(platform(), Some(dns.addr())).expect("checker");
    publish_dkim(&dns, &store, "good.test", DkimKeyState::Active).await;
    // broken.test publishes the key of another domain.
    let other = store.dkim_keys(Scope::Platform, &dom("legacy.test")).await.expect("keys").remove(0);
    let broken_key = store.dkim_keys(Scope::Platform, &dom("broken.test")).await.expect("keys").remove(0);
    dns.set(
        &dkim::record_name(&broken_key.selector, &dom("broken.test")),
        Type::Txt,
        vec![Data::txt(&dkim::record_value(&other.public_key))],
    );
    publish_dkim(&dns, &store, "lookups.test", DkimKeyState::Active).await;
    let syntax_key = store.dkim_keys(Scope::Platform, &dom("syntax.test")).await.expect("keys").remove(0);
    dns.set(
        &dkim::record_name(&syntax_key.selector, &dom("syntax.test")),
        Type::Txt,
        vec![Data::txt("v=DKIM1; k=dsa; p=bm90IGEga2V5")],
    );
    publish_dkim(&dns, &store, "dangling.test", DkimKeyState::Active).await;

    // good.test: the ownership record is missing, everything else is right.
    let good = checks::refresh(&checker, &store, Scope::Platform, &dom("good.test")).await.expect("refresh");
    assert!(!good.verified_now);
    assert_eq!(
        summary(&good.report),
        s(&[
            (Check::Ownership, "ownership.missing", Level::Error),
            (Check::Mx, "mx.ok", Level::Ok),
            (Check::Spf, "spf.pass", Level::Ok),
            (Check::Dkim, "dkim.ok", Level::Ok),
            (Check::Dmarc, "dmarc.ok", Level::Ok),
            (Check::Srv, "srv.ok", Level::Ok),
            (Check::Autoconfig, "autoconfig.ok", Level::Ok),
        ])
    );
    let d = store.domain(Scope::Platform, &dom("good.test")).await.expect("domain");
    let (name, value) = d.ownership_record();
    assert!(message(&good.report, "ownership.missing").contains(&format!("at {name} with the value {value}")));
    // Publishing it verifies the domain on the next run, and the change is recorded.
    dns.set(&name, Type::Txt, vec![Data::txt(&value)]);
    let good = checks::refresh(&checker, &store, Scope::Platform, &dom("good.test")).await.expect("refresh");
    assert!(good.verified_now);
    assert!(store.domain(Scope::Platform, &dom("good.test")).await.expect("domain").verified);
    assert_eq!(good.report.level(), Level::Ok);
    assert_eq!(good.report.verdicts[0].code, "ownership.ok");
    assert_eq!(
        good.changes.iter().map(|c| (c.check, c.from, c.to)).collect::<Vec<_>>(),
        [(Check::Ownership, Level::Error, Level::Ok)]
    );

    let broken = checks::refresh(&checker, &store, Scope::Platform, &dom("broken.test")).await.expect("refresh");
    assert_eq!(
        summary(&broken.report),
        s(&[
            (Check::Ownership, "ownership.ok", Level::Ok),
            (Check::Mx, "mx.foreign", Level::Error),
            (Check::Spf, "spf.multiple", Level::Error),
            (Check::Spf, "spf.softfail_all", Level::Warning),
            (Check::Spf, "spf.pass_all", Level::Error),
            (Check::Dkim, "dkim.mismatch", Level::Error),
            (Check::Dmarc, "dmarc.multiple", Level::Error),
            (Check::Srv, "srv.wrong", Level::Error),
            (Check::Srv, "srv.missing", Level::Warning),
            (Check::Autoconfig, "autoconfig.wrong", Level::Error),
            (Check::Autoconfig, "autoconfig.missing", Level::Warning),
        ])
    );
    // One merged record replaces both SPF records; +all and ~all become -all.
    assert!(
        message(&broken.report, "spf.multiple")
            .ends_with("Replace them with this one record: v=spf1 mx include:_spf.mail.platform.test -all"),
        "{}",
        message(&broken.report, "spf.multiple")
    );
    assert!(message(&broken.report, "mx.foreign").contains("mx.elsewhere.test instead of mail.platform.test"));
    // The client-setup rows: each wrong record named with its replacement, the missing
    // ones listed with what to publish.
    let srv_wrong = message(&broken.report, "srv.wrong");
    assert!(srv_wrong.contains("_imaps._tcp.broken.test points to 993 imap.elsewhere.test, so"), "{srv_wrong}");
    assert!(srv_wrong.ends_with("Replace it with: SRV 0 1 993 mail.platform.test."), "{srv_wrong}");
    let srv_missing = message(&broken.report, "srv.missing");
    assert!(srv_missing.contains("_submissions._tcp.broken.test SRV 0 1 465 mail.platform.test."), "{srv_missing}");
    assert!(srv_missing.contains("_pop3._tcp.broken.test SRV 0 0 0 ."), "{srv_missing}");
    assert!(!srv_missing.contains("_imaps._tcp"), "{srv_missing}");
    let auto_wrong = message(&broken.report, "autoconfig.wrong");
    assert!(auto_wrong.contains("autoconfig.broken.test points to autoconfig.elsewhere.test"), "{auto_wrong}");
    assert!(
        message(&broken.report, "autoconfig.missing").ends_with("autodiscover.broken.test CNAME mail.platform.test.")
    );

    let legacy = checks::refresh(&checker, &store, Scope::Platform, &dom("legacy.test")).await.expect("refresh");
    assert_eq!(
        summary(&legacy.report),
        s(&[
            (Check::Ownership, "ownership.ok", Level::Ok),
            (Check::Mx, "mx.missing", Level::Error),
            (Check::Spf, "spf.softfail_all", Level::Warning),
            (Check::Spf, "spf.not_authorized", Level::Error),
            (Check::Dkim, "dkim.missing", Level::Error),
            (Check::Dmarc, "dmarc.monitor_only", Level::Warning),
            (Check::Srv, "srv.missing", Level::Warning),
            (Check::Autoconfig, "autoconfig.missing", Level::Warning),
        ])
    );
    let merged = "v=spf1 mx include:_spf.other.test include:_spf.mail.platform.test -all";
    let not_authorized = message(&legacy.report, "spf.not_authorized");
    assert!(not_authorized.contains("server 192.0.2.25 to send (result: softfail)"), "{not_authorized}");
    assert!(not_authorized.ends_with(&format!("Replace it with: {merged}")), "{not_authorized}");
    // The records to publish carry the same single merged SPF record.
    let published =
        checks::published_records(&checker, &store, Scope::Platform, &dom("legacy.test")).await.expect("rr");
    let spf: Vec<_> = published.iter().filter(|r| r.purpose == Purpose::Spf).collect();
    assert_eq!(spf.len(), 1);
    assert_eq!((spf[0].name.as_str(), spf[0].rtype, spf[0].value.as_str()), ("legacy.test", RecordType::Txt, merged));

    let lookups = checks::refresh(&checker, &store, Scope::Platform, &dom("lookups.test")).await.expect("refresh");
    assert_eq!(
        summary(&lookups.report),
        s(&[
            (Check::Ownership, "ownership.ok", Level::Ok),
            (Check::Mx, "mx.mixed", Level::Warning),
            (Check::Spf, "spf.neutral_all", Level::Error),
            (Check::Spf, "spf.too_many_lookups", Level::Error),
            (Check::Spf, "spf.pass", Level::Ok),
            (Check::Dkim, "dkim.ok", Level::Ok),
            (Check::Dmarc, "dmarc.ok", Level::Ok),
            (Check::Srv, "srv.missing", Level::Warning),
            (Check::Autoconfig, "autoconfig.missing", Level::Warning),
        ])
    );
    assert!(message(&lookups.report, "spf.too_many_lookups").contains("needs 11 DNS lookups"));

    let syntax = checks::refresh(&checker, &store, Scope::Platform, &dom("syntax.test")).await.expect("refresh");
    assert_eq!(
        summary(&syntax.report),
        s(&[
            (Check::Ownership, "ownership.ok", Level::Ok),
            (Check::Mx, "mx.null", Level::Error),
            (Check::Spf, "spf.syntax", Level::Error),
            (Check::Dkim, "dkim.invalid", Level::Error),
            (Check::Dmarc, "dmarc.invalid", Level::Error),
            (Check::Srv, "srv.missing", Level::Warning),
            (Check::Autoconfig, "autoconfig.missing", Level::Warning),
        ])
    );
    assert!(message(&syntax.report, "spf.syntax").contains("'ip4:192.0.2.300' is not a valid SPF term"));
    assert!(message(&syntax.report, "spf.syntax").ends_with("like this: v=spf1 include:_spf.mail.platform.test -all"));

    let dangling = checks::refresh(&checker, &store, Scope::Platform, &dom("dangling.test")).await.expect("refresh");
    assert_eq!(
        summary(&dangling.report),
        s(&[
            (Check::Ownership, "ownership.ok", Level::Ok),
            (Check::Mx, "mx.ok", Level::Ok),
            (Check::Spf, "spf.include_broken", Level::Error),
            (Check::Spf, "spf.not_authorized", Level::Error),
            (Check::Dkim, "dkim.ok", Level::Ok),
            (Check::Dmarc, "dmarc.ok", Level::Ok),
            (Check::Srv, "srv.missing", Level::Warning),
            (Check::Autoconfig, "autoconfig.missing", Level::Warning),
        ])
    );

    let unverified =
        checks::refresh(&checker, &store, Scope::Platform, &dom("unverified.test")).await.expect("refresh");
    assert_eq!(
        summary(&unverified.report),
        s(&[
            (Check::Ownership, "ownership.missing", Level::Error),
            (Check::Mx, "mx.missing", Level::Error),
            (Check::Spf, "spf.missing", Level::Error),
            (Check::Dkim, "dkim.missing", Level::Error),
            (Check::Dmarc, "dmarc.missing", Level::Error),
            (Check::Srv, "srv.missing", Level::Warning),
            (Check::Autoconfig, "autoconfig.missing", Level::Warning),
        ])
    );
    assert!(message(&unverified.report, "spf.missing").ends_with("v=spf1 include:_spf.mail.platform.test -all"));

    // The reports are cached; breaking a good domain records the change from ok to error.
    dns.set("good.test", Type::Mx, vec![Data::Mx(10, "mx.elsewhere.test".into())]);
    let good = checks::refresh(&checker, &store, Scope::Platform, &dom("good.test")).await.expect("refresh");
    assert_eq!(
        good.changes.iter().map(|c| (c.check, c.from, c.to)).collect::<Vec<_>>(),
        [(Check::Mx, Level::Ok, Level::Error)]
    );
    let cached = store.dns_report(Scope::Platform, &dom("good.test")).await.expect("cached").expect("report");
    assert_eq!(cached, good.report);
    let history = store.dns_check_changes(Scope::Platform, &dom("good.test"), 10).await.expect("changes");
    assert_eq!(history.len(), 2);
    assert_eq!((history[0].check, history[0].to), (Check::Mx, Level::Error));
}

#[tokio::test]
async fn dkim_rotation_waits_for_the_published_record() {
    let dns = TestDns::start(zone());
    let (store, _dir) = store().await;
    let checker = Checker::new(platform(), Some(dns.addr())).expect("checker");
    let d = dom("good.test");
    publish_dkim(&dns, &store, "good.test", DkimKeyState::Active).await;
    let first = store.active_dkim_key(&d).await.expect("get").expect("active");

    let Rotation::Pending(next) = dkim::rotate(&store, Scope::Platform, &d, false).await.expect("rotate") else {
        panic!("a rotation without --force creates a pending key")
    };
    assert_ne!(next.selector, first.selector);
    assert!(
        matches!(dkim::rotate(&store, Scope::Platform, &d, false).await, Ok(Rotation::AlreadyPending(k)) if k.selector == next.selector)
    );
    // Both keys are shown for publishing.
    let published = checks::published_records(&checker, &store, Scope::Platform, &d).await.expect("records");
    let dkim_names: Vec<_> = published.iter().filter(|r| r.purpose == Purpose::Dkim).map(|r| r.name.clone()).collect();
    assert_eq!(dkim_names.len(), 2);
    assert!(dkim_names.contains(&format!("{}._domainkey.good.test", next.selector)));

    // Not yet published: the old key still signs.
    let run = checks::refresh(&checker, &store, Scope::Platform, &d).await.expect("refresh");
    assert!(run.report.verdicts.iter().any(|v| v.code == "dkim.pending_missing" && v.level == Level::Warning));
    assert_eq!(run.activated_key, None);
    assert_eq!(store.active_dkim_key(&d).await.expect("get").expect("active").selector, first.selector);

    publish_dkim(&dns, &store, "good.test", DkimKeyState::Pending).await;
    let run = checks::refresh(&checker, &store, Scope::Platform, &d).await.expect("refresh");
    assert_eq!(run.activated_key.as_deref(), Some(next.selector.as_str()));
    assert_eq!(store.active_dkim_key(&d).await.expect("get").expect("active").selector, next.selector);
    let states: Vec<_> =
        store.dkim_keys(Scope::Platform, &d).await.expect("keys").into_iter().map(|k| (k.selector, k.state)).collect();
    assert!(states.contains(&(first.selector.clone(), DkimKeyState::Retired)), "{states:?}");

    // --force activates a new key at once.
    let Rotation::Activated(forced) = dkim::rotate(&store, Scope::Platform, &d, true).await.expect("force") else {
        panic!("--force activates")
    };
    assert_eq!(store.active_dkim_key(&d).await.expect("get").expect("active").selector, forced.selector);
}

#[tokio::test]
async fn ownership_check_and_records_to_publish() {
    let dns = TestDns::start(zone());
    let (store, _dir) = store().await;
    let checker = Checker::new(platform(), Some(dns.addr())).expect("checker");
    let d = dom("unverified.test");
    let Ownership::Missing { name, value } =
        checks::verify_ownership(&checker, &store, Scope::Platform, &d).await.expect("check")
    else {
        panic!("not published yet")
    };
    let domain = store.domain(Scope::Platform, &d).await.expect("domain");
    assert_eq!((name.clone(), value.clone()), domain.ownership_record());
    assert!(name.starts_with("_postfach-verify.unverified.test") && value.starts_with("postfach-verify="));

    let rr = checks::published_records(&checker, &store, Scope::Platform, &d).await.expect("records");
    let find = |purpose: Purpose| rr.iter().filter(move |r| r.purpose == purpose);
    let own: Vec<_> = find(Purpose::Ownership).collect();
    assert_eq!(
        (own[0].name.as_str(), own[0].rtype, own[0].value.as_str()),
        (name.as_str(), RecordType::Txt, value.as_str())
    );
    let mx: Vec<_> = find(Purpose::Mx).collect();
    assert_eq!((mx[0].name.as_str(), mx[0].value.as_str()), ("unverified.test", "10 mail.platform.test."));
    let spf: Vec<_> = find(Purpose::Spf).collect();
    assert_eq!(spf[0].value, "v=spf1 include:_spf.mail.platform.test -all");
    let dkim: Vec<_> = find(Purpose::Dkim).collect();
    assert_eq!(dkim.len(), 1);
    assert!(dkim[0].value.starts_with("v=DKIM1; k=rsa; p=MII"));
    assert!(dkim[0].txt_strings.len() >= 2 && dkim[0].txt_strings.iter().all(|s| s.len() <= 255));
    assert_eq!(dkim[0].txt_strings.concat(), dkim[0].value);
    assert!(dkim[0].zone_line().contains("IN TXT \"v=DKIM1; k=rsa; p=MII"));
    let dmarc: Vec<_> = find(Purpose::Dmarc).collect();
    assert_eq!(
        (dmarc[0].name.as_str(), dmarc[0].value.as_str()),
        ("_dmarc.unverified.test", "v=DMARC1; p=quarantine; adkim=r; aspf=r")
    );
    let srv: Vec<_> = find(Purpose::Srv).map(|r| (r.name.as_str(), r.value.as_str())).collect();
    assert_eq!(
        srv,
        [
            ("_submissions._tcp.unverified.test", "0 1 465 mail.platform.test."),
            ("_submission._tcp.unverified.test", "10 1 587 mail.platform.test."),
            ("_imaps._tcp.unverified.test", "0 1 993 mail.platform.test."),
            ("_imap._tcp.unverified.test", "10 1 143 mail.platform.test."),
            ("_pop3s._tcp.unverified.test", "0 1 995 mail.platform.test."),
            ("_pop3._tcp.unverified.test", "0 0 0 ."),
        ]
    );
    let auto: Vec<_> =
        rr.iter().filter(|r| r.rtype == RecordType::Cname).map(|r| (r.name.as_str(), r.value.as_str())).collect();
    assert_eq!(
        auto,
        [
            ("autoconfig.unverified.test", "mail.platform.test."),
            ("autodiscover.unverified.test", "mail.platform.test.")
        ]
    );

    dns.set(&name, Type::Txt, vec![Data::txt(&value)]);
    assert_eq!(checks::verify_ownership(&checker, &store, Scope::Platform, &d).await.expect("check"), Ownership::Found);
    let domain = store.domain(Scope::Platform, &d).await.expect("domain");
    assert!(domain.verified && domain.proven_by_record);
    // Verified by its record, the record stays on the list: it must stay published.
    let rr = checks::published_records(&checker, &store, Scope::Platform, &d).await.expect("records");
    let own: Vec<_> = rr.iter().filter(|r| r.purpose == Purpose::Ownership).collect();
    assert_eq!((own.len(), own[0].value.as_str()), (1, value.as_str()));
    assert!(
        own[0].description.en.starts_with("Proves that the domain is yours. Keep it published"),
        "{:?}",
        own[0].description
    );
    assert_eq!(
        checks::verify_ownership(&checker, &store, Scope::Platform, &d).await.expect("check"),
        Ownership::AlreadyVerified
    );

    // The record disappears: the domain stays verified (mail keeps flowing), the check
    // turns red and says what to publish again.
    dns.set(&name, Type::Txt, vec![]);
    assert_eq!(
        checks::verify_ownership(&checker, &store, Scope::Platform, &d).await.expect("check"),
        Ownership::Gone { name: name.clone(), value: value.clone() }
    );
    let domain = store.domain(Scope::Platform, &d).await.expect("domain");
    assert!(domain.verified);
    let report = checks::run(&checker, &domain, &[]).await;
    let own = report.verdicts.iter().find(|v| v.check == Check::Ownership).expect("ownership verdict");
    assert_eq!((own.code.as_str(), own.level), ("ownership.gone", Level::Error));
    assert!(
        own.message.en.contains(&format!("publish a TXT record at {name} with the value {value} again")),
        "{}",
        own.message.en
    );

    // A domain the operator verified is not looked up and needs no record.
    store.set_domain_verified(Scope::Platform, &d, true).await.expect("operator");
    let domain = store.domain(Scope::Platform, &d).await.expect("domain");
    assert!(!domain.proven_by_record);
    assert_eq!(checks::check_ownership(&checker, &domain).await, Ownership::AlreadyVerified);
    let rr = checks::published_records(&checker, &store, Scope::Platform, &d).await.expect("records");
    assert!(rr.iter().all(|r| r.purpose != Purpose::Ownership));

    let platform_rr = records::platform(&platform()).expect("a usable hostname");
    let lines: Vec<String> = platform_rr.iter().map(|r| format!("{} {} {}", r.name, r.rtype, r.value)).collect();
    assert_eq!(
        lines,
        [
            "mail.platform.test A 192.0.2.25",
            "mail.platform.test AAAA 2001:db8::25",
            "25.2.0.192.in-addr.arpa PTR mail.platform.test.",
            "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa PTR mail.platform.test.",
            "_spf.mail.platform.test TXT v=spf1 ip4:192.0.2.25 ip6:2001:db8::25 -all",
            "mail.platform.test TXT v=spf1 include:_spf.mail.platform.test -all",
        ]
    );
}

#[tokio::test]
async fn no_records_name_a_hostname_others_cannot_reach() {
    let dns = TestDns::start(zone());
    let (store, _dir) = store().await;
    let local = Platform { hostname: dom("localhost"), spf_name: "_spf.localhost".into(), ..platform() };
    let problem = records::platform(&local).expect_err("no platform records on localhost");
    assert!(problem.en.contains("Set hostname to this server's fully qualified name"), "{}", problem.en);
    let checker = Checker::new(local, Some(dns.addr())).expect("checker");
    let rr = checks::published_records(&checker, &store, Scope::Platform, &dom("unverified.test")).await.expect("rr");
    let purposes: Vec<Purpose> = rr.iter().map(|r| r.purpose).collect();
    assert_eq!(purposes, [Purpose::Ownership, Purpose::Dkim, Purpose::Dmarc], "nothing that names localhost");
    assert!(rr.iter().all(|r| !r.value.contains("localhost")), "{rr:?}");
    let report = checks::run(
        &checker,
        &store.domain(Scope::Platform, &dom("good.test")).await.expect("domain"),
        &store.dkim_keys(Scope::Platform, &dom("good.test")).await.expect("keys"),
    )
    .await;
    assert_eq!(report.level_of(Check::Srv), None);
    assert_eq!(report.level_of(Check::Autoconfig), None);
}

const TLS_REPORTS: &str = "tls-reports@mail.platform.test";

/// TLS-RPT (RFC 8460): the `_smtp._tls` record naming the platform's reporting address
/// is listed for every domain, and the check judges what each test domain publishes.
#[tokio::test]
async fn tls_rpt_record_and_check() {
    let dns = TestDns::start(zone());
    let ours = format!("v=TLSRPTv1; rua=mailto:{TLS_REPORTS}");
    dns.set("_smtp._tls.good.test", Type::Txt, vec![Data::txt(&ours)]);
    // Two records: senders ignore both.
    dns.set(
        "_smtp._tls.broken.test",
        Type::Txt,
        vec![Data::txt(&ours), Data::txt("v=TLSRPTv1; rua=mailto:other@broken.test")],
    );
    // Valid, but the reports go elsewhere (with an unrelated TXT record beside it).
    dns.set(
        "_smtp._tls.legacy.test",
        Type::Txt,
        vec![
            Data::txt("v=TLSRPTv1;rua=mailto:tls@legacy.test,https://reports.legacy.test/v1"),
            Data::txt("something else"),
        ],
    );
    dns.set("_smtp._tls.syntax.test", Type::Txt, vec![Data::txt("v=TLSRPTv1; rua=ftp://reports.syntax.test")]);
    let (store, _dir) = store().await;
    let address = postfach_types::EmailAddress::parse(TLS_REPORTS).expect("address");
    let reporting = Platform { tls_reports: Some(address), ..platform() };
    let checker = Checker::new(reporting, Some(dns.addr())).expect("checker");

    let rr = checks::published_records(&checker, &store, Scope::Platform, &dom("good.test")).await.expect("records");
    let tls: Vec<_> = rr.iter().filter(|r| r.purpose == Purpose::TlsRpt).collect();
    assert_eq!(tls.len(), 1, "{rr:?}");
    assert_eq!(
        (tls[0].name.as_str(), tls[0].rtype, tls[0].value.as_str()),
        ("_smtp._tls.good.test", RecordType::Txt, ours.as_str())
    );
    assert_eq!(tls[0].zone_line(), format!("_smtp._tls.good.test. 3600 IN TXT \"{ours}\""));

    let verdict = |domain: &'static str| {
        let (checker, store) = (&checker, &store);
        async move {
            let d = store.domain(Scope::Platform, &dom(domain)).await.expect("domain");
            let keys = store.dkim_keys(Scope::Platform, &d.name).await.expect("keys");
            let report = checks::run(checker, &d, &keys).await;
            let found: Vec<_> = report.verdicts.iter().filter(|v| v.check == Check::TlsRpt).cloned().collect();
            assert_eq!(found.len(), 1, "{report:?}");
            assert_ne!(found[0].message.de, found[0].message.en);
            (found[0].code.clone(), found[0].level, found[0].message.en.clone())
        }
    };
    let (code, level, _) = verdict("good.test").await;
    assert_eq!((code.as_str(), level), ("tlsrpt.ok", Level::Ok));
    let (code, level, text) = verdict("broken.test").await;
    assert_eq!((code.as_str(), level), ("tlsrpt.multiple", Level::Error));
    assert!(text.contains(&ours), "says what to keep: {text}");
    let (code, level, _) = verdict("legacy.test").await;
    assert_eq!((code.as_str(), level), ("tlsrpt.elsewhere", Level::Warning));
    let (code, level, _) = verdict("syntax.test").await;
    assert_eq!((code.as_str(), level), ("tlsrpt.invalid", Level::Error));
    let (code, level, text) = verdict("lookups.test").await;
    assert_eq!((code.as_str(), level), ("tlsrpt.missing", Level::Warning));
    assert!(text.contains("_smtp._tls.lookups.test") && text.contains(&ours), "{text}");

    // Without a reporting address (hostname localhost) there is no record.
    let none = Checker::new(platform(), Some(dns.addr())).expect("checker");
    let rr = checks::published_records(&none, &store, Scope::Platform, &dom("good.test")).await.expect("records");
    assert!(rr.iter().all(|r| r.purpose != Purpose::TlsRpt));
}

#[test]
fn tls_rpt_records_are_read_as_rfc_8460_says() {
    use checks::{TlsRptRecord, parse_tls_rpt};
    let valid =
        |mailto: &[&str], https| TlsRptRecord::Valid { mailto: mailto.iter().map(|s| s.to_string()).collect(), https };
    assert_eq!(parse_tls_rpt("v=TLSRPTv1; rua=mailto:A@Example.org"), valid(&["a@example.org"], false));
    assert_eq!(
        parse_tls_rpt("v=TLSRPTv1;rua=mailto:a@example.org,https://r.example.org/x;"),
        valid(&["a@example.org"], true)
    );
    for broken in [
        "v=TLSRPTv2; rua=mailto:a@example.org",
        "rua=mailto:a@example.org; v=TLSRPTv1",
        "v=TLSRPTv1",
        "v=TLSRPTv1; rua=",
        "v=TLSRPTv1; rua=mailto:not-an-address",
        "v=TLSRPTv1; rua=http://r.example.org",
        "v=TLSRPTv1; rua=mailto:a@example.org; rua=mailto:b@example.org",
    ] {
        assert!(matches!(parse_tls_rpt(broken), TlsRptRecord::Invalid(_)), "{broken}");
    }
}
