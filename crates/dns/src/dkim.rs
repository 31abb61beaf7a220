//! DKIM keys: RSA-2048 generation, selector naming, the DNS record, and rotation.
//!
//! Each domain (alias domains too) gets a key when it is added ([`ensure_key`]). The first
//! key is active at once: until its record is published, receivers see a signature they
//! cannot verify, which counts as no signature (RFC 6376 §6.1). A rotation
//! ([`rotate`]) creates a *pending* key that is shown for publishing and becomes active
//! only when the DNS check finds it published ([`crate::checks::refresh`]) or when the
//! operator forces it.
//!
//! Selectors are `pf` + the year + a letter (`pf2026a`, `pf2026b`, …), unique per domain.
//! The private key is PKCS#8 PEM, which `mail_auth::common::crypto::RsaKey::from_pkcs8_pem`
//! reads for signing; the public key is the SubjectPublicKeyInfo DER in base64, the `p=`
//! value of the record (RFC 6376 §3.6.1).

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use postfach_store::dkim::{DkimKey, DkimKeyState, NewDkimKey};
use postfach_store::{Scope, Store};
use postfach_types::{DomainName, Secret, UnixTime};

use crate::DnsError;

/// Generates an RSA-2048 key pair for `selector`.
pub fn generate(selector: &str) -> Result<NewDkimKey, DnsError> {
    let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|e| DnsError::KeyGeneration(e.to_string()))?;
    let private = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'static>>::as_der(&pair)
        .map_err(|e| DnsError::KeyGeneration(e.to_string()))?;
    let public = AsDer::<aws_lc_rs::encoding::PublicKeyX509Der<'static>>::as_der(pair.public_key())
        .map_err(|e| DnsError::KeyGeneration(e.to_string()))?;
    Ok(NewDkimKey {
        selector: selector.to_string(),
        private_key_pem: Secret::new(pem("PRIVATE KEY", private.as_ref())),
        public_key: STANDARD.encode(public.as_ref()),
    })
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The next free selector of a domain that already has keys with `taken` selectors:
/// `pf<year>a`, then `b`, … `z`, then `pf<year>z2`, `pf<year>z3`, ….
pub fn next_selector(year: i64, taken: &[&str]) -> String {
    let candidates =
        (b'a'..=b'z').map(|c| format!("pf{year}{}", char::from(c))).chain((2..).map(|n| format!("pf{year}z{n}")));
    for candidate in candidates {
        if !taken.contains(&candidate.as_str()) {
            return candidate;
        }
    }
    unreachable!("the candidate list is endless")
}

/// The calendar year (UTC) of a Unix time.
fn year_of(time: UnixTime) -> i64 {
    time.date().0
}

/// The TXT value of the DKIM record of `key` (RFC 6376 §3.6.1).
pub fn record_value(public_key: &str) -> String {
    format!("v=DKIM1; k=rsa; p={public_key}")
}

/// The owner name of the DKIM record: `<selector>._domainkey.<domain>`.
pub fn record_name(selector: &str, domain: &DomainName) -> String {
    format!("{selector}._domainkey.{domain}")
}

async fn new_key(store: &Store, scope: Scope, domain: &DomainName) -> Result<NewDkimKey, DnsError> {
    let existing = store.dkim_keys(scope, domain).await?;
    let taken: Vec<&str> = existing.iter().map(|k| k.selector.as_str()).collect();
    let selector = next_selector(year_of(UnixTime::now()), &taken);
    // RSA generation takes a moment of CPU; keep it off the async workers.
    tokio::task::spawn_blocking(move || generate(&selector))
        .await
        .map_err(|e| DnsError::KeyGeneration(e.to_string()))?
}

/// The domain's active key; creates and activates one if it has none (new domains, and
/// domains from before DKIM keys existed).
pub async fn ensure_key(store: &Store, scope: Scope, domain: &DomainName) -> Result<DkimKey, DnsError> {
    if let Some(key) = store.dkim_keys(scope, domain).await?.into_iter().find(|k| k.state == DkimKeyState::Active) {
        return Ok(key);
    }
    let key = new_key(store, scope, domain).await?;
    let stored = store.add_dkim_key(scope, domain, &key, DkimKeyState::Active).await?;
    tracing::info!(domain = %domain, selector = %stored.selector, "created a DKIM key");
    Ok(stored)
}

