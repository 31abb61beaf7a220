use std::io::Write;

use base64::Engine;

use super::*;

/// The example report of RFC 8460 appendix B.
pub(crate) const RFC_EXAMPLE: &str = r#"{
  "organization-name": "Company-X",
  "date-range": {
    "start-datetime": "2016-04-01T00:00:00Z",
    "end-datetime": "2016-04-01T23:59:59Z"
  },
  "contact-info": "sts-reporting@company-x.example",
  "report-id": "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
  "policies": [{
    "policy": {
      "policy-type": "sts",
      "policy-string": ["version: STSv1","mode: testing",
            "mx: *.mail.company-y.example","max_age: 86400"],
      "policy-domain": "company-y.example",
      "mx-host": ["*.mail.company-y.example"]
    },
    "summary": {
      "total-successful-session-count": 5326,
      "total-failure-session-count": 303
    },
    "failure-details": [{
      "result-type": "certificate-expired",
      "sending-mta-ip": "2001:db8:abcd:0012::1",
      "receiving-mx-hostname": "mx1.mail.company-y.example",
      "failed-session-count": 100
    }, {
      "result-type": "starttls-not-supported",
      "sending-mta-ip": "2001:db8:abcd:0013::1",
      "receiving-mx-hostname": "mx2.mail.company-y.example",
      "receiving-ip": "203.0.113.56",
      "failed-session-count": 200,
      "additional-information": "https://reports.company-x.example/report_info?id=5065427c-23d3#StarttlsNotSupported"
    }, {
      "result-type": "validation-failure",
      "sending-mta-ip": "198.51.100.62",
      "receiving-ip": "203.0.113.58",
      "receiving-mx-hostname": "mx-backup.mail.company-y.example",
      "failed-session-count": 3,
      "failure-error-code": "X509_V_ERR_PROOF_OF_POSSESSION_NOT_FOUND"
    }]
  }]
}"#;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// A report mail as RFC 8460 §5.3 describes it, with `part` as its report part.
fn mail(content_type: &str, part: &[u8]) -> Vec<u8> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(part);
    let lines: Vec<&str> =
        encoded.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).expect("base64 is ASCII")).collect();
    format!(
        "From: tlsrpt@company-x.example\r\nTo: tls-reports@mail.postfach.test\r\nSubject: Report Domain: company-y.example\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=\"tlsrpt\"; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain\r\n\r\nThis is a TLS report.\r\n\
         --b1\r\nContent-Type: {content_type}\r\nContent-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"company-x.example!company-y.example!1459468800!1459555199.json.gz\"\r\n\r\n\
         {}\r\n--b1--\r\n",
        lines.join("\r\n")
    )
    .into_bytes()
}

fn read_mail(raw: &[u8]) -> Result<Report, ReportError> {
    read(&Message::parse(raw))
}

fn company_y() -> DomainName {
    DomainName::parse("company-y.example").expect("name")
}

#[test]
fn the_rfc_example_is_read_from_a_gzip_attachment() {
    let report = read_mail(&mail("application/tlsrpt+gzip", &gzip(RFC_EXAMPLE.as_bytes()))).expect("report");
    assert_eq!(report.unnamed_policies, 0);
    let summary = &report.domains[&company_y()];
    assert_eq!(summary.organization, "Company-X");
    assert_eq!(summary.contact, "sts-reporting@company-x.example");
    assert_eq!(summary.report_id, "5065427c-23d3-47ca-b6e0-946ea0e8c4be");
    assert_eq!(summary.start, UnixTime(1_459_468_800));
    assert_eq!(summary.end, UnixTime(1_459_555_199));
    assert_eq!((summary.successful, summary.failed), (5326, 303));
    let failures: Vec<(&str, u64)> = summary.failures.iter().map(|f| (f.result_type.as_str(), f.failed)).collect();
    assert_eq!(failures, [("starttls-not-supported", 200), ("certificate-expired", 100), ("validation-failure", 3)]);
    assert_eq!(summary.failures[0].receiving_mx, "mx2.mail.company-y.example");
    assert_eq!(summary.failures[0].sending_mta_ip, "2001:db8:abcd:0013::1");
}

#[test]
fn plain_json_reports_are_read_too() {
    let report = read_mail(&mail("application/tlsrpt+json", RFC_EXAMPLE.as_bytes())).expect("report");
    assert_eq!(report.domains[&company_y()].failed, 303);
}

#[test]
fn policies_of_one_domain_are_summed_and_others_kept_apart() {
    let json = r#"{"organization-name":"Org","date-range":{"start-datetime":"2026-11-27T00:00:00Z",
        "end-datetime":"2026-11-27T23:59:59Z"},"report-id":"r1","policies":[
        {"policy":{"policy-type":"sts","policy-domain":"Company-Y.example."},
         "summary":{"total-successful-session-count":10,"total-failure-session-count":1},
         "failure-details":[{"result-type":"sts-policy-invalid","failed-session-count":1}]},
        {"policy":{"policy-type":"no-policy-found","policy-domain":"company-y.example"},
         "summary":{"total-successful-session-count":5,"total-failure-session-count":0}},
        {"policy":{"policy-type":"sts","policy-domain":"other.example"},
         "summary":{"total-successful-session-count":1,"total-failure-session-count":0}},
        {"policy":{"policy-type":"sts","policy-domain":"not a name"},
         "summary":{"total-successful-session-count":1,"total-failure-session-count":0}}]}"#;
    let report = parse_json(json.as_bytes()).expect("report");
    assert_eq!(report.unnamed_policies, 1);
    assert_eq!(report.domains.len(), 2);
    let y = &report.domains[&company_y()];
    assert_eq!((y.successful, y.failed), (15, 1));
    assert_eq!(y.contact, "");
    assert_eq!(y.failures[0].result_type, "sts-policy-invalid");
}

