//! Hostile input against the real server on 127.0.0.1 (issue 11): messages nested tens of
//! thousands of levels deep through every door and when already stored, doubled and junk
//! header fields, login spellings against the throttle, silent TLS connections, wrong
//! TOTP codes, password changes without the current password, wrong API tokens, a
//! disabled customer's API token and malformed SASL. Every refusal is checked on the wire
//! and in what changed (nothing).

mod common;

use std::process::Command;
use std::time::Duration;

use common::clients::{ImapClient, SmtpClient, run, run_ok};
use common::{PASSWORD, TestServer};
use postfach_store::Scope;
use postfach_store::logins::LoginFilter;
use postfach_store::mailboxes::{Mailbox, MailboxSettings};
use postfach_testdns::{Data, Rr, TestDns};
use postfach_types::{LoginResult, Mechanism};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ADDRESS: &str = "max@acme.example";

fn zones() -> TestDns {
    TestDns::start([
        Rr::new("pass.test", Data::txt("v=spf1 ip4:127.0.0.1 -all")),
        Rr::new("client.test", Data::A("127.0.0.1".parse().expect("ip"))),
    ])
}

/// A message whose body is `levels` message/rfc822 parts, each inside the last.
fn nested(levels: usize) -> Vec<u8> {
    let mut m = b"From: a@pass.test\r\nTo: max@acme.example\r\nSubject: deep\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\nContent-Type: message/rfc822\r\n\r\n".to_vec();
    for _ in 0..levels {
        m.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
    }
    m.extend_from_slice(b"Subject: bottom\r\n\r\nthe bottom line\r\n");
    m
}

async fn inbox_count(t: &TestServer, mailbox: &Mailbox) -> usize {
    let store = t.server.store();
    let inbox = store.folder(mailbox.id, "INBOX").await.expect("folder").expect("inbox");
    store.messages(mailbox.id, inbox.id).await.expect("messages").len()
}

/// Runs Python with CERT, the ports and the mailbox credentials set; returns stdout.
async fn python(t: &TestServer, script: &str, env: &[(&str, String)]) -> String {
    let mut command = Command::new("python3");
    command
        .arg("-c")
        .arg(format!("import os, ssl, smtplib, imaplib, re, urllib.request, urllib.parse, http.cookiejar\n{script}"))
        .env("CERT", t.cert())
        .env("SUBMISSIONS", t.port("submissions").to_string())
        .env("HTTPS", t.port("https").to_string())
        .env("USER", ADDRESS)
        .env("PASS", PASSWORD);
    for (k, v) in env {
        command.env(k, v);
    }
    run_ok(&mut command).await
}

/// Sends `message` over implicit-TLS submission as the test mailbox; prints the outcome.
const SUBMIT: &str = r#"
ctx = ssl.create_default_context(cafile=os.environ["CERT"])
s = smtplib.SMTP_SSL("localhost", int(os.environ["SUBMISSIONS"]), context=ctx)
s.login(os.environ["USER"], os.environ["PASS"])
message = open(os.environ["MESSAGE"], "rb").read()
try:
    s.sendmail(os.environ["USER"], ["max@acme.example"], message)
    print("ACCEPTED")
except smtplib.SMTPDataError as e:
    print("REFUSED", e.smtp_code, e.smtp_error.decode())
s.quit()
"#;

async fn submit(t: &TestServer, message: &[u8]) -> String {
    let path = t.dir.path().join("message.eml");
    std::fs::write(&path, message).expect("write message");
    python(t, SUBMIT, &[("MESSAGE", path.display().to_string())]).await
}

async fn mx(t: &TestServer, message: &[u8]) -> String {
    let (mut c, _) = SmtpClient::connect(t.addr("smtp")).await;
    c.cmd("EHLO client.test").await;
    let text = String::from_utf8(message.to_vec()).expect("ascii");
    let (_, reply) = c.transaction("a@pass.test", &[ADDRESS], &text).await;
    reply
}

