//! The customer's domains and alias domains: list, add, the domain page with the DNS
//! records to publish and the last check, running a check, removal.

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use postfach_admin::{AdminError, input};
use postfach_store::domains::Domain;
use postfach_store::mailboxes::Mailbox;
use serde::Deserialize;

use super::{ConfirmPage, CsrfForm, Layout, PageResult, done, parse_id, when};
use crate::App;
use crate::context::{Ctx, Who, render};
use crate::i18n::Lang;

#[derive(Template)]
#[template(path = "domains.html")]
struct DomainsPage {
    l: Layout,
    domains: Vec<Domain>,
    real_domains: Vec<Domain>,
    can_add: bool,
}

pub(super) async fn domains(State(app): State<App>, ctx: Ctx) -> PageResult {
    domains_page(&app, &ctx, None, "domains").await
}

pub(super) async fn domains_page(app: &App, ctx: &Ctx, error: Option<String>, active: &'static str) -> PageResult {
    let who = ctx.signed_in()?;
    let domains = app.admin.domains(who).await.map_err(|e| ctx.refused(e))?;
    let real_domains = domains.iter().filter(|d| d.alias_of.is_none()).cloned().collect();
    let can_add = matches!(who, Who::Customer { .. });
    Ok(render(&DomainsPage { l: Layout::new(ctx, active, error), domains, real_domains, can_add }))
}

/// Shows a refusal above the domain forms, or ends the request with its own page.
async fn refused(app: &App, ctx: &Ctx, e: AdminError) -> PageResult {
    let message = ctx.form_refusal(e)?;
    domains_page(app, ctx, Some(message), "domains").await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct DomainForm {
    csrf: String,
    name: String,
    target: String,
}

pub(super) async fn add_domain(State(app): State<App>, ctx: Ctx, Form(form): Form<DomainForm>) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let added = match input::domain_name(&form.name) {
        Ok(name) => app.admin.add_domain(who, &name, None, false).await,
        Err(e) => Err(e),
    };
    match added {
        Ok(domain) => Ok(done(&format!("/domains/{}", domain.id), "domain_added")),
        Err(e) => refused(&app, &ctx, e).await,
    }
}

pub(super) async fn add_domain_alias(State(app): State<App>, ctx: Ctx, Form(form): Form<DomainForm>) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let added = match (input::domain_name(&form.name), input::domain_name(&form.target)) {
        (Ok(alias), Ok(target)) => app.admin.add_domain_alias(who, &alias, &target, false).await,
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match added {
        Ok(domain) => Ok(done(&format!("/domains/{}", domain.id), "domain_alias_added")),
        Err(e) => refused(&app, &ctx, e).await,
    }
}

#[derive(Template)]
#[template(path = "domain.html")]
struct DomainPage {
    l: Layout,
    domain: Domain,
    ownership: (String, String),
    alias_domains: Vec<Domain>,
    mailboxes: Vec<Mailbox>,
    dns: DnsView,
    tls: TlsReportsView,
}

pub(super) async fn domain(State(app): State<App>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let who = ctx.signed_in()?;
    let fail = |e| ctx.refused(e);
    let domain = app.admin.domain(who, parse_id(&ctx, &id)?).await.map_err(fail)?;
    let alias_domains = app.admin.alias_domains_of(who, &domain).await.map_err(fail)?;
    let mailboxes = if domain.alias_of.is_none() {
        app.admin.mailboxes(who, Some(&domain.name)).await.map_err(fail)?
    } else {
        Vec::new()
    };
    let ownership = domain.ownership_record();
    let dns = dns_view(&app, who, &domain, ctx.lang).await.map_err(fail)?;
    let tls = tls_reports_view(&app, who, &domain, ctx.lang).await.map_err(fail)?;
    let l = Layout::new(&ctx, "domains", None);
    Ok(render(&DomainPage { l, domain, ownership, alias_domains, mailboxes, dns, tls }))
}

/// One received TLS report, as the domain page and the API show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TlsReportRow {
    /// The period the report covers, `start – end` in UTC.
    pub period: String,
    pub organization: String,
    pub contact: String,
    pub report_id: String,
    pub received_at: String,
    pub successful: u64,
    pub failed: u64,
}

