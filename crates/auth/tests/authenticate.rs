//! The authentication path against a real (SQLite) directory: every refusal reason, the
//! login log entry each attempt leaves, throttling and the exposed-password mark.

use std::time::Duration;

use postfach_auth::accounts::{change_mailbox_password, create_customer, create_mailbox};
use postfach_auth::{Attempt, AuthError, AuthSettings, Authenticator, Connection, PasswordHasher, Principal};
use postfach_policy::{Refusal, TlsRequiredBy};
use postfach_store::logins::{LoginFilter, LoginRecord};
use postfach_store::mailboxes::{MailboxSettings, SettingsChange};
use postfach_store::{Scope, Store};
use postfach_types::{
    AccessMode, CustomerName, DomainName, EmailAddress, LoginResult, Mechanism, Role, Secret, Service, TlsInfo,
};

const PASSWORD: &str = "violet mango tractor whisper";

struct World {
    store: Store,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&format!("sqlite://{}/db.sqlite", dir.path().display())).await.expect("store");
    let hasher = PasswordHasher::new(2);
    let acme = create_customer(&store, &hasher, &name("acme"), &secret("acme panel passphrase 42"), Role::Customer)
        .await
        .expect("customer");
    store.add_domain(acme.id, &DomainName::parse("acme.example").expect("domain"), true).await.expect("domain");
    for (local, access, submission, tls_required) in [
        ("max", AccessMode::Imap, true, true),
        ("pop", AccessMode::Pop3, true, true),
        ("parked", AccessMode::None, false, true),
        ("legacy", AccessMode::Imap, true, false),
    ] {
        let settings = MailboxSettings { access, submission, tls_required };
        create_mailbox(
            &store,
            &hasher,
            Scope::Platform,
            &addr(&format!("{local}@acme.example")),
            &secret(PASSWORD),
            settings,
        )
        .await
        .expect("mailbox");
    }
    World { store, _dir: dir }
}

async fn authenticator(world: &World, allow_plaintext_auth: bool) -> Authenticator {
    let settings = AuthSettings { allow_plaintext_auth, ..AuthSettings::default() };
    Authenticator::new(world.store.clone(), settings, PasswordHasher::new(2)).await.expect("authenticator")
}

fn addr(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("address")
}
fn name(s: &str) -> CustomerName {
    CustomerName::parse(s).expect("name")
}
fn secret(s: &str) -> Secret<String> {
    Secret::new(s.to_string())
}

fn tls() -> Connection {
    Connection {
        remote_ip: "192.0.2.10".parse().expect("ip"),
        tls: Some(TlsInfo { version: "TLSv1.3".into(), cipher: "TLS13_AES_128_GCM_SHA256".into() }),
    }
}

fn plain() -> Connection {
    Connection { remote_ip: "192.0.2.20".parse().expect("ip"), tls: None }
}

async fn login(
    auth: &Authenticator,
    service: Service,
    login: &str,
    password: &str,
    connection: &Connection,
) -> Result<Principal, AuthError> {
    let secret = secret(password);
    auth.authenticate(Attempt { service, mechanism: Mechanism::Plain, login, secret: &secret, connection }).await
}

