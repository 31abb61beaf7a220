//! The panel and the API are two adapters over one admin layer: the same bad input gets
//! the same refusal through a panel form and through the API call, in both languages —
//! the same text in the page's error and in the API's `message`, and the API's `code`.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use postfach_auth::accounts::{create_customer, create_mailbox};
use postfach_auth::{AuthSettings, Authenticator, PasswordHasher};
use postfach_store::mailboxes::MailboxSettings;
use postfach_store::{Scope, Store};
use postfach_types::{CustomerId, CustomerName, DomainId, DomainName, EmailAddress, MailboxId, Role, Secret, TlsInfo};
use postfach_web::{ClientConnection, MailEndpoints, Web, WebSettings, token_hash};
use serde_json::{Value, json};
use tower::ServiceExt;

const STRONG: &str = "violet mango tractor whisper";
const OTHER_STRONG: &str = "quartz lantern meadow 2041 orbit";

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn send(router: &Router, lang: &str, mut request: Request<Body>) -> Reply {
    request.extensions_mut().insert(ClientConnection {
        remote_ip: IpAddr::from([127, 0, 0, 1]),
        tls: Some(TlsInfo { version: "TLSv1.3".into(), cipher: "TLS13_AES_256_GCM_SHA384".into() }),
    });
    request.headers_mut().insert(header::ACCEPT_LANGUAGE, lang.parse().expect("header"));
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 10 << 20).await.expect("body");
    Reply { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect::<Vec<_>>().join("&")
}

fn unescape(html: &str) -> String {
    html.replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A signed-in panel session (also used for cookie-authenticated API calls).
struct Session {
    cookie: String,
    csrf: String,
}

async fn sign_in(router: &Router, login: &str) -> Session {
    let page = send(router, "en", Request::get("/login").body(Body::empty()).expect("request")).await;
    let cookie = page.headers.get(header::SET_COOKIE).and_then(|v| v.to_str().ok()).expect("login cookie");
    let cookie = cookie.split(';').next().unwrap_or_default().to_string();
    let token = between(&page.body, "name=\"login_token\" value=\"", "\"").expect("login token");
    let request = Request::post("/login")
        .header(header::COOKIE, &cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form(&[("login", login), ("password", STRONG), ("login_token", token)])))
        .expect("request");
    let reply = send(router, "en", request).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "sign-in of {login}: {}", reply.body);
    let session = reply
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("__Host-postfach-session="))
        .expect("session cookie");
    let cookie = session.split(';').next().unwrap_or_default().to_string();
    let page =
        send(router, "en", Request::get("/").header(header::COOKIE, &cookie).body(Body::empty()).expect("r")).await;
    let location = page.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).expect("home redirect").to_string();
    let page =
        send(router, "en", Request::get(location).header(header::COOKIE, &cookie).body(Body::empty()).expect("r"))
            .await;
    let csrf = between(&page.body, "name=\"csrf\" value=\"", "\"").expect("csrf token").to_string();
    Session { cookie, csrf }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Actor {
    Customer,
    Admin,
    MailboxUser,
}

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    router: Router,
    sessions: Vec<(Actor, Session)>,
    tokens: Vec<(Actor, String)>,
    ids: Ids,
}

#[derive(Clone, Copy)]
struct Ids {
    root: CustomerId,
    acme_domain: DomainId,
    acme_mailbox: MailboxId,
    globex_mailbox: MailboxId,
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
    let acme_domain =
        store.add_domain(ids[0], &DomainName::parse("acme.example").expect("d"), true).await.expect("domain").id;
    store.add_domain(ids[1], &DomainName::parse("globex.example").expect("d"), true).await.expect("domain");
    let mut mailboxes = Vec::new();
    for address in ["max@acme.example", "eva@globex.example"] {
        let address = EmailAddress::parse(address).expect("address");
        let mailbox = create_mailbox(&store, &hasher, Scope::Platform, &address, &strong, MailboxSettings::default())
            .await
            .expect("mailbox");
        mailboxes.push(mailbox.id);
    }
    let mut tokens = Vec::new();
    for (actor, id) in [(Actor::Customer, ids[0]), (Actor::Admin, ids[2])] {
        let token = format!("pfapi_{:064x}", id.get());
        store.create_api_token(id, "test", &token_hash(&token)).await.expect("token");
        tokens.push((actor, token));
    }
    let settings = WebSettings {
        hostname: DomainName::parse("mail.example.net").expect("host"),
        https_port: 8443,
        endpoints: MailEndpoints::default(),
        dns: None,
        sieve_limits: Default::default(),
        imports: None,
    };
    let router = Web::new(store.clone(), auth, settings).router();
    let mut sessions = Vec::new();
    for (actor, login) in [(Actor::Customer, "acme"), (Actor::Admin, "root"), (Actor::MailboxUser, "max@acme.example")]
    {
        sessions.push((actor, sign_in(&router, login).await));
    }
    let ids = Ids { root: ids[2], acme_domain, acme_mailbox: mailboxes[0], globex_mailbox: mailboxes[1] };
    World { _dir: dir, store, router, sessions, tokens, ids }
}

