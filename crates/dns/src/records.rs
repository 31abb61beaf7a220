//! The DNS records to publish: per customer domain ([`for_domain`]) and for the platform
//! itself ([`platform`]). Shown by `postfach dns`, the API and the panel.
//!
//! Per domain: the ownership TXT record while the domain is unverified, MX, SPF (one
//! record; merged with what the domain already publishes), DKIM (active and pending keys),
//! DMARC, the SRV records of RFC 6186 and RFC 8314, and the autoconfig/autodiscover names.

use std::net::IpAddr;

use postfach_store::dkim::{DkimKey, DkimKeyState};
use postfach_store::dns_checks::Text;
use postfach_store::domains::Domain;
use postfach_types::{DomainName, EmailAddress};

use crate::{Platform, dkim, spf, split_txt};

/// A DNS record type, as written in zone files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum RecordType {
    A,
    #[serde(rename = "AAAA")]
    Aaaa,
    #[serde(rename = "MX")]
    Mx,
    #[serde(rename = "TXT")]
    Txt,
    #[serde(rename = "CNAME")]
    Cname,
    #[serde(rename = "SRV")]
    Srv,
    #[serde(rename = "PTR")]
    Ptr,
    #[serde(rename = "TLSA")]
    Tlsa,
}

impl RecordType {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Mx => "MX",
            RecordType::Txt => "TXT",
            RecordType::Cname => "CNAME",
            RecordType::Srv => "SRV",
            RecordType::Ptr => "PTR",
            RecordType::Tlsa => "TLSA",
        }
    }
}

impl std::fmt::Display for RecordType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a record is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Ownership,
    Mx,
    Spf,
    Dkim,
    Dmarc,
    Srv,
    Autoconfig,
    Autodiscover,
    /// The platform's own A/AAAA records.
    Address,
    /// The reverse (PTR) record of an outbound IP address.
    ReverseDns,
    /// The platform's SPF record that customers include.
    SpfInclude,
    /// Where other servers send TLS reports (RFC 8460).
    TlsRpt,
    /// Inbound MTA-STS: the `_mta-sts` TXT record and the `mta-sts.` name (RFC 8461).
    MtaSts,
    /// The platform's `_25._tcp` TLSA record: DANE for mail to the server (RFC 7672).
    Tlsa,
}

/// One record to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedRecord {
    /// The owner name, fully qualified, without the final dot.
    pub name: String,
    pub rtype: RecordType,
    /// The value as a DNS provider's form wants it: the whole text of a TXT record
    /// (unquoted), `10 mail.example.net.` for MX, `0 1 993 mail.example.net.` for SRV.
    pub value: String,
    /// For TXT records: the value split into character-strings of at most 255 bytes, as
    /// a zone file holds them (RFC 1035 §3.3.14). Empty for other types.
    pub txt_strings: Vec<String>,
    pub purpose: Purpose,
    /// What the record does, in German and English.
    pub description: Text,
    /// The record is recommended, not required.
    pub optional: bool,
}

impl PublishedRecord {
    fn new(
        name: impl Into<String>,
        rtype: RecordType,
        value: impl Into<String>,
        purpose: Purpose,
        de: &str,
        en: &str,
    ) -> Self {
        let value = value.into();
        let txt_strings = if rtype == RecordType::Txt { split_txt(&value) } else { Vec::new() };
        PublishedRecord {
            name: name.into(),
            rtype,
            value,
            txt_strings,
            purpose,
            description: Text { de: de.to_string(), en: en.to_string() },
            optional: false,
        }
    }

    fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// The record as one zone-file line: `name. 3600 IN TXT "..." "..."`.
    pub fn zone_line(&self) -> String {
        let value = match self.rtype {
            RecordType::Txt => self
                .txt_strings
                .iter()
                .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect::<Vec<_>>()
                .join(" "),
            _ => self.value.clone(),
        };
        format!("{}. 3600 IN {} {}", self.name, self.rtype, value)
    }
}

