//! Every operation checks its caller: a mailbox user manages nothing, a customer reaches
//! nothing of another customer's (it answers as if the object did not exist) and nothing
//! of the platform's, and the rules of the operations hold whoever calls.

use std::sync::Arc;

use postfach_admin::{Admin, AdminError, Conflict, CustomerChange, LoginQuery, Who};
use postfach_auth::{AuthSettings, Authenticator, PasswordHasher};
use postfach_store::mailboxes::{MailboxSettings, SettingsChange};
use postfach_store::{Scope, Store};
use postfach_types::{AliasId, CustomerName, DomainId, DomainName, EmailAddress, MailboxId, Role, Secret};

const STRONG: &str = "violet mango tractor whisper";

fn addr(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("address")
}

fn dom(s: &str) -> DomainName {
    DomainName::parse(s).expect("domain")
}

fn name(s: &str) -> CustomerName {
    CustomerName::parse(s).expect("name")
}

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    admin: Admin,
    acme: Who,
    root: Who,
    max: Who,
    globex_domain: DomainId,
    globex_mailbox: MailboxId,
    globex_alias: AliasId,
}

async fn world() -> World {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&format!("sqlite://{}/p.sqlite", dir.path().display())).await.expect("store");
    let auth = Authenticator::new(store.clone(), AuthSettings::default(), PasswordHasher::new(1)).await.expect("auth");
    let admin = Admin::new(store.clone(), Arc::new(auth), None);
    let op = &Who::Operator;
    let strong = Secret::new(STRONG.to_string());
    let mut accounts = Vec::new();
    for (n, role) in [("acme", Role::Customer), ("globex", Role::Customer), ("root", Role::Admin)] {
        accounts.push(Who::from_account(admin.create_customer(op, &name(n), &strong, role).await.expect("customer")));
    }
    admin.add_domain(op, &dom("acme.example"), Some(&name("acme")), true).await.expect("domain");
    let globex_domain = admin.add_domain(op, &dom("globex.example"), Some(&name("globex")), true).await.expect("d").id;
    let max = admin
        .create_mailbox(op, &addr("max@acme.example"), &strong, MailboxSettings::default())
        .await
        .expect("mailbox");
    let eva = admin
        .create_mailbox(op, &addr("eva@globex.example"), &strong, MailboxSettings::default())
        .await
        .expect("mailbox");
    let alias = admin.add_alias(op, &addr("info@globex.example"), &eva.address).await.expect("alias");
    let [acme, _, root] = <[Who; 3]>::try_from(accounts).expect("three");
    World {
        _dir: dir,
        store,
        admin,
        acme,
        root,
        max: Who::Mailbox { mailbox: max },
        globex_domain,
        globex_mailbox: eva.id,
        globex_alias: alias.id,
    }
}

fn refused_as<T: std::fmt::Debug>(result: Result<T, AdminError>, expected: fn(&AdminError) -> bool, what: &str) {
    match result {
        Err(e) if expected(&e) => {}
        other => panic!("{what}: {other:?}"),
    }
}

fn forbidden(e: &AdminError) -> bool {
    matches!(e, AdminError::Forbidden)
}

fn not_found(e: &AdminError) -> bool {
    matches!(e, AdminError::NotFound(_))
}

#[tokio::test]
async fn a_mailbox_user_manages_nothing() {
    let w = world().await;
    let (a, who) = (&w.admin, &w.max);
    let strong = Secret::new(STRONG.into());
    refused_as(a.domains(who).await, forbidden, "domains");
    refused_as(a.mailboxes(who, None).await, forbidden, "mailboxes");
    refused_as(a.aliases(who, None).await, forbidden, "aliases");
    refused_as(a.logins(who, LoginQuery::all(10)).await, forbidden, "logins");
    refused_as(a.customers(who).await, forbidden, "customers");
    refused_as(a.tokens(who).await, forbidden, "tokens");
    refused_as(a.create_token(who, "x").await, forbidden, "create token");
    refused_as(a.start_totp(who).await, forbidden, "totp");
    refused_as(
        a.create_mailbox(who, &addr("new@acme.example"), &strong, MailboxSettings::default()).await,
        forbidden,
        "create mailbox",
    );
    let own = match who {
        Who::Mailbox { mailbox } => mailbox.id,
        _ => unreachable!(),
    };
    refused_as(a.update_mailbox(who, own, SettingsChange::default()).await, forbidden, "own settings");
    refused_as(a.remove_mailbox(who, own).await, forbidden, "remove own mailbox");
    refused_as(a.add_domain(who, &dom("new.example"), None, false).await, forbidden, "add domain");
    // Their own mailbox they see, with its logins.
    assert_eq!(a.mailbox(who, own).await.expect("own").id, own);
    a.mailbox_logins(who, own, LoginQuery::all(10)).await.expect("own logins");
}

