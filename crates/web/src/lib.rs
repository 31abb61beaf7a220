//! The customer panel ("Kundensystem"), the JSON API under `/api/v1` and client
//! autoconfiguration, served over HTTPS by `postfach-server`.
//!
//! Pages are rendered on the server with askama templates (`templates/`), in German or
//! English; the CSS and the one small script are compiled into the binary
//! ([`assets`]). Everyone signs in through [`Authenticator::authenticate`] with
//! `Service::Panel`, so the panel shares the throttle and the login log with the mail
//! protocols. Pages and API handlers are adapters over `postfach-admin`: they parse input
//! with `postfach_admin::input`, call one operation as the signed-in `Who` (whose
//! scope the operation checks) and show its refusal in the caller's language, the same
//! for a form and for the API call. Another customer's objects look like they do not
//! exist.
//!
//! The server runs [`Web::https_protocol`] on its HTTPS listeners and
//! [`Web::http_protocol`] on its plain ones (`postfach_net` accepts the connections and
//! does the TLS handshake); plain HTTP only redirects to HTTPS, except for Thunderbird's
//! autoconfig URLs, which Thunderbird fetches over plain HTTP too (see [`autoconfig`]).
//! The HTTPS listeners also serve each domain's MTA-STS policy file (`mta_sts`).

mod api;
mod assets;
pub mod autoconfig;
mod context;
mod i18n;
mod mta_sts;
mod openapi;
mod pages;

/// The API's request and response bodies. The CLI's `--json` prints the same response
/// views, so a store row has one JSON shape wherever it is shown.
pub use api::types;

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Request, header};
use axum::response::{IntoResponse, Redirect, Response};
use futures_util::future::BoxFuture;
use hyper_util::rt::{TokioIo, TokioTimer};
use postfach_auth::Authenticator;
use postfach_net::{Busy, Conn, Protocol};
use postfach_store::Store;
use postfach_types::{DomainName, TlsInfo};
use tokio::io::{AsyncRead, AsyncWrite};
use tower::ServiceExt;
use tower_http::set_header::SetResponseHeaderLayer;

pub use context::SESSION_COOKIE;
pub use i18n::Lang;
pub use postfach_auth::tokens::token_hash;
pub use postfach_auth::totp::totp_code;

/// The web crate's errors that reach its callers (request handling reports its own
/// failures as pages or JSON).
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("cannot render a page: {0}")]
    Template(#[from] askama::Error),
    #[error(transparent)]
    Store(#[from] postfach_store::StoreError),
}

/// Where the mail services can be reached, for autoconfiguration. `None`: the service is
/// switched off. Only TLS endpoints are ever offered: implicit TLS where it is on
/// (RFC 8314 §3), STARTTLS otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailEndpoints {
    pub imaps: Option<u16>,
    pub imap: Option<u16>,
    pub pop3s: Option<u16>,
    pub pop3: Option<u16>,
    pub submissions: Option<u16>,
    pub submission: Option<u16>,
}

/// What the panel needs to know about the server it runs in.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// The server's public name: the host of every mail endpoint offered by
    /// autoconfiguration, and of HTTPS redirects.
    pub hostname: DomainName,
    /// The HTTPS port that plain HTTP redirects to.
    pub https_port: u16,
    pub endpoints: MailEndpoints,
    /// The DNS records and checks of `postfach-dns`; `None` shows only the ownership
    /// record and never runs a check.
    pub dns: Option<postfach_dns::checks::Checker>,
    /// `[sieve]`: the limits of scripts stored through the panel and the API.
    pub sieve_limits: postfach_admin::SieveLimits,
    /// This node's import jobs; `None`: the panel starts none.
    pub imports: Option<postfach_admin::ImportRunner>,
}

/// Facts about the client connection, attached to every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConnection {
    pub remote_ip: IpAddr,
    /// `None` on plain HTTP.
    pub tls: Option<TlsInfo>,
}

pub(crate) struct AppState {
    pub store: Store,
    /// Every administrative operation, as the signed-in caller.
    pub admin: postfach_admin::Admin,
    pub auth: Arc<Authenticator>,
    pub settings: WebSettings,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("settings", &self.settings).finish_non_exhaustive()
    }
}

pub(crate) type App = Arc<AppState>;

/// The panel, API and autoconfiguration. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Web {
    https: Router,
    http: Router,
}

/// Longest wait for a request's header (slow clients hold no slot forever).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a single connection is kept, however busy.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Largest request body (forms and JSON are small).
const MAX_BODY: usize = 64 * 1024;

impl Web {
    pub fn new(store: Store, auth: Arc<Authenticator>, settings: WebSettings) -> Web {
        let admin = postfach_admin::Admin::new(store.clone(), auth.clone(), settings.dns.clone())
            .with_sieve_limits(settings.sieve_limits)
            .with_imports(settings.imports.clone());
        let app: App = Arc::new(AppState { store, admin, auth, settings });
        Web { https: https_router(app.clone()), http: http_router(app) }
    }

