//! The one decision "what TLS must this delivery to this MX host have, and how is its
//! certificate verified".
//!
//! Facts about the destination (its MTA-STS policy, DANE for each host) and about the
//! message (REQUIRETLS, the sender's "always require TLS") go in; a [`Requirement`] per
//! host comes out, which the SMTP client ([`crate::client`]) follows to the letter. Where a
//! requirement says TLS, the client never falls back to plaintext: a server that does not
//! offer STARTTLS (perhaps because an attacker removed it) or whose certificate fails the
//! check is not given the message.
//!
//! The order of the rules (RFC 8461 §2, RFC 8689 §4.2.1):
//! 1. DANE, when the host's TLSA records are DNSSEC-secure: TLS required, the certificate
//!    checked against them ([`DaneAnswer::Usable`]).
//! 2. MTA-STS `enforce`: only hosts matching an `mx:` pattern, TLS required with a
//!    WebPKI-valid certificate for the host's name; `testing`: delivered as opportunistic,
//!    the certificate checked and a failure only recorded.
//! 3. Otherwise opportunistic TLS (RFC 7435): STARTTLS when offered, any certificate.
//!
//! What the sender asks for ([`Demand`]) tightens this: REQUIRETLS (RFC 8689) needs a
//! verified certificate (DANE, or MTA-STS where `testing` counts as `enforce`) and a next
//! server that supports REQUIRETLS; "always require TLS" (per mailbox or customer) needs
//! encryption, verified wherever the destination publishes a policy. A demand that the
//! destination cannot meet at all is a permanent failure (the sender gets a notice at
//! once); a host that fails a requirement it could meet (a missing STARTTLS, a bad
//! certificate) is a temporary one, retried until the queue's lifetime is over.

use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;

use postfach_dns::mta_sts::{Mode, Policy};

/// The rule a delivery followed: recorded per recipient, shown by `postfach queue list`,
/// a metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicySource {
    /// No connection was made (or the recipient is local).
    None,
    /// STARTTLS when offered, certificate not verified.
    Opportunistic,
    /// The destination's MTA-STS policy (RFC 8461).
    MtaSts,
    /// The host's DNSSEC-secure TLSA records (RFC 7672).
    Dane,
}

impl PolicySource {
    pub const ALL: [PolicySource; 4] =
        [PolicySource::None, PolicySource::Opportunistic, PolicySource::MtaSts, PolicySource::Dane];

    pub fn as_str(self) -> &'static str {
        match self {
            PolicySource::None => "none",
            PolicySource::Opportunistic => "opportunistic",
            PolicySource::MtaSts => "mta-sts",
            PolicySource::Dane => "dane",
        }
    }

    pub fn parse(s: &str) -> Option<PolicySource> {
        PolicySource::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl std::fmt::Display for PolicySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the message's sender asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Demand {
    #[default]
    None,
    /// "Always require TLS to other servers" (mailbox or customer option): never plaintext.
    Encrypted,
    /// Submitted with REQUIRETLS (RFC 8689): a verified certificate, and a next server that
    /// supports REQUIRETLS.
    RequireTls,
}

impl Demand {
    /// As stored in the queue (`queue_messages.tls_demand`).
    pub fn stored(self) -> Option<&'static str> {
        match self {
            Demand::None => None,
            Demand::Encrypted => Some("encrypted"),
            Demand::RequireTls => Some("requiretls"),
        }
    }

    /// From the queue; anything unknown is read as the strictest.
    pub fn from_stored(stored: Option<&str>) -> Demand {
        match stored {
            None => Demand::None,
            Some("encrypted") => Demand::Encrypted,
            Some(_) => Demand::RequireTls,
        }
    }
}