#[tokio::test]
async fn a_customer_reaches_nothing_of_another_customer() {
    let w = world().await;
    let (a, who) = (&w.admin, &w.acme);
    let strong = Secret::new(STRONG.into());
    refused_as(a.domain(who, w.globex_domain).await, not_found, "domain");
    refused_as(a.remove_domain(who, w.globex_domain, true).await, not_found, "remove domain");
    refused_as(a.mailbox(who, w.globex_mailbox).await, not_found, "mailbox");
    refused_as(a.update_mailbox(who, w.globex_mailbox, SettingsChange::default()).await, not_found, "settings");
    refused_as(a.remove_mailbox(who, w.globex_mailbox).await, not_found, "remove mailbox");
    refused_as(a.mailbox_logins(who, w.globex_mailbox, LoginQuery::all(5)).await, not_found, "logins");
    refused_as(a.alias(who, w.globex_alias).await, not_found, "alias");
    refused_as(a.remove_alias(who, w.globex_alias).await, not_found, "remove alias");
    refused_as(
        a.create_mailbox(who, &addr("spy@globex.example"), &strong, MailboxSettings::default()).await,
        not_found,
        "mailbox at a foreign domain",
    );
    refused_as(a.add_alias(who, &addr("spy@acme.example"), &addr("eva@globex.example")).await, not_found, "alias");
    refused_as(
        a.add_domain_alias(who, &dom("spy.example"), &dom("globex.example"), false).await,
        not_found,
        "alias domain",
    );
    // Platform operations are the admins'.
    refused_as(a.customers(who).await, forbidden, "customers");
    refused_as(a.set_domain_verified(who, w.globex_domain, false).await, forbidden, "verify");
    // A customer adds its own domains, never verified by itself.
    refused_as(a.add_domain(who, &dom("new.example"), None, true).await, forbidden, "self-verified domain");
    refused_as(a.add_domain(who, &dom("new.example"), Some(&name("globex")), false).await, forbidden, "for another");
    assert_eq!(a.domains(who).await.expect("own").len(), 1);
    assert_eq!(w.store.mailboxes(Scope::Platform, None).await.expect("all").len(), 2, "nothing changed");
}

/// The devices page: the mailbox user sees their own, the customer all of theirs, admins
/// everyone's; another customer's mailbox (or another mailbox of the same customer, for a
/// mailbox user) answers "not found".
#[tokio::test]
async fn devices_are_seen_within_the_callers_scope() {
    let w = world().await;
    let a = &w.admin;
    let max = match &w.max {
        Who::Mailbox { mailbox } => mailbox.clone(),
        _ => unreachable!(),
    };
    let record = postfach_store::logins::LoginRecord {
        at: postfach_types::UnixTime::now(),
        customer_id: Some(max.customer_id),
        mailbox_id: Some(max.id),
        login: "max@acme.example".into(),
        service: postfach_types::Service::Imap,
        remote_ip: "192.0.2.1".parse().expect("ip"),
        tls: None,
        mechanism: postfach_types::Mechanism::ImapLogin,
        result: postfach_types::LoginResult::Ok,
        credential: None,
    };
    w.store.record_login(&record).await.expect("record");
    assert_eq!(a.devices(&w.max, max.id).await.expect("own").len(), 1);
    assert_eq!(a.devices(&w.acme, max.id).await.expect("customer's").len(), 1);
    assert!(a.devices(&w.root, w.globex_mailbox).await.expect("admin's").is_empty());
    refused_as(a.devices(&w.acme, w.globex_mailbox).await, not_found, "another customer's devices");
    refused_as(a.devices(&w.max, w.globex_mailbox).await, not_found, "another mailbox's devices");
}

