//! Handler-level tests of the panel, the API and autoconfiguration: real store (SQLite),
//! real authenticator, requests sent straight into the application.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use postfach_auth::accounts::{create_customer, create_mailbox};
use postfach_auth::{AuthSettings, Authenticator, PasswordHasher};
use postfach_store::mailboxes::{MailboxSettings, SettingsChange};
use postfach_store::{Scope, Store};
use postfach_types::{
    AccessMode, AliasId, CustomerName, DomainId, DomainName, EmailAddress, MailboxId, Role, Secret, TlsInfo,
};
use postfach_web::{ClientConnection, MailEndpoints, Web, WebSettings, token_hash};
use serde_json::{Value, json};
use tower::ServiceExt;

const STRONG: &str = "violet mango tractor whisper";

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    web: Web,
    acme_token: String,
    globex_token: String,
    admin_token: String,
    /// globex's mailbox, domain and alias ids: what acme must not reach.
    globex_mailbox: MailboxId,
    globex_domain: DomainId,
    globex_alias: AliasId,
    acme_mailbox: MailboxId,
}

fn addr(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("address")
}

fn endpoints() -> MailEndpoints {
    MailEndpoints {
        imaps: Some(993),
        imap: Some(143),
        pop3s: Some(995),
        pop3: Some(110),
        submissions: Some(465),
        submission: Some(587),
    }
}

async fn world() -> World {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&format!("sqlite://{}/p.sqlite", dir.path().display())).await.expect("store");
    let hasher = PasswordHasher::new(2);
    let auth =
        Arc::new(Authenticator::new(store.clone(), AuthSettings::default(), hasher.clone()).await.expect("auth"));
    let strong = Secret::new(STRONG.to_string());
    let mut ids = Vec::new();
    for (name, role) in [("acme", Role::Customer), ("globex", Role::Customer), ("root", Role::Admin)] {
        let name = CustomerName::parse(name).expect("name");
        ids.push(create_customer(&store, &hasher, &name, &strong, role).await.expect("customer").id);
    }
    let mut tokens = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let token = format!("pfapi_{i:064x}");
        store.create_api_token(*id, "test", &token_hash(&token)).await.expect("token");
        tokens.push(token);
    }
    store.add_domain(ids[0], &DomainName::parse("acme.example").expect("d"), true).await.expect("domain");
    let globex_domain =
        store.add_domain(ids[1], &DomainName::parse("globex.example").expect("d"), true).await.expect("domain").id;
    let acme = create_mailbox(
        &store,
        &hasher,
        Scope::Platform,
        &addr("max@acme.example"),
        &strong,
        MailboxSettings::default(),
    )
    .await
    .expect("mailbox");
    let globex = create_mailbox(
        &store,
        &hasher,
        Scope::Platform,
        &addr("eva@globex.example"),
        &strong,
        MailboxSettings::default(),
    )
    .await
    .expect("mailbox");
    let alias = store
        .add_alias(Scope::Platform, &addr("info@globex.example"), &addr("eva@globex.example"))
        .await
        .expect("alias");
    let settings = WebSettings {
        hostname: DomainName::parse("mail.example.net").expect("host"),
        https_port: 8443,
        endpoints: endpoints(),
        dns: None,
        sieve_limits: Default::default(),
        imports: None,
    };
    let web = Web::new(store.clone(), auth, settings);
    World {
        _dir: dir,
        store,
        web,
        acme_token: tokens[0].clone(),
        globex_token: tokens[1].clone(),
        admin_token: tokens[2].clone(),
        globex_mailbox: globex.id,
        globex_domain,
        globex_alias: alias.id,
        acme_mailbox: acme.id,
    }
}

