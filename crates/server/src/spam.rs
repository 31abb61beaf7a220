//! The rspamd client (`postfach-spam`) from `[spam]`, for the MX's checks and IMAP's
//! learning.

use std::time::Duration;

use crate::config::Config;

/// The client, when `[spam]` is configured.
pub(crate) fn rspamd(config: &Config) -> Option<postfach_spam::Rspamd> {
    let spam = config.spam.as_ref()?;
    Some(postfach_spam::Rspamd::new(postfach_spam::Settings {
        rspamd: spam.rspamd.clone(),
        controller: spam.controller.clone(),
        password: spam.password.clone(),
        timeout: Duration::from_secs(spam.timeout_secs),
    }))
}

/// What the MX needs: the client, the failure mode and the platform's thresholds.
pub(crate) fn smtp_settings(config: &Config) -> Option<postfach_smtp::SpamSettings> {
    let spam = config.spam.as_ref()?;
    Some(postfach_smtp::SpamSettings {
        rspamd: rspamd(config)?,
        defer_unchecked: spam.failure == crate::config::SpamFailure::Defer,
        reject_score: spam.reject_score,
        junk_score: spam.junk_score,
    })
}
