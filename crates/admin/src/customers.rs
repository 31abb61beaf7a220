//! Customers and admins (panel accounts): the platform's business, for admins and the
//! operator.

use postfach_auth::accounts;
use postfach_store::customers::Customer;
use postfach_types::{CustomerId, CustomerName, Role, Secret};

use crate::{Admin, AdminError, Who, platform};

/// A change of a customer; what is `None` stays. A refused change changes nothing.
#[derive(Debug, Default)]
pub struct CustomerChange {
    pub disabled: Option<bool>,
    /// A reset: the account's panel sessions end and its API tokens are revoked.
    pub password: Option<Secret<String>>,
}

impl Admin {
    pub async fn customers(&self, who: &Who) -> Result<Vec<Customer>, AdminError> {
        platform(who)?;
        Ok(self.store.customers().await?)
    }

    pub async fn customer(&self, who: &Who, id: CustomerId) -> Result<Customer, AdminError> {
        platform(who)?;
        Ok(self.store.customer_by_id(id).await?)
    }

    pub async fn customer_named(&self, who: &Who, name: &CustomerName) -> Result<Customer, AdminError> {
        platform(who)?;
        Ok(self.store.customer(name).await?)
    }

    /// Creates a customer or admin; its password must pass the rule.
    pub async fn create_customer(
        &self,
        who: &Who,
        name: &CustomerName,
        password: &Secret<String>,
        role: Role,
    ) -> Result<Customer, AdminError> {
        platform(who)?;
        accounts::create_customer(&self.store, self.auth.hasher(), name, password, role)
            .await
            .map_err(|e| AdminError::account(e, password))
    }

    /// Disables or enables a customer and resets its password. An admin may neither
    /// disable nor reset their own account (their own password is changed as themselves,
    /// with the current one); both rules are checked before anything changes.
    pub async fn update_customer(
        &self,
        who: &Who,
        id: CustomerId,
        change: CustomerChange,
    ) -> Result<Customer, AdminError> {
        let customer = self.customer(who, id).await?;
        if who.account_id() == Some(customer.id) {
            if change.password.is_some() {
                return Err(AdminError::ResetOwnPassword);
            }
            if change.disabled == Some(true) {
                return Err(AdminError::DisableSelf);
            }
        }
        if let Some(password) = &change.password {
            accounts::change_customer_password(&self.store, self.auth.hasher(), &customer.name, password)
                .await
                .map_err(|e| AdminError::account(e, password))?;
        }
        if let Some(disabled) = change.disabled {
            self.store.set_customer_disabled(&customer.name, disabled).await?;
        }
        Ok(self.store.customer_by_id(customer.id).await?)
    }

    /// Removes a customer that owns no domains any more.
    pub async fn remove_customer(&self, who: &Who, name: &CustomerName) -> Result<(), AdminError> {
        platform(who)?;
        Ok(self.store.remove_customer(name).await?)
    }
}