fn refusal(result: Result<Principal, AuthError>) -> Refusal {
    match result {
        Err(AuthError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn last_log(store: &Store) -> LoginRecord {
    store.logins(Scope::Platform, LoginFilter { limit: 1, ..LoginFilter::default() }).await.expect("log").remove(0)
}

async fn exposed(store: &Store, address: &str) -> bool {
    store.mailbox(Scope::Platform, &addr(address)).await.expect("mailbox").password_exposed
}

#[tokio::test]
async fn a_correct_login_over_tls_is_let_in_and_logged() {
    let w = world().await;
    let auth = authenticator(&w, false).await;
    let principal = login(&auth, Service::Imap, "Max@ACME.example", PASSWORD, &tls()).await.expect("login");
    let Principal::Mailbox { address, .. } = principal else { panic!("expected a mailbox") };
    assert_eq!(address, addr("max@acme.example"));
    let entry = last_log(&w.store).await;
    assert_eq!(entry.result, LoginResult::Ok);
    assert_eq!(entry.service, Service::Imap);
    // The log records the canonical login (the key the throttle and the lookup use too).
    assert_eq!(entry.login, "max@acme.example");
    assert_eq!(entry.tls.map(|t| t.version), Some("TLSv1.3".into()));
    assert!(entry.mailbox_id.is_some() && entry.customer_id.is_some());
    assert!(!exposed(&w.store, "max@acme.example").await);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let w = world().await;
    let auth = authenticator(&w, false).await;
    assert_eq!(
        refusal(login(&auth, Service::Imap, "max@acme.example", "wrong", &tls()).await),
        Refusal::BadCredentials
    );
    let entry = last_log(&w.store).await;
    assert_eq!(entry.result, LoginResult::BadCredentials);
    assert!(entry.mailbox_id.is_some(), "the customer sees failed attempts on its mailbox");

    assert_eq!(
        refusal(login(&auth, Service::Imap, "nobody@acme.example", PASSWORD, &tls()).await),
        Refusal::BadCredentials
    );
    let entry = last_log(&w.store).await;
    assert_eq!(
        (entry.result, entry.mailbox_id, entry.login.as_str()),
        (LoginResult::BadCredentials, None, "nobody@acme.example")
    );
    // A customer's panel name is not a protocol login.
    assert_eq!(
        refusal(login(&auth, Service::Imap, "acme", "acme panel passphrase 42", &tls()).await),
        Refusal::BadCredentials
    );
}

#[tokio::test]
async fn the_access_mode_and_submission_switch_decide_the_service() {
    let w = world().await;
    let auth = authenticator(&w, false).await;
    let cases = [
        (Service::Imap, "pop@acme.example", Err(Refusal::ServiceNotAllowed)),
        (Service::Pop3, "pop@acme.example", Ok(())),
        (Service::Pop3, "max@acme.example", Err(Refusal::ServiceNotAllowed)),
        (Service::Imap, "parked@acme.example", Err(Refusal::ServiceNotAllowed)),
        (Service::Pop3, "parked@acme.example", Err(Refusal::ServiceNotAllowed)),
        // Sending off: the login succeeds; MAIL FROM is refused (Principal::may_send).
        (Service::Submission, "parked@acme.example", Ok(())),
        (Service::Submission, "pop@acme.example", Ok(())),
        (Service::Panel, "parked@acme.example", Ok(())),
    ];
    for (service, user, expected) in cases {
        let got = login(&auth, service, user, PASSWORD, &tls()).await.map(|_| ()).map_err(|e| refusal(Err(e)));
        assert_eq!(got, expected, "{service} {user}");
        let entry = last_log(&w.store).await;
        let logged = if expected.is_ok() { LoginResult::Ok } else { LoginResult::ServiceDisabled };
        assert_eq!((entry.service, entry.result), (service, logged), "{service} {user}");
    }
    // Switching the mode takes effect at the next login.
    w.store
        .set_mailbox_settings(
            Scope::Platform,
            &addr("pop@acme.example"),
            SettingsChange { access: Some(AccessMode::Imap), ..SettingsChange::default() },
        )
        .await
        .expect("switch");
    login(&auth, Service::Imap, "pop@acme.example", PASSWORD, &tls()).await.expect("now IMAP works");
}

#[tokio::test]
async fn plaintext_is_refused_operator_wide_and_a_correct_password_is_marked_exposed() {
    let w = world().await;
    let auth = authenticator(&w, false).await;
    assert!(!auth.plaintext_auth_allowed());
    // Wrong password over plaintext: the same answer, nothing exposed.
    assert_eq!(
        refusal(login(&auth, Service::Imap, "legacy@acme.example", "wrong", &plain()).await),
        Refusal::TlsRequired { by: TlsRequiredBy::Operator }
    );
    assert!(!exposed(&w.store, "legacy@acme.example").await);
    // Right password over plaintext: refused all the same, and now known to be exposed.
    assert_eq!(
        refusal(login(&auth, Service::Imap, "legacy@acme.example", PASSWORD, &plain()).await),
        Refusal::TlsRequired { by: TlsRequiredBy::Operator }
    );
    assert!(exposed(&w.store, "legacy@acme.example").await);
    let entry = last_log(&w.store).await;
    assert_eq!((entry.result, entry.tls), (LoginResult::TlsRequired, None));
    // Unknown users over plaintext get the same answer too.
    assert_eq!(
        refusal(login(&auth, Service::Pop3, "ghost@acme.example", PASSWORD, &plain()).await),
        Refusal::TlsRequired { by: TlsRequiredBy::Operator }
    );
    // A new password clears the mark.
    change_mailbox_password(
        &w.store,
        auth.hasher(),
        Scope::Platform,
        &addr("legacy@acme.example"),
        &secret("another long passphrase here"),
    )
    .await
    .expect("change");
    assert!(!exposed(&w.store, "legacy@acme.example").await);
}

#[tokio::test]
async fn when_the_operator_allows_plaintext_the_mailbox_switch_decides() {
    let w = world().await;
    let auth = authenticator(&w, true).await;
    assert_eq!(
        refusal(login(&auth, Service::Imap, "max@acme.example", PASSWORD, &plain()).await),
        Refusal::TlsRequired { by: TlsRequiredBy::Mailbox }
    );
    assert!(exposed(&w.store, "max@acme.example").await, "the password crossed the network all the same");
    login(&auth, Service::Imap, "legacy@acme.example", PASSWORD, &plain()).await.expect("legacy mailbox may");
    let entry = last_log(&w.store).await;
    assert_eq!((entry.result, entry.tls), (LoginResult::Ok, None));
    assert!(exposed(&w.store, "legacy@acme.example").await);
}

#[tokio::test]
async fn a_disabled_customer_locks_its_mailboxes_out() {
    let w = world().await;
    let auth = authenticator(&w, false).await;
    w.store.set_customer_disabled(&name("acme"), true).await.expect("disable");
    assert_eq!(refusal(login(&auth, Service::Imap, "max@acme.example", PASSWORD, &tls()).await), Refusal::Disabled);
    assert_eq!(last_log(&w.store).await.result, LoginResult::AccountDisabled);
    assert_eq!(
        refusal(login(&auth, Service::Panel, "acme", "acme panel passphrase 42", &tls()).await),
        Refusal::Disabled
    );
    // The wrong password still says only "bad credentials".
    assert_eq!(
        refusal(login(&auth, Service::Imap, "max@acme.example", "wrong", &tls()).await),
        Refusal::BadCredentials
    );
}

/// Panel sessions are a credential too: the gate lets a live one in for its holder, and
/// refuses it once the customer is disabled (the store still finds it) or its mailbox is gone.
#[tokio::test]
async fn a_disabled_customers_panel_sessions_stop_working() {
    use postfach_auth::{Holder, SignedIn};
    use postfach_store::sessions::SessionLifetime;
    let w = world().await;
    let auth = authenticator(&w, false).await;
    let life = SessionLifetime { idle_secs: 600, max_secs: 3600 };
    let acme = w.store.customer(&name("acme")).await.expect("customer").id;
    let max = w.store.mailbox(Scope::Platform, &addr("max@acme.example")).await.expect("mailbox");
    let pop = w.store.mailbox(Scope::Platform, &addr("pop@acme.example")).await.expect("mailbox");
    w.store.create_panel_session("own", acme, None, "c", false, life).await.expect("session");
    w.store.create_panel_session("max", acme, Some(max.id), "c", false, life).await.expect("session");
    w.store.create_panel_session("pop", acme, Some(pop.id), "c", false, life).await.expect("session");
    let holder = |s: Option<SignedIn>| match s.map(|s| s.holder) {
        Some(Holder::Account(account)) => Some(account.name.to_string()),
        Some(Holder::Mailbox(mailbox)) => Some(mailbox.address.to_string()),
        None => None,
    };
    assert_eq!(holder(auth.panel_session("own", life).await.expect("lookup")).as_deref(), Some("acme"));
    assert_eq!(holder(auth.panel_session("max", life).await.expect("lookup")).as_deref(), Some("max@acme.example"));
    assert_eq!(holder(auth.panel_session("nobody", life).await.expect("lookup")), None);
    w.store.remove_mailbox(Scope::Platform, &addr("pop@acme.example")).await.expect("remove");
    assert_eq!(holder(auth.panel_session("pop", life).await.expect("lookup")), None, "its mailbox is gone");
    w.store.set_customer_disabled(&name("acme"), true).await.expect("disable");
    for token in ["own", "max"] {
        assert!(w.store.panel_session(token, life).await.expect("lookup").is_some());
        assert_eq!(holder(auth.panel_session(token, life).await.expect("lookup")), None, "{token}");
    }
}

#[tokio::test]
async fn panel_accounts_sign_in_by_name() {
    let w = world().await;
    let auth = authenticator(&w, false).await;
    let principal = login(&auth, Service::Panel, "ACME", "acme panel passphrase 42", &tls()).await.expect("panel");
    assert!(matches!(principal, Principal::Account { role: Role::Customer, .. }), "{principal:?}");
    assert_eq!(last_log(&w.store).await.service, Service::Panel);
}

#[tokio::test]
async fn failures_per_login_throttle_even_the_right_password() {
    let w = world().await;
    let auth = authenticator(&w, false).await;
    for i in 0..5 {
        let conn = Connection { remote_ip: format!("198.51.100.{i}").parse().expect("ip"), ..tls() };
        assert_eq!(
            refusal(login(&auth, Service::Imap, "max@acme.example", "guess", &conn).await),
            Refusal::BadCredentials
        );
    }
    assert_eq!(refusal(login(&auth, Service::Imap, "max@acme.example", PASSWORD, &tls()).await), Refusal::Throttled);
    let entry = last_log(&w.store).await;
    assert_eq!(entry.result, LoginResult::Throttled);
    assert!(entry.mailbox_id.is_some());
    // Another mailbox is not affected.
    login(&auth, Service::Pop3, "pop@acme.example", PASSWORD, &tls()).await.expect("other login works");
}

#[tokio::test]
async fn failures_per_address_throttle_every_login_from_it() {
    let w = world().await;
    let auth = authenticator(&w, false).await;
    for i in 0..10 {
        let user = format!("guess{i}@acme.example");
        assert_eq!(refusal(login(&auth, Service::Imap, &user, "x", &tls()).await), Refusal::BadCredentials);
    }
    assert_eq!(refusal(login(&auth, Service::Imap, "max@acme.example", PASSWORD, &tls()).await), Refusal::Throttled);
    let elsewhere = Connection { remote_ip: "203.0.113.5".parse().expect("ip"), ..tls() };
    login(&auth, Service::Imap, "max@acme.example", PASSWORD, &elsewhere).await.expect("another address works");
}

#[tokio::test]
async fn throttling_ends_after_the_window() {
    let w = world().await;
    let settings = AuthSettings {
        max_failures_per_login: 2,
        failure_window: Duration::from_millis(300),
        ..AuthSettings::default()
    };
    let auth = Authenticator::new(w.store.clone(), settings, PasswordHasher::new(2)).await.expect("auth");
    for _ in 0..2 {
        refusal(login(&auth, Service::Imap, "max@acme.example", "guess", &tls()).await);
    }
    assert_eq!(refusal(login(&auth, Service::Imap, "max@acme.example", PASSWORD, &tls()).await), Refusal::Throttled);
    tokio::time::sleep(Duration::from_millis(350)).await;
    login(&auth, Service::Imap, "max@acme.example", PASSWORD, &tls()).await.expect("window passed");
}

#[tokio::test]
async fn a_remembered_password_stops_working_when_it_is_changed() {
    let w = world().await;
    let auth = authenticator(&w, false).await;
    login(&auth, Service::Imap, "max@acme.example", PASSWORD, &tls()).await.expect("first login");
    login(&auth, Service::Imap, "max@acme.example", PASSWORD, &tls()).await.expect("second login (remembered)");
    change_mailbox_password(
        &w.store,
        auth.hasher(),
        Scope::Platform,
        &addr("max@acme.example"),
        &secret("brand new passphrase here"),
    )
    .await
    .expect("change");
    assert_eq!(
        refusal(login(&auth, Service::Imap, "max@acme.example", PASSWORD, &tls()).await),
        Refusal::BadCredentials
    );
    login(&auth, Service::Imap, "max@acme.example", "brand new passphrase here", &tls()).await.expect("new password");
    // Switching the service off applies to remembered passwords too.
    w.store
        .set_mailbox_settings(
            Scope::Platform,
            &addr("max@acme.example"),
            SettingsChange { access: Some(AccessMode::Pop3), ..SettingsChange::default() },
        )
        .await
        .expect("switch");
    assert_eq!(
        refusal(login(&auth, Service::Imap, "max@acme.example", "brand new passphrase here", &tls()).await),
        Refusal::ServiceNotAllowed
    );
}

#[tokio::test]
async fn a_throttled_login_still_marks_a_plaintext_password_exposed_within_a_budget() {
    let w = world().await;
    let settings = AuthSettings { max_failures_per_login: 2, ..AuthSettings::default() };
    let auth = Authenticator::new(w.store.clone(), settings, PasswordHasher::new(2)).await.expect("auth");
    let user = "legacy@acme.example";
    for _ in 0..2 {
        assert_eq!(refusal(login(&auth, Service::Imap, user, "guess", &tls()).await), Refusal::BadCredentials);
    }
    // Throttled: the right password in plaintext is refused, and marked all the same
    // (exposure check 1 of 2).
    assert_eq!(refusal(login(&auth, Service::Imap, user, PASSWORD, &plain()).await), Refusal::Throttled);
    assert!(exposed(&w.store, user).await);
    let new = "another long passphrase here";
    change_mailbox_password(&w.store, auth.hasher(), Scope::Platform, &addr(user), &secret(new)).await.expect("change");
    assert!(!exposed(&w.store, user).await, "a new password clears the mark");
    // Check 2 of 2: a wrong password marks nothing.
    assert_eq!(refusal(login(&auth, Service::Imap, user, "guess again", &plain()).await), Refusal::Throttled);
    assert!(!exposed(&w.store, user).await);
    // The budget is used up: even the right password is not verified any more.
    assert_eq!(refusal(login(&auth, Service::Imap, user, new, &plain()).await), Refusal::Throttled);
    assert!(!exposed(&w.store, user).await, "no verification beyond the budget");
    assert_eq!(last_log(&w.store).await.result, LoginResult::Throttled);
}

#[tokio::test]
async fn input_that_is_no_login_name_counts_against_the_address_only_and_is_logged_bounded() {
    let w = world().await;
    let auth = authenticator(&w, false).await;
    let junk = format!("No Such\u{7}Name {}", "x".repeat(5000));
    // From many addresses: no key of its own, so the name is never throttled.
    for i in 0..6 {
        let conn = Connection { remote_ip: format!("198.51.100.{i}").parse().expect("ip"), ..tls() };
        assert_eq!(refusal(login(&auth, Service::Imap, &junk, "guess", &conn).await), Refusal::BadCredentials, "{i}");
    }
    let entry = last_log(&w.store).await;
    assert_eq!(entry.login.chars().count(), 100, "bounded");
    assert!(entry.login.starts_with("No Such\u{fffd}Name xxx"), "{}", entry.login);
    assert_eq!((entry.mailbox_id, entry.customer_id), (None, None));
    // From one address, the failures add up.
    for _ in 0..10 {
        assert_eq!(refusal(login(&auth, Service::Imap, &junk, "guess", &tls()).await), Refusal::BadCredentials);
    }
    assert_eq!(refusal(login(&auth, Service::Imap, &junk, "guess", &tls()).await), Refusal::Throttled);
    assert_eq!(refusal(login(&auth, Service::Imap, "max@acme.example", PASSWORD, &tls()).await), Refusal::Throttled);
}
