//! The panel's pages: sign-in, the admin's customers and domains, the customer's domains,
//! mailboxes and aliases, the mailbox page, the login list and the account settings.
//!
//! Every handler starts from [`Ctx`], asks for the role it needs, and reaches the store
//! only through the signed-in user's scope. State-changing forms are POSTs that carry the
//! session's CSRF token; after a change the browser is redirected (POST/redirect/GET) with
//! a `done=` key that names a message from the catalogue. Destructive actions go through a
//! confirmation page first.

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use postfach_auth::accounts::{self, AccountError, OwnPasswordChange};
use postfach_auth::tokens::{new_api_token, random_hex, same_token, token_hash};
use postfach_auth::totp::{new_totp_secret, totp_uri};
use postfach_auth::{Attempt, AuthError, Principal};
use postfach_policy::{PublicRefusal, Refusal};
use postfach_store::domains::Domain;
use postfach_store::logins::{LoginFilter, LoginRecord};
use postfach_store::mailboxes::{Alias, Mailbox, MailboxSettings, SettingsChange};
use postfach_store::sessions::ApiToken;
use postfach_store::{Scope, StoreError};
use postfach_types::{
    AccessMode, CustomerName, DomainName, EmailAddress, LoginResult, Mechanism, Role, Secret, Service, UnixTime,
};
use serde::Deserialize;

use crate::context::{Ctx, LANG_COOKIE, LIFETIME, LOGIN_COOKIE, SESSION_COOKIE, Who, cookie, render};
use crate::i18n::{Lang, Tr, current_password_refused, store_message, verdict_reason};
use crate::{App, autoconfig};

type PageResult = Result<Response, Response>;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login))
        .route("/login/code", get(code_form).post(code))
        .route("/logout", post(logout))
        .route("/lang/{code}", get(switch_language))
        .route("/admin/customers", get(admin_customers).post(admin_create_customer))
        .route("/admin/customers/{id}/disabled", post(admin_set_disabled))
        .route("/admin/customers/{id}/password", post(admin_reset_password))
        .route("/admin/domains", get(admin_domains))
        .route("/admin/domains/{id}/verified", post(admin_verify_domain))
        .route("/domains", get(domains).post(add_domain))
        .route("/domains/{id}", get(domain))
        .route("/domains/{id}/remove", get(confirm_remove_domain).post(remove_domain))
        .route("/domains/{id}/check", post(check_domain))
        .route("/domain-aliases", post(add_domain_alias))
        .route("/mailboxes", get(mailboxes).post(create_mailbox))
        .route("/mailboxes/{id}", get(mailbox))
        .route("/mailboxes/{id}/settings", post(mailbox_settings))
        .route("/mailboxes/{id}/password", post(mailbox_password))
        .route("/mailboxes/{id}/remove", get(confirm_remove_mailbox).post(remove_mailbox))
        .route("/mailboxes/{id}/apple.mobileconfig", get(mobileconfig))
        .route("/aliases", get(aliases).post(add_alias))
        .route("/aliases/{id}/remove", get(confirm_remove_alias).post(remove_alias))
        .route("/logins", get(logins))
        .route("/account", get(account))
        .route("/account/password", post(account_password))
        .route("/account/totp", post(account_totp))
        .route("/account/tokens", post(create_token))
        .route("/account/tokens/{id}/revoke", post(revoke_token))
}

/// What the page frame (`base.html`) shows.
#[derive(Debug)]
pub struct Layout {
    pub t: Tr,
    pub active: &'static str,
    pub role: &'static str,
    pub user: String,
    pub csrf: String,
    /// The other language: (code, name), for the switch.
    pub other_lang: (&'static str, &'static str),
    pub back: String,
    pub notice: Option<&'static str>,
    pub error: Option<String>,
}

impl Layout {
    pub fn new(ctx: &Ctx, active: &'static str, error: Option<String>) -> Layout {
        let t = ctx.tr();
        let other = match ctx.lang {
            Lang::De => Lang::En,
            Lang::En => Lang::De,
        };
        let notice = query_param(&ctx.path, "done").and_then(|key| t.key(&format!("done.{key}")));
        Layout {
            t,
            active,
            role: ctx.who.as_ref().map_or("", Who::role),
            user: ctx.who.as_ref().map(Who::display_name).unwrap_or_default(),
            csrf: ctx.csrf_token().to_string(),
            other_lang: (other.code(), other.name()),
            back: percent_encode(&ctx.path),
            notice,
            error,
        }
    }

    /// A text of the catalogue in the page's language.
    pub fn s(&self, key: &str) -> &'static str {
        self.t.s(key)
    }

    pub fn lang(&self) -> &'static str {
        self.t.lang().code()
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub l: Layout,
    pub message: &'static str,
}

pub async fn not_found(ctx: Ctx) -> Response {
    ctx.not_found()
}

