//! Warning mails end to end, on SQLite and on PostgreSQL: each kind started by a real
//! client (Python's imaplib, poplib and smtplib on the plaintext and TLS listeners) or by a
//! DNS record removed from the test DNS server and a re-check, and read back over IMAPS
//! with imaplib: subject and text in English and German, the HTML part, the DKIM
//! signature of the domain's key, the copy for the customer's contact through the queue;
//! one mail per kind and day with the rest summarised in the next; a switched-off kind
//! sends nothing.
//!
//! The warning task handles events in the order they come, so a mail that arrives after
//! an event proves that the event was handled: the tests wait for such a mail instead of
//! waiting for a while.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::clients::run;
use common::{PASSWORD, TestServer, postgres_database};
use postfach_admin::{Admin, Who};
use postfach_server::config::Config;
use postfach_store::Scope;
use postfach_store::mailboxes::MailboxSettings;
use postfach_store::warnings::WarningKind;
use postfach_testdns::{Data, Rr, TestDns, Type};
use postfach_types::{DomainName, EmailAddress, Language, Service, UnixTime};

const MAX: &str = "max@acme.example";
const ERIKA: &str = "erika@acme.example";
const LENA: &str = "lena@acme.example";
const CONTACT: &str = "kontakt@acme.example";

fn zones() -> TestDns {
    TestDns::start([Rr::new("acme.example", Data::Mx(10, "mail.postfach.test".into()))])
}

fn adjust(dns: &TestDns) -> impl FnOnce(&mut Config) {
    let addr = dns.addr();
    move |c: &mut Config| {
        c.dns.resolver = Some(addr);
        c.security.allow_plaintext_auth = true;
        c.security.warning_mails = true;
        c.security.max_failures_per_login = 3;
        c.security.max_failures_per_ip = 1000;
        c.outbound.rate_limit_per_hour = 1;
    }
}

/// One message as imaplib read it.
#[derive(Debug, Clone)]
struct Mail {
    subject: String,
    dkim: bool,
    auto_submitted: bool,
    text: String,
    html: String,
}