/// Failed sessions of one organisation for one reason, summed over the reports shown.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TlsFailureGroup {
    pub organization: String,
    /// The RFC 8460 result type, like `starttls-not-supported`.
    pub result_type: String,
    /// What it means, in the page's language (the result type itself when unknown).
    pub reason: String,
    pub failed: u64,
}

/// The TLS reports other servers sent about a domain (TLS-RPT, RFC 8460).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TlsReportsView {
    pub reports: Vec<TlsReportRow>,
    pub failures: Vec<TlsFailureGroup>,
}

/// The newest TLS reports of a domain and their failures grouped by organisation and
/// result type, in the page's language.
pub async fn tls_reports_view(app: &App, who: &Who, domain: &Domain, lang: Lang) -> Result<TlsReportsView, AdminError> {
    let reports = app.admin.tls_reports(who, domain.id).await?;
    let t = crate::i18n::Tr::new(lang);
    let mut groups: std::collections::BTreeMap<(String, String), u64> = std::collections::BTreeMap::new();
    for report in &reports {
        for failure in &report.summary.failures {
            let key = (report.summary.organization.clone(), failure.result_type.clone());
            let sum = groups.entry(key).or_default();
            *sum = sum.saturating_add(failure.failed);
        }
    }
    let mut failures: Vec<TlsFailureGroup> = groups
        .into_iter()
        .map(|((organization, result_type), failed)| {
            let reason =
                t.key(&format!("tlsrpt.result.{result_type}")).map_or_else(|| result_type.clone(), str::to_string);
            TlsFailureGroup { organization, result_type, reason, failed }
        })
        .collect();
    failures.sort_by_key(|f| std::cmp::Reverse(f.failed));
    let reports = reports
        .into_iter()
        .map(|r| TlsReportRow {
            period: format!("{} – {}", when(r.summary.start), when(r.summary.end)),
            received_at: when(r.received_at),
            organization: r.summary.organization,
            contact: r.summary.contact,
            report_id: r.summary.report_id,
            successful: r.summary.successful,
            failed: r.summary.failed,
        })
        .collect();
    Ok(TlsReportsView { reports, failures })
}

/// One DNS record to publish, as the domain page and the API show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DnsRecordView {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
    /// What the record is for, in the page's language.
    pub purpose: String,
    /// `ok`, `warning`, `error` of the last check, or empty when not checked.
    pub status: String,
}

/// One finding of the last DNS check, in the page's language.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DnsFinding {
    pub check: String,
    pub level: String,
    pub message: String,
}

/// The domain page's DNS part: records to publish and the findings of the last check.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DnsView {
    pub records: Vec<DnsRecordView>,
    pub findings: Vec<DnsFinding>,
    pub checked_at: Option<String>,
    /// A check can be run now (`postfach-dns` is configured).
    pub can_check: bool,
    /// Why the records that name the server are missing: the operator's `hostname` is
    /// not a name others can reach. What to set instead, in the page's language.
    pub hostname_problem: Option<String>,
}