/// DANE's answer for one host ([`crate::dane::DaneResolver::answer`]).
#[derive(Debug, Clone)]
pub enum DaneAnswer {
    /// No TLSA records, or an answer that is not DNSSEC-secure: the next rule applies.
    NotApplicable,
    /// DNSSEC-secure TLSA records: TLS is required and the certificate is checked by this
    /// verifier (DANE-EE / DANE-TA).
    Usable(Arc<dyn ServerCertVerifier>),
    /// DNSSEC-secure TLSA records none of which can be used (RFC 7672 §2.2: TLS still
    /// required, the certificate not checked against them).
    Unusable,
    /// A DNSSEC answer was bogus or a lookup failed, so whether DANE applies is unknown:
    /// this host must not get the message now (RFC 7672 §2.2: else an attacker forging DNS
    /// answers could switch DANE off). The text says which lookup and why.
    Defer(String),
}

/// How the server's certificate is checked.
#[derive(Debug, Clone)]
pub enum Verify {
    /// Any certificate: encryption against listeners, not against impostors.
    Any,
    /// A chain to a trusted root (the system's, and `[outbound] tls_ca_file`), valid for
    /// the MX host's name.
    WebPki,
    /// DANE's own verifier.
    Dane(Arc<dyn ServerCertVerifier>),
}

/// What the client does with one host.
#[derive(Debug, Clone)]
pub enum Tls {
    /// STARTTLS when offered, any certificate; plaintext when it is not offered or the
    /// handshake fails.
    Opportunistic,
    /// Like opportunistic, but the certificate is checked as [`Verify`] says and a failure
    /// is recorded, not acted on (MTA-STS `testing`).
    Report(Verify),
    /// STARTTLS must be offered and succeed, and the certificate pass [`Verify`]; else
    /// this host does not get the message.
    Required(Verify),
    /// This host must not be used (not named by the MTA-STS policy, or the sender's demand
    /// cannot be met here).
    Refused,
}

/// The requirement for one host, and what a failure to meet it means.
#[derive(Debug, Clone)]
pub struct Requirement {
    /// Recorded with the delivery.
    pub source: PolicySource,
    pub tls: Tls,
    /// The next server must advertise REQUIRETLS, and gets the `REQUIRETLS` MAIL parameter.
    pub requiretls: bool,
    /// When this host cannot be used: the RFC 3463 status (4.x.x: try again later;
    /// 5.x.x: give up now) and the words for the sender.
    pub failure: Failure,
}

/// Why a host could not be used, for the queue and the sender's notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: &'static str,
    pub text: String,
    /// What the TLS-RPT report calls it (RFC 8460 §4.3 `result-type`).
    pub result_type: &'static str,
}

impl Failure {
    pub fn is_permanent(&self) -> bool {
        self.status.starts_with('5')
    }
}

/// The facts about one destination domain and one message.
#[derive(Debug, Clone)]
pub struct Destination<'a> {
    pub domain: &'a str,
    /// The domain's MTA-STS policy, if it has one (RFC 8461 §3).
    pub mta_sts: Option<&'a Policy>,
    pub demand: Demand,
}

