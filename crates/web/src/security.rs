//! Secrets of the panel: session and API tokens (random, stored only as a SHA-256 hash),
//! CSRF tokens, and TOTP codes (RFC 6238).

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use postfach_types::Secret;
use totp_rs::{Algorithm, TOTP};

/// Prefix of API bearer tokens, so a leaked token is recognisable (secret scanners).
pub const API_TOKEN_PREFIX: &str = "pfapi_";

/// 256 random bits as 64 lower-case hex digits.
pub fn random_hex() -> String {
    let bytes: [u8; 32] = rand::random();
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

/// Compares two tokens without leaking where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

/// TOTP parameters: SHA-1, 6 digits, 30-second steps — what every authenticator app
/// understands (RFC 6238 §4 defaults).
const STEP: u64 = 30;
const DIGITS: usize = 6;

/// A new TOTP secret: 160 random bits (RFC 4226 §4 recommends 160), base32 without
/// padding as authenticator apps expect it.
pub fn new_totp_secret() -> String {
    let bytes: [u8; 20] = rand::random();
    base32(&bytes)
}

/// The `otpauth://` URI for authenticator apps (the de-facto Key Uri Format).
pub fn totp_uri(secret: &str, issuer: &str, account: &str) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP}",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

/// The time step whose code `code` is, if it is the code of the current step or one step
/// before or after (clock drift), else `None`.
pub fn totp_step_of(secret: &str, code: &str, now: u64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bytes = unbase32(secret)?;
    let totp = TOTP::new_unchecked(Algorithm::SHA1, DIGITS, 0, STEP, bytes);
    let mut found = None;
    for time in [now.saturating_sub(STEP), now, now + STEP] {
        if same_token(&totp.generate(time), &code) {
            found = i64::try_from(time / STEP).ok();
        }
    }
    found
}

/// The current code, for tests.
pub fn totp_code(secret: &str, now: u64) -> Option<String> {
    Some(TOTP::new_unchecked(Algorithm::SHA1, DIGITS, 0, STEP, unbase32(secret)?).generate(now))
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 §6 base32, without padding.
fn base32(bytes: &[u8]) -> String {
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

fn unbase32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|&c| c != b'=' && c != b' ') {
        let value = BASE32.iter().position(|&x| x == c.to_ascii_uppercase())?;
        buffer = (buffer << 5) | u32::try_from(value).ok()?;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buffer >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_round_trips_and_matches_rfc4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(unbase32("MZXW6YTBOI").as_deref(), Some(&b"foobar"[..]));
        let secret = new_totp_secret();
        assert_eq!(secret.len(), 32);
        assert_eq!(unbase32(&secret).map(|b| b.len()), Some(20));
    }

    #[test]
    fn totp_matches_rfc6238_test_vector() {
        // RFC 6238 Appendix B, SHA-1 secret "12345678901234567890", T = 59 s: 94287082 (8 digits).
        let secret = base32(b"12345678901234567890");
        assert_eq!(totp_code(&secret, 59).as_deref(), Some("287082"));
        assert_eq!(totp_step_of(&secret, "287082", 59), Some(1));
        assert_eq!(totp_step_of(&secret, "287 082", 80), Some(1), "one step of drift is accepted");
        assert_eq!(totp_step_of(&secret, "287082", 200), None);
        assert_eq!(totp_step_of(&secret, "12345", 59), None);
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let token = new_api_token();
        assert!(token.expose().starts_with(API_TOKEN_PREFIX));
        assert_ne!(token.expose(), new_api_token().expose());
        assert_eq!(token_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(same_token("abc", "abc") && !same_token("abc", "abd"));
    }

    #[test]
    fn otpauth_uri_escapes() {
        assert_eq!(
            totp_uri("ABC", "Postfach mail.example", "acme"),
            "otpauth://totp/Postfach%20mail.example:acme?secret=ABC&issuer=Postfach%20mail.example&algorithm=SHA1&digits=6&period=30"
        );
    }
}
