//! Creating accounts and changing passwords: the one place where the password rule is
//! applied before a hash is stored, for the CLI, the API and the panel alike.

use postfach_policy::{PasswordVerdict, check_password, user_inputs};
use postfach_store::customers::Customer;
use postfach_store::mailboxes::{Mailbox, MailboxSettings};
use postfach_store::{Scope, Store, StoreError};
use postfach_types::{CustomerName, EmailAddress, Role, Secret};

use crate::{AuthError, PasswordHasher};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The password breaks the rule; the verdict says why and carries the feedback.
    #[error("{}", .0.reason.as_deref().unwrap_or("the password is too weak"))]
    WeakPassword(PasswordVerdict),
    #[error(transparent)]
    Store(#[from] StoreError),
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
    store.mailbox(scope, address).await?;
    require(check_mailbox_password(store, scope, address, password).await?)?;
    let hash = hasher.hash(password).await?;
    Ok(store.set_mailbox_password(scope, address, &hash).await?)
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

pub async fn change_customer_password(
    store: &Store,
    hasher: &PasswordHasher,
    name: &CustomerName,
    password: &Secret<String>,
) -> Result<(), AccountError> {
    store.customer(name).await?;
    require(verdict(password, None, Some(name.as_str())))?;
    let hash = hasher.hash(password).await?;
    Ok(store.set_customer_password(name, &hash).await?)
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
