//! Certificates on every node, and ACME orders on the cluster's leader.
//!
//! Every node polls the database's certificate counter (`Store::tls_generation`) every
//! [`RELOAD_EVERY`] and, when it changed, installs the stored certificates and
//! tls-alpn-01 challenge certificates into its resolver (`tls::Certificates`): new
//! certificates are used without a restart. The self-signed default is renewed here too.
//!
//! With `[acme]` configured, the leader (`postfach_store::leader`) keeps one certificate
//! for the hostname and one per verified customer domain that opted in, covering those of
//! `mail.D`, `autoconfig.D` and `autodiscover.D` that point here (their addresses, CNAMEs
//! followed, share one with the hostname's), plus `mta-sts.D` for every verified domain
//! whose MTA-STS mode is not off (the policy file is served there). It orders a certificate when none is issued,
//! when its names changed, or [`RENEW_BEFORE_DAYS`] before it expires; a failed order is
//! recorded with its reason and retried after a backoff that doubles from
//! [`FIRST_BACKOFF`] up to [`MAX_BACKOFF`]. Challenge responses are written to the
//! database, so whichever node the CA reaches answers. Private keys are never logged.
//!
//! Each stored certificate comes with the key of its next order (`next_key_pem`), made
//! now: a `3 1 1` TLSA record for that key can be published before the renewal
//! ([`tlsa_keys`]). An order uses the stored next key, or a fresh one when there is none.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use postfach_dns::checks::Checker;
use postfach_store::Store;
use postfach_store::certificates::{Challenge, Issued, StoredCertificate};
use postfach_store::leader::Leader;
use postfach_types::{DomainName, Secret, UnixTime};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::watch;

use crate::config::{Acme, AcmeChallenge, Config};
use crate::tls::{self, Certificates};

/// How often each node asks whether certificates or challenges changed.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);
/// How often the leader re-plans without a change (names may have started pointing here).
const PLAN_EVERY: Duration = Duration::from_secs(3600);
/// How often the self-signed default is checked for renewal.
const SELF_SIGNED_EVERY: Duration = Duration::from_secs(3600);
/// A certificate is renewed when it expires within this many days.
pub const RENEW_BEFORE_DAYS: i64 = 30;
/// The pause after a first failed order; it doubles with each further failure.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(600);
/// The longest pause between two failed orders.
pub const MAX_BACKOFF: Duration = Duration::from_secs(86_400);
/// The longest one order may take, challenges included.
const ORDER_TIMEOUT: Duration = Duration::from_secs(180);
/// Challenges older than this are left over from an interrupted order.
const CHALLENGE_LIFETIME: i64 = 3600;

/// The service names of a customer domain that may get a certificate.
pub const SERVICE_LABELS: [&str; 3] = ["mail", "autoconfig", "autodiscover"];

