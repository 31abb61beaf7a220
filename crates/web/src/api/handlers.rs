//! The API's handlers: each parses its request with `postfach_admin::input`, calls one
//! admin operation as the caller and answers JSON.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use postfach_admin::{CustomerChange as Change, input};
use postfach_store::mailboxes::SettingsChange;
use postfach_types::Secret;
use serde_json::{Value, json};

use super::types::{self, *};
use super::{ApiError, ApiResult, caller, created, no_content, ok, parse_body, refused};
use crate::App;
use crate::context::{Ctx, Who};
use crate::i18n::localized_verdict;

pub(super) async fn openapi() -> Response {
    Json(crate::openapi::document()).into_response()
}

pub(super) async fn me(ctx: Ctx, method: Method) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let mut value = json!({ "role": who.role(), "name": who.display_name() });
    if let (Some(map), Who::Mailbox { mailbox }) = (value.as_object_mut(), who) {
        map.insert("mailbox_id".into(), json!(mailbox.id));
    }
    ok(value)
}

pub(super) async fn password_check(State(app): State<App>, ctx: Ctx, method: Method, body: Bytes) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let t = ctx.tr();
    let check: PasswordCheck = parse_body(&t, &body)?;
    let password = Secret::new(check.password);
    let verdict = app.admin.password_verdict(who, &password, check.address.as_deref(), check.customer.as_deref()).await;
    ok(localized_verdict(&t, &verdict, password.expose().chars().count()))
}

pub(super) async fn list_customers(State(app): State<App>, ctx: Ctx, method: Method) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let customers = app.admin.customers(who).await.map_err(|e| refused(&ctx.tr(), e))?;
    ok(types::all::<_, CustomerView>(customers))
}

pub(super) async fn create_customer(State(app): State<App>, ctx: Ctx, method: Method, body: Bytes) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let t = ctx.tr();
    let new: NewCustomer = parse_body(&t, &body)?;
    let fail = |e| refused(&t, e);
    let name = input::customer_name(&new.name).map_err(fail)?;
    let role = input::role(new.role.as_deref()).map_err(fail)?;
    let customer = app.admin.create_customer(who, &name, &Secret::new(new.password), role).await.map_err(fail)?;
    created(CustomerView::from(customer))
}

pub(super) async fn update_customer(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let t = ctx.tr();
    let change: types::CustomerChange = parse_body(&t, &body)?;
    let fail = |e| refused(&t, e);
    let id = input::id(&id).map_err(fail)?;
    let quota = change.quota.as_ref().map(|q| input::size(&q.text())).transpose().map_err(fail)?;
    let contact = change.contact_address.as_deref().map(input::contact).transpose().map_err(fail)?;
    let spam_reject =
        change.spam_reject.as_ref().map(|s| input::spam_threshold(&s.text())).transpose().map_err(fail)?;
    let spam_junk = change.spam_junk.as_ref().map(|s| input::spam_threshold(&s.text())).transpose().map_err(fail)?;
    let spam_given = spam_reject.is_some() || spam_junk.is_some();
    let settings_given = change.disabled.is_some() || change.password.is_some();
    if let Some(contact) = &contact {
        app.admin.set_customer_contact(who, id, contact.as_ref()).await.map_err(fail)?;
    }
    if spam_given {
        app.admin.set_customer_spam(who, id, spam_reject, spam_junk).await.map_err(fail)?;
    }
    if let Some(on) = change.require_tls {
        app.admin.set_customer_outbound_tls(who, id, on).await.map_err(fail)?;
    }
    if let Some(quota) = quota {
        app.admin.set_customer_quota(who, id, quota).await.map_err(fail)?;
    }
    if !settings_given && (quota.is_some() || contact.is_some() || spam_given || change.require_tls.is_some()) {
        return ok(CustomerView::from(app.admin.customer(who, id).await.map_err(fail)?));
    }
    let change = Change { disabled: change.disabled, password: change.password.map(Secret::new) };
    ok(CustomerView::from(app.admin.update_customer(who, id, change).await.map_err(fail)?))
}

