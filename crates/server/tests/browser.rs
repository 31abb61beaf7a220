//! The panel in a real browser: headless Chromium driven through chromedriver
//! (fantoccini), against the real server started in-process on 127.0.0.1.
//!
//! Needs the Debian packages `chromium` and `chromium-driver`. Screenshots of the main
//! pages are written to `target/screenshots/`.

use std::net::{SocketAddr, TcpListener};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use postfach_auth::accounts::{create_customer, create_mailbox};
use postfach_server::Server;
use postfach_server::config::Config;
use postfach_store::mailboxes::MailboxSettings;
use postfach_store::resolve::Resolution;
use postfach_store::{Scope, Store};
use postfach_testdns::{Data, Rr, TestDns, Type};
use postfach_types::{AccessMode, CustomerName, DomainId, DomainName, EmailAddress, MailboxId, Role, Secret, Service};
use serde_json::json;

#[path = "../../outbound/tests/support/sink.rs"]
mod sink;

const STRONG: &str = "violet mango tractor whisper";
const WAIT: Duration = Duration::from_secs(30);

fn addr(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("address")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: std::process::Child,
    url: String,
}

impl Driver {
    async fn start() -> Driver {
        let port = free_port();
        let mut child = std::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver) must be installed");
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Driver { child, url: format!("http://127.0.0.1:{port}") };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("chromedriver did not start");
    }

    /// Asks chromedriver to end its browsers and exit (its `/shutdown` command), so no
    /// Chromium outlives the test; kills it if it does not exit.
    async fn stop(mut self) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = self.url.trim_start_matches("http://").to_string();
        if let Ok(mut conn) = tokio::net::TcpStream::connect(address.as_str()).await {
            let request = format!("GET /shutdown HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
            let _ = conn.write_all(request.as_bytes()).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut Vec::new())).await;
        }
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn browser(&self, profile: &std::path::Path) -> Client {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--ignore-certificate-errors",
            "--window-size=1280,1000",
            "--lang=en-US",
        ];
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let mut caps = serde_json::Map::new();
        caps.insert("acceptInsecureCerts".into(), json!(true));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": "/usr/bin/chromium", "args": args, "prefs": { "intl.accept_languages": "en-US,en" } }),
        );
        ClientBuilder::rustls().expect("TLS").capabilities(caps).connect(&self.url).await.expect("browser session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server with the panel, IMAPS, POP3 (plain and TLS) and the MX on loopback, asking
/// a real local DNS server (with empty zones: every lookup is answered at once).
async fn start_server(dir: &std::path::Path) -> (Server, TestDns) {
    start_server_with(dir, "").await
}

/// [`start_server`] with `extra` TOML sections appended to its configuration.
async fn start_server_with(dir: &std::path::Path, extra: &str) -> (Server, TestDns) {
    start_server_named(dir, "localhost", Vec::new(), extra).await
}

/// Like [`start_server_with`], with the server named `hostname` and DNS answering `zone`.
async fn start_server_named(dir: &std::path::Path, hostname: &str, zone: Vec<Rr>, extra: &str) -> (Server, TestDns) {
    start_server_listening(dir, hostname, zone, "[]", extra).await
}

/// Like [`start_server_named`], with submission listening on `submission` (a TOML list).
async fn start_server_listening(
    dir: &std::path::Path,
    hostname: &str,
    zone: Vec<Rr>,
    submission: &str,
    extra: &str,
) -> (Server, TestDns) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dns = TestDns::start(zone);
    let off = "[]";
    let toml = format!(
        "hostname = \"{hostname}\"\ndata_dir = \"{}\"\n[listen]\nsmtp = [\"127.0.0.1:0\"]\nsubmission = {submission}\n\
         submissions = {off}\nimap = {off}\nimaps = [\"127.0.0.1:0\"]\npop3 = [\"127.0.0.1:0\"]\npop3s = [\"127.0.0.1:0\"]\n\
         managesieve = {off}\nhttps = [\"127.0.0.1:0\"]\nhttp = [\"127.0.0.1:0\"]\n[dns]\nresolver = \"{}\"\n\
         [security]\nwarning_mails = false\n{extra}",
        dir.display(),
        dns.addr()
    );
    let config = Config::from_toml_str(&toml, dir).expect("config");
    (Server::start(&config).await.expect("server starts"), dns)
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    std::fs::write(screenshots().join(format!("{name}.png")), png).expect("write screenshot");
}