/// Keeps this node's certificates current, and on the leader orders them, until `stopped`.
pub(crate) async fn maintain(
    store: Store,
    config: Config,
    certificates: Arc<Certificates>,
    checker: Option<Checker>,
    leader: Leader,
    mut stopped: watch::Receiver<bool>,
) {
    let mut seen = None;
    let mut next_plan = Instant::now();
    let mut self_signed_checked = Instant::now();
    loop {
        let generation = match store.tls_generation().await {
            Ok(g) => Some(g),
            Err(e) => {
                tracing::warn!(error = %e, "reading the certificate state failed");
                None
            }
        };
        let changed = generation.is_some() && generation != seen;
        if changed {
            match reload(&store, &certificates, &config).await {
                Ok(()) => seen = generation,
                Err(e) => tracing::warn!(error = %e, "loading the certificates failed"),
            }
        }
        if self_signed_checked.elapsed() >= SELF_SIGNED_EVERY {
            self_signed_checked = Instant::now();
            match tls::renew_self_signed(&config, &certificates) {
                Ok(true) => tracing::info!("renewed the self-signed TLS certificate"),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "renewing the self-signed TLS certificate failed"),
            }
        }
        if let Some(acme) = &config.acme
            && leader.is_leader()
            && (changed || Instant::now() >= next_plan)
        {
            let wait = plan(&store, &config, acme, &certificates, checker.as_ref(), &leader).await;
            next_plan = Instant::now() + wait;
        }
        tokio::select! {
            _ = tokio::time::sleep(RELOAD_EVERY) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// Installs the stored certificates and challenge certificates into the resolver.
async fn reload(store: &Store, certificates: &Certificates, config: &Config) -> Result<(), String> {
    let stored = store.certificates().await.map_err(|e| e.to_string())?;
    let mut issued = Vec::new();
    for certificate in &stored {
        let Some(found) = &certificate.issued else { continue };
        match usable(found) {
            Ok(key) => issued.push((certificate.names.iter().map(|n| n.as_str().to_string()).collect(), key)),
            Err(e) => tracing::warn!(subject = %certificate.subject, error = %e, "a stored certificate is unusable"),
        }
    }
    certificates.set_issued(config.hostname.as_str(), issued);
    let mut answers = HashMap::new();
    for challenge in store.challenges().await.map_err(|e| e.to_string())? {
        if challenge.kind != "tls-alpn-01" {
            continue;
        }
        match challenge_certificate(&challenge) {
            Ok(key) => {
                answers.insert(challenge.name.as_str().to_string(), key);
            }
            Err(e) => tracing::warn!(name = %challenge.name, error = %e, "cannot make a tls-alpn-01 certificate"),
        }
    }
    certificates.set_challenges(answers);
    Ok(())
}

fn usable(issued: &Issued) -> Result<Arc<rustls::sign::CertifiedKey>, String> {
    let chain = CertificateDer::pem_slice_iter(issued.chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate chain: {e}"))?;
    // The key's own error text could quote it; say only what kind of problem it is.
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.expose().as_bytes())
        .map_err(|_| "the private key is not valid PEM".to_string())?;
    tls::certified_key(chain, key).map_err(|e| e.to_string())
}

/// The self-signed certificate RFC 8737 asks for: the name, and the SHA-256 of the key
/// authorization in the critical acmeIdentifier extension.
fn challenge_certificate(challenge: &Challenge) -> Result<Arc<rustls::sign::CertifiedKey>, String> {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, challenge.value.as_bytes());
    let mut params =
        rcgen::CertificateParams::new(vec![challenge.name.as_str().to_string()]).map_err(|e| e.to_string())?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest.as_ref())];
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let private = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    tls::challenge_key(cert.der().clone(), private).map_err(|e| e.to_string())
}

/// One certificate the server should have.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    subject: DomainName,
    names: Vec<DomainName>,
}

