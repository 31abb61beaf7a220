//! The login list of all the caller's mailboxes.

use askama::Template;
use axum::extract::{Query, State};
use postfach_admin::{LoginQuery, input};

use super::mailboxes::{FilterQuery, LoginRow, PAGE_LOGINS, login_row};
use super::{Layout, PageResult};
use crate::App;
use crate::context::{Ctx, render};

#[derive(Template)]
#[template(path = "logins.html")]
struct LoginsPage {
    l: Layout,
    logins: Vec<LoginRow>,
    filter: String,
}

pub(super) async fn logins(State(app): State<App>, ctx: Ctx, Query(q): Query<FilterQuery>) -> PageResult {
    let who = ctx.signed_in()?;
    let t = ctx.tr();
    let (query, error, filter) = match input::login_query(Some(&q.filter), PAGE_LOGINS) {
        Ok(query) => (query, None, q.filter),
        Err(e) => (LoginQuery::all(PAGE_LOGINS), Some(ctx.form_refusal(e)?), String::new()),
    };
    let records = app.admin.logins(who, query).await.map_err(|e| ctx.refused(e))?;
    Ok(render(&LoginsPage {
        l: Layout::new(&ctx, "logins", error),
        logins: records.iter().map(|r| login_row(&t, r)).collect(),
        filter,
    }))
}
