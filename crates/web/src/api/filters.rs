//! The API of a mailbox's filters: the vacation and filter forms (the same operations as
//! the panel's forms, `postfach_admin::sieve_forms`) and the active script as text.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use postfach_admin::input;
use postfach_admin::sieve_forms::{ActiveScript, SieveForms};
use serde::Deserialize;
use serde_json::json;

use super::types::{ActiveScriptBody, RulesBody, ScriptBody, SieveFormsView};
use super::{ApiResult, caller, ok, parse_body, refused};
use crate::App;
use crate::context::Ctx;

/// `?replace=true`: replace an active script the forms did not write.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ReplaceQuery {
    replace: bool,
}

fn view(forms: SieveForms) -> SieveFormsView {
    let (active, active_script) = match forms.active {
        ActiveScript::Nothing => ("none", None),
        ActiveScript::Forms => ("forms", Some(postfach_admin::sieve_forms::SCRIPT_NAME.to_string())),
        ActiveScript::HandWritten { name } => ("hand_written", Some(name)),
    };
    SieveFormsView {
        active,
        active_script,
        addresses: forms.addresses.iter().map(|a| a.to_string()).collect(),
        vacation: forms.forms.vacation.map(|v| v.input()),
        rules: forms.forms.rules.iter().map(|r| r.input()).collect(),
    }
}

pub(super) async fn get_filters(State(app): State<App>, ctx: Ctx, method: Method, Path(id): Path<String>) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let fail = |e| refused(&ctx.tr(), e);
    let forms = app.admin.sieve_forms(who, input::id(&id).map_err(fail)?).await.map_err(fail)?;
    ok(view(forms))
}

pub(super) async fn put_vacation(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
    Query(q): Query<ReplaceQuery>,
    body: Bytes,
) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let t = ctx.tr();
    let fail = |e| refused(&t, e);
    let vacation = parse_body(&t, &body)?;
    let forms = app.admin.set_vacation(who, input::id(&id).map_err(fail)?, &vacation, q.replace).await.map_err(fail)?;
    ok(view(forms))
}

pub(super) async fn put_filters(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
    Query(q): Query<ReplaceQuery>,
    body: Bytes,
) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let t = ctx.tr();
    let fail = |e| refused(&t, e);
    let rules: RulesBody = parse_body(&t, &body)?;
    let forms =
        app.admin.set_filters(who, input::id(&id).map_err(fail)?, &rules.rules, q.replace).await.map_err(fail)?;
    ok(view(forms))
}

pub(super) async fn get_script(State(app): State<App>, ctx: Ctx, method: Method, Path(id): Path<String>) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let fail = |e| refused(&ctx.tr(), e);
    let active = app.admin.active_script_text(who, input::id(&id).map_err(fail)?).await.map_err(fail)?;
    match active {
        Some((name, text)) => ok(json!({ "name": name, "text": text })),
        None => ok(json!({ "name": null, "text": "" })),
    }
}

pub(super) async fn put_script(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let t = ctx.tr();
    let fail = |e| refused(&t, e);
    let script: ScriptBody = parse_body(&t, &body)?;
    let id = input::id(&id).map_err(fail)?;
    let name = app.admin.set_active_script_text(who, id, &script.text).await.map_err(fail)?;
    ok(json!({ "name": name, "text": script.text }))
}

pub(super) async fn list_scripts(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let fail = |e| refused(&ctx.tr(), e);
    let scripts = app.admin.list_scripts(who, input::id(&id).map_err(fail)?).await.map_err(fail)?;
    let list: Vec<_> = scripts
        .iter()
        .map(|s| json!({ "name": s.name, "active": s.active, "size": s.size, "updated_at": s.updated_at.rfc3339() }))
        .collect();
    ok(list)
}

pub(super) async fn activate_script(
    State(app): State<App>,
    ctx: Ctx,
    method: Method,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let who = caller(&ctx, &method)?;
    let t = ctx.tr();
    let fail = |e| refused(&t, e);
    let active: ActiveScriptBody = parse_body(&t, &body)?;
    let id = input::id(&id).map_err(fail)?;
    app.admin.activate_script(who, id, active.name.as_deref()).await.map_err(fail)?;
    ok(json!({ "name": active.name }))
}
