//! The JSON API under `/api/v1`: everything the panel does, for scripts.
//!
//! Callers authenticate with a bearer token (`Authorization: Bearer pfapi_…`, created and
//! revoked on the account page or through `/tokens`) or with the panel's session cookie;
//! cookie-authenticated calls that change something must repeat the session's CSRF token
//! in `X-CSRF-Token`. Errors are JSON `{"code": …, "message": …}` with the message in the
//! caller's language. The routes are built from [`OPERATIONS`], the same table the
//! OpenAPI document at `/api/v1/openapi.json` is generated from, so the two cannot drift.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use postfach_auth::accounts::{self, AccountError};
use postfach_auth::tokens::{new_api_token, same_token, token_hash};
use postfach_policy::{PasswordVerdict, Refusal, check_password, user_inputs};
use postfach_store::domains::Domain;
use postfach_store::logins::LoginFilter;
use postfach_store::mailboxes::{Alias, Mailbox, MailboxSettings, SettingsChange};
use postfach_store::{Scope, StoreError};
use postfach_types::{AccessMode, CustomerName, DomainName, EmailAddress, Role, Secret};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::App;
use crate::context::{Ctx, Proof, Who};
use crate::i18n::{Tr, current_password_refused, localized_verdict, store_message, verdict_reason};

/// One documented operation of the API.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub id: &'static str,
    pub method: &'static str,
    /// Relative to `/api/v1`, with `{id}` parameters as in OpenAPI (and axum).
    pub path: &'static str,
    pub summary: &'static str,
    /// The request body's schema in the OpenAPI document, if any.
    pub body: Option<&'static str>,
    /// Who may call it.
    pub who: &'static str,
}

macro_rules! op {
    ($id:literal, $method:literal, $path:literal, $who:literal, $body:expr, $summary:literal) => {
        Operation { id: $id, method: $method, path: $path, who: $who, body: $body, summary: $summary }
    };
}

/// Every operation of the API; the router and the OpenAPI document are built from it.
pub const OPERATIONS: &[Operation] = &[
    op!("getOpenApi", "GET", "/openapi.json", "anyone", None, "This OpenAPI document"),
    op!("getMe", "GET", "/me", "signed-in", None, "Who is calling"),
    op!(
        "checkPassword",
        "POST",
        "/password-check",
        "signed-in",
        Some("PasswordCheck"),
        "Score a password with the password rule (for the live meter)"
    ),
    op!("listCustomers", "GET", "/customers", "admin", None, "All customers and admins"),
    op!("createCustomer", "POST", "/customers", "admin", Some("NewCustomer"), "Create a customer or admin"),
    op!(
        "updateCustomer",
        "PATCH",
        "/customers/{id}",
        "admin",
        Some("CustomerChange"),
        "Disable or enable a customer, or reset its password"
    ),
    op!("listDomains", "GET", "/domains", "customer", None, "The caller's domains and alias domains"),
    op!(
        "addDomain",
        "POST",
        "/domains",
        "customer",
        Some("NewDomain"),
        "Add a domain; it goes live once ownership is proven"
    ),
    op!(
        "getDomain",
        "GET",
        "/domains/{id}",
        "customer",
        None,
        "A domain with its ownership record and the DNS records to publish"
    ),
    op!("updateDomain", "PATCH", "/domains/{id}", "admin", Some("DomainChange"), "Mark a domain verified or not"),
    op!(
        "removeDomain",
        "DELETE",
        "/domains/{id}",
        "customer",
        None,
        "Remove a domain (with ?cascade=true: with its mailboxes and aliases)"
    ),
    op!(
        "addDomainAlias",
        "POST",
        "/domain-aliases",
        "customer",
        Some("NewDomainAlias"),
        "Make a domain an alias domain of another"
    ),
    op!("listMailboxes", "GET", "/mailboxes", "customer", None, "The caller's mailboxes"),
    op!("createMailbox", "POST", "/mailboxes", "customer", Some("NewMailbox"), "Create a mailbox"),
    op!("getMailbox", "GET", "/mailboxes/{id}", "signed-in", None, "A mailbox with its aliases"),
    op!(
        "updateMailbox",
        "PATCH",
        "/mailboxes/{id}",
        "customer",
        Some("MailboxChange"),
        "Change access mode, TLS-only and submission switches"
    ),
    op!("removeMailbox", "DELETE", "/mailboxes/{id}", "customer", None, "Remove a mailbox and its aliases"),
    op!(
        "setMailboxPassword",
        "PUT",
        "/mailboxes/{id}/password",
        "signed-in",
        Some("NewPassword"),
        "Set a mailbox's password"
    ),
    op!(
        "listMailboxLogins",
        "GET",
        "/mailboxes/{id}/logins",
        "signed-in",
        None,
        "A mailbox's logins and refused attempts (?filter=unencrypted|failed)"
    ),
    op!("listAliases", "GET", "/aliases", "customer", None, "The caller's aliases"),
    op!("addAlias", "POST", "/aliases", "customer", Some("NewAlias"), "Add an alias that delivers into a mailbox"),
    op!("removeAlias", "DELETE", "/aliases/{id}", "customer", None, "Remove an alias"),
    op!(
        "listLogins",
        "GET",
        "/logins",
        "customer",
        None,
        "Logins and refused attempts on all the caller's mailboxes (?filter=unencrypted|failed)"
    ),
    op!("listTokens", "GET", "/tokens", "customer", None, "The caller's API tokens"),
    op!(
        "createToken",
        "POST",
        "/tokens",
        "customer",
        Some("NewToken"),
        "Create an API token; the token is shown only in this answer"
    ),
    op!("revokeToken", "DELETE", "/tokens/{id}", "customer", None, "Revoke an API token"),
];

