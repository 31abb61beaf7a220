//! DANE for outbound SMTP (RFC 7672): whether an MX host has DNSSEC-secure TLSA records,
//! and the certificate check that holds its TLS to them.
//!
//! The lookups go through a resolver of their own that validates DNSSEC itself
//! ([`DaneResolver`]), trusting the IANA root key hickory ships, or the key of the
//! configured `[dns] trust_anchor` file (tests). Per MX host ([`DaneResolver::host`]):
//!
//! - the MX RRset of the domain (RFC 7672 §2.2.1) and the host's address records (§2.2.2)
//!   must be secure, else DANE does not apply (the host could be an attacker's anyway);
//! - the TLSA RRset at `_25._tcp.HOST` (§2.2.3): secure with usable records → TLS is
//!   required and the certificate must match them; secure with only unusable records → TLS
//!   is required, the certificate is not checked (§3.1.3 via §2.2); insecure or no records
//!   → DANE does not apply;
//! - a bogus answer or a failed lookup of any of them → this host must not get the mail
//!   now (defer): an attacker who can forge DNS answers must not be able to turn DANE off.
//!
//! Before its first answer it checks that the resolver passes DNSSEC signatures at all
//! ([`DaneResolver::probe`]); one that strips them turns DANE off (logged as an error)
//! rather than every answer looking forged.
//!
//! Usable records (§3.1): DANE-EE(3) matches the server certificate itself (full
//! certificate or public key, exact or SHA-256/512), with no name or expiry check
//! (§3.1.1); DANE-TA(2) names a trust anchor the presented chain must lead to, and the
//! certificate must name the MX host and be within its validity (§3.1.2, §3.2.2). The
//! anchor must be in the chain the server sends (§3.2.2 asks servers to include it).
//! PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP (§3.1.3).

use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::dnssec::rdata::DNSSECRData;
use hickory_resolver::proto::dnssec::{Proof, TrustAnchors};
use hickory_resolver::proto::rr::rdata::TLSA;
use hickory_resolver::proto::rr::{RData, Record, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;

use crate::cert_check::{CertCheck, Presented, Verifier};
use crate::tls_policy::DaneAnswer;

/// One TLSA record (RFC 6698 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
    pub data: Vec<u8>,
}

/// DANE-TA: the record names a trust anchor (RFC 7218).
const DANE_TA: u8 = 2;
/// DANE-EE: the record names the server's own certificate or key.
const DANE_EE: u8 = 3;

impl Tlsa {
    fn from_rdata(tlsa: &TLSA) -> Tlsa {
        Tlsa {
            usage: tlsa.cert_usage.into(),
            selector: tlsa.selector.into(),
            matching: tlsa.matching.into(),
            data: tlsa.cert_data.clone(),
        }
    }

    /// RFC 7672 §3.1: DANE-TA or DANE-EE, a known selector and matching type, and data of
    /// the right length for the digest.
    pub fn is_usable(&self) -> bool {
        let usage = matches!(self.usage, DANE_TA | DANE_EE);
        let data = match self.matching {
            0 => !self.data.is_empty(),
            1 => self.data.len() == 32,
            2 => self.data.len() == 64,
            _ => false,
        };
        usage && self.selector <= 1 && data
    }

    /// Whether `cert` (DER) is what this record names.
    fn matches(&self, cert: &[u8]) -> bool {
        let selected = match self.selector {
            0 => cert.to_vec(),
            1 => match x509_parser::parse_x509_certificate(cert) {
                Ok((_, parsed)) => parsed.tbs_certificate.subject_pki.raw.to_vec(),
                Err(_) => return false,
            },
            _ => return false,
        };
        let digest = |algorithm| aws_lc_rs::digest::digest(algorithm, &selected).as_ref().to_vec();
        let candidate = match self.matching {
            0 => selected,
            1 => digest(&aws_lc_rs::digest::SHA256),
            2 => digest(&aws_lc_rs::digest::SHA512),
            _ => return false,
        };
        // Public data (the certificate and the DNS record): no constant-time compare needed.
        candidate == self.data
    }
}

/// The DNSKEYs in a trust anchor file (`[dns] trust_anchor`): zone-file lines like
/// `. 3600 IN DNSKEY 257 3 13 BASE64`. The error says what is wrong, for the configuration
/// check.
pub fn read_trust_anchor(path: &Path) -> Result<TrustAnchors, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let anchors = TrustAnchors::from_str(&text)
        .map_err(|e| format!("{} is not a list of DNSKEY records ({e})", path.display()))?;
    if anchors.is_empty() {
        return Err(format!("{} holds no DNSKEY record for the root zone \".\"", path.display()));
    }
    Ok(anchors)
}