pub(super) async fn list_domains(State(app): State<App>, ctx: Ctx, method: Method) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let domains = app.admin.domains(who).await.map_err(|e| refused(&ctx.tr(), e))?;
    ok(domains.iter().map(DomainView::from).collect::<Vec<_>>())
}

pub(super) async fn add_domain(State(app): State<App>, ctx: Ctx, method: Method, body: Bytes) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let t = ctx.tr();
    let new: NewDomain = parse_body(&t, &body)?;
    let fail = |e| refused(&t, e);
    let name = input::domain_name(&new.name).map_err(fail)?;
    let domain = app.admin.add_domain(who, &name, None, false).await.map_err(fail)?;
    created(domain_json(&app, &ctx, who, &domain).await?)
}

/// A domain with its ownership record, the records to publish and its last check.
async fn domain_json(
    app: &App,
    ctx: &Ctx,
    who: &Who,
    domain: &postfach_store::domains::Domain,
) -> Result<Value, ApiError> {
    let (name, value) = domain.ownership_record();
    let dns = crate::pages::domains::dns_view(app, who, domain, ctx.lang).await.map_err(|e| refused(&ctx.tr(), e))?;
    Ok(json!({
        "domain": DomainView::from(domain),
        "ownership_record": { "name": name, "type": "TXT", "value": value },
        "records": dns.records,
        "check": { "checked_at": dns.checked_at, "findings": dns.findings },
    }))
}

pub(super) async fn get_domain(State(app): State<App>, ctx: Ctx, method: Method, Path(id): Path<String>) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let fail = |e| refused(&ctx.tr(), e);
    let domain = app.admin.domain(who, input::id(&id).map_err(fail)?).await.map_err(fail)?;
    ok(domain_json(&app, &ctx, who, &domain).await?)
}

pub(super) async fn get_domain_tls_reports(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let fail = |e| refused(&ctx.tr(), e);
    let domain = app.admin.domain(who, input::id(&id).map_err(fail)?).await.map_err(fail)?;
    ok(crate::pages::domains::tls_reports_view(&app, who, &domain, ctx.lang).await.map_err(fail)?)
}

pub(super) async fn update_domain(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let t = ctx.tr();
    let change: DomainChange = parse_body(&t, &body)?;
    let fail = |e| refused(&t, e);
    let id = input::id(&id).map_err(fail)?;
    let mta_sts = change.mta_sts.as_deref().map(input::mta_sts_mode).transpose().map_err(fail)?;
    let mut domain = app.admin.domain(who, id).await.map_err(fail)?;
    if let Some(verified) = change.verified {
        domain = app.admin.set_domain_verified(who, id, verified).await.map_err(fail)?;
    }
    if let Some(certificates) = change.certificates {
        domain = app.admin.set_domain_certificates(who, id, certificates).await.map_err(fail)?;
    }
    if let Some(mode) = mta_sts {
        domain = app.admin.set_domain_mta_sts(who, id, mode).await.map_err(fail)?;
    }
    ok(domain_json(&app, &ctx, who, &domain).await?)
}

pub(super) async fn remove_domain(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
    Query(q): Query<CascadeQuery>,
) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let fail = |e| refused(&ctx.tr(), e);
    let removed = app.admin.remove_domain(who, input::id(&id).map_err(fail)?, q.cascade).await.map_err(fail)?;
    ok(RemovedView::from(removed))
}

pub(super) async fn check_domain(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let fail = |e| refused(&ctx.tr(), e);
    let id = input::id(&id).map_err(fail)?;
    let domain = app.admin.domain(who, id).await.map_err(fail)?;
    app.admin.check_domain(who, &domain).await.map_err(fail)?;
    let domain = app.admin.domain(who, id).await.map_err(fail)?;
    ok(domain_json(&app, &ctx, who, &domain).await?)
}

