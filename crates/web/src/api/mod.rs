//! The JSON API under `/api/v1`: everything the panel does, for scripts.
//!
//! Callers authenticate with a bearer token (`Authorization: Bearer pfapi_…`, created and
//! revoked on the account page or through `/tokens`) or with the panel's session cookie;
//! cookie-authenticated calls that change something must repeat the session's CSRF token
//! in `X-CSRF-Token`. Handlers (`handlers.rs`) are adapters over `postfach-admin`; request
//! and response bodies are this crate's own types (`types.rs`). Errors are JSON
//! `{"code": …, "message": …}`: the code from the refusal's `AdminError` variant
//! ([`status_and_code`]), the message the panel's text for it in the caller's language.
//! The routes are built from [`OPERATIONS`], the same table the OpenAPI document at
//! `/api/v1/openapi.json` is generated from, so the two cannot drift.

mod filters;
mod handlers;
pub mod types;

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use postfach_admin::{AdminError, Conflict};
use postfach_auth::tokens::same_token;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::App;
use crate::context::{Ctx, Proof, Who};
use crate::i18n::{Tr, admin_message, localized_verdict};
use handlers::*;

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
    op!(
        "updateDomain",
        "PATCH",
        "/domains/{id}",
        "customer",
        Some("DomainChange"),
        "Switch certificates for the domain's mail, autoconfig and autodiscover names; admins: mark it verified or not"
    ),
    op!(
        "checkDomain",
        "POST",
        "/domains/{id}/check",
        "customer",
        None,
        "Check the domain's published DNS records now; answers the domain with the new report"
    ),
    op!(
        "getDomainTlsReports",
        "GET",
        "/domains/{id}/tls-reports",
        "customer",
        None,
        "The TLS reports (RFC 8460) other servers sent about the domain: the newest reports and their failures by organisation and reason"
    ),
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
        "Change access mode, TLS-only and submission switches, limits, language, app-passwords-only"
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
    op!(
        "listAppPasswords",
        "GET",
        "/mailboxes/{id}/app-passwords",
        "signed-in",
        None,
        "A mailbox's app passwords with their last use (never the passwords)"
    ),
    op!(
        "listDevices",
        "GET",
        "/mailboxes/{id}/devices",
        "signed-in",
        None,
        "A mailbox's clients of the last 90 days, by credential (main or app password) and service"
    ),
    op!(
        "listSentMail",
        "GET",
        "/mailboxes/{id}/sent",
        "signed-in",
        None,
        "A mailbox's sent mail whose delivery ended, newest first (100): recipient, result, receiving server, encryption"
    ),
    op!(
        "listImports",
        "GET",
        "/mailboxes/{id}/imports",
        "signed-in",
        None,
        "A mailbox's import jobs from another IMAP server, newest first: state, counts, result"
    ),
    op!(
        "startImport",
        "POST",
        "/mailboxes/{id}/imports",
        "signed-in",
        Some("NewImport"),
        "Start moving in from another IMAP server as a background job (202; the password is kept only while it runs)"
    ),
    op!(
        "createAppPassword",
        "POST",
        "/mailboxes/{id}/app-passwords",
        "signed-in",
        Some("NewAppPassword"),
        "Make an app password for a device; the password is shown only in this answer"
    ),
    op!(
        "revokeAppPassword",
        "DELETE",
        "/mailboxes/{id}/app-passwords/{app_password_id}",
        "signed-in",
        None,
        "Revoke an app password at once (connections using it end at their next command)"
    ),
    op!(
        "getFilters",
        "GET",
        "/mailboxes/{id}/filters",
        "signed-in",
        None,
        "A mailbox's vacation and filter forms, and which script is active (none, the forms', or a hand-written one)"
    ),
    op!(
        "putVacation",
        "PUT",
        "/mailboxes/{id}/vacation",
        "signed-in",
        Some("Vacation"),
        "Save the vacation reply (written with the filters as one Sieve script; ?replace=true replaces a hand-written active script)"
    ),
    op!(
        "putFilters",
        "PUT",
        "/mailboxes/{id}/filters",
        "signed-in",
        Some("Filters"),
        "Save the filter rules in order (written with the vacation as one Sieve script; ?replace=true replaces a hand-written active script)"
    ),
    op!("getSieveScript", "GET", "/mailboxes/{id}/sieve", "signed-in", None, "The active Sieve script's name and text"),
    op!(
        "putSieveScript",
        "PUT",
        "/mailboxes/{id}/sieve",
        "signed-in",
        Some("SieveScript"),
        "Replace the active Sieve script's text (the forms' name when none is active); checked first, errors name line and column"
    ),
    op!(
        "listSieveScripts",
        "GET",
        "/mailboxes/{id}/sieve/scripts",
        "signed-in",
        None,
        "A mailbox's Sieve scripts: name, active, size, last change (not their text)"
    ),
    op!(
        "activateSieveScript",
        "PUT",
        "/mailboxes/{id}/sieve/active",
        "signed-in",
        Some("ActiveSieveScript"),
        "Make a stored script the active one (null: no script filters the mail)"
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
        "getDomainTlsReports" => routes.on(f, get_domain_tls_reports),
        "addDomainAlias" => routes.on(f, add_domain_alias),
        "listMailboxes" => routes.on(f, list_mailboxes),
        "createMailbox" => routes.on(f, create_mailbox),
        "getMailbox" => routes.on(f, get_mailbox),
        "updateMailbox" => routes.on(f, update_mailbox),
        "removeMailbox" => routes.on(f, remove_mailbox),
        "setMailboxPassword" => routes.on(f, set_mailbox_password),
        "listMailboxLogins" => routes.on(f, mailbox_logins),
        "listAppPasswords" => routes.on(f, list_app_passwords),
        "listDevices" => routes.on(f, list_devices),
        "listSentMail" => routes.on(f, list_sent_mail),
        "listImports" => routes.on(f, list_imports),
        "startImport" => routes.on(f, start_import),
        "createAppPassword" => routes.on(f, create_app_password),
        "revokeAppPassword" => routes.on(f, revoke_app_password),
        "getFilters" => routes.on(f, filters::get_filters),
        "putVacation" => routes.on(f, filters::put_vacation),
        "putFilters" => routes.on(f, filters::put_filters),
        "getSieveScript" => routes.on(f, filters::get_script),
        "putSieveScript" => routes.on(f, filters::put_script),
        "listSieveScripts" => routes.on(f, filters::list_scripts),
        "activateSieveScript" => routes.on(f, filters::activate_script),
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

/// The HTTP status and stable code of a refusal; the message is the panel's text for the
/// same refusal (`i18n::admin_message`).
pub fn status_and_code(e: &AdminError) -> (StatusCode, &'static str) {
    use StatusCode as S;
    match e {
        AdminError::Forbidden | AdminError::AdminAddsDomain => (S::FORBIDDEN, "forbidden"),
        AdminError::NotFound(_) => (S::NOT_FOUND, "not_found"),
        AdminError::InvalidCustomerName
        | AdminError::TokenNameMissing
        | AdminError::TokenNameTooLong
        | AdminError::InvalidAppPasswordName
        | AdminError::InvalidSieveScriptName => (S::UNPROCESSABLE_ENTITY, "invalid_name"),
        AdminError::SieveScriptInvalid(_) => (S::UNPROCESSABLE_ENTITY, "invalid_script"),
        AdminError::SieveScriptTooBig { .. } => (S::PAYLOAD_TOO_LARGE, "script_too_big"),
        AdminError::InvalidAppPasswordServices | AdminError::ServiceNotForMailbox(_) => {
            (S::UNPROCESSABLE_ENTITY, "invalid_services")
        }
        AdminError::InvalidRole => (S::UNPROCESSABLE_ENTITY, "invalid_role"),
        AdminError::SieveForm(_) => (S::UNPROCESSABLE_ENTITY, "invalid_form"),
        AdminError::HandWrittenScript { .. } => (S::CONFLICT, "hand_written_script"),
        AdminError::InvalidDomainName => (S::UNPROCESSABLE_ENTITY, "invalid_domain"),
        AdminError::InvalidAddress => (S::UNPROCESSABLE_ENTITY, "invalid_address"),
        AdminError::InvalidAccessMode => (S::UNPROCESSABLE_ENTITY, "invalid_access"),
        AdminError::InvalidFilter => (S::UNPROCESSABLE_ENTITY, "invalid_filter"),
        AdminError::InvalidSize => (S::UNPROCESSABLE_ENTITY, "invalid_size"),
        AdminError::InvalidMessageCount => (S::UNPROCESSABLE_ENTITY, "invalid_message_count"),
        AdminError::InvalidLanguage => (S::UNPROCESSABLE_ENTITY, "invalid_language"),
        AdminError::InvalidMtaStsMode => (S::UNPROCESSABLE_ENTITY, "invalid_mta_sts_mode"),
        AdminError::InvalidWarningSwitch => (S::UNPROCESSABLE_ENTITY, "invalid_warning_switch"),
        AdminError::InvalidSpamThreshold => (S::UNPROCESSABLE_ENTITY, "invalid_spam_threshold"),
        AdminError::SpamThresholdsReversed => (S::UNPROCESSABLE_ENTITY, "spam_thresholds_reversed"),
        AdminError::WeakPassword { .. } => (S::UNPROCESSABLE_ENTITY, "weak_password"),
        AdminError::CurrentPasswordMissing => (S::UNPROCESSABLE_ENTITY, "current_password_required"),
        AdminError::CurrentPasswordWrong => (S::FORBIDDEN, "current_password_wrong"),
        AdminError::CodeWrong => (S::FORBIDDEN, "code_wrong"),
        AdminError::Throttled => (S::TOO_MANY_REQUESTS, "throttled"),
        AdminError::Disabled => (S::FORBIDDEN, "disabled"),
        AdminError::TlsRequired => (S::FORBIDDEN, "tls_required"),
        AdminError::DisableSelf
        | AdminError::ResetOwnPassword
        | AdminError::NotAnAliasDomain(_)
        | AdminError::Conflict(_) => (S::CONFLICT, "conflict"),
        AdminError::InvalidImportServer => (S::UNPROCESSABLE_ENTITY, "invalid_server"),
        AdminError::InvalidImportLogin => (S::UNPROCESSABLE_ENTITY, "invalid_login"),
        AdminError::InvalidImportPassword => (S::UNPROCESSABLE_ENTITY, "invalid_password"),
        AdminError::ImportServerUnknown { .. } => (S::UNPROCESSABLE_ENTITY, "unknown_server"),
        AdminError::ImportServerNotPublic { .. } => (S::UNPROCESSABLE_ENTITY, "server_not_public"),
        AdminError::ImportsBusy => (S::SERVICE_UNAVAILABLE, "imports_busy"),
        AdminError::DnsChecksOff | AdminError::Unavailable(_) => (S::SERVICE_UNAVAILABLE, "unavailable"),
    }
}

/// A refused operation as the API answers it.
fn refused(t: &Tr, e: AdminError) -> ApiError {
    if let AdminError::Unavailable(cause) = &e {
        tracing::error!(error = %cause, "an API operation failed");
    }
    let (status, code) = status_and_code(&e);
    let details = match &e {
        AdminError::WeakPassword { verdict, chars } => Some(localized_verdict(t, verdict, *chars)),
        AdminError::Conflict(Conflict::DomainNotEmpty { contents, .. }) => {
            Some(json!(types::RemovedView::from(contents.clone())))
        }
        _ => None,
    };
    ApiError { status, code, message: admin_message(t, &e), details }
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

async fn no_such_operation(ctx: Ctx) -> ApiError {
    error(StatusCode::NOT_FOUND, "no_such_operation", ctx.tr().s("error.no_operation"))
}

async fn method_not_allowed(ctx: Ctx) -> ApiError {
    error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", ctx.tr().s("error.no_operation"))
}