/// What [`for_domain`] needs to know about one domain.
#[derive(Debug, Clone, Copy)]
pub struct DomainSetup<'a> {
    pub platform: &'a Platform,
    pub domain: &'a Domain,
    /// The domain's DKIM keys; the active and the pending one are published.
    pub dkim_keys: &'a [DkimKey],
    /// The SPF records the domain publishes now (empty if none or unknown): with one or
    /// more, the SPF record shown is one merged record.
    pub published_spf: &'a [String],
}

/// The SPF record the domain should publish: ours alone, or one record merged with the
/// published ones (never a second record).
pub fn spf_value(platform: &Platform, published_spf: &[String]) -> String {
    spf::merge(published_spf, &platform.spf_name)
}

/// The DMARC record Postfach recommends (RFC 7489 §6.3): quarantine what fails, relaxed
/// alignment (so subdomains and the platform's envelope work), no reports by default.
pub fn dmarc_value() -> String {
    "v=DMARC1; p=quarantine; adkim=r; aspf=r".to_string()
}

pub(crate) fn fqdn(name: &DomainName) -> String {
    format!("{name}.")
}

/// The records a customer publishes for one domain (or alias domain). While the platform's
/// `hostname` is not usable ([`Platform::hostname_problem`]), only the records that do
/// not name it: ownership, DKIM and DMARC.
pub fn for_domain(setup: &DomainSetup<'_>) -> Vec<PublishedRecord> {
    let DomainSetup { platform, domain, dkim_keys, published_spf } = *setup;
    let d = &domain.name;
    let host = fqdn(&platform.hostname);
    let names_host = platform.hostname_problem().is_none();
    let mut out = Vec::new();
    // The ownership record stays on the list once it proved the domain: it must stay
    // published (checks::check_ownership). A domain the operator verified needs none.
    if !domain.verified || domain.proven_by_record {
        let (name, value) = domain.ownership_record();
        let (de, en) = if domain.verified {
            (
                "Beweist, dass Ihnen die Domain gehört. Lassen Sie ihn veröffentlicht: Fehlt er, wird die Prüfung rot und Sie werden benachrichtigt.",
                "Proves that the domain is yours. Keep it published: if it disappears, the check turns red and you are told.",
            )
        } else {
            (
                "Beweist, dass Ihnen die Domain gehört. Solange er fehlt, nimmt die Domain keine E-Mails an und versendet keine.",
                "Proves that the domain is yours. Until it is found, the domain receives and sends no mail.",
            )
        };
        out.push(PublishedRecord::new(name, RecordType::Txt, value, Purpose::Ownership, de, en));
    }
    if names_host {
        out.extend(mx_and_spf(platform, d, published_spf));
    }
    out.extend(dkim_and_dmarc(d, dkim_keys));
    if names_host {
        out.extend(client_setup(platform, d, &host));
        out.extend(mta_sts(platform, domain, &host));
    }
    out.extend(tls_reporting(platform, d));
    out
}

/// The TLS-RPT record (RFC 8460 §3) naming the platform's reporting address.
pub fn tls_rpt_value(address: &EmailAddress) -> String {
    format!("v=TLSRPTv1; rua=mailto:{address}")
}

/// The `_smtp._tls` record: other servers report their TLS problems with mail to the
/// domain to the platform's reporting address, and the domain page shows the reports.
fn tls_reporting(platform: &Platform, d: &DomainName) -> Option<PublishedRecord> {
    let address = platform.tls_reports.as_ref()?;
    let record = PublishedRecord::new(
        format!("_smtp._tls.{d}"),
        RecordType::Txt,
        tls_rpt_value(address),
        Purpose::TlsRpt,
        "Bittet andere Mailserver, Probleme mit der Verschlüsselung beim Zustellen an Ihre Domain zu melden (TLS-RPT). Die Berichte erscheinen auf dieser Seite.",
        "Asks other mail servers to report problems with encryption when delivering to your domain (TLS-RPT). The reports appear on this page.",
    );
    Some(record.optional())
}

/// The MX hosts the platform publishes for every domain, without the final dot: the MX
/// record's target and each `mx:` line of the MTA-STS policy.
pub fn mx_hosts(hostname: &DomainName) -> Vec<String> {
    vec![hostname.as_str().to_string()]
}

