//! Small closed vocabularies: access modes, roles, services, mechanisms, login results.
//!
//! Each has one canonical lower-case spelling, used in the database, on the command line
//! and in JSON alike.

use std::fmt;
use std::str::FromStr;

/// A word that is not one of an enum's spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{given}' is not one of: {}", expected.join(", "))]
pub struct ParseEnumError {
    pub given: String,
    pub expected: &'static [&'static str],
}

macro_rules! word_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }
        }

        impl FromStr for $name {
            type Err = ParseEnumError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($word => Ok($name::$variant),)+
                    _ => Err(ParseEnumError { given: s.to_string(), expected: &[$($word),+] }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

word_enum! {
    /// How a mailbox may be read: by IMAP, by POP3, or not at all (send-only or parked).
    /// One mode per mailbox, so a POP3 client can never empty a mailbox kept by IMAP.
    AccessMode { Imap = "imap", Pop3 = "pop3", None = "none" }
}

impl AccessMode {
    /// New mailboxes are IMAP mailboxes: mail stays on the server for every device.
    pub const DEFAULT: AccessMode = AccessMode::Imap;
}

word_enum! {
    /// The language of the mails Postfach itself writes into a mailbox (quota warnings
    /// and other platform notices).
    Language { En = "en", De = "de" }
}

word_enum! {
    /// The role of a panel account.
    Role { Admin = "admin", Customer = "customer" }
}

word_enum! {
    /// The service a login is for. `sieve` is ManageSieve (RFC 5804), where a mailbox's
    /// devices manage its Sieve filters.
    Service {
        Imap = "imap",
        Pop3 = "pop3",
        Submission = "submission",
        Panel = "panel",
        Api = "api",
        ManageSieve = "sieve",
    }
}

impl Service {
    /// The services a mailbox's devices (mail programs) log in to, as opposed to the
    /// panel and the API: app passwords are made for these, and a mailbox that asks its
    /// devices for app passwords refuses its main password here.
    pub const DEVICES: [Service; 4] = [Service::Imap, Service::Pop3, Service::Submission, Service::ManageSieve];

    /// Whether this is one of [`Service::DEVICES`].
    pub fn is_device_service(self) -> bool {
        Self::DEVICES.contains(&self)
    }
}

word_enum! {
    /// How the credentials were presented.
    Mechanism {
        /// IMAP `LOGIN` command (RFC 9051 §6.2.3).
        ImapLogin = "login-command",
        /// POP3 `USER` + `PASS` (RFC 1939 §7).
        UserPass = "user-pass",
        /// SASL PLAIN (RFC 4616).
        Plain = "plain",
        /// SASL LOGIN (draft-murchison-sasl-login).
        SaslLogin = "sasl-login",
        /// The panel's sign-in form.
        WebForm = "web-form",
        /// A TOTP code, the panel's second factor (RFC 6238).
        Totp = "totp",
        /// An API bearer token.
        ApiToken = "api-token",
    }
}

word_enum! {
    /// The outcome of a login attempt, as recorded in the login log.
    LoginResult {
        Ok = "ok",
        /// Unknown login or wrong password: deliberately not told apart.
        BadCredentials = "bad_credentials",
        /// The mailbox's access mode or submission switch does not allow this service.
        ServiceDisabled = "service_disabled",
        /// Credentials were sent without TLS where TLS is required.
        TlsRequired = "tls_required",
        /// Too many recent failures from this address or for this login.
        Throttled = "throttled",
        /// The account (or its customer) is disabled.
        AccountDisabled = "account_disabled",
        /// The SASL exchange was malformed, or PLAIN named another account to act as.
        Malformed = "malformed",
        /// The mailbox's main password was used by a device where it asks for app passwords.
        AppPasswordRequired = "app_password_required",
        /// The app password is not for this service.
        NotForThisAppPassword = "not_for_app_password",
    }
}

/// What the TLS layer of a connection negotiated, as recorded in the login log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TlsInfo {
    /// For example `TLSv1.3`.
    pub version: String,
    /// For example `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for mode in AccessMode::ALL {
            assert_eq!(mode.as_str().parse::<AccessMode>(), Ok(*mode));
        }
        for result in LoginResult::ALL {
            assert_eq!(result.as_str().parse::<LoginResult>(), Ok(*result));
        }
        assert_eq!(" POP3 ".parse::<AccessMode>(), Ok(AccessMode::Pop3));
        let err = "smtp".parse::<AccessMode>().expect_err("not a mode");
        assert_eq!(err.to_string(), "'smtp' is not one of: imap, pop3, none");
    }
}