pub(super) async fn add_domain_alias(State(app): State<App>, ctx: Ctx, method: Method, body: Bytes) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let t = ctx.tr();
    let new: NewDomainAlias = parse_body(&t, &body)?;
    let fail = |e| refused(&t, e);
    let alias = input::domain_name(&new.name).map_err(fail)?;
    let target = input::domain_name(&new.target).map_err(fail)?;
    let domain = app.admin.add_domain_alias(who, &alias, &target, false).await.map_err(fail)?;
    created(domain_json(&app, &ctx, who, &domain).await?)
}

pub(super) async fn list_mailboxes(State(app): State<App>, ctx: Ctx, method: Method) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let mailboxes = app.admin.mailboxes(who, None).await.map_err(|e| refused(&ctx.tr(), e))?;
    ok(types::all::<_, MailboxView>(mailboxes))
}

pub(super) async fn create_mailbox(State(app): State<App>, ctx: Ctx, method: Method, body: Bytes) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let t = ctx.tr();
    let new: NewMailbox = parse_body(&t, &body)?;
    let fail = |e| refused(&t, e);
    let address = input::address(&new.address).map_err(fail)?;
    let settings = input::mailbox_settings(new.access.as_deref(), new.submission, new.tls_required).map_err(fail)?;
    let password = Secret::new(new.password);
    let mailbox = app.admin.create_mailbox(who, &address, &password, settings).await.map_err(fail)?;
    created(MailboxView::from(mailbox))
}

pub(super) async fn get_mailbox(State(app): State<App>, ctx: Ctx, method: Method, Path(id): Path<String>) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let fail = |e| refused(&ctx.tr(), e);
    let mailbox = app.admin.mailbox(who, input::id(&id).map_err(fail)?).await.map_err(fail)?;
    let aliases = app.admin.aliases_of(who, &mailbox).await.map_err(fail)?;
    let warnings = warnings_json(&app.admin.mailbox_warnings(who, mailbox.id).await.map_err(fail)?);
    ok(json!({
        "mailbox": MailboxView::from(mailbox),
        "aliases": types::all::<_, AliasView>(aliases),
        "warnings": warnings,
    }))
}

/// A mailbox's warning switches as `{"kind": on, ...}`.
fn warnings_json(switches: &[postfach_admin::WarningSwitch]) -> serde_json::Value {
    switches.iter().map(|w| (w.kind.as_str().to_string(), serde_json::Value::Bool(w.on))).collect()
}

