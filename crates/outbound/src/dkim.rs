//! DKIM signing of outbound mail (RFC 6376) with `mail-auth`: RSA-SHA256,
//! relaxed/relaxed canonicalization, over the header fields that carry the message's
//! meaning ([`SIGNED_HEADERS`]; those absent are signed as absent, RFC 6376 §5.4.2, so
//! they cannot be added later).
//!
//! Which key: the `From:` domain's active key (keys are made and rotated by `postfach-dns`
//! and kept in the store). An alias domain has keys of its own, and signs as itself, so
//! the signature aligns with its `From:` for DMARC; while it has no key yet, the message is
//! signed with its target domain's key as that domain (a valid signature, though not
//! aligned). Mail from a domain without any key goes out unsigned, with a warning in the
//! log.

use mail_auth::common::crypto::{RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner};
use postfach_store::{Scope, Store};
use postfach_types::DomainName;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;

/// The header fields signed when present (RFC 6376 §5.4.1). `From` is required.
pub const SIGNED_HEADERS: [&str; 17] = [
    "From",
    "Sender",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "To",
    "Cc",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Disposition",
    "In-Reply-To",
    "References",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("the DKIM key of {0} cannot be read: {1}")]
    BadKey(String, String),
    #[error("signing failed: {0}")]
    Sign(String),
}

/// The `DKIM-Signature:` header field (with its CRLF) for `message`, signed as `domain`
/// with `selector` and the PKCS#8 PEM key.
pub fn sign_with(private_key_pem: &str, domain: &str, selector: &str, message: &[u8]) -> Result<String, SignError> {
    let der = PrivateKeyDer::from_pem_slice(private_key_pem.as_bytes())
        .map_err(|e| SignError::BadKey(domain.to_string(), e.to_string()))?;
    let key = RsaKey::<Sha256>::from_key_der(der).map_err(|e| SignError::BadKey(domain.to_string(), e.to_string()))?;
    let signature = DkimSigner::from_key(key)
        .domain(domain)
        .selector(selector)
        .headers(SIGNED_HEADERS)
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
        .sign(message)
        .map_err(|e| SignError::Sign(e.to_string()))?;
    Ok(signature.to_header())
}

/// The domain of the first author, read as every other check reads it
/// (`postfach_message`: submission has already required that From: is ours).
pub fn from_domain(message: &[u8]) -> Option<DomainName> {
    let domain = postfach_message::Message::parse(message).top().author_domains().into_iter().next()?;
    DomainName::parse(&domain).ok()
}

/// The message with a `DKIM-Signature:` in front, when its `From:` domain (or the target
/// of that alias domain) has an active key; otherwise the message unchanged.
pub async fn sign(store: &Store, message: Vec<u8>) -> Vec<u8> {
    let Some(domain) = from_domain(&message) else { return message };
    let key = match store.active_dkim_key(&domain).await {
        Ok(Some(key)) => Some(key),
        Ok(None) => match store.domain(Scope::Platform, &domain).await {
            Ok(d) => match d.alias_of {
                Some(target) => store.active_dkim_key(&target).await.ok().flatten(),
                None => None,
            },
            Err(_) => None,
        },
        Err(e) => {
            tracing::warn!(domain = %domain, error = %e, "cannot read the DKIM key; sending unsigned");
            return message;
        }
    };
    let Some(key) = key else {
        tracing::warn!(domain = %domain, "no active DKIM key; sending unsigned");
        return message;
    };
    let signature = sign_with(key.private_key_pem.expose(), key.domain.as_str(), &key.selector, &message);
    postfach_metrics::dkim_signature(signature.is_ok());
    match signature {
        Ok(header) => {
            let mut signed = header.into_bytes();
            signed.extend_from_slice(&message);
            signed
        }
        Err(e) => {
            tracing::warn!(domain = %key.domain, error = %e, "DKIM signing failed; sending unsigned");
            message
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usual_headers_are_signed_relaxed_with_rsa_sha256() {
        let key = postfach_dns::dkim::generate("pf2026a").expect("key");
        let message = b"From: Max <max@acme.example>\r\nTo: anna@outside.test\r\nSubject: Hi\r\n\
            Date: Fri, 27 Nov 2026 04:08:04 +0000\r\nMessage-ID: <1@acme.example>\r\nX-Mailer: test\r\n\r\nbody\r\n";
        let header = sign_with(key.private_key_pem.expose(), "acme.example", "pf2026a", message).expect("signed");
        assert!(
            header.starts_with("DKIM-Signature: v=1; a=rsa-sha256; s=pf2026a; d=acme.example; c=relaxed/relaxed;"),
            "{header}"
        );
        assert!(header.ends_with("\r\n"));
        let h = header.split("h=").nth(1).and_then(|rest| rest.split(';').next()).expect("h= tag");
        let signed: Vec<String> = h.split(':').map(|s| s.trim().to_ascii_lowercase()).collect();
        // Present fields are signed; absent ones are listed too, so nobody can add them later
        // (RFC 6376 §5.4.2); fields outside the set are not.
        for name in SIGNED_HEADERS {
            assert!(signed.contains(&name.to_ascii_lowercase()), "{name} in {signed:?}");
        }
        assert!(!signed.contains(&"x-mailer".to_string()));
        assert_eq!(from_domain(message), Some(DomainName::parse("acme.example").expect("d")));
        assert_eq!(from_domain(b"Subject: no sender\r\n\r\n"), None);
        assert!(matches!(sign_with("not a key", "acme.example", "s", message), Err(SignError::BadKey(..))));
    }
}