#[tokio::test]
async fn the_rules_of_the_operations_hold() {
    let w = world().await;
    let a = &w.admin;
    let root_id = w.root.account_id().expect("account");
    let reset =
        CustomerChange { disabled: None, password: Some(Secret::new("quartz lantern meadow 2041 orbit".into())) };
    refused_as(
        a.update_customer(&w.root, root_id, reset).await,
        |e| matches!(e, AdminError::ResetOwnPassword),
        "reset",
    );
    let disable = CustomerChange { disabled: Some(true), password: None };
    refused_as(a.update_customer(&w.root, root_id, disable).await, |e| matches!(e, AdminError::DisableSelf), "disable");
    refused_as(
        a.add_domain(&w.root, &dom("new.example"), None, false).await,
        |e| matches!(e, AdminError::AdminAddsDomain),
        "admin adds",
    );
    let weak = Secret::new("Sommer2024!!".into());
    refused_as(
        a.create_mailbox(&w.acme, &addr("new@acme.example"), &weak, MailboxSettings::default()).await,
        |e| matches!(e, AdminError::WeakPassword { chars: 12, .. }),
        "weak password",
    );
    refused_as(
        a.add_alias(&w.acme, &addr("max@acme.example"), &addr("max@acme.example")).await,
        |e| matches!(e, AdminError::Conflict(Conflict::AddressTaken { .. })),
        "address taken",
    );
    refused_as(
        a.add_domain_alias(&w.acme, &dom("acme.example"), &dom("acme.example"), false).await,
        |e| matches!(e, AdminError::Conflict(Conflict::DomainTaken { .. })),
        "alias domain onto itself",
    );
    refused_as(
        a.remove_alias_domain(&Who::Operator, &dom("acme.example")).await,
        |e| matches!(e, AdminError::NotAnAliasDomain(_)),
        "not alias",
    );
    refused_as(
        a.create_token(&w.acme, &"x".repeat(101)).await,
        |e| matches!(e, AdminError::TokenNameTooLong),
        "long name",
    );
    refused_as(
        a.check_domain(&w.acme, &a.domain_named(&w.acme, &dom("acme.example")).await.expect("d")).await,
        |e| matches!(e, AdminError::DnsChecksOff),
        "dns off",
    );
    // A reset of another account ends its sessions and revokes its tokens.
    let acme_id = w.acme.account_id().expect("account");
    let (token, _) = a.create_token(&w.acme, "script").await.expect("token");
    let reset =
        CustomerChange { disabled: None, password: Some(Secret::new("quartz lantern meadow 2041 orbit".into())) };
    a.update_customer(&w.root, acme_id, reset).await.expect("reset");
    assert!(a.tokens(&w.acme).await.expect("tokens").iter().all(|t| t.id != token.id), "tokens revoked");
}

/// The operator (or an admin) sets a customer's total; the customer sets its mailboxes'
/// limits within it, and cannot raise its own total; a mailbox user sets neither, only
/// the language of its notices.
#[tokio::test]
async fn quotas_are_set_by_who_may() {
    use postfach_store::quota::MailboxQuota;
    let w = world().await;
    let acme_id = w.acme.account_id().expect("account");
    let Who::Mailbox { mailbox } = &w.max else { panic!("mailbox user") };
    let max_id = mailbox.id;
    let two_gib = MailboxQuota { bytes: Some(2 << 30), messages: None };

    refused_as(w.admin.set_customer_quota(&w.acme, acme_id, Some(100 << 30)).await, forbidden, "own total");
    refused_as(w.admin.set_customer_quota(&w.max, acme_id, Some(100 << 30)).await, forbidden, "mailbox user");
    refused_as(w.admin.set_mailbox_quota(&w.max, max_id, two_gib).await, forbidden, "own mailbox limit");
    refused_as(w.admin.set_mailbox_quota(&w.acme, w.globex_mailbox, two_gib).await, not_found, "other customer");

    let customer = w.admin.set_customer_quota(&w.root, acme_id, Some(1 << 30)).await.expect("admin sets the total");
    assert_eq!(customer.quota_bytes, Some(1 << 30));
    refused_as(
        w.admin.set_mailbox_quota(&w.acme, max_id, two_gib).await,
        |e| matches!(e, AdminError::Conflict(Conflict::QuotaAboveCustomer { .. })),
        "above the customer's total",
    );
    let within = MailboxQuota { bytes: Some(512 << 20), messages: Some(1000) };
    let m = w.admin.set_mailbox_quota(&w.acme, max_id, within).await.expect("the customer sets it");
    assert_eq!(m.quota, within);
    let m = w.admin.set_mailbox_language(&w.max, max_id, postfach_types::Language::De).await.expect("own language");
    assert_eq!(m.language, postfach_types::Language::De);
    let (used, quota) = w.admin.customer_space(&w.max, acme_id).await.expect("own customer's use");
    assert_eq!((used, quota), (0, Some(1 << 30)));
    refused_as(w.admin.customer_space(&w.acme, w.globex_mailbox_customer().await).await, not_found, "other total");
    w.admin.set_customer_quota(&Who::Operator, acme_id, None).await.expect("operator removes it");
}

