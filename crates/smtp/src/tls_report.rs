//! TLS reports (TLS-RPT, RFC 8460) mailed to the platform's reporting address: the
//! report is found in the message ([`read`]), decompressed and read within bounds, and
//! summed per policy domain. No I/O; the MX stores what comes out (`session.rs`).
//!
//! RFC 8460 §5.3: a `multipart/report; report-type=tlsrpt` message with an
//! `application/tlsrpt+gzip` (or `+json`) part. Bounded against hostile input: the
//! attachment and the decompressed JSON have size limits (a gzip bomb stops at the limit),
//! and a report with more than [`MAX_POLICIES`] policies or [`MAX_DETAILS`] failure details
//! in a policy is refused whole. Strings are cut to a length and cleaned of control
//! characters; numbers must be non-negative integers.

use std::collections::BTreeMap;
use std::io::Read;

use postfach_message::Message;
use postfach_store::tls_reports::{MAX_FAILURES_PER_REPORT, TlsFailure, TlsReportSummary};
use postfach_types::{DomainName, UnixTime};
use serde::Deserialize;

/// The largest report attachment, as sent (compressed).
pub const MAX_ATTACHMENT_BYTES: usize = 1024 * 1024;
/// The largest report JSON, decompressed.
pub const MAX_JSON_BYTES: usize = 4 * 1024 * 1024;
/// Policies in one report.
pub const MAX_POLICIES: usize = 100;
/// Failure details in one policy.
pub const MAX_DETAILS: usize = 1000;
/// Characters kept of a text field.
const MAX_TEXT: usize = 200;

/// Why a message is not a readable TLS report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("the message has no application/tlsrpt+gzip or application/tlsrpt+json part")]
    NoReport,
    #[error("the report part cannot be decoded")]
    Undecodable,
    #[error("the report attachment is larger than {MAX_ATTACHMENT_BYTES} bytes")]
    AttachmentTooBig,
    #[error("the report's gzip data is broken or truncated")]
    BadGzip,
    #[error("the report is larger than {MAX_JSON_BYTES} bytes when decompressed")]
    JsonTooBig,
    #[error("the report is not RFC 8460 JSON: {0}")]
    BadJson(String),
    #[error("the report has more than {MAX_POLICIES} policies or {MAX_DETAILS} failure details in one")]
    TooMany,
}

/// A report, summed per policy domain named in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub domains: BTreeMap<DomainName, TlsReportSummary>,
    /// Policies whose `policy-domain` is not a domain name.
    pub unnamed_policies: usize,
}

/// Finds the report in a message and reads it.
pub fn read(message: &Message<'_>) -> Result<Report, ReportError> {
    let (index, gzip) = report_part(message).ok_or(ReportError::NoReport)?;
    let part = message.part(index).ok_or(ReportError::NoReport)?;
    // base64 is at most 4/3 of the data plus line ends: refuse before decoding.
    if part.body.len() / 4 * 3 > MAX_ATTACHMENT_BYTES + MAX_ATTACHMENT_BYTES / 16 {
        return Err(ReportError::AttachmentTooBig);
    }
    let bytes = message.decoded_body(index).map_err(|_| ReportError::Undecodable)?;
    if bytes.len() > MAX_ATTACHMENT_BYTES {
        return Err(ReportError::AttachmentTooBig);
    }
    let json = if gzip { gunzip(&bytes)? } else { bytes.into_owned() };
    if json.len() > MAX_JSON_BYTES {
        return Err(ReportError::JsonTooBig);
    }
    parse_json(&json)
}

/// The report part: its index and whether it is gzip-compressed.
fn report_part(message: &Message<'_>) -> Option<(usize, bool)> {
    message.parts().iter().enumerate().find_map(|(i, part)| {
        let t = &part.content_type;
        if t.is("application", "tlsrpt+gzip") {
            Some((i, true))
        } else if t.is("application", "tlsrpt+json") {
            Some((i, false))
        } else {
            None
        }
    })
}

/// Decompresses at most [`MAX_JSON_BYTES`] (+1 to tell a bomb from a fit).
pub fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, ReportError> {
    let mut out = Vec::new();
    let limit = u64::try_from(MAX_JSON_BYTES).unwrap_or(u64::MAX) + 1;
    flate2::read::GzDecoder::new(bytes).take(limit).read_to_end(&mut out).map_err(|_| ReportError::BadGzip)?;
    if out.len() > MAX_JSON_BYTES {
        return Err(ReportError::JsonTooBig);
    }
    Ok(out)
}

