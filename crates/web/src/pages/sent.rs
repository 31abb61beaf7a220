//! The sent-mail page of a mailbox: each recipient of mail sent from it whose delivery
//! ended, newest first, with the result, the receiving server and the encryption used;
//! deliveries to other servers without encryption are flagged, as the login list flags
//! unencrypted logins.

use askama::Template;
use axum::extract::{Path, State};
use postfach_store::sent_log::SentEntry;

use super::mailboxes::visible_mailbox;
use super::{Layout, PageResult, when};
use crate::App;
use crate::context::{Ctx, render};

/// One row of the page.
pub struct SentRow {
    pub at: String,
    pub recipient: String,
    pub delivered: bool,
    /// The result in words, with the reason when it failed.
    pub result: String,
    /// The receiving server, or "here".
    pub server: String,
    /// The TLS version and cipher; `None`: none.
    pub tls: Option<String>,
    /// To another server without encryption (flagged).
    pub unencrypted: bool,
}

#[derive(Template)]
#[template(path = "sent.html")]
struct SentPage {
    l: Layout,
    mailbox: postfach_store::mailboxes::Mailbox,
    rows: Vec<SentRow>,
    unencrypted: usize,
}

pub(super) async fn sent(State(app): State<App>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let who = ctx.signed_in()?;
    let t = ctx.tr();
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    let entries = app.admin.sent_mail(who, mailbox.id).await.map_err(|e| ctx.refused(e))?;
    let row = |e: SentEntry| SentRow {
        at: when(e.at),
        unencrypted: e.unencrypted(),
        result: match (e.delivered, &e.diagnostic) {
            (true, _) => t.s("sent.delivered").to_string(),
            (false, Some(why)) => format!("{} ({why})", t.s("sent.failed")),
            (false, None) => t.s("sent.failed").to_string(),
        },
        server: e.remote_mta.unwrap_or_else(|| t.s("sent.here").to_string()),
        recipient: e.recipient,
        delivered: e.delivered,
        tls: e.tls,
    };
    let rows: Vec<SentRow> = entries.into_iter().map(row).collect();
    let unencrypted = rows.iter().filter(|r| r.unencrypted).count();
    let manage = !matches!(who, crate::context::Who::Mailbox { .. });
    Ok(render(&SentPage {
        l: Layout::new(&ctx, if manage { "mailboxes" } else { "mailbox" }, None),
        mailbox,
        rows,
        unencrypted,
    }))
}
