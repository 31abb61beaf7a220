//! App passwords end to end: real clients (mbsync over IMAPS, fetchmail over POP3S, msmtp
//! on port 465) log in with them; a revoked one is refused at once, also on connections
//! already logged in with it (IMAP, POP3, SMTP at their next command); the main password
//! is refused for devices when the mailbox asks for app passwords, and still opens the
//! panel; an app password for IMAP only is refused for sending; the login log names the
//! credential; another customer cannot see or touch them.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::clients::{ImapClient, SmtpClient, run};
use common::{PASSWORD, TestServer};
use postfach_admin::{Admin, AdminError, CreatedAppPassword, Who};
use postfach_auth::{Attempt, Connection};
use postfach_store::Scope;
use postfach_store::logins::{LoginFilter, LoginRecord};
use postfach_store::mailboxes::{Mailbox, MailboxSettings};
use postfach_types::{AccessMode, LoginResult, Mechanism, Secret, Service, TlsInfo};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const ADDRESS: &str = "max@acme.example";

fn admin(t: &TestServer) -> Admin {
    Admin::new(t.server.store().clone(), Arc::clone(t.server.authenticator()), None)
}

async fn add(t: &TestServer, mailbox: &Mailbox, name: &str, services: &[Service]) -> CreatedAppPassword {
    admin(t).add_app_password(&Who::Operator, mailbox.id, name, services).await.expect("app password")
}

async fn revoke(t: &TestServer, mailbox: &Mailbox, name: &str) {
    admin(t).remove_app_password(&Who::Operator, mailbox.id, name).await.expect("revoke");
}

async fn logins(t: &TestServer) -> Vec<LoginRecord> {
    t.server.store().logins(Scope::Platform, LoginFilter::default()).await.expect("logins")
}

fn message(i: usize) -> Vec<u8> {
    format!("From: <sender@example.org>\r\nTo: {ADDRESS}\r\nSubject: message {i}\r\n\r\nHello {i}.\r\n").into_bytes()
}

fn plaintext_allowed(config: &mut postfach_server::config::Config) {
    config.security.allow_plaintext_auth = true;
}

fn output(out: &std::process::Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

async fn mbsync(t: &TestServer, dir: &std::path::Path, password: &str) -> std::process::Output {
    let maildir = dir.join("mail");
    std::fs::create_dir_all(&maildir).expect("maildir");
    let rc = dir.join("mbsyncrc");
    std::fs::write(
        &rc,
        format!(
            "IMAPAccount acct\nHost localhost\nPort {}\nUser {ADDRESS}\nPass \"{password}\"\nSSLType IMAPS\nCertificateFile {}\n\n\
             IMAPStore remote\nAccount acct\n\n\
             MaildirStore local\nPath {m}/\nInbox {m}/INBOX\n\n\
             Channel ch\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Near\nSync Pull\nSyncState *\n",
            t.port("imaps"),
            t.cert().display(),
            m = maildir.display(),
        ),
    )
    .expect("rc");
    run(Command::new("mbsync").arg("-c").arg(&rc).arg("-a")).await
}

/// msmtp on port 465 (implicit TLS), from max to max (delivered here).
async fn msmtp(t: &TestServer, password: &str) -> std::process::Output {
    let args = vec![
        "--host=localhost".to_string(),
        format!("--port={}", t.port("submissions")),
        "--tls=on".into(),
        "--tls-starttls=off".into(),
        format!("--tls-trust-file={}", t.cert().display()),
        "--auth=plain".into(),
        format!("--user={ADDRESS}"),
        format!("--passwordeval=echo '{password}'"),
        format!("--from={ADDRESS}"),
        ADDRESS.into(),
    ];
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new("msmtp")
            .args(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("msmtp must be installed (Debian package msmtp)");
        let message = format!("From: Max <{ADDRESS}>\nTo: {ADDRESS}\nSubject: sent by msmtp\n\nHallo\n");
        child.stdin.take().expect("stdin").write_all(message.as_bytes()).expect("write");
        child.wait_with_output().expect("msmtp ran")
    })
    .await
    .expect("join")
}

async fn inbox_subjects(t: &TestServer, mailbox: &Mailbox) -> usize {
    let store = t.server.store();
    let inbox = store.folder(mailbox.id, "INBOX").await.expect("folder").expect("inbox");
    store.messages(mailbox.id, inbox.id).await.expect("messages").len()
}