pub fn routes() -> Router<App> {
    let mut by_path: BTreeMap<&str, MethodRouter<App>> = BTreeMap::new();
    for op in OPERATIONS {
        let routes = by_path.remove(op.path).unwrap_or_default();
        by_path.insert(op.path, attach(routes, op));
    }
    let mut router = Router::new();
    for (path, routes) in by_path {
        router = router.route(path, routes.fallback(method_not_allowed));
    }
    router.fallback(no_such_operation)
}

fn filter(method: &str) -> MethodFilter {
    match method {
        "POST" => MethodFilter::POST,
        "PUT" => MethodFilter::PUT,
        "PATCH" => MethodFilter::PATCH,
        "DELETE" => MethodFilter::DELETE,
        _ => MethodFilter::GET,
    }
}

fn attach(routes: MethodRouter<App>, op: &Operation) -> MethodRouter<App> {
    let f = filter(op.method);
    match op.id {
        "getOpenApi" => routes.on(f, openapi),
        "getMe" => routes.on(f, me),
        "checkPassword" => routes.on(f, password_check),
        "listCustomers" => routes.on(f, list_customers),
        "createCustomer" => routes.on(f, create_customer),
        "updateCustomer" => routes.on(f, update_customer),
        "listDomains" => routes.on(f, list_domains),
        "addDomain" => routes.on(f, add_domain),
        "getDomain" => routes.on(f, get_domain),
        "updateDomain" => routes.on(f, update_domain),
        "removeDomain" => routes.on(f, remove_domain),
        "checkDomain" => routes.on(f, check_domain),
        "addDomainAlias" => routes.on(f, add_domain_alias),
        "listMailboxes" => routes.on(f, list_mailboxes),
        "createMailbox" => routes.on(f, create_mailbox),
        "getMailbox" => routes.on(f, get_mailbox),
        "updateMailbox" => routes.on(f, update_mailbox),
        "removeMailbox" => routes.on(f, remove_mailbox),
        "setMailboxPassword" => routes.on(f, set_mailbox_password),
        "listMailboxLogins" => routes.on(f, mailbox_logins),
        "listAliases" => routes.on(f, list_aliases),
        "addAlias" => routes.on(f, add_alias),
        "removeAlias" => routes.on(f, remove_alias),
        "listLogins" => routes.on(f, list_logins),
        "listTokens" => routes.on(f, list_tokens),
        "createToken" => routes.on(f, create_token),
        "revokeToken" => routes.on(f, revoke_token),
        // An operation without a handler is left unrouted; the agreement test finds it.
        _ => routes,
    }
}

