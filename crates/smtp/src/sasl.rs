//! The two SASL mechanisms submission offers: PLAIN (RFC 4616) and LOGIN
//! (draft-murchison-sasl-login), carried by AUTH (RFC 4954). Only decoding lives here;
//! the credentials go to the one authentication path.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use postfach_types::Secret;

/// Decodes one base64 client response (RFC 4954 §4). `None` for bad base64 or UTF-8.
pub fn decode(response: &str) -> Option<String> {
    let bytes = STANDARD.decode(response.trim()).ok()?;
    String::from_utf8(bytes).ok()
}

/// `authzid NUL authcid NUL passwd` (RFC 4616 §2). An authorization identity other than
/// the login itself is refused: nobody may act as another mailbox.
pub fn plain(message: &str) -> Option<(String, Secret<String>)> {
    let mut parts = message.splitn(3, '\0');
    let authzid = parts.next()?;
    let authcid = parts.next()?;
    let passwd = parts.next()?;
    if authcid.is_empty() || (!authzid.is_empty() && !authzid.eq_ignore_ascii_case(authcid)) {
        return None;
    }
    Some((authcid.to_string(), Secret::new(passwd.to_string())))
}

/// The LOGIN prompts: "Username:" and "Password:" in base64.
pub const LOGIN_USERNAME: &str = "VXNlcm5hbWU6";
pub const LOGIN_PASSWORD: &str = "UGFzc3dvcmQ6";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_messages() {
        let decoded = decode(&STANDARD.encode("\0max@acme.example\0secret pw")).expect("base64");
        let (login, secret) = plain(&decoded).expect("valid");
        assert_eq!(login, "max@acme.example");
        assert_eq!(secret.expose(), "secret pw");
        assert!(plain("max@acme.example\0max@acme.example\0pw").is_some());
        assert!(plain("eve@acme.example\0max@acme.example\0pw").is_none(), "acting as someone else");
        assert!(plain("\0\0pw").is_none());
        assert!(plain("no separators").is_none());
        assert_eq!(decode("not base64!"), None);
        assert_eq!(decode(LOGIN_USERNAME).as_deref(), Some("Username:"));
        assert_eq!(decode(LOGIN_PASSWORD).as_deref(), Some("Password:"));
    }
}
