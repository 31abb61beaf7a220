//! The one password rule for the CLI, the API and the panel.
//!
//! A password is accepted when
//! 1. it has 12 to 256 characters;
//! 2. it is not mostly made of the user's words: the address, its local part and the
//!    pieces of it, the domain's labels and the customer name, in any case, reversed,
//!    repeated, run together, l33t-spelt, with digits, years, symbols or spaces around
//!    them ([`PasswordRefusal::MostlyUserWords`]);
//! 3. zxcvbn scores it at least 3 of 4, both as typed and with the user's words cut out
//!    ([`PasswordRefusal::TooEasyToGuess`]). zxcvbn gets the user's words as user inputs
//!    (so `max.mustermann2024` for `max.mustermann@example.net` scores low), plus a short
//!    list of words German speakers build passwords from.
//!
//! For rules 2 and 3 the password is taken apart (the private `user_words` module says
//! how) into user words, filler (anything that is not a letter: digits, years, symbols,
//! spaces) and its own letters. A password with user words in it breaks rule 2 when
//! fewer than [`MIN_OWN_LETTERS`] of its letters are its own, or fewer of them than there
//! are user-word characters ("mostly", literally): `alice example test`,
//! `Alice2024!Alice`, `alice@example.test`, `examplealice2024!`, `aliceexampleBanana`
//! for `alice@example.test`. Letters are asked for on purpose: zxcvbn rates a run of
//! symbols as random, but `Alice!?#%2024&&` is a mangling rule, not chance.
//!
//! Rule 3 scores the remainder, the password with the user words cut out, because they
//! cost an attacker who knows the address nothing; zxcvbn alone scores `Alice2024!Alice`
//! and `examplealice2024!` 3 of 4. `mallory@evil.test` for another mailbox of
//! `evil.test` leaves `mallory@.`, a first name, and `Alice Sommer2024!!` leaves a season
//! and a year. `alice-loves-quantum-zebra-pancakes` is accepted for `alice@example.test`:
//! 25 of its 30 letters are its own, and `-loves-quantum-zebra-pancakes` is a strong
//! passphrase by itself.
//!
//! The score reported is the lower of the two zxcvbn scores (with that one's feedback),
//! and at most `MIN_SCORE - 1` when rule 2 refuses, so the meter never shows a refused
//! password as strong. The verdict carries a typed [`PasswordRefusal`] for translations,
//! an English reason for the CLI, and the score and zxcvbn's feedback for the live meter.

mod user_words;

use postfach_types::EmailAddress;

/// Fewer characters than this are refused whatever their score.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// More characters than this are refused (and never hashed: argon2 of megabytes is a DoS).
pub const MAX_PASSWORD_CHARS: usize = 256;
/// The lowest zxcvbn score (0–4) that is accepted.
pub const MIN_SCORE: u8 = 3;
/// A password with user words in it is refused when fewer of its letters than this are
/// its own, that is neither user words nor filler (see the module documentation).
pub const MIN_OWN_LETTERS: usize = 6;
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

/// Why a password was refused. Stable: translations and clients key on
/// [`PasswordRefusal::code`] (serialised the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PasswordRefusal {
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters.
    TooShort,
    /// More than [`MAX_PASSWORD_CHARS`] characters.
    TooLong,
    /// Mostly made of the address or the customer name (tip: "your password is mostly
    /// made of your address or customer name").
    MostlyUserWords,
    /// zxcvbn scored it, or what is left of it without the user's words, below
    /// [`MIN_SCORE`]; `warning` and `suggestions` say more.
    TooEasyToGuess,
}

impl PasswordRefusal {
    /// The stable code: `too-short`, `too-long`, `mostly-user-words`, `too-easy-to-guess`.
    pub fn code(self) -> &'static str {
        match self {
            Self::TooShort => "too-short",
            Self::TooLong => "too-long",
            Self::MostlyUserWords => "mostly-user-words",
            Self::TooEasyToGuess => "too-easy-to-guess",
        }
    }
}

/// The verdict on a candidate password.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PasswordVerdict {
    /// True exactly when `refusal` is `None`.
    pub accepted: bool,
    /// zxcvbn score 0–4 (0 for passwords refused for their length). For a password with
    /// user words in it, the lower of its score and the score of what remains without
    /// them, and below [`MIN_SCORE`] when it is refused as mostly user words.
    pub score: u8,
    /// Why the password was refused, for translations; `None` when accepted.
    pub refusal: Option<PasswordRefusal>,
    /// Why the password was refused, in an English sentence for the user (the CLI);
    /// `None` when accepted.
    pub reason: Option<String>,
    pub warning: Option<FeedbackItem>,
    pub suggestions: Vec<FeedbackItem>,
}

