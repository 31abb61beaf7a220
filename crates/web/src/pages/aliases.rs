//! Aliases: the list, adding one (also from the mailbox page) and removal.

use askama::Template;
use axum::extract::{Form, Path, State};
use postfach_admin::input;
use postfach_store::domains::Domain;
use postfach_store::mailboxes::{Alias, Mailbox};
use serde::Deserialize;

use super::{ConfirmPage, CsrfForm, Layout, PageResult, done, parse_id};
use crate::App;
use crate::context::{Ctx, render};

#[derive(Template)]
#[template(path = "aliases.html")]
struct AliasesPage {
    l: Layout,
    aliases: Vec<Alias>,
    domains: Vec<Domain>,
    mailboxes: Vec<Mailbox>,
}

pub(super) async fn aliases(State(app): State<App>, ctx: Ctx) -> PageResult {
    aliases_page(&app, &ctx, None).await
}

async fn aliases_page(app: &App, ctx: &Ctx, error: Option<String>) -> PageResult {
    let who = ctx.signed_in()?;
    let fail = |e| ctx.refused(e);
    let aliases = app.admin.aliases(who, None).await.map_err(fail)?;
    let domains = app.admin.domains(who).await.map_err(fail)?;
    let domains = domains.into_iter().filter(|d| d.alias_of.is_none()).collect();
    let mailboxes = app.admin.mailboxes(who, None).await.map_err(fail)?;
    Ok(render(&AliasesPage { l: Layout::new(ctx, "aliases", error), aliases, domains, mailboxes }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct AliasForm {
    csrf: String,
    local: String,
    domain: String,
    mailbox: String,
    back: String,
}

pub(super) async fn add_alias(State(app): State<App>, ctx: Ctx, Form(form): Form<AliasForm>) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let back =
        if form.back.starts_with("/mailboxes/") && !form.back.contains("//") { form.back } else { "/aliases".into() };
    let added = match (input::address_at(&form.local, &form.domain), input::address(&form.mailbox)) {
        (Ok(address), Ok(target)) => app.admin.add_alias(who, &address, &target).await,
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match added {
        Ok(_) => Ok(done(&back, "alias_added")),
        Err(e) => {
            let message = ctx.form_refusal(e)?;
            aliases_page(&app, &ctx, Some(message)).await
        }
    }
}

pub(super) async fn confirm_remove_alias(State(app): State<App>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let who = ctx.signed_in()?;
    let alias = app.admin.alias(who, parse_id(&ctx, &id)?).await.map_err(|e| ctx.refused(e))?;
    let t = ctx.tr();
    Ok(render(&ConfirmPage {
        l: Layout::new(&ctx, "aliases", None),
        question: t.f("confirm.alias", &[("name", &alias.address.to_unicode())]),
        detail: t.f("confirm.alias_detail", &[("mailbox", &alias.mailbox.to_unicode())]),
        action: format!("/aliases/{}/remove", alias.id),
        cancel: "/aliases".into(),
        cascade: false,
    }))
}

pub(super) async fn remove_alias(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    app.admin.remove_alias(who, parse_id(&ctx, &id)?).await.map_err(|e| ctx.refused(e))?;
    Ok(done("/aliases", "alias_removed"))
}