    /// The HTTPS application, for handler-level tests: requests need a
    /// [`ClientConnection`] extension.
    pub fn router(&self) -> Router {
        self.https.clone()
    }

    /// The plain-HTTP application (redirects and Thunderbird autoconfig).
    pub fn http_router(&self) -> Router {
        self.http.clone()
    }

    /// The protocol of the `https` listeners (the TLS handshake happened in
    /// `postfach_net`, under its timeout and after admission).
    pub fn https_protocol(&self) -> Arc<dyn Protocol> {
        Arc::new(Listener { router: self.https.clone() })
    }

    /// The protocol of the plain `http` listeners.
    pub fn http_protocol(&self) -> Arc<dyn Protocol> {
        Arc::new(Listener { router: self.http.clone() })
    }
}

/// What the `[metrics]` listeners serve: the metrics in Prometheus text.
pub trait MetricsSource: Send + Sync + 'static {
    fn render(&self) -> BoxFuture<'_, String>;
}

/// The protocol of the `[metrics]` listeners: `GET /metrics` and nothing else, over plain
/// HTTP with the same bounded request reading and timeouts as the panel's.
pub fn metrics_protocol(source: Arc<dyn MetricsSource>) -> Arc<dyn Protocol> {
    async fn metrics(axum::extract::State(source): axum::extract::State<Arc<dyn MetricsSource>>) -> Response {
        let body = source.render().await;
        ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
    }
    let router = Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "Only /metrics is served here.\n") })
        .layer(DefaultBodyLimit::max(0))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .with_state(source);
    Arc::new(Listener { router })
}

/// One kind of HTTP listener.
struct Listener {
    router: Router,
}

impl Protocol for Listener {
    fn busy_reply(&self, _why: Busy) -> Vec<u8> {
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 60\r\nConnection: close\r\nContent-Length: 52\r\n\r\nToo many connections; please try again in a minute.\n".to_vec()
    }

    fn serve(self: Arc<Self>, conn: Conn) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let remote_ip = conn.peer().ip();
            let tls = conn.tls_info().cloned();
            let Some((stream, _slot)) = conn.into_stream() else { return };
            let connection = ClientConnection { remote_ip, tls };
            serve_connection(stream, connection, self.router.clone()).await;
        })
    }
}

async fn serve_connection<S>(io: S, conn: ClientConnection, router: Router)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(conn.clone());
        let router = router.clone();
        async move { Ok::<Response, Infallible>(router.oneshot(request.map(Body::new)).await.into_response()) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    if let Ok(Err(e)) = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await {
        tracing::debug!(error = %e, "HTTP connection ended with an error");
    }
}

fn https_router(app: App) -> Router {
    Router::new()
        .merge(pages::routes())
        .merge(autoconfig::routes())
        .merge(mta_sts::routes())
        .nest("/api/v1", api::routes())
        .merge(assets::routes())
        .fallback(pages::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                 form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ))
        .with_state(app)
}

/// Plain HTTP: Thunderbird's autoconfig URLs are answered (Thunderbird asks
/// `http://autoconfig.<domain>/mail/config-v1.1.xml`; the answer only names TLS
/// endpoints, whose certificates the client checks), and so are ACME http-01 challenges
/// ([`acme_challenge`]); everything else is redirected to HTTPS at the configured hostname
/// (never at the Host header, so no open redirect).
fn http_router(app: App) -> Router {
    Router::new()
        .merge(autoconfig::thunderbird_routes())
        .route("/.well-known/acme-challenge/{token}", axum::routing::get(acme_challenge))
        .fallback(redirect_to_https)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .with_state(app)
}

/// The longest ACME token answered (RFC 8555 §8.3: base64url of at least 128 bits).
const MAX_ACME_TOKEN: usize = 128;

/// ACME http-01 (RFC 8555 §8.3): the key authorization for a token being validated, from
/// the database (any node may be asked). Unknown or malformed tokens get 404.
async fn acme_challenge(
    axum::extract::State(app): axum::extract::State<App>,
    axum::extract::Path(token): axum::extract::Path<String>,
) -> Response {
    use axum::http::StatusCode;
    let well_formed = !token.is_empty()
        && token.len() <= MAX_ACME_TOKEN
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return StatusCode::NOT_FOUND.into_response();
    }
    match app.store.http_challenge(&token).await {
        Ok(Some(answer)) => ([(header::CONTENT_TYPE, "application/octet-stream")], answer).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "reading an ACME challenge failed");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

async fn redirect_to_https(axum::extract::State(app): axum::extract::State<App>, uri: axum::http::Uri) -> Response {
    let host = &app.settings.hostname;
    let port = match app.settings.https_port {
        443 => String::new(),
        port => format!(":{port}"),
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    // 308 keeps the method, so an autodiscover POST arrives as a POST.
    Redirect::permanent(&format!("https://{host}{port}{path}")).into_response()
}