/// While the domain's MTA-STS mode is not off: the `_mta-sts` TXT record with the id of
/// the current policy, and `mta-sts.D` pointing here (the policy is served there).
fn mta_sts(platform: &Platform, domain: &Domain, host: &str) -> Vec<PublishedRecord> {
    let d = &domain.name;
    let Some(policy) = crate::mta_sts::policy(&platform.hostname, domain.mta_sts) else { return Vec::new() };
    vec![
        PublishedRecord::new(
            crate::mta_sts::record_name(d),
            RecordType::Txt,
            crate::mta_sts::txt_value(&policy),
            Purpose::MtaSts,
            "Sagt anderen Mailservern, dass E-Mails an die Domain nur verschlüsselt zugestellt werden sollen (MTA-STS). Die id ändert sich mit der Richtlinie: Übernehmen Sie dann den neuen Wert.",
            "Tells other mail servers to deliver mail to the domain only encrypted (MTA-STS). The id changes with the policy: publish the new value then.",
        ),
        PublishedRecord::new(
            crate::mta_sts::policy_host(d),
            RecordType::Cname,
            host,
            Purpose::MtaSts,
            "Unter diesem Namen stellt der Server die MTA-STS-Richtlinie bereit; das Zertifikat dafür wird automatisch geholt.",
            "The server publishes the MTA-STS policy under this name; its certificate is obtained automatically.",
        ),
    ]
}

/// MX and SPF: where mail to the domain goes, and who may send it.
fn mx_and_spf(platform: &Platform, d: &DomainName, published_spf: &[String]) -> Vec<PublishedRecord> {
    let mut out = Vec::new();
    for mx in mx_hosts(&platform.hostname) {
        out.push(PublishedRecord::new(
            d.as_str(),
            RecordType::Mx,
            format!("10 {mx}."),
            Purpose::Mx,
            "Leitet eingehende E-Mails an diesen Server. Entfernen Sie andere MX-Einträge.",
            "Sends incoming mail to this server. Remove any other MX records.",
        ));
    }
    let spf_de = if published_spf.is_empty() {
        "Erlaubt den Servern der Plattform, E-Mails für die Domain zu senden."
    } else {
        "Ersetzt Ihren bisherigen SPF-Eintrag: behält dessen Angaben und erlaubt zusätzlich die Server der Plattform. Es darf nur einen SPF-Eintrag geben."
    };
    let spf_en = if published_spf.is_empty() {
        "Allows the platform's servers to send mail for the domain."
    } else {
        "Replaces your current SPF record: keeps what it allows and adds the platform's servers. There must be only one SPF record."
    };
    out.push(PublishedRecord::new(
        d.as_str(),
        RecordType::Txt,
        spf_value(platform, published_spf),
        Purpose::Spf,
        spf_de,
        spf_en,
    ));
    out
}

/// The domain's DKIM keys (active and pending) and its DMARC policy.
fn dkim_and_dmarc(d: &DomainName, dkim_keys: &[DkimKey]) -> Vec<PublishedRecord> {
    let mut out = Vec::new();
    for key in dkim_keys.iter().filter(|k| k.state != DkimKeyState::Retired) {
        let (de, en) = match key.state {
            DkimKeyState::Pending => (
                "Der neue DKIM-Schlüssel. Er wird verwendet, sobald dieser Eintrag gefunden wird; der bisherige bleibt bis dahin gültig.",
                "The new DKIM key. It is used once this record is found; keep the current one until then.",
            ),
            _ => (
                "Der öffentliche Schlüssel, mit dem Empfänger die DKIM-Signatur Ihrer E-Mails prüfen.",
                "The public key receivers check the DKIM signature of your mail with.",
            ),
        };
        out.push(PublishedRecord::new(
            dkim::record_name(&key.selector, d),
            RecordType::Txt,
            dkim::record_value(&key.public_key),
            Purpose::Dkim,
            de,
            en,
        ));
    }
    out.push(PublishedRecord::new(
        format!("_dmarc.{d}"),
        RecordType::Txt,
        dmarc_value(),
        Purpose::Dmarc,
        "Sagt Empfängern, dass E-Mails, die weder SPF noch DKIM bestehen, in den Spam-Ordner gehören. Berichte erhalten Sie mit dem Zusatz rua=mailto:ADRESSE.",
        "Tells receivers to put mail that passes neither SPF nor DKIM into spam. Add rua=mailto:ADDRESS to receive reports.",
    ));
    out
}

