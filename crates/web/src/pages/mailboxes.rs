//! Mailboxes: the list and the form to create one, the mailbox page (settings, password,
//! aliases, the security checklist and its logins), removal and the Apple profile.

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use postfach_admin::{AdminError, LoginQuery, input};
use postfach_store::domains::Domain;
use postfach_store::logins::LoginRecord;
use postfach_store::mailboxes::{Alias, Mailbox, SettingsChange};
use postfach_types::{AccessMode, LoginResult, Secret, Space, UnixTime, format_size};
use serde::Deserialize;

use super::customers::PasswordForm;
use super::{ConfirmPage, CsrfForm, Layout, PageResult, done, parse_id, when};
use crate::context::{Ctx, Who, render};
use crate::i18n::Tr;
use crate::{App, autoconfig};

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

pub(super) async fn mailboxes(State(app): State<App>, ctx: Ctx) -> PageResult {
    mailboxes_page(&app, &ctx, None, NewMailboxForm::default()).await
}

async fn mailboxes_page(app: &App, ctx: &Ctx, error: Option<String>, form: NewMailboxForm) -> PageResult {
    let who = ctx.signed_in()?;
    let mailboxes = app.admin.mailboxes(who, None).await.map_err(|e| ctx.refused(e))?;
    let domains = app.admin.domains(who).await.map_err(|e| ctx.refused(e))?;
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
pub(super) struct NewMailboxForm {
    csrf: String,
    local: String,
    domain: String,
    password: String,
    access: String,
}

pub(super) async fn create_mailbox(
    State(app): State<App>,
    ctx: Ctx,
    Form(mut form): Form<NewMailboxForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let password = Secret::new(std::mem::take(&mut form.password));
    let parsed = input::address_at(&form.local, &form.domain)
        .and_then(|a| Ok((a, input::mailbox_settings(Some(form.access.as_str()), None, None)?)));
    let created = match parsed {
        Ok((address, settings)) => app.admin.create_mailbox(who, &address, &password, settings).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(mailbox) => Ok(done(&format!("/mailboxes/{}", mailbox.id), "mailbox_created")),
        Err(e) => {
            let message = ctx.form_refusal(e)?;
            mailboxes_page(&app, &ctx, Some(message), form).await
        }
    }
}

/// The mailbox `id` if the caller may see it.
// The error is the finished response that ends the request.
#[allow(clippy::result_large_err)]
pub(super) async fn visible_mailbox(app: &App, ctx: &Ctx, id: &str) -> Result<Mailbox, Response> {
    let who = ctx.signed_in()?;
    app.admin.mailbox(who, parse_id(ctx, id)?).await.map_err(|e| ctx.refused(e))
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
    /// The operator allows passwords over plaintext at all (`allow_plaintext_auth`): only
    /// then does the mailbox's "TLS only" switch change anything.
    plaintext_allowed: bool,
    storage: Storage,
    /// The warning mails it gets: (kind, its label, on).
    warnings: Vec<(&'static str, String, bool)>,
    /// The app passwords card (`app_passwords.rs`).
    devices: super::app_passwords::Devices,
}

/// The mailbox's use against its limits, as the page shows it.
pub struct Storage {
    /// "1.2 MiB of 2 GiB (60 %)" or "1.2 MiB (no limit)".
    pub text: String,
    /// The bar: use and limit in bytes (no bar without a limit).
    pub bar: Option<(u64, u64)>,
    pub messages: String,
    /// The customer's total, when it has a limit: the text and the bar.
    pub customer: Option<(String, u64, u64)>,
    /// The form's current values: the limits as they are typed (`2G`, `none`).
    pub quota_input: String,
    pub messages_input: String,
    pub language: &'static str,
}

impl Storage {
    fn new(t: &Tr, mailbox: &Mailbox, space: &Space) -> Storage {
        let of = |used: u64, limit: u64| {
            let percent = u128::from(used) * 100 / u128::from(limit.max(1));
            t.f(
                "quota.of",
                &[("used", &format_size(used)), ("limit", &format_size(limit)), ("percent", &percent.to_string())],
            )
        };
        let text = match space.quota_bytes {
            Some(q) => of(space.used_bytes, q),
            None => t.f("quota.no_limit", &[("used", &format_size(space.used_bytes))]),
        };
        let messages = match space.quota_messages {
            Some(q) => {
                t.f("quota.messages_of", &[("used", &space.used_messages.to_string()), ("limit", &q.to_string())])
            }
            None => t.f("quota.messages", &[("used", &space.used_messages.to_string())]),
        };
        Storage {
            text,
            bar: space.quota_bytes.map(|q| (space.used_bytes.min(q), q)),
            messages,
            customer: space
                .customer_quota_bytes
                .map(|q| (of(space.customer_used_bytes, q), space.customer_used_bytes.min(q), q)),
            quota_input: mailbox.quota.bytes.map_or("none".into(), size_input),
            messages_input: mailbox.quota.messages.map_or("none".into(), |n| n.to_string()),
            language: mailbox.language.as_str(),
        }
    }
}

/// A limit as the form shows it: the largest unit that divides it (`2G`), else bytes.
pub(crate) fn size_input(bytes: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
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
    /// "with app password NAME" when an app password was used.
    pub credential: Option<String>,
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
        credential: record.credential.as_ref().map(|name| t.f("logins.app_password", &[("name", name)])),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct FilterQuery {
    pub(super) filter: String,
}

/// How many login attempts a page lists.
pub(super) const PAGE_LOGINS: i64 = 200;

pub(super) async fn mailbox(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Query(q): Query<FilterQuery>,
) -> PageResult {
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    mailbox_page(&app, &ctx, mailbox, &q.filter, None).await
}

async fn mailbox_page(app: &App, ctx: &Ctx, mailbox: Mailbox, filter: &str, error: Option<String>) -> PageResult {
    mailbox_page_with(app, ctx, mailbox, filter, error, None).await
}

/// The mailbox page; `created`: an app password just made, shown this once.
pub(super) async fn mailbox_page_with(
    app: &App,
    ctx: &Ctx,
    mailbox: Mailbox,
    filter: &str,
    error: Option<String>,
    created: Option<postfach_admin::CreatedAppPassword>,
) -> PageResult {
    let who = ctx.signed_in()?;
    let t = ctx.tr();
    let fail = |e| ctx.refused(e);
    let (query, error, filter) = match input::login_query(Some(filter), PAGE_LOGINS) {
        Ok(query) => (query, error, filter),
        Err(e) => (LoginQuery::all(PAGE_LOGINS), Some(ctx.form_refusal(e)?), ""),
    };
    let aliases = app.admin.aliases_of(who, &mailbox).await.map_err(fail)?;
    let domain = app.admin.mailbox_domain(who, &mailbox).await.map_err(fail)?;
    let records = app.admin.mailbox_logins(who, mailbox.id, query).await.map_err(fail)?;
    let recent = app.admin.mailbox_logins(who, mailbox.id, LoginQuery::all(PAGE_LOGINS)).await.map_err(fail)?;
    let report = app.admin.mailbox_dns_report(who, &mailbox).await.map_err(fail)?;
    let space = app.admin.mailbox_space(who, mailbox.id).await.map_err(fail)?;
    let storage = Storage::new(&t, &mailbox, &space);
    let warnings = app
        .admin
        .mailbox_warnings(who, mailbox.id)
        .await
        .map_err(fail)?
        .iter()
        .map(|w| (w.kind.as_str(), t.s(&format!("warnings.{}", w.kind.as_str())).to_string(), w.on))
        .collect();
    let manage = !matches!(who, Who::Mailbox { .. });
    let plaintext_allowed = app.auth.plaintext_auth_allowed();
    let mut checklist = checklist(&t, &mailbox, &recent, &domain, report.as_ref(), manage, plaintext_allowed);
    checklist.insert(1, super::app_passwords::check_item(&t, &mailbox, &recent));
    let devices = super::app_passwords::Devices::load(app, ctx, &mailbox, created).await?;
    let domains = if manage {
        let all = app.admin.domains(who).await.map_err(fail)?;
        all.into_iter().filter(|d| d.alias_of.is_none()).collect()
    } else {
        Vec::new()
    };
    Ok(render(&MailboxPage {
        l: Layout::new(ctx, if manage { "mailboxes" } else { "mailbox" }, error),
        logins: records.iter().map(|r| login_row(&t, r)).collect(),
        mailbox,
        manage,
        aliases,
        domains,
        checklist,
        filter: filter.to_string(),
        plaintext_allowed,
        storage,
        warnings,
        devices,
    }))
}

/// The security checklist of a mailbox: each point green or red, with where to fix it.
/// `manage`: the viewer manages the mailbox (a mailbox user gets no link to the domain,
/// which only its manager sees, but is told whom to ask). `plaintext_allowed`: the
/// operator allows plaintext logins at all; otherwise "TLS only" cannot be off in effect.
fn checklist(
    t: &Tr,
    mailbox: &Mailbox,
    recent: &[LoginRecord],
    domain: &Domain,
    report: Option<&postfach_store::dns_checks::DomainReport>,
    manage: bool,
    plaintext_allowed: bool,
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
    let tls = if plaintext_allowed {
        item(mailbox.settings.tls_required, "check.tls_on", "check.tls_off", "#settings", "check.fix_settings")
    } else {
        item(true, "check.tls_server", "check.tls_server", "", "check.fix_settings")
    };
    let mut items = vec![
        tls,
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
    let worst = report.map(|r| [Check::Spf, Check::Dkim, Check::Dmarc].iter().filter_map(|c| r.level_of(*c)).max());
    let (status, key) = match (domain.verified, worst) {
        (false, _) => ("error", "check.domain_unverified"),
        (true, None | Some(None)) => ("warning", "check.dns_unchecked"),
        (true, Some(Some(Level::Ok))) => ("ok", "check.dns_ok"),
        (true, Some(Some(Level::Warning))) => ("warning", "check.dns_warning"),
        (true, Some(Some(Level::Error))) => ("error", "check.dns_error"),
    };
    let (text, fix) = match (status, manage) {
        ("ok", _) => (t.s(key).to_string(), String::new()),
        (_, true) => (t.s(key).to_string(), format!("/domains/{}#dns", domain.id)),
        // The domain's page is its manager's: say whom to ask instead of linking there.
        (_, false) => (format!("{} {}", t.s(key), t.s("check.ask_domain_owner")), String::new()),
    };
    items.push(CheckItem { status, text, fix, fix_label: t.s("check.fix_domain") });
    items
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct SettingsForm {
    csrf: String,
    access: String,
    tls_required: String,
    submission: String,
}

pub(super) async fn mailbox_settings(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<SettingsForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    let changed = match input::access_mode(Some(form.access.as_str())) {
        Ok(access) => {
            let change = SettingsChange {
                access,
                tls_required: Some(form.tls_required == "on"),
                submission: Some(form.submission == "on"),
            };
            app.admin.update_mailbox(who, mailbox.id, change).await
        }
        Err(e) => Err(e),
    };
    match changed {
        Ok(_) => Ok(done(&format!("/mailboxes/{}", mailbox.id), "settings_saved")),
        Err(e) => refused_on_page(&app, &ctx, mailbox, e).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct QuotaForm {
    csrf: String,
    /// Managers only.
    quota: Option<String>,
    quota_messages: Option<String>,
    language: String,
}

/// "Always require TLS to other servers" for the mailbox (`docs/panel.md`); the mailbox
/// user, its customer and the admins may switch it (the admin operation decides).
pub(super) async fn mailbox_outbound_tls(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<super::customers::OutboundTlsForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    match app.admin.set_mailbox_outbound_tls(who, mailbox.id, form.require_tls == "on").await {
        Ok(()) => Ok(done(&format!("/mailboxes/{}", mailbox.id), "settings_saved")),
        Err(e) => refused_on_page(&app, &ctx, mailbox, e).await,
    }
}

/// The storage card's form: limits (for managers) and the notices' language.
pub(super) async fn mailbox_quota(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<QuotaForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    let limits_given = form.quota.is_some() || form.quota_messages.is_some();
    let parsed = input::mailbox_quota(mailbox.quota, form.quota.as_deref(), form.quota_messages.as_deref())
        .and_then(|quota| Ok((quota, input::language(&form.language)?)));
    let changed = match parsed {
        Ok((quota, language)) => {
            let limits = if limits_given && quota != mailbox.quota {
                app.admin.set_mailbox_quota(who, mailbox.id, quota).await.map(|_| ())
            } else {
                Ok(())
            };
            match limits {
                Ok(()) => app.admin.set_mailbox_language(who, mailbox.id, language).await.map(|_| ()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    match changed {
        Ok(()) => Ok(done(&format!("/mailboxes/{}", mailbox.id), "settings_saved")),
        Err(e) => refused_on_page(&app, &ctx, mailbox, e).await,
    }
}

/// The warning card's form: a checkbox per kind; a kind not sent is switched off.
pub(super) async fn mailbox_warnings(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    let who = ctx.signed_in()?;
    let csrf = form.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()).unwrap_or_default();
    ctx.check_csrf(csrf)?;
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    let on: Vec<&str> = form.iter().filter(|(k, _)| k == "on").map(|(_, v)| v.as_str()).collect();
    let switches = app.admin.mailbox_warnings(who, mailbox.id).await.map_err(|e| ctx.refused(e))?;
    for switch in switches {
        let wanted = on.contains(&switch.kind.as_str());
        if wanted != switch.on
            && let Err(e) = app.admin.set_mailbox_warning(who, mailbox.id, switch.kind, wanted).await
        {
            return refused_on_page(&app, &ctx, mailbox, e).await;
        }
    }
    Ok(done(&format!("/mailboxes/{}", mailbox.id), "settings_saved"))
}

/// Shows a refusal on the mailbox page, or ends the request with its own page.
pub(super) async fn refused_on_page(app: &App, ctx: &Ctx, mailbox: Mailbox, e: AdminError) -> PageResult {
    let message = ctx.form_refusal(e)?;
    mailbox_page(app, ctx, mailbox, "", Some(message)).await
}

pub(super) async fn mailbox_password(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<PasswordForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    let change = ctx.mailbox_password(form.password, Some(form.current_password));
    match app.admin.set_mailbox_password(who, mailbox.id, change).await {
        Ok(()) => Ok(done(&format!("/mailboxes/{}", mailbox.id), "password_changed")),
        Err(e) => refused_on_page(&app, &ctx, mailbox, e).await,
    }
}

pub(super) async fn confirm_remove_mailbox(State(app): State<App>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    if matches!(ctx.signed_in()?, Who::Mailbox { .. }) {
        return Err(ctx.not_found());
    }
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

pub(super) async fn remove_mailbox(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    app.admin.remove_mailbox(who, parse_id(&ctx, &id)?).await.map_err(|e| ctx.refused(e))?;
    Ok(done("/mailboxes", "mailbox_removed"))
}

pub(super) async fn mobileconfig(State(app): State<App>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
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
