//! The DNS side of the server: the [`Platform`] facts and the [`Checker`] built from the
//! configuration, and the periodic task that re-checks every domain.
//!
//! The task runs two minutes after start and then every six hours, on the cluster's leader
//! only (`postfach_store::leader`): it verifies ownership of
//! domains whose TXT record has appeared, gives domains without a DKIM key one, runs the
//! published-record checks, caches the reports (recording changes from ok to error), and
//! activates pending DKIM keys whose record is found. See `postfach_dns::checks::refresh`.

use std::time::Duration;

use postfach_dns::checks::{self, Checker};
use postfach_dns::{DnsError, Platform, ServicePorts};
use postfach_store::leader::Leader;
use postfach_store::{Scope, Store};
use tokio::sync::watch;

use crate::config::Config;

/// Pause between the start and the first round of checks: long enough that a short-lived
/// server (a test, a restart loop) does not query DNS for every domain.
const FIRST_CHECK_AFTER: Duration = Duration::from_secs(120);
/// Pause between two rounds.
const CHECK_INTERVAL: Duration = Duration::from_secs(6 * 3600);

/// The platform's DNS facts from the configuration. SRV ports are the standard ones of
/// each service that listens somewhere; a switched-off service gets the "." target.
pub fn platform(config: &Config) -> Platform {
    let on = |addresses: &[std::net::SocketAddr], port: u16| (!addresses.is_empty()).then_some(port);
    let l = &config.listen;
    Platform {
        hostname: config.hostname.clone(),
        spf_name: config.spf_name(),
        outbound_ips: config.outbound.ips.clone(),
        ports: ServicePorts {
            submissions: on(&l.submissions, 465),
            submission: on(&l.submission, 587),
            imaps: on(&l.imaps, 993),
            imap: on(&l.imap, 143),
            pop3s: on(&l.pop3s, 995),
            pop3: on(&l.pop3, 110),
        },
        tls_reports: config.tls_report_address(),
    }
}

/// A checker asking the configured resolver (`[dns] resolver`) or the system's.
pub fn checker(config: &Config) -> Result<Checker, DnsError> {
    Ok(Checker::new(platform(config), config.dns.resolver)?
        .with_policy_fetch(config.dns.https_port, config.dns.ca_file.clone()))
}

/// Re-checks every domain now and then, until `stopped`; only while this node is the
/// cluster's leader (a round is skipped otherwise, and a round stops between two domains
/// when leadership moves).
pub(crate) async fn periodic_checks(
    store: Store,
    checker: Checker,
    leader: Leader,
    mut stopped: watch::Receiver<bool>,
) {
    let mut pause = FIRST_CHECK_AFTER;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stopped.changed() => return,
        }
        pause = CHECK_INTERVAL;
        if !leader.is_leader() {
            continue;
        }
        let domains = match store.domains(Scope::Platform).await {
            Ok(domains) => domains,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the domains for the DNS checks");
                continue;
            }
        };
        for domain in domains {
            if *stopped.borrow() {
                return;
            }
            if !leader.is_leader() {
                break;
            }
            match checks::refresh(&checker, &store, Scope::Platform, &domain.name).await {
                Ok(done) if done.verified_now => tracing::info!(domain = %domain.name, "domain verified"),
                Ok(_) => {}
                Err(e) => tracing::warn!(domain = %domain.name, error = %e, "the DNS check of a domain failed"),
            }
        }
    }
}

/// The keys a `_25._tcp.HOSTNAME` TLSA record may name (DER SubjectPublicKeyInfo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostnameKeys {
    /// The self-signed default is in use (or the CA has not issued one yet): a TLSA
    /// record is not recommended.
    SelfSigned,
    /// The key of the certificate in use and, for an ACME certificate, the key its
    /// renewal will use.
    Keys { current: Vec<u8>, next: Option<Vec<u8>> },
}

/// The keys of the hostname's certificate: the ACME one when issued, else the
/// configured `[tls]` files, else the self-signed default.
pub async fn hostname_keys(config: &Config, store: &Store) -> Result<HostnameKeys, String> {
    if config.acme.is_some()
        && let Some((current, next)) = crate::acme::tlsa_keys(store, &config.hostname).await?
    {
        return Ok(HostnameKeys::Keys { current, next });
    }
    if let crate::config::TlsSource::Files { key, .. } = &config.tls {
        let pem =
            std::fs::read_to_string(key).map_err(|e| format!("cannot read the key file {}: {e}", key.display()))?;
        let current = crate::acme::public_key_info(&postfach_types::Secret::new(pem))
            .ok_or_else(|| format!("the key file {} holds no key this server can read", key.display()))?;
        return Ok(HostnameKeys::Keys { current, next: None });
    }
    Ok(HostnameKeys::SelfSigned)
}