#[test]
fn a_mail_without_a_report_part_is_no_report() {
    let raw = b"From: a@b.example\r\nSubject: hi\r\n\r\nno report here\r\n";
    assert_eq!(read_mail(raw), Err(ReportError::NoReport));
    let zip = mail("application/zip", &gzip(RFC_EXAMPLE.as_bytes()));
    assert_eq!(read_mail(&zip), Err(ReportError::NoReport));
}

#[test]
fn truncated_gzip_is_refused() {
    let compressed = gzip(RFC_EXAMPLE.as_bytes());
    let truncated = &compressed[..compressed.len() / 2];
    assert_eq!(read_mail(&mail("application/tlsrpt+gzip", truncated)), Err(ReportError::BadGzip));
    assert_eq!(gunzip(b"not gzip at all"), Err(ReportError::BadGzip));
}

#[test]
fn a_gzip_bomb_stops_at_the_limit() {
    // 64 MiB of spaces compress to about 64 KiB: well within the attachment limit.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![b' '; 1024 * 1024];
    for _ in 0..64 {
        encoder.write_all(&block).expect("gzip");
    }
    let bomb = encoder.finish().expect("gzip");
    assert!(bomb.len() < MAX_ATTACHMENT_BYTES);
    assert_eq!(read_mail(&mail("application/tlsrpt+gzip", &bomb)), Err(ReportError::JsonTooBig));
}

#[test]
fn an_oversized_attachment_is_refused_before_decoding() {
    let big = vec![b'x'; MAX_ATTACHMENT_BYTES + 1024];
    assert_eq!(read_mail(&mail("application/tlsrpt+json", &big)), Err(ReportError::AttachmentTooBig));
}

#[test]
fn wrong_types_are_refused() {
    let cases = [
        RFC_EXAMPLE.replace("5326", "-5"),
        RFC_EXAMPLE.replace("5326", "\"5326\""),
        RFC_EXAMPLE.replace("5326", "53.26"),
        RFC_EXAMPLE.replace("\"Company-X\"", "42"),
        RFC_EXAMPLE.replace("\"2016-04-01T00:00:00Z\"", "\"yesterday\""),
        RFC_EXAMPLE.replace("\"policies\": [", "\"policies\": {\"a\": ["),
        RFC_EXAMPLE.replace("\"report-id\"", "\"report-number\""),
        "[]".to_string(),
        "null".to_string(),
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
    ];
    for case in cases {
        assert!(matches!(parse_json(case.as_bytes()), Err(ReportError::BadJson(_))), "{}", &case[..case.len().min(80)]);
    }
}

#[test]
fn huge_arrays_are_refused() {
    let detail = r#"{"result-type":"starttls-not-supported","failed-session-count":1}"#;
    let details = vec![detail; MAX_DETAILS + 1].join(",");
    let json = RFC_EXAMPLE.replacen("\"failure-details\": [{", &format!("\"failure-details\": [{details},{{"), 1);
    assert_eq!(parse_json(json.as_bytes()), Err(ReportError::TooMany));

    let policy = r#"{"policy":{"policy-type":"sts","policy-domain":"a.example"},
        "summary":{"total-successful-session-count":1,"total-failure-session-count":0}}"#;
    let policies = vec![policy; MAX_POLICIES + 1].join(",");
    let json = format!(
        r#"{{"organization-name":"O","date-range":{{"start-datetime":"2026-11-27T00:00:00Z","end-datetime":"2026-11-27T23:59:59Z"}},"report-id":"r","policies":[{policies}]}}"#
    );
    assert_eq!(parse_json(json.as_bytes()), Err(ReportError::TooMany));
}

#[test]
fn many_details_keep_the_largest_groups() {
    let details: Vec<String> = (0..500)
        .map(|n| {
            format!(
                r#"{{"result-type":"validation-failure","sending-mta-ip":"192.0.2.{}","failed-session-count":{n}}}"#,
                n % 250
            )
        })
        .collect();
    let json =
        RFC_EXAMPLE.replacen("\"failure-details\": [{", &format!("\"failure-details\": [{},{{", details.join(",")), 1);
    let report = parse_json(json.as_bytes()).expect("report");
    let failures = &report.domains[&company_y()].failures;
    assert_eq!(failures.len(), MAX_FAILURES_PER_REPORT);
    assert_eq!(failures[0].failed, 499);
}

#[test]
fn texts_are_cleaned_and_cut() {
    let long = "x".repeat(10_000);
    let json = RFC_EXAMPLE
        .replace("\"Company-X\"", "\"Evil\\u0000Org\\r\\nInjected: yes\"")
        .replace("5065427c-23d3-47ca-b6e0-946ea0e8c4be", &long);
    let report = parse_json(json.as_bytes()).expect("report");
    let summary = &report.domains[&company_y()];
    assert_eq!(summary.organization, "Evil Org  Injected: yes");
    assert_eq!(summary.report_id.chars().count(), MAX_TEXT);
}