async fn fill(browser: &Client, css: &str, text: &str) {
    let field = browser.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

async fn click(browser: &Client, css: &str) {
    browser.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.expect("click");
}

async fn text(browser: &Client, css: &str) -> String {
    let element = browser.wait().at_most(WAIT).for_element(Locator::Css(css)).await;
    element.unwrap_or_else(|e| panic!("{css}: {e}")).text().await.expect("text")
}

/// Waits until the element shows `needle` (the page after a form submission may still be
/// loading when the click returns).
async fn wait_for_text(browser: &Client, css: &str, needle: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    let mut last = String::new();
    while std::time::Instant::now() < deadline {
        if let Ok(element) = browser.find(Locator::Css(css)).await
            && let Ok(found) = element.text().await
        {
            if found.contains(needle) {
                return;
            }
            last = found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} never showed {needle:?}; last: {last:?}");
}

async fn sign_in(browser: &Client, base: &str, login: &str, password: &str) {
    browser.goto(&format!("{base}/login")).await.expect("login page");
    fill(browser, "#login", login).await;
    fill(browser, "#password", password).await;
    click(browser, "#sign-in").await;
    browser.wait().at_most(WAIT).for_element(Locator::Css("#logout")).await.expect("signed in");
}

async fn sign_out(browser: &Client) {
    click(browser, "#logout").await;
    browser.wait().at_most(WAIT).for_element(Locator::Css("#sign-in")).await.expect("signed out");
}

/// Runs `fetch` in the page with the session cookie and CSRF token, returns the status.
async fn fetch_status(browser: &Client, method: &str, path: &str, body: serde_json::Value) -> i64 {
    let script = r#"
        const [method, path, body, done] = arguments;
        const csrf = document.querySelector('meta[name="csrf-token"]').content;
        fetch(path, { method, credentials: "same-origin",
                      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
                      body: method === "GET" ? undefined : JSON.stringify(body) })
          .then(r => done(r.status), () => done(-1));
    "#;
    let status = browser.execute_async(script, vec![json!(method), json!(path), body]).await.expect("fetch");
    status.as_i64().expect("status")
}

struct Ids {
    globex_mailbox: MailboxId,
    globex_domain: DomainId,
}

async fn accounts(server: &Server) -> Ids {
    let store: &Store = server.store();
    let hasher = server.authenticator().hasher();
    let strong = Secret::new(STRONG.to_string());
    let mut ids = Vec::new();
    for (name, role) in [("root", Role::Admin), ("acme", Role::Customer), ("globex", Role::Customer)] {
        let name = CustomerName::parse(name).expect("name");
        ids.push(create_customer(store, hasher, &name, &strong, role).await.expect("customer").id);
    }
    store.add_domain(ids[1], &DomainName::parse("acme.example").expect("d"), true).await.expect("domain");
    let globex_domain =
        store.add_domain(ids[2], &DomainName::parse("globex.example").expect("d"), true).await.expect("domain").id;
    let eva = create_mailbox(
        store,
        hasher,
        Scope::Platform,
        &addr("eva@globex.example"),
        &strong,
        MailboxSettings::default(),
    )
    .await
    .expect("mailbox");
    Ids { globex_mailbox: eva.id, globex_domain }
}

/// Logs in with Python's imaplib over implicit TLS; prints `LOGGED IN` or `REFUSED …`.
async fn imap_login(port: u16, user: &str, password: &str) -> String {
    let script = "import imaplib, os, ssl\n\
        ctx = ssl.create_default_context()\n\
        ctx.check_hostname = False\n\
        ctx.verify_mode = ssl.CERT_NONE\n\
        m = imaplib.IMAP4_SSL('127.0.0.1', int(os.environ['PORT']), ssl_context=ctx)\n\
        try:\n    m.login(os.environ['USER'], os.environ['PASS'])\n    print('LOGGED IN')\n\
        except imaplib.IMAP4.error as e:\n    print('REFUSED', e)\n";
    let mut command = std::process::Command::new("python3");
    command.arg("-c").arg(script).env("PORT", port.to_string()).env("USER", user).env("PASS", password);
    let output = tokio::task::spawn_blocking(move || command.output().expect("python3 runs")).await.expect("task");
    assert!(output.status.success(), "python3: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Runs a Python snippet with the given environment; returns what it printed.
async fn python(script: &'static str, env: &[(&str, String)]) -> String {
    let mut command = std::process::Command::new("python3");
    command.arg("-c").arg(script);
    for (k, v) in env {
        command.env(k, v);
    }
    let output = tokio::task::spawn_blocking(move || command.output().expect("python3 runs")).await.expect("task");
    assert!(output.status.success(), "python3: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Logs in with Python's poplib, over TLS (POP3S) or unencrypted; `LOGGED IN` or `REFUSED …`.
async fn pop3_login(port: u16, tls: bool, user: &str, password: &str) -> String {
    let script = "import poplib, os, ssl\n\
        if os.environ['TLS'] == '1':\n    ctx = ssl.create_default_context()\n    ctx.check_hostname = False\n    \
        ctx.verify_mode = ssl.CERT_NONE\n    m = poplib.POP3_SSL('127.0.0.1', int(os.environ['PORT']), context=ctx)\n\
        else:\n    m = poplib.POP3('127.0.0.1', int(os.environ['PORT']))\n\
        try:\n    m.user(os.environ['USER'])\n    m.pass_(os.environ['PASS'])\n    print('LOGGED IN')\n    m.quit()\n\
        except poplib.error_proto as e:\n    print('REFUSED', e)\n";
    let tls = if tls { "1" } else { "0" };
    python(script, &[("PORT", port.to_string()), ("TLS", tls.into()), ("USER", user.into()), ("PASS", password.into())])
        .await
}

/// Sends one message with Python's smtplib to the MX.
async fn smtp_send(port: u16, rcpt: &str, subject: &str) {
    let script = "import smtplib, os\n\
        msg = 'From: friend@outside.example\\r\\nTo: ' + os.environ['RCPT'] + '\\r\\nSubject: ' + os.environ['SUBJECT'] + '\\r\\n\\r\\nHello.\\r\\n'\n\
        s = smtplib.SMTP('127.0.0.1', int(os.environ['PORT']))\n\
        s.sendmail('friend@outside.example', [os.environ['RCPT']], msg)\n\
        s.quit()\nprint('SENT')\n";
    let said = python(script, &[("PORT", port.to_string()), ("RCPT", rcpt.into()), ("SUBJECT", subject.into())]).await;
    assert_eq!(said, "SENT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panel_in_a_real_browser() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, _dns) = start_server(&dir.path().join("data")).await;
    let https: SocketAddr = server.addresses().first("https").expect("https listener");
    let base = format!("https://localhost:{}", https.port());
    let ids = accounts(&server).await;
    let driver = Driver::start().await;
    let browser = driver.browser(&dir.path().join("chromium")).await;

    // The browser is closed even when a step fails, so no Chromium is left running.
    let outcome = AssertUnwindSafe(flow(&browser, &server, &base, &ids)).catch_unwind().await;
    let _ = browser.close().await;
    driver.stop().await;
    server.shutdown().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// The flows of issue 7, step by step.
async fn flow(browser: &Client, server: &Server, base: &str, ids: &Ids) {
    let base = base.to_string();
    // Plain HTTP redirects to HTTPS.
    let http = server.addresses().first("http").expect("http listener");
    browser.goto(&format!("http://localhost:{}/login", http.port())).await.expect("http");
    assert_eq!(browser.current_url().await.expect("url").as_str(), format!("{base}/login"));
    screenshot(browser, "01-sign-in").await;

    // Sign in as the customer: the mailbox list.
    sign_in(browser, &base, "acme", STRONG).await;
    assert_eq!(text(browser, "h1").await, "Mailboxes");

    // A weak password: the meter shows it weak, and the server refuses it with its reason.
    fill(browser, "#mailbox-local", "max").await;
    fill(browser, "#mailbox-password", "Sommer2024!!").await;
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#new-mailbox[data-strength='weak']"))
        .await
        .expect("the meter rates the password");
    let label = text(browser, "#new-mailbox [data-meter-label]").await;
    assert!(label.contains("weak"), "meter label {label:?}");
    screenshot(browser, "02-weak-password-meter").await;
    click(browser, "#create-mailbox").await;
    let error = text(browser, "#error").await;
    assert!(error.contains("too easy to guess"), "{error}");
    assert!(server.store().mailboxes(Scope::Platform, None).await.expect("list").len() == 1, "not created");

    // A strong one: created, and the mailbox page opens.
    fill(browser, "#mailbox-local", "max").await;
    fill(browser, "#mailbox-password", STRONG).await;
    browser
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#new-mailbox[data-strength='strong']"))
        .await
        .expect("the meter rates the password strong");
    click(browser, "#create-mailbox").await;
    assert_eq!(text(browser, "#mailbox-address").await, "max@acme.example");
    let max = server.store().mailbox(Scope::Platform, &addr("max@acme.example")).await.expect("created");
    let max_url = format!("{base}/mailboxes/{}", max.id);

    // Switch to POP3; then an IMAP login with the right password is refused and listed.
    click(browser, "#access-pop3").await;
    click(browser, "#save-settings").await;
    wait_for_text(browser, ".notice", "settings were saved").await;
    assert_eq!(
        server.store().mailbox(Scope::Platform, &max.address).await.expect("mb").settings.access,
        AccessMode::Pop3
    );
    // A real IMAP client (Python's imaplib over implicit TLS) with the right password.
    let imaps = server.addresses().first("imaps").expect("imaps listener");
    let imap_said = imap_login(imaps.port(), "max@acme.example", STRONG).await;
    assert!(imap_said.starts_with("REFUSED"), "IMAP login of a POP3 mailbox: {imap_said}");
    // Real POP3 clients: over TLS it works; unencrypted it is refused (TLS required) and flagged.
    let pop3s = server.addresses().first("pop3s").expect("pop3s listener").port();
    assert_eq!(pop3_login(pop3s, true, "max@acme.example", STRONG).await, "LOGGED IN");
    let pop3 = server.addresses().first("pop3").expect("pop3 listener").port();
    let said = pop3_login(pop3, false, "max@acme.example", STRONG).await;
    assert!(said.starts_with("REFUSED") && said.contains("encrypted"), "plaintext POP3 login: {said}");
    browser.goto(&max_url).await.expect("mailbox page");
    let list = text(browser, "#login-list").await;
    assert!(list.contains("IMAP") && list.contains("service switched off"), "{list}");
    let flagged = text(browser, "#login-list tr.unencrypted").await;
    assert!(flagged.to_lowercase().contains("unencrypted"), "{flagged}");
    assert!(flagged.contains("TLS required"), "{flagged}");
    let checklist = text(browser, "#checklist").await;
    assert!(checklist.contains("unencrypted login attempts"), "{checklist}");
    screenshot(browser, "03-mailbox").await;
    click(browser, "#filter-unencrypted").await;
    browser.wait().at_most(WAIT).for_element(Locator::Css("#filter-unencrypted.active")).await.expect("filtered");
    let rows = browser.find_all(Locator::Css("#login-list tbody tr")).await.expect("rows");
    assert_eq!(rows.len(), 1, "only the unencrypted attempt");
    screenshot(browser, "04-logins-unencrypted").await;

    // An alias on the mailbox page.
    browser.goto(&max_url).await.expect("mailbox page");
    fill(browser, "#alias-local", "info").await;
    click(browser, "#add-alias").await;
    let aliases = text(browser, "#alias-list").await;
    assert!(aliases.contains("info@acme.example"), "{aliases}");
    // A domain alias: shown with its ownership record until verified.
    browser.goto(&format!("{base}/domains")).await.expect("domains");
    fill(browser, "#alias-domain-name", "acme.org").await;
    click(browser, "#add-domain-alias-button").await;
    let status = text(browser, "#ownership-status").await;
    assert!(status.contains("Not verified"), "{status}");
    let record = text(browser, "#ownership-name").await;
    assert_eq!(record, "_postfach-verify.acme.org");
    screenshot(browser, "05-domain-alias").await;
    // Mail to both reaches the mailbox (once the operator has verified the alias domain).
    let store = server.store();
    store.set_domain_verified(Scope::Platform, &DomainName::parse("acme.org").expect("d"), true).await.expect("verify");
    for address in ["info@acme.example", "max@acme.org", "info@acme.org"] {
        match store.resolve(&addr(address)).await.expect("resolve") {
            Resolution::Mailbox(r) => assert_eq!(r.mailbox, max.address, "{address}"),
            other => panic!("{address} resolves to {other:?}"),
        }
    }
    // Real mail through the MX to the alias and to the alias domain lands in max's INBOX.
    let smtp = server.addresses().first("smtp").expect("smtp listener").port();
    smtp_send(smtp, "info@acme.example", "to the alias").await;
    smtp_send(smtp, "max@acme.org", "to the alias domain").await;
    let inbox = store.folder(max.id, "INBOX").await.expect("folder").expect("INBOX");
    let messages = store.messages(max.id, inbox.id).await.expect("messages");
    let mut subjects = Vec::new();
    for m in &messages {
        let bytes = server.blobs().get(&m.blob).await.expect("blob");
        let text = String::from_utf8_lossy(&bytes).to_string();
        subjects.extend(text.lines().filter_map(|l| l.strip_prefix("Subject: ").map(str::to_string)));
    }
    subjects.sort();
    assert_eq!(subjects, ["to the alias", "to the alias domain"]);

    // Storage: the customer sets a limit; the page shows the use against it with a bar.
    browser.goto(&max_url).await.expect("mailbox page");
    let before = text(browser, "#quota-use").await;
    assert!(before.contains("(no limit)") && before.contains("2 messages"), "{before}");
    fill(browser, "#quota-input", "1M").await;
    click(browser, "#save-quota").await;
    wait_for_text(browser, ".notice", "settings were saved").await;
    let used = text(browser, "#quota-use").await;
    assert!(used.contains("of 1 MiB in use (0 %)"), "{used}");
    let bar = browser.find(Locator::Css("#quota-bar")).await.expect("the bar");
    assert_eq!(bar.attr("max").await.expect("max").as_deref(), Some("1048576"));
    let quota = store.mailbox(Scope::Platform, &max.address).await.expect("mb").quota;
    assert_eq!(quota.bytes, Some(1 << 20));
    browser.execute("document.getElementById('storage').scrollIntoView()", vec![]).await.expect("scroll");
    screenshot(browser, "05b-storage").await;

    // Another customer's objects: not through pages, not through the API.
    browser.goto(&format!("{base}/mailboxes/{}", ids.globex_mailbox)).await.expect("foreign page");
    assert!(text(browser, "#error-message").await.contains("does not exist"));
    browser.goto(&format!("{base}/domains/{}", ids.globex_domain)).await.expect("foreign page");
    assert!(text(browser, "#error-message").await.contains("does not exist"));
    browser.goto(&max_url).await.expect("own page");
    let foreign = format!("/api/v1/mailboxes/{}", ids.globex_mailbox);
    assert_eq!(fetch_status(browser, "GET", &foreign, json!(null)).await, 404);
    assert_eq!(fetch_status(browser, "PATCH", &foreign, json!({ "access": "none" })).await, 404);
    assert_eq!(fetch_status(browser, "DELETE", &foreign, json!(null)).await, 404);
    assert_eq!(
        fetch_status(browser, "PATCH", &format!("/api/v1/mailboxes/{}", max.id), json!({ "access": "pop3" })).await,
        200
    );
    let eva = store.mailbox(Scope::Platform, &addr("eva@globex.example")).await.expect("untouched");
    assert_eq!(eva.settings, MailboxSettings::default());

    // German: the switch changes every text of the page.
    click(browser, "#lang-switch").await;
    browser.wait().at_most(WAIT).for_element(Locator::Css("html[lang='de']")).await.expect("German");
    let heading = text(browser, "#logins h2").await;
    assert_eq!(heading, "Anmeldungen");
    let list = text(browser, "#login-list").await;
    assert!(list.contains("Dienst ausgeschaltet") && list.to_lowercase().contains("unverschlüsselt"), "{list}");
    screenshot(browser, "06-postfach-deutsch").await;
    click(browser, "#lang-switch").await;
    browser.wait().at_most(WAIT).for_element(Locator::Css("html[lang='en']")).await.expect("English");

    // Removing asks for confirmation first.
    browser.goto(&format!("{base}/aliases")).await.expect("aliases");
    screenshot(browser, "07-aliases").await;
    browser.goto(&format!("{base}/mailboxes/{}/remove", max.id)).await.expect("confirmation");
    assert!(text(browser, "h1").await.contains("Remove the mailbox max@acme.example?"));
    assert!(store.mailbox(Scope::Platform, &max.address).await.is_ok(), "nothing is removed before confirming");

    // The account page: two-factor setup and API tokens.
    browser.goto(&format!("{base}/account")).await.expect("account");
    click(browser, "#totp-start").await;
    assert_eq!(text(browser, "#totp-secret").await.len(), 32, "a base32 key to type into the app");
    fill(browser, "#token-name", "backup script").await;
    click(browser, "#create-token").await;
    assert!(text(browser, "#new-token").await.starts_with("pfapi_"), "the new token is shown once");
    screenshot(browser, "07b-account").await;
    sign_out(browser).await;

    // The admin: customers and all domains.
    sign_in(browser, &base, "root", STRONG).await;
    assert_eq!(text(browser, "h1").await, "Customers");
    fill(browser, "#customer-name", "initech").await;
    fill(browser, "#customer-password", "initech2024").await;
    click(browser, "#create-customer").await;
    assert!(text(browser, "#error").await.contains("characters"), "a short password is refused");
    fill(browser, "#customer-name", "initech").await;
    fill(browser, "#customer-password", STRONG).await;
    click(browser, "#create-customer").await;
    wait_for_text(browser, "#customers", "initech").await;
    // The customer's total: not below a mailbox's own limit; then set.
    fill(browser, "#quota-acme", "512K").await;
    click(browser, "#save-quota-acme").await;
    let refused = text(browser, "#error").await;
    assert!(refused.contains("has a storage limit of 1 MiB of its own"), "{refused}");
    fill(browser, "#quota-acme", "10G").await;
    click(browser, "#save-quota-acme").await;
    wait_for_text(browser, ".notice", "settings were saved").await;
    let acme = store.customer(&postfach_types::CustomerName::parse("acme").expect("name")).await.expect("acme");
    assert_eq!(acme.quota_bytes, Some(10 << 30));
    screenshot(browser, "08-admin-customers").await;
    browser.goto(&format!("{base}/admin/domains")).await.expect("all domains");
    let domains = text(browser, "#domains").await;
    assert!(domains.contains("globex.example") && domains.contains("acme.org"), "{domains}");
    screenshot(browser, "09-admin-domains").await;
    sign_out(browser).await;

    // The mailbox user: only their own mailbox, and the Apple profile link.
    sign_in(browser, &base, "max@acme.example", STRONG).await;
    assert_eq!(text(browser, "#mailbox-address").await, "max@acme.example");
    assert!(browser.find(Locator::Css("#settings-form")).await.is_err(), "settings are read-only");
    assert!(browser.find(Locator::Css("#mobileconfig")).await.is_ok());
    screenshot(browser, "10-mailbox-user").await;
    browser.goto(&format!("{base}/mailboxes/{}", ids.globex_mailbox)).await.expect("foreign");
    assert!(text(browser, "#error-message").await.contains("does not exist"));

    // The devices page: real IMAP logins with the mailbox's password and with an app
    // password made in the panel are listed as two groups; revoking from it works.
    store
        .set_mailbox_settings(
            Scope::Platform,
            &max.address,
            postfach_store::mailboxes::SettingsChange { access: Some(AccessMode::Imap), ..Default::default() },
        )
        .await
        .expect("IMAP again");
    assert_eq!(imap_login(imaps.port(), "max@acme.example", STRONG).await, "LOGGED IN");
    browser.goto(&max_url).await.expect("mailbox page");
    fill(browser, "#app-password-name", "Phone").await;
    click(browser, "#create-app-password").await;
    let app_password = text(browser, "#new-app-password").await;
    assert_eq!(imap_login(imaps.port(), "max@acme.example", &app_password).await, "LOGGED IN");
    browser.goto(&max_url).await.expect("mailbox page");
    click(browser, "#devices-link").await;
    wait_for_text(browser, "h1", "Devices").await;
    let rows = browser.find_all(Locator::Css("#device-list tbody tr")).await.expect("rows");
    let mut groups = Vec::new();
    for row in rows {
        let credential = row.find(Locator::Css(".device-credential")).await.expect("cell").text().await.expect("t");
        let service = row.find(Locator::Css(".device-service")).await.expect("cell").text().await.expect("t");
        groups.push(format!("{credential} / {service}"));
    }
    groups.sort();
    assert_eq!(groups, ["Mailbox password / IMAP", "Mailbox password / POP3", "Phone / IMAP"], "{groups:?}");
    assert!(text(browser, "#devices-main-password").await.contains("give it its own app password"));
    assert_eq!(browser.find_all(Locator::Css(".revoke-device")).await.expect("buttons").len(), 1, "app passwords only");
    screenshot(browser, "11-devices").await;
    click(browser, "#lang-switch").await;
    browser.wait().at_most(WAIT).for_element(Locator::Css("html[lang='de']")).await.expect("German");
    assert_eq!(text(browser, "h1").await, "Geräte");
    let list = text(browser, "#device-list").await;
    assert!(list.contains("Postfach-Passwort") && list.contains("Zuletzt gesehen") && list.contains("Phone"), "{list}");
    screenshot(browser, "11b-geraete").await;
    click(browser, "#lang-switch").await;
    browser.wait().at_most(WAIT).for_element(Locator::Css("html[lang='en']")).await.expect("English");
    click(browser, ".revoke-device").await;
    wait_for_text(browser, ".notice", "was revoked").await;
    assert_eq!(text(browser, "h1").await, "Devices", "back on the devices page");
    assert!(browser.find(Locator::Css(".revoke-device")).await.is_err(), "nothing left to revoke");
    let said = imap_login(imaps.port(), "max@acme.example", &app_password).await;
    assert!(said.starts_with("REFUSED"), "a revoked app password: {said}");

    // The panel sign-ins went through the login log as service "panel".
    let panel = store
        .logins(Scope::Platform, postfach_store::logins::LoginFilter::default())
        .await
        .expect("log")
        .into_iter()
        .filter(|r| r.service == Service::Panel)
        .count();
    assert!(panel >= 3, "{panel} panel sign-ins recorded");
}

/// The subjects in an IMAP folder, read with Python's imaplib over implicit TLS; `None`
/// when the folder does not exist (yet).
async fn imap_subjects(port: u16, user: &str, folder: &str) -> Option<Vec<String>> {
    let script = "import imaplib, os, ssl\n\
        ctx = ssl.create_default_context()\n\
        ctx.check_hostname = False\n\
        ctx.verify_mode = ssl.CERT_NONE\n\
        m = imaplib.IMAP4_SSL('127.0.0.1', int(os.environ['PORT']), ssl_context=ctx)\n\
        m.login(os.environ['USER'], os.environ['PASS'])\n\
        typ, _ = m.select('\"' + os.environ['FOLDER'] + '\"', readonly=True)\n\
        if typ != 'OK':\n    print('NO FOLDER')\n    raise SystemExit\n\
        typ, data = m.search(None, 'ALL')\n\
        for num in data[0].split():\n    typ, msg = m.fetch(num, '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')\n    \
        print('SUBJECT', msg[0][1].decode().strip().removeprefix('Subject: '))\n\
        m.logout()\n";
    let said = python(
        script,
        &[("PORT", port.to_string()), ("USER", user.into()), ("PASS", STRONG.into()), ("FOLDER", folder.into())],
    )
    .await;
    if said == "NO FOLDER" {
        return None;
    }
    let mut subjects: Vec<String> =
        said.lines().filter_map(|l| l.strip_prefix("SUBJECT ").map(str::to_string)).collect();
    subjects.sort();
    Some(subjects)
}

/// Waits until the IMAP folder holds exactly these subjects (delivery is asynchronous).
async fn wait_for_subjects(port: u16, user: &str, folder: &str, expected: &[&str]) {
    let deadline = std::time::Instant::now() + WAIT;
    let mut last = None;
    while std::time::Instant::now() < deadline {
        last = imap_subjects(port, user, folder).await;
        if last.as_deref().is_some_and(|s| s.iter().map(String::as_str).eq(expected.iter().copied())) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{folder} of {user} never held {expected:?}; last: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_and_vacation_in_a_real_browser() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, _dns) = start_server(&dir.path().join("data")).await;
    let https: SocketAddr = server.addresses().first("https").expect("https listener");
    let base = format!("https://localhost:{}", https.port());
    let ids = accounts(&server).await;
    let driver = Driver::start().await;
    let browser = driver.browser(&dir.path().join("chromium")).await;
    let outcome = AssertUnwindSafe(filters_flow(&browser, &server, &base, &ids)).catch_unwind().await;
    let _ = browser.close().await;
    driver.stop().await;
    server.shutdown().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Issue 17's panel: the vacation form and a filter rule in English, mail through the MX
/// sorted by the generated script (read back over IMAP), the Sieve view's line/column
/// error in German and English, a hand-written script shown as such, and another
/// customer refused.
async fn filters_flow(browser: &Client, server: &Server, base: &str, ids: &Ids) {
    let store = server.store();
    let anna = mailbox_on(server, "anna@acme.example").await;
    store.add_alias(Scope::Platform, &addr("info@acme.example"), &anna.address).await.expect("alias");
    let filters_url = format!("{base}/mailboxes/{}/filters", anna.id);
    let sieve_url = format!("{base}/mailboxes/{}/sieve", anna.id);

    // The customer opens the mailbox's filters from the mailbox page.
    sign_in(browser, base, "acme", STRONG).await;
    browser.goto(&format!("{base}/mailboxes/{}", anna.id)).await.expect("mailbox page");
    click(browser, "#filters-link").await;
    assert_eq!(text(browser, "h1").await, "Filters and vacation reply");
    assert!(text(browser, "#no-script").await.contains("No filter is active"));

    // A vacation reply for two weeks, also for the alias.
    click(browser, "#vacation-enabled").await;
    fill(browser, "#vacation-from", "2026-01-01").await;
    fill(browser, "#vacation-until", "2099-12-31").await;
    fill(browser, "#vacation-subject", "Away \"until\" further notice").await;
    fill(browser, "#vacation-text", "I am away.\nBack soon.").await;
    click(browser, ".vacation-address[value='info@acme.example']").await;
    fill(browser, "#vacation-days", "3").await;
    click(browser, "#save-vacation").await;
    wait_for_text(browser, ".notice", "The vacation reply was saved.").await;
    let subject = browser.find(Locator::Css("#vacation-subject")).await.expect("subject").prop("value").await;
    assert_eq!(subject.expect("value").as_deref(), Some("Away \"until\" further notice"));

    // A refused rule keeps what was typed and says why.
    fill(browser, "#rule-value", "Invoice").await;
    browser
        .find(Locator::Css("#rule-header option[value='subject']"))
        .await
        .expect("option")
        .click()
        .await
        .expect("pick");
    fill(browser, "#rule-folder", "").await;
    click(browser, "#add-rule").await;
    wait_for_text(browser, ".error", "Name the folder").await;
    assert_eq!(
        browser.find(Locator::Css("#rule-value")).await.expect("value").prop("value").await.expect("prop").as_deref(),
        Some("Invoice")
    );
    // Subject contains "Invoice" → move to the folder Invoices.
    fill(browser, "#rule-folder", "Invoices").await;
    click(browser, "#add-rule").await;
    wait_for_text(browser, ".notice", "The rule was added.").await;
    let rule = text(browser, "#rule-list .rule").await;
    assert!(rule.contains("Subject contains „Invoice“") && rule.contains("move to folder “Invoices”"), "{rule}");
    screenshot(browser, "17-filters").await;

    // The generated script is active and what the Sieve view shows.
    browser.goto(&sieve_url).await.expect("sieve view");
    assert_eq!(text(browser, "#script-name").await, "postfach");
    let script =
        browser.find(Locator::Css("#sieve-script")).await.expect("textarea").prop("value").await.expect("prop");
    let script = script.unwrap_or_default();
    assert!(script.contains("fileinto :create \"Invoices\";"), "{script}");
    assert!(script.contains(":subject \"Away \\\"until\\\" further notice\""), "{script}");

    // Edit as Sieve, in German: a syntax error is named with its line and column, and
    // nothing is stored.
    click(browser, "#lang-switch").await;
    wait_for_text(browser, "h1", "Als Sieve bearbeiten").await;
    fill(
        browser,
        "#sieve-script",
        "require \"fileinto\";\nif header :contains \"subject\" \"x\" {\n  fileinto \"X\"\n}\n",
    )
    .await;
    click(browser, "#save-sieve").await;
    wait_for_text(browser, ".error", "Zeile ").await;
    let error = text(browser, ".error").await;
    assert!(error.contains("Spalte"), "{error}");
    screenshot(browser, "17-sieve-error-de").await;
    // The same in English.
    click(browser, "#lang-switch").await;
    wait_for_text(browser, "h1", "Edit as Sieve").await;
    fill(browser, "#sieve-script", "if true {\n  keep\n").await;
    click(browser, "#save-sieve").await;
    wait_for_text(browser, ".error", "line ").await;
    assert!(text(browser, ".error").await.contains("column"));
    // The forms' script is still the active one.
    browser.goto(&filters_url).await.expect("filters");
    assert!(browser.find(Locator::Css("#hand-written")).await.is_err(), "a refused script changed nothing");

    // A hand-written script: saved, then shown as such on the forms, which ask before
    // replacing it (German).
    browser.goto(&sieve_url).await.expect("sieve view");
    fill(browser, "#sieve-script", "require \"imap4flags\";\naddflag \"\\\\Flagged\";\n").await;
    click(browser, "#save-sieve").await;
    wait_for_text(browser, ".notice", "checked, saved and is active").await;
    click(browser, "#lang-switch").await;
    browser.goto(&filters_url).await.expect("filters");
    wait_for_text(browser, "#hand-written", "von Hand").await;
    assert_eq!(text(browser, "#hand-written-name").await, "postfach");
    fill(browser, "#rule-value", "Newsletter").await;
    browser.find(Locator::Css("#rule-action option[value='mark_read']")).await.expect("o").click().await.expect("pick");
    click(browser, "#add-rule").await;
    wait_for_text(browser, ".error", "nicht mit diesen Formularen geschrieben").await;
    screenshot(browser, "17-hand-written-de").await;
    fill(browser, "#rule-value", "Newsletter").await;
    browser.find(Locator::Css("#rule-action option[value='mark_read']")).await.expect("o").click().await.expect("pick");
    click(browser, "#rule-replace").await;
    click(browser, "#add-rule").await;
    wait_for_text(browser, ".notice", "Die Regel wurde hinzugefügt.").await;
    assert!(browser.find(Locator::Css("#hand-written")).await.is_err());
    // The hand-written script recorded no form state: the forms start from it anew.
    let rules = text(browser, "#rule-list").await;
    assert!(rules.contains("als gelesen markieren") && !rules.contains("Invoice"), "{rules}");
    // The invoice rule again, in German; moved up to come first; the other one removed.
    browser.find(Locator::Css("#rule-header option[value='subject']")).await.expect("o").click().await.expect("pick");
    fill(browser, "#rule-value", "Invoice").await;
    fill(browser, "#rule-folder", "Invoices").await;
    click(browser, "#add-rule").await;
    wait_for_text(browser, ".notice", "Die Regel wurde hinzugefügt.").await;
    // The notice is the same as the previous page's: wait for the new rule itself.
    wait_for_text(browser, "#rule-list", "Betreff enthält „Invoice“").await;
    click(browser, ".rule-up").await;
    wait_for_text(browser, ".notice", "Die Filter wurden gespeichert.").await;
    assert!(text(browser, "#rule-list .rule").await.contains("Invoice"));
    click(browser, "#rule-list .rule:nth-child(2) .rule-remove").await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        // The page is reloading after the click: an element found on the old page may be
        // gone before its text is read (then try again).
        let rules = match browser.find(Locator::Css("#rule-list")).await {
            Ok(list) => list.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if !rules.is_empty() && !rules.contains("Newsletter") {
            assert!(rules.contains("in Ordner „Invoices“ verschieben"), "{rules}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the rule was never removed: {rules}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The hand-written script was kept under its own name.
    let kept = fetch_json(browser, "GET", &format!("/api/v1/mailboxes/{}/filters", anna.id)).await;
    assert_eq!(kept["active"], "forms", "{kept}");
    let scripts = store.sieve_scripts(Scope::Platform, anna.id).await.expect("scripts");
    let names: Vec<(&str, bool)> = scripts.iter().map(|s| (s.name.as_str(), s.active)).collect();
    assert_eq!(names, [("postfach", true), ("postfach-by-hand", false)]);
    let listed = fetch_json(browser, "GET", &format!("/api/v1/mailboxes/{}/sieve/scripts", anna.id)).await;
    assert_eq!(listed[1]["name"], "postfach-by-hand", "{listed}");
    click(browser, "#lang-switch").await;
    sign_out(browser).await;

    // Another customer: the mailbox's filters do not exist for them, in the panel and the API.
    sign_in(browser, base, "globex", STRONG).await;
    for path in [format!("/mailboxes/{}/filters", anna.id), format!("/mailboxes/{}/sieve", anna.id)] {
        browser.goto(&format!("{base}{path}")).await.expect("page");
        assert!(browser.find(Locator::Css("#vacation-form, #sieve-form")).await.is_err(), "{path}");
    }
    for (method, path, body) in [
        ("GET", format!("/api/v1/mailboxes/{}/filters", anna.id), json!(null)),
        ("PUT", format!("/api/v1/mailboxes/{}/filters", anna.id), json!({ "rules": [] })),
        ("PUT", format!("/api/v1/mailboxes/{}/vacation", anna.id), json!({ "enabled": false })),
        ("GET", format!("/api/v1/mailboxes/{}/sieve", anna.id), json!(null)),
        ("PUT", format!("/api/v1/mailboxes/{}/sieve", anna.id), json!({ "text": "keep;" })),
        ("GET", format!("/api/v1/mailboxes/{}/sieve/scripts", anna.id), json!(null)),
        ("PUT", format!("/api/v1/mailboxes/{}/sieve/active", anna.id), json!({ "name": null })),
    ] {
        assert_eq!(fetch_status(browser, method, &path, body).await, 404, "{method} {path}");
    }
    // Their own mailbox answers.
    let own = fetch_json(browser, "GET", &format!("/api/v1/mailboxes/{}/filters", ids.globex_mailbox)).await;
    assert_eq!(own["active"], "none", "{own}");
    sign_out(browser).await;
}

/// Runs `fetch` in the page like [`fetch_status`]; returns the JSON answer.
async fn fetch_json(browser: &Client, method: &str, path: &str) -> serde_json::Value {
    let script = r#"
        const [method, path, done] = arguments;
        fetch(path, { method, credentials: "same-origin" })
          .then(r => r.json()).then(done, e => done({ failed: String(e) }));
    "#;
    browser.execute_async(script, vec![json!(method), json!(path)]).await.expect("fetch")
}

/// A mailbox of the customer `acme` on `server`, with the password `STRONG`.
async fn mailbox_on(server: &Server, address: &str) -> postfach_store::mailboxes::Mailbox {
    let strong = Secret::new(STRONG.to_string());
    create_mailbox(
        server.store(),
        server.authenticator().hasher(),
        Scope::Platform,
        &addr(address),
        &strong,
        MailboxSettings::default(),
    )
    .await
    .expect("mailbox")
}

/// The administrative operations as the mailbox's own user (for its scripts and forms).
fn as_mailbox_user(
    server: &Server,
    mailbox: &postfach_store::mailboxes::Mailbox,
) -> (postfach_admin::Admin, postfach_admin::Who) {
    let admin = postfach_admin::Admin::new(server.store().clone(), server.authenticator().clone(), None);
    (admin, postfach_admin::Who::Mailbox { mailbox: mailbox.clone() })
}

/// The forms' script at delivery: real mail through the MX is filed by the rule the
/// forms wrote (read back over IMAP), the other message stays in INBOX. The forms are
/// saved through the same admin operation the panel's form handler calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forms_script_files_real_mail() {
    use postfach_admin::sieve_forms::RuleInput;
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, _dns) = start_server(&dir.path().join("data")).await;
    accounts(&server).await;
    let anna = mailbox_on(&server, "anna@acme.example").await;
    let (admin, who) = as_mailbox_user(&server, &anna);
    let rule = RuleInput {
        header: "subject".into(),
        match_type: "contains".into(),
        value: "Invoice".into(),
        action: "move".into(),
        folder: "Invoices".into(),
    };
    admin.set_filters(&who, anna.id, &[rule], false).await.expect("filters saved");
    let smtp = server.addresses().first("smtp").expect("smtp listener").port();
    let imaps = server.addresses().first("imaps").expect("imaps listener").port();
    smtp_send(smtp, "anna@acme.example", "Invoice 42").await;
    smtp_send(smtp, "anna@acme.example", "Lunch?").await;
    wait_for_subjects(imaps, "anna@acme.example", "Invoices", &["Invoice 42"]).await;
    wait_for_subjects(imaps, "anna@acme.example", "INBOX", &["Lunch?"]).await;
    server.shutdown().await;
}

/// The FLAGS of every message in an IMAP folder, one line each.
async fn imap_flags(port: u16, user: &str, folder: &str) -> String {
    let script = "import imaplib, os, ssl\n\
        ctx = ssl.create_default_context()\n\
        ctx.check_hostname = False\n\
        ctx.verify_mode = ssl.CERT_NONE\n\
        m = imaplib.IMAP4_SSL('127.0.0.1', int(os.environ['PORT']), ssl_context=ctx)\n\
        m.login(os.environ['USER'], os.environ['PASS'])\n\
        m.select('\"' + os.environ['FOLDER'] + '\"', readonly=True)\n\
        typ, data = m.fetch('1:*', '(FLAGS)')\n\
        for line in data:\n    print(line.decode())\n\
        m.logout()\n";
    python(
        script,
        &[("PORT", port.to_string()), ("USER", user.into()), ("PASS", STRONG.into()), ("FOLDER", folder.into())],
    )
    .await
}

/// Sieve at final delivery over the real MX, read back over IMAP: `fileinto :create` with
/// a flag makes the folder and sets the flag, `discard` stores nothing, and a script that
/// files into a missing folder without `:create` keeps the message in INBOX.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sieve_at_delivery_files_discards_and_keeps() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, _dns) = start_server(&dir.path().join("data")).await;
    accounts(&server).await;
    let anna = mailbox_on(&server, "anna@acme.example").await;
    let (admin, who) = as_mailbox_user(&server, &anna);
    let script = r#"require ["fileinto", "mailbox", "imap4flags"];
if header :contains "subject" "Invoice" { fileinto :create :flags "\\Flagged" "Invoices"; stop; }
if header :contains "subject" "Offer" { discard; stop; }
if header :contains "subject" "Lost" { fileinto "Nowhere"; stop; }
"#;
    admin.put_script(&who, anna.id, "rules", script).await.expect("script stored");
    admin.activate_script(&who, anna.id, Some("rules")).await.expect("script active");
    let smtp = server.addresses().first("smtp").expect("smtp listener").port();
    let imaps = server.addresses().first("imaps").expect("imaps listener").port();
    for subject in ["Invoice 7", "Offer of the week", "Lost and found", "Hello"] {
        smtp_send(smtp, "anna@acme.example", subject).await;
    }
    wait_for_subjects(imaps, "anna@acme.example", "Invoices", &["Invoice 7"]).await;
    wait_for_subjects(imaps, "anna@acme.example", "INBOX", &["Hello", "Lost and found"]).await;
    assert_eq!(imap_subjects(imaps, "anna@acme.example", "Nowhere").await, None, "no folder made without :create");
    let flags = imap_flags(imaps, "anna@acme.example", "Invoices").await;
    assert!(flags.contains("\\Flagged"), "the filed message is flagged: {flags}");
    server.shutdown().await;
}

/// `redirect` at delivery: to another mailbox of the same customer it delivers there (and
/// not to the filtering mailbox); to another customer's mailbox or an outside address it
/// is refused and the message kept in INBOX.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sieve_redirect_stays_with_the_customer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, _dns) = start_server(&dir.path().join("data")).await;
    accounts(&server).await;
    let anna = mailbox_on(&server, "anna@acme.example").await;
    mailbox_on(&server, "ben@acme.example").await;
    let (admin, who) = as_mailbox_user(&server, &anna);
    let script = r#"if header :contains "subject" "Team" { redirect "ben@acme.example"; }
elsif header :contains "subject" "Globex" { redirect "eva@globex.example"; }
elsif header :contains "subject" "Outside" { redirect "someone@elsewhere.example"; }
"#;
    admin.put_script(&who, anna.id, "forward", script).await.expect("script stored");
    admin.activate_script(&who, anna.id, Some("forward")).await.expect("script active");
    let smtp = server.addresses().first("smtp").expect("smtp listener").port();
    let imaps = server.addresses().first("imaps").expect("imaps listener").port();
    for subject in ["Team news", "Globex news", "Outside news"] {
        smtp_send(smtp, "anna@acme.example", subject).await;
    }
    wait_for_subjects(imaps, "ben@acme.example", "INBOX", &["Team news"]).await;
    wait_for_subjects(imaps, "anna@acme.example", "INBOX", &["Globex news", "Outside news"]).await;
    wait_for_subjects(imaps, "eva@globex.example", "INBOX", &[]).await;
    server.shutdown().await;
}

/// Sends one message to `rcpts` (comma-separated) over the MX; prints the server's answer
/// to the message (`250 …` or the refusal's code and text).
async fn smtp_send_answer(port: u16, rcpts: &str, subject: &str) -> String {
    let script = "import smtplib, os\n\
        rcpts = os.environ['RCPTS'].split(',')\n\
        msg = 'From: friend@outside.example\\r\\nTo: ' + ', '.join(rcpts) + '\\r\\nSubject: ' + os.environ['SUBJECT'] + '\\r\\n\\r\\nHello.\\r\\n'\n\
        s = smtplib.SMTP('127.0.0.1', int(os.environ['PORT']))\n\
        try:\n    s.sendmail('friend@outside.example', rcpts, msg)\n    print('250')\n\
        except smtplib.SMTPDataError as e:\n    print(e.smtp_code, e.smtp_error.decode())\n\
        s.quit()\n";
    python(script, &[("PORT", port.to_string()), ("RCPTS", rcpts.into()), ("SUBJECT", subject.into())]).await
}

/// `reject` at delivery: with the mailbox as the only recipient the MX answers `550` with
/// the script's reason and stores nothing; with several recipients the message is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sieve_reject_refuses_a_single_recipient_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, _dns) = start_server(&dir.path().join("data")).await;
    accounts(&server).await;
    let anna = mailbox_on(&server, "anna@acme.example").await;
    mailbox_on(&server, "ben@acme.example").await;
    let (admin, who) = as_mailbox_user(&server, &anna);
    let script = "require \"reject\";\nif header :contains \"subject\" \"Ads\" { reject \"No ads, please.\"; }\n";
    admin.put_script(&who, anna.id, "noads", script).await.expect("script stored");
    admin.activate_script(&who, anna.id, Some("noads")).await.expect("script active");
    let smtp = server.addresses().first("smtp").expect("smtp listener").port();
    let imaps = server.addresses().first("imaps").expect("imaps listener").port();
    let answer = smtp_send_answer(smtp, "anna@acme.example", "Ads for you").await;
    assert!(answer.starts_with("550") && answer.contains("No ads, please."), "{answer}");
    assert_eq!(smtp_send_answer(smtp, "anna@acme.example,ben@acme.example", "Ads for both").await, "250");
    wait_for_subjects(imaps, "ben@acme.example", "INBOX", &["Ads for both"]).await;
    wait_for_subjects(imaps, "anna@acme.example", "INBOX", &["Ads for both"]).await;
    server.shutdown().await;
}

/// Issue 17's move-in from the panel: the customer fills "Move in from your old provider"
/// with a real Dovecot's address, login and password; the page reloads itself until the
/// job is done; then every message of the old server is read back over IMAP here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_in_from_an_old_provider_in_a_real_browser() {
    use postfach_testdovecot::{Dovecot, READ_ALL, fill, parse_folders};
    let old_dir = tempfile::tempdir().expect("temp dir");
    let dovecot = Dovecot::start(old_dir.path());
    fill(&dovecot, &[("INBOX", 20), ("Sent", 10), ("Projects/2024", 8), ("Deleted Messages", 3)], 1);
    let old = parse_folders(&dovecot.python(READ_ALL));
    let dir = tempfile::tempdir().expect("temp dir");
    let extra = format!("[import]\nallow_private_targets = true\nca_file = \"{}\"\n", dovecot.ca().display());
    let (server, _dns) = start_server_with(&dir.path().join("data"), &extra).await;
    let https: SocketAddr = server.addresses().first("https").expect("https listener");
    let base = format!("https://localhost:{}", https.port());
    accounts(&server).await;
    let max = mailbox_on(&server, "max@acme.example").await;
    let driver = Driver::start().await;
    let browser = driver.browser(&dir.path().join("chromium")).await;
    let outcome = AssertUnwindSafe(import_flow(&browser, &base, max.id, &dovecot)).catch_unwind().await;
    let _ = browser.close().await;
    driver.stop().await;
    if let Err(panic) = outcome {
        server.shutdown().await;
        std::panic::resume_unwind(panic);
    }
    let imaps = server.addresses().first("imaps").expect("imaps").port();
    let cert = dir.path().join("data/tls/cert.pem");
    let ours = parse_folders(&postfach_testdovecot::python_imap(imaps, &cert, "max@acme.example", STRONG, READ_ALL));
    server.shutdown().await;
    for (name, messages) in &old {
        let here = if name == "Deleted Messages" { "Trash" } else { name.as_str() };
        assert_eq!(ours.get(here), Some(messages), "{name} → {here}: dates, flags and bytes");
    }
}

async fn import_flow(browser: &Client, base: &str, mailbox: MailboxId, dovecot: &postfach_testdovecot::Dovecot) {
    sign_in(browser, base, "acme", STRONG).await;
    browser.goto(&format!("{base}/mailboxes/{mailbox}")).await.expect("mailbox page");
    click(browser, "#import-link").await;
    browser.wait().at_most(WAIT).for_element(Locator::Css("#import-form")).await.expect("the import form");
    fill(browser, "#import-host", "localhost").await;
    fill(browser, "#import-port", &dovecot.imaps.to_string()).await;
    fill(browser, "#import-login", postfach_testdovecot::OLD_LOGIN).await;
    fill(browser, "#import-password", postfach_testdovecot::OLD_PASSWORD).await;
    click(browser, "#import-submit").await;
    // The result page reloads itself while the job runs; wait until it says done.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let state = browser.find(Locator::Css("#import-job-list .import-job")).await.ok();
        let state = match state {
            Some(row) => row.attr("data-state").await.ok().flatten().unwrap_or_default(),
            None => String::new(),
        };
        if state == "done" {
            break;
        }
        assert!(state != "failed", "the import failed: {}", text(browser, "#import-jobs").await);
        assert!(std::time::Instant::now() < deadline, "the import did not finish; last state {state:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(text(browser, "#import-jobs").await.contains("Done"), "the state is said in words");
    assert_eq!(text(browser, "#import-job-list .import-copied").await, "41");
    assert!(text(browser, ".import-result").await.contains("41 messages copied"));
    assert!(browser.find(Locator::Css("#import-form")).await.is_ok(), "the form is back once the job ended");
    screenshot(browser, "import").await;
}

/// The reporting address the TLS-RPT test configures.
const TLS_REPORTS: &str = "tls-reports@mail.postfach.test";

/// Sends a TLS report as RFC 8460 §5.3 describes it, made with Python's email and gzip
/// modules: `multipart/report; report-type=tlsrpt` with the gzip-compressed JSON as an
/// `application/tlsrpt+gzip` attachment (or `BODY` as it is when `RAW` is set). Prints the
/// server's answer to the message (`250` or the refusal's code and text).
async fn send_tls_report(port: u16, domain: &str, report: &str, raw_body: Option<&str>) -> String {
    let script = "import smtplib, os, gzip\n\
        from email.mime.multipart import MIMEMultipart\n\
        from email.mime.text import MIMEText\n\
        from email.mime.application import MIMEApplication\n\
        msg = MIMEMultipart('report', report_type='tlsrpt')\n\
        msg['From'] = 'noreply-smtp-tls-reporting@company-x.example'\n\
        msg['To'] = os.environ['RCPT']\n\
        msg['Subject'] = 'Report Domain: ' + os.environ['DOMAIN'] + ' Submitter: company-x.example Report-ID: <' + os.environ['ID'] + '>'\n\
        msg['TLS-Report-Domain'] = os.environ['DOMAIN']\n\
        msg['TLS-Report-Submitter'] = 'company-x.example'\n\
        msg.attach(MIMEText('This is an aggregate TLS report from company-x.example'))\n\
        if os.environ.get('RAW'):\n    part = MIMEApplication(os.environ['RAW'].encode(), _subtype='tlsrpt+gzip')\n\
        else:\n    part = MIMEApplication(gzip.compress(os.environ['REPORT'].encode()), _subtype='tlsrpt+gzip')\n\
        part.add_header('Content-Disposition', 'attachment', filename='company-x.example!' + os.environ['DOMAIN'] + '!1795737600!1795823999.json.gz')\n\
        msg.attach(part)\n\
        s = smtplib.SMTP('127.0.0.1', int(os.environ['PORT']))\n\
        try:\n    s.sendmail('noreply-smtp-tls-reporting@company-x.example', [os.environ['RCPT']], msg.as_bytes())\n    print('250')\n\
        except smtplib.SMTPDataError as e:\n    print(e.smtp_code, e.smtp_error.decode())\n\
        s.quit()\n";
    let mut env = vec![
        ("PORT", port.to_string()),
        ("RCPT", TLS_REPORTS.to_string()),
        ("DOMAIN", domain.to_string()),
        ("REPORT", report.to_string()),
        ("ID", "2026-11-28T00:00:00Z_globex.example".to_string()),
    ];
    if let Some(raw) = raw_body {
        env.push(("RAW", raw.to_string()));
    }
    python(script, &env).await
}

/// A report in RFC 8460 §4 form about `domain` for 28 November 2026, from `organization`.
fn tls_report_json(organization: &str, domain: &str) -> String {
    json!({
        "organization-name": organization,
        "date-range": { "start-datetime": "2026-11-28T00:00:00Z", "end-datetime": "2026-11-28T23:59:59Z" },
        "contact-info": "smtp-tls-reporting@company-x.example",
        "report-id": format!("2026-11-28T00:00:00Z_{domain}"),
        "policies": [{
            "policy": { "policy-type": "no-policy-found", "policy-domain": domain },
            "summary": { "total-successful-session-count": 41, "total-failure-session-count": 7 },
            "failure-details": [
                { "result-type": "starttls-not-supported", "sending-mta-ip": "198.51.100.25",
                  "receiving-mx-hostname": "mail.postfach.test", "failed-session-count": 5 },
                { "result-type": "certificate-expired", "sending-mta-ip": "198.51.100.26",
                  "receiving-mx-hostname": "mail.postfach.test", "failed-session-count": 2 }
            ]
        }]
    })
    .to_string()
}

/// Issue 18's TLS-RPT: real report mails (gzip JSON made by Python) to the reporting
/// address of the running server appear on the domain's page, in English and German and
/// through the API; another customer sees nothing of them; reports about other domains
/// are dropped and broken ones refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_reports_on_the_domain_page() {
    let dir = tempfile::tempdir().expect("temp dir");
    let extra = format!("[tls_reports]\naddress = \"{TLS_REPORTS}\"\n");
    let (server, _dns) = start_server_with(&dir.path().join("data"), &extra).await;
    let https: SocketAddr = server.addresses().first("https").expect("https listener");
    let base = format!("https://localhost:{}", https.port());
    let ids = accounts(&server).await;
    let driver = Driver::start().await;
    let browser = driver.browser(&dir.path().join("chromium")).await;
    let outcome = AssertUnwindSafe(tls_reports_flow(&browser, &server, &base, &ids)).catch_unwind().await;
    let _ = browser.close().await;
    driver.stop().await;
    server.shutdown().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn tls_reports_flow(browser: &Client, server: &Server, base: &str, ids: &Ids) {
    let smtp = server.addresses().first("smtp").expect("smtp listener").port();
    let report = tls_report_json("Company-X", "globex.example");
    assert_eq!(send_tls_report(smtp, "globex.example", &report, None).await, "250");
    // A report about a domain not hosted here is taken and dropped; a broken one refused.
    let elsewhere = tls_report_json("Company-X", "elsewhere.example");
    assert_eq!(send_tls_report(smtp, "elsewhere.example", &elsewhere, None).await, "250");
    let broken = send_tls_report(smtp, "globex.example", &report, Some("not gzip")).await;
    assert!(broken.starts_with("550") && broken.contains("gzip"), "{broken}");

    // The owner sees the report on the domain page, in English ...
    sign_in(browser, base, "globex", STRONG).await;
    let page = format!("{base}/domains/{}", ids.globex_domain);
    browser.goto(&page).await.expect("domain page");
    wait_for_text(browser, "#tls-report-list", "Company-X").await;
    let list = text(browser, "#tls-report-list").await;
    assert!(list.contains("2026-11-28 00:00:00 UTC – 2026-11-28 23:59:59 UTC"), "{list}");
    assert!(list.contains("41") && list.contains('7'), "{list}");
    let failures = text(browser, "#tls-failures").await;
    assert!(failures.contains("STARTTLS not offered") && failures.contains("starttls-not-supported"), "{failures}");
    assert!(failures.contains("Certificate expired"), "{failures}");
    let rows: Vec<String> = failures.lines().map(str::to_string).collect();
    assert!(rows.iter().any(|r| r.contains("Company-X") && r.contains("STARTTLS") && r.ends_with('5')), "{rows:?}");
    let records = text(browser, "#dns-records").await;
    assert!(records.contains("_smtp._tls.globex.example"), "{records}");
    assert!(records.contains(&format!("v=TLSRPTv1; rua=mailto:{TLS_REPORTS}")), "{records}");
    screenshot(browser, "tls-reports").await;

    // ... and in German.
    click(browser, "#lang-switch").await;
    browser.wait().at_most(WAIT).for_element(Locator::Css("html[lang='de']")).await.expect("German");
    wait_for_text(browser, "#tls-reports h2", "TLS-Berichte").await;
    let failures = text(browser, "#tls-failures").await;
    assert!(failures.contains("Kein STARTTLS angeboten") && failures.contains("Zertifikat abgelaufen"), "{failures}");
    assert!(text(browser, "#tls-report-list").await.contains("Zeitraum"));
    click(browser, "#lang-switch").await;
    browser.wait().at_most(WAIT).for_element(Locator::Css("html[lang='en']")).await.expect("English");

    // The API answers the same.
    let api = fetch_json(browser, "GET", &format!("/api/v1/domains/{}/tls-reports", ids.globex_domain)).await;
    assert_eq!(api["reports"][0]["organization"], "Company-X", "{api}");
    assert_eq!(api["reports"][0]["failed"], 7, "{api}");
    assert_eq!(api["failures"][0]["result_type"], "starttls-not-supported", "{api}");
    assert_eq!(api["failures"][0]["failed"], 5, "{api}");
    sign_out(browser).await;

    // Another customer: the page and the API do not exist for them; their own domain
    // has no reports.
    sign_in(browser, base, "acme", STRONG).await;
    browser.goto(&page).await.expect("foreign page");
    assert!(text(browser, "#error-message").await.contains("does not exist"));
    let api = fetch_json(browser, "GET", &format!("/api/v1/domains/{}/tls-reports", ids.globex_domain)).await;
    assert!(api.get("reports").is_none(), "{api}");
    let acme = server.store().domain(Scope::Platform, &DomainName::parse("acme.example").expect("d")).await;
    browser.goto(&format!("{base}/domains/{}", acme.expect("acme").id)).await.expect("own page");
    assert!(text(browser, "#tls-reports-none").await.contains("No reports"));
    sign_out(browser).await;
}

/// Issue 18: the domain page's MTA-STS mode, and the DNS section listing the `_mta-sts`
/// and `mta-sts.` records with their checks, in English and German.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mta_sts_on_the_domain_page_in_a_real_browser() {
    let dir = tempfile::tempdir().expect("temp dir");
    let zone = vec![
        Rr::new("mail.postfach.test", Data::A("127.0.0.1".parse().expect("ip"))),
        Rr::new("acme.example", Data::Mx(10, "mail.postfach.test".into())),
    ];
    let (server, dns) = start_server_named(&dir.path().join("data"), "mail.postfach.test", zone, "").await;
    let https: SocketAddr = server.addresses().first("https").expect("https listener");
    let base = format!("https://localhost:{}", https.port());
    accounts(&server).await;
    let driver = Driver::start().await;
    let browser = driver.browser(&dir.path().join("chromium")).await;
    let outcome = AssertUnwindSafe(mta_sts_flow(&browser, &server, &dns, &base)).catch_unwind().await;
    let _ = browser.close().await;
    driver.stop().await;
    server.shutdown().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn mta_sts_flow(browser: &Client, server: &Server, dns: &TestDns, base: &str) {
    let store = server.store();
    let acme = DomainName::parse("acme.example").expect("d");
    let domain = store.domain(Scope::Platform, &acme).await.expect("domain");
    sign_in(browser, base, "acme", STRONG).await;
    browser.goto(&format!("{base}/domains/{}", domain.id)).await.expect("domain page");
    let records = text(browser, "#dns-records").await;
    assert!(!records.contains("_mta-sts"), "off: no MTA-STS records: {records}");

    // The customer switches MTA-STS to testing: the records to publish appear.
    let select = browser.find(Locator::Css("#mta-sts-mode")).await.expect("mode");
    select.select_by_value("testing").await.expect("testing");
    click(browser, "#mta-sts-save").await;
    wait_for_text(browser, ".notice", "The MTA-STS mode was saved").await;
    assert_eq!(store.domain(Scope::Platform, &acme).await.expect("d").mta_sts.as_str(), "testing");
    let records = text(browser, "#dns-records").await;
    assert!(records.contains("_mta-sts.acme.example") && records.contains("v=STSv1; id="), "{records}");
    assert!(records.contains("mta-sts.acme.example") && records.contains("mail.postfach.test."), "{records}");

    // The check names what is missing, in English.
    click(browser, "#check-dns").await;
    wait_for_text(browser, "#dns-findings", "The MTA-STS record of acme.example is missing").await;
    let findings = text(browser, "#dns-findings").await;
    assert!(findings.contains("https://mta-sts.acme.example/.well-known/mta-sts.txt cannot be fetched"), "{findings}");
    screenshot(browser, "18-mta-sts-missing").await;

    // Published: the record check turns green; in German too.
    let policy =
        postfach_dns::mta_sts::policy(&DomainName::parse("mail.postfach.test").expect("h"), domain_mode(server).await)
            .expect("policy");
    dns.set("_mta-sts.acme.example", Type::Txt, vec![Data::txt(&postfach_dns::mta_sts::txt_value(&policy))]);
    click(browser, "#check-dns").await;
    wait_for_text(browser, "#dns-findings", "The MTA-STS record of acme.example names the current policy.").await;
    click(browser, "#lang-switch").await;
    browser.wait().at_most(WAIT).for_element(Locator::Css("html[lang='de']")).await.expect("German");
    let findings = text(browser, "#dns-findings").await;
    assert!(findings.contains("Der MTA-STS-Eintrag von acme.example nennt die aktuelle Richtlinie."), "{findings}");
    assert!(findings.contains("ist nicht abrufbar"), "{findings}");
    assert!(text(browser, "#mta-sts").await.contains("Modus"));
    screenshot(browser, "18-mta-sts-de").await;
    click(browser, "#lang-switch").await;
    browser.wait().at_most(WAIT).for_element(Locator::Css("html[lang='en']")).await.expect("English");
}

async fn domain_mode(server: &Server) -> postfach_store::domains::MtaStsMode {
    let acme = DomainName::parse("acme.example").expect("d");
    server.store().domain(Scope::Platform, &acme).await.expect("domain").mta_sts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_require_tls_in_a_real_browser() {
    let dir = tempfile::tempdir().expect("temp dir");
    // outside.test's only mail server does not offer STARTTLS.
    let sink = sink::Sink::start_with(sink::Behaviour::Accept, sink::Offer { starttls: false, ..Default::default() });
    let (server, _dns, base) = server_sending_to(&sink, dir.path()).await;
    mailbox_on(&server, "max@acme.example").await;
    let driver = Driver::start().await;
    let browser = driver.browser(&dir.path().join("chromium")).await;
    let outcome = AssertUnwindSafe(require_tls_flow(&browser, &server, &sink, &base)).catch_unwind().await;
    let _ = browser.close().await;
    driver.stop().await;
    server.shutdown().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// A server whose mail to outside.test goes to `sink`, with the accounts; its panel's URL.
async fn server_sending_to(sink: &sink::Sink, dir: &std::path::Path) -> (Server, TestDns, String) {
    let zone = vec![
        Rr::new("outside.test", Data::Mx(10, "mx.outside.test".into())),
        Rr::new("mx.outside.test", Data::A("127.0.0.1".parse().expect("ip"))),
    ];
    let extra = format!("[outbound]\nsmtp_port = {}\n", sink.port());
    let (server, dns) = start_server_listening(&dir.join("data"), "localhost", zone, "[\"127.0.0.1:0\"]", &extra).await;
    let https: SocketAddr = server.addresses().first("https").expect("https listener");
    let base = format!("https://localhost:{}", https.port());
    accounts(&server).await;
    (server, dns, base)
}

/// Whether the checkbox `css` is ticked.
async fn ticked(browser: &Client, css: &str) -> bool {
    let field = browser.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    field.prop("checked").await.expect("checked").as_deref() == Some("true")
}

/// Sends one message with Python's smtplib over submission (STARTTLS, login); prints `SENT`.
async fn submit(port: u16, user: &str, rcpt: &str, subject: &str) {
    let script = "import smtplib, os, ssl\n\
        ctx = ssl.create_default_context()\n\
        ctx.check_hostname = False\n\
        ctx.verify_mode = ssl.CERT_NONE\n\
        msg = 'From: ' + os.environ['USER'] + '\\r\\nTo: ' + os.environ['RCPT'] + '\\r\\nSubject: ' + os.environ['SUBJECT'] + '\\r\\n\\r\\nPrivate.\\r\\n'\n\
        s = smtplib.SMTP('127.0.0.1', int(os.environ['PORT']))\n\
        s.starttls(context=ctx)\n\
        s.login(os.environ['USER'], os.environ['PASS'])\n\
        s.sendmail(os.environ['USER'], [os.environ['RCPT']], msg)\n\
        s.quit()\nprint('SENT')\n";
    let env = [
        ("PORT", port.to_string()),
        ("USER", user.into()),
        ("PASS", STRONG.into()),
        ("RCPT", rcpt.into()),
        ("SUBJECT", subject.into()),
    ];
    assert_eq!(python(script, &env).await, "SENT");
}

async fn require_tls_flow(browser: &Client, server: &Server, sink: &sink::Sink, base: &str) {
    let store = server.store();
    let required = async || store.mailbox(Scope::Platform, &addr("max@acme.example")).await.expect("max");
    let max = required().await;
    assert!(!max.outbound_tls_required, "off by default");

    // The mailbox user switches it on, in English.
    sign_in(browser, base, "max@acme.example", STRONG).await;
    browser.goto(&format!("{base}/mailboxes/{}", max.id)).await.expect("mailbox page");
    assert!(text(browser, "#require-tls-why").await.contains("only sent to servers that accept encryption"));
    assert!(!ticked(browser, "#require-tls").await);
    click(browser, "#require-tls").await;
    click(browser, "#save-require-tls").await;
    wait_for_text(browser, ".notice", "The settings were saved").await;
    assert!(required().await.outbound_tls_required);
    assert!(ticked(browser, "#require-tls").await, "the page shows it on");
    screenshot(browser, "18-require-tls").await;

    // In German: off and on again, with the German explanation.
    click(browser, "#lang-switch").await;
    browser.wait().at_most(WAIT).for_element(Locator::Css("html[lang='de']")).await.expect("German");
    assert!(text(browser, "#outbound-tls-form").await.contains("Immer verschlüsselt an andere Server senden"));
    assert!(text(browser, "#require-tls-why").await.contains("nur an Server, die Verschlüsselung annehmen"));
    click(browser, "#require-tls").await;
    click(browser, "#save-require-tls").await;
    wait_for_text(browser, ".notice", "Die Einstellungen wurden gespeichert").await;
    assert!(!required().await.outbound_tls_required, "switched off");
    click(browser, "#require-tls").await;
    click(browser, "#save-require-tls").await;
    wait_for_text(browser, ".notice", "Die Einstellungen wurden gespeichert").await;
    assert!(required().await.outbound_tls_required, "on again");
    click(browser, "#lang-switch").await;
    browser.wait().at_most(WAIT).for_element(Locator::Css("html[lang='en']")).await.expect("English");
    sign_out(browser).await;

    // Mail from the mailbox to outside.test, whose server cannot encrypt, is not sent.
    let submission = server.addresses().first("submission").expect("submission listener");
    submit(submission.port(), "max@acme.example", "friend@outside.test", "Private").await;
    // The queue lifetime is at least 60 s (config), so the notice would come only when it
    // runs out; the deferral with its reason is what the sender's queue shows until then.
    let deadline = std::time::Instant::now() + WAIT;
    let diagnostic = loop {
        let queued = store.queue_list(Scope::Platform).await.expect("queue");
        let tried = queued.iter().flat_map(|m| &m.recipients).find(|r| r.attempts > 0);
        if let Some(r) = tried {
            break r.diagnostic.clone().unwrap_or_default();
        }
        assert!(std::time::Instant::now() < deadline, "no delivery attempt: {queued:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(diagnostic.contains("did not offer STARTTLS"), "{diagnostic}");
    assert!(sink.received().is_empty() && sink.attempts().is_empty(), "nothing was sent in plaintext");

    // The customer switches it on for all its mailboxes, on its own account page.
    let acme_required = async || {
        let acme = store.customers().await.expect("customers").into_iter().find(|c| c.name.as_str() == "acme");
        acme.expect("acme").outbound_tls_required
    };
    sign_in(browser, base, "acme", STRONG).await;
    browser.goto(&format!("{base}/account")).await.expect("account page");
    assert!(text(browser, "#require-tls-account-why").await.contains("Mail from all your mailboxes"));
    assert!(!ticked(browser, "#require-tls-account").await);
    click(browser, "#require-tls-account").await;
    click(browser, "#save-require-tls-account").await;
    wait_for_text(browser, ".notice", "The settings were saved").await;
    assert!(acme_required().await, "the customer's switch is on");
    assert!(ticked(browser, "#require-tls-account").await, "the account page shows it on");
    sign_out(browser).await;

    // The admin's customer list shows the customer's switch and can turn it off.
    sign_in(browser, base, "root", STRONG).await;
    browser.goto(&format!("{base}/admin/customers")).await.expect("customers page");
    assert!(ticked(browser, "#require-tls-acme").await);
    click(browser, "#require-tls-acme").await;
    click(browser, "#save-require-tls-acme").await;
    wait_for_text(browser, ".notice", "The settings were saved").await;
    assert!(!acme_required().await, "the admin switched it off");
    assert!(!ticked(browser, "#require-tls-acme").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sent_mail_shows_the_encryption_of_each_delivery() {
    let dir = tempfile::tempdir().expect("temp dir");
    // outside.test's mail server offers STARTTLS at first; then an attacker removes it.
    let sink = sink::Sink::start(sink::Behaviour::Accept);
    let (server, _dns, base) = server_sending_to(&sink, dir.path()).await;
    let max = mailbox_on(&server, "max@acme.example").await;
    let submission = server.addresses().first("submission").expect("submission listener");
    submit(submission.port(), "max@acme.example", "friend@outside.test", "Encrypted").await;
    sink.arrived(1, WAIT).await;
    sink.strip_starttls();
    submit(submission.port(), "max@acme.example", "other@outside.test", "Plain").await;
    sink.arrived(2, WAIT).await;
    let deadline = std::time::Instant::now() + WAIT;
    while server.store().sent_mail(Scope::Platform, max.id).await.expect("sent").len() < 2 {
        assert!(std::time::Instant::now() < deadline, "the deliveries were not recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let driver = Driver::start().await;
    let browser = driver.browser(&dir.path().join("chromium")).await;
    let outcome = AssertUnwindSafe(sent_mail_flow(&browser, &base, max.id)).catch_unwind().await;
    let _ = browser.close().await;
    driver.stop().await;
    server.shutdown().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn sent_mail_flow(browser: &Client, base: &str, max: MailboxId) {
    sign_in(browser, base, "max@acme.example", STRONG).await;
    browser.goto(&format!("{base}/mailboxes/{max}")).await.expect("mailbox page");
    click(browser, "#sent-link").await;
    browser.wait().at_most(WAIT).for_element(Locator::Css("#sent-list")).await.expect("the sent-mail list");
    let rows = browser.find_all(Locator::Css("#sent-list tbody tr")).await.expect("rows");
    assert_eq!(rows.len(), 2);
    // Newest first: the plain delivery, flagged; then the encrypted one with its TLS version.
    // (The flag is shown in capitals.)
    let plain = rows[0].text().await.expect("text").to_lowercase();
    assert!(plain.contains("other@outside.test") && plain.contains("unencrypted"), "{plain}");
    assert!(plain.contains("mx.outside.test") && plain.contains("delivered"), "{plain}");
    assert_eq!(rows[0].attr("class").await.expect("class").map(|c| c.contains("unencrypted")), Some(true));
    let encrypted = rows[1].text().await.expect("text").to_lowercase();
    assert!(encrypted.contains("friend@outside.test") && encrypted.contains("tlsv1.3"), "{encrypted}");
    assert!(!encrypted.contains("unencrypted"), "{encrypted}");
    assert!(text(browser, "#sent-unencrypted").await.contains("went unencrypted"));
    screenshot(browser, "18-sent-mail").await;

    click(browser, "#lang-switch").await;
    browser.wait().at_most(WAIT).for_element(Locator::Css("html[lang='de']")).await.expect("German");
    assert!(text(browser, "h1").await.contains("Gesendete Post"));
    assert!(text(browser, "#sent-list").await.to_lowercase().contains("unverschlüsselt"));
    assert!(text(browser, "#sent-unencrypted").await.contains("ging unverschlüsselt"));
    click(browser, "#lang-switch").await;
    browser.wait().at_most(WAIT).for_element(Locator::Css("html[lang='en']")).await.expect("English");
}
