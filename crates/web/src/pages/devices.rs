//! The devices page of a mailbox: every client seen in the last 90 days, by credential
//! (the mailbox's password or an app password) and service, with a revoke button for
//! app passwords (the app passwords card's revoke handler, back to this page).

use askama::Template;
use axum::extract::{Path, State};

use super::mailboxes::visible_mailbox;
use super::{Layout, PageResult, when};
use crate::App;
use crate::context::{Ctx, render};

/// One row of the page.
pub struct DeviceRow {
    /// "Mailbox password" or the app password's name.
    pub credential: String,
    /// The app password's name while it exists (the revoke button).
    pub revoke: Option<String>,
    pub service: &'static str,
    pub client: String,
    pub last_ip: String,
    pub tls: String,
    pub first_seen: String,
    pub last_seen: String,
    pub logins: i64,
}

#[derive(Template)]
#[template(path = "devices.html")]
struct DevicesPage {
    l: Layout,
    mailbox: postfach_store::mailboxes::Mailbox,
    rows: Vec<DeviceRow>,
    /// A device used the mailbox's own password.
    main_password_used: bool,
}

pub(super) async fn devices(State(app): State<App>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let who = ctx.signed_in()?;
    let t = ctx.tr();
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    let list = app.admin.devices(who, mailbox.id).await.map_err(|e| ctx.refused(e))?;
    let main_password_used = list.iter().any(|d| d.credential.is_none());
    let rows = list
        .into_iter()
        .map(|d| DeviceRow {
            revoke: d.app_password.and(d.credential.clone()),
            credential: match d.credential {
                Some(name) => name,
                None => t.s("devices.main_password").to_string(),
            },
            service: t.s(&format!("service.{}", d.service.as_str())),
            client: d.client.unwrap_or_default(),
            last_ip: d.last_ip.to_string(),
            tls: d.last_tls.unwrap_or_else(|| t.s("logins.unencrypted").to_string()),
            first_seen: when(d.first_seen),
            last_seen: when(d.last_seen),
            logins: d.logins,
        })
        .collect();
    let manage = !matches!(who, crate::context::Who::Mailbox { .. });
    Ok(render(&DevicesPage {
        l: Layout::new(&ctx, if manage { "mailboxes" } else { "mailbox" }, None),
        mailbox,
        rows,
        main_password_used,
    }))
}