#[tokio::test(flavor = "multi_thread")]
async fn deeply_nested_messages_are_refused_at_every_door_and_stored_ones_are_served() {
    let dns = zones();
    let addr = dns.addr();
    let t = TestServer::start_with(|c| {
        c.dns.resolver = Some(addr);
        c.security.allow_plaintext_auth = true;
    })
    .await;
    let mailbox = t.mailbox(ADDRESS, MailboxSettings { tls_required: false, ..Default::default() }).await;
    for levels in [20_000, 100_000] {
        let message = nested(levels);
        let reply = mx(&t, &message).await;
        assert!(reply.starts_with("554 5.6.0") && reply.contains("50 levels"), "MX, {levels}: {reply}");
        let out = submit(&t, &message).await;
        assert!(out.contains("REFUSED 554") && out.contains("50 levels"), "submission, {levels}: {out}");
        let mut c = ImapClient::connect(t.addr("imap")).await;
        c.line().await;
        c.cmd("l", &format!("LOGIN {ADDRESS} \"{PASSWORD}\"")).await;
        c.send(&format!("a APPEND INBOX {{{}+}}\r\n", message.len())).await;
        c.reader.get_mut().write_all(&message).await.expect("send");
        c.send("\r\n").await;
        let reply = c.until("a ").await;
        assert!(reply.starts_with("a NO [LIMIT]"), "APPEND, {levels}: {reply}");
    }
    assert_eq!(inbox_count(&t, &mailbox).await, 0, "nothing was stored");

    // Messages like these already in a mailbox (stored before the limit existed) are served.
    for levels in [20_000, 100_000] {
        t.put_in_inbox(&mailbox, nested(levels)).await;
    }
    let mut c = ImapClient::connect(t.addr("imap")).await;
    c.line().await;
    c.cmd("l", &format!("LOGIN {ADDRESS} \"{PASSWORD}\"")).await;
    assert!(c.cmd("s", "SELECT INBOX").await.contains("* 2 EXISTS"));
    let structure = c.cmd("f1", "FETCH 1:2 BODYSTRUCTURE").await;
    assert!(structure.contains("f1 OK") && structure.matches("BODYSTRUCTURE").count() == 2, "{structure}");
    let envelope = c.cmd("f2", "FETCH 1:2 ENVELOPE").await;
    assert!(envelope.contains("\"deep\"") && envelope.contains("f2 OK"), "{envelope}");
    let body = c.cmd("f3", "FETCH 2 BODY[]").await;
    assert!(body.contains("the bottom line") && body.contains("f3 OK"), "BODY[] of the 100,000 levels");
    let sections = c.cmd("f4", "FETCH 1 (BODY[1.1.1.HEADER] BODY[2] BINARY[1])").await;
    assert!(sections.contains("f4 OK"), "{sections}");
    let search = c.cmd("f5", "SEARCH TEXT bottom").await;
    assert!(search.contains("* SEARCH 1 2") && search.contains("f5 OK"), "{search}");
    assert!(c.cmd("n", "NOOP").await.contains("n OK"), "the server still answers");
}

#[tokio::test(flavor = "multi_thread")]
async fn doubled_and_junk_header_fields_are_refused() {
    let dns = zones();
    let addr = dns.addr();
    let t = TestServer::start_with(|c| c.dns.resolver = Some(addr)).await;
    let mailbox = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    // Submission: another customer's CEO first, the own address second.
    let double_from = b"From: CEO <ceo@other-customer.example>\r\nFrom: max@acme.example\r\nTo: max@acme.example\r\nSubject: pay\r\n\r\nplease\r\n";
    let out = submit(&t, double_from).await;
    assert!(out.contains("REFUSED 550") && out.contains("more than one From:"), "{out}");
    let double_subject = b"From: max@acme.example\r\nSubject: a\r\nSubject: b\r\n\r\nx\r\n";
    assert!(submit(&t, double_subject).await.contains("more than one Subject:"));
    let sender = b"From: max@acme.example\r\nSender: boss@other-customer.example\r\n\r\nx\r\n";
    let out = submit(&t, sender).await;
    assert!(out.contains("REFUSED 550") && out.contains("boss@other-customer.example"), "{out}");
    // The MX: a first line that is no header field, then a From: of a hosted domain.
    let junk = b"X\r\nFrom: CEO <ceo@acme.example>\r\nSubject: urgent\r\n\r\npay now\r\n";
    let reply = mx(&t, junk).await;
    assert!(reply.starts_with("550 5.6.0") && reply.contains("line 1"), "{reply}");
    let double = b"From: a@pass.test\r\nFrom: CEO <ceo@acme.example>\r\n\r\nx\r\n";
    let reply = mx(&t, double).await;
    assert!(reply.starts_with("550 5.6.0") && reply.contains("more than one From:"), "{reply}");
    assert_eq!(inbox_count(&t, &mailbox).await, 0);
    // A clean message still passes both doors.
    let clean = b"From: max@acme.example\r\nTo: max@acme.example\r\nSubject: fine\r\n\r\nx\r\n";
    assert!(submit(&t, clean).await.contains("ACCEPTED"));
    let clean = b"From: a@pass.test\r\nTo: max@acme.example\r\nSubject: fine\r\n\r\nx\r\n";
    assert!(mx(&t, clean).await.starts_with("250"));
    // Two authors of one domain in one From: field read the same both ways: accepted.
    let authors = b"From: a@pass.test, b@pass.test\r\nSender: a@pass.test\r\nSubject: two\r\n\r\nx\r\n";
    let reply = mx(&t, authors).await;
    assert!(reply.starts_with("250"), "{reply}");
}