/// The DNSSEC-validating resolver for DANE's lookups.
#[derive(Clone)]
pub struct DaneResolver {
    resolver: TokioResolver,
    /// Whether the resolver passes DNSSEC records at all, found out once ([`Self::probe`]).
    capable: Arc<tokio::sync::OnceCell<bool>>,
}

impl std::fmt::Debug for DaneResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DaneResolver")
    }
}

/// The security of one lookup's answer.
enum Answer {
    Secure(Vec<Record>),
    /// An insecure answer, or no records (DANE does not apply either way).
    Nothing,
    Failed(String),
}

impl DaneResolver {
    /// A caching, validating resolver asking `address` (or the system's resolvers), trusting
    /// the DNSKEYs in the `trust_anchor` file (zone-file lines, `. IN DNSKEY 257 3 13 …`) or,
    /// when `None`, the IANA root keys.
    pub fn new(address: Option<SocketAddr>, trust_anchor: Option<&Path>) -> Result<DaneResolver, String> {
        let (config, opts) = postfach_dns::resolver::caching_config(address).map_err(|e| e.to_string())?;
        let anchors = match trust_anchor {
            Some(path) => read_trust_anchor(path)?,
            None => TrustAnchors::default(),
        };
        let resolver = Resolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .with_trust_anchor(Arc::new(anchors))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(DaneResolver { resolver, capable: Arc::default() })
    }

    /// Whether the resolver passes DNSSEC signatures: the root zone's DNSKEY RRset must come
    /// with an RRSIG that validates against the trust anchor. A resolver that strips them
    /// (or a test DNS server without signatures) would make every answer look forged and
    /// defer all outbound mail; instead DANE is off, with an error in the log, and mail goes
    /// out under the other rules. Decided once per process from the resolver's first answer
    /// (restart after fixing the resolver); a lookup that got no answer (a timeout, a lost
    /// packet) decides nothing and is asked again at the next delivery.
    async fn probe(&self) -> bool {
        let decided = self
            .capable
            .get_or_try_init(|| async {
                let signed = match self.resolver.lookup(".", RecordType::DNSKEY).await {
                    Ok(lookup) => lookup.answers().iter().any(|r| {
                        r.proof == Proof::Secure
                            && matches!(&r.data, RData::DNSSEC(DNSSECRData::RRSIG(sig)) if sig.input().type_covered == RecordType::DNSKEY)
                    }),
                    Err(e) if e.is_no_records_found() || e.is_nx_domain() => false,
                    Err(e) => return Err(e),
                };
                if !signed {
                    tracing::error!(
                        "the DNS resolver passes no DNSSEC signatures, so DANE is off for outbound mail; \
                         use a resolver that supports DNSSEC ([dns] resolver)"
                    );
                }
                Ok(signed)
            })
            .await;
        match decided {
            Ok(signed) => *signed,
            Err(e) => {
                tracing::warn!(error = %e, "the DNS resolver did not answer whether it passes DNSSEC signatures; this delivery goes without DANE, the next asks again");
                false
            }
        }
    }

    /// What DANE asks of delivery to `host`, one of the MX hosts of `domain` (or `domain`
    /// itself when it has no MX records).
    pub async fn answer(&self, domain: &str, host: &str) -> DaneAnswer {
        if !self.probe().await {
            return DaneAnswer::NotApplicable;
        }
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host != domain {
            match self.query(&domain, RecordType::MX).await {
                Answer::Secure(_) => {}
                Answer::Nothing => return DaneAnswer::NotApplicable,
                Answer::Failed(e) => {
                    return untrusted(format!("the MX records of {domain}"), e);
                }
            }
        }
        let addresses = match self.query(&host, RecordType::A).await {
            Answer::Nothing => self.query(&host, RecordType::AAAA).await,
            secure_or_failed => secure_or_failed,
        };
        match addresses {
            Answer::Secure(_) => {}
            Answer::Nothing => return DaneAnswer::NotApplicable,
            Answer::Failed(e) => return untrusted(format!("the address of {host}"), e),
        }
        match self.query(&format!("_25._tcp.{host}"), RecordType::TLSA).await {
            Answer::Secure(records) => {
                let all: Vec<Tlsa> = records
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::TLSA(tlsa) => Some(Tlsa::from_rdata(tlsa)),
                        _ => None,
                    })
                    .collect();
                let usable: Vec<Tlsa> = all.iter().filter(|t| t.is_usable()).cloned().collect();
                match (usable.is_empty(), all.is_empty()) {
                    (false, _) => DaneAnswer::Usable(Arc::new(Dane::verifier(usable))),
                    (true, false) => DaneAnswer::Unusable,
                    (true, true) => DaneAnswer::NotApplicable,
                }
            }
            Answer::Nothing => DaneAnswer::NotApplicable,
            Answer::Failed(e) => untrusted(format!("the TLSA records of {host}"), e),
        }
    }

    /// One validated lookup: the records of `rtype` when all are secure.
    async fn query(&self, name: &str, rtype: RecordType) -> Answer {
        match self.resolver.lookup(format!("{name}.").as_str(), rtype).await {
            Ok(lookup) => {
                let records: Vec<Record> =
                    lookup.answers().iter().filter(|r| r.record_type() == rtype).cloned().collect();
                if records.is_empty() {
                    Answer::Nothing
                } else if records.iter().all(|r| r.proof == Proof::Secure) {
                    Answer::Secure(records)
                } else if records.iter().all(|r| r.proof == Proof::Insecure) {
                    Answer::Nothing
                } else {
                    Answer::Failed("DNSSEC validation failed".into())
                }
            }
            // No such name or no records of the type (proven or not): nothing to apply.
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Answer::Nothing,
            Err(e) => Answer::Failed(e.to_string()),
        }
    }
}

