//! The app passwords card of the mailbox page: make one per device (shown once, with a
//! copy button and the device profile to download), list them with their last use,
//! revoke, and switch "devices must use app passwords". Its checklist point.

use axum::extract::{Form, Path, State};
use axum::response::Response;
use postfach_admin::app_passwords::mailbox_allows;
use postfach_admin::{CreatedAppPassword, input};
use postfach_store::logins::LoginRecord;
use postfach_store::mailboxes::Mailbox;
use postfach_types::{AccessMode, Service, UnixTime};
use serde::Deserialize;

use super::mailboxes::{CheckItem, mailbox_page_with, refused_on_page, visible_mailbox};
use super::{PageResult, done, when};
use crate::App;
use crate::context::Ctx;
use crate::i18n::Tr;

/// What the card shows.
pub struct Devices {
    pub rows: Vec<Row>,
    /// The services the mailbox allows devices, as (value, label key).
    pub services: Vec<(&'static str, &'static str)>,
    /// An app password just made: (the sentence naming it, the password), shown this once.
    pub created: Option<(String, String)>,
    /// A device profile can be offered (the mailbox is read by IMAP or POP3).
    pub profile: bool,
}

/// One app password as listed.
pub struct Row {
    pub name: String,
    pub services: String,
    pub created: String,
    /// Time, service, address, TLS version, client name; `None` while unused.
    pub last: Option<[String; 5]>,
}

fn label(service: Service) -> &'static str {
    match service {
        Service::Imap => "service.imap",
        Service::Pop3 => "service.pop3",
        Service::ManageSieve => "service.sieve",
        _ => "service.submission",
    }
}

impl Devices {
    // The error is the finished response that ends the request.
    #[allow(clippy::result_large_err)]
    pub async fn load(
        app: &App,
        ctx: &Ctx,
        mailbox: &Mailbox,
        created: Option<CreatedAppPassword>,
    ) -> Result<Devices, Response> {
        let who = ctx.signed_in()?;
        let t = ctx.tr();
        let list = app.admin.app_passwords(who, mailbox.id).await.map_err(|e| ctx.refused(e))?;
        let rows = list
            .into_iter()
            .map(|a| Row {
                services: a.services.iter().map(|s| t.s(label(*s))).collect::<Vec<_>>().join(", "),
                created: when(a.created_at),
                last: a.last_use.map(|l| {
                    [
                        when(l.at),
                        t.s(label(l.service)).to_string(),
                        l.remote_ip.to_string(),
                        l.tls_version.unwrap_or_else(|| t.s("logins.unencrypted").to_string()),
                        l.client.unwrap_or_default(),
                    ]
                }),
                name: a.name,
            })
            .collect();
        let services = Service::DEVICES
            .into_iter()
            .filter(|s| mailbox_allows(mailbox, *s))
            .map(|s| (s.as_str(), label(s)))
            .collect();
        Ok(Devices {
            rows,
            services,
            created: created.map(|c| {
                let text = t.f("apppw.once", &[("name", &c.app_password.name)]);
                (text, c.password.expose().to_string())
            }),
            profile: mailbox.settings.access != AccessMode::None,
        })
    }
}

/// The checklist point "every device has its own app password": green when the mailbox
/// asks devices for app passwords, or when every device login of the last 30 days used
/// one; a warning when no device logged in yet; red when a device used the mailbox's own
/// password.
pub fn check_item(t: &Tr, mailbox: &Mailbox, recent: &[LoginRecord]) -> CheckItem {
    let since = UnixTime::now().0 - 30 * 86_400;
    let devices: Vec<&LoginRecord> = recent
        .iter()
        .filter(|r| r.at.0 >= since && r.result == postfach_types::LoginResult::Ok)
        .filter(|r| r.service.is_device_service())
        .collect();
    let (status, key) = if mailbox.app_passwords_only {
        ("ok", "check.app_passwords_only")
    } else if devices.is_empty() {
        ("warning", "check.app_passwords_none_yet")
    } else if devices.iter().all(|r| r.credential.is_some()) {
        ("ok", "check.app_passwords_ok")
    } else {
        ("error", "check.app_passwords_missing")
    };
    CheckItem {
        status,
        text: t.s(key).to_string(),
        fix: format!("/mailboxes/{}/devices", mailbox.id),
        fix_label: t.s("check.fix_devices"),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct CreateForm {
    csrf: String,
    name: String,
    imap: String,
    pop3: String,
    submission: String,
}

pub(super) async fn create(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<CreateForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    let picked: Vec<&str> = [("imap", &form.imap), ("pop3", &form.pop3), ("submission", &form.submission)]
        .into_iter()
        .filter(|(_, v)| v.as_str() == "on")
        .map(|(k, _)| k)
        .collect();
    let made = match (input::app_password_name(&form.name), input::app_password_services(&picked.join(","))) {
        (Ok(name), Ok(services)) => app.admin.add_app_password(who, mailbox.id, &name, &services).await,
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match made {
        // Shown on this answer only: no redirect that could be reloaded or cached.
        Ok(created) => mailbox_page_with(&app, &ctx, mailbox, "", None, Some(created)).await,
        Err(e) => refused_on_page(&app, &ctx, mailbox, e).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RevokeForm {
    csrf: String,
    name: String,
    /// `devices`: back to the devices page; else the mailbox page.
    back: String,
}

pub(super) async fn revoke(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<RevokeForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    match app.admin.remove_app_password(who, mailbox.id, &form.name).await {
        Ok(()) => {
            let page = if form.back == "devices" { "/devices" } else { "" };
            Ok(done(&format!("/mailboxes/{}{page}", mailbox.id), "app_password_revoked"))
        }
        Err(e) => refused_on_page(&app, &ctx, mailbox, e).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct OnlyForm {
    csrf: String,
    only: String,
}

pub(super) async fn only(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<OnlyForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    match app.admin.set_app_passwords_only(who, mailbox.id, form.only == "on").await {
        Ok(_) => Ok(done(&format!("/mailboxes/{}", mailbox.id), "settings_saved")),
        Err(e) => refused_on_page(&app, &ctx, mailbox, e).await,
    }
}