impl Destination<'_> {
    /// The requirement for the MX host `host` (lower-case, no final dot).
    pub fn for_host(&self, host: &str, dane: &DaneAnswer) -> Requirement {
        let requiretls = self.demand == Demand::RequireTls;
        let domain = self.domain;
        let temporary = |result_type: &'static str, text: String| Failure { status: "4.7.5", text, result_type };
        match dane {
            DaneAnswer::Usable(verifier) => {
                return Requirement {
                    source: PolicySource::Dane,
                    tls: Tls::Required(Verify::Dane(verifier.clone())),
                    requiretls,
                    failure: temporary(
                        "tlsa-invalid",
                        format!("{host} did not offer the encryption with the certificate its DANE records require"),
                    ),
                };
            }
            DaneAnswer::Unusable => {
                if self.demand != Demand::RequireTls {
                    return Requirement {
                        source: PolicySource::Dane,
                        tls: Tls::Required(Verify::Any),
                        requiretls: false,
                        failure: temporary(
                            "tlsa-invalid",
                            format!("{host} did not offer the encryption its DANE records require"),
                        ),
                    };
                }
            }
            DaneAnswer::Defer(why) => {
                return Requirement {
                    source: PolicySource::Dane,
                    tls: Tls::Refused,
                    requiretls,
                    failure: temporary(
                        "dnssec-invalid",
                        format!(
                            "whether {host} must be reached with DANE-verified encryption could not be checked ({why})"
                        ),
                    ),
                };
            }
            DaneAnswer::NotApplicable => {}
        }
        if let Some(policy) = self.mta_sts.filter(|p| p.mode != Mode::None) {
            let enforced = policy.mode == Mode::Enforce || self.demand == Demand::RequireTls;
            if !policy.matches(host) {
                if enforced {
                    return Requirement {
                        source: PolicySource::MtaSts,
                        tls: Tls::Refused,
                        requiretls,
                        failure: temporary(
                            "validation-failure",
                            format!("the MTA-STS policy of {domain} does not name the mail server {host}"),
                        ),
                    };
                }
            } else if enforced {
                return Requirement {
                    source: PolicySource::MtaSts,
                    tls: Tls::Required(Verify::WebPki),
                    requiretls,
                    failure: temporary(
                        "validation-failure",
                        format!(
                            "{host} did not offer encryption with a valid certificate, which the MTA-STS policy of \
                         {domain} requires"
                        ),
                    ),
                };
            } else {
                return Requirement {
                    source: PolicySource::MtaSts,
                    tls: self.demanded(Tls::Report(Verify::WebPki)),
                    requiretls,
                    failure: temporary(
                        "starttls-not-supported",
                        format!("{host} did not offer encryption, which the sender requires"),
                    ),
                };
            }
        }
        match self.demand {
            Demand::None => Requirement {
                source: PolicySource::Opportunistic,
                tls: Tls::Opportunistic,
                requiretls: false,
                failure: temporary("starttls-not-supported", format!("{host} could not be reached")),
            },
            Demand::Encrypted => Requirement {
                source: PolicySource::Opportunistic,
                tls: Tls::Required(Verify::Any),
                requiretls: false,
                failure: temporary(
                    "starttls-not-supported",
                    format!("{host} did not offer encryption, and this sender's mail is only sent encrypted"),
                ),
            },
            Demand::RequireTls => Requirement {
                source: PolicySource::None,
                tls: Tls::Refused,
                requiretls,
                failure: Failure {
                    status: "5.7.10",
                    result_type: "validation-failure",
                    text: format!(
                        "the message was sent with REQUIRETLS, but {domain} publishes no way to check its mail \
                         servers' certificates (neither MTA-STS nor DANE), so it was not sent"
                    ),
                },
            },
        }
    }

    /// `tls` as the sender's demand tightens it: with "always require TLS", what would
    /// only be reported must succeed (any certificate will do).
    fn demanded(&self, tls: Tls) -> Tls {
        match (self.demand, tls) {
            (Demand::Encrypted, Tls::Report(_) | Tls::Opportunistic) => Tls::Required(Verify::Any),
            (_, tls) => tls,
        }
    }
}

