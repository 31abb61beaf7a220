//! Input as every adapter receives it (form fields, JSON strings, argv), parsed once into
//! the typed values the operations take. The panel, the API and the CLI call the same
//! parser, so the same bad value is refused with the same [`AdminError`] everywhere.

use std::str::FromStr;

use postfach_store::domains::MtaStsMode;
use postfach_store::logins::LoginFilter;
use postfach_store::mailboxes::MailboxSettings;
use postfach_store::quota::MailboxQuota;
use postfach_store::warnings::WarningKind;
use postfach_types::{
    AccessMode, CustomerName, DomainName, EmailAddress, IdError, Language, MailboxId, Role, Service, SpamThreshold,
};

use crate::AdminError;

/// The longest API token name.
pub const MAX_TOKEN_NAME: usize = 100;

pub fn customer_name(text: &str) -> Result<CustomerName, AdminError> {
    CustomerName::parse(text).map_err(|_| AdminError::InvalidCustomerName)
}

/// `customer` (also when not given) or `admin`.
pub fn role(text: Option<&str>) -> Result<Role, AdminError> {
    match text {
        None | Some("customer") => Ok(Role::Customer),
        Some("admin") => Ok(Role::Admin),
        Some(_) => Err(AdminError::InvalidRole),
    }
}

pub fn domain_name(text: &str) -> Result<DomainName, AdminError> {
    DomainName::parse(text.trim()).map_err(|_| AdminError::InvalidDomainName)
}

pub fn address(text: &str) -> Result<EmailAddress, AdminError> {
    EmailAddress::parse(text.trim()).map_err(|_| AdminError::InvalidAddress)
}

/// An address from its two halves, as the panel's forms send them.
pub fn address_at(local: &str, domain: &str) -> Result<EmailAddress, AdminError> {
    address(&format!("{}@{}", local.trim(), domain.trim()))
}

/// `imap`, `pop3` or `none`; `None` (not given) keeps the default or the current value.
pub fn access_mode(text: Option<&str>) -> Result<Option<AccessMode>, AdminError> {
    text.map(|t| t.parse().map_err(|_| AdminError::InvalidAccessMode)).transpose()
}

/// A new mailbox's settings: what is not given is the default.
pub fn mailbox_settings(
    access: Option<&str>,
    submission: Option<bool>,
    tls_required: Option<bool>,
) -> Result<MailboxSettings, AdminError> {
    let defaults = MailboxSettings::default();
    Ok(MailboxSettings {
        access: access_mode(access)?.unwrap_or(defaults.access),
        submission: submission.unwrap_or(defaults.submission),
        tls_required: tls_required.unwrap_or(defaults.tls_required),
    })
}

/// A token's name: trimmed, without control characters, 1 to [`MAX_TOKEN_NAME`]
/// characters.
pub fn token_name(text: &str) -> Result<String, AdminError> {
    let name: String = text.trim().chars().filter(|c| !c.is_control()).collect();
    match name.chars().count() {
        0 => Err(AdminError::TokenNameMissing),
        n if n > MAX_TOKEN_NAME => Err(AdminError::TokenNameTooLong),
        _ => Ok(name),
    }
}

/// The longest app password name.
pub const MAX_APP_PASSWORD_NAME: usize = 64;

/// An app password's name: trimmed, 1 to [`MAX_APP_PASSWORD_NAME`] characters, no
/// control characters (refused, not dropped: the name is how the owner revokes it).
pub fn app_password_name(text: &str) -> Result<String, AdminError> {
    let name = text.trim();
    let count = name.chars().count();
    if count == 0 || count > MAX_APP_PASSWORD_NAME || name.chars().any(char::is_control) {
        return Err(AdminError::InvalidAppPasswordName);
    }
    Ok(name.to_string())
}

/// The longest name of a Sieve script, in characters.
pub const MAX_SIEVE_SCRIPT_NAME: usize = 128;

/// A Sieve script's name, taken as given (ManageSieve names are exact): 1 to
/// [`MAX_SIEVE_SCRIPT_NAME`] characters, no control characters or line separators, no
/// spaces at either end (RFC 5804 §1.6).
pub fn sieve_script_name(text: &str) -> Result<&str, AdminError> {
    let count = text.chars().count();
    if count == 0
        || count > MAX_SIEVE_SCRIPT_NAME
        || text.trim() != text
        || text.chars().any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
    {
        return Err(AdminError::InvalidSieveScriptName);
    }
    Ok(text)
}

/// The services of an app password: `imap`, `pop3`, `submission`, `sieve`, separated by commas
/// or spaces, at least one; duplicates count once.
pub fn app_password_services(text: &str) -> Result<Vec<Service>, AdminError> {
    let mut services = Vec::new();
    for word in text.split([',', ' ']).map(str::trim).filter(|w| !w.is_empty()) {
        let service: Service = word.parse().map_err(|_| AdminError::InvalidAppPasswordServices)?;
        if !service.is_device_service() {
            return Err(AdminError::InvalidAppPasswordServices);
        }
        if !services.contains(&service) {
            services.push(service);
        }
    }
    if services.is_empty() {
        return Err(AdminError::InvalidAppPasswordServices);
    }
    services.sort_by_key(|s| Service::ALL.iter().position(|a| a == s));
    Ok(services)
}