/// An API error: `{code, message}` with an HTTP status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Option<Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "code": self.code, "message": self.message });
        if let (Some(details), Some(map)) = (self.details, body.as_object_mut()) {
            map.insert("details".into(), details);
        }
        (self.status, Json(body)).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError { status, code, message: message.into(), details: None }
}

fn not_found(t: &Tr) -> ApiError {
    error(StatusCode::NOT_FOUND, "not_found", t.s("error.not_found"))
}

fn store_error(t: &Tr, e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(_) => not_found(t),
        e @ StoreError::Conflict(_) => error(StatusCode::CONFLICT, "conflict", store_message(t, &e)),
        e => {
            tracing::error!(error = %e, "store call failed");
            error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", t.s("error.unavailable"))
        }
    }
}

fn account_error(t: &Tr, e: AccountError, password: &Secret<String>) -> ApiError {
    match e {
        AccountError::WeakPassword(verdict) => ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "weak_password",
            message: verdict_reason(t, &verdict, password.expose().chars().count()),
            details: Some(localized_verdict(t, &verdict, password.expose().chars().count())),
        },
        AccountError::Store(e) => store_error(t, e),
        AccountError::CurrentPassword(refusal) => {
            let (status, code) = match refusal {
                Refusal::Throttled => (StatusCode::TOO_MANY_REQUESTS, "throttled"),
                Refusal::Disabled => (StatusCode::FORBIDDEN, "disabled"),
                Refusal::TlsRequired { .. } => (StatusCode::FORBIDDEN, "tls_required"),
                Refusal::ServiceNotAllowed => (StatusCode::FORBIDDEN, "forbidden"),
                Refusal::BadCredentials | Refusal::Malformed => (StatusCode::FORBIDDEN, "current_password_wrong"),
            };
            error(status, code, t.s(current_password_refused(refusal)))
        }
        AccountError::Auth(e) => {
            tracing::error!(error = %e, "hashing a password failed");
            error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", t.s("error.unavailable"))
        }
    }
}

fn ok(value: impl serde::Serialize) -> ApiResult {
    Ok(Json(value).into_response())
}

fn created(value: impl serde::Serialize) -> ApiResult {
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

fn no_content() -> ApiResult {
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn parse_body<T: DeserializeOwned>(t: &Tr, body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| error(StatusCode::BAD_REQUEST, "invalid_request", format!("{} ({e})", t.s("error.invalid_json"))))
}

fn parse_id(t: &Tr, id: &str) -> Result<i64, ApiError> {
    id.parse().ok().filter(|id: &i64| *id > 0).ok_or_else(|| not_found(t))
}

/// The caller, checked: signed in, and for cookie sessions the CSRF header on changes.
fn caller<'a>(ctx: &'a Ctx, method: &Method) -> Result<&'a Who, ApiError> {
    let t = ctx.tr();
    if ctx.token_throttled {
        return Err(error(StatusCode::TOO_MANY_REQUESTS, "throttled", t.s("login.throttled")));
    }
    let who =
        ctx.who.as_ref().ok_or_else(|| error(StatusCode::UNAUTHORIZED, "unauthorized", t.s("error.unauthorized")))?;
    if ctx.proof == Some(Proof::Cookie) && method != Method::GET {
        let sent = ctx.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
        if !same_token(ctx.csrf_token(), sent) {
            return Err(error(StatusCode::FORBIDDEN, "csrf", t.s("error.csrf")));
        }
    }
    Ok(who)
}

/// A customer or admin (not a mailbox user).
fn manager<'a>(ctx: &'a Ctx, method: &Method) -> Result<&'a Who, ApiError> {
    match caller(ctx, method)? {
        who @ (Who::Admin { .. } | Who::Customer { .. }) => Ok(who),
        Who::Mailbox { .. } => Err(error(StatusCode::FORBIDDEN, "forbidden", ctx.tr().s("error.forbidden"))),
    }
}

