//! The platform's `_25._tcp.HOSTNAME` TLSA records (DANE for mail to the server,
//! RFC 7672): which are published, against the keys of the hostname's certificate.
//!
//! Publishing TLSA is optional. Once published, senders that use DANE refuse to deliver
//! unless one record matches the certificate the server presents: a record for the next
//! key alone (or a stale one) is an error.

use hickory_resolver::proto::rr::{RData, RecordType};
use postfach_store::dns_checks::{Level, Text};

use crate::checks::Checker;
use crate::records;

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// A stable code, like `tlsa.stale`, for scripts and tests.
    pub code: &'static str,
    pub level: Level,
    /// What was found and, unless it is ok, what to do about it.
    pub message: Text,
}

/// The `3 1 1` digests published at `_25._tcp.HOSTNAME`, or `None` when DNS did not answer.
async fn published(checker: &Checker, name: &str) -> Option<Vec<Vec<u8>>> {
    match checker.resolver().lookup(format!("{name}."), RecordType::TLSA).await {
        Ok(lookup) => Some(
            lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::TLSA(t)
                        if u8::from(t.cert_usage) == 3 && u8::from(t.selector) == 1 && u8::from(t.matching) == 1 =>
                    {
                        Some(t.cert_data.clone())
                    }
                    RData::TLSA(_) => Some(Vec::new()),
                    _ => None,
                })
                .collect(),
        ),
        Err(e) if e.is_no_records_found() => Some(Vec::new()),
        Err(_) => None,
    }
}

/// Checks the published `_25._tcp.HOSTNAME` TLSA records against `current` (the DER
/// SubjectPublicKeyInfo of the certificate's key) and `next` (the renewal's key).
pub async fn check(checker: &Checker, current: &[u8], next: Option<&[u8]>) -> Finding {
    let name = records::tlsa_name(&checker.platform().hostname);
    let wanted: Vec<String> = records::platform_tlsa(checker.platform(), current, next)
        .iter()
        .map(|r| format!("{}. 3600 IN TLSA {}", r.name, r.value))
        .collect();
    let wanted = wanted.join("; ");
    let Some(found) = published(checker, &name).await else {
        return Finding {
            code: "tlsa.unanswered",
            level: Level::Warning,
            message: Text {
                de: format!(
                    "Die TLSA-Einträge unter {name} konnten nicht geprüft werden, weil DNS nicht geantwortet hat."
                ),
                en: format!("The TLSA records at {name} could not be checked because DNS did not answer."),
            },
        };
    };
    let current_digest = records::tlsa_digest(current);
    let next_digest = next.map(records::tlsa_digest);
    if found.is_empty() {
        return Finding {
            code: "tlsa.none",
            level: Level::Ok,
            message: Text {
                de: format!("Unter {name} ist kein TLSA-Eintrag veröffentlicht; das ist optional."),
                en: format!("No TLSA record is published at {name}; that is optional."),
            },
        };
    }
    if found.contains(&current_digest) {
        return Finding {
            code: "tlsa.ok",
            level: Level::Ok,
            message: Text {
                de: format!("Ein TLSA-Eintrag unter {name} passt zum aktuellen Zertifikat."),
                en: format!("A TLSA record at {name} matches the current certificate."),
            },
        };
    }
    let (code, de_why, en_why) = if next_digest.is_some_and(|n| found.contains(&n)) {
        (
            "tlsa.only_next",
            format!("Die TLSA-Einträge unter {name} passen nur zum nächsten Schlüssel"),
            format!("The TLSA records at {name} match only the next key"),
        )
    } else {
        (
            "tlsa.stale",
            format!("Kein TLSA-Eintrag unter {name} passt zum aktuellen Zertifikat"),
            format!("No TLSA record at {name} matches the current certificate"),
        )
    };
    Finding {
        code,
        level: Level::Error,
        message: Text {
            de: format!(
                "{de_why}: Mailserver, die DANE prüfen, lehnen die Zustellung an diesen Server ab. Veröffentlichen Sie: {wanted}"
            ),
            en: format!("{en_why}: mail servers that check DANE refuse to deliver to this server. Publish: {wanted}"),
        },
    }
}