/// Which login attempts to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginQuery {
    pub only_unencrypted: bool,
    pub only_failed: bool,
    pub limit: i64,
}

impl LoginQuery {
    /// The default page: the last `limit` attempts.
    pub fn all(limit: i64) -> LoginQuery {
        LoginQuery { only_unencrypted: false, only_failed: false, limit }
    }

    pub(crate) fn filter(self, mailbox: Option<MailboxId>) -> LoginFilter {
        LoginFilter {
            mailbox,
            only_unencrypted: self.only_unencrypted,
            only_failed: self.only_failed,
            limit: self.limit.clamp(1, 1000),
        }
    }
}

/// A login filter by name: empty or `all`, `unencrypted` or `failed`.
pub fn login_query(filter: Option<&str>, limit: i64) -> Result<LoginQuery, AdminError> {
    let (only_unencrypted, only_failed) = match filter {
        None | Some("" | "all") => (false, false),
        Some("unencrypted") => (true, false),
        Some("failed") => (false, true),
        Some(_) => return Err(AdminError::InvalidFilter),
    };
    Ok(LoginQuery { only_unencrypted, only_failed, limit })
}

/// A row id from a URL or argv: a positive number (the id types' `FromStr`), or else
/// nothing that exists.
pub fn id<I: FromStr<Err = IdError>>(text: &str) -> Result<I, AdminError> {
    text.parse().map_err(|_| AdminError::NotFound(format!("there is no object {text}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bad_value_has_its_own_refusal() {
        assert!(matches!(customer_name("-x"), Err(AdminError::InvalidCustomerName)));
        assert!(matches!(role(Some("root")), Err(AdminError::InvalidRole)));
        assert!(matches!(domain_name("bad_domain.example"), Err(AdminError::InvalidDomainName)));
        assert!(matches!(address("no-at-sign"), Err(AdminError::InvalidAddress)));
        assert!(matches!(access_mode(Some("smtp")), Err(AdminError::InvalidAccessMode)));
        assert!(matches!(login_query(Some("odd"), 10), Err(AdminError::InvalidFilter)));
        assert!(matches!(token_name(" \t"), Err(AdminError::TokenNameMissing)));
        assert!(matches!(token_name(&"x".repeat(101)), Err(AdminError::TokenNameTooLong)));
        assert!(matches!(id::<MailboxId>("0"), Err(AdminError::NotFound(_))));
    }

    #[test]
    fn good_values_parse() {
        assert_eq!(role(None).ok(), Some(Role::Customer));
        assert_eq!(access_mode(None).ok(), Some(None));
        assert_eq!(access_mode(Some("pop3")).ok(), Some(Some(AccessMode::Pop3)));
        assert_eq!(token_name("  deploy\u{7}  ").ok().as_deref(), Some("deploy"));
        assert_eq!(token_name(&"x".repeat(100)).ok().map(|n| n.len()), Some(100));
        let q = login_query(Some("failed"), 5000).expect("query");
        assert_eq!(q.filter(Some(MailboxId::new(3))).limit, 1000);
        assert!(q.only_failed && !q.only_unencrypted);
    }
}

/// A storage limit: bytes, or a whole number with `K`, `M`, `G` or `T` (powers of 1024,
/// an optional `B` or `iB` after it, any case: `2G`, `512MiB`, `1073741824`); `none`
/// removes the limit (`None`). Zero is refused: a mailbox that can hold nothing is
/// switched off otherwise.
pub fn size(text: &str) -> Result<Option<u64>, AdminError> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let unit = unit.trim().to_ascii_uppercase();
    let unit = unit.strip_suffix("IB").or_else(|| unit.strip_suffix('B')).unwrap_or(&unit);
    let shift = match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(AdminError::InvalidSize),
    };
    // Up to 2^62 bytes, so that it fits the database's signed 64-bit columns.
    number
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0 && n.leading_zeros() >= shift + 2)
        .map(|n| Some(n << shift))
        .ok_or(AdminError::InvalidSize)
}

/// A mailbox's limits after a change: `bytes` and `messages` as given (see [`size`] and
/// [`message_count`]); what is not given stays as in `current`.
pub fn mailbox_quota(
    current: MailboxQuota,
    bytes: Option<&str>,
    messages: Option<&str>,
) -> Result<MailboxQuota, AdminError> {
    Ok(MailboxQuota {
        bytes: bytes.map(size).transpose()?.unwrap_or(current.bytes),
        messages: messages.map(message_count).transpose()?.unwrap_or(current.messages),
    })
}

/// A message-count limit: a positive whole number, or `none` (no limit).
pub fn message_count(text: &str) -> Result<Option<u64>, AdminError> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    text.parse::<u64>()
        .ok()
        .filter(|n| *n > 0 && *n <= i64::MAX as u64)
        .map(Some)
        .ok_or(AdminError::InvalidMessageCount)
}

