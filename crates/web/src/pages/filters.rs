//! A mailbox's filters: the vacation form and the filter list (one page, both written as
//! the forms' one Sieve script by `postfach_admin::sieve_forms`), and the "edit as Sieve"
//! view of the active script. When a script the forms did not write is active, the page
//! says so and the forms ask before replacing it.

use askama::Template;
use axum::extract::{Form, Path, State};
use postfach_admin::AdminError;
use postfach_admin::sieve_forms::{Action, ActiveScript, Field, Match, RuleInput, SieveForms, VacationInput};
use postfach_store::mailboxes::Mailbox;
use serde::Deserialize;

use super::mailboxes::visible_mailbox;
use super::{Layout, PageResult, done};
use crate::App;
use crate::context::{Ctx, Who, render};
use crate::i18n::Tr;

/// One rule of the list, ready to show.
pub struct RuleRow {
    pub header: String,
    pub match_type: &'static str,
    pub value: String,
    pub action: String,
}

#[derive(Template)]
#[template(path = "filters.html")]
struct FiltersPage {
    l: Layout,
    mailbox: Mailbox,
    /// The name of a hand-written script that is active.
    hand_written: Option<String>,
    active_forms: bool,
    vacation: VacationInput,
    /// The addresses a vacation may name: (address, checked).
    addresses: Vec<(String, bool)>,
    rules: Vec<RuleRow>,
    /// The add-a-rule form's values after a refusal.
    new_rule: RuleInput,
    new_rule_other: String,
}

fn rule_row(t: &Tr, rule: &postfach_admin::sieve_forms::Rule) -> RuleRow {
    RuleRow {
        header: match &rule.field {
            Field::From => t.s("filters.header_from").to_string(),
            Field::To => t.s("filters.header_to").to_string(),
            Field::Subject => t.s("filters.header_subject").to_string(),
            Field::Named(name) => name.clone(),
        },
        match_type: t.s(match rule.match_type {
            Match::Contains => "filters.contains",
            Match::Is => "filters.is",
        }),
        value: rule.value.clone(),
        action: match &rule.action {
            Action::Move(folder) => t.f("filters.moved_to", &[("folder", folder)]),
            Action::MarkRead => t.s("filters.mark_read").to_string(),
            Action::Flag => t.s("filters.flag").to_string(),
            Action::Discard => t.s("filters.discard").to_string(),
        },
    }
}

/// What a form showed when it was refused, to show again.
#[derive(Default)]
struct Typed {
    vacation: Option<VacationInput>,
    rule: Option<(RuleInput, String)>,
}

async fn filters_page(app: &App, ctx: &Ctx, mailbox: Mailbox, error: Option<String>, typed: Typed) -> PageResult {
    let who = ctx.signed_in()?;
    let t = ctx.tr();
    let SieveForms { forms, active, addresses } =
        app.admin.sieve_forms(who, mailbox.id).await.map_err(|e| ctx.refused(e))?;
    let vacation = typed.vacation.unwrap_or_else(|| {
        forms.vacation.as_ref().map(|v| v.input()).unwrap_or_else(|| VacationInput { days: 7, ..Default::default() })
    });
    let addresses = addresses
        .iter()
        .map(|a| {
            let text = a.to_string();
            let checked = vacation.addresses.contains(&text);
            (text, checked)
        })
        .collect();
    let (new_rule, new_rule_other) = typed.rule.unwrap_or_default();
    let manage = !matches!(who, Who::Mailbox { .. });
    Ok(render(&FiltersPage {
        l: Layout::new(ctx, if manage { "mailboxes" } else { "mailbox" }, error),
        mailbox,
        hand_written: match &active {
            ActiveScript::HandWritten { name } => Some(name.clone()),
            _ => None,
        },
        active_forms: active == ActiveScript::Forms,
        vacation,
        addresses,
        rules: forms.rules.iter().map(|r| rule_row(&t, r)).collect(),
        new_rule,
        new_rule_other,
    }))
}

pub(super) async fn filters(State(app): State<App>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    filters_page(&app, &ctx, mailbox, None, Typed::default()).await
}

/// A refusal shown above the forms, or its own page.
async fn refused(app: &App, ctx: &Ctx, mailbox: Mailbox, e: AdminError, typed: Typed) -> PageResult {
    let message = ctx.form_refusal(e)?;
    filters_page(app, ctx, mailbox, Some(message), typed).await
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
}

