//! Registers the ManageSieve service (`postfach-managesieve`) on its listener.

use postfach_net::Security;

use crate::{Registrar, ServerError, Shared};

/// The `managesieve` listener (STARTTLS, RFC 5804 §2.2; no implicit-TLS port exists).
pub(crate) async fn serve(shared: &Shared<'_>, reg: &mut Registrar<'_>) -> Result<(), ServerError> {
    let Shared { config, store, auth, .. } = *shared;
    let limits = postfach_managesieve::Limits {
        login_timeout: std::time::Duration::from_secs(config.limits.login_timeout_secs),
        ..postfach_managesieve::Limits::default()
    };
    // Script operations need no DNS checks.
    let admin = postfach_admin::Admin::new(store.clone(), auth.clone(), None).with_sieve_limits(config.sieve.limits());
    let server = postfach_managesieve::ManageSieveServer::new(
        auth.clone(),
        admin,
        store.clone(),
        config.hostname.to_string(),
        limits,
    );
    let admission = shared.admission();
    reg.listen(&config.listen.managesieve, shared.endpoint("managesieve", Security::Plain, &admission), server).await?;
    Ok(())
}
