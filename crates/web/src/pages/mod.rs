//! The panel's pages: sign-in, the admin's customers and domains, the customer's domains,
//! mailboxes and aliases, the mailbox page, its devices and its import from an old provider, the login list and the account settings.
//!
//! One module per resource. Every handler starts from [`Ctx`], parses its form with
//! `postfach_admin::input` and calls one `postfach_admin` operation as the signed-in user,
//! which checks role and scope; a refusal is shown above the form, or as its own page
//! for not found, forbidden (shown as not found) and unavailable. State-changing forms are POSTs that carry the
//! session's CSRF token; after a change the browser is redirected (POST/redirect/GET) with
//! a `done=` key that names a message from the catalogue. Destructive actions go through a
//! confirmation page first.

mod account;
mod aliases;
mod app_passwords;
mod customers;
mod devices;
pub mod domains;
mod filters;
mod imports;
mod login;
mod logins;
mod mailboxes;
mod sent;

use askama::Template;
use axum::Router;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use postfach_types::UnixTime;
use serde::Deserialize;

use crate::App;
use crate::context::{Ctx, Who};
use crate::i18n::{Lang, Tr};
use account::*;
use aliases::*;
use customers::*;
use domains::*;
use login::*;
use logins::*;
use mailboxes::*;

type PageResult = Result<Response, Response>;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login))
        .route("/login/code", get(code_form).post(code))
        .route("/logout", post(logout))
        .route("/lang/{code}", get(switch_language))
        .route("/admin/customers", get(admin_customers).post(admin_create_customer))
        .route("/admin/customers/{id}/disabled", post(admin_set_disabled))
        .route("/admin/customers/{id}/password", post(admin_reset_password))
        .route("/admin/customers/{id}/quota", post(admin_set_quota))
        .route("/admin/customers/{id}/spam", post(admin_set_spam))
        .route("/admin/customers/{id}/require-tls", post(admin_set_outbound_tls))
        .route("/admin/domains", get(admin_domains))
        .route("/admin/domains/{id}/verified", post(admin_verify_domain))
        .route("/domains", get(domains).post(add_domain))
        .route("/domains/{id}", get(domain))
        .route("/domains/{id}/remove", get(confirm_remove_domain).post(remove_domain))
        .route("/domains/{id}/check", post(check_domain))
        .route("/domains/{id}/certificates", post(set_domain_certificates))
        .route("/domains/{id}/mta-sts", post(set_domain_mta_sts))
        .route("/domain-aliases", post(add_domain_alias))
        .route("/mailboxes", get(mailboxes).post(create_mailbox))
        .route("/mailboxes/{id}", get(mailbox))
        .route("/mailboxes/{id}/settings", post(mailbox_settings))
        .route("/mailboxes/{id}/quota", post(mailbox_quota))
        .route("/mailboxes/{id}/warnings", post(mailbox_warnings))
        .route("/mailboxes/{id}/require-tls", post(mailbox_outbound_tls))
        .route("/mailboxes/{id}/password", post(mailbox_password))
        .route("/mailboxes/{id}/devices", get(devices::devices))
        .route("/mailboxes/{id}/sent", get(sent::sent))
        .route("/mailboxes/{id}/filters", get(filters::filters).post(filters::add_rule))
        .route("/mailboxes/{id}/filters/change", post(filters::change_rule))
        .route("/mailboxes/{id}/vacation", post(filters::save_vacation))
        .route("/mailboxes/{id}/sieve", get(filters::edit_sieve).post(filters::save_sieve))
        .route("/mailboxes/{id}/import", get(imports::import_page).post(imports::start_import))
        .route("/mailboxes/{id}/app-passwords", post(app_passwords::create))
        .route("/mailboxes/{id}/app-passwords/revoke", post(app_passwords::revoke))
        .route("/mailboxes/{id}/app-passwords/only", post(app_passwords::only))
        .route("/mailboxes/{id}/remove", get(confirm_remove_mailbox).post(remove_mailbox))
        .route("/mailboxes/{id}/apple.mobileconfig", get(mobileconfig))
        .route("/aliases", get(aliases).post(add_alias))
        .route("/aliases/{id}/remove", get(confirm_remove_alias).post(remove_alias))
        .route("/logins", get(logins))
        .route("/account", get(account))
        .route("/account/password", post(account_password))
        .route("/account/contact", post(account_contact))
        .route("/account/require-tls", post(account_outbound_tls))
        .route("/account/totp", post(account_totp))
        .route("/account/tokens", post(create_token))
        .route("/account/tokens/{id}/revoke", post(revoke_token))
}

/// What the page frame (`base.html`) shows.
#[derive(Debug)]
pub struct Layout {
    pub t: Tr,
    pub active: &'static str,
    pub role: &'static str,
    pub user: String,
    pub csrf: String,
    /// The other language: (code, name), for the switch.
    pub other_lang: (&'static str, &'static str),
    pub back: String,
    pub notice: Option<&'static str>,
    pub error: Option<String>,
    /// A generated password offered next to every password form (`suggestion.html`),
    /// from the one generator (`postfach_auth::generate`).
    pub suggestion: String,
}

impl Layout {
    pub fn new(ctx: &Ctx, active: &'static str, error: Option<String>) -> Layout {
        let t = ctx.tr();
        let other = match ctx.lang {
            Lang::De => Lang::En,
            Lang::En => Lang::De,
        };
        let notice = query_param(&ctx.path, "done").and_then(|key| t.key(&format!("done.{key}")));
        Layout {
            t,
            active,
            role: ctx.who.as_ref().map_or("", Who::role),
            user: ctx.who.as_ref().map(Who::display_name).unwrap_or_default(),
            csrf: ctx.csrf_token().to_string(),
            other_lang: (other.code(), other.name()),
            back: percent_encode(&ctx.path),
            notice,
            error,
            suggestion: postfach_auth::generate::password().expose().to_string(),
        }
    }

    /// A text of the catalogue in the page's language.
    pub fn s(&self, key: &str) -> &'static str {
        self.t.s(key)
    }

    pub fn lang(&self) -> &'static str {
        self.t.lang().code()
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub l: Layout,
    pub message: String,
}

/// A confirmation page in front of a destructive action.
#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    l: Layout,
    question: String,
    detail: String,
    action: String,
    cancel: String,
    cascade: bool,
}

/// A form that carries only the CSRF token.
#[derive(Deserialize, Default)]
#[serde(default)]
struct CsrfForm {
    csrf: String,
}

pub async fn not_found(ctx: Ctx) -> Response {
    ctx.not_found()
}

pub(crate) fn query_param(path_and_query: &str, name: &str) -> Option<String> {
    let query = path_and_query.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn done(path: &str, key: &str) -> Response {
    let sep = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{sep}done={key}")).into_response()
}

/// A row id from the URL; anything else is a page that does not exist.
// The error is the finished response that ends the request.
#[allow(clippy::result_large_err)]
fn parse_id<I: std::str::FromStr<Err = postfach_types::IdError>>(ctx: &Ctx, text: &str) -> Result<I, Response> {
    postfach_admin::input::id(text).map_err(|e| ctx.refused(e))
}

/// The time for people: `2026-11-27 04:08:04 UTC`.
pub fn when(t: impl std::borrow::Borrow<UnixTime>) -> String {
    t.borrow().rfc3339().replace('T', " ").replace('Z', " UTC")
}
