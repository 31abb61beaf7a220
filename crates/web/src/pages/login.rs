//! Signing in (password, then the TOTP code when two-factor sign-in is on), signing out
//! and the language switch. Passwords and codes are checked only by the authentication
//! gate.

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use postfach_auth::tokens::{random_hex, same_token, token_hash};
use postfach_auth::{Attempt, AuthError, Principal};
use postfach_policy::{PublicRefusal, Refusal};
use postfach_types::{Mechanism, Secret, Service};
use serde::Deserialize;

use super::{CsrfForm, Layout, PageResult, percent_decode};
use crate::App;
use crate::context::{Ctx, LANG_COOKIE, LIFETIME, LOGIN_COOKIE, SESSION_COOKIE, Who, cookie, render};
use crate::i18n::Lang;

pub(super) async fn home(ctx: Ctx) -> Response {
    match &ctx.who {
        None => Redirect::to("/login").into_response(),
        Some(Who::Admin { .. } | Who::Operator) => Redirect::to("/admin/customers").into_response(),
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
pub(super) struct LoginForm {
    login: String,
    password: String,
    login_token: String,
}

pub(super) async fn login_form(ctx: Ctx) -> Response {
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

pub(super) async fn login(State(app): State<App>, ctx: Ctx, Form(form): Form<LoginForm>) -> Response {
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
                // An app password is a device's; the panel takes the mailbox's own password.
                PublicRefusal::Failed { .. }
                | PublicRefusal::ServiceNotAllowed
                | PublicRefusal::Malformed
                | PublicRefusal::AppPasswordRequired
                | PublicRefusal::NotForThisAppPassword => "login.bad",
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
pub(super) struct CodeForm {
    csrf: String,
    code: String,
}

pub(super) async fn code_form(ctx: Ctx) -> Response {
    match &ctx.session {
        Some(s) if s.second_factor_pending => render(&CodePage { l: Layout::new(&ctx, "login", None) }),
        _ => Redirect::to("/").into_response(),
    }
}

pub(super) async fn code(State(app): State<App>, ctx: Ctx, Form(form): Form<CodeForm>) -> PageResult {
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

pub(super) async fn logout(State(app): State<App>, ctx: Ctx, Form(form): Form<CsrfForm>) -> PageResult {
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
pub(super) struct BackQuery {
    back: String,
}

pub(super) async fn switch_language(Path(code): Path<String>, Query(q): Query<BackQuery>) -> Response {
    let Some(lang) = Lang::from_code(&code) else { return StatusCode::NOT_FOUND.into_response() };
    let back = percent_decode(&q.back);
    // Only paths of this site: no open redirect.
    let back = if back.starts_with('/') && !back.starts_with("//") && !back.contains('\\') { back } else { "/".into() };
    let mut response = Redirect::to(&back).into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie(LANG_COOKIE, lang.code(), Some(365 * 86_400)));
    response
}
