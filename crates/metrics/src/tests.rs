use std::time::Duration;

use postfach_types::{LoginResult, Service};

use super::*;

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn recorded_events_show_in_the_text() {
    connection("imaps");
    connection("no-such-service");
    tls_handshake("imaps", false);
    login(Service::Pop3, LoginResult::BadCredentials, true);
    command(Protocol::Imap, "uid fetch", Duration::from_millis(3));
    command(Protocol::Smtp, "XCLIENT", Duration::from_secs(60));
    spam_check(SpamCheck::Unreachable);
    spam_learn(false, SpamLearn::Dropped);
    sieve_action(SieveAction::FileInto);
    let text = render(None);
    assert!(value(&text, "postfach_sieve_actions_total{action=\"fileinto\"}").is_some_and(|v| v >= 1.0), "{text}");
    assert!(value(&text, "postfach_sieve_actions_total{action=\"error\"}").is_some(), "{text}");
    assert!(value(&text, "postfach_spam_checks_total{result=\"unreachable\"}").is_some_and(|v| v >= 1.0), "{text}");
    assert!(value(&text, "postfach_spam_learns_total{kind=\"ham\",result=\"dropped\"}").is_some_and(|v| v >= 1.0));
    assert!(value(&text, "postfach_connections_total{service=\"imaps\"}").is_some_and(|v| v >= 1.0), "{text}");
    assert!(value(&text, "postfach_connections_total{service=\"other\"}").is_some_and(|v| v >= 1.0));
    assert!(
        value(&text, "postfach_tls_handshakes_total{service=\"imaps\",result=\"failed\"}").is_some_and(|v| v >= 1.0)
    );
    assert!(
        value(&text, "postfach_logins_total{service=\"pop3\",result=\"bad_credentials\",tls=\"yes\"}")
            .is_some_and(|v| v >= 1.0)
    );
    let fetch = "postfach_command_duration_seconds_bucket{protocol=\"imap\",command=\"UID FETCH\",le=";
    assert_eq!(value(&text, &format!("{fetch}\"0.0025\"}}")), Some(0.0));
    assert!(value(&text, &format!("{fetch}\"0.005\"}}")).is_some_and(|v| v >= 1.0));
    let other = "postfach_command_duration_seconds_bucket{protocol=\"smtp\",command=\"other\",le=";
    assert_eq!(value(&text, &format!("{other}\"10\"}}")), Some(0.0));
    assert!(value(&text, &format!("{other}\"+Inf\"}}")).is_some_and(|v| v >= 1.0));
    assert_eq!(value(&text, "postfach_database_gauges_ok"), Some(0.0));
    assert!(!text.contains("postfach_queue_messages"));
}

#[test]
fn every_imap_and_pop3_command_fits() {
    for protocol in [Protocol::Smtp, Protocol::Imap, Protocol::Pop3, Protocol::ManageSieve] {
        assert!(commands(protocol).len() < MAX_COMMANDS, "{protocol:?}");
    }
}

#[test]
fn label_values_from_the_database_are_escaped() {
    let gauges = Gauges {
        dns_problems: vec![DnsProblem { domain: "a\"b\\c\nd".into(), check: "spf".into(), error: true }],
        ..Gauges::default()
    };
    let text = render(Some(&gauges));
    assert!(text.contains("postfach_dns_check_problem{domain=\"a\\\"b\\\\c\\nd\",check=\"spf\"} 2\n"), "{text}");
    assert_eq!(value(&text, "postfach_database_gauges_ok"), Some(1.0));
}