impl World {
    async fn globex_mailbox_customer(&self) -> postfach_types::CustomerId {
        self.store.mailbox_by_id(Scope::Platform, self.globex_mailbox).await.expect("eva").customer_id
    }
}

#[tokio::test]
async fn sieve_scripts_are_managed_by_the_mailbox_user_and_its_customer() {
    let w = world().await;
    let admin =
        w.admin.clone().with_sieve_limits(postfach_admin::SieveLimits { max_scripts: 2, max_script_bytes: 100 });
    let Who::Mailbox { mailbox } = &w.max else { panic!("max is a mailbox user") };
    let max = mailbox.id;
    admin.put_script(&w.max, max, "filters", "keep;\n").await.expect("own script");
    admin.activate_script(&w.acme, max, Some("filters")).await.expect("customer activates");
    assert_eq!(admin.active_script(&w.max, max).await.expect("active").expect("some").name, "filters");
    // Not another mailbox, not another customer's.
    refused_as(admin.list_scripts(&w.max, w.globex_mailbox).await, not_found, "other mailbox");
    refused_as(admin.put_script(&w.acme, w.globex_mailbox, "x", "keep;").await, not_found, "other customer");
    refused_as(admin.script(&w.acme, w.globex_mailbox, "x").await, not_found, "other customer's script");
    admin.put_script(&w.root, w.globex_mailbox, "x", "keep;").await.expect("admin reaches every mailbox");
    // A bad script is refused with its line and column; nothing is stored.
    let err = admin.put_script(&w.max, max, "bad", "keep;\nfileinto \"x\";\n").await.expect_err("bad script");
    let AdminError::SieveScriptInvalid(e) = &err else { panic!("{err:?}") };
    assert_eq!(e.line, 2);
    assert!(err.to_string().contains("line 2, column"), "{err}");
    refused_as(admin.script(&w.max, max, "bad").await, not_found, "bad script stored");
    // Limits of [sieve].
    let long = format!("# {}\nkeep;\n", "x".repeat(100));
    refused_as(
        admin.put_script(&w.max, max, "long", &long).await,
        |e| matches!(e, AdminError::SieveScriptTooBig { limit: 100, .. }),
        "too big",
    );
    admin.put_script(&w.max, max, "second", "stop;").await.expect("second");
    refused_as(
        admin.put_script(&w.max, max, "third", "stop;").await,
        |e| matches!(e, AdminError::Conflict(Conflict::TooManySieveScripts { limit: 2 })),
        "too many",
    );
    refused_as(
        admin.put_script(&w.max, max, " spaced", "stop;").await,
        |e| matches!(e, AdminError::InvalidSieveScriptName),
        "name",
    );
    refused_as(
        admin.delete_script(&w.max, max, "filters").await,
        |e| matches!(e, AdminError::Conflict(Conflict::SieveScriptActive { .. })),
        "active",
    );
    admin.rename_script(&w.max, max, "second", "later").await.expect("rename");
    admin.activate_script(&w.max, max, None).await.expect("off");
    admin.delete_script(&w.max, max, "filters").await.expect("delete");
    let names: Vec<_> = admin.list_scripts(&w.max, max).await.expect("list").into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["later"]);
}