/// The SRV records and autoconfig/autodiscover names mail programs set themselves up by.
pub(crate) fn client_setup(platform: &Platform, d: &DomainName, host: &str) -> Vec<PublishedRecord> {
    let mut out = Vec::new();
    // RFC 6186 §3, RFC 8314 §5.1: implicit TLS preferred (lower priority number); a
    // service that is not offered is published with the target ".".
    let p = platform.ports;
    for (service, port, priority) in [
        ("_submissions._tcp", p.submissions, 0),
        ("_submission._tcp", p.submission, 10),
        ("_imaps._tcp", p.imaps, 0),
        ("_imap._tcp", p.imap, 10),
        ("_pop3s._tcp", p.pop3s, 0),
        ("_pop3._tcp", p.pop3, 10),
    ] {
        let value = match port {
            Some(port) => format!("{priority} 1 {port} {host}"),
            None => "0 0 0 .".to_string(),
        };
        out.push(PublishedRecord::new(
            format!("{service}.{d}"),
            RecordType::Srv,
            value,
            Purpose::Srv,
            "Hilft E-Mail-Programmen, die Server-Einstellungen selbst zu finden (RFC 6186).",
            "Helps mail programs find the server settings by themselves (RFC 6186).",
        ));
    }
    out.push(PublishedRecord::new(
        format!("autoconfig.{d}"),
        RecordType::Cname,
        host,
        Purpose::Autoconfig,
        "Automatische Einrichtung für Thunderbird und andere Programme.",
        "Automatic setup for Thunderbird and other programs.",
    ));
    out.push(PublishedRecord::new(
        format!("autodiscover.{d}"),
        RecordType::Cname,
        host,
        Purpose::Autodiscover,
        "Automatische Einrichtung für Outlook.",
        "Automatic setup for Outlook.",
    ));
    out.push(
        PublishedRecord::new(
            format!("_autodiscover._tcp.{d}"),
            RecordType::Srv,
            format!("0 1 443 {host}"),
            Purpose::Autodiscover,
            "Automatische Einrichtung für Outlook, wenn der CNAME-Eintrag nicht möglich ist.",
            "Automatic setup for Outlook where the CNAME record is not possible.",
        )
        .optional(),
    );
    out
}

/// The reverse-DNS name of an address (RFC 1035 §3.5, RFC 3596 §2.5).
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut name = String::new();
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0x0f, byte >> 4));
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

/// The platform's SPF record, published by the operator at `spf_name`: every outbound
/// address, nothing else.
pub fn platform_spf_value(platform: &Platform) -> String {
    let mut value = String::from("v=spf1");
    for ip in &platform.outbound_ips {
        match ip {
            IpAddr::V4(v4) => value.push_str(&format!(" ip4:{v4}")),
            IpAddr::V6(v6) => value.push_str(&format!(" ip6:{v6}")),
        }
    }
    value.push_str(" -all");
    value
}

