//! The admin's pages: customers (create, disable or enable, reset a password) and the
//! verification switch of every domain.

use askama::Template;
use axum::extract::{Form, Path, State};
use postfach_admin::{CustomerChange, input};
use postfach_store::customers::Customer;
use postfach_types::{CustomerId, Role, Secret};
use serde::Deserialize;

use super::{Layout, PageResult, done, parse_id};
use crate::App;
use crate::context::{Ctx, render};

#[derive(Template)]
#[template(path = "admin_customers.html")]
struct CustomersPage {
    l: Layout,
    customers: Vec<Customer>,
    name: String,
    /// The signed-in account, whose own row has no disable button.
    me: Option<CustomerId>,
}

impl CustomersPage {
    fn is_me(&self, customer: &Customer) -> bool {
        self.me == Some(customer.id)
    }
}

pub(super) async fn admin_customers(State(app): State<App>, ctx: Ctx) -> PageResult {
    customers_page(&app, &ctx, None, String::new()).await
}

async fn customers_page(app: &App, ctx: &Ctx, error: Option<String>, name: String) -> PageResult {
    let who = ctx.signed_in()?;
    let customers = app.admin.customers(who).await.map_err(|e| ctx.refused(e))?;
    let page = CustomersPage { l: Layout::new(ctx, "customers", error), customers, name, me: who.account_id() };
    Ok(render(&page))
}

/// Shows a refusal above the customers form, or ends the request with its own page.
async fn refused(app: &App, ctx: &Ctx, e: postfach_admin::AdminError, name: String) -> PageResult {
    let message = ctx.form_refusal(e)?;
    customers_page(app, ctx, Some(message), name).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct NewCustomerForm {
    csrf: String,
    name: String,
    password: String,
    role: String,
}

pub(super) async fn admin_create_customer(
    State(app): State<App>,
    ctx: Ctx,
    Form(form): Form<NewCustomerForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let name = match input::customer_name(&form.name) {
        Ok(name) => name,
        Err(e) => return refused(&app, &ctx, e, form.name).await,
    };
    let role = match input::role(Some(form.role.as_str()).filter(|r| !r.is_empty())) {
        Ok(role) => role,
        Err(e) => return refused(&app, &ctx, e, form.name).await,
    };
    let password = Secret::new(form.password);
    match app.admin.create_customer(who, &name, &password, role).await {
        Ok(_) => Ok(done("/admin/customers", "customer_created")),
        Err(e) => refused(&app, &ctx, e, form.name).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct FlagForm {
    csrf: String,
    value: String,
}

pub(super) async fn admin_set_disabled(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<FlagForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let id = parse_id(&ctx, &id)?;
    let disable = form.value == "1";
    let change = CustomerChange { disabled: Some(disable), password: None };
    match app.admin.update_customer(who, id, change).await {
        Ok(_) => Ok(done("/admin/customers", if disable { "customer_disabled" } else { "customer_enabled" })),
        Err(e) => refused(&app, &ctx, e, String::new()).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct QuotaForm {
    csrf: String,
    quota: String,
}

/// A customer's total storage limit (admins only, like every page here).
pub(super) async fn admin_set_quota(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<QuotaForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let id = parse_id(&ctx, &id)?;
    let changed = match input::size(&form.quota) {
        Ok(quota) => app.admin.set_customer_quota(who, id, quota).await.map(|_| ()),
        Err(e) => Err(e),
    };
    match changed {
        Ok(()) => Ok(done("/admin/customers", "settings_saved")),
        Err(e) => refused(&app, &ctx, e, String::new()).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct SpamForm {
    csrf: String,
    reject: String,
    junk: String,
}

/// A customer's spam thresholds (`docs/spam.md`).
pub(super) async fn admin_set_spam(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<SpamForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let id = parse_id(&ctx, &id)?;
    let changed = match (input::spam_threshold(&form.reject), input::spam_threshold(&form.junk)) {
        (Ok(reject), Ok(junk)) => app.admin.set_customer_spam(who, id, Some(reject), Some(junk)).await.map(|_| ()),
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match changed {
        Ok(()) => Ok(done("/admin/customers", "settings_saved")),
        Err(e) => refused(&app, &ctx, e, String::new()).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct OutboundTlsForm {
    pub(super) csrf: String,
    /// `on` when the checkbox is ticked; absent otherwise.
    pub(super) require_tls: String,
}

/// A customer's "always require TLS to other servers", for all its mailboxes.
pub(super) async fn admin_set_outbound_tls(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<OutboundTlsForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let id = parse_id(&ctx, &id)?;
    match app.admin.set_customer_outbound_tls(who, id, form.require_tls == "on").await {
        Ok(()) => Ok(done("/admin/customers", "settings_saved")),
        Err(e) => refused(&app, &ctx, e, String::new()).await,
    }
}

/// A customer's limit as its form shows it.
pub fn quota_text(customer: &Customer) -> String {
    customer.quota_bytes.map_or("none".into(), super::mailboxes::size_input)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct PasswordForm {
    pub(super) csrf: String,
    pub(super) password: String,
    /// Asked when users change their own password.
    pub(super) current_password: String,
    /// `on` keeps the account's API tokens working after a change of its own password.
    pub(super) keep_api_tokens: String,
}

pub(super) async fn admin_reset_password(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<PasswordForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let id = parse_id(&ctx, &id)?;
    let change = CustomerChange { disabled: None, password: Some(Secret::new(form.password)) };
    match app.admin.update_customer(who, id, change).await {
        Ok(_) => Ok(done("/admin/customers", "password_changed")),
        Err(e) => refused(&app, &ctx, e, String::new()).await,
    }
}

pub(super) async fn admin_domains(State(app): State<App>, ctx: Ctx) -> PageResult {
    let who = ctx.signed_in()?;
    if !matches!(who, postfach_admin::Who::Admin { .. }) {
        return Err(ctx.not_found());
    }
    super::domains::domains_page(&app, &ctx, None, "admin_domains").await
}

pub(super) async fn admin_verify_domain(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<FlagForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let id = parse_id(&ctx, &id)?;
    app.admin.set_domain_verified(who, id, form.value == "1").await.map_err(|e| ctx.refused(e))?;
    Ok(done("/admin/domains", "domain_verified"))
}