/// What [`rotate`] did.
#[derive(Debug, Clone)]
pub enum Rotation {
    /// A new pending key was created; it becomes active once its record is found.
    Pending(DkimKey),
    /// A pending key already existed; it is returned unchanged.
    AlreadyPending(DkimKey),
    /// The key (new, or the pending one) was made active at once (`force`).
    Activated(DkimKey),
}

/// Creates the domain's next DKIM key. Without `force` it stays pending until the DNS
/// check confirms its record; with `force` it (or an already pending key) becomes active
/// now, and the previous key is retired.
pub async fn rotate(store: &Store, scope: Scope, domain: &DomainName, force: bool) -> Result<Rotation, DnsError> {
    let keys = store.dkim_keys(scope, domain).await?;
    let pending = keys.iter().find(|k| k.state == DkimKeyState::Pending).cloned();
    let key = match pending {
        Some(key) if !force => return Ok(Rotation::AlreadyPending(key)),
        Some(key) => key,
        None => {
            let key = new_key(store, scope, domain).await?;
            let state = if force { DkimKeyState::Active } else { DkimKeyState::Pending };
            let stored = store.add_dkim_key(scope, domain, &key, state).await?;
            tracing::info!(domain = %domain, selector = %stored.selector, state = %stored.state, "created the next DKIM key");
            if !force {
                return Ok(Rotation::Pending(stored));
            }
            return Ok(Rotation::Activated(stored));
        }
    };
    store.activate_dkim_key(scope, domain, &key.selector).await?;
    tracing::info!(domain = %domain, selector = %key.selector, "activated the pending DKIM key");
    let activated =
        store.dkim_keys(scope, domain).await?.into_iter().find(|k| k.selector == key.selector).unwrap_or(key);
    Ok(Rotation::Activated(activated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_count_up_per_year() {
        assert_eq!(next_selector(2026, &[]), "pf2026a");
        assert_eq!(next_selector(2026, &["pf2026a", "pf2025a"]), "pf2026b");
        let all: Vec<String> = (b'a'..=b'z').map(|c| format!("pf2026{}", char::from(c))).collect();
        let taken: Vec<&str> = all.iter().map(String::as_str).collect();
        assert_eq!(next_selector(2026, &taken), "pf2026z2");
    }

    #[test]
    fn years_of_unix_times() {
        assert_eq!(year_of(UnixTime(0)), 1970);
        assert_eq!(year_of(UnixTime(1_798_761_599)), 2026); // 2026-12-31T23:59:59Z
        assert_eq!(year_of(UnixTime(1_798_761_600)), 2027);
        assert_eq!(year_of(UnixTime(951_782_400)), 2000); // 2000-02-29
    }

    #[test]
    fn generated_keys_sign_and_the_record_splits_into_255_byte_strings() {
        let key = generate("pf2026a").expect("generate");
        let pem = key.private_key_pem.expose();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n") && pem.ends_with("-----END PRIVATE KEY-----\n"));
        // mail-auth reads it for signing.
        #[allow(deprecated)]
        mail_auth::common::crypto::RsaKey::<mail_auth::common::crypto::Sha256>::from_pkcs8_pem(pem)
            .expect("mail-auth reads the key");
        let value = record_value(&key.public_key);
        assert!(value.len() > 255, "an RSA-2048 record needs more than one string");
        let parts = crate::split_txt(&value);
        assert!(parts.iter().all(|p| p.len() <= 255) && parts.len() == 2);
        assert_eq!(parts.concat(), value);
        // The record parses as a DKIM key (RFC 6376 §3.6.1).
        use mail_auth::common::parse::TxtRecordParser;
        mail_auth::common::verify::DomainKey::parse(value.as_bytes()).expect("valid DKIM record");
    }
}