fn query_param(path_and_query: &str, name: &str) -> Option<String> {
    let query = path_and_query.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn done(path: &str, key: &str) -> Response {
    let sep = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{sep}done={key}")).into_response()
}

fn parse_id(text: &str) -> Option<i64> {
    text.parse().ok().filter(|id: &i64| *id > 0)
}

/// The time for people: `2026-11-27 04:08:04 UTC`.
pub fn when(t: impl std::borrow::Borrow<UnixTime>) -> String {
    t.borrow().rfc3339().replace('T', " ").replace('Z', " UTC")
}

// ---------------------------------------------------------------- sign-in

async fn home(ctx: Ctx) -> Response {
    match &ctx.who {
        None => Redirect::to("/login").into_response(),
        Some(Who::Admin { .. }) => Redirect::to("/admin/customers").into_response(),
        Some(Who::Customer { .. }) => Redirect::to("/mailboxes").into_response(),
        Some(Who::Mailbox { mailbox }) => Redirect::to(&format!("/mailboxes/{}", mailbox.id)).into_response(),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    l: Layout,
    login_token: String,
    login: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginForm {
    login: String,
    password: String,
    login_token: String,
}

async fn login_form(ctx: Ctx) -> Response {
    if ctx.who.is_some() {
        return Redirect::to("/").into_response();
    }
    login_page(&ctx, None, String::new())
}

fn login_page(ctx: &Ctx, error: Option<String>, login: String) -> Response {
    let token = random_hex();
    let page = LoginPage { l: Layout::new(ctx, "login", error), login_token: token.clone(), login };
    let mut response = render(&page);
    response.headers_mut().append(header::SET_COOKIE, cookie(LOGIN_COOKIE, &token, Some(3600)));
    response
}

async fn login(State(app): State<App>, ctx: Ctx, Form(form): Form<LoginForm>) -> Response {
    let t = ctx.tr();
    // Login CSRF: the form's token must match the cookie set with the form.
    let cookie_token = ctx.cookies.get(LOGIN_COOKIE).map_or("", String::as_str);
    if form.login_token.is_empty() || !same_token(cookie_token, &form.login_token) {
        return login_page(&ctx, Some(t.s("login.expired").into()), form.login);
    }
    let connection = ctx.auth_connection();
    let secret = Secret::new(form.password);
    let attempt = Attempt {
        service: Service::Panel,
        mechanism: Mechanism::WebForm,
        login: &form.login,
        secret: &secret,
        connection: &connection,
    };
    let principal = match app.auth.authenticate(attempt).await {
        Ok(principal) => principal,
        Err(AuthError::Refused(refusal)) => {
            let key = match refusal.public(connection.tls.is_some()) {
                PublicRefusal::Throttled => "login.throttled",
                PublicRefusal::Disabled => "login.disabled",
                PublicRefusal::TlsRequired => "login.tls",
                PublicRefusal::Failed { .. } | PublicRefusal::ServiceNotAllowed | PublicRefusal::Malformed => {
                    "login.bad"
                }
            };
            return login_page(&ctx, Some(t.s(key).into()), form.login);
        }
        Err(e) => {
            tracing::error!(error = %e, "panel sign-in failed");
            return login_page(&ctx, Some(t.s("error.unavailable").into()), form.login);
        }
    };
    let (customer_id, mailbox_id) = match &principal {
        Principal::Mailbox { id, customer_id, .. } => (*customer_id, Some(*id)),
        Principal::Account { customer_id, .. } => (*customer_id, None),
    };
    let second_factor = match mailbox_id {
        Some(_) => false,
        None => match app.store.totp_secret(customer_id).await {
            Ok(secret) => secret.is_some_and(|s| s.enabled),
            Err(e) => return ctx.store_failure(e),
        },
    };
    let token = random_hex();
    if let Err(e) = app
        .store
        .create_panel_session(&token_hash(&token), customer_id, mailbox_id, &random_hex(), second_factor, LIFETIME)
        .await
    {
        return ctx.store_failure(e);
    }
    let next = if second_factor { "/login/code" } else { "/" };
    let mut response = Redirect::to(next).into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie(SESSION_COOKIE, &token, None));
    response.headers_mut().append(header::SET_COOKIE, cookie(LOGIN_COOKIE, "", Some(0)));
    response
}

#[derive(Template)]
#[template(path = "code.html")]
struct CodePage {
    l: Layout,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CodeForm {
    csrf: String,
    code: String,
}

async fn code_form(ctx: Ctx) -> Response {
    match &ctx.session {
        Some(s) if s.second_factor_pending => render(&CodePage { l: Layout::new(&ctx, "login", None) }),
        _ => Redirect::to("/").into_response(),
    }
}

async fn code(State(app): State<App>, ctx: Ctx, Form(form): Form<CodeForm>) -> PageResult {
    ctx.check_csrf(&form.csrf)?;
    let Some(session) = ctx.session.as_ref().filter(|s| s.second_factor_pending) else {
        return Ok(Redirect::to("/").into_response());
    };
    let connection = ctx.auth_connection();
    let checked = app.auth.second_factor(session.customer_id, &form.code, false, &connection).await;
    if let Err(error) = checked {
        let key = match error {
            AuthError::Refused(Refusal::Throttled) => "login.throttled",
            AuthError::Refused(_) => "login.code_wrong",
            e => {
                tracing::error!(error = %e, "checking a second factor failed");
                "error.unavailable"
            }
        };
        // A wrong code ends the half-open session: the next try needs the password again.
        // Wrong codes also count toward the account's second-factor lock, which a correct
        // password does not lift.
        if let Some(token) = ctx.cookies.get(SESSION_COOKIE) {
            app.store.end_panel_session(&token_hash(token)).await.map_err(|e| ctx.store_failure(e))?;
        }
        let mut response = login_page(&ctx, Some(ctx.tr().s(key).into()), String::new());
        response.headers_mut().append(header::SET_COOKIE, cookie(SESSION_COOKIE, "", Some(0)));
        return Ok(response);
    }
    app.store.complete_second_factor(session.id).await.map_err(|e| ctx.store_failure(e))?;
    Ok(Redirect::to("/").into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CsrfForm {
    csrf: String,
}

async fn logout(State(app): State<App>, ctx: Ctx, Form(form): Form<CsrfForm>) -> PageResult {
    ctx.check_csrf(&form.csrf)?;
    if let Some(token) = ctx.cookies.get(SESSION_COOKIE) {
        app.store.end_panel_session(&token_hash(token)).await.map_err(|e| ctx.store_failure(e))?;
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie(SESSION_COOKIE, "", Some(0)));
    Ok(response)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct BackQuery {
    back: String,
}

async fn switch_language(Path(code): Path<String>, Query(q): Query<BackQuery>) -> Response {
    let Some(lang) = Lang::from_code(&code) else { return StatusCode::NOT_FOUND.into_response() };
    let back = percent_decode(&q.back);
    // Only paths of this site: no open redirect.
    let back = if back.starts_with('/') && !back.starts_with("//") && !back.contains('\\') { back } else { "/".into() };
    let mut response = Redirect::to(&back).into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie(LANG_COOKIE, lang.code(), Some(365 * 86_400)));
    response
}

// ---------------------------------------------------------------- admin

#[derive(Template)]
#[template(path = "admin_customers.html")]
struct CustomersPage {
    l: Layout,
    customers: Vec<postfach_store::customers::Customer>,
    name: String,
    me: i64,
}

async fn admin_customers(State(app): State<App>, ctx: Ctx) -> PageResult {
    ctx.admin()?;
    customers_page(&app, &ctx, None, String::new()).await
}

async fn customers_page(app: &App, ctx: &Ctx, error: Option<String>, name: String) -> PageResult {
    let who = ctx.admin()?;
    let customers = app.store.customers().await.map_err(|e| ctx.store_failure(e))?;
    let page =
        CustomersPage { l: Layout::new(ctx, "customers", error), customers, name, me: who.account_id().unwrap_or(0) };
    Ok(render(&page))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NewCustomerForm {
    csrf: String,
    name: String,
    password: String,
    role: String,
}

async fn admin_create_customer(State(app): State<App>, ctx: Ctx, Form(form): Form<NewCustomerForm>) -> PageResult {
    ctx.admin()?;
    ctx.check_csrf(&form.csrf)?;
    let t = ctx.tr();
    let Ok(name) = CustomerName::parse(&form.name) else {
        return customers_page(&app, &ctx, Some(t.s("error.customer_name").into()), form.name).await;
    };
    let role = if form.role == "admin" { Role::Admin } else { Role::Customer };
    let password = Secret::new(form.password);
    match accounts::create_customer(&app.store, app.auth.hasher(), &name, &password, role).await {
        Ok(_) => Ok(done("/admin/customers", "customer_created")),
        Err(e) => customers_page(&app, &ctx, Some(account_error(&ctx, &e, &password)), form.name).await,
    }
}

/// A failed account change, in the page's language.
fn account_error(ctx: &Ctx, e: &AccountError, password: &Secret<String>) -> String {
    let t = ctx.tr();
    match e {
        AccountError::WeakPassword(verdict) => verdict_reason(&t, verdict, password.expose().chars().count()),
        AccountError::Store(e) => store_message(&t, e),
        AccountError::CurrentPassword(refusal) => t.s(current_password_refused(*refusal)).into(),
        AccountError::Auth(e) => {
            tracing::error!(error = %e, "hashing a password failed");
            t.s("error.unavailable").into()
        }
    }
}

async fn customer_by_id(app: &App, ctx: &Ctx, id: &str) -> Result<postfach_store::customers::Customer, Response> {
    let id = parse_id(id).ok_or_else(|| ctx.not_found())?;
    app.store.customer_by_id(id).await.map_err(|e| ctx.store_failure(e))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FlagForm {
    csrf: String,
    value: String,
}

async fn admin_set_disabled(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<FlagForm>,
) -> PageResult {
    let me = ctx.admin()?.account_id();
    ctx.check_csrf(&form.csrf)?;
    let customer = customer_by_id(&app, &ctx, &id).await?;
    let disable = form.value == "1";
    if disable && Some(customer.id) == me {
        return customers_page(&app, &ctx, Some(ctx.tr().s("error.disable_self").into()), String::new()).await;
    }
    app.store.set_customer_disabled(&customer.name, disable).await.map_err(|e| ctx.store_failure(e))?;
    Ok(done("/admin/customers", if disable { "customer_disabled" } else { "customer_enabled" }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PasswordForm {
    csrf: String,
    password: String,
    /// Asked when users change their own password.
    current_password: String,
    /// `on` keeps the account's API tokens working after a change of its own password.
    keep_api_tokens: String,
}

async fn admin_reset_password(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<PasswordForm>,
) -> PageResult {
    let me = ctx.admin()?.account_id();
    ctx.check_csrf(&form.csrf)?;
    let customer = customer_by_id(&app, &ctx, &id).await?;
    if Some(customer.id) == me {
        return customers_page(&app, &ctx, Some(ctx.tr().s("error.reset_self").into()), String::new()).await;
    }
    let password = Secret::new(form.password);
    match accounts::change_customer_password(&app.store, app.auth.hasher(), &customer.name, &password).await {
        Ok(()) => Ok(done("/admin/customers", "password_changed")),
        Err(e) => customers_page(&app, &ctx, Some(account_error(&ctx, &e, &password)), String::new()).await,
    }
}

async fn admin_domains(State(app): State<App>, ctx: Ctx) -> PageResult {
    ctx.admin()?;
    domains_page(&app, &ctx, None, "admin_domains").await
}

async fn admin_verify_domain(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<FlagForm>,
) -> PageResult {
    ctx.admin()?;
    ctx.check_csrf(&form.csrf)?;
    let domain = domain_by_id(&app, &ctx, Scope::Platform, &id).await?;
    app.store
        .set_domain_verified(Scope::Platform, &domain.name, form.value == "1")
        .await
        .map_err(|e| ctx.store_failure(e))?;
    Ok(done("/admin/domains", "domain_verified"))
}

// ---------------------------------------------------------------- domains

#[derive(Template)]
#[template(path = "domains.html")]
struct DomainsPage {
    l: Layout,
    domains: Vec<Domain>,
    real_domains: Vec<Domain>,
    can_add: bool,
}

async fn domains(State(app): State<App>, ctx: Ctx) -> PageResult {
    ctx.manager()?;
    domains_page(&app, &ctx, None, "domains").await
}

async fn domains_page(app: &App, ctx: &Ctx, error: Option<String>, active: &'static str) -> PageResult {
    let who = ctx.manager()?;
    let domains = app.store.domains(who.scope()).await.map_err(|e| ctx.store_failure(e))?;
    let real_domains = domains.iter().filter(|d| d.alias_of.is_none()).cloned().collect();
    let can_add = matches!(who, Who::Customer { .. });
    Ok(render(&DomainsPage { l: Layout::new(ctx, active, error), domains, real_domains, can_add }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DomainForm {
    csrf: String,
    name: String,
    target: String,
}

async fn add_domain(State(app): State<App>, ctx: Ctx, Form(form): Form<DomainForm>) -> PageResult {
    let who = ctx.manager()?.clone();
    ctx.check_csrf(&form.csrf)?;
    let t = ctx.tr();
    let Who::Customer { id, .. } = who else { return Err(ctx.not_found()) };
    let Ok(name) = DomainName::parse(&form.name) else {
        return domains_page(&app, &ctx, Some(t.s("error.domain_name").into()), "domains").await;
    };
    match app.store.add_domain(id, &name, false).await {
        Ok(domain) => Ok(done(&format!("/domains/{}", domain.id), "domain_added")),
        Err(e @ StoreError::Conflict(_)) => domains_page(&app, &ctx, Some(store_message(&t, &e)), "domains").await,
        Err(e) => Err(ctx.store_failure(e)),
    }
}

async fn add_domain_alias(State(app): State<App>, ctx: Ctx, Form(form): Form<DomainForm>) -> PageResult {
    let who = ctx.manager()?.clone();
    ctx.check_csrf(&form.csrf)?;
    let t = ctx.tr();
    if !matches!(who, Who::Customer { .. }) {
        return Err(ctx.not_found());
    }
    let (Ok(alias), Ok(target)) = (DomainName::parse(&form.name), DomainName::parse(&form.target)) else {
        return domains_page(&app, &ctx, Some(t.s("error.domain_name").into()), "domains").await;
    };
    match app.store.add_domain_alias(who.scope(), &alias, &target, false).await {
        Ok(domain) => Ok(done(&format!("/domains/{}", domain.id), "domain_alias_added")),
        Err(e @ (StoreError::Conflict(_) | StoreError::NotFound(_))) => {
            domains_page(&app, &ctx, Some(store_message(&t, &e)), "domains").await
        }
        Err(e) => Err(ctx.store_failure(e)),
    }
}

async fn domain_by_id(app: &App, ctx: &Ctx, scope: Scope, id: &str) -> Result<Domain, Response> {
    let id = parse_id(id).ok_or_else(|| ctx.not_found())?;
    let domains = app.store.domains(scope).await.map_err(|e| ctx.store_failure(e))?;
    domains.into_iter().find(|d| d.id == id).ok_or_else(|| ctx.not_found())
}

#[derive(Template)]
#[template(path = "domain.html")]
struct DomainPage {
    l: Layout,
    domain: Domain,
    ownership: (String, String),
    alias_domains: Vec<Domain>,
    mailboxes: Vec<Mailbox>,
    dns: DnsView,
}

async fn domain(State(app): State<App>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let who = ctx.manager()?;
    let scope = who.scope();
    let domain = domain_by_id(&app, &ctx, scope, &id).await?;
    let all = app.store.domains(scope).await.map_err(|e| ctx.store_failure(e))?;
    let alias_domains = all.into_iter().filter(|d| d.alias_of.as_ref() == Some(&domain.name)).collect();
    let mailboxes = if domain.alias_of.is_none() {
        app.store.mailboxes(scope, Some(&domain.name)).await.map_err(|e| ctx.store_failure(e))?
    } else {
        Vec::new()
    };
    let ownership = domain.ownership_record();
    let dns = dns_view(&app, scope, &domain, ctx.lang).await.map_err(|e| ctx.store_failure(e))?;
    Ok(render(&DomainPage { l: Layout::new(&ctx, "domains", None), domain, ownership, alias_domains, mailboxes, dns }))
}

/// One DNS record to publish, as the domain page shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DnsRecordView {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
    /// What the record is for, in the page's language.
    pub purpose: String,
    /// `ok`, `warning`, `error` of the last check, or empty when not checked.
    pub status: String,
}

/// One finding of the last DNS check, in the page's language.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DnsFinding {
    pub check: String,
    pub level: String,
    pub message: String,
}

/// The domain page's DNS part: records to publish and the findings of the last check.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DnsView {
    pub records: Vec<DnsRecordView>,
    pub findings: Vec<DnsFinding>,
    pub checked_at: Option<String>,
    /// A check can be run now (`postfach-dns` is configured).
    pub can_check: bool,
}

/// The DNS records to publish for a domain (from `postfach-dns`, with the domain's DKIM
/// keys; no DNS lookup on a page view), and the cached results of its last check.
/// Without `postfach-dns` only the ownership record is shown.
pub async fn dns_view(app: &App, scope: Scope, domain: &Domain, lang: Lang) -> Result<DnsView, StoreError> {
    use postfach_dns::records::{DomainSetup, Purpose, for_domain};
    use postfach_store::dns_checks::Check;
    let text = |t: &postfach_store::dns_checks::Text| match lang {
        Lang::De => t.de.clone(),
        Lang::En => t.en.clone(),
    };
    let report = app.store.dns_report(scope, &domain.name).await?;
    let Some(checker) = &app.settings.dns else {
        let (name, value) = domain.ownership_record();
        let status = if domain.verified { "ok" } else { "error" };
        let record = DnsRecordView { name, kind: "TXT".into(), value, purpose: String::new(), status: status.into() };
        return Ok(DnsView { records: vec![record], ..DnsView::default() });
    };
    let keys = match postfach_dns::dkim::ensure_key(&app.store, scope, &domain.name).await {
        Ok(_) => app.store.dkim_keys(scope, &domain.name).await?,
        Err(postfach_dns::DnsError::Store(e)) => return Err(e),
        Err(e) => {
            tracing::warn!(error = %e, domain = %domain.name, "no DKIM key for the domain page");
            Vec::new()
        }
    };
    let published =
        for_domain(&DomainSetup { platform: checker.platform(), domain, dkim_keys: &keys, published_spf: &[] });
    let level_of = |purpose: Purpose| {
        let check = match purpose {
            Purpose::Ownership => Check::Ownership,
            Purpose::Mx => Check::Mx,
            Purpose::Spf => Check::Spf,
            Purpose::Dkim => Check::Dkim,
            Purpose::Dmarc => Check::Dmarc,
            _ => return String::new(),
        };
        report.as_ref().and_then(|r| r.level_of(check)).map(|l| l.as_str().to_string()).unwrap_or_default()
    };
    let records = published
        .iter()
        .map(|r| DnsRecordView {
            name: r.name.clone(),
            kind: r.rtype.as_str().to_string(),
            value: r.value.clone(),
            purpose: text(&r.description),
            status: level_of(r.purpose),
        })
        .collect();
    let findings = report
        .as_ref()
        .map(|r| {
            r.verdicts
                .iter()
                .map(|v| DnsFinding {
                    check: v.check.as_str().to_uppercase(),
                    level: v.level.as_str().into(),
                    message: text(&v.message),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(DnsView { records, findings, checked_at: report.map(|r| when(r.checked_at)), can_check: true })
}

async fn check_domain(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let who = ctx.manager()?;
    ctx.check_csrf(&form.csrf)?;
    let domain = domain_by_id(&app, &ctx, who.scope(), &id).await?;
    let Some(checker) = &app.settings.dns else { return Err(ctx.not_found()) };
    match postfach_dns::checks::refresh(checker, &app.store, who.scope(), &domain.name).await {
        Ok(_) => Ok(done(&format!("/domains/{}", domain.id), "domain_checked")),
        Err(postfach_dns::DnsError::Store(e)) => Err(ctx.store_failure(e)),
        Err(e) => {
            tracing::warn!(error = %e, domain = %domain.name, "DNS check failed");
            Err(ctx.error_page(StatusCode::SERVICE_UNAVAILABLE, "error.unavailable"))
        }
    }
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    l: Layout,
    question: String,
    detail: String,
    action: String,
    cancel: String,
    cascade: bool,
}

async fn confirm_remove_domain(State(app): State<App>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let who = ctx.manager()?;
    let domain = domain_by_id(&app, &ctx, who.scope(), &id).await?;
    let t = ctx.tr();
    Ok(render(&ConfirmPage {
        l: Layout::new(&ctx, "domains", None),
        question: t.f("confirm.domain", &[("name", &domain.name.to_unicode())]),
        detail: t.s("confirm.domain_detail").into(),
        action: format!("/domains/{}/remove", domain.id),
        cancel: format!("/domains/{}", domain.id),
        cascade: true,
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RemoveForm {
    csrf: String,
    cascade: String,
}

async fn remove_domain(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<RemoveForm>,
) -> PageResult {
    let who = ctx.manager()?;
    ctx.check_csrf(&form.csrf)?;
    let domain = domain_by_id(&app, &ctx, who.scope(), &id).await?;
    match app.store.remove_domain(who.scope(), &domain.name, form.cascade == "1").await {
        Ok(_) => Ok(done("/domains", "domain_removed")),
        Err(e @ StoreError::Conflict(_)) => {
            domains_page(&app, &ctx, Some(store_message(&ctx.tr(), &e)), "domains").await
        }
        Err(e) => Err(ctx.store_failure(e)),
    }
}

// ---------------------------------------------------------------- mailboxes

#[derive(Template)]
#[template(path = "mailboxes.html")]
struct MailboxesPage {
    l: Layout,
    mailboxes: Vec<Mailbox>,
    domains: Vec<Domain>,
    local: String,
    domain: String,
    access: String,
}

async fn mailboxes(State(app): State<App>, ctx: Ctx) -> PageResult {
    mailboxes_page(&app, &ctx, None, NewMailboxForm::default()).await
}

async fn mailboxes_page(app: &App, ctx: &Ctx, error: Option<String>, form: NewMailboxForm) -> PageResult {
    let who = ctx.manager()?;
    let mailboxes = app.store.mailboxes(who.scope(), None).await.map_err(|e| ctx.store_failure(e))?;
    let domains = app.store.domains(who.scope()).await.map_err(|e| ctx.store_failure(e))?;
    let domains = domains.into_iter().filter(|d| d.alias_of.is_none()).collect();
    Ok(render(&MailboxesPage {
        l: Layout::new(ctx, "mailboxes", error),
        mailboxes,
        domains,
        local: form.local,
        domain: form.domain,
        access: if form.access.is_empty() { "imap".into() } else { form.access },
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NewMailboxForm {
    csrf: String,
    local: String,
    domain: String,
    password: String,
    access: String,
}

async fn create_mailbox(State(app): State<App>, ctx: Ctx, Form(mut form): Form<NewMailboxForm>) -> PageResult {
    let who = ctx.manager()?;
    ctx.check_csrf(&form.csrf)?;
    let t = ctx.tr();
    let Ok(address) = EmailAddress::parse(&format!("{}@{}", form.local.trim(), form.domain.trim())) else {
        return mailboxes_page(&app, &ctx, Some(t.s("error.address").into()), form).await;
    };
    let access = form.access.parse().unwrap_or(AccessMode::DEFAULT);
    let settings = MailboxSettings { access, ..MailboxSettings::default() };
    let password = Secret::new(std::mem::take(&mut form.password));
    match accounts::create_mailbox(&app.store, app.auth.hasher(), who.scope(), &address, &password, settings).await {
        Ok(mailbox) => Ok(done(&format!("/mailboxes/{}", mailbox.id), "mailbox_created")),
        Err(e) => mailboxes_page(&app, &ctx, Some(account_error(&ctx, &e, &password)), form).await,
    }
}

/// The mailbox `id` if the signed-in user may see it: managers within their scope, a
/// mailbox user only their own.
async fn visible_mailbox(app: &App, ctx: &Ctx, id: &str) -> Result<Mailbox, Response> {
    let who = ctx.signed_in()?;
    let id = parse_id(id).ok_or_else(|| ctx.not_found())?;
    if let Who::Mailbox { mailbox } = who
        && mailbox.id != id
    {
        return Err(ctx.not_found());
    }
    app.store.mailbox_by_id(who.scope(), id).await.map_err(|e| ctx.store_failure(e))
}

#[derive(Template)]
#[template(path = "mailbox.html")]
struct MailboxPage {
    l: Layout,
    mailbox: Mailbox,
    manage: bool,
    aliases: Vec<Alias>,
    domains: Vec<Domain>,
    checklist: Vec<CheckItem>,
    logins: Vec<LoginRow>,
    filter: String,
}

/// One point of the security checklist.
#[derive(Debug, Clone)]
pub struct CheckItem {
    /// `ok`, `warning` or `error`.
    pub status: &'static str,
    pub text: String,
    pub fix: String,
    pub fix_label: &'static str,
}

/// One row of the login list, ready to show.
#[derive(Debug, Clone)]
pub struct LoginRow {
    pub at: String,
    pub service: &'static str,
    pub login: String,
    pub ip: String,
    /// TLS version, or `None` when unencrypted.
    pub tls: Option<String>,
    pub result: &'static str,
    pub ok: bool,
}

pub fn login_row(t: &Tr, record: &LoginRecord) -> LoginRow {
    LoginRow {
        at: when(record.at),
        service: t.s(&format!("service.{}", record.service.as_str())),
        login: record.login.clone(),
        ip: record.remote_ip.to_string(),
        tls: record.tls.as_ref().map(|tls| tls.version.clone()),
        result: t.s(&format!("result.{}", record.result.as_str())),
        ok: record.result == LoginResult::Ok,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FilterQuery {
    filter: String,
}

fn login_filter(filter: &str, mailbox: Option<i64>) -> LoginFilter {
    LoginFilter { mailbox, only_unencrypted: filter == "unencrypted", only_failed: filter == "failed", limit: 200 }
}

async fn mailbox(State(app): State<App>, ctx: Ctx, Path(id): Path<String>, Query(q): Query<FilterQuery>) -> PageResult {
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    mailbox_page(&app, &ctx, mailbox, &q.filter, None).await
}

async fn mailbox_page(app: &App, ctx: &Ctx, mailbox: Mailbox, filter: &str, error: Option<String>) -> PageResult {
    let who = ctx.signed_in()?;
    let t = ctx.tr();
    let scope = who.scope();
    let aliases = app.store.aliases_of(scope, &mailbox.address).await.map_err(|e| ctx.store_failure(e))?;
    let domains = app.store.domains(scope).await.map_err(|e| ctx.store_failure(e))?;
    let records =
        app.store.logins(scope, login_filter(filter, Some(mailbox.id))).await.map_err(|e| ctx.store_failure(e))?;
    let recent = app.store.logins(scope, login_filter("", Some(mailbox.id))).await.map_err(|e| ctx.store_failure(e))?;
    let report = app.store.dns_report(scope, mailbox.address.domain()).await.map_err(|e| ctx.store_failure(e))?;
    let checklist = checklist(&t, &mailbox, &recent, &domains, report.as_ref());
    let domains = domains.into_iter().filter(|d| d.alias_of.is_none()).collect();
    let manage = !matches!(who, Who::Mailbox { .. });
    let filter = match filter {
        "unencrypted" | "failed" => filter.to_string(),
        _ => String::new(),
    };
    Ok(render(&MailboxPage {
        l: Layout::new(ctx, if manage { "mailboxes" } else { "mailbox" }, error),
        logins: records.iter().map(|r| login_row(&t, r)).collect(),
        mailbox,
        manage,
        aliases,
        domains,
        checklist,
        filter,
    }))
}

/// The security checklist of a mailbox: each point green or red, with where to fix it.
fn checklist(
    t: &Tr,
    mailbox: &Mailbox,
    recent: &[LoginRecord],
    domains: &[Domain],
    report: Option<&postfach_store::dns_checks::DomainReport>,
) -> Vec<CheckItem> {
    let since = UnixTime::now().0 - 30 * 86_400;
    let recent: Vec<&LoginRecord> = recent.iter().filter(|r| r.at.0 >= since).collect();
    let item = |ok: bool, good: &str, bad: &str, fix: &str, label: &'static str| CheckItem {
        status: if ok { "ok" } else { "error" },
        text: t.s(if ok { good } else { bad }).to_string(),
        fix: if ok { String::new() } else { fix.to_string() },
        fix_label: t.s(label),
    };
    let wrong_protocol = recent.iter().any(|r| r.result == LoginResult::ServiceDisabled);
    let unencrypted = recent.iter().any(|r| r.tls.is_none());
    let refused = recent.iter().any(|r| r.result != LoginResult::Ok);
    let domain = domains.iter().find(|d| &d.name == mailbox.address.domain());
    let mut items = vec![
        item(mailbox.settings.tls_required, "check.tls_on", "check.tls_off", "#settings", "check.fix_settings"),
        item(!wrong_protocol, "check.access_ok", "check.access_wrong", "?filter=failed#logins", "check.fix_logins"),
        item(
            !mailbox.password_exposed,
            "check.password_ok",
            "check.password_exposed",
            "#password",
            "check.fix_password",
        ),
        item(
            !unencrypted,
            "check.no_unencrypted",
            "check.unencrypted",
            "?filter=unencrypted#logins",
            "check.fix_logins",
        ),
        item(!refused, "check.no_refused", "check.refused", "?filter=failed#logins", "check.fix_logins"),
    ];
    // SPF, DKIM and DMARC of the domain, from its last DNS check (issue 8).
    use postfach_store::dns_checks::{Check, Level};
    let verified = domain.is_some_and(|d| d.verified);
    let worst = report.map(|r| [Check::Spf, Check::Dkim, Check::Dmarc].iter().filter_map(|c| r.level_of(*c)).max());
    let (status, key) = match (verified, worst) {
        (false, _) => ("error", "check.domain_unverified"),
        (true, None | Some(None)) => ("warning", "check.dns_unchecked"),
        (true, Some(Some(Level::Ok))) => ("ok", "check.dns_ok"),
        (true, Some(Some(Level::Warning))) => ("warning", "check.dns_warning"),
        (true, Some(Some(Level::Error))) => ("error", "check.dns_error"),
    };
    items.push(CheckItem {
        status,
        text: t.s(key).to_string(),
        fix: if status == "ok" {
            String::new()
        } else {
            domain.map(|d| format!("/domains/{}#dns", d.id)).unwrap_or_default()
        },
        fix_label: t.s("check.fix_domain"),
    });
    items
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SettingsForm {
    csrf: String,
    access: String,
    tls_required: String,
    submission: String,
}

async fn mailbox_settings(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<SettingsForm>,
) -> PageResult {
    let who = ctx.manager()?;
    ctx.check_csrf(&form.csrf)?;
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    let change = SettingsChange {
        access: form.access.parse().ok(),
        tls_required: Some(form.tls_required == "on"),
        submission: Some(form.submission == "on"),
    };
    app.store.set_mailbox_settings(who.scope(), &mailbox.address, change).await.map_err(|e| ctx.store_failure(e))?;
    Ok(done(&format!("/mailboxes/{}", mailbox.id), "settings_saved"))
}

async fn mailbox_password(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<PasswordForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    let password = Secret::new(form.password);
    let changed = ctx.set_mailbox_password(&app, who, &mailbox, Some(form.current_password), &password).await;
    match changed {
        Ok(()) => Ok(done(&format!("/mailboxes/{}", mailbox.id), "password_changed")),
        Err(e) => {
            let message = account_error(&ctx, &e, &password);
            mailbox_page(&app, &ctx, mailbox, "", Some(message)).await
        }
    }
}

async fn confirm_remove_mailbox(State(app): State<App>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    ctx.manager()?;
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    let t = ctx.tr();
    Ok(render(&ConfirmPage {
        l: Layout::new(&ctx, "mailboxes", None),
        question: t.f("confirm.mailbox", &[("name", &mailbox.address.to_unicode())]),
        detail: t.s("confirm.mailbox_detail").into(),
        action: format!("/mailboxes/{}/remove", mailbox.id),
        cancel: format!("/mailboxes/{}", mailbox.id),
        cascade: false,
    }))
}

async fn remove_mailbox(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let who = ctx.manager()?;
    ctx.check_csrf(&form.csrf)?;
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    app.store.remove_mailbox(who.scope(), &mailbox.address).await.map_err(|e| ctx.store_failure(e))?;
    Ok(done("/mailboxes", "mailbox_removed"))
}

async fn mobileconfig(State(app): State<App>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    if mailbox.settings.access == AccessMode::None {
        return Err(ctx.error_page(StatusCode::CONFLICT, "error.mobileconfig_none"));
    }
    let body = autoconfig::mobileconfig(&app.settings, &mailbox);
    let filename = format!("{}.mobileconfig", mailbox.address.local_part());
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-apple-aspen-config".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}\"", filename.replace('"', ""))),
        ],
        body,
    )
        .into_response())
}

// ---------------------------------------------------------------- aliases

#[derive(Template)]
#[template(path = "aliases.html")]
struct AliasesPage {
    l: Layout,
    aliases: Vec<Alias>,
    domains: Vec<Domain>,
    mailboxes: Vec<Mailbox>,
}

async fn aliases(State(app): State<App>, ctx: Ctx) -> PageResult {
    aliases_page(&app, &ctx, None).await
}

async fn aliases_page(app: &App, ctx: &Ctx, error: Option<String>) -> PageResult {
    let who = ctx.manager()?;
    let scope = who.scope();
    let aliases = app.store.aliases(scope, None).await.map_err(|e| ctx.store_failure(e))?;
    let domains = app.store.domains(scope).await.map_err(|e| ctx.store_failure(e))?;
    let domains = domains.into_iter().filter(|d| d.alias_of.is_none()).collect();
    let mailboxes = app.store.mailboxes(scope, None).await.map_err(|e| ctx.store_failure(e))?;
    Ok(render(&AliasesPage { l: Layout::new(ctx, "aliases", error), aliases, domains, mailboxes }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AliasForm {
    csrf: String,
    local: String,
    domain: String,
    mailbox: String,
    back: String,
}

async fn add_alias(State(app): State<App>, ctx: Ctx, Form(form): Form<AliasForm>) -> PageResult {
    let who = ctx.manager()?;
    ctx.check_csrf(&form.csrf)?;
    let t = ctx.tr();
    let address = EmailAddress::parse(&format!("{}@{}", form.local.trim(), form.domain.trim()));
    let target = EmailAddress::parse(&form.mailbox);
    let (Ok(address), Ok(target)) = (address, target) else {
        return aliases_page(&app, &ctx, Some(t.s("error.address").into())).await;
    };
    let back =
        if form.back.starts_with("/mailboxes/") && !form.back.contains("//") { form.back } else { "/aliases".into() };
    match app.store.add_alias(who.scope(), &address, &target).await {
        Ok(_) => Ok(done(&back, "alias_added")),
        Err(e @ (StoreError::Conflict(_) | StoreError::NotFound(_))) => {
            aliases_page(&app, &ctx, Some(store_message(&t, &e))).await
        }
        Err(e) => Err(ctx.store_failure(e)),
    }
}

async fn alias_by_id(app: &App, ctx: &Ctx, id: &str) -> Result<Alias, Response> {
    let who = ctx.manager()?;
    let id = parse_id(id).ok_or_else(|| ctx.not_found())?;
    let aliases = app.store.aliases(who.scope(), None).await.map_err(|e| ctx.store_failure(e))?;
    aliases.into_iter().find(|a| a.id == id).ok_or_else(|| ctx.not_found())
}

async fn confirm_remove_alias(State(app): State<App>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let alias = alias_by_id(&app, &ctx, &id).await?;
    let t = ctx.tr();
    Ok(render(&ConfirmPage {
        l: Layout::new(&ctx, "aliases", None),
        question: t.f("confirm.alias", &[("name", &alias.address.to_unicode())]),
        detail: t.f("confirm.alias_detail", &[("mailbox", &alias.mailbox.to_unicode())]),
        action: format!("/aliases/{}/remove", alias.id),
        cancel: "/aliases".into(),
        cascade: false,
    }))
}

async fn remove_alias(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let who = ctx.manager()?;
    ctx.check_csrf(&form.csrf)?;
    let alias = alias_by_id(&app, &ctx, &id).await?;
    app.store.remove_alias(who.scope(), &alias.address).await.map_err(|e| ctx.store_failure(e))?;
    Ok(done("/aliases", "alias_removed"))
}

// ---------------------------------------------------------------- logins

#[derive(Template)]
#[template(path = "logins.html")]
struct LoginsPage {
    l: Layout,
    logins: Vec<LoginRow>,
    filter: String,
}

async fn logins(State(app): State<App>, ctx: Ctx, Query(q): Query<FilterQuery>) -> PageResult {
    let who = ctx.manager()?;
    let t = ctx.tr();
    let records =
        app.store.logins(who.scope(), login_filter(&q.filter, None)).await.map_err(|e| ctx.store_failure(e))?;
    Ok(render(&LoginsPage {
        l: Layout::new(&ctx, "logins", None),
        logins: records.iter().map(|r| login_row(&t, r)).collect(),
        filter: q.filter,
    }))
}

// ---------------------------------------------------------------- account

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    l: Layout,
    name: String,
    totp_enabled: bool,
    /// A secret being set up: (base32, otpauth URI).
    totp_setup: Option<(String, String)>,
    tokens: Vec<ApiToken>,
    new_token: Option<String>,
}

async fn account(State(app): State<App>, ctx: Ctx) -> PageResult {
    account_page(&app, &ctx, None, None).await
}

async fn account_page(app: &App, ctx: &Ctx, error: Option<String>, new_token: Option<String>) -> PageResult {
    let who = ctx.manager()?;
    let id = who.account_id().ok_or_else(|| ctx.not_found())?;
    let secret = app.store.totp_secret(id).await.map_err(|e| ctx.store_failure(e))?;
    let name = who.display_name();
    let issuer = format!("Postfach {}", app.settings.hostname);
    let totp_setup =
        secret.as_ref().filter(|s| !s.enabled).map(|s| (s.secret.clone(), totp_uri(&s.secret, &issuer, &name)));
    let tokens = app.store.api_tokens(Scope::Customer(id)).await.map_err(|e| ctx.store_failure(e))?;
    Ok(render(&AccountPage {
        l: Layout::new(ctx, "account", error),
        name,
        totp_enabled: secret.is_some_and(|s| s.enabled),
        totp_setup,
        tokens,
        new_token,
    }))
}

async fn account_password(State(app): State<App>, ctx: Ctx, Form(form): Form<PasswordForm>) -> PageResult {
    let who = ctx.manager()?;
    ctx.check_csrf(&form.csrf)?;
    let own = who.principal();
    let password = Secret::new(form.password);
    let current = Secret::new(form.current_password);
    let connection = ctx.auth_connection();
    let change = OwnPasswordChange {
        current: &current,
        new: &password,
        keep_api_tokens: form.keep_api_tokens == "on",
        session: ctx.session.as_ref().map(|s| s.id),
        connection: &connection,
    };
    match accounts::change_own_password(&app.auth, &app.store, &own, change).await {
        Ok(()) => Ok(done("/account", "password_changed")),
        Err(e) => account_page(&app, &ctx, Some(account_error(&ctx, &e, &password)), None).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TotpForm {
    csrf: String,
    action: String,
    code: String,
}

async fn account_totp(State(app): State<App>, ctx: Ctx, Form(form): Form<TotpForm>) -> PageResult {
    let who = ctx.manager()?;
    ctx.check_csrf(&form.csrf)?;
    let id = who.account_id().ok_or_else(|| ctx.not_found())?;
    let t = ctx.tr();
    let fail = |e| ctx.store_failure(e);
    match form.action.as_str() {
        "start" => {
            match app.store.set_totp_secret(id, &new_totp_secret()).await {
                Ok(()) => {}
                Err(e @ StoreError::Conflict(_)) => {
                    return account_page(&app, &ctx, Some(store_message(&t, &e)), None).await;
                }
                Err(e) => return Err(fail(e)),
            }
            Ok(Redirect::to("/account#totp").into_response())
        }
        "confirm" | "off" => {
            let enable = form.action == "confirm";
            let connection = ctx.auth_connection();
            match app.auth.second_factor(id, &form.code, enable, &connection).await {
                Ok(()) => {}
                Err(AuthError::Refused(Refusal::Throttled)) => {
                    return account_page(&app, &ctx, Some(t.s("login.throttled").into()), None).await;
                }
                Err(AuthError::Refused(_)) => {
                    return account_page(&app, &ctx, Some(t.s("error.code_wrong").into()), None).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "checking a second factor failed");
                    return account_page(&app, &ctx, Some(t.s("error.unavailable").into()), None).await;
                }
            }
            if enable {
                Ok(done("/account", "totp_on"))
            } else {
                app.store.remove_totp_secret(id).await.map_err(fail)?;
                Ok(done("/account", "totp_off"))
            }
        }
        _ => Err(ctx.not_found()),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenForm {
    csrf: String,
    name: String,
}

async fn create_token(State(app): State<App>, ctx: Ctx, Form(form): Form<TokenForm>) -> PageResult {
    let who = ctx.manager()?;
    ctx.check_csrf(&form.csrf)?;
    let id = who.account_id().ok_or_else(|| ctx.not_found())?;
    let token = new_api_token();
    match app.store.create_api_token(id, &form.name, &token_hash(token.expose())).await {
        Ok(_) => account_page(&app, &ctx, None, Some(token.expose().clone())).await,
        Err(StoreError::Conflict(_)) => {
            account_page(&app, &ctx, Some(ctx.tr().s("error.token_name").into()), None).await
        }
        Err(e) => Err(ctx.store_failure(e)),
    }
}

async fn revoke_token(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let who = ctx.manager()?;
    ctx.check_csrf(&form.csrf)?;
    let account = who.account_id().ok_or_else(|| ctx.not_found())?;
    let id = parse_id(&id).ok_or_else(|| ctx.not_found())?;
    app.store.revoke_api_token(Scope::Customer(account), id).await.map_err(|e| ctx.store_failure(e))?;
    Ok(done("/account", "token_revoked"))
}