/// `de` or `en`.
pub fn language(text: &str) -> Result<Language, AdminError> {
    text.parse().map_err(|_| AdminError::InvalidLanguage)
}

/// A domain's MTA-STS mode: `off`, `testing` or `enforce`.
pub fn mta_sts_mode(text: &str) -> Result<MtaStsMode, AdminError> {
    text.trim().parse().map_err(|_| AdminError::InvalidMtaStsMode)
}

/// A mailbox's warning kind (`unencrypted`, `wrong-protocol`, `exposed`, `locked`,
/// `sending-limit`, `new-device`, `unused-app-password`).
pub fn warning_kind(text: &str) -> Result<WarningKind, AdminError> {
    text.parse::<WarningKind>().ok().filter(|k| k.is_mailbox_kind()).ok_or(AdminError::InvalidWarningSwitch)
}

/// `KIND=on` or `KIND=off`.
pub fn warning_switch(text: &str) -> Result<(WarningKind, bool), AdminError> {
    let (kind, state) = text.split_once('=').ok_or(AdminError::InvalidWarningSwitch)?;
    let on = match state.trim().to_ascii_lowercase().as_str() {
        "on" => true,
        "off" => false,
        _ => return Err(AdminError::InvalidWarningSwitch),
    };
    Ok((warning_kind(kind)?, on))
}

/// A contact address, or `none` (empty) for none.
pub fn contact(text: &str) -> Result<Option<EmailAddress>, AdminError> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    address(text).map(Some)
}

/// A spam threshold: a score like `6.5`, `none` (never) or `default` (the platform's).
pub fn spam_threshold(text: &str) -> Result<SpamThreshold, AdminError> {
    SpamThreshold::parse(text).map_err(|_| AdminError::InvalidSpamThreshold)
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size("1000").ok(), Some(Some(1000)));
        assert_eq!(size("2G").ok(), Some(Some(2 << 30)));
        assert_eq!(size(" 512m ").ok(), Some(Some(512 << 20)));
        assert_eq!(size("5K").ok(), Some(Some(5 << 10)));
        assert_eq!(size("3TiB").ok(), Some(Some(3 << 40)));
        assert_eq!(size("50GB").ok(), Some(Some(50 << 30)));
        assert_eq!(size("none").ok(), Some(None));
        assert_eq!(size("NONE").ok(), Some(None));
        for bad in ["", "0", "0G", "G", "1.5G", "-1", "2X", "2 G B", "99999999999T", "18446744073709551616", "1e9"] {
            assert!(matches!(size(bad), Err(AdminError::InvalidSize)), "{bad}");
        }
    }

    #[test]
    fn message_counts() {
        assert_eq!(message_count("10000").ok(), Some(Some(10000)));
        assert_eq!(message_count("none").ok(), Some(None));
        for bad in ["0", "-3", "1K", ""] {
            assert!(matches!(message_count(bad), Err(AdminError::InvalidMessageCount)), "{bad}");
        }
    }
}

/// The longest login and password for the old server an import reads.
pub const MAX_IMPORT_LOGIN: usize = 256;
pub const MAX_IMPORT_PASSWORD: usize = 1024;

/// The old server of an import as the form or JSON gives it: a host name or address, a
/// port (empty: 993 for TLS, 143 for STARTTLS) and `tls` or `starttls` (empty: `tls`).
pub fn import_server(host: &str, port: &str, security: &str) -> Result<postfach_import::imap::SourceUrl, AdminError> {
    let scheme = match security.trim() {
        "" | "tls" => "imaps",
        "starttls" => "imap",
        _ => return Err(AdminError::InvalidImportServer),
    };
    let host = host.trim();
    if host.is_empty() || host.contains(['/', '@', '[', ']']) || host.chars().any(char::is_whitespace) {
        return Err(AdminError::InvalidImportServer);
    }
    let port = port.trim();
    if !port.is_empty() && !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AdminError::InvalidImportServer);
    }
    let host = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
    let url = if port.is_empty() { format!("{scheme}://{host}") } else { format!("{scheme}://{host}:{port}") };
    postfach_import::imap::SourceUrl::parse(&url).map_err(|_| AdminError::InvalidImportServer)
}

/// The login at the old server: trimmed, 1 to [`MAX_IMPORT_LOGIN`] characters, no
/// control characters.
pub fn import_login(text: &str) -> Result<String, AdminError> {
    let login = text.trim();
    if login.is_empty() || login.chars().count() > MAX_IMPORT_LOGIN || login.chars().any(char::is_control) {
        return Err(AdminError::InvalidImportLogin);
    }
    Ok(login.to_string())
}

/// The password at the old server: given, at most [`MAX_IMPORT_PASSWORD`] bytes, no line
/// breaks or NUL (they cannot be sent in an IMAP login).
pub fn import_password(text: String) -> Result<postfach_types::Secret<String>, AdminError> {
    if text.is_empty() || text.len() > MAX_IMPORT_PASSWORD || text.contains(['\r', '\n', '\0']) {
        return Err(AdminError::InvalidImportPassword);
    }
    Ok(postfach_types::Secret::new(text))
}
