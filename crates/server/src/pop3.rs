//! Registers the POP3 service (`postfach-pop3`) on its listeners.

use std::sync::Arc;

use crate::listeners;
use crate::{Registrar, ServerError, Shared};

/// The `pop3` (STLS) and `pop3s` (implicit TLS) listeners, which share one per-address
/// connection limit and one IN-USE lock.
pub(crate) async fn serve(shared: &Shared<'_>, reg: &mut Registrar<'_>) -> Result<(), ServerError> {
    let Shared { config, store, blobs, auth, tls, .. } = *shared;
    use postfach_pop3::{Pop3Server, Transport};
    let pop3 = Pop3Server::new(
        auth.clone(),
        store.clone(),
        blobs.clone(),
        postfach_net::TlsAcceptor::new(tls.clone()),
        config.hostname.to_string(),
        postfach_pop3::Limits::default(),
    );
    let limiter = postfach_net::ConnectionLimiter::new(config.limits.max_connections_per_ip as usize);
    let plain: listeners::Handler = Arc::new(pop3.handler(Transport::Starttls));
    reg.listen("pop3", &config.listen.pop3, limiter.clone(), plain).await?;
    let implicit: listeners::Handler = Arc::new(pop3.handler(Transport::ImplicitTls));
    reg.listen("pop3s", &config.listen.pop3s, limiter, implicit).await?;
    Ok(())
}
