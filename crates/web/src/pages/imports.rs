//! "Move in from your old provider": the import page of a mailbox. A form (server, port,
//! TLS or STARTTLS, login, password) starts an IMAP import job through
//! `postfach_admin::Admin::start_import`; the page lists the mailbox's jobs with their
//! progress and result, and reloads itself (a meta refresh, no script) while one runs.
//! An interrupted or failed job's server and login fill the form again, so resuming
//! needs only the password (the import positions make it copy only what is new).

use askama::Template;
use axum::extract::{Form, Path, State};
use postfach_admin::{ImportRequest, input};
use postfach_store::import_jobs::{ImportJob, JobState};
use postfach_store::mailboxes::Mailbox;
use serde::Deserialize;

use super::mailboxes::visible_mailbox;
use super::{Layout, PageResult, done, when};
use crate::App;
use crate::context::{Ctx, Who, render};

/// How often the page reloads while a job is queued or running, in seconds.
const REFRESH_SECS: u32 = 3;

/// One job as listed.
pub struct JobRow {
    pub state: &'static str,
    /// The state in the page's language.
    pub state_text: &'static str,
    pub server: String,
    pub login: String,
    pub started_by: String,
    pub created: String,
    pub finished: String,
    pub folders: u64,
    pub copied: u64,
    pub skipped: u64,
    pub current_folder: String,
    pub result: String,
}

/// What the form shows.
#[derive(Default)]
pub struct Typed {
    pub host: String,
    pub port: String,
    pub starttls: bool,
    pub login: String,
}

#[derive(Template)]
#[template(path = "import.html")]
struct ImportPage {
    l: Layout,
    mailbox: Mailbox,
    jobs: Vec<JobRow>,
    /// A job is queued or running: no form, the page reloads.
    active: bool,
    refresh: u32,
    typed: Typed,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ImportForm {
    csrf: String,
    host: String,
    port: String,
    security: String,
    login: String,
    password: String,
}

/// The form's fields, parsed as the API's are.
fn request(form: ImportForm) -> Result<ImportRequest, postfach_admin::AdminError> {
    Ok(ImportRequest {
        server: input::import_server(&form.host, &form.port, &form.security)?,
        login: input::import_login(&form.login)?,
        password: input::import_password(form.password)?,
    })
}

fn row(l: &Layout, job: ImportJob) -> JobRow {
    let state_key = match job.state {
        JobState::Queued => "import.state.queued",
        JobState::Running => "import.state.running",
        JobState::Done => "import.state.done",
        JobState::Failed => "import.state.failed",
        JobState::Interrupted => "import.state.interrupted",
    };
    JobRow {
        state: job.state.as_str(),
        state_text: l.s(state_key),
        server: format!(
            "{}:{}{}",
            job.source.host,
            job.source.port,
            if job.source.starttls { " (STARTTLS)" } else { "" }
        ),
        login: job.source.login,
        started_by: job.started_by,
        created: when(job.created_at),
        finished: job.finished_at.map(when).unwrap_or_default(),
        folders: job.folders,
        copied: job.copied,
        skipped: job.skipped,
        current_folder: job.current_folder.unwrap_or_default(),
        result: job.result.unwrap_or_default(),
    }
}

async fn page(app: &App, ctx: &Ctx, mailbox: Mailbox, error: Option<String>, typed: Option<Typed>) -> PageResult {
    let who = ctx.signed_in()?;
    let jobs = app.admin.import_jobs(who, mailbox.id).await.map_err(|e| ctx.refused(e))?;
    let active = jobs.first().is_some_and(|j| j.state.is_active());
    // The last job that did not finish gives the form's server and login (to resume).
    let typed = typed.unwrap_or_else(|| match jobs.first() {
        Some(j) if matches!(j.state, JobState::Interrupted | JobState::Failed) => Typed {
            host: j.source.host.clone(),
            port: j.source.port.to_string(),
            starttls: j.source.starttls,
            login: j.source.login.clone(),
        },
        _ => Typed::default(),
    });
    let manage = !matches!(who, Who::Mailbox { .. });
    let l = Layout::new(ctx, if manage { "mailboxes" } else { "mailbox" }, error);
    let jobs = jobs.into_iter().map(|j| row(&l, j)).collect();
    Ok(render(&ImportPage { l, mailbox, jobs, active, refresh: REFRESH_SECS, typed }))
}

pub(super) async fn import_page(State(app): State<App>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    page(&app, &ctx, mailbox, None, None).await
}

pub(super) async fn start_import(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<ImportForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let mailbox = visible_mailbox(&app, &ctx, &id).await?;
    let typed = Typed {
        host: form.host.clone(),
        port: form.port.clone(),
        starttls: form.security == "starttls",
        login: form.login.clone(),
    };
    let result = match request(form) {
        Ok(request) => app.admin.start_import(who, mailbox.id, request).await.map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(done(&format!("/mailboxes/{}/import", mailbox.id), "import_started")),
        Err(e) => {
            let text = ctx.form_refusal(e)?;
            page(&app, &ctx, mailbox, Some(text), Some(typed)).await
        }
    }
}