/// Checks `password` against the rule. `user_inputs` are words an attacker would try
/// first: the address, its local part and domain labels, the customer name (as made by
/// [`user_inputs`]).
pub fn check_password(password: &str, user_inputs: &[&str]) -> PasswordVerdict {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return refused_for_length(
            PasswordRefusal::TooShort,
            format!(
                "The password has {chars} characters; use at least {MIN_PASSWORD_CHARS}, for example a few unrelated words."
            ),
        );
    }
    if chars > MAX_PASSWORD_CHARS {
        return refused_for_length(
            PasswordRefusal::TooLong,
            format!("The password has {chars} characters; use at most {MAX_PASSWORD_CHARS}."),
        );
    }
    let lowered: Vec<String> = user_inputs
        .iter()
        .map(|s| s.chars().take(user_words::MAX_INPUT_CHARS).collect::<String>().to_lowercase())
        .filter(|s| s.len() >= 3)
        .collect();
    let inputs: Vec<&str> = lowered.iter().map(String::as_str).chain(COMMON_GERMAN_WORDS.iter().copied()).collect();
    let cover = user_words::cover(password, &user_words::user_words(user_inputs));
    let has_user_words = cover.user > 0;
    let mostly_user_words = has_user_words && (cover.own < MIN_OWN_LETTERS || cover.own < cover.user);

    // The password is scored as typed and, if user words are in it, without them: those
    // cost an attacker who knows the address nothing. The weaker of the two counts.
    let mut weakest = entropy(password, &inputs);
    let mut weak_without_user_words = false;
    // Separators left at the ends where a user word was cut off are no strength.
    let remainder = cover.remainder.trim_matches(|c: char| !c.is_alphanumeric());
    if has_user_words && !remainder.is_empty() {
        let rest = entropy(remainder, &inputs);
        if rest.score() < weakest.score() {
            weakest = rest;
            weak_without_user_words = true;
        }
    }
    let mut score = if has_user_words && remainder.is_empty() { 0 } else { u8::from(weakest.score()) };
    let feedback = weakest.feedback();
    let warning = feedback.and_then(|f| f.warning()).map(|w| item(&w, w.to_string()));
    let suggestions =
        feedback.map(|f| f.suggestions().iter().map(|s| item(s, s.to_string())).collect()).unwrap_or_default();

    let (refusal, reason) = if mostly_user_words {
        // Never shown as strong, whatever zxcvbn makes of the filler.
        score = score.min(MIN_SCORE - 1);
        let reason = "The password is too easy to guess: it is mostly made of your address or customer name, \
                      the first guesses of anyone who knows them. Use words that have nothing to do with you.";
        (Some(PasswordRefusal::MostlyUserWords), Some(reason.to_string()))
    } else if score < MIN_SCORE {
        let without = if weak_without_user_words {
            " once the parts from your address or customer name are taken out"
        } else {
            ""
        };
        let detail = warning.as_ref().map(|w| format!(" {}", w.text)).unwrap_or_default();
        let reason = format!(
            "The password is too easy to guess{without} (strength {score} of 4, at least {MIN_SCORE} needed).{detail}"
        );
        (Some(PasswordRefusal::TooEasyToGuess), Some(reason))
    } else {
        (None, None)
    };
    PasswordVerdict { accepted: refusal.is_none(), score, refusal, reason, warning, suggestions }
}

/// zxcvbn's verdict on the first [`SCORED_CHARS`] characters of `password`.
///
/// Symbols tacked onto the end are the first mangling rule cracking tools try
/// (`Sommer2024` -> `Sommer2024!!`), yet zxcvbn counts them as brute force. So the
/// password is also scored without them, and the lower score counts.
fn entropy(password: &str, inputs: &[&str]) -> zxcvbn::Entropy {
    let scored: String = password.chars().take(SCORED_CHARS).collect();
    let undecorated = scored.trim_end_matches(|c: char| !c.is_alphanumeric() && !c.is_whitespace());
    let entropy = zxcvbn::zxcvbn(&scored, inputs);
    if !undecorated.is_empty() && undecorated.len() < scored.len() {
        let plain = zxcvbn::zxcvbn(undecorated, inputs);
        if plain.score() < entropy.score() {
            return plain;
        }
    }
    entropy
}

