//! The inbound MTA-STS policy file (RFC 8461 §3.2), served on the HTTPS listeners at
//! `https://mta-sts.DOMAIN/.well-known/mta-sts.txt`: the domain is the one the Host
//! header names (the certificate was picked by the same name through SNI). Served only
//! for hosted, verified domains whose mode is not off; everything else gets 404. The text
//! is built by `postfach_dns::mta_sts::policy`, the one place it is decided.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use postfach_dns::mta_sts;
use postfach_store::{Scope, StoreError};

use crate::App;

pub(crate) fn routes() -> Router<App> {
    Router::new().route(mta_sts::POLICY_PATH, axum::routing::get(policy))
}

fn no_policy() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "No MTA-STS policy is published here.\n",
    )
        .into_response()
}

async fn policy(State(app): State<App>, headers: HeaderMap) -> Response {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(name, _port)| name);
    let Some(name) = mta_sts::domain_of_policy_host(host) else { return no_policy() };
    let domain = match app.store.domain(Scope::Platform, &name).await {
        Ok(domain) if domain.verified => domain,
        Ok(_) | Err(StoreError::NotFound(_)) => return no_policy(),
        Err(e) => {
            tracing::warn!(error = %e, "reading a domain for its MTA-STS policy failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    match mta_sts::policy(&app.settings.hostname, domain.mta_sts) {
        Some(text) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response(),
        None => no_policy(),
    }
}
