//! The one password rule for the CLI, the API and the panel.
//!
//! A password is accepted when it has 12 to 256 characters and zxcvbn scores it at least
//! 3 of 4, with the address, its parts and the customer name as user inputs (so
//! `max.mustermann2024` for `max.mustermann@example.net` scores low), plus a short list of
//! words German speakers build passwords from. The verdict carries
//! the score and zxcvbn's feedback so the panel can show a live meter.

use postfach_types::EmailAddress;

/// Fewer characters than this are refused whatever their score.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// More characters than this are refused (and never hashed: argon2 of megabytes is a DoS).
pub const MAX_PASSWORD_CHARS: usize = 256;
/// The lowest zxcvbn score (0–4) that is accepted.
pub const MIN_SCORE: u8 = 3;
/// zxcvbn's matching is superlinear in the length; characters beyond this are not scored
/// (a password that long and weak in its first 100 characters is still weak).
const SCORED_CHARS: usize = 100;

/// Words German-speaking users build passwords from that zxcvbn's English dictionaries do
/// not know (so `Sommer2024!!` would otherwise pass). Scored like user inputs: an attacker
/// tries them early.
const COMMON_GERMAN_WORDS: &[&str] = &[
    "passwort",
    "kennwort",
    "geheim",
    "hallo",
    "sommer",
    "winter",
    "herbst",
    "fruehling",
    "frühling",
    "schatz",
    "schatzi",
    "liebe",
    "ichliebedich",
    "mausi",
    "hase",
    "engel",
    "sonne",
    "blume",
    "katze",
    "hund",
    "fussball",
    "fußball",
    "bayern",
    "schalke",
    "dortmund",
    "borussia",
    "werder",
    "berlin",
    "hamburg",
    "muenchen",
    "münchen",
    "koeln",
    "köln",
    "deutschland",
    "januar",
    "februar",
    "maerz",
    "märz",
    "april",
    "juni",
    "juli",
    "august",
    "oktober",
    "dezember",
    "montag",
    "freitag",
    "sonntag",
    "weihnachten",
    "ostern",
    "willkommen",
    "arschloch",
    "schule",
    "familie",
    "mutter",
    "vater",
    "tochter",
    "sohn",
    "zuhause",
    "computer",
    "internet",
    "qwertz",
    "qwertzu",
    "qwertzuiop",
    "asdfgh",
    "yxcvbnm",
];

/// One piece of zxcvbn feedback: a stable code (for translation) and the English text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FeedbackItem {
    pub code: String,
    pub text: String,
}

/// The verdict on a candidate password.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PasswordVerdict {
    pub accepted: bool,
    /// zxcvbn score 0–4 (0 for passwords refused for their length).
    pub score: u8,
    /// Why the password was refused, in a sentence for the user; `None` when accepted.
    pub reason: Option<String>,
    pub warning: Option<FeedbackItem>,
    pub suggestions: Vec<FeedbackItem>,
}

