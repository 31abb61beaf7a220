//! The Prometheus text exposition format (version 0.0.4): `# HELP` and `# TYPE` once per
//! family, then one `name{label="value",…} number` line per series.

use std::fmt::Write;

use postfach_types::{LoginResult, Service};

use crate::{
    BOUNDS, COMMAND_LATENCY, CONNECTIONS, DKIM_SIGNATURES, Gauges, INBOUND, LEARNS, LISTENERS, LOGINS, MESSAGES_IN,
    MESSAGES_OUT, OUTBOUND, OUTBOUND_TLS, PROTOCOLS, Protocol, SIEVE, SIEVE_ACTIONS, SPAM, SPAM_CHECKS, SPAM_LEARNS,
    TLS_HANDSHAKES, TLS_POLICIES, TLS_REPORT_RESULTS, TLS_REPORTS, TLS_VERSIONS, VIAS, commands,
};

/// Every metric as Prometheus text. `gauges` is `None` when the database could not be
/// read: its gauges are left out and `postfach_database_gauges_ok` is 0.
pub fn render(gauges: Option<&Gauges>) -> String {
    let mut out = Text(String::with_capacity(64 * 1024));
    out.family("postfach_build_info", "gauge", "The running version of Postfach.");
    out.line("postfach_build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1);

    out.family("postfach_connections_total", "counter", "TCP connections accepted, by listener service.");
    for (i, service) in LISTENERS.iter().enumerate() {
        out.line("postfach_connections_total", &[("service", service)], CONNECTIONS[i].get());
    }
    out.family("postfach_tls_handshakes_total", "counter", "TLS handshakes (implicit TLS and STARTTLS), by result.");
    for (i, service) in LISTENERS.iter().enumerate() {
        for (j, result) in ["ok", "failed"].iter().enumerate() {
            let labels = [("service", *service), ("result", result)];
            out.line("postfach_tls_handshakes_total", &labels, TLS_HANDSHAKES[i][j].get());
        }
    }
    out.family("postfach_logins_total", "counter", "Login attempts decided by the authentication gate.");
    for service in Service::ALL {
        for result in LoginResult::ALL {
            for (tls, word) in ["no", "yes"].iter().enumerate() {
                let labels = [("service", service.as_str()), ("result", result.as_str()), ("tls", word)];
                out.line("postfach_logins_total", &labels, LOGINS[*service as usize][*result as usize][tls].get());
            }
        }
    }
    out.family("postfach_messages_in_total", "counter", "Messages received over SMTP, by way in and result.");
    for (i, via) in VIAS.iter().enumerate() {
        for (j, result) in INBOUND.iter().enumerate() {
            out.line("postfach_messages_in_total", &[("via", via), ("result", result)], MESSAGES_IN[i][j].get());
        }
    }
    out.family("postfach_spam_checks_total", "counter", "Spam checks of inbound messages with rspamd, by result.");
    for (i, result) in SPAM_CHECKS.iter().enumerate() {
        out.line("postfach_spam_checks_total", &[("result", result)], SPAM[i].get());
    }
    out.family("postfach_sieve_actions_total", "counter", "Actions of mailboxes' Sieve scripts at delivery.");
    for (i, action) in SIEVE_ACTIONS.iter().enumerate() {
        out.line("postfach_sieve_actions_total", &[("action", action)], SIEVE[i].get());
    }
    out.family(
        "postfach_tls_reports_total",
        "counter",
        "TLS reports (RFC 8460) received at the reporting address, per policy domain, by result.",
    );
    for (i, result) in TLS_REPORT_RESULTS.iter().enumerate() {
        out.line("postfach_tls_reports_total", &[("result", result)], TLS_REPORTS[i].get());
    }
    out.family(
        "postfach_spam_learns_total",
        "counter",
        "Messages taught to rspamd from Junk moves, by kind and result.",
    );
    for (i, kind) in ["spam", "ham"].iter().enumerate() {
        for (j, result) in SPAM_LEARNS.iter().enumerate() {
            out.line("postfach_spam_learns_total", &[("kind", kind), ("result", result)], LEARNS[i][j].get());
        }
    }
    out.family("postfach_messages_out_total", "counter", "Outbound delivery attempts, one per recipient, by result.");
    for (i, result) in OUTBOUND.iter().enumerate() {
        out.line("postfach_messages_out_total", &[("result", result)], MESSAGES_OUT[i].get());
    }
    out.family(
        "postfach_outbound_tls_total",
        "counter",
        "Remote deliveries, one per recipient, by the TLS rule followed and the TLS version (none: plaintext).",
    );
    for (i, policy) in TLS_POLICIES.iter().enumerate() {
        for (j, version) in TLS_VERSIONS.iter().enumerate() {
            out.line(
                "postfach_outbound_tls_total",
                &[("policy", policy), ("version", version)],
                OUTBOUND_TLS[i][j].get(),
            );
        }
    }
    out.family("postfach_dkim_signatures_total", "counter", "DKIM signatures of outbound messages, by result.");
    for (i, result) in ["signed", "failed"].iter().enumerate() {
        out.line("postfach_dkim_signatures_total", &[("result", result)], DKIM_SIGNATURES[i].get());
    }
    out.command_latency();

    out.family("postfach_database_gauges_ok", "gauge", "1 if the gauges read from the database are current.");
    out.line("postfach_database_gauges_ok", &[], u64::from(gauges.is_some()));
    if let Some(gauges) = gauges {
        out.gauges(gauges);
    }
    out.0
}

struct Text(String);

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn line(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{key}=\"");
                escape(&mut self.0, value);
                self.0.push('"');
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn command_latency(&mut self) {
        const NAME: &str = "postfach_command_duration_seconds";
        self.family(NAME, "histogram", "Time from a command's line to its reply, by protocol and command.");
        for (p, protocol) in
            [Protocol::Smtp, Protocol::Imap, Protocol::Pop3, Protocol::ManageSieve].into_iter().enumerate()
        {
            let names = commands(protocol).iter().copied().chain(["other"]);
            for (c, command) in names.enumerate() {
                let histogram = &COMMAND_LATENCY[p][c];
                let labels = [("protocol", PROTOCOLS[p]), ("command", command)];
                let mut cumulative = 0;
                for (b, (bound, _)) in BOUNDS.iter().enumerate() {
                    cumulative += histogram.buckets[b].get();
                    let [a, b] = labels;
                    self.line(&format!("{NAME}_bucket"), &[a, b, ("le", bound)], cumulative);
                }
                cumulative += histogram.buckets[BOUNDS.len()].get();
                let [a, b] = labels;
                self.line(&format!("{NAME}_bucket"), &[a, b, ("le", "+Inf")], cumulative);
                let sum = histogram.sum_micros.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e6;
                self.line(&format!("{NAME}_sum"), &labels, sum);
                self.line(&format!("{NAME}_count"), &labels, cumulative);
            }
        }
    }

    fn gauges(&mut self, g: &Gauges) {
        self.family(
            "postfach_queue_messages",
            "gauge",
            "Messages in the outbound queue with recipients still waiting.",
        );
        self.line("postfach_queue_messages", &[], g.queue_messages);
        self.family(
            "postfach_queue_oldest_age_seconds",
            "gauge",
            "Age of the oldest message still waiting in the queue.",
        );
        self.line("postfach_queue_oldest_age_seconds", &[], g.queue_oldest_age_secs);
        self.family("postfach_blob_bytes", "gauge", "Bytes of stored message files, by store (mailboxes, queue).");
        self.line("postfach_blob_bytes", &[("store", "mailboxes")], g.mailbox_bytes);
        self.line("postfach_blob_bytes", &[("store", "queue")], g.queue_bytes);
        self.family("postfach_dns_domains", "gauge", "Domains whose published-DNS check is at each state.");
        for count in &g.dns_domains {
            self.line("postfach_dns_domains", &[("check", &count.check), ("state", &count.state)], count.domains);
        }
        self.family(
            "postfach_dns_check_problem",
            "gauge",
            "A domain's DNS check that is not ok: 1 warning, 2 error (a bounded number, errors first).",
        );
        for problem in &g.dns_problems {
            let labels = [("domain", problem.domain.as_str()), ("check", problem.check.as_str())];
            self.line("postfach_dns_check_problem", &labels, if problem.error { 2 } else { 1 });
        }
        self.family(
            "postfach_dns_check_problems_truncated",
            "gauge",
            "1 if more DNS check problems exist than postfach_dns_check_problem lists.",
        );
        self.line("postfach_dns_check_problems_truncated", &[], u64::from(g.dns_problems_truncated));
    }
}

/// Label values escape `\`, `"` and line feeds.
fn escape(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}
