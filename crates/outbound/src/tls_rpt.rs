//! The daily TLS-RPT reports (RFC 8460) Postfach sends about its own deliveries: what one
//! delivery attempt counts for ([`outcome`], recorded by the queue worker), and the
//! report of one destination domain and day, as JSON (§4) in a mail (§5.3) from the
//! platform's hostname ([`report_mail`]), sent from the null sender so that nothing
//! answers it, and not counted itself ([`is_report`]).

use std::io::Write;

use base64::Engine;
use postfach_store::tls_rpt_out::TlsOutcome;

use crate::client::{Attempt, RcptResult};
use crate::tls_policy::PolicySource;
use postfach_dns::mta_sts::Policy;

/// The days whose reports are still sent (yesterday and the two before): a report whose
/// domain's DNS did not answer is tried again at each upkeep until then, older counts go.
pub const KEEP_DAYS: i64 = 3;
/// `mailto:` addresses of one `rua` that get the report.
pub const MAX_RECIPIENTS: usize = 5;

/// The content type that marks a TLS report mail (RFC 8460 §5.3).
const REPORT_TYPE: &str = "report-type=tlsrpt";

/// Whether `message` is a TLS report (looked for in its header only): its own delivery
/// is not counted, so reports never cause reports.
pub fn is_report(message: &[u8]) -> bool {
    let header = message.windows(4).position(|w| w == b"\r\n\r\n").map_or(message, |end| &message[..end]);
    header.windows(REPORT_TYPE.len()).any(|w| w.eq_ignore_ascii_case(REPORT_TYPE.as_bytes()))
}

/// What one delivery attempt to `domain` counts for in its report; `None` when no TLS
/// session was tried (no server reached, or refused before TLS).
pub fn outcome(domain: &str, attempt: &Attempt, mta_sts: Option<&Policy>) -> Option<TlsOutcome> {
    let (policy_type, policy) = match attempt.used.source {
        PolicySource::MtaSts => ("sts", mta_sts.map(policy_string).unwrap_or_default()),
        PolicySource::Dane => ("tlsa", String::new()),
        PolicySource::None | PolicySource::Opportunistic => ("no-policy-found", String::new()),
    };
    let refused = attempt.results.iter().find_map(|r| match r {
        RcptResult::Unprotected(failure) => Some(failure.result_type),
        _ => None,
    });
    let delivered_plain = attempt.results.iter().any(|r| matches!(r, RcptResult::Delivered));
    let result = match (refused, attempt.used.version, &attempt.used.report) {
        (Some(result_type), _, _) => result_type,
        // MTA-STS `testing`: delivered, but the check failed.
        (None, Some(_), Some(_)) => "validation-failure",
        (None, Some(_), None) => "success",
        (None, None, _) if delivered_plain => "starttls-not-supported",
        (None, None, _) => return None,
    };
    let mta = attempt.remote_mta.as_deref().unwrap_or("");
    let (mx_host, mx_ip) = match mta.split_once('[') {
        Some((host, ip)) => (host, ip.trim_end_matches(']')),
        None => (mta, ""),
    };
    Some(TlsOutcome {
        domain: domain.to_ascii_lowercase(),
        policy_type: policy_type.into(),
        policy,
        result: result.into(),
        mx_host: mx_host.into(),
        mx_ip: mx_ip.into(),
    })
}

/// The policy's lines as RFC 8460 §4.3 `policy-string` wants them, newline-joined.
fn policy_string(policy: &Policy) -> String {
    let mut lines = vec!["version: STSv1".to_string(), format!("mode: {}", policy.mode.as_str())];
    lines.extend(policy.mx.iter().map(|mx| format!("mx: {mx}")));
    lines.push(format!("max_age: {}", policy.max_age));
    lines.join("\n")
}

/// The RFC 8460 §4 JSON of one domain's `day` (days since 1970, UTC).
pub fn report_json(submitter: &str, report_id: &str, day: i64, domain: &str, rows: &[(TlsOutcome, u64)]) -> String {
    let iso = |secs: i64| {
        chrono::DateTime::from_timestamp(secs, 0)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default()
    };
    let mut policies: Vec<serde_json::Value> = Vec::new();
    let mut keys: Vec<(&str, &str)> = rows.iter().map(|(o, _)| (o.policy_type.as_str(), o.policy.as_str())).collect();
    keys.dedup();
    for (policy_type, policy) in keys {
        let of_policy = rows.iter().filter(|(o, _)| o.policy_type == policy_type && o.policy == policy);
        let (mut ok, mut failed, mut details) = (0u64, 0u64, Vec::new());
        for (o, n) in of_policy {
            if o.result == "success" {
                ok += n;
            } else {
                failed += n;
                details.push(serde_json::json!({
                    "result-type": o.result,
                    "receiving-mx-hostname": o.mx_host,
                    "receiving-ip": o.mx_ip,
                    "failed-session-count": n,
                }));
            }
        }
        let mut policy_json = serde_json::json!({ "policy-type": policy_type, "policy-domain": domain });
        if !policy.is_empty() {
            policy_json["policy-string"] = policy.split('\n').collect::<Vec<_>>().into();
        }
        policies.push(serde_json::json!({
            "policy": policy_json,
            "summary": { "total-successful-session-count": ok, "total-failure-session-count": failed },
            "failure-details": details,
        }));
    }
    serde_json::json!({
        "organization-name": submitter,
        "date-range": { "start-datetime": iso(day * 86_400), "end-datetime": iso(day * 86_400 + 86_399) },
        "contact-info": format!("postmaster@{submitter}"),
        "report-id": report_id,
        "policies": policies,
    })
    .to_string()
}