#[tokio::test]
async fn real_clients_log_in_with_app_passwords_and_the_login_list_names_them() {
    let t = TestServer::start().await;
    let max = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    for i in 1..=3 {
        t.put_in_inbox(&max, message(i)).await;
    }
    let laptop = add(&t, &max, "Laptop", &[Service::Imap, Service::Submission]).await;
    let password = laptop.password.expose().to_string();
    assert_ne!(password, PASSWORD);

    // mbsync over IMAPS.
    let dir = tempfile::tempdir().expect("tmp");
    let out = mbsync(&t, dir.path(), &password).await;
    assert!(out.status.success(), "{}", output(&out));
    let pulled = std::fs::read_dir(dir.path().join("mail/INBOX/new")).expect("new").count()
        + std::fs::read_dir(dir.path().join("mail/INBOX/cur")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(pulled, 3);
    let last = logins(&t).await.remove(0);
    assert_eq!(
        (last.result, last.service, last.credential.as_deref()),
        (LoginResult::Ok, Service::Imap, Some("Laptop"))
    );

    // msmtp on 465, delivered into the same mailbox.
    let out = msmtp(&t, &password).await;
    assert!(out.status.success(), "{}", output(&out));
    let mut waited = 0;
    while inbox_subjects(&t, &max).await < 4 {
        assert!(waited < 100, "the message sent with msmtp did not arrive");
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    let last = logins(&t).await.remove(0);
    assert_eq!(
        (last.result, last.service, last.credential.as_deref()),
        (LoginResult::Ok, Service::Submission, Some("Laptop"))
    );

    // The list shows the last use, never the password.
    let list = admin(&t).app_passwords(&Who::Operator, max.id).await.expect("list");
    assert_eq!(list.len(), 1);
    let used = list[0].last_use.as_ref().expect("used");
    assert_eq!(used.service, Service::Submission);
    assert_eq!(used.tls_version.as_deref(), Some("TLSv1.3"));
    assert!(used.remote_ip.is_loopback());

    // The main password still works for devices (the switch is off), and is logged as such.
    let out = mbsync(&t, tempfile::tempdir().expect("tmp").path(), PASSWORD).await;
    assert!(out.status.success(), "{}", output(&out));
    let last = logins(&t).await.remove(0);
    assert_eq!((last.result, last.credential), (LoginResult::Ok, None));
    t.server.shutdown().await;
}

#[tokio::test]
async fn fetchmail_logs_in_over_pop3s_with_an_app_password() {
    let t = TestServer::start().await;
    let max = t.mailbox(ADDRESS, MailboxSettings { access: AccessMode::Pop3, ..Default::default() }).await;
    for i in 1..=2 {
        t.put_in_inbox(&max, message(i)).await;
    }
    // IMAP is not offered for a POP3 mailbox.
    let refused = admin(&t).add_app_password(&Who::Operator, max.id, "Phone", &[Service::Imap]).await;
    assert!(matches!(refused, Err(AdminError::ServiceNotForMailbox(Service::Imap))), "{refused:?}");
    let phone = add(&t, &max, "Phone", &[Service::Pop3]).await;
    let dir = tempfile::tempdir().expect("dir");
    let out_file = dir.path().join("out.mbox");
    let rc = dir.path().join("fetchmailrc");
    std::fs::write(
        &rc,
        format!(
            "poll localhost port {} proto pop3 user \"{ADDRESS}\" password \"{}\" ssl sslcertck sslcertfile \"{}\" keep fetchall mda \"cat >> {}\"\n",
            t.port("pop3s"),
            phone.password.expose(),
            t.cert().display(),
            out_file.display()
        ),
    )
    .expect("rc");
    std::fs::set_permissions(&rc, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    let fetch = || {
        let mut command = Command::new("fetchmail");
        command.arg("-f").arg(&rc).arg("-s").arg("--nodetach").arg("--idfile").arg(dir.path().join("ids"));
        command.env("HOME", dir.path());
        async move { run(&mut command).await }
    };
    let out = fetch().await;
    assert!(out.status.success(), "{}", output(&out));
    let mbox = std::fs::read_to_string(&out_file).expect("fetched");
    assert!(mbox.contains("Subject: message 1") && mbox.contains("Subject: message 2"), "{mbox}");
    let last = logins(&t).await.remove(0);
    assert_eq!((last.service, last.credential.as_deref()), (Service::Pop3, Some("Phone")));

    // Revoked: the next fetch is refused.
    revoke(&t, &max, "Phone").await;
    let out = fetch().await;
    assert!(!out.status.success(), "{}", output(&out));
    assert_eq!(logins(&t).await.remove(0).result, LoginResult::BadCredentials);
    t.server.shutdown().await;
}

#[tokio::test]
async fn a_revoked_app_password_ends_sessions_already_logged_in() {
    let t = TestServer::start_with(plaintext_allowed).await;
    let settings = MailboxSettings { tls_required: false, ..Default::default() };
    let max = t.mailbox(ADDRESS, settings).await;
    let phone = add(&t, &max, "Phone", &[Service::Imap, Service::Submission]).await;
    let keep = add(&t, &max, "Tablet", &[Service::Imap]).await;

    // IMAP: logged in, named by ID, then revoked: the next command ends the session.
    let mut imap = ImapClient::connect(t.addr("imap")).await;
    imap.line().await;
    let reply = imap.cmd("a", &format!("LOGIN {ADDRESS} {}", phone.password.expose())).await;
    assert!(reply.contains("a OK"), "{reply}");
    let reply = imap.cmd("b", "ID (\"name\" \"K-9 Mail\" \"version\" \"6.8\")").await;
    assert!(reply.contains("b OK"), "{reply}");
    let list = admin(&t).app_passwords(&Who::Operator, max.id).await.expect("list");
    let named = list.iter().find(|a| a.name == "Phone").and_then(|a| a.last_use.clone()).expect("used");
    assert_eq!(named.client.as_deref(), Some("K-9 Mail 6.8"));
    // Another session, with another app password, goes on.
    let mut other = ImapClient::connect(t.addr("imap")).await;
    other.line().await;
    assert!(other.cmd("a", &format!("LOGIN {ADDRESS} {}", keep.password.expose())).await.contains("a OK"));

    // SMTP submission, logged in with the same app password.
    let (mut smtp, _) = SmtpClient::connect(t.addr("submission")).await;
    smtp.cmd("EHLO client.example").await;
    let plain = base64_plain(ADDRESS, phone.password.expose());
    assert!(smtp.cmd(&format!("AUTH PLAIN {plain}")).await.starts_with("235"));

    revoke(&t, &max, "Phone").await;

    imap.send("c NOOP\r\n").await;
    let reply = imap.line().await;
    assert!(reply.starts_with("* BYE") && reply.contains("revoked"), "{reply}");
    assert_eq!(imap.line().await, "", "the server closed the connection");
    let reply = smtp.cmd("MAIL FROM:<max@acme.example>").await;
    assert!(reply.starts_with("421") && reply.contains("revoked"), "{reply}");
    assert!(other.cmd("b", "NOOP").await.contains("b OK"), "the other app password still works");
    // A new login with it is refused.
    let mut again = ImapClient::connect(t.addr("imap")).await;
    again.line().await;
    let reply = again.cmd("a", &format!("LOGIN {ADDRESS} {}", phone.password.expose())).await;
    assert!(reply.contains("a NO"), "{reply}");
    t.server.shutdown().await;
}

#[tokio::test]
async fn a_revoked_app_password_ends_a_pop3_session_at_its_next_command() {
    let t = TestServer::start_with(plaintext_allowed).await;
    let settings = MailboxSettings { access: AccessMode::Pop3, tls_required: false, ..Default::default() };
    let max = t.mailbox(ADDRESS, settings).await;
    t.put_in_inbox(&max, message(1)).await;
    let phone = add(&t, &max, "Phone", &[Service::Pop3]).await;
    let stream = tokio::net::TcpStream::connect(t.addr("pop3")).await.expect("connect");
    let mut pop = BufReader::new(stream);
    let mut line = String::new();
    let say = async |pop: &mut BufReader<tokio::net::TcpStream>, text: &str| {
        let mut line = String::new();
        if !text.is_empty() {
            pop.get_mut().write_all(format!("{text}\r\n").as_bytes()).await.expect("send");
        }
        tokio::time::timeout(Duration::from_secs(30), pop.read_line(&mut line)).await.expect("answer").expect("read");
        line
    };
    pop.read_line(&mut line).await.expect("greeting");
    assert!(say(&mut pop, &format!("USER {ADDRESS}")).await.starts_with("+OK"));
    let reply = say(&mut pop, &format!("PASS {}", phone.password.expose())).await;
    assert!(reply.starts_with("+OK"), "{reply}");
    assert!(say(&mut pop, "DELE 1").await.starts_with("+OK"));
    revoke(&t, &max, "Phone").await;
    let reply = say(&mut pop, "STAT").await;
    assert!(reply.starts_with("-ERR") && reply.contains("revoked"), "{reply}");
    // Closed without UPDATE: the message marked deleted is still there.
    assert_eq!(inbox_subjects(&t, &max).await, 1);
    t.server.shutdown().await;
}

fn base64_plain(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}

#[tokio::test]
async fn the_main_password_is_only_for_the_panel_when_devices_use_app_passwords() {
    let t = TestServer::start().await;
    let max = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    let laptop = add(&t, &max, "Laptop", &[Service::Imap]).await;
    let on = admin(&t).set_app_passwords_only(&Who::Operator, max.id, true).await.expect("switch");
    assert!(on.app_passwords_only);

    // IMAP with the main password: refused, and the reply says what to do.
    let out = mbsync(&t, tempfile::tempdir().expect("tmp").path(), PASSWORD).await;
    assert!(!out.status.success());
    let text = output(&out);
    assert!(text.contains("create an app password"), "{text}");
    let last = logins(&t).await.remove(0);
    assert_eq!(last.result, LoginResult::AppPasswordRequired);
    // Submission with the main password: refused too; the IMAP-only app password is not
    // for sending.
    let out = msmtp(&t, PASSWORD).await;
    assert!(!out.status.success());
    assert!(output(&out).contains("create an app password"), "{}", output(&out));
    let out = msmtp(&t, laptop.password.expose()).await;
    assert!(!out.status.success());
    assert!(output(&out).contains("not for sending"), "{}", output(&out));
    let last = logins(&t).await.remove(0);
    assert_eq!((last.result, last.credential.as_deref()), (LoginResult::NotForThisAppPassword, Some("Laptop")));

    // The app password works for IMAP.
    let out = mbsync(&t, tempfile::tempdir().expect("tmp").path(), laptop.password.expose()).await;
    assert!(out.status.success(), "{}", output(&out));

    // The panel still takes the main password, and never an app password.
    let connection = Connection {
        remote_ip: "127.0.0.1".parse().expect("ip"),
        tls: Some(TlsInfo { version: "TLSv1.3".into(), cipher: "TLS13_AES_128_GCM_SHA256".into() }),
    };
    let auth = t.server.authenticator();
    let main = Secret::new(PASSWORD.to_string());
    let panel = |secret| Attempt {
        service: Service::Panel,
        mechanism: Mechanism::WebForm,
        login: ADDRESS,
        secret,
        connection: &connection,
    };
    assert!(auth.authenticate(panel(&main)).await.is_ok());
    assert!(auth.authenticate(panel(&laptop.password)).await.is_err());
    t.server.shutdown().await;
}

#[tokio::test]
async fn app_passwords_stay_within_the_owners_scope() {
    let t = TestServer::start().await;
    let max = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    add(&t, &max, "Laptop", &[Service::Imap]).await;
    let store = t.server.store();
    let hasher = t.server.authenticator().hasher();
    let name = postfach_types::CustomerName::parse("other").expect("name");
    let other = postfach_auth::accounts::create_customer(
        store,
        hasher,
        &name,
        &Secret::new("other panel passphrase 42".into()),
        postfach_types::Role::Customer,
    )
    .await
    .expect("customer");
    let stranger = Who::Customer { id: other.id, name };
    let admin = admin(&t);
    assert!(matches!(admin.app_passwords(&stranger, max.id).await, Err(AdminError::NotFound(_))));
    assert!(matches!(
        admin.add_app_password(&stranger, max.id, "Mine", &[Service::Imap]).await,
        Err(AdminError::NotFound(_))
    ));
    assert!(matches!(admin.remove_app_password(&stranger, max.id, "Laptop").await, Err(AdminError::NotFound(_))));
    // The owner's customer and the mailbox user manage them.
    let acme = store.customer(&postfach_types::CustomerName::parse("acme").expect("n")).await.expect("acme");
    let owner = Who::Customer { id: acme.id, name: acme.name.clone() };
    assert_eq!(admin.app_passwords(&owner, max.id).await.expect("list").len(), 1);
    let user = Who::Mailbox { mailbox: max.clone() };
    admin.add_app_password(&user, max.id, "Phone", &[Service::Imap]).await.expect("own");
    let taken = admin.add_app_password(&user, max.id, "Phone", &[Service::Imap]).await;
    assert!(matches!(taken, Err(AdminError::Conflict(_))), "{taken:?}");
    admin.remove_app_password(&user, max.id, "Laptop").await.expect("revoke own");
    let names: Vec<_> = admin.app_passwords(&user, max.id).await.expect("list").into_iter().map(|a| a.name).collect();
    assert_eq!(names, ["Phone"]);
    t.server.shutdown().await;
}