/// Runs a Python script with `args`; its standard output.
async fn python(script: &str, args: &[String]) -> String {
    let mut command = Command::new("python3");
    command.arg("-c").arg(script).args(args);
    let output = run(&mut command).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every message in the INBOX of `address`, read over IMAPS with imaplib.
async fn inbox(t: &TestServer, address: &str) -> Vec<Mail> {
    let script = r#"
import imaplib, ssl, sys, json, email
from email import policy
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
m = imaplib.IMAP4_SSL("127.0.0.1", int(sys.argv[1]), ssl_context=ctx)
m.login(sys.argv[3], sys.argv[4])
m.select("INBOX", readonly=True)
_, data = m.search(None, "ALL")
out = []
for num in data[0].split():
    _, parts = m.fetch(num, "(BODY.PEEK[])")
    msg = email.message_from_bytes(parts[0][1], policy=policy.default)
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    out.append({
        "subject": str(msg["Subject"] or ""),
        "dkim": msg["DKIM-Signature"] is not None,
        "auto": str(msg["Auto-Submitted"] or ""),
        "text": text.get_content() if text is not None else "",
        "html": html.get_content() if html is not None and html.get_content_type() == "text/html" else "",
    })
m.logout()
print(json.dumps(out))
"#;
    let args = [t.port("imaps").to_string(), t.cert().display().to_string(), address.to_string(), PASSWORD.to_string()];
    let out = python(script, &args).await;
    let mails: Vec<serde_json::Value> = serde_json::from_str(out.trim()).expect("json");
    mails
        .iter()
        .map(|m| Mail {
            subject: m["subject"].as_str().unwrap_or_default().to_string(),
            dkim: m["dkim"].as_bool().unwrap_or(false),
            auto_submitted: m["auto"].as_str() == Some("auto-generated"),
            text: m["text"].as_str().unwrap_or_default().to_string(),
            html: m["html"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

/// The mails of `address` whose subject is `subject`.
async fn with_subject(t: &TestServer, address: &str, subject: &str) -> Vec<Mail> {
    inbox(t, address).await.into_iter().filter(|m| m.subject == subject).collect()
}

/// Waits (bounded) until `address` has `count` mails with `subject`; returns the newest.
async fn wait_for(t: &TestServer, address: &str, subject: &str, count: usize) -> Mail {
    for _ in 0..150 {
        let found = with_subject(t, address, subject).await;
        if found.len() >= count {
            assert_eq!(found.len(), count, "exactly {count} of {subject:?}");
            return found.last().cloned().expect("a mail");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let subjects: Vec<String> = inbox(t, address).await.into_iter().map(|m| m.subject).collect();
    panic!("no {count}. mail {subject:?} for {address}; the INBOX has {subjects:?}");
}

/// A login with imaplib on the plaintext IMAP listener; whether it got in.
async fn imap_plaintext_login(t: &TestServer, address: &str, password: &str) -> bool {
    let script = r#"
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
try:
    m.login(sys.argv[2], sys.argv[3])
    print("OK")
    m.logout()
except imaplib.IMAP4.error as e:
    print("NO", e)
"#;
    let out = python(script, &[t.port("imap").to_string(), address.into(), password.into()]).await;
    out.starts_with("OK")
}

/// A login with imaplib on the IMAPS listener; whether it got in.
async fn imaps_login(t: &TestServer, address: &str, password: &str) -> String {
    let script = r#"
import imaplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
m = imaplib.IMAP4_SSL("127.0.0.1", int(sys.argv[1]), ssl_context=ctx)
try:
    m.login(sys.argv[3], sys.argv[4])
    print("OK")
    m.logout()
except imaplib.IMAP4.error as e:
    print("NO", e)
"#;
    let args = [t.port("imaps").to_string(), t.cert().display().to_string(), address.into(), password.into()];
    python(script, &args).await
}

async fn scenario(t: TestServer, dns: &TestDns) {
    let store = t.server.store();
    let customer = t.customer().await;
    let acme = DomainName::parse("acme.example").expect("domain");
    postfach_dns::dkim::ensure_key(store, Scope::Platform, &acme).await.expect("dkim key");
    let plain = MailboxSettings { tls_required: false, ..Default::default() };
    let max = t.mailbox(MAX, plain).await;
    t.mailbox(ERIKA, plain).await;
    let lena = t.mailbox(LENA, plain).await;
    t.mailbox(CONTACT, MailboxSettings::default()).await;
    let address = |a: &str| EmailAddress::parse(a).expect("address");
    store.set_mailbox_language(Scope::Platform, &address(ERIKA), Language::De).await.expect("language");
    store.set_customer_contact(customer, Some(&address(CONTACT))).await.expect("contact");
    let panel = format!("https://mail.postfach.test:{}/", t.port("https"));

    // A plaintext IMAP login with the right password: unencrypted, and the password exposed.
    assert!(imap_plaintext_login(&t, MAX, PASSWORD).await);
    let mail = wait_for(&t, MAX, "Unencrypted login attempt on max@acme.example", 1).await;
    assert!(mail.dkim && mail.auto_submitted, "{mail:?}");
    assert!(mail.text.contains("over IMAP without encryption (no TLS)"), "{}", mail.text);
    assert!(mail.text.contains("127.0.0.1") && mail.text.contains("may therefore be known to others"), "{}", mail.text);
    let link = format!("{panel}mailboxes/{}", max.id.get());
    assert!(mail.text.contains(&format!("Change the password in the panel: {link}")), "{}", mail.text);
    assert!(mail.html.contains(&format!("<a href=\"{link}\">")), "{}", mail.html);
    assert!(mail.html.contains("<p>On ") && !mail.html.contains("<script"), "{}", mail.html);
    let mail = wait_for(&t, MAX, "The password of max@acme.example was sent unprotected", 1).await;
    assert!(mail.text.contains("sent the correct password of max@acme.example over IMAP"), "{}", mail.text);
    assert!(mail.dkim && !mail.html.is_empty(), "{mail:?}");

    // POP3 on the IMAP mailbox (plaintext again): the wrong protocol is told; the second
    // unencrypted attempt of the day is only counted.
    let script = r#"
import poplib, sys
p = poplib.POP3("127.0.0.1", int(sys.argv[1]))
p.user(sys.argv[2])
try:
    p.pass_(sys.argv[3])
    print("OK")
except poplib.error_proto as e:
    print("ERR", e)
"#;
    let out = python(script, &[t.port("pop3").to_string(), MAX.into(), PASSWORD.into()]).await;
    assert!(out.starts_with("ERR"), "{out}");
    let mail = wait_for(&t, MAX, "A device uses a protocol max@acme.example does not allow", 1).await;
    assert!(mail.text.contains("tried to use max@acme.example over POP3"), "{}", mail.text);
    assert!(mail.text.contains("set up for IMAP"), "{}", mail.text);
    assert_eq!(with_subject(&t, MAX, "Unencrypted login attempt on max@acme.example").await.len(), 1);

    // A day later (the rate limit's state moved back a day), the next attempt is told,
    // with the count of the one that was not.
    let pool = sqlx::AnyPool::connect(&t.config.database).await.expect("pool");
    sqlx::query("UPDATE warning_state SET last_sent = last_sent - 86400").execute(&pool).await.expect("backdate");
    assert!(imap_plaintext_login(&t, MAX, PASSWORD).await);
    let mail = wait_for(&t, MAX, "Unencrypted login attempt on max@acme.example", 2).await;
    assert!(mail.text.contains("And 1 more such events since"), "{}", mail.text);

    // Erika (German) sends over the limit with smtplib: the second message is refused, she
    // is told, and the customer's contact gets a copy through the queue.
    let script = r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
s = smtplib.SMTP_SSL("127.0.0.1", int(sys.argv[1]), context=ctx)
s.login(sys.argv[3], sys.argv[4])
for n in (1, 2):
    msg = "From: <%s>\r\nTo: <%s>\r\nSubject: number %d\r\n\r\nHello\r\n" % (sys.argv[3], sys.argv[5], n)
    try:
        s.sendmail(sys.argv[3], [sys.argv[5]], msg)
        print("SENT")
    except smtplib.SMTPException as e:
        print("REFUSED", e)
s.quit()
"#;
    let args =
        [t.port("submissions").to_string(), t.cert().display().to_string(), ERIKA.into(), PASSWORD.into(), LENA.into()];
    let out = python(script, &args).await;
    assert!(out.starts_with("SENT\nREFUSED"), "{out}");
    let subject = "erika@acme.example hat sein Sendelimit erreicht";
    let mail = wait_for(&t, ERIKA, subject, 1).await;
    assert!(mail.text.contains("Absender: erika@acme.example"), "{}", mail.text);
    assert!(mail.text.contains("Gerät an der Adresse: 127.0.0.1"), "{}", mail.text);
    assert!(mail.text.contains("Spam zu versenden"), "{}", mail.text);
    assert!(mail.html.contains("<li>Absender: erika@acme.example</li>") && mail.dkim, "{mail:?}");
    let copy = wait_for(&t, CONTACT, subject, 1).await;
    assert_eq!(copy.text, mail.text);

    // Wrong passwords until the throttle locks Erika out: told in German (read from the
    // contact's copy: Erika cannot log in now).
    for _ in 0..3 {
        assert!(imaps_login(&t, ERIKA, "not the password").await.starts_with("NO"));
    }
    assert!(imaps_login(&t, ERIKA, PASSWORD).await.starts_with("NO"), "locked");
    let mail =
        wait_for(&t, CONTACT, "Anmeldungen bei erika@acme.example gesperrt: zu viele falsche Passwörter", 1).await;
    assert!(mail.text.contains("zu viele falsche Passwörter versucht wurden"), "{}", mail.text);
    assert!(mail.html.contains("<html lang=\"de\">"), "{}", mail.html);

    // Lena switched unencrypted-login warnings off: a plaintext login tells only the
    // exposed password (the two events are handed over in this order).
    store.set_mailbox_warning(Scope::Platform, lena.id, WarningKind::Unencrypted, false).await.expect("switch");
    assert!(imap_plaintext_login(&t, LENA, PASSWORD).await);
    wait_for(&t, LENA, "The password of lena@acme.example was sent unprotected", 1).await;
    assert!(with_subject(&t, LENA, "Unencrypted login attempt on lena@acme.example").await.is_empty());

    // The domain's MX record disappears; the re-check tells the customer's contact.
    let checker = postfach_server::dns::checker(&t.config).expect("checker");
    postfach_dns::checks::refresh(&checker, store, Scope::Platform, &acme).await.expect("first check");
    dns.set("acme.example", Type::Mx, vec![]);
    postfach_dns::checks::refresh(&checker, store, Scope::Platform, &acme).await.expect("re-check");
    let mail = wait_for(&t, CONTACT, "The DNS records of acme.example broke", 1).await;
    assert!(mail.text.contains("acme.example has no MX record"), "{}", mail.text);
    assert!(mail.text.contains("/domains/"), "{}", mail.text);
    assert!(mail.dkim, "{mail:?}");

    // A second domain, verified through its ownership record, loses that record: it keeps
    // working, and the customer's contact is told what to publish again.
    let beta = DomainName::parse("beta.example").expect("domain");
    store.add_domain(customer, &beta, false).await.expect("add beta");
    let (name, value) = store.domain(Scope::Platform, &beta).await.expect("beta").ownership_record();
    dns.set(&name, Type::Txt, vec![Data::txt(&value)]);
    let first = postfach_dns::checks::refresh(&checker, store, Scope::Platform, &beta).await.expect("verify");
    assert!(first.verified_now);
    dns.set(&name, Type::Txt, vec![]);
    postfach_dns::checks::refresh(&checker, store, Scope::Platform, &beta).await.expect("re-check");
    assert!(store.domain(Scope::Platform, &beta).await.expect("beta").verified);
    let mail = wait_for(&t, CONTACT, "The DNS records of beta.example broke", 1).await;
    assert!(mail.text.contains("The ownership record of beta.example is no longer published"), "{}", mail.text);
    assert!(
        mail.text.contains(&format!("publish a TXT record at {name} with the value {value} again")),
        "{}",
        mail.text
    );
}

#[tokio::test]
async fn warnings_sqlite() {
    let dns = zones();
    scenario(TestServer::start_with(adjust(&dns)).await, &dns).await;
}

#[tokio::test]
async fn warnings_postgres() {
    let (dns, dir) = (zones(), tempfile::tempdir().expect("dir"));
    scenario(TestServer::start_node(&postgres_database().await, dir.path(), adjust(&dns)).await, &dns).await;
}

const TOM: &str = "tom@acme.example";

/// "A new device" and "unused app passwords": a real IMAPS login with a new app password
/// is told once; the next login from the same network is not (even a day later, when the
/// rate limit would let a mail through); an app password idle for 91 days is listed by the
/// leader's daily job, once.
async fn devices_scenario(t: TestServer) {
    let store = t.server.store();
    t.customer().await;
    let tom = t.mailbox(TOM, MailboxSettings { tls_required: false, ..Default::default() }).await;
    let admin = Admin::new(store.clone(), Arc::clone(t.server.authenticator()), None);
    let phone = admin.add_app_password(&Who::Operator, tom.id, "Phone", &[Service::Imap]).await.expect("app password");
    let link = format!("https://mail.postfach.test:{}/mailboxes/{}", t.port("https"), tom.id.get());

    assert!(imaps_login(&t, TOM, phone.password.expose()).await.starts_with("OK"));
    let subject = "New login to tom@acme.example from a new device";
    let mail = wait_for(&t, TOM, subject, 1).await;
    assert!(mail.text.contains("with the app password \"Phone\" over IMAP"), "{}", mail.text);
    assert!(mail.text.contains("Address: 127.0.0.1 (network 127.0.0.0/24)"), "{}", mail.text);
    assert!(mail.text.contains("Encryption: TLS"), "{}", mail.text);
    assert!(mail.text.contains(&format!("Revoke the app password in the panel: {link}")), "{}", mail.text);
    assert!(mail.html.contains(&format!("<a href=\"{link}\">")), "{mail:?}");

    // A day later for the rate limit, the phone logs in again from the same network: no
    // new-device mail. The plaintext login after it starts a mail that proves the task
    // got past the phone's login.
    let pool = sqlx::AnyPool::connect(&t.config.database).await.expect("pool");
    sqlx::query("UPDATE warning_state SET last_sent = last_sent - 86400").execute(&pool).await.expect("backdate");
    assert!(imaps_login(&t, TOM, phone.password.expose()).await.starts_with("OK"));
    assert!(imap_plaintext_login(&t, TOM, PASSWORD).await);
    wait_for(&t, TOM, "Unencrypted login attempt on tom@acme.example", 1).await;
    assert_eq!(with_subject(&t, TOM, subject).await.len(), 1, "the same network is no new device");
    // The task's memory aside, the login log says the same (what a restarted node asks).
    let (since, later) = (UnixTime(UnixTime::now().0 - 3600), UnixTime(UnixTime::now().0 + 1));
    let ip = |s: &str| s.parse().expect("ip");
    let seen = |credential: Option<&'static str>, service, client| {
        store.seen_before(tom.id, credential, service, client, since, later)
    };
    assert!(seen(Some("Phone"), Service::Imap, ip("127.0.0.200")).await.expect("lookup"));
    assert!(!seen(Some("Phone"), Service::Imap, ip("127.0.1.1")).await.expect("lookup"), "another /24");
    assert!(!seen(Some("Phone"), Service::Pop3, ip("127.0.0.1")).await.expect("lookup"), "another service");
    assert!(seen(None, Service::Imap, ip("127.0.0.1")).await.expect("lookup"), "the main password over IMAP");
    assert!(!seen(Some("Tablet"), Service::Imap, ip("127.0.0.1")).await.expect("lookup"), "another credential");

    // A client that names itself with IMAP `ID` after logging in with the main password is
    // a device of its own on the devices page.
    let script = r#"
import imaplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
imaplib.Commands["ID"] = ("AUTH", "SELECTED")
m = imaplib.IMAP4_SSL("127.0.0.1", int(sys.argv[1]), ssl_context=ctx)
m.login(sys.argv[3], sys.argv[4])
print(m._simple_command("ID", '("name" "Thunderbird" "version" "128.0")')[0])
m.logout()
"#;
    let args = [t.port("imaps").to_string(), t.cert().display().to_string(), TOM.into(), PASSWORD.into()];
    assert_eq!(python(script, &args).await.trim(), "OK");
    let devices = admin.devices(&Who::Operator, tom.id).await.expect("devices");
    let named: Vec<_> = devices.iter().filter(|d| d.client.as_deref() == Some("Thunderbird 128.0")).collect();
    assert_eq!(named.len(), 1, "{devices:?}");
    assert_eq!((named[0].credential.as_deref(), named[0].service, named[0].logins), (None, Service::Imap, 1));
    assert!(devices.iter().any(|d| d.credential.is_none() && d.client.is_none()), "the plaintext login sent no name");

    // An app password nobody used for 91 days: the daily job lists it (not the phone).
    admin.add_app_password(&Who::Operator, tom.id, "Old laptop", &[Service::Imap]).await.expect("app password");
    sqlx::query("UPDATE app_passwords SET created_at = created_at - 91 * 86400 WHERE name = 'Old laptop'")
        .execute(&pool)
        .await
        .expect("backdate");
    assert_eq!(store.tell_unused_app_passwords(UnixTime::now()).await.expect("job"), 1);
    let mail = wait_for(&t, TOM, "Unused app passwords on tom@acme.example", 1).await;
    assert!(mail.text.contains("\"Old laptop\", never used, made on"), "{}", mail.text);
    assert!(!mail.text.contains("Phone") && mail.text.contains("revoke it"), "{}", mail.text);
    assert!(mail.text.contains(&format!("Revoke app passwords in the panel: {link}")), "{}", mail.text);
    assert!(
        mail.html.contains("<li>&quot;Old laptop&quot;") || mail.html.contains("<li>\"Old laptop\""),
        "{}",
        mail.html
    );
    assert_eq!(store.tell_unused_app_passwords(UnixTime::now()).await.expect("job"), 0, "told once");
}

fn devices_config(c: &mut Config) {
    c.security.allow_plaintext_auth = true;
    c.security.warning_mails = true;
}

#[tokio::test]
async fn new_device_and_unused_app_passwords_sqlite() {
    devices_scenario(TestServer::start_with(devices_config).await).await;
}

#[tokio::test]
async fn new_device_and_unused_app_passwords_postgres() {
    let dir = tempfile::tempdir().expect("dir");
    devices_scenario(TestServer::start_node(&postgres_database().await, dir.path(), devices_config).await).await;
}