/// The report mail (RFC 8460 §5.3) to `to`: `multipart/report; report-type=tlsrpt` with
/// the gzipped JSON as `application/tlsrpt+gzip`.
pub fn report_mail(
    submitter: &str,
    domain: &str,
    to: &str,
    report_id: &str,
    json: &str,
    day: i64,
    now: postfach_types::UnixTime,
) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let gzip = gz.write_all(json.as_bytes()).and_then(|()| gz.finish()).unwrap_or_default();
    let encoded = base64::engine::general_purpose::STANDARD.encode(gzip);
    let boundary = format!("tlsrpt-{}", report_id.replace(['<', '>', '@'], "-"));
    let mut m = String::new();
    m.push_str(&format!("From: TLS reports <tls-reports@{submitter}>\r\n"));
    m.push_str(&format!("To: <{to}>\r\n"));
    m.push_str(&format!("Subject: Report Domain: {domain} Submitter: {submitter} Report-ID: <{report_id}>\r\n"));
    m.push_str(&format!("Date: {}\r\n", now.rfc5322()));
    m.push_str(&format!("Message-ID: <{report_id}>\r\n"));
    m.push_str(&format!("TLS-Report-Domain: {domain}\r\n"));
    m.push_str(&format!("TLS-Report-Submitter: {submitter}\r\n"));
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!("Content-Type: multipart/report; report-type=tlsrpt; boundary=\"{boundary}\"\r\n\r\n"));
    m.push_str(&format!("--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"));
    m.push_str(&format!("This is the TLS report (RFC 8460) for {domain} from {submitter}.\r\n\r\n"));
    m.push_str(&format!("--{boundary}\r\nContent-Type: application/tlsrpt+gzip\r\n"));
    m.push_str("Content-Transfer-Encoding: base64\r\n");
    m.push_str(&format!(
        "Content-Disposition: attachment; filename=\"{submitter}!{domain}!{}!{}.json.gz\"\r\n\r\n",
        day * 86_400,
        day * 86_400 + 86_399
    ));
    for line in encoded.as_bytes().chunks(76) {
        m.push_str(&String::from_utf8_lossy(line));
        m.push_str("\r\n");
    }
    m.push_str(&format!("--{boundary}--\r\n"));
    m.into_bytes()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn row(result: &str, n: u64) -> (TlsOutcome, u64) {
        let outcome = TlsOutcome {
            domain: "outside.test".into(),
            policy_type: "sts".into(),
            policy: "version: STSv1\nmode: enforce\nmx: mx.outside.test\nmax_age: 86400".into(),
            result: result.into(),
            mx_host: "mx.outside.test".into(),
            mx_ip: "192.0.2.1".into(),
        };
        (outcome, n)
    }

    #[test]
    fn the_report_mail_carries_the_gzipped_json_rfc_8460_describes() {
        let rows = [row("starttls-not-supported", 1), row("success", 3)];
        let json = report_json("mx.postfach.test", "r1@mx.postfach.test", 20_000, "outside.test", &rows);
        let mail = report_mail(
            "mx.postfach.test",
            "outside.test",
            "reports@outside.test",
            "r1@mx.postfach.test",
            &json,
            20_000,
            postfach_types::UnixTime(20_001 * 86_400),
        );
        assert!(is_report(&mail));
        let text = String::from_utf8(mail).expect("ascii");
        assert!(text.contains(
            "Subject: Report Domain: outside.test Submitter: mx.postfach.test Report-ID: <r1@mx.postfach.test>\r\n"
        ));
        assert!(text.contains("TLS-Report-Domain: outside.test\r\n"));
        assert!(text.contains("TLS-Report-Submitter: mx.postfach.test\r\n"));
        let (_, attachment) = text.split_once("Content-Type: application/tlsrpt+gzip").expect("attachment");
        let (_, body) = attachment.split_once("\r\n\r\n").expect("part body");
        let b64: String = body.lines().take_while(|l| !l.starts_with("--")).collect();
        let gzip = base64::engine::general_purpose::STANDARD.decode(b64).expect("base64");
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(&gzip[..]).read_to_string(&mut decoded).expect("gzip");
        let v: serde_json::Value = serde_json::from_str(&decoded).expect("json");
        assert_eq!(v["date-range"]["start-datetime"], "2024-10-04T00:00:00Z");
        let policy = &v["policies"][0];
        assert_eq!(policy["policy"]["policy-domain"], "outside.test");
        assert_eq!(policy["policy"]["policy-string"][1], "mode: enforce");
        assert_eq!(policy["summary"]["total-successful-session-count"], 3);
        assert_eq!(policy["summary"]["total-failure-session-count"], 1);
        assert_eq!(policy["failure-details"][0]["result-type"], "starttls-not-supported");
        assert_eq!(policy["failure-details"][0]["receiving-ip"], "192.0.2.1");
    }

    #[test]
    fn only_report_mails_are_recognised_and_only_by_their_header() {
        assert!(!is_report(b"Subject: hi\r\n\r\nContent-Type: multipart/report; report-type=tlsrpt\r\n"));
        assert!(is_report(b"Content-Type: multipart/report; Report-Type=TLSRPT\r\n\r\nbody"));
    }
}
