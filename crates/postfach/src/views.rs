//! The JSON `--json` prints for the rows the API does not show: the outbound queue, the
//! DNS records to publish and a domain's DNS check report. Rows the API shows too
//! (customers, domains, mailboxes, aliases, logins) print as the API's views
//! (`postfach_web::types`). Store rows have no JSON of their own: what a script sees is
//! decided here, field by field, and nothing a row holds (an internal id, a blob name)
//! shows unless it is listed.

use postfach_dns::records::{PublishedRecord, Purpose, RecordType};
use postfach_store::certificates::StoredCertificate;
use postfach_store::dns_checks::{DomainReport, Text, Verdict};
use postfach_store::queue::{QueuedMessage, QueuedRecipient};
use postfach_types::{DomainName, EmailAddress, UnixTime};
use serde::Serialize;

/// One of the server's certificates (`postfach certificates --json`). Never the key.
#[derive(Debug, Serialize)]
pub struct CertificateView {
    /// The hostname, or the customer domain whose names it covers.
    pub subject: DomainName,
    pub names: Vec<DomainName>,
    /// `null` until an order succeeded.
    pub not_before: Option<UnixTime>,
    pub not_after: Option<UnixTime>,
    pub issuer: Option<String>,
    pub issued_at: Option<UnixTime>,
    /// Why the last order failed; `null` after a success.
    pub last_error: Option<String>,
    /// Failed orders in a row.
    pub failures: i64,
    /// No order before this time (backoff); 0 when none is waiting.
    pub next_attempt_at: UnixTime,
}

impl From<&StoredCertificate> for CertificateView {
    fn from(c: &StoredCertificate) -> Self {
        let issued = c.issued.as_ref();
        CertificateView {
            subject: c.subject.clone(),
            names: c.names.clone(),
            not_before: issued.map(|i| i.not_before),
            not_after: issued.map(|i| i.not_after),
            issuer: issued.map(|i| i.issuer.clone()),
            issued_at: issued.map(|i| i.issued_at),
            last_error: c.last_error.clone(),
            failures: c.failures,
            next_attempt_at: c.next_attempt,
        }
    }
}

/// A queued message, by the id people see (`queue_id`), with its recipients.
#[derive(Debug, Serialize)]
pub struct QueuedMessageView {
    pub id: String,
    pub return_path: Option<EmailAddress>,
    pub size: u64,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    /// What TLS the sender asked for: `requiretls` (REQUIRETLS), `encrypted` ("always
    /// require TLS to other servers"); `null`: nothing.
    pub tls_demand: Option<String>,
    pub recipients: Vec<QueuedRecipientView>,
}