/// Checks `password` against the rule. `user_inputs` are words an attacker would try
/// first: the address, its local part and domain labels, the customer name.
pub fn check_password(password: &str, user_inputs: &[&str]) -> PasswordVerdict {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return refused_for_length(format!(
            "The password has {chars} characters; use at least {MIN_PASSWORD_CHARS}, for example a few unrelated words."
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return refused_for_length(format!("The password has {chars} characters; use at most {MAX_PASSWORD_CHARS}."));
    }
    let scored: String = password.chars().take(SCORED_CHARS).collect();
    let own: Vec<String> = user_inputs.iter().map(|s| s.to_lowercase()).filter(|s| s.len() >= 3).collect();
    let inputs: Vec<&str> = own.iter().map(String::as_str).chain(COMMON_GERMAN_WORDS.iter().copied()).collect();
    // Symbols tacked onto the end are the first mangling rule cracking tools try
    // (`Sommer2024` -> `Sommer2024!!`), yet zxcvbn counts them as brute force. So the
    // password is also scored without them, and the lower score counts.
    let undecorated = scored.trim_end_matches(|c: char| !c.is_alphanumeric() && !c.is_whitespace());
    let mut entropy = zxcvbn::zxcvbn(&scored, &inputs);
    if !undecorated.is_empty() && undecorated.len() < scored.len() {
        let plain = zxcvbn::zxcvbn(undecorated, &inputs);
        if plain.score() < entropy.score() {
            entropy = plain;
        }
    }
    let score = u8::from(entropy.score());
    let feedback = entropy.feedback();
    let warning = feedback.and_then(|f| f.warning()).map(|w| item(&w, w.to_string()));
    let suggestions =
        feedback.map(|f| f.suggestions().iter().map(|s| item(s, s.to_string())).collect()).unwrap_or_default();
    let accepted = score >= MIN_SCORE;
    let reason = (!accepted).then(|| {
        let detail = warning.as_ref().map(|w| format!(" {}", w.text)).unwrap_or_default();
        format!("The password is too easy to guess (strength {score} of 4, at least {MIN_SCORE} needed).{detail}")
    });
    PasswordVerdict { accepted, score, reason, warning, suggestions }
}

/// The words an attacker would try first for an account: the address, its local part and
/// the pieces of it, the domain's labels, and the customer name.
pub fn user_inputs(address: Option<&EmailAddress>, customer: Option<&str>) -> Vec<String> {
    let mut inputs = Vec::new();
    if let Some(address) = address {
        inputs.push(address.to_string());
        inputs.push(address.local_part().to_string());
        inputs.extend(address.local_part().as_str().split(['.', '-', '_']).map(str::to_string));
        inputs.push(address.domain().to_unicode());
        inputs.extend(address.domain().labels().map(str::to_string));
    }
    inputs.extend(customer.map(str::to_string));
    inputs.sort();
    inputs.dedup();
    inputs
}

fn refused_for_length(reason: String) -> PasswordVerdict {
    PasswordVerdict { accepted: false, score: 0, reason: Some(reason), warning: None, suggestions: Vec::new() }
}

/// A stable code from a zxcvbn enum variant name, e.g. `this-is-a-top10-password`.
fn item(variant: &impl std::fmt::Debug, text: String) -> FeedbackItem {
    let name = format!("{variant:?}");
    let mut code = String::with_capacity(name.len() + 8);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            code.push('-');
        }
        code.push(c.to_ascii_lowercase());
    }
    FeedbackItem { code, text }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &[&str] = &["max.mustermann@example.net", "max.mustermann", "example", "net", "acme"];

    #[test]
    fn user_inputs_cover_address_parts_and_customer() {
        let address = EmailAddress::parse("max.mustermann@bücher.example").expect("valid");
        let inputs = user_inputs(Some(&address), Some("acme"));
        for expected in ["max.mustermann@xn--bcher-kva.example", "max", "mustermann", "bücher.example", "acme"] {
            assert!(inputs.iter().any(|i| i == expected), "{expected} missing from {inputs:?}");
        }
        let verdict = check_password("mustermann.acme", &inputs.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(!verdict.accepted, "{verdict:?}");
    }

    #[test]
    fn weak_passwords_are_refused_with_a_reason() {
        let cases = [
            ("Passwort123!", "too easy to guess"),
            ("Sommer2024!!", "too easy to guess"),
            ("max.mustermann@example.net", "too easy to guess"),
            ("max.mustermann2024", "too easy to guess"),
            ("aaaaaaaaaaaaaaaa", "too easy to guess"),
            ("x7#Kq!9vZ2m", "has 11 characters"),
            ("", "has 0 characters"),
        ];
        for (password, why) in cases {
            let verdict = check_password(password, USER);
            assert!(!verdict.accepted, "{password:?} must be refused, got score {}", verdict.score);
            let reason = verdict.reason.unwrap_or_default();
            assert!(reason.contains(why), "{password:?}: reason {reason:?} should say {why:?}");
        }
    }

    #[test]
    fn strong_passwords_are_accepted() {
        for password in [
            "korrekt Pferd Batterie Heftklammer",
            "violet mango tractor whisper",
            "Eichhörnchen tanzen gern im Nebel",
            "x7#Kq!9vZ2mw",
        ] {
            let verdict = check_password(password, USER);
            assert!(verdict.accepted, "{password:?} should pass, got {verdict:?}");
            assert!(verdict.score >= MIN_SCORE);
            assert_eq!(verdict.reason, None);
        }
    }

    #[test]
    fn length_limits_count_characters_not_bytes() {
        let long = "ä".repeat(MAX_PASSWORD_CHARS + 1);
        let verdict = check_password(&long, USER);
        assert!(!verdict.accepted);
        assert!(verdict.reason.unwrap_or_default().contains("at most 256"));
        // 12 two-byte characters are 12 characters.
        let verdict = check_password("äöüßéèñçøåæœ", &[]);
        assert!(!verdict.reason.unwrap_or_default().contains("characters;"));
    }

    #[test]
    fn feedback_is_given_for_the_meter() {
        let verdict = check_password("password1234", &[]);
        assert!(verdict.score < MIN_SCORE);
        let warning = verdict.warning.expect("zxcvbn warns about common passwords");
        assert!(warning.code.starts_with("this-is-a"), "{}", warning.code);
        assert!(!verdict.suggestions.is_empty());
    }
}