/// The records the operator publishes for the platform: the server's addresses, the
/// reverse names of the outbound addresses, the SPF record that customers include, and
/// an SPF record for the server's own name (its HELO identity, RFC 7208 §2.3).
///
/// Refused with the explanation of [`Platform::hostname_problem`] while `hostname` is not
/// a name others can reach (no `_spf.localhost`).
pub fn platform(platform: &Platform) -> Result<Vec<PublishedRecord>, Text> {
    if let Some(problem) = platform.hostname_problem() {
        return Err(problem);
    }
    let host = platform.hostname.as_str();
    let mut out = Vec::new();
    for ip in &platform.outbound_ips {
        let rtype = if ip.is_ipv4() { RecordType::A } else { RecordType::Aaaa };
        out.push(PublishedRecord::new(
            host,
            rtype,
            ip.to_string(),
            Purpose::Address,
            "Die Adresse des Servers: Ziel von MX, SRV und der automatischen Einrichtung.",
            "The server's address: target of MX, SRV and client autoconfiguration.",
        ));
    }
    for ip in &platform.outbound_ips {
        out.push(PublishedRecord::new(
            reverse_name(*ip),
            RecordType::Ptr,
            format!("{host}."),
            Purpose::ReverseDns,
            "Rückwärtsauflösung der Versandadresse; beim Anbieter des Netzes zu setzen. Viele Empfänger lehnen E-Mails von Adressen ohne passenden PTR ab.",
            "Reverse DNS of the sending address; set it at the network's provider. Many receivers refuse mail from addresses without a matching PTR.",
        ));
    }
    out.push(PublishedRecord::new(
        platform.spf_name.as_str(),
        RecordType::Txt,
        platform_spf_value(platform),
        Purpose::SpfInclude,
        "Der SPF-Eintrag der Plattform mit allen Versandadressen; die Domains der Kunden binden ihn mit include ein.",
        "The platform's SPF record with every sending address; customer domains include it.",
    ));
    out.push(PublishedRecord::new(
        host,
        RecordType::Txt,
        format!("v=spf1 include:{} -all", platform.spf_name),
        Purpose::Spf,
        "SPF für den Servernamen selbst (HELO), damit auch Rückmeldungen ohne Absender geprüft werden können.",
        "SPF for the server's own name (HELO), so that bounces without a sender can be checked too.",
    ));
    Ok(out)
}

/// The owner name of the TLSA records of the server's SMTP port: `_25._tcp.HOSTNAME`.
pub fn tlsa_name(hostname: &DomainName) -> String {
    format!("_25._tcp.{hostname}")
}

/// The SHA-256 of a DER SubjectPublicKeyInfo: the data of a `3 1 1` TLSA record.
pub fn tlsa_digest(public_key_info: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, public_key_info).as_ref().to_vec()
}

/// The `3 1 1` TLSA record value for a key (DANE-EE, the public key, SHA-256; RFC 7218).
pub fn tlsa_value(public_key_info: &[u8]) -> String {
    let hex: String = tlsa_digest(public_key_info).iter().map(|b| format!("{b:02x}")).collect();
    format!("3 1 1 {hex}")
}

/// The optional `_25._tcp.HOSTNAME` TLSA records for the key of the hostname's current
/// certificate and, when known, the key its renewal will use: published together, the
/// record keeps matching across the renewal.
pub fn platform_tlsa(platform: &Platform, current: &[u8], next: Option<&[u8]>) -> Vec<PublishedRecord> {
    let name = tlsa_name(&platform.hostname);
    let mut out = vec![
        PublishedRecord::new(
            name.clone(),
            RecordType::Tlsa,
            tlsa_value(current),
            Purpose::Tlsa,
            "DANE für E-Mails an diesen Server: der Schlüssel des aktuellen Zertifikats. Nur in einer mit DNSSEC signierten Zone sinnvoll.",
            "DANE for mail to this server: the key of the current certificate. Useful only in a DNSSEC-signed zone.",
        )
        .optional(),
    ];
    if let Some(next) = next.filter(|n| *n != current) {
        out.push(
            PublishedRecord::new(
                name,
                RecordType::Tlsa,
                tlsa_value(next),
                Purpose::Tlsa,
                "Der Schlüssel des nächsten Zertifikats: veröffentlichen Sie beide Einträge; der nächste Schlüssel übernimmt bei der Erneuerung.",
                "The key of the next certificate: publish both records; the next key takes over at renewal.",
            )
            .optional(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        assert_eq!(reverse_name("192.0.2.25".parse().expect("ip")), "25.2.0.192.in-addr.arpa");
        assert_eq!(
            reverse_name("2001:db8::25".parse().expect("ip")),
            "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }
}