/// The words an attacker would try first for an account: the address, its local part and
/// the pieces of it, the domain's labels, and the customer name.
pub fn user_inputs(address: Option<&EmailAddress>, customer: Option<&str>) -> Vec<String> {
    let mut inputs = Vec::new();
    if let Some(address) = address {
        inputs.push(address.to_string());
        inputs.push(address.local_part().to_string());
        inputs.extend(address.local_part().as_str().split(['.', '-', '_', '+']).map(str::to_string));
        inputs.push(address.domain().to_unicode());
        inputs.extend(address.domain().labels().map(str::to_string));
    }
    inputs.extend(customer.map(str::to_string));
    inputs.sort();
    inputs.dedup();
    inputs
}

fn refused_for_length(refusal: PasswordRefusal, reason: String) -> PasswordVerdict {
    PasswordVerdict {
        accepted: false,
        score: 0,
        refusal: Some(refusal),
        reason: Some(reason),
        warning: None,
        suggestions: Vec::new(),
    }
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
        use PasswordRefusal::*;
        let cases = [
            ("Passwort123!", TooEasyToGuess, "too easy to guess"),
            ("Sommer2024!!", TooEasyToGuess, "too easy to guess"),
            ("max.mustermann@example.net", MostlyUserWords, "mostly made of your address"),
            ("max.mustermann2024", MostlyUserWords, "mostly made of your address"),
            ("aaaaaaaaaaaaaaaa", TooEasyToGuess, "too easy to guess"),
            ("x7#Kq!9vZ2m", TooShort, "has 11 characters"),
            ("", TooShort, "has 0 characters"),
        ];
        for (password, refusal, why) in cases {
            let verdict = check_password(password, USER);
            assert!(!verdict.accepted, "{password:?} must be refused, got score {}", verdict.score);
            assert_eq!(verdict.refusal, Some(refusal), "{password:?}");
            let reason = verdict.reason.unwrap_or_default();
            assert!(reason.contains(why), "{password:?}: reason {reason:?} should say {why:?}");
        }
    }

    /// The inputs for the mailbox `alice@example.test` of the customer `example`.
    fn alice() -> Vec<String> {
        let address = EmailAddress::parse("alice@example.test").expect("valid");
        user_inputs(Some(&address), Some("example"))
    }

    fn check_for(password: &str, inputs: &[String]) -> PasswordVerdict {
        check_password(password, &inputs.iter().map(String::as_str).collect::<Vec<_>>())
    }

    #[test]
    fn passwords_made_of_the_users_words_are_refused() {
        let inputs = alice();
        for password in [
            "alice example test",
            "Alice2024!Alice",
            "alice@example.test",
            "examplealice2024!",
            "ALICE@EXAMPLE.TEST",
            "tset.elpmaxe@ecila",
            "ecila-elpmaxe-2024",
            "4l1c3@3x4mpl3.t35t",
            "Alice1985 Example!!",
            "alicealicealice",
            "example example 2024!",
            "Alicexample#2024",
            "alice_example_1999!?",
            "ａｌｉｃｅ２０２４ｅｘａｍｐｌｅ",
            "aliceexampleBanana", // own letters: banana, 6 of 18
            "$$$alice$$$example$$$",
        ] {
            let verdict = check_for(password, &inputs);
            assert_eq!(verdict.refusal, Some(PasswordRefusal::MostlyUserWords), "{password:?}: {verdict:?}");
            assert!(!verdict.accepted);
            assert!(verdict.score < MIN_SCORE, "{password:?} shows as weak, not {}", verdict.score);
        }
        // Letters of its own are required: random symbols around a user word are not enough.
        let verdict = check_for("alice 8#2!9$4%1^7&", &inputs);
        assert_eq!(verdict.refusal, Some(PasswordRefusal::MostlyUserWords), "{verdict:?}");
        assert_eq!(verdict.score, MIN_SCORE - 1, "zxcvbn rates it 4, but a refused password never shows as strong");
    }

    #[test]
    fn an_address_at_the_users_domain_is_refused() {
        use PasswordRefusal::*;
        let cases = [
            // Its own mailbox: every letter is a user word.
            ("mallory@evil.test", "mallory@evil.test", MostlyUserWords),
            ("mallory@evil.test", "Mallory@Evil.Test!", MostlyUserWords),
            ("mallory@evil.test", "evil-mallory-2024", MostlyUserWords),
            ("mallory@evil.test", "EvilCorp Mallory 1", MostlyUserWords),
            // Another mailbox of evil.test: zxcvbn scores these 3 as typed.
            ("bob@evil.test", "mallory@evil.test", MostlyUserWords), // 7 own letters, 8 of user words
            ("bob@evil.test", "stephanie@evil.test", TooEasyToGuess), // a first name is left
        ];
        for (mailbox, password, refusal) in cases {
            let address = EmailAddress::parse(mailbox).expect("valid");
            let verdict = check_for(password, &user_inputs(Some(&address), Some("evilcorp")));
            assert_eq!(verdict.refusal, Some(refusal), "{password:?} for {mailbox}: {verdict:?}");
            assert!(verdict.score < MIN_SCORE);
        }
        // A long unguessable local part at the domain carries its own strength.
        let bob = EmailAddress::parse("bob@evil.test").expect("valid");
        let verdict = check_for("Stephanie.Kowalski@evil.test", &user_inputs(Some(&bob), Some("evilcorp")));
        assert!(verdict.accepted, "{verdict:?}");
    }

    #[test]
    fn what_is_left_without_the_users_words_must_be_strong() {
        for password in [
            // zxcvbn rates these 3 or 4 only thanks to the user word.
            "Alice Sommer2024!!",
            "alice qwertzuiopasdfgh",
        ] {
            let verdict = check_for(password, &alice());
            assert_eq!(verdict.refusal, Some(PasswordRefusal::TooEasyToGuess), "{password:?}: {verdict:?}");
            assert!(verdict.score < MIN_SCORE);
            let reason = verdict.reason.unwrap_or_default();
            assert!(reason.contains("once the parts from your address"), "{password:?}: {reason}");
        }
        // Weak as typed: the usual reason.
        let verdict = check_for("Passwort Passwort Alice", &alice());
        assert_eq!(verdict.refusal, Some(PasswordRefusal::TooEasyToGuess), "{verdict:?}");
        assert!(!verdict.reason.unwrap_or_default().contains("once the parts"));
    }

    #[test]
    fn strong_passwords_that_mention_the_user_are_accepted() {
        let inputs = alice();
        for password in [
            "correct horse battery staple",
            "Tr0mbone-Lichtung-47",
            "zV8#qLp2!rWm",
            // The local part once among four unrelated words: 25 of its 30 letters are its
            // own, and `-loves-quantum-zebra-pancakes` alone is a strong passphrase.
            "alice-loves-quantum-zebra-pancakes",
            "Alice Wunderland Regenschirm",
            "Eichhörnchen tanzen gern im Nebel",
            // A user word plus enough random letters.
            "alice xQmvWkzpTr 9!",
            // `test` inside other words is matched, but most letters are still their own.
            "contest attestation pretest",
        ] {
            let verdict = check_for(password, &inputs);
            assert!(verdict.accepted, "{password:?} should pass, got {verdict:?}");
            assert_eq!(verdict.refusal, None);
            assert!(verdict.score >= MIN_SCORE);
        }
    }

    #[test]
    fn short_user_words_and_idna_labels_do_not_count() {
        // `de` and `io` would match inside too many real words; `xn--…` is never typed.
        let address = EmailAddress::parse("jo@bücher.de").expect("valid");
        let inputs = user_inputs(Some(&address), Some("io"));
        let verdict = check_for("Bodensee Dienstag Radio Kerze", &inputs);
        assert!(verdict.accepted, "{verdict:?}");
        let verdict = check_for("Bücher Bücher 2024!", &inputs);
        assert_eq!(verdict.refusal, Some(PasswordRefusal::MostlyUserWords), "{verdict:?}");
    }

    #[test]
    fn refusal_codes_are_stable() {
        use PasswordRefusal::*;
        for (refusal, code) in [
            (TooShort, "too-short"),
            (TooLong, "too-long"),
            (MostlyUserWords, "mostly-user-words"),
            (TooEasyToGuess, "too-easy-to-guess"),
        ] {
            assert_eq!(refusal.code(), code);
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
            assert_eq!(verdict.refusal, None);
        }
    }

    #[test]
    fn length_limits_count_characters_not_bytes() {
        let long = "ä".repeat(MAX_PASSWORD_CHARS + 1);
        let verdict = check_password(&long, USER);
        assert!(!verdict.accepted);
        assert_eq!(verdict.refusal, Some(PasswordRefusal::TooLong));
        assert!(verdict.reason.unwrap_or_default().contains("at most 256"));
        // 12 two-byte characters are 12 characters.
        let verdict = check_password("äöüßéèñçøåæœ", &[]);
        assert!(!verdict.reason.unwrap_or_default().contains("characters;"));
    }

    #[test]
    fn a_huge_user_input_counts_by_its_start() {
        let customer = format!("globexcorp-{}", "q".repeat(60_000));
        let verdict = check_password("Globexcorp2024!globexcorp", &[&customer]);
        assert_eq!(verdict.refusal, Some(PasswordRefusal::MostlyUserWords));
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