/// Decides which certificates are wanted, forgets the others, and orders those that are
/// due. Returns how long until the next plan without a change.
async fn plan(
    store: &Store,
    config: &Config,
    acme: &Acme,
    certificates: &Certificates,
    checker: Option<&Checker>,
    leader: &Leader,
) -> Duration {
    let wanted = match wanted(store, config, checker).await {
        Ok(wanted) => wanted,
        Err(e) => {
            tracing::warn!(error = %e, "listing the names that need certificates failed");
            return FIRST_BACKOFF;
        }
    };
    let subjects: Vec<DomainName> = wanted.iter().map(|w| w.subject.clone()).collect();
    if let Err(e) = store.retain_certificates(&subjects).await {
        tracing::warn!(error = %e, "forgetting unwanted certificates failed");
    }
    let _ = store.prune_challenges(UnixTime(UnixTime::now().0 - CHALLENGE_LIFETIME)).await;
    let stored = match store.certificates().await {
        Ok(stored) => stored,
        Err(e) => {
            tracing::warn!(error = %e, "reading the certificates failed");
            return FIRST_BACKOFF;
        }
    };
    let now = UnixTime::now().0;
    let mut next = PLAN_EVERY;
    for want in wanted {
        if !leader.is_leader() {
            break;
        }
        let current = stored.iter().find(|c| c.subject == want.subject);
        match due_at(current, &want.names) {
            at if at <= now => {}
            at => {
                next = next.min(Duration::from_secs(u64::try_from(at - now).unwrap_or(0)));
                continue;
            }
        }
        tracing::info!(subject = %want.subject, names = ?want.names, "ordering a certificate");
        let next_key = current.and_then(|c| c.next_key_pem.as_ref());
        let ordered = order(store, acme, certificates, config, &want.names, next_key);
        let result = tokio::time::timeout(ORDER_TIMEOUT, ordered)
            .await
            .unwrap_or_else(|_| Err("the certificate authority did not finish in time".to_string()));
        match result {
            Ok(issued) => {
                tracing::info!(
                    subject = %want.subject,
                    not_after = issued.not_after.0,
                    issuer = %issued.issuer,
                    "certificate issued"
                );
                let saved = match new_key_pem() {
                    Ok(next) => store.save_certificate(&want.subject, &want.names, &issued, &next).await,
                    Err(e) => {
                        tracing::warn!(subject = %want.subject, error = %e, "making the next key failed");
                        continue;
                    }
                };
                if let Err(e) = saved {
                    tracing::warn!(subject = %want.subject, error = %e, "storing the certificate failed");
                }
            }
            Err(error) => {
                let failures = current.map_or(0, |c| c.failures) + 1;
                let backoff = backoff(failures);
                tracing::warn!(
                    subject = %want.subject,
                    failures,
                    retry_in_secs = backoff.as_secs(),
                    error = %error,
                    "ordering a certificate failed"
                );
                let retry = UnixTime(now + i64::try_from(backoff.as_secs()).unwrap_or(i64::MAX / 2));
                if let Err(e) = store.record_certificate_failure(&want.subject, &want.names, &error, retry).await {
                    tracing::warn!(subject = %want.subject, error = %e, "recording the failure failed");
                }
                next = next.min(backoff);
            }
        }
    }
    next
}

/// When a certificate for `names` should next be ordered (Unix time; now or earlier: due).
fn due_at(current: Option<&StoredCertificate>, names: &[DomainName]) -> i64 {
    let Some(current) = current else { return 0 };
    let renew = match &current.issued {
        Some(issued) if current.names == names => issued.not_after.0 - RENEW_BEFORE_DAYS * 86_400,
        _ => 0,
    };
    renew.max(current.next_attempt.0)
}