/// LOGIN with the name as a literal (it may hold 8-bit characters).
async fn login(c: &mut ImapClient, tag: &str, name: &str, password: &str) -> String {
    c.cmd(tag, &format!("LOGIN {{{}+}}\r\n{name} \"{password}\"", name.len())).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_login_throttle_holds_against_other_spellings() {
    let t = TestServer::start_with(|c| {
        c.security.allow_plaintext_auth = true;
        c.security.max_failures_per_login = 5;
        c.security.max_failures_per_ip = 1000;
    })
    .await;
    let mailbox = t.mailbox("ceo@acme.example", MailboxSettings { tls_required: false, ..Default::default() }).await;
    let mut c = ImapClient::connect(t.addr("imap")).await;
    c.line().await;
    for i in 0..5 {
        let reply = login(&mut c, "w", "ceo@acme.example", "wrong guess number").await;
        assert!(reply.contains("w NO"), "{i}: {reply}");
        if i % 2 == 1 {
            c = ImapClient::connect(t.addr("imap")).await;
            c.line().await;
        }
    }
    // Thirty more guesses under other spellings of the same login: all refused as throttled
    // or as unknown spellings, none checked against the password.
    let spellings = [
        "CEO@ACME.EXAMPLE",
        "ceo@ａｃｍｅ.example",
        "Ceo@Acme.Example",
        "ceo@acme.example.",
        "ceo@ac\u{00AD}me.example",
        "ce\u{200B}o@acme.example",
    ];
    for i in 0..30 {
        if i % 2 == 0 {
            c = ImapClient::connect(t.addr("imap")).await;
            c.line().await;
        }
        let name = spellings[i % spellings.len()];
        let reply = login(&mut c, "v", name, "another guess here").await;
        assert!(reply.contains("v NO"), "{name}: {reply}");
    }
    // The right password through a variant spelling is still throttled.
    let mut c = ImapClient::connect(t.addr("imap")).await;
    c.line().await;
    let reply = login(&mut c, "r", "ceo@ａｃｍｅ.example", PASSWORD).await;
    assert!(reply.starts_with("r NO [UNAVAILABLE]"), "{reply}");
    let log = t
        .server
        .store()
        .logins(Scope::Platform, LoginFilter { mailbox: Some(mailbox.id), limit: 100, ..Default::default() })
        .await
        .expect("log");
    let latest = &log[0];
    assert_eq!((latest.login.as_str(), latest.result), ("ceo@acme.example", LoginResult::Throttled));
    let checked = log.iter().filter(|r| r.result == LoginResult::BadCredentials).count();
    assert_eq!(checked, 5, "only the first five guesses were checked");
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_connections_to_the_tls_ports_are_closed_after_the_handshake_timeout() {
    let t = TestServer::start_with(|c| {
        c.limits.handshake_timeout_secs = 1;
        // Exactly the silent ones: the real client below gets in only if they were closed.
        c.limits.max_connections_per_ip = 50;
    })
    .await;
    t.mailbox(ADDRESS, MailboxSettings::default()).await;
    let mut silent = Vec::new();
    for _ in 0..50 {
        silent.push(TcpStream::connect(t.addr("submissions")).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for (i, mut tcp) in silent.into_iter().enumerate() {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut byte)).await.expect("no hang");
        assert!(matches!(read, Ok(0) | Err(_)), "connection {i} is closed: {read:?}");
    }
    // Their slots are free again: a real client gets in.
    let out = submit(&t, b"From: max@acme.example\r\nTo: max@acme.example\r\nSubject: hi\r\n\r\nx\r\n").await;
    assert!(out.contains("ACCEPTED"), "{out}");
}

/// Signs in to the panel over HTTPS (with a cookie jar of its own) and enters codes.
const PANEL: &str = r#"
ctx = ssl.create_default_context(cafile=os.environ["CERT"])
base = "https://localhost:" + os.environ["HTTPS"]
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
def session():
    jar = http.cookiejar.CookieJar()
    return urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx), urllib.request.HTTPCookieProcessor(jar), NoRedirect())
