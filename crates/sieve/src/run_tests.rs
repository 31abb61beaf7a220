use crate::{Envelope, Outcome, RunError, compile, run};

const MESSAGE: &str = "From: Anna <anna@example.org>\r\nTo: max@acme.example\r\nSubject: Invoice 42\r\n\
Date: Sat, 28 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m1@example.org>\r\nX-Priority: 5\r\n\r\nPlease pay the invoice.\r\n";

const ENVELOPE: Envelope<'static> =
    Envelope { from: "anna@example.org", to: "max@acme.example", mailbox: "max@acme.example" };

fn outcome(script: &str, message: &str, replied: &dyn Fn(&str) -> bool) -> Outcome {
    run(&compile(script).expect("script compiles"), message.as_bytes(), ENVELOPE, replied)
}

fn never(_: &str) -> bool {
    false
}

#[test]
fn no_action_keeps() {
    let o =
        outcome("require \"fileinto\";\nif header :is \"subject\" \"nothing\" { fileinto \"X\"; }\n", MESSAGE, &never);
    assert_eq!(o.keep, Some(vec![]));
    assert!(o.file_into.is_empty() && o.error.is_none());
}

#[test]
fn fileinto_with_create_and_flags() {
    let o = outcome(
        "require [\"fileinto\", \"mailbox\", \"imap4flags\"];\n\
         if header :contains \"subject\" \"invoice\" { addflag \"\\\\Flagged\"; fileinto :create \"Invoices\"; }\n",
        MESSAGE,
        &never,
    );
    assert_eq!(o.keep, None);
    assert_eq!(o.file_into.len(), 1);
    assert_eq!(o.file_into[0].folder, "Invoices");
    assert!(o.file_into[0].create);
    assert_eq!(o.file_into[0].flags, ["\\Flagged"]);
}

#[test]
fn discard_and_reject_store_nothing() {
    assert!(outcome("discard;\n", MESSAGE, &never).stores_nothing());
    let o = outcome("require \"reject\";\nreject \"No invoices here, please.\";\n", MESSAGE, &never);
    assert_eq!(o.reject.as_deref(), Some("No invoices here, please."));
    assert!(o.stores_nothing());
}

#[test]
fn envelope_body_variables_date_relational_drive_decisions() {
    let script = "require [\"envelope\", \"body\", \"variables\", \"date\", \"relational\", \"fileinto\", \
                  \"comparator-i;ascii-numeric\"];\n\
                  if allof (envelope :domain :is \"from\" \"example.org\",\n\
                            body :text :contains \"pay\",\n\
                            date :value \"ge\" \"date\" \"year\" \"2020\",\n\
                            header :value \"ge\" :comparator \"i;ascii-numeric\" \"x-priority\" \"3\") {\n\
                    set \"base\" \"Invoices\";\n\
                    if header :matches \"subject\" \"Invoice *\" { fileinto \"${base}/${1}\"; }\n\
                  }\n";
    let o = outcome(script, MESSAGE, &never);
    assert_eq!(o.file_into.iter().map(|f| f.folder.as_str()).collect::<Vec<_>>(), ["Invoices/42"]);
    let other = MESSAGE.replace("X-Priority: 5", "X-Priority: 1");
    assert_eq!(outcome(script, &other, &never).keep, Some(vec![]));
}

#[test]
fn redirect_and_copy() {
    let o = outcome("redirect \"erika@acme.example\";\n", MESSAGE, &never);
    assert_eq!(o.redirect, ["erika@acme.example"]);
    assert!(o.stores_nothing());
    let o = outcome("require \"copy\";\nredirect :copy \"erika@acme.example\";\n", MESSAGE, &never);
    assert_eq!(o.redirect, ["erika@acme.example"]);
    assert_eq!(o.keep, Some(vec![]));
}

const VACATION: &str = "require \"vacation\";\nvacation :days 3 :subject \"Away\" \"I am away until Monday.\";\n";

#[test]
fn vacation_replies_once_per_period() {
    let o = outcome(VACATION, MESSAGE, &never);
    let reply = o.vacation.expect("a reply");
    assert_eq!(reply.to, "anna@example.org");
    assert_eq!(reply.period_secs, 3 * 86_400);
    let text = String::from_utf8_lossy(&reply.message);
    assert!(text.contains("Auto-Submitted: auto-replied"), "{text}");
    assert!(text.contains("In-Reply-To: <m1@example.org>"), "{text}");
    assert!(text.contains("Subject: Away"), "{text}");
    assert_eq!(o.keep, Some(vec![]), "vacation keeps the message");
    // Replied within the period: no reply.
    let id = reply.id.clone();
    let again = outcome(VACATION, MESSAGE, &|asked| asked == id);
    assert!(again.vacation.is_none());
    assert_eq!(again.keep, Some(vec![]));
}

#[test]
fn vacation_never_answers_lists_bulk_or_automatic_mail() {
    for header in [
        "List-Id: <news.example.org>",
        "List-Unsubscribe: <mailto:leave@example.org>",
        "Precedence: bulk",
        "Precedence: junk",
        "Precedence: list",
        "Auto-Submitted: auto-generated",
        "Auto-Submitted: auto-replied",
    ] {
        let message = MESSAGE.replace("X-Priority: 5", header);
        assert!(outcome(VACATION, &message, &never).vacation.is_none(), "{header}");
    }
    let null = Envelope { from: "", ..ENVELOPE };
    let o = run(&compile(VACATION).expect("compiles"), MESSAGE.as_bytes(), null, &never);
    assert!(o.vacation.is_none());
}

#[test]
fn a_run_that_takes_too_long_is_stopped_and_kept() {
    let script = "if header :contains \"x-none\" \"y\" { stop; }\n".repeat(8_000);
    let o = outcome(&script, MESSAGE, &never);
    assert_eq!(o.error, Some(RunError::TooLong));
    assert!(!o.stores_nothing(), "an error keeps the message");
}

#[test]
fn auto_submitted_no_still_gets_a_reply() {
    let message = MESSAGE.replace("X-Priority: 5", "Auto-Submitted: no");
    assert!(outcome(VACATION, &message, &never).vacation.is_some());
}