fn tls() -> ClientConnection {
    ClientConnection {
        remote_ip: IpAddr::from([127, 0, 0, 1]),
        tls: Some(TlsInfo { version: "TLSv1.3".into(), cipher: "TLS13_AES_256_GCM_SHA384".into() }),
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

async fn send(router: &Router, request: Request<Body>) -> Reply {
    let mut request = request;
    request.extensions_mut().insert(tls());
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 10 << 20).await.expect("body");
    Reply { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
}

async fn api(w: &World, method: Method, path: &str, token: &str, body: Option<Value>) -> Reply {
    let mut builder = Request::builder().method(method).uri(format!("/api/v1{path}"));
    if !token.is_empty() {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match body {
        Some(v) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    send(&w.web.router(), builder.body(body).expect("request")).await
}

#[tokio::test]
async fn a_customer_cannot_reach_another_customers_objects_through_the_api() {
    let w = world().await;
    let t = &w.acme_token;
    let (mb, dom, alias) = (w.globex_mailbox, w.globex_domain, w.globex_alias);
    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/mailboxes/{mb}"), None),
        (Method::PATCH, format!("/mailboxes/{mb}"), Some(json!({ "access": "pop3" }))),
        (Method::PUT, format!("/mailboxes/{mb}/password"), Some(json!({ "password": "correct horse battery staple" }))),
        (Method::GET, format!("/mailboxes/{mb}/logins"), None),
        (Method::GET, format!("/mailboxes/{mb}/app-passwords"), None),
        (Method::GET, format!("/mailboxes/{mb}/devices"), None),
        (Method::GET, format!("/mailboxes/{mb}/sent"), None),
        (Method::POST, format!("/mailboxes/{mb}/app-passwords"), Some(json!({ "name": "Spy", "services": ["imap"] }))),
        (Method::DELETE, format!("/mailboxes/{mb}/app-passwords/1"), None),
        (Method::PATCH, format!("/mailboxes/{mb}"), Some(json!({ "app_passwords_only": true }))),
        (Method::DELETE, format!("/mailboxes/{mb}"), None),
        (Method::GET, format!("/domains/{dom}"), None),
        (Method::DELETE, format!("/domains/{dom}?cascade=true"), None),
        (Method::DELETE, format!("/aliases/{alias}"), None),
        (
            Method::POST,
            "/aliases".into(),
            Some(json!({ "address": "spy@globex.example", "mailbox": "max@acme.example" })),
        ),
        (
            Method::POST,
            "/aliases".into(),
            Some(json!({ "address": "spy@acme.example", "mailbox": "eva@globex.example" })),
        ),
        (Method::POST, "/mailboxes".into(), Some(json!({ "address": "spy@globex.example", "password": STRONG }))),
        (Method::POST, "/domain-aliases".into(), Some(json!({ "name": "spy.example", "target": "globex.example" }))),
        (Method::GET, "/customers".into(), None),
        (Method::PATCH, "/customers/2".into(), Some(json!({ "disabled": true }))),
    ];
    for (method, path, body) in attempts {
        let reply = api(&w, method.clone(), &path, t, body).await;
        assert!(
            [StatusCode::NOT_FOUND, StatusCode::FORBIDDEN].contains(&reply.status),
            "{method} {path} answered {} {}",
            reply.status,
            reply.body
        );
        let error = reply.json();
        assert!(error["code"].is_string() && error["message"].is_string(), "{error}");
    }
    // Nothing of globex's changed.
    let eva = w.store.mailbox(Scope::Platform, &addr("eva@globex.example")).await.expect("still there");
    assert_eq!(eva.settings, MailboxSettings::default());
    assert_eq!(w.store.aliases(Scope::Platform, None).await.expect("aliases").len(), 1);
    assert!(!w.store.customer(&CustomerName::parse("globex").expect("n")).await.expect("c").disabled);
    // Lists show only the caller's own objects.
    let mine = api(&w, Method::GET, "/mailboxes", t, None).await.json();
    assert_eq!(mine.as_array().map(Vec::len), Some(1));
    assert_eq!(mine[0]["address"], "max@acme.example");
    let domains = api(&w, Method::GET, "/domains", t, None).await.json();
    assert_eq!(domains.as_array().map(|d| d.len()), Some(1));
    // The owner reaches the same object.
    let own = api(&w, Method::GET, &format!("/mailboxes/{mb}"), &w.globex_token, None).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    assert_eq!(own.json()["aliases"][0]["address"], "info@globex.example");
}

#[tokio::test]
async fn the_api_applies_the_password_rule_and_answers_errors_as_json_in_the_callers_language() {
    let w = world().await;
    let weak = api(
        &w,
        Method::POST,
        "/mailboxes",
        &w.acme_token,
        Some(json!({ "address": "new@acme.example", "password": "Sommer2024!!" })),
    )
    .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", weak.body);
    let error = weak.json();
    assert_eq!(error["code"], "weak_password");
    assert!(error["message"].as_str().is_some_and(|m| m.contains("too easy to guess")), "{error}");
    let created = api(
        &w,
        Method::POST,
        "/mailboxes",
        &w.acme_token,
        Some(json!({ "address": "new@acme.example", "password": STRONG, "access": "pop3", "submission": false })),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.json()["access"], "pop3");

    let anonymous = api(&w, Method::GET, "/mailboxes", "", None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.json()["code"], "unauthorized");
    let request = Request::builder()
        .uri("/api/v1/mailboxes")
        .header(header::ACCEPT_LANGUAGE, "de-DE,de;q=0.9")
        .body(Body::empty())
        .expect("request");
    let german = send(&w.web.router(), request).await.json();
    assert!(german["message"].as_str().is_some_and(|m| m.starts_with("Melden Sie sich an")), "{german}");
    let revoked = api(&w, Method::GET, "/mailboxes", "pfapi_not_a_token", None).await;
    assert_eq!(revoked.status, StatusCode::UNAUTHORIZED);
    let bad_json = api(&w, Method::POST, "/aliases", &w.acme_token, Some(json!({ "nope": 1 }))).await;
    assert_eq!((bad_json.status, bad_json.json()["code"].clone()), (StatusCode::BAD_REQUEST, json!("invalid_request")));
}

/// The panel's "check now" is an API call too, scoped like every other.
#[tokio::test]
async fn checking_a_domains_dns_records_is_an_api_call() {
    let w = world().await;
    let acme = w.store.domain(Scope::Platform, &DomainName::parse("acme.example").expect("d")).await.expect("d");
    let own = api(&w, Method::POST, &format!("/domains/{}/check", acme.id), &w.acme_token, None).await;
    // This world runs without DNS checks: the call reaches them and says they are off.
    assert_eq!((own.status, own.json()["code"].clone()), (StatusCode::SERVICE_UNAVAILABLE, json!("unavailable")));
    let foreign = api(&w, Method::POST, &format!("/domains/{}/check", w.globex_domain), &w.acme_token, None).await;
    assert_eq!((foreign.status, foreign.json()["code"].clone()), (StatusCode::NOT_FOUND, json!("not_found")));
}

#[tokio::test]
async fn tokens_are_created_listed_and_revoked() {
    let w = world().await;
    let created = api(&w, Method::POST, "/tokens", &w.acme_token, Some(json!({ "name": "backup script" }))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let token = created.json()["token"].as_str().expect("token shown once").to_string();
    let id = created.json()["id"].as_i64().expect("id");
    assert_eq!(api(&w, Method::GET, "/me", &token, None).await.json()["name"], "acme");
    let listed = api(&w, Method::GET, "/tokens", &w.acme_token, None).await;
    assert!(!listed.body.contains(&token), "the list never shows a token");
    assert_eq!(
        api(&w, Method::DELETE, &format!("/tokens/{id}"), &w.globex_token, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api(&w, Method::DELETE, &format!("/tokens/{id}"), &w.acme_token, None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(api(&w, Method::GET, "/me", &token, None).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn app_passwords_are_made_listed_and_revoked_through_the_api() {
    let w = world().await;
    let mb = w.acme_mailbox;
    let path = format!("/mailboxes/{mb}/app-passwords");
    let body = json!({ "name": "Phone", "services": ["imap", "submission"] });
    let made = api(&w, Method::POST, &path, &w.acme_token, Some(body)).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let password = made.json()["password"].as_str().expect("shown once").to_string();
    assert_eq!(made.json()["services"], json!(["imap", "submission"]));
    let listed = api(&w, Method::GET, &path, &w.acme_token, None).await;
    assert!(!listed.body.contains(&password), "the list never shows a password");
    assert_eq!(listed.json()[0]["name"], "Phone");
    let id = listed.json()[0]["id"].as_i64().expect("id");
    // POP3 is not offered for an IMAP mailbox; the refusal says so in the caller's words.
    let pop = api(&w, Method::POST, &path, &w.acme_token, Some(json!({ "name": "Old", "services": ["pop3"] }))).await;
    assert_eq!(pop.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", pop.body);
    assert_eq!(pop.json()["code"], "invalid_services");
    let switched =
        api(&w, Method::PATCH, &format!("/mailboxes/{mb}"), &w.acme_token, Some(json!({ "app_passwords_only": true })))
            .await;
    assert_eq!(switched.json()["app_passwords_only"], true, "{}", switched.body);
    let revoke = format!("{path}/{id}");
    assert_eq!(api(&w, Method::DELETE, &revoke, &w.globex_token, None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(api(&w, Method::DELETE, &revoke, &w.acme_token, None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(api(&w, Method::GET, &path, &w.acme_token, None).await.json(), json!([]));
}

/// The devices of a mailbox through the API: successful device logins grouped by
/// credential and service, the app password's id to revoke it; another customer's
/// mailbox is not found.
#[tokio::test]
async fn devices_are_listed_by_credential_and_service_through_the_api() {
    let w = world().await;
    let mb = w.acme_mailbox;
    let made = api(
        &w,
        Method::POST,
        &format!("/mailboxes/{mb}/app-passwords"),
        &w.acme_token,
        Some(json!({ "name": "Phone", "services": ["imap"] })),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let customer = w.store.mailbox(Scope::Platform, &addr("max@acme.example")).await.expect("max").customer_id;
    let now = postfach_types::UnixTime::now().0;
    for (at, credential, result) in [
        (now - 100, None, postfach_types::LoginResult::Ok),
        (now - 50, Some("Phone"), postfach_types::LoginResult::Ok),
        (now - 10, Some("Phone"), postfach_types::LoginResult::Ok),
        (now - 5, None, postfach_types::LoginResult::BadCredentials),
        (now - 91 * 86_400, Some("Old"), postfach_types::LoginResult::Ok),
    ] {
        let record = postfach_store::logins::LoginRecord {
            at: postfach_types::UnixTime(at),
            customer_id: Some(customer),
            mailbox_id: Some(mb),
            login: "max@acme.example".into(),
            service: postfach_types::Service::Imap,
            remote_ip: "192.0.2.5".parse().expect("ip"),
            tls: Some(TlsInfo { version: "TLSv1.3".into(), cipher: "TLS13_AES_128_GCM_SHA256".into() }),
            mechanism: postfach_types::Mechanism::ImapLogin,
            result,
            credential: credential.map(str::to_string),
        };
        w.store.record_login(&record).await.expect("record");
    }
    let path = format!("/mailboxes/{mb}/devices");
    let listed = api(&w, Method::GET, &path, &w.acme_token, None).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let devices = listed.json();
    assert_eq!(devices.as_array().map(Vec::len), Some(2), "{devices}");
    assert_eq!(devices[0]["credential"], "Phone");
    assert_eq!(devices[0]["service"], "imap");
    assert_eq!(devices[0]["logins"], 2);
    assert_eq!(devices[0]["last_tls_version"], "TLSv1.3");
    assert!(devices[0]["app_password_id"].is_i64(), "{devices}");
    assert_eq!(devices[1]["credential"], Value::Null);
    assert_eq!(devices[1]["app_password_id"], Value::Null);
    assert_eq!(devices[1]["last_remote_ip"], "192.0.2.5");
    // Revoking by the listed id works, and the group stays without it.
    let id = devices[0]["app_password_id"].as_i64().expect("id");
    let revoke = format!("/mailboxes/{mb}/app-passwords/{id}");
    assert_eq!(api(&w, Method::DELETE, &revoke, &w.acme_token, None).await.status, StatusCode::NO_CONTENT);
    let after = api(&w, Method::GET, &path, &w.acme_token, None).await.json();
    assert_eq!((after[0]["credential"].clone(), after[0]["app_password_id"].clone()), (json!("Phone"), Value::Null));
    let other = api(&w, Method::GET, &path, &w.globex_token, None).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "{}", other.body);
}

/// Every operation in the OpenAPI document is routed (no "no such operation", no 405),
/// and a path that is not in the document is not.
#[tokio::test]
async fn the_openapi_document_agrees_with_the_routes() {
    let w = world().await;
    let doc = api(&w, Method::GET, "/openapi.json", "", None).await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, methods) in paths {
        for (method, operation) in methods.as_object().expect("methods") {
            operations += 1;
            for name in path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))) {
                let declared =
                    operation["parameters"].as_array().is_some_and(|ps| ps.iter().any(|p| p["name"] == name));
                assert!(declared, "{method} {path}: parameter {name} is not declared");
            }
            if let Some(schema) = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str() {
                let name = schema.rsplit('/').next().unwrap_or_default();
                assert!(doc["components"]["schemas"][name].is_object(), "{schema} is not defined");
            }
            let concrete = path.replace("{id}", "999999");
            let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
            let body = (method != Method::GET && method != Method::DELETE).then(|| json!({}));
            let reply = api(&w, method.clone(), &concrete, &w.admin_token, body).await;
            assert_ne!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is documented but not routed");
            if reply.status == StatusCode::NOT_FOUND {
                assert_ne!(reply.json()["code"], "no_such_operation", "{method} {path} is documented but not routed");
            }
        }
    }
    assert!(operations >= 25, "{operations} operations");
    let unknown = api(&w, Method::GET, "/not-an-operation", &w.admin_token, None).await;
    assert_eq!((unknown.status, unknown.json()["code"].clone()), (StatusCode::NOT_FOUND, json!("no_such_operation")));
    let wrong_method = api(&w, Method::PUT, "/mailboxes", &w.admin_token, Some(json!({}))).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
}

/// A signed-in browser session: its cookies and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

fn cookies_of(headers: &HeaderMap) -> Vec<String> {
    headers.get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).map(str::to_string).collect()
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

async fn sign_in(router: &Router, login: &str, password: &str) -> Session {
    let form = send(router, Request::get("/login").body(Body::empty()).expect("request")).await;
    let login_cookie = cookies_of(&form.headers).into_iter().next().expect("login cookie");
    let login_cookie = login_cookie.split(';').next().unwrap_or_default().to_string();
    let token = between(&form.body, "name=\"login_token\" value=\"", "\"").expect("login token").to_string();
    let body =
        format!("login={}&password={}&login_token={token}", login.replace('@', "%40"), password.replace(' ', "+"));
    let request = Request::post("/login")
        .header(header::COOKIE, &login_cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .expect("request");
    let reply = send(router, request).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "sign-in of {login} failed: {}", reply.body);
    let session =
        cookies_of(&reply.headers).into_iter().find(|c| c.starts_with("__Host-postfach-session=")).expect("cookie");
    for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session.contains(flag), "{session} lacks {flag}");
    }
    let cookie = session.split(';').next().unwrap_or_default().to_string();
    let page =
        send(router, Request::get("/account").header(header::COOKIE, &cookie).body(Body::empty()).expect("r")).await;
    let page = if page.status == StatusCode::OK {
        page
    } else {
        send(router, Request::get("/mailboxes").header(header::COOKIE, &cookie).body(Body::empty()).expect("r")).await
    };
    let csrf = between(&page.body, "name=\"csrf-token\" content=\"", "\"").expect("csrf").to_string();
    Session { cookie, csrf }
}

async fn page(router: &Router, session: &Session, method: Method, path: &str, form: &str) -> Reply {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::COOKIE, &session.cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_string()))
        .expect("request");
    send(router, request).await
}

#[tokio::test]
async fn a_customer_cannot_reach_another_customers_objects_through_pages_and_forms_need_csrf() {
    let w = world().await;
    let router = w.web.router();
    let acme = sign_in(&router, "acme", STRONG).await;
    let (mb, dom, alias) = (w.globex_mailbox, w.globex_domain, w.globex_alias);
    let csrf = format!("csrf={}", acme.csrf);
    for (method, path, form) in [
        (Method::GET, format!("/mailboxes/{mb}"), String::new()),
        (Method::GET, format!("/mailboxes/{mb}/apple.mobileconfig"), String::new()),
        (Method::POST, format!("/mailboxes/{mb}/settings"), format!("{csrf}&access=pop3")),
        (Method::POST, format!("/mailboxes/{mb}/password"), format!("{csrf}&password=correct+horse+battery+staple")),
        (Method::GET, format!("/mailboxes/{mb}/remove"), String::new()),
        (Method::POST, format!("/mailboxes/{mb}/remove"), csrf.clone()),
        (Method::GET, format!("/domains/{dom}"), String::new()),
        (Method::POST, format!("/domains/{dom}/remove"), format!("{csrf}&cascade=1")),
        (Method::GET, format!("/aliases/{alias}/remove"), String::new()),
        (Method::POST, format!("/aliases/{alias}/remove"), csrf.clone()),
        (Method::GET, "/admin/customers".into(), String::new()),
        (Method::POST, "/admin/customers/2/disabled".into(), format!("{csrf}&value=1")),
    ] {
        let reply = page(&router, &acme, method.clone(), &path, &form).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {path}: {}", reply.status);
    }
    let eva = w.store.mailbox(Scope::Platform, &addr("eva@globex.example")).await.expect("still there");
    assert_eq!(eva.settings, MailboxSettings::default());
    assert_eq!(w.store.aliases(Scope::Platform, None).await.expect("aliases").len(), 1);

    // Own mailbox: without the CSRF token nothing changes.
    let own = format!("/mailboxes/{}/settings", w.acme_mailbox);
    let forged = page(&router, &acme, Method::POST, &own, "access=pop3").await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let forged = page(&router, &acme, Method::POST, &own, "csrf=0000&access=pop3").await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(
        w.store.mailbox_by_id(Scope::Platform, w.acme_mailbox).await.expect("mb").settings.access,
        AccessMode::Imap
    );
    let real = page(&router, &acme, Method::POST, &own, &format!("{csrf}&access=pop3&tls_required=on")).await;
    assert_eq!(real.status, StatusCode::SEE_OTHER);
    let changed = w.store.mailbox_by_id(Scope::Platform, w.acme_mailbox).await.expect("mb").settings;
    assert_eq!((changed.access, changed.tls_required, changed.submission), (AccessMode::Pop3, true, false));

    // Cookie-authenticated API calls that change something need the CSRF header.
    let request = |with_csrf: bool| {
        let mut b = Request::patch(format!("/api/v1/mailboxes/{}", w.acme_mailbox))
            .header(header::COOKIE, &acme.cookie)
            .header(header::CONTENT_TYPE, "application/json");
        if with_csrf {
            b = b.header("X-CSRF-Token", &acme.csrf);
        }
        b.body(Body::from(json!({ "access": "none" }).to_string())).expect("request")
    };
    let refused = send(&router, request(false)).await;
    assert_eq!((refused.status, refused.json()["code"].clone()), (StatusCode::FORBIDDEN, json!("csrf")));
    assert_eq!(send(&router, request(true)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_mailbox_user_sees_only_their_own_mailbox() {
    let w = world().await;
    let router = w.web.router();
    let max = sign_in(&router, "max@acme.example", STRONG).await;
    let own = page(&router, &max, Method::GET, &format!("/mailboxes/{}", w.acme_mailbox), "").await;
    assert_eq!(own.status, StatusCode::OK);
    assert!(own.body.contains("max@acme.example") && !own.body.contains("settings-form"), "read-only settings");
    w.store
        .add_mailbox(Scope::Platform, &addr("boss@acme.example"), "x", MailboxSettings::default())
        .await
        .expect("mb");
    let boss = w.store.mailbox(Scope::Platform, &addr("boss@acme.example")).await.expect("mb");
    for path in [
        format!("/mailboxes/{}", boss.id),
        "/mailboxes".into(),
        "/domains".into(),
        "/aliases".into(),
        "/account".into(),
    ] {
        assert_eq!(page(&router, &max, Method::GET, &path, "").await.status, StatusCode::NOT_FOUND, "{path}");
    }
    let settings = page(
        &router,
        &max,
        Method::POST,
        &format!("/mailboxes/{}/settings", w.acme_mailbox),
        &format!("csrf={}&access=pop3", max.csrf),
    )
    .await;
    assert_eq!(settings.status, StatusCode::NOT_FOUND, "mailbox users cannot change settings");
}

#[tokio::test]
async fn an_admin_resets_other_accounts_passwords_but_not_their_own() {
    let w = world().await;
    let router = w.web.router();
    let id = |name: &'static str| {
        let store = w.store.clone();
        async move { store.customer(&CustomerName::parse(name).expect("name")).await.expect("customer").id }
    };
    let (root, acme, globex) = (id("root").await, id("acme").await, id("globex").await);
    let new = "quartz lantern meadow 2041 orbit";
    let form = |session: &Session| format!("csrf={}&password={}", session.csrf, new.replace(' ', "+"));

    // Their own account through the manager path: refused, nothing changed.
    let own =
        api(&w, Method::PATCH, &format!("/customers/{root}"), &w.admin_token, Some(json!({ "password": new }))).await;
    assert_eq!((own.status, own.json()["code"].clone()), (StatusCode::CONFLICT, json!("conflict")), "{}", own.body);
    assert!(own.json()["message"].as_str().is_some_and(|m| m.contains("account page")), "{}", own.body);
    let admin = sign_in(&router, "root", STRONG).await;
    let own = page(&router, &admin, Method::POST, &format!("/admin/customers/{root}/password"), &form(&admin)).await;
    assert_eq!(own.status, StatusCode::OK);
    assert!(own.body.contains("Change your own password on your account page"), "{}", own.body);
    assert_eq!(api(&w, Method::GET, "/me", &w.admin_token, None).await.status, StatusCode::OK, "nothing revoked");
    assert_eq!(page(&router, &admin, Method::GET, "/admin/customers", "").await.status, StatusCode::OK);
    sign_in(&router, "root", STRONG).await;

    // Another account, through the API and the page: the password changes, the account's
    // panel sessions end and its API tokens are revoked.
    for (customer, name, token, by_page) in
        [(acme, "acme", &w.acme_token, false), (globex, "globex", &w.globex_token, true)]
    {
        let theirs = sign_in(&router, name, STRONG).await;
        let path = format!("/customers/{customer}");
        if by_page {
            let reply = page(&router, &admin, Method::POST, &format!("/admin{path}/password"), &form(&admin)).await;
            assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        } else {
            let reply = api(&w, Method::PATCH, &path, &w.admin_token, Some(json!({ "password": new }))).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        }
        assert_eq!(api(&w, Method::GET, "/me", token, None).await.status, StatusCode::UNAUTHORIZED, "{name}");
        let ended = page(&router, &theirs, Method::GET, "/account", "").await;
        assert_eq!(ended.headers.get(header::LOCATION).and_then(|l| l.to_str().ok()), Some("/login"), "{name}");
        sign_in(&router, name, new).await;
    }
}

#[tokio::test]
async fn a_mailbox_user_is_told_to_give_the_current_password() {
    let w = world().await;
    let router = w.web.router();
    let max = sign_in(&router, "max@acme.example", STRONG).await;
    let request = Request::put(format!("/api/v1/mailboxes/{}/password", w.acme_mailbox))
        .header(header::COOKIE, &max.cookie)
        .header("X-CSRF-Token", &max.csrf)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({ "password": "quartz lantern meadow 2041 orbit" }).to_string()))
        .expect("request");
    let reply = send(&router, request).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let error = reply.json();
    assert_eq!(error["code"], "current_password_required");
    assert_eq!(error["message"], "Enter your current password to change it.");
}

#[tokio::test]
async fn the_password_check_takes_only_a_valid_customer_name() {
    let w = world().await;
    let huge = "x".repeat(60_000);
    for customer in [huge.as_str(), "Not a name!", "globexcorp"] {
        let body = json!({ "password": "Globexcorp2024!globexcorp", "customer": customer });
        let reply = api(&w, Method::POST, "/password-check", &w.admin_token, Some(body)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let refused_for_the_name = reply.json()["refusal"] == "mostly-user-words";
        assert_eq!(refused_for_the_name, customer == "globexcorp", "{customer:.20}: {}", reply.body);
    }
}

/// A small XML reader for the checks: (element path, text) pairs and attributes.
fn xml_fields(xml: &str) -> Vec<(String, String)> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut path: Vec<String> = Vec::new();
    let mut out = Vec::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_string();
                path.push(name);
                for attr in e.attributes().flatten() {
                    let key = attr.key.local_name().as_ref().to_string();
                    out.push((format!("/{}@{key}", path.join("/")), attr.value.to_string()));
                }
            }
            Event::Empty(e) => {
                let name = e.local_name().as_ref().to_string();
                out.push((format!("/{}/{name}", path.join("/")), String::new()));
            }
            Event::Text(t) => out.push((format!("/{}", path.join("/")), t.xml10_content().into_owned())),
            Event::End(_) => {
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

fn field<'a>(fields: &'a [(String, String)], path: &str) -> Vec<&'a str> {
    fields.iter().filter(|(p, _)| p == path).map(|(_, v)| v.as_str()).collect()
}

async fn thunderbird(router: &Router, address: &str) -> String {
    let uri = format!("/mail/config-v1.1.xml?emailaddress={}", address.replace('@', "%40"));
    let reply = send(router, Request::get(uri).body(Body::empty()).expect("request")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.headers[header::CONTENT_TYPE].to_str().is_ok_and(|c| c.starts_with("application/xml")));
    reply.body
}

#[tokio::test]
async fn thunderbird_autoconfig_offers_only_the_mailboxs_protocol_over_tls() {
    let w = world().await;
    let router = w.web.router();
    let set = |address: &'static str, change: SettingsChange| {
        let store = w.store.clone();
        async move { store.set_mailbox_settings(Scope::Platform, &addr(address), change).await.expect("settings") }
    };
    // IMAP mailbox: Thunderbird's required fields, implicit TLS, submission.
    let xml = thunderbird(&router, "max@acme.example").await;
    let f = xml_fields(&xml);
    let server = "/clientConfig/emailProvider/incomingServer";
    assert_eq!(field(&f, "/clientConfig@version"), ["1.1"]);
    assert_eq!(field(&f, "/clientConfig/emailProvider@id"), ["mail.example.net"]);
    assert_eq!(field(&f, "/clientConfig/emailProvider/domain"), ["acme.example"]);
    assert_eq!(field(&f, &format!("{server}@type")), ["imap"]);
    assert_eq!(field(&f, &format!("{server}/hostname")), ["mail.example.net"]);
    assert_eq!(field(&f, &format!("{server}/port")), ["993"]);
    assert_eq!(field(&f, &format!("{server}/socketType")), ["SSL"]);
    assert_eq!(field(&f, &format!("{server}/authentication")), ["password-cleartext"]);
    assert_eq!(field(&f, &format!("{server}/username")), ["%EMAILADDRESS%"]);
    let out = "/clientConfig/emailProvider/outgoingServer";
    assert_eq!(field(&f, &format!("{out}@type")), ["smtp"]);
    assert_eq!(field(&f, &format!("{out}/port")), ["465"]);
    assert_eq!(field(&f, &format!("{out}/socketType")), ["SSL"]);
    assert!(!xml.contains("pop3") && !xml.contains(":143") && !xml.contains(">143<"));

    // The same document at the well-known URL and over plain HTTP.
    let well_known = send(
        &router,
        Request::get("/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=max%40acme.example")
            .body(Body::empty())
            .expect("r"),
    )
    .await;
    assert_eq!(well_known.body, xml);
    let over_http = send(
        &w.web.http_router(),
        Request::get("/mail/config-v1.1.xml?emailaddress=max%40acme.example").body(Body::empty()).expect("r"),
    )
    .await;
    assert_eq!(over_http.body, xml);

    // POP3 without sending: only POP3, no SMTP.
    set(
        "max@acme.example",
        SettingsChange { access: Some(AccessMode::Pop3), submission: Some(false), ..Default::default() },
    )
    .await;
    let f = xml_fields(&thunderbird(&router, "max@acme.example").await);
    assert_eq!(field(&f, &format!("{server}@type")), ["pop3"]);
    assert_eq!(field(&f, &format!("{server}/port")), ["995"]);
    assert!(field(&f, &format!("{out}@type")).is_empty(), "no outgoing server without submission");
    // No access: no incoming server.
    set(
        "max@acme.example",
        SettingsChange { access: Some(AccessMode::None), submission: Some(true), ..Default::default() },
    )
    .await;
    let f = xml_fields(&thunderbird(&router, "max@acme.example").await);
    assert!(field(&f, &format!("{server}@type")).is_empty());
    assert_eq!(field(&f, &format!("{out}/port")), ["465"]);

    // Unknown addresses and aliases look exactly like a mailbox with default settings.
    let known_default = thunderbird(&router, "eva@globex.example").await;
    assert_eq!(thunderbird(&router, "nobody@globex.example").await, known_default);
    assert_eq!(thunderbird(&router, "info@globex.example").await, known_default);
}

#[tokio::test]
async fn outlook_autodiscover_honours_the_mailbox() {
    let w = world().await;
    let router = w.web.router();
    w.store
        .set_mailbox_settings(
            Scope::Platform,
            &addr("max@acme.example"),
            SettingsChange { access: Some(AccessMode::Pop3), ..Default::default() },
        )
        .await
        .expect("settings");
    let body = r#"<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>max@acme.example</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>"#;
    let reply = send(&router, Request::post("/autodiscover/autodiscover.xml").body(Body::from(body)).expect("r")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let f = xml_fields(&reply.body);
    let protocol = "/Autodiscover/Response/Account/Protocol";
    assert_eq!(field(&f, "/Autodiscover/Response/Account/AccountType"), ["email"]);
    assert_eq!(field(&f, "/Autodiscover/Response/Account/Action"), ["settings"]);
    assert_eq!(field(&f, &format!("{protocol}/Type")), ["POP3", "SMTP"]);
    assert_eq!(field(&f, &format!("{protocol}/Port")), ["995", "465"]);
    assert_eq!(field(&f, &format!("{protocol}/SSL")), ["on", "on"]);
    assert_eq!(field(&f, &format!("{protocol}/LoginName")), ["max@acme.example", "max@acme.example"]);
    // Over plain HTTP the POST is redirected to HTTPS, keeping the method (308).
    let http =
        send(&w.web.http_router(), Request::post("/autodiscover/autodiscover.xml").body(Body::from(body)).expect("r"))
            .await;
    assert_eq!(http.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(http.headers[header::LOCATION], "https://mail.example.net:8443/autodiscover/autodiscover.xml");
}

#[tokio::test]
async fn the_mobileconfig_is_a_valid_profile_for_the_signed_in_mailbox_user() {
    let w = world().await;
    let router = w.web.router();
    w.store
        .set_mailbox_settings(
            Scope::Platform,
            &addr("max@acme.example"),
            SettingsChange { submission: Some(false), ..Default::default() },
        )
        .await
        .expect("settings");
    let max = sign_in(&router, "max@acme.example", STRONG).await;
    let reply =
        page(&router, &max, Method::GET, &format!("/mailboxes/{}/apple.mobileconfig", w.acme_mailbox), "").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/x-apple-aspen-config");
    let profile = plist::Value::from_reader_xml(reply.body.as_bytes()).expect("a valid plist");
    let profile = profile.as_dictionary().expect("dict");
    assert_eq!(profile.get("PayloadType").and_then(|v| v.as_string()), Some("Configuration"));
    assert_eq!(profile.get("PayloadVersion").and_then(|v| v.as_signed_integer()), Some(1));
    let uuid = profile.get("PayloadUUID").and_then(|v| v.as_string()).expect("uuid");
    assert_eq!(uuid.len(), 36);
    let content = profile.get("PayloadContent").and_then(|v| v.as_array()).expect("content");
    assert_eq!(content.len(), 1);
    let mail = content[0].as_dictionary().expect("mail payload");
    let s = |k: &str| mail.get(k).and_then(|v| v.as_string()).map(str::to_string);
    let n = |k: &str| mail.get(k).and_then(|v| v.as_signed_integer());
    let b = |k: &str| mail.get(k).and_then(|v| v.as_boolean());
    assert_eq!(s("PayloadType").as_deref(), Some("com.apple.mail.managed"));
    assert_eq!(s("EmailAccountType").as_deref(), Some("EmailTypeIMAP"));
    assert_eq!(s("EmailAddress").as_deref(), Some("max@acme.example"));
    assert_eq!(s("IncomingMailServerHostName").as_deref(), Some("mail.example.net"));
    assert_eq!(n("IncomingMailServerPortNumber"), Some(993));
    assert_eq!(b("IncomingMailServerUseSSL"), Some(true));
    assert_eq!(s("IncomingMailServerUsername").as_deref(), Some("max@acme.example"));
    assert_eq!(s("OutgoingMailServerHostName"), None, "sending is switched off");
    assert!(!reply.body.contains(STRONG), "the profile never holds the password");
    // Another mailbox's profile is not available.
    let other =
        page(&router, &max, Method::GET, &format!("/mailboxes/{}/apple.mobileconfig", w.globex_mailbox), "").await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn plain_http_redirects_to_https_at_the_configured_name() {
    let w = world().await;
    let request = Request::get("/mailboxes?x=1").header(header::HOST, "evil.example").body(Body::empty()).expect("r");
    let reply = send(&w.web.http_router(), request).await;
    assert_eq!(reply.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(reply.headers[header::LOCATION], "https://mail.example.net:8443/mailboxes?x=1");
    let https = send(&w.web.router(), Request::get("/login").body(Body::empty()).expect("r")).await;
    let csp = https.headers[header::CONTENT_SECURITY_POLICY].to_str().expect("csp");
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
    assert!(https.headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
}

#[tokio::test]
async fn the_domain_page_shows_the_records_to_publish_and_the_last_check() {
    use postfach_store::dns_checks::{Check, DomainReport, Level, Text, Verdict};
    let mut w = world().await;
    let platform = postfach_dns::Platform {
        hostname: DomainName::parse("mail.example.net").expect("host"),
        spf_name: "_spf.mail.example.net".into(),
        outbound_ips: vec!["192.0.2.25".parse().expect("ip")],
        ports: postfach_dns::ServicePorts::standard(),
        tls_reports: None,
    };
    // The resolver is never asked on a page view (port 9 on loopback answers nothing).
    let checker =
        postfach_dns::checks::Checker::new(platform, Some("127.0.0.1:9".parse().expect("addr"))).expect("checker");
    w.web = Web::new(
        w.store.clone(),
        Arc::new(
            Authenticator::new(w.store.clone(), AuthSettings::default(), PasswordHasher::new(2)).await.expect("auth"),
        ),
        WebSettings {
            hostname: DomainName::parse("mail.example.net").expect("host"),
            https_port: 443,
            endpoints: endpoints(),
            dns: Some(checker),
            sieve_limits: Default::default(),
            imports: None,
        },
    );
    let acme_domain = w.store.domain(Scope::Platform, &DomainName::parse("acme.example").expect("d")).await.expect("d");
    let report = DomainReport {
        domain: acme_domain.name.clone(),
        checked_at: postfach_types::UnixTime::now(),
        verdicts: vec![
            Verdict {
                check: Check::Spf,
                code: "spf.plus_all".into(),
                level: Level::Error,
                message: Text {
                    de: "Der SPF-Eintrag endet mit +all.".into(),
                    en: "The SPF record ends in +all.".into(),
                },
            },
            Verdict {
                check: Check::Srv,
                code: "srv.ok".into(),
                level: Level::Ok,
                message: Text { de: "SRV ok.".into(), en: "SRV ok.".into() },
            },
            Verdict {
                check: Check::Autoconfig,
                code: "autoconfig.missing".into(),
                level: Level::Warning,
                message: Text { de: "Es fehlt autoconfig.".into(), en: "autoconfig is missing.".into() },
            },
        ],
    };
    w.store.save_dns_report(Scope::Platform, &report).await.expect("save report");
    let router = w.web.router();
    let acme = sign_in(&router, "acme", STRONG).await;
    let page_html = page(&router, &acme, Method::GET, &format!("/domains/{}", acme_domain.id), "").await;
    assert_eq!(page_html.status, StatusCode::OK);
    for expected in [
        "v=spf1 include:_spf.mail.example.net -all",
        "._domainkey.acme.example",
        "_dmarc.acme.example",
        "10 mail.example.net.",
        "The SPF record ends in +all.",
        "status-error",
        // The client-setup rows carry their checks' states, not "not checked yet".
        "<tr class=\"status-ok\">\n  <td><code>_imaps._tcp.acme.example</code>",
        "<tr class=\"status-warning\">\n  <td><code>autoconfig.acme.example</code>",
        "<tr class=\"status-warning\">\n  <td><code>autodiscover.acme.example</code>",
    ] {
        assert!(page_html.body.contains(expected), "the domain page lacks {expected:?}");
    }
    assert!(!page_html.body.contains("dns-hostname-problem"), "a usable hostname is not questioned");
    let mailbox = page(&router, &acme, Method::GET, &format!("/mailboxes/{}", w.acme_mailbox), "").await;
    assert!(mailbox.body.contains("SPF, DKIM or DMARC has errors"), "the checklist shows the DNS verdict");
    let api_view = api(&w, Method::GET, &format!("/domains/{}", acme_domain.id), &w.acme_token, None).await.json();
    assert!(api_view["records"].as_array().is_some_and(|r| r.iter().any(|r| r["type"] == "MX")), "{api_view}");
    assert_eq!(api_view["check"]["findings"][0]["level"], "error");
}

#[tokio::test]
async fn two_factor_sign_in_asks_for_a_code_that_works_once() {
    let w = world().await;
    let router = w.web.router();
    let acme = sign_in(&router, "acme", STRONG).await;
    let csrf = format!("csrf={}", acme.csrf);
    assert_eq!(
        page(&router, &acme, Method::POST, "/account/totp", &format!("{csrf}&action=start")).await.status,
        StatusCode::SEE_OTHER
    );
    let account = page(&router, &acme, Method::GET, "/account", "").await;
    let secret = between(&account.body, "<code id=\"totp-secret\">", "</code>").expect("secret shown").to_string();
    let now = || u64::try_from(postfach_types::UnixTime::now().0).expect("time");
    let wrong =
        page(&router, &acme, Method::POST, "/account/totp", &format!("{csrf}&action=confirm&code=000000")).await;
    assert!(wrong.body.contains("The code is not right"));
    let code = postfach_web::totp_code(&secret, now()).expect("code");
    let on = page(&router, &acme, Method::POST, "/account/totp", &format!("{csrf}&action=confirm&code={code}")).await;
    assert_eq!(on.headers[header::LOCATION], "/account?done=totp_on");

    // Signing in now needs the code; the half-signed-in session reaches nothing else.
    let password_step = |router: Router| async move {
        let form = send(&router, Request::get("/login").body(Body::empty()).expect("r")).await;
        let login_cookie = cookies_of(&form.headers)[0].split(';').next().unwrap_or_default().to_string();
        let token = between(&form.body, "name=\"login_token\" value=\"", "\"").expect("token").to_string();
        let request = Request::post("/login")
            .header(header::COOKIE, &login_cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("login=acme&password={}&login_token={token}", STRONG.replace(' ', "+"))))
            .expect("r");
        let reply = send(&router, request).await;
        assert_eq!(reply.headers[header::LOCATION], "/login/code");
        let cookie =
            cookies_of(&reply.headers).into_iter().find(|c| c.starts_with("__Host-postfach-session=")).expect("c");
        let cookie = cookie.split(';').next().unwrap_or_default().to_string();
        let code_page =
            send(&router, Request::get("/login/code").header(header::COOKIE, &cookie).body(Body::empty()).expect("r"))
                .await;
        let csrf = between(&code_page.body, "name=\"csrf-token\" content=\"", "\"").expect("csrf").to_string();
        Session { cookie, csrf }
    };
    let pending = password_step(router.clone()).await;
    let blocked = page(&router, &pending, Method::GET, "/mailboxes", "").await;
    assert_eq!(
        (blocked.status, blocked.headers[header::LOCATION].clone()),
        (StatusCode::SEE_OTHER, "/login".parse().expect("hv"))
    );
    // The code just used to switch it on does not work a second time.
    let replay =
        page(&router, &pending, Method::POST, "/login/code", &format!("csrf={}&code={code}", pending.csrf)).await;
    assert!(replay.body.contains("The code is not right"), "a code works only once");
    assert_eq!(
        page(&router, &pending, Method::GET, "/login/code", "").await.headers[header::LOCATION],
        "/",
        "the session ended"
    );

    // A fresh code (of the next time step, accepted for clock drift) signs in.
    let pending = password_step(router.clone()).await;
    let next = postfach_web::totp_code(&secret, now() + 30).expect("code");
    let done =
        page(&router, &pending, Method::POST, "/login/code", &format!("csrf={}&code={next}", pending.csrf)).await;
    assert_eq!(done.headers[header::LOCATION], "/");
    assert_eq!(page(&router, &pending, Method::GET, "/mailboxes", "").await.status, StatusCode::OK);
}

/// A Web whose platform is named `hostname`, with DNS records (the resolver is never asked
/// on a page view) and the operator's `allow_plaintext_auth`.
async fn web_with(w: &World, hostname: &str, allow_plaintext_auth: bool) -> Web {
    let host = DomainName::parse(hostname).expect("host");
    let platform = postfach_dns::Platform {
        hostname: host.clone(),
        spf_name: format!("_spf.{hostname}"),
        outbound_ips: vec!["192.0.2.25".parse().expect("ip")],
        ports: postfach_dns::ServicePorts::standard(),
        tls_reports: None,
    };
    let checker =
        postfach_dns::checks::Checker::new(platform, Some("127.0.0.1:9".parse().expect("addr"))).expect("checker");
    let settings = AuthSettings { allow_plaintext_auth, ..AuthSettings::default() };
    let auth = Authenticator::new(w.store.clone(), settings, PasswordHasher::new(2)).await.expect("auth");
    Web::new(
        w.store.clone(),
        Arc::new(auth),
        WebSettings {
            hostname: host,
            https_port: 443,
            endpoints: endpoints(),
            dns: Some(checker),
            sieve_limits: Default::default(),
            imports: None,
        },
    )
}

#[tokio::test]
async fn the_domain_page_says_what_to_set_instead_of_localhost() {
    let mut w = world().await;
    w.web = web_with(&w, "localhost", false).await;
    let acme_domain = w.store.domain(Scope::Platform, &DomainName::parse("acme.example").expect("d")).await.expect("d");
    let router = w.web.router();
    let acme = sign_in(&router, "acme", STRONG).await;
    let html = page(&router, &acme, Method::GET, &format!("/domains/{}", acme_domain.id), "").await.body;
    assert!(html.contains("id=\"dns-hostname-problem\""), "{html}");
    assert!(html.contains("Set hostname to this server&#39;s fully qualified name"), "{html}");
    assert!(html.contains("_dmarc.acme.example"), "the records that do not name the server stay");
    for offered in ["_spf.localhost", "10 localhost.", "_imaps._tcp.acme.example", "autoconfig.acme.example"] {
        assert!(!html.contains(offered), "{offered} must not be offered");
    }
    let german = send(
        &router,
        Request::get(format!("/domains/{}", acme_domain.id))
            .header(header::COOKIE, &acme.cookie)
            .header(header::ACCEPT_LANGUAGE, "de")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert!(german.body.contains("Setzen Sie hostname auf den vollständigen Namen"), "{}", german.body);
}

#[tokio::test]
async fn a_mailbox_user_is_told_whom_to_ask_instead_of_a_link_to_the_domain() {
    use postfach_store::dns_checks::{Check, DomainReport, Level, Text, Verdict};
    let w = world().await;
    let acme_domain = w.store.domain(Scope::Platform, &DomainName::parse("acme.example").expect("d")).await.expect("d");
    let report = DomainReport {
        domain: acme_domain.name.clone(),
        checked_at: postfach_types::UnixTime::now(),
        verdicts: vec![Verdict {
            check: Check::Dkim,
            code: "dkim.missing".into(),
            level: Level::Error,
            message: Text { de: "DKIM fehlt.".into(), en: "DKIM is missing.".into() },
        }],
    };
    w.store.save_dns_report(Scope::Platform, &report).await.expect("save report");
    let router = w.web.router();
    let mailbox_page = format!("/mailboxes/{}", w.acme_mailbox);
    let domain_link = format!("/domains/{}#dns", acme_domain.id);

    let max = sign_in(&router, "max@acme.example", STRONG).await;
    let own = page(&router, &max, Method::GET, &mailbox_page, "").await;
    assert_eq!(own.status, StatusCode::OK);
    assert!(!own.body.contains(&domain_link) && !own.body.contains("Go to the domain"), "no link to an error page");
    assert!(own.body.contains("SPF, DKIM or DMARC has errors"), "the state is still shown");
    assert!(
        own.body.contains("The domain&#39;s DNS records are changed by its owner; please ask them."),
        "{}",
        own.body
    );
    // The page the link used to lead to is still not theirs.
    let domain_page = format!("/domains/{}", acme_domain.id);
    assert_eq!(page(&router, &max, Method::GET, &domain_page, "").await.status, StatusCode::NOT_FOUND);

    let acme = sign_in(&router, "acme", STRONG).await;
    let managed = page(&router, &acme, Method::GET, &mailbox_page, "").await;
    assert!(
        managed.body.contains(&domain_link) && managed.body.contains("Go to the domain"),
        "the manager gets the link"
    );
}

#[tokio::test]
async fn the_tls_only_switch_says_it_matters_only_where_plaintext_logins_are_allowed() {
    let mut w = world().await;
    w.store
        .set_mailbox_settings(
            Scope::Platform,
            &addr("max@acme.example"),
            SettingsChange { tls_required: Some(false), ..Default::default() },
        )
        .await
        .expect("settings");
    let mailbox_page = format!("/mailboxes/{}", w.acme_mailbox);
    // The operator refuses plaintext logins (the default): the switch changes nothing.
    let router = w.web.router();
    let acme = sign_in(&router, "acme", STRONG).await;
    let html = page(&router, &acme, Method::GET, &mailbox_page, "").await.body;
    assert!(html.contains("The switch matters only where the operator allows unencrypted logins at all."), "{html}");
    assert!(html.contains("This server allows no unencrypted logins at all"), "{html}");
    assert!(html.contains("This server accepts passwords only over encrypted connections."), "{html}");
    assert!(!html.contains("is off: a program could send the password unencrypted"), "no false alarm");

    // The operator allows plaintext: the switch matters, and off is a finding.
    w.web = web_with(&w, "mail.example.net", true).await;
    let router = w.web.router();
    let acme = sign_in(&router, "acme", STRONG).await;
    let html = page(&router, &acme, Method::GET, &mailbox_page, "").await.body;
    assert!(html.contains("The switch matters only where the operator allows unencrypted logins at all."), "{html}");
    assert!(!html.contains("This server allows no unencrypted logins at all"), "{html}");
    assert!(html.contains("is off: a program could send the password unencrypted"), "{html}");
}

#[tokio::test]
async fn a_customer_switches_certificates_for_their_domain_in_the_panel_and_the_api() {
    let w = world().await;
    let router = w.web.router();
    let acme = sign_in(&router, "acme", STRONG).await;
    let domain = w.store.domain(Scope::Platform, &DomainName::parse("acme.example").expect("d")).await.expect("d");
    let path = format!("/domains/{}", domain.id);
    let shown = page(&router, &acme, Method::GET, &path, "").await;
    assert!(shown.body.contains("id=\"certificates-switch\"") && shown.body.contains("Switch certificates on"));

    let form = format!("csrf={}&certificates=on", acme.csrf);
    let forged = page(&router, &acme, Method::POST, &format!("{path}/certificates"), "certificates=on").await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let switched = page(&router, &acme, Method::POST, &format!("{path}/certificates"), &form).await;
    assert_eq!(switched.status, StatusCode::SEE_OTHER);
    assert!(w.store.domain_by_id(Scope::Platform, domain.id).await.expect("d").certificates);
    let shown = page(&router, &acme, Method::GET, &path, "").await;
    assert!(shown.body.contains("Switch certificates off"), "the page shows the new state");

    // Another customer's domain stays out of reach.
    let other = format!("/domains/{}/certificates", w.globex_domain);
    assert_eq!(page(&router, &acme, Method::POST, &other, &form).await.status, StatusCode::NOT_FOUND);
    assert!(!w.store.domain_by_id(Scope::Platform, w.globex_domain).await.expect("d").certificates);

    // The API: the field is shown and a customer may switch it, but not mark a domain verified.
    let off = api(&w, Method::PATCH, &path, &w.acme_token, Some(json!({ "certificates": false }))).await;
    assert_eq!((off.status, off.json()["domain"]["certificates"].clone()), (StatusCode::OK, json!(false)));
    let verify = api(&w, Method::PATCH, &path, &w.acme_token, Some(json!({ "verified": false }))).await;
    assert_eq!(verify.status, StatusCode::FORBIDDEN, "{}", verify.body);
    assert!(w.store.domain_by_id(Scope::Platform, domain.id).await.expect("d").verified);
    let other = format!("/domains/{}", w.globex_domain);
    let refused = api(&w, Method::PATCH, &other, &w.acme_token, Some(json!({ "certificates": true }))).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn plain_http_answers_acme_http_01_challenges_from_the_database_only() {
    let w = world().await;
    let get = |path: &str| Request::get(path.to_string()).body(Body::empty()).expect("request");
    let http = w.web.http_router();
    let unknown = send(&http, get("/.well-known/acme-challenge/abcDEF123_-")).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let challenge = postfach_store::certificates::Challenge {
        token: "abcDEF123_-".into(),
        kind: "http-01".into(),
        name: DomainName::parse("mail.example.net").expect("name"),
        value: "abcDEF123_-.thumbprint".into(),
    };
    w.store.put_challenge(&challenge).await.expect("challenge");
    let answered = send(&http, get("/.well-known/acme-challenge/abcDEF123_-")).await;
    assert_eq!((answered.status, answered.body.as_str()), (StatusCode::OK, "abcDEF123_-.thumbprint"));
    let long = format!("/.well-known/acme-challenge/{}", "a".repeat(200));
    assert_eq!(send(&http, get(&long)).await.status, StatusCode::NOT_FOUND);
    // A tls-alpn-01 challenge is not an http-01 answer; other paths still redirect.
    let tls =
        postfach_store::certificates::Challenge { token: "tlsToken".into(), kind: "tls-alpn-01".into(), ..challenge };
    w.store.put_challenge(&tls).await.expect("challenge");
    assert_eq!(send(&http, get("/.well-known/acme-challenge/tlsToken")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(send(&http, get("/.well-known/other")).await.status, StatusCode::PERMANENT_REDIRECT);
    w.store.remove_challenge("abcDEF123_-").await.expect("remove");
    assert_eq!(send(&http, get("/.well-known/acme-challenge/abcDEF123_-")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn warning_switches_and_the_contact_address_in_the_panel_and_the_api() {
    use postfach_store::warnings::WarningKind;
    let w = world().await;
    let router = w.web.router();
    let acme = sign_in(&router, "acme", STRONG).await;
    let path = format!("/mailboxes/{}", w.acme_mailbox);
    let shown = page(&router, &acme, Method::GET, &path, "").await;
    assert!(shown.body.contains("Warnings by mail") && shown.body.contains("id=\"warn-locked\" checked"), "all on");

    // The form sends the kinds that stay on: `locked` is switched off.
    let on = ["unencrypted", "wrong-protocol", "exposed", "sending-limit", "new-device", "unused-app-password"]
        .map(|k| format!("&on={k}"))
        .concat();
    let forged = page(&router, &acme, Method::POST, &format!("{path}/warnings"), &on[1..]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let saved =
        page(&router, &acme, Method::POST, &format!("{path}/warnings"), &format!("csrf={}{on}", acme.csrf)).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let off = w.store.mailbox_warnings_off(Scope::Platform, w.acme_mailbox).await.expect("off");
    assert_eq!(off, vec![WarningKind::Locked]);
    let shown = page(&router, &acme, Method::GET, &path, "").await;
    assert!(shown.body.contains("id=\"warn-locked\" >") && shown.body.contains("id=\"warn-exposed\" checked"));
    let other = format!("/mailboxes/{}/warnings", w.globex_mailbox);
    let refused = page(&router, &acme, Method::POST, &other, &format!("csrf={}", acme.csrf)).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert!(w.store.mailbox_warnings_off(Scope::Platform, w.globex_mailbox).await.expect("off").is_empty());

    // The API shows and switches them; an unknown kind is refused in words.
    let change = json!({ "warnings": { "locked": true, "exposed": false } });
    let patched = api(&w, Method::PATCH, &path, &w.acme_token, Some(change)).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let got = api(&w, Method::GET, &path, &w.acme_token, None).await;
    assert_eq!(got.json()["warnings"]["locked"], json!(true));
    assert_eq!(got.json()["warnings"]["exposed"], json!(false));
    let bad = api(&w, Method::PATCH, &path, &w.acme_token, Some(json!({ "warnings": { "spam": false } }))).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(bad.body.contains("invalid_warning_switch") && bad.body.contains("KIND=on"), "{}", bad.body);

    // The customer sets its contact address on its account page; an admin through the API.
    let shown = page(&router, &acme, Method::GET, "/account", "").await;
    assert!(shown.body.contains("Contact address for warnings"), "{}", shown.body);
    let form = format!("csrf={}&contact=office%40acme.example", acme.csrf);
    assert_eq!(page(&router, &acme, Method::POST, "/account/contact", &form).await.status, StatusCode::SEE_OTHER);
    let acme_id = w.store.customer(&CustomerName::parse("acme").expect("n")).await.expect("c").id;
    assert_eq!(w.store.customer_contact(acme_id).await.expect("c"), Some(addr("office@acme.example")));
    let bad = format!("csrf={}&contact=not-an-address", acme.csrf);
    let refused = page(&router, &acme, Method::POST, "/account/contact", &bad).await;
    assert!(refused.body.contains("id=\"error\""), "{}", refused.body);
    assert_eq!(w.store.customer_contact(acme_id).await.expect("c"), Some(addr("office@acme.example")));
    let path = format!("/customers/{acme_id}");
    let none = api(&w, Method::PATCH, &path, &w.admin_token, Some(json!({ "contact_address": "none" }))).await;
    assert_eq!((none.status, none.json()["contact_address"].clone()), (StatusCode::OK, json!(null)), "{}", none.body);
    assert_eq!(w.store.customer_contact(acme_id).await.expect("c"), None);
}

/// The app passwords card in both languages: made and shown once (with a copy button and
/// the device profile), listed, revoked; the checklist point; a generated password next
/// to the password form.
#[tokio::test]
async fn the_mailbox_user_makes_and_revokes_app_passwords_in_the_panel() {
    let w = world().await;
    let router = w.web.router();
    let max = sign_in(&router, "max@acme.example", STRONG).await;
    let mb = w.acme_mailbox;
    for (lang, title, once, revoked, check, advice) in [
        ("de", "App-Passwörter", "nur dieses eine Mal", "wurde widerrufen", "Noch kein Gerät", "Passwort-Manager"),
        ("en", "App passwords", "only this once", "was revoked", "No device has logged in yet", "password manager"),
    ] {
        let session =
            Session { cookie: format!("{}; __Host-postfach-lang={lang}", max.cookie), csrf: max.csrf.clone() };
        let shown = page(&router, &session, Method::GET, &format!("/mailboxes/{mb}"), "").await;
        assert!(shown.body.contains(title) && shown.body.contains(check), "{lang}: {}", shown.body);
        assert!(shown.body.contains("id=\"password-suggestion\"") && shown.body.contains(advice), "{lang}");
        let suggestion = between(&shown.body, "id=\"password-suggestion\">", "<").expect("suggestion");
        assert!(postfach_policy::check_password(suggestion, &["max@acme.example"]).accepted);
        let form = format!("csrf={}&name=Phone+{lang}&imap=on&submission=on", session.csrf);
        let made = page(&router, &session, Method::POST, &format!("/mailboxes/{mb}/app-passwords"), &form).await;
        assert_eq!(made.status, StatusCode::OK, "{}", made.body);
        assert!(made.body.contains(once), "{lang}: {}", made.body);
        let password = between(&made.body, "id=\"new-app-password\">", "<").expect("shown once").to_string();
        assert!(made.body.contains("apple.mobileconfig") && made.body.contains("data-copy=\"new-app-password\""));
        let again = page(&router, &session, Method::GET, &format!("/mailboxes/{mb}"), "").await;
        assert!(again.body.contains(&format!("Phone {lang}")) && !again.body.contains(&password), "shown only once");
        let form = format!("csrf={}&name=Phone+{lang}", session.csrf);
        let gone = page(&router, &session, Method::POST, &format!("/mailboxes/{mb}/app-passwords/revoke"), &form).await;
        assert_eq!(gone.status, StatusCode::SEE_OTHER);
        let location = gone.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).expect("location").to_string();
        let after = page(&router, &session, Method::GET, &location, "").await;
        assert!(after.body.contains(revoked) && !after.body.contains(&format!("Phone {lang}</td>")), "{}", after.body);
    }
    // POP3 is not offered to an IMAP mailbox.
    let form = format!("csrf={}&name=Old&pop3=on", max.csrf);
    let refused = page(&router, &max, Method::POST, &format!("/mailboxes/{mb}/app-passwords"), &form).await;
    assert!(!refused.body.contains("id=\"new-app-password\""), "{}", refused.body);
    assert!(w.store.app_passwords(Scope::Platform, mb).await.expect("list").is_empty());
}

/// The filters API: the owner saves a vacation and rules and reads them back; bad input
/// and a script error are refused with their reason; a hand-written script is replaced
/// only when asked; another customer finds nothing.
#[tokio::test]
async fn vacation_filters_and_the_script_through_the_api() {
    let w = world().await;
    let (mb, t) = (w.globex_mailbox, &w.globex_token);
    let empty = api(&w, Method::GET, &format!("/mailboxes/{mb}/filters"), t, None).await.json();
    assert_eq!(empty["active"], "none", "{empty}");
    assert_eq!(empty["addresses"], json!(["eva@globex.example", "info@globex.example"]));

    let vacation = json!({ "enabled": true, "until": "2099-12-31", "subject": "Away", "text": "Back soon.",
                           "addresses": ["info@globex.example"], "days": 3 });
    let saved = api(&w, Method::PUT, &format!("/mailboxes/{mb}/vacation"), t, Some(vacation)).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    let rules = json!({ "rules": [{ "header": "List-Id", "match": "contains", "value": "news", "action": "move",
                                    "folder": "Lists" }] });
    let saved = api(&w, Method::PUT, &format!("/mailboxes/{mb}/filters"), t, Some(rules)).await.json();
    assert_eq!(saved["active"], "forms", "{saved}");
    assert_eq!(saved["vacation"]["subject"], "Away");
    assert_eq!(saved["rules"][0]["folder"], "Lists");
    let script = api(&w, Method::GET, &format!("/mailboxes/{mb}/sieve"), t, None).await.json();
    assert_eq!(script["name"], "postfach");
    let text = script["text"].as_str().unwrap_or_default();
    assert!(text.contains("header :contains \"List-Id\" \"news\"") && text.contains(":days 3"), "{text}");

    // Refusals name the problem.
    let foreign = json!({ "enabled": true, "text": "x", "addresses": ["max@acme.example"] });
    let reply = api(&w, Method::PUT, &format!("/mailboxes/{mb}/vacation"), t, Some(foreign)).await;
    assert_eq!((reply.status, reply.json()["code"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("invalid_form")));
    let control = json!({ "rules": [{ "header": "subject", "value": "a\u{1b}b", "action": "discard" }] });
    let reply = api(&w, Method::PUT, &format!("/mailboxes/{mb}/filters"), t, Some(control)).await;
    assert!(reply.json()["message"].as_str().unwrap_or_default().contains("control character"), "{}", reply.body);
    let broken = json!({ "text": "require \"fileinto\";\nfileinto \"x\"\n" });
    let reply = api(&w, Method::PUT, &format!("/mailboxes/{mb}/sieve"), t, Some(broken)).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.body);
    assert!(reply.json()["message"].as_str().unwrap_or_default().contains("line 3"), "{}", reply.body);

    // A hand-written script: the forms refuse to replace it unless asked.
    let hand = json!({ "text": "keep;\n" });
    assert_eq!(api(&w, Method::PUT, &format!("/mailboxes/{mb}/sieve"), t, Some(hand)).await.status, StatusCode::OK);
    let state = api(&w, Method::GET, &format!("/mailboxes/{mb}/filters"), t, None).await.json();
    assert_eq!((state["active"].clone(), state["active_script"].clone()), (json!("hand_written"), json!("postfach")));
    let rules = json!({ "rules": [] });
    let reply = api(&w, Method::PUT, &format!("/mailboxes/{mb}/filters"), t, Some(rules.clone())).await;
    assert_eq!((reply.status, reply.json()["code"].clone()), (StatusCode::CONFLICT, json!("hand_written_script")));
    let reply = api(&w, Method::PUT, &format!("/mailboxes/{mb}/filters?replace=true"), t, Some(rules)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let listed = api(&w, Method::GET, &format!("/mailboxes/{mb}/sieve/scripts"), t, None).await.json();
    assert_eq!(listed[0]["name"], "postfach");
    assert_eq!(listed[1]["name"], "postfach-by-hand");
    let off = api(&w, Method::PUT, &format!("/mailboxes/{mb}/sieve/active"), t, Some(json!({ "name": null }))).await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    let state = api(&w, Method::GET, &format!("/mailboxes/{mb}/filters"), t, None).await.json();
    assert_eq!(state["active"], "none", "{state}");

    // Another customer finds nothing.
    for (method, path, body) in [
        (Method::GET, format!("/mailboxes/{mb}/filters"), None),
        (Method::PUT, format!("/mailboxes/{mb}/filters?replace=true"), Some(json!({ "rules": [] }))),
        (Method::PUT, format!("/mailboxes/{mb}/vacation"), Some(json!({ "enabled": false }))),
        (Method::GET, format!("/mailboxes/{mb}/sieve"), None),
        (Method::PUT, format!("/mailboxes/{mb}/sieve"), Some(json!({ "text": "keep;" }))),
        (Method::GET, format!("/mailboxes/{mb}/sieve/scripts"), None),
        (Method::PUT, format!("/mailboxes/{mb}/sieve/active"), Some(json!({ "name": "postfach" }))),
    ] {
        let reply = api(&w, method.clone(), &path, &w.acme_token, body).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {path}: {}", reply.body);
    }
}

/// A mailbox's sent mail through the API: what the queue recorded once each recipient's
/// delivery ended, with the encryption; another customer's mailbox is not found.
#[tokio::test]
async fn sent_mail_is_listed_with_its_encryption_through_the_api() {
    use postfach_store::queue::{AttemptTls, NewQueuedMessage, Outcome};
    let w = world().await;
    let mb = w.acme_mailbox;
    let max = w.store.mailbox(Scope::Platform, &addr("max@acme.example")).await.expect("max");
    let now = postfach_types::UnixTime::now();
    let queued = NewQueuedMessage {
        queue_id: "T1".into(),
        customer_id: Some(max.customer_id),
        mailbox_id: Some(mb),
        return_path: Some(addr("max@acme.example")),
        blob: postfach_types::BlobId::parse(&format!("{:032x}", now.0)).expect("blob id"),
        size: 100,
        created_at: now,
        expires_at: postfach_types::UnixTime(now.0 + 432_000),
        recipients: vec![addr("anna@outside.example")],
        tls_demand: None,
    };
    let id = w.store.enqueue(&queued).await.expect("enqueue");
    let recipient = w.store.queue_message(id).await.expect("read").expect("there").recipients[0].id;
    let delivered = Outcome::Delivered {
        remote_mta: Some("mx.outside.example[192.0.2.9]".into()),
        tls: Some(AttemptTls { policy: "opportunistic".into(), detail: None }),
    };
    let node = postfach_types::NodeName::parse("a").expect("node");
    w.store.queue_record(&node, now, &[(recipient, delivered)], None).await.expect("record");
    let path = format!("/mailboxes/{mb}/sent");
    let listed = api(&w, Method::GET, &path, &w.acme_token, None).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let sent = listed.json();
    assert_eq!(sent.as_array().map(Vec::len), Some(1), "{sent}");
    assert_eq!(sent[0]["recipient"], "anna@outside.example");
    assert_eq!((sent[0]["delivered"].clone(), sent[0]["unencrypted"].clone()), (json!(true), json!(true)));
    assert_eq!((sent[0]["tls"].clone(), sent[0]["tls_policy"].clone()), (Value::Null, json!("opportunistic")));
    let other = api(&w, Method::GET, &path, &w.globex_token, None).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "{}", other.body);
}
