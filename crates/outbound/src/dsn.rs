//! Delivery status notifications (RFC 3464): the `multipart/report` (RFC 6522) a sender
//! gets when mail to some recipients failed for good, or is still delayed.
//!
//! The report has three parts: a short explanation for people, the machine-readable
//! `message/delivery-status`, and the header of the original message as
//! `text/rfc822-headers` (the body is left out: the sender has it, and a bounce should not
//! carry a large message twice). It is sent with the null reverse-path (RFC 5321 §4.5.5),
//! so it can never cause another notification.

use postfach_types::{DomainName, EmailAddress, UnixTime};

use crate::message::message_id;

/// What happened to a recipient, as RFC 3464 §2.3.3 `Action` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Failed,
    Delayed,
}

/// One recipient in a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeRecipient {
    pub address: EmailAddress,
    pub action: Action,
    /// Enhanced status code (RFC 3463), like `5.1.1`.
    pub status: String,
    /// The remote server's reply, or Postfach's own reason.
    pub diagnostic: Option<String>,
    /// The server that gave the reply, when the reason is a remote reply.
    pub remote_mta: Option<String>,
    pub last_attempt: Option<UnixTime>,
}

/// A notification to render.
#[derive(Debug, Clone)]
pub struct Notice<'a> {
    /// This server's name (`Reporting-MTA`, the `From:` address).
    pub hostname: &'a DomainName,
    pub queue_id: &'a str,
    /// The original message's sender: the notification goes there.
    pub to: &'a EmailAddress,
    /// When the original message was accepted.
    pub arrival: UnixTime,
    /// When the queue stops trying (for delay warnings).
    pub expires: UnixTime,
    pub now: UnixTime,
    pub recipients: &'a [NoticeRecipient],
    /// The header section of the original message, if it is still there.
    pub original_headers: Option<&'a [u8]>,
}

/// The notification as a complete message, CRLF line endings.
pub fn render(notice: &Notice<'_>) -> Vec<u8> {
    let boundary = format!("=_postfach_{}", notice.queue_id);
    let failed = notice.recipients.iter().any(|r| r.action == Action::Failed);
    let subject = if failed { "Undelivered Mail Returned to Sender" } else { "Delayed Mail (still being retried)" };
    let mut m = String::new();
    m.push_str(&format!("From: Mail Delivery System <MAILER-DAEMON@{}>\r\n", notice.hostname));
    m.push_str(&format!("To: <{}>\r\n", notice.to));
    m.push_str(&format!("Subject: {subject}\r\n"));
    m.push_str(&format!("Date: {}\r\n", notice.now.rfc5322()));
    m.push_str(&format!("Message-ID: {}\r\n", message_id(notice.hostname)));
    m.push_str("Auto-Submitted: auto-replied\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n"
    ));
    m.push_str("\r\nThis is a MIME-encapsulated delivery status notification.\r\n\r\n");

    // Part 1: for people.
    m.push_str(&format!("--{boundary}\r\n"));
    m.push_str("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n");
    m.push_str(&format!("This is the mail system at {}.\r\n\r\n", notice.hostname));
    if failed {
        m.push_str("Your message could not be delivered to the recipients below. It will not be\r\n");
        m.push_str("tried again. Check the addresses, or ask the recipients to contact you another way.\r\n\r\n");
    } else {
        m.push_str("Your message has not been delivered yet to the recipients below. Nothing needs\r\n");
        m.push_str(&format!("to be done: delivery is retried until {}.\r\n\r\n", notice.expires.rfc5322()));
    }
    for r in notice.recipients {
        let what = match r.action {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
        };
        m.push_str(&format!("<{}>: {what}", r.address.to_unicode()));
        if let Some(diagnostic) = &r.diagnostic {
            match &r.remote_mta {
                Some(host) => m.push_str(&format!(", the server {host} said: {}", one_line(diagnostic))),
                None => m.push_str(&format!(": {}", one_line(diagnostic))),
            }
        }
        m.push_str("\r\n");
    }
    m.push_str("\r\n");

    // Part 2: RFC 3464 §2.2 per-message fields, §2.3 per-recipient fields.
    m.push_str(&format!("--{boundary}\r\n"));
    m.push_str("Content-Type: message/delivery-status\r\n\r\n");
    m.push_str(&format!("Reporting-MTA: dns; {}\r\n", notice.hostname));
    m.push_str(&format!("X-Postfach-Queue-ID: {}\r\n", notice.queue_id));
    m.push_str(&format!("Arrival-Date: {}\r\n", notice.arrival.rfc5322()));
    for r in notice.recipients {
        m.push_str("\r\n");
        m.push_str(&format!("Final-Recipient: {}; {}\r\n", address_type(&r.address), r.address));
        match r.action {
            Action::Failed => m.push_str("Action: failed\r\n"),
            Action::Delayed => m.push_str("Action: delayed\r\n"),
        }
        m.push_str(&format!("Status: {}\r\n", r.status));
        if let Some(host) = &r.remote_mta {
            m.push_str(&format!("Remote-MTA: dns; {host}\r\n"));
        }
        if let Some(diagnostic) = &r.diagnostic {
            let kind = if r.remote_mta.is_some() { "smtp" } else { "x-postfach" };
            m.push_str(&format!("Diagnostic-Code: {kind}; {}\r\n", one_line(diagnostic)));
        }
        if let Some(at) = r.last_attempt {
            m.push_str(&format!("Last-Attempt-Date: {}\r\n", at.rfc5322()));
        }
        if r.action == Action::Delayed {
            m.push_str(&format!("Will-Retry-Until: {}\r\n", notice.expires.rfc5322()));
        }
    }
    m.push_str("\r\n");

    // Part 3: RFC 6522 §4, the original header.
    let mut out = m.into_bytes();
    if let Some(headers) = notice.original_headers {
        out.extend_from_slice(format!("--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n").as_bytes());
        out.extend_from_slice(headers);
        if !headers.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

/// RFC 6533 §3: `utf-8` for internationalised addresses, else `rfc822`.
fn address_type(address: &EmailAddress) -> &'static str {
    if address.to_string().is_ascii() { "rfc822" } else { "utf-8" }
}

