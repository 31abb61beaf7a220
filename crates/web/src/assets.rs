//! The panel's stylesheet and script, compiled into the binary: nothing is loaded from
//! another site, and a deployment is one file.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::App;

const CSS: &str = include_str!("../static/app.css");
const JS: &str = include_str!("../static/app.js");

pub fn routes() -> Router<App> {
    Router::new()
        .route("/static/app.css", get(|| async { asset("text/css; charset=utf-8", CSS) }))
        .route("/static/app.js", get(|| async { asset("text/javascript; charset=utf-8", JS) }))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body)
}