#[derive(Deserialize)]
struct Json {
    #[serde(rename = "organization-name")]
    organization: String,
    #[serde(rename = "date-range")]
    date_range: DateRange,
    #[serde(rename = "contact-info", default)]
    contact: String,
    #[serde(rename = "report-id")]
    report_id: String,
    policies: Vec<PolicyJson>,
}

#[derive(Deserialize)]
struct DateRange {
    #[serde(rename = "start-datetime")]
    start: String,
    #[serde(rename = "end-datetime")]
    end: String,
}

#[derive(Deserialize)]
struct PolicyJson {
    policy: PolicyDesc,
    summary: Summary,
    #[serde(rename = "failure-details", default)]
    failure_details: Vec<Detail>,
}

#[derive(Deserialize)]
struct PolicyDesc {
    #[serde(rename = "policy-domain")]
    domain: String,
}

#[derive(Deserialize)]
struct Summary {
    #[serde(rename = "total-successful-session-count")]
    successful: u64,
    #[serde(rename = "total-failure-session-count")]
    failed: u64,
}

#[derive(Deserialize)]
struct Detail {
    #[serde(rename = "result-type")]
    result_type: String,
    #[serde(rename = "sending-mta-ip", default)]
    sending_mta_ip: String,
    #[serde(rename = "receiving-mx-hostname", default)]
    receiving_mx: String,
    #[serde(rename = "failed-session-count")]
    failed: u64,
}

/// Reads the report JSON (RFC 8460 §4).
pub fn parse_json(json: &[u8]) -> Result<Report, ReportError> {
    let report: Json = serde_json::from_slice(json).map_err(|e| ReportError::BadJson(e.to_string()))?;
    if report.policies.len() > MAX_POLICIES || report.policies.iter().any(|p| p.failure_details.len() > MAX_DETAILS) {
        return Err(ReportError::TooMany);
    }
    let start = datetime(&report.date_range.start)?;
    let end = datetime(&report.date_range.end)?;
    let mut domains: BTreeMap<DomainName, TlsReportSummary> = BTreeMap::new();
    let mut unnamed_policies = 0;
    for policy in report.policies {
        let Ok(domain) = DomainName::parse(policy.policy.domain.trim().trim_end_matches('.')) else {
            unnamed_policies += 1;
            continue;
        };
        let summary = domains.entry(domain).or_insert_with(|| TlsReportSummary {
            organization: text(&report.organization),
            contact: text(&report.contact),
            report_id: text(&report.report_id),
            start,
            end,
            successful: 0,
            failed: 0,
            failures: Vec::new(),
        });
        summary.successful = summary.successful.saturating_add(policy.summary.successful);
        summary.failed = summary.failed.saturating_add(policy.summary.failed);
        for detail in policy.failure_details {
            summary.failures.push(TlsFailure {
                result_type: text(&detail.result_type),
                sending_mta_ip: text(&detail.sending_mta_ip),
                receiving_mx: text(&detail.receiving_mx),
                failed: detail.failed,
            });
        }
    }
    // The largest failure groups are kept; the store keeps at most this many.
    for summary in domains.values_mut() {
        summary.failures.sort_by(|a, b| b.failed.cmp(&a.failed).then_with(|| a.result_type.cmp(&b.result_type)));
        summary.failures.truncate(MAX_FAILURES_PER_REPORT);
    }
    Ok(Report { domains, unnamed_policies })
}

/// An RFC 3339 date-time (RFC 8460 §4.4).
fn datetime(value: &str) -> Result<UnixTime, ReportError> {
    chrono::DateTime::parse_from_rfc3339(value.trim())
        .map(|t| UnixTime(t.timestamp()))
        .map_err(|_| ReportError::BadJson(format!("'{}' is not an RFC 3339 date-time", text(value))))
}

/// A text from the report as it may be shown: control characters replaced, cut to
/// [`MAX_TEXT`] characters.
fn text(value: &str) -> String {
    value.chars().take(MAX_TEXT).map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_string()
}

#[cfg(test)]
mod tests;
