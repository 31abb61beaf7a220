//! The one password generator: main passwords offered by the panel and the CLI
//! (`--generate`), and app passwords.
//!
//! A generated password is groups of four characters from a 32-character alphabet
//! without look-alikes (no `l`, `1`, `o`, `0`), joined by `-`: easy to read aloud and to
//! type on a phone, 5 bits per character. A main password has 6 groups (120 bits); the
//! password rule (`policy::check_password`, 12 characters and a high zxcvbn score) is
//! passed by a wide margin.
//!
//! An app password is `LOOKUP-` followed by 5 groups: `LOOKUP` is 8 more random
//! characters stored in plain text next to the hash, so that a login finds the one app
//! password to verify (one argon2id verification per login, however many app passwords
//! a mailbox has; a prefix that matches none costs a verification all the same). The 100
//! secret bits after it are what the hash protects; the lookup key only selects the row.

use postfach_types::Secret;
use rand::Rng;

const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
const GROUP: usize = 4;
/// Groups in a generated main password.
const PASSWORD_GROUPS: usize = 6;
/// Secret groups in an app password (after its lookup key).
const APP_PASSWORD_GROUPS: usize = 5;
/// Characters of an app password's lookup key.
const LOOKUP_CHARS: usize = 8;

fn random_chars(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
}

fn groups(n: usize) -> String {
    (0..n).map(|_| random_chars(GROUP)).collect::<Vec<_>>().join("-")
}

/// A new main password (120 random bits), to be shown once.
pub fn password() -> Secret<String> {
    Secret::new(groups(PASSWORD_GROUPS))
}

/// A new app password and its lookup key.
pub fn app_password() -> (Secret<String>, String) {
    let lookup = random_chars(LOOKUP_CHARS);
    (Secret::new(format!("{lookup}-{}", groups(APP_PASSWORD_GROUPS))), lookup)
}

/// The lookup key of a secret that has the form of an app password, else `None` (then
/// it can only be a main password).
pub fn app_password_lookup(secret: &str) -> Option<&str> {
    let mut parts = secret.split('-');
    let lookup = parts.next().filter(|l| l.len() == LOOKUP_CHARS)?;
    let mut count = 0;
    for part in parts {
        if part.len() != GROUP {
            return None;
        }
        count += 1;
    }
    let well_formed = count == APP_PASSWORD_GROUPS && secret.bytes().all(|b| b == b'-' || ALPHABET.contains(&b));
    well_formed.then_some(lookup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_pass_the_rule_with_a_wide_margin() {
        for _ in 0..50 {
            let password = password();
            let verdict = postfach_policy::check_password(password.expose(), &["max@acme.example", "acme"]);
            assert!(verdict.accepted, "{verdict:?}");
            assert_eq!(verdict.score, 4);
            assert_eq!(password.expose().len(), 29);
            assert!(
                app_password_lookup(password.expose()).is_none(),
                "a main password is never taken for an app password"
            );
        }
    }

    #[test]
    fn app_passwords_carry_their_lookup_key() {
        let (password, lookup) = app_password();
        assert_eq!(app_password_lookup(password.expose()), Some(lookup.as_str()));
        assert_eq!(password.expose().len(), 8 + 5 * 5);
        assert!(postfach_policy::check_password(password.expose(), &[]).accepted);
        for not_one in [
            "",
            "abcdefgh",
            "abcdefgh-abcd-abcd-abcd-abcd",
            "ABCDEFGH-abcd-abcd-abcd-abcd-abcd",
            "abcdefgh-abcd-abcd-abcd-abcd-abc0",
        ] {
            assert_eq!(app_password_lookup(not_one), None, "{not_one}");
        }
    }
}