/// Folds a reply that may span lines into one line (RFC 3464 fields are one line here).
fn one_line(text: &str) -> String {
    text.split(['\r', '\n']).map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(s: &str) -> EmailAddress {
        EmailAddress::parse(s).expect("address")
    }

    #[test]
    fn a_failure_report_is_a_multipart_report_with_every_field() {
        let host = DomainName::parse("mail.postfach.test").expect("host");
        let to = address("max@acme.example");
        let recipients = [NoticeRecipient {
            address: address("nobody@outside.example"),
            action: Action::Failed,
            status: "5.1.1".into(),
            diagnostic: Some("550 5.1.1 No such user\r\n".into()),
            remote_mta: Some("mx.outside.example".into()),
            last_attempt: Some(UnixTime(1_795_752_484)),
        }];
        let headers = b"From: max@acme.example\r\nSubject: Hello\r\n";
        let text = String::from_utf8(render(&Notice {
            hostname: &host,
            queue_id: "ABC123",
            to: &to,
            arrival: UnixTime(1_795_752_000),
            expires: UnixTime(1_796_184_000),
            now: UnixTime(1_795_752_484),
            recipients: &recipients,
            original_headers: Some(headers),
        }))
        .expect("utf-8");
        for needle in [
            "From: Mail Delivery System <MAILER-DAEMON@mail.postfach.test>\r\n",
            "To: <max@acme.example>\r\n",
            "Subject: Undelivered Mail Returned to Sender\r\n",
            "Auto-Submitted: auto-replied\r\n",
            "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"=_postfach_ABC123\"\r\n",
            "<nobody@outside.example>: failed, the server mx.outside.example said: 550 5.1.1 No such user\r\n",
            "--=_postfach_ABC123\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mail.postfach.test\r\n",
            "Arrival-Date: Fri, 27 Nov 2026 04:00:00 +0000\r\n",
            "\r\n\r\nFinal-Recipient: rfc822; nobody@outside.example\r\nAction: failed\r\nStatus: 5.1.1\r\n",
            "Remote-MTA: dns; mx.outside.example\r\nDiagnostic-Code: smtp; 550 5.1.1 No such user\r\n",
            "Last-Attempt-Date: Fri, 27 Nov 2026 04:08:04 +0000\r\n",
            "Content-Type: text/rfc822-headers\r\n\r\nFrom: max@acme.example\r\nSubject: Hello\r\n\r\n--=_postfach_ABC123--\r\n",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert!(!text.contains("Will-Retry-Until"), "{text}");
        assert!(!text.contains("\n\n") && !text.replace("\r\n", "").contains('\r'), "CRLF only");
        // mail-parser reads it as a report with three parts.
        let parsed = mail_parser::MessageParser::new().parse(text.as_bytes()).expect("parses");
        assert_eq!(parsed.parts.len(), 4, "the container and three parts");
        assert_eq!(parsed.subject(), Some("Undelivered Mail Returned to Sender"));
    }

    #[test]
    fn a_delay_warning_says_until_when_it_is_retried() {
        let host = DomainName::parse("mail.postfach.test").expect("host");
        let to = address("max@acme.example");
        let recipients = [NoticeRecipient {
            address: address("jörg@outside.example"),
            action: Action::Delayed,
            status: "4.4.1".into(),
            diagnostic: Some("connection refused".into()),
            remote_mta: None,
            last_attempt: None,
        }];
        let text = String::from_utf8(render(&Notice {
            hostname: &host,
            queue_id: "Q",
            to: &to,
            arrival: UnixTime(0),
            expires: UnixTime(432_000),
            now: UnixTime(3600),
            recipients: &recipients,
            original_headers: None,
        }))
        .expect("utf-8");
        assert!(text.contains("Subject: Delayed Mail (still being retried)\r\n"), "{text}");
        assert!(text.contains("Final-Recipient: utf-8; jörg@outside.example\r\nAction: delayed\r\nStatus: 4.4.1\r\n"));
        assert!(text.contains("Diagnostic-Code: x-postfach; connection refused\r\n"), "{text}");
        assert!(text.contains("Will-Retry-Until: Tue, 6 Jan 1970 00:00:00 +0000\r\n"), "{text}");
        assert!(text.ends_with("\r\n--=_postfach_Q--\r\n") && !text.contains("rfc822-headers"));
    }
}
