//! The signed-in account's own settings: password, two-factor sign-in, API tokens, and
//! (customers) the contact address for copies of warning mails.

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect};
use postfach_admin::{AdminError, OwnPasswordChange, TotpStatus, Who, input};
use postfach_store::sessions::ApiToken;
use postfach_types::{CustomerId, Secret};
use serde::Deserialize;

use super::customers::PasswordForm;
use super::{CsrfForm, Layout, PageResult, done, parse_id};
use crate::App;
use crate::context::{Ctx, render};

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
    /// The contact address for warning mails as the form shows it (`None`: not a
    /// customer's account).
    contact: Option<String>,
    /// The customer's "always require TLS to other servers" (`None`: not a customer's
    /// account).
    require_tls: Option<bool>,
}

pub(super) async fn account(State(app): State<App>, ctx: Ctx) -> PageResult {
    account_page(&app, &ctx, None, None).await
}

async fn account_page(app: &App, ctx: &Ctx, error: Option<String>, new_token: Option<String>) -> PageResult {
    let who = ctx.signed_in()?;
    let fail = |e| ctx.refused(e);
    let issuer = format!("Postfach {}", app.settings.hostname);
    let status = app.admin.totp_status(who, &issuer).await.map_err(fail)?;
    let tokens = app.admin.tokens(who).await.map_err(fail)?;
    let (totp_enabled, totp_setup) = match status {
        TotpStatus::Off => (false, None),
        TotpStatus::Pending { secret, uri } => (false, Some((secret, uri))),
        TotpStatus::On => (true, None),
    };
    let (contact, require_tls) = match own_customer(who) {
        Some(id) => (
            Some(app.admin.customer_contact(who, id).await.map_err(fail)?.map(|a| a.to_string()).unwrap_or_default()),
            Some(app.admin.customer_outbound_tls(who, id).await.map_err(fail)?),
        ),
        None => (None, None),
    };
    Ok(render(&AccountPage {
        l: Layout::new(ctx, "account", error),
        name: who.display_name(),
        totp_enabled,
        totp_setup,
        tokens,
        new_token,
        contact,
        require_tls,
    }))
}

/// The customer account a caller signed in as, if any.
fn own_customer(who: &Who) -> Option<CustomerId> {
    match who {
        Who::Customer { id, .. } | Who::Admin { id, .. } => Some(*id),
        _ => None,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ContactForm {
    csrf: String,
    contact: String,
}

/// Sets the account's contact address for warning mails (empty: none).
pub(super) async fn account_contact(State(app): State<App>, ctx: Ctx, Form(form): Form<ContactForm>) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let Some(id) = own_customer(who) else { return Err(ctx.refused(AdminError::Forbidden)) };
    let changed = match input::contact(&form.contact) {
        Ok(contact) => app.admin.set_customer_contact(who, id, contact.as_ref()).await.map(|_| ()),
        Err(e) => Err(e),
    };
    match changed {
        Ok(()) => Ok(done("/account", "settings_saved")),
        Err(e) => refused(&app, &ctx, e).await,
    }
}

/// Switches the account's own "always require TLS to other servers", for all its
/// mailboxes (the form the admin's customer list has for every customer).
pub(super) async fn account_outbound_tls(
    State(app): State<App>,
    ctx: Ctx,
    Form(form): Form<super::customers::OutboundTlsForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let Some(id) = own_customer(who) else { return Err(ctx.refused(AdminError::Forbidden)) };
    match app.admin.set_customer_outbound_tls(who, id, form.require_tls == "on").await {
        Ok(()) => Ok(done("/account", "settings_saved")),
        Err(e) => refused(&app, &ctx, e).await,
    }
}

/// Shows a refusal on the account page, or ends the request with its own page.
async fn refused(app: &App, ctx: &Ctx, e: AdminError) -> PageResult {
    let message = ctx.form_refusal(e)?;
    account_page(app, ctx, Some(message), None).await
}

pub(super) async fn account_password(State(app): State<App>, ctx: Ctx, Form(form): Form<PasswordForm>) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
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
    // Mailbox users change their password on their mailbox page.
    if who.account_id().is_none() {
        return Err(ctx.not_found());
    }
    match app.admin.change_own_password(who, change).await {
        Ok(()) => Ok(done("/account", "password_changed")),
        Err(e) => refused(&app, &ctx, e).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct TotpForm {
    csrf: String,
    action: String,
    code: String,
}

pub(super) async fn account_totp(State(app): State<App>, ctx: Ctx, Form(form): Form<TotpForm>) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let connection = ctx.auth_connection();
    let (result, key) = match form.action.as_str() {
        "start" => (app.admin.start_totp(who).await, None),
        "confirm" => (app.admin.confirm_totp(who, &form.code, &connection).await, Some("totp_on")),
        "off" => (app.admin.disable_totp(who, &form.code, &connection).await, Some("totp_off")),
        _ => return Err(ctx.not_found()),
    };
    match (result, key) {
        (Ok(()), None) => Ok(Redirect::to("/account#totp").into_response()),
        (Ok(()), Some(key)) => Ok(done("/account", key)),
        (Err(e), _) => refused(&app, &ctx, e).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct TokenForm {
    csrf: String,
    name: String,
}

pub(super) async fn create_token(State(app): State<App>, ctx: Ctx, Form(form): Form<TokenForm>) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    match app.admin.create_token(who, &form.name).await {
        Ok((_, token)) => account_page(&app, &ctx, None, Some(token.expose().clone())).await,
        Err(e) => refused(&app, &ctx, e).await,
    }
}

pub(super) async fn revoke_token(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    app.admin.revoke_token(who, parse_id(&ctx, &id)?).await.map_err(|e| ctx.refused(e))?;
    Ok(done("/account", "token_revoked"))
}
