//! Random tokens: panel session cookies, CSRF tokens and API bearer tokens. Each is
//! 256 random bits that only its holder knows; the database keeps a SHA-256 of session
//! and API tokens, so a copy of it lets nobody in. API tokens are checked through
//! [`crate::Authenticator::authenticate_token`], which throttles and records them.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use postfach_types::Secret;

/// Prefix of API bearer tokens, so a leaked token is recognisable (secret scanners).
pub const API_TOKEN_PREFIX: &str = "pfapi_";

/// Random bytes in every token: 256 bits.
const RANDOM_BYTES: usize = 32;

/// 256 random bits as 64 lower-case hex digits.
pub fn random_hex() -> String {
    let bytes: [u8; RANDOM_BYTES] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value stored for a token: its SHA-256, hex. Tokens carry 256 random bits, so a
/// fast hash is enough (nothing to brute-force).
pub fn token_hash(token: &str) -> String {
    digest(&SHA256, token.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

pub fn new_api_token() -> Secret<String> {
    Secret::new(format!("{API_TOKEN_PREFIX}{}", random_hex()))
}

/// Whether `token` has the exact form [`new_api_token`] makes, so that anything else is
/// refused without a database lookup.
pub fn is_api_token_form(token: &str) -> bool {
    token.strip_prefix(API_TOKEN_PREFIX).is_some_and(|hex| {
        hex.len() == 2 * RANDOM_BYTES && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Compares two tokens without leaking where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let token = new_api_token();
        assert!(token.expose().starts_with(API_TOKEN_PREFIX));
        assert_ne!(token.expose(), new_api_token().expose());
        assert_eq!(token_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(same_token("abc", "abc") && !same_token("abc", "abd"));
    }

    #[test]
    fn only_tokens_of_our_form_are_looked_up() {
        assert!(is_api_token_form(new_api_token().expose()));
        let hex = random_hex();
        assert!(is_api_token_form(&format!("{API_TOKEN_PREFIX}{hex}")));
        for junk in [
            String::new(),
            hex.clone(),
            format!("{API_TOKEN_PREFIX}guess"),
            format!("{API_TOKEN_PREFIX}{}", hex.to_uppercase()),
            format!("{API_TOKEN_PREFIX}{hex}0"),
            format!("{API_TOKEN_PREFIX}{}", &hex[1..]),
            format!("{API_TOKEN_PREFIX}{}g", &hex[1..]),
            format!("PFAPI_{hex}"),
        ] {
            assert!(!is_api_token_form(&junk), "{junk}");
        }
    }
}
