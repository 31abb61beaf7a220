//! TOTP codes (RFC 6238), the panel's second factor: secrets, the `otpauth://` URI for
//! authenticator apps, and which time step a code belongs to. Checking a code at sign-in
//! goes through [`crate::Authenticator::second_factor`], which throttles and records it.

use totp_rs::{Algorithm, TOTP};

use crate::tokens::same_token;

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
    fn otpauth_uri_escapes() {
        assert_eq!(
            totp_uri("ABC", "Postfach mail.example", "acme"),
            "otpauth://totp/Postfach%20mail.example:acme?secret=ABC&issuer=Postfach%20mail.example&algorithm=SHA1&digits=6&period=30"
        );
    }
}