/// Import jobs: the mailbox's user and customer start and see them, another customer
/// neither; the old server must be on the internet unless private targets are allowed;
/// one job per mailbox at a time; a job cut off by a stop is shown as interrupted and
/// may be started again.
#[tokio::test]
async fn import_jobs_are_started_and_seen_within_the_callers_scope() {
    use postfach_admin::{ImportRequest, ImportRunner, input};
    use postfach_store::import_jobs::JobState;

    let w = world().await;
    let max = match &w.max {
        Who::Mailbox { mailbox } => mailbox.clone(),
        _ => unreachable!(),
    };
    let blobs =
        postfach_blob::BlobStore::open(&postfach_blob::Backend::Fs, w._dir.path(), postfach_blob::Namespace::Mailboxes)
            .expect("blobs");
    let node = postfach_types::NodeName::parse("node-1").expect("node");
    // An old server that accepts the connection and never greets: the job stays running.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = silent.local_addr().expect("addr").port().to_string();
    let request = |host: &str| ImportRequest {
        server: input::import_server(host, &port, "tls").expect("server"),
        login: input::import_login("max@old.example").expect("login"),
        password: input::import_password("old password".into()).expect("password"),
    };

    // Without a runner (the CLI's Admin) no job starts.
    refused_as(w.admin.start_import(&w.acme, max.id, request("localhost")).await, busy, "no runner");

    // Private targets refused unless allowed, whoever asks.
    let strict =
        w.admin.clone().with_imports(Some(ImportRunner::new(blobs.clone(), node.clone(), 1 << 20, false, None)));
    for host in ["127.0.0.1", "localhost"] {
        refused_as(strict.start_import(&w.max, max.id, request(host)).await, not_public, "a loopback server");
    }
    assert!(strict.import_jobs(&w.max, max.id).await.expect("jobs").is_empty(), "a refused start leaves no job");

    let a = w.admin.clone().with_imports(Some(ImportRunner::new(blobs, node.clone(), 1 << 20, true, None)));
    refused_as(a.start_import(&w.acme, w.globex_mailbox, request("localhost")).await, not_found, "another customer's");
    refused_as(a.start_import(&w.max, w.globex_mailbox, request("localhost")).await, not_found, "another mailbox");
    refused_as(a.import_jobs(&w.acme, w.globex_mailbox).await, not_found, "another customer's jobs");

    let job = a.start_import(&w.acme, max.id, request("localhost")).await.expect("started by the customer");
    assert_eq!(
        (job.state, job.source.login.as_str(), job.started_by.as_str()),
        (JobState::Queued, "max@old.example", "acme")
    );
    refused_as(
        a.start_import(&w.max, max.id, request("localhost")).await,
        |e| matches!(e, AdminError::Conflict(Conflict::ImportRunning)),
        "a second job while one runs",
    );
    let own = a.import_jobs(&w.max, max.id).await.expect("the mailbox user's");
    assert_eq!(own.iter().map(|j| j.id).collect::<Vec<_>>(), vec![job.id]);
    assert_eq!(a.import_jobs(&w.root, max.id).await.expect("admin's").len(), 1);
    refused_as(a.import_jobs(&w.max, w.globex_mailbox).await, not_found, "another mailbox's jobs");
    let globex = Who::from_account(w.store.customer(&name("globex")).await.expect("globex"));
    refused_as(a.import_jobs(&globex, max.id).await, not_found, "acme's jobs for globex");
    refused_as(a.start_import(&globex, max.id, request("localhost")).await, not_found, "globex starting on acme's");

    // The node stopped: at its next start the job is interrupted, and may be started again.
    let other = postfach_types::NodeName::parse("node-2").expect("node");
    assert_eq!(w.store.interrupt_import_jobs(&other).await.expect("other node"), 0, "another node's jobs stay");
    assert_eq!(w.store.interrupt_import_jobs(&node).await.expect("this node"), 1);
    let jobs = a.import_jobs(&w.max, max.id).await.expect("jobs");
    assert_eq!(jobs[0].state, JobState::Interrupted);
    let resumed = a.start_import(&w.max, max.id, request("localhost")).await.expect("resumed by the mailbox user");

    // The resumed job's task waits on the silent server. Once its lease has run out and
    // the upkeep took it as abandoned, the task finds that at its next renewal and stops,
    // closing its connection (so does the first job's task, if it got as far), and leaves
    // the row as it is.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while a.import_jobs(&w.max, max.id).await.expect("jobs")[0].state != JobState::Running {
        assert!(std::time::Instant::now() < deadline, "the resumed job did not start");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let later = postfach_types::UnixTime::now().0 + 10 * postfach_store::import_jobs::JOB_LEASE_SECS;
    let swept = w.store.interrupt_abandoned_import_jobs(postfach_types::UnixTime(later)).await.expect("sweep");
    assert_eq!(swept, 1);
    let limit = postfach_admin::imports::RENEW_EVERY + std::time::Duration::from_secs(15);
    let all_closed = tokio::task::spawn_blocking(move || connections_close(&silent, limit)).await.expect("watch");
    assert!(all_closed, "the job's connection is closed within a renewal");
    let jobs = a.import_jobs(&w.max, max.id).await.expect("jobs");
    assert!(jobs.iter().all(|j| j.state == JobState::Interrupted), "{jobs:?}");
    assert_eq!(jobs[0].id, resumed.id, "the stopped task did not write over its row");
    assert_eq!(jobs[0].id, resumed.id);
}