pub(super) async fn update_mailbox(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let t = ctx.tr();
    let change: MailboxChange = parse_body(&t, &body)?;
    let fail = |e| refused(&t, e);
    let id = input::id(&id).map_err(fail)?;
    let mailbox = app.admin.mailbox(who, id).await.map_err(fail)?;
    // Everything is parsed before anything changes.
    let (bytes, messages) = (change.quota.as_ref().map(|q| q.text()), change.quota_messages.as_ref().map(|q| q.text()));
    let quota = input::mailbox_quota(mailbox.quota, bytes.as_deref(), messages.as_deref()).map_err(fail)?;
    let language = change.language.as_deref().map(input::language).transpose().map_err(fail)?;
    let switches = change
        .warnings
        .iter()
        .flatten()
        .map(|(kind, on)| input::warning_kind(kind).map(|kind| (kind, *on)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(fail)?;
    let settings = SettingsChange {
        access: input::access_mode(change.access.as_deref()).map_err(fail)?,
        submission: change.submission,
        tls_required: change.tls_required,
    };
    if bytes.is_some() || messages.is_some() {
        app.admin.set_mailbox_quota(who, id, quota).await.map_err(fail)?;
    }
    if let Some(language) = language {
        app.admin.set_mailbox_language(who, id, language).await.map_err(fail)?;
    }
    for (kind, on) in &switches {
        app.admin.set_mailbox_warning(who, id, *kind, *on).await.map_err(fail)?;
    }
    if let Some(on) = change.require_tls {
        app.admin.set_mailbox_outbound_tls(who, id, on).await.map_err(fail)?;
    }
    let others_given = bytes.is_some()
        || messages.is_some()
        || language.is_some()
        || !switches.is_empty()
        || change.require_tls.is_some();
    if settings == SettingsChange::default() && others_given {
        return ok(MailboxView::from(app.admin.mailbox(who, id).await.map_err(fail)?));
    }
    if let Some(on) = change.app_passwords_only {
        app.admin.set_app_passwords_only(who, id, on).await.map_err(fail)?;
    }
    if settings == SettingsChange::default() {
        return ok(MailboxView::from(app.admin.mailbox(who, id).await.map_err(fail)?));
    }
    ok(MailboxView::from(app.admin.update_mailbox(who, id, settings).await.map_err(fail)?))
}

/// Every "a mailbox's list of …" endpoint: the caller, the mailbox id from the path, the
/// admin call (which checks the caller may see the mailbox), each item as its view.
async fn mailbox_list<T, V: From<T> + serde::Serialize>(
    ctx: &Ctx,
    method: &Method,
    id: &str,
    list: impl AsyncFnOnce(&Who, postfach_types::MailboxId) -> Result<Vec<T>, postfach_admin::AdminError>,
) -> ApiResult {
    let who = caller(ctx, method)?;
    let fail = |e| refused(&ctx.tr(), e);
    let items = list(who, input::id(id).map_err(fail)?).await.map_err(fail)?;
    ok(types::all::<_, V>(items))
}

pub(super) async fn list_app_passwords(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
) -> ApiResult {
    mailbox_list::<_, AppPasswordView>(&ctx, &method, &id, async |who, id| app.admin.app_passwords(who, id).await).await
}

pub(super) async fn list_devices(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
) -> ApiResult {
    mailbox_list::<_, DeviceView>(&ctx, &method, &id, async |who, id| app.admin.devices(who, id).await).await
}

pub(super) async fn list_sent_mail(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
) -> ApiResult {
    mailbox_list::<_, SentView>(&ctx, &method, &id, async |who, id| app.admin.sent_mail(who, id).await).await
}

pub(super) async fn list_imports(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
) -> ApiResult {
    mailbox_list::<_, ImportJobView>(&ctx, &method, &id, async |who, id| app.admin.import_jobs(who, id).await).await
}

pub(super) async fn start_import(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let t = ctx.tr();
    let new: NewImport = parse_body(&t, &body)?;
    let fail = |e| refused(&t, e);
    let id = input::id(&id).map_err(fail)?;
    let port = new.port.map(|p| p.to_string()).unwrap_or_default();
    let request = postfach_admin::ImportRequest {
        server: input::import_server(&new.host, &port, &new.security).map_err(fail)?,
        login: input::import_login(&new.login).map_err(fail)?,
        password: input::import_password(new.password).map_err(fail)?,
    };
    let job = app.admin.start_import(who, id, request).await.map_err(fail)?;
    Ok((axum::http::StatusCode::ACCEPTED, axum::Json(ImportJobView::from(job))).into_response())
}

pub(super) async fn create_app_password(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let t = ctx.tr();
    let new: NewAppPassword = parse_body(&t, &body)?;
    let fail = |e| refused(&t, e);
    let id = input::id(&id).map_err(fail)?;
    let name = input::app_password_name(&new.name).map_err(fail)?;
    let services = input::app_password_services(&new.services.join(",")).map_err(fail)?;
    let made = app.admin.add_app_password(who, id, &name, &services).await.map_err(fail)?;
    created(CreatedAppPasswordView::from(made))
}

pub(super) async fn revoke_app_password(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path((id, app_password)): Path<(String, String)>,
) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let fail = |e| refused(&ctx.tr(), e);
    let mailbox = input::id(&id).map_err(fail)?;
    let wanted: postfach_types::AppPasswordId = input::id(&app_password).map_err(fail)?;
    let list = app.admin.app_passwords(who, mailbox).await.map_err(fail)?;
    let Some(found) = list.into_iter().find(|a| a.id == wanted) else {
        return Err(fail(postfach_admin::AdminError::NotFound(format!("there is no app password with id {wanted}"))));
    };
    app.admin.remove_app_password(who, mailbox, &found.name).await.map_err(fail)?;
    no_content()
}

pub(super) async fn remove_mailbox(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let fail = |e| refused(&ctx.tr(), e);
    let aliases = app.admin.remove_mailbox(who, input::id(&id).map_err(fail)?).await.map_err(fail)?;
    ok(json!({ "removed_aliases": aliases }))
}

pub(super) async fn set_mailbox_password(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let t = ctx.tr();
    let new: NewPassword = parse_body(&t, &body)?;
    let fail = |e| refused(&t, e);
    let id = input::id(&id).map_err(fail)?;
    let change = ctx.mailbox_password(new.password, new.current_password);
    app.admin.set_mailbox_password(who, id, change).await.map_err(fail)?;
    no_content()
}

pub(super) async fn mailbox_logins(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
    Query(q): Query<FilterQuery>,
) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let fail = |e| refused(&ctx.tr(), e);
    let query = input::login_query(q.filter.as_deref(), q.limit.unwrap_or(100)).map_err(fail)?;
    let logins = app.admin.mailbox_logins(who, input::id(&id).map_err(fail)?, query).await.map_err(fail)?;
    ok(types::all::<_, LoginView>(logins))
}