fn admin<'a>(ctx: &'a Ctx, method: &Method) -> Result<&'a Who, ApiError> {
    match caller(ctx, method)? {
        who @ Who::Admin { .. } => Ok(who),
        _ => Err(error(StatusCode::FORBIDDEN, "forbidden", ctx.tr().s("error.forbidden"))),
    }
}

async fn no_such_operation(ctx: Ctx) -> ApiError {
    error(StatusCode::NOT_FOUND, "no_such_operation", ctx.tr().s("error.no_operation"))
}

async fn method_not_allowed(ctx: Ctx) -> ApiError {
    error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", ctx.tr().s("error.no_operation"))
}

async fn openapi() -> Response {
    Json(crate::openapi::document()).into_response()
}

async fn me(ctx: Ctx, method: Method) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let mut value = json!({ "role": who.role(), "name": who.display_name() });
    if let (Some(map), Who::Mailbox { mailbox }) = (value.as_object_mut(), who) {
        map.insert("mailbox_id".into(), json!(mailbox.id));
    }
    ok(value)
}

#[derive(Deserialize)]
struct PasswordCheck {
    password: String,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    customer: Option<String>,
}

async fn password_check(State(app): State<App>, ctx: Ctx, method: Method, body: Bytes) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let t = ctx.tr();
    let check: PasswordCheck = parse_body(&t, &body)?;
    let password = Secret::new(check.password);
    let chars = password.expose().chars().count();
    let own_address = match who {
        Who::Mailbox { mailbox } => Some(mailbox.address.clone()),
        _ => check.address.as_deref().and_then(|a| EmailAddress::parse(a).ok()),
    };
    // Like the address: a name that is not a valid customer name (yet, while it is typed)
    // is left out.
    let customer = check.customer.as_deref().and_then(|c| CustomerName::parse(c).ok());
    let verdict: PasswordVerdict = match (&own_address, &customer) {
        (Some(address), _) => {
            match accounts::check_mailbox_password(&app.store, who.scope(), address, &password).await {
                Ok(verdict) => verdict,
                // The domain is not (yet) the caller's: score with what is known.
                Err(_) => score(&password, Some(address), Some(&who.display_name())),
            }
        }
        (None, Some(customer)) => score(&password, None, Some(customer.as_str())),
        (None, None) => score(&password, None, who.account_id().map(|_| who.display_name()).as_deref()),
    };
    ok(localized_verdict(&t, &verdict, chars))
}

fn score(password: &Secret<String>, address: Option<&EmailAddress>, customer: Option<&str>) -> PasswordVerdict {
    let inputs = user_inputs(address, customer);
    check_password(password.expose(), &inputs.iter().map(String::as_str).collect::<Vec<_>>())
}

async fn list_customers(State(app): State<App>, ctx: Ctx, method: Method) -> ApiResult {
    admin(&ctx, &method)?;
    ok(app.store.customers().await.map_err(|e| store_error(&ctx.tr(), e))?)
}

#[derive(Deserialize)]
struct NewCustomer {
    name: String,
    password: String,
    #[serde(default)]
    role: Option<String>,
}

