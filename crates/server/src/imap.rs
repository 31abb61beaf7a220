//! Registers the IMAP service (`postfach-imap`) on its listeners.

use postfach_net::Security;

use crate::{Registrar, ServerError, Shared};

/// The `imap` (STARTTLS) and `imaps` (implicit TLS) listeners, which share one admission.
pub(crate) async fn serve(shared: &Shared<'_>, reg: &mut Registrar<'_>) -> Result<(), ServerError> {
    let Shared { config, store, blobs, auth, tls, .. } = *shared;
    let imap = postfach_imap::ImapServer::new(
        store.clone(),
        blobs.clone(),
        auth.clone(),
        Some(tls.clone()),
        config.limits.max_message_size,
    );
    let admission = shared.admission();
    reg.listen(&config.listen.imap, shared.endpoint("imap", Security::Plain, &admission), imap.clone()).await?;
    reg.listen(&config.listen.imaps, shared.endpoint("imaps", Security::ImplicitTls, &admission), imap).await?;
    Ok(())
}
