//! The caller's own account: password, two-factor sign-in (TOTP), API tokens, and the
//! password rule's verdict for the live meter.

use postfach_auth::Connection;
use postfach_auth::accounts::{self, OwnPasswordChange};
use postfach_auth::tokens::{new_api_token, token_hash};
use postfach_auth::totp::{new_totp_secret, totp_uri};
use postfach_policy::{PasswordVerdict, check_password, user_inputs};
use postfach_store::Scope;
use postfach_store::sessions::ApiToken;
use postfach_types::{ApiTokenId, CustomerId, CustomerName, EmailAddress, Secret};

use crate::{Admin, AdminError, Who};

/// The state of an account's two-factor sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TotpStatus {
    Off,
    /// Set up but not yet confirmed with a code: the key and its `otpauth:` URI.
    Pending {
        secret: String,
        uri: String,
    },
    On,
}

/// The panel account behind the caller (customers and admins only).
fn account(who: &Who) -> Result<CustomerId, AdminError> {
    who.account_id().ok_or(AdminError::Forbidden)
}

impl Admin {
    /// Changes the caller's own password after the gate checked the current one.
    pub async fn change_own_password(&self, who: &Who, change: OwnPasswordChange<'_>) -> Result<(), AdminError> {
        let own = who.principal().ok_or(AdminError::Forbidden)?;
        let new = change.new;
        accounts::change_own_password(&self.auth, &self.store, &own, change)
            .await
            .map_err(|e| AdminError::account(e, new))
    }

    /// `issuer` names the service in the authenticator app.
    pub async fn totp_status(&self, who: &Who, issuer: &str) -> Result<TotpStatus, AdminError> {
        let id = account(who)?;
        Ok(match self.store.totp_secret(id).await? {
            None => TotpStatus::Off,
            Some(s) if s.enabled => TotpStatus::On,
            Some(s) => {
                let uri = totp_uri(&s.secret, issuer, &who.display_name());
                TotpStatus::Pending { secret: s.secret, uri }
            }
        })
    }

    /// Sets up a new secret, to be confirmed with a first code.
    pub async fn start_totp(&self, who: &Who) -> Result<(), AdminError> {
        Ok(self.store.set_totp_secret(account(who)?, &new_totp_secret()).await?)
    }

    /// Switches two-factor sign-in on with a first code from the app (checked by the
    /// gate, throttled and logged).
    pub async fn confirm_totp(&self, who: &Who, code: &str, connection: &Connection) -> Result<(), AdminError> {
        let id = account(who)?;
        Ok(self.auth.second_factor(id, code, true, connection).await?)
    }

    /// Switches two-factor sign-in off; it takes a current code.
    pub async fn disable_totp(&self, who: &Who, code: &str, connection: &Connection) -> Result<(), AdminError> {
        let id = account(who)?;
        self.auth.second_factor(id, code, false, connection).await?;
        Ok(self.store.remove_totp_secret(id).await?)
    }

    pub async fn tokens(&self, who: &Who) -> Result<Vec<ApiToken>, AdminError> {
        Ok(self.store.api_tokens(Scope::Customer(account(who)?)).await?)
    }

    /// Creates an API token; the token itself is returned only here.
    pub async fn create_token(&self, who: &Who, name: &str) -> Result<(ApiToken, Secret<String>), AdminError> {
        let id = account(who)?;
        let name = crate::input::token_name(name)?;
        let token = new_api_token();
        let stored = self.store.create_api_token(id, &name, &token_hash(token.expose())).await?;
        Ok((stored, token))
    }

    pub async fn revoke_token(&self, who: &Who, id: ApiTokenId) -> Result<(), AdminError> {
        Ok(self.store.revoke_api_token(Scope::Customer(account(who)?), id).await?)
    }

    /// The password rule's verdict, with the words a guesser would try: a mailbox user's
    /// own address; else the address and customer name given, as far as they are valid
    /// (while they are typed); else the caller's own account name.
    pub async fn password_verdict(
        &self,
        who: &Who,
        password: &Secret<String>,
        address: Option<&str>,
        customer: Option<&str>,
    ) -> PasswordVerdict {
        let address = match who {
            Who::Mailbox { mailbox } => Some(mailbox.address.clone()),
            _ => address.and_then(|a| EmailAddress::parse(a).ok()),
        };
        let customer = customer.and_then(|c| CustomerName::parse(c).ok());
        match (&address, &customer) {
            (Some(address), _) => {
                match accounts::check_mailbox_password(&self.store, who.scope(), address, password).await {
                    Ok(verdict) => verdict,
                    // The domain is not (yet) the caller's: score with what is known.
                    Err(_) => score(password, Some(address), Some(&who.display_name())),
                }
            }
            (None, Some(customer)) => score(password, None, Some(customer.as_str())),
            (None, None) => score(password, None, who.account_id().map(|_| who.display_name()).as_deref()),
        }
    }
}

fn score(password: &Secret<String>, address: Option<&EmailAddress>, customer: Option<&str>) -> PasswordVerdict {
    let inputs = user_inputs(address, customer);
    check_password(password.expose(), &inputs.iter().map(String::as_str).collect::<Vec<_>>())
}
