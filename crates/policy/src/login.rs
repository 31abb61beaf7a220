//! Whether a login attempt is let in, given what is known about the account and the
//! connection.
//!
//! The order of the checks is part of the rule and is chosen so that a refusal leaks as
//! little as possible:
//! 1. Credentials sent without TLS where TLS is required are refused as `TlsRequired`
//!    whether or not the password was right and whether or not the account exists (an
//!    unknown account is treated like a new mailbox, which requires TLS).
//! 2. Unknown account or wrong password: `BadCredentials`, indistinguishable.
//! 3. Only after the password proved the user: `Disabled`, then `ServiceNotAllowed`, so
//!    a mailbox's settings are never revealed to someone who does not know its password.
//!
//! The sending switch does not refuse a submission login: a refused AUTH reads as a wrong
//! password to mail programs, which then ask for it again. The login succeeds and
//! [`AccountKind::may_send`] decides, at `MAIL FROM`, whether the mailbox may send.
//!
//! Throttling is decided before any of this, by the `auth` crate, because it needs state.

use postfach_types::{AccessMode, LoginResult, Service};

/// What kind of account a login name resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    /// A mailbox, with its per-mailbox switches.
    Mailbox { access: AccessMode, submission: bool, tls_required: bool },
    /// A panel account (customer or admin). It can only sign in to the panel.
    PanelAccount,
}

impl AccountKind {
    /// Whether this account may send mail through submission once logged in: a mailbox
    /// with its sending switch on.
    pub fn may_send(self) -> bool {
        matches!(self, AccountKind::Mailbox { submission: true, .. })
    }
}

/// The account a login name resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountFacts {
    pub kind: AccountKind,
    /// The account, or the customer it belongs to, is disabled.
    pub disabled: bool,
}

/// Everything the decision depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFacts {
    pub service: Service,
    /// The credentials travelled inside TLS.
    pub encrypted: bool,
    /// The operator's `security.allow_plaintext_auth`.
    pub operator_allows_plaintext: bool,
    /// `None` when the login name matches no account.
    pub account: Option<AccountFacts>,
    /// The secret matched the account's password hash (false when there is no account).
    pub password_matches: bool,
}

/// Why a login is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    BadCredentials,
    TlsRequired {
        by: TlsRequiredBy,
    },
    ServiceNotAllowed,
    Disabled,
    Throttled,
    /// The SASL exchange was malformed or named another account to act as.
    Malformed,
    /// A device sent the main password of a mailbox whose devices must use app passwords.
    AppPasswordRequired,
    /// The app password is not for this service.
    NotForThisAppPassword,
}

/// Whose rule asked for TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsRequiredBy {
    /// `security.allow_plaintext_auth` is off: no account may log in without TLS.
    Operator,
    /// The operator allows plaintext, this mailbox does not (its "TLS only" switch), or
    /// the login names no mailbox (unknown accounts look like new mailboxes).
    Mailbox,
}

/// What the client is told about a refusal. Less than [`Refusal`] on purpose: without
/// TLS, a wrong password and "this mailbox needs TLS" read the same, so the reply does
/// not tell which mailboxes accept plaintext logins; the login log keeps the real reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicRefusal {
    /// Wrong login or password. With `encrypted: false` the reply also says that the
    /// mailbox may need an encrypted connection.
    Failed {
        encrypted: bool,
    },
    /// The whole server refuses logins without TLS (the operator's rule, the same for
    /// everyone, so saying it reveals nothing about a mailbox).
    TlsRequired,
    /// The mailbox's access mode or sending switch does not allow this service (said
    /// only after the password proved the user).
    ServiceNotAllowed,
    /// The account or its customer is disabled (said only after the password proved the
    /// user, like the access mode).
    Disabled,
    Throttled,
    Malformed,
    /// The main password works only for the panel here: create an app password (said
    /// only after the password proved the user).
    AppPasswordRequired,
    /// This app password was not made for this service (said only after it proved the
    /// user).
    NotForThisAppPassword,
}