/// The pause after `failures` failed orders in a row.
pub fn backoff(failures: i64) -> Duration {
    let doublings = u32::try_from(failures.clamp(1, 20) - 1).unwrap_or(0);
    FIRST_BACKOFF.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

/// The hostname's certificate, and one per opted-in domain with at least one name here.
async fn wanted(store: &Store, config: &Config, checker: Option<&Checker>) -> Result<Vec<Wanted>, String> {
    let hostname = config.hostname.clone();
    let mut wanted = Vec::new();
    if hostname.as_str().contains('.') {
        wanted.push(Wanted { subject: hostname.clone(), names: vec![hostname.clone()] });
    } else {
        tracing::warn!(%hostname, "no certificate is ordered for a hostname without a dot: set hostname to the server's public name");
    }
    let with_certificates = store.domains_with_certificates().await.map_err(|e| e.to_string())?;
    let with_mta_sts = store.domains_with_mta_sts().await.map_err(|e| e.to_string())?;
    let domains: std::collections::BTreeSet<&DomainName> = with_certificates.iter().chain(&with_mta_sts).collect();
    if domains.is_empty() {
        return Ok(wanted);
    }
    let Some(checker) = checker else { return Ok(wanted) };
    let here = addresses(checker, hostname.as_str()).await;
    for domain in domains {
        let mut labels = Vec::new();
        if with_certificates.contains(domain) {
            labels.extend(SERVICE_LABELS);
        }
        if with_mta_sts.contains(domain) {
            // The name the policy is served at, certified while MTA-STS is not off.
            labels.push(postfach_dns::mta_sts::POLICY_LABEL);
        }
        let mut names = Vec::new();
        for label in labels {
            let Ok(name) = DomainName::parse(&format!("{label}.{domain}")) else { continue };
            if points_here(checker, &name, &here, &config.outbound.ips).await {
                names.push(name);
            }
        }
        if !names.is_empty() {
            wanted.push(Wanted { subject: domain.clone(), names });
        }
    }
    Ok(wanted)
}

async fn addresses(checker: &Checker, name: &str) -> Vec<std::net::IpAddr> {
    match checker.resolver().lookup_ip(format!("{name}.")).await {
        Ok(found) => found.iter().collect(),
        Err(_) => Vec::new(),
    }
}

/// Whether `name` points here: its addresses (after CNAMEs) include one of the
/// hostname's or of `[outbound] ips`.
async fn points_here(
    checker: &Checker,
    name: &DomainName,
    here: &[std::net::IpAddr],
    outbound: &[std::net::IpAddr],
) -> bool {
    addresses(checker, name.as_str()).await.iter().any(|ip| here.contains(ip) || outbound.contains(ip))
}

/// The ACME account for the directory: the stored one, or a new one (stored).
async fn account(store: &Store, acme: &Acme) -> Result<Account, String> {
    let builder = || match &acme.ca_file {
        Some(path) => Account::builder_with_root(path),
        None => Account::builder(),
    };
    let builder = builder().map_err(|e| format!("cannot set up the ACME client: {e}"))?;
    if let Some(stored) = store.acme_account(&acme.directory).await.map_err(|e| e.to_string())? {
        let credentials: AccountCredentials =
            serde_json::from_str(stored.expose()).map_err(|_| "the stored ACME account cannot be read".to_string())?;
        return builder.from_credentials(credentials).await.map_err(|e| format!("ACME account: {e}"));
    }
    let contact = [acme.contact.as_str()];
    let new = NewAccount { contact: &contact, terms_of_service_agreed: true, only_return_existing: false };
    let (account, credentials) = builder
        .create(&new, acme.directory.clone(), None)
        .await
        .map_err(|e| format!("creating the ACME account: {e}"))?;
    let json = serde_json::to_string(&credentials).map_err(|e| e.to_string())?;
    store.save_acme_account(&acme.directory, &Secret::new(json)).await.map_err(|e| e.to_string())?;
    tracing::info!(directory = %acme.directory, "created the ACME account");
    Ok(account)
}

/// Orders one certificate for `names`; the challenges are removed afterwards either way.
async fn order(
    store: &Store,
    acme: &Acme,
    certificates: &Certificates,
    config: &Config,
    names: &[DomainName],
    key_pem: Option<&Secret<String>>,
) -> Result<Issued, String> {
    let mut tokens = Vec::new();
    let result = order_with(store, acme, certificates, config, names, key_pem, &mut tokens).await;
    for token in &tokens {
        if let Err(e) = store.remove_challenge(token).await {
            tracing::warn!(error = %e, "removing an ACME challenge failed");
        }
    }
    result
}

async fn order_with(
    store: &Store,
    acme: &Acme,
    certificates: &Certificates,
    config: &Config,
    names: &[DomainName],
    key_pem: Option<&Secret<String>>,
    tokens: &mut Vec<String>,
) -> Result<Issued, String> {
    let account = account(store, acme).await?;
    let identifiers: Vec<Identifier> = names.iter().map(|n| Identifier::Dns(n.as_str().to_string())).collect();
    let mut order = account.new_order(&NewOrder::new(&identifiers)).await.map_err(|e| format!("new order: {e}"))?;
    let (kind, challenge_type) = match acme.challenge {
        AcmeChallenge::TlsAlpn01 => ("tls-alpn-01", ChallengeType::TlsAlpn01),
        AcmeChallenge::Http01 => ("http-01", ChallengeType::Http01),
    };
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization.map_err(|e| format!("authorization: {e}"))?;
        match authorization.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => return Err(format!("the authorization is {other:?}")),
        }
        let mut challenge = authorization
            .challenge(challenge_type.clone())
            .ok_or_else(|| format!("the certificate authority does not offer {kind}"))?;
        let name = DomainName::parse(&challenge.identifier().to_string()).map_err(|e| e.to_string())?;
        let answer = Challenge {
            token: challenge.token.clone(),
            kind: kind.to_string(),
            name,
            value: challenge.key_authorization().as_str().to_string(),
        };
        store.put_challenge(&answer).await.map_err(|e| e.to_string())?;
        tokens.push(answer.token.clone());
        // This node answers at once; the others within their next reload.
        reload(store, certificates, config).await?;
        if store.is_shared() {
            tokio::time::sleep(RELOAD_EVERY * 2).await;
        }
        challenge.set_ready().await.map_err(|e| format!("challenge: {e}"))?;
    }
    let retries = RetryPolicy::new().timeout(Duration::from_secs(90));
    let status = order.poll_ready(&retries).await.map_err(|e| format!("validation: {e}"))?;
    if status != OrderStatus::Ready {
        return Err(format!("validation did not succeed (order {status:?})"));
    }
    let mut params = rcgen::CertificateParams::new(names.iter().map(|n| n.as_str().to_string()).collect::<Vec<_>>())
        .map_err(|e| e.to_string())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    // The key's own error text could quote it; say only what kind of problem it is.
    let key = match key_pem {
        Some(pem) => rcgen::KeyPair::from_pem(pem.expose()).map_err(|_| "the stored next key is not valid PEM")?,
        None => rcgen::KeyPair::generate().map_err(|e| e.to_string())?,
    };
    let csr = params.serialize_request(&key).map_err(|e| e.to_string())?;
    order.finalize_csr(csr.der()).await.map_err(|e| format!("finalize: {e}"))?;
    let chain_pem = order.poll_certificate(&retries).await.map_err(|e| format!("certificate: {e}"))?;
    let leaf = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .next()
        .and_then(Result::ok)
        .ok_or("the certificate authority sent no certificate")?;
    let (not_before, not_after) = tls::validity(&leaf).ok_or("the issued certificate cannot be read")?;
    let issued = Issued {
        chain_pem,
        key_pem: Secret::new(key.serialize_pem()),
        not_before: UnixTime(not_before),
        not_after: UnixTime(not_after),
        issuer: tls::issuer(&leaf).unwrap_or_default(),
        issued_at: UnixTime::now(),
    };
    usable(&issued)?;
    Ok(issued)
}

