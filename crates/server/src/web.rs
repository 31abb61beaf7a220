//! Registers the panel, API and autoconfig (`postfach-web`) on the `https` and `http`
//! listeners.
//!
//! HTTPS connections get TLS from the server's one certificate; plain HTTP only
//! redirects to HTTPS and answers Thunderbird's autoconfig URLs (see
//! `postfach_web::autoconfig`). Autoconfiguration names the ports the mail services
//! actually listen on, so this runs after the protocol listeners are bound.

use postfach_net::Security;
use postfach_web::{MailEndpoints, Web, WebSettings};

use crate::config::Config;
use crate::listeners::{BindError, BoundAddresses};
use crate::{Registrar, Shared};

/// The port clients reach `service` on: the bound one (tests listen on port 0), else the
/// configured one; `None` when the service is switched off.
fn port(config: &Config, bound: &BoundAddresses, service: &str) -> Option<u16> {
    let configured = config.listen.services().into_iter().find(|(name, _)| *name == service)?.1.first()?.port();
    Some(bound.first(service).map_or(configured, |a| a.port()))
}

pub(crate) async fn serve(shared: &Shared<'_>, reg: &mut Registrar<'_>) -> Result<(), BindError> {
    let Shared { config, store, auth, .. } = *shared;
    let admission = shared.admission();
    let endpoints = MailEndpoints {
        imaps: port(config, reg.bound(), "imaps"),
        imap: port(config, reg.bound(), "imap"),
        pop3s: port(config, reg.bound(), "pop3s"),
        pop3: port(config, reg.bound(), "pop3"),
        submissions: port(config, reg.bound(), "submissions"),
        submission: port(config, reg.bound(), "submission"),
    };
    // The HTTPS port is known only once it is bound; plain HTTP is bound afterwards.
    let dns = match crate::dns::checker(config) {
        Ok(checker) => Some(checker),
        Err(e) => {
            tracing::warn!(error = %e, "the panel shows DNS records without checks");
            None
        }
    };
    let sieve_limits = config.sieve.limits();
    let imports = import_runner(shared).await;
    let pending =
        WebSettings { hostname: config.hostname.clone(), https_port: 443, endpoints, dns, sieve_limits, imports };
    let web = Web::new(store.clone(), auth.clone(), pending.clone());
    let https = shared.endpoint("https", Security::ImplicitTls, &admission);
    reg.listen(&config.listen.https, https, web.https_protocol()).await?;
    let https_port = reg.bound().first("https").map_or(443, |a| a.port());
    let http_web = Web::new(store.clone(), auth.clone(), WebSettings { https_port, ..pending });
    let http = shared.endpoint("http", Security::Plain, &admission);
    reg.listen(&config.listen.http, http, http_web.http_protocol()).await?;
    Ok(())
}

/// This node's import jobs (one runner for both listeners, so the slots are shared).
/// Jobs this node left queued or running when it last stopped become interrupted first.
async fn import_runner(shared: &Shared<'_>) -> Option<postfach_admin::ImportRunner> {
    let config = shared.config;
    let runner = postfach_admin::ImportRunner::new(
        shared.blobs.clone(),
        config.cluster.node.clone(),
        config.limits.max_message_size,
        config.import.allow_private_targets,
        config.import.ca_file.clone(),
    );
    match runner.interrupt_stale_jobs(shared.store).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(jobs = n, "import jobs cut off by this node's last stop are now shown as interrupted"),
        Err(e) => tracing::warn!(error = %e, "import jobs left running by this node's last stop could not be marked"),
    }
    Some(runner)
}