impl Refusal {
    /// The login-log result for this refusal.
    pub fn result(self) -> LoginResult {
        match self {
            Refusal::BadCredentials => LoginResult::BadCredentials,
            Refusal::TlsRequired { .. } => LoginResult::TlsRequired,
            Refusal::ServiceNotAllowed => LoginResult::ServiceDisabled,
            Refusal::Disabled => LoginResult::AccountDisabled,
            Refusal::Throttled => LoginResult::Throttled,
            Refusal::Malformed => LoginResult::Malformed,
            Refusal::AppPasswordRequired => LoginResult::AppPasswordRequired,
            Refusal::NotForThisAppPassword => LoginResult::NotForThisAppPassword,
        }
    }

    /// What a client on a connection with (`encrypted`) or without TLS may be told.
    pub fn public(self, encrypted: bool) -> PublicRefusal {
        match self {
            Refusal::TlsRequired { by: TlsRequiredBy::Operator } => PublicRefusal::TlsRequired,
            Refusal::TlsRequired { by: TlsRequiredBy::Mailbox } | Refusal::BadCredentials => {
                PublicRefusal::Failed { encrypted }
            }
            Refusal::Disabled => PublicRefusal::Disabled,
            Refusal::ServiceNotAllowed => PublicRefusal::ServiceNotAllowed,
            Refusal::Throttled => PublicRefusal::Throttled,
            Refusal::Malformed => PublicRefusal::Malformed,
            Refusal::AppPasswordRequired => PublicRefusal::AppPasswordRequired,
            Refusal::NotForThisAppPassword => PublicRefusal::NotForThisAppPassword,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginDecision {
    Allow,
    Deny(Refusal),
}

impl LoginFacts {
    pub fn decide(&self) -> LoginDecision {
        use LoginDecision::{Allow, Deny};
        if !self.encrypted
            && let Some(by) = self.tls_required_by()
        {
            return Deny(Refusal::TlsRequired { by });
        }
        let Some(account) = self.account.filter(|_| self.password_matches) else {
            return Deny(Refusal::BadCredentials);
        };
        if account.disabled {
            return Deny(Refusal::Disabled);
        }
        if !service_allowed(account.kind, self.service) {
            return Deny(Refusal::ServiceNotAllowed);
        }
        Allow
    }

    /// Whose rule, if any, requires this connection to be encrypted for this account.
    fn tls_required_by(&self) -> Option<TlsRequiredBy> {
        if !self.operator_allows_plaintext {
            return Some(TlsRequiredBy::Operator);
        }
        match self.account.map(|a| a.kind) {
            Some(AccountKind::Mailbox { tls_required, .. }) => tls_required.then_some(TlsRequiredBy::Mailbox),
            // Panel accounts sign in over HTTPS only; unknown accounts look like new mailboxes.
            Some(AccountKind::PanelAccount) | None => Some(TlsRequiredBy::Mailbox),
        }
    }

    /// Whether a correct password just crossed the network unencrypted.
    pub fn password_exposed(&self) -> bool {
        !self.encrypted && self.account.is_some() && self.password_matches
    }
}

/// The credential a login proved: the mailbox's main password or one of its app
/// passwords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialFacts<'a> {
    /// `app_passwords_only`: the mailbox's devices must use app passwords.
    MainPassword { app_passwords_only: bool },
    /// The services the app password was made for.
    AppPassword { services: &'a [Service] },
}

impl CredentialFacts<'_> {
    /// Whether this credential may be used for `service`, asked after
    /// [`LoginFacts::decide`] allowed the login (so it is said only to someone who proved
    /// the credential). The panel takes only the main password: an app password is a
    /// device's, and a lost phone must not open the mailbox's settings.
    pub fn decide(self, service: Service) -> LoginDecision {
        match self {
            CredentialFacts::MainPassword { app_passwords_only: true } if service.is_device_service() => {
                LoginDecision::Deny(Refusal::AppPasswordRequired)
            }
            CredentialFacts::MainPassword { .. } => LoginDecision::Allow,
            CredentialFacts::AppPassword { services } if services.contains(&service) => LoginDecision::Allow,
            CredentialFacts::AppPassword { .. } => LoginDecision::Deny(Refusal::NotForThisAppPassword),
        }
    }
}

/// The access-mode switch (mission point 2). Every mailbox may log in to submission; its
/// sending switch is [`AccountKind::may_send`], asked at `MAIL FROM`.
fn service_allowed(kind: AccountKind, service: Service) -> bool {
    match kind {
        AccountKind::Mailbox { access, .. } => match service {
            Service::Imap => access == AccessMode::Imap,
            Service::Pop3 => access == AccessMode::Pop3,
            Service::Submission => true,
            // Filters and vacation replies work for every mailbox, a parked one included.
            Service::ManageSieve => true,
            // A mailbox user may always see their own logins and change their password.
            Service::Panel => true,
            // API tokens belong to panel accounts.
            Service::Api => false,
        },
        AccountKind::PanelAccount => matches!(service, Service::Panel | Service::Api),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AccessMode as Mode;
    use LoginDecision::{Allow, Deny};
    use Refusal::*;

    const BY_OPERATOR: Refusal = TlsRequired { by: TlsRequiredBy::Operator };
    const BY_MAILBOX: Refusal = TlsRequired { by: TlsRequiredBy::Mailbox };

    fn mailbox(access: AccessMode, submission: bool, tls_required: bool) -> Option<AccountFacts> {
        Some(AccountFacts { kind: AccountKind::Mailbox { access, submission, tls_required }, disabled: false })
    }

    fn facts(
        service: Service,
        encrypted: bool,
        plaintext_ok: bool,
        account: Option<AccountFacts>,
        pw: bool,
    ) -> LoginFacts {
        LoginFacts { service, encrypted, operator_allows_plaintext: plaintext_ok, account, password_matches: pw }
    }

    #[test]
    fn credential_decisions() {
        use Service::*;
        let only = CredentialFacts::MainPassword { app_passwords_only: true };
        let main = CredentialFacts::MainPassword { app_passwords_only: false };
        let phone = CredentialFacts::AppPassword { services: &[Imap, Submission] };
        for service in [Imap, Pop3, Submission, ManageSieve] {
            assert_eq!(only.decide(service), Deny(AppPasswordRequired), "{service}");
            assert_eq!(main.decide(service), Allow);
        }
        assert_eq!(only.decide(Panel), Allow);
        assert_eq!(phone.decide(Imap), Allow);
        assert_eq!(phone.decide(Submission), Allow);
        assert_eq!(phone.decide(Pop3), Deny(NotForThisAppPassword));
        assert_eq!(phone.decide(Panel), Deny(NotForThisAppPassword));
        assert_eq!(phone.decide(ManageSieve), Deny(NotForThisAppPassword));
        let filters = CredentialFacts::AppPassword { services: &[ManageSieve] };
        assert_eq!(filters.decide(ManageSieve), Allow);
        assert_eq!(filters.decide(Imap), Deny(NotForThisAppPassword));
    }

    #[test]
    fn decision_table() {
        use Service::*;
        let panel = Some(AccountFacts { kind: AccountKind::PanelAccount, disabled: false });
        let disabled = Some(AccountFacts {
            kind: AccountKind::Mailbox { access: Mode::Imap, submission: true, tls_required: true },
            disabled: true,
        });
        #[rustfmt::skip]
        let table = [
            // service, TLS, operator allows plaintext, account, password ok => decision
            (Imap,       true,  false, mailbox(Mode::Imap, true, true),      true,  Allow),
            (Imap,       true,  false, mailbox(Mode::Imap, true, true),      false, Deny(BadCredentials)),
            (Imap,       true,  false, None,                           false, Deny(BadCredentials)),
            (Imap,       true,  false, mailbox(Mode::Pop3, true, true),      true,  Deny(ServiceNotAllowed)),
            (Imap,       true,  false, mailbox(Mode::Pop3, true, true),      false, Deny(BadCredentials)),
            (Imap,       true,  false, mailbox(Mode::None, true, true),  true,  Deny(ServiceNotAllowed)),
            (Pop3,       true,  false, mailbox(Mode::Pop3, true, true),      true,  Allow),
            (Pop3,       true,  false, mailbox(Mode::Imap, true, true),      true,  Deny(ServiceNotAllowed)),
            (Pop3,       true,  false, mailbox(Mode::None, true, true),  true,  Deny(ServiceNotAllowed)),
            (Submission, true,  false, mailbox(Mode::None, true, true),  true,  Allow),
            (ManageSieve, true, false, mailbox(Mode::Imap, true, true),      true,  Allow),
            (ManageSieve, true, false, mailbox(Mode::Pop3, true, true),      true,  Allow),
            (ManageSieve, true, false, mailbox(Mode::None, true, true),  true,  Allow),
            (ManageSieve, true, false, mailbox(Mode::Imap, true, true),      false, Deny(BadCredentials)),
            (ManageSieve, true, false, panel,                          true,  Deny(ServiceNotAllowed)),
            (ManageSieve, false, true, mailbox(Mode::Imap, true, true),      true,  Deny(BY_MAILBOX)),
            (ManageSieve, false, false, mailbox(Mode::Imap, true, false),    true,  Deny(BY_OPERATOR)),
            // Sending off: the login succeeds (AccountKind::may_send refuses at MAIL FROM).
            (Submission, true,  false, mailbox(Mode::Imap, false, true),     true,  Allow),
            (Submission, true,  false, mailbox(Mode::Imap, false, true),     false, Deny(BadCredentials)),
            (Panel,      true,  false, mailbox(Mode::None, false, true), true,  Allow),
            (Panel,      true,  false, panel,                          true,  Allow),
            (Imap,       true,  false, panel,                          true,  Deny(ServiceNotAllowed)),
            (Imap,       true,  false, disabled,                       true,  Deny(Disabled)),
            (Imap,       true,  false, disabled,                       false, Deny(BadCredentials)),
            // Plaintext, operator-wide refusal: always TlsRequired, right password or not.
            (Imap,       false, false, mailbox(Mode::Imap, true, false),     true,  Deny(BY_OPERATOR)),
            (Imap,       false, false, mailbox(Mode::Imap, true, false),     false, Deny(BY_OPERATOR)),
            (Pop3,       false, false, None,                           false, Deny(BY_OPERATOR)),
            // Operator allows plaintext: the mailbox's own switch decides.
            (Imap,       false, true,  mailbox(Mode::Imap, true, false),     true,  Allow),
            (Imap,       false, true,  mailbox(Mode::Imap, true, false),     false, Deny(BadCredentials)),
            (Imap,       false, true,  mailbox(Mode::Imap, true, true),      true,  Deny(BY_MAILBOX)),
            (Imap,       false, true,  mailbox(Mode::Imap, true, true),      false, Deny(BY_MAILBOX)),
            (Submission, false, true,  mailbox(Mode::Imap, true, false),     true,  Allow),
            (Imap,       false, true,  None,                           false, Deny(BY_MAILBOX)),
            (Panel,      false, true,  panel,                          true,  Deny(BY_MAILBOX)),
        ];
        for (i, (service, tls, plaintext_ok, account, pw, expected)) in table.into_iter().enumerate() {
            let f = facts(service, tls, plaintext_ok, account, pw);
            assert_eq!(f.decide(), expected, "row {i}: {f:?}");
        }
        let kind = |submission| AccountKind::Mailbox { access: Mode::Imap, submission, tls_required: true };
        assert!(kind(true).may_send());
        assert!(!kind(false).may_send());
        assert!(!AccountKind::PanelAccount.may_send());
    }

    #[test]
    fn without_tls_a_wrong_password_and_a_tls_only_mailbox_read_the_same() {
        // Operator allows plaintext; one mailbox is TLS-only, the other is not.
        let tls_only = facts(Service::Imap, false, true, mailbox(Mode::Imap, true, true), false).decide();
        let open_wrong = facts(Service::Imap, false, true, mailbox(Mode::Imap, true, false), false).decide();
        let unknown = facts(Service::Imap, false, true, None, false).decide();
        let public = |d: LoginDecision| match d {
            Deny(r) => r.public(false),
            Allow => panic!("allowed"),
        };
        assert_eq!(public(tls_only), public(open_wrong));
        assert_eq!(public(unknown), public(open_wrong));
        assert_eq!(public(open_wrong), PublicRefusal::Failed { encrypted: false });
        // The operator-wide rule may be said: it is the same for everyone.
        assert_eq!(BY_OPERATOR.public(false), PublicRefusal::TlsRequired);
        assert_eq!(BadCredentials.public(true), PublicRefusal::Failed { encrypted: true });
    }

    #[test]
    fn exposure_needs_plaintext_and_the_right_password() {
        let mb = mailbox(Mode::Imap, true, true);
        assert!(facts(Service::Imap, false, false, mb, true).password_exposed());
        assert!(!facts(Service::Imap, false, false, mb, false).password_exposed());
        assert!(!facts(Service::Imap, true, false, mb, true).password_exposed());
        assert!(!facts(Service::Imap, false, false, None, false).password_exposed());
    }
}
