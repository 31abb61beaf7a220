//! Sender authentication of inbound mail with mail-auth: SPF for the HELO and MAIL FROM
//! identities (RFC 7208), DKIM signatures (RFC 6376) and the DMARC policy of the `From:`
//! domain (RFC 7489 / RFC 9989). The results become an `Authentication-Results:` field
//! (RFC 8601) and a `Received-SPF:` field (RFC 7208 §9.1).
//!
//! The resolver asks the configured address (`[dns] resolver`), or the system's resolvers,
//! and caches answers for their TTL (the test zones use TTL 0, so tests see changes at once).

use std::net::{IpAddr, SocketAddr};

use mail_auth::common::headers::HeaderWriter;
use mail_auth::dmarc::Policy;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimResult, DmarcResult, MessageAuthenticator, ReceivedSpf, SpfOutput,
    SpfResult,
};

use postfach_policy::inbound::{Dmarc, DmarcPolicy, Spf};

use crate::SmtpError;

/// Builds mail-auth's verifier (with a TTL-honouring cache) on the resolver at `address`,
/// or the system's resolvers.
pub fn authenticator(address: Option<SocketAddr>) -> Result<MessageAuthenticator, SmtpError> {
    postfach_dns::resolver::caching_authenticator(address)
        .or_else(|e| {
            // Mail must still be accepted; checks then fail with temporary errors
            // unless a resolver answers on the local host.
            tracing::warn!(error = %e, "no usable resolver configuration; asking 127.0.0.1:53 for SPF, DKIM and DMARC");
            postfach_dns::resolver::caching_authenticator(Some(SocketAddr::from(([127, 0, 0, 1], 53))))
        })
        .map_err(|e| SmtpError::Resolver(e.to_string()))
}

/// mail-auth's SPF result as the inbound policy names it.
pub fn spf_verdict(result: SpfResult) -> Spf {
    match result {
        SpfResult::Pass => Spf::Pass,
        SpfResult::Fail => Spf::Fail,
        SpfResult::SoftFail => Spf::SoftFail,
        SpfResult::Neutral => Spf::Neutral,
        SpfResult::None => Spf::None,
        SpfResult::TempError => Spf::TempError,
        SpfResult::PermError => Spf::PermError,
    }
}

/// SPF results of one transaction, taken at `MAIL FROM`.
#[derive(Debug, Clone)]
pub struct SpfResults {
    pub helo: SpfOutput,
    pub mail_from: SpfOutput,
}

impl SpfResults {
    pub fn mail_from_result(&self) -> SpfResult {
        self.mail_from.result()
    }
}

/// Checks the HELO identity (unless `helo_known` holds its result from an earlier
/// transaction of the session) and the MAIL FROM identity (`None`: the null path, whose
/// identity is `postmaster@helo`, RFC 7208 §2.4).
pub async fn spf(
    auth: &MessageAuthenticator,
    ip: IpAddr,
    helo: &str,
    hostname: &str,
    mail_from: Option<&str>,
    helo_known: Option<SpfOutput>,
) -> SpfResults {
    let helo_output = match helo_known {
        Some(known) => known,
        None => auth.verify_spf(SpfParameters::verify_ehlo(ip, helo, hostname)).await,
    };
    let mail_from = match mail_from {
        Some(sender) => auth.verify_spf(SpfParameters::verify_mail_from(ip, helo, hostname, sender)).await,
        None => helo_output.clone(),
    };
    SpfResults { helo: helo_output, mail_from }
}

/// Everything the inbound server learns about one message.
#[derive(Debug, Clone)]
pub struct MessageResults {
    /// `Authentication-Results: …\r\n`.
    pub authentication_results: String,
    /// `Received-SPF: …\r\n`.
    pub received_spf: String,
    pub dmarc: Dmarc,
    /// Domains of passing DKIM signatures (`d=`).
    pub dkim_pass_domains: Vec<String>,
    /// The domains of the `From:` addresses.
    pub from_domains: Vec<String>,
}

/// Verifies DKIM and DMARC of `message` and writes the result fields.
pub async fn message(
    auth: &MessageAuthenticator,
    message: &[u8],
    ip: IpAddr,
    helo: &str,
    hostname: &str,
    mail_from: Option<&str>,
    spf: &SpfResults,
) -> MessageResults {
    let sender = mail_from.unwrap_or_default();
    let received_spf = ReceivedSpf::new(&spf.mail_from, ip, helo, sender, hostname).to_header();
    let mail_from_domain = mail_from.and_then(|m| m.rsplit_once('@')).map_or(helo, |(_, d)| d);
    let Some(parsed) = AuthenticatedMessage::parse(message) else {
        let results = AuthenticationResults::new(hostname)
            .with_spf_mailfrom_result(&spf.mail_from, ip, sender, helo)
            .with_spf_ehlo_result(&spf.helo, ip, helo);
        return MessageResults {
            authentication_results: results.to_header(),
            received_spf,
            dmarc: Dmarc::None,
            dkim_pass_domains: Vec::new(),
            from_domains: Vec::new(),
        };
    };
    let dkim = auth.verify_dkim(&parsed).await;
    let dmarc = auth.verify_dmarc(DmarcParameters::new(&parsed, &dkim, mail_from_domain, &spf.mail_from)).await;
    let header_from = parsed.from.first().map(String::as_str).unwrap_or_default();
    let results = AuthenticationResults::new(hostname)
        .with_dkim_results(&dkim, header_from)
        .with_spf_mailfrom_result(&spf.mail_from, ip, sender, helo)
        .with_spf_ehlo_result(&spf.helo, ip, helo)
        .with_dmarc_result(&dmarc);
    let passed = |r: &DmarcResult| *r == DmarcResult::Pass;
    let temp = |r: &DmarcResult| matches!(r, DmarcResult::TempError(_));
    let verdict = if passed(dmarc.spf_result()) || passed(dmarc.dkim_result()) {
        Dmarc::Pass
    } else if temp(dmarc.spf_result()) || temp(dmarc.dkim_result()) {
        Dmarc::TempError
    } else if dmarc.dmarc_record().is_some() {
        let policy = match dmarc.policy() {
            Policy::Reject => DmarcPolicy::Reject,
            Policy::Quarantine => DmarcPolicy::Quarantine,
            Policy::None | Policy::Unspecified => DmarcPolicy::None,
        };
        Dmarc::Fail { domain: dmarc.domain().to_string(), policy }
    } else {
        Dmarc::None
    };
    let dkim_pass_domains = dkim
        .iter()
        .filter(|o| *o.result() == DkimResult::Pass)
        .filter_map(|o| o.signature().map(|s| s.d.to_ascii_lowercase()))
        .collect();
    let from_domains = parsed
        .from
        .iter()
        .filter_map(|f| f.rsplit_once('@').map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase()))
        .collect();
    MessageResults {
        authentication_results: results.to_header(),
        received_spf,
        dmarc: verdict,
        dkim_pass_domains,
        from_domains,
    }
}

/// Relaxed identifier alignment (RFC 7489 §3.1), approximated without the public suffix
/// list: equal domains, or one a subdomain of the other.
pub fn aligned(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_end_matches('.').to_ascii_lowercase(), b.trim_end_matches('.').to_ascii_lowercase());
    a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_is_relaxed() {
        assert!(aligned("acme.example", "ACME.example."));
        assert!(aligned("mail.acme.example", "acme.example"));
        assert!(aligned("acme.example", "news.acme.example"));
        assert!(!aligned("acme.example", "evil-acme.example"));
        assert!(!aligned("acme.example", "other.example"));
    }
}