/// A new private key for a certificate (ECDSA P-256, PKCS#8 PEM).
fn new_key_pem() -> Result<Secret<String>, String> {
    Ok(Secret::new(rcgen::KeyPair::generate().map_err(|e| e.to_string())?.serialize_pem()))
}

/// The DER SubjectPublicKeyInfo of a PEM private key: what a `3 1 x` TLSA record covers.
pub(crate) fn public_key_info(key_pem: &Secret<String>) -> Option<Vec<u8>> {
    use rcgen::PublicKeyData;
    rcgen::KeyPair::from_pem(key_pem.expose()).ok().map(|key| key.subject_public_key_info())
}

/// The public keys (DER SubjectPublicKeyInfo) of the issued certificate for `subject` and
/// of its next order, when one is issued: the keys a `3 1 1` TLSA record names.
pub(crate) async fn tlsa_keys(
    store: &Store,
    subject: &DomainName,
) -> Result<Option<(Vec<u8>, Option<Vec<u8>>)>, String> {
    let stored = store.certificates().await.map_err(|e| e.to_string())?;
    let Some(certificate) = stored.into_iter().find(|c| &c.subject == subject) else { return Ok(None) };
    let Some(issued) = &certificate.issued else { return Ok(None) };
    let current = public_key_info(&issued.key_pem).ok_or("the stored certificate key cannot be read")?;
    Ok(Some((current, certificate.next_key_pem.as_ref().and_then(public_key_info))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_day() {
        assert_eq!(backoff(1), FIRST_BACKOFF);
        assert_eq!(backoff(2), FIRST_BACKOFF * 2);
        assert_eq!(backoff(4), FIRST_BACKOFF * 8);
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
