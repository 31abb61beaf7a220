//! SASL decoding for every protocol (SMTP AUTH RFC 4954, IMAP AUTHENTICATE RFC 9051
//! §6.2.2, POP3 AUTH RFC 5034): base64 responses, PLAIN (RFC 4616) and LOGIN
//! (draft-murchison-sasl-login-00). Decided once, here:
//!
//! - a response is base64 of UTF-8 (RFC 4616 §2); anything else is malformed;
//! - `*` cancels (RFC 4954 §4, RFC 9051 §6.2.2, RFC 5034 §4);
//! - an `=` initial response is an empty response (RFC 4954 §4, RFC 9051 §6.2.2);
//! - PLAIN's authorization identity must be empty or name the same account as the
//!   authentication identity, compared as canonical logins: nobody acts as another
//!   account. A mismatch is refused as malformed ([`SaslError::ForeignAuthorization`],
//!   answered with `Refusal::Malformed`): counted against the address and recorded, but
//!   no password is checked.
//!
//! The credentials and every malformed attempt go to [`crate::Authenticator`], which
//! throttles and records them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use postfach_types::{LoginName, Mechanism, Secret};

/// The mechanisms offered everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    Login,
}

impl SaslMechanism {
    /// The mechanism a client named (case-insensitively), if offered.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "PLAIN" => Some(Self::Plain),
            "LOGIN" => Some(Self::Login),
            _ => None,
        }
    }

    /// How the login log names it.
    pub fn mechanism(self) -> Mechanism {
        match self {
            Self::Plain => Mechanism::Plain,
            Self::Login => Mechanism::SaslLogin,
        }
    }
}

/// LOGIN's first challenge, "Username:" in base64.
pub const LOGIN_USERNAME: &str = "VXNlcm5hbWU6";
/// LOGIN's second challenge, "Password:" in base64.
pub const LOGIN_PASSWORD: &str = "UGFzc3dvcmQ6";

/// Why a SASL exchange produced no credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("the client cancelled the authentication")]
    Cancelled,
    #[error("the response is not valid base64 of UTF-8 text")]
    NotBase64,
    #[error("the PLAIN message does not have the form [authzid] NUL authcid NUL password")]
    Malformed,
    /// PLAIN named another account to act as.
    #[error("the authorization identity differs from the login")]
    ForeignAuthorization,
}

/// Login name and password from a SASL exchange.
#[derive(Debug)]
pub struct Credentials {
    pub login: String,
    pub secret: Secret<String>,
}

/// One client response line (without CRLF): `*` cancels, otherwise base64 of UTF-8.
pub fn decode_response(line: &[u8]) -> Result<String, SaslError> {
    let line = line.trim_ascii();
    if line == b"*" {
        return Err(SaslError::Cancelled);
    }
    let bytes = STANDARD.decode(line).map_err(|_| SaslError::NotBase64)?;
    String::from_utf8(bytes).map_err(|_| SaslError::NotBase64)
}

/// An initial response sent with the command: `=` is the empty response.
pub fn decode_initial(response: &[u8]) -> Result<String, SaslError> {
    if response.trim_ascii() == b"=" { Ok(String::new()) } else { decode_response(response) }
}

/// `[authzid] NUL authcid NUL passwd` (RFC 4616 §2).
pub fn plain(message: &str) -> Result<Credentials, SaslError> {
    let mut parts = message.split('\0');
    let (Some(authzid), Some(authcid), Some(passwd), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    if authcid.is_empty() {
        return Err(SaslError::Malformed);
    }
    if !authzid.is_empty() && !same_account(authzid, authcid) {
        return Err(SaslError::ForeignAuthorization);
    }
    Ok(Credentials { login: authcid.to_string(), secret: Secret::new(passwd.to_string()) })
}

/// Whether two login names name the same account (both must be valid logins).
fn same_account(a: &str, b: &str) -> bool {
    match (LoginName::parse(a), LoginName::parse(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> Vec<u8> {
        STANDARD.encode(s).into_bytes()
    }

    #[test]
    fn plain_messages() {
        let decoded = decode_response(&b64("\0max@acme.example\0secret pw")).expect("base64");
        let c = plain(&decoded).expect("valid");
        assert_eq!((c.login.as_str(), c.secret.expose().as_str()), ("max@acme.example", "secret pw"));
        // The same account, spelled differently, may be named as authzid.
        assert!(plain("MAX@Acme.Example\0max@acme.example\0pw").is_ok());
        assert_eq!(plain("eve@acme.example\0max@acme.example\0pw").err(), Some(SaslError::ForeignAuthorization));
        assert_eq!(plain("\0\0pw").err(), Some(SaslError::Malformed));
        assert_eq!(plain("no separators").err(), Some(SaslError::Malformed));
        assert_eq!(plain("a\0b@c.example\0pw\0extra").err(), Some(SaslError::Malformed));
    }

    #[test]
    fn responses() {
        assert_eq!(decode_response(b"*\r\n"), Err(SaslError::Cancelled));
        assert_eq!(decode_response(b"not base64!"), Err(SaslError::NotBase64));
        assert_eq!(decode_response(&STANDARD.encode([0xff, 0xfe]).into_bytes()), Err(SaslError::NotBase64));
        assert_eq!(decode_initial(b"=").as_deref(), Ok(""));
        assert_eq!(decode_response(LOGIN_USERNAME.as_bytes()).as_deref(), Ok("Username:"));
        assert_eq!(decode_response(LOGIN_PASSWORD.as_bytes()).as_deref(), Ok("Password:"));
        assert_eq!(SaslMechanism::parse("plain"), Some(SaslMechanism::Plain));
        assert_eq!(SaslMechanism::parse("CRAM-MD5"), None);
    }
}
