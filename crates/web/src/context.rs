//! Who is asking, in which language, over which connection: the request context every
//! page and API handler starts from.
//!
//! Sessions live in a cookie `__Host-postfach-session` that is `Secure`, `HttpOnly` and
//! `SameSite=Strict` (the `__Host-` prefix also forbids a `Domain` attribute, so no
//! sibling host can set or read it). The cookie holds a random token; the store keeps its
//! hash. Each session has a CSRF token that every state-changing form repeats in a hidden
//! field and every cookie-authenticated API call in the `X-CSRF-Token` header.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use postfach_admin::{AdminError, MailboxPassword};
use postfach_store::StoreError;
use postfach_store::sessions::{PanelSession, SessionLifetime};

use crate::i18n::{Lang, Tr};
use crate::{App, ClientConnection};
use postfach_auth::tokens::{same_token, token_hash};
use postfach_auth::{AuthError, Connection, Holder, Principal, SignedIn};
use postfach_types::Secret;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "__Host-postfach-session";
/// Double-submit cookie that protects the sign-in form itself against login CSRF.
pub const LOGIN_COOKIE: &str = "__Host-postfach-login";
/// The language chosen with the switch.
pub const LANG_COOKIE: &str = "__Host-postfach-lang";

/// Sessions end after 30 minutes without a request, and 12 hours after sign-in.
pub const LIFETIME: SessionLifetime = SessionLifetime { idle_secs: 30 * 60, max_secs: 12 * 3600 };

pub use postfach_admin::Who;

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    Cookie,
    Bearer,
}

/// The request context.
#[derive(Debug)]
pub struct Ctx {
    pub lang: Lang,
    pub conn: ClientConnection,
    pub cookies: HashMap<String, String>,
    /// The live session, also while its second factor is pending.
    pub session: Option<PanelSession>,
    /// Set when fully signed in (by cookie or bearer token).
    pub who: Option<Who>,
    pub proof: Option<Proof>,
    /// A bearer token was refused because this address made too many failed attempts.
    pub token_throttled: bool,
    /// Path and query of this request, for the language switch and sign-in redirects.
    pub path: String,
    pub headers: HeaderMap,
}

impl FromRequestParts<App> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let conn = parts.extensions.get::<ClientConnection>().cloned().ok_or_else(|| {
            tracing::error!("request without connection facts");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        })?;
        let cookies = parse_cookies(&parts.headers);
        let lang = cookies
            .get(LANG_COOKIE)
            .and_then(|v| Lang::from_code(v))
            .unwrap_or_else(|| Lang::negotiate(parts.headers.get(header::ACCEPT_LANGUAGE)));
        let path = parts.uri.path_and_query().map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
        let mut ctx = Ctx {
            lang,
            conn,
            cookies,
            session: None,
            who: None,
            proof: None,
            token_throttled: false,
            path,
            headers: parts.headers.clone(),
        };
        let fail = |e: StoreError| {
            tracing::error!(error = %e, "looking up the session failed");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        };
        if let Some(token) = bearer(&parts.headers) {
            // API tokens belong to customer and admin accounts; the gate throttles wrong
            // tokens per address and records their use in the login log.
            let connection = ctx.auth_connection();
            match app.auth.authenticate_token(&Secret::new(token), &connection).await {
                Ok(Principal::Account { customer_id, name, role }) => {
                    ctx.who = Some(Who::account(customer_id, name, role));
                    ctx.proof = Some(Proof::Bearer);
                }
                Ok(Principal::Mailbox { .. }) => {}
                Err(AuthError::Refused(postfach_policy::Refusal::Throttled)) => {
                    ctx.token_throttled = true;
                }
                Err(AuthError::Refused(_)) => {}
                Err(AuthError::Unavailable(e)) => return Err(fail(e)),
                Err(e) => {
                    tracing::error!(error = %e, "checking an API token failed");
                    return Err(StatusCode::SERVICE_UNAVAILABLE.into_response());
                }
            }
            return Ok(ctx);
        }
        let Some(token) = ctx.cookies.get(SESSION_COOKIE) else { return Ok(ctx) };
        let signed_in = app.auth.panel_session(&token_hash(token), LIFETIME).await.map_err(|e| {
            tracing::error!(error = %e, "looking up the session failed");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        })?;
        let Some(SignedIn { session, holder }) = signed_in else { return Ok(ctx) };
        if !session.second_factor_pending {
            ctx.who = Some(match holder {
                Holder::Mailbox(mailbox) => Who::Mailbox { mailbox },
                Holder::Account(account) => Who::from_account(account),
            });
            ctx.proof = Some(Proof::Cookie);
        }
        ctx.session = Some(session);
        Ok(ctx)
    }
}