/// The TLS actually used by one delivery: what is recorded on the queue recipient and
/// counted in metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Used {
    pub source: PolicySource,
    /// `TLSv1.3`, `TLSv1.2`; `None` for plaintext.
    pub version: Option<&'static str>,
    /// `TLSv1.3 TLS13_AES_256_GCM_SHA384`, for the log and the queue.
    pub detail: Option<String>,
    /// What a reported (not enforced) check found wrong (MTA-STS `testing`).
    pub report: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use postfach_dns::mta_sts::Policy;

    fn policy(mode: Mode) -> Policy {
        Policy { mode, mx: vec!["mx.outside.test".into(), "*.backup.test".into()], max_age: 86_400 }
    }

    fn decide(policy: Option<&Policy>, demand: Demand, host: &str) -> Requirement {
        Destination { domain: "outside.test", mta_sts: policy, demand }.for_host(host, &DaneAnswer::NotApplicable)
    }

    #[test]
    fn without_policy_tls_is_opportunistic() {
        let r = decide(None, Demand::None, "mx.outside.test");
        assert!(matches!(r.tls, Tls::Opportunistic));
        assert_eq!(r.source, PolicySource::Opportunistic);
    }

    #[test]
    fn mta_sts_enforce_requires_verified_tls_at_named_hosts_only() {
        let p = policy(Mode::Enforce);
        let r = decide(Some(&p), Demand::None, "mx.outside.test");
        assert!(matches!(r.tls, Tls::Required(Verify::WebPki)));
        assert!(!r.failure.is_permanent());
        assert!(matches!(decide(Some(&p), Demand::None, "a.backup.test").tls, Tls::Required(Verify::WebPki)));
        let r = decide(Some(&p), Demand::None, "evil.test");
        assert!(matches!(r.tls, Tls::Refused));
        assert!(!r.failure.is_permanent(), "{:?}", r.failure);
        assert_eq!(r.source, PolicySource::MtaSts);
    }

    #[test]
    fn mta_sts_testing_only_reports() {
        let p = policy(Mode::Testing);
        assert!(matches!(decide(Some(&p), Demand::None, "mx.outside.test").tls, Tls::Report(Verify::WebPki)));
        assert!(matches!(decide(Some(&p), Demand::None, "evil.test").tls, Tls::Opportunistic));
        assert!(matches!(decide(Some(&policy(Mode::None)), Demand::None, "evil.test").tls, Tls::Opportunistic));
    }

    #[test]
    fn requiretls_needs_a_published_policy_and_treats_testing_as_enforce() {
        let r = decide(None, Demand::RequireTls, "mx.outside.test");
        assert!(matches!(r.tls, Tls::Refused));
        assert_eq!(r.failure.status, "5.7.10");
        let p = policy(Mode::Testing);
        let r = decide(Some(&p), Demand::RequireTls, "mx.outside.test");
        assert!(matches!(r.tls, Tls::Required(Verify::WebPki)));
        assert!(r.requiretls);
        assert!(matches!(decide(Some(&p), Demand::RequireTls, "evil.test").tls, Tls::Refused));
    }

    #[test]
    fn always_require_tls_never_allows_plaintext() {
        assert!(matches!(decide(None, Demand::Encrypted, "mx.outside.test").tls, Tls::Required(Verify::Any)));
        let p = policy(Mode::Testing);
        assert!(matches!(decide(Some(&p), Demand::Encrypted, "mx.outside.test").tls, Tls::Required(Verify::Any)));
        let p = policy(Mode::Enforce);
        assert!(matches!(decide(Some(&p), Demand::Encrypted, "mx.outside.test").tls, Tls::Required(Verify::WebPki)));
        assert!(!decide(None, Demand::Encrypted, "mx.outside.test").requiretls);
    }

    #[test]
    fn secure_dane_comes_first() {
        let verifier: Arc<dyn ServerCertVerifier> =
            Arc::new(crate::cert_check::Verifier::checking(crate::cert_check::AnyCertificate));
        let dest = Destination { domain: "outside.test", mta_sts: Some(&policy(Mode::Enforce)), demand: Demand::None };
        let r = dest.for_host("evil.test", &DaneAnswer::Usable(verifier));
        assert!(matches!(r.tls, Tls::Required(Verify::Dane(_))));
        assert_eq!(r.source, PolicySource::Dane);
        let r = dest.for_host("mx.outside.test", &DaneAnswer::Unusable);
        assert!(matches!(r.tls, Tls::Required(Verify::Any)), "secure but unusable TLSA records still require TLS");
    }

    #[test]
    fn a_bogus_dane_answer_defers_even_where_mta_sts_would_allow() {
        let dest = Destination { domain: "outside.test", mta_sts: Some(&policy(Mode::Testing)), demand: Demand::None };
        let r = dest.for_host("mx.outside.test", &DaneAnswer::Defer("DNSSEC validation failed".into()));
        assert!(matches!(r.tls, Tls::Refused));
        assert_eq!(r.source, PolicySource::Dane);
        assert!(!r.failure.is_permanent(), "{:?}", r.failure);
    }
}