/// One bad input, as a panel form and as the API call.
struct Case {
    what: &'static str,
    actor: Actor,
    panel: (Method, String, Vec<(&'static str, String)>),
    api: (Method, String, Option<Value>),
    code: &'static str,
}

fn cases(ids: Ids) -> Vec<Case> {
    let Ids { root, acme_domain, acme_mailbox, globex_mailbox } = ids;
    let s = |t: &str| t.to_string();
    let new_mailbox = |local: &str, domain: &str, password: &str, access: &str| {
        vec![("local", s(local)), ("domain", s(domain)), ("password", s(password)), ("access", s(access))]
    };
    let long_name = "x".repeat(101);
    use Actor::*;
    vec![
        Case {
            what: "an old server that is not a host name",
            actor: MailboxUser,
            panel: (
                Method::POST,
                format!("/mailboxes/{acme_mailbox}/import"),
                vec![("host", s("old host")), ("login", s("max@old.example")), ("password", s("old password"))],
            ),
            api: (
                Method::POST,
                format!("/mailboxes/{acme_mailbox}/imports"),
                Some(json!({ "host": "old host", "login": "max@old.example", "password": "old password" })),
            ),
            code: "invalid_server",
        },
        Case {
            what: "weak password",
            actor: Customer,
            panel: (Method::POST, s("/mailboxes"), new_mailbox("new", "acme.example", "Sommer2024!!", "imap")),
            api: (
                Method::POST,
                s("/mailboxes"),
                Some(json!({ "address": "new@acme.example", "password": "Sommer2024!!" })),
            ),
            code: "weak_password",
        },
        Case {
            what: "unknown access mode on a new mailbox",
            actor: Customer,
            panel: (Method::POST, s("/mailboxes"), new_mailbox("new", "acme.example", STRONG, "smtp")),
            api: (
                Method::POST,
                s("/mailboxes"),
                Some(json!({ "address": "new@acme.example", "password": STRONG, "access": "smtp" })),
            ),
            code: "invalid_access",
        },
        Case {
            what: "unknown access mode in the settings",
            actor: Customer,
            panel: (Method::POST, format!("/mailboxes/{acme_mailbox}/settings"), vec![("access", s("smtp"))]),
            api: (Method::PATCH, format!("/mailboxes/{acme_mailbox}"), Some(json!({ "access": "smtp" }))),
            code: "invalid_access",
        },
        Case {
            what: "invalid address",
            actor: Customer,
            panel: (Method::POST, s("/mailboxes"), new_mailbox("a b", "acme.example", STRONG, "imap")),
            api: (Method::POST, s("/mailboxes"), Some(json!({ "address": "a b@acme.example", "password": STRONG }))),
            code: "invalid_address",
        },
        Case {
            what: "duplicate mailbox",
            actor: Customer,
            panel: (Method::POST, s("/mailboxes"), new_mailbox("max", "acme.example", STRONG, "imap")),
            api: (Method::POST, s("/mailboxes"), Some(json!({ "address": "max@acme.example", "password": STRONG }))),
            code: "conflict",
        },
        Case {
            what: "mailbox at another customer's domain",
            actor: Customer,
            panel: (Method::POST, s("/mailboxes"), new_mailbox("spy", "globex.example", STRONG, "imap")),
            api: (Method::POST, s("/mailboxes"), Some(json!({ "address": "spy@globex.example", "password": STRONG }))),
            code: "not_found",
        },
        Case {
            what: "duplicate alias",
            actor: Customer,
            panel: (
                Method::POST,
                s("/aliases"),
                vec![("local", s("max")), ("domain", s("acme.example")), ("mailbox", s("max@acme.example"))],
            ),
            api: (
                Method::POST,
                s("/aliases"),
                Some(json!({ "address": "max@acme.example", "mailbox": "max@acme.example" })),
            ),
            code: "conflict",
        },
        Case {
            what: "alias into another customer's mailbox",
            actor: Customer,
            panel: (
                Method::POST,
                s("/aliases"),
                vec![("local", s("spy")), ("domain", s("acme.example")), ("mailbox", s("eva@globex.example"))],
            ),
            api: (
                Method::POST,
                s("/aliases"),
                Some(json!({ "address": "spy@acme.example", "mailbox": "eva@globex.example" })),
            ),
            code: "not_found",
        },
        Case {
            what: "invalid domain name",
            actor: Customer,
            panel: (Method::POST, s("/domains"), vec![("name", s("bad_domain.example"))]),
            api: (Method::POST, s("/domains"), Some(json!({ "name": "bad_domain.example" }))),
            code: "invalid_domain",
        },
        Case {
            what: "not a full domain name",
            actor: Customer,
            panel: (Method::POST, s("/domains"), vec![("name", s("example"))]),
            api: (Method::POST, s("/domains"), Some(json!({ "name": "example" }))),
            code: "conflict",
        },
        Case {
            what: "duplicate domain",
            actor: Customer,
            panel: (Method::POST, s("/domains"), vec![("name", s("acme.example"))]),
            api: (Method::POST, s("/domains"), Some(json!({ "name": "acme.example" }))),
            code: "conflict",
        },
        Case {
            what: "an admin adds a domain",
            actor: Admin,
            panel: (Method::POST, s("/domains"), vec![("name", s("new.example"))]),
            api: (Method::POST, s("/domains"), Some(json!({ "name": "new.example" }))),
            code: "forbidden",
        },
        Case {
            what: "alias domain onto itself",
            actor: Customer,
            panel: (
                Method::POST,
                s("/domain-aliases"),
                vec![("name", s("acme.example")), ("target", s("acme.example"))],
            ),
            api: (
                Method::POST,
                s("/domain-aliases"),
                Some(json!({ "name": "acme.example", "target": "acme.example" })),
            ),
            code: "conflict",
        },
        Case {
            what: "alias domain onto another customer's domain",
            actor: Customer,
            panel: (
                Method::POST,
                s("/domain-aliases"),
                vec![("name", s("spy.example")), ("target", s("globex.example"))],
            ),
            api: (
                Method::POST,
                s("/domain-aliases"),
                Some(json!({ "name": "spy.example", "target": "globex.example" })),
            ),
            code: "not_found",
        },
        Case {
            what: "removing a domain that still has mailboxes",
            actor: Customer,
            panel: (Method::POST, format!("/domains/{acme_domain}/remove"), vec![]),
            api: (Method::DELETE, format!("/domains/{acme_domain}"), None),
            code: "conflict",
        },
        Case {
            what: "another customer's mailbox by id",
            actor: Customer,
            panel: (Method::POST, format!("/mailboxes/{globex_mailbox}/remove"), vec![]),
            api: (Method::DELETE, format!("/mailboxes/{globex_mailbox}"), None),
            code: "not_found",
        },
        Case {
            what: "removing an alias that does not exist",
            actor: Customer,
            panel: (Method::POST, s("/aliases/999999/remove"), vec![]),
            api: (Method::DELETE, s("/aliases/999999"), None),
            code: "not_found",
        },
        Case {
            what: "revoking a token that does not exist",
            actor: Customer,
            panel: (Method::POST, s("/account/tokens/999999/revoke"), vec![]),
            api: (Method::DELETE, s("/tokens/999999"), None),
            code: "not_found",
        },
        Case {
            what: "token name too long",
            actor: Customer,
            panel: (Method::POST, s("/account/tokens"), vec![("name", long_name.clone())]),
            api: (Method::POST, s("/tokens"), Some(json!({ "name": long_name }))),
            code: "invalid_name",
        },
        Case {
            what: "token without a name",
            actor: Customer,
            panel: (Method::POST, s("/account/tokens"), vec![("name", s("  "))]),
            api: (Method::POST, s("/tokens"), Some(json!({ "name": "  " }))),
            code: "invalid_name",
        },
        Case {
            what: "wrong current password",
            actor: MailboxUser,
            panel: (
                Method::POST,
                format!("/mailboxes/{acme_mailbox}/password"),
                vec![("current_password", s("not my password at all")), ("password", s(OTHER_STRONG))],
            ),
            api: (
                Method::PUT,
                format!("/mailboxes/{acme_mailbox}/password"),
                Some(json!({ "current_password": "not my password at all", "password": OTHER_STRONG })),
            ),
            code: "current_password_wrong",
        },
        Case {
            what: "missing current password",
            actor: MailboxUser,
            panel: (
                Method::POST,
                format!("/mailboxes/{acme_mailbox}/password"),
                vec![("current_password", s("")), ("password", s(OTHER_STRONG))],
            ),
            api: (
                Method::PUT,
                format!("/mailboxes/{acme_mailbox}/password"),
                Some(json!({ "password": OTHER_STRONG })),
            ),
            code: "current_password_required",
        },
        Case {
            what: "invalid customer name",
            actor: Admin,
            panel: (Method::POST, s("/admin/customers"), vec![("name", s("-bad")), ("password", s(STRONG))]),
            api: (Method::POST, s("/customers"), Some(json!({ "name": "-bad", "password": STRONG }))),
            code: "invalid_name",
        },
        Case {
            what: "unknown role",
            actor: Admin,
            panel: (
                Method::POST,
                s("/admin/customers"),
                vec![("name", s("initech")), ("password", s(STRONG)), ("role", s("root"))],
            ),
            api: (
                Method::POST,
                s("/customers"),
                Some(json!({ "name": "initech", "password": STRONG, "role": "root" })),
            ),
            code: "invalid_role",
        },
        Case {
            what: "duplicate customer",
            actor: Admin,
            panel: (Method::POST, s("/admin/customers"), vec![("name", s("acme")), ("password", s(OTHER_STRONG))]),
            api: (Method::POST, s("/customers"), Some(json!({ "name": "acme", "password": OTHER_STRONG }))),
            code: "conflict",
        },
        Case {
            what: "always require TLS for another customer's mailbox",
            actor: Customer,
            panel: (Method::POST, format!("/mailboxes/{globex_mailbox}/require-tls"), vec![("require_tls", s("on"))]),
            api: (Method::PATCH, format!("/mailboxes/{globex_mailbox}"), Some(json!({ "require_tls": true }))),
            code: "not_found",
        },
        Case {
            what: "an admin resets their own password",
            actor: Admin,
            panel: (Method::POST, format!("/admin/customers/{root}/password"), vec![("password", s(OTHER_STRONG))]),
            api: (Method::PATCH, format!("/customers/{root}"), Some(json!({ "password": OTHER_STRONG }))),
            code: "conflict",
        },
        Case {
            what: "an admin disables their own account",
            actor: Admin,
            panel: (Method::POST, format!("/admin/customers/{root}/disabled"), vec![("value", s("1"))]),
            api: (Method::PATCH, format!("/customers/{root}"), Some(json!({ "disabled": true }))),
            code: "conflict",
        },
    ]
}

/// The refusal text a page shows: above the form, or as the page's own message.
fn page_message(body: &str) -> Option<String> {
    between(body, "id=\"error\">", "</p>").or_else(|| between(body, "id=\"error-message\">", "</p>")).map(unescape)
}

#[tokio::test]
async fn the_panel_and_the_api_refuse_the_same_input_the_same_way() {
    let w = world().await;
    let before = (
        w.store.mailboxes(Scope::Platform, None).await.expect("mailboxes").len(),
        w.store.aliases(Scope::Platform, None).await.expect("aliases").len(),
        w.store.domains(Scope::Platform).await.expect("domains").len(),
        w.store.customers().await.expect("customers").len(),
    );
    for lang in ["en", "de"] {
        for case in cases(w.ids) {
            let (_, session) = w.sessions.iter().find(|(a, _)| *a == case.actor).expect("session");
            let (method, path, mut fields) = case.panel;
            fields.insert(0, ("csrf", session.csrf.clone()));
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let request = Request::builder()
                .method(method)
                .uri(&path)
                .header(header::COOKIE, &session.cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form(&pairs)))
                .expect("request");
            let page = send(&w.router, lang, request).await;
            let shown = page_message(&page.body).unwrap_or_else(|| {
                panic!("{} ({lang}): the page shows no refusal: {} {}", case.what, page.status, page.body)
            });

            let (method, path, body) = case.api;
            let mut request = Request::builder().method(method).uri(format!("/api/v1{path}"));
            request = match w.tokens.iter().find(|(a, _)| *a == case.actor) {
                Some((_, token)) => request.header(header::AUTHORIZATION, format!("Bearer {token}")),
                // Mailbox users have no API tokens: their session cookie and CSRF header.
                None => request.header(header::COOKIE, &session.cookie).header("X-CSRF-Token", &session.csrf),
            };
            let body = match body {
                Some(v) => {
                    request = request.header(header::CONTENT_TYPE, "application/json");
                    Body::from(v.to_string())
                }
                None => Body::empty(),
            };
            let reply = send(&w.router, lang, request.body(body).expect("request")).await;
            let error: Value = serde_json::from_str(&reply.body)
                .unwrap_or_else(|e| panic!("{} ({lang}): {e}: {}", case.what, reply.body));
            assert_eq!(error["code"], case.code, "{} ({lang}): {}", case.what, reply.body);
            assert!(reply.status.is_client_error(), "{} ({lang}): {}", case.what, reply.status);
            assert_eq!(error["message"].as_str(), Some(shown.as_str()), "{} ({lang}): page and API differ", case.what);
            assert!(
                page.status.is_client_error() || page.status == StatusCode::OK,
                "{} ({lang}): {}",
                case.what,
                page.status
            );
        }
    }
    let after = (
        w.store.mailboxes(Scope::Platform, None).await.expect("mailboxes").len(),
        w.store.aliases(Scope::Platform, None).await.expect("aliases").len(),
        w.store.domains(Scope::Platform).await.expect("domains").len(),
        w.store.customers().await.expect("customers").len(),
    );
    assert_eq!(before, after, "no refused input changed anything");
}