/// A lookup DANE depends on failed: the delivery waits. The sender's notice says what in
/// plain words; the resolver's own error goes to the log.
fn untrusted(what: String, error: String) -> DaneAnswer {
    tracing::info!(error, "{what}: the DNSSEC-validated lookup failed");
    DaneAnswer::Defer(format!(
        "{what} cannot be trusted: the lookup failed or its DNSSEC signatures do not validate; the domain's \
         administrator should check its DNSSEC setup"
    ))
}

/// Checks the server's chain against TLSA records (RFC 7672 §3). The server name given to
/// the handshake is the MX host name, the reference identifier for DANE-TA (§3.2.2).
#[derive(Debug)]
pub struct Dane {
    records: Vec<Tlsa>,
}

/// The rustls verifier of a [`Dane`] check.
pub type DaneVerifier = Verifier<Dane>;

impl Dane {
    /// A verifier for these usable records ([`Tlsa::is_usable`]).
    pub fn verifier(records: Vec<Tlsa>) -> DaneVerifier {
        Verifier::checking(Dane { records })
    }

    /// The chain certificate a DANE-TA record names, with the chain below it, if any.
    fn trust_anchor_chain<'a>(
        &self,
        intermediates: &'a [CertificateDer<'a>],
    ) -> Option<(&'a CertificateDer<'a>, &'a [CertificateDer<'a>])> {
        intermediates.iter().enumerate().find_map(|(i, cert)| {
            self.records
                .iter()
                .any(|r| r.usage == DANE_TA && r.matches(cert.as_ref()))
                .then(|| (cert, &intermediates[..i]))
        })
    }
}

impl CertCheck for Dane {
    fn check(&self, presented: &Presented<'_>, provider: &Arc<CryptoProvider>) -> Result<(), rustls::Error> {
        // §3.1.1: DANE-EE binds the key itself; names and dates do not matter.
        if self.records.iter().any(|r| r.usage == DANE_EE && r.matches(presented.end_entity.as_ref())) {
            return Ok(());
        }
        // §3.1.2: DANE-TA: an ordinary chain check with the named certificate as the only root.
        if let Some((anchor, below)) = self.trust_anchor_chain(presented.intermediates) {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(anchor.clone().into_owned())?;
            let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
            return Presented { intermediates: below, ..*presented }.verify_with(verifier.as_ref());
        }
        Err(rustls::Error::General("the server's certificate matches none of its TLSA records".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dane_ta_and_dane_ee_with_known_parameters_are_usable() {
        let record = |usage, selector, matching, len| Tlsa { usage, selector, matching, data: vec![1; len] };
        assert!(record(3, 1, 1, 32).is_usable());
        assert!(record(2, 0, 2, 64).is_usable());
        assert!(record(3, 0, 0, 500).is_usable());
        assert!(!record(1, 1, 1, 32).is_usable(), "PKIX-EE is unusable for SMTP");
        assert!(!record(0, 0, 1, 32).is_usable(), "PKIX-TA is unusable for SMTP");
        assert!(!record(3, 2, 1, 32).is_usable(), "unknown selector");
        assert!(!record(3, 1, 3, 32).is_usable(), "unknown matching type");
        assert!(!record(3, 1, 1, 31).is_usable(), "a SHA-256 digest has 32 bytes");
    }
}