/// Whether, within `limit`, at least one connection came to `listener` and every one that
/// came was closed by its client.
fn connections_close(listener: &std::net::TcpListener, limit: std::time::Duration) -> bool {
    use std::io::Read;
    listener.set_nonblocking(true).expect("nonblocking");
    let deadline = std::time::Instant::now() + limit;
    let mut open: Vec<std::net::TcpStream> = Vec::new();
    let mut seen = 0;
    let mut buf = [0u8; 4096];
    while std::time::Instant::now() < deadline {
        while let Ok((conn, _)) = listener.accept() {
            conn.set_nonblocking(true).expect("nonblocking");
            open.push(conn);
            seen += 1;
        }
        open.retain_mut(|conn| match conn.read(&mut buf) {
            Ok(0) => false,
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
        });
        if seen > 0 && open.is_empty() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

fn busy(e: &AdminError) -> bool {
    matches!(e, AdminError::ImportsBusy)
}

fn not_public(e: &AdminError) -> bool {
    matches!(e, AdminError::ImportServerNotPublic { .. })
}

/// An import that fails on this server's own TLS setup (here: a CA file that is not there)
/// tells the customer it is a problem on our side, not where our files are.
#[tokio::test]
async fn an_import_failing_on_our_setup_does_not_show_our_files() {
    use postfach_admin::{ImportRequest, ImportRunner, input};
    use postfach_store::import_jobs::JobState;

    let w = world().await;
    let Who::Mailbox { mailbox: max } = &w.max else { unreachable!() };
    let blobs =
        postfach_blob::BlobStore::open(&postfach_blob::Backend::Fs, w._dir.path(), postfach_blob::Namespace::Mailboxes)
            .expect("blobs");
    let node = postfach_types::NodeName::parse("node-1").expect("node");
    let missing = w._dir.path().join("no-such-ca.pem");
    let runner = ImportRunner::new(blobs, node, 1 << 20, true, Some(missing.clone()));
    let admin = w.admin.clone().with_imports(Some(runner));
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = silent.local_addr().expect("addr").port().to_string();
    let request = ImportRequest {
        server: input::import_server("localhost", &port, "tls").expect("server"),
        login: input::import_login("max@old.example").expect("login"),
        password: input::import_password("old password".into()).expect("password"),
    };
    admin.start_import(&w.max, max.id, request).await.expect("started");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let job = loop {
        let job = admin.import_jobs(&w.max, max.id).await.expect("jobs").remove(0);
        if !matches!(job.state, JobState::Queued | JobState::Running) {
            break job;
        }
        assert!(std::time::Instant::now() < deadline, "the job did not end");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let result = job.result.unwrap_or_default();
    assert_eq!(job.state, JobState::Failed, "{result}");
    assert!(result.contains("a problem on our side"), "{result}");
    assert!(!result.contains("no-such-ca") && !result.contains(&*w._dir.path().to_string_lossy()), "{result}");
}