// The error of these checks is the finished response that ends the request (a redirect or
// an error page); it is returned once per request, so boxing it would gain nothing.
#[allow(clippy::result_large_err)]
impl Ctx {
    /// This request's connection, as the authentication gate records it.
    pub fn auth_connection(&self) -> Connection {
        Connection { remote_ip: self.conn.remote_ip, tls: self.conn.tls.clone() }
    }

    /// A new mailbox password from a form or request body, as this request asks for it.
    /// An empty current password is a missing one.
    pub fn mailbox_password(&self, new: String, current: Option<String>) -> MailboxPassword {
        MailboxPassword {
            new: Secret::new(new),
            current: current.filter(|c| !c.is_empty()).map(Secret::new),
            session: self.session.as_ref().map(|s| s.id),
            connection: self.auth_connection(),
        }
    }

    pub fn tr(&self) -> Tr {
        Tr::new(self.lang)
    }

    /// The signed-in user, or a redirect to the sign-in page.
    pub fn signed_in(&self) -> Result<&Who, Response> {
        self.who.as_ref().ok_or_else(|| Redirect::to("/login").into_response())
    }

    pub fn csrf_token(&self) -> &str {
        self.session.as_ref().map_or("", |s| s.csrf_token.as_str())
    }

    /// Checks a form's CSRF token against the session's.
    pub fn check_csrf(&self, token: &str) -> Result<(), Response> {
        match &self.session {
            Some(session) if same_token(&session.csrf_token, token) => Ok(()),
            _ => Err(self.error_page(StatusCode::FORBIDDEN, "error.csrf")),
        }
    }

    pub fn not_found(&self) -> Response {
        self.error_page(StatusCode::NOT_FOUND, "error.not_found")
    }

    /// A store failure as a page: not found (or not visible in scope) is a 404, the rest
    /// is logged and shown as a temporary problem.
    pub fn store_failure(&self, e: StoreError) -> Response {
        match e {
            StoreError::NotFound(_) => self.not_found(),
            e => {
                tracing::error!(error = %e, "store call failed");
                self.error_page(StatusCode::SERVICE_UNAVAILABLE, "error.unavailable")
            }
        }
    }

    pub fn error_page(&self, status: StatusCode, key: &'static str) -> Response {
        self.error_text(status, self.tr().s(key).to_string())
    }

    fn error_text(&self, status: StatusCode, message: String) -> Response {
        let page = crate::pages::ErrorPage { l: crate::pages::Layout::new(self, "", None), message };
        (status, render(&page)).into_response()
    }

    /// A refused operation as its own page, with the API's status and the same text as
    /// the API's message. Unavailable is logged here.
    pub fn refused(&self, e: AdminError) -> Response {
        if let AdminError::Unavailable(cause) = &e {
            tracing::error!(error = %cause, "a panel operation failed");
        }
        let (status, _) = crate::api::status_and_code(&e);
        // The panel hides what a role may not reach, as if it did not exist.
        let status = if status == StatusCode::FORBIDDEN && matches!(e, AdminError::Forbidden) {
            StatusCode::NOT_FOUND
        } else {
            status
        };
        let message = match e {
            AdminError::Forbidden => self.tr().s("error.not_found").to_string(),
            e => crate::i18n::admin_message(&self.tr(), &e),
        };
        self.error_text(status, message)
    }

    /// A refusal that the form's page shows above the form (`Ok(text)`), or one that ends
    /// the request with its own page (`Err`): not found, forbidden, unavailable.
    pub fn form_refusal(&self, e: AdminError) -> Result<String, Response> {
        match e {
            AdminError::Forbidden | AdminError::NotFound(_) | AdminError::Unavailable(_) | AdminError::DnsChecksOff => {
                Err(self.refused(e))
            }
            e => Ok(crate::i18n::admin_message(&self.tr(), &e)),
        }
    }
}

/// Renders a template into an HTML response.
pub fn render(template: &impl askama::Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a page failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn parse_cookies(headers: &HeaderMap) -> HashMap<String, String> {
    let mut cookies = HashMap::new();
    for value in headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=') {
                cookies.entry(name.trim().to_string()).or_insert_with(|| value.trim().to_string());
            }
        }
    }
    cookies
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
}

/// A `Set-Cookie` value for a cookie only this site's pages send back. `max_age: None`
/// makes a browser-session cookie; `Some(0)` deletes it.
pub fn cookie(name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let age = max_age.map(|s| format!("; Max-Age={s}")).unwrap_or_default();
    let text = format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict{age}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=1; Max-Age=0"))
}