async fn create_customer(State(app): State<App>, ctx: Ctx, method: Method, body: Bytes) -> ApiResult {
    admin(&ctx, &method)?;
    let t = ctx.tr();
    let new: NewCustomer = parse_body(&t, &body)?;
    let name = CustomerName::parse(&new.name)
        .map_err(|_| error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_name", t.s("error.customer_name")))?;
    let role = match new.role.as_deref() {
        Some("admin") => Role::Admin,
        None | Some("customer") => Role::Customer,
        Some(_) => return Err(error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_role", t.s("error.role"))),
    };
    let password = Secret::new(new.password);
    let customer = accounts::create_customer(&app.store, app.auth.hasher(), &name, &password, role)
        .await
        .map_err(|e| account_error(&t, e, &password))?;
    created(customer)
}

#[derive(Deserialize)]
struct CustomerChange {
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    password: Option<String>,
}

async fn update_customer(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let me = admin(&ctx, &method)?.account_id();
    let t = ctx.tr();
    let change: CustomerChange = parse_body(&t, &body)?;
    let customer = app.store.customer_by_id(parse_id(&t, &id)?).await.map_err(|e| store_error(&t, e))?;
    // Checked before anything changes, so a refused request changes nothing.
    if Some(customer.id) == me {
        if change.password.is_some() {
            return Err(error(StatusCode::CONFLICT, "conflict", t.s("error.reset_self")));
        }
        if change.disabled == Some(true) {
            return Err(error(StatusCode::CONFLICT, "conflict", t.s("error.disable_self")));
        }
    }
    if let Some(password) = change.password {
        let password = Secret::new(password);
        accounts::change_customer_password(&app.store, app.auth.hasher(), &customer.name, &password)
            .await
            .map_err(|e| account_error(&t, e, &password))?;
    }
    if let Some(disabled) = change.disabled {
        app.store.set_customer_disabled(&customer.name, disabled).await.map_err(|e| store_error(&t, e))?;
    }
    ok(app.store.customer_by_id(customer.id).await.map_err(|e| store_error(&t, e))?)
}

async fn list_domains(State(app): State<App>, ctx: Ctx, method: Method) -> ApiResult {
    let who = manager(&ctx, &method)?;
    ok(app.store.domains(who.scope()).await.map_err(|e| store_error(&ctx.tr(), e))?)
}

#[derive(Deserialize)]
struct NewDomain {
    name: String,
}

async fn add_domain(State(app): State<App>, ctx: Ctx, method: Method, body: Bytes) -> ApiResult {
    let who = manager(&ctx, &method)?;
    let t = ctx.tr();
    let Who::Customer { id, .. } = who else {
        return Err(error(StatusCode::FORBIDDEN, "forbidden", t.s("error.admin_adds_domain")));
    };
    let new: NewDomain = parse_body(&t, &body)?;
    let name = DomainName::parse(&new.name)
        .map_err(|_| error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_domain", t.s("error.domain_name")))?;
    let domain = app.store.add_domain(*id, &name, false).await.map_err(|e| store_error(&t, e))?;
    created(domain_json(&app, &ctx, who.scope(), &domain).await?)
}

async fn domain_by_id(app: &App, ctx: &Ctx, scope: Scope, id: &str) -> Result<Domain, ApiError> {
    let t = ctx.tr();
    let id = parse_id(&t, id)?;
    let domains = app.store.domains(scope).await.map_err(|e| store_error(&t, e))?;
    domains.into_iter().find(|d| d.id == id).ok_or_else(|| not_found(&t))
}

async fn domain_json(app: &App, ctx: &Ctx, scope: Scope, domain: &Domain) -> Result<Value, ApiError> {
    let (name, value) = domain.ownership_record();
    let dns = crate::pages::dns_view(app, scope, domain, ctx.lang).await.map_err(|e| store_error(&ctx.tr(), e))?;
    Ok(json!({
        "domain": domain,
        "ownership_record": { "name": name, "type": "TXT", "value": value },
        "records": dns.records,
        "check": { "checked_at": dns.checked_at, "findings": dns.findings },
    }))
}

async fn get_domain(State(app): State<App>, ctx: Ctx, method: Method, Path(id): Path<String>) -> ApiResult {
    let who = manager(&ctx, &method)?;
    let domain = domain_by_id(&app, &ctx, who.scope(), &id).await?;
    ok(domain_json(&app, &ctx, who.scope(), &domain).await?)
}

#[derive(Deserialize)]
struct DomainChange {
    verified: bool,
}

async fn update_domain(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    admin(&ctx, &method)?;
    let t = ctx.tr();
    let change: DomainChange = parse_body(&t, &body)?;
    let domain = domain_by_id(&app, &ctx, Scope::Platform, &id).await?;
    app.store
        .set_domain_verified(Scope::Platform, &domain.name, change.verified)
        .await
        .map_err(|e| store_error(&t, e))?;
    let domain = domain_by_id(&app, &ctx, Scope::Platform, &id).await?;
    ok(domain_json(&app, &ctx, Scope::Platform, &domain).await?)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CascadeQuery {
    cascade: bool,
}

async fn remove_domain(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
    Query(q): Query<CascadeQuery>,
) -> ApiResult {
    let who = manager(&ctx, &method)?;
    let domain = domain_by_id(&app, &ctx, who.scope(), &id).await?;
    let removed =
        app.store.remove_domain(who.scope(), &domain.name, q.cascade).await.map_err(|e| store_error(&ctx.tr(), e))?;
    ok(removed)
}

async fn check_domain(State(app): State<App>, ctx: Ctx, method: Method, Path(id): Path<String>) -> ApiResult {
    let who = manager(&ctx, &method)?;
    let t = ctx.tr();
    let domain = domain_by_id(&app, &ctx, who.scope(), &id).await?;
    let Some(checker) = &app.settings.dns else {
        return Err(error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", t.s("error.unavailable")));
    };
    match postfach_dns::checks::refresh(checker, &app.store, who.scope(), &domain.name).await {
        Ok(_) => {
            let domain = domain_by_id(&app, &ctx, who.scope(), &id).await?;
            ok(domain_json(&app, &ctx, who.scope(), &domain).await?)
        }
        Err(postfach_dns::DnsError::Store(e)) => Err(store_error(&t, e)),
        Err(e) => {
            tracing::warn!(error = %e, domain = %domain.name, "DNS check failed");
            Err(error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", t.s("error.unavailable")))
        }
    }
}

#[derive(Deserialize)]
struct NewDomainAlias {
    name: String,
    target: String,
}

async fn add_domain_alias(State(app): State<App>, ctx: Ctx, method: Method, body: Bytes) -> ApiResult {
    let who = manager(&ctx, &method)?;
    let t = ctx.tr();
    if !matches!(who, Who::Customer { .. }) {
        return Err(error(StatusCode::FORBIDDEN, "forbidden", t.s("error.admin_adds_domain")));
    }
    let new: NewDomainAlias = parse_body(&t, &body)?;
    let (Ok(alias), Ok(target)) = (DomainName::parse(&new.name), DomainName::parse(&new.target)) else {
        return Err(error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_domain", t.s("error.domain_name")));
    };
    let domain =
        app.store.add_domain_alias(who.scope(), &alias, &target, false).await.map_err(|e| store_error(&t, e))?;
    created(domain_json(&app, &ctx, who.scope(), &domain).await?)
}

async fn list_mailboxes(State(app): State<App>, ctx: Ctx, method: Method) -> ApiResult {
    let who = manager(&ctx, &method)?;
    ok(app.store.mailboxes(who.scope(), None).await.map_err(|e| store_error(&ctx.tr(), e))?)
}

#[derive(Deserialize)]
struct NewMailbox {
    address: String,
    password: String,
    #[serde(default)]
    access: Option<String>,
    #[serde(default)]
    submission: Option<bool>,
    #[serde(default)]
    tls_required: Option<bool>,
}

fn access_mode(t: &Tr, value: Option<&str>) -> Result<Option<AccessMode>, ApiError> {
    value
        .map(str::parse)
        .transpose()
        .map_err(|_| error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_access", t.s("error.access")))
}

async fn create_mailbox(State(app): State<App>, ctx: Ctx, method: Method, body: Bytes) -> ApiResult {
    let who = manager(&ctx, &method)?;
    let t = ctx.tr();
    let new: NewMailbox = parse_body(&t, &body)?;
    let address = EmailAddress::parse(&new.address)
        .map_err(|_| error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_address", t.s("error.address")))?;
    let defaults = MailboxSettings::default();
    let settings = MailboxSettings {
        access: access_mode(&t, new.access.as_deref())?.unwrap_or(defaults.access),
        submission: new.submission.unwrap_or(defaults.submission),
        tls_required: new.tls_required.unwrap_or(defaults.tls_required),
    };
    let password = Secret::new(new.password);
    let mailbox = accounts::create_mailbox(&app.store, app.auth.hasher(), who.scope(), &address, &password, settings)
        .await
        .map_err(|e| account_error(&t, e, &password))?;
    created(mailbox)
}

/// The mailbox `id` if the caller may see it (a mailbox user only their own).
async fn visible_mailbox(app: &App, ctx: &Ctx, who: &Who, id: &str) -> Result<Mailbox, ApiError> {
    let t = ctx.tr();
    let id = parse_id(&t, id)?;
    if let Who::Mailbox { mailbox } = who
        && mailbox.id != id
    {
        return Err(not_found(&t));
    }
    app.store.mailbox_by_id(who.scope(), id).await.map_err(|e| store_error(&t, e))
}

async fn get_mailbox(State(app): State<App>, ctx: Ctx, method: Method, Path(id): Path<String>) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let mailbox = visible_mailbox(&app, &ctx, who, &id).await?;
    let aliases: Vec<Alias> =
        app.store.aliases_of(who.scope(), &mailbox.address).await.map_err(|e| store_error(&ctx.tr(), e))?;
    ok(json!({ "mailbox": mailbox, "aliases": aliases }))
}

#[derive(Deserialize)]
struct MailboxChange {
    #[serde(default)]
    access: Option<String>,
    #[serde(default)]
    submission: Option<bool>,
    #[serde(default)]
    tls_required: Option<bool>,
}

async fn update_mailbox(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let who = manager(&ctx, &method)?;
    let t = ctx.tr();
    let change: MailboxChange = parse_body(&t, &body)?;
    let mailbox = visible_mailbox(&app, &ctx, who, &id).await?;
    let change = SettingsChange {
        access: access_mode(&t, change.access.as_deref())?,
        submission: change.submission,
        tls_required: change.tls_required,
    };
    ok(app.store.set_mailbox_settings(who.scope(), &mailbox.address, change).await.map_err(|e| store_error(&t, e))?)
}

async fn remove_mailbox(State(app): State<App>, ctx: Ctx, method: Method, Path(id): Path<String>) -> ApiResult {
    let who = manager(&ctx, &method)?;
    let mailbox = visible_mailbox(&app, &ctx, who, &id).await?;
    let aliases =
        app.store.remove_mailbox(who.scope(), &mailbox.address).await.map_err(|e| store_error(&ctx.tr(), e))?;
    ok(json!({ "removed_aliases": aliases }))
}

#[derive(Deserialize)]
struct NewPassword {
    password: String,
    /// Required when mailbox users set their own password.
    #[serde(default)]
    current_password: Option<String>,
}

async fn set_mailbox_password(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let t = ctx.tr();
    let new: NewPassword = parse_body(&t, &body)?;
    let mailbox = visible_mailbox(&app, &ctx, who, &id).await?;
    let password = Secret::new(new.password);
    // Mailbox users change their own password: the current one is required.
    if matches!(who, Who::Mailbox { .. }) && new.current_password.is_none() {
        let text = t.s("error.current_password_missing");
        return Err(error(StatusCode::UNPROCESSABLE_ENTITY, "current_password_required", text));
    }
    ctx.set_mailbox_password(&app, who, &mailbox, new.current_password, &password)
        .await
        .map_err(|e| account_error(&t, e, &password))?;
    no_content()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FilterQuery {
    filter: Option<String>,
    limit: Option<i64>,
}

fn login_filter(t: &Tr, q: &FilterQuery, mailbox: Option<i64>) -> Result<LoginFilter, ApiError> {
    let (only_unencrypted, only_failed) = match q.filter.as_deref() {
        None | Some("") | Some("all") => (false, false),
        Some("unencrypted") => (true, false),
        Some("failed") => (false, true),
        Some(_) => return Err(error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_filter", t.s("error.filter"))),
    };
    Ok(LoginFilter { mailbox, only_unencrypted, only_failed, limit: q.limit.unwrap_or(100).clamp(1, 1000) })
}

async fn mailbox_logins(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
    Query(q): Query<FilterQuery>,
) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let t = ctx.tr();
    let mailbox = visible_mailbox(&app, &ctx, who, &id).await?;
    let filter = login_filter(&t, &q, Some(mailbox.id))?;
    ok(app.store.logins(who.scope(), filter).await.map_err(|e| store_error(&t, e))?)
}

async fn list_logins(State(app): State<App>, ctx: Ctx, method: Method, Query(q): Query<FilterQuery>) -> ApiResult {
    let who = manager(&ctx, &method)?;
    let t = ctx.tr();
    let filter = login_filter(&t, &q, None)?;
    ok(app.store.logins(who.scope(), filter).await.map_err(|e| store_error(&t, e))?)
}

async fn list_aliases(State(app): State<App>, ctx: Ctx, method: Method) -> ApiResult {
    let who = manager(&ctx, &method)?;
    ok(app.store.aliases(who.scope(), None).await.map_err(|e| store_error(&ctx.tr(), e))?)
}

#[derive(Deserialize)]
struct NewAlias {
    address: String,
    mailbox: String,
}

async fn add_alias(State(app): State<App>, ctx: Ctx, method: Method, body: Bytes) -> ApiResult {
    let who = manager(&ctx, &method)?;
    let t = ctx.tr();
    let new: NewAlias = parse_body(&t, &body)?;
    let (Ok(address), Ok(mailbox)) = (EmailAddress::parse(&new.address), EmailAddress::parse(&new.mailbox)) else {
        return Err(error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_address", t.s("error.address")));
    };
    created(app.store.add_alias(who.scope(), &address, &mailbox).await.map_err(|e| store_error(&t, e))?)
}

async fn remove_alias(State(app): State<App>, ctx: Ctx, method: Method, Path(id): Path<String>) -> ApiResult {
    let who = manager(&ctx, &method)?;
    let t = ctx.tr();
    let id = parse_id(&t, &id)?;
    let aliases = app.store.aliases(who.scope(), None).await.map_err(|e| store_error(&t, e))?;
    let alias = aliases.into_iter().find(|a| a.id == id).ok_or_else(|| not_found(&t))?;
    app.store.remove_alias(who.scope(), &alias.address).await.map_err(|e| store_error(&t, e))?;
    no_content()
}

async fn list_tokens(State(app): State<App>, ctx: Ctx, method: Method) -> ApiResult {
    let who = manager(&ctx, &method)?;
    let id = who.account_id().ok_or_else(|| not_found(&ctx.tr()))?;
    ok(app.store.api_tokens(Scope::Customer(id)).await.map_err(|e| store_error(&ctx.tr(), e))?)
}

#[derive(Deserialize)]
struct NewToken {
    name: String,
}

async fn create_token(State(app): State<App>, ctx: Ctx, method: Method, body: Bytes) -> ApiResult {
    let who = manager(&ctx, &method)?;
    let t = ctx.tr();
    let id = who.account_id().ok_or_else(|| not_found(&t))?;
    let new: NewToken = parse_body(&t, &body)?;
    let token = new_api_token();
    let stored = app.store.create_api_token(id, &new.name, &token_hash(token.expose())).await.map_err(|e| match e {
        StoreError::Conflict(_) => error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_name", t.s("error.token_name")),
        e => store_error(&t, e),
    })?;
    created(json!({ "token": token.expose(), "id": stored.id, "name": stored.name, "created_at": stored.created_at }))
}

async fn revoke_token(State(app): State<App>, ctx: Ctx, method: Method, Path(id): Path<String>) -> ApiResult {
    let who = manager(&ctx, &method)?;
    let t = ctx.tr();
    let account = who.account_id().ok_or_else(|| not_found(&t))?;
    app.store.revoke_api_token(Scope::Customer(account), parse_id(&t, &id)?).await.map_err(|e| store_error(&t, e))?;
    no_content()
}