/// The vacation form (several `addresses` fields, so a list of pairs).
pub(super) async fn save_vacation(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(field(&form, "csrf"))?;
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    let days = field(&form, "days").trim();
    let input = VacationInput {
        enabled: field(&form, "enabled") == "on",
        from: field(&form, "from").to_string(),
        until: field(&form, "until").to_string(),
        subject: field(&form, "subject").to_string(),
        text: field(&form, "text").to_string(),
        addresses: form.iter().filter(|(k, _)| k == "addresses").map(|(_, v)| v.clone()).collect(),
        // Not a number: out of range, refused with the days' own text.
        days: if days.is_empty() { 0 } else { days.parse().unwrap_or(u32::MAX) },
    };
    let replace = field(&form, "replace") == "on";
    match app.admin.set_vacation(who, mailbox.id, &input, replace).await {
        Ok(_) => Ok(done(&format!("/mailboxes/{}/filters", mailbox.id), "vacation_saved")),
        Err(e) => refused(&app, &ctx, mailbox, e, Typed { vacation: Some(input), rule: None }).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RuleForm {
    csrf: String,
    /// `from`, `to`, `subject` or `other` (then `header_name`).
    header: String,
    header_name: String,
    #[serde(rename = "match")]
    match_type: String,
    value: String,
    action: String,
    folder: String,
    replace: String,
}

/// Adds a rule at the end of the list.
pub(super) async fn add_rule(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<RuleForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    let current = app.admin.sieve_forms(who, mailbox.id).await.map_err(|e| ctx.refused(e))?;
    let header = if form.header == "other" { form.header_name.clone() } else { form.header.clone() };
    let rule = RuleInput {
        header,
        match_type: form.match_type.clone(),
        value: form.value.clone(),
        action: form.action.clone(),
        folder: form.folder.clone(),
    };
    let mut rules: Vec<RuleInput> = current.forms.rules.iter().map(|r| r.input()).collect();
    rules.push(rule);
    match app.admin.set_filters(who, mailbox.id, &rules, form.replace == "on").await {
        Ok(_) => Ok(done(&format!("/mailboxes/{}/filters", mailbox.id), "filter_added")),
        Err(e) => {
            let typed = RuleInput {
                header: form.header,
                match_type: form.match_type,
                value: form.value,
                action: form.action,
                folder: form.folder,
            };
            refused(&app, &ctx, mailbox, e, Typed { vacation: None, rule: Some((typed, form.header_name)) }).await
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RuleIndexForm {
    csrf: String,
    index: usize,
    /// `remove` or `up`.
    change: String,
    replace: String,
}

/// Removes a rule, or moves it one place up.
pub(super) async fn change_rule(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<RuleIndexForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    let current = app.admin.sieve_forms(who, mailbox.id).await.map_err(|e| ctx.refused(e))?;
    let mut rules: Vec<RuleInput> = current.forms.rules.iter().map(|r| r.input()).collect();
    if form.index >= rules.len() {
        return Ok(done(&format!("/mailboxes/{}/filters", mailbox.id), "filters_saved"));
    }
    match form.change.as_str() {
        "up" if form.index > 0 => rules.swap(form.index - 1, form.index),
        "remove" => {
            rules.remove(form.index);
        }
        _ => {}
    }
    match app.admin.set_filters(who, mailbox.id, &rules, form.replace == "on").await {
        Ok(_) => Ok(done(&format!("/mailboxes/{}/filters", mailbox.id), "filters_saved")),
        Err(e) => refused(&app, &ctx, mailbox, e, Typed::default()).await,
    }
}

#[derive(Template)]
#[template(path = "sieve_edit.html")]
struct SieveEditPage {
    l: Layout,
    mailbox: Mailbox,
    /// The active script's name (the one saved), or the forms' name when none is active.
    name: String,
    text: String,
}

async fn edit_page(app: &App, ctx: &Ctx, mailbox: Mailbox, error: Option<String>, typed: Option<String>) -> PageResult {
    let who = ctx.signed_in()?;
    let fail = |e| ctx.refused(e);
    let (name, text) = match app.admin.active_script_text(who, mailbox.id).await.map_err(fail)? {
        Some(active) => active,
        // None is active: the forms' script if it is stored (saving activates it).
        None => {
            let name = postfach_admin::sieve_forms::SCRIPT_NAME;
            let stored = app.admin.script_text(who, mailbox.id, name).await.map_err(fail)?;
            (name.to_string(), stored.unwrap_or_default())
        }
    };
    let manage = !matches!(who, Who::Mailbox { .. });
    Ok(render(&SieveEditPage {
        l: Layout::new(ctx, if manage { "mailboxes" } else { "mailbox" }, error),
        mailbox,
        name,
        text: typed.unwrap_or(text),
    }))
}

pub(super) async fn edit_sieve(State(app): State<App>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    edit_page(&app, &ctx, mailbox, None, None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct SieveForm {
    csrf: String,
    script: String,
}

/// Saves the text as the active script (checked first; an error names line and column).
pub(super) async fn save_sieve(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<SieveForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    match app.admin.set_active_script_text(who, mailbox.id, &form.script).await {
        Ok(_) => Ok(done(&format!("/mailboxes/{}/sieve", mailbox.id), "script_saved")),
        Err(e) => {
            let message = ctx.form_refusal(e)?;
            edit_page(&app, &ctx, mailbox, Some(message), Some(form.script)).await
        }
    }
}