impl From<&QueuedMessage> for QueuedMessageView {
    fn from(m: &QueuedMessage) -> Self {
        QueuedMessageView {
            id: m.queue_id.clone(),
            return_path: m.return_path.clone(),
            size: m.size,
            created_at: m.created_at,
            expires_at: m.expires_at,
            tls_demand: m.tls_demand.clone(),
            recipients: m.recipients.iter().map(QueuedRecipientView::from).collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct QueuedRecipientView {
    pub address: EmailAddress,
    /// `queued`, `delivered` or `failed`.
    pub state: &'static str,
    pub attempts: u32,
    pub next_attempt_at: UnixTime,
    pub last_attempt_at: Option<UnixTime>,
    pub status: Option<String>,
    pub diagnostic: Option<String>,
    pub remote_mta: Option<String>,
    pub tls: Option<String>,
    /// The TLS rule the last attempt followed: `none` (plaintext), `opportunistic`,
    /// `mta-sts`, `dane`.
    pub tls_policy: Option<String>,
    /// `failed` or `delayed`: a delivery status notification still owed to the sender.
    pub notify: Option<&'static str>,
    pub delay_warned: bool,
    /// The node whose delivery attempt holds this recipient (`[cluster] node`); `null` when
    /// none does.
    pub claimed_by: Option<String>,
    /// When that claim's lease runs out unless renewed (afterwards another node may take
    /// the recipient).
    pub claim_expires_at: Option<UnixTime>,
}

impl From<&QueuedRecipient> for QueuedRecipientView {
    fn from(r: &QueuedRecipient) -> Self {
        QueuedRecipientView {
            address: r.address.clone(),
            state: r.state.as_str(),
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_attempt_at: r.last_attempt_at,
            status: r.status.clone(),
            diagnostic: r.diagnostic.clone(),
            remote_mta: r.remote_mta.clone(),
            tls: r.tls.clone(),
            tls_policy: r.tls_policy.clone(),
            notify: r.notify.map(|n| n.as_str()),
            delay_warned: r.delay_warned,
            claimed_by: r.claim.as_ref().map(|c| c.node.to_string()),
            claim_expires_at: r.claim.as_ref().map(|c| c.until),
        }
    }
}

/// One sentence in German and English.
#[derive(Debug, Serialize)]
pub struct TextView {
    pub de: String,
    pub en: String,
}

impl From<&Text> for TextView {
    fn from(t: &Text) -> Self {
        TextView { de: t.de.clone(), en: t.en.clone() }
    }
}

/// One record to publish.
#[derive(Debug, Serialize)]
pub struct RecordView {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: RecordType,
    pub value: String,
    pub txt_strings: Vec<String>,
    pub purpose: Purpose,
    pub description: TextView,
    pub optional: bool,
}

impl From<&PublishedRecord> for RecordView {
    fn from(r: &PublishedRecord) -> Self {
        RecordView {
            name: r.name.clone(),
            rtype: r.rtype,
            value: r.value.clone(),
            txt_strings: r.txt_strings.clone(),
            purpose: r.purpose,
            description: TextView::from(&r.description),
            optional: r.optional,
        }
    }
}

/// The result of one run of a domain's DNS checks.
#[derive(Debug, Serialize)]
pub struct DomainReportView {
    pub domain: DomainName,
    pub checked_at: UnixTime,
    pub verdicts: Vec<VerdictView>,
}

impl From<&DomainReport> for DomainReportView {
    fn from(r: &DomainReport) -> Self {
        DomainReportView {
            domain: r.domain.clone(),
            checked_at: r.checked_at,
            verdicts: r.verdicts.iter().map(VerdictView::from).collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct VerdictView {
    /// `ownership`, `mx`, `spf`, `dkim` or `dmarc`.
    pub check: &'static str,
    pub code: String,
    /// `ok`, `warning` or `error`.
    pub level: &'static str,
    pub message: TextView,
}

impl From<&Verdict> for VerdictView {
    fn from(v: &Verdict) -> Self {
        VerdictView {
            check: v.check.as_str(),
            code: v.code.clone(),
            level: v.level.as_str(),
            message: TextView::from(&v.message),
        }
    }
}

/// Converts a list of rows.
pub fn all<'a, T: 'a, V: From<&'a T>>(rows: &'a [T]) -> Vec<V> {
    rows.iter().map(V::from).collect()
}

#[cfg(test)]
mod tests {
    use postfach_store::queue::{Claim, Notice, RecipientState};
    use postfach_types::{BlobId, CustomerId, MailboxId, NodeName, QueueMessageId, QueueRecipientId};

    use super::*;

    /// What `postfach queue list --json` shows a script: the public queue id as `id`, no
    /// internal ids, no owner, no blob name; states as words.
    #[test]
    fn a_queued_message_shows_only_what_scripts_may_rely_on() {
        let address = |a: &str| EmailAddress::parse(a).expect("address");
        let message = QueuedMessage {
            id: QueueMessageId::new(7),
            queue_id: "Q1A2B3".into(),
            customer_id: Some(CustomerId::new(3)),
            mailbox_id: Some(MailboxId::new(4)),
            return_path: Some(address("max@acme.example")),
            blob: BlobId::parse("0000000000000000000000000000000d").expect("blob"),
            size: 1234,
            created_at: UnixTime(100),
            expires_at: UnixTime(200),
            tls_demand: Some("requiretls".into()),
            recipients: vec![QueuedRecipient {
                id: QueueRecipientId::new(9),
                address: address("eve@example.org"),
                state: RecipientState::Queued,
                attempts: 2,
                next_attempt_at: UnixTime(150),
                last_attempt_at: Some(UnixTime(120)),
                status: Some("4.4.1".into()),
                diagnostic: Some("no answer".into()),
                remote_mta: Some("mx.example.org".into()),
                tls: None,
                tls_policy: Some("mta-sts".into()),
                notify: Some(Notice::Delayed),
                delay_warned: true,
                claim: Some(Claim { node: NodeName::parse("mail-2").expect("node"), until: UnixTime(180) }),
            }],
        };
        let json = serde_json::to_value(QueuedMessageView::from(&message)).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "id": "Q1A2B3", "return_path": "max@acme.example", "size": 1234,
                "created_at": 100, "expires_at": 200, "tls_demand": "requiretls",
                "recipients": [{
                    "address": "eve@example.org", "state": "queued", "attempts": 2,
                    "next_attempt_at": 150, "last_attempt_at": 120, "status": "4.4.1",
                    "diagnostic": "no answer", "remote_mta": "mx.example.org", "tls": null, "tls_policy": "mta-sts",
                    "notify": "delayed", "delay_warned": true,
                    "claimed_by": "mail-2", "claim_expires_at": 180
                }]
            })
        );
    }
}
