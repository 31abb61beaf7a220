//! Registers the POP3 service (`postfach-pop3`) on its listeners.

use postfach_net::Security;

use crate::{Registrar, ServerError, Shared};

/// The `pop3` (STLS) and `pop3s` (implicit TLS) listeners, which share one admission
/// and one IN-USE lock.
pub(crate) async fn serve(shared: &Shared<'_>, reg: &mut Registrar<'_>) -> Result<(), ServerError> {
    let Shared { config, store, blobs, auth, .. } = *shared;
    let limits = postfach_pop3::Limits {
        login_timeout: std::time::Duration::from_secs(config.limits.login_timeout_secs),
        ..postfach_pop3::Limits::default()
    };
    let pop3 =
        postfach_pop3::Pop3Server::new(auth.clone(), store.clone(), blobs.clone(), config.hostname.to_string(), limits);
    let admission = shared.admission();
    reg.listen(&config.listen.pop3, shared.endpoint("pop3", Security::Plain, &admission), pop3.clone()).await?;
    reg.listen(&config.listen.pop3s, shared.endpoint("pop3s", Security::ImplicitTls, &admission), pop3).await?;
    Ok(())
}
