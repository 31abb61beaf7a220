//! Registers the IMAP service (`postfach-imap`) on its listeners.

use std::sync::Arc;

use crate::listeners;
use crate::{Registrar, ServerError, Shared};

/// The `imap` (STARTTLS) and `imaps` (implicit TLS) listeners, which share one
/// per-address connection limit.
pub(crate) async fn serve(shared: &Shared<'_>, reg: &mut Registrar<'_>) -> Result<(), ServerError> {
    let Shared { config, store, blobs, auth, tls, .. } = *shared;
    let imap = postfach_imap::ImapServer::new(
        store.clone(),
        blobs.clone(),
        auth.clone(),
        Some(tls.clone()),
        config.limits.max_message_size,
    );
    let limiter = postfach_net::ConnectionLimiter::new(config.limits.max_connections_per_ip as usize);
    for (service, addrs, implicit_tls) in [("imap", &config.listen.imap, false), ("imaps", &config.listen.imaps, true)]
    {
        let imap = imap.clone();
        let handler: listeners::Handler =
            Arc::new(move |tcp, peer, slot| Box::pin(imap.clone().serve(tcp, peer, slot, implicit_tls)));
        reg.listen(service, addrs, limiter.clone(), handler).await?;
    }
    Ok(())
}
