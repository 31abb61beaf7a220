//! Registers the IMAP service (`postfach-imap`) on its listeners.

use std::time::Duration;

use postfach_net::Security;

use crate::{Registrar, ServerError, Shared};

/// The `imap` (STARTTLS) and `imaps` (implicit TLS) listeners, which share one admission.
pub(crate) async fn serve(shared: &Shared<'_>, reg: &mut Registrar<'_>) -> Result<(), ServerError> {
    let Shared { config, store, blobs, auth, budget, .. } = *shared;
    let settings = postfach_imap::Settings {
        login_timeout: Duration::from_secs(config.limits.login_timeout_secs),
        ..postfach_imap::Settings::new(config.limits.max_message_size)
    };
    let learner = match crate::spam::rspamd(config) {
        Some(rspamd) => postfach_spam::Learner::spawn(rspamd, blobs.clone()),
        None => postfach_spam::Learner::off(),
    };
    let imap = postfach_imap::ImapServer::with_learner(
        store.clone(),
        blobs.clone(),
        auth.clone(),
        budget.clone(),
        settings,
        learner,
    );
    let admission = shared.admission();
    reg.listen(&config.listen.imap, shared.endpoint("imap", Security::Plain, &admission), imap.clone()).await?;
    reg.listen(&config.listen.imaps, shared.endpoint("imaps", Security::ImplicitTls, &admission), imap).await?;
    Ok(())
}