def get(o, path):
    try:
        r = o.open(base + path)
        return r.status, r.read().decode(), r.headers.get("Location", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers.get("Location", "")
def post(o, path, fields):
    data = urllib.parse.urlencode(fields).encode()
    try:
        r = o.open(base + path, data)
        return r.status, r.read().decode(), r.headers.get("Location", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers.get("Location", "")
def hidden(html, name):
    return re.search('name="%s" value="([^"]*)"' % name, html).group(1)
def sign_in(name, password):
    o = session()
    _, html, _ = get(o, "/login")
    status, html, location = post(o, "/login", {"login": name, "password": password, "login_token": hidden(html, "login_token")})
    return o, location
def code(o, value):
    _, html, _ = get(o, "/login/code")
    status, html, location = post(o, "/login/code", {"csrf": hidden(html, "csrf"), "code": value})
    return html, location
"#;

#[tokio::test(flavor = "multi_thread")]
async fn wrong_totp_codes_lock_the_second_factor_whatever_the_password_does() {
    let t = TestServer::start_with(|c| {
        c.security.max_failures_per_login = 5;
        c.security.max_failures_per_ip = 1000;
    })
    .await;
    let customer = t.customer().await;
    let store = t.server.store();
    let secret = postfach_auth::totp::new_totp_secret();
    store.set_totp_secret(customer, &secret).await.expect("secret");
    let now = u64::try_from(postfach_types::UnixTime::now().0).expect("time");
    let first = postfach_auth::totp::totp_code(&secret, now).expect("code");
    let step = postfach_auth::totp::totp_step_of(&secret, &first, now).expect("step");
    assert!(store.use_totp_step(customer, step - 2, true).await.expect("enable"));
    let script = format!(
        r#"{PANEL}
for i in range(5):
    o, location = sign_in("acme", "acme panel passphrase 42")
    assert location.endswith("/login/code"), location
    html, location = code(o, "000000" if os.environ["CODE"] != "000000" else "111111")
    assert "not right" in html or "stimmt nicht" in html, html
o, location = sign_in("acme", "acme panel passphrase 42")
assert location.endswith("/login/code"), location
html, location = code(o, os.environ["CODE"])
assert location == "", "the right code is refused while the second factor is locked"
print("LOCKED" if ("Too many" in html or "Zu viele" in html) else html)
"#
    );
    let code = postfach_auth::totp::totp_code(&secret, u64::try_from(postfach_types::UnixTime::now().0).expect("t"))
        .expect("code");
    let out = python(&t, &script, &[("CODE", code)]).await;
    assert!(out.contains("LOCKED"), "{out}");
    let log = store.logins(Scope::Platform, LoginFilter { limit: 50, ..Default::default() }).await.expect("log");
    let totp: Vec<_> = log.iter().filter(|r| r.mechanism == Mechanism::Totp).collect();
    assert_eq!(totp.iter().filter(|r| r.result == LoginResult::BadCredentials).count(), 5, "{totp:?}");
    assert_eq!(totp[0].result, LoginResult::Throttled);
    assert!(totp.iter().all(|r| r.tls.is_some() && r.customer_id == Some(customer)));
}

/// A new API token of `customer`, as the panel would create it.
async fn api_token(
    store: &postfach_store::Store,
    customer: postfach_types::CustomerId,
) -> postfach_types::Secret<String> {
    let token = postfach_auth::tokens::new_api_token();
    let hash = postfach_auth::tokens::token_hash(token.expose());
    store.create_api_token(customer, "script", &hash).await.expect("token");
    token
}

#[tokio::test(flavor = "multi_thread")]
async fn changing_a_password_needs_the_current_one_and_ends_other_sessions_and_tokens() {
    let t = TestServer::start().await;
    let customer = t.customer().await;
    let store = t.server.store();
    let token = api_token(store, customer).await;
    let script = format!(
        r#"{PANEL}
import json
def api(token):
    req = urllib.request.Request(base + "/api/v1/mailboxes", headers={{"Authorization": "Bearer " + token}})
    try:
        return urllib.request.urlopen(req, context=ctx).status
    except urllib.error.HTTPError as e:
        return e.code
assert api(os.environ["TOKEN"]) == 200
a, _ = sign_in("acme", "acme panel passphrase 42")
b, _ = sign_in("acme", "acme panel passphrase 42")
_, html, _ = get(a, "/account")
csrf = hidden(html, "csrf")
new = "quartz lantern meadow 2041 orbit"
status, html, location = post(a, "/account/password", {{"csrf": csrf, "current_password": "not the password at all", "password": new}})
assert "current password is not right" in html or "bisherige Passwort" in html, html
status, html, location = post(a, "/account/password", {{"csrf": csrf, "password": new}})
assert "current password is not right" in html or "bisherige Passwort" in html, "no current password given"
status, html, location = post(a, "/account/password", {{"csrf": csrf, "current_password": "acme panel passphrase 42", "password": new}})
assert location.startswith("/account"), (status, location, html[:500])
status, _, location = get(b, "/account")
assert location.endswith("/login"), "the other session ended: %s %s" % (status, location)
status, _, _ = get(a, "/account")
assert status == 200, "the session that changed it stays"
assert api(os.environ["TOKEN"]) == 401, "API tokens are revoked by default"
print("DONE")
"#
    );
    let out = python(&t, &script, &[("TOKEN", token.expose().clone())]).await;
    assert!(out.contains("DONE"), "{out}");
}

/// The HTTP status of `GET /api/v1/mailboxes` with `token`, asked with curl.
async fn api_status(t: &TestServer, token: &str) -> String {
    let url = format!("https://localhost:{}/api/v1/mailboxes", t.port("https"));
    let output = run(Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(t.cert())
        .args(["-H", &format!("Authorization: Bearer {token}"), &url]))
    .await;
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_api_tokens_are_throttled_and_logged() {
    let t = TestServer::start_with(|c| c.security.max_failures_per_ip = 3).await;
    let mut codes = Vec::new();
    for i in 0..5 {
        codes.push(api_status(&t, &format!("pfapi_guess{i}")).await);
    }
    assert_eq!(codes, ["401", "401", "401", "429", "429"]);
    let log = t.server.store().logins(Scope::Platform, LoginFilter::default()).await.expect("log");
    let tokens: Vec<_> = log.iter().filter(|r| r.mechanism == Mechanism::ApiToken).collect();
    assert_eq!(tokens.len(), 5);
    assert_eq!(tokens[0].result, LoginResult::Throttled);
    assert!(tokens.iter().all(|r| r.tls.is_some()));
}

/// The store still finds a disabled customer's tokens; the authentication gate refuses them.
#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_customers_api_token_is_refused_and_logged() {
    let t = TestServer::start().await;
    let customer = t.customer().await;
    let store = t.server.store();
    let token = api_token(store, customer).await;
    assert_eq!(api_status(&t, token.expose()).await, "200", "the token works");
    let name = postfach_types::CustomerName::parse("acme").expect("name");
    store.set_customer_disabled(&name, true).await.expect("disable");
    assert_eq!(api_status(&t, token.expose()).await, "401", "a disabled customer's token lets no one in");
    let log = store.logins(Scope::Platform, LoginFilter::default()).await.expect("log");
    let tokens: Vec<_> = log.iter().filter(|r| r.mechanism == Mechanism::ApiToken).collect();
    let seen: Vec<_> = tokens.iter().map(|r| (r.result, r.customer_id, r.login.as_str())).collect();
    assert_eq!(
        seen,
        [(LoginResult::AccountDisabled, Some(customer), "acme"), (LoginResult::Ok, Some(customer), "acme")],
        "{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_sasl_is_logged_and_throttled_and_no_password_is_asked_for_in_plaintext() {
    let t = TestServer::start_with(|c| c.security.max_failures_per_ip = 3).await;
    let mailbox = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    // Plaintext logins are off: AUTH LOGIN on 587 before STARTTLS asks for no password
    // (and counts no failure).
    let (mut c, _) = SmtpClient::connect(t.addr("submission")).await;
    c.cmd("EHLO client.test").await;
    let reply = c.cmd("AUTH LOGIN").await;
    assert!(reply.starts_with("530 5.7.0"), "refused before any 334 prompt: {reply}");
    // Over TLS (imaps), one connection each: the right password with another mailbox as
    // authorization identity, a response that is not base64, one without a password;
    // then one more malformed attempt, and the right password, once the address is
    // throttled. Prints the tagged reply of each.
    let script = r#"
import socket, base64
ctx = ssl.create_default_context(cafile=os.environ["CERT"])
port = int(os.environ["IMAPS"])
def reply(lines):
    s = ctx.wrap_socket(socket.create_connection(("localhost", port)), server_hostname="localhost")
    f = s.makefile("rb")
    f.readline()
    for line in lines:
        s.sendall(line + b"\r\n")
        answer = f.readline().decode().strip()
    s.close()
    return answer
def sasl(response):
    return reply([b"a AUTHENTICATE PLAIN", response])
password = os.environ["PASS"].encode()
print(sasl(base64.b64encode(b"eve@acme.example\x00max@acme.example\x00" + password)))
print(sasl(b"not!base64"))
print(sasl(base64.b64encode(b"max@acme.example\x00")))
print(sasl(b"not!base64"))
print(reply([b'a LOGIN max@acme.example "' + password + b'"']))
"#;
    let out = python(&t, script, &[("IMAPS", t.port("imaps").to_string())]).await;
    let replies: Vec<&str> = out.lines().collect();
    assert_eq!(replies.len(), 5, "{out}");
    for reply in &replies[..3] {
        assert!(reply.starts_with("a NO [AUTHENTICATIONFAILED] the login could not be read"), "{out}");
    }
    // Three malformed attempts are the limit: the address is throttled, the right password too.
    for reply in &replies[3..] {
        assert!(reply.starts_with("a NO [UNAVAILABLE] too many failed logins"), "{out}");
    }
    let log = t.server.store().logins(Scope::Platform, LoginFilter::default()).await.expect("log");
    let results: Vec<_> = log.iter().map(|r| (r.result, r.tls.is_some())).collect();
    assert_eq!(
        results,
        [
            (LoginResult::Throttled, true),
            (LoginResult::Throttled, true),
            (LoginResult::Malformed, true),
            (LoginResult::Malformed, true),
            (LoginResult::Malformed, true),
            (LoginResult::TlsRequired, false),
        ],
        "{log:?}"
    );
    assert_eq!((log[0].login.as_str(), log[0].mailbox_id), (ADDRESS, Some(mailbox.id)), "{log:?}");
}

/// Sends `command` once a second on a plaintext connection and never logs in. Returns the
/// last line the server sent and when it closed the connection (`None`: still open after
/// 20 s).
async fn keep_busy(addr: std::net::SocketAddr, command: &str) -> (String, Option<Duration>) {
    use tokio::io::AsyncBufReadExt;
    let (read, mut write) = TcpStream::connect(addr).await.expect("connect").into_split();
    let mut reader = tokio::io::BufReader::new(read);
    let started = tokio::time::Instant::now();
    let mut last = String::new();
    while started.elapsed() < Duration::from_secs(20) {
        let _ = write.write_all(command.as_bytes()).await;
        let next = tokio::time::Instant::now() + Duration::from_secs(1);
        loop {
            let mut line = String::new();
            match tokio::time::timeout_at(next, reader.read_line(&mut line)).await {
                Err(_) => break,
                Ok(Ok(0)) | Ok(Err(_)) => return (last, Some(started.elapsed())),
                Ok(Ok(_)) => last = line,
            }
        }
    }
    (last, None)
}

/// The login deadline counts from the connection, not from the last command: a client
/// that keeps a connection busy without logging in is closed all the same, and told why.
#[tokio::test(flavor = "multi_thread")]
async fn busy_connections_that_never_log_in_are_closed_at_the_login_timeout() {
    let t = TestServer::start_with(|c| {
        c.limits.login_timeout_secs = 5;
        c.security.allow_plaintext_auth = true;
    })
    .await;
    t.mailbox(ADDRESS, MailboxSettings { tls_required: false, ..MailboxSettings::default() }).await;
    let (imap, pop3, submission) = tokio::join!(
        keep_busy(t.addr("imap"), "a NOOP\r\n"),
        keep_busy(t.addr("pop3"), "NOOP\r\n"),
        keep_busy(t.addr("submission"), "NOOP\r\n"),
    );
    for ((last, closed), said) in [
        (imap, "* BYE you did not log in in time"),
        (pop3, "-ERR You did not log in in time."),
        (submission, "421 4.4.2 mail.postfach.test You did not log in in time"),
    ] {
        let closed = closed.unwrap_or_else(|| panic!("still open after 20 s; last said {last:?}"));
        assert!(closed >= Duration::from_secs(4) && closed < Duration::from_secs(15), "{said}: {closed:?}");
        assert!(last.starts_with(said), "{last:?}");
    }
    // Once logged in, the deadline no longer applies.
    let mut c = ImapClient::connect(t.addr("imap")).await;
    c.line().await;
    assert!(c.cmd("a", &format!("LOGIN {ADDRESS} \"{PASSWORD}\"")).await.contains("a OK"));
    for i in 0..7 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let noop = c.cmd(&format!("n{i}"), "NOOP").await;
        assert!(noop.contains(&format!("n{i} OK")), "{noop}");
    }
}

/// A client that only sends NOOP, RSET, VRFY or HELP keeps a connection slot for nothing:
/// after 100 such commands without a message it is closed; a message starts the count anew.
#[tokio::test(flavor = "multi_thread")]
async fn smtp_clients_that_send_no_mail_are_closed_after_100_idle_commands() {
    let dns = zones();
    let addr = dns.addr();
    let t = TestServer::start_with(|c| c.dns.resolver = Some(addr)).await;
    let mailbox = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    let (mut c, _) = SmtpClient::connect(t.addr("smtp")).await;
    c.cmd("EHLO client.test").await;
    for _ in 0..60 {
        assert!(c.cmd("NOOP").await.starts_with("250"));
    }
    let (_, sent) = c.transaction("a@pass.test", &[ADDRESS], "From: a@pass.test\r\nSubject: hi\r\n\r\nx\r\n").await;
    assert!(sent.starts_with("250"), "{sent}");
    for i in 0..100 {
        let reply = c.cmd(["NOOP", "RSET", "VRFY max", "HELP"][i % 4]).await;
        assert!(reply.starts_with('2'), "command {i}: {reply}");
    }
    let closed = c.reply().await;
    assert!(closed.starts_with("421 4.7.0 Too many commands without a message"), "{closed}");
    assert_eq!(c.reply().await, "<closed>");
    assert_eq!(inbox_count(&t, &mailbox).await, 1);
}

/// DATA over the size limit is read to its end and refused; more than twice the limit is
/// not read further: the refusal comes at once and the connection ends.
#[tokio::test(flavor = "multi_thread")]
async fn far_too_big_messages_end_the_connection() {
    let dns = zones();
    let addr = dns.addr();
    let t = TestServer::start_with(|c| {
        c.dns.resolver = Some(addr);
        c.limits.max_message_size = 10_000;
    })
    .await;
    let mailbox = t.mailbox(ADDRESS, MailboxSettings::default()).await;
    let body = |bytes: usize| {
        format!(
            "From: a@pass.test\r\n\r\n{}",
            "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n".repeat(bytes / 64)
        )
    };
    let (mut c, _) = SmtpClient::connect(t.addr("smtp")).await;
    c.cmd("EHLO client.test").await;
    let (_, reply) = c.transaction("a@pass.test", &[ADDRESS], &body(15_000)).await;
    assert!(reply.starts_with("552 5.3.4"), "{reply}");
    assert!(c.cmd("NOOP").await.starts_with("250"), "over the limit, under twice: the session goes on");
    c.cmd("MAIL FROM:<a@pass.test>").await;
    c.cmd(&format!("RCPT TO:<{ADDRESS}>")).await;
    assert!(c.cmd("DATA").await.starts_with("354"));
    // No end-of-data: the server stops reading before it.
    c.writer.write_all(body(25_000).as_bytes()).await.expect("write");
    let reply = c.reply().await;
    assert!(reply.starts_with("552 5.3.4") && reply.contains("closing the connection"), "{reply}");
    assert_eq!(c.reply().await, "<closed>");
    assert_eq!(inbox_count(&t, &mailbox).await, 0);
}
