use super::generate::*;
use postfach_types::EmailAddress;

fn addr(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("address")
}

fn rule(header: &str, match_type: &str, value: &str, action: &str, folder: &str) -> RuleInput {
    RuleInput {
        header: header.into(),
        match_type: match_type.into(),
        value: value.into(),
        action: action.into(),
        folder: folder.into(),
    }
}

fn every_rule_kind() -> Vec<RuleInput> {
    vec![
        rule("From", "contains", "boss@example.net", "move", "Chef"),
        rule("to", "is", "list@example.net", "mark_read", ""),
        rule("subject", "contains", "[urgent]", "flag", ""),
        rule("X-Spam-Flag", "is", "YES", "discard", ""),
    ]
}

fn vacation() -> VacationInput {
    VacationInput {
        enabled: true,
        from: "2026-12-20".into(),
        until: "2027-01-06".into(),
        subject: "Away".into(),
        text: "I am away.\r\nBack on 7 January.".into(),
        addresses: vec!["info@example.net".into()],
        days: 3,
    }
}

fn own() -> Vec<EmailAddress> {
    vec![addr("anna@example.net"), addr("info@example.net")]
}

#[test]
fn quoting_escapes_quotes_and_backslashes() {
    assert_eq!(quote(r#"say "hi" \o/"#), r#""say \"hi\" \\o/""#);
    assert_eq!(quote("plain"), "\"plain\"");
    assert_eq!(quote("two\nlines"), "\"two\nlines\"");
}

#[test]
fn control_characters_are_refused() {
    let mut r = rule("subject", "contains", "a\u{7}b", "discard", "");
    assert_eq!(Rule::parse(&r), Err(FormError::ControlCharacter));
    r.value = "ok".into();
    r.action = "move".into();
    r.folder = "In\rbox".into();
    assert_eq!(Rule::parse(&r), Err(FormError::ControlCharacter));
    let mut v = vacation();
    v.subject = "line\nbreak".into();
    assert_eq!(Vacation::parse(&v, Some(&own())), Err(FormError::ControlCharacter));
    let mut v = vacation();
    v.text = "nul\0".into();
    assert_eq!(Vacation::parse(&v, Some(&own())), Err(FormError::ControlCharacter));
}

#[test]
fn every_rule_kind_becomes_its_test_and_action() {
    let rules = parse_rules(&every_rule_kind()).expect("valid rules");
    let script = generate(&Forms { vacation: None, rules });
    assert!(script.contains("require [\"fileinto\", \"mailbox\", \"imap4flags\"];"), "{script}");
    assert!(script.contains("if header :contains \"from\" \"boss@example.net\" {\n    fileinto :create \"Chef\";"));
    assert!(script.contains("} elsif header :is [\"to\", \"cc\"] \"list@example.net\" {\n    addflag \"\\\\Seen\";"));
    assert!(script.contains("} elsif header :contains \"subject\" \"[urgent]\" {\n    addflag \"\\\\Flagged\";"));
    assert!(script.contains("} elsif header :is \"X-Spam-Flag\" \"YES\" {\n    discard;\n}\n"));
    assert!(!script.contains("vacation :days"), "{script}");
}

#[test]
fn vacation_with_dates_uses_currentdate() {
    let v = Vacation::parse(&vacation(), Some(&own())).expect("valid vacation");
    let script = generate(&Forms { vacation: Some(v), rules: Vec::new() });
    assert!(script.contains("require [\"vacation\", \"date\", \"relational\"];"), "{script}");
    assert!(script.contains(
        "if allof (currentdate :value \"ge\" \"date\" \"2026-12-20\", currentdate :value \"le\" \"date\" \"2027-01-06\") {"
    ));
    assert!(script.contains(
        "vacation :days 3 :subject \"Away\" :addresses [\"info@example.net\"] \"I am away.\nBack on 7 January.\";"
    ));
}

#[test]
fn switched_off_vacation_is_kept_but_not_generated() {
    let mut input = vacation();
    input.enabled = false;
    let v = Vacation::parse(&input, Some(&own())).expect("valid");
    let forms = Forms { vacation: Some(v), rules: Vec::new() };
    let script = generate(&forms);
    assert!(!script.contains("require"), "{script}");
    assert!(!script.contains("vacation :days"));
    assert_eq!(read_back(&script), Some(forms));
}

#[test]
fn generated_scripts_read_back_to_their_state() {
    let v = Vacation::parse(&vacation(), Some(&own())).expect("valid vacation");
    let mut rules = every_rule_kind();
    rules.push(rule("subject", "contains", r#"quote " and \ backslash"#, "move", r#"Odd "folder" \ name"#));
    let forms = Forms { vacation: Some(v), rules: parse_rules(&rules).expect("valid") };
    let script = generate(&forms);
    assert_eq!(read_back(&script), Some(forms.clone()));
    assert_eq!(read_back(&script.replace('\n', "\r\n")), Some(forms), "CRLF as ManageSieve clients send it");
}

#[test]
fn a_script_changed_by_hand_is_not_the_forms() {
    let forms = Forms { vacation: None, rules: parse_rules(&every_rule_kind()).expect("valid") };
    let script = generate(&forms);
    assert_eq!(read_back(&script.replace("fileinto :create \"Chef\"", "fileinto :create \"Boss\"")), None);
    assert_eq!(read_back(&format!("{script}keep;\n")), None);
    // What the forms held is still recorded, for the forms to show.
    assert_eq!(recorded_state(&format!("{script}keep;\n")), Some(forms.clone()));
    assert_eq!(read_back("require \"fileinto\";\nfileinto \"x\";\n"), None);
    assert_eq!(read_back(""), None);
}

#[test]
fn vacation_input_is_checked() {
    let check = |f: fn(&mut VacationInput)| {
        let mut v = vacation();
        f(&mut v);
        Vacation::parse(&v, Some(&own()))
    };
    assert_eq!(check(|v| v.from = "2026-02-30".into()), Err(FormError::InvalidDate));
    assert_eq!(check(|v| v.from = "20.12.2026".into()), Err(FormError::InvalidDate));
    assert_eq!(check(|v| v.until = "2026-12-01".into()), Err(FormError::DatesReversed));
    assert_eq!(check(|v| v.days = 31), Err(FormError::InvalidDays));
    assert_eq!(check(|v| v.addresses = vec!["other@example.org".into()]), Err(FormError::ForeignAddress));
    assert_eq!(check(|v| v.text = " ".into()), Err(FormError::TextMissing));
    assert_eq!(check(|v| v.subject = "x".repeat(MAX_VALUE + 1)), Err(FormError::ValueTooLong));
    assert_eq!(check(|v| v.days = 0).map(|v| v.days), Ok(DEFAULT_DAYS));
    assert_eq!(
        check(|v| {
            v.from = "2028-02-29".into();
            v.until = String::new();
        })
        .map(|v| v.from.map(|d| d.to_string())),
        Ok(Some("2028-02-29".into()))
    );
}

#[test]
fn rule_input_is_checked() {
    assert_eq!(Rule::parse(&rule("X Bad", "is", "v", "discard", "")), Err(FormError::InvalidHeader));
    assert_eq!(Rule::parse(&rule("X-Bad:", "is", "v", "discard", "")), Err(FormError::InvalidHeader));
    assert_eq!(Rule::parse(&rule("subject", "regex", "v", "discard", "")), Err(FormError::InvalidMatch));
    assert_eq!(Rule::parse(&rule("subject", "is", "v", "redirect", "")), Err(FormError::InvalidAction));
    assert_eq!(Rule::parse(&rule("subject", "is", "v", "move", " ")), Err(FormError::FolderMissing));
    assert_eq!(Rule::parse(&rule("subject", "is", "", "flag", "")), Err(FormError::ValueMissing));
    let many = vec![rule("subject", "is", "v", "flag", ""); MAX_RULES + 1];
    assert_eq!(parse_rules(&many), Err(FormError::TooManyRules));
}

#[test]
fn generated_scripts_pass_the_check() {
    let v = Vacation::parse(&vacation(), Some(&own())).expect("valid vacation");
    let mut rules = every_rule_kind();
    rules.push(rule("subject", "contains", r#"quote " and \ backslash"#, "move", r#"Odd "folder" \ name"#));
    let mut only_from = vacation();
    only_from.until = String::new();
    let mut no_dates = vacation();
    no_dates.from = String::new();
    no_dates.until = String::new();
    no_dates.subject = String::new();
    no_dates.addresses = Vec::new();
    let all = [
        Forms::default(),
        Forms { vacation: Some(v), rules: parse_rules(&rules).expect("valid") },
        Forms { vacation: Some(Vacation::parse(&only_from, Some(&own())).expect("valid")), rules: Vec::new() },
        Forms { vacation: Some(Vacation::parse(&no_dates, Some(&own())).expect("valid")), rules: Vec::new() },
    ];
    for forms in all {
        let script = generate(&forms);
        if let Err(e) = postfach_sieve::check(&script) {
            panic!("{e}\n{script}");
        }
    }
}