pub(super) async fn list_logins(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Query(q): Query<FilterQuery>,
) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let fail = |e| refused(&ctx.tr(), e);
    let query = input::login_query(q.filter.as_deref(), q.limit.unwrap_or(100)).map_err(fail)?;
    ok(types::all::<_, LoginView>(app.admin.logins(who, query).await.map_err(fail)?))
}

pub(super) async fn list_aliases(State(app): State<App>, ctx: Ctx, method: Method) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let aliases = app.admin.aliases(who, None).await.map_err(|e| refused(&ctx.tr(), e))?;
    ok(types::all::<_, AliasView>(aliases))
}

pub(super) async fn add_alias(State(app): State<App>, ctx: Ctx, method: Method, body: Bytes) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let t = ctx.tr();
    let new: NewAlias = parse_body(&t, &body)?;
    let fail = |e| refused(&t, e);
    let address = input::address(&new.address).map_err(fail)?;
    let mailbox = input::address(&new.mailbox).map_err(fail)?;
    created(AliasView::from(app.admin.add_alias(who, &address, &mailbox).await.map_err(fail)?))
}

pub(super) async fn remove_alias(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let fail = |e| refused(&ctx.tr(), e);
    app.admin.remove_alias(who, input::id(&id).map_err(fail)?).await.map_err(fail)?;
    no_content()
}

pub(super) async fn list_tokens(State(app): State<App>, ctx: Ctx, method: Method) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let tokens = app.admin.tokens(who).await.map_err(|e| refused(&ctx.tr(), e))?;
    ok(types::all::<_, TokenView>(tokens))
}

pub(super) async fn create_token(State(app): State<App>, ctx: Ctx, method: Method, body: Bytes) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let t = ctx.tr();
    let new: NewToken = parse_body(&t, &body)?;
    let (stored, token) = app.admin.create_token(who, &new.name).await.map_err(|e| refused(&t, e))?;
    created(json!({ "token": token.expose(), "id": stored.id, "name": stored.name, "created_at": stored.created_at }))
}

pub(super) async fn revoke_token(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let fail = |e| refused(&ctx.tr(), e);
    app.admin.revoke_token(who, input::id(&id).map_err(fail)?).await.map_err(fail)?;
    no_content()
}