/// The DNS records to publish for a domain (no DNS lookup on a page view) and the cached
/// results of its last check, in the page's language. Without `postfach-dns` only the
/// ownership record is shown.
pub async fn dns_view(app: &App, who: &Who, domain: &Domain, lang: Lang) -> Result<DnsView, AdminError> {
    use postfach_dns::records::Purpose;
    use postfach_store::dns_checks::Check;
    let text = |t: &postfach_store::dns_checks::Text| match lang {
        Lang::De => t.de.clone(),
        Lang::En => t.en.clone(),
    };
    let records = app.admin.domain_records(who, domain).await?;
    let report = records.report;
    let hostname_problem = records.hostname_problem.as_ref().map(text);
    let Some(published) = records.published else {
        let (name, value) = domain.ownership_record();
        let status = if domain.verified { "ok" } else { "error" };
        let record = DnsRecordView { name, kind: "TXT".into(), value, purpose: String::new(), status: status.into() };
        return Ok(DnsView { records: vec![record], ..DnsView::default() });
    };
    let level_of = |purpose: Purpose| {
        let check = match purpose {
            Purpose::Ownership => Check::Ownership,
            Purpose::Mx => Check::Mx,
            Purpose::Spf => Check::Spf,
            Purpose::Dkim => Check::Dkim,
            Purpose::Dmarc => Check::Dmarc,
            Purpose::Srv => Check::Srv,
            Purpose::Autoconfig | Purpose::Autodiscover => Check::Autoconfig,
            Purpose::TlsRpt => Check::TlsRpt,
            Purpose::MtaSts => Check::MtaSts,
            _ => return String::new(),
        };
        report.as_ref().and_then(|r| r.level_of(check)).map(|l| l.as_str().to_string()).unwrap_or_default()
    };
    let records = published
        .iter()
        .map(|r| DnsRecordView {
            name: r.name.clone(),
            kind: r.rtype.as_str().to_string(),
            value: r.value.clone(),
            purpose: text(&r.description),
            status: level_of(r.purpose),
        })
        .collect();
    let findings = report
        .as_ref()
        .map(|r| {
            r.verdicts
                .iter()
                .map(|v| DnsFinding {
                    check: v.check.as_str().to_uppercase(),
                    level: v.level.as_str().into(),
                    message: text(&v.message),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(DnsView { records, findings, checked_at: report.map(|r| when(r.checked_at)), can_check: true, hostname_problem })
}

pub(super) async fn check_domain(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let fail = |e| ctx.refused(e);
    let domain = app.admin.domain(who, parse_id(&ctx, &id)?).await.map_err(fail)?;
    match app.admin.check_domain(who, &domain).await {
        Ok(_) => Ok(done(&format!("/domains/{}", domain.id), "domain_checked")),
        Err(AdminError::DnsChecksOff) => Err(ctx.not_found()),
        Err(e) => {
            tracing::warn!(error = %e, domain = %domain.name, "DNS check failed");
            Err(ctx.error_page(StatusCode::SERVICE_UNAVAILABLE, "error.unavailable"))
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct CertificatesForm {
    csrf: String,
    /// `on` or `off`.
    certificates: String,
}

/// The domain page's certificate switch.
pub(super) async fn set_domain_certificates(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<CertificatesForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let on = form.certificates == "on";
    match app.admin.set_domain_certificates(who, parse_id(&ctx, &id)?, on).await {
        Ok(domain) => {
            let key = if on { "domain_certificates_on" } else { "domain_certificates_off" };
            Ok(done(&format!("/domains/{}", domain.id), key))
        }
        Err(e) => Err(ctx.refused(e)),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct MtaStsForm {
    csrf: String,
    /// `off`, `testing` or `enforce`.
    mta_sts: String,
}

/// The domain page's MTA-STS mode.
pub(super) async fn set_domain_mta_sts(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<MtaStsForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    let mode = postfach_admin::input::mta_sts_mode(&form.mta_sts).map_err(|e| ctx.refused(e))?;
    match app.admin.set_domain_mta_sts(who, parse_id(&ctx, &id)?, mode).await {
        Ok(domain) => Ok(done(&format!("/domains/{}", domain.id), "domain_mta_sts")),
        Err(e) => Err(ctx.refused(e)),
    }
}

pub(super) async fn confirm_remove_domain(State(app): State<App>, ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let who = ctx.signed_in()?;
    let domain = app.admin.domain(who, parse_id(&ctx, &id)?).await.map_err(|e| ctx.refused(e))?;
    let t = ctx.tr();
    Ok(render(&ConfirmPage {
        l: Layout::new(&ctx, "domains", None),
        question: t.f("confirm.domain", &[("name", &domain.name.to_unicode())]),
        detail: t.s("confirm.domain_detail").into(),
        action: format!("/domains/{}/remove", domain.id),
        cancel: format!("/domains/{}", domain.id),
        cascade: true,
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RemoveForm {
    csrf: String,
    cascade: String,
}

pub(super) async fn remove_domain(
    State(app): State<App>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<RemoveForm>,
) -> PageResult {
    let who = ctx.signed_in()?;
    ctx.check_csrf(&form.csrf)?;
    match app.admin.remove_domain(who, parse_id(&ctx, &id)?, form.cascade == "1").await {
        Ok(_) => Ok(done("/domains", "domain_removed")),
        Err(e) => refused(&app, &ctx, e).await,
    }
}
