//! Creating accounts and changing passwords: the one place where the password rule is
//! applied before a hash is stored, for the CLI, the API and the panel alike.
//!
//! Changing one's *own* password ([`change_own_password`]) asks for the current one
//! through the authentication gate (throttled and logged like a sign-in), ends the
//! account's other panel sessions and revokes its API tokens unless the user keeps them.
//! A customer or admin setting the password of a mailbox they manage
//! ([`change_mailbox_password`]) needs no current password; the mailbox's panel sessions
//! end. An admin or the CLI resetting a panel account's password
//! ([`change_customer_password`]) needs none either; the account's panel sessions end and
//! its API tokens are revoked, since whoever held them may be why it is reset. The web
//! refuses that path for the admin's own account, which goes through
//! [`change_own_password`].

use postfach_policy::{PasswordVerdict, Refusal, check_password, user_inputs};
use postfach_store::customers::Customer;
use postfach_store::mailboxes::{Mailbox, MailboxSettings};
use postfach_store::{Scope, Store, StoreError};
use postfach_types::{CustomerName, EmailAddress, Mechanism, Role, Secret, Service, SessionId};

use crate::{Attempt, AuthError, Authenticator, Connection, PasswordHasher, Principal};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The password breaks the rule; the verdict says why and carries the feedback.
    #[error("{}", .0.reason.as_deref().unwrap_or("the password is too weak"))]
    WeakPassword(PasswordVerdict),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The current password given with a change is wrong (or the attempt is throttled).
    #[error("the current password is not right")]
    CurrentPassword(Refusal),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// Checks the rule for a mailbox's password; the customer name is an input too.
pub async fn check_mailbox_password(
    store: &Store,
    scope: Scope,
    address: &EmailAddress,
    password: &Secret<String>,
) -> Result<PasswordVerdict, AccountError> {
    let owner = store.domain(scope, address.domain()).await?.customer;
    Ok(verdict(password, Some(address), Some(owner.as_str())))
}

pub async fn create_mailbox(
    store: &Store,
    hasher: &PasswordHasher,
    scope: Scope,
    address: &EmailAddress,
    password: &Secret<String>,
    settings: MailboxSettings,
) -> Result<Mailbox, AccountError> {
    require(check_mailbox_password(store, scope, address, password).await?)?;
    let hash = hasher.hash(password).await?;
    Ok(store.add_mailbox(scope, address, &hash, settings).await?)
}

pub async fn change_mailbox_password(
    store: &Store,
    hasher: &PasswordHasher,
    scope: Scope,
    address: &EmailAddress,
    password: &Secret<String>,
) -> Result<(), AccountError> {
    let mailbox = store.mailbox(scope, address).await?;
    require(check_mailbox_password(store, scope, address, password).await?)?;
    let hash = hasher.hash(password).await?;
    store.set_mailbox_password(scope, address, &hash).await?;
    store.end_panel_sessions(mailbox.customer_id, Some(mailbox.id), None).await?;
    Ok(())
}

/// A password change by the account's own user.
#[derive(Debug)]
pub struct OwnPasswordChange<'a> {
    pub current: &'a Secret<String>,
    pub new: &'a Secret<String>,
    /// Keep the account's API tokens working (the default on every form is to revoke).
    pub keep_api_tokens: bool,
    /// The panel session that asks; it stays signed in, all others end.
    pub session: Option<SessionId>,
    pub connection: &'a Connection,
}

/// Changes the signed-in user's own password after checking the current one.
pub async fn change_own_password(
    auth: &Authenticator,
    store: &Store,
    who: &Principal,
    change: OwnPasswordChange<'_>,
) -> Result<(), AccountError> {
    let login = match who {
        Principal::Mailbox { address, .. } => address.to_string(),
        Principal::Account { name, .. } => name.to_string(),
    };
    let attempt = Attempt {
        service: Service::Panel,
        mechanism: Mechanism::WebForm,
        login: &login,
        secret: change.current,
        connection: change.connection,
    };
    match auth.authenticate(attempt).await {
        Ok(found) if &found == who => {}
        Ok(_) => return Err(AccountError::CurrentPassword(Refusal::BadCredentials)),
        Err(AuthError::Refused(refusal)) => return Err(AccountError::CurrentPassword(refusal)),
        Err(e) => return Err(e.into()),
    }
    match who {
        Principal::Mailbox { id, customer_id, address, .. } => {
            let scope = Scope::Customer(*customer_id);
            require(check_mailbox_password(store, scope, address, change.new).await?)?;
            let hash = auth.hasher().hash(change.new).await?;
            store.set_mailbox_password(scope, address, &hash).await?;
            store.end_panel_sessions(*customer_id, Some(*id), change.session).await?;
        }
        Principal::Account { customer_id, name, .. } => {
            require(verdict(change.new, None, Some(name.as_str())))?;
            let hash = auth.hasher().hash(change.new).await?;
            store.set_customer_password(name, &hash).await?;
            store.end_panel_sessions(*customer_id, None, change.session).await?;
            if !change.keep_api_tokens {
                store.revoke_all_api_tokens(*customer_id).await?;
            }
        }
    }
    Ok(())
}

pub async fn create_customer(
    store: &Store,
    hasher: &PasswordHasher,
    name: &CustomerName,
    password: &Secret<String>,
    role: Role,
) -> Result<Customer, AccountError> {
    require(verdict(password, None, Some(name.as_str())))?;
    let hash = hasher.hash(password).await?;
    Ok(store.add_customer(name, &hash, role).await?)
}

/// Resets a panel account's password (by an admin or the CLI): ends all its panel
/// sessions and revokes all its API tokens.
pub async fn change_customer_password(
    store: &Store,
    hasher: &PasswordHasher,
    name: &CustomerName,
    password: &Secret<String>,
) -> Result<(), AccountError> {
    let customer = store.customer(name).await?;
    require(verdict(password, None, Some(name.as_str())))?;
    let hash = hasher.hash(password).await?;
    store.set_customer_password(name, &hash).await?;
    store.end_panel_sessions(customer.id, None, None).await?;
    store.revoke_all_api_tokens(customer.id).await?;
    Ok(())
}

fn verdict(password: &Secret<String>, address: Option<&EmailAddress>, customer: Option<&str>) -> PasswordVerdict {
    let inputs = user_inputs(address, customer);
    check_password(password.expose(), &inputs.iter().map(String::as_str).collect::<Vec<_>>())
}

fn require(verdict: PasswordVerdict) -> Result<(), AccountError> {
    if verdict.accepted { Ok(()) } else { Err(AccountError::WeakPassword(verdict)) }
}

/// A random password for generated accounts (`serve --demo`): 20 characters from an
/// alphabet without look-alikes, in groups of five (about 110 bits).
pub fn generate_password() -> Secret<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = String::with_capacity(23);
    for i in 0..20 {
        if i > 0 && i % 5 == 0 {
            out.push('-');
        }
        let byte = ALPHABET[rand::random_range(0..ALPHABET.len())];
        out.push(char::from(byte));
    }
    Secret::new(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_pass_the_rule() {
        for _ in 0..20 {
            let password = generate_password();
            assert_eq!(password.expose().len(), 23);
            assert!(verdict(&password, None, Some("demo")).accepted);
        }
        assert_ne!(generate_password().expose(), generate_password().expose());
    }
}
